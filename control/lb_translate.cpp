#include "control/lb_translate.h"

#include <stdexcept>

namespace ctl {

namespace {

template <class Map, class Key>
uint32_t allocate(Map& m, const Key& k, uint32_t& next, std::vector<uint32_t>& free_ids,
                  uint32_t max) {
  if (const auto it = m.find(k); it != m.end()) return it->second;
  uint32_t id;
  if (next < max) {
    id = next++;
  } else if (!free_ids.empty()) {
    id = free_ids.back();
    free_ids.pop_back();
  } else {
    return UINT32_MAX;
  }
  m.emplace(k, id);
  return id;
}

}  // namespace

uint32_t LbIds::service(const lb::ServiceKey& k) {
  return allocate(services_, skey(k), next_service_, free_services_, lb::kMaxServices);
}

uint32_t LbIds::dest(const lb::ServiceKey& k, uint32_t ip, uint16_t port) {
  const DKey key{static_cast<uint8_t>(k.proto), k.vip, k.port, ip, port};
  return allocate(dests_, key, next_dest_, free_dests_, lb::kMaxDests);
}

uint32_t LbIds::find_service(const lb::ServiceKey& k) const {
  const auto it = services_.find(skey(k));
  return it == services_.end() ? UINT32_MAX : it->second;
}

uint32_t LbIds::find_dest(const lb::ServiceKey& k, uint32_t ip, uint16_t port) const {
  const auto it = dests_.find(DKey{static_cast<uint8_t>(k.proto), k.vip, k.port, ip, port});
  return it == dests_.end() ? UINT32_MAX : it->second;
}

void LbIds::retain(const std::vector<lb::ServiceSpec>& live) {
  std::map<SKey, uint32_t> s;
  std::map<DKey, uint32_t> d;
  for (const lb::ServiceSpec& spec : live) {
    if (auto it = services_.find(skey(spec.key)); it != services_.end()) {
      s.insert(*it);
      services_.erase(it);
    }
    for (const lb::RealServer& r : spec.reals) {
      const DKey key{static_cast<uint8_t>(spec.key.proto), spec.key.vip, spec.key.port, r.ip,
                     r.port};
      if (auto it = dests_.find(key); it != dests_.end()) {
        d.insert(*it);
        dests_.erase(it);
      }
    }
  }
  for (const auto& [k, id] : services_) free_services_.push_back(id);
  for (const auto& [k, id] : dests_) free_dests_.push_back(id);
  services_ = std::move(s);
  dests_ = std::move(d);
}

std::string make_fib(const cfg::Config& c, dp::Fib& fib) {
  std::vector<dp::Route> routes;
  for (uint32_t i = 0; i < c.ports.size(); ++i) {
    for (const cfg::Ipv4Prefix& a : c.ports[i].addresses) {
      dp::Route r;
      r.prefix = a.addr & a.mask();
      r.len = a.len;
      r.port = static_cast<uint16_t>(i);
      bool dup = false;
      for (const dp::Route& o : routes) dup = dup || (o.prefix == r.prefix && o.len == r.len);
      if (!dup) routes.push_back(r);  // two addresses in one subnet: one connected route
    }
  }
  for (const cfg::StaticRoute& sr : c.routing.routes) {
    dp::Route r;
    r.prefix = sr.to.addr;
    r.len = sr.to.len;
    r.gateway = sr.via;
    for (uint32_t i = 0; i < c.ports.size(); ++i)
      if (c.ports[i].name == sr.port) r.port = static_cast<uint16_t>(i);
    bool dup = false;
    for (const dp::Route& o : routes) dup = dup || (o.prefix == r.prefix && o.len == r.len);
    if (dup)
      return cfg::Error{c.file, sr.line,
                        "route to " + cfg::format_prefix(sr.to.addr, sr.to.len) +
                            " duplicates a connected prefix of a port"}
          .str();
    routes.push_back(r);
  }
  return fib.build(std::move(routes));
}

std::shared_ptr<const dp::LbTable> make_lb_table(const std::vector<lb::ServiceSpec>& services,
                                                 LbIds& ids,
                                                 const std::unordered_set<uint32_t>& down,
                                                 uint32_t maglev_size) {
  auto t = std::make_shared<dp::LbTable>();
  for (const lb::ServiceSpec& spec : services) {
    lb::Service s;
    s.key = spec.key;
    s.sched = spec.sched;
    s.persist_s = spec.persist_s;
    s.persist_mask = spec.persist_mask;
    s.id = ids.service(spec.key);
    if (s.id == UINT32_MAX)
      throw std::runtime_error("more than " + std::to_string(lb::kMaxServices) +
                               " virtual services");
    for (const lb::RealServer& r : spec.reals) {
      lb::Dest d;
      d.ip = r.ip;
      d.port = r.port;
      d.fwd = r.fwd;
      d.weight = r.weight;
      d.id = ids.dest(spec.key, r.ip, r.port);
      if (d.id == UINT32_MAX)
        throw std::runtime_error("more than " + std::to_string(lb::kMaxDests) + " real servers");
      d.available = r.weight > 0 && down.count(d.id) == 0;
      s.dests.push_back(d);
    }
    lb::build_tables(s, maglev_size);
    t->services.push_back(std::move(s));
  }
  t->build();
  return t;
}

std::vector<CheckTarget> make_check_targets(const cfg::Config& c,
                                            const std::vector<lb::ServiceSpec>& services,
                                            LbIds& ids) {
  std::vector<CheckTarget> out;
  for (const lb::ServiceSpec& spec : services) {
    const cfg::LbService* conf = nullptr;
    for (const cfg::LbService& s : c.lb.services)
      if (s.spec.key == spec.key) conf = &s;
    if (conf == nullptr || conf->check.type == cfg::LbCheck::Type::kNone) continue;
    const cfg::LbCheck& k = conf->check;
    CheckSpec cs;
    cs.type = k.type == cfg::LbCheck::Type::kHttp ? CheckSpec::Type::kHttp : CheckSpec::Type::kTcp;
    cs.port = k.port;
    cs.path = k.path;
    cs.status = k.status;
    cs.host = k.host;
    cs.interval_ms = k.interval_ms;
    cs.timeout_ms = k.timeout_ms;
    cs.retries = k.retries;
    cs.retry_delay_ms = k.retry_delay_ms;
    cs.rise = k.rise;
    cs.fall = k.fall;
    for (const lb::RealServer& r : spec.reals) {
      CheckTarget t;
      t.key = ids.dest(spec.key, r.ip, r.port);
      t.ip = r.ip;
      t.port = r.port != 0 ? r.port : spec.key.port;
      t.spec = cs;
      if (t.key != UINT32_MAX) out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<dp::FlowRuleSpec> plan_flow_rules(const cfg::Config& c, const dp::ForwardConfig& f,
                                              uint32_t n_workers) {
  std::vector<dp::FlowRuleSpec> out;
  if (n_workers <= 1 || f.lb == nullptr) return out;
  auto add = [&out](const dp::FlowRuleSpec& r) {
    for (const dp::FlowRuleSpec& o : out)
      if (o == r) return;
    out.push_back(r);
  };
  auto vip_port = [&c](uint32_t vip) -> int {
    for (uint32_t i = 0; i < c.ports.size(); ++i)
      for (const cfg::Ipv4Prefix& a : c.ports[i].addresses)
        if (a.addr == vip) return static_cast<int>(i);
    for (const cfg::VrrpInstance& in : c.vrrp.instances)
      for (const cfg::Ipv4Prefix& a : in.virtual_ips)
        if (a.addr == vip)
          for (uint32_t i = 0; i < c.ports.size(); ++i)
            if (c.ports[i].name == in.port) return static_cast<int>(i);
    return -1;
  };
  for (const lb::Service& s : f.lb->services) {
    const int vp = vip_port(s.key.vip);
    if (vp >= 0) {
      dp::FlowRuleSpec r;
      r.port = static_cast<uint16_t>(vp);
      r.side = dp::FlowRuleSpec::Side::kClient;
      r.addr = s.key.vip;
      r.proto = static_cast<uint8_t>(s.key.proto);
      r.l4_port = s.key.port;
      r.n_queues = static_cast<uint16_t>(n_workers);
      add(r);
    }
    for (const lb::Dest& d : s.dests) {
      if (d.fwd != lb::Fwd::kNat) continue;
      const dp::Fib::Hop hop = f.fib.lookup(d.ip);
      if (!hop.found) continue;
      dp::FlowRuleSpec r;
      r.port = hop.port;
      r.side = dp::FlowRuleSpec::Side::kServer;
      r.addr = d.ip;
      r.proto = static_cast<uint8_t>(s.key.proto);
      r.l4_port = d.port;
      r.n_queues = static_cast<uint16_t>(n_workers);
      add(r);
    }
  }
  return out;
}

std::vector<lb::ServiceSpec> config_services(const cfg::Config& c) {
  std::vector<lb::ServiceSpec> out;
  for (const cfg::LbService& s : c.lb.services) out.push_back(s.spec);
  return out;
}

lb::ConnTable::Params conn_params(const cfg::Config& c) {
  lb::ConnTable::Params p;
  p.capacity = c.lb.connections;
  p.timeouts.tcp_established = c.lb.timeouts.tcp;
  p.timeouts.tcp_fin = c.lb.timeouts.tcp_fin;
  p.timeouts.udp = c.lb.timeouts.udp;
  return p;
}

}  // namespace ctl
