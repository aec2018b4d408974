#include "control/translate.h"

#include <algorithm>

namespace ctl {

std::string dpdk_name(const cfg::Port& p) {
  if (p.is_pci) {
    // Short form "BB:DD.F" probes as "0000:BB:DD.F".
    return std::count(p.device.begin(), p.device.end(), ':') == 1 ? "0000:" + p.device : p.device;
  }
  return p.device.substr(0, p.device.find(','));
}

std::string kernel_iface(const cfg::Port& p) {
  if (p.is_pci || (p.device.rfind("net_af_packet", 0) != 0 && p.device.rfind("net_af_xdp", 0) != 0))
    return "";
  size_t at = p.device.find(",iface=");
  if (at == std::string::npos) return "";
  at += 7;
  return p.device.substr(at, p.device.find(',', at) - at);
}

std::vector<std::string> eal_args(const cfg::Config& c, const std::string& prog) {
  std::vector<std::string> a{prog};
  std::string lcores = std::to_string(c.dataplane.control_core);
  for (uint32_t w : c.dataplane.worker_cores) lcores += "," + std::to_string(w);
  a.insert(a.end(), {"-l", lcores, "--main-lcore", std::to_string(c.dataplane.control_core)});
  a.insert(a.end(), {"-m", std::to_string(c.eal.memory_mb)});
  bool any_pci = false;
  const std::string qpairs = std::to_string(c.dataplane.worker_cores.size() + 1);
  for (const cfg::Port& p : c.ports) {
    if (p.is_pci) {
      any_pci = true;
      a.insert(a.end(), {"-a", dpdk_name(p)});
      continue;
    }
    std::string dev = p.device;
    if (dev.rfind("net_af_packet", 0) == 0 && dev.find("qpairs=") == std::string::npos)
      dev += ",qpairs=" + qpairs;
    a.insert(a.end(), {"--vdev", dev});
  }
  // Never probe the PCI bus unless a port names a device on it: the host's own NICs live there.
  if (!any_pci) a.push_back("--no-pci");
  if (!c.eal.hugepages) {
    a.insert(a.end(), {"--no-huge", "--no-shconf"});
  } else if (c.eal.in_memory) {
    a.push_back("--in-memory");
  } else {
    a.insert(a.end(), {"--file-prefix", c.eal.file_prefix});
  }
  a.push_back("--log-level=" + c.eal.log_level);
  a.insert(a.end(), c.eal.args.begin(), c.eal.args.end());
  return a;
}

dp::Snapshot make_snapshot(const cfg::Config& c, const std::vector<dp::Mac>& macs,
                           uint64_t generation, const std::vector<ExtraAddress>& extra) {
  dp::Snapshot s;
  s.generation = generation;
  s.idle = c.dataplane.idle == cfg::IdleMode::kBusy ? dp::IdleMode::kBusy : dp::IdleMode::kAdaptive;
  s.idle_sleep_max_us = c.dataplane.idle_sleep_max_us;
  s.burst = c.dataplane.burst;
  s.n_ports = static_cast<uint32_t>(std::min<size_t>(c.ports.size(), dp::kMaxPorts));
  for (uint32_t i = 0; i < s.n_ports; ++i) {
    dp::PortView& v = s.ports[i];
    if (i < macs.size()) v.mac = macs[i];
    const auto& addrs = c.ports[i].addresses;
    v.n_addrs = static_cast<uint32_t>(std::min<size_t>(addrs.size(), dp::kMaxPortAddrs));
    for (uint32_t k = 0; k < v.n_addrs; ++k) {
      v.addrs[k] = addrs[k].addr;
      v.prefix_len[k] = addrs[k].len;
    }
    v.n_iface = v.n_addrs;
    v.mtu = c.ports[i].mtu;
    v.tap = !c.ports[i].tap.empty();
    v.forward = c.lb.enabled || c.routing.forward;
  }
  for (const ExtraAddress& e : extra) {
    if (e.port >= s.n_ports) continue;
    dp::PortView& v = s.ports[e.port];
    if (v.n_addrs >= dp::kMaxPortAddrs || v.owns(e.addr.addr)) continue;
    const uint32_t k = v.n_addrs++;
    v.addrs[k] = e.addr.addr;
    v.prefix_len[k] = e.addr.len;
    if (!e.mac) continue;
    uint32_t m = 0;
    while (m < v.n_vmacs && v.vmacs[m] != *e.mac) ++m;
    if (m == v.n_vmacs) v.vmacs[v.n_vmacs++] = *e.mac;
    v.addr_mac[k] = static_cast<uint8_t>(m + 1);
  }
  for (uint32_t i = 0; i < s.n_ports; ++i) {
    dp::PortView& v = s.ports[i];
    v.dhcp = c.dhcp.enabled;
    for (uint32_t k = 0; k < v.n_addrs && s.n_owned < std::size(s.owned); ++k)
      s.owned[s.n_owned++] = v.addrs[k];
  }
  return s;
}

std::string validate_limits(const cfg::Config& c) {
  if (c.ports.size() > dp::kMaxPorts)
    return cfg::Error{c.file, c.ports[dp::kMaxPorts].line,
                      "at most " + std::to_string(dp::kMaxPorts) + " ports are supported"}
        .str();
  for (const cfg::Port& p : c.ports) {
    size_t vips = 0;
    for (const auto& in : c.vrrp.instances)
      if (in.port == p.name) vips += in.virtual_ips.size();
    if (p.addresses.size() + vips > dp::kMaxPortAddrs)
      return cfg::Error{c.file, p.line,
                        "port '" + p.name + "' has " + std::to_string(p.addresses.size()) +
                            " addresses and " + std::to_string(vips) + " virtual IPs; at most " +
                            std::to_string(dp::kMaxPortAddrs) + " in all are supported"}
          .str();
  }
  for (const cfg::Port& p : c.ports)
    if (p.addresses.size() > dp::kMaxPortAddrs)
      return cfg::Error{c.file, p.line,
                        "port '" + p.name + "' has " + std::to_string(p.addresses.size()) +
                            " addresses; at most " + std::to_string(dp::kMaxPortAddrs) +
                            " are supported"}
          .str();
  return "";
}

}  // namespace ctl
