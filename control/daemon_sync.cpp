// The daemon's side of replication: setting up the sync service, coupling it with VRRP every
// control loop, the configuration digest both nodes compare, `tandemctl sync` and
// `tandemctl config push`.

#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "control/api.h"
#include "control/clock.h"
#include "control/daemon.h"
#include "control/lease_keeper.h"
#include "control/log.h"
#include "control/sync_service.h"

namespace ctl {

std::string Daemon::sync_setup() {
  dp::SyncParams p;
  p.connections = cfg_.sync.connections;
  p.conn_refresh_ns = uint64_t{cfg_.sync.connection_refresh_s} * 1'000'000'000;
  if (std::string err = dp_->enable_sync(p); !err.empty()) return "sync: " + err;
  sync_ = std::make_unique<SyncService>(*dp_, cfg_, leases_.get());
  if (leases_) leases_->set_sync(sync_.get());
  compute_config_digest();
  return "";
}

// What both nodes must agree on to replicate faithfully: the DHCP address plan and the load
// balancer's services (ports, addresses, VRRP priorities and the sync link differ per node by
// design and are left out).
void Daemon::compute_config_digest() {
  std::ostringstream o;
  o << "dhcp " << cfg_.dhcp.enabled << '\n';
  for (const auto& sn : cfg_.dhcp.subnets) {
    o << "subnet " << cfg::format_ipv4(sn.subnet.addr) << '/' << int{sn.subnet.len} << " sid "
      << sn.server_id << '\n';
    for (const auto& pl : sn.pools) o << " pool " << pl.first << '-' << pl.last << '\n';
    for (const auto& h : sn.hosts) o << " host " << h.ip << '\n';
  }
  o << "lb " << cfg_.lb.enabled << ' ' << cfg_.lb.timeouts.tcp << ' ' << cfg_.lb.timeouts.tcp_fin
    << ' ' << cfg_.lb.timeouts.udp << '\n';
  for (const auto& s : cfg_.lb.services) {
    o << "service " << lb::format_key(s.spec.key) << ' ' << static_cast<int>(s.spec.sched) << ' '
      << s.spec.persist_s << ' ' << s.spec.persist_mask << '\n';
    for (const auto& r : s.spec.reals)
      o << " real " << lb::format_endpoint(r.ip, r.port) << ' ' << static_cast<int>(r.fwd) << ' '
        << r.weight << '\n';
  }
  const std::string text = o.str();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  std::copy(md, md + config_digest_.size(), config_digest_.begin());
}

void Daemon::sync_tick(uint64_t now) {
  // Our status for the peer's heartbeats.
  sync::Status st;
  st.resynced = sync_->resynced();
  st.config_digest = config_digest_;
  st.node = cfg_.node;
  // A master whose VRRP port has no link cannot serve that VIP: it says FAULT, so the peer's
  // witness does not hold a takeover the peer should make.
  for (const auto& in : vrrp_->states()) {
    vrrp::State s = in.state;
    if (s == vrrp::State::kMaster && in.port < dp_->n_ports() && !dp_->port(in.port).link_up)
      s = vrrp::State::kFault;
    st.vrrp.push_back({in.vrid, static_cast<uint8_t>(s)});
  }
  sync_->set_status(st);

  const auto peer = sync_->peer_status();
  const bool alive = sync_->peer_alive();
  // Resyncing: the peer is alive (or may still appear: resync_wait_ms after start) and we do not
  // hold its state yet.
  const bool waiting_start =
      now - started_ns_ < uint64_t{cfg_.sync.resync_wait_ms} * 1'000'000 && !alive;
  const bool resyncing = !sync_->resynced() && (alive || waiting_start);
  vrrp_->set_sync_coupling(
      resyncing,
      [&](uint8_t vrid) {
        if (!alive || !peer) return false;
        for (const auto& v : peer->vrrp)
          if (v.vrid == vrid) return v.state == static_cast<uint8_t>(vrrp::State::kMaster);
        return false;
      },
      now);

  if (alive && peer) {
    const bool mismatch = peer->config_digest != config_digest_;
    if (mismatch != digest_mismatch_) {
      digest_mismatch_ = mismatch;
      if (mismatch)
        log_warning("sync: the peer's replicated configuration (DHCP address plan, LB services) "
                    "differs from ours; align them or run 'tandemctl config push' on the active "
                    "node");
      else
        log_info("sync: the peer's replicated configuration matches ours again");
    }
  }
  apply_pushed_config();
}

nlohmann::json Daemon::sync_json() const {
  if (!sync_) throw ApiError("sync is not configured in " + cfg_.file);
  nlohmann::json j = sync_->status_json();
  j["config_digest"] = sync::digest_hex(config_digest_);
  j["config_match"] = !digest_mismatch_;
  nlohmann::json v = nlohmann::json::array();
  for (const auto& in : vrrp_->status(mono_ns()))
    v.push_back({{"name", in["name"]},
                 {"state", in["state"]},
                 {"sync_demoted", in["sync_demoted"]},
                 {"takeover_held", in["takeover_held"]},
                 {"split_brain_alarm", in["split_brain_alarm"]}});
  j["vrrp"] = v;
  return j;
}

// The shared file named by sync.config_include (relative to the main config's directory).
namespace {

std::filesystem::path include_path(const cfg::Config& c) {
  std::filesystem::path p(c.sync.config_include);
  if (p.is_relative()) p = std::filesystem::path(c.file).parent_path() / p;
  return p;
}

}  // namespace

nlohmann::json Daemon::config_push() {
  if (!sync_) throw ApiError("sync is not configured in " + cfg_.file);
  if (cfg_.sync.config_include.empty())
    throw ApiError("nothing to push: set sync.config_include to the file both nodes share "
                   "(included by their configurations with @include)");
  const auto path = include_path(cfg_);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ApiError("cannot read " + path.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t id = 0;
  if (std::string err = sync_->push_config(path.filename().string(), text, &id); !err.empty())
    throw ApiError("config push: " + err);
  // The peer validates and applies it, then answers; wait a bounded time for that answer.
  for (int i = 0; i < 100; ++i) {
    if (auto r = sync_->push_result(id)) {
      if (!r->ok) throw ApiError("the peer refused the configuration: " + r->message);
      return {{"pushed", path.string()}, {"bytes", text.size()}, {"peer", r->message}};
    }
    usleep(50'000);
  }
  throw ApiError("config push: no answer from the peer within 5 s (see its log)");
}

// A push from the peer: written over our copy of the shared file, then a reload validates the
// whole configuration; a refusal puts the previous file back (the running configuration is
// untouched either way, as for any failed reload).
void Daemon::apply_pushed_config() {
  auto push = sync_->take_push();
  if (!push) return;
  sync::ConfigResult res;
  res.push_id = push->push_id;
  if (cfg_.sync.config_include.empty()) {
    res.message = "sync.config_include is not set on " + cfg_.node;
    sync_->answer_push(res);
    log_warning("sync: refused a configuration push: " + res.message);
    return;
  }
  const auto path = include_path(cfg_);
  if (push->name != path.filename().string()) {
    res.message = "pushed file " + push->name + " is not our sync.config_include (" +
                  path.filename().string() + ")";
    sync_->answer_push(res);
    log_warning("sync: refused a configuration push: " + res.message);
    return;
  }
  std::string previous;
  {
    std::ifstream in(path, std::ios::binary);
    previous.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto write_file = [&](const std::string& text) {
    const auto tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) return false;
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    return !ec;
  };
  if (!write_file(push->data)) {
    res.message = "cannot write " + path.string();
  } else if (std::string err = reload(); !err.empty()) {
    write_file(previous);
    res.message = err;
  } else {
    res.ok = true;
    res.message = cfg_.node + " applied " + path.string() + " (generation " +
                  std::to_string(generation_) + ")";
    std::ofstream(path.string() + ".prev", std::ios::binary | std::ios::trunc) << previous;
  }
  sync_->answer_push(res);
  if (res.ok)
    log_info("sync: configuration pushed by the peer applied: " + path.string());
  else
    log_error("sync: configuration pushed by the peer refused: " + res.message);
}

}  // namespace ctl
