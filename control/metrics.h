#pragma once
// The Prometheus collector: reads per-lcore counters, ethdev stats/xstats and control counters
// at scrape time. Called on the exposer's HTTP threads; never touches worker state except through
// relaxed atomic loads, and never runs on an lcore.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "control/daemon.h"
#include "dataplane/dataplane.h"

namespace ctl {

class MetricsCollector : public prometheus::Collectable {
 public:
  MetricsCollector(const dp::Dataplane& dp, const ControlStats& cs, const VrrpStats& vs,
                   std::string node)
      : dp_(dp), cs_(cs), vs_(vs), node_(std::move(node)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const dp::Dataplane& dp_;
  const ControlStats& cs_;
  const VrrpStats& vs_;
  std::string node_;
};

}  // namespace ctl
