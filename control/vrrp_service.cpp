#include "control/vrrp_service.h"

#include <algorithm>
#include <ctime>
#include <limits>

#include "control/log.h"

namespace ctl {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kNotifyTimeoutNs = 60'000 * kMs;
constexpr uint64_t kReapIntervalNs = 10 * kMs;
constexpr uint64_t kNotifyTag = ~uint64_t{0};

uint32_t primary_ip_for(const std::vector<cfg::Ipv4Prefix>& addrs, const cfg::VrrpInstance& in) {
  for (const auto& a : addrs)
    for (const auto& v : in.virtual_ips)
      if (a.contains(v.addr)) return a.addr;
  return addrs.empty() ? 0 : addrs.front().addr;
}

vrrp::Config fsm_config(const cfg::VrrpInstance& in, uint32_t primary) {
  vrrp::Config c;
  c.name = in.name;
  c.vrid = static_cast<uint8_t>(in.vrid);
  c.version = static_cast<uint8_t>(in.version);
  c.priority = static_cast<uint8_t>(in.priority);
  c.interval_cs = static_cast<uint16_t>(in.advert_interval_ms / 10);
  c.preempt = in.preempt;
  c.preempt_delay_ns = uint64_t{in.preempt_delay_ms} * kMs;
  c.primary_ip = primary;
  for (const auto& v : in.virtual_ips) c.addrs.push_back(v.addr);
  if (!in.auth_pass.empty()) {
    c.auth_type = 1;
    std::copy_n(in.auth_pass.begin(), std::min<size_t>(in.auth_pass.size(), 8), c.auth.begin());
  }
  return c;
}

int64_t unix_now() {
  return static_cast<int64_t>(time(nullptr));
}

}  // namespace

VrrpService::VrrpService(const cfg::Config& cfg, std::vector<dp::Mac> port_macs, Hooks hooks)
    : cfg_(cfg.vrrp), port_macs_(std::move(port_macs)), hooks_(std::move(hooks)) {
  for (const auto& p : cfg.ports) {
    port_addrs_.push_back(p.addresses);
    port_names_.push_back(p.name);
  }
  link_up_.assign(cfg.ports.size(), true);
  for (const auto& s : cfg_.scripts) scripts_.push_back({s, vrrp::RiseFall(s.rise, s.fall, true)});

  for (const auto& ic : cfg_.instances) {
    Inst in;
    in.cfg = ic;
    for (uint32_t p = 0; p < cfg.ports.size(); ++p)
      if (cfg.ports[p].name == ic.port) in.port = p;
    in.fsm =
        std::make_unique<vrrp::Instance>(fsm_config(ic, primary_ip_for(port_addrs_[in.port], ic)));
    instances_.push_back(std::move(in));
    auto st = std::make_unique<VrrpInstanceStats>();
    st->name = ic.name;
    st->priority.store(static_cast<int>(ic.priority));
    st->effective_priority.store(static_cast<int>(ic.priority));
    stats_.instances.push_back(std::move(st));
  }
  // Explicit groups first; every other instance joins one implicit group, so by default one node
  // owns every VIP.
  std::vector<bool> grouped(instances_.size(), false);
  for (const auto& g : cfg_.sync_groups) {
    Group grp{g.name, g.notify, {}, vrrp::State::kInit};
    for (const auto& name : g.instances)
      for (size_t i = 0; i < instances_.size(); ++i)
        if (instances_[i].cfg.name == name) {
          grp.members.push_back(i);
          grouped[i] = true;
        }
    groups_.push_back(std::move(grp));
  }
  // Named "(all)": unlike "default", not a name an operator gives a group, and it reads well in
  // `tandemctl vrrp` and in notify calls.
  Group rest{"(all)", "", {}, vrrp::State::kInit};
  for (size_t i = 0; i < instances_.size(); ++i)
    if (!grouped[i]) rest.members.push_back(i);
  if (!rest.members.empty()) groups_.push_back(std::move(rest));
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i : groups_[g].members) instances_[i].group = g;
}

void VrrpService::start(uint64_t now) {
  retrack(now);
  for (size_t i = 0; i < instances_.size(); ++i) {
    std::vector<vrrp::Action> acts;
    instances_[i].fsm->start(now, acts);
    apply(i, acts, now);
  }
}

void VrrpService::stop(uint64_t now) {
  for (size_t i = 0; i < instances_.size(); ++i) {
    std::vector<vrrp::Action> acts;
    instances_[i].fsm->shutdown(now, acts);
    in_sync_ = true;  // the whole node is leaving: no group following
    apply(i, acts, now);
    in_sync_ = false;
  }
}

void VrrpService::send_advert(Inst& in, uint8_t priority, uint64_t now) {
  (void)now;
  const vrrp::Config& c = in.fsm->config();
  vrrp::Advert a;
  a.version = c.version;
  a.vrid = c.vrid;
  a.priority = priority;
  a.interval_cs = c.interval_cs;
  a.addrs = c.addrs;
  a.auth_type = c.auth_type;
  a.auth = c.auth;
  const auto ck = cfg_.checksum == cfg::VrrpChecksum::kKeepalived
                      ? vrrp::Checksum::kWithPseudoHeader
                      : vrrp::Checksum::kWithoutPseudoHeader;
  const dp::Mac src_mac = in.cfg.virtual_mac ? vrrp::virtual_mac(c.vrid) : port_macs_[in.port];
  uint8_t frame[14 + 20 + 24 + 4 * vrrp::kMaxAddrs];
  auto emit = [&](const dp::Mac& dst_mac, uint32_t dst_ip) {
    size_t len = vrrp::encode_frame(frame, dst_mac, src_mac, a, ck, c.primary_ip, dst_ip);
    if (hooks_.send(in.port, frame, static_cast<uint32_t>(len)))
      stats_.instances[static_cast<size_t>(&in - instances_.data())]->adverts_sent.add();
  };
  if (in.cfg.unicast_peers.empty()) {
    emit(vrrp::multicast_mac(), vrrp::kMulticastGroup);
    return;
  }
  for (uint32_t peer : in.cfg.unicast_peers)
    if (auto mac = hooks_.resolve(in.port, peer)) emit(*mac, peer);
}

void VrrpService::announce_vips(const Inst& in) {
  const dp::Mac mac = in.cfg.virtual_mac ? vrrp::virtual_mac(static_cast<uint8_t>(in.cfg.vrid))
                                         : port_macs_[in.port];
  for (const auto& v : in.cfg.virtual_ips)
    hooks_.announce(in.port, v.addr, mac, cfg_.garp_count, cfg_.garp_interval_ms);
}

void VrrpService::notify(const std::string& script, const char* kind, const std::string& name,
                         vrrp::State s, uint8_t prio, uint64_t now) {
  if (script.empty()) return;
  std::string err = procs_.spawn({script, kind, name, vrrp::to_string(s), std::to_string(prio)},
                                 kNotifyTag, kNotifyTimeoutNs, now);
  stats_.notify_spawned.add();
  if (!err.empty()) {
    stats_.notify_failed.add();
    log_warning("vrrp: notify " + script + " failed to start: " + err);
  }
}

void VrrpService::apply(size_t i, const std::vector<vrrp::Action>& acts, uint64_t now) {
  Inst& in = instances_[i];
  VrrpInstanceStats& st = *stats_.instances[i];
  for (const vrrp::Action& a : acts) {
    switch (a.kind) {
      case vrrp::Action::kSendAdvert:
        send_advert(in, a.priority, now);
        break;
      case vrrp::Action::kReannounce:
        log_warning("vrrp " + in.cfg.name + ": another master was seen (split brain healed?); " +
                    "re-announcing the virtual IPs");
        announce_vips(in);
        break;
      case vrrp::Action::kBecome: {
        const auto prev = static_cast<vrrp::State>(st.state.load());
        st.state.store(static_cast<int>(a.state));
        st.transitions.add();
        const uint8_t prio = in.fsm->effective_priority();
        log_info("vrrp " + in.cfg.name + " (vrid " + std::to_string(in.cfg.vrid) + " on " +
                 in.cfg.port + "): " + vrrp::to_string(prev) + " -> " + vrrp::to_string(a.state) +
                 ", priority " + std::to_string(prio));
        // Replicated state first, then the data plane answers for the VIPs, then the first
        // gratuitous ARP leaves.
        if (a.state == vrrp::State::kMaster && hooks_.before_master) hooks_.before_master();
        if (a.state == vrrp::State::kMaster || prev == vrrp::State::kMaster)
          hooks_.ownership_changed();
        if (a.state == vrrp::State::kMaster) {
          st.became_master.add();
          announce_vips(in);
        }
        notify(in.cfg.notify, "INSTANCE", in.cfg.name, a.state, prio, now);
        notify(cfg_.notify, "INSTANCE", in.cfg.name, a.state, prio, now);
        if (!in_sync_ && (a.state == vrrp::State::kMaster || a.state == vrrp::State::kBackup))
          sync_group(in.group, a.state, i, now);
        break;
      }
    }
  }
}

void VrrpService::sync_group(size_t g, vrrp::State s, size_t origin, uint64_t now) {
  Group& grp = groups_[g];
  in_sync_ = true;
  for (size_t m : grp.members) {
    if (m == origin || instances_[m].fsm->state() == s) continue;
    std::vector<vrrp::Action> acts;
    instances_[m].fsm->force(s, now, acts);
    apply(m, acts, now);
  }
  in_sync_ = false;
  if (grp.state != s) {
    grp.state = s;
    notify(grp.notify, "GROUP", grp.name, s, 0, now);
  }
}

void VrrpService::retrack(uint64_t now) {
  // A sync group moves as one, so it is tracked as one: every member's priority counts the
  // tracked objects of the whole group (otherwise a node could lose one member's election and
  // win the other's, and the group would fight itself). A member with weight 0 down faults it.
  // An object tracked by several members counts once (with the first member's weight), as
  // keepalived users put the same track_script on every instance of a group.
  std::vector<std::vector<vrrp::Tracked>> tracked(groups_.size());
  std::vector<std::vector<std::string>> seen(groups_.size());
  auto track = [&](size_t g, const std::string& key, bool up, int weight) {
    if (std::find(seen[g].begin(), seen[g].end(), key) != seen[g].end()) return;
    seen[g].push_back(key);
    tracked[g].push_back({up, weight});
  };
  for (const Inst& in : instances_) {
    for (const auto& tp : in.cfg.track_ports)
      track(in.group, "port:" + tp.port, link_of(tp.port), tp.weight);
    for (const auto& ts : in.cfg.track_scripts)
      for (const auto& s : scripts_)
        if (s.cfg.name == ts.script)
          track(in.group, "script:" + ts.script, s.state.up(), ts.weight.value_or(s.cfg.weight));
    for (const auto& tv : in.cfg.track_services) {
      const auto it = service_health_.find(tv.service);
      const uint32_t healthy = it == service_health_.end() ? 0 : it->second;
      track(in.group, "service:" + tv.service, healthy >= tv.min_healthy, tv.weight);
    }
  }
  std::vector<std::optional<uint8_t>> eff(instances_.size());
  std::vector<bool> group_fault(groups_.size(), false);
  for (size_t i = 0; i < instances_.size(); ++i) {
    const Inst& in = instances_[i];
    eff[i] = vrrp::effective_priority(static_cast<uint8_t>(in.cfg.priority), tracked[in.group]);
    // Resyncing: a node without the peer's state must not win an election (pfsync's CARP
    // demotion). A master keeps its priority: it holds the state.
    if (eff[i] && sync_demoted_ && in.fsm->state() != vrrp::State::kMaster) eff[i] = 1;
    if (!eff[i]) group_fault[in.group] = true;
  }
  for (size_t i = 0; i < instances_.size(); ++i) {
    Inst& in = instances_[i];
    VrrpInstanceStats& st = *stats_.instances[i];
    std::vector<vrrp::Action> acts;
    const bool fault = group_fault[in.group];
    if (eff[i] && *eff[i] != in.fsm->effective_priority()) {
      in.fsm->set_priority(*eff[i], now, acts);
      st.effective_priority.store(*eff[i]);
    }
    if (fault != (in.fsm->state() == vrrp::State::kFault) &&
        (fault || in.fsm->state() == vrrp::State::kFault)) {
      if (in.fsm->state() != vrrp::State::kInit || fault) in.fsm->set_fault(fault, now, acts);
    }
    apply(i, acts, now);
  }
}

void VrrpService::set_sync_coupling(bool resyncing,
                                    const std::function<bool(uint8_t vrid)>& peer_master,
                                    uint64_t now) {
  if (resyncing != sync_demoted_) {
    sync_demoted_ = resyncing;
    log_info(resyncing ? "vrrp: demoted (priority 1, no takeover) until the sync link's bulk "
                         "resync completes"
                       : "vrrp: resync complete, priorities restored");
    retrack(now);
  } else if (resyncing) {
    // An instance that left MASTER during the resync is demoted too (a resync lasts ~0.1 s).
    retrack(now);
  }
  for (size_t i = 0; i < instances_.size(); ++i) {
    Inst& in = instances_[i];
    VrrpInstanceStats& st = *stats_.instances[i];
    // Only when the master's adverts are missing: a lower-priority master whose adverts arrive
    // is preempted as usual (its adverts prove the path between us works).
    const uint64_t interval_ns = uint64_t{in.fsm->master_interval_cs()} * 10'000'000;
    const bool silent = now - in.last_advert_rx_ns > 2 * interval_ns;
    const bool witness = silent && peer_master(static_cast<uint8_t>(in.cfg.vrid));
    // Held expiries happen in tick(); counted here, once per loop.
    st.held_takeovers.add(in.fsm->held_takeovers() - in.held_seen);
    in.held_seen = in.fsm->held_takeovers();
    in.fsm->set_inhibit(resyncing || witness);
    const int alarm = witness && in.fsm->holding() ? 1 : 0;
    if (alarm != st.split_brain_alarm.load()) {
      if (alarm)
        log_error("vrrp " + in.cfg.name + ": adverts from the master stopped but the sync link "
                  "says the peer is alive and MASTER: not taking over (check the " + in.cfg.port +
                  " network between the nodes)");
      else
        log_info("vrrp " + in.cfg.name + ": split-brain alarm cleared");
      st.split_brain_alarm.store(alarm);
    }
    st.demoted.store(resyncing && in.fsm->state() != vrrp::State::kMaster ? 1 : 0);
  }
}

void VrrpService::set_service_health(const std::map<std::string, uint32_t>& healthy,
                                     uint64_t now) {
  if (healthy == service_health_) return;
  service_health_ = healthy;
  retrack(now);
}

bool VrrpService::link_of(const std::string& port) const {
  for (size_t p = 0; p < port_names_.size(); ++p)
    if (port_names_[p] == port) return link_up_[p];
  return false;
}

void VrrpService::on_link(uint32_t port, bool up, uint64_t now) {
  if (port >= link_up_.size() || link_up_[port] == up) return;
  link_up_[port] = up;
  retrack(now);
}

void VrrpService::on_frame(uint32_t port, const uint8_t* frame, uint32_t len, uint64_t now) {
  if (len < 14 || dp::load_be16(frame + 12) != dp::kEtherTypeIpv4) return;
  vrrp::Invalid why{};
  auto d = vrrp::decode(frame + 14, len - 14, why);
  if (!d) {
    refuse(port, why, len >= 34 ? dp::load_be32(frame + 26) : 0, -1, now);
    return;
  }
  for (const auto& a : port_addrs_[port])
    if (a.addr == d->src_ip) return;  // our own advert looped back
  for (size_t i = 0; i < instances_.size(); ++i) {
    Inst& in = instances_[i];
    if (in.port != port || in.cfg.vrid != d->advert.vrid) continue;
    if (auto bad = in.fsm->check(d->advert)) {
      refuse(port, *bad, d->src_ip, d->advert.vrid, now);
      return;
    }
    if (d->advert.version == 3) in.peer_checksum = d->checksum;
    in.last_advert_rx_ns = now;
    stats_.instances[i]->adverts_received.add();
    std::vector<vrrp::Action> acts;
    in.fsm->on_advert(d->advert, d->src_ip, now, acts);
    apply(i, acts, now);
    return;
  }
  refuse(port, vrrp::Invalid::kVrid, d->src_ip, d->advert.vrid, now);
}

void VrrpService::refuse(uint32_t port, vrrp::Invalid why, uint32_t src, int vrid, uint64_t now) {
  stats_.invalid[static_cast<size_t>(why)].add();
  // One line per second at most: a misconfigured neighbour must not flood the log.
  if (now < next_invalid_log_ns_) {
    ++invalid_unlogged_;
    return;
  }
  next_invalid_log_ns_ = now + 1'000'000'000;
  std::string m = "vrrp: refused advert on " +
                  (port < port_names_.size() ? port_names_[port] : std::to_string(port)) +
                  " from " + cfg::format_ipv4(src);
  if (vrid >= 0) m += " (vrid " + std::to_string(vrid) + ")";
  m += ": ";
  m += vrrp::kInvalidNames[static_cast<size_t>(why)];
  if (invalid_unlogged_ > 0) m += " (+" + std::to_string(invalid_unlogged_) + " not logged)";
  invalid_unlogged_ = 0;
  log_warning(m);
}

void VrrpService::tick(uint64_t now) {
  std::vector<ProcessRunner::Finished> done;
  procs_.poll(now, done);
  bool changed = false;
  for (const auto& f : done) {
    if (f.tag == kNotifyTag) {
      if (!f.ok) stats_.notify_failed.add();
      continue;
    }
    Script& s = scripts_[f.tag];
    stats_.script_runs.add();
    if (!f.ok) stats_.script_failures.add();
    if (s.state.report(f.ok)) {
      changed = true;
      log_info("vrrp script " + s.cfg.name + " is now " + (s.state.up() ? "up" : "down") +
               (f.timed_out ? " (timed out)" : ""));
    }
  }
  if (changed) retrack(now);
  for (size_t k = 0; k < scripts_.size(); ++k) {
    Script& s = scripts_[k];
    if (now < s.next_run_ns || procs_.busy(k)) continue;
    s.next_run_ns = now + uint64_t{s.cfg.interval_ms} * kMs;
    std::string err =
        procs_.spawn({"/bin/sh", "-c", s.cfg.command}, k, uint64_t{s.cfg.timeout_ms} * kMs, now);
    if (!err.empty()) {
      stats_.script_failures.add();
      if (s.state.report(false)) retrack(now);
    }
  }
  for (size_t i = 0; i < instances_.size(); ++i) {
    Inst& in = instances_[i];
    const uint64_t due = in.fsm->next_deadline();
    if (now < due) continue;
    const bool was_master = in.fsm->state() == vrrp::State::kMaster;
    std::vector<vrrp::Action> acts;
    in.fsm->tick(now, acts);
    // A master's timer-driven advert: how late did it leave?
    if (was_master && !acts.empty() && acts.front().kind == vrrp::Action::kSendAdvert) {
      const uint64_t late = now - due;
      size_t b = 0;
      while (b < VrrpStats::kJitterBounds.size() &&
             static_cast<double>(late) / 1e9 > VrrpStats::kJitterBounds[b])
        ++b;
      stats_.jitter_buckets[b].add();
      stats_.jitter_count.add();
      stats_.jitter_sum_ns.fetch_add(late, std::memory_order_relaxed);
    }
    apply(i, acts, now);
  }
  if (cfg_.garp_refresh_s != 0 && now >= next_refresh_ns_) {
    if (next_refresh_ns_ != 0)
      for (const auto& in : instances_)
        if (in.fsm->state() == vrrp::State::kMaster) announce_vips(in);
    next_refresh_ns_ = now + uint64_t{cfg_.garp_refresh_s} * 1000 * kMs;
  }
}

uint64_t VrrpService::next_deadline() const {
  uint64_t d = std::numeric_limits<uint64_t>::max();
  for (const auto& in : instances_) d = std::min(d, in.fsm->next_deadline());
  for (const auto& s : scripts_) d = std::min(d, s.next_run_ns);
  return d;
}

void VrrpService::reload(const cfg::Config& c, uint64_t now) {
  cfg_.checksum = c.vrrp.checksum;
  cfg_.garp_count = c.vrrp.garp_count;
  cfg_.garp_interval_ms = c.vrrp.garp_interval_ms;
  cfg_.garp_refresh_s = c.vrrp.garp_refresh_s;
  cfg_.notify = c.vrrp.notify;
  std::vector<Script> scripts;
  for (const auto& s : c.vrrp.scripts) {
    Script next{s, vrrp::RiseFall(s.rise, s.fall, true)};
    for (const auto& old : scripts_)
      if (old.cfg.name == s.name) {
        next.state = old.state;
        next.next_run_ns = old.next_run_ns;
      }
    scripts.push_back(std::move(next));
  }
  scripts_ = std::move(scripts);
  cfg_.scripts = c.vrrp.scripts;
  // The instance set is unchanged (reload_conflicts refuses otherwise): same order, same names.
  for (size_t i = 0; i < instances_.size() && i < c.vrrp.instances.size(); ++i) {
    Inst& in = instances_[i];
    const auto& nc = c.vrrp.instances[i];
    in.cfg.priority = nc.priority;
    in.cfg.track_ports = nc.track_ports;
    in.cfg.track_scripts = nc.track_scripts;
    in.cfg.track_services = nc.track_services;
    in.cfg.notify = nc.notify;
    in.cfg.preempt = nc.preempt;
    in.cfg.preempt_delay_ms = nc.preempt_delay_ms;
    in.fsm->set_preempt(nc.preempt, uint64_t{nc.preempt_delay_ms} * kMs);
    stats_.instances[i]->priority.store(static_cast<int>(nc.priority));
  }
  for (auto& g : groups_)
    for (const auto& ng : c.vrrp.sync_groups)
      if (ng.name == g.name) g.notify = ng.notify;
  retrack(now);
}

void VrrpService::owned(std::vector<ExtraAddress>& out) const {
  for (const auto& in : instances_) {
    if (in.fsm->state() != vrrp::State::kMaster) continue;
    const dp::Mac mac = in.cfg.virtual_mac ? vrrp::virtual_mac(static_cast<uint8_t>(in.cfg.vrid))
                                           : port_macs_[in.port];
    for (const auto& v : in.cfg.virtual_ips)
      out.push_back({in.port, v, in.cfg.virtual_mac ? std::optional<dp::Mac>(mac) : std::nullopt});
  }
}

std::vector<VrrpService::InstanceState> VrrpService::states() const {
  std::vector<InstanceState> out;
  out.reserve(instances_.size());
  for (const Inst& in : instances_)
    out.push_back({static_cast<uint8_t>(in.cfg.vrid), in.fsm->state(), in.port});
  return out;
}

nlohmann::json VrrpService::status(uint64_t now) const {
  nlohmann::json out = nlohmann::json::array();
  const int64_t wall = unix_now();
  for (size_t i = 0; i < instances_.size(); ++i) {
    const Inst& in = instances_[i];
    const vrrp::Instance& f = *in.fsm;
    const VrrpInstanceStats& st = *stats_.instances[i];
    nlohmann::json vips = nlohmann::json::array();
    for (const auto& v : in.cfg.virtual_ips)
      vips.push_back(cfg::format_ipv4(v.addr) + "/" + std::to_string(v.len));
    const uint64_t since_ns = f.last_transition_ns() ? now - f.last_transition_ns() : 0;
    nlohmann::json j = {
        {"name", in.cfg.name},
        {"port", in.cfg.port},
        {"vrid", in.cfg.vrid},
        {"version", in.cfg.version},
        {"state", vrrp::to_string(f.state())},
        {"priority", in.cfg.priority},
        {"effective_priority", f.effective_priority()},
        {"master", f.master_ip() ? cfg::format_ipv4(f.master_ip()) : ""},
        {"advert_interval_ms", uint64_t{f.master_interval_cs()} * 10},
        {"configured_interval_ms", in.cfg.advert_interval_ms},
        {"preempt", in.cfg.preempt},
        {"virtual_ips", vips},
        {"virtual_mac", in.cfg.virtual_mac},
        {"group", groups_[in.group].name},
        {"transitions", f.transitions()},
        {"sync_demoted", st.demoted.load() != 0},
        {"takeover_held", f.holding()},
        {"split_brain_alarm", st.split_brain_alarm.load() != 0},
        {"held_takeovers", f.held_takeovers()},
        {"last_transition_unix",
         f.last_transition_ns() ? wall - static_cast<int64_t>(since_ns / 1'000'000'000) : 0},
        {"adverts_sent", st.adverts_sent.get()},
        {"adverts_received", st.adverts_received.get()},
        {"peer_checksum", !in.peer_checksum                                        ? ""
                          : *in.peer_checksum == vrrp::Checksum::kWithPseudoHeader ? "keepalived"
                                                                                   : "rfc9568"},
    };
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace ctl
