#pragma once
// Translation of the validated configuration into what DPDK and the data plane take: EAL
// arguments, port/lcore parameters and the worker snapshot. Pure (no EAL): unit-tested.

#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "dataplane/proto.h"
#include "dataplane/snapshot.h"

namespace ctl {

// The DPDK ethdev name a port's device string probes as: the vdev name before the first comma
// ("net_af_packet0,iface=front0" → "net_af_packet0"), or the PCI address in full
// "DDDD:BB:DD.F" form.
std::string dpdk_name(const cfg::Port& p);
// The kernel interface behind a net_af_packet / net_af_xdp port (its `iface=` argument), or "".
std::string kernel_iface(const cfg::Port& p);

// Control thread, at start. argv for rte_eal_init: lcores, main lcore, memory, --no-pci unless a
// port names a PCI device (then -a for each), --vdev per virtual port (net_af_packet gets
// qpairs = workers + 1 when not set), in-memory / file-prefix / no-huge, log level, extra args.
std::vector<std::string> eal_args(const cfg::Config& c, const std::string& prog);

// An address owned beyond the configured interface addresses (a VRRP virtual IP while master),
// answered with `mac` when set (a virtual MAC), else with the port's MAC.
struct ExtraAddress {
  uint32_t port = 0;
  cfg::Ipv4Prefix addr;
  std::optional<dp::Mac> mac;
};

// The snapshot workers read: `macs` are the ports' MACs as read from DPDK (indexed like
// c.ports), `extra` the VIPs owned now. Addresses beyond dp::kMaxPortAddrs per port are refused
// by validate_limits().
dp::Snapshot make_snapshot(const cfg::Config& c, const std::vector<dp::Mac>& macs,
                           uint64_t generation, const std::vector<ExtraAddress>& extra = {});

// Data-plane limits the config parser does not know about. Returns "" or "FILE:LINE: message".
std::string validate_limits(const cfg::Config& c);

}  // namespace ctl
