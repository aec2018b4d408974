// Packet tests: the load balancer and router as the workers run them — Dataplane::poll_once() on
// two net_ring ports (front, back), the forwarding state built from a parsed configuration the
// way tandemd builds it (ctl::make_fib, config_services + make_lb_table, conn_params,
// make_snapshot with the VRRP VIP held, enable_forward with one ForwardEngine per worker, the
// neighbour cache filled as the control thread mirrors its ARP table), fed whole Ethernet frames
// from tests/fixtures/lb_packet_golden.txt (written by gen_lb_packet_golden.py, not by the code
// under test). Checks the frames transmitted byte for byte and on which port, their checksums
// with a sum of its own, the drop reasons, the connection state and counters, next-hop
// resolution requests, and the hand-off of a flow to the worker that owns it.
//
// Every test builds its own Dataplane (a Rig) on fresh ring ports, so connections never leak
// from one test into the next; all workers are driven from the test thread.

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/model.h"
#include "control/lb_translate.h"
#include "control/translate.h"
#include "dataplane/dataplane.h"
#include "eal_env.h"
#include "tests/golden.h"

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// The director gen_lb_packet_golden.py writes its frames for.
constexpr uint32_t kFront = 0, kBack = 1;
const dp::Mac kFrontMac{0x02, 0, 0, 0, 0x00, 0x02};
const dp::Mac kBackMac{0x02, 0, 0, 0, 0x01, 0x02};
constexpr uint32_t kVip = ip4(192, 0, 2, 100);
constexpr uint32_t kClient = ip4(192, 0, 2, 10);
constexpr uint32_t kRs1 = ip4(198, 51, 100, 11);
constexpr uint32_t kRs2 = ip4(198, 51, 100, 12);

struct Neighbour {
  uint32_t port;
  uint32_t ip;
  dp::Mac mac;
};
const std::vector<Neighbour> kNeighbours = {
    {kFront, kClient, {0x52, 0x54, 0x00, 0x00, 0x00, 0x0a}},
    {kFront, ip4(192, 0, 2, 254), {0x02, 0, 0, 0, 0x00, 0xfe}},
    {kBack, kRs1, {0x02, 0, 0, 0, 0x10, 0x11}},
    {kBack, kRs2, {0x02, 0, 0, 0, 0x10, 0x12}},
    {kBack, ip4(198, 51, 100, 21), {0x02, 0, 0, 0, 0x10, 0x21}},
    {kBack, ip4(198, 51, 100, 31), {0x02, 0, 0, 0, 0x10, 0x31}},
    {kBack, ip4(198, 51, 100, 41), {0x02, 0, 0, 0, 0x10, 0x41}},
    {kBack, ip4(198, 51, 100, 50), {0x02, 0, 0, 0, 0x10, 0x50}},
};

constexpr const char* kConf = R"(ports = (
  { name = "front"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
vrrp = {
  instances = (
    { name = "VI_FRONT"; port = "front"; vrid = 51; priority = 150;
      virtual_ips = [ "192.0.2.100/24" ]; }
  );
};
routing = { forward = true; };
lb = {
  connections = 4096;
  services = (
    { protocol = "tcp"; vip = "192.0.2.100"; port = 80; scheduler = "rr"; mode = "nat";
      reals = ( { address = "198.51.100.11"; }, { address = "198.51.100.12"; } ); },
    { protocol = "tcp"; vip = "192.0.2.100"; port = 8080; scheduler = "rr"; mode = "dr";
      reals = ( { address = "198.51.100.21"; } ); },
    { protocol = "tcp"; vip = "192.0.2.100"; port = 443; scheduler = "rr"; mode = "tun";
      reals = ( { address = "198.51.100.31"; } ); },
    { protocol = "udp"; vip = "192.0.2.100"; port = 53; scheduler = "rr"; mode = "nat";
      reals = ( { address = "198.51.100.41"; port = 5353; } ); }
  );
};
)";

// --- the fixture ---------------------------------------------------------------------------------

struct Case {
  std::string name;
  uint32_t in_port = 0;
  bool tx = false;
  uint32_t out_port = 0;  // tx
  std::string reason;     // drop
  Bytes in, out;
};

uint32_t port_index(const std::string& s) {
  return s == "back" ? kBack : kFront;
}

const std::vector<Case>& golden() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> v;
    for (const auto& c : tandem_test::read_golden("lb_packet_golden.txt")) {
      if (c.size() != 6) continue;
      Case k;
      k.name = c[0];
      k.in_port = port_index(c[1]);
      k.tx = c[2] == "tx";
      if (k.tx) k.out_port = port_index(c[3]);
      if (!k.tx) k.reason = c[3];
      k.in = tandem_test::from_hex(c[4]);
      if (c[5] != "-") k.out = tandem_test::from_hex(c[5]);
      v.push_back(std::move(k));
    }
    return v;
  }();
  return cases;
}

const Case& golden_case(const std::string& name) {
  static const Case kNone;
  for (const Case& c : golden())
    if (c.name == name) return c;
  ADD_FAILURE() << "no golden case " << name;
  return kNone;
}

size_t drop_index(const std::string& name) {
  for (size_t i = 0; i < dp::kDropNames.size(); ++i)
    if (dp::kDropNames[i] == name) return i;
  return dp::kDropNames.size();
}

// --- an independent look at what was sent ------------------------------------------------------

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t ones_sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i < n; i += 2) s += uint32_t{p[i]} << 8 | (i + 1 < n ? p[i + 1] : 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

// Header and checksums of the IPv4 datagram at `ip` (`n` bytes available, padding allowed):
// IP header checksum, TCP/UDP over the pseudo-header, ICMP over its message, IP-in-IP inside.
// "" when all hold.
std::string check_ipv4(const uint8_t* ip, size_t n) {
  if (n < 20 || ip[0] != 0x45) return "IPv4 version/IHL";
  const uint16_t tot = be16(ip + 2);
  if (tot < 20 || tot > n) return "IPv4 total length";
  if (ones_sum(ip, 20) != 0xffff) return "IPv4 header checksum";
  const uint8_t* l4 = ip + 20;
  const size_t l4_len = tot - 20u;
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = ip[9];
  pseudo[10] = static_cast<uint8_t>(l4_len >> 8);
  pseudo[11] = static_cast<uint8_t>(l4_len);
  switch (ip[9]) {
    case 6:
      if (ones_sum(l4, l4_len, ones_sum(pseudo, 12)) != 0xffff) return "TCP checksum";
      return "";
    case 17:
      if (be16(l4 + 6) != 0 && ones_sum(l4, l4_len, ones_sum(pseudo, 12)) != 0xffff)
        return "UDP checksum";
      return "";
    case 1:
      if (ones_sum(l4, l4_len) != 0xffff) return "ICMP checksum";
      return "";
    case 4:
      return check_ipv4(l4, l4_len);
  }
  return "unexpected protocol";
}

std::string check_frame(const Bytes& f) {
  if (f.size() < 14 + 20) return "shorter than the headers";
  if (be16(&f[12]) != 0x0800) return "not IPv4";
  return check_ipv4(&f[14], f.size() - 14);
}

std::string hex(const Bytes& b) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s += kDigits[x >> 4];
    s += kDigits[x & 15];
  }
  return s;
}

// --- a data plane that load-balances -------------------------------------------------------------

rte_mempool* test_pool() {
  static rte_mempool* pool =
      rte_pktmbuf_pool_create("lb_pt_pool", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return pool;
}

struct RigOptions {
  uint32_t workers = 1;
};

class Rig {
 public:
  explicit Rig(const RigOptions& o) { setup(o); }
  ~Rig() {
    dp_.stop();  // closes the ring ports: their rings are ours to empty and free
    for (auto& p : ports_) {
      for (rte_ring* r : p.rx) drain_and_free(r);
      for (rte_ring* r : p.tx) drain_and_free(r);
    }
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  void setup(const RigOptions& o) {
    static int seq = 0;
    const std::string base = "lbpt" + std::to_string(++seq);
    // Per port: RX queue w is worker w's; TX queue w is worker w's, the last one control's.
    std::string devs[2];
    for (uint32_t i = 0; i < 2; ++i) {
      const std::string name = base + (i == kFront ? "f" : "b");
      Port& p = ports_[i];
      for (uint32_t q = 0; q < o.workers; ++q)
        p.rx.push_back(rte_ring_create((name + "_rx" + std::to_string(q)).c_str(), 1024,
                                       SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ));
      for (uint32_t q = 0; q <= o.workers; ++q)
        p.tx.push_back(rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), 1024,
                                       SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ));
      for (auto* r : p.rx) ASSERT_NE(r, nullptr) << rte_strerror(rte_errno);
      for (auto* r : p.tx) ASSERT_NE(r, nullptr) << rte_strerror(rte_errno);
      const int id = rte_eth_from_rings(name.c_str(), p.rx.data(), o.workers, p.tx.data(),
                                        o.workers + 1, SOCKET_ID_ANY);
      ASSERT_GE(id, 0) << rte_strerror(rte_errno);
      char dev[RTE_ETH_NAME_MAX_LEN];
      ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), dev), 0);
      devs[i] = dev;
    }

    auto loaded = cfg::load_string(kConf, "lb_packet_test.conf");
    ASSERT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : loaded.errors[0].str());
    cfg_ = *loaded.config;
    cfg_.dataplane.worker_cores.clear();
    for (uint32_t w = 0; w < o.workers; ++w) cfg_.dataplane.worker_cores.push_back(1 + w);

    dp::Params p;
    p.ports.push_back({"front", devs[0], 1500, 1024, 1024, ""});
    p.ports.push_back({"back", devs[1], 1500, 1024, 1024, ""});
    for (uint32_t w = 0; w < o.workers; ++w) p.worker_lcores.push_back(1 + w);
    p.mbufs = 1023;
    p.mbuf_cache = 0;
    ASSERT_EQ(dp_.init(p), "");

    // As Daemon::start_forward and rebuild_forward build them.
    dp::ForwardParams fp;
    const lb::ConnTable::Params cp = ctl::conn_params(cfg_);
    for (uint32_t w = 0; w < o.workers; ++w)
      fp.engines.push_back(
          std::make_unique<dp::ForwardEngine>(cp, w, o.workers, cfg_.routing.icmp_errors_per_s));
    ASSERT_EQ(dp_.enable_forward(std::move(fp)), "");
    for (const Neighbour& n : kNeighbours)
      ASSERT_TRUE(dp_.neighbor_cache()->set(static_cast<uint16_t>(n.port), n.ip, n.mac));

    auto f = std::make_shared<dp::ForwardConfig>();
    f->routing = cfg_.routing.forward;
    ASSERT_EQ(ctl::make_fib(cfg_, f->fib), "");
    ctl::LbIds ids;
    f->lb = ctl::make_lb_table(ctl::config_services(cfg_), ids, {}, cfg_.lb.maglev_table_size);
    fwd_ = f;

    // VRRP master of the front VIP (answered with the port's MAC, as the golden frames expect).
    const std::vector<ctl::ExtraAddress> vips = {{kFront, {kVip, 24}, std::nullopt}};
    auto s =
        std::make_unique<dp::Snapshot>(ctl::make_snapshot(cfg_, {kFrontMac, kBackMac}, 1, vips));
    s->idle = dp::IdleMode::kBusy;
    s->fwd = fwd_;
    ASSERT_TRUE(s->ports[kFront].forward && s->ports[kBack].forward);
    ASSERT_EQ(dp_.start(std::move(s), /*launch=*/false), "");
    for (uint32_t w = 0; w < o.workers; ++w) dp_.attach_reader(w);
    ready_ = true;
  }

  bool ready() const { return ready_; }
  dp::Dataplane& dp() { return dp_; }
  const dp::LbTable& lb() const { return *fwd_->lb; }
  dp::ForwardEngine& engine(uint32_t w = 0) { return *dp_.forward_engine(w); }
  uint64_t drops(dp::Drop d, uint32_t w = 0) {
    return dp_.worker_stats(w).drops[static_cast<size_t>(d)].get();
  }
  uint64_t drops(size_t reason, uint32_t w = 0) { return dp_.worker_stats(w).drops[reason].get(); }

  // Enqueues a frame on RX queue `q` (worker q's) of `port`.
  void inject(uint32_t port, const Bytes& f, uint32_t q = 0) {
    rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
    ASSERT_NE(m, nullptr);
    char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(f.size()));
    ASSERT_NE(d, nullptr);
    std::memcpy(d, f.data(), f.size());
    ASSERT_EQ(rte_ring_enqueue(ports_[port].rx[q], m), 0);
  }
  uint32_t poll(uint32_t w = 0) { return dp_.poll_once(dp_.worker(w)); }

  // Frames sent on TX queue `q` (worker q's) of `port`, copied and freed.
  std::vector<Bytes> sent(uint32_t port, uint32_t q = 0) {
    std::vector<Bytes> out;
    void* obj;
    while (rte_ring_dequeue(ports_[port].tx[q], &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.emplace_back(d, d + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
    }
    return out;
  }
  size_t sent_anywhere() {
    size_t n = 0;
    for (uint32_t port = 0; port < 2; ++port)
      for (uint32_t q = 0; q < ports_[port].tx.size(); ++q) n += sent(port, q).size();
    return n;
  }

  // Runs a golden case on worker 0 and checks what left and where.
  void run(const Case& c) {
    SCOPED_TRACE(c.name);
    const size_t reason = drop_index(c.reason);
    if (!c.tx) {
      ASSERT_LT(reason, dp::kDropNames.size()) << c.reason;
    }
    const uint64_t before = c.tx ? 0 : drops(reason);
    inject(c.in_port, c.in);
    EXPECT_EQ(poll(), 1u);
    const auto out = sent(c.tx ? c.out_port : kFront);
    const auto other = sent(c.tx ? 1 - c.out_port : kBack);
    EXPECT_TRUE(other.empty()) << "sent on the wrong port";
    if (!c.tx) {
      EXPECT_TRUE(out.empty());
      EXPECT_EQ(drops(reason), before + 1) << c.reason;
      return;
    }
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(check_frame(out[0]), "");
    EXPECT_EQ(hex(out[0]), hex(c.out));
  }

 private:
  struct Port {
    std::vector<rte_ring*> rx, tx;
  };
  static void drain_and_free(rte_ring* r) {
    if (r == nullptr) return;
    void* obj;
    while (rte_ring_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    rte_ring_free(r);
  }

  Port ports_[2];
  cfg::Config cfg_;
  std::shared_ptr<const dp::ForwardConfig> fwd_;
  dp::Dataplane dp_;
  bool ready_ = false;
};

#define MAKE_RIG(var, ...)          \
  Rig var{RigOptions{__VA_ARGS__}}; \
  ASSERT_TRUE(var.ready())

const lb::Conn* find_conn(Rig& rig, uint32_t client_port, uint16_t vport, uint32_t w = 0) {
  lb::FlowKey k;
  k.src_ip = kClient;
  k.dst_ip = kVip;
  k.src_port = static_cast<uint16_t>(client_port);
  k.dst_port = vport;
  k.proto = 6;
  return rig.engine(w).conns.find(k, nullptr);
}

// --- golden frames -------------------------------------------------------------------------------

TEST(LbPacket, GoldenCasesInOrder) {
  ASSERT_GE(golden().size(), 14u) << "fixture missing or unreadable";
  MAKE_RIG(rig);
  for (const Case& c : golden()) rig.run(c);
  // What the cases did, as the counters tell it.
  const dp::ForwardStats& st = rig.engine().stats;
  EXPECT_EQ(st.lb_in.get(), 7u);   // syn, ack, data, syn 2 (NAT); DR; TUN; UDP
  EXPECT_EQ(st.lb_out.get(), 1u);  // the SYN-ACK
  EXPECT_EQ(st.icmp_related.get(), 2u);
  EXPECT_EQ(st.routed.get(), 1u);
  EXPECT_EQ(st.icmp_sent.get(), 2u);  // time exceeded: transit, and the SYN to the VIP
  EXPECT_EQ(st.neighbor_misses.get(), 0u);
  for (const auto& [port, vport] : {std::pair{40000, 80}, {40001, 80}, {40002, 8080}, {40003, 443}})
    EXPECT_NE(find_conn(rig, port, static_cast<uint16_t>(vport)), nullptr) << port;
  EXPECT_EQ(rig.drops(dp::Drop::kLbNoConn), 1u);
  EXPECT_EQ(rig.drops(dp::Drop::kTtlExceeded), 2u);  // the packets the errors were about
  uint64_t dropped = 0;
  for (const auto& d : rig.dp().worker_stats(0).drops) dropped += d.get();
  EXPECT_EQ(dropped, 3u);
}

TEST(LbPacket, NatConnectionIsTrackedThroughItsHandshake) {
  MAKE_RIG(rig);
  rig.run(golden_case("syn_nat"));
  const lb::Conn* c = find_conn(rig, 40000, 80);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, lb::TcpState::kSynRecv);
  EXPECT_EQ(c->rs_ip(), kRs1);
  EXPECT_EQ(c->rs_port(), 80);
  EXPECT_EQ(c->fwd_mode, lb::Fwd::kNat);
  EXPECT_TRUE(c->embryonic());
  rig.run(golden_case("synack_nat"));
  EXPECT_TRUE(c->seen_reply());
  rig.run(golden_case("ack_nat"));
  EXPECT_EQ(c->state, lb::TcpState::kEstablished);
  EXPECT_FALSE(c->embryonic());

  // Counters per real server: ids as make_lb_table handed them out (service 0's dests 0, 1).
  const lb::Service& svc = rig.lb().services[static_cast<size_t>(rig.lb().find(6, kVip, 80))];
  ASSERT_EQ(svc.dests.size(), 2u);
  const dp::LbDestStats& d1 = rig.engine().dests[svc.dests[0].id];
  EXPECT_EQ(svc.dests[0].ip, kRs1);
  EXPECT_EQ(d1.t.conns.get(), 1u);
  EXPECT_EQ(d1.t.in_pkts.get(), 2u);
  EXPECT_EQ(d1.t.out_pkts.get(), 1u);
  EXPECT_EQ(d1.t.in_bytes.get(),
            golden_case("syn_nat").in.size() + golden_case("ack_nat").in.size());
  EXPECT_EQ(d1.active.get(), 1);
  EXPECT_EQ(d1.inactive.get(), 0);
  EXPECT_EQ(rig.engine().sched.active[svc.dests[0].id], 1u);
  EXPECT_EQ(rig.engine().services[svc.id].conns.get(), 1u);
  EXPECT_EQ(rig.engine().dests[svc.dests[1].id].t.conns.get(), 0u);

  // The client retransmits its SYN: the same connection, the same real server.
  rig.run(golden_case("syn_nat"));
  EXPECT_EQ(rig.engine().conns.size(), 1u);
  EXPECT_EQ(d1.t.conns.get(), 1u);
}

// One burst: a SYN and its retransmission. The burst is looked up before the first opens the
// connection; the second must find it (the same real server, one connection), not open another.
TEST(LbPacket, SynAndItsRetransmissionInOneBurst) {
  MAKE_RIG(rig);
  const Case& syn = golden_case("syn_nat");
  rig.inject(syn.in_port, syn.in);
  rig.inject(syn.in_port, syn.in);
  EXPECT_EQ(rig.poll(), 2u);
  const auto out = rig.sent(syn.out_port);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(hex(out[0]), hex(syn.out));
  EXPECT_EQ(hex(out[1]), hex(syn.out));
  EXPECT_EQ(rig.engine().conns.size(), 1u);
  EXPECT_EQ(rig.engine().conns.stats().refused_exists, 0u);
}

TEST(LbPacket, ReplyWithoutAConnectionIsRoutedUntouched) {
  MAKE_RIG(rig);
  // No SYN went through: the SYN-ACK of a NAT real server matches nothing, so it is plain
  // transit (routing is on) — TTL - 1, addresses kept, to the client's MAC.
  Bytes in = golden_case("synack_nat").in;
  rig.inject(kBack, in);
  EXPECT_EQ(rig.poll(), 1u);
  const auto out = rig.sent(kFront);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(check_frame(out[0]), "");
  EXPECT_EQ(out[0][14 + 8], in[14 + 8] - 1);
  EXPECT_TRUE(std::equal(in.begin() + 14 + 12, in.begin() + 14 + 20, out[0].begin() + 14 + 12));
  EXPECT_EQ(rig.engine().stats.lb_out.get(), 0u);
  EXPECT_EQ(rig.engine().stats.routed.get(), 1u);
}

TEST(LbPacket, StrayAckOpensNothing) {
  MAKE_RIG(rig);
  rig.run(golden_case("ack_unknown"));
  // An ACK of the flow syn_nat would open: unknown too, as no SYN went first.
  rig.inject(kFront, golden_case("ack_nat").in);
  EXPECT_EQ(rig.poll(), 1u);
  EXPECT_EQ(rig.sent_anywhere(), 0u);
  EXPECT_EQ(rig.drops(dp::Drop::kLbNoConn), 2u);
  EXPECT_EQ(rig.engine().conns.size(), 0u);
  EXPECT_EQ(rig.engine().stats.lb_in.get(), 0u);
}

// --- next hops ---------------------------------------------------------------------------------

TEST(LbPacket, UnresolvedRealServerIsAskedForAndTheRetryGoesThrough) {
  MAKE_RIG(rig);
  ASSERT_TRUE(rig.dp().neighbor_cache()->erase(kBack, kRs1));
  rig.inject(kFront, golden_case("syn_nat").in);
  EXPECT_EQ(rig.poll(), 1u);
  EXPECT_EQ(rig.sent_anywhere(), 0u);
  EXPECT_EQ(rig.drops(dp::Drop::kNoNeighbor), 1u);
  EXPECT_EQ(rig.engine().stats.neighbor_misses.get(), 1u);
  dp::NeighborEvent ev[8];
  ASSERT_EQ(rig.dp().poll_events(ev, 8), 1u);
  EXPECT_EQ(ev[0].resolve, 1);
  EXPECT_EQ(ev[0].port, kBack);
  EXPECT_EQ(ev[0].ip, kRs1);
  // The real server's ARP reply that follows is a learned sender, not another resolve request
  // (the worker reuses its event array from burst to burst: no field may be left over).
  Bytes arp(dp::kMinFrameLen);
  const dp::Mac us = kBackMac;  // the MAC the snapshot gives the back port
  dp::write_arp_frame(arp.data(), dp::arp::kOpReply, us, kNeighbours[2].mac, kRs1, us,
                      ip4(198, 51, 100, 2));
  rig.inject(kBack, arp);
  EXPECT_EQ(rig.poll(), 1u);
  ASSERT_EQ(rig.dp().poll_events(ev, 8), 1u);
  EXPECT_EQ(ev[0].resolve, 0);
  EXPECT_EQ(ev[0].targeted, 1);
  EXPECT_EQ(ev[0].ip, kRs1);
  EXPECT_EQ(ev[0].mac, kNeighbours[2].mac);
  // The control thread resolved it; the client's retransmitted SYN leaves as the first would have.
  ASSERT_TRUE(rig.dp().neighbor_cache()->set(kBack, kRs1, kNeighbours[2].mac));
  rig.run(golden_case("syn_nat"));
  EXPECT_EQ(rig.engine().conns.size(), 1u);
  EXPECT_EQ(rig.dp().poll_events(ev, 8), 0u);
}

// --- two workers -------------------------------------------------------------------------------

TEST(LbPacket, TwoWorkersHandTheFlowToItsOwner) {
  MAKE_RIG(rig, .workers = 2);
  const uint32_t owner = dp::owner_of(kClient, 2);
  const uint32_t other = 1 - owner;
  // The client's SYN arrives on the worker that does not own it: handed over untouched.
  const Case& syn = golden_case("syn_nat");
  rig.inject(kFront, syn.in, other);
  EXPECT_EQ(rig.poll(other), 1u);
  EXPECT_EQ(rig.engine(other).stats.handed_off.get(), 1u);
  EXPECT_EQ(rig.sent_anywhere(), 0u);
  EXPECT_EQ(rig.engine(other).conns.size(), 0u);
  // The owner takes it from its hand-off ring at the start of its next loop and sends it on its
  // own TX queue.
  EXPECT_EQ(rig.poll(owner), 1u);
  auto out = rig.sent(kBack, owner);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(syn.out));
  EXPECT_EQ(rig.engine(owner).conns.size(), 1u);
  EXPECT_EQ(rig.sent_anywhere(), 0u);

  // The real server's reply comes in on the other worker's queue of the back port: the owner is
  // the client's worker again (destination of the reply), where the connection is.
  const Case& synack = golden_case("synack_nat");
  rig.inject(kBack, synack.in, other);
  EXPECT_EQ(rig.poll(other), 1u);
  EXPECT_EQ(rig.engine(other).stats.handed_off.get(), 2u);
  EXPECT_EQ(rig.poll(owner), 1u);
  out = rig.sent(kFront, owner);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(synack.out));

  // Received by its owner: handled there, no hand-off.
  const Case& ack = golden_case("ack_nat");
  rig.inject(kFront, ack.in, owner);
  EXPECT_EQ(rig.poll(owner), 1u);
  out = rig.sent(kBack, owner);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(ack.out));
  EXPECT_EQ(rig.engine(owner).stats.handed_off.get(), 0u);
  EXPECT_EQ(rig.engine(other).stats.lb_in.get() + rig.engine(other).stats.lb_out.get(), 0u);
  const lb::Conn* c = find_conn(rig, 40000, 80, owner);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, lb::TcpState::kEstablished);
}

TEST(LbPacket, TwoWorkersIcmpAboutAFlowGoesToItsOwner) {
  MAKE_RIG(rig, .workers = 2);
  const uint32_t owner = dp::owner_of(kClient, 2);
  const uint32_t other = 1 - owner;
  for (const char* name : {"syn_nat", "synack_nat"}) {
    const Case& c = golden_case(name);
    rig.inject(c.in_port, c.in, owner);
    EXPECT_EQ(rig.poll(owner), 1u);
    EXPECT_EQ(rig.sent(c.out_port, owner).size(), 1u);
  }
  // A router tells the VIP about the SYN-ACK; the frame lands on the other worker.
  const Case& frag = golden_case("icmp_frag_needed_to_vip");
  rig.inject(kFront, frag.in, other);
  EXPECT_EQ(rig.poll(other), 1u);
  EXPECT_EQ(rig.sent_anywhere(), 0u);
  EXPECT_EQ(rig.poll(owner), 1u);
  const auto out = rig.sent(kBack, owner);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(frag.out));
  EXPECT_EQ(rig.engine(owner).stats.icmp_related.get(), 1u);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Three lcores (main + two workers) on however few CPUs: workers are never launched, the test
  // thread drives them.
  std::vector<std::string> args{argv[0], "--lcores", "0@0,1@0,2@0", "--no-pci", "--log-level=error",
                                "-m",    "256"};
  if (tandem_test::free_hugepages(160)) {
    args.push_back("--in-memory");
  } else {
    args.insert(args.end(), {"--no-huge", "--no-shconf"});
  }
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  if (test_pool() == nullptr) {
    std::fprintf(stderr, "cannot create the test mempool\n");
    return 1;
  }
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
