// LeaseStore on a fake clock: each offer() preference rule, offer holds, every commit() outcome,
// release and affinity, decline quarantine, reservations, exhaustion, restore, the expiry wheel
// (exact deadlines across many laps, bounded work per call) and stats. Then a property test:
// long random operation sequences checked step by step against a reference model written here
// from the header's rules (plain maps and scans, no index or wheel), plus a replica rebuilt only
// through restore() from the emitted events and expiring on its own clock, as a standby does,
// which must end up indistinguishable.

#include "dhcp/leases.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace dhcp {
namespace {

using Mac = std::array<uint8_t, 6>;
using Kind = LeaseEvent::Kind;
using Events = std::vector<LeaseEvent>;

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kHold = 30 * kSec;
constexpr uint64_t kQuarantine = 600 * kSec;
constexpr uint64_t kLease = 3600 * kSec;
constexpr uint32_t kPoolA = 7;
constexpr uint32_t kPoolB = 9;

constexpr uint32_t ipv4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}
constexpr uint32_t kA0 = ipv4(10, 0, 0, 10);  // pool A: 10.0.0.10 - 10.0.0.19
constexpr uint32_t kB0 = ipv4(10, 1, 0, 0);   // pool B: 10.1.0.0 - 10.1.0.3
constexpr uint32_t kNowhere = ipv4(192, 0, 2, 1);

Mac mac_of(int n) {
  return Mac{0x02, 0, 0, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
}
ClientKey key(int n) {
  return ClientKey::from_mac(mac_of(n));
}

LeaseStore::Params params(size_t max = 64) {
  LeaseStore::Params p;
  p.offer_hold_ns = kHold;
  p.decline_hold_ns = kQuarantine;
  p.max_addresses = max;
  return p;
}

std::string describe(const Lease& l) {
  std::ostringstream o;
  o << "{ip " << std::hex << l.ip << std::dec << " pool " << l.pool << " state "
    << static_cast<int>(l.state) << " client len " << int{l.client.len} << " first "
    << int{l.client.bytes[0]} << "/" << int{l.client.bytes[6]} << " mac " << int{l.mac[5]}
    << " expires " << l.expires_ns << " updated " << l.updated_ns << " gen " << l.generation << "}";
  return o.str();
}

bool same_lease(const Lease& a, const Lease& b) {
  return a.ip == b.ip && a.pool == b.pool && a.state == b.state && a.client == b.client &&
         a.mac == b.mac && a.expires_ns == b.expires_ns && a.updated_ns == b.updated_ns &&
         a.generation == b.generation;
}

class LeasesTest : public ::testing::Test {
 protected:
  LeasesTest() {
    EXPECT_TRUE(s_.add_range(kPoolA, kA0, kA0 + 9));
    EXPECT_TRUE(s_.add_range(kPoolB, kB0, kB0 + 3));
    ev_.reserve(64);
  }
  std::optional<uint32_t> offer(int c, uint32_t requested = 0, uint32_t pool = kPoolA) {
    return s_.offer(pool, key(c), mac_of(c), requested, now_, &ev_);
  }
  LeaseStore::Commit commit(int c, uint32_t ip, uint64_t lease = kLease, uint32_t pool = kPoolA) {
    return s_.commit(pool, key(c), mac_of(c), ip, lease, now_, &ev_);
  }
  uint32_t bind(int c, uint32_t pool = kPoolA) {  // DISCOVER + REQUEST
    auto ip = offer(c, 0, pool);
    EXPECT_TRUE(ip.has_value());
    EXPECT_EQ(commit(c, ip.value_or(0), kLease, pool), LeaseStore::Commit::kOk);
    return ip.value_or(0);
  }
  LeaseState state(uint32_t ip) const { return s_.find(ip)->state; }
  std::vector<Kind> kinds() const {
    std::vector<Kind> k;
    for (const auto& e : ev_) k.push_back(e.kind);
    return k;
  }

  LeaseStore s_{params()};
  Events ev_;
  uint64_t now_ = 1000 * kSec;  // not zero, so "deadline 0" bugs show up
};

// ------------------------------------------------------------------------------------ ClientKey

TEST(ClientKeyTest, FromMacIsHardwareTypeThenAddress) {
  const ClientKey k = ClientKey::from_mac({0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff});
  EXPECT_EQ(k.len, 7);
  const std::array<uint8_t, 7> want{0x01, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  EXPECT_TRUE(std::equal(want.begin(), want.end(), k.bytes.begin()));
}

TEST(ClientKeyTest, EthernetClientIdEqualsMacKey) {
  const std::array<uint8_t, 7> id{0x01, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  const ClientKey a = ClientKey::from_id(id);
  const ClientKey b = ClientKey::from_mac({0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.hash(), b.hash());
}

TEST(ClientKeyTest, LongIdentifiersKeepPrefixAndHashTheRest) {
  std::vector<uint8_t> id(40);
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i);
  const ClientKey a = ClientKey::from_id(id);
  EXPECT_EQ(a.len, ClientKey::kMax);
  EXPECT_TRUE(std::equal(id.begin(), id.begin() + 24, a.bytes.begin()));
  EXPECT_EQ(ClientKey::from_id(id), a);  // deterministic
  id[39] ^= 1;                           // differs only past the kept prefix
  EXPECT_FALSE(ClientKey::from_id(id) == a);
  // Exactly kMax bytes are kept verbatim.
  id.resize(ClientKey::kMax);
  const ClientKey c = ClientKey::from_id(id);
  EXPECT_EQ(c.len, ClientKey::kMax);
  EXPECT_TRUE(std::equal(id.begin(), id.end(), c.bytes.begin()));
}

TEST(ClientKeyTest, EqualityAndHashIgnoreBytesPastLen) {
  ClientKey a = key(1);
  ClientKey b = a;
  b.bytes[20] = 0x55;  // junk past len
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.hash(), b.hash());
  ClientKey c = a;
  c.len = 6;  // a prefix is another client
  EXPECT_FALSE(a == c);
  EXPECT_NE(a.hash(), c.hash());
}

TEST(ClientKeyTest, HashIsStableAcrossRunsAndBuilds) {
  // Golden values (cross-checked with a separate Python rendering of the function): the journal
  // and the replication peer depend on them never changing.
  EXPECT_EQ(ClientKey::from_mac({0x02, 0, 0, 0, 0, 0x01}).hash(), 0xea8609c5c7658743ull);
  const std::array<uint8_t, 3> id{'a', 'b', 'c'};
  EXPECT_EQ(ClientKey::from_id(id).hash(), 0x0100fbf2521aa385ull);
  EXPECT_EQ(ClientKey{}.hash(), 0xe220a8397b1dcdafull);
}

TEST(ClientKeyTest, HashSpreadsSequentialMacs) {
  // Low bits pick the home slot: sequential MACs must not cluster.
  std::vector<int> buckets(1024);
  for (int i = 0; i < 64 * 1024; ++i) ++buckets[key(i).hash() & 1023];
  const auto [lo, hi] = std::minmax_element(buckets.begin(), buckets.end());
  EXPECT_GT(*lo, 20);
  EXPECT_LT(*hi, 110);
}

// ------------------------------------------------------------------------------ offer(): rules

TEST_F(LeasesTest, Rule5LeastRecentlyUsedStartsAscendingAndReleasedGoToTheTail) {
  EXPECT_EQ(offer(1), kA0);
  EXPECT_EQ(offer(2), kA0 + 1);
  EXPECT_EQ(offer(3), kA0 + 2);
  EXPECT_TRUE(s_.release(key(1), kA0, now_));
  EXPECT_EQ(offer(4), kA0 + 3);  // .10 went to the tail
  for (int c = 5; c <= 10; ++c) EXPECT_EQ(offer(c), kA0 + 4 + (c - 5));
  EXPECT_EQ(offer(11), kA0);  // only the released one is left
  EXPECT_EQ(offer(12), std::nullopt);
}

TEST_F(LeasesTest, Rule1RepeatedDiscoverGetsTheSameOfferWithItsHoldRestarted) {
  const auto ip = offer(1);
  ASSERT_TRUE(ip);
  const Lease first = *s_.find(*ip);
  now_ += 10 * kSec;
  ev_.clear();
  EXPECT_EQ(offer(1, kA0 + 7), ip);  // rule 1 beats the requested address
  const Lease* l = s_.find(*ip);
  EXPECT_EQ(l->state, LeaseState::kOffered);
  EXPECT_EQ(l->expires_ns, now_ + kHold);
  EXPECT_EQ(l->generation, first.generation + 1);
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(ev_[0].kind, Kind::kOffer);
  EXPECT_TRUE(same_lease(ev_[0].lease, *l));
}

TEST_F(LeasesTest, Rule1BoundLeaseIsOfferedUnchanged) {
  const uint32_t ip = bind(1);
  const Lease before = *s_.find(ip);
  now_ += 5 * kSec;
  ev_.clear();
  EXPECT_EQ(offer(1, kA0 + 5), ip);
  EXPECT_TRUE(ev_.empty());
  EXPECT_TRUE(same_lease(*s_.find(ip), before));
}

TEST_F(LeasesTest, Rule2ReservationBeatsRequestedAndIsNeverOfferedToOthers) {
  ASSERT_TRUE(s_.reserve(kA0 + 5, key(1)));
  for (int c = 2; c <= 10; ++c) {
    const auto ip = offer(c, kA0 + 5);  // asking for it does not help
    ASSERT_TRUE(ip);
    EXPECT_NE(*ip, kA0 + 5);
  }
  EXPECT_EQ(offer(11, kA0 + 5), std::nullopt);  // exhausted although .15 is FREE
  EXPECT_EQ(state(kA0 + 5), LeaseState::kFree);
  EXPECT_EQ(offer(1, kA0 + 2), kA0 + 5);  // its own, over what it asked for
  EXPECT_EQ(s_.stats(kPoolA).free, 0u);
}

TEST_F(LeasesTest, Rule3RequestedAddressOnlyIfFreeInPoolAndNotReservedForAnother) {
  ASSERT_TRUE(s_.reserve(kA0 + 8, key(9)));
  EXPECT_EQ(offer(1, kA0 + 6), kA0 + 6);
  EXPECT_EQ(offer(2, kA0 + 6), kA0);      // offered to 1: LRU instead
  EXPECT_EQ(offer(3, kA0 + 8), kA0 + 1);  // reserved for 9
  EXPECT_EQ(offer(4, kB0 + 1), kA0 + 2);  // another pool's address
  EXPECT_EQ(offer(5, kNowhere), kA0 + 3);
  EXPECT_EQ(offer(9, kA0 + 8), kA0 + 8);  // its own reservation
}

TEST_F(LeasesTest, Rule4AffinityReturnsTheLastAddressWhileStillFree) {
  const uint32_t ip = bind(1);
  EXPECT_TRUE(s_.release(key(1), ip, now_));
  EXPECT_EQ(offer(2), kA0 + 1);
  EXPECT_EQ(offer(3), kA0 + 2);
  now_ += kSec;
  EXPECT_EQ(offer(1), ip);  // although it sits at the tail of the LRU list
  // Requested beats affinity.
  EXPECT_TRUE(s_.release(key(1), ip, now_));
  EXPECT_EQ(offer(1, kA0 + 9), kA0 + 9);
}

TEST_F(LeasesTest, AffinityEndsWhenAnotherClientTakesTheAddress) {
  const uint32_t ip = bind(1);
  EXPECT_TRUE(s_.release(key(1), ip, now_));
  EXPECT_EQ(offer(2, ip), ip);  // requested by someone else while FREE
  EXPECT_TRUE(s_.release(key(2), ip, now_));
  EXPECT_EQ(offer(1), kA0 + 1);  // not .10 any more: LRU
  EXPECT_EQ(offer(2), ip);       // .10 is 2's now
}

TEST_F(LeasesTest, AffinityFollowsOnlyTheLastAddress) {
  const uint32_t a = bind(1);  // .10
  EXPECT_TRUE(s_.release(key(1), a, now_));
  EXPECT_EQ(offer(2, a), a);  // 2 takes .10 while FREE
  EXPECT_TRUE(s_.release(key(2), a, now_));
  EXPECT_EQ(commit(1, kA0 + 5), LeaseStore::Commit::kOk);
  EXPECT_EQ(commit(1, a), LeaseStore::Commit::kOk);  // moves back to .10, .15 released
  EXPECT_TRUE(s_.release(key(1), a, now_));
  EXPECT_EQ(offer(3, a), a);  // 3 takes .10: 1 is left with no affinity at all (not .15)
  EXPECT_EQ(offer(1), kA0 + 1);
  EXPECT_EQ(s_.client_index_size(), 2u);  // 1 and 3; 2's entry went with .10
}

TEST_F(LeasesTest, ConcurrentDiscoversNeverShareAnAddress) {
  std::set<uint32_t> seen;
  for (int c = 1; c <= 10; ++c) {
    const auto ip = offer(c);
    ASSERT_TRUE(ip);
    EXPECT_TRUE(seen.insert(*ip).second);
    EXPECT_EQ(offer(c), ip);  // a retransmission keeps it
  }
  EXPECT_EQ(offer(11), std::nullopt);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(commit(11, kA0 + i), LeaseStore::Commit::kTaken);
  const PoolStats st = s_.stats(kPoolA);
  EXPECT_EQ(st.offered, 10u);
  EXPECT_EQ(st.free, 0u);
}

TEST_F(LeasesTest, UnknownPoolOffersNothing) {
  EXPECT_EQ(offer(1, 0, 12345), std::nullopt);
}

// ------------------------------------------------------------------------------- offer holds

TEST_F(LeasesTest, OfferHoldExpiresExactlyThenAffinityBringsItBack) {
  const auto ip = offer(1);
  ASSERT_TRUE(ip);
  const uint64_t t0 = now_;
  ev_.clear();
  EXPECT_TRUE(s_.expire(t0 + kHold - 1, &ev_));
  EXPECT_TRUE(ev_.empty());
  EXPECT_EQ(state(*ip), LeaseState::kOffered);
  EXPECT_TRUE(s_.expire(t0 + kHold, &ev_));
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(ev_[0].kind, Kind::kOfferExpired);
  EXPECT_EQ(ev_[0].lease.state, LeaseState::kFree);
  EXPECT_EQ(ev_[0].lease.ip, *ip);
  EXPECT_EQ(ev_[0].lease.client, key(1));  // kept for affinity
  EXPECT_EQ(ev_[0].lease.expires_ns, 0u);
  EXPECT_EQ(ev_[0].lease.updated_ns, t0 + kHold);
  EXPECT_EQ(s_.find(key(1)), nullptr);
  EXPECT_EQ(s_.stats(kPoolA).free, 10u);
  now_ = t0 + kHold + 1;
  EXPECT_EQ(offer(1), ip);
  EXPECT_EQ(offer(2), kA0 + 1);  // the expired one went to the tail
}

TEST_F(LeasesTest, ExhaustionReturnsNulloptAndRecoversAfterExpiry) {
  for (int c = 1; c <= 10; ++c) ASSERT_TRUE(offer(c));
  EXPECT_EQ(offer(50), std::nullopt);
  EXPECT_EQ(s_.stats(kPoolA).free, 0u);
  // Half of them take short leases.
  for (int c = 1; c <= 5; ++c) {
    EXPECT_EQ(commit(c, kA0 + static_cast<uint32_t>(c - 1), 10 * kSec), LeaseStore::Commit::kOk);
  }
  now_ += 10 * kSec;
  EXPECT_EQ(offer(50), std::nullopt);  // nothing expired yet: expire() was not called
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_, &ev_));
  EXPECT_EQ(ev_.size(), 5u);
  for (const auto& e : ev_) EXPECT_EQ(e.kind, Kind::kExpire);
  EXPECT_TRUE(offer(50));
  now_ += kHold;
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_, &ev_));
  EXPECT_EQ(ev_.size(), 6u);  // the five unanswered offers, and 50's
  EXPECT_EQ(s_.stats(kPoolA).free, 10u);
}

// ----------------------------------------------------------------------------------- commit()

TEST_F(LeasesTest, CommitBindsOfferRenewsAndReports) {
  const auto ip = offer(1);
  ASSERT_TRUE(ip);
  ev_.clear();
  EXPECT_EQ(commit(1, *ip), LeaseStore::Commit::kOk);
  const Lease* l = s_.find(*ip);
  EXPECT_EQ(l->state, LeaseState::kBound);
  EXPECT_EQ(l->expires_ns, now_ + kLease);
  ASSERT_EQ(kinds(), std::vector<Kind>{Kind::kBind});
  EXPECT_TRUE(same_lease(ev_[0].lease, *l));
  EXPECT_EQ(s_.find(key(1)), l);

  const uint64_t g = l->generation;
  now_ += 1800 * kSec;
  ev_.clear();
  EXPECT_EQ(commit(1, *ip), LeaseStore::Commit::kOk);  // RENEWING
  EXPECT_EQ(l->expires_ns, now_ + kLease);
  EXPECT_EQ(l->generation, g + 1);
  EXPECT_EQ(kinds(), std::vector<Kind>{Kind::kBind});
  // The old deadline no longer applies.
  EXPECT_TRUE(s_.expire(now_ + kLease - 1800 * kSec, &ev_));
  EXPECT_EQ(l->state, LeaseState::kBound);
  const PoolStats st = s_.stats(kPoolA);
  EXPECT_EQ(st.bound, 1u);
  EXPECT_EQ(st.free, 9u);
}

TEST_F(LeasesTest, CommitOfAFreeAddressBindsDirectly) {  // INIT-REBOOT after a restart
  EXPECT_EQ(commit(1, kA0 + 4), LeaseStore::Commit::kOk);
  EXPECT_EQ(state(kA0 + 4), LeaseState::kBound);
  for (int c = 2; c <= 10; ++c) EXPECT_NE(offer(c), kA0 + 4);  // off the free list
  EXPECT_EQ(offer(11), std::nullopt);
}

TEST_F(LeasesTest, CommitRefusesWhatBelongsToOthers) {
  const auto offered = offer(1);
  const uint32_t bound = bind(2);
  ASSERT_TRUE(offered);
  const uint32_t declined = bind(3);
  ASSERT_TRUE(s_.decline(key(3), declined, now_));
  ASSERT_TRUE(s_.reserve(kA0 + 9, key(4)));
  ev_.clear();
  EXPECT_EQ(commit(9, *offered), LeaseStore::Commit::kTaken);
  EXPECT_EQ(commit(9, bound), LeaseStore::Commit::kTaken);
  EXPECT_EQ(commit(9, declined), LeaseStore::Commit::kTaken);
  EXPECT_EQ(commit(3, declined), LeaseStore::Commit::kTaken);  // quarantine, even for its client
  EXPECT_EQ(commit(9, kA0 + 9), LeaseStore::Commit::kTaken);   // reserved for 4
  EXPECT_EQ(commit(9, kB0), LeaseStore::Commit::kNotInPool);   // pool B's address
  EXPECT_EQ(commit(9, kNowhere), LeaseStore::Commit::kUnknown);
  EXPECT_TRUE(ev_.empty());
  EXPECT_EQ(commit(4, kA0 + 9), LeaseStore::Commit::kOk);
  EXPECT_EQ(commit(9, kB0, kLease, kPoolB), LeaseStore::Commit::kOk);
}

TEST_F(LeasesTest, CommitElsewhereInThePoolMovesTheClient) {
  const uint32_t old_ip = bind(1);
  const uint32_t other_pool = bind(1, kPoolB);
  ev_.clear();
  EXPECT_EQ(commit(1, kA0 + 6), LeaseStore::Commit::kOk);
  ASSERT_EQ(kinds(), (std::vector<Kind>{Kind::kRelease, Kind::kBind}));
  EXPECT_EQ(ev_[0].lease.ip, old_ip);
  EXPECT_EQ(ev_[0].lease.state, LeaseState::kFree);
  EXPECT_EQ(ev_[1].lease.ip, kA0 + 6);
  EXPECT_EQ(state(old_ip), LeaseState::kFree);
  EXPECT_EQ(state(other_pool), LeaseState::kBound);  // one lease per pool, not per store
  EXPECT_EQ(s_.stats(kPoolA).bound, 1u);
  EXPECT_EQ(offer(1), kA0 + 6);
}

TEST_F(LeasesTest, ZeroLengthLeaseEndsAtTheNextExpire) {
  EXPECT_EQ(commit(1, kA0, 0), LeaseStore::Commit::kOk);
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_, &ev_));
  EXPECT_EQ(kinds(), std::vector<Kind>{Kind::kExpire});
}

// ------------------------------------------------------------------------- release / decline

TEST_F(LeasesTest, ReleaseOnlyByItsOwnClient) {
  const uint32_t ip = bind(1);
  ev_.clear();
  EXPECT_FALSE(s_.release(key(2), ip, now_, &ev_));
  EXPECT_FALSE(s_.release(key(1), kA0 + 5, now_, &ev_));  // FREE
  EXPECT_FALSE(s_.release(key(1), kNowhere, now_, &ev_));
  EXPECT_TRUE(ev_.empty());
  const uint64_t g = s_.find(ip)->generation;
  EXPECT_TRUE(s_.release(key(1), ip, now_ + kSec, &ev_));
  ASSERT_EQ(kinds(), std::vector<Kind>{Kind::kRelease});
  EXPECT_EQ(ev_[0].lease.state, LeaseState::kFree);
  EXPECT_EQ(ev_[0].lease.generation, g + 1);
  EXPECT_EQ(ev_[0].lease.updated_ns, now_ + kSec);
  EXPECT_FALSE(s_.release(key(1), ip, now_));  // twice
  EXPECT_EQ(s_.find(key(1)), nullptr);
  // Releasing an offer (the client chose another server) frees it too.
  const auto o = offer(2);
  EXPECT_TRUE(s_.release(key(2), *o, now_));
  // A released lease never expires later.
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_ + 10 * kLease, &ev_));
  EXPECT_TRUE(ev_.empty());
}

TEST_F(LeasesTest, DeclineQuarantinesThenFreesWithoutAffinity) {
  const uint32_t ip = bind(1);
  const uint64_t t0 = now_;
  ev_.clear();
  EXPECT_FALSE(s_.decline(key(2), ip, now_, &ev_));
  EXPECT_TRUE(s_.decline(key(1), ip, now_, &ev_));
  ASSERT_EQ(kinds(), std::vector<Kind>{Kind::kDecline});
  EXPECT_EQ(ev_[0].lease.state, LeaseState::kDeclined);
  EXPECT_EQ(ev_[0].lease.expires_ns, t0 + kQuarantine);
  EXPECT_EQ(ev_[0].lease.client, key(1));
  EXPECT_FALSE(s_.decline(key(1), ip, now_));  // already declined
  EXPECT_EQ(s_.stats(kPoolA).declined, 1u);
  EXPECT_EQ(s_.find(key(1)), nullptr);
  // The decliner gets another address, even asking for this one; nobody else gets it either.
  EXPECT_EQ(offer(1, ip), kA0 + 1);
  for (int c = 2; c <= 9; ++c) EXPECT_NE(offer(c, ip), ip);
  EXPECT_EQ(offer(10), std::nullopt);
  // Nothing early...
  ev_.clear();
  EXPECT_TRUE(s_.expire(t0 + kQuarantine - 1, &ev_));
  for (const auto& e : ev_) EXPECT_NE(e.lease.ip, ip);
  EXPECT_EQ(state(ip), LeaseState::kDeclined);
  // ...and free at the end, with no client left.
  ev_.clear();
  EXPECT_TRUE(s_.expire(t0 + kQuarantine, &ev_));
  const auto it =
      std::find_if(ev_.begin(), ev_.end(), [&](const LeaseEvent& e) { return e.lease.ip == ip; });
  ASSERT_NE(it, ev_.end());
  EXPECT_EQ(it->kind, Kind::kExpire);
  EXPECT_EQ(it->lease.state, LeaseState::kFree);
  EXPECT_EQ(it->lease.client.len, 0);
  EXPECT_EQ(s_.stats(kPoolA).declined, 0u);
}

// ------------------------------------------------------------------------------ reservations

TEST_F(LeasesTest, ReserveRules) {
  EXPECT_FALSE(s_.reserve(kNowhere, key(1)));
  EXPECT_TRUE(s_.reserve(kA0 + 3, key(1)));
  EXPECT_TRUE(s_.reserve(kA0 + 3, key(1)));   // idempotent
  EXPECT_FALSE(s_.reserve(kA0 + 3, key(2)));  // someone else's
  EXPECT_FALSE(s_.reserve(kA0 + 4, key(1)));  // one per client and pool
  EXPECT_TRUE(s_.reserve(kB0 + 2, key(1)));   // another pool
  EXPECT_EQ(offer(1, 0, kPoolB), kB0 + 2);
  EXPECT_EQ(offer(1), kA0 + 3);
  EXPECT_EQ(s_.stats(kPoolA).free, 9u);  // stats count reserved FREE addresses as free
}

TEST_F(LeasesTest, ManyReservationsStayFindable) {  // the reservation index grows at start
  LeaseStore s{params(4096)};
  ASSERT_TRUE(s.add_range(kPoolA, ipv4(10, 2, 0, 0), ipv4(10, 2, 15, 255)));
  for (int c = 0; c < 3000; ++c) ASSERT_TRUE(s.reserve(ipv4(10, 2, 0, 0) + c, key(c)));
  for (int c = 0; c < 3000; c += 7) {
    EXPECT_EQ(s.offer(kPoolA, key(c), mac_of(c), 0, now_), ipv4(10, 2, 0, 0) + c);
  }
  EXPECT_EQ(s.offer(kPoolA, key(5000), mac_of(1), 0, now_), ipv4(10, 2, 0, 0) + 3000);
}

TEST_F(LeasesTest, ReservationOverAHeldLeaseMovesItsHolderAtTheNextExchange) {
  const uint32_t ip = bind(1);
  ASSERT_TRUE(s_.reserve(ip, key(2)));
  EXPECT_EQ(state(ip), LeaseState::kBound);              // runs on for now
  EXPECT_EQ(commit(1, ip), LeaseStore::Commit::kTaken);  // renewal refused
  ev_.clear();
  const auto moved = offer(1);  // DISCOVER: a new address, the old one given up
  ASSERT_TRUE(moved);
  EXPECT_NE(*moved, ip);
  ASSERT_EQ(kinds(), (std::vector<Kind>{Kind::kRelease, Kind::kOffer}));
  EXPECT_EQ(ev_[0].lease.ip, ip);
  EXPECT_EQ(state(ip), LeaseState::kFree);
  EXPECT_EQ(offer(2), ip);
  EXPECT_EQ(s_.stats(kPoolA).offered, 2u);
}

// ----------------------------------------------------------------------------------- restore()

TEST_F(LeasesTest, RestoreInstallsOnlyNewerGenerations) {
  Lease l;
  l.ip = kA0 + 2;
  l.pool = kPoolA;
  l.state = LeaseState::kBound;
  l.client = key(7);
  l.mac = mac_of(7);
  l.expires_ns = now_ + kLease;
  l.updated_ns = now_;
  l.generation = 5;
  EXPECT_TRUE(s_.restore(l));
  EXPECT_TRUE(same_lease(*s_.find(kA0 + 2), l));
  Lease older = l;
  older.generation = 4;
  older.state = LeaseState::kFree;
  EXPECT_TRUE(s_.restore(older));  // known address, ignored
  Lease same = older;
  same.generation = 5;
  EXPECT_TRUE(s_.restore(same));
  EXPECT_TRUE(same_lease(*s_.find(kA0 + 2), l));
  Lease out = l;
  out.ip = kNowhere;
  EXPECT_FALSE(s_.restore(out));
  Lease wrong_pool = l;
  wrong_pool.pool = kPoolB;
  wrong_pool.generation = 9;
  EXPECT_FALSE(s_.restore(wrong_pool));
  Lease bad = l;
  bad.generation = 9;
  bad.state = static_cast<LeaseState>(9);
  EXPECT_FALSE(s_.restore(bad));
  // The restored lease is fully live: client index, renewals, generation, stats.
  EXPECT_EQ(s_.find(key(7)), s_.find(kA0 + 2));
  EXPECT_EQ(offer(7), kA0 + 2);
  EXPECT_EQ(commit(7, kA0 + 2), LeaseStore::Commit::kOk);
  EXPECT_EQ(s_.find(kA0 + 2)->generation, 6u);
  EXPECT_EQ(commit(8, kA0 + 2), LeaseStore::Commit::kTaken);
  const PoolStats st = s_.stats(kPoolA);
  EXPECT_EQ(st.bound, 1u);
  EXPECT_EQ(st.free, 9u);
}

TEST_F(LeasesTest, RestoreKeepsFreeListsConsistent) {
  // Everything but .17 restored as held by others: the next offer can only be .17.
  for (uint32_t i = 0; i < 10; ++i) {
    if (i == 7) continue;
    Lease l;
    l.ip = kA0 + i;
    l.pool = kPoolA;
    l.state = i % 2 ? LeaseState::kBound : LeaseState::kOffered;
    l.client = key(100 + static_cast<int>(i));
    l.expires_ns = now_ + kLease;
    l.generation = 1;
    ASSERT_TRUE(s_.restore(l));
  }
  EXPECT_EQ(offer(1), kA0 + 7);
  EXPECT_EQ(offer(2), std::nullopt);
  // A replicated release puts its address back on the free list.
  Lease freed = *s_.find(kA0 + 3);
  freed.state = LeaseState::kFree;
  freed.expires_ns = 0;
  freed.generation = 2;
  ASSERT_TRUE(s_.restore(freed));
  EXPECT_EQ(offer(2), kA0 + 3);
  // And its client's affinity came with it.
  EXPECT_TRUE(s_.release(key(2), kA0 + 3, now_));
  EXPECT_EQ(offer(103), kA0 + 3);
  const PoolStats st = s_.stats(kPoolA);
  EXPECT_EQ(st.free + st.offered + st.bound + st.declined, st.size);
  EXPECT_EQ(st.free, 0u);
}

TEST_F(LeasesTest, RestoredFreeLeaseCarriesItsAffinity) {
  Lease l;
  l.ip = kA0 + 6;
  l.pool = kPoolA;
  l.client = key(5);
  l.generation = 2;
  ASSERT_TRUE(s_.restore(l));
  EXPECT_EQ(s_.find(key(5)), nullptr);  // not a lease
  EXPECT_EQ(offer(5), kA0 + 6);
  EXPECT_EQ(offer(6), kA0);
}

TEST_F(LeasesTest, RestoredLeasesExpireOnTimeEvenWhenAlreadyDue) {
  EXPECT_TRUE(s_.expire(now_));  // the wheel's cursor is at now_: the deadline is behind it
  Lease due;
  due.ip = kA0;
  due.pool = kPoolA;
  due.state = LeaseState::kBound;
  due.client = key(1);
  due.expires_ns = now_ - kSec;  // ended while we were down
  due.generation = 3;
  ASSERT_TRUE(s_.restore(due));
  Lease later = due;
  later.ip = kA0 + 1;
  later.client = key(2);
  later.expires_ns = now_ + 90 * kSec;
  ASSERT_TRUE(s_.restore(later));
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_, &ev_));
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(ev_[0].lease.ip, kA0);
  EXPECT_EQ(ev_[0].lease.generation, 4u);
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_ + 90 * kSec - 1, &ev_));
  EXPECT_TRUE(ev_.empty());
  EXPECT_TRUE(s_.expire(now_ + 90 * kSec, &ev_));
  EXPECT_EQ(ev_.size(), 1u);
}

TEST_F(LeasesTest, RestoreWithTiesLetsThePeerWinAnEqualGeneration) {
  // The peer's lease reached us (generation 5), ended on our clock while the peer renewed it:
  // our FREE copy and its renewed BOUND one both carry generation 6.
  Lease l;
  l.ip = kA0 + 4;
  l.pool = kPoolA;
  l.state = LeaseState::kBound;
  l.client = key(7);
  l.mac = mac_of(7);
  l.expires_ns = now_ + 10 * kSec;
  l.updated_ns = now_;
  l.generation = 5;
  ASSERT_TRUE(s_.restore(l, true));
  now_ += 10 * kSec;
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_, &ev_));
  ASSERT_EQ(ev_.size(), 1u);
  EXPECT_EQ(ev_[0].kind, Kind::kExpire);
  ASSERT_EQ(state(kA0 + 4), LeaseState::kFree);
  ASSERT_EQ(s_.find(kA0 + 4)->generation, 6u);
  const Lease ours = *s_.find(kA0 + 4);

  Lease renewed = l;
  renewed.expires_ns = now_ + kLease;
  renewed.updated_ns = now_ - kSec;
  renewed.generation = 6;
  // Without ties (journal replay): ours is as new, kept.
  EXPECT_TRUE(s_.restore(renewed));
  EXPECT_TRUE(s_.restore(renewed, false));
  EXPECT_TRUE(same_lease(*s_.find(kA0 + 4), ours)) << describe(*s_.find(kA0 + 4));
  EXPECT_EQ(s_.find(key(7)), nullptr);
  // Older, ties or not: ignored.
  Lease older = renewed;
  older.generation = 5;
  EXPECT_TRUE(s_.restore(older, true));
  EXPECT_TRUE(same_lease(*s_.find(kA0 + 4), ours)) << describe(*s_.find(kA0 + 4));
  // With ties (replication): the peer's word wins.
  EXPECT_TRUE(s_.restore(renewed, true));
  EXPECT_TRUE(same_lease(*s_.find(kA0 + 4), renewed)) << describe(*s_.find(kA0 + 4));
  EXPECT_EQ(s_.find(key(7)), s_.find(kA0 + 4));
  PoolStats st = s_.stats(kPoolA);
  EXPECT_EQ(st.bound, 1u);
  EXPECT_EQ(st.free, 9u);
  // Fully live: it ends at its new time, and no other client gets it meanwhile.
  for (int c = 20; c < 29; ++c) EXPECT_NE(offer(c), kA0 + 4);
  EXPECT_EQ(offer(29), std::nullopt);
  ev_.clear();
  EXPECT_TRUE(s_.expire(now_ + kLease - 1, &ev_));
  for (const auto& e : ev_) EXPECT_NE(e.lease.ip, kA0 + 4);
  ev_.clear();
  s_.expire(now_ + kLease, &ev_);
  bool ended = false;
  for (const auto& e : ev_)
    if (e.lease.ip == kA0 + 4) {
      ended = true;
      EXPECT_EQ(e.kind, Kind::kExpire);
      EXPECT_EQ(e.lease.generation, 7u);
    }
  EXPECT_TRUE(ended);
}

TEST_F(LeasesTest, RestoreWithTiesNeverTakesALowerGeneration) {
  const uint32_t ip = bind(3);  // ours: offer (1), bind (2)
  ASSERT_EQ(s_.find(ip)->generation, 2u);
  const Lease ours = *s_.find(ip);
  Lease theirs = ours;
  theirs.state = LeaseState::kFree;
  theirs.expires_ns = 0;
  theirs.generation = 1;
  EXPECT_TRUE(s_.restore(theirs, true));
  EXPECT_TRUE(same_lease(*s_.find(ip), ours));
  theirs.generation = 0;
  EXPECT_TRUE(s_.restore(theirs, true));
  EXPECT_TRUE(same_lease(*s_.find(ip), ours));
  theirs.generation = 2;  // the tie
  EXPECT_TRUE(s_.restore(theirs, true));
  EXPECT_EQ(state(ip), LeaseState::kFree);
  EXPECT_EQ(s_.find(key(3)), nullptr);
  EXPECT_EQ(s_.stats(kPoolA).bound, 0u);
}

// ------------------------------------------------------------------------------ expiry wheel

TEST_F(LeasesTest, ExpireStopsWhenTheSinkIsFullAndCarriesOn) {
  for (int c = 1; c <= 8; ++c) ASSERT_TRUE(offer(c));
  Events small;
  small.reserve(3);
  const size_t cap = small.capacity();
  std::set<uint32_t> freed;
  int calls = 0;
  bool done = false;
  while (!done) {
    small.clear();
    done = s_.expire(now_ + kHold, &small);
    EXPECT_EQ(small.capacity(), cap);  // never grown
    if (!done) {
      EXPECT_EQ(small.size(), cap);
    }
    for (const auto& e : small) EXPECT_TRUE(freed.insert(e.lease.ip).second);
    ASSERT_LT(++calls, 10);
  }
  EXPECT_EQ(freed.size(), 8u);
  EXPECT_EQ(s_.stats(kPoolA).free, 10u);
  // A sink with no room at all makes no progress (and says so); nullptr means unbounded.
  ASSERT_TRUE(offer(1));
  Events none;
  EXPECT_FALSE(s_.expire(now_ + 2 * kHold, &none));
  EXPECT_EQ(state(kA0), LeaseState::kOffered);
  EXPECT_TRUE(s_.expire(now_ + 2 * kHold));
  EXPECT_EQ(state(kA0), LeaseState::kFree);
}

TEST(LeaseWheelTest, DeadlinesAreExactAcrossManyLapsAndJumps) {
  // Leases from 1 s to 3 days over a wheel whose lap is about a second, probed at irregular
  // times (often just before or at a deadline) and across jumps of many laps.
  LeaseStore s{params(256)};
  ASSERT_TRUE(s.add_range(kPoolA, ipv4(10, 3, 0, 0), ipv4(10, 3, 0, 199)));
  std::mt19937_64 rng(42);
  uint64_t now = 5000 * kSec + 12345;
  std::vector<uint64_t> ends;
  for (int c = 0; c < 200; ++c) {
    const uint64_t len = kSec + rng() % (3 * 86400 * kSec);
    ASSERT_EQ(s.commit(kPoolA, key(c), mac_of(c), ipv4(10, 3, 0, 0) + c, len, now),
              LeaseStore::Commit::kOk);
    ends.push_back(now + len);
  }
  std::vector<uint64_t> probes;
  for (uint64_t e : ends) {
    probes.push_back(e - 1);
    probes.push_back(e);
  }
  for (int i = 0; i < 200; ++i) probes.push_back(now + rng() % (4 * 86400 * kSec));
  std::sort(probes.begin(), probes.end());
  Events ev;
  ev.reserve(256);
  size_t expired = 0;
  for (uint64_t t : probes) {
    ev.clear();
    ASSERT_TRUE(s.expire(t, &ev));
    for (const auto& e : ev) {
      const uint64_t end = ends[e.lease.ip - ipv4(10, 3, 0, 0)];
      EXPECT_LE(end, t);  // never early
    }
    expired += ev.size();
    for (int c = 0; c < 200; ++c) {  // and nothing due left behind
      const bool held = s.find(ipv4(10, 3, 0, 0) + c)->state == LeaseState::kBound;
      ASSERT_EQ(held, ends[c] > t) << "lease " << c << " at " << t;
    }
  }
  EXPECT_EQ(expired, 200u);
}

TEST(LeaseWheelTest, CapacityIsFixed) {
  LeaseStore s{params(16)};
  EXPECT_TRUE(s.add_range(1, ipv4(10, 9, 0, 0), ipv4(10, 9, 0, 9)));
  EXPECT_FALSE(s.add_range(2, ipv4(10, 9, 1, 0), ipv4(10, 9, 1, 6)));   // 17 > 16
  EXPECT_FALSE(s.add_range(2, ipv4(10, 9, 0, 9), ipv4(10, 9, 0, 12)));  // overlaps
  EXPECT_FALSE(s.add_range(2, ipv4(10, 9, 1, 5), ipv4(10, 9, 1, 4)));   // empty
  EXPECT_TRUE(s.add_range(1, ipv4(10, 9, 1, 0), ipv4(10, 9, 1, 5)));    // a second slice
  EXPECT_EQ(s.stats(1).size, 16u);
  EXPECT_EQ(s.stats(2).size, 0u);
}

// --------------------------------------------------------------------------- stats, for_each

TEST_F(LeasesTest, StatsAndForEachFollowEveryChange) {
  bind(1);
  bind(2);
  ASSERT_TRUE(offer(3));
  ASSERT_TRUE(s_.decline(key(2), kA0 + 1, now_));
  bind(4, kPoolB);
  PoolStats a = s_.stats(kPoolA);
  EXPECT_EQ(a.size, 10u);
  EXPECT_EQ(a.bound, 1u);
  EXPECT_EQ(a.offered, 1u);
  EXPECT_EQ(a.declined, 1u);
  EXPECT_EQ(a.free, 7u);
  EXPECT_EQ(s_.stats(kPoolB).bound, 1u);
  EXPECT_EQ(s_.stats(kPoolB).free, 3u);
  std::map<uint32_t, LeaseState> seen;
  s_.for_each([&](const Lease& l) { seen[l.ip] = l.state; });
  EXPECT_EQ(seen, (std::map<uint32_t, LeaseState>{{kA0, LeaseState::kBound},
                                                  {kA0 + 1, LeaseState::kDeclined},
                                                  {kA0 + 2, LeaseState::kOffered},
                                                  {kB0, LeaseState::kBound}}));
  EXPECT_EQ(s_.find(kNowhere), nullptr);
  EXPECT_EQ(s_.find(kA0 + 5)->state, LeaseState::kFree);
}

// ------------------------------------------------------------------------------ property test
//
// The reference model keeps a plain record per address and finds everything by scanning: the
// client's current lease (any OFFERED/BOUND lease of that client in the pool), the LRU order (a
// list), affinity (the last address each client was given per pool, valid while it is FREE and
// still carries that client). Within one expire() call the store may free leases in any order;
// the model checks the set and then takes the order from the events for its LRU list.

struct MAddr {
  uint32_t ip = 0;
  uint32_t pool = 0;
  LeaseState state = LeaseState::kFree;
  int client = -1;  // -1: none
  Mac mac{};
  uint64_t expires = 0, updated = 0, gen = 0;
  int reserved_for = -1;
};

struct Model {
  std::vector<MAddr> addrs;
  std::map<uint32_t, size_t> by_ip;
  std::map<uint32_t, std::list<uint32_t>> lru;        // pool -> FREE unreserved, least recent first
  std::map<std::pair<int, uint32_t>, uint32_t> last;  // (client, pool) -> ip
  std::map<std::pair<int, uint32_t>, uint32_t> resv;  // (client, pool) -> ip
  const std::vector<ClientKey>* keys = nullptr;

  void add_range(uint32_t pool, uint32_t first, uint32_t last_ip) {
    for (uint32_t ip = first; ip <= last_ip; ++ip) {
      by_ip[ip] = addrs.size();
      addrs.push_back(MAddr{ip, pool});
      lru[pool].push_back(ip);
    }
  }
  void reserve(uint32_t ip, int c) {
    MAddr& a = at(ip);
    a.reserved_for = c;
    resv[{c, a.pool}] = ip;
    lru[a.pool].remove(ip);
  }
  MAddr& at(uint32_t ip) { return addrs[by_ip.at(ip)]; }
  bool known(uint32_t ip) const { return by_ip.count(ip) != 0; }
  static bool holds(const MAddr& a) {
    return a.state == LeaseState::kOffered || a.state == LeaseState::kBound;
  }
  bool other_reserved(const MAddr& a, int c) const {
    return a.reserved_for != -1 && a.reserved_for != c;
  }
  MAddr* held(int c, uint32_t pool) {
    MAddr* found = nullptr;
    for (MAddr& a : addrs) {
      if (a.pool == pool && a.client == c && holds(a)) {
        EXPECT_EQ(found, nullptr) << "client " << c << " holds two leases in pool " << pool;
        found = &a;
      }
    }
    return found;
  }
  Lease lease(const MAddr& a) const {
    Lease l;
    l.ip = a.ip;
    l.pool = a.pool;
    l.state = a.state;
    if (a.client >= 0) l.client = (*keys)[a.client];
    l.mac = a.mac;
    l.expires_ns = a.expires;
    l.updated_ns = a.updated;
    l.generation = a.gen;
    return l;
  }
  void free_it(MAddr& a, uint64_t now, Kind kind, Events& out) {
    a.state = LeaseState::kFree;
    a.expires = 0;
    a.updated = now;
    ++a.gen;
    if (a.reserved_for == -1) lru[a.pool].push_back(a.ip);
    out.push_back(LeaseEvent{kind, lease(a)});
  }
  void give(MAddr& a, int c, const Mac& mac, LeaseState s, uint64_t expires, uint64_t now,
            Kind kind, Events& out) {
    if (a.state == LeaseState::kFree) lru[a.pool].remove(a.ip);
    a.client = c;
    a.state = s;
    a.mac = mac;
    a.expires = expires;
    a.updated = now;
    ++a.gen;
    last[{c, a.pool}] = a.ip;
    out.push_back(LeaseEvent{kind, lease(a)});
  }

  std::optional<uint32_t> offer(uint32_t pool, int c, const Mac& mac, uint32_t requested,
                                uint64_t now, uint64_t hold, Events& out) {
    if (!lru.count(pool)) return std::nullopt;
    MAddr* cur = held(c, pool);
    if (cur && !other_reserved(*cur, c)) {
      if (cur->state == LeaseState::kOffered) {
        give(*cur, c, mac, LeaseState::kOffered, now + hold, now, Kind::kOffer, out);
      }
      return cur->ip;
    }
    MAddr* pick = nullptr;
    if (auto r = resv.find({c, pool});
        r != resv.end() && at(r->second).state == LeaseState::kFree) {
      pick = &at(r->second);
    }
    if (!pick && requested != 0 && known(requested)) {
      MAddr& a = at(requested);
      if (a.pool == pool && a.state == LeaseState::kFree && !other_reserved(a, c)) pick = &a;
    }
    if (!pick) {
      if (auto l = last.find({c, pool}); l != last.end()) {
        MAddr& a = at(l->second);
        if (a.state == LeaseState::kFree && a.client == c && !other_reserved(a, c)) pick = &a;
      }
    }
    if (!pick && !lru[pool].empty()) pick = &at(lru[pool].front());
    if (!pick) return std::nullopt;
    if (cur) free_it(*cur, now, Kind::kRelease, out);
    give(*pick, c, mac, LeaseState::kOffered, now + hold, now, Kind::kOffer, out);
    return pick->ip;
  }

  LeaseStore::Commit commit(uint32_t pool, int c, const Mac& mac, uint32_t ip, uint64_t lease_ns,
                            uint64_t now, Events& out) {
    if (!known(ip)) return LeaseStore::Commit::kUnknown;
    MAddr& a = at(ip);
    if (a.pool != pool) return LeaseStore::Commit::kNotInPool;
    if (other_reserved(a, c)) return LeaseStore::Commit::kTaken;
    if (holds(a) && a.client != c) return LeaseStore::Commit::kTaken;
    if (a.state == LeaseState::kDeclined) return LeaseStore::Commit::kTaken;
    if (MAddr* cur = held(c, pool); cur && cur->ip != ip) free_it(*cur, now, Kind::kRelease, out);
    give(a, c, mac, LeaseState::kBound, now + lease_ns, now, Kind::kBind, out);
    return LeaseStore::Commit::kOk;
  }

  bool release(int c, uint32_t ip, uint64_t now, Events& out) {
    if (!known(ip)) return false;
    MAddr& a = at(ip);
    if (!holds(a) || a.client != c) return false;
    free_it(a, now, Kind::kRelease, out);
    return true;
  }

  bool decline(int c, uint32_t ip, uint64_t now, uint64_t quarantine, Events& out) {
    if (!known(ip)) return false;
    MAddr& a = at(ip);
    if (!holds(a) || a.client != c) return false;
    a.state = LeaseState::kDeclined;
    a.expires = now + quarantine;
    a.updated = now;
    ++a.gen;
    out.push_back(LeaseEvent{Kind::kDecline, lease(a)});
    return true;
  }

  // The (client, pool) pairs the store must remember: a lease, or the last address while it
  // still carries the client (a declined one does not count: no affinity to it).
  size_t remembered() const {
    size_t n = 0;
    for (const MAddr& a : addrs) {
      if (a.client < 0 || a.state == LeaseState::kDeclined) continue;
      const auto it = last.find({a.client, a.pool});
      if (it != last.end() && it->second == a.ip) ++n;
    }
    return n;
  }

  // The expected events, sorted by address; the state is updated, not the LRU order.
  Events expire(uint64_t now) {
    Events out;
    for (MAddr& a : addrs) {
      if (a.state == LeaseState::kFree || a.expires > now) continue;
      const Kind kind = a.state == LeaseState::kOffered ? Kind::kOfferExpired : Kind::kExpire;
      if (a.state == LeaseState::kDeclined) {
        a.client = -1;
        a.mac = {};
      }
      a.state = LeaseState::kFree;
      a.expires = 0;
      a.updated = now;
      ++a.gen;
      out.push_back(LeaseEvent{kind, lease(a)});
    }
    return out;
  }
};

bool same_events(const Events& a, const Events& b, std::string* why) {
  if (a.size() != b.size()) {
    *why = "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || !same_lease(a[i].lease, b[i].lease)) {
      *why = "event " + std::to_string(i) + ": kind " + std::to_string(a[i].kind) + " " +
             describe(a[i].lease) + " vs kind " + std::to_string(b[i].kind) + " " +
             describe(b[i].lease);
      return false;
    }
  }
  return true;
}

class LeasesPropertyTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(LeasesPropertyTest, RandomOperationsMatchTheModel) {
  constexpr int kClients = 300;
  constexpr int kSteps = 60'000;
  constexpr uint64_t kPropHold = 30 * kSec;
  constexpr uint64_t kPropQuarantine = 120 * kSec;
  constexpr uint32_t kPa = 7, kPb = 9;
  std::mt19937_64 rng(GetParam());
  auto uniform = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };

  // Clients: MAC keys and client identifiers of every length, some hashed (longer than kMax).
  std::vector<ClientKey> keys;
  std::vector<Mac> macs;
  for (int c = 0; c < kClients; ++c) {
    macs.push_back(Mac{0x02, 0x42, 0, 0, static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c)});
    if (c % 3 == 0) {
      std::vector<uint8_t> id(2 + uniform(47));
      for (auto& b : id) b = static_cast<uint8_t>(rng());
      id[0] = 0xff;
      id[1] = static_cast<uint8_t>(c);  // keeps them distinct from each other and from MACs
      if (id.size() > 2) id[2] = static_cast<uint8_t>(c >> 8);
      keys.push_back(ClientKey::from_id(id));
    } else {
      keys.push_back(ClientKey::from_mac(macs.back()));
    }
  }
  for (int i = 0; i < kClients; ++i) {
    for (int j = 0; j < i; ++j) ASSERT_FALSE(keys[i] == keys[j]);
  }

  LeaseStore::Params p;
  p.offer_hold_ns = kPropHold;
  p.decline_hold_ns = kPropQuarantine;
  p.max_addresses = 128;
  LeaseStore store(p);
  LeaseStore replica(p);  // fed only through restore()
  Model model;
  model.keys = &keys;
  struct R {
    uint32_t pool, first, last;
  };
  const std::vector<R> ranges{{kPa, ipv4(10, 0, 0, 0), ipv4(10, 0, 0, 31)},
                              {kPb, ipv4(10, 0, 1, 0), ipv4(10, 0, 1, 15)},
                              {kPb, ipv4(10, 0, 2, 100), ipv4(10, 0, 2, 107)}};
  for (const R& r : ranges) {
    ASSERT_TRUE(store.add_range(r.pool, r.first, r.last));
    ASSERT_TRUE(replica.add_range(r.pool, r.first, r.last));
    model.add_range(r.pool, r.first, r.last);
  }
  const std::vector<std::pair<uint32_t, int>> reservations{{ipv4(10, 0, 0, 5), 0},
                                                           {ipv4(10, 0, 1, 3), 1},
                                                           {ipv4(10, 0, 2, 105), 0},
                                                           {ipv4(10, 0, 0, 20), 299}};
  for (const auto& [ip, c] : reservations) {
    ASSERT_TRUE(store.reserve(ip, keys[c]));
    ASSERT_TRUE(replica.reserve(ip, keys[c]));
    model.reserve(ip, c);
  }
  std::vector<uint32_t> all_ips;
  for (const MAddr& a : model.addrs) all_ips.push_back(a.ip);
  const std::map<uint32_t, uint64_t> sizes{{kPa, 32}, {kPb, 24}};

  uint64_t now = 1000 * kSec + uniform(kSec);
  Events ev;
  ev.reserve(256);
  std::map<std::string, int> ops;

  auto random_ip = [&]() -> uint32_t {
    const uint64_t r = uniform(100);
    if (r < 85) return all_ips[uniform(all_ips.size())];
    if (r < 95) return ipv4(10, 0, 0, 32) + static_cast<uint32_t>(uniform(8));  // just past A
    return 0;
  };
  auto pick_client = [&]() {
    return static_cast<int>(uniform(2) ? uniform(40) : uniform(kClients));  // some are busy
  };
  auto pick_pool = [&](int c) { return uniform(5) ? (c % 2 ? kPb : kPa) : (c % 2 ? kPa : kPb); };

  for (int step = 0; step < kSteps; ++step) {
    // Time: mostly small steps, sometimes a minute, now and then hours or days (many laps of
    // the wheel, mass expiry).
    const uint64_t t = uniform(10'000);
    now += t < 8'400   ? uniform(kSec)
           : t < 9'945 ? uniform(60 * kSec)
           : t < 9'995 ? uniform(3600 * kSec)
                       : uniform(2 * 86400 * kSec);

    ev.clear();
    Events want;
    const int c = pick_client();
    // The workers' cache hints, for this client, any client's tag and any address (some out of
    // every range): they must change nothing the model would notice.
    store.warm_lease(store.warm_client(keys[c]));
    store.warm_lease(static_cast<uint32_t>(rng()));
    store.warm_addr(random_ip());
    // The workers' cache hints, for this client, any client's tag and any address (some out of
    // every range): they must change nothing the model would notice.
    store.warm_lease(store.warm_client(keys[c]));
    store.warm_lease(static_cast<uint32_t>(rng()));
    store.warm_addr(random_ip());
    const uint64_t op = uniform(100);
    std::string what;
    if (op < 35) {
      const uint32_t pool = pick_pool(c);
      uint32_t req = 0;
      const uint64_t r = uniform(100);
      if (r >= 40 && r < 75) req = random_ip();
      if (r >= 75) {
        auto l = model.last.find({c, pool});
        req = l != model.last.end() ? l->second : random_ip();
      }
      const auto got = store.offer(pool, keys[c], macs[c], req, now, &ev);
      const auto exp = model.offer(pool, c, macs[c], req, now, kPropHold, want);
      ASSERT_EQ(got, exp) << "step " << step << " offer client " << c << " pool " << pool;
      what = got ? "offer" : "offer-exhausted";
    } else if (op < 65) {
      const uint32_t pool = pick_pool(c);
      uint32_t ip;
      const uint64_t r = uniform(100);
      const MAddr* cur = model.held(c, pool);
      if (r < 55 && cur) {
        ip = cur->ip;
      } else if (r < 65) {
        auto l = model.last.find({c, pool});
        ip = l != model.last.end() ? l->second : random_ip();
      } else {
        ip = random_ip();
      }
      const uint64_t lease_ns = uniform(20) ? kSec + uniform(6 * 3600 * kSec) : 0;
      const auto got = store.commit(pool, keys[c], macs[c], ip, lease_ns, now, &ev);
      const auto exp = model.commit(pool, c, macs[c], ip, lease_ns, now, want);
      ASSERT_EQ(got, exp) << "step " << step << " commit client " << c << " ip " << ip;
      what = "commit-" + std::to_string(static_cast<int>(got));
    } else if (op < 80) {
      const bool rel = op < 74;
      uint32_t ip = random_ip();
      if (uniform(10) < 7) {
        for (uint32_t pool : {kPa, kPb}) {
          if (const MAddr* cur = model.held(c, pool)) ip = cur->ip;
        }
      }
      const bool got =
          rel ? store.release(keys[c], ip, now, &ev) : store.decline(keys[c], ip, now, &ev);
      const bool exp =
          rel ? model.release(c, ip, now, want) : model.decline(c, ip, now, kPropQuarantine, want);
      ASSERT_EQ(got, exp) << "step " << step << (rel ? " release" : " decline");
      what = std::string(rel ? "release" : "decline") + (got ? "" : "-ignored");
    } else {
      ASSERT_TRUE(store.expire(now, &ev));
      // The replica expires on its own, as a standby does (expiry is not replicated): the
      // store's events for the same leases then change nothing there.
      ASSERT_TRUE(replica.expire(now));
      want = model.expire(now);
      Events sorted = ev;
      std::sort(sorted.begin(), sorted.end(),
                [](const LeaseEvent& a, const LeaseEvent& b) { return a.lease.ip < b.lease.ip; });
      std::string why;
      ASSERT_TRUE(same_events(sorted, want, &why)) << "step " << step << " expire: " << why;
      for (const auto& e : ev) {  // the LRU order follows the store's order of freeing
        if (model.at(e.lease.ip).reserved_for == -1) model.lru[e.lease.pool].push_back(e.lease.ip);
      }
      want = ev;
      what = ev.empty() ? "expire-none" : "expire";
    }
    ++ops[what];
    std::string why;
    ASSERT_TRUE(same_events(ev, want, &why)) << "step " << step << " " << what << ": " << why;

    // Every event is a change with a newer generation; the replica applies them.
    for (const auto& e : ev) {
      ASSERT_TRUE(replica.restore(e.lease));
      ASSERT_TRUE(same_lease(*replica.find(e.lease.ip), e.lease));
    }

    // Whole-state comparison and invariants.
    std::map<uint32_t, PoolStats> counted;
    std::set<std::pair<int, uint32_t>> holders;
    for (const MAddr& m : model.addrs) {
      const Lease* l = store.find(m.ip);
      ASSERT_NE(l, nullptr);
      const Lease want_l = model.lease(m);
      ASSERT_TRUE(same_lease(*l, want_l)) << "step " << step << " " << what << ": " << describe(*l)
                                          << " vs model " << describe(want_l);
      ASSERT_TRUE(same_lease(*replica.find(m.ip), *l)) << "replica differs at step " << step;
      PoolStats& s = counted[m.pool];
      ++s.size;
      switch (l->state) {
        case LeaseState::kFree:
          ++s.free;
          break;
        case LeaseState::kOffered:
          ++s.offered;
          break;
        case LeaseState::kBound:
          ++s.bound;
          break;
        case LeaseState::kDeclined:
          ++s.declined;
          break;
      }
      if (Model::holds(m)) {
        ASSERT_TRUE(holders.insert({m.client, m.pool}).second)
            << "client " << m.client << " holds two leases in pool " << m.pool;
      }
      if (what == "expire" || what == "expire-none") {
        ASSERT_TRUE(l->state == LeaseState::kFree || l->expires_ns > now)
            << "due lease left behind at step " << step;
      }
    }
    for (uint32_t pool : {kPa, kPb}) {
      const PoolStats s = store.stats(pool);
      const PoolStats r = replica.stats(pool);
      const PoolStats& w = counted[pool];
      ASSERT_EQ(s.size, sizes.at(pool));
      ASSERT_EQ(s.free + s.offered + s.bound + s.declined, s.size);
      ASSERT_TRUE(s.size == w.size && s.free == w.free && s.offered == w.offered &&
                  s.bound == w.bound && s.declined == w.declined)
          << "stats of pool " << pool << " at step " << step;
      ASSERT_TRUE(r.size == w.size && r.free == w.free && r.offered == w.offered &&
                  r.bound == w.bound && r.declined == w.declined)
          << "replica stats of pool " << pool << " at step " << step;
    }
    ASSERT_EQ(store.client_index_size(), model.remembered()) << "client index at step " << step;
    ASSERT_EQ(replica.client_index_size(), model.remembered()) << "replica index at step " << step;
    // find(client): the acting client every step, everyone now and then.
    auto check_find = [&](int k) {
      const Lease* a = store.find(keys[k]);
      const Lease* b = replica.find(keys[k]);
      const bool holds_any = holders.count({k, kPa}) || holders.count({k, kPb});
      ASSERT_EQ(a != nullptr, holds_any) << "find(client " << k << ") at step " << step;
      ASSERT_EQ(b != nullptr, holds_any) << "replica find(client " << k << ") at step " << step;
      if (a) {
        ASSERT_TRUE(a->client == keys[k]);
        ASSERT_TRUE(Model::holds(model.at(a->ip)));
      }
    };
    check_find(c);
    if (step % 512 == 0) {
      for (int k = 0; k < kClients; ++k) check_find(k);
    }
  }

  // Every kind of step happened, often.
  for (const char* k : {"offer", "offer-exhausted", "commit-0", "commit-1", "commit-2", "commit-3",
                        "release", "release-ignored", "decline", "expire"}) {
    EXPECT_GT(ops[k], 100) << k;
  }

  // The replica, built from events only, now behaves the same: free-list order, affinity and
  // client index included. Drive both with the same operations and compare.
  for (int step = 0; step < 5000; ++step) {
    now += uniform(20 * kSec);
    const int c = pick_client();
    const uint32_t pool = pick_pool(c);
    const uint64_t op = uniform(4);
    if (op == 0) {
      const uint32_t req = uniform(2) ? random_ip() : 0;
      ASSERT_EQ(store.offer(pool, keys[c], macs[c], req, now),
                replica.offer(pool, keys[c], macs[c], req, now))
          << "replica offer differs at step " << step;
    } else if (op == 1) {
      const uint32_t ip = random_ip();
      ASSERT_EQ(store.commit(pool, keys[c], macs[c], ip, kSec * 600, now),
                replica.commit(pool, keys[c], macs[c], ip, kSec * 600, now));
    } else if (op == 2) {
      const Lease* l = store.find(keys[c]);
      const uint32_t ip = l ? l->ip : random_ip();
      ASSERT_EQ(store.release(keys[c], ip, now), replica.release(keys[c], ip, now));
    } else {
      ASSERT_TRUE(store.expire(now));
      ASSERT_TRUE(replica.expire(now));
    }
    for (uint32_t ip : all_ips) ASSERT_TRUE(same_lease(*store.find(ip), *replica.find(ip)));
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, LeasesPropertyTest,
                         ::testing::Values(uint64_t{1}, uint64_t{0x5eed}, uint64_t{2026},
                                           uint64_t{0xdeadbeef}));

}  // namespace
}  // namespace dhcp
