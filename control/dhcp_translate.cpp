#include "control/dhcp_translate.h"

#include <algorithm>
#include <span>
#include <stdexcept>
#include <vector>

namespace ctl {
namespace {

dhcp::LeaseTimes times(const cfg::DhcpLeaseTime& t) {
  return {t.default_s, t.min_s, t.max_s};
}

uint32_t table(dhcp::ServerConfig& sc, const std::vector<cfg::DhcpOption>& opts) {
  if (opts.empty()) return dhcp::kNoIndex;
  dhcp::OptionTable t;
  for (const cfg::DhcpOption& o : opts) t.set(o.code, o.data);
  return sc.add_table(t);
}

dhcp::HostKey host_key(cfg::DhcpHostKey k) {
  switch (k) {
    case cfg::DhcpHostKey::kMac:
      return dhcp::HostKey::kMac;
    case cfg::DhcpHostKey::kClientId:
      return dhcp::HostKey::kClientId;
    case cfg::DhcpHostKey::kCircuitId:
      return dhcp::HostKey::kCircuitId;
    case cfg::DhcpHostKey::kRemoteId:
      break;
  }
  return dhcp::HostKey::kRemoteId;
}

dhcp::ClassMatch::Field field(cfg::DhcpMatch::Field f) {
  switch (f) {
    case cfg::DhcpMatch::Field::kVendorClass:
      return dhcp::ClassMatch::Field::kVendorClass;
    case cfg::DhcpMatch::Field::kCircuitId:
      return dhcp::ClassMatch::Field::kCircuitId;
    case cfg::DhcpMatch::Field::kRemoteId:
      break;
  }
  return dhcp::ClassMatch::Field::kRemoteId;
}

}  // namespace

namespace {

struct Slice {
  uint32_t pool, first, last;
};

// The addresses worker `worker` owns: its contiguous share of every pool, minus the reserved
// addresses whose client another worker owns, plus those of its own clients lying elsewhere
// (dhcp::owner_of decides, as it does for requests).
std::vector<Slice> worker_slices(const cfg::Config& c, const dhcp::ServerConfig& sc,
                                 uint32_t worker) {
  const auto n = static_cast<uint32_t>(std::max<size_t>(c.dataplane.worker_cores.size(), 1));
  std::vector<Slice> out;
  if (worker >= n) return out;
  struct Moved {
    uint32_t ip, pool, owner;
  };
  std::vector<Moved> moved;
  for (const dhcp::HostConf& h : sc.hosts)
    if (h.pool != dhcp::kNoIndex) moved.push_back({h.ip, h.pool, dhcp::owner_of(sc, h, n)});
  std::sort(moved.begin(), moved.end(), [](const Moved& a, const Moved& b) { return a.ip < b.ip; });
  for (uint32_t p = 0; p < sc.pools.size(); ++p) {
    const uint64_t first = sc.pools[p].first, size = uint64_t{sc.pools[p].last} - first + 1;
    const uint64_t lo = first + size * worker / n, end = first + size * (worker + 1) / n;
    uint64_t cur = lo;
    for (const Moved& m : moved) {
      if (m.pool != p) continue;
      const bool inside = m.ip >= lo && m.ip < end;
      if (inside && m.owner != worker) {
        if (cur < m.ip) out.push_back({p, static_cast<uint32_t>(cur), m.ip - 1});
        cur = uint64_t{m.ip} + 1;
      } else if (!inside && m.owner == worker) {
        out.push_back({p, m.ip, m.ip});
      }
    }
    if (cur < end) out.push_back({p, static_cast<uint32_t>(cur), static_cast<uint32_t>(end - 1)});
  }
  return out;
}

}  // namespace

dhcp::ServerConfig make_dhcp_config(const cfg::Config& c) {
  const cfg::Dhcp& d = c.dhcp;
  dhcp::ServerConfig sc;
  if (d.classes.size() > dhcp::ServerConfig::kMaxClasses) {
    throw std::length_error("dhcp: at most 64 classes are supported, the configuration has " +
                            std::to_string(d.classes.size()));
  }
  for (const cfg::Port& p : c.ports) {
    std::vector<uint32_t> addrs;
    for (const cfg::Ipv4Prefix& a : p.addresses) addrs.push_back(a.addr);
    sc.port_addresses.push_back(std::move(addrs));
  }
  sc.global_options = table(sc, d.options);
  for (const cfg::DhcpClass& k : d.classes) {
    std::vector<dhcp::ClassMatch> ms;
    std::vector<std::span<const uint8_t>> vals;
    for (const cfg::DhcpMatch& m : k.match) {
      dhcp::ClassMatch cm;
      cm.field = field(m.field);
      cm.prefix = m.prefix;
      ms.push_back(cm);
      vals.emplace_back(m.value);
    }
    sc.add_class(ms, vals);
  }
  std::vector<std::vector<uint32_t>> relays_of;
  for (const cfg::DhcpSubnet& s : d.subnets) {
    dhcp::SubnetConf sn;
    sn.network = s.subnet.addr;
    sn.len = s.subnet.len;
    sn.port = dhcp::kNoIndex;
    for (size_t i = 0; i < c.ports.size(); ++i) {
      if (!s.port.empty() && c.ports[i].name == s.port) sn.port = static_cast<uint32_t>(i);
    }
    sn.server_id = s.server_id;
    sn.authoritative = s.authoritative;
    sn.min_secs = static_cast<uint16_t>(std::min<uint32_t>(s.min_secs, 0xffff));
    sn.renew_permille = static_cast<uint16_t>(s.renew_permille);
    sn.rebind_permille = static_cast<uint16_t>(s.rebind_permille);
    sn.lease = times(s.lease);
    sn.options = table(sc, s.options);
    const uint32_t si = sc.add_subnet(sn);
    relays_of.push_back(s.relays);
    for (const cfg::DhcpPool& p : s.pools) {
      dhcp::PoolConf pc;
      pc.first = p.first;
      pc.last = p.last;
      for (const std::string& name : p.classes) {
        for (size_t k = 0; k < d.classes.size(); ++k) {
          if (d.classes[k].name == name) pc.classes |= uint64_t{1} << k;
        }
      }
      pc.lease = times(p.lease);
      pc.options = table(sc, p.options);
      sc.add_pool(pc);
    }
    for (const cfg::DhcpHost& h : s.hosts) {
      dhcp::HostConf hc;
      hc.subnet = si;
      hc.key = host_key(h.key);
      hc.ip = h.ip;
      hc.options = table(sc, h.options);
      sc.add_host(hc, h.id);
    }
  }
  sc.limits.window_ns = uint64_t{c.dhcp.limits.window_ms} * 1'000'000;
  sc.limits.per_mac = c.dhcp.limits.requests_per_mac;
  sc.limits.per_circuit = c.dhcp.limits.requests_per_circuit;
  sc.limits.leases_per_circuit = c.dhcp.limits.leases_per_circuit;
  sc.dispatch_by_circuit = sc.limits.per_circuit != 0 || sc.limits.leases_per_circuit != 0;
  sc.finish(relays_of);
  const size_t n = c.dataplane.worker_cores.size();
  for (uint32_t w = 0; n > 1 && w < n; ++w)
    for (const Slice& s : worker_slices(c, sc, w)) sc.holders.push_back({s.first, s.last, w});
  std::sort(sc.holders.begin(), sc.holders.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return sc;
}

dhcp::LeaseStore::Params lease_params(const cfg::Config& c, const dhcp::ServerConfig& sc,
                                      uint32_t worker) {
  dhcp::LeaseStore::Params p;
  p.offer_hold_ns = uint64_t{c.dhcp.offer_hold_ms} * 1'000'000;
  p.decline_hold_ns = uint64_t{c.dhcp.decline_hold_s} * 1'000'000'000;
  uint64_t n = 0;
  for (const Slice& s : worker_slices(c, sc, worker)) n += uint64_t{s.last} - s.first + 1;
  p.max_addresses = static_cast<size_t>(std::max<uint64_t>(n, 1));
  return p;
}

bool fill_lease_store(const cfg::Config& c, const dhcp::ServerConfig& sc, uint32_t worker,
                      dhcp::LeaseStore& store, std::string* error) {
  for (const Slice& s : worker_slices(c, sc, worker)) {
    if (!store.add_range(s.pool, s.first, s.last)) {
      if (error != nullptr) {
        *error = "dhcp: lease store refused range " + cfg::format_ipv4(s.first) + " - " +
                 cfg::format_ipv4(s.last) + " (capacity or overlap)";
      }
      return false;
    }
  }
  for (const dhcp::HostConf& h : sc.hosts) {
    if (h.pool == dhcp::kNoIndex || store.find(h.ip) == nullptr) continue;  // static, or not ours
    if (!store.reserve(h.ip, dhcp::host_client_key(sc, h))) {
      if (error != nullptr) {
        *error = "dhcp: lease store refused the reservation of " + cfg::format_ipv4(h.ip);
      }
      return false;
    }
  }
  return true;
}

}  // namespace ctl
