// forward(): the load balancer (NAT, DR, TUN), NAT replies, ICMP errors about tracked flows,
// routing between ports, hand-off between workers, and forward_maintenance (aging, listings).
// Frames are built byte by byte here and every checksum is verified by a full recompute with a
// textbook RFC 1071 sum in this file, so the incremental updates under test never check
// themselves. Each frame goes through handle_local() first, as the worker loop does.

#include "dataplane/forward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "dataplane/local.h"
#include "dataplane/neighbor_cache.h"
#include "dataplane/route.h"
#include "dataplane/snapshot.h"
#include "lb/conn_table.h"
#include "lb/scheduler.h"

namespace dp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// Port 0 ("front"): clients, the VIPs, a router to a remote client network.
constexpr Mac kFrontMac{0x02, 0x00, 0x00, 0x00, 0x01, 0x01};
constexpr uint32_t kFrontIp = ip4(192, 0, 2, 2);
constexpr uint32_t kVip = ip4(192, 0, 2, 100);       // NAT: TCP 80 (rr), UDP 53, TCP all-port
constexpr uint32_t kVipDr = ip4(192, 0, 2, 101);     // TCP 80, DR
constexpr uint32_t kVipTun = ip4(192, 0, 2, 102);    // TCP 80, TUN
constexpr uint32_t kVipMh = ip4(192, 0, 2, 103);     // TCP 80, mh
constexpr uint32_t kVipNone = ip4(192, 0, 2, 104);   // TCP 80, no usable real server
constexpr uint32_t kVipNoArp = ip4(192, 0, 2, 105);  // TCP 80, real server not resolved
constexpr uint32_t kClient = ip4(192, 0, 2, 10);
constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
constexpr uint32_t kClient2 = ip4(192, 0, 2, 11);
constexpr Mac kClient2Mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
constexpr uint32_t kRouter = ip4(192, 0, 2, 1);  // gateway to 203.0.113.0/24
constexpr Mac kRouterMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr uint32_t kRemote = ip4(203, 0, 113, 7);  // a client behind the router

// Port 1 ("back"): the real servers.
constexpr Mac kBackMac{0x02, 0x00, 0x00, 0x00, 0x02, 0x02};
constexpr uint32_t kBackIp = ip4(198, 51, 100, 2);
constexpr uint32_t kRs1 = ip4(198, 51, 100, 11);
constexpr Mac kRs1Mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x11};
constexpr uint32_t kRs2 = ip4(198, 51, 100, 12);
constexpr Mac kRs2Mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x12};
constexpr uint32_t kRsDr = ip4(198, 51, 100, 21);
constexpr Mac kRsDrMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x21};
constexpr uint32_t kRsTun = ip4(198, 51, 100, 31);
constexpr Mac kRsTunMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x31};
constexpr uint32_t kRsNoArp = ip4(198, 51, 100, 99);
constexpr uint32_t kBackHost = ip4(198, 51, 100, 50);  // a plain host (routing tests)
constexpr Mac kBackHostMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x50};

constexpr uint32_t kFront = 0, kBack = 1;
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint16_t kDf = 0x4000, kMf = 0x2000;
constexpr uint32_t kHeadroom = 128;
constexpr uint64_t kSec = 1'000'000'000ull;

// Dest ids of the default table.
constexpr uint32_t kIdRs1 = 0, kIdRs2 = 1, kIdUdp = 2, kIdAllPort = 3, kIdDr = 4, kIdTun = 5,
                   kIdMh1 = 6, kIdMh2 = 7, kIdNone = 8, kIdNoArp = 9;
constexpr uint32_t kSvcHttp = 0;

// ---------------------------------------------------------------------------------------------
// Bytes

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return (uint32_t{get16(p)} << 16) | get16(p + 2);
}
void set16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v);
}
Mac mac_at(const uint8_t* p) {
  Mac m;
  std::copy_n(p, 6, m.begin());
  return m;
}

// Textbook RFC 1071 over `n` bytes, big-endian words, `seed` added first.
uint16_t ref_csum(const uint8_t* p, size_t n, uint64_t seed = 0) {
  uint64_t sum = seed;
  for (size_t i = 0; i < n; ++i) sum += (i % 2 == 0) ? uint64_t{p[i]} << 8 : p[i];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint32_t ihl_of(const uint8_t* ip) {
  return (ip[0] & 0x0fu) * 4u;
}

// The checksum a TCP/UDP segment of the IPv4 packet at `ip` must carry (field taken as 0).
uint16_t ref_l4_csum(const uint8_t* ip) {
  const uint32_t ihl = ihl_of(ip);
  const uint32_t l4_len = get16(ip + 2) - ihl;
  Bytes seg(ip + ihl, ip + ihl + l4_len);
  const size_t off = ip[9] == kIpProtoTcp ? 16 : 6;
  seg[off] = seg[off + 1] = 0;
  const uint64_t pseudo = (get32(ip + 12) >> 16) + (get32(ip + 12) & 0xffff) +
                          (get32(ip + 16) >> 16) + (get32(ip + 16) & 0xffff) + ip[9] + l4_len;
  return ref_csum(seg.data(), seg.size(), pseudo);
}

bool ip_csum_ok(const uint8_t* ip) {
  return ref_csum(ip, ihl_of(ip)) == 0;
}

// Full recompute of the L4 checksum: TCP, UDP (0 = none is fine) and ICMP.
bool l4_csum_ok(const uint8_t* ip) {
  const uint32_t ihl = ihl_of(ip);
  const uint8_t* l4 = ip + ihl;
  const uint32_t l4_len = get16(ip + 2) - ihl;
  if (ip[9] == kIpProtoIcmp) return ref_csum(l4, l4_len) == 0;
  if (ip[9] == kIpProtoUdp) {
    if (get16(l4 + 6) == 0) return true;
    const uint16_t c = ref_l4_csum(ip);
    return get16(l4 + 6) == (c == 0 ? 0xffff : c);
  }
  return get16(l4 + 16) == ref_l4_csum(ip);
}

// ---------------------------------------------------------------------------------------------
// Packet builders

struct Pkt {
  uint32_t src = kClient, dst = kVip;
  uint8_t proto = kIpProtoTcp;
  uint16_t sport = 40000, dport = 80;
  uint8_t flags = kSyn;
  uint8_t ttl = 64;
  uint16_t frag = kDf;
  uint16_t id = 0x1234;
  uint32_t payload = 0;  // TCP/UDP payload bytes (a pattern)
  Bytes icmp;            // proto ICMP: the whole ICMP message
};

// An IPv4 packet with valid header and L4 checksums.
Bytes ip_packet(const Pkt& p) {
  Bytes l4;
  if (p.proto == kIpProtoTcp) {
    put16(l4, p.sport);
    put16(l4, p.dport);
    put32(l4, 0x01020304);  // seq
    put32(l4, (p.flags & kAck) ? 0x0a0b0c0d : 0);
    l4.push_back(0x50);  // data offset 5
    l4.push_back(p.flags);
    put16(l4, 65535);
    put16(l4, 0);  // checksum
    put16(l4, 0);  // urgent
  } else if (p.proto == kIpProtoUdp) {
    put16(l4, p.sport);
    put16(l4, p.dport);
    put16(l4, 8 + p.payload);
    put16(l4, 0);
  } else {
    l4 = p.icmp;
  }
  for (uint32_t i = 0; i < p.payload && p.proto != kIpProtoIcmp; ++i)
    l4.push_back(static_cast<uint8_t>(0x30 + i));
  Bytes b;
  b.push_back(0x45);
  b.push_back(0);
  put16(b, 20 + static_cast<uint32_t>(l4.size()));
  put16(b, p.id);
  put16(b, p.frag);
  b.push_back(p.ttl);
  b.push_back(p.proto);
  put16(b, 0);
  put32(b, p.src);
  put32(b, p.dst);
  set16(b.data() + 10, ref_csum(b.data(), 20));
  b.insert(b.end(), l4.begin(), l4.end());
  if (p.proto == kIpProtoTcp) {
    set16(b.data() + 20 + 16, ref_l4_csum(b.data()));
  } else if (p.proto == kIpProtoUdp) {
    const uint16_t c = ref_l4_csum(b.data());
    set16(b.data() + 20 + 6, c == 0 ? 0xffff : c);
  }
  return b;
}

// An ICMP error message quoting `quoted` (as much of it as given).
Bytes icmp_error_msg(uint8_t type, uint8_t code, uint16_t mtu, const Bytes& quoted) {
  Bytes m{type, code, 0, 0, 0, 0};
  put16(m, mtu);
  m.insert(m.end(), quoted.begin(), quoted.end());
  set16(m.data() + 2, ref_csum(m.data(), m.size()));
  return m;
}

// An Ethernet frame inside a buffer with headroom (TUN prepends there) and tailroom (an ICMP
// error may be longer than what it quotes).
struct Frame {
  Bytes buf;
  uint32_t len = 0;
  uint8_t* data() { return buf.data() + kHeadroom; }
  uint8_t* ip() { return data() + kEthHdrLen; }
  uint32_t cap() const { return static_cast<uint32_t>(buf.size()) - kHeadroom; }
  Bytes bytes() { return Bytes(data(), data() + len); }
  Bytes ip_bytes() { return Bytes(ip(), data() + len); }
};

Frame frame(const Mac& dst, const Mac& src, const Bytes& ip) {
  Frame f;
  f.buf.assign(kHeadroom + std::max<size_t>(kEthHdrLen + ip.size(), 2048), 0);
  store_mac(f.data(), dst);
  store_mac(f.data() + 6, src);
  store_be16(f.data() + 12, kEtherTypeIpv4);
  std::copy(ip.begin(), ip.end(), f.data() + kEthHdrLen);
  f.len = static_cast<uint32_t>(kEthHdrLen + ip.size());
  return f;
}

// A client's packet as it reaches the front port.
Frame from_client(const Pkt& p, const Mac& src = kClientMac) {
  return frame(kFrontMac, src, ip_packet(p));
}
// A real server's packet as it reaches the back port.
Frame from_back(const Pkt& p, const Mac& src) {
  return frame(kBackMac, src, ip_packet(p));
}

// ---------------------------------------------------------------------------------------------
// Configuration

lb::Dest dest(uint32_t id, uint32_t ip, uint16_t port, lb::Fwd fwd = lb::Fwd::kNat,
              uint32_t weight = 1) {
  lb::Dest d;
  d.id = id;
  d.ip = ip;
  d.port = port;
  d.fwd = fwd;
  d.weight = weight;
  d.available = weight > 0;  // as ctl::make_lb_table sets it
  return d;
}

lb::Service service(uint32_t id, lb::Proto proto, uint32_t vip, uint16_t port, lb::Sched sched,
                    std::vector<lb::Dest> dests, uint32_t persist_s = 0,
                    uint32_t persist_mask = ~0u) {
  lb::Service s;
  s.key = {proto, vip, port};
  s.sched = sched;
  s.id = id;
  s.persist_s = persist_s;
  s.persist_mask = persist_mask;
  s.dests = std::move(dests);
  lb::build_tables(s, 1009);
  return s;
}

std::vector<lb::Service> default_services() {
  using lb::Fwd, lb::Proto, lb::Sched;
  return {
      service(kSvcHttp, Proto::kTcp, kVip, 80, Sched::kRr,
              {dest(kIdRs1, kRs1, 8080), dest(kIdRs2, kRs2, 8080)}),
      service(1, Proto::kUdp, kVip, 53, Sched::kRr, {dest(kIdUdp, kRs1, 5353)}),
      service(2, Proto::kTcp, kVip, 0, Sched::kRr, {dest(kIdAllPort, kRs2, 0)}),
      service(3, Proto::kTcp, kVipDr, 80, Sched::kRr, {dest(kIdDr, kRsDr, 80, Fwd::kDr)}),
      service(4, Proto::kTcp, kVipTun, 80, Sched::kRr, {dest(kIdTun, kRsTun, 80, Fwd::kTun)}),
      service(5, Proto::kTcp, kVipMh, 80, Sched::kMh,
              {dest(kIdMh1, kRs1, 80), dest(kIdMh2, kRs2, 80)}),
      service(6, Proto::kTcp, kVipNone, 80, Sched::kRr, {dest(kIdNone, kRs1, 80, Fwd::kNat, 0)}),
      service(7, Proto::kTcp, kVipNoArp, 80, Sched::kRr, {dest(kIdNoArp, kRsNoArp, 80)}),
  };
}

std::shared_ptr<const LbTable> make_table(std::vector<lb::Service> services) {
  auto t = std::make_shared<LbTable>();
  t->services = std::move(services);
  t->build();
  return t;
}

lb::ConnTable::Params small_params(uint32_t capacity = 4096) {
  lb::ConnTable::Params p;
  p.capacity = capacity;
  p.hash_seed = 0x5eed;
  return p;
}

class ForwardTest : public ::testing::Test {
 protected:
  ForwardTest() {
    PortView& f = snap_.ports[kFront];
    f.mac = kFrontMac;
    const uint32_t front_addrs[] = {kFrontIp, kVip, kVipDr, kVipTun, kVipMh, kVipNone, kVipNoArp};
    for (const uint32_t a : front_addrs) {
      f.addrs[f.n_addrs] = a;
      f.prefix_len[f.n_addrs] = f.n_addrs == 0 ? 24 : 32;
      ++f.n_addrs;
    }
    f.n_iface = 1;  // the rest are held VIPs
    f.forward = true;
    f.mtu = 1500;
    PortView& b = snap_.ports[kBack];
    b.mac = kBackMac;
    b.addrs[0] = kBackIp;
    b.prefix_len[0] = 24;
    b.n_addrs = 1;
    b.n_iface = 1;
    b.forward = true;
    b.mtu = 1500;
    snap_.n_ports = 2;

    neigh_.set(kFront, kClient, kClientMac);
    neigh_.set(kFront, kClient2, kClient2Mac);
    neigh_.set(kFront, kRouter, kRouterMac);
    neigh_.set(kBack, kRs1, kRs1Mac);
    neigh_.set(kBack, kRs2, kRs2Mac);
    neigh_.set(kBack, kRsDr, kRsDrMac);
    neigh_.set(kBack, kRsTun, kRsTunMac);
    neigh_.set(kBack, kBackHost, kBackHostMac);

    publish(make_table(default_services()), true);
    eng_ = std::make_unique<ForwardEngine>(small_params(), 0, 1, 1000);
  }

  // A new ForwardConfig (connected routes + 203.0.113.0/24 via the router), as a reload makes.
  void publish(std::shared_ptr<const LbTable> lb, bool routing) {
    auto c = std::make_shared<ForwardConfig>();
    c->routing = routing;
    const std::string err = c->fib.build({
        Route{ip4(192, 0, 2, 0), 24, kFront, 0},
        Route{ip4(198, 51, 100, 0), 24, kBack, 0},
        Route{ip4(203, 0, 113, 0), 24, kFront, kRouter},
    });
    EXPECT_EQ(err, "");
    c->lb = std::move(lb);
    snap_.fwd = std::move(c);
  }

  // Classifies `f` like the worker (handle_local must say kForward) and forwards it.
  FwdResult run(Frame& f, uint32_t in_port, ForwardEngine* e = nullptr, uint32_t hops = 0,
                const ConnHint* hint = nullptr) {
    const LocalResult lr = handle_local(f.data(), f.len, snap_.ports[in_port], wstats_);
    EXPECT_EQ(lr.verdict, Verdict::kForward)
        << "handle_local reason " << kDropNames[static_cast<size_t>(lr.reason)];
    if (lr.verdict != Verdict::kForward) return FwdResult{};
    return forward(e != nullptr ? *e : *eng_, snap_, neigh_, f.data(), f.len, kHeadroom, f.cap(),
                   in_port, lr, now_, hops, hint);
  }

  // A table of two slots, full: client port 1 established on rs1, port 2 half-open on rs2.
  void fill_two_slots();

  // The hint a worker's burst lookup would give `f` now (key and hash kept in *key).
  ConnHint hint_for(Frame& f, uint32_t in_port, lb::FlowKey* key) {
    const LocalResult lr = handle_local(f.data(), f.len, snap_.ports[in_port], wstats_);
    EXPECT_TRUE(flow_key(*snap_.fwd->lb, f.data(), lr, key));
    ConnHint h;
    h.valid = true;
    h.key = key;
    h.hash = eng_->conns.hash(*key);
    eng_->conns.find_bulk(key, &h.hash, 1, &h.conn, &h.reply);
    h.inserted = eng_->conns.stats().inserted;
    h.released = eng_->conns.released();
    return h;
  }

  // The real server a client packet went to (eth dst must be its MAC).
  static Mac eth_dst(Frame& f) { return mac_at(f.data()); }

  int64_t active(uint32_t id) const { return eng_->dests[id].active.get(); }
  int64_t inactive(uint32_t id) const { return eng_->dests[id].inactive.get(); }

  Snapshot snap_;
  NeighborCache neigh_{256};
  std::unique_ptr<ForwardEngine> eng_;
  WorkerStats wstats_;
  uint64_t now_ = 1000 * kSec;
};

// Asserts that the frame after a kTransmit is a well-formed IPv4 packet toward `mac` from
// `port_mac`, with valid header and L4 checksums (full recompute).
void expect_sent(Frame& f, const FwdResult& r, uint32_t out_port, const Mac& mac,
                 const Mac& port_mac) {
  ASSERT_EQ(r.action, FwdAction::kTransmit) << kDropNames[static_cast<size_t>(r.reason)];
  EXPECT_EQ(r.out_port, out_port);
  EXPECT_EQ(r.prepend, 0u);
  EXPECT_EQ(r.len, f.len);
  EXPECT_EQ(mac_at(f.data()), mac);
  EXPECT_EQ(mac_at(f.data() + 6), port_mac);
  EXPECT_EQ(get16(f.data() + 12), kEtherTypeIpv4);
  EXPECT_TRUE(ip_csum_ok(f.ip()));
  EXPECT_TRUE(l4_csum_ok(f.ip()));
}

// ---------------------------------------------------------------------------------------------
// NAT

TEST_F(ForwardTest, NatSynGoesToRealServerAndReplyComesBackFromVip) {
  Frame syn = from_client({});
  const Bytes before = syn.ip_bytes();
  const FwdResult r = run(syn, kFront);
  expect_sent(syn, r, kBack, kRs1Mac, kBackMac);
  uint8_t* ip = syn.ip();
  EXPECT_EQ(get32(ip + 12), kClient);
  EXPECT_EQ(get32(ip + 16), kRs1);
  EXPECT_EQ(get16(ip + 20), 40000);
  EXPECT_EQ(get16(ip + 22), 8080);
  EXPECT_EQ(ip[8], 63);
  // Nothing else changed: id, flags, sequence numbers, TCP flags.
  EXPECT_TRUE(std::equal(ip + 4, ip + 8, before.data() + 4));
  EXPECT_TRUE(std::equal(ip + 24, ip + 36, before.data() + 24));

  EXPECT_EQ(eng_->conns.size(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.conns.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.in_pkts.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.in_bytes.get(), syn.len);
  EXPECT_EQ(eng_->services[kSvcHttp].conns.get(), 1u);
  EXPECT_EQ(eng_->services[kSvcHttp].in_pkts.get(), 1u);
  EXPECT_EQ(eng_->stats.lb_in.get(), 1u);
  EXPECT_EQ(inactive(kIdRs1), 1);  // SYN_RECV
  EXPECT_EQ(active(kIdRs1), 0);
  EXPECT_EQ(eng_->sched.inactive[kIdRs1], 1u);

  // The real server's SYN-ACK, on the back port, to the client.
  Frame synack = from_back({.src = kRs1,
                            .dst = kClient,
                            .sport = 8080,
                            .dport = 40000,
                            .flags = kSyn | kAck,
                            .payload = 10},
                           kRs1Mac);
  const FwdResult rr = run(synack, kBack);
  expect_sent(synack, rr, kFront, kClientMac, kFrontMac);
  ip = synack.ip();
  EXPECT_EQ(get32(ip + 12), kVip);
  EXPECT_EQ(get16(ip + 20), 80);
  EXPECT_EQ(get32(ip + 16), kClient);
  EXPECT_EQ(get16(ip + 22), 40000);
  EXPECT_EQ(ip[8], 63);
  EXPECT_EQ(eng_->stats.lb_out.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.out_pkts.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.out_bytes.get(), synack.len);
  EXPECT_EQ(eng_->services[kSvcHttp].out_pkts.get(), 1u);

  // The client's ACK completes the handshake: the connection turns active.
  Frame ack = from_client({.flags = kAck, .payload = 100});
  expect_sent(ack, run(ack, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(get32(ack.ip() + 16), kRs1);
  EXPECT_EQ(active(kIdRs1), 1);
  EXPECT_EQ(inactive(kIdRs1), 0);
  EXPECT_EQ(eng_->sched.active[kIdRs1], 1u);
  EXPECT_EQ(eng_->sched.inactive[kIdRs1], 0u);
  EXPECT_EQ(eng_->conns.size(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.conns.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.in_pkts.get(), 2u);
}

TEST_F(ForwardTest, NatReplyToRemoteClientGoesThroughTheGateway) {
  Frame syn = from_client({.src = kRemote}, kRouterMac);
  expect_sent(syn, run(syn, kFront), kBack, kRs1Mac, kBackMac);
  Frame reply = from_back(
      {.src = kRs1, .dst = kRemote, .sport = 8080, .dport = 40000, .flags = kSyn | kAck}, kRs1Mac);
  expect_sent(reply, run(reply, kBack), kFront, kRouterMac, kFrontMac);
  EXPECT_EQ(get32(reply.ip() + 12), kVip);
}

TEST_F(ForwardTest, RoundRobinAlternatesForNewClients) {
  std::vector<uint32_t> got;
  for (uint16_t i = 0; i < 4; ++i) {
    Frame syn = from_client({.sport = static_cast<uint16_t>(50000 + i)});
    expect_sent(syn, run(syn, kFront), kBack, i % 2 == 0 ? kRs1Mac : kRs2Mac, kBackMac);
    got.push_back(get32(syn.ip() + 16));
  }
  EXPECT_EQ(got, (std::vector<uint32_t>{kRs1, kRs2, kRs1, kRs2}));
  EXPECT_EQ(eng_->dests[kIdRs1].t.conns.get(), 2u);
  EXPECT_EQ(eng_->dests[kIdRs2].t.conns.get(), 2u);
  // A retransmitted SYN stays on its connection.
  Frame again = from_client({.sport = 50001});
  expect_sent(again, run(again, kFront), kBack, kRs2Mac, kBackMac);
  EXPECT_EQ(eng_->conns.size(), 4u);
}

// An established flow keeps its real server when the service changes under it; new ones go
// elsewhere. Both ways of taking rs1 out: unavailable (health check) and weight 0 (drain).
TEST_F(ForwardTest, EstablishedFlowKeepsItsRealServerAcrossServiceChanges) {
  for (const bool drain : {false, true}) {
    SCOPED_TRACE(drain ? "weight 0" : "unavailable");
    eng_ = std::make_unique<ForwardEngine>(small_params(), 0, 1, 1000);
    publish(make_table(default_services()), true);
    Frame syn = from_client({.sport = 41000});
    expect_sent(syn, run(syn, kFront), kBack, kRs1Mac, kBackMac);
    Frame ack = from_client({.sport = 41000, .flags = kAck});
    expect_sent(ack, run(ack, kFront), kBack, kRs1Mac, kBackMac);
    ASSERT_EQ(active(kIdRs1), 1);

    std::vector<lb::Service> svcs = default_services();
    lb::Dest& rs1 = svcs[0].dests[0];
    ASSERT_EQ(rs1.id, kIdRs1);
    if (drain) {
      rs1.weight = 0;
      rs1.available = false;
    } else {
      rs1.available = false;
    }
    lb::build_tables(svcs[0], 1009);
    publish(make_table(std::move(svcs)), true);

    Frame data = from_client({.sport = 41000, .flags = kAck, .payload = 500});
    expect_sent(data, run(data, kFront), kBack, kRs1Mac, kBackMac);
    EXPECT_EQ(get32(data.ip() + 16), kRs1);
    for (uint16_t i = 0; i < 3; ++i) {
      Frame s = from_client({.sport = static_cast<uint16_t>(42000 + i)});
      expect_sent(s, run(s, kFront), kBack, kRs2Mac, kBackMac);
      EXPECT_EQ(get32(s.ip() + 16), kRs2);
    }
    // The old flow's replies still come back from the VIP.
    Frame reply = from_back(
        {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 41000, .flags = kAck, .payload = 20},
        kRs1Mac);
    expect_sent(reply, run(reply, kBack), kFront, kClientMac, kFrontMac);
    EXPECT_EQ(get32(reply.ip() + 12), kVip);
    EXPECT_EQ(eng_->dests[kIdRs1].t.conns.get(), 1u);
    EXPECT_EQ(eng_->dests[kIdRs2].t.conns.get(), 3u);
  }
}

TEST_F(ForwardTest, UdpServiceRewritesAndKeepsChecksumsValid) {
  Frame q = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53, .payload = 33});
  expect_sent(q, run(q, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(get32(q.ip() + 16), kRs1);
  EXPECT_EQ(get16(q.ip() + 22), 5353);
  EXPECT_EQ(eng_->dests[kIdUdp].t.conns.get(), 1u);
  EXPECT_EQ(inactive(kIdUdp), 1);  // UDP entries are never "active"

  Frame a = from_back({.src = kRs1,
                       .dst = kClient,
                       .proto = kIpProtoUdp,
                       .sport = 5353,
                       .dport = 5000,
                       .payload = 77},
                      kRs1Mac);
  expect_sent(a, run(a, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(get32(a.ip() + 12), kVip);
  EXPECT_EQ(get16(a.ip() + 20), 53);

  // A datagram without checksum (0) keeps none.
  Frame z = from_client({.proto = kIpProtoUdp, .sport = 5001, .dport = 53, .payload = 12});
  set16(z.ip() + 26, 0);
  expect_sent(z, run(z, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(get16(z.ip() + 26), 0);
}

TEST_F(ForwardTest, AllPortServiceCatchesOtherPorts) {
  Frame s = from_client({.dport = 443});
  expect_sent(s, run(s, kFront), kBack, kRs2Mac, kBackMac);
  EXPECT_EQ(get32(s.ip() + 16), kRs2);
  EXPECT_EQ(get16(s.ip() + 22), 443);  // real port 0: the client's destination port
  EXPECT_EQ(eng_->dests[kIdAllPort].t.conns.get(), 1u);
  // Port 80 has its own service.
  Frame h = from_client({.dport = 80});
  expect_sent(h, run(h, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(get16(h.ip() + 22), 8080);
  // The reply of the all-port flow comes back from VIP:443.
  Frame r = from_back(
      {.src = kRs2, .dst = kClient, .sport = 443, .dport = 40000, .flags = kSyn | kAck}, kRs2Mac);
  expect_sent(r, run(r, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(get32(r.ip() + 12), kVip);
  EXPECT_EQ(get16(r.ip() + 20), 443);
  // UDP has no all-port service: to an unconfigured port is no service.
  Frame u = from_client({.proto = kIpProtoUdp, .dport = 54});
  const FwdResult ru = run(u, kFront);
  EXPECT_EQ(ru.action, FwdAction::kDrop);
  EXPECT_EQ(ru.reason, Drop::kL4Unhandled);
}

TEST_F(ForwardTest, PersistenceKeepsAClientOnOneRealServer) {
  using lb::Proto, lb::Sched;
  publish(make_table({service(0, Proto::kTcp, kVip, 80, Sched::kRr,
                              {dest(kIdRs1, kRs1, 80), dest(kIdRs2, kRs2, 80)}, 300)}),
          true);
  for (uint16_t i = 0; i < 6; ++i) {
    Frame s = from_client({.sport = static_cast<uint16_t>(1000 + i)});
    expect_sent(s, run(s, kFront), kBack, kRs1Mac, kBackMac);
  }
  EXPECT_EQ(eng_->stats.persist_hits.get(), 5u);
  EXPECT_EQ(eng_->dests[kIdRs1].t.conns.get(), 6u);
  // Another client (a /32 template of its own) gets the next server in turn.
  Frame other = from_client({.src = kClient2, .sport = 1000}, kClient2Mac);
  expect_sent(other, run(other, kFront), kBack, kRs2Mac, kBackMac);

  // After the template expires, rr decides again (and goes on from where it was).
  now_ += 301 * kSec;
  Frame late = from_client({.sport = 2000});
  expect_sent(late, run(late, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(eng_->stats.persist_hits.get(), 5u);
}

TEST_F(ForwardTest, PersistenceNetmaskGroupsClients) {
  using lb::Proto, lb::Sched;
  eng_ = std::make_unique<ForwardEngine>(small_params(), 0, 1, 1000);
  publish(make_table({service(0, Proto::kTcp, kVip, 80, Sched::kRr,
                              {dest(kIdRs1, kRs1, 80), dest(kIdRs2, kRs2, 80)}, 300, 0xffffff00u)}),
          true);
  Frame a = from_client({.src = kClient});
  expect_sent(a, run(a, kFront), kBack, kRs1Mac, kBackMac);
  Frame b = from_client({.src = kClient2}, kClient2Mac);
  expect_sent(b, run(b, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(eng_->stats.persist_hits.get(), 1u);
  // Another /24 (behind the router) has a template of its own: rr moves on.
  Frame c = from_client({.src = kRemote}, kRouterMac);
  expect_sent(c, run(c, kFront), kBack, kRs2Mac, kBackMac);
  // A persistent server going down: its clients are rescheduled, not sent to it.
  std::vector<lb::Service> s{service(
      0, Proto::kTcp, kVip, 80, Sched::kRr,
      {dest(kIdRs1, kRs1, 80, lb::Fwd::kNat, 0), dest(kIdRs2, kRs2, 80)}, 300, 0xffffff00u)};
  publish(make_table(std::move(s)), true);
  Frame d = from_client({.src = kClient, .sport = 7777});
  expect_sent(d, run(d, kFront), kBack, kRs2Mac, kBackMac);
}

// ---------------------------------------------------------------------------------------------
// DR and TUN

TEST_F(ForwardTest, DirectRoutingChangesOnlyTheMacs) {
  Frame s = from_client({.dst = kVipDr, .payload = 40});
  const Bytes ip_before = s.ip_bytes();
  const FwdResult r = run(s, kFront);
  expect_sent(s, r, kBack, kRsDrMac, kBackMac);
  EXPECT_EQ(s.ip_bytes(), ip_before);  // TTL, addresses, ports, checksums untouched
  EXPECT_EQ(s.ip()[8], 64);
  EXPECT_EQ(eng_->dests[kIdDr].t.conns.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdDr].t.in_bytes.get(), s.len);
  // Replies bypass us; the client's next segments follow the connection.
  Frame ack = from_client({.dst = kVipDr, .flags = kAck});
  const Bytes ack_before = ack.ip_bytes();
  expect_sent(ack, run(ack, kFront), kBack, kRsDrMac, kBackMac);
  EXPECT_EQ(ack.ip_bytes(), ack_before);
  EXPECT_EQ(active(kIdDr), 1);
}

TEST_F(ForwardTest, TunnelPrependsAnOuterHeader) {
  Frame s = from_client({.dst = kVipTun, .payload = 100});
  const Bytes inner = s.ip_bytes();
  const uint32_t len = s.len;
  const FwdResult r = run(s, kFront);
  ASSERT_EQ(r.action, FwdAction::kTransmit) << kDropNames[static_cast<size_t>(r.reason)];
  EXPECT_EQ(r.out_port, kBack);
  EXPECT_EQ(r.prepend, 20u);
  EXPECT_EQ(r.len, len + 20);
  const uint8_t* f = s.data() - r.prepend;
  EXPECT_EQ(mac_at(f), kRsTunMac);
  EXPECT_EQ(mac_at(f + 6), kBackMac);
  EXPECT_EQ(get16(f + 12), kEtherTypeIpv4);
  const uint8_t* outer = f + kEthHdrLen;
  EXPECT_EQ(outer[0], 0x45);
  EXPECT_EQ(get16(outer + 2), inner.size() + 20);
  EXPECT_EQ(get16(outer + 6), kDf);  // DF copied from the inner packet
  EXPECT_EQ(outer[8], 64);
  EXPECT_EQ(outer[9], 4);
  EXPECT_EQ(get32(outer + 12), kBackIp);
  EXPECT_EQ(get32(outer + 16), kRsTun);
  EXPECT_EQ(ref_csum(outer, 20), 0);
  EXPECT_EQ(Bytes(outer + 20, outer + 20 + inner.size()), inner);
  EXPECT_EQ(eng_->dests[kIdTun].t.in_pkts.get(), 1u);

  // Without DF the outer header has none either.
  Frame n = from_client({.dst = kVipTun, .sport = 40001, .frag = 0});
  const FwdResult rn = run(n, kFront);
  ASSERT_EQ(rn.action, FwdAction::kTransmit);
  EXPECT_EQ(get16(n.data() - 20 + kEthHdrLen + 6), 0);

  // No headroom: refused rather than written out of bounds.
  Frame h = from_client({.dst = kVipTun, .sport = 40002});
  const LocalResult lr = handle_local(h.data(), h.len, snap_.ports[kFront], wstats_);
  const FwdResult rh =
      forward(*eng_, snap_, neigh_, h.data(), h.len, 10, h.cap(), kFront, lr, now_);
  EXPECT_EQ(rh.action, FwdAction::kDrop);
}

TEST_F(ForwardTest, TunnelTooBigWithDfAnswersFragmentationNeeded) {
  snap_.ports[kBack].mtu = 1400;
  Frame s = from_client({.dst = kVipTun, .payload = 1390 - 40});
  ASSERT_EQ(get16(s.ip() + 2), 1390);
  const Bytes quoted_hdr(s.ip(), s.ip() + 28);
  const FwdResult r = run(s, kFront);
  EXPECT_EQ(r.action, FwdAction::kReply);
  EXPECT_EQ(r.reason, Drop::kMtuExceeded);
  EXPECT_EQ(r.out_port, kFront);
  ASSERT_GT(r.len, 14u + 20 + 8 + 28);
  s.len = r.len;
  const uint8_t* ip = s.ip();
  EXPECT_EQ(mac_at(s.data()), kClientMac);
  EXPECT_EQ(mac_at(s.data() + 6), kFrontMac);
  EXPECT_TRUE(ip_csum_ok(ip));
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  EXPECT_EQ(get32(ip + 12), kFrontIp);
  EXPECT_EQ(get32(ip + 16), kClient);
  EXPECT_EQ(get16(ip + 2) + kEthHdrLen, r.len);
  const uint8_t* ic = ip + 20;
  EXPECT_EQ(ic[0], 3);
  EXPECT_EQ(ic[1], 4);
  EXPECT_EQ(get16(ic + 6), 1380);  // port MTU - 20 for the tunnel header
  EXPECT_TRUE(l4_csum_ok(ip));
  EXPECT_EQ(Bytes(ic + 8, ic + 36), quoted_hdr);
  EXPECT_EQ(eng_->stats.icmp_sent.get(), 1u);

  // Without DF it is just dropped.
  Frame n = from_client({.dst = kVipTun, .sport = 40001, .frag = 0, .payload = 1390 - 40});
  const FwdResult rn = run(n, kFront);
  EXPECT_EQ(rn.action, FwdAction::kDrop);
  EXPECT_EQ(rn.reason, Drop::kMtuExceeded);
}

// ---------------------------------------------------------------------------------------------
// Drops

TEST_F(ForwardTest, NonSynOfUnknownFlowIsDropped) {
  for (const uint8_t flags : {kAck, uint8_t{kAck | kFin}, kRst, uint8_t{kSyn | kAck}}) {
    Frame f = from_client({.flags = flags});
    const FwdResult r = run(f, kFront);
    EXPECT_EQ(r.action, FwdAction::kDrop);
    EXPECT_EQ(r.reason, Drop::kLbNoConn) << int{flags};
  }
  EXPECT_EQ(eng_->conns.size(), 0u);
}

TEST_F(ForwardTest, NoUsableRealServer) {
  Frame f = from_client({.dst = kVipNone});
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kLbNoDest);
  EXPECT_EQ(eng_->conns.size(), 0u);
}

TEST_F(ForwardTest, FullConnectionTable) {
  eng_ = std::make_unique<ForwardEngine>(small_params(2), 0, 1, 1000);
  // Two established connections fill it.
  for (const uint16_t port : {uint16_t{1}, uint16_t{2}}) {
    Frame s = from_client({.sport = port});
    expect_sent(s, run(s, kFront), kBack, port == 1 ? kRs1Mac : kRs2Mac, kBackMac);
    Frame a = from_client({.sport = port, .flags = kAck});
    expect_sent(a, run(a, kFront), kBack, port == 1 ? kRs1Mac : kRs2Mac, kBackMac);
  }
  ASSERT_EQ(eng_->conns.size(), 2u);
  ASSERT_EQ(eng_->conns.embryonic(), 0u);
  Frame s3 = from_client({.sport = 3});
  const FwdResult r = run(s3, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kLbConnFull);
  EXPECT_EQ(active(kIdRs1) + active(kIdRs2), 2);
  EXPECT_EQ(inactive(kIdRs1) + inactive(kIdRs2), 0);
  // The refused SYN still moved rr on, but no connection was counted for it.
  EXPECT_EQ(eng_->dests[kIdRs1].t.conns.get() + eng_->dests[kIdRs2].t.conns.get(), 2u);
}

void ForwardTest::fill_two_slots() {
  eng_ = std::make_unique<ForwardEngine>(small_params(2), 0, 1, 1000);
  Frame s1 = from_client({.sport = 1});
  expect_sent(s1, run(s1, kFront), kBack, kRs1Mac, kBackMac);
  Frame a1 = from_client({.sport = 1, .flags = kAck});
  expect_sent(a1, run(a1, kFront), kBack, kRs1Mac, kBackMac);  // established
  Frame s2 = from_client({.sport = 2});
  expect_sent(s2, run(s2, kFront), kBack, kRs2Mac, kBackMac);  // half-open
}

TEST_F(ForwardTest, FullTableEvictsTheOldestHalfOpenConnection) {
  fill_two_slots();
  ASSERT_EQ(inactive(kIdRs2), 1);
  Frame s3 = from_client({.sport = 3});
  expect_sent(s3, run(s3, kFront), kBack, kRs1Mac, kBackMac);  // evicts sport 2
  EXPECT_EQ(eng_->conns.size(), 2u);
  EXPECT_EQ(eng_->conns.stats().evicted_embryonic, 1u);
  EXPECT_EQ(inactive(kIdRs2), 0);  // the evicted one is uncounted
  EXPECT_EQ(eng_->sched.inactive[kIdRs2], 0u);
  EXPECT_EQ(inactive(kIdRs1), 1);
  EXPECT_EQ(active(kIdRs1), 1);
  // The evicted flow's next segment is unknown.
  Frame a2 = from_client({.sport = 2, .flags = kAck});
  const FwdResult r = run(a2, kFront);
  EXPECT_EQ(r.reason, Drop::kLbNoConn);
}

// A burst is looked up before any of it is forwarded. A connection an earlier packet of the
// burst evicted (its slot reused at once) must not carry this packet to the new flow's server.
TEST_F(ForwardTest, BurstHintOfAConnectionEvictedMeanwhileIsNotTrusted) {
  fill_two_slots();
  // The burst: a SYN of a new flow (evicts sport 2), then sport 2's ACK.
  Frame s3 = from_client({.sport = 3});
  Frame a2 = from_client({.sport = 2, .flags = kAck});
  lb::FlowKey k3, k2;
  const ConnHint h3 = hint_for(s3, kFront, &k3);
  const ConnHint h2 = hint_for(a2, kFront, &k2);
  ASSERT_EQ(h3.conn, nullptr);
  ASSERT_NE(h2.conn, nullptr);
  expect_sent(s3, run(s3, kFront, nullptr, 0, &h3), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(eng_->conns.stats().evicted_embryonic, 1u);
  EXPECT_EQ(h2.conn->fwd.src_port, 3);  // the slot now holds sport 3
  EXPECT_EQ(run(a2, kFront, nullptr, 0, &h2).reason, Drop::kLbNoConn);
  EXPECT_EQ(eng_->conns.size(), 2u);
}

// A flow opened by an earlier packet of the same burst (a retransmitted SYN) is found, not
// opened twice; a connection found for the burst stays trusted across inserts.
TEST_F(ForwardTest, BurstHintsAcrossAnInsertInTheSameBurst) {
  Frame e1 = from_client({.sport = 7});
  expect_sent(e1, run(e1, kFront), kBack, kRs1Mac, kBackMac);
  Frame syn = from_client({.sport = 8}), again = from_client({.sport = 8});
  Frame ack = from_client({.sport = 7, .flags = kAck});
  lb::FlowKey k1, k2, k3;
  const ConnHint h1 = hint_for(syn, kFront, &k1);
  const ConnHint h2 = hint_for(again, kFront, &k2);
  const ConnHint h3 = hint_for(ack, kFront, &k3);
  ASSERT_EQ(h2.conn, nullptr);
  ASSERT_NE(h3.conn, nullptr);
  const FwdResult r1 = run(syn, kFront, nullptr, 0, &h1);
  ASSERT_EQ(r1.action, FwdAction::kTransmit);
  const Mac first = eth_dst(syn);
  const FwdResult r2 = run(again, kFront, nullptr, 0, &h2);
  ASSERT_EQ(r2.action, FwdAction::kTransmit);
  EXPECT_EQ(eth_dst(again), first);  // the same real server
  EXPECT_EQ(eng_->conns.size(), 2u);
  EXPECT_EQ(eng_->conns.stats().refused_exists, 0u);
  expect_sent(ack, run(ack, kFront, nullptr, 0, &h3), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(h3.conn->state, lb::TcpState::kEstablished);
}

TEST_F(ForwardTest, UnresolvedNextHopAsksForResolution) {
  Frame f = from_client({.dst = kVipNoArp});
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kNoNeighbor);
  EXPECT_TRUE(r.resolve);
  EXPECT_EQ(r.resolve_port, kBack);
  EXPECT_EQ(r.resolve_ip, kRsNoArp);
  EXPECT_EQ(eng_->stats.neighbor_misses.get(), 1u);
  EXPECT_EQ(eng_->dests[kIdNoArp].t.in_pkts.get(), 0u);

  // Routed traffic through an unresolved gateway names the gateway.
  neigh_.erase(kFront, kRouter);
  Frame t = from_back({.src = kBackHost, .dst = kRemote, .flags = kAck}, kBackHostMac);
  const FwdResult rt = run(t, kBack);
  EXPECT_EQ(rt.reason, Drop::kNoNeighbor);
  EXPECT_TRUE(rt.resolve);
  EXPECT_EQ(rt.resolve_port, kFront);
  EXPECT_EQ(rt.resolve_ip, kRouter);
}

TEST_F(ForwardTest, NoRouteAnswersNetUnreachable) {
  Frame f = from_client({.dst = ip4(10, 1, 2, 3), .flags = kAck, .payload = 30});
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kReply);
  EXPECT_EQ(r.reason, Drop::kNoRoute);
  EXPECT_EQ(r.out_port, kFront);
  f.len = r.len;
  EXPECT_EQ(mac_at(f.data()), kClientMac);
  EXPECT_EQ(mac_at(f.data() + 6), kFrontMac);
  EXPECT_TRUE(ip_csum_ok(f.ip()));
  EXPECT_TRUE(l4_csum_ok(f.ip()));
  EXPECT_EQ(get32(f.ip() + 12), kFrontIp);
  EXPECT_EQ(get32(f.ip() + 16), kClient);
  EXPECT_EQ(f.ip()[20], 3);
  EXPECT_EQ(f.ip()[21], 0);
  EXPECT_EQ(get32(f.ip() + 28 + 16), ip4(10, 1, 2, 3));  // the quoted destination
  EXPECT_EQ(eng_->stats.icmp_sent.get(), 1u);
}

TEST_F(ForwardTest, TtlOneInTransitAnswersTimeExceeded) {
  Frame f = from_client({.dst = kBackHost, .flags = kAck, .ttl = 1});
  const Bytes quoted(f.ip(), f.ip() + 28);
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kReply);
  EXPECT_EQ(r.reason, Drop::kTtlExceeded);
  f.len = r.len;
  EXPECT_TRUE(ip_csum_ok(f.ip()));
  EXPECT_TRUE(l4_csum_ok(f.ip()));
  EXPECT_EQ(get32(f.ip() + 16), kClient);
  EXPECT_EQ(f.ip()[20], 11);
  EXPECT_EQ(f.ip()[21], 0);
  EXPECT_EQ(Bytes(f.ip() + 28, f.ip() + 56), quoted);  // quoted as received
}

TEST_F(ForwardTest, TtlOneToAVirtualServiceQuotesThePacketAsSent) {
  // The client must recognise its own packet (to the VIP) in the error, never the real server.
  Frame f = from_client({.ttl = 1});
  const Bytes quoted(f.ip(), f.ip() + 28);
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kReply);
  EXPECT_EQ(r.reason, Drop::kTtlExceeded);
  f.len = r.len;
  EXPECT_EQ(get32(f.ip() + 16), kClient);
  EXPECT_EQ(f.ip()[20], 11);
  EXPECT_TRUE(l4_csum_ok(f.ip()));
  EXPECT_EQ(Bytes(f.ip() + 28, f.ip() + 56), quoted);
}

TEST_F(ForwardTest, TransitTooBigAnswersFragmentationNeeded) {
  snap_.ports[kBack].mtu = 1400;
  Frame f = from_client({.dst = kBackHost, .flags = kAck, .payload = 1410});
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kReply);
  EXPECT_EQ(r.reason, Drop::kMtuExceeded);
  EXPECT_EQ(r.out_port, kFront);
  f.len = r.len;
  EXPECT_TRUE(ip_csum_ok(f.ip()));
  EXPECT_TRUE(l4_csum_ok(f.ip()));
  EXPECT_EQ(f.ip()[20], 3);
  EXPECT_EQ(f.ip()[21], 4);
  EXPECT_EQ(get16(f.ip() + 26), 1400);
  EXPECT_EQ(get32(f.ip() + 28 + 16), kBackHost);
  EXPECT_LE(get16(f.ip() + 2), 576);

  Frame n = from_client({.dst = kBackHost, .flags = kAck, .frag = 0, .payload = 1410});
  const FwdResult rn = run(n, kFront);
  EXPECT_EQ(rn.action, FwdAction::kDrop);
  EXPECT_EQ(rn.reason, Drop::kMtuExceeded);
}

// A NAT flow through a smaller MTU: the sender must find its own packet in the error (the
// client: to VIP:80; the real server: from RS:port), or path MTU discovery never converges.
TEST_F(ForwardTest, NatTooBigQuotesThePacketAsItsSenderSentIt) {
  snap_.ports[kBack].mtu = 1400;
  Frame f = from_client({.flags = kSyn, .payload = 1410});
  const Bytes quoted(f.ip(), f.ip() + 28);
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kReply);
  EXPECT_EQ(r.reason, Drop::kMtuExceeded);
  EXPECT_EQ(r.out_port, kFront);
  f.len = r.len;
  EXPECT_EQ(get32(f.ip() + 16), kClient);
  EXPECT_EQ(mac_at(f.data()), kClientMac);
  EXPECT_EQ(get16(f.ip() + 26), 1400);
  EXPECT_TRUE(l4_csum_ok(f.ip()));
  const uint8_t* q = f.ip() + 28;
  EXPECT_EQ(get32(q + 16), kVip);
  EXPECT_EQ(get16(q + 22), 80);
  // Quoted as received but for the TTL the router already took (and the header checksum).
  EXPECT_TRUE(ref_csum(q, 20) == 0);
  EXPECT_EQ(Bytes(q + 12, q + 28), Bytes(quoted.begin() + 12, quoted.end()));

  // The real server's big reply toward a smaller front MTU.
  snap_.ports[kBack].mtu = 1500;
  Frame s = from_client({});
  expect_sent(s, run(s, kFront), kBack, kRs1Mac, kBackMac);
  snap_.ports[kFront].mtu = 1200;
  Frame big = from_back(
      {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kAck, .payload = 1300},
      kRs1Mac);
  const FwdResult rb = run(big, kBack);
  EXPECT_EQ(rb.action, FwdAction::kReply);
  EXPECT_EQ(rb.reason, Drop::kMtuExceeded);
  EXPECT_EQ(rb.out_port, kBack);
  big.len = rb.len;
  EXPECT_EQ(mac_at(big.data()), kRs1Mac);
  EXPECT_EQ(get32(big.ip() + 12), kBackIp);
  EXPECT_EQ(get32(big.ip() + 16), kRs1);
  EXPECT_EQ(get16(big.ip() + 26), 1200);
  EXPECT_TRUE(ip_csum_ok(big.ip()));
  EXPECT_TRUE(l4_csum_ok(big.ip()));
  const uint8_t* bq = big.ip() + 28;
  EXPECT_EQ(get32(bq + 12), kRs1);
  EXPECT_EQ(get16(bq + 20), 8080);
  EXPECT_TRUE(ref_csum(bq, 20) == 0);
}

TEST_F(ForwardTest, FragmentToAServiceIsDropped) {
  // First fragment (MF set) and a later one (offset 185 * 8).
  for (const uint16_t frag : {kMf, static_cast<uint16_t>(185)}) {
    Frame f = from_client({.frag = frag, .payload = 200});
    const FwdResult r = run(f, kFront);
    EXPECT_EQ(r.action, FwdAction::kDrop);
    EXPECT_EQ(r.reason, Drop::kIpv4Fragment) << frag;
  }
  // A VIP with no all-port service: fragments are still fragments, not "no service".
  for (const uint16_t frag : {kMf, static_cast<uint16_t>(185)}) {
    Frame f = from_client({.dst = kVipDr, .frag = frag, .payload = 200});
    const FwdResult r = run(f, kFront);
    EXPECT_EQ(r.action, FwdAction::kDrop);
    EXPECT_EQ(r.reason, Drop::kIpv4Fragment) << frag;
  }
  EXPECT_EQ(eng_->conns.size(), 0u);
}

TEST_F(ForwardTest, MartianSourcesAndGroupDestinations) {
  for (const uint32_t src :
       {ip4(127, 0, 0, 1), ip4(0, 1, 2, 3), ip4(224, 0, 0, 5), ip4(240, 0, 0, 1)}) {
    Frame f = from_client({.src = src});
    const FwdResult r = run(f, kFront);
    EXPECT_EQ(r.action, FwdAction::kDrop);
    EXPECT_EQ(r.reason, Drop::kIpv4Martian) << src;
  }
  for (const uint32_t dst : {ip4(239, 1, 2, 3), ip4(255, 255, 255, 255), ip4(240, 0, 0, 9)}) {
    Frame f = from_client({.dst = dst, .proto = kIpProtoUdp});
    const FwdResult r = run(f, kFront);
    EXPECT_EQ(r.action, FwdAction::kDrop);
    EXPECT_EQ(r.reason, Drop::kIpv4NotLocal) << dst;
  }
  EXPECT_EQ(eng_->stats.icmp_sent.get(), 0u);
}

TEST_F(ForwardTest, InterfaceAddressTrafficGoesToTheTapOrIsUnhandled) {
  Frame ssh = from_client({.dst = kFrontIp, .dport = 22});
  FwdResult r = run(ssh, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kL4Unhandled);
  Frame icmp = from_client(
      {.dst = kFrontIp,
       .proto = kIpProtoIcmp,
       .icmp = icmp_error_msg(3, 3, 0,
                              ip_packet({.src = kFrontIp, .dst = kClient, .proto = kIpProtoUdp}))});
  r = run(icmp, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kIcmpUnhandled);

  snap_.ports[kFront].tap = true;
  Frame ssh2 = from_client({.dst = kFrontIp, .dport = 22});
  const Bytes before = ssh2.bytes();
  r = run(ssh2, kFront);
  EXPECT_EQ(r.action, FwdAction::kToKernel);
  EXPECT_EQ(ssh2.bytes(), before);
  Frame icmp2 = from_client(
      {.dst = kFrontIp,
       .proto = kIpProtoIcmp,
       .icmp = icmp_error_msg(3, 3, 0,
                              ip_packet({.src = kFrontIp, .dst = kClient, .proto = kIpProtoUdp}))});
  EXPECT_EQ(run(icmp2, kFront).action, FwdAction::kToKernel);
  // A VIP is not an interface address: nothing of it goes to the kernel.
  Frame vip = from_client({.dst = kVipDr, .dport = 22});
  r = run(vip, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kL4Unhandled);
}

// ---------------------------------------------------------------------------------------------
// ICMP errors about tracked flows

TEST_F(ForwardTest, FragNeededAboutAReplyIsPassedToTheRealServer) {
  Frame syn = from_client({.src = kRemote}, kRouterMac);
  expect_sent(syn, run(syn, kFront), kBack, kRs1Mac, kBackMac);
  // A router on the way to the client got our reply VIP:80 -> client and says it is too big.
  const Bytes reply = ip_packet({.src = kVip,
                                 .dst = kRemote,
                                 .sport = 80,
                                 .dport = 40000,
                                 .flags = kAck,
                                 .ttl = 63,
                                 .payload = 40});
  const Bytes quote(reply.begin(), reply.begin() + 28);
  Frame err = frame(kFrontMac, kRouterMac,
                    ip_packet({.src = kRouter,
                               .dst = kVip,
                               .proto = kIpProtoIcmp,
                               .icmp = icmp_error_msg(3, 4, 1280, quote)}));
  const FwdResult r = run(err, kFront);
  expect_sent(err, r, kBack, kRs1Mac, kBackMac);
  const uint8_t* ip = err.ip();
  EXPECT_EQ(get32(ip + 12), kRouter);
  EXPECT_EQ(get32(ip + 16), kRs1);
  EXPECT_EQ(ip[8], 63);
  const uint8_t* ic = ip + 20;
  EXPECT_EQ(ic[0], 3);
  EXPECT_EQ(ic[1], 4);
  EXPECT_EQ(get16(ic + 6), 1280);
  const uint8_t* q = ic + 8;
  EXPECT_EQ(get32(q + 12), kRs1);  // the real server's own packet
  EXPECT_EQ(get32(q + 16), kRemote);
  EXPECT_EQ(get16(q + 20), 8080);
  EXPECT_EQ(get16(q + 22), 40000);
  EXPECT_EQ(ref_csum(q, 20), 0);  // the quoted header's checksum follows
  EXPECT_EQ(eng_->stats.icmp_related.get(), 1u);

  // About a flow we do not know: not ours (no service for ICMP): unhandled.
  const Bytes other = ip_packet({.src = kVip, .dst = kRemote, .sport = 80, .dport = 40999});
  Frame err2 = frame(
      kFrontMac, kRouterMac,
      ip_packet({.src = kRouter,
                 .dst = kVip,
                 .proto = kIpProtoIcmp,
                 .icmp = icmp_error_msg(3, 4, 1280, Bytes(other.begin(), other.begin() + 28))}));
  const FwdResult r2 = run(err2, kFront);
  EXPECT_EQ(r2.action, FwdAction::kDrop);
  EXPECT_EQ(r2.reason, Drop::kIcmpUnhandled);

  // About the reply of a DR flow (sent by the real server itself, from the VIP): passed on to
  // the real server untouched but for the MACs.
  Frame dsyn = from_client({.src = kRemote, .dst = kVipDr, .sport = 45000}, kRouterMac);
  expect_sent(dsyn, run(dsyn, kFront), kBack, kRsDrMac, kBackMac);
  const Bytes dreply = ip_packet({.src = kVipDr, .dst = kRemote, .sport = 80, .dport = 45000});
  Frame err3 = frame(
      kFrontMac, kRouterMac,
      ip_packet({.src = kRouter,
                 .dst = kVipDr,
                 .proto = kIpProtoIcmp,
                 .icmp = icmp_error_msg(3, 4, 1280, Bytes(dreply.begin(), dreply.begin() + 28))}));
  const Bytes err3_ip = err3.ip_bytes();
  expect_sent(err3, run(err3, kFront), kBack, kRsDrMac, kBackMac);
  EXPECT_EQ(err3.ip_bytes(), err3_ip);
  EXPECT_EQ(eng_->stats.icmp_related.get(), 2u);
}

TEST_F(ForwardTest, PortUnreachableFromTheRealServerReachesTheClient) {
  Frame q = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53, .payload = 20});
  expect_sent(q, run(q, kFront), kBack, kRs1Mac, kBackMac);
  const Bytes sent = q.ip_bytes();  // client -> rs1:5353 as the real server received it
  Frame err = from_back(
      {.src = kRs1, .dst = kClient, .proto = kIpProtoIcmp, .icmp = icmp_error_msg(3, 3, 0, sent)},
      kRs1Mac);
  const FwdResult r = run(err, kBack);
  expect_sent(err, r, kFront, kClientMac, kFrontMac);
  const uint8_t* ip = err.ip();
  EXPECT_EQ(get32(ip + 12), kVip);  // it came from the real server itself: from the VIP now
  EXPECT_EQ(get32(ip + 16), kClient);
  const uint8_t* q2 = ip + 28;
  EXPECT_EQ(get32(q2 + 12), kClient);
  EXPECT_EQ(get32(q2 + 16), kVip);
  EXPECT_EQ(get16(q2 + 20), 5000);
  EXPECT_EQ(get16(q2 + 22), 53);
  EXPECT_EQ(ref_csum(q2, 20), 0);
  EXPECT_EQ(eng_->stats.icmp_related.get(), 1u);

  // From a router on the back side the outer source stays.
  Frame err2 = from_back({.src = kBackHost,
                          .dst = kClient,
                          .proto = kIpProtoIcmp,
                          .icmp = icmp_error_msg(11, 0, 0, Bytes(sent.begin(), sent.begin() + 28))},
                         kBackHostMac);
  expect_sent(err2, run(err2, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(get32(err2.ip() + 12), kBackHost);
  EXPECT_EQ(get32(err2.ip() + 28 + 16), kVip);
}

// ---------------------------------------------------------------------------------------------
// Maglev

TEST_F(ForwardTest, MaglevPicksUpAFlowWhoseStateWasLost) {
  const lb::Service& svc = snap_.fwd->lb->services[5];
  ASSERT_EQ(svc.key.vip, kVipMh);
  std::set<uint32_t> seen;
  for (uint32_t i = 0; i < 32; ++i) {
    const uint32_t client = ip4(203, 0, 113, 10 + i);
    lb::SchedState st;
    const int want = lb::pick(svc, st, client, 0);
    ASSERT_GE(want, 0);
    const lb::Dest& d = svc.dests[static_cast<size_t>(want)];
    const Mac want_mac = d.ip == kRs1 ? kRs1Mac : kRs2Mac;
    seen.insert(d.ip);

    Frame ack =
        from_client({.src = client, .dst = kVipMh, .sport = 33000, .flags = kAck}, kRouterMac);
    expect_sent(ack, run(ack, kFront), kBack, want_mac, kBackMac);
    EXPECT_EQ(get32(ack.ip() + 16), d.ip);
    // A SYN of the same client, on a worker that never saw it, makes the same choice.
    ForwardEngine other(small_params(), 0, 1, 1000);
    Frame syn = from_client({.src = client, .dst = kVipMh, .sport = 33001}, kRouterMac);
    expect_sent(syn, run(syn, kFront, &other), kBack, want_mac, kBackMac);
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(eng_->conns.size(), 32u);
  EXPECT_EQ(active(kIdMh1) + active(kIdMh2), 32);  // picked up as established
  EXPECT_EQ(inactive(kIdMh1) + inactive(kIdMh2), 0);
  // A RST or a SYN-ACK of an unknown flow is never picked up.
  for (const uint8_t flags : {kRst, uint8_t{kSyn | kAck}}) {
    Frame f = from_client({.dst = kVipMh, .sport = 34000, .flags = flags});
    const FwdResult r = run(f, kFront);
    EXPECT_EQ(r.reason, Drop::kLbNoConn);
  }
}

// ---------------------------------------------------------------------------------------------
// Several workers

TEST_F(ForwardTest, FlowsAreHandedToTheWorkerOwningTheClient) {
  ForwardEngine w0(small_params(), 0, 2, 1000), w1(small_params(), 1, 2, 1000);
  uint32_t client = 0;
  for (uint32_t i = 1; i < 250 && client == 0; ++i)
    if (owner_of(ip4(203, 0, 113, i), 2) == 1) client = ip4(203, 0, 113, i);
  ASSERT_NE(client, 0u);

  Frame syn = from_client({.src = client}, kRouterMac);
  const Bytes untouched = syn.bytes();
  FwdResult r = run(syn, kFront, &w0);
  EXPECT_EQ(r.action, FwdAction::kHandOff);
  EXPECT_EQ(r.owner, owner_of(client, 2));
  EXPECT_EQ(syn.bytes(), untouched);
  EXPECT_EQ(w0.conns.size(), 0u);
  // The owner processes it (hops = 1: handed over).
  r = run(syn, kFront, &w1, 1);
  expect_sent(syn, r, kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(w1.conns.size(), 1u);

  // The real server's reply reaches worker 0 first: handed to the owner of its destination.
  Frame reply = from_back(
      {.src = kRs1, .dst = client, .sport = 8080, .dport = 40000, .flags = kSyn | kAck}, kRs1Mac);
  const Bytes reply_before = reply.bytes();
  r = run(reply, kBack, &w0);
  EXPECT_EQ(r.action, FwdAction::kHandOff);
  EXPECT_EQ(r.owner, owner_of(client, 2));
  EXPECT_EQ(reply.bytes(), reply_before);
  r = run(reply, kBack, &w1);  // on the owner even with hops 0
  expect_sent(reply, r, kFront, kRouterMac, kFrontMac);
  EXPECT_EQ(get32(reply.ip() + 12), kVip);

  // A frame handed over once is never handed on: a worker that is not the owner processes it.
  Frame syn2 = from_client({.src = client, .sport = 40001}, kRouterMac);
  r = run(syn2, kFront, &w0, 1);
  EXPECT_EQ(r.action, FwdAction::kTransmit);
  EXPECT_EQ(w0.conns.size(), 1u);

  // ICMP errors about the flow follow it too.
  const Bytes rq = ip_packet({.src = kVip, .dst = client, .sport = 80, .dport = 40000});
  Frame err =
      frame(kFrontMac, kRouterMac,
            ip_packet({.src = kRouter,
                       .dst = kVip,
                       .proto = kIpProtoIcmp,
                       .icmp = icmp_error_msg(3, 4, 1280, Bytes(rq.begin(), rq.begin() + 28))}));
  r = run(err, kFront, &w0);
  EXPECT_EQ(r.action, FwdAction::kHandOff);
  EXPECT_EQ(r.owner, 1u);
  r = run(err, kFront, &w1, 1);
  expect_sent(err, r, kBack, kRs1Mac, kBackMac);
}

// ---------------------------------------------------------------------------------------------
// Maintenance

TEST_F(ForwardTest, ConnectionsAgeOutAndLevelsReturnToZero) {
  lb::ConnTable::Params p = small_params();
  p.timeouts.tcp_syn = 1;
  p.timeouts.tcp_established = 3;
  p.timeouts.udp = 2;
  eng_ = std::make_unique<ForwardEngine>(p, 0, 1, 1000);
  Frame half = from_client({.sport = 1});  // SYN_RECV: 1 s
  expect_sent(half, run(half, kFront), kBack, kRs1Mac, kBackMac);
  Frame est = from_client({.sport = 2});
  expect_sent(est, run(est, kFront), kBack, kRs2Mac, kBackMac);
  Frame est_ack = from_client({.sport = 2, .flags = kAck});  // ESTABLISHED: 3 s
  expect_sent(est_ack, run(est_ack, kFront), kBack, kRs2Mac, kBackMac);
  Frame udp = from_client({.proto = kIpProtoUdp, .sport = 3, .dport = 53});  // 2 s
  expect_sent(udp, run(udp, kFront), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(eng_->conns.size(), 3u);
  EXPECT_EQ(inactive(kIdRs1), 1);
  EXPECT_EQ(active(kIdRs2), 1);
  EXPECT_EQ(inactive(kIdUdp), 1);

  EXPECT_EQ(forward_maintenance(*eng_, now_ + kSec / 2, 100), 0u);
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 1500 * kSec / 1000, 100), 1u);
  EXPECT_EQ(inactive(kIdRs1), 0);
  EXPECT_EQ(eng_->sched.inactive[kIdRs1], 0u);
  EXPECT_EQ(eng_->conns.size(), 2u);
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 2500 * kSec / 1000, 100), 1u);
  EXPECT_EQ(inactive(kIdUdp), 0);
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 10 * kSec, 100), 1u);
  EXPECT_EQ(active(kIdRs2), 0);
  EXPECT_EQ(eng_->sched.active[kIdRs2], 0u);
  EXPECT_EQ(eng_->conns.size(), 0u);
  EXPECT_EQ(eng_->stats.conn_expired.get(), 3u);
  for (uint32_t id = 0; id <= kIdNoArp; ++id) {
    EXPECT_EQ(active(id), 0) << id;
    EXPECT_EQ(inactive(id), 0) << id;
  }

  // An expired flow's next segment is unknown again.
  Frame late = from_client({.sport = 2, .flags = kAck});
  now_ += 10 * kSec;
  EXPECT_EQ(run(late, kFront).reason, Drop::kLbNoConn);
}

TEST_F(ForwardTest, MaintenanceBoundsItsWorkAndAppliesNewTimeouts) {
  lb::ConnTable::Params p = small_params();
  p.timeouts.tcp_syn = 1;
  eng_ = std::make_unique<ForwardEngine>(p, 0, 1, 1000);
  for (uint16_t i = 0; i < 5; ++i) {
    Frame s = from_client({.sport = static_cast<uint16_t>(100 + i)});
    ASSERT_EQ(run(s, kFront).action, FwdAction::kTransmit);
  }
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 5 * kSec, 2), 2u);
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 5 * kSec, 2), 2u);
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 5 * kSec, 2), 1u);
  EXPECT_EQ(inactive(kIdRs1) + inactive(kIdRs2), 0);

  lb::Timeouts t;
  t.tcp_established = 77;
  t.udp = 5;
  eng_->next_timeouts = t;
  eng_->timeouts_gen.fetch_add(1, std::memory_order_release);
  EXPECT_NE(eng_->conns.timeouts(), t);
  forward_maintenance(*eng_, now_ + 6 * kSec, 10);
  EXPECT_EQ(eng_->conns.timeouts(), t);
  EXPECT_EQ(eng_->applied_gen, 1u);
}

TEST_F(ForwardTest, ConnectionListingIsServedInSlices) {
  // Above one slice (65536 slots) of connection table: the listing takes two passes.
  eng_ = std::make_unique<ForwardEngine>(small_params(1u << 17), 0, 1, 1000);
  Frame a = from_client({.sport = 1});
  ASSERT_EQ(run(a, kFront).action, FwdAction::kTransmit);
  Frame b = from_client({.proto = kIpProtoUdp, .sport = 2, .dport = 53});
  ASSERT_EQ(run(b, kFront).action, FwdAction::kTransmit);
  Frame c = from_client({.src = kClient2, .sport = 3}, kClient2Mac);
  ASSERT_EQ(run(c, kFront).action, FwdAction::kTransmit);

  ConnDump& d = eng_->dump;
  d.max = 100;
  d.out.reserve(d.max);
  const uint64_t req = d.req.fetch_add(1, std::memory_order_release) + 1;
  int passes = 0;
  while (d.done.load(std::memory_order_acquire) != req && passes < 10) {
    forward_maintenance(*eng_, now_, 100);
    ++passes;
  }
  EXPECT_EQ(passes, 2);
  ASSERT_EQ(d.out.size(), 3u);
  std::vector<ConnRecord> recs = d.out;
  std::sort(recs.begin(), recs.end(),
            [](const ConnRecord& x, const ConnRecord& y) { return x.client_port < y.client_port; });
  EXPECT_EQ(recs[0].proto, kIpProtoTcp);
  EXPECT_EQ(recs[0].client_ip, kClient);
  EXPECT_EQ(recs[0].client_port, 1);
  EXPECT_EQ(recs[0].vip, kVip);
  EXPECT_EQ(recs[0].vport, 80);
  EXPECT_EQ(recs[0].rs_ip, kRs1);
  EXPECT_EQ(recs[0].rs_port, 8080);
  EXPECT_EQ(recs[0].state, static_cast<uint8_t>(lb::TcpState::kSynRecv));
  EXPECT_GT(recs[0].expires_ns, now_);
  EXPECT_EQ(recs[1].proto, kIpProtoUdp);
  EXPECT_EQ(recs[1].vport, 53);
  EXPECT_EQ(recs[1].rs_port, 5353);
  EXPECT_EQ(recs[1].state, static_cast<uint8_t>(lb::TcpState::kUdp));
  EXPECT_EQ(recs[2].client_ip, kClient2);
  EXPECT_EQ(recs[2].rs_ip, kRs2);

  // A second request with a smaller limit starts over and stops at the limit.
  d.max = 1;
  const uint64_t req2 = d.req.fetch_add(1, std::memory_order_release) + 1;
  forward_maintenance(*eng_, now_, 100);
  EXPECT_EQ(d.done.load(std::memory_order_acquire), req2);
  EXPECT_EQ(d.out.size(), 1u);
  // Nothing asked: nothing done.
  forward_maintenance(*eng_, now_, 100);
  EXPECT_EQ(d.out.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Routing

TEST_F(ForwardTest, TransitTrafficIsRoutedBetweenPorts) {
  Frame f = from_client({.dst = kBackHost, .dport = 22, .payload = 64});
  const Bytes before = f.ip_bytes();
  expect_sent(f, run(f, kFront), kBack, kBackHostMac, kBackMac);
  EXPECT_EQ(f.ip()[8], 63);
  // Only the TTL (and the header checksum) changed.
  Bytes after = f.ip_bytes();
  after[8] = before[8];
  after[10] = before[10];
  after[11] = before[11];
  EXPECT_EQ(after, before);
  EXPECT_EQ(eng_->stats.routed.get(), 1u);
  EXPECT_EQ(eng_->conns.size(), 0u);

  // Through the static route's gateway, the other way.
  Frame g = from_back({.src = kBackHost, .dst = kRemote, .flags = kAck}, kBackHostMac);
  expect_sent(g, run(g, kBack), kFront, kRouterMac, kFrontMac);
  EXPECT_EQ(g.ip()[8], 63);
  // A real server's packet that belongs to no NAT flow is plain transit traffic.
  Frame h = from_back({.src = kRs1, .dst = kClient, .sport = 8080, .dport = 39999, .flags = kAck},
                      kRs1Mac);
  expect_sent(h, run(h, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(get32(h.ip() + 12), kRs1);
  EXPECT_EQ(eng_->stats.routed.get(), 3u);
  // Any protocol is routed, ICMP included.
  Frame e = from_client(
      {.dst = kBackHost, .proto = kIpProtoIcmp, .icmp = {8, 0, 0xf7, 0xfe, 0, 1, 0, 0}});
  expect_sent(e, run(e, kFront), kBack, kBackHostMac, kBackMac);
}

// Next hops are memoised for one poll (one now_ns): destinations sharing a memo slot keep their
// own MACs, a neighbour change is seen from the next poll on, a miss is never memoised.
TEST_F(ForwardTest, NextHopMemoLastsOnePoll) {
  // kRs1 (.11) and .27 fall in the same slot of the 16-entry memo.
  const uint32_t same_slot = ip4(198, 51, 100, 27);
  ASSERT_EQ(same_slot % ForwardEngine::kHopMemo, kRs1 % ForwardEngine::kHopMemo);
  const Mac other{0x02, 0x00, 0x00, 0x00, 0x00, 0x27};
  neigh_.set(kBack, same_slot, other);
  for (int round = 0; round < 2; ++round) {
    Frame a = from_client({.dst = same_slot, .dport = 22});
    expect_sent(a, run(a, kFront), kBack, other, kBackMac);
    Frame b = from_client({.dst = kRs1, .dport = 22});
    expect_sent(b, run(b, kFront), kBack, kRs1Mac, kBackMac);
  }
  // The neighbour's MAC changes: this poll keeps what it resolved, the next one sees the change.
  const Mac moved{0x02, 0x00, 0x00, 0x00, 0x01, 0x11};
  neigh_.set(kBack, kRs1, moved);
  Frame c = from_client({.dst = kRs1, .dport = 22});
  expect_sent(c, run(c, kFront), kBack, kRs1Mac, kBackMac);
  now_ += 1;
  Frame d = from_client({.dst = kRs1, .dport = 22});
  expect_sent(d, run(d, kFront), kBack, moved, kBackMac);
  // An unresolved next hop asks again, within the same poll, and is used once resolved.
  neigh_.erase(kBack, kRs1);
  now_ += 1;
  Frame e = from_client({.dst = kRs1, .dport = 22});
  EXPECT_EQ(run(e, kFront).reason, Drop::kNoNeighbor);
  neigh_.set(kBack, kRs1, kRs1Mac);
  Frame g = from_client({.dst = kRs1, .dport = 22});
  expect_sent(g, run(g, kFront), kBack, kRs1Mac, kBackMac);
}

// Destinations behind one gateway share its MAC for the rest of the poll, as a destination does.
TEST_F(ForwardTest, GatewayMacLastsOnePoll) {
  const uint32_t far1 = ip4(203, 0, 113, 5), far2 = ip4(203, 0, 113, 6);
  Frame a = from_back({.src = kBackHost, .dst = far1, .sport = 22, .dport = 5000, .flags = kAck},
                      kBackHostMac);
  expect_sent(a, run(a, kBack), kFront, kRouterMac, kFrontMac);
  // The router's MAC changes: this poll keeps what it resolved, for another destination too.
  const Mac moved{0x02, 0x00, 0x00, 0x00, 0x01, 0x01};
  neigh_.set(kFront, kRouter, moved);
  Frame b = from_back({.src = kBackHost, .dst = far2, .sport = 22, .dport = 5000, .flags = kAck},
                      kBackHostMac);
  expect_sent(b, run(b, kBack), kFront, kRouterMac, kFrontMac);
  now_ += 1;
  Frame c = from_back({.src = kBackHost, .dst = far2, .sport = 22, .dport = 5000, .flags = kAck},
                      kBackHostMac);
  expect_sent(c, run(c, kBack), kFront, moved, kFrontMac);
  // Unresolved: asked again within the poll, and not remembered.
  neigh_.erase(kFront, kRouter);
  now_ += 1;
  Frame d = from_back({.src = kBackHost, .dst = far1, .sport = 22, .dport = 5000, .flags = kAck},
                      kBackHostMac);
  EXPECT_EQ(run(d, kBack).reason, Drop::kNoNeighbor);
  neigh_.set(kFront, kRouter, kRouterMac);
  Frame f = from_back({.src = kBackHost, .dst = far2, .sport = 22, .dport = 5000, .flags = kAck},
                      kBackHostMac);
  expect_sent(f, run(f, kBack), kFront, kRouterMac, kFrontMac);
}

TEST_F(ForwardTest, RoutingDisabledDropsTransitButStillBalances) {
  publish(make_table(default_services()), false);
  Frame f = from_client({.dst = kBackHost, .flags = kAck});
  const FwdResult r = run(f, kFront);
  EXPECT_EQ(r.action, FwdAction::kDrop);
  EXPECT_EQ(r.reason, Drop::kIpv4NotLocal);
  Frame ttl = from_client({.dst = kBackHost, .ttl = 1});
  EXPECT_EQ(run(ttl, kFront).reason, Drop::kIpv4NotLocal);  // no ICMP: we are no router
  EXPECT_EQ(eng_->stats.icmp_sent.get(), 0u);
  // Load balancing and NAT replies need no routing.
  Frame s = from_client({});
  expect_sent(s, run(s, kFront), kBack, kRs1Mac, kBackMac);
  Frame reply = from_back(
      {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kSyn | kAck}, kRs1Mac);
  expect_sent(reply, run(reply, kBack), kFront, kClientMac, kFrontMac);

  // No load balancer either: TCP to a VIP is no service.
  publish(nullptr, false);
  Frame v = from_client({.sport = 5});
  const FwdResult rv = run(v, kFront);
  EXPECT_EQ(rv.reason, Drop::kL4Unhandled);
}

TEST_F(ForwardTest, IcmpErrorsAreRateLimited) {
  eng_ = std::make_unique<ForwardEngine>(small_params(), 0, 1, 20);  // burst 1
  Frame a = from_client({.dst = ip4(10, 0, 0, 1)});
  EXPECT_EQ(run(a, kFront).action, FwdAction::kReply);
  Frame b = from_client({.dst = ip4(10, 0, 0, 1)});
  const FwdResult rb = run(b, kFront);
  EXPECT_EQ(rb.action, FwdAction::kDrop);
  EXPECT_EQ(rb.reason, Drop::kNoRoute);
  EXPECT_EQ(eng_->stats.icmp_limited.get(), 1u);
  now_ += kSec;
  Frame c = from_client({.dst = ip4(10, 0, 0, 1)});
  EXPECT_EQ(run(c, kFront).action, FwdAction::kReply);
}

// ---------------------------------------------------------------------------------------------
// Replication: what forward() hands to the sync thread (note_sync), install_conn()

// The key the connection table holds a client's flow under.
lb::FlowKey client_key(uint32_t client, uint16_t sport, uint32_t vip, uint16_t vport,
                       uint8_t proto = kIpProtoTcp) {
  lb::FlowKey k;
  k.src_ip = client;
  k.dst_ip = vip;
  k.src_port = sport;
  k.dst_port = vport;
  k.proto = proto;
  return k;
}

ConnSync sync_entry(uint8_t proto, lb::TcpState st, uint32_t client, uint16_t sport, uint32_t vip,
                    uint16_t vport, uint32_t rs, uint16_t rport, uint32_t gen,
                    lb::Fwd fwd = lb::Fwd::kNat) {
  ConnSync r;
  r.proto = proto;
  r.state = static_cast<uint8_t>(st);
  r.fwd_mode = static_cast<uint8_t>(fwd);
  r.client_ip = client;
  r.client_port = sport;
  r.vip = vip;
  r.vport = vport;
  r.rs_ip = rs;
  r.rs_port = rport;
  r.generation = gen;
  return r;
}

void expect_entry(const ConnSync& got, const ConnSync& want) {
  EXPECT_EQ(got.proto, want.proto);
  EXPECT_EQ(got.state, want.state) << lb::to_string(static_cast<lb::TcpState>(got.state));
  EXPECT_EQ(got.fwd_mode, want.fwd_mode);
  EXPECT_EQ(got.client_ip, want.client_ip);
  EXPECT_EQ(got.client_port, want.client_port);
  EXPECT_EQ(got.vip, want.vip);
  EXPECT_EQ(got.vport, want.vport);
  EXPECT_EQ(got.rs_ip, want.rs_ip);
  EXPECT_EQ(got.rs_port, want.rs_port);
  EXPECT_EQ(got.generation, want.generation);
}

TEST_F(ForwardTest, SyncOutSendsPastTheHandshakeOnChangesAndEveryRefresh) {
  eng_->sync_out = true;
  eng_->sync_refresh_ns = 10 * kSec;
  auto entry = [](lb::TcpState st, uint32_t gen) {
    return sync_entry(kIpProtoTcp, st, kClient, 40000, kVip, 80, kRs1, 8080, gen);
  };
  // The handshake is never sent: SYN (SYN_RECV), the real server's SYN-ACK.
  Frame syn = from_client({});
  expect_sent(syn, run(syn, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(eng_->sync_n, 0u);
  Frame synack = from_back(
      {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kSyn | kAck}, kRs1Mac);
  expect_sent(synack, run(synack, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(eng_->sync_n, 0u);

  // The client's ACK makes it ESTABLISHED: one update, generation 1.
  now_ += kSec;
  const uint64_t established_at = now_;
  Frame ack = from_client({.flags = kAck});
  expect_sent(ack, run(ack, kFront), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(eng_->sync_n, 1u);
  expect_entry(eng_->sync_batch[0], entry(lb::TcpState::kEstablished, 1));

  // More traffic both ways within sync_refresh_ns: nothing more.
  for (int i = 0; i < 3; ++i) {
    now_ += 3 * kSec;
    Frame data = from_client({.flags = kAck, .payload = 100});
    expect_sent(data, run(data, kFront), kBack, kRs1Mac, kBackMac);
    Frame back = from_back(
        {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kAck}, kRs1Mac);
    expect_sent(back, run(back, kBack), kFront, kClientMac, kFrontMac);
  }
  now_ = established_at + 10 * kSec - 1;
  Frame almost = from_client({.flags = kAck});
  expect_sent(almost, run(almost, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(eng_->sync_n, 1u);

  // sync_refresh_ns after the last update: a refresh, generation 2 (the reply path counts too).
  now_ = established_at + 10 * kSec;
  Frame refresh = from_back(
      {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kAck}, kRs1Mac);
  expect_sent(refresh, run(refresh, kBack), kFront, kClientMac, kFrontMac);
  ASSERT_EQ(eng_->sync_n, 2u);
  expect_entry(eng_->sync_batch[1], entry(lb::TcpState::kEstablished, 2));
  now_ += kSec;
  Frame after = from_client({.flags = kAck});
  expect_sent(after, run(after, kFront), kBack, kRs1Mac, kBackMac);
  EXPECT_EQ(eng_->sync_n, 2u);

  // A state change is sent at once, refresh or not: the client's FIN (IPVS: CLOSE_WAIT), then
  // the real server's FIN on the reply path (TIME_WAIT).
  Frame fin = from_client({.flags = kFin | kAck});
  expect_sent(fin, run(fin, kFront), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(eng_->sync_n, 3u);
  expect_entry(eng_->sync_batch[2], entry(lb::TcpState::kCloseWait, 3));
  Frame rs_fin = from_back(
      {.src = kRs1, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kFin | kAck}, kRs1Mac);
  expect_sent(rs_fin, run(rs_fin, kBack), kFront, kClientMac, kFrontMac);
  ASSERT_EQ(eng_->sync_n, 4u);
  expect_entry(eng_->sync_batch[3], entry(lb::TcpState::kTimeWait, 4));
  bool reply = true;
  const lb::Conn* c = eng_->conns.find(client_key(kClient, 40000, kVip, 80), &reply);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->sync_gen, 4u);
  EXPECT_EQ(c->synced_ns, now_);
  EXPECT_EQ(eng_->stats.sync_dropped.get(), 0u);
}

TEST_F(ForwardTest, SyncOutSendsAUdpFlowOnItsFirstPacket) {
  eng_->sync_out = true;
  Frame udp = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53, .payload = 20});
  expect_sent(udp, run(udp, kFront), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(eng_->sync_n, 1u);
  expect_entry(eng_->sync_batch[0],
               sync_entry(kIpProtoUdp, lb::TcpState::kUdp, kClient, 5000, kVip, 53, kRs1, 5353, 1));
  now_ += kSec;
  Frame again = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53, .payload = 20});
  expect_sent(again, run(again, kFront), kBack, kRs1Mac, kBackMac);
  Frame answer = from_back(
      {.src = kRs1, .dst = kClient, .proto = kIpProtoUdp, .sport = 5353, .dport = 5000}, kRs1Mac);
  expect_sent(answer, run(answer, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(eng_->sync_n, 1u);
}

TEST_F(ForwardTest, SyncOutSendsAMaglevPickupAtOnce) {
  // A flow picked up mid-stream enters as ESTABLISHED: its first segment is sent.
  eng_->sync_out = true;
  const uint32_t client = ip4(203, 0, 113, 9);
  Frame ack =
      from_client({.src = client, .dst = kVipMh, .sport = 33000, .flags = kAck}, kRouterMac);
  ASSERT_EQ(run(ack, kFront).action, FwdAction::kTransmit);
  ASSERT_EQ(eng_->sync_n, 1u);
  const ConnSync& r = eng_->sync_batch[0];
  EXPECT_EQ(r.state, static_cast<uint8_t>(lb::TcpState::kEstablished));
  EXPECT_EQ(r.client_ip, client);
  EXPECT_EQ(r.vip, kVipMh);
  EXPECT_EQ(r.rs_ip, get32(ack.ip() + 16));
  EXPECT_EQ(r.rs_port, 80);
  EXPECT_EQ(r.generation, 1u);
}

TEST_F(ForwardTest, SyncOutOffSendsNothing) {
  ASSERT_FALSE(eng_->sync_out);  // the default
  Frame syn = from_client({});
  ASSERT_EQ(run(syn, kFront).action, FwdAction::kTransmit);
  Frame ack = from_client({.flags = kAck});
  ASSERT_EQ(run(ack, kFront).action, FwdAction::kTransmit);
  now_ += 100 * kSec;  // past any refresh
  Frame fin = from_client({.flags = kFin | kAck});
  ASSERT_EQ(run(fin, kFront).action, FwdAction::kTransmit);
  Frame udp = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53});
  ASSERT_EQ(run(udp, kFront).action, FwdAction::kTransmit);
  EXPECT_EQ(eng_->sync_n, 0u);
  EXPECT_EQ(eng_->stats.sync_dropped.get(), 0u);
  bool reply = false;
  const lb::Conn* c = eng_->conns.find(client_key(kClient, 40000, kVip, 80), &reply);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->sync_gen, 0u);
  EXPECT_EQ(c->synced_ns, 0u);
}

TEST_F(ForwardTest, SyncOutFullBatchDropsAndCounts) {
  eng_->sync_out = true;
  eng_->sync_n = ForwardEngine::kSyncBatch;  // the worker has not drained it yet
  Frame udp = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53});
  expect_sent(udp, run(udp, kFront), kBack, kRs1Mac, kBackMac);  // forwarded all the same
  EXPECT_EQ(eng_->sync_n, ForwardEngine::kSyncBatch);
  EXPECT_EQ(eng_->stats.sync_dropped.get(), 1u);
  // Not marked as sent: once there is room, its next packet is.
  eng_->sync_n = 0;
  Frame again = from_client({.proto = kIpProtoUdp, .sport = 5000, .dport = 53});
  expect_sent(again, run(again, kFront), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(eng_->sync_n, 1u);
  EXPECT_EQ(eng_->sync_batch[0].generation, 1u);
}

TEST_F(ForwardTest, InstalledConnectionCarriesTheNextSegmentAndItsReplies) {
  eng_->sync_out = true;
  // Without it, the client's next segment is a stray ACK.
  Frame stray = from_client({.sport = 40001, .flags = kAck});
  EXPECT_EQ(run(stray, kFront).reason, Drop::kLbNoConn);

  // The peer had it on kRs2 (a new SYN would go to kRs1 here: rr starts there).
  install_conn(
      *eng_, snap_,
      sync_entry(kIpProtoTcp, lb::TcpState::kEstablished, kClient, 40000, kVip, 80, kRs2, 8080, 5),
      now_);
  EXPECT_EQ(eng_->stats.sync_installed.get(), 1u);
  EXPECT_EQ(eng_->stats.sync_refused.get(), 0u);
  EXPECT_EQ(eng_->conns.size(), 1u);
  EXPECT_EQ(active(kIdRs2), 1);
  EXPECT_EQ(inactive(kIdRs2), 0);
  EXPECT_EQ(eng_->sched.active[kIdRs2], 1u);
  EXPECT_EQ(eng_->sched.inactive[kIdRs2], 0u);
  EXPECT_EQ(active(kIdRs1) + inactive(kIdRs1), 0);
  bool reply = true;
  const lb::Conn* c = eng_->conns.find(client_key(kClient, 40000, kVip, 80), &reply);
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(reply);
  EXPECT_EQ(c->state, lb::TcpState::kEstablished);
  EXPECT_EQ(c->service_id, kSvcHttp);
  EXPECT_EQ(c->dest_id, kIdRs2);
  EXPECT_EQ(c->rs_ip(), kRs2);
  EXPECT_EQ(c->rs_port(), 8080);
  EXPECT_EQ(c->fwd_mode, lb::Fwd::kNat);
  EXPECT_EQ(c->sync_gen, 5u);
  EXPECT_EQ(c->expires_ns, now_ + 900 * kSec);  // ESTABLISHED's full timeout from now
  EXPECT_FALSE(c->embryonic());

  now_ += kSec;
  Frame ack = from_client({.flags = kAck, .payload = 50});
  expect_sent(ack, run(ack, kFront), kBack, kRs2Mac, kBackMac);
  EXPECT_EQ(get32(ack.ip() + 12), kClient);
  EXPECT_EQ(get32(ack.ip() + 16), kRs2);
  EXPECT_EQ(get16(ack.ip() + 20), 40000);
  EXPECT_EQ(get16(ack.ip() + 22), 8080);
  EXPECT_EQ(eng_->dests[kIdRs2].t.in_pkts.get(), 1u);
  EXPECT_EQ(eng_->services[kSvcHttp].in_pkts.get(), 1u);

  Frame back = from_back(
      {.src = kRs2, .dst = kClient, .sport = 8080, .dport = 40000, .flags = kAck, .payload = 9},
      kRs2Mac);
  expect_sent(back, run(back, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(get32(back.ip() + 12), kVip);
  EXPECT_EQ(get16(back.ip() + 20), 80);
  EXPECT_EQ(get32(back.ip() + 16), kClient);
  EXPECT_EQ(get16(back.ip() + 22), 40000);
  EXPECT_EQ(eng_->dests[kIdRs2].t.out_pkts.get(), 1u);
  EXPECT_EQ(eng_->stats.lb_out.get(), 1u);
  // What the peer told us is not told back before a refresh ...
  EXPECT_EQ(eng_->sync_n, 0u);
  // ... but our own changes are, numbered after the peer's.
  Frame fin = from_client({.flags = kFin | kAck});
  expect_sent(fin, run(fin, kFront), kBack, kRs2Mac, kBackMac);
  ASSERT_EQ(eng_->sync_n, 1u);
  expect_entry(eng_->sync_batch[0], sync_entry(kIpProtoTcp, lb::TcpState::kCloseWait, kClient,
                                               40000, kVip, 80, kRs2, 8080, 6));
}

TEST_F(ForwardTest, InstallKeepsTheNewestGenerationAndTheLevels) {
  const lb::FlowKey k = client_key(kClient, 40000, kVip, 80);
  auto entry = [](lb::TcpState st, uint32_t gen) {
    return sync_entry(kIpProtoTcp, st, kClient, 40000, kVip, 80, kRs1, 8080, gen);
  };
  install_conn(*eng_, snap_, entry(lb::TcpState::kEstablished, 5), now_);
  ASSERT_EQ(eng_->stats.sync_installed.get(), 1u);
  EXPECT_EQ(active(kIdRs1), 1);
  EXPECT_EQ(inactive(kIdRs1), 0);

  // Older: ignored.
  now_ += kSec;
  install_conn(*eng_, snap_, entry(lb::TcpState::kFinWait, 4), now_);
  EXPECT_EQ(eng_->stats.sync_stale.get(), 1u);
  EXPECT_EQ(eng_->stats.sync_installed.get(), 1u);
  bool reply = false;
  lb::Conn* c = eng_->conns.find(k, &reply);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, lb::TcpState::kEstablished);
  EXPECT_EQ(c->sync_gen, 5u);
  EXPECT_EQ(c->expires_ns, now_ - kSec + 900 * kSec);
  EXPECT_EQ(active(kIdRs1), 1);

  // Newer: the state moves, the levels follow.
  install_conn(*eng_, snap_, entry(lb::TcpState::kFinWait, 6), now_);
  EXPECT_EQ(eng_->stats.sync_installed.get(), 2u);
  EXPECT_EQ(eng_->stats.sync_stale.get(), 1u);
  c = eng_->conns.find(k, &reply);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, lb::TcpState::kFinWait);
  EXPECT_EQ(c->sync_gen, 6u);
  EXPECT_EQ(c->expires_ns, now_ + 120 * kSec);  // FIN_WAIT's timeout
  EXPECT_EQ(c->synced_ns, now_);
  EXPECT_EQ(active(kIdRs1), 0);
  EXPECT_EQ(inactive(kIdRs1), 1);
  EXPECT_EQ(eng_->sched.active[kIdRs1], 0u);
  EXPECT_EQ(eng_->sched.inactive[kIdRs1], 1u);
  EXPECT_EQ(eng_->conns.size(), 1u);

  // Still one connection, and it ages out with the right levels.
  EXPECT_EQ(forward_maintenance(*eng_, now_ + 121 * kSec, 100), 1u);
  EXPECT_EQ(active(kIdRs1), 0);
  EXPECT_EQ(inactive(kIdRs1), 0);
  EXPECT_EQ(eng_->sched.inactive[kIdRs1], 0u);
}

TEST_F(ForwardTest, InstallOfAClosingConnectionCountsItInactive) {
  install_conn(
      *eng_, snap_,
      sync_entry(kIpProtoTcp, lb::TcpState::kFinWait, kClient, 41000, kVip, 80, kRs2, 8080, 1),
      now_);
  EXPECT_EQ(eng_->stats.sync_installed.get(), 1u);
  EXPECT_EQ(active(kIdRs2), 0);
  EXPECT_EQ(inactive(kIdRs2), 1);
  EXPECT_EQ(eng_->sched.active[kIdRs2], 0u);
  EXPECT_EQ(eng_->sched.inactive[kIdRs2], 1u);
  bool reply = false;
  const lb::Conn* c = eng_->conns.find(client_key(kClient, 41000, kVip, 80), &reply);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, lb::TcpState::kFinWait);
  EXPECT_EQ(c->expires_ns, now_ + 120 * kSec);
}

TEST_F(ForwardTest, InstallOfAUdpFlow) {
  install_conn(*eng_, snap_,
               sync_entry(kIpProtoUdp, lb::TcpState::kUdp, kClient, 5000, kVip, 53, kRs1, 5353, 3),
               now_);
  EXPECT_EQ(eng_->stats.sync_installed.get(), 1u);
  EXPECT_EQ(inactive(kIdUdp), 1);
  EXPECT_EQ(active(kIdUdp), 0);
  Frame answer = from_back(
      {.src = kRs1, .dst = kClient, .proto = kIpProtoUdp, .sport = 5353, .dport = 5000}, kRs1Mac);
  expect_sent(answer, run(answer, kBack), kFront, kClientMac, kFrontMac);
  EXPECT_EQ(get32(answer.ip() + 12), kVip);
  EXPECT_EQ(get16(answer.ip() + 20), 53);
}

TEST_F(ForwardTest, InstallReplacesOurOwnBindingOfTheSameFlow) {
  // Both nodes were master for a moment: we sent the client to kRs1, the peer to kRs2 and its
  // word is newer.
  Frame syn = from_client({});
  expect_sent(syn, run(syn, kFront), kBack, kRs1Mac, kBackMac);
  ASSERT_EQ(inactive(kIdRs1), 1);
  install_conn(
      *eng_, snap_,
      sync_entry(kIpProtoTcp, lb::TcpState::kEstablished, kClient, 40000, kVip, 80, kRs2, 8080, 1),
      now_);
  EXPECT_EQ(eng_->stats.sync_installed.get(), 1u);
  EXPECT_EQ(eng_->conns.size(), 1u);
  EXPECT_EQ(inactive(kIdRs1), 0);
  EXPECT_EQ(eng_->sched.inactive[kIdRs1], 0u);
  EXPECT_EQ(active(kIdRs2), 1);
  Frame ack = from_client({.flags = kAck});
  expect_sent(ack, run(ack, kFront), kBack, kRs2Mac, kBackMac);
  // The old reply key is gone: kRs1's SYN-ACK for this client is no longer NAT traffic of ours.
  bool reply = false;
  EXPECT_EQ(eng_->conns.find(client_key(kRs1, 8080, kClient, 40000), &reply), nullptr);
}

TEST_F(ForwardTest, InstallRefusesUnknownServicesAndRealServers) {
  const ConnSync refused[] = {
      // No such VIP.
      sync_entry(kIpProtoTcp, lb::TcpState::kEstablished, kClient, 40000, ip4(192, 0, 2, 200), 80,
                 kRs1, 8080, 1),
      // No UDP service on that port (the all-port service is TCP).
      sync_entry(kIpProtoUdp, lb::TcpState::kUdp, kClient, 5000, kVip, 54, kRs1, 5353, 1),
      // A real server this service does not have.
      sync_entry(kIpProtoTcp, lb::TcpState::kEstablished, kClient, 40000, kVip, 80, kRsDr, 8080, 1),
      // The right address on another port.
      sync_entry(kIpProtoTcp, lb::TcpState::kEstablished, kClient, 40000, kVip, 80, kRs1, 9999, 1),
      // A state that does not exist.
      sync_entry(kIpProtoTcp, static_cast<lb::TcpState>(lb::kTcpStateCount), kClient, 40000, kVip,
                 80, kRs1, 8080, 1),
  };
  uint64_t n = 0;
  for (const ConnSync& r : refused) {
    install_conn(*eng_, snap_, r, now_);
    EXPECT_EQ(eng_->stats.sync_refused.get(), ++n);
  }
  EXPECT_EQ(eng_->stats.sync_installed.get(), 0u);
  EXPECT_EQ(eng_->conns.size(), 0u);
  for (uint32_t id = 0; id <= kIdNoArp; ++id) {
    EXPECT_EQ(active(id), 0) << id;
    EXPECT_EQ(inactive(id), 0) << id;
  }
  // No load balancer at all.
  publish(nullptr, true);
  install_conn(
      *eng_, snap_,
      sync_entry(kIpProtoTcp, lb::TcpState::kEstablished, kClient, 40000, kVip, 80, kRs1, 8080, 1),
      now_);
  EXPECT_EQ(eng_->stats.sync_refused.get(), n + 1);
  EXPECT_EQ(eng_->conns.size(), 0u);
}

TEST(LbTable, FindsServicesAndFallsBackToAllPorts) {
  std::vector<lb::Service> s = default_services();
  const std::shared_ptr<const LbTable> t = make_table(s);
  EXPECT_EQ(t->find(kIpProtoTcp, kVip, 80), 0);
  EXPECT_EQ(t->find(kIpProtoUdp, kVip, 53), 1);
  EXPECT_EQ(t->find(kIpProtoTcp, kVip, 22), 2);
  EXPECT_EQ(t->find(kIpProtoTcp, kVip, 0), 2);
  EXPECT_EQ(t->find(kIpProtoUdp, kVip, 80), -1);
  EXPECT_EQ(t->find(kIpProtoTcp, kVipDr, 81), -1);
  EXPECT_EQ(t->find(kIpProtoTcp, kClient, 80), -1);
  EXPECT_TRUE(t->is_nat_real(kRs1));
  EXPECT_TRUE(t->is_nat_real(kRsNoArp));
  EXPECT_FALSE(t->is_nat_real(kRsDr));
  EXPECT_FALSE(t->is_nat_real(kRsTun));
  const LbTable empty;
  EXPECT_EQ(empty.find(kIpProtoTcp, kVip, 80), -1);
}

TEST(PersistTable, RemembersUntilExpiry) {
  PersistTable p(4);
  EXPECT_EQ(p.find(1, kClient, 0), -1);
  p.put(1, kClient, 7, 100);
  EXPECT_EQ(p.find(1, kClient, 99), 7);
  EXPECT_EQ(p.find(1, kClient, 100), -1);
  EXPECT_EQ(p.find(2, kClient, 0), -1);
  p.put(1, kClient, 8, 200);  // replaced in place
  EXPECT_EQ(p.find(1, kClient, 150), 8);
}

}  // namespace
}  // namespace dp
