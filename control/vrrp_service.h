#pragma once
// VRRP on the control thread: one vrrp::Instance per configured instance, sync groups, tracking
// (port links, scripts), notify hooks, advert TX/RX through the data plane, and the statistics
// the metrics collector and `tandemctl vrrp` read. Control thread only, except stats().

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/model.h"
#include "control/process.h"
#include "control/translate.h"
#include "control/vrrp/vrrp.h"
#include "dataplane/proto.h"
#include "dataplane/stats.h"

namespace ctl {

// Read by the metrics collector from its own threads: atomics only, fixed after construction.
struct VrrpInstanceStats {
  std::string name;
  std::atomic<int> state{0};  // vrrp::State
  std::atomic<int> priority{0};
  std::atomic<int> effective_priority{0};
  dp::Counter transitions, adverts_sent, adverts_received, became_master;
  // Sync coupling: takeovers held back, and whether one is held now because the sync link says
  // the peer is alive and master while its adverts do not arrive (split brain averted: alarm).
  dp::Counter held_takeovers;
  std::atomic<int> split_brain_alarm{0};
  std::atomic<int> demoted{0};  // resync in progress: priority 1, takeovers held
};

struct VrrpStats {
  // Upper bounds (seconds) of the advert send jitter histogram buckets.
  static constexpr std::array<double, 10> kJitterBounds{0.0005, 0.001, 0.002, 0.005, 0.01,
                                                        0.02,   0.05,  0.1,   0.25,  1.0};
  std::vector<std::unique_ptr<VrrpInstanceStats>> instances;
  std::array<dp::Counter, static_cast<size_t>(vrrp::Invalid::kCount)> invalid;
  std::array<dp::Counter, kJitterBounds.size() + 1> jitter_buckets;  // last: +Inf
  dp::Counter jitter_count;
  std::atomic<uint64_t> jitter_sum_ns{0};
  dp::Counter notify_spawned, notify_failed, script_runs, script_failures;
};

class VrrpService {
 public:
  struct Hooks {
    // Sends a frame on the port's control TX queue.
    std::function<bool(uint32_t port, const uint8_t* frame, uint32_t len)> send;
    // The set of owned VIPs changed: republish the snapshot (returns once workers use it).
    std::function<void()> ownership_changed;
    // Start a series of gratuitous ARPs for (port, ip) with `mac` as sender.
    std::function<void(uint32_t port, uint32_t ip, const dp::Mac& mac, uint32_t count,
                       uint32_t interval_ms)>
        announce;
    // Neighbour lookup for unicast peers: the MAC, or nullopt (and resolution is started).
    std::function<std::optional<dp::Mac>(uint32_t port, uint32_t ip)> resolve;
    // Optional: called before an instance becomes MASTER, before the data plane answers for its
    // VIPs and before the first gratuitous ARP (replicated state must be in the workers by then).
    std::function<void()> before_master;
  };

  // `port_macs` and `port_addrs` are indexed like cfg.ports.
  VrrpService(const cfg::Config& cfg, std::vector<dp::Mac> port_macs, Hooks hooks);

  bool empty() const { return instances_.empty(); }
  void start(uint64_t now);
  // Clean shutdown: masters send priority 0 so the peer takes over at once.
  void stop(uint64_t now);
  // A punted frame (Ethernet) received on `port`.
  void on_frame(uint32_t port, const uint8_t* frame, uint32_t len, uint64_t now);
  void on_link(uint32_t port, bool up, uint64_t now);
  void tick(uint64_t now);
  uint64_t next_deadline() const;
  // The load balancer's health: healthy real servers per named service (track_services). Re-
  // evaluates tracking when a count crosses an instance's min_healthy.
  void set_service_health(const std::map<std::string, uint32_t>& healthy, uint64_t now);

  // Replication coupling, every control loop. `resyncing`: our copy of the peer's state is not
  // complete while it is alive: instances not MASTER are demoted to priority 1 and hold their
  // takeovers. `peer_master(vrid)`: the sync link says the peer is alive and MASTER of that
  // VRID and its adverts have stopped (none for two intervals): hold the takeover (split-brain
  // witness, alarmed). A master whose adverts arrive is preempted as usual.
  void set_sync_coupling(bool resyncing, const std::function<bool(uint8_t vrid)>& peer_master,
                         uint64_t now);

  // Applies what may change on reload (priorities, preemption, tracking, scripts, notify, GARP).
  void reload(const cfg::Config& cfg, uint64_t now);

  // Each instance's VRID, state and port index (the sync link's heartbeat carries them).
  struct InstanceState {
    uint8_t vrid;
    vrrp::State state;
    uint32_t port;
  };
  std::vector<InstanceState> states() const;

  // The VIPs the data plane must answer for now (instances in MASTER).
  void owned(std::vector<ExtraAddress>& out) const;
  nlohmann::json status(uint64_t now) const;
  const VrrpStats& stats() const { return stats_; }

 private:
  struct Script {
    cfg::VrrpScript cfg;
    vrrp::RiseFall state;
    uint64_t next_run_ns = 0;
  };
  struct Inst {
    cfg::VrrpInstance cfg;
    uint32_t port = 0;
    std::unique_ptr<vrrp::Instance> fsm;
    size_t group = 0;
    std::optional<vrrp::Checksum> peer_checksum;
    uint64_t last_advert_rx_ns = 0;
    uint64_t held_seen = 0;  // fsm->held_takeovers() already counted
  };
  struct Group {
    std::string name;
    std::string notify;
    std::vector<size_t> members;
    vrrp::State state = vrrp::State::kInit;
  };

  void apply(size_t i, const std::vector<vrrp::Action>& acts, uint64_t now);
  void send_advert(Inst& in, uint8_t priority, uint64_t now);
  void retrack(uint64_t now);
  // Counts a refused advert by reason and logs it (rate-limited). vrid < 0: not decoded.
  void refuse(uint32_t port, vrrp::Invalid why, uint32_t src, int vrid, uint64_t now);
  void announce_vips(const Inst& in);
  void notify(const std::string& script, const char* kind, const std::string& name, vrrp::State s,
              uint8_t prio, uint64_t now);
  void sync_group(size_t group, vrrp::State s, size_t origin, uint64_t now);
  bool link_of(const std::string& port) const;

  cfg::Vrrp cfg_;
  std::vector<dp::Mac> port_macs_;
  std::vector<std::vector<cfg::Ipv4Prefix>> port_addrs_;
  std::vector<std::string> port_names_;
  std::vector<bool> link_up_;
  Hooks hooks_;
  std::vector<Inst> instances_;
  std::vector<Group> groups_;
  std::vector<Script> scripts_;
  ProcessRunner procs_;
  VrrpStats stats_;
  uint64_t next_invalid_log_ns_ = 0;
  uint64_t invalid_unlogged_ = 0;
  uint64_t next_refresh_ns_ = 0;
  std::map<std::string, uint32_t> service_health_;  // healthy real servers by service name
  bool in_sync_ = false;  // guards against recursion while a group follows one member
  bool sync_demoted_ = false;
};

}  // namespace ctl
