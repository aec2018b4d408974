#include "dhcp/server.h"

#include <algorithm>
#include <cstring>

namespace dhcp {
namespace {

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;

uint64_t fnv(uint64_t h, const uint8_t* p, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

uint64_t host_hash(uint32_t subnet, HostKey kind, std::span<const uint8_t> id) noexcept {
  const uint8_t head[5] = {static_cast<uint8_t>(subnet >> 24), static_cast<uint8_t>(subnet >> 16),
                           static_cast<uint8_t>(subnet >> 8), static_cast<uint8_t>(subnet),
                           static_cast<uint8_t>(kind)};
  return fnv(fnv(kFnvBasis, head, sizeof head), id.data(), id.size());
}

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Bytes an option of `n` value bytes takes on the wire, split at 255 (RFC 3396).
size_t wire_len(size_t n) noexcept {
  return n == 0 ? 2 : n + 2 * ((n + 254) / 255);
}

// Codes the server writes itself (or that only clients send): never taken from the tables or 55.
bool server_owned(uint8_t code) noexcept {
  switch (code) {
    case opt::kPad:
    case 50:
    case opt::kLeaseTime:
    case opt::kOverload:
    case opt::kMessageType:
    case opt::kServerId:
    case opt::kParamRequest:
    case opt::kMessage:
    case opt::kMaxSize:
    case opt::kT1:
    case opt::kT2:
    case opt::kClientId:
    case opt::kRelayAgent:
    case opt::kEnd:
      return true;
    default:
      return false;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Snapshot building (control thread)

void OptionTable::set(uint8_t code, std::span<const uint8_t> value) {
  Entry& e = index_[code];
  if (!e.present) codes_.push_back(code);
  e.off = static_cast<uint32_t>(bytes_.size());
  e.len = static_cast<uint16_t>(std::min<size_t>(value.size(), 0xffff));
  e.present = true;
  bytes_.insert(bytes_.end(), value.begin(), value.begin() + e.len);
}

uint32_t ServerConfig::add_table(const OptionTable& t) {
  tables.push_back(t);
  return static_cast<uint32_t>(tables.size() - 1);
}

uint32_t ServerConfig::add_subnet(const SubnetConf& s) {
  subnets.push_back(s);
  subnets.back().network &= subnets.back().mask();
  subnets.back().first_pool = static_cast<uint32_t>(pools.size());
  subnets.back().pool_count = 0;
  return static_cast<uint32_t>(subnets.size() - 1);
}

uint32_t ServerConfig::add_pool(PoolConf p) {
  p.subnet = static_cast<uint32_t>(subnets.size() - 1);
  pools.push_back(p);
  ++subnets.back().pool_count;
  return static_cast<uint32_t>(pools.size() - 1);
}

uint32_t ServerConfig::add_host(HostConf h, std::span<const uint8_t> id) {
  h.id_off = static_cast<uint32_t>(bytes.size());
  h.id_len = static_cast<uint16_t>(id.size());
  bytes.insert(bytes.end(), id.begin(), id.end());
  h.pool = kNoIndex;
  const SubnetConf& s = subnets.at(h.subnet);
  for (uint32_t p = s.first_pool; p < s.first_pool + s.pool_count; ++p) {
    if (h.ip >= pools[p].first && h.ip <= pools[p].last) h.pool = p;
  }
  hosts.push_back(h);
  return static_cast<uint32_t>(hosts.size() - 1);
}

bool ServerConfig::add_class(std::span<const ClassMatch> matches_in,
                             std::span<const std::span<const uint8_t>> values) {
  if (classes.size() >= kMaxClasses || matches_in.size() != values.size()) return false;
  ClassConf c;
  c.first_match = static_cast<uint32_t>(matches.size());
  c.match_count = static_cast<uint32_t>(matches_in.size());
  for (size_t i = 0; i < matches_in.size(); ++i) {
    ClassMatch m = matches_in[i];
    m.off = static_cast<uint32_t>(bytes.size());
    m.len = static_cast<uint16_t>(values[i].size());
    bytes.insert(bytes.end(), values[i].begin(), values[i].end());
    matches.push_back(m);
  }
  classes.push_back(c);
  return true;
}

void ServerConfig::finish(const std::vector<std::vector<uint32_t>>& relays_of) {
  lists.clear();
  by_port.assign(port_addresses.size(), List{});
  for (size_t port = 0; port < port_addresses.size(); ++port) {
    by_port[port].off = static_cast<uint32_t>(lists.size());
    for (uint32_t s = 0; s < subnets.size(); ++s) {
      const SubnetConf& sn = subnets[s];
      bool serves = sn.port == port;
      if (sn.port == kNoIndex) {
        for (uint32_t a : port_addresses[port]) serves = serves || sn.contains(a);
      }
      if (serves) lists.push_back(s);
    }
    by_port[port].count = static_cast<uint32_t>(lists.size()) - by_port[port].off;
  }
  std::vector<std::pair<uint32_t, uint32_t>> pairs;  // (relay, subnet), subnets in file order
  for (uint32_t s = 0; s < relays_of.size() && s < subnets.size(); ++s) {
    for (uint32_t ip : relays_of[s]) pairs.emplace_back(ip, s);
  }
  std::sort(pairs.begin(), pairs.end());
  relays.clear();
  for (const auto& [ip, s] : pairs) {
    if (relays.empty() || relays.back().ip != ip) {
      relays.push_back(Relay{ip, List{static_cast<uint32_t>(lists.size()), 0}});
    }
    if (lists.size() == relays.back().subnets.off + relays.back().subnets.count &&
        (relays.back().subnets.count == 0 || lists.back() != s)) {
      lists.push_back(s);
      ++relays.back().subnets.count;
    }
  }
  by_network.resize(subnets.size());
  for (uint32_t s = 0; s < subnets.size(); ++s) by_network[s] = s;
  std::sort(by_network.begin(), by_network.end(),
            [&](uint32_t a, uint32_t b) { return subnets[a].network < subnets[b].network; });
  host_index.clear();
  for (uint32_t h = 0; h < hosts.size(); ++h) {
    const HostConf& hc = hosts[h];
    host_index.push_back(
        HostIndex{host_hash(hc.subnet, hc.key, {bytes.data() + hc.id_off, hc.id_len}), h});
  }
  std::sort(host_index.begin(), host_index.end());
}

ClientKey host_client_key(const ServerConfig& c, const HostConf& h) noexcept {
  const std::span<const uint8_t> id(c.bytes.data() + h.id_off, h.id_len);
  switch (h.key) {
    case HostKey::kMac: {
      std::array<uint8_t, 6> mac{};
      std::copy_n(id.begin(), std::min<size_t>(id.size(), 6), mac.begin());
      return ClientKey::from_mac(mac);
    }
    case HostKey::kClientId:
      return ClientKey::from_id(id);
    case HostKey::kCircuitId:
    case HostKey::kRemoteId:
      break;
  }
  // Relay-identified reservations: a key no client sends (option 61 type 0, then a marker) so
  // the reservation belongs to whoever sits behind that circuit or remote id.
  std::array<uint8_t, 2 + 256> buf{};
  buf[0] = 0x00;
  buf[1] = h.key == HostKey::kCircuitId ? 0xc1 : 0xc2;
  const size_t n = std::min<size_t>(id.size(), 256);
  std::copy_n(id.begin(), n, buf.begin() + 2);
  return ClientKey::from_id(std::span<const uint8_t>(buf.data(), n + 2));
}

// ---------------------------------------------------------------------------------------------
// Per request (worker)

// What the request says about its client, on the stack: views into the request's bytes, or into
// the buffers for options split into several instances (RFC 3396). Oversized options (more than
// a buffer holds, far beyond what real clients and relays send) count as absent.
struct Server::Client {
  ClientKey key;  // option 61, else chaddr
  std::span<const uint8_t> mac, client_id, vendor, circuit, remote;
  uint64_t classes = 0;
  std::array<uint8_t, 512> id_buf, vendor_buf, relay_buf;
};

struct Server::Reply {
  MessageType type = MessageType::kNone;
  uint32_t yiaddr = 0;
  uint32_t subnet = 0;
  uint32_t lease_s = 0;  // 0: no 51/58/59 (INFORM, NAK)
  const HostConf* host = nullptr;
  const PoolConf* pool = nullptr;
  Reason reason = Reason::kNone;
};

namespace {

std::span<const uint32_t> select_subnets(const ServerConfig& c, const Request& req,
                                         const Ingress& in) noexcept {
  if (req.giaddr != 0) {
    const auto it =
        std::lower_bound(c.relays.begin(), c.relays.end(), req.giaddr,
                         [](const ServerConfig::Relay& r, uint32_t ip) { return r.ip < ip; });
    if (it != c.relays.end() && it->ip == req.giaddr) {
      return {c.lists.data() + it->subnets.off, it->subnets.count};
    }
    // The subnet that contains giaddr: the last one whose network is not above it.
    const auto nt =
        std::upper_bound(c.by_network.begin(), c.by_network.end(), req.giaddr,
                         [&](uint32_t ip, uint32_t s) { return ip < c.subnets[s].network; });
    if (nt == c.by_network.begin()) return {};
    const uint32_t* p = &*(nt - 1);
    if (!c.subnets[*p].contains(req.giaddr)) return {};
    return {p, 1};
  }
  // A unicast renewal (RENEWING) comes without giaddr, straight from the client, which may sit
  // behind a relay: its subnet is the one holding ciaddr (as ISC dhcpd and Kea do).
  if (req.ciaddr != 0 && !in.to_broadcast) {
    const auto nt =
        std::upper_bound(c.by_network.begin(), c.by_network.end(), req.ciaddr,
                         [&](uint32_t ip, uint32_t s) { return ip < c.subnets[s].network; });
    if (nt != c.by_network.begin() && c.subnets[*(nt - 1)].contains(req.ciaddr))
      return {&*(nt - 1), 1};
  }
  if (in.port >= c.by_port.size()) return {};
  const ServerConfig::List& l = c.by_port[in.port];
  return {c.lists.data() + l.off, l.count};
}

bool match_holds(const ServerConfig& c, const ClassMatch& m,
                 std::span<const uint8_t> value) noexcept {
  if (m.len == 0 || value.size() < m.len) return false;
  if (!m.prefix && value.size() != m.len) return false;
  return std::memcmp(value.data(), c.bytes.data() + m.off, m.len) == 0;
}

uint32_t subnet_of(const ServerConfig& c, std::span<const uint32_t> cands, uint32_t ip) noexcept {
  for (uint32_t s : cands) {
    if (c.subnets[s].contains(ip)) return s;
  }
  return kNoIndex;
}

const PoolConf* pool_of(const ServerConfig& c, uint32_t subnet, uint32_t ip) noexcept {
  const SubnetConf& s = c.subnets[subnet];
  for (uint32_t p = s.first_pool; p < s.first_pool + s.pool_count; ++p) {
    if (ip >= c.pools[p].first && ip <= c.pools[p].last) return &c.pools[p];
  }
  return nullptr;
}

// The circuit-id and remote-id (first instances) in an option-82 value (RFC 3046 §2.0: code,
// length, value; a torn sub-option ends the walk).
void relay_ids(std::span<const uint8_t> relay, std::span<const uint8_t>& circuit,
               std::span<const uint8_t>& remote) noexcept {
  for (size_t i = 0; i + 2 <= relay.size();) {
    const uint8_t code = relay[i], n = relay[i + 1];
    if (i + 2 + n > relay.size()) break;
    if (code == opt::kCircuitId && circuit.empty()) circuit = relay.subspan(i + 2, n);
    if (code == opt::kRemoteId && remote.empty()) remote = relay.subspan(i + 2, n);
    i += 2 + n;
  }
}

// The reservation of a client in `subnet`, in the order of docs/configuration.md: client_id, mac,
// circuit_id, remote_id. O(log hosts).
const HostConf* lookup_host(const ServerConfig& c, uint32_t subnet,
                            std::span<const uint8_t> client_id, std::span<const uint8_t> mac,
                            std::span<const uint8_t> circuit,
                            std::span<const uint8_t> remote) noexcept {
  if (c.host_index.empty()) return nullptr;
  const auto lookup = [&](HostKey kind, std::span<const uint8_t> id) -> const HostConf* {
    if (id.empty()) return nullptr;
    const uint64_t h = host_hash(subnet, kind, id);
    auto it =
        std::lower_bound(c.host_index.begin(), c.host_index.end(), ServerConfig::HostIndex{h, 0});
    for (; it != c.host_index.end() && it->hash == h; ++it) {
      const HostConf& hc = c.hosts[it->host];
      if (hc.subnet == subnet && hc.key == kind &&
          same({c.bytes.data() + hc.id_off, hc.id_len}, id)) {
        return &hc;
      }
    }
    return nullptr;
  };
  if (const HostConf* h = lookup(HostKey::kClientId, client_id)) return h;
  if (const HostConf* h = lookup(HostKey::kMac, mac)) return h;
  if (const HostConf* h = lookup(HostKey::kCircuitId, circuit)) return h;
  return lookup(HostKey::kRemoteId, remote);
}

}  // namespace

const HostConf* Server::find_host(uint32_t subnet, const Client& cl) const noexcept {
  return lookup_host(*cfg_, subnet, cl.client_id, cl.mac, cl.circuit, cl.remote);
}

void Server::count(const Outcome& o, const Ingress& in) noexcept {
  if (o.reason != Reason::kNone && !(o.reason == Reason::kPoolExhausted && in.may_lend))
    counters_.reasons[static_cast<size_t>(o.reason)].add();
  if (o.sent != MessageType::kNone) counters_.sent[static_cast<size_t>(o.sent)].add();
  if (o.options_left_out) counters_.options_left_out.add();
  if (o.relay_info_left_out) counters_.relay_info_left_out.add();
}

bool Server::standby(std::span<const uint32_t> cands, const Ingress& in) const noexcept {
  if (cands.empty()) return false;  // counted as no_subnet by the handlers
  for (uint32_t s : cands) {
    const uint32_t sid = cfg_->subnets[s].server_id;
    if (sid == 0 || std::find(in.owned.begin(), in.owned.end(), sid) != in.owned.end())
      return false;
  }
  return true;
}

uint32_t Server::server_id(uint32_t subnet, const Ingress& in) const noexcept {
  const uint32_t sid = cfg_->subnets[subnet].server_id;
  return sid != 0 ? sid : in.port_ip;
}

uint32_t Server::lease_seconds(const Request& req, const LeaseTimes& t) const noexcept {
  if (!req.has(opt::kLeaseTime)) return t.default_s;
  // Not std::clamp: a hand-built snapshot with min_s > max_s must not be undefined behaviour.
  return std::min(std::max(req.option_ip(opt::kLeaseTime), t.min_s), t.max_s);
}

Outcome Server::handle(const Request& req, const Ingress& in, uint64_t now_ns,
                       std::span<uint8_t> out, std::vector<LeaseEvent>* events) noexcept {
  const ServerConfig& c = *cfg_;
  Client cl;
  cl.mac = req.chaddr;
  cl.client_id = req.value(opt::kClientId, cl.id_buf);
  cl.key =
      cl.client_id.empty() ? ClientKey::from_mac(req.chaddr) : ClientKey::from_id(cl.client_id);
  cl.vendor = req.value(opt::kVendorClass, cl.vendor_buf);
  relay_ids(req.value(opt::kRelayAgent, cl.relay_buf), cl.circuit, cl.remote);
  for (size_t k = 0; k < c.classes.size() && k < ServerConfig::kMaxClasses; ++k) {
    bool all = c.classes[k].match_count != 0;
    for (uint32_t m = 0; all && m < c.classes[k].match_count; ++m) {
      const ClassMatch& cm = c.matches[c.classes[k].first_match + m];
      const std::span<const uint8_t> v = cm.field == ClassMatch::Field::kVendorClass ? cl.vendor
                                         : cm.field == ClassMatch::Field::kCircuitId ? cl.circuit
                                                                                     : cl.remote;
      all = match_holds(c, cm, v);
    }
    if (all) cl.classes |= uint64_t{1} << k;
  }

  Outcome o;
  if (!in.owned.empty() && standby(select_subnets(c, req, in), in)) {
    o.reason = Reason::kStandby;
    count(o, in);
    return o;
  }
  // The circuit this client sits behind (option 82.1 with giaddr), for the per-circuit limits.
  uint64_t circuit_key = 0;
  if (!cl.circuit.empty() && (c.limits.per_circuit != 0 || c.limits.leases_per_circuit != 0)) {
    const uint8_t gi[4] = {static_cast<uint8_t>(req.giaddr >> 24),
                           static_cast<uint8_t>(req.giaddr >> 16),
                           static_cast<uint8_t>(req.giaddr >> 8), static_cast<uint8_t>(req.giaddr)};
    circuit_key = fnv(fnv(fnv(kFnvBasis, reinterpret_cast<const uint8_t*>("c"), 1), gi, 4),
                      cl.circuit.data(), cl.circuit.size());
  }
  if (limiter_ != nullptr &&
      (req.type == MessageType::kDiscover || req.type == MessageType::kRequest)) {
    const ServerConfig::Limits& lim = c.limits;
    bool ok = lim.per_mac == 0 ||
              limiter_->allow(fnv(fnv(kFnvBasis, reinterpret_cast<const uint8_t*>("m"), 1),
                                  req.chaddr.data(), req.chaddr.size()),
                              lim.per_mac, lim.window_ns, now_ns);
    if (ok && lim.per_circuit != 0 && circuit_key != 0)
      ok = limiter_->allow(circuit_key, lim.per_circuit, lim.window_ns, now_ns);
    if (!ok) {
      o.reason = Reason::kRateLimited;
      count(o, in);
      return o;
    }
  }
  const bool per_circuit_leases = circuits_ != nullptr && c.limits.leases_per_circuit != 0;
  if (per_circuit_leases && circuit_key != 0 && req.type == MessageType::kDiscover &&
      circuits_->count(circuit_key) >= c.limits.leases_per_circuit &&
      store_->find(cl.key) == nullptr) {
    o.reason = Reason::kCircuitFull;
    count(o, in);
    return o;
  }
  const size_t first_event = events != nullptr ? events->size() : 0;
  switch (req.type) {
    case MessageType::kDiscover:
      o = discover(req, in, cl, now_ns, out, events);
      break;
    case MessageType::kRequest:
      o = request(req, in, cl, now_ns, out, events);
      break;
    case MessageType::kInform:
      o = inform(req, in, cl, out);
      break;
    case MessageType::kRelease:
    case MessageType::kDecline:
      o = release_or_decline(req, in, cl, now_ns, events);
      break;
    default:
      o.reason = Reason::kNotServed;
      break;
  }
  if (per_circuit_leases && events != nullptr)
    for (size_t i = first_event; i < events->size(); ++i) track((*events)[i], circuit_key);
  count(o, in);
  return o;
}

void Server::track(const LeaseEvent& e, uint64_t circuit_key) noexcept {
  if (circuits_ == nullptr || cfg_->limits.leases_per_circuit == 0) return;
  const uint32_t ip = e.lease.ip;
  const uint32_t mark = store_->mark(ip);
  const bool held = e.lease.state == LeaseState::kOffered || e.lease.state == LeaseState::kBound;
  if (held && mark == 0 && circuit_key != 0) {
    store_->set_mark(ip, circuits_->add(circuit_key));
  } else if (!held && mark != 0) {
    circuits_->remove(mark);
    store_->set_mark(ip, 0);
  }
}

Outcome Server::discover(const Request& req, const Ingress& in, const Client& cl, uint64_t now,
                         std::span<uint8_t> out, std::vector<LeaseEvent>* events) noexcept {
  const ServerConfig& c = *cfg_;
  Outcome o;
  const std::span<const uint32_t> cands = select_subnets(c, req, in);
  if (cands.empty()) return o.reason = Reason::kNoSubnet, o;
  if (req.secs < c.subnets[cands[0]].min_secs) return o.reason = Reason::kMinSecs, o;
  if (out.size() < kMinReplyLen) return o.reason = Reason::kNoRoom, o;

  Reply r;
  r.type = MessageType::kOffer;
  // A reservation in any of the subnets wins.
  for (uint32_t s : cands) {
    const HostConf* h = find_host(s, cl);
    if (h == nullptr) continue;
    r.subnet = s;
    r.host = h;
    if (h->pool == kNoIndex) {  // outside the pools: static, no lease record
      r.yiaddr = h->ip;
      r.lease_s = lease_seconds(req, c.subnets[s].lease);
      return build(req, in, r, out);
    }
    r.pool = &c.pools[h->pool];
    const auto ip = store_->offer(h->pool, host_client_key(c, *h), req.chaddr, h->ip, now, events);
    if (!ip) return o.reason = Reason::kPoolExhausted, o;  // its address is quarantined
    r.yiaddr = *ip;
    r.lease_s = lease_seconds(req, r.pool->lease);
    return build(req, in, r, out);
  }

  const uint32_t requested = req.option_ip(50);
  const auto try_pool = [&](uint32_t p) {
    const auto ip = store_->offer(p, cl.key, req.chaddr, requested, now, events);
    if (!ip) return false;
    r.subnet = c.pools[p].subnet;
    r.pool = &c.pools[p];
    r.yiaddr = *ip;
    r.lease_s = lease_seconds(req, r.pool->lease);
    return true;
  };
  // The client's current lease (offered or bound), when it is in a pool it may still use.
  if (const Lease* cur = store_->find(cl.key);
      cur != nullptr && cur->pool < c.pools.size() &&
      pool_allowed(c.pools[cur->pool], cl.classes) &&
      std::find(cands.begin(), cands.end(), c.pools[cur->pool].subnet) != cands.end() &&
      try_pool(cur->pool)) {
    return build(req, in, r, out);
  }
  bool any = false;
  for (uint32_t s : cands) {
    const SubnetConf& sn = c.subnets[s];
    for (int pass = 0; pass < 2; ++pass) {  // pools kept for the client's classes, then open ones
      for (uint32_t p = sn.first_pool; p < sn.first_pool + sn.pool_count; ++p) {
        const uint64_t kept = c.pools[p].classes;
        if (pass == 0 ? (kept & cl.classes) == 0 : kept != 0) continue;
        any = true;
        if (try_pool(p)) return build(req, in, r, out);
      }
    }
  }
  o.reason = any ? Reason::kPoolExhausted : Reason::kNoPool;
  return o;
}

Outcome Server::request(const Request& req, const Ingress& in, const Client& cl, uint64_t now,
                        std::span<uint8_t> out, std::vector<LeaseEvent>* events) noexcept {
  const ServerConfig& c = *cfg_;
  Outcome o;
  const std::span<const uint32_t> cands = select_subnets(c, req, in);
  if (cands.empty()) return o.reason = Reason::kNoSubnet, o;
  if (req.secs < c.subnets[cands[0]].min_secs) return o.reason = Reason::kMinSecs, o;

  uint32_t ip = 0;
  if (req.has(opt::kServerId)) {  // SELECTING
    const uint32_t sid = req.option_ip(opt::kServerId);
    bool ours = false;
    for (uint32_t s : cands) ours = ours || server_id(s, in) == sid;
    if (!ours) {
      // The client chose another server: free what we offered it now, not at offer_hold.
      const Lease* l = store_->find(cl.key);
      if (l != nullptr && l->state == LeaseState::kOffered) {
        store_->release(cl.key, l->ip, now, events);
      }
      return o.reason = Reason::kNotForUs, o;
    }
    ip = req.option_ip(50);
    if (ip == 0) ip = req.ciaddr;  // not RFC 2131, but unambiguous
  } else if (req.ciaddr != 0) {    // RENEWING / REBINDING
    ip = req.ciaddr;
  } else {  // INIT-REBOOT
    ip = req.option_ip(50);
  }
  if (ip == 0) return o.reason = Reason::kBadRequest, o;

  const uint32_t s = subnet_of(c, cands, ip);
  if (s == kNoIndex) return nak_or_ignore(req, in, cands[0], Reason::kWrongSubnet, out);
  Reply r;
  r.type = MessageType::kAck;
  r.subnet = s;
  r.yiaddr = ip;
  ClientKey key = cl.key;
  uint32_t pool = kNoIndex;
  if (const HostConf* h = find_host(s, cl); h != nullptr) {
    if (h->ip != ip) return nak_or_ignore(req, in, s, Reason::kNotAllowed, out);
    r.host = h;
    if (h->pool == kNoIndex) {
      r.lease_s = lease_seconds(req, c.subnets[s].lease);
      return build(req, in, r, out);
    }
    key = host_client_key(c, *h);
    pool = h->pool;
  } else {
    const PoolConf* p = pool_of(c, s, ip);
    if (p == nullptr) return nak_or_ignore(req, in, s, Reason::kUnknownAddress, out);
    if (!pool_allowed(*p, cl.classes)) return nak_or_ignore(req, in, s, Reason::kNotAllowed, out);
    pool = static_cast<uint32_t>(p - c.pools.data());
  }
  r.pool = &c.pools[pool];
  r.lease_s = lease_seconds(req, r.pool->lease);
  switch (
      store_->commit(pool, key, req.chaddr, ip, uint64_t{r.lease_s} * 1'000'000'000, now, events)) {
    case LeaseStore::Commit::kOk:
      return build(req, in, r, out);
    case LeaseStore::Commit::kNotInPool:
      return nak_or_ignore(req, in, s, Reason::kWrongSubnet, out);
    case LeaseStore::Commit::kTaken:
      return nak_or_ignore(req, in, s, Reason::kTaken, out);
    case LeaseStore::Commit::kUnknown:
      break;
  }
  // Not in this worker's ranges: no record, stay silent (RFC 2131 §4.3.2).
  return o.reason = Reason::kUnknownAddress, o;
}

Outcome Server::inform(const Request& req, const Ingress& in, const Client& cl,
                       std::span<uint8_t> out) noexcept {
  const ServerConfig& c = *cfg_;
  Outcome o;
  const std::span<const uint32_t> cands = select_subnets(c, req, in);
  if (cands.empty()) return o.reason = Reason::kNoSubnet, o;
  uint32_t s = subnet_of(c, cands, req.ciaddr);
  if (s == kNoIndex) s = cands[0];
  Reply r;
  r.type = MessageType::kAck;
  r.subnet = s;
  r.host = find_host(s, cl);
  r.pool = pool_of(c, s, req.ciaddr);
  return build(req, in, r, out);
}

Outcome Server::release_or_decline(const Request& req, const Ingress& in, const Client& cl,
                                   uint64_t now, std::vector<LeaseEvent>* events) noexcept {
  const ServerConfig& c = *cfg_;
  Outcome o;
  const std::span<const uint32_t> cands = select_subnets(c, req, in);
  if (cands.empty()) return o.reason = Reason::kNoSubnet, o;
  if (req.has(opt::kServerId)) {
    const uint32_t sid = req.option_ip(opt::kServerId);
    bool ours = false;
    for (uint32_t s : cands) ours = ours || server_id(s, in) == sid;
    if (!ours) return o.reason = Reason::kNotForUs, o;
  }
  const bool decline = req.type == MessageType::kDecline;
  const uint32_t ip = decline ? req.option_ip(50) : req.ciaddr;
  if (ip == 0) return o.reason = Reason::kBadRequest, o;
  ClientKey key = cl.key;
  if (const uint32_t s = subnet_of(c, cands, ip); s != kNoIndex) {
    const HostConf* h = find_host(s, cl);
    if (h != nullptr && h->ip == ip && h->pool != kNoIndex) key = host_client_key(c, *h);
  }
  const bool ok =
      decline ? store_->decline(key, ip, now, events) : store_->release(key, ip, now, events);
  if (!ok) o.reason = Reason::kNoLease;
  return o;
}

Outcome Server::nak_or_ignore(const Request& req, const Ingress& in, uint32_t subnet, Reason why,
                              std::span<uint8_t> out) noexcept {
  if (!cfg_->subnets[subnet].authoritative || out.size() < kMinReplyLen) {
    Outcome o;
    o.reason = why;
    return o;
  }
  Reply r;
  r.type = MessageType::kNak;
  r.subnet = subnet;
  r.reason = why;
  return build(req, in, r, out);
}

Outcome Server::build(const Request& req, const Ingress& in, const Reply& r,
                      std::span<uint8_t> out) noexcept {
  const ServerConfig& c = *cfg_;
  const SubnetConf& sn = c.subnets[r.subnet];
  Outcome o;
  o.reason = r.reason;
  if (out.size() < kMinReplyLen) return o.reason = Reason::kNoRoom, o;
  const uint32_t sid = server_id(r.subnet, in);
  Writer w(out, req, r.type, r.yiaddr);
  w.add_u32(opt::kServerId, sid);
  if (r.lease_s != 0) {
    w.add_u32(opt::kLeaseTime, r.lease_s);
    w.add_u32(opt::kT1, static_cast<uint32_t>(uint64_t{r.lease_s} * sn.renew_permille / 1000));
    w.add_u32(opt::kT2, static_cast<uint32_t>(uint64_t{r.lease_s} * sn.rebind_permille / 1000));
  }
  // Keep room for the echoes (61, then 82 last) while the optional options go in.
  const size_t limit = std::min(
      {out.size(), kMaxReplyLen, size_t{std::max<uint16_t>(req.max_message_size(), 576)} - 28});
  size_t echoes = 0;
  if (req.has(opt::kClientId)) echoes += wire_len(req.options[opt::kClientId].len);
  if (req.has(opt::kRelayAgent)) echoes += wire_len(req.options[opt::kRelayAgent].len);
  if (r.type == MessageType::kNak) {
    const char* msg = kReasonNames[static_cast<size_t>(r.reason)];
    w.add(opt::kMessage, {reinterpret_cast<const uint8_t*>(msg), std::strlen(msg)});
  } else {
    w.limit(limit > echoes ? limit - echoes : 0);
    // Host > pool > subnet > global (RFC 2131 has no precedence; this is ISC's and Kea's).
    std::array<const OptionTable*, 4> levels{};
    size_t nlevels = 0;
    const auto level = [&](uint32_t t) {
      if (t != kNoIndex && t < c.tables.size()) levels[nlevels++] = &c.tables[t];
    };
    if (r.host != nullptr) level(r.host->options);
    if (r.pool != nullptr) level(r.pool->options);
    level(sn.options);
    level(c.global_options);
    const auto emit = [&](uint8_t code) {
      if (server_owned(code)) return;
      for (size_t i = 0; i < nlevels; ++i) {
        if (levels[i]->has(code)) {
          if (!w.add(code, levels[i]->get(code))) o.options_left_out = true;
          return;
        }
      }
      bool ok = true;
      if (code == opt::kSubnetMask) ok = w.add_u32(code, sn.mask());
      if (code == opt::kBroadcast) ok = w.add_u32(code, sn.network | ~sn.mask());
      if (!ok) o.options_left_out = true;
    };
    if (req.has(opt::kParamRequest)) {
      // Only what the client asked for, in its order (RFC 2131 §4.3.1), each once.
      std::array<uint8_t, 512> buf;
      const std::span<const uint8_t> prl = req.value(opt::kParamRequest, buf);
      std::array<uint64_t, 4> seen{};
      for (size_t i = 0; i < prl.size(); ++i) {
        const uint8_t code = prl[i];
        uint64_t& word = seen[code >> 6];
        const uint64_t bit = uint64_t{1} << (code & 63);
        if ((word & bit) != 0) continue;
        word |= bit;
        emit(code);
      }
    } else {
      for (unsigned code = 1; code < 255; ++code) emit(static_cast<uint8_t>(code));
    }
    w.limit(limit);
  }
  w.echo(opt::kClientId);  // RFC 6842
  if (req.has(opt::kRelayAgent) && !w.echo(opt::kRelayAgent)) o.relay_info_left_out = true;
  o.len = w.finish();
  o.sent = r.type;

  // Addressing, RFC 2131 §4.1.
  o.dst.src_ip = sid;
  if (req.giaddr != 0) {
    o.dst = {req.giaddr, kServerPort, Addressing::L2::kRoute, sid};
    if (r.type == MessageType::kNak) out[10] |= 0x80;  // the relay broadcasts the NAK
  } else if (r.type == MessageType::kNak) {
    o.dst = {0xffffffff, kClientPort, Addressing::L2::kBroadcast, sid};
  } else if (req.ciaddr != 0) {
    o.dst = {req.ciaddr, kClientPort, Addressing::L2::kChaddr, sid};
  } else if (req.broadcast() || r.yiaddr == 0) {
    o.dst = {0xffffffff, kClientPort, Addressing::L2::kBroadcast, sid};
  } else {
    o.dst = {r.yiaddr, kClientPort, Addressing::L2::kChaddr, sid};
  }
  return o;
}

namespace {

uint32_t bucket(uint8_t kind, std::span<const uint8_t> id, uint32_t n) noexcept {
  if (n <= 1) return 0;
  return static_cast<uint32_t>(fnv(fnv(kFnvBasis, &kind, 1), id.data(), id.size()) % n);
}

}  // namespace

uint32_t owner_of(const ServerConfig& c, const Request& req, const Ingress& in,
                  uint32_t n) noexcept {
  if (n <= 1) return 0;
  std::array<uint8_t, 512> relay_buf;
  std::span<const uint8_t> circuit, remote;
  if (req.has(opt::kRelayAgent) && (!c.hosts.empty() || c.dispatch_by_circuit)) {
    relay_ids(req.value(opt::kRelayAgent, relay_buf), circuit, remote);
  }
  // A client with a reservation goes to the worker holding its address.
  if (!c.hosts.empty()) {
    std::array<uint8_t, 512> id_buf;
    const std::span<const uint8_t> client_id = req.value(opt::kClientId, id_buf);
    for (uint32_t s : select_subnets(c, req, in)) {
      if (const HostConf* h = lookup_host(c, s, client_id, req.chaddr, circuit, remote))
        return owner_of(c, *h, n);
    }
  }
  if (c.dispatch_by_circuit && !circuit.empty()) return bucket(opt::kCircuitId, circuit, n);
  uint32_t named = 0;
  switch (req.type) {
    case MessageType::kRequest:
      named = req.has(opt::kRequestedIp) ? req.option_ip(opt::kRequestedIp) : req.ciaddr;
      break;
    case MessageType::kRelease:
    case MessageType::kDecline:
      named = req.ciaddr != 0 ? req.ciaddr : req.option_ip(opt::kRequestedIp);
      break;
    case MessageType::kDiscover:
      named = req.option_ip(opt::kRequestedIp);
      break;
    default:
      break;
  }
  if (named != 0) {
    if (const uint32_t w = c.holder_of(named); w < n) return w;
  }
  return bucket(0, req.chaddr, n);
}

uint32_t ServerConfig::holder_of(uint32_t ip) const noexcept {
  auto it = std::upper_bound(holders.begin(), holders.end(), ip,
                             [](uint32_t v, const Holder& h) { return v < h.first; });
  if (it == holders.begin()) return kNoIndex;
  --it;
  return ip <= it->last ? it->worker : kNoIndex;
}

uint32_t owner_of(const ServerConfig& c, const HostConf& h, uint32_t n) noexcept {
  std::span<const uint8_t> id(c.bytes.data() + h.id_off, h.id_len);
  switch (h.key) {
    case HostKey::kMac:
      return bucket(0, id, n);
    case HostKey::kCircuitId:
      return bucket(opt::kCircuitId, id, n);
    case HostKey::kRemoteId:
      return bucket(opt::kRemoteId, id, n);
    case HostKey::kClientId:
      return bucket(opt::kClientId, id, n);
  }
  return 0;
}

}  // namespace dhcp
