// Packet tests: the real worker loop (Dataplane::poll_once) on net_ring ports, fed golden frames
// from tests/fixtures/local_golden.txt; checks the bytes it transmits, the drops it counts, the
// events it hands to the control thread and the control TX queue.

#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "eal_env.h"
#include "tests/golden.h"

namespace {

const dp::Mac kOurMac{0x02, 0, 0, 0, 0, 0x02};
constexpr uint32_t kOurIp = (192u << 24) | (0u << 16) | (2u << 8) | 2u;

struct Golden {
  std::string name, verdict, reason;
  std::vector<uint8_t> in, out;
};

std::vector<Golden> load_golden() {
  std::vector<Golden> cases;
  for (const auto& c : tandem_test::read_golden("local_golden.txt")) {
    if (c.size() != 5) continue;
    cases.push_back({c[0], c[1], c[2], tandem_test::from_hex(c[3]),
                     c[4] == "-" ? std::vector<uint8_t>{} : tandem_test::from_hex(c[4])});
  }
  return cases;
}

class DataplaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static int n = 0;
    ++n;
    port_ = tandem_test::make_ring_port("pt" + std::to_string(n), 1, 2);
    ASSERT_NE(port_.rx, nullptr);
    pool_ = rte_pktmbuf_pool_create(("ptpool" + std::to_string(n)).c_str(), 1023, 0, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    ASSERT_NE(pool_, nullptr);
    dp_ = new dp::Dataplane();
    dp::Params p;
    p.ports.push_back({"front0", port_.name, 1500, 1024, 1024});
    p.worker_lcores = {1};
    p.mbufs = 2047;
    p.mbuf_cache = 0;
    ASSERT_EQ(dp_->init(p), "");
    auto snap = std::make_unique<dp::Snapshot>();
    snap->n_ports = 1;
    snap->ports[0].mac = kOurMac;
    snap->ports[0].n_addrs = 1;
    snap->ports[0].addrs[0] = kOurIp;
    snap->ports[0].prefix_len[0] = 24;
    snap->idle = dp::IdleMode::kBusy;
    ASSERT_EQ(dp_->start(std::move(snap), /*launch=*/false), "");
    dp_->attach_reader(0);
  }
  static void TearDownTestSuite() {
    delete dp_;
    dp_ = nullptr;
  }

  void inject(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    if (!frame.empty()) {
      char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
      ASSERT_NE(d, nullptr);
      memcpy(d, frame.data(), frame.size());
    }
    ASSERT_EQ(rte_ring_enqueue(port_.rx, m), 0);
  }

  // Frames sent on TX queue `q`, freed after copying.
  std::vector<std::vector<uint8_t>> drain(unsigned q) {
    std::vector<std::vector<uint8_t>> out;
    void* obj;
    while (rte_ring_dequeue(port_.tx[q], &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.emplace_back(d, d + m->data_len);
      rte_pktmbuf_free(m);
    }
    return out;
  }

  uint64_t drops(dp::Drop d) { return dp_->worker_stats(0).drops[static_cast<size_t>(d)].get(); }

  static tandem_test::RingPort port_;
  static rte_mempool* pool_;
  static dp::Dataplane* dp_;
};

tandem_test::RingPort DataplaneTest::port_;
rte_mempool* DataplaneTest::pool_ = nullptr;
dp::Dataplane* DataplaneTest::dp_ = nullptr;

size_t drop_index(const std::string& name) {
  for (size_t i = 0; i < dp::kDropNames.size(); ++i)
    if (dp::kDropNames[i] == name) return i;
  return dp::kDropNames.size();
}

TEST_F(DataplaneTest, GoldenFrames) {
  auto cases = load_golden();
  ASSERT_GE(cases.size(), 10u) << "fixture missing or unreadable";
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    size_t reason = drop_index(c.reason);
    uint64_t before = c.verdict == "drop" ? dp_->worker_stats(0).drops[reason].get() : 0;
    if (c.verdict == "drop") {
      ASSERT_LT(reason, dp::kDropNames.size()) << c.reason;
    }
    inject(c.in);
    EXPECT_EQ(dp_->poll_once(dp_->worker(0)), 1u);
    auto sent = drain(0);
    if (c.verdict == "transmit") {
      ASSERT_EQ(sent.size(), 1u);
      EXPECT_EQ(sent[0], c.out);
    } else {
      EXPECT_TRUE(sent.empty());
    }
    if (c.verdict == "drop") {
      EXPECT_EQ(dp_->worker_stats(0).drops[reason].get(), before + 1);
    }
    dp::NeighborEvent ev[8];
    dp_->poll_events(ev, 8);  // keep the ring empty for the next case
  }
}

TEST_F(DataplaneTest, ArpTeachesTheControlThread) {
  auto cases = load_golden();
  dp::NeighborEvent ev[8];
  dp_->poll_events(ev, 8);
  for (const auto& c : cases) {
    if (c.name != "arp_reply_learned") continue;
    inject(c.in);
    dp_->poll_once(dp_->worker(0));
    ASSERT_EQ(dp_->poll_events(ev, 8), 1u);
    EXPECT_EQ(ev[0].ip, (192u << 24) | (2u << 8) | 10u);
    EXPECT_EQ(ev[0].mac, (dp::Mac{0x02, 0, 0, 0, 0, 0x0a}));
    EXPECT_EQ(ev[0].targeted, 1);
    EXPECT_EQ(ev[0].port, 0);
  }
}

TEST_F(DataplaneTest, BurstOfMixedTrafficIsCountedPerPacket) {
  auto cases = load_golden();
  const auto& st = dp_->worker_stats(0);
  uint64_t rx0 = st.rx_packets.get();
  uint64_t tx0 = st.tx_packets.get();
  size_t expect_tx = 0;
  for (int rep = 0; rep < 4; ++rep)
    for (const auto& c : cases) {
      inject(c.in);
      expect_tx += c.verdict == "transmit";
    }
  while (dp_->poll_once(dp_->worker(0)) != 0) {
  }
  EXPECT_EQ(st.rx_packets.get() - rx0, 4 * cases.size());
  EXPECT_EQ(st.tx_packets.get() - tx0, expect_tx);
  EXPECT_EQ(drain(0).size(), expect_tx);
  dp::NeighborEvent ev[64];
  while (dp_->poll_events(ev, 64) != 0) {
  }
}

TEST_F(DataplaneTest, GarbageNeverCrashesAndIsCounted) {
  // Random lengths and bytes, some addressed to our MAC so they get past the first check.
  uint64_t seed = 12345;
  auto rnd = [&] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  const auto& st = dp_->worker_stats(0);
  uint64_t rx0 = st.rx_packets.get();
  uint64_t handled0 = st.tx_packets.get();
  uint64_t drops0 = 0;
  for (const auto& d : st.drops) drops0 += d.get();
  const int kFrames = 5000;
  for (int i = 0; i < kFrames; ++i) {
    std::vector<uint8_t> f(rnd() % 200);
    for (auto& b : f) b = static_cast<uint8_t>(rnd());
    if (f.size() >= 14 && (i & 1)) {
      memcpy(f.data(), kOurMac.data(), 6);
      f[12] = (i & 2) ? 0x08 : 0x08;
      f[13] = (i & 2) ? 0x00 : 0x06;
    }
    inject(f);
    if (i % 256 == 255)
      while (dp_->poll_once(dp_->worker(0)) != 0) {
      }
  }
  while (dp_->poll_once(dp_->worker(0)) != 0) {
  }
  drain(0);
  dp::NeighborEvent ev[64];
  while (dp_->poll_events(ev, 64) != 0) {
  }
  uint64_t drops1 = 0;
  for (const auto& d : st.drops) drops1 += d.get();
  EXPECT_EQ(st.rx_packets.get() - rx0, static_cast<uint64_t>(kFrames));
  // Every frame is either dropped with a reason, answered, or consumed (learned ARP reply).
  EXPECT_GE((drops1 - drops0) + (st.tx_packets.get() - handled0), kFrames * 9u / 10u);
}

TEST_F(DataplaneTest, ControlFramesLeaveOnTheControlQueue) {
  uint8_t frame[dp::kMinFrameLen];
  size_t len = dp::write_arp_frame(frame, dp::arp::kOpRequest, dp::kBroadcastMac, kOurMac, kOurIp,
                                   dp::Mac{}, kOurIp);
  ASSERT_TRUE(dp_->send_frame(0, frame, static_cast<uint32_t>(len)));
  auto ctl = drain(1);
  ASSERT_EQ(ctl.size(), 1u);
  EXPECT_EQ(ctl[0], std::vector<uint8_t>(frame, frame + len));
  EXPECT_TRUE(drain(0).empty());
  EXPECT_FALSE(dp_->send_frame(5, frame, static_cast<uint32_t>(len)));
}

TEST_F(DataplaneTest, PublishedSnapshotTakesEffectNextLoop) {
  // Move our address: the old one stops being answered, the new one is answered.
  auto cases = load_golden();
  const Golden* req = nullptr;
  for (const auto& c : cases)
    if (c.name == "arp_request_for_us") req = &c;
  ASSERT_NE(req, nullptr);
  auto snap = std::make_unique<dp::Snapshot>(dp_->snapshot());
  snap->ports[0].addrs[0] = kOurIp + 1;
  snap->generation++;
  dp_->publish(std::move(snap));
  inject(req->in);
  dp_->poll_once(dp_->worker(0));
  EXPECT_TRUE(drain(0).empty());
  auto back = std::make_unique<dp::Snapshot>(dp_->snapshot());
  back->ports[0].addrs[0] = kOurIp;
  dp_->publish(std::move(back));
  inject(req->in);
  dp_->poll_once(dp_->worker(0));
  EXPECT_EQ(drain(0).size(), 1u);
  dp::NeighborEvent ev[8];
  dp_->poll_events(ev, 8);
}

TEST_F(DataplaneTest, VrrpAdvertsArePuntedIntact) {
  // A VRRPv3 advert to 224.0.0.18 (TTL 255, VRID 51, one address): the worker does not judge it,
  // it hands the whole frame to the control thread.
  std::vector<uint8_t> f(14 + 20 + 12, 0);
  dp::write_eth(f.data(), dp::kVrrpGroupMac, dp::Mac{0, 0, 0x5e, 0, 1, 51}, dp::kEtherTypeIpv4);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  dp::store_be16(ip + 2, 32);
  ip[8] = 255;
  ip[9] = dp::kIpProtoVrrp;
  dp::store_be32(ip + 12, (192u << 24) | (2u << 8) | 3u);
  dp::store_be32(ip + 16, dp::kVrrpGroup);
  dp::store_be16(ip + 10, dp::csum(ip, 20));
  uint8_t* v = ip + 20;
  v[0] = 0x31;
  v[1] = 51;
  v[2] = 100;
  v[3] = 1;
  dp::store_be16(v + 4, 100);
  dp::store_be32(v + 8, (192u << 24) | (2u << 8) | 100u);
  inject(f);
  dp_->poll_once(dp_->worker(0));
  EXPECT_TRUE(drain(0).empty());
  static dp::PuntedFrame out[4];
  ASSERT_EQ(dp_->poll_punted(out, 4), 1u);
  EXPECT_EQ(out[0].port, 0u);
  ASSERT_EQ(out[0].len, f.size());
  EXPECT_EQ(std::vector<uint8_t>(out[0].data, out[0].data + out[0].len), f);
  EXPECT_GE(dp_->worker_stats(0).punted.get(), 1u);
  // Not VRRP to the group MAC: not ours.
  ip[9] = dp::kIpProtoUdp;
  dp::store_be16(ip + 10, 0);
  dp::store_be16(ip + 10, dp::csum(ip, 20));
  uint64_t before = drops(dp::Drop::kNotOurMac) + drops(dp::Drop::kIpv4NotLocal);
  inject(f);
  dp_->poll_once(dp_->worker(0));
  EXPECT_EQ(dp_->poll_punted(out, 4), 0u);
  EXPECT_EQ(drops(dp::Drop::kNotOurMac) + drops(dp::Drop::kIpv4NotLocal), before + 1);
}

TEST_F(DataplaneTest, VipWithVirtualMacIsAnsweredFromThatMac) {
  auto cases = load_golden();
  const Golden* req = nullptr;
  for (const auto& c : cases)
    if (c.name == "arp_request_for_us") req = &c;
  ASSERT_NE(req, nullptr);
  const dp::Mac vmac{0x00, 0x00, 0x5e, 0x00, 0x01, 51};
  const uint32_t vip = (192u << 24) | (2u << 8) | 100u;
  auto snap = std::make_unique<dp::Snapshot>(dp_->snapshot());
  dp::PortView& pv = snap->ports[0];
  pv.addrs[pv.n_addrs] = vip;
  pv.prefix_len[pv.n_addrs] = 24;
  pv.vmacs[0] = vmac;
  pv.n_vmacs = 1;
  pv.addr_mac[pv.n_addrs] = 1;
  pv.n_addrs++;
  dp_->publish(std::move(snap));
  // The golden ARP request, retargeted at the VIP.
  std::vector<uint8_t> f = req->in;
  dp::store_be32(f.data() + 14 + dp::arp::kOffTpa, vip);
  inject(f);
  dp_->poll_once(dp_->worker(0));
  auto sent = drain(0);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(dp::EthView::src(sent[0].data()), vmac);
  EXPECT_EQ(dp::load_mac(sent[0].data() + 14 + dp::arp::kOffSha), vmac);
  EXPECT_EQ(dp::load_be32(sent[0].data() + 14 + dp::arp::kOffSpa), vip);
  // Frames to the virtual MAC are ours: an echo to the VIP, sent to the VMAC, is answered.
  for (const auto& c : cases)
    if (c.name == "icmp_echo_request") {
      std::vector<uint8_t> e = c.in;
      dp::store_mac(e.data(), vmac);
      uint8_t* ip = e.data() + 14;
      dp::store_be32(ip + 16, vip);
      dp::store_be16(ip + 10, 0);
      dp::store_be16(ip + 10, dp::csum(ip, 20));
      inject(e);
      dp_->poll_once(dp_->worker(0));
      auto r = drain(0);
      ASSERT_EQ(r.size(), 1u);
      EXPECT_EQ(dp::EthView::src(r[0].data()), vmac);
    }
  // Back to the plain snapshot for the other tests.
  auto back = std::make_unique<dp::Snapshot>(dp_->snapshot());
  back->ports[0].n_addrs--;
  back->ports[0].n_vmacs = 0;
  back->ports[0].addr_mac[back->ports[0].n_addrs] = 0;
  dp_->publish(std::move(back));
  dp::NeighborEvent ev[8];
  dp_->poll_events(ev, 8);
}
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!tandem_test::init_eal(argv[0])) return 1;
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
