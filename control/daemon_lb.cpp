// The daemon's load balancer and router: service set, health checks, kernel TAPs, the workers'
// forwarding snapshot, the `lb` / `ipvsadm` API and the neighbour mirror the workers read.

#include <rte_cycles.h>
#include <time.h>

#include <chrono>
#include <thread>

#include "control/clock.h"
#include "control/api.h"
#include "control/daemon.h"
#include "control/health_check.h"
#include "control/kernel_tap.h"
#include "control/log.h"
#include "control/metrics.h"

namespace ctl {

namespace {

constexpr uint64_t kRateIntervalNs = 2'000'000'000;  // ipvsadm's estimator period
constexpr uint32_t kMaxListedConns = 65536;

}  // namespace

std::string Daemon::start_forward() {
  const uint32_t n = dp_->n_workers();
  dp::ForwardParams p;
  p.neighbor_capacity = cfg_.neighbors.max_entries;
  const lb::ConnTable::Params cp = conn_params(cfg_);
  for (uint32_t w = 0; w < n; ++w)
    p.engines.push_back(
        std::make_unique<dp::ForwardEngine>(cp, w, n, cfg_.routing.icmp_errors_per_s));
  if (std::string err = dp_->enable_forward(std::move(p)); !err.empty()) return err;
  taps_.resize(cfg_.ports.size());
  for (uint32_t i = 0; i < cfg_.ports.size(); ++i) {
    const cfg::Port& port = cfg_.ports[i];
    if (port.tap.empty()) continue;
    std::vector<std::pair<uint32_t, uint8_t>> addrs;
    for (const cfg::Ipv4Prefix& a : port.addresses) addrs.emplace_back(a.addr, a.len);
    auto tap = std::make_unique<KernelTap>();
    if (std::string err = tap->open(port.tap, dp_->port(i).mac, addrs, port.mtu); !err.empty())
      return "port " + port.name + ": kernel TAP: " + err;
    log_info("port " + port.name + ": kernel exception path through TAP " + port.tap);
    taps_[i] = std::move(tap);
  }
  lb_services_.load_config(config_services(cfg_));
  if (cfg_.lb.enabled) {
    try {
      health_ = std::make_unique<HealthChecker>();
    } catch (const std::exception& e) {
      return std::string("health checks: ") + e.what();
    }
  }
  try {
    rebuild_forward();
  } catch (const std::exception& e) {
    return std::string("lb: ") + e.what();
  }
  return "";
}

void Daemon::stop_forward() {
  health_.reset();
  for (auto& t : taps_)
    if (t) t->close();
  taps_.clear();
}

void Daemon::rebuild_forward() {
  if (!dp_ || !dp_->forward_enabled()) return;
  auto f = std::make_shared<dp::ForwardConfig>();
  f->routing = cfg_.routing.forward;
  if (std::string err = make_fib(cfg_, f->fib); !err.empty()) throw std::runtime_error(err);
  const std::vector<lb::ServiceSpec> specs = lb_services_.specs();
  if (cfg_.lb.enabled) {
    f->lb = make_lb_table(specs, lb_ids_, lb_down_, cfg_.lb.maglev_table_size);
    if (health_) health_->set_targets(make_check_targets(cfg_, specs, lb_ids_));
  }
  lb_ids_.retain(specs);
  // Hardware steering where the NIC takes the rules; software steering otherwise (logged when
  // the outcome changes, not at every rebuild).
  if (dp_->n_workers() > 1) {
    std::vector<std::string> installed;
    const std::string why =
        dp_->install_flow_rules(plan_flow_rules(cfg_, *f, dp_->n_workers()), &installed);
    const std::string outcome = why.empty() ? "hw:" + std::to_string(installed.size()) : why;
    if (outcome != steering_outcome_) {
      if (why.empty()) {
        for (const std::string& r : installed) log_info("lb: rte_flow rule installed: " + r);
      } else {
        log_info("lb: hardware steering unavailable (" + why +
                 "); workers steer flows in software (hand-off rings)");
      }
      steering_outcome_ = outcome;
    }
  }
  fwd_cfg_ = std::move(f);
  publish_lb_metrics();
  publish_service_health();
}

void Daemon::publish_service_health() {
  if (!vrrp_ || !cfg_.lb.enabled) return;
  // Healthy real servers of every named service of the file (what VRRP may track): in the
  // running set (runtime edits count), weight > 0, not failed by its check.
  std::map<std::string, uint32_t> healthy;
  for (const cfg::LbService& conf : cfg_.lb.services) {
    if (conf.name.empty()) continue;
    uint32_t n = 0;
    if (const ServiceEntry* se = lb_services_.find(conf.spec.key))
      for (const lb::RealServer& r : se->spec.reals)
        if (r.weight > 0 && lb_down_.count(lb_ids_.find_dest(se->spec.key, r.ip, r.port)) == 0) ++n;
    healthy[conf.name] = n;
  }
  vrrp_->set_service_health(healthy, mono_ns());
}

void Daemon::publish_lb_metrics() {
  if (!collector_ || !cfg_.lb.enabled) return;
  collector_->set_lb_view(make_lb_metrics_view(
      lb_services_, lb_ids_, lb_down_, health_ ? health_->status() : std::vector<CheckStatus>{},
      cfg_.lb.services));
}

void Daemon::mirror_neighbor(uint16_t port, uint32_t ip) {
  dp::NeighborCache* nc = dp_->neighbor_cache();
  if (nc == nullptr) return;
  const dp::NeighEntry* e = neigh_.find(port, ip);
  if (e != nullptr && e->state != dp::NeighState::kIncomplete) {
    if (nc->set(port, ip, e->mac)) mirrored_.insert({port, ip});
  } else {
    nc->erase(port, ip);
    mirrored_.erase({port, ip});
  }
}

void Daemon::on_kernel_frame(uint32_t port, const uint8_t* data, uint32_t len) {
  if (port < taps_.size() && taps_[port]) taps_[port]->write_frame(data, len);
}

void Daemon::poll_lb(uint64_t now) {
  // Frames the kernel sends through its TAPs leave on the port as they are.
  static uint8_t buf[dp::PuntedFrame::kMaxLen];
  for (uint32_t i = 0; i < taps_.size(); ++i) {
    if (!taps_[i]) continue;
    for (int k = 0; k < 64; ++k) {
      const ssize_t n = taps_[i]->read_frame(buf, sizeof buf);
      if (n <= 0) break;
      dp_->send_frame(i, buf, static_cast<uint32_t>(n));
    }
  }
  if (health_) {
    bool changed = false;
    for (const CheckTransition& t : health_->take_transitions()) {
      const uint32_t id = static_cast<uint32_t>(t.key);
      const bool was_down = lb_down_.count(id) != 0;
      if (t.up == !was_down) continue;
      if (t.up)
        lb_down_.erase(id);
      else
        lb_down_.insert(id);
      changed = true;
      lb_health_transitions_.fetch_add(1, std::memory_order_relaxed);
      // Name the real server in the log.
      std::string who = "real server id " + std::to_string(id);
      for (const ServiceEntry& se : lb_services_.services())
        for (const lb::RealServer& r : se.spec.reals)
          if (lb_ids_.find_dest(se.spec.key, r.ip, r.port) == id)
            who = lb::format_endpoint(r.ip, r.port) + " of " + lb::format_key(se.spec.key);
      if (t.up)
        log_info("lb: " + who + " is up again: back in the scheduler");
      else
        log_warning("lb: " + who + " failed its check (" + t.reason +
                    "): out of the scheduler, existing connections stay");
    }
    if (changed) {
      rebuild_forward();
      publish_snapshot();
    }
  }
  if (now >= next_rate_ns_ && dp_->forward_enabled()) {
    // Rates as ipvsadm --rate shows them: the change of the totals over the last period.
    const double secs =
        rates_.at_ns == 0 ? 0.0 : static_cast<double>(now - rates_.at_ns) / 1e9;
    auto total = [&](auto&& get, size_t n) {
      std::vector<Counters> out(n);
      for (uint32_t w = 0; w < dp_->n_workers(); ++w) {
        const dp::ForwardEngine* e = dp_->forward_engine(w);
        for (size_t i = 0; i < n; ++i) {
          const dp::LbTraffic& t = get(*e, i);
          out[i].conns += t.conns.get();
          out[i].in_pkts += t.in_pkts.get();
          out[i].in_bytes += t.in_bytes.get();
          out[i].out_pkts += t.out_pkts.get();
          out[i].out_bytes += t.out_bytes.get();
        }
      }
      return out;
    };
    auto rate = [secs](const std::vector<Counters>& now_c, const std::vector<Counters>& prev) {
      std::vector<Rates> out(now_c.size());
      if (secs <= 0 || prev.size() != now_c.size()) return out;
      for (size_t i = 0; i < now_c.size(); ++i) {
        auto per_s = [secs](uint64_t a, uint64_t b) {
          return a >= b ? static_cast<uint64_t>(static_cast<double>(a - b) / secs + 0.5) : 0;
        };
        out[i] = {per_s(now_c[i].conns, prev[i].conns), per_s(now_c[i].in_pkts, prev[i].in_pkts),
                  per_s(now_c[i].out_pkts, prev[i].out_pkts),
                  per_s(now_c[i].in_bytes, prev[i].in_bytes),
                  per_s(now_c[i].out_bytes, prev[i].out_bytes)};
      }
      return out;
    };
    auto dests = total([](const dp::ForwardEngine& e, size_t i) -> const dp::LbTraffic& {
      return e.dests[i].t;
    }, lb::kMaxDests);
    auto services = total([](const dp::ForwardEngine& e, size_t i) -> const dp::LbTraffic& {
      return e.services[i];
    }, lb::kMaxServices);
    rates_.dest_rate = rate(dests, rates_.dest);
    rates_.service_rate = rate(services, rates_.service);
    rates_.dest = std::move(dests);
    rates_.service = std::move(services);
    rates_.at_ns = now;
    next_rate_ns_ = now + kRateIntervalNs;
    publish_lb_metrics();  // check counters and latency
  }
}

std::vector<ServiceView> Daemon::lb_views() const {
  std::vector<ServiceView> out;
  const uint32_t nw = dp_->n_workers();
  for (const ServiceEntry& se : lb_services_.services()) {
    ServiceView v;
    v.spec = se.spec;
    const uint32_t sid = lb_ids_.find_service(se.spec.key);
    for (uint32_t w = 0; w < nw && sid < lb::kMaxServices; ++w) {
      const dp::ForwardEngine* e = dp_->forward_engine(w);
      if (e == nullptr) continue;
      const dp::LbTraffic& t = e->services[sid];
      v.c.conns += t.conns.get();
      v.c.in_pkts += t.in_pkts.get();
      v.c.in_bytes += t.in_bytes.get();
      v.c.out_pkts += t.out_pkts.get();
      v.c.out_bytes += t.out_bytes.get();
    }
    if (sid < rates_.service_rate.size()) v.r = rates_.service_rate[sid];
    for (const lb::RealServer& r : se.spec.reals) {
      RealView rv;
      rv.real = r;
      const uint32_t did = lb_ids_.find_dest(se.spec.key, r.ip, r.port);
      rv.healthy = lb_down_.count(did) == 0;
      int64_t active = 0, inactive = 0;
      for (uint32_t w = 0; w < nw && did < lb::kMaxDests; ++w) {
        const dp::ForwardEngine* e = dp_->forward_engine(w);
        if (e == nullptr) continue;
        const dp::LbDestStats& d = e->dests[did];
        active += d.active.get();
        inactive += d.inactive.get();
        rv.c.conns += d.t.conns.get();
        rv.c.in_pkts += d.t.in_pkts.get();
        rv.c.in_bytes += d.t.in_bytes.get();
        rv.c.out_pkts += d.t.out_pkts.get();
        rv.c.out_bytes += d.t.out_bytes.get();
      }
      rv.active = active > 0 ? static_cast<uint64_t>(active) : 0;
      rv.inactive = inactive > 0 ? static_cast<uint64_t>(inactive) : 0;
      if (did < rates_.dest_rate.size()) rv.r = rates_.dest_rate[did];
      v.reals.push_back(rv);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<ConnView> Daemon::lb_conns() {
  std::vector<ConnView> out;
  if (!dp_->running()) return out;
  const uint32_t nw = dp_->n_workers();
  std::vector<uint64_t> want(nw);
  for (uint32_t w = 0; w < nw; ++w) {
    dp::ForwardEngine* e = dp_->forward_engine(w);
    e->dump.max = kMaxListedConns / nw;
    e->dump.out.reserve(e->dump.max);
    want[w] = e->dump.req.load() + 1;
    e->dump.req.store(want[w], std::memory_order_release);
  }
  // Workers answer at their next maintenance pass (1 ms apart), idle ones after their sleep.
  const uint64_t deadline = mono_ns() + 500'000'000;
  const uint64_t now_dp = dp_->mono_ns(rte_rdtsc());
  for (uint32_t w = 0; w < nw; ++w) {
    dp::ForwardEngine* e = dp_->forward_engine(w);
    while (e->dump.done.load(std::memory_order_acquire) != want[w]) {
      if (mono_ns() > deadline) throw ApiError("worker " + std::to_string(w) +
                                                   " did not answer the connection listing");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    for (const dp::ConnRecord& r : e->dump.out) {
      ConnView v;
      v.proto = r.proto == 17 ? lb::Proto::kUdp : lb::Proto::kTcp;
      v.client_ip = r.client_ip;
      v.client_port = r.client_port;
      v.vip = r.vip;
      v.vport = r.vport;
      v.rs_ip = r.rs_ip;
      v.rs_port = r.rs_port;
      v.state = r.proto == 17 ? "UDP"
                              : std::string(lb::to_string(static_cast<lb::TcpState>(r.state)));
      v.expires_s = r.expires_ns > now_dp
                        ? static_cast<uint32_t>((r.expires_ns - now_dp) / 1'000'000'000)
                        : 0;
      out.push_back(std::move(v));
    }
  }
  return out;
}

nlohmann::json Daemon::lb_command(const std::vector<std::string>& argv) {
  if (!cfg_.lb.enabled) throw ApiError("the load balancer is not enabled in " + cfg_.file);
  const bool ipvsadm = argv[0] == "ipvsadm";
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  std::string restore_text;
  if (ipvsadm) {
    // tandemctl passes -R's input after "--".
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == "--" && i + 1 < rest.size()) {
        restore_text = rest[i + 1];
        rest.resize(i);
        break;
      }
    }
  }
  auto parsed = ipvsadm ? parse_ipvsadm(rest) : parse_lb(rest);
  if (auto* err = std::get_if<std::string>(&parsed)) throw ApiError(*err);
  Command c = std::get<Command>(parsed);
  if (c.op == Command::Op::kRestore) {
    auto lines = parse_ipvsadm_restore(restore_text);
    if (auto* err = std::get_if<std::string>(&lines)) throw ApiError(*err);
    c.restore = std::get<std::vector<Command>>(lines);
  }
  // What ipvsadm cannot know but the data plane needs: the VIP must be ours (else nothing
  // reaches it) and a real server reachable the way its mode sends (DR: on-link).
  auto check = [this](const Command& k) -> std::string {
    using Op = Command::Op;
    if (k.op == Op::kAddService) {
      bool ours = false;
      for (const cfg::Port& p : cfg_.ports)
        for (const cfg::Ipv4Prefix& a : p.addresses) ours = ours || a.addr == k.svc.key.vip;
      for (const cfg::VrrpInstance& in : cfg_.vrrp.instances)
        for (const cfg::Ipv4Prefix& a : in.virtual_ips) ours = ours || a.addr == k.svc.key.vip;
      if (!ours)
        return cfg::format_ipv4(k.svc.key.vip) +
               " is not an address of this node (a port address or a VRRP virtual IP)";
    }
    if ((k.op == Op::kAddReal || k.op == Op::kEditReal) && fwd_cfg_) {
      const dp::Fib::Hop hop = fwd_cfg_->fib.lookup(k.real.ip);
      if (!hop.found)
        return "no route to real server " + cfg::format_ipv4(k.real.ip);
      if (k.real.fwd == lb::Fwd::kDr && hop.next_hop != k.real.ip)
        return "real server " + cfg::format_ipv4(k.real.ip) +
               " is not on a connected prefix: direct routing (-g) needs it on-link";
    }
    return "";
  };
  for (const Command& k : c.op == Command::Op::kRestore ? c.restore : std::vector<Command>{c}) {
    if (std::string err = check(k); !err.empty())
      throw ApiError(k.line != 0 ? "line " + std::to_string(k.line) + ": " + err : err);
  }
  if (std::string err = lb_services_.apply(c); !err.empty()) throw ApiError(err);
  switch (c.op) {
    case Command::Op::kList: {
      std::vector<ServiceView> views = lb_views();
      if (c.list.has_key)
        std::erase_if(views, [&](const ServiceView& v) { return !(v.spec.key == c.svc.key); });
      if (c.list.conns) {
        std::vector<ConnView> conns = lb_conns();
        if (c.list.json || !ipvsadm) {
          nlohmann::json out = nlohmann::json::array();
          for (const ConnView& v : conns)
            out.push_back({{"protocol", lb::to_string(v.proto)},
                           {"client", lb::format_endpoint(v.client_ip, v.client_port)},
                           {"virtual", lb::format_endpoint(v.vip, v.vport)},
                           {"real", lb::format_endpoint(v.rs_ip, v.rs_port)},
                           {"state", v.state},
                           {"expires_s", v.expires_s}});
          return {{"connections", out}, {"text", format_ipvsadm_conns(conns)}};
        }
        return {{"text", format_ipvsadm_conns(conns)}};
      }
      nlohmann::json j = to_json(views);
      j["text"] = format_ipvsadm_list(views, c.list);
      return j;
    }
    case Command::Op::kSave:
      return {{"text", format_ipvsadm_save(lb_views())}};
    case Command::Op::kZero:
      return {{"text", ""}};
    default:
      break;
  }
  // A change: new tables for the workers; existing connections keep their real server.
  rebuild_forward();
  publish_snapshot();
  log_info("lb: " + std::string(ipvsadm ? "ipvsadm" : "lb") + " command applied: " +
           [&] {
             std::string s;
             for (const auto& a : rest) s += (s.empty() ? "" : " ") + a;
             return s;
           }() +
           " (" + std::to_string(lb_services_.services().size()) + " services)");
  return {{"ok", true}, {"text", ""}};
}

}  // namespace ctl
