#include "control/daemon.h"

#include <poll.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_pdump.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <prometheus/exposer.h>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "control/api.h"
#include "control/clock.h"
#include "control/dhcp_translate.h"
#include "control/health_check.h"
#include "control/kernel_tap.h"
#include "control/lease_keeper.h"
#include "control/log.h"
#include "control/metrics.h"
#include "control/sync_service.h"
#include "control/translate.h"
#include "tandem_version.h"

namespace ctl {
namespace {

// The control loop's tick: bounds the latency of timers (ARP probes, announcements).
constexpr int kTickMs = 10;
constexpr uint64_t kLinkPollNs = 1'000'000'000;

dp::NeighborTable::Params neigh_params(const cfg::Config& c) {
  dp::NeighborTable::Params p;
  p.reachable_ns = uint64_t{c.neighbors.reachable_ms} * 1'000'000;
  p.probe_interval_ns = uint64_t{c.neighbors.probe_interval_ms} * 1'000'000;
  p.probes = c.neighbors.probes;
  p.max_entries = c.neighbors.max_entries;
  return p;
}

std::string join_errors(const std::vector<cfg::Error>& errs) {
  std::string out;
  for (const auto& e : errs) out += (out.empty() ? "" : "\n") + e.str();
  return out;
}

}  // namespace

Daemon::Daemon(cfg::Config c) : cfg_(std::move(c)), neigh_(neigh_params(cfg_)) {}

Daemon::~Daemon() = default;

int Daemon::run(const std::string& prog) {
  // Signals are taken synchronously through a signalfd; block them before any thread exists so
  // EAL lcores and the metrics server inherit the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    log_error(std::string("signalfd: ") + std::strerror(errno));
    return 1;
  }

  // The API socket first: a second daemon on the same config must fail before it takes ports.
  api_ = std::make_unique<ApiServer>([this](const auto& argv) { return handle(argv); });
  if (std::string err = api_->open(cfg_.control.socket); !err.empty()) {
    log_error(err);
    return 1;
  }

  std::vector<std::string> args = eal_args(cfg_, prog);
  std::string joined;
  for (const auto& a : args) joined += (joined.empty() ? "" : " ") + a;
  log_info("starting node " + cfg_.node + " (tandem " TANDEM_VERSION "); EAL: " + joined);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    log_error(std::string("EAL initialisation failed: ") + rte_strerror(rte_errno) +
              " (hugepages reserved? another process on the same file prefix?)");
    api_->close();
    return 1;
  }

  // A primary with a file prefix serves secondary processes: dpdk-proc-info, dpdk-dumpcap.
  const bool shared = cfg_.eal.hugepages && !cfg_.eal.in_memory;
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  if (shared && rte_pdump_init() != 0)
    log_warning(std::string("packet capture (rte_pdump) unavailable: ") + rte_strerror(rte_errno));

  int rc = 0;
  dp_ = std::make_unique<dp::Dataplane>();
  dp::Params params;
  for (const cfg::Port& p : cfg_.ports)
    params.ports.push_back({p.name, dpdk_name(p), p.mtu, p.rx_desc, p.tx_desc, kernel_iface(p)});
  params.worker_lcores.assign(cfg_.dataplane.worker_cores.begin(),
                              cfg_.dataplane.worker_cores.end());
  params.mbufs = cfg_.dataplane.mbufs;
  params.mbuf_cache = cfg_.dataplane.mbuf_cache;
  std::string err = dp_->init(params);
  // Ports must accept the VRRP virtual MACs they may answer with.
  for (const auto& in : cfg_.vrrp.instances) {
    if (!err.empty() || !in.virtual_mac) continue;
    for (uint32_t i = 0; i < cfg_.ports.size(); ++i)
      if (cfg_.ports[i].name == in.port)
        err = dp_->accept_mac(i, vrrp::virtual_mac(static_cast<uint8_t>(in.vrid)));
  }
  if (err.empty() && cfg_.dhcp.enabled) err = start_dhcp();
  if (err.empty() && (cfg_.lb.enabled || cfg_.routing.forward)) err = start_forward();
  if (err.empty() && cfg_.sync.enabled) err = sync_setup();
  if (err.empty()) {
    for (uint32_t i = 0; i < dp_->n_ports(); ++i) macs_.push_back(dp_->port(i).mac);
    auto first = std::make_unique<dp::Snapshot>(make_snapshot(cfg_, macs_, ++generation_));
    first->dhcp = dhcp_cfg_;
    first->fwd = fwd_cfg_;
    err = dp_->start(std::move(first));
  }
  if (err.empty() && leases_) leases_->start();
  if (err.empty() && sync_) err = sync_->start();
  if (err.empty()) {
    VrrpService::Hooks hooks;
    hooks.send = [this](uint32_t port, const uint8_t* f, uint32_t len) {
      return dp_->send_frame(port, f, len);
    };
    hooks.ownership_changed = [this] { publish_snapshot(); };
    hooks.announce = [this](uint32_t port, uint32_t ip, const dp::Mac& mac, uint32_t count,
                            uint32_t interval_ms) {
      announce(port, ip, mac, count, interval_ms, mono_ns());
    };
    hooks.resolve = [this](uint32_t port, uint32_t ip) -> std::optional<dp::Mac> {
      const dp::NeighEntry* e = neigh_.find(static_cast<uint16_t>(port), ip);
      if (e && e->state != dp::NeighState::kIncomplete) return e->mac;
      neigh_.request(static_cast<uint16_t>(port), ip, mono_ns());
      return std::nullopt;
    };
    hooks.before_master = [this] {
      // A takeover: what the peer sent must be in the workers before we answer for its VIPs.
      if (sync_ && !sync_->quiesce(200))
        log_warning("sync: replicated state not fully applied 200 ms into the takeover");
    };
    vrrp_ = std::make_unique<VrrpService>(cfg_, macs_, std::move(hooks));
    publish_service_health();  // before VRRP starts: tracked services count from the outset
  }
  if (!err.empty()) {
    log_error(err);
    rc = 1;
  }

  if (rc == 0 && cfg_.metrics.enabled) {
    try {
      collector_ = std::make_shared<MetricsCollector>(*dp_, stats_, vrrp_->stats(), cfg_.node,
                                                      leases_.get(), dhcp_cfg_, sync_.get());
      exposer_ = std::make_unique<prometheus::Exposer>(cfg_.metrics.listen);
      exposer_->RegisterCollectable(collector_);
      publish_lb_metrics();
    } catch (const std::exception& e) {
      log_error("metrics: cannot listen on " + cfg_.metrics.listen + ": " + e.what());
      rc = 1;
    }
  }

  if (rc == 0) {
    started_ns_ = mono_ns();
    stats_.start_unix.store(time(nullptr));
    load_statics();
    for (uint32_t i = 0; i < dp_->n_ports(); ++i) {
      const auto& ps = dp_->port(i);
      log_info("port " + ps.name + " (" + ps.dpdk_name + ", " + ps.driver + ") mac " +
               cfg::format_mac(ps.mac) + " link " + (ps.link_up ? "up" : "down") + ", " +
               std::to_string(ps.rx_queues) + " RX / " + std::to_string(ps.tx_queues) +
               " TX queues");
      announce_port(i, started_ns_);
      vrrp_->on_link(i, ps.link_up, started_ns_);
    }
    if (sync_) sync_tick(started_ns_);  // demoted before the first election if resyncing
    vrrp_->start(started_ns_);
    log_info("ready: " + std::to_string(dp_->n_workers()) + " worker(s), control socket " +
             cfg_.control.socket + (exposer_ ? ", metrics on " + cfg_.metrics.listen : ""));
  }

  std::vector<pollfd> fds;
  while (rc == 0 && !stop_) {
    fds.clear();
    fds.push_back({sfd, POLLIN, 0});
    api_->append_pollfds(fds);
    // Kernel TAPs and health-check transitions wake the loop too (on_timer handles them).
    for (const auto& t : taps_)
      if (t) fds.push_back({t->fd(), POLLIN, 0});
    if (health_) fds.push_back({health_->notify_fd(), POLLIN, 0});
    // Sleep until the next VRRP deadline (sub-millisecond) or one tick, whichever is first.
    uint64_t wait_ns = uint64_t{kTickMs} * 1'000'000;
    uint64_t due = vrrp_->next_deadline();
    for (const auto& a : announcements_) due = std::min(due, a.next_ns);
    if (const uint64_t t = mono_ns(); due != UINT64_MAX)
      wait_ns = due <= t ? 0 : std::min(wait_ns, due - t);
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000),
                static_cast<long>(wait_ns % 1'000'000'000)};
    int n = ppoll(fds.data(), fds.size(), &ts, nullptr);
    if (n < 0 && errno != EINTR) {
      log_error(std::string("poll: ") + std::strerror(errno));
      rc = 1;
      break;
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
          log_info("SIGHUP: reloading " + cfg_.file);
          reload();
        } else {
          log_info(std::string("received ") + strsignal(static_cast<int>(si.ssi_signo)) +
                   ", shutting down");
          stop_ = true;
        }
      }
    }
    if (n > 0) api_->on_ready(fds.data() + 1, fds.size() - 1);
    on_timer(mono_ns());
  }

  // Masters hand over at once (priority 0) while the ports still run.
  if (vrrp_) vrrp_->stop(mono_ns());
  health_.reset();
  // Order matters: nothing may read port stats once ports are closed.
  exposer_.reset();
  collector_.reset();
  // Workers first, then the lease keeper drains what they left in the rings, then the rings go.
  if (dp_) dp_->halt();
  if (leases_) leases_->stop();
  if (sync_) sync_->stop();
  if (dp_) dp_->stop();
  stop_forward();
  leases_.reset();
  sync_.reset();
  vrrp_.reset();
  dp_.reset();
  api_->close();
  close(sfd);
  if (shared) rte_pdump_uninit();
  rte_eal_cleanup();
  // The EAL leaves its runtime directory behind; a clean stop leaves nothing.
  if (shared && !runtime_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir, ec);
  }
  log_info(rc == 0 ? "stopped" : "exiting after an error");
  return rc;
}

void Daemon::load_statics() {
  neigh_.clear_static();
  for (const auto& s : cfg_.neighbors.statics) {
    for (uint32_t i = 0; i < cfg_.ports.size(); ++i) {
      if (cfg_.ports[i].name != s.port) continue;
      neigh_.add_static(static_cast<uint16_t>(i), s.ip, s.mac);
      mirror_neighbor(static_cast<uint16_t>(i), s.ip);
    }
  }
}

void Daemon::announce(uint32_t port, uint32_t ip, const dp::Mac& mac, uint32_t count,
                      uint32_t interval_ms, uint64_t now) {
  std::erase_if(announcements_,
                [&](const Announcement& a) { return a.port == port && a.ip == ip; });
  if (count != 0) announcements_.push_back({port, ip, mac, count, interval_ms, now});
}

void Daemon::announce_port(uint32_t port, uint64_t now) {
  for (const auto& a : cfg_.ports[port].addresses)
    announce(port, a.addr, macs_[port], cfg_.arp.garp_count, cfg_.arp.garp_interval_ms, now);
}

uint32_t Daemon::source_ip_for(uint32_t port, uint32_t target) const {
  const auto& addrs = cfg_.ports[port].addresses;
  for (const auto& a : addrs)
    if (a.contains(target)) return a.addr;
  return addrs.empty() ? 0 : addrs.front().addr;
}

void Daemon::send_arp_probe(const dp::NeighProbe& p) {
  uint8_t frame[dp::kMinFrameLen];
  const dp::Mac& mac = macs_[p.port];
  size_t len =
      dp::write_arp_frame(frame, dp::arp::kOpRequest, p.unicast ? p.mac : dp::kBroadcastMac, mac,
                          source_ip_for(p.port, p.ip), dp::Mac{}, p.ip);
  if (dp_->send_frame(p.port, frame, static_cast<uint32_t>(len))) stats_.arp_requests_sent.add();
}

void Daemon::on_timer(uint64_t now) {
  // Worker events: senders seen in ARP.
  dp::NeighborEvent evs[256];
  uint32_t n;
  while ((n = dp_->poll_events(evs, 256)) != 0) {
    for (uint32_t i = 0; i < n; ++i) {
      if (evs[i].resolve) {  // a next hop a worker could not send to
        if (!neigh_.request(evs[i].port, evs[i].ip, now)) stats_.neighbor_full.add();
        continue;
      }
      auto r = neigh_.learn(evs[i].port, evs[i].ip, evs[i].mac, evs[i].targeted != 0, now);
      if (r == dp::NeighborTable::Learn::kAdded) stats_.neighbor_learned.add();
      if (r == dp::NeighborTable::Learn::kFull) stats_.neighbor_full.add();
      if (r == dp::NeighborTable::Learn::kAdded || r == dp::NeighborTable::Learn::kUpdated)
        mirror_neighbor(evs[i].port, evs[i].ip);
    }
  }

  std::vector<dp::NeighProbe> probes;
  size_t before = neigh_.size();
  neigh_.tick(now, probes);
  for (const auto& p : probes) send_arp_probe(p);
  if (neigh_.size() < before) {
    stats_.neighbor_expired.add(before - neigh_.size());
    // Entries that gave up: the workers must stop using their MAC.
    std::vector<std::pair<uint16_t, uint32_t>> gone;
    for (const auto& [port, ip] : mirrored_)
      if (neigh_.find(port, ip) == nullptr) gone.push_back({port, ip});
    for (const auto& [port, ip] : gone) mirror_neighbor(port, ip);
  }

  // VRRP before the announcements: a takeover's first gratuitous ARPs leave in this same pass.
  static dp::PuntedFrame punted[32];
  while ((n = dp_->poll_punted(punted, 32)) != 0)
    for (uint32_t i = 0; i < n; ++i) {
      if (punted[i].kind == dp::PuntedFrame::kKernel)
        on_kernel_frame(punted[i].port, punted[i].data, punted[i].len);
      else
        vrrp_->on_frame(punted[i].port, punted[i].data, punted[i].len, now);
    }
  if (sync_) sync_tick(now);
  vrrp_->tick(now);
  poll_lb(now);

  // Gratuitous ARP (an ARP request with sender = target = our address, RFC 5227 announcement).
  for (auto& a : announcements_) {
    if (a.remaining == 0 || now < a.next_ns) continue;
    uint8_t frame[dp::kMinFrameLen];
    size_t len = dp::write_arp_frame(frame, dp::arp::kOpRequest, dp::kBroadcastMac, a.mac, a.ip,
                                     dp::Mac{}, a.ip);
    if (dp_->send_frame(a.port, frame, static_cast<uint32_t>(len))) stats_.garp_sent.add();
    --a.remaining;
    a.next_ns = now + uint64_t{a.interval_ms} * 1'000'000;
  }
  std::erase_if(announcements_, [](const Announcement& a) { return a.remaining == 0; });

  if (dhcp_cfg_ && now >= next_exhaustion_check_ns_) check_exhaustion(now);

  if (now >= next_link_poll_ns_) {
    next_link_poll_ns_ = now + kLinkPollNs;
    // The tandem_neighbors gauge: a walk of the table, so once a second, not every tick.
    std::array<uint64_t, 4> by_state{};
    neigh_.for_each([&](const dp::NeighEntry& e) { ++by_state[static_cast<size_t>(e.state)]; });
    for (size_t i = 0; i < by_state.size(); ++i) stats_.neighbors_by_state[i].store(by_state[i]);
    for (uint32_t i : dp_->poll_links()) {
      const auto& ps = dp_->port(i);
      stats_.link_changes.add();
      log_info("port " + ps.name + " link " + (ps.link_up ? "up" : "down"));
      if (ps.link_up) announce_port(i, now);
      vrrp_->on_link(i, ps.link_up, now);
    }
  }
}

void Daemon::publish_snapshot() {
  std::vector<ExtraAddress> vips;
  if (vrrp_) vrrp_->owned(vips);
  auto s = std::make_unique<dp::Snapshot>(make_snapshot(cfg_, macs_, ++generation_, vips));
  s->dhcp = dhcp_cfg_;
  s->fwd = fwd_cfg_;
  dp_->publish(std::move(s));
}

void Daemon::check_exhaustion(uint64_t now) {
  constexpr uint64_t kInterval = 10'000'000'000;
  next_exhaustion_check_ns_ = now + kInterval;
  uint64_t refused = 0;
  for (uint32_t w = 0; w < dp_->n_workers(); ++w) {
    if (const dp::DhcpEngine* e = dp_->dhcp_engine(w)) {
      const auto& r = e->server.counters().reasons;
      refused += r[static_cast<size_t>(dhcp::Reason::kPoolExhausted)].get() +
                 r[static_cast<size_t>(dhcp::Reason::kNoPool)].get();
    }
  }
  if (refused > exhausted_seen_ && leases_) {
    std::string full;
    const auto counts = leases_->pool_counts(dhcp_cfg_->pools.size());
    for (size_t p = 0; p < counts.size(); ++p) {
      const dhcp::PoolConf& pc = dhcp_cfg_->pools[p];
      const uint64_t size = pc.size();
      if (counts[p].offered + counts[p].bound + counts[p].declined >= size)
        full += (full.empty() ? "" : ", ") + cfg::format_ipv4(pc.first) + "-" +
                cfg::format_ipv4(pc.last);
    }
    log_warning("dhcp: " + std::to_string(refused - exhausted_seen_) +
                " requests found no free address in the last 10 s" +
                (full.empty() ? "" : " (full pools: " + full + ")"));
  }
  exhausted_seen_ = refused;
}

std::string Daemon::start_dhcp() {
  try {
    dhcp_cfg_ = std::make_shared<const dhcp::ServerConfig>(make_dhcp_config(cfg_));
  } catch (const std::exception& e) {
    return std::string("dhcp: ") + e.what();
  }
  const uint32_t n = dp_->n_workers();
  dp::DhcpParams p;
  // Replies wait for their lease to be durable: on disk (strict durability) and/or held by the
  // peer (strict sync).
  p.hold_for_journal = cfg_.dhcp.leases.durability == cfg::DhcpDurability::kStrict ||
                       (cfg_.sync.enabled && cfg_.sync.dhcp == cfg::SyncMode::kStrict);
  p.journal_ring_size = cfg_.dhcp.leases.queue;
  for (uint32_t w = 0; w < n; ++w) {
    auto store = std::make_unique<dhcp::LeaseStore>(lease_params(cfg_, *dhcp_cfg_, w));
    std::string err;
    if (!fill_lease_store(cfg_, *dhcp_cfg_, w, *store, &err)) return err;
    p.engines.push_back(std::make_unique<dp::DhcpEngine>(*dhcp_cfg_, std::move(store), w, n));
  }
  leases_ = std::make_unique<LeaseKeeper>(*dp_, cfg_);
  uint64_t orphans = 0;
  std::string err = leases_->open([&](const dhcp::Lease& l) {
    for (auto& e : p.engines)
      if (e->store->find(l.ip) != nullptr) {
        e->store->restore(l);
        return;
      }
    ++orphans;  // its address is in no pool any more
  });
  if (!err.empty()) return "dhcp: " + err;
  if (orphans != 0)
    log_warning("dhcp: " + std::to_string(orphans) +
                " restored lease records name addresses outside every pool (ignored)");
  return dp_->enable_dhcp(std::move(p));
}

namespace {

nlohmann::json lease_json(const dhcp::Lease& l, uint64_t now_ns) {
  static constexpr const char* kStates[] = {"free", "offered", "bound", "declined"};
  std::string client;
  static constexpr char kHex[] = "0123456789abcdef";
  for (uint8_t i = 0; i < l.client.len; ++i) {
    if (i) client.push_back(':');
    client.push_back(kHex[l.client.bytes[i] >> 4]);
    client.push_back(kHex[l.client.bytes[i] & 15]);
  }
  const int64_t left = static_cast<int64_t>(l.expires_ns / 1'000'000'000) -
                       static_cast<int64_t>(now_ns / 1'000'000'000);
  return {{"ip", cfg::format_ipv4(l.ip)},
          {"mac", cfg::format_mac(l.mac)},
          {"client_id", client},
          {"state", kStates[static_cast<size_t>(l.state) & 3]},
          {"pool", l.pool},
          {"expires_unix", l.expires_ns / 1'000'000'000},
          {"remaining_s", left},
          {"updated_unix", l.updated_ns / 1'000'000'000},
          {"valid_lifetime_s", l.expires_ns > l.updated_ns
                                   ? (l.expires_ns - l.updated_ns + 500'000'000) / 1'000'000'000
                                   : 0},
          {"generation", l.generation}};
}

}  // namespace

nlohmann::json Daemon::leases_json(const std::vector<std::string>& argv) const {
  if (!leases_) throw ApiError("dhcp is not enabled in " + cfg_.file);
  std::optional<uint32_t> ip;
  std::optional<std::array<uint8_t, 6>> mac;
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--ip" && i + 1 < argv.size()) {
      ip = cfg::parse_ipv4(argv[++i]);
      if (!ip) throw ApiError("not an IPv4 address: '" + argv[i] + "'");
    } else if (argv[i] == "--mac" && i + 1 < argv.size()) {
      mac = cfg::parse_mac(argv[++i]);
      if (!mac) throw ApiError("not a MAC address: '" + argv[i] + "'");
    } else {
      throw ApiError("usage: leases [--ip IP | --mac MAC]");
    }
  }
  const uint64_t now = wall_ns();
  nlohmann::json out = nlohmann::json::array();
  for (const dhcp::Lease& l : leases_->leases(ip, mac)) {
    nlohmann::json j = lease_json(l, now);
    if (dhcp_cfg_ && l.pool < dhcp_cfg_->pools.size()) {
      const dhcp::SubnetConf& sn = dhcp_cfg_->subnets[dhcp_cfg_->pools[l.pool].subnet];
      j["subnet"] = cfg::format_prefix(sn.network, sn.len);
      j["subnet_id"] = dhcp_cfg_->pools[l.pool].subnet + 1;
    }
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json Daemon::lease_release(const std::vector<std::string>& argv) {
  if (!leases_) throw ApiError("dhcp is not enabled in " + cfg_.file);
  if (argv.size() != 3) throw ApiError("usage: lease release IP");
  const auto ip = cfg::parse_ipv4(argv[2]);
  if (!ip) throw ApiError("not an IPv4 address: '" + argv[2] + "'");
  const auto held = leases_->leases(*ip, std::nullopt);
  if (held.empty() ||
      (held[0].state != dhcp::LeaseState::kBound && held[0].state != dhcp::LeaseState::kOffered))
    throw ApiError(argv[2] + " has no active lease");
  if (!dp_->dhcp_command({dp::DhcpCommand::kRelease, *ip}))
    throw ApiError("the workers' command queue is full; try again");
  log_info("dhcp: lease of " + argv[2] + " released by the operator");
  return {{"released", argv[2]}};
}

nlohmann::json Daemon::dhcp_pools_json() const {
  if (!leases_ || !dhcp_cfg_) throw ApiError("dhcp is not enabled in " + cfg_.file);
  const auto counts = leases_->pool_counts(dhcp_cfg_->pools.size());
  nlohmann::json out = nlohmann::json::array();
  for (size_t p = 0; p < dhcp_cfg_->pools.size(); ++p) {
    const dhcp::PoolConf& pc = dhcp_cfg_->pools[p];
    const dhcp::SubnetConf& sn = dhcp_cfg_->subnets[pc.subnet];
    const uint64_t size = pc.size();
    const auto& c = counts[p];
    const uint64_t used = c.offered + c.bound + c.declined;
    out.push_back({{"pool", p},
                   {"subnet", cfg::format_prefix(sn.network, sn.len)},
                   {"subnet_id", pc.subnet + 1},
                   {"range", cfg::format_ipv4(pc.first) + " - " + cfg::format_ipv4(pc.last)},
                   {"size", size},
                   {"offered", c.offered},
                   {"bound", c.bound},
                   {"declined", c.declined},
                   {"free", size >= used ? size - used : 0}});
  }
  return out;
}

std::string Daemon::reload() {
  cfg::LoadResult r = cfg::load_file(cfg_.file);
  std::vector<cfg::Error> errs = std::move(r.errors);
  if (errs.empty()) {
    if (std::string lim = validate_limits(*r.config); !lim.empty())
      errs.push_back({r.config->file, 0, lim});
  }
  if (errs.empty()) errs = cfg::reload_conflicts(cfg_, *r.config);
  if (errs.empty() && (r.config->lb.enabled || r.config->routing.forward)) {
    dp::Fib probe;
    if (std::string e = make_fib(*r.config, probe); !e.empty())
      errs.push_back({r.config->file, 0, e});
  }
  if (!errs.empty()) {
    last_error_ = join_errors(errs);
    stats_.reloads_failed.add();
    log_error("reload failed, keeping the running configuration:\n" + last_error_);
    return last_error_;
  }
  apply_runtime(*r.config);
  if (sync_) compute_config_digest();
  stats_.reloads_ok.add();
  stats_.last_reload_ok_unix.store(time(nullptr));
  last_error_.clear();
  log_info("configuration reloaded from " + cfg_.file + " (generation " +
           std::to_string(generation_) + ")");
  return "";
}

void Daemon::apply_runtime(const cfg::Config& next) {
  uint64_t now = mono_ns();
  // Addresses new on a port are announced; removed ones simply stop being answered.
  for (uint32_t i = 0; i < next.ports.size(); ++i) {
    for (const auto& a : next.ports[i].addresses) {
      bool had = false;
      for (const auto& old : cfg_.ports[i].addresses) had |= old.addr == a.addr;
      if (!had) announce(i, a.addr, macs_[i], next.arp.garp_count, next.arp.garp_interval_ms, now);
    }
  }
  cfg_ = next;
  // DHCP: a new server snapshot (options, times, classes, relays...); the address plan is the
  // same (reload_conflicts), so the workers' lease stores stay valid. Workers switch at their
  // next loop; the old snapshot is freed with the last dp::Snapshot that holds it.
  if (dhcp_cfg_) dhcp_cfg_ = std::make_shared<const dhcp::ServerConfig>(make_dhcp_config(cfg_));
  // Load balancer: the file's services replace the previous file's (runtime additions stay);
  // routes and checks follow. Connection timeouts go to the workers.
  if (dp_->forward_enabled()) {
    lb_services_.load_config(config_services(cfg_));
    for (uint32_t w = 0; w < dp_->n_workers(); ++w) {
      dp::ForwardEngine* e = dp_->forward_engine(w);
      e->next_timeouts = conn_params(cfg_).timeouts;
      e->timeouts_gen.fetch_add(1, std::memory_order_release);
    }
    try {
      rebuild_forward();
    } catch (const std::exception& e) {
      log_error(std::string("lb: ") + e.what());
    }
  }
  neigh_.set_params(neigh_params(cfg_));
  load_statics();
  publish_snapshot();
}

nlohmann::json Daemon::handle(const std::vector<std::string>& argv) {
  const std::string& cmd = argv[0];
  auto want = [&](size_t n) {
    if (argv.size() != n) throw ApiError("usage: wrong number of arguments for '" + cmd + "'");
  };
  if (cmd == "status") {
    want(1);
    return status_json();
  }
  if (cmd == "ports") {
    want(1);
    return ports_json();
  }
  if (cmd == "neighbors") {
    if (argv.size() >= 2 && argv[1] == "resolve") return resolve(argv);
    want(1);
    return neighbors_json();
  }
  if (cmd == "vrrp") {
    want(1);
    return vrrp_->status(mono_ns());
  }
  if (cmd == "leases") return leases_json(argv);
  if (cmd == "lease" && argv.size() >= 2 && argv[1] == "release") return lease_release(argv);
  if (cmd == "dhcp" && argv.size() == 2 && argv[1] == "pools") return dhcp_pools_json();
  if (cmd == "lb" || cmd == "ipvsadm") return lb_command(argv);
  if (cmd == "sync") {
    want(1);
    return sync_json();
  }
  if (cmd == "config" && argv.size() == 2 && argv[1] == "push") return config_push();
  if (cmd == "config" && argv.size() == 2 && argv[1] == "reload") {
    if (std::string err = reload(); !err.empty()) throw ApiError(err);
    return {{"reloaded", true}, {"file", cfg_.file}, {"generation", generation_}};
  }
  throw ApiError(
      "unknown command '" + cmd + "' (try: status, ports, neighbors, " +
      "neighbors resolve IP [PORT], vrrp, leases [--ip IP | --mac MAC], lease release IP, " +
      "dhcp pools, lb ..., ipvsadm ..., sync, config reload, config push)");
}

nlohmann::json Daemon::status_json() const {
  uint64_t up = (mono_ns() - started_ns_) / 1'000'000'000;
  nlohmann::json workers = nlohmann::json::array();
  for (uint32_t w = 0; w < dp_->n_workers(); ++w) {
    const auto& s = dp_->worker_stats(w);
    double busy = static_cast<double>(s.busy_cycles.get());
    double idle = static_cast<double>(s.idle_cycles.get());
    workers.push_back({{"worker", w},
                       {"lcore", cfg_.dataplane.worker_cores[w]},
                       {"rx_packets", s.rx_packets.get()},
                       {"tx_packets", s.tx_packets.get()},
                       {"busy_ratio", busy + idle > 0 ? busy / (busy + idle) : 0.0}});
  }
  return {{"node", cfg_.node},
          {"version", TANDEM_VERSION},
          {"git", TANDEM_GIT},
          {"pid", getpid()},
          {"uptime_s", up},
          {"idle", cfg_.dataplane.idle == cfg::IdleMode::kBusy ? "busy" : "adaptive"},
          {"workers", dp_->n_workers()},
          {"worker_stats", workers},
          {"ports", dp_->n_ports()},
          {"neighbors", neigh_.size()},
          {"snapshot_generation", generation_},
          {"config",
           {{"file", cfg_.file},
            {"reloads_ok", stats_.reloads_ok.get()},
            {"reloads_failed", stats_.reloads_failed.get()},
            {"last_error", last_error_}}}};
}

nlohmann::json Daemon::ports_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (uint32_t i = 0; i < dp_->n_ports(); ++i) {
    const auto& ps = dp_->port(i);
    rte_eth_stats st{};
    rte_eth_stats_get(ps.port_id, &st);
    nlohmann::json addrs = nlohmann::json::array();
    for (const auto& a : cfg_.ports[i].addresses)
      addrs.push_back(cfg::format_prefix(a.addr, a.len));
    out.push_back({{"name", ps.name},
                   {"device", cfg_.ports[i].device},
                   {"port_id", ps.port_id},
                   {"driver", ps.driver},
                   {"mac", cfg::format_mac(ps.mac)},
                   {"link", ps.link_up ? "up" : "down"},
                   {"speed_mbps", ps.speed_mbps},
                   {"rx_queues", ps.rx_queues},
                   {"tx_queues", ps.tx_queues},
                   {"addresses", addrs},
                   {"rx_packets", st.ipackets},
                   {"tx_packets", st.opackets},
                   {"rx_bytes", st.ibytes},
                   {"tx_bytes", st.obytes},
                   {"rx_errors", st.ierrors},
                   {"tx_errors", st.oerrors},
                   {"rx_missed", st.imissed},
                   {"rx_nombuf", st.rx_nombuf}});
  }
  return out;
}

nlohmann::json Daemon::neighbors_json() const {
  nlohmann::json out = nlohmann::json::array();
  uint64_t now = mono_ns();
  std::vector<const dp::NeighEntry*> entries;
  neigh_.for_each([&](const dp::NeighEntry& e) { entries.push_back(&e); });
  std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) {
    return a->port != b->port ? a->port < b->port : a->ip < b->ip;
  });
  for (const auto* e : entries) {
    out.push_back({{"port", cfg_.ports[e->port].name},
                   {"ip", cfg::format_ipv4(e->ip)},
                   {"mac", e->state == dp::NeighState::kIncomplete ? "" : cfg::format_mac(e->mac)},
                   {"state", dp::to_string(e->state)},
                   {"age_ms", (now - e->updated_ns) / 1'000'000}});
  }
  return out;
}

nlohmann::json Daemon::resolve(const std::vector<std::string>& argv) {
  if (argv.size() < 3 || argv.size() > 4) throw ApiError("usage: neighbors resolve IP [PORT]");
  auto ip = cfg::parse_ipv4(argv[2]);
  if (!ip) throw ApiError("not an IPv4 address: '" + argv[2] + "'");
  std::optional<uint32_t> port;
  for (uint32_t i = 0; i < cfg_.ports.size(); ++i) {
    if (argv.size() == 4) {
      if (cfg_.ports[i].name == argv[3]) port = i;
      continue;
    }
    for (const auto& a : cfg_.ports[i].addresses)
      if (!port && a.contains(*ip)) port = i;
  }
  if (!port)
    throw ApiError(argv.size() == 4 ? "no port named '" + argv[3] + "'"
                                    : argv[2] + " is not on any port's subnet (name a port)");
  if (!neigh_.request(static_cast<uint16_t>(*port), *ip, mono_ns()))
    throw ApiError("neighbour table is full");
  const dp::NeighEntry* e = neigh_.find(static_cast<uint16_t>(*port), *ip);
  return {{"port", cfg_.ports[*port].name},
          {"ip", argv[2]},
          {"state", e ? dp::to_string(e->state) : "unknown"}};
}

}  // namespace ctl
