#pragma once
// The Prometheus collector: reads per-lcore counters, ethdev stats/xstats and control counters
// at scrape time. Called on the exposer's HTTP threads; never touches worker state except through
// relaxed atomic loads, and never runs on an lcore.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/model.h"
#include "control/daemon.h"
#include "control/health_check.h"
#include "control/lb_admin.h"
#include "control/lb_translate.h"
#include "dataplane/dataplane.h"

namespace dhcp {
struct ServerConfig;
}

namespace ctl {

class LeaseKeeper;
class SyncService;

// The load balancer's labels for the metrics: which service key and real server each of the
// workers' per-id counters belongs to, and the health-check state the control thread knows.
// Built by the control thread, immutable once published (MetricsCollector::set_lb_view).
struct LbMetricsView {
  struct Real {
    std::string endpoint;         // "198.51.100.11:80" (lb::format_endpoint)
    uint32_t id = 0;              // lb::Dest::id: index of dp::ForwardEngine::dests
    uint32_t weight = 0;          // as configured (0: draining)
    bool up = true;               // false while its health check holds it out of the scheduler
    bool checked = false;         // a health check watches it: the fields below mean something
    bool has_latency = false;     // at least one attempt succeeded
    double check_latency_s = 0;   // of the last successful attempt
    uint64_t checks = 0;          // attempts, retries included
    uint64_t check_failures = 0;  // failed attempts
    uint64_t transitions = 0;     // up <-> down changes seen by the checker
  };
  struct Service {
    std::string key;    // "tcp/192.0.2.100:80": protocol/VIP:port
    std::string name;   // the config file's name; "" for services added at runtime
    std::string sched;  // "rr", "wlc", ...
    uint32_t id = 0;    // lb::Service::id: index of dp::ForwardEngine::services
    std::vector<Real> reals;
  };
  std::vector<Service> services;
};

// Control thread, after rebuild_forward() (every live service and real server then has its id;
// `ids` is only read); O(services + reals + checks). Entries whose id ran out
// (UINT32_MAX) are left out. `down`: dest ids failed by their check (what the scheduler uses);
// `checks`: HealthChecker::status() (sorted by key = dest id), empty without health checks;
// `conf`: the config file's services, for their names.
std::shared_ptr<const LbMetricsView> make_lb_metrics_view(const ServiceSet& services, const LbIds& ids,
                                                          const std::unordered_set<uint32_t>& down,
                                                          const std::vector<CheckStatus>& checks,
                                                          const std::vector<cfg::LbService>& conf);

class MetricsCollector : public prometheus::Collectable {
 public:
  // `leases` and `dhcp` are null when DHCP is disabled.
  // `sync` is null without a sync link.
  MetricsCollector(const dp::Dataplane& dp, const ControlStats& cs, const VrrpStats& vs,
                   std::string node, const LeaseKeeper* leases = nullptr,
                   std::shared_ptr<const dhcp::ServerConfig> dhcp = nullptr,
                   const SyncService* sync = nullptr)
      : dp_(dp),
        cs_(cs),
        vs_(vs),
        node_(std::move(node)),
        leases_(leases),
        dhcp_(std::move(dhcp)),
        sync_(sync) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

  // Control thread, whenever services, real servers, weights or health change (and now and then
  // for the check counters); one atomic store. Until the first call no per-service metrics are
  // exported. Scrapes read the latest view.
  void set_lb_view(std::shared_ptr<const LbMetricsView> v) { lb_view_.store(std::move(v)); }

 private:
  const dp::Dataplane& dp_;
  const ControlStats& cs_;
  const VrrpStats& vs_;
  std::string node_;
  const LeaseKeeper* leases_;
  std::shared_ptr<const dhcp::ServerConfig> dhcp_;
  const SyncService* sync_;
  // Written by the control thread (set_lb_view), read by the exposer's threads (Collect).
  std::atomic<std::shared_ptr<const LbMetricsView>> lb_view_;
};

}  // namespace ctl
