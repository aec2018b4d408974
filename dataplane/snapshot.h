#pragma once
// The immutable view of configuration that workers read. Built by the control thread, published
// with one atomic pointer store (Dataplane::publish), read by each worker once per loop, and freed
// by the control thread after every worker reported quiescence (rte_rcu_qsbr).

#include <cstdint>
#include <memory>

#include "dataplane/local.h"

namespace dhcp {
struct ServerConfig;
}

namespace dp {

struct ForwardConfig;

inline constexpr uint32_t kMaxPorts = 16;

enum class IdleMode : uint8_t { kBusy, kAdaptive };

struct Snapshot {
  uint64_t generation = 0;
  IdleMode idle = IdleMode::kAdaptive;
  uint32_t idle_sleep_max_us = 200;
  uint32_t burst = 32;
  uint32_t n_ports = 0;
  PortView ports[kMaxPorts];  // indexed by our port index (config order), not DPDK port id
  // Every address of every port (interface addresses and held VIPs): the DHCP server answers
  // for a subnet whose server identifier is among them (dhcp::Ingress::owned).
  uint32_t n_owned = 0;
  uint32_t owned[kMaxPorts * kMaxPortAddrs] = {};
  // The DHCP server's configuration (null: DHCP disabled). Shared between snapshots while the
  // dhcp section does not change; released with the last snapshot, on the control thread.
  std::shared_ptr<const dhcp::ServerConfig> dhcp;
  // Routing and load balancing (null: neither). Shared between snapshots like dhcp.
  std::shared_ptr<const ForwardConfig> fwd;
};

}  // namespace dp
