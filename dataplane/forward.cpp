#include "dataplane/forward.h"

#include <algorithm>
#include <cstring>

#include "dataplane/neighbor_cache.h"
#include "dataplane/snapshot.h"

namespace dp {

namespace {

inline constexpr uint8_t kIpProtoIpip = 4;
// The quoted datagram follows type/code/csum/unused.
inline constexpr uint32_t kIcmpQuoteOff = 8;
inline constexpr uint32_t kDumpSlice = 65536;  // connection slots walked per maintenance pass

uint64_t service_key(uint8_t proto, uint32_t vip, uint16_t port) noexcept {
  return (uint64_t{proto} << 48) | (uint64_t{port} << 32) | vip;
}

uint64_t slot_of(uint64_t key, uint64_t mask) noexcept {
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  return h & mask;
}

// LbTable::find, inlined into the per-packet path: the exact port's slot, then the all-port one.
[[gnu::always_inline]] inline int find_service(const LbTable& t, uint8_t proto, uint32_t vip,
                                               uint16_t port) noexcept {
  if (t.index.empty()) return -1;
  auto probe = [&t](uint64_t key) {
    for (uint64_t slot = slot_of(key, t.mask);; slot = (slot + 1) & t.mask) {
      const int32_t i = t.index[slot];
      if (i < 0 || t.keys[slot] == key) return i;
    }
  };
  const int exact = probe(service_key(proto, vip, port));
  return exact >= 0 || port == 0 ? exact : probe(service_key(proto, vip, 0));
}

// The connection of `k`: the burst's bulk lookup when still valid, else a lookup now.
[[gnu::always_inline]] inline lb::Conn* lookup(ForwardEngine& e, const lb::FlowKey& k, bool* reply,
                                               const ConnHint* hint) noexcept {
  if (hint == nullptr || !hint->valid) return e.conns.find(k, reply);
  if (hint->conn != nullptr ? hint->released == e.conns.released()
                            : hint->inserted == e.conns.stats().inserted) {
    *reply = hint->reply;
    return hint->conn;
  }
  return e.conns.find(k, hint->hash, reply);
}

FwdResult dropped(Drop d) noexcept {
  FwdResult r;
  r.action = FwdAction::kDrop;
  r.reason = d;
  return r;
}

FwdResult handed(uint32_t owner) noexcept {
  FwdResult r;
  r.action = FwdAction::kHandOff;
  r.owner = owner;
  return r;
}

uint32_t l4_offset(const uint8_t* ip) noexcept {
  return (ip[ipv4::kOffVerIhl] & 0x0fu) * 4u;
}



// The packet's connection-table key: the one flow_key() built for the burst, else read now.
[[gnu::always_inline]] inline lb::FlowKey packet_key(const uint8_t* ip, const uint8_t* l4,
                                                     const ConnHint* hint) noexcept {
  if (hint != nullptr && hint->key != nullptr) return *hint->key;
  return key_of(ip, l4);
}

// An ICMP error of `type`/`code` about the packet in `frame`, sent back on the port it came in
// (the frame is reused: build_icmp_error moves the quote). Rate-limited.
FwdResult icmp_error(ForwardEngine& e, const Snapshot& s, uint8_t* frame, uint32_t len,
                     uint32_t cap, uint32_t in_port, uint8_t type, uint8_t code, uint16_t mtu,
                     Drop reason, uint64_t now_ns) noexcept {
  FwdResult r = dropped(reason);
  const PortView& pv = s.ports[in_port];
  if (pv.n_iface == 0) return r;
  // Built first: packets no error may be sent about (RFC 1812 §4.3.2.7) spend no token.
  const uint32_t n =
      build_icmp_error(frame, cap, frame, len, kEthHdrLen, type, code, mtu, pv.addrs[0], pv.mac);
  if (n == 0) return r;
  if (!e.icmp.allow(now_ns)) {
    e.stats.icmp_limited.add();
    return r;
  }
  e.stats.icmp_sent.add();
  r.action = FwdAction::kReply;
  r.out_port = static_cast<uint16_t>(in_port);
  r.len = n;
  return r;
}

// The route to `dst` and its next hop's MAC, from the memo when this poll resolved `dst` already.
// The reference is valid until the next call.
[[gnu::always_inline]] inline const ForwardEngine::HopMemo& resolve(ForwardEngine& e,
                                                                    const Snapshot& s,
                                                                    const NeighborCache& neigh,
                                                                    uint32_t dst,
                                                                    uint64_t now_ns) noexcept {
  ForwardEngine::HopMemo& m = e.hop_memo[dst % ForwardEngine::kHopMemo];
  if (m.snap == &s && m.at == now_ns && m.dst == dst) return m;
  m.hop = s.fwd->fib.lookup(dst);
  ForwardEngine::GatewayMemo& g = e.gateway_memo;
  if (!m.hop.found || m.hop.port >= s.n_ports) {
    m.resolved = false;
  } else if (g.snap == &s && g.at == now_ns && g.port == m.hop.port &&
             g.next_hop == m.hop.next_hop) {
    m.resolved = true;
    m.mac = g.mac;
  } else {
    m.resolved = neigh.lookup(m.hop.port, m.hop.next_hop, &m.mac);
    if (m.resolved) g = {&s, now_ns, m.hop.port, m.hop.next_hop, m.mac};
  }
  m.snap = m.resolved ? &s : nullptr;
  m.at = now_ns;
  m.dst = dst;
  return m;
}

// The Ethernet header at `eth` addressed to the next hop of `nh` (found, on a port of `s`), from
// the port's MAC: a transmit of `len` bytes, or — next hop unresolved — the drop that asks the
// control thread to resolve it.
[[gnu::always_inline]] inline FwdResult to_neighbor(ForwardEngine& e, const Snapshot& s,
                                                    uint8_t* eth, const ForwardEngine::HopMemo& nh,
                                                    uint32_t len) noexcept {
  if (!nh.resolved) {
    e.stats.neighbor_misses.add();
    FwdResult r = dropped(Drop::kNoNeighbor);
    r.resolve = true;
    r.resolve_port = nh.hop.port;
    r.resolve_ip = nh.hop.next_hop;
    return r;
  }
  write_eth(eth, nh.mac, s.ports[nh.hop.port].mac, kEtherTypeIpv4);
  FwdResult r;
  r.action = FwdAction::kTransmit;
  r.out_port = nh.hop.port;
  r.len = len;
  return r;
}

// Sends the IPv4 packet in `frame` toward `dst` by the routing table: MTU check, Ethernet
// rewrite with the next hop's MAC. TTL is the caller's business.
[[gnu::always_inline]] inline FwdResult route_out(ForwardEngine& e, const Snapshot& s,
                                                  const NeighborCache& neigh, uint8_t* frame,
                                                  uint32_t len, uint32_t cap, uint32_t in_port,
                                                  uint32_t dst, uint64_t now_ns) noexcept {
  const ForwardEngine::HopMemo& nh = resolve(e, s, neigh, dst, now_ns);
  if (!nh.hop.found || nh.hop.port >= s.n_ports)
    return icmp_error(e, s, frame, len, cap, in_port, icmp::kDestUnreachable, icmp::kNetUnreachable,
                      0, Drop::kNoRoute, now_ns);
  const PortView& out = s.ports[nh.hop.port];
  const uint8_t* ip = frame + kEthHdrLen;
  const uint32_t tot_len = load_be16(ip + ipv4::kOffTotLen);
  if (tot_len > out.mtu) {
    if ((load_be16(ip + ipv4::kOffFrag) & 0x4000) != 0)
      return icmp_error(e, s, frame, len, cap, in_port, icmp::kDestUnreachable, icmp::kFragNeeded,
                        out.mtu, Drop::kMtuExceeded, now_ns);
    return dropped(Drop::kMtuExceeded);
  }
  return to_neighbor(e, s, frame, nh, len);
}

// Transit traffic that belongs to no flow: decrement TTL and route.
FwdResult route_transit(ForwardEngine& e, const Snapshot& s, const NeighborCache& neigh,
                        uint8_t* frame, uint32_t len, uint32_t cap, uint32_t in_port,
                        uint64_t now_ns) noexcept {
  uint8_t* ip = frame + kEthHdrLen;
  if (!decrement_ttl(ip))
    return icmp_error(e, s, frame, len, cap, in_port, icmp::kTimeExceeded, icmp::kTtlExceeded, 0,
                      Drop::kTtlExceeded, now_ns);
  FwdResult r =
      route_out(e, s, neigh, frame, len, cap, in_port, load_be32(ip + ipv4::kOffDst), now_ns);
  if (r.action == FwdAction::kTransmit) e.stats.routed.add();
  return r;
}

// Rewrites one end (the address at ip + addr_off, the port at l4 + port_off) of the IPv4 packet
// at `ip` whose L4 header is at `l4`. The checksums are updated incrementally (RFC 1624 eqn. 3)
// from one ones'-complement difference: the address's for the IPv4 header, address and port for
// TCP/UDP (which cover both through the pseudo-header). `l4_csum` false: no L4 checksum to fix
// (e.g. a truncated quote). UDP's 0 ("no checksum") stays 0, a result of 0 is sent as 0xffff.
[[gnu::always_inline]] inline void rewrite_end(uint8_t* ip, uint8_t* l4, uint8_t proto,
                                               uint32_t addr_off, uint32_t port_off, uint32_t addr,
                                               uint16_t port, bool l4_csum) noexcept {
  const uint32_t old_addr = ~load_be32(ip + addr_off);
  const uint64_t d_addr =
      uint64_t{old_addr >> 16} + (old_addr & 0xffff) + (addr >> 16) + (addr & 0xffff);
  const uint16_t ip_check = load_be16(ip + ipv4::kOffCsum);
  const uint16_t old_port = load_be16(l4 + port_off);
  store_be16(ip + ipv4::kOffCsum, fold_not(static_cast<uint16_t>(~ip_check) + d_addr));
  store_be32(ip + addr_off, addr);
  store_be16(l4 + port_off, port);
  if (!l4_csum) return;
  const uint64_t d = d_addr + static_cast<uint16_t>(~old_port) + port;
  const uint32_t off = proto == kIpProtoTcp ? tcp::kOffCsum : udp::kOffCsum;
  const uint16_t check = load_be16(l4 + off);
  if (proto != kIpProtoTcp && check == 0) return;
  const uint16_t c = fold_not(static_cast<uint16_t>(~check) + d);
  store_be16(l4 + off, proto != kIpProtoTcp && c == 0 ? 0xffff : c);
}

void rewrite_dst(uint8_t* ip, uint8_t* l4, uint8_t proto, uint32_t addr, uint16_t port,
                 bool l4_csum) noexcept {
  rewrite_end(ip, l4, proto, ipv4::kOffDst, 2, addr, port, l4_csum);
}

void rewrite_src(uint8_t* ip, uint8_t* l4, uint8_t proto, uint32_t addr, uint16_t port,
                 bool l4_csum) noexcept {
  rewrite_end(ip, l4, proto, ipv4::kOffSrc, 0, addr, port, l4_csum);
}

// Toward the real server of `c` by its forwarding mode. NAT: the destination was rewritten by
// the caller; DR: only the Ethernet header changes; TUN: an outer IPv4 header (protocol 4) from
// the outgoing port's address to the real server is prepended, the inner packet untouched.
[[gnu::always_inline]] inline FwdResult to_real(ForwardEngine& e, const Snapshot& s,
                                                const NeighborCache& neigh, const lb::Conn& c,
                                                uint8_t* frame, uint32_t len, uint32_t headroom,
                                                uint32_t cap, uint32_t in_port,
                                                uint64_t now_ns) noexcept {
  if (c.fwd_mode == lb::Fwd::kNat) {
    if (!decrement_ttl(frame + kEthHdrLen))
      return icmp_error(e, s, frame, len, cap, in_port, icmp::kTimeExceeded, icmp::kTtlExceeded, 0,
                        Drop::kTtlExceeded, now_ns);
    return route_out(e, s, neigh, frame, len, cap, in_port, c.rs_ip(), now_ns);
  }
  if (c.fwd_mode == lb::Fwd::kDr) {
    // DR: the real server must be on-link (checked by the config); its own MAC, never a gateway's.
    const ForwardEngine::HopMemo& nh = resolve(e, s, neigh, c.rs_ip(), now_ns);
    if (!nh.hop.found || nh.hop.next_hop != c.rs_ip() || nh.hop.port >= s.n_ports)
      return dropped(Drop::kNoRoute);
    const uint32_t tot_len = load_be16(frame + kEthHdrLen + ipv4::kOffTotLen);
    if (tot_len > s.ports[nh.hop.port].mtu) return dropped(Drop::kMtuExceeded);
    return to_neighbor(e, s, frame, nh, len);
  }
  // TUN.
  const ForwardEngine::HopMemo& nh = resolve(e, s, neigh, c.rs_ip(), now_ns);
  if (!nh.hop.found || nh.hop.port >= s.n_ports || s.ports[nh.hop.port].n_iface == 0)
    return dropped(Drop::kNoRoute);
  const PortView& out = s.ports[nh.hop.port];
  const uint8_t* inner = frame + kEthHdrLen;
  const uint32_t inner_len = load_be16(inner + ipv4::kOffTotLen);
  const bool df = (load_be16(inner + ipv4::kOffFrag) & 0x4000) != 0;
  if (inner_len + kIpv4MinHdrLen > out.mtu) {
    if (df && out.mtu > kIpv4MinHdrLen + 68)
      return icmp_error(e, s, frame, len, cap, in_port, icmp::kDestUnreachable, icmp::kFragNeeded,
                        static_cast<uint16_t>(out.mtu - kIpv4MinHdrLen), Drop::kMtuExceeded,
                        now_ns);
    return dropped(Drop::kMtuExceeded);
  }
  if (headroom < kIpv4MinHdrLen) return dropped(Drop::kTooShort);
  // The new Ethernet header goes into the headroom: the frame is untouched if the next hop is
  // unresolved.
  uint8_t* f = frame - kIpv4MinHdrLen;
  FwdResult r = to_neighbor(e, s, f, nh, len + kIpv4MinHdrLen);
  if (r.action != FwdAction::kTransmit) return r;
  uint8_t* ip = f + kEthHdrLen;
  const auto tot = static_cast<uint16_t>(inner_len + kIpv4MinHdrLen);
  ip[ipv4::kOffVerIhl] = 0x45;
  ip[ipv4::kOffTos] = inner[ipv4::kOffTos];
  store_be16(ip + ipv4::kOffTotLen, tot);
  store_be16(ip + ipv4::kOffId, 0);
  store_be16(ip + ipv4::kOffFrag, df ? 0x4000 : 0);
  ip[ipv4::kOffTtl] = 64;
  ip[ipv4::kOffProto] = kIpProtoIpip;
  store_be16(ip + ipv4::kOffCsum, 0);
  store_be32(ip + ipv4::kOffSrc, out.addrs[0]);
  store_be32(ip + ipv4::kOffDst, c.rs_ip());
  store_be16(ip + ipv4::kOffCsum, csum(ip, kIpv4MinHdrLen));
  r.prepend = kIpv4MinHdrLen;
  return r;
}

static_assert(lb::kMaxDests <= 65536 && lb::kMaxServices <= 65536,
              "lb::Conn keeps dest_id and service_id in 16 bits");

// One packet of `c` forwarded toward the real server (`in`) or back to the client.
[[gnu::always_inline]] inline void count_traffic(ForwardEngine& e, const lb::Conn& c, bool in,
                                                 uint32_t bytes) noexcept {
  (in ? e.stats.lb_in : e.stats.lb_out).add();
  auto add = [in, bytes](LbTraffic& t) {
    (in ? t.in_pkts : t.out_pkts).add();
    (in ? t.in_bytes : t.out_bytes).add(bytes);
  };
  if (c.dest_id < e.dests.size()) add(e.dests[c.dest_id].t);
  if (c.service_id < e.services.size()) add(e.services[c.service_id]);
}

[[gnu::always_inline]] inline void count_state(ForwardEngine& e, uint32_t dest_id,
                                               lb::TcpState before, lb::TcpState after) noexcept {
  const bool was = before == lb::TcpState::kEstablished;
  const bool is = after == lb::TcpState::kEstablished;
  if (was == is || dest_id >= e.dests.size()) return;
  LbDestStats& d = e.dests[dest_id];
  d.active.add(is ? 1 : -1);
  d.inactive.add(is ? -1 : 1);
  e.sched.active[dest_id] += is ? 1 : -1;
  e.sched.inactive[dest_id] += is ? -1 : 1;
}

// Replication: tells the peer about `c` when it reached ESTABLISHED, changed state past the
// handshake, is a new UDP flow, or was last sent sync_refresh_ns ago. Opening states are not
// sent (a spoofed SYN flood would flood the sync link; a client caught mid-handshake by a
// failover retransmits its SYN), as IPVS syncs only connections past the handshake.
[[gnu::always_inline]] inline void note_sync(ForwardEngine& e, lb::Conn& c, lb::TcpState before,
                                             uint64_t now_ns) noexcept {
  if (!e.sync_out) return;
  const lb::TcpState st = c.state;
  if (st == lb::TcpState::kNone || st == lb::TcpState::kSynSent || st == lb::TcpState::kSynRecv ||
      st == lb::TcpState::kListen || st == lb::TcpState::kSynAck)
    return;
  if (st == before && c.synced_ns != 0 && now_ns - c.synced_ns < e.sync_refresh_ns) return;
  if (e.sync_n == ForwardEngine::kSyncBatch) {
    e.stats.sync_dropped.add();
    return;
  }
  c.synced_ns = now_ns;
  ++c.sync_gen;
  e.sync_batch[e.sync_n++] = sync_record(c);
}

// A new connection to service `svc` from the client in `k`: persistence template, else the
// scheduler. nullptr (with the reason) when nothing can take it.
// `pickup`: a TCP segment of a flow already under way (Maglev services only), entered as
// established.
lb::Conn* open_conn(ForwardEngine& e, const lb::Service& svc, const lb::FlowKey& k, uint64_t now_ns,
                    bool pickup, Drop* why) noexcept {
  int di = -1;
  const uint32_t masked = k.src_ip & svc.persist_mask;
  if (svc.persist_s != 0) {
    const int64_t id = e.persist.find(svc.id, masked, now_ns);
    if (id >= 0) {
      for (size_t i = 0; i < svc.dests.size(); ++i) {
        if (svc.dests[i].id == static_cast<uint32_t>(id) && svc.dests[i].available) {
          di = static_cast<int>(i);
          e.stats.persist_hits.add();
          break;
        }
      }
    }
  }
  if (di < 0) di = lb::pick(svc, e.sched, k.src_ip, k.src_port);
  if (di < 0) {
    *why = Drop::kLbNoDest;
    return nullptr;
  }
  const lb::Dest& d = svc.dests[static_cast<size_t>(di)];
  const uint16_t rport = d.port != 0 ? d.port : k.dst_port;
  lb::FlowKey rev;
  rev.src_ip = d.ip;
  rev.dst_ip = k.src_ip;
  rev.src_port = rport;
  rev.dst_port = k.src_port;
  rev.proto = k.proto;
  // A SYN flood may fill the table's embryonic share: the oldest half-open connection then
  // makes room (IPVS's drop_entry defence), so real clients still get in.
  lb::Conn* c =
      pickup ? e.conns.insert_established(k, rev, now_ns)
             : e.conns.insert(k, rev, now_ns, [&e](const lb::Conn& old) {
                 if (old.dest_id >= e.dests.size()) return;
                 const bool active = old.state == lb::TcpState::kEstablished;
                 (active ? e.dests[old.dest_id].active : e.dests[old.dest_id].inactive).add(-1);
                 (active ? e.sched.active : e.sched.inactive)[old.dest_id] -= 1;
               });
  if (c == nullptr) {
    *why = Drop::kLbConnFull;
    return nullptr;
  }
  c->service_id = static_cast<uint16_t>(svc.id);
  c->dest_id = static_cast<uint16_t>(d.id);
    c->fwd_mode = d.fwd;
  if (svc.persist_s != 0)
    e.persist.put(svc.id, masked, d.id, now_ns + uint64_t{svc.persist_s} * 1'000'000'000ull);
  if (d.id < e.dests.size()) {
    const bool active = c->state == lb::TcpState::kEstablished;
    e.dests[d.id].t.conns.add();
    (active ? e.dests[d.id].active : e.dests[d.id].inactive).add(1);
    (active ? e.sched.active : e.sched.inactive)[d.id] += 1;
  }
  if (svc.id < e.services.size()) e.services[svc.id].conns.add();
  return c;
}

// A TCP or UDP packet to a virtual service (or to an address of ours with no service).
[[gnu::always_inline]] inline FwdResult to_service(ForwardEngine& e, const Snapshot& s,
                                                   const NeighborCache& neigh, uint8_t* frame,
                                                   uint32_t len, uint32_t headroom, uint32_t cap,
                                                   uint32_t in_port, const LocalResult& lr,
                                                   uint64_t now_ns, uint32_t hops,
                                                   const ConnHint* hint) noexcept {
  uint8_t* ip = frame + kEthHdrLen;
  uint8_t* l4 = frame + lr.l4_off;
  const uint8_t proto = ip[ipv4::kOffProto];
  const uint32_t dst = load_be32(ip + ipv4::kOffDst);
  const PortView& pv = s.ports[in_port];
  const LbTable* lbt = s.fwd->lb.get();
  const uint32_t min_l4 = proto == kIpProtoTcp ? tcp::kMinHdr : udp::kHdrLen;
  const bool fragment = is_fragment(ip);
  const int si = lbt != nullptr && lr.l4_len >= min_l4 && !fragment
                     ? find_service(*lbt, proto, dst, load_be16(l4 + 2))
                     : -1;
  if (si < 0) {
    const int idx = pv.find(dst);
    if (pv.tap && idx >= 0 && static_cast<uint32_t>(idx) < pv.n_iface) {
      FwdResult r;
      r.action = FwdAction::kToKernel;
      return r;
    }
    // Not reassembled: counted as a fragment whatever its port (find(proto, dst, 0) saw only
    // the all-port service, so fragments to VIP:80 were counted as "no service").
    if (fragment) return dropped(Drop::kIpv4Fragment);
    return dropped(lr.l4_len < min_l4
                       ? (proto == kIpProtoTcp ? Drop::kTooShort : Drop::kUdpMalformed)
                       : Drop::kL4Unhandled);
  }
  const uint32_t src = load_be32(ip + ipv4::kOffSrc);
  if (e.n_workers > 1 && hops == 0 && e.software_steering.load(std::memory_order_relaxed)) {
    const uint32_t owner = owner_of(src, e.n_workers);
    if (owner != e.worker) return handed(owner);
  }
  const lb::Service& svc = lbt->services[static_cast<size_t>(si)];
  const lb::FlowKey k = packet_key(ip, l4, hint);
  bool reply = false;
  lb::Conn* c = lookup(e, k, &reply, hint);
  const uint8_t flags = proto == kIpProtoTcp ? l4[tcp::kOffFlags] : 0;
  if (c == nullptr) {
    // TCP: only a SYN opens a connection (a stray segment is no reason to pick a server),
    // except under Maglev, which every node computes alike: a flow whose state was lost (a
    // failover, a restart) is sent where it was going.
    const bool syn =
        proto != kIpProtoTcp || (flags & (tcp::kSyn | tcp::kAck | tcp::kRst)) == tcp::kSyn;
    if (!syn && (svc.sched != lb::Sched::kMh || (flags & (tcp::kRst | tcp::kSyn)) != 0))
      return dropped(Drop::kLbNoConn);
    Drop why = Drop::kLbNoDest;
    c = open_conn(e, svc, k, now_ns, !syn, &why);
    if (c == nullptr) return dropped(why);
  }
  const lb::TcpState before = c->state;
  if (proto == kIpProtoTcp) {
    e.conns.on_tcp(*c, false, flags, now_ns);
    count_state(e, c->dest_id, before, c->state);
  } else {
    e.conns.on_udp(*c, now_ns);
  }
  note_sync(e, *c, before, now_ns);
  const uint32_t bytes = len;
  FwdResult r = to_real(e, s, neigh, *c, frame, len, headroom, cap, in_port, now_ns);
  // NAT rewrites only a packet that leaves: an ICMP error (TTL, fragmentation needed) must
  // quote the packet as the client sent it (to the VIP), or the client cannot match it.
  if (r.action == FwdAction::kTransmit && c->fwd_mode == lb::Fwd::kNat)
    rewrite_dst(ip, l4, proto, c->rs_ip(), c->rs_port(), true);
  if (r.action == FwdAction::kTransmit) count_traffic(e, *c, true, bytes);
  return r;
}

// A packet from a NAT real server that matches a connection: rewritten back to the virtual
// service and routed to the client. nullopt-like: action kDrop with reason kIpv4NotLocal means
// "not a NAT reply" (the caller routes it).
[[gnu::always_inline]] inline bool nat_reply(ForwardEngine& e, const Snapshot& s,
                                             const NeighborCache& neigh, uint8_t* frame,
                                             uint32_t len, uint32_t cap, uint32_t in_port,
                                             const LocalResult& lr, uint64_t now_ns,
                                             const ConnHint* hint, FwdResult* out) noexcept {
  uint8_t* ip = frame + kEthHdrLen;
  uint8_t* l4 = frame + lr.l4_off;
  const uint8_t proto = ip[ipv4::kOffProto];
  if (lr.l4_len < (proto == kIpProtoTcp ? tcp::kMinHdr : udp::kHdrLen) || is_fragment(ip))
    return false;
  const lb::FlowKey k = packet_key(ip, l4, hint);
  bool reply = false;
  lb::Conn* c = lookup(e, k, &reply, hint);
  if (c == nullptr || !reply || c->fwd_mode != lb::Fwd::kNat) return false;
  const lb::TcpState before = c->state;
  if (proto == kIpProtoTcp) {
    e.conns.on_tcp(*c, true, l4[tcp::kOffFlags], now_ns);
    count_state(e, c->dest_id, before, c->state);
  } else {
    e.conns.on_udp(*c, now_ns);
  }
  note_sync(e, *c, before, now_ns);
  if (!decrement_ttl(ip)) {
    *out = icmp_error(e, s, frame, len, cap, in_port, icmp::kTimeExceeded, icmp::kTtlExceeded, 0,
                      Drop::kTtlExceeded, now_ns);
    return true;
  }
  *out = route_out(e, s, neigh, frame, len, cap, in_port, k.dst_ip, now_ns);
  if (out->action == FwdAction::kTransmit) {
    // After routing, as in to_service: an ICMP error goes to the real server about its own
    // packet (before the rewrite its source would be the VIP: ourselves).
    rewrite_src(ip, l4, proto, c->fwd.dst_ip, c->fwd.dst_port, true);
    count_traffic(e, *c, false, len);
  }
  return true;
}

// An ICMP error quoting a packet of a tracked flow. Toward the real server (it was sent to a
// VIP about a reply we forwarded) or toward the client (it comes from the real server's side
// about a packet we forwarded to it). Returns false when it is about no flow of ours.
bool icmp_related(ForwardEngine& e, const Snapshot& s, const NeighborCache& neigh, uint8_t* frame,
                  uint32_t len, uint32_t headroom, uint32_t cap, uint32_t in_port,
                  const LocalResult& lr, uint64_t now_ns, uint32_t hops, FwdResult* out) noexcept {
  uint8_t* ip = frame + kEthHdrLen;
  uint8_t* ic = frame + lr.l4_off;
  if (lr.l4_len < kIcmpQuoteOff + kIpv4MinHdrLen + 8 || is_fragment(ip)) return false;
  const uint8_t type = ic[0];
  if (type != icmp::kDestUnreachable && type != icmp::kTimeExceeded &&
      type != icmp::kParamProblem && type != icmp::kSourceQuench)
    return false;
  uint8_t* in = ic + kIcmpQuoteOff;
  const uint32_t in_ihl = l4_offset(in);
  if ((in[0] >> 4) != 4 || in_ihl < kIpv4MinHdrLen || lr.l4_len < kIcmpQuoteOff + in_ihl + 8)
    return false;
  const uint8_t proto = in[ipv4::kOffProto];
  if (proto != kIpProtoTcp && proto != kIpProtoUdp) return false;
  uint8_t* in4 = in + in_ihl;
  lb::FlowKey k;  // the flow's key as its client → VIP or RS → client packets carry it
  k.src_ip = load_be32(in + ipv4::kOffDst);
  k.dst_ip = load_be32(in + ipv4::kOffSrc);
  k.src_port = load_be16(in4 + 2);
  k.dst_port = load_be16(in4);
  k.proto = proto;
  if (e.n_workers > 1 && hops == 0 && e.software_steering.load(std::memory_order_relaxed)) {
    // The client is the quoted packet's destination (about a reply to it) or its source.
    const uint32_t client = lr.local ? k.src_ip : k.dst_ip;
    const uint32_t owner = owner_of(client, e.n_workers);
    if (owner != e.worker) {
      *out = handed(owner);
      return true;
    }
  }
  bool reply = false;
  lb::Conn* c = e.conns.find(k, &reply);
  if (c == nullptr) return false;
  const uint32_t icmp_len = lr.l4_len;
  if (!reply && lr.local) {
    // About a reply VIP → client: tell the real server, about its own packet.
    if (c->fwd_mode == lb::Fwd::kNat) {
      rewrite_src(in, in4, proto, c->rs_ip(), c->rs_port(), false);
      const uint32_t old_dst = load_be32(ip + ipv4::kOffDst);
      store_be16(ip + ipv4::kOffCsum,
                 csum_replace4(load_be16(ip + ipv4::kOffCsum), old_dst, c->rs_ip()));
      store_be32(ip + ipv4::kOffDst, c->rs_ip());
      store_be16(ic + 2, 0);
      store_be16(ic + 2, csum(ic, icmp_len));
    }
    *out = to_real(e, s, neigh, *c, frame, len, headroom, cap, in_port, now_ns);
  } else if (reply && !lr.local && c->fwd_mode == lb::Fwd::kNat) {
    // From the real server's side about a packet we sent it: tell the client, about its own.
    rewrite_dst(in, in4, proto, c->fwd.dst_ip, c->fwd.dst_port, false);
    const uint32_t outer_src = load_be32(ip + ipv4::kOffSrc);
    if (outer_src == c->rs_ip()) {
      store_be16(ip + ipv4::kOffCsum,
                 csum_replace4(load_be16(ip + ipv4::kOffCsum), outer_src, c->fwd.dst_ip));
      store_be32(ip + ipv4::kOffSrc, c->fwd.dst_ip);
    }
    store_be16(ic + 2, 0);
    store_be16(ic + 2, csum(ic, icmp_len));
    if (!decrement_ttl(ip)) {
      *out = dropped(Drop::kTtlExceeded);  // never an ICMP error about an ICMP error
      return true;
    }
    *out = route_out(e, s, neigh, frame, len, cap, in_port, load_be32(ip + ipv4::kOffDst), now_ns);
  } else {
    return false;
  }
  if (out->action == FwdAction::kTransmit) e.stats.icmp_related.add();
  return true;
}

}  // namespace

void LbTable::build() {
  size_t slots = 16;
  while (slots < services.size() * 2) slots <<= 1;
  keys.assign(slots, 0);
  index.assign(slots, -1);
  mask = slots - 1;
  nat_reals.clear();
  for (size_t i = 0; i < services.size(); ++i) {
    const lb::ServiceKey& k = services[i].key;
    const uint64_t key = service_key(static_cast<uint8_t>(k.proto), k.vip, k.port);
    uint64_t slot = slot_of(key, mask);
    while (index[slot] >= 0) slot = (slot + 1) & mask;
    keys[slot] = key;
    index[slot] = static_cast<int32_t>(i);
    for (const lb::Dest& d : services[i].dests)
      if (d.fwd == lb::Fwd::kNat) nat_reals.push_back(d.ip);
  }
  std::sort(nat_reals.begin(), nat_reals.end());
  nat_reals.erase(std::unique(nat_reals.begin(), nat_reals.end()), nat_reals.end());
}

int LbTable::find(uint8_t proto, uint32_t vip, uint16_t port) const noexcept {
  return find_service(*this, proto, vip, port);
}

bool LbTable::is_nat_real(uint32_t ip) const noexcept {
  return std::binary_search(nat_reals.begin(), nat_reals.end(), ip);
}

PersistTable::PersistTable(uint32_t sets) {
  uint32_t n = 1;
  while (n < sets) n <<= 1;
  e_.resize(size_t{n} * 4);
  mask_ = n - 1;
}

int64_t PersistTable::find(uint32_t service, uint32_t client, uint64_t now_ns) const noexcept {
  const uint32_t set = owner_of(client ^ (service * 0x27d4eb2du), mask_ + 1);
  const Entry* b = &e_[size_t{set} * 4];
  for (int i = 0; i < 4; ++i)
    if (b[i].used && b[i].service == service && b[i].client == client && b[i].expires > now_ns)
      return b[i].dest;
  return -1;
}

void PersistTable::put(uint32_t service, uint32_t client, uint32_t dest_id,
                       uint64_t expires_ns) noexcept {
  const uint32_t set = owner_of(client ^ (service * 0x27d4eb2du), mask_ + 1);
  Entry* b = &e_[size_t{set} * 4];
  Entry* victim = &b[0];
  for (int i = 0; i < 4; ++i) {
    if (b[i].used && b[i].service == service && b[i].client == client) {
      victim = &b[i];
      break;
    }
    if (!b[i].used || b[i].expires < victim->expires) victim = &b[i];
  }
  *victim = Entry{service, client, dest_id, 1, expires_ns};
}

ForwardEngine::ForwardEngine(const lb::ConnTable::Params& p, uint32_t self, uint32_t n,
                             uint32_t icmp_per_s)
    : conns(p),
      icmp(icmp_per_s, icmp_per_s == 0 ? 0 : std::max<uint32_t>(1, icmp_per_s / 20)),
      worker(self),
      n_workers(n),
      dests(lb::kMaxDests),
      services(lb::kMaxServices) {}

FwdResult forward(ForwardEngine& e, const Snapshot& s, const NeighborCache& neigh, uint8_t* frame,
                  uint32_t len, uint32_t headroom, uint32_t cap, uint32_t in_port,
                  const LocalResult& lr, uint64_t now_ns, uint32_t hops,
                  const ConnHint* hint) noexcept {
  if (s.fwd == nullptr || in_port >= s.n_ports) return dropped(Drop::kIpv4NotLocal);
  uint8_t* ip = frame + kEthHdrLen;
  const uint8_t proto = ip[ipv4::kOffProto];
  const uint32_t src = load_be32(ip + ipv4::kOffSrc);
  const uint32_t top = src >> 24;
  if (top == 0 || top == 127 || top >= 224) return dropped(Drop::kIpv4Martian);
  if (lr.local) {
    if (proto == kIpProtoTcp || proto == kIpProtoUdp)
      return to_service(e, s, neigh, frame, len, headroom, cap, in_port, lr, now_ns, hops, hint);
    FwdResult r;
    if (s.fwd->lb != nullptr && proto == kIpProtoIcmp &&
        icmp_related(e, s, neigh, frame, len, headroom, cap, in_port, lr, now_ns, hops, &r))
      return r;
    const PortView& pv = s.ports[in_port];
    const int idx = pv.find(load_be32(ip + ipv4::kOffDst));
    if (pv.tap && idx >= 0 && static_cast<uint32_t>(idx) < pv.n_iface) {
      r.action = FwdAction::kToKernel;
      return r;
    }
    return dropped(proto == kIpProtoIcmp ? Drop::kIcmpUnhandled : Drop::kL4Unhandled);
  }
  const uint32_t dst = load_be32(ip + ipv4::kOffDst);
  if (dst >= 0xe0000000u) return dropped(Drop::kIpv4NotLocal);  // multicast, 240/4, broadcast
  const LbTable* lbt = s.fwd->lb.get();
  if (lbt != nullptr) {
    FwdResult r;
    if ((proto == kIpProtoTcp || proto == kIpProtoUdp) && lbt->is_nat_real(src)) {
      if (e.n_workers > 1 && hops == 0 && e.software_steering.load(std::memory_order_relaxed)) {
        const uint32_t owner = owner_of(dst, e.n_workers);
        if (owner != e.worker) return handed(owner);
      }
      if (nat_reply(e, s, neigh, frame, len, cap, in_port, lr, now_ns, hint, &r)) return r;
    } else if (proto == kIpProtoIcmp && icmp_related(e, s, neigh, frame, len, headroom, cap,
                                                     in_port, lr, now_ns, hops, &r)) {
      return r;
    }
  }
  if (!s.fwd->routing) return dropped(Drop::kIpv4NotLocal);
  return route_transit(e, s, neigh, frame, len, cap, in_port, now_ns);
}

ConnSync sync_record(const lb::Conn& c) noexcept {
  ConnSync r;
  r.proto = c.fwd.proto;
  r.state = static_cast<uint8_t>(c.state);
  r.fwd_mode = static_cast<uint8_t>(c.fwd_mode);
  r.client_ip = c.fwd.src_ip;
  r.client_port = c.fwd.src_port;
  r.vip = c.fwd.dst_ip;
  r.vport = c.fwd.dst_port;
  r.rs_ip = c.rs_ip();
  r.rs_port = c.rs_port();
  r.generation = c.sync_gen;
  return r;
}

void install_conn(ForwardEngine& e, const Snapshot& s, const ConnSync& r,
                  uint64_t now_ns) noexcept {
  const LbTable* lbt = s.fwd != nullptr ? s.fwd->lb.get() : nullptr;
  const int si = lbt != nullptr ? lbt->find(r.proto, r.vip, r.vport) : -1;
  if (si < 0 || r.state >= lb::kTcpStateCount) {
    e.stats.sync_refused.add();
    return;
  }
  const lb::Service& svc = lbt->services[static_cast<size_t>(si)];
  int di = -1;
  for (size_t i = 0; i < svc.dests.size(); ++i) {
    const lb::Dest& d = svc.dests[i];
    if (d.ip == r.rs_ip && (d.port == r.rs_port || d.port == 0)) {
      di = static_cast<int>(i);
      break;
    }
  }
  if (di < 0) {
    e.stats.sync_refused.add();
    return;
  }
  const lb::Dest& d = svc.dests[static_cast<size_t>(di)];
  lb::FlowKey k;
  k.src_ip = r.client_ip;
  k.dst_ip = r.vip;
  k.src_port = r.client_port;
  k.dst_port = r.vport;
  k.proto = r.proto;
  const auto state = static_cast<lb::TcpState>(r.state);
  bool reply = false;
  lb::Conn* c = e.conns.find(k, &reply);
  if (c != nullptr && (reply || c->rs_ip() != r.rs_ip || c->rs_port() != r.rs_port)) {
    // Bound elsewhere here (our own connection, made while we were both masters, or a reply
    // key that collides): the peer's newer word wins.
    if (!reply && r.generation < c->sync_gen) {
      e.stats.sync_stale.add();
      return;
    }
    if (c->dest_id < e.dests.size()) {
      const bool active = c->state == lb::TcpState::kEstablished;
      (active ? e.dests[c->dest_id].active : e.dests[c->dest_id].inactive).add(-1);
      (active ? e.sched.active : e.sched.inactive)[c->dest_id] -= 1;
    }
    e.conns.erase(c);
    c = nullptr;
  }
  if (c != nullptr) {
    if (r.generation < c->sync_gen) {
      e.stats.sync_stale.add();
      return;
    }
    const lb::TcpState before = c->state;
    if (k.proto == kIpProtoTcp) {
      e.conns.set_state(*c, state, now_ns);
      count_state(e, c->dest_id, before, c->state);
    } else {
      e.conns.on_udp(*c, now_ns);
    }
  } else {
    lb::FlowKey rev;
    rev.src_ip = r.rs_ip;
    rev.dst_ip = r.client_ip;
    rev.src_port = r.rs_port;
    rev.dst_port = r.client_port;
    rev.proto = r.proto;
    c = e.conns.insert_established(k, rev, now_ns);
    if (c == nullptr) {
      e.stats.sync_refused.add();
      return;
    }
    c->service_id = static_cast<uint16_t>(svc.id);
    c->dest_id = static_cast<uint16_t>(d.id);
    c->fwd_mode = static_cast<lb::Fwd>(r.fwd_mode);
    if (d.id < e.dests.size()) {
      const bool active = c->state == lb::TcpState::kEstablished;
      (active ? e.dests[d.id].active : e.dests[d.id].inactive).add(1);
      (active ? e.sched.active : e.sched.inactive)[d.id] += 1;
    }
    if (k.proto == kIpProtoTcp && state != lb::TcpState::kEstablished) {
      const lb::TcpState before = c->state;
      e.conns.set_state(*c, state, now_ns);
      count_state(e, c->dest_id, before, c->state);
    }
    if (svc.persist_s != 0)
      e.persist.put(svc.id, k.src_ip & svc.persist_mask, d.id,
                    now_ns + uint64_t{svc.persist_s} * 1'000'000'000ull);
  }
  c->sync_gen = r.generation;
  c->synced_ns = now_ns;  // what the peer told us need not be told back before a refresh
  e.stats.sync_installed.add();
}

namespace {

void serve_dump(ForwardEngine& e, ConnDump& d) noexcept {
  const uint64_t req = d.req.load(std::memory_order_acquire);
  if (req == d.done.load(std::memory_order_relaxed)) return;
  if (d.serving != req) {
    d.serving = req;
    d.cursor = 0;
    d.out.clear();
  }
  d.cursor = e.conns.for_each_from(d.cursor, kDumpSlice, [&d](const lb::Conn& c) {
    if (d.out.size() >= d.max) return;
    ConnRecord r;
    static_cast<ConnSync&>(r) = sync_record(c);
    r.expires_ns = c.expires_ns;
    d.out.push_back(r);
  });
  if (d.cursor >= e.conns.capacity() || d.out.size() >= d.max)
    d.done.store(req, std::memory_order_release);
}

}  // namespace

uint32_t forward_maintenance(ForwardEngine& e, uint64_t now_ns, uint32_t max) noexcept {
  const uint64_t gen = e.timeouts_gen.load(std::memory_order_acquire);
  if (gen != e.applied_gen) {
    e.conns.set_timeouts(e.next_timeouts);
    e.applied_gen = gen;
  }
  const uint32_t n = e.conns.expire(now_ns, max, [&e](const lb::Conn& c) {
    if (c.dest_id >= e.dests.size()) return;
    const bool active = c.state == lb::TcpState::kEstablished;
    (active ? e.dests[c.dest_id].active : e.dests[c.dest_id].inactive).add(-1);
    (active ? e.sched.active : e.sched.inactive)[c.dest_id] -= 1;
  });
  e.stats.conn_expired.add(n);
  // Listings (the operator's, the sync thread's bulk resync): the table is walked a slice per
  // pass, never all at once.
  serve_dump(e, e.dump);
  serve_dump(e, e.sync_dump);
  return n;
}

}  // namespace dp
