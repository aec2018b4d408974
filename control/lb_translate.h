#pragma once
// The load balancer and router as the workers see them, built from the configuration and the
// running service set: the routing table (connected prefixes + static routes), the service table
// with stable ids for services and real servers, and the health-check targets. Pure (no EAL).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "config/model.h"
#include "control/health_check.h"
#include "dataplane/flow_rules.h"
#include "dataplane/forward.h"
#include "lb/model.h"

namespace ctl {

// Stable ids: a service or real server keeps its id while it exists, so the workers' per-id
// counters and connection counts stay attached to it across snapshots. Ids of removed entries
// are reused only once every id was handed out once (their counters then start from the old
// values: counters are totals, the API shows them as such).
class LbIds {
 public:
  // The id of `k`, allocated at first use. UINT32_MAX when all lb::kMaxServices are taken.
  uint32_t service(const lb::ServiceKey& k);
  // The id of real server ip:port in service `k`. UINT32_MAX when all lb::kMaxDests are taken.
  uint32_t dest(const lb::ServiceKey& k, uint32_t ip, uint16_t port);
  // The ids already given (UINT32_MAX when none): lookups that never allocate.
  uint32_t find_service(const lb::ServiceKey& k) const;
  uint32_t find_dest(const lb::ServiceKey& k, uint32_t ip, uint16_t port) const;
  // Frees the ids of every service and real server not in `live`.
  void retain(const std::vector<lb::ServiceSpec>& live);

 private:
  using SKey = std::tuple<uint8_t, uint32_t, uint16_t>;
  using DKey = std::tuple<uint8_t, uint32_t, uint16_t, uint32_t, uint16_t>;
  static SKey skey(const lb::ServiceKey& k) {
    return {static_cast<uint8_t>(k.proto), k.vip, k.port};
  }
  std::map<SKey, uint32_t> services_;
  std::map<DKey, uint32_t> dests_;
  uint32_t next_service_ = 0, next_dest_ = 0;
  std::vector<uint32_t> free_services_, free_dests_;
};

// The routing table: every port's connected prefixes, then the static routes. "" or why not.
std::string make_fib(const cfg::Config& c, dp::Fib& fib);

// The service table for the workers. `down` holds the dest ids health checks found failed (they
// stay in the service, unavailable for new connections). Throws std::runtime_error when ids run
// out.
std::shared_ptr<const dp::LbTable> make_lb_table(const std::vector<lb::ServiceSpec>& services,
                                                 LbIds& ids,
                                                 const std::unordered_set<uint32_t>& down,
                                                 uint32_t maglev_size);

// Health-check targets (key = dest id) of every real server of every service whose check (from
// the config: services defined there) is not "none".
std::vector<CheckTarget> make_check_targets(const cfg::Config& c,
                                            const std::vector<lb::ServiceSpec>& services,
                                            LbIds& ids);

// The services the configuration file defines.
std::vector<lb::ServiceSpec> config_services(const cfg::Config& c);

// The hardware steering rules for `f` with `n_workers` workers (none for one worker): for each
// service, a client-side rule on the port that holds its VIP (a port address or a VRRP virtual
// IP); for each NAT real server, a server-side rule on the port its route leaves by.
std::vector<dp::FlowRuleSpec> plan_flow_rules(const cfg::Config& c, const dp::ForwardConfig& f,
                                              uint32_t n_workers);

// Connection-table parameters of the config (lb.connections, lb.timeouts).
lb::ConnTable::Params conn_params(const cfg::Config& c);

}  // namespace ctl
