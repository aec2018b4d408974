// NeighborTable on a fake clock: learning rules, resolution, aging and probing at exact times,
// static entries, capacity, and the deadline index staying bounded and consistent.

#include "dataplane/neighbor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace dp {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kReach = 30 * kSec;
constexpr uint64_t kIval = 1 * kSec;
constexpr Mac kMacA{0x02, 0, 0, 0, 0, 0x0a};
constexpr Mac kMacB{0x02, 0, 0, 0, 0, 0x0b};
constexpr Mac kZero{};
constexpr uint32_t kIp1 = 0xc000020a;  // 192.0.2.10
constexpr uint32_t kIp2 = 0xc000020b;
constexpr uint32_t kIp3 = 0xc000020c;

NeighborTable::Params params(size_t max_entries = 1024, uint32_t probes = 3) {
  NeighborTable::Params p;
  p.reachable_ns = kReach;
  p.probe_interval_ns = kIval;
  p.probes = probes;
  p.max_entries = max_entries;
  return p;
}

using Learn = NeighborTable::Learn;

class NeighborTest : public ::testing::Test {
 protected:
  std::vector<NeighProbe> tick(uint64_t now) {
    std::vector<NeighProbe> out;
    t_.tick(now, out);
    return out;
  }
  NeighState state(uint32_t ip, uint16_t port = 0) const { return t_.find(port, ip)->state; }

  NeighborTable t_{params()};
  uint64_t t0_ = 1000 * kSec;  // not zero, so "deadline 0" bugs show up
};

TEST(NeighStateTest, Names) {
  EXPECT_STREQ(to_string(NeighState::kIncomplete), "incomplete");
  EXPECT_STREQ(to_string(NeighState::kReachable), "reachable");
  EXPECT_STREQ(to_string(NeighState::kProbe), "probe");
  EXPECT_STREQ(to_string(NeighState::kStatic), "static");
}

TEST_F(NeighborTest, UntargetedDoesNotCreate) {
  EXPECT_EQ(t_.learn(0, kIp1, kMacA, false, t0_), Learn::kIgnored);
  EXPECT_EQ(t_.size(), 0u);
  EXPECT_EQ(t_.find(0, kIp1), nullptr);
  EXPECT_FALSE(t_.next_deadline().has_value());
}

TEST_F(NeighborTest, TargetedCreatesThenRefreshesOrUpdates) {
  EXPECT_EQ(t_.learn(1, kIp1, kMacA, true, t0_), Learn::kAdded);
  const NeighEntry* e = t_.find(1, kIp1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->port, 1);
  EXPECT_EQ(e->ip, kIp1);
  EXPECT_EQ(e->mac, kMacA);
  EXPECT_EQ(e->state, NeighState::kReachable);
  EXPECT_EQ(e->updated_ns, t0_);
  EXPECT_EQ(e->next_ns, t0_ + kReach);
  EXPECT_EQ(t_.next_deadline(), t0_ + kReach);

  EXPECT_EQ(t_.learn(1, kIp1, kMacA, true, t0_ + 5 * kSec), Learn::kRefreshed);
  EXPECT_EQ(t_.find(1, kIp1)->updated_ns, t0_ + 5 * kSec);
  EXPECT_EQ(t_.next_deadline(), t0_ + 5 * kSec + kReach);

  // Untargeted packets may still confirm or move an existing entry.
  EXPECT_EQ(t_.learn(1, kIp1, kMacA, false, t0_ + 6 * kSec), Learn::kRefreshed);
  EXPECT_EQ(t_.learn(1, kIp1, kMacB, false, t0_ + 7 * kSec), Learn::kUpdated);
  EXPECT_EQ(t_.find(1, kIp1)->mac, kMacB);
  EXPECT_EQ(t_.next_deadline(), t0_ + 7 * kSec + kReach);
  EXPECT_EQ(t_.size(), 1u);

  // Same address on another port is another neighbour.
  EXPECT_EQ(t_.learn(2, kIp1, kMacA, true, t0_), Learn::kAdded);
  EXPECT_EQ(t_.size(), 2u);
  EXPECT_EQ(t_.find(2, kIp1)->mac, kMacA);
  EXPECT_EQ(t_.find(1, kIp1)->mac, kMacB);
}

TEST_F(NeighborTest, RequestProbeReplyReachable) {
  EXPECT_TRUE(t_.request(0, kIp1, t0_));
  const NeighEntry* e = t_.find(0, kIp1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, NeighState::kIncomplete);
  EXPECT_EQ(e->mac, kZero);
  EXPECT_EQ(t_.next_deadline(), t0_);

  EXPECT_TRUE(tick(t0_ - 1).empty());
  auto out = tick(t0_);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, 0);
  EXPECT_EQ(out[0].ip, kIp1);
  EXPECT_FALSE(out[0].unicast);
  EXPECT_EQ(t_.find(0, kIp1)->probes_sent, 1u);
  EXPECT_EQ(t_.next_deadline(), t0_ + kIval);
  EXPECT_TRUE(tick(t0_).empty());

  // Asking again while resolving changes nothing.
  EXPECT_TRUE(t_.request(0, kIp1, t0_ + kIval / 4));
  EXPECT_EQ(t_.find(0, kIp1)->probes_sent, 1u);
  EXPECT_EQ(t_.next_deadline(), t0_ + kIval);

  const uint64_t reply_at = t0_ + kIval / 2;
  EXPECT_EQ(t_.learn(0, kIp1, kMacA, true, reply_at), Learn::kUpdated);
  e = t_.find(0, kIp1);
  EXPECT_EQ(e->state, NeighState::kReachable);
  EXPECT_EQ(e->mac, kMacA);
  EXPECT_EQ(e->probes_sent, 0u);
  EXPECT_EQ(e->updated_ns, reply_at);
  EXPECT_EQ(t_.next_deadline(), reply_at + kReach);
  // The superseded probe deadline does nothing.
  EXPECT_TRUE(tick(t0_ + kIval).empty());
  EXPECT_EQ(state(kIp1), NeighState::kReachable);

  // Known entry: request is a no-op.
  EXPECT_TRUE(t_.request(0, kIp1, reply_at + 1));
  EXPECT_EQ(state(kIp1), NeighState::kReachable);
  EXPECT_EQ(t_.next_deadline(), reply_at + kReach);
}

TEST_F(NeighborTest, UnansweredRequestIsRemovedAfterProbes) {
  ASSERT_TRUE(t_.request(0, kIp1, t0_));
  for (uint32_t i = 0; i < 3; ++i) {
    const uint64_t at = t0_ + i * kIval;
    EXPECT_TRUE(tick(at - 1).empty()) << i;
    auto out = tick(at);
    ASSERT_EQ(out.size(), 1u) << i;
    EXPECT_FALSE(out[0].unicast);
    EXPECT_EQ(t_.find(0, kIp1)->probes_sent, i + 1);
    EXPECT_EQ(t_.next_deadline(), at + kIval);
  }
  EXPECT_TRUE(tick(t0_ + 3 * kIval - 1).empty());
  ASSERT_NE(t_.find(0, kIp1), nullptr);
  EXPECT_TRUE(tick(t0_ + 3 * kIval).empty());
  EXPECT_EQ(t_.find(0, kIp1), nullptr);
  EXPECT_EQ(t_.size(), 0u);
  EXPECT_FALSE(t_.next_deadline().has_value());
}

TEST_F(NeighborTest, ResolvingIsAnUpdateEvenForAZeroMac) {
  ASSERT_TRUE(t_.request(0, kIp1, t0_));
  EXPECT_EQ(t_.learn(0, kIp1, kZero, true, t0_), Learn::kUpdated);
  EXPECT_EQ(state(kIp1), NeighState::kReachable);
}

TEST_F(NeighborTest, UntargetedLearnResolvesIncomplete) {
  ASSERT_TRUE(t_.request(0, kIp1, t0_));
  tick(t0_);
  EXPECT_EQ(t_.learn(0, kIp1, kMacA, false, t0_ + 10), Learn::kUpdated);
  EXPECT_EQ(state(kIp1), NeighState::kReachable);
  EXPECT_EQ(t_.find(0, kIp1)->mac, kMacA);
}

TEST_F(NeighborTest, ReachableExpiresIntoUnicastProbesThenRemoval) {
  ASSERT_EQ(t_.learn(3, kIp1, kMacA, true, t0_), Learn::kAdded);
  const uint64_t exp = t0_ + kReach;
  EXPECT_TRUE(tick(exp - 1).empty());
  EXPECT_EQ(state(kIp1, 3), NeighState::kReachable);

  for (uint32_t i = 0; i < 3; ++i) {
    const uint64_t at = exp + i * kIval;
    if (i > 0) {
      EXPECT_TRUE(tick(at - 1).empty()) << i;
    }
    auto out = tick(at);
    ASSERT_EQ(out.size(), 1u) << i;
    EXPECT_EQ(out[0].port, 3);
    EXPECT_EQ(out[0].ip, kIp1);
    EXPECT_TRUE(out[0].unicast);
    EXPECT_EQ(out[0].mac, kMacA);
    const NeighEntry* e = t_.find(3, kIp1);
    EXPECT_EQ(e->state, NeighState::kProbe);
    EXPECT_EQ(e->probes_sent, i + 1);
    EXPECT_EQ(e->updated_ns, t0_);
    EXPECT_EQ(e->mac, kMacA);  // still usable while probing
    EXPECT_EQ(t_.next_deadline(), at + kIval);
  }
  EXPECT_TRUE(tick(exp + 3 * kIval - 1).empty());
  ASSERT_NE(t_.find(3, kIp1), nullptr);
  EXPECT_TRUE(tick(exp + 3 * kIval).empty());
  EXPECT_EQ(t_.find(3, kIp1), nullptr);
}

TEST_F(NeighborTest, LateTickStillProbesOncePerCall) {
  ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  // The control thread overslept by 10 s: one probe now, the next one an interval from now.
  const uint64_t late = t0_ + kReach + 10 * kSec;
  EXPECT_EQ(tick(late).size(), 1u);
  EXPECT_EQ(t_.next_deadline(), late + kIval);
}

TEST_F(NeighborTest, ReplyDuringProbeRestoresReachable) {
  ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  ASSERT_EQ(tick(t0_ + kReach).size(), 1u);
  ASSERT_EQ(state(kIp1), NeighState::kProbe);
  const uint64_t reply_at = t0_ + kReach + kIval / 2;
  EXPECT_EQ(t_.learn(0, kIp1, kMacA, true, reply_at), Learn::kRefreshed);
  const NeighEntry* e = t_.find(0, kIp1);
  EXPECT_EQ(e->state, NeighState::kReachable);
  EXPECT_EQ(e->probes_sent, 0u);
  EXPECT_EQ(e->updated_ns, reply_at);
  EXPECT_EQ(t_.next_deadline(), reply_at + kReach);
  // Nothing happens at the old probe times.
  for (uint64_t at = t0_ + kReach + kIval; at < reply_at + kReach; at += kIval) {
    ASSERT_TRUE(tick(at).empty()) << at;
  }
  EXPECT_EQ(state(kIp1), NeighState::kReachable);
  EXPECT_EQ(tick(reply_at + kReach).size(), 1u);
}

TEST_F(NeighborTest, StaticNeverAgesAndIsNotOverwritten) {
  ASSERT_TRUE(t_.add_static(0, kIp1, kMacA));
  const NeighEntry* e = t_.find(0, kIp1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, NeighState::kStatic);
  EXPECT_EQ(e->mac, kMacA);
  EXPECT_FALSE(t_.next_deadline().has_value());

  EXPECT_EQ(t_.learn(0, kIp1, kMacB, true, t0_), Learn::kIgnored);
  EXPECT_EQ(t_.learn(0, kIp1, kMacB, false, t0_), Learn::kIgnored);
  EXPECT_TRUE(t_.request(0, kIp1, t0_));
  EXPECT_TRUE(tick(t0_ + 1000 * kReach).empty());
  e = t_.find(0, kIp1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, NeighState::kStatic);
  EXPECT_EQ(e->mac, kMacA);
}

TEST_F(NeighborTest, StaticReplacesDynamicEntryAndItsTimer) {
  ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  ASSERT_TRUE(t_.request(0, kIp2, t0_ + 5));
  ASSERT_TRUE(t_.add_static(0, kIp2, kMacB));
  EXPECT_EQ(t_.size(), 2u);
  EXPECT_EQ(t_.next_deadline(), t0_ + kReach);  // kIp2's resolution timer is gone
  auto out = tick(t0_ + kReach);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ip, kIp1);
  EXPECT_EQ(state(kIp2), NeighState::kStatic);
}

TEST(NeighborStaticTest, StaticOverPendingRequestAtTimeZero) {
  // A static entry carries next_ns 0; the request's pair (0, key) must not be taken for it.
  NeighborTable t(params());
  ASSERT_TRUE(t.request(0, kIp1, 0));
  ASSERT_TRUE(t.add_static(0, kIp1, kMacA));
  EXPECT_FALSE(t.next_deadline().has_value());
  std::vector<NeighProbe> out;
  t.tick(0, out);
  t.tick(100 * kReach, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(t.find(0, kIp1)->state, NeighState::kStatic);
}

TEST_F(NeighborTest, ClearStaticRemovesOnlyStatic) {
  ASSERT_TRUE(t_.add_static(0, kIp1, kMacA));
  ASSERT_TRUE(t_.add_static(1, kIp1, kMacA));
  ASSERT_EQ(t_.learn(0, kIp2, kMacB, true, t0_), Learn::kAdded);
  ASSERT_TRUE(t_.request(0, kIp3, t0_));
  t_.clear_static();
  EXPECT_EQ(t_.size(), 2u);
  EXPECT_EQ(t_.find(0, kIp1), nullptr);
  EXPECT_EQ(t_.find(1, kIp1), nullptr);
  EXPECT_EQ(state(kIp2), NeighState::kReachable);
  EXPECT_EQ(state(kIp3), NeighState::kIncomplete);
  EXPECT_EQ(t_.next_deadline(), t0_);
  // A former static address is learned like any other now.
  EXPECT_EQ(t_.learn(0, kIp1, kMacB, false, t0_), Learn::kIgnored);
  EXPECT_EQ(t_.learn(0, kIp1, kMacB, true, t0_), Learn::kAdded);
}

TEST(NeighborCapacityTest, FullTable) {
  NeighborTable t(params(2));
  const uint64_t now = 5 * kSec;
  EXPECT_EQ(t.learn(0, kIp1, kMacA, true, now), Learn::kAdded);
  EXPECT_TRUE(t.request(0, kIp2, now));
  EXPECT_EQ(t.learn(0, kIp3, kMacA, true, now), Learn::kFull);
  EXPECT_EQ(t.learn(0, kIp3, kMacA, false, now), Learn::kIgnored);
  EXPECT_FALSE(t.request(0, kIp3, now));
  EXPECT_FALSE(t.add_static(0, kIp3, kMacA));
  EXPECT_EQ(t.size(), 2u);
  // Existing entries are still served when full.
  EXPECT_TRUE(t.request(0, kIp1, now));
  EXPECT_EQ(t.learn(0, kIp2, kMacB, true, now), Learn::kUpdated);
  EXPECT_TRUE(t.add_static(0, kIp1, kMacB));
  EXPECT_EQ(t.size(), 2u);

  EXPECT_TRUE(t.remove(0, kIp2));
  EXPECT_FALSE(t.remove(0, kIp2));
  EXPECT_TRUE(t.request(0, kIp3, now));
  EXPECT_EQ(t.size(), 2u);
}

TEST_F(NeighborTest, NextDeadlineTracksEarliestLiveEntry) {
  EXPECT_FALSE(t_.next_deadline().has_value());
  ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  ASSERT_EQ(t_.learn(0, kIp2, kMacA, true, t0_ + 3), Learn::kAdded);
  ASSERT_TRUE(t_.request(0, kIp3, t0_ + 7));
  EXPECT_EQ(t_.next_deadline(), t0_ + 7);
  EXPECT_TRUE(t_.remove(0, kIp3));
  EXPECT_EQ(t_.next_deadline(), t0_ + kReach);
  EXPECT_EQ(t_.learn(0, kIp1, kMacA, true, t0_ + 10), Learn::kRefreshed);
  EXPECT_EQ(t_.next_deadline(), t0_ + 3 + kReach);
  EXPECT_TRUE(t_.remove(0, kIp2));
  EXPECT_EQ(t_.next_deadline(), t0_ + 10 + kReach);
  EXPECT_TRUE(t_.remove(0, kIp1));
  EXPECT_FALSE(t_.next_deadline().has_value());
}

TEST_F(NeighborTest, SimultaneousDeadlinesAllFire) {
  for (uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(t_.request(0, kIp1 + i, t0_));
  ASSERT_EQ(t_.learn(0, kIp1 + 20, kMacA, true, t0_ - kReach), Learn::kAdded);
  auto out = tick(t0_);
  ASSERT_EQ(out.size(), 11u);
  EXPECT_EQ(std::count_if(out.begin(), out.end(), [](const NeighProbe& p) { return p.unicast; }),
            1);
}

TEST_F(NeighborTest, RemoveCancelsTimers) {
  ASSERT_TRUE(t_.request(0, kIp1, t0_));
  EXPECT_TRUE(t_.remove(0, kIp1));
  EXPECT_TRUE(tick(t0_ + 10 * kReach).empty());
  // Re-created at the same instant: exactly one probe, not one per stale index entry.
  ASSERT_TRUE(t_.request(0, kIp1, t0_));
  ASSERT_TRUE(t_.remove(0, kIp1));
  ASSERT_TRUE(t_.request(0, kIp1, t0_));
  EXPECT_EQ(tick(t0_).size(), 1u);
}

TEST_F(NeighborTest, SetParamsKeepsDeadlinesAndAppliesNewProbeCount) {
  ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  auto p = params();
  p.reachable_ns = 5 * kSec;
  p.probes = 1;
  t_.set_params(p);
  EXPECT_EQ(t_.params().probes, 1u);
  EXPECT_EQ(t_.next_deadline(), t0_ + kReach);
  EXPECT_EQ(tick(t0_ + kReach).size(), 1u);
  EXPECT_TRUE(tick(t0_ + kReach + kIval).empty());
  EXPECT_EQ(t_.find(0, kIp1), nullptr);
  EXPECT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  EXPECT_EQ(t_.next_deadline(), t0_ + 5 * kSec);
}

TEST(NeighborZeroProbesTest, ExpiryRemovesWithoutProbing) {
  NeighborTable t(params(16, 0));
  ASSERT_EQ(t.learn(0, kIp1, kMacA, true, 0), Learn::kAdded);
  ASSERT_TRUE(t.request(0, kIp2, 0));
  std::vector<NeighProbe> out;
  t.tick(0, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(t.find(0, kIp2), nullptr);
  t.tick(kReach, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(NeighborTest, HeapStaysBoundedUnderRepeatedLearns) {
  // Same instant: every confirmation lands on the same deadline, so nothing is stale at the top.
  ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kAdded);
  size_t max_heap = 0;
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_EQ(t_.learn(0, kIp1, kMacA, true, t0_), Learn::kRefreshed);
    max_heap = std::max(max_heap, t_.heap_size());
  }
  EXPECT_LE(max_heap, 4 * 1 + 64);
  EXPECT_EQ(t_.size(), 1u);
  EXPECT_EQ(t_.next_deadline(), t0_ + kReach);
  EXPECT_EQ(tick(t0_ + kReach).size(), 1u);  // one entry, one probe
  EXPECT_TRUE(tick(t0_ + kReach).empty());

  // Advancing clock, with other entries around whose deadlines sit below the hot one.
  NeighborTable t(params());
  for (uint32_t i = 0; i < 100; ++i) ASSERT_EQ(t.learn(0, kIp2 + i, kMacB, true, 0), Learn::kAdded);
  max_heap = 0;
  for (uint64_t i = 0; i < 100'000; ++i) {
    ASSERT_NE(t.learn(0, kIp1, kMacA, true, i), Learn::kFull);
    max_heap = std::max(max_heap, t.heap_size());
  }
  EXPECT_LE(max_heap, 4 * 101 + 64);
  EXPECT_EQ(t.size(), 101u);
  EXPECT_EQ(t.next_deadline(), kReach);
  std::vector<NeighProbe> out;
  t.tick(kReach, out);
  EXPECT_EQ(out.size(), 100u);
  out.clear();
  t.tick(99'999 + kReach - 1, out);
  EXPECT_TRUE(out.empty());  // none of the 99'999 superseded deadlines fires
  out.clear();
  t.tick(99'999 + kReach, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ip, kIp1);
}

// Property: random operations against a straightforward scan-everything model give the same
// probes, states and deadlines.
struct ModelEntry {
  Mac mac{};
  NeighState state = NeighState::kIncomplete;
  uint64_t next = 0;
  uint32_t sent = 0;
};

TEST(NeighborModelTest, MatchesScanningModel) {
  const auto p = params(24);
  NeighborTable t(p);
  std::map<uint64_t, ModelEntry> model;  // key = port << 32 | ip
  std::mt19937_64 rng(42);
  uint64_t now = 0;
  for (int step = 0; step < 200'000; ++step) {
    const auto port = static_cast<uint16_t>(rng() % 2);
    const uint32_t ip = kIp1 + static_cast<uint32_t>(rng() % 20);
    const uint64_t k = (uint64_t{port} << 32) | ip;
    const Mac mac = (rng() % 4 == 0) ? kMacB : kMacA;
    switch (rng() % 8) {
      case 0:
      case 1: {
        const bool targeted = rng() & 1;
        Learn want;
        auto it = model.find(k);
        if (it != model.end() && it->second.state == NeighState::kStatic) {
          want = Learn::kIgnored;
        } else if (it != model.end()) {
          want = (it->second.state == NeighState::kIncomplete || it->second.mac != mac)
                     ? Learn::kUpdated
                     : Learn::kRefreshed;
        } else if (!targeted) {
          want = Learn::kIgnored;
        } else if (model.size() >= p.max_entries) {
          want = Learn::kFull;
        } else {
          want = Learn::kAdded;
          it = model.emplace(k, ModelEntry{}).first;
        }
        if (want != Learn::kIgnored && want != Learn::kFull) {
          it->second = {mac, NeighState::kReachable, now + p.reachable_ns, 0};
        }
        ASSERT_EQ(t.learn(port, ip, mac, targeted, now), want) << step;
        break;
      }
      case 2: {
        bool want = true;
        if (!model.contains(k)) {
          if (model.size() >= p.max_entries) {
            want = false;
          } else {
            model[k] = {Mac{}, NeighState::kIncomplete, now, 0};
          }
        }
        ASSERT_EQ(t.request(port, ip, now), want) << step;
        break;
      }
      case 3:
        if (rng() % 8 == 0) {
          ASSERT_EQ(t.remove(port, ip), model.erase(k) == 1) << step;
        } else if (rng() % 16 == 0) {
          bool want = true;
          if (!model.contains(k) && model.size() >= p.max_entries) {
            want = false;
          } else {
            model[k] = {mac, NeighState::kStatic, 0, 0};
          }
          ASSERT_EQ(t.add_static(port, ip, mac), want) << step;
        } else if (rng() % 64 == 0) {
          std::erase_if(model,
                        [](const auto& kv) { return kv.second.state == NeighState::kStatic; });
          t.clear_static();
        }
        break;
      default: {
        now += rng() % (2 * kIval);
        std::vector<std::tuple<uint64_t, uint64_t>> due;
        for (const auto& [mk, e] : model) {
          if (e.state != NeighState::kStatic && e.next <= now) due.emplace_back(e.next, mk);
        }
        std::sort(due.begin(), due.end());
        std::vector<NeighProbe> want;
        for (const auto& [d, mk] : due) {
          ModelEntry& e = model[mk];
          if (e.state == NeighState::kReachable) {
            e.state = NeighState::kProbe;
            e.sent = 0;
          }
          if (e.sent >= p.probes) {
            model.erase(mk);
            continue;
          }
          NeighProbe pr;
          pr.port = static_cast<uint16_t>(mk >> 32);
          pr.ip = static_cast<uint32_t>(mk);
          pr.unicast = e.state == NeighState::kProbe;
          if (pr.unicast) pr.mac = e.mac;
          want.push_back(pr);
          ++e.sent;
          e.next = now + p.probe_interval_ns;
        }
        std::vector<NeighProbe> got;
        t.tick(now, got);
        ASSERT_EQ(got.size(), want.size()) << step;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(std::tie(got[i].port, got[i].ip, got[i].unicast, got[i].mac),
                    std::tie(want[i].port, want[i].ip, want[i].unicast, want[i].mac))
              << step;
        }
        break;
      }
    }
    // Whole-table comparison every step.
    ASSERT_EQ(t.size(), model.size()) << step;
    std::optional<uint64_t> want_deadline;
    for (const auto& [mk, e] : model) {
      const NeighEntry* got = t.find(static_cast<uint16_t>(mk >> 32), static_cast<uint32_t>(mk));
      ASSERT_NE(got, nullptr) << step;
      ASSERT_EQ(got->state, e.state) << step;
      ASSERT_EQ(got->mac, e.mac) << step;
      if (e.state != NeighState::kStatic) {
        ASSERT_EQ(got->next_ns, e.next) << step;
        ASSERT_EQ(got->probes_sent, e.sent) << step;
        want_deadline = std::min(want_deadline.value_or(e.next), e.next);
      }
    }
    ASSERT_EQ(t.next_deadline(), want_deadline) << step;
    ASSERT_LE(t.heap_size(), 4 * t.size() + 64) << step;
  }
}

}  // namespace
}  // namespace dp
