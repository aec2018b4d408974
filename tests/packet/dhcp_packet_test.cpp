// Packet tests: the DHCP server as the workers run it — Dataplane::poll_once() on net_ring ports,
// the server snapshot and lease stores built from a parsed configuration the way tandemd builds
// them (ctl::make_snapshot, make_dhcp_config, lease_params, fill_lease_store), fed whole Ethernet
// frames from tests/fixtures/dhcp_packet_golden.txt (written by gen_dhcp_packet_golden.py, not by
// the code under test). Checks the frames transmitted byte for byte, their checksums with a sum of
// its own, the counters, the lease-event ring, replies held for the journal (strict), standby
// gating by server identifier, and the hand-off between two workers.
//
// Every test builds its own Dataplane (a Rig) on fresh ring ports, so lease state never leaks
// from one test into the next; all workers are driven from the test thread.

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "control/dhcp_translate.h"
#include "control/translate.h"
#include "dataplane/dataplane.h"
#include "dhcp/codec.h"
#include "dhcp/server.h"
#include "eal_env.h"
#include "tests/golden.h"

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}
const dp::Mac kOurMac{0x02, 0, 0, 0, 0, 0x02};
const dp::Mac kVmac{0x00, 0x00, 0x5e, 0x00, 0x01, 0x33};
const dp::Mac kClientA{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
const dp::Mac kRelayMac{0x02, 0, 0, 0, 0, 0x0a};
constexpr uint32_t kOurIp = ip4(192, 0, 2, 2);
constexpr uint32_t kVip = ip4(192, 0, 2, 100);
constexpr uint32_t kRelayIp = ip4(192, 0, 2, 10);
constexpr uint32_t kFirstPoolIp = ip4(192, 0, 2, 150);
constexpr size_t kPayloadOff = 14 + 20 + 8;

// The server gen_dhcp_packet_golden.py writes its frames for.
constexpr const char* kConf = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; }
);
dhcp = {
  options = ( { name = "domain-name-servers"; value = [ "192.0.2.53", "198.51.100.53" ]; } );
  subnets = (
    {
      subnet = "192.0.2.0/24";
      port = "front0";
      options = (
        { name = "routers"; value = [ "192.0.2.1" ]; },
        { name = "domain-name"; value = "example.test"; }
      );
      pools = ( { range = "192.0.2.150 - 192.0.2.250"; } );
      hosts = ( { name = "printer"; mac = "02:00:00:00:00:50"; ip = "192.0.2.200"; } );
    },
    {
      subnet = "198.18.0.0/16";
      relays = [ "192.0.2.10" ];
      default_lease_s = 600;
      options = ( { name = "routers"; value = [ "198.18.0.1" ]; } );
      pools = ( { range = "198.18.0.10 - 198.18.255.250"; } );
    }
  );
};
)";

const std::map<std::string, Bytes>& golden() {
  static const auto frames = tandem_test::read_golden_frames("dhcp_packet_golden.txt");
  return frames;
}

const Bytes& frame(const std::string& name) {
  static const Bytes kNone;
  const auto it = golden().find(name);
  EXPECT_NE(it, golden().end()) << "no golden frame " << name;
  return it == golden().end() ? kNone : it->second;
}

// --- an independent look at what was sent ------------------------------------------------------

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// RFC 1071 sum, folded.
uint32_t ones_sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i < n; i += 2) s += uint32_t{p[i]} << 8 | (i + 1 < n ? p[i + 1] : 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

// Lengths and both checksums of an Ethernet/IPv4/UDP frame; "" when all hold.
std::string check_udp_frame(const Bytes& f) {
  if (f.size() < kPayloadOff) return "shorter than the headers";
  if (be16(&f[12]) != 0x0800) return "not IPv4";
  const uint8_t* ip = &f[14];
  if (ip[0] != 0x45) return "IPv4 version/IHL";
  if (be16(ip + 2) != f.size() - 14) return "IPv4 total length";
  if (ip[9] != 17) return "not UDP";
  if (ones_sum(ip, 20) != 0xffff) return "IPv4 header checksum";
  const uint8_t* u = ip + 20;
  const uint16_t udp_len = be16(u + 4);
  if (udp_len != f.size() - 34) return "UDP length";
  if (be16(u + 6) == 0) return "UDP checksum absent";
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = 17;
  pseudo[10] = static_cast<uint8_t>(udp_len >> 8);
  pseudo[11] = static_cast<uint8_t>(udp_len);
  if (ones_sum(u, udp_len, ones_sum(pseudo, 12)) != 0xffff) return "UDP checksum";
  return "";
}

// The value of option `code` in a reply frame's options field (no overload in our replies).
std::optional<Bytes> reply_option(const Bytes& f, uint8_t code) {
  for (size_t i = kPayloadOff + 240; i < f.size();) {
    const uint8_t c = f[i];
    if (c == 255) break;
    if (c == 0) {
      ++i;
      continue;
    }
    if (i + 2 > f.size() || i + 2 + f[i + 1] > f.size()) break;
    if (c == code)
      return Bytes(f.begin() + static_cast<long>(i) + 2,
                   f.begin() + static_cast<long>(i) + 2 + f[i + 1]);
    i += 2 + f[i + 1];
  }
  return std::nullopt;
}

// Hex, so that a mismatch shows where the frames differ.
std::string hex(const Bytes& b) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s += kDigits[x >> 4];
    s += kDigits[x & 15];
  }
  return s;
}

uint8_t reply_type(const Bytes& f) {
  const auto v = reply_option(f, 53);
  return v && v->size() == 1 ? (*v)[0] : 0;
}

// --- a data plane serving DHCP -----------------------------------------------------------------

struct RigOptions {
  uint32_t workers = 1;
  bool hold_for_journal = false;
  uint32_t server_id = 0;               // subnet 192.0.2.0/24's server_id (0: the port's address)
  std::vector<ctl::ExtraAddress> vips;  // VIPs held now (owned, answered)
  uint32_t pool_last = 0;               // subnet 192.0.2.0/24's pool ends here (0: as configured)
};

rte_mempool* test_pool() {
  static rte_mempool* pool =
      rte_pktmbuf_pool_create("dhcp_pt_pool", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return pool;
}

class Rig {
 public:
  explicit Rig(const RigOptions& o) { setup(o); }
  ~Rig() {
    dp_.stop();  // closes the ring port: its rings are ours to empty and free
    for (rte_ring* r : rx_) drain_and_free(r);
    for (rte_ring* r : tx_) drain_and_free(r);
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  void setup(const RigOptions& o) {
    static int seq = 0;
    const std::string name = "dhpt" + std::to_string(++seq);
    // One RX ring per worker (RX queue w is worker w's), one TX ring per worker plus control's.
    for (uint32_t q = 0; q < o.workers; ++q)
      rx_.push_back(rte_ring_create((name + "_rx" + std::to_string(q)).c_str(), 1024, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    for (uint32_t q = 0; q <= o.workers; ++q)
      tx_.push_back(rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), 1024, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    for (auto* r : rx_) ASSERT_NE(r, nullptr);
    for (auto* r : tx_) ASSERT_NE(r, nullptr);
    const int id = rte_eth_from_rings(name.c_str(), rx_.data(), o.workers, tx_.data(),
                                      o.workers + 1, SOCKET_ID_ANY);
    ASSERT_GE(id, 0) << rte_strerror(rte_errno);
    char dev[RTE_ETH_NAME_MAX_LEN];
    ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), dev), 0);

    auto loaded = cfg::load_string(kConf, "dhcp_packet_test.conf");
    ASSERT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : loaded.errors[0].str());
    cfg_ = *loaded.config;
    cfg_.dhcp.subnets[0].server_id = o.server_id;
    if (o.pool_last != 0) cfg_.dhcp.subnets[0].pools[0].last = o.pool_last;
    // Pools are sliced by the configured worker count: it must match the engines.
    cfg_.dataplane.worker_cores.clear();
    for (uint32_t w = 0; w < o.workers; ++w) cfg_.dataplane.worker_cores.push_back(1 + w);

    dp::Params p;
    p.ports.push_back({"front0", dev, 1500, 1024, 1024, ""});
    for (uint32_t w = 0; w < o.workers; ++w) p.worker_lcores.push_back(1 + w);
    p.mbufs = 1023;
    p.mbuf_cache = 0;
    ASSERT_EQ(dp_.init(p), "");

    sc_ = std::make_shared<const dhcp::ServerConfig>(ctl::make_dhcp_config(cfg_));
    dp::DhcpParams dh;
    dh.hold_for_journal = o.hold_for_journal;
    dh.journal_ring_size = 1024;
    for (uint32_t w = 0; w < o.workers; ++w) {
      auto store = std::make_unique<dhcp::LeaseStore>(ctl::lease_params(cfg_, *sc_, w));
      std::string err;
      ASSERT_TRUE(ctl::fill_lease_store(cfg_, *sc_, w, *store, &err)) << err;
      dh.engines.push_back(std::make_unique<dp::DhcpEngine>(*sc_, std::move(store), w, o.workers));
    }
    ASSERT_EQ(dp_.enable_dhcp(std::move(dh)), "");
    ASSERT_EQ(dp_.start(make_snap(o.vips), /*launch=*/false), "");
    for (uint32_t w = 0; w < o.workers; ++w) dp_.attach_reader(w);
    ready_ = true;
  }

  // The snapshot control publishes (make_snapshot sets the ports' DHCP flag and the owned
  // addresses), with the server configuration and a busy worker (no idle sleeps in tests).
  std::unique_ptr<dp::Snapshot> make_snap(const std::vector<ctl::ExtraAddress>& vips) const {
    auto s = std::make_unique<dp::Snapshot>(ctl::make_snapshot(cfg_, {kOurMac}, 1, vips));
    s->idle = dp::IdleMode::kBusy;
    s->dhcp = sc_;
    return s;
  }

  bool ready() const { return ready_; }
  dp::Dataplane& dp() { return dp_; }
  const dhcp::ServerConfig& server_config() const { return *sc_; }
  const dp::DhcpEngine& engine(uint32_t w) const { return *dp_.dhcp_engine(w); }
  const dp::DhcpStats& stats(uint32_t w = 0) const { return engine(w).stats; }
  uint64_t reason(dhcp::Reason r, uint32_t w = 0) const {
    return engine(w).server.counters().reasons[static_cast<size_t>(r)].get();
  }

  // Enqueues a frame on RX queue `q` (worker q's).
  void inject(const Bytes& f, uint32_t q = 0) {
    rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
    ASSERT_NE(m, nullptr);
    char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(f.size()));
    ASSERT_NE(d, nullptr);
    std::memcpy(d, f.data(), f.size());
    ASSERT_EQ(rte_ring_enqueue(rx_[q], m), 0);
  }
  uint32_t poll(uint32_t w = 0) { return dp_.poll_once(dp_.worker(w)); }

  // Frames sent on TX queue `q` (worker q's), copied and freed.
  std::vector<Bytes> sent(uint32_t q = 0) {
    std::vector<Bytes> out;
    void* obj;
    while (rte_ring_dequeue(tx_[q], &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.emplace_back(d, d + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
    }
    return out;
  }

  // Injects `in` on worker 0 and returns what one loop transmits.
  std::vector<Bytes> exchange(const Bytes& in) {
    inject(in);
    EXPECT_EQ(poll(), 1u);
    return sent();
  }

  std::vector<dhcp::LeaseEvent> events(uint32_t w = 0) {
    std::vector<dhcp::LeaseEvent> out(64);
    out.resize(dp_.poll_lease_events(w, out.data(), static_cast<uint32_t>(out.size())));
    return out;
  }

 private:
  static void drain_and_free(rte_ring* r) {
    if (r == nullptr) return;
    void* obj;
    while (rte_ring_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    rte_ring_free(r);
  }

  std::vector<rte_ring*> rx_, tx_;
  cfg::Config cfg_;
  std::shared_ptr<const dhcp::ServerConfig> sc_;
  dp::Dataplane dp_;
  bool ready_ = false;
};

#define MAKE_RIG(var, ...)          \
  Rig var{RigOptions{__VA_ARGS__}}; \
  ASSERT_TRUE(var.ready())

// --- golden exchanges --------------------------------------------------------------------------

struct Step {
  const char* in;
  const char* out;  // nullptr: nothing may be sent
};
struct Exchange {
  const char* name;
  std::vector<Step> steps;
};

TEST(DhcpPacket, GoldenExchanges) {
  ASSERT_GE(golden().size(), 21u) << "fixture missing or unreadable";
  const std::vector<Exchange> table = {
      // Broadcast flag clear: OFFER and ACK unicast to yiaddr at chaddr.
      {"dora_unicast", {{"discover_unicast", "offer_unicast"}, {"request_selecting", "ack"}}},
      // Broadcast flag set: to 255.255.255.255 at ff:ff:ff:ff:ff:ff.
      {"offer_broadcast", {{"discover_broadcast", "offer_broadcast"}}},
      // A MAC reservation inside the pool gets its address, not the pool's first.
      {"reservation", {{"discover_reserved", "offer_reserved"}}},
      // INIT-REBOOT for an address of another network: NAK, broadcast.
      {"nak_outside_subnet", {{"request_wrong_subnet", "nak_wrong_subnet"}}},
      // Relayed: the relay's subnet, to giaddr:67 at the relayed frame's source MAC, 82 echoed.
      {"relayed", {{"discover_relayed", "offer_relayed"}, {"request_relayed", "ack_relayed"}}},
      // RELEASE is never answered.
      {"release",
       {{"discover_unicast", "offer_unicast"}, {"request_selecting", "ack"}, {"release", nullptr}}},
  };
  for (const Exchange& x : table) {
    SCOPED_TRACE(x.name);
    MAKE_RIG(rig);
    for (const Step& st : x.steps) {
      SCOPED_TRACE(st.in);
      const auto out = rig.exchange(frame(st.in));
      if (st.out == nullptr) {
        EXPECT_TRUE(out.empty());
        continue;
      }
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(check_udp_frame(out[0]), "");
      EXPECT_EQ(hex(out[0]), hex(frame(st.out)));
    }
    EXPECT_EQ(rig.dp().worker_stats(0).drops[static_cast<size_t>(dp::Drop::kL4Unhandled)].get(),
              0u);
  }
}

TEST(DhcpPacket, OfferHeadersAndChecksums) {
  MAKE_RIG(rig);
  const auto out = rig.exchange(frame("discover_unicast"));
  ASSERT_EQ(out.size(), 1u);
  const Bytes& f = out[0];
  ASSERT_EQ(check_udp_frame(f), "");
  EXPECT_TRUE(std::equal(kClientA.begin(), kClientA.end(), f.begin()));  // to chaddr, not ARP
  EXPECT_TRUE(std::equal(kOurMac.begin(), kOurMac.end(), f.begin() + 6));
  EXPECT_EQ(be32(&f[14 + 12]), kOurIp);
  EXPECT_EQ(be32(&f[14 + 16]), kFirstPoolIp);  // yiaddr
  EXPECT_EQ(f[14 + 8], 64);                    // TTL
  EXPECT_EQ(be16(&f[34]), dhcp::kServerPort);
  EXPECT_EQ(be16(&f[36]), dhcp::kClientPort);
  EXPECT_EQ(f[kPayloadOff], 2);  // BOOTREPLY
  EXPECT_EQ(be32(&f[kPayloadOff + 16]), kFirstPoolIp);
  EXPECT_EQ(reply_type(f), 2);  // OFFER
  EXPECT_EQ(rig.stats().received[1].get(), 1u);
  EXPECT_EQ(rig.engine(0).server.counters().sent[2].get(), 1u);
  EXPECT_EQ(rig.dp().worker_stats(0).tx_packets.get(), 1u);
}

TEST(DhcpPacket, RelayedOfferGoesBackToTheRelay) {
  MAKE_RIG(rig);
  const Bytes& in = frame("discover_relayed");
  const auto out = rig.exchange(in);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& f = out[0];
  ASSERT_EQ(check_udp_frame(f), "");
  EXPECT_TRUE(std::equal(kRelayMac.begin(), kRelayMac.end(), f.begin()));
  EXPECT_TRUE(std::equal(in.begin() + 6, in.begin() + 12, f.begin()));  // = request's source MAC
  EXPECT_EQ(be32(&f[14 + 16]), kRelayIp);
  EXPECT_EQ(be16(&f[34]), dhcp::kServerPort);
  EXPECT_EQ(be16(&f[36]), dhcp::kServerPort);                  // relay agents listen on 67
  EXPECT_EQ(be32(&f[kPayloadOff + 16]), ip4(198, 18, 0, 10));  // yiaddr from the relayed subnet
  EXPECT_EQ(be32(&f[kPayloadOff + 24]), kRelayIp);             // giaddr kept
  const auto relay_in = Bytes{1,   12,  'g', 'e', '-', '0',  '/', '0', '/', '1',  '.',
                              '1', '0', '0', 2,   6,   0x02, 0,   0,   0,   0x10, 0x01};
  EXPECT_EQ(reply_option(f, 82), relay_in);
}

// --- leases ------------------------------------------------------------------------------------

TEST(DhcpPacket, AckProducesABindEvent) {
  MAKE_RIG(rig);
  ASSERT_EQ(rig.exchange(frame("discover_unicast")).size(), 1u);
  auto ev = rig.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, dhcp::LeaseEvent::kOffer);
  EXPECT_EQ(ev[0].lease.ip, kFirstPoolIp);
  EXPECT_EQ(ev[0].lease.state, dhcp::LeaseState::kOffered);

  const auto ack = rig.exchange(frame("request_selecting"));
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(reply_type(ack[0]), 5);
  ev = rig.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, dhcp::LeaseEvent::kBind);
  EXPECT_EQ(ev[0].lease.ip, kFirstPoolIp);
  EXPECT_EQ(ev[0].lease.mac, kClientA);
  EXPECT_EQ(ev[0].lease.state, dhcp::LeaseState::kBound);
  EXPECT_EQ(ev[0].lease.pool, 0u);
  // 3600 s from now (wall clock: leases outlive the process).
  EXPECT_NEAR(static_cast<double>(ev[0].lease.expires_ns - ev[0].lease.updated_ns), 3600e9, 1e6);
  // A NAK changes no lease: no event.
  ASSERT_EQ(rig.exchange(frame("request_wrong_subnet")).size(), 1u);
  EXPECT_TRUE(rig.events().empty());
  EXPECT_EQ(rig.reason(dhcp::Reason::kWrongSubnet), 1u);
}

TEST(DhcpPacket, ReleaseFreesTheLease) {
  MAKE_RIG(rig);
  ASSERT_EQ(rig.exchange(frame("discover_unicast")).size(), 1u);
  ASSERT_EQ(rig.exchange(frame("request_selecting")).size(), 1u);
  const dhcp::Lease* l = rig.engine(0).store->find(kFirstPoolIp);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->state, dhcp::LeaseState::kBound);
  rig.events();

  EXPECT_TRUE(rig.exchange(frame("release")).empty());
  EXPECT_EQ(l->state, dhcp::LeaseState::kFree);
  EXPECT_EQ(rig.engine(0).store->stats(0).bound, 0u);
  EXPECT_EQ(rig.stats().received[static_cast<size_t>(dhcp::MessageType::kRelease)].get(), 1u);
  EXPECT_EQ(rig.reason(dhcp::Reason::kNoLease), 0u);
  const auto ev = rig.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, dhcp::LeaseEvent::kRelease);
  EXPECT_EQ(ev[0].lease.ip, kFirstPoolIp);
  // A second RELEASE of the same address holds nothing: ignored and counted.
  EXPECT_TRUE(rig.exchange(frame("release")).empty());
  EXPECT_EQ(rig.reason(dhcp::Reason::kNoLease), 1u);
}

// A client behind a relay renews and releases by unicast to the server identifier, without
// giaddr (RFC 2131 §4.3.2 RENEWING, §4.4.6).
TEST(DhcpPacket, RelayedClientReleasesByUnicast) {
  MAKE_RIG(rig);
  ASSERT_EQ(rig.exchange(frame("discover_relayed")).size(), 1u);
  ASSERT_EQ(rig.exchange(frame("request_relayed")).size(), 1u);
  EXPECT_TRUE(rig.exchange(frame("release_relayed_client")).empty());
  const dhcp::Lease* l = rig.engine(0).store->find(ip4(198, 18, 0, 10));
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->state, dhcp::LeaseState::kFree);
}

// A relayed client renews by unicast without giaddr: its subnet is the one holding ciaddr, and
// the ACK goes back through the router its request came from (the frame's source MAC), not to
// chaddr, which is not on our link.
TEST(DhcpPacket, RelayedClientRenewsByUnicast) {
  MAKE_RIG(rig);
  ASSERT_EQ(rig.exchange(frame("discover_relayed")).size(), 1u);
  ASSERT_EQ(rig.exchange(frame("request_relayed")).size(), 1u);
  const auto out = rig.exchange(frame("renew_relayed_client"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(rig.reason(dhcp::Reason::kWrongSubnet), 0u);
  EXPECT_EQ(hex(out[0]), hex(frame("ack_renew_relayed_client")));
}

// --- refusals ----------------------------------------------------------------------------------

TEST(DhcpPacket, MalformedIsCountedAndTheWorkerCarriesOn) {
  MAKE_RIG(rig);
  const auto& st = rig.stats();
  EXPECT_TRUE(rig.exchange(frame("bad_magic")).empty());
  EXPECT_EQ(st.malformed[static_cast<size_t>(dhcp::Malformed::kMagic)].get(), 1u);
  EXPECT_TRUE(rig.exchange(frame("truncated")).empty());
  EXPECT_EQ(st.malformed[static_cast<size_t>(dhcp::Malformed::kTruncated)].get(), 1u);
  uint64_t received = 0;
  for (const auto& c : st.received) received += c.get();
  EXPECT_EQ(received, 0u);
  EXPECT_TRUE(rig.events().empty());
  // Both in one burst with a good one behind them: only the good one is answered.
  rig.inject(frame("bad_magic"));
  rig.inject(frame("truncated"));
  rig.inject(frame("discover_unicast"));
  EXPECT_EQ(rig.poll(), 3u);
  const auto out = rig.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(frame("offer_unicast")));
  EXPECT_EQ(st.malformed[static_cast<size_t>(dhcp::Malformed::kMagic)].get(), 2u);
  EXPECT_EQ(st.malformed[static_cast<size_t>(dhcp::Malformed::kTruncated)].get(), 2u);
}

TEST(DhcpPacket, StandbyIsSilentUntilItHoldsTheVip) {
  MAKE_RIG(rig, .server_id = kVip);
  // What control publishes: the port's address is owned, the VIP is not (backup).
  ASSERT_EQ(rig.dp().snapshot().n_owned, 1u);
  EXPECT_EQ(rig.dp().snapshot().owned[0], kOurIp);
  EXPECT_TRUE(rig.dp().snapshot().ports[0].dhcp);
  EXPECT_TRUE(rig.exchange(frame("discover_broadcast")).empty());
  EXPECT_EQ(rig.reason(dhcp::Reason::kStandby), 1u);
  EXPECT_TRUE(rig.events().empty());  // nothing offered, nothing held
  EXPECT_EQ(rig.engine(0).store->stats(0).offered, 0u);
  // Relayed subnet: no server_id of its own, so it is served whatever we hold.
  ASSERT_EQ(rig.exchange(frame("discover_relayed")).size(), 1u);

  // Master now: the VIP (with its virtual MAC) is ours, and the same DISCOVER is answered from it.
  rig.dp().publish(rig.make_snap({{0, {kVip, 24}, kVmac}}));
  const auto out = rig.exchange(frame("discover_broadcast"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(check_udp_frame(out[0]), "");
  EXPECT_EQ(hex(out[0]), hex(frame("offer_broadcast_vip")));
  EXPECT_EQ(rig.reason(dhcp::Reason::kStandby), 1u);
}

// --- strict durability -------------------------------------------------------------------------

TEST(DhcpPacket, StrictHoldsRepliesUntilTheJournalSaysDurable) {
  MAKE_RIG(rig, .hold_for_journal = true);
  const auto& st = rig.stats();
  // OFFER: its lease change (kOffer) is the worker's change #1.
  EXPECT_TRUE(rig.exchange(frame("discover_unicast")).empty());
  EXPECT_EQ(st.held.get(), 1u);
  auto ev = rig.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, dhcp::LeaseEvent::kOffer);
  EXPECT_EQ(rig.poll(), 0u);
  EXPECT_TRUE(rig.sent().empty());
  rig.dp().set_lease_durable(0, 1);
  EXPECT_EQ(rig.poll(), 1u);
  auto out = rig.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(frame("offer_unicast")));

  // ACK: change #2. Not out while only #1 is durable, out once #2 is.
  EXPECT_TRUE(rig.exchange(frame("request_selecting")).empty());
  ev = rig.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, dhcp::LeaseEvent::kBind);
  EXPECT_EQ(ev[0].lease.ip, kFirstPoolIp);
  EXPECT_EQ(ev[0].lease.mac, kClientA);
  for (int i = 0; i < 3; ++i) rig.poll();
  EXPECT_TRUE(rig.sent().empty());
  rig.dp().set_lease_durable(0, 2);
  rig.poll();
  out = rig.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(frame("ack")));
  EXPECT_EQ(st.held.get(), 2u);
  EXPECT_EQ(st.held_full.get() + st.journal_full.get(), 0u);

  // A NAK changes no lease: it is not held.
  const auto nak = rig.exchange(frame("request_wrong_subnet"));
  ASSERT_EQ(nak.size(), 1u);
  EXPECT_EQ(reply_type(nak[0]), 6);
  EXPECT_EQ(st.held.get(), 2u);
}

TEST(DhcpPacket, StrictReleasesHeldRepliesInOrder) {
  MAKE_RIG(rig, .hold_for_journal = true);
  // Three clients' DISCOVERs in one burst: changes #1..#3, released one durable step at a time.
  rig.inject(frame("discover_unicast"));
  rig.inject(frame("discover_broadcast"));
  rig.inject(frame("discover_reserved"));
  EXPECT_EQ(rig.poll(), 3u);
  EXPECT_TRUE(rig.sent().empty());
  EXPECT_EQ(rig.events().size(), 3u);
  rig.dp().set_lease_durable(0, 2);
  rig.poll();
  auto out = rig.sent();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::equal(kClientA.begin(), kClientA.end(), out[0].begin()));
  EXPECT_EQ(be32(&out[1][kPayloadOff + 4]), 0x0B0B0B0Bu);  // discover_broadcast's xid
  rig.dp().set_lease_durable(0, 3);
  rig.poll();
  out = rig.sent();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(hex(out[0]), hex(frame("offer_reserved")));
}

// --- two workers -------------------------------------------------------------------------------

uint32_t owner(const Rig& rig, const Bytes& f, uint32_t n) {
  dhcp::Request req;
  dhcp::Malformed why{};
  EXPECT_TRUE(dhcp::parse({f.data() + kPayloadOff, f.size() - kPayloadOff}, req, why));
  dhcp::Ingress in;  // port 0, as the rig receives everything
  return dhcp::owner_of(rig.server_config(), req, in, n);
}

// `f` (a golden request from 0.0.0.0) with another chaddr; UDP checksum 0 (none).
Bytes with_chaddr(Bytes f, const dp::Mac& mac) {
  std::copy(mac.begin(), mac.end(), f.begin() + kPayloadOff + 28);
  std::copy(mac.begin(), mac.end(), f.begin() + 6);
  f[40] = f[41] = 0;
  return f;
}

// A locally administered MAC whose client worker `w` of `n` owns.
dp::Mac mac_owned_by(const Rig& rig, uint32_t w, uint32_t n) {
  for (uint8_t i = 1; i < 255; ++i) {
    const dp::Mac m{0x02, 0, 0, 0, 0x20, i};
    if (owner(rig, with_chaddr(frame("discover_broadcast"), m), n) == w) return m;
  }
  ADD_FAILURE() << "no MAC for worker " << w;
  return {};
}

TEST(DhcpPacket, TwoWorkersHandOffToTheOwner) {
  MAKE_RIG(rig, .workers = 2);
  // A client of worker 0 (the lower share of the pool), received by worker 1.
  const dp::Mac mac = mac_owned_by(rig, 0, 2);
  const Bytes in = with_chaddr(frame("discover_broadcast"), mac);
  ASSERT_EQ(owner(rig, in, 2), 0u);
  rig.inject(in, 1);
  EXPECT_EQ(rig.poll(1), 1u);
  EXPECT_EQ(rig.stats(1).handed_off.get(), 1u);
  EXPECT_EQ(rig.stats(1).received[1].get(), 0u);  // counted by the owner, not twice
  EXPECT_TRUE(rig.sent(1).empty());
  EXPECT_TRUE(rig.sent(0).empty());
  // The owner picks it up from its hand-off ring at the start of its next loop.
  EXPECT_EQ(rig.poll(0), 1u);
  EXPECT_EQ(rig.stats(0).received[1].get(), 1u);
  const auto out = rig.sent(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(check_udp_frame(out[0]), "");
  EXPECT_EQ(reply_type(out[0]), 2);
  EXPECT_EQ(be32(&out[0][kPayloadOff + 16]), kFirstPoolIp);
  EXPECT_TRUE(std::equal(mac.begin(), mac.end(), out[0].begin() + kPayloadOff + 28));
  EXPECT_TRUE(rig.sent(1).empty());
  EXPECT_EQ(rig.events(0).size(), 1u);
  EXPECT_TRUE(rig.events(1).empty());
  // Received by its owner: answered there, no hand-off.
  rig.inject(with_chaddr(frame("discover_broadcast"), mac), 0);
  EXPECT_EQ(rig.poll(0), 1u);
  EXPECT_EQ(rig.sent(0).size(), 1u);
  EXPECT_EQ(rig.stats(0).handed_off.get(), 0u);
}

TEST(DhcpPacket, TwoWorkersClientOfWorkerOneIsAnsweredByIt) {
  MAKE_RIG(rig, .workers = 2);
  // Worker 1 owns the upper share of the pool (ctl::fill_lease_store slices pools in order).
  const dp::Mac mac = mac_owned_by(rig, 1, 2);
  rig.inject(with_chaddr(frame("discover_broadcast"), mac), 0);
  EXPECT_EQ(rig.poll(0), 1u);
  EXPECT_EQ(rig.stats(0).handed_off.get(), 1u);
  EXPECT_TRUE(rig.sent(0).empty());
  EXPECT_EQ(rig.poll(1), 1u);
  const auto out = rig.sent(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(check_udp_frame(out[0]), "");
  EXPECT_EQ(reply_type(out[0]), 2);
  const uint32_t yiaddr = be32(&out[0][kPayloadOff + 16]);
  EXPECT_GE(yiaddr, ip4(192, 0, 2, 200));
  EXPECT_LE(yiaddr, ip4(192, 0, 2, 250));
  EXPECT_EQ(rig.reason(dhcp::Reason::kPoolExhausted, 1), 0u);
  const auto ev = rig.events(1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].lease.ip, yiaddr);
  EXPECT_TRUE(rig.events(0).empty());
}

TEST(DhcpPacket, TwoWorkersManyClientsEachAnsweredOnceByItsOwner) {
  MAKE_RIG(rig, .workers = 2);
  // 40 clients, each received by both workers in turn: every DISCOVER gets exactly one OFFER,
  // from its owner, and no address is offered twice.
  std::vector<uint32_t> seen;
  uint64_t handed = 0;
  for (uint8_t i = 1; i <= 40; ++i) {
    const dp::Mac m{0x02, 0, 0, 0, 0x30, i};
    const Bytes in = with_chaddr(frame("discover_broadcast"), m);
    const uint32_t own = owner(rig, in, 2);
    for (uint32_t rx = 0; rx < 2; ++rx) {
      rig.inject(in, rx);
      rig.poll(rx);
      rig.poll(1 - rx);
      rig.poll(rx);
      EXPECT_TRUE(rig.sent(1 - own).empty());
      const auto out = rig.sent(own);
      ASSERT_EQ(out.size(), 1u) << "client " << int{i} << " received by worker " << rx;
      seen.push_back(be32(&out[0][kPayloadOff + 16]));
      handed += rx != own;
    }
    // The second DISCOVER of a client renews its offer: the same address.
    EXPECT_EQ(seen[seen.size() - 1], seen[seen.size() - 2]);
  }
  EXPECT_EQ(rig.stats(0).handed_off.get() + rig.stats(1).handed_off.get(), handed);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()) - seen.begin(), 40);
}

// Borrowing: a pool of 4 addresses split 2 + 2 between two workers; 4 clients that all hash to
// worker 0 still get 4 distinct addresses (worker 0 lends the DISCOVERs its share cannot serve to
// worker 1), and each REQUEST goes to the worker holding the offered address and is ACKed.
TEST(DhcpPacket, TwoWorkersLendWhenAShareRunsDry) {
  MAKE_RIG(rig, .workers = 2, .pool_last = ip4(192, 0, 2, 153));
  std::vector<dp::Mac> macs;
  for (uint8_t i = 1; macs.size() < 4; ++i) {
    const dp::Mac m{0x02, 0, 0, 0, 0x40, i};
    if (owner(rig, with_chaddr(frame("discover_broadcast"), m), 2) == 0) macs.push_back(m);
  }
  std::vector<uint32_t> got;
  for (const dp::Mac& m : macs) {
    rig.inject(with_chaddr(frame("discover_broadcast"), m), 0);
    for (int k = 0; k < 3; ++k) {
      rig.poll(0);
      rig.poll(1);
    }
    std::vector<Bytes> out = rig.sent(0);
    for (Bytes& b : rig.sent(1)) out.push_back(std::move(b));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(reply_type(out[0]), 2);  // OFFER
    got.push_back(be32(&out[0][kPayloadOff + 16]));
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<uint32_t>{ip4(192, 0, 2, 150), ip4(192, 0, 2, 151),
                                        ip4(192, 0, 2, 152), ip4(192, 0, 2, 153)}));
  EXPECT_EQ(rig.stats(0).lent.get(), 2u);
  EXPECT_EQ(rig.reason(dhcp::Reason::kPoolExhausted), 0u) << "lent, not refused";
  // A fifth client: every share is dry, so worker 1 (the last asked) refuses it.
  dp::Mac fifth{0x02, 0, 0, 0, 0x41, 1};
  rig.inject(with_chaddr(frame("discover_broadcast"), fifth), 0);
  for (int k = 0; k < 3; ++k) {
    rig.poll(0);
    rig.poll(1);
  }
  EXPECT_TRUE(rig.sent(0).empty());
  EXPECT_TRUE(rig.sent(1).empty());
  EXPECT_EQ(rig.reason(dhcp::Reason::kPoolExhausted), 1u);
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
