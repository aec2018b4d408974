#pragma once
// The immutable view of configuration that workers read. Built by the control thread, published
// with one atomic pointer store (Dataplane::publish), read by each worker once per loop, and freed
// by the control thread after every worker reported quiescence (rte_rcu_qsbr).

#include <cstdint>

#include "dataplane/local.h"

namespace dp {

inline constexpr uint32_t kMaxPorts = 16;

enum class IdleMode : uint8_t { kBusy, kAdaptive };

struct Snapshot {
  uint64_t generation = 0;
  IdleMode idle = IdleMode::kAdaptive;
  uint32_t idle_sleep_max_us = 200;
  uint32_t burst = 32;
  uint32_t n_ports = 0;
  PortView ports[kMaxPorts];  // indexed by our port index (config order), not DPDK port id
};

}  // namespace dp
