#pragma once
// tandemd's control thread: owns the configuration, the data plane, the neighbour table and the
// API socket, and runs the control loop (signals, API requests, worker events, timers).
// Everything here runs on the EAL main lcore unless marked otherwise.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <set>
#include <unordered_set>
#include <vector>

#include "config/model.h"
#include "control/lb_admin.h"
#include "control/lb_translate.h"
#include "control/vrrp_service.h"
#include "dataplane/dataplane.h"
#include "dataplane/neighbor.h"
#include "dataplane/stats.h"
#include "dhcp/server.h"

namespace prometheus {
class Exposer;
}

namespace ctl {

class ApiServer;
class HealthChecker;
class KernelTap;
class LeaseKeeper;
class MetricsCollector;
class SyncService;

// Written by the control thread, read by the metrics collector (any thread).
struct ControlStats {
  dp::Counter reloads_ok, reloads_failed;
  dp::Counter arp_requests_sent, garp_sent, link_changes;
  dp::Counter neighbor_learned, neighbor_full, neighbor_expired;
  std::array<std::atomic<uint64_t>, 4> neighbors_by_state{};  // indexed by dp::NeighState
  std::atomic<int64_t> last_reload_ok_unix{0};
  std::atomic<int64_t> start_unix{0};
};

class Daemon {
 public:
  explicit Daemon(cfg::Config c);
  ~Daemon();
  // Runs until SIGTERM/SIGINT. Returns the process exit code.
  int run(const std::string& prog);

 private:
  nlohmann::json handle(const std::vector<std::string>& argv);
  nlohmann::json status_json() const;
  nlohmann::json ports_json() const;
  nlohmann::json neighbors_json() const;
  nlohmann::json resolve(const std::vector<std::string>& argv);
  // Re-reads the config file; returns "" or every error, one per line. Keeps the running
  // configuration on any error.
  std::string reload();
  void apply_runtime(const cfg::Config& next);
  void load_statics();
  // Starts `count` gratuitous ARPs for `ip` on `port`, `interval_ms` apart, sent from `mac`.
  void announce(uint32_t port, uint32_t ip, const dp::Mac& mac, uint32_t count,
                uint32_t interval_ms, uint64_t now);
  void announce_port(uint32_t port, uint64_t now);  // every interface address, arp.* settings
  void on_timer(uint64_t now);
  void send_arp_probe(const dp::NeighProbe& p);
  uint32_t source_ip_for(uint32_t port, uint32_t target) const;
  void publish_snapshot();
  // DHCP: builds the server snapshot and the workers' stores, restores the journal into them and
  // hands them to the data plane (before it starts). "" or why not.
  std::string start_dhcp();
  nlohmann::json leases_json(const std::vector<std::string>& argv) const;
  nlohmann::json lease_release(const std::vector<std::string>& argv);
  nlohmann::json dhcp_pools_json() const;
  // Once per interval: one log line if requests were refused for want of an address.
  void check_exhaustion(uint64_t now);

  // Routing and load balancing (daemon_lb.cpp). start_forward: engines, TAPs, health checks,
  // before the data plane starts. rebuild_forward: a new ForwardConfig from cfg_, the service
  // set and the health states (then publish_snapshot). poll_lb: control-loop work (health
  // transitions, TAP frames, rate estimates, neighbour mirror).
  std::string start_forward();
  void rebuild_forward();
  void poll_lb(uint64_t now);
  void mirror_neighbor(uint16_t port, uint32_t ip);
  void on_kernel_frame(uint32_t port, const uint8_t* data, uint32_t len);
  nlohmann::json lb_command(const std::vector<std::string>& argv);
  std::vector<ServiceView> lb_views() const;
  std::vector<ConnView> lb_conns();
  void stop_forward();
  void publish_lb_metrics();
  // Healthy real servers per named service, for VRRP's track_services.
  void publish_service_health();

  struct Announcement {
    uint32_t port;
    uint32_t ip;
    dp::Mac mac;
    uint32_t remaining;
    uint32_t interval_ms;
    uint64_t next_ns;
  };

  cfg::Config cfg_;
  std::unique_ptr<dp::Dataplane> dp_;
  dp::NeighborTable neigh_;
  std::unique_ptr<ApiServer> api_;
  std::shared_ptr<MetricsCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<VrrpService> vrrp_;
  std::shared_ptr<const dhcp::ServerConfig> dhcp_cfg_;  // null: DHCP disabled
  std::unique_ptr<LeaseKeeper> leases_;
  // Replication (null without a sync group). See daemon_sync.cpp.
  std::unique_ptr<SyncService> sync_;
  std::array<uint8_t, 8> config_digest_{};
  bool digest_mismatch_ = false;
  std::string sync_setup();     // before the data plane starts
  void sync_tick(uint64_t now);  // every control loop: status, VRRP coupling, pushes
  nlohmann::json sync_json() const;
  nlohmann::json config_push();
  void apply_pushed_config();
  void compute_config_digest();
  ControlStats stats_;
  // Load balancer and router.
  ServiceSet lb_services_;
  LbIds lb_ids_;
  std::shared_ptr<const dp::ForwardConfig> fwd_cfg_;  // null: neither routing nor LB
  std::unique_ptr<HealthChecker> health_;
  std::unordered_set<uint32_t> lb_down_;  // dest ids failed by their health check
  std::vector<std::unique_ptr<KernelTap>> taps_;  // by port; null without a TAP
  std::set<std::pair<uint16_t, uint32_t>> mirrored_;  // (port, ip) in the workers' cache
  struct RateSample {
    uint64_t at_ns = 0;
    std::vector<Counters> dest, service;  // totals at the previous sample, by id
    std::vector<Rates> dest_rate, service_rate;
  } rates_;
  uint64_t next_rate_ns_ = 0;
  std::string steering_outcome_;  // last hardware-steering result logged
  std::atomic<uint64_t> lb_health_transitions_{0};
  std::vector<Announcement> announcements_;

  std::vector<dp::Mac> macs_;
  uint64_t generation_ = 0;
  uint64_t started_ns_ = 0;
  uint64_t next_link_poll_ns_ = 0;
  uint64_t next_exhaustion_check_ns_ = 0;
  uint64_t exhausted_seen_ = 0;  // pool_exhausted + no_pool refusals at the last check
  std::string last_error_;
  bool stop_ = false;
};

}  // namespace ctl
