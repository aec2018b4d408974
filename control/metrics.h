#pragma once
// The Prometheus collector: reads per-lcore counters, ethdev stats/xstats and control counters
// at scrape time. Called on the exposer's HTTP threads; never touches worker state except through
// relaxed atomic loads, and never runs on an lcore.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <string>
#include <vector>

#include "control/daemon.h"
#include "dataplane/dataplane.h"

namespace dhcp {
struct ServerConfig;
}

namespace ctl {

class LeaseKeeper;

class MetricsCollector : public prometheus::Collectable {
 public:
  // `leases` and `dhcp` are null when DHCP is disabled.
  MetricsCollector(const dp::Dataplane& dp, const ControlStats& cs, const VrrpStats& vs,
                   std::string node, const LeaseKeeper* leases = nullptr,
                   std::shared_ptr<const dhcp::ServerConfig> dhcp = nullptr)
      : dp_(dp),
        cs_(cs),
        vs_(vs),
        node_(std::move(node)),
        leases_(leases),
        dhcp_(std::move(dhcp)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const dp::Dataplane& dp_;
  const ControlStats& cs_;
  const VrrpStats& vs_;
  std::string node_;
  const LeaseKeeper* leases_;
  std::shared_ptr<const dhcp::ServerConfig> dhcp_;
};

}  // namespace ctl
