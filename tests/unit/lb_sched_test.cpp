// Schedulers (lb/scheduler.h) against IPVS semantics, and Maglev (lb/maglev.h) properties:
// no holes, balance, weights, minimal disruption, determinism within and across processes.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "lb/maglev.h"
#include "lb/scheduler.h"

namespace lb {
namespace {

constexpr uint32_t kBase = 0x0a000001;  // 10.0.0.1

struct DestSpec {
  uint32_t weight = 1;
  bool available = true;
};

// dest i: 10.0.0.(i+1):80, id i + 100 (ids need not match indices).
Service make_service(Sched sched, const std::vector<DestSpec>& specs, uint32_t id = 7) {
  Service s;
  s.key = {Proto::kTcp, 0xc0000264, 80};
  s.sched = sched;
  s.id = id;
  for (size_t i = 0; i < specs.size(); ++i) {
    Dest d;
    d.ip = kBase + static_cast<uint32_t>(i);
    d.port = 80;
    d.weight = specs[i].weight;
    d.id = static_cast<uint32_t>(i) + 100;
    d.available = specs[i].available;
    s.dests.push_back(d);
  }
  build_tables(s);
  return s;
}

Service equal_service(Sched sched, size_t n, uint32_t maglev_size = kMaglevDefaultSize) {
  Service s = make_service(sched, std::vector<DestSpec>(n));
  build_tables(s, maglev_size);
  return s;
}

// The per-worker state is large: one per test, on the heap.
std::unique_ptr<SchedState> state() {
  return std::make_unique<SchedState>();
}

std::vector<int> picks(const Service& s, SchedState& st, int count) {
  std::vector<int> out;
  for (int k = 0; k < count; ++k) out.push_back(pick(s, st, 0, 0));
  return out;
}

// FNV-1a over the table, entries as little-endian bytes (the same on every host).
uint64_t digest(const std::vector<uint16_t>& table) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint16_t v : table) {
    for (uint8_t byte : {static_cast<uint8_t>(v & 0xff), static_cast<uint8_t>(v >> 8)}) {
      h ^= byte;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

// Slot -> owner's address (indices shift when a dest leaves; addresses do not).
std::vector<uint32_t> owners(const Service& s) {
  std::vector<uint32_t> out;
  out.reserve(s.lookup.size());
  for (uint16_t e : s.lookup) out.push_back(e == kNoDest ? 0 : s.dests[e].ip);
  return out;
}

std::map<uint16_t, uint32_t> slot_counts(const std::vector<uint16_t>& table) {
  std::map<uint16_t, uint32_t> c;
  for (uint16_t e : table) ++c[e];
  return c;
}

// --- rr ---

TEST(Rr, CyclesThroughDestsInOrder) {
  Service s = make_service(Sched::kRr, {{}, {}, {}});
  auto st = state();
  EXPECT_EQ(picks(s, *st, 7), (std::vector<int>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(Rr, SkipsUnavailableAndWeightZero) {
  Service s = make_service(Sched::kRr, {{1, true}, {1, false}, {0, true}, {5, true}});
  auto st = state();
  EXPECT_EQ(picks(s, *st, 6), (std::vector<int>{0, 3, 0, 3, 0, 3}));
}

TEST(Rr, CursorFromAnOlderSnapshotIsSafe) {
  Service big = make_service(Sched::kRr, {{}, {}, {}, {}, {}});
  auto st = state();
  picks(big, *st, 4);  // cursor at 4
  Service small = make_service(Sched::kRr, {{}, {}});
  EXPECT_EQ(picks(small, *st, 3), (std::vector<int>{0, 1, 0}));
}

TEST(Rr, ServicesHaveIndependentCursors) {
  Service a = make_service(Sched::kRr, {{}, {}, {}}, 1);
  Service b = make_service(Sched::kRr, {{}, {}, {}}, 2);
  auto st = state();
  EXPECT_EQ(pick(a, *st, 0, 0), 0);
  EXPECT_EQ(pick(a, *st, 0, 0), 1);
  EXPECT_EQ(pick(b, *st, 0, 0), 0);
  EXPECT_EQ(pick(a, *st, 0, 0), 2);
}

// --- wrr ---

TEST(Wrr, ThreeToOneExactlyInEveryWindow) {
  Service s = make_service(Sched::kWrr, {{3}, {1}});
  auto st = state();
  const std::vector<int> seq = picks(s, *st, 4000);
  // IPVS's sequence for weights 3 and 1: A A A B, repeated.
  EXPECT_EQ(std::vector<int>(seq.begin(), seq.begin() + 8),
            (std::vector<int>{0, 0, 0, 1, 0, 0, 0, 1}));
  for (size_t k = 0; k + 4 <= seq.size(); k += 4) {
    EXPECT_EQ(std::count(seq.begin() + k, seq.begin() + k + 4, 0), 3) << "window at " << k;
  }
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 0), 3000);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 1), 1000);
}

TEST(Wrr, InterleavesByGcdLikeIpvs) {
  Service s = make_service(Sched::kWrr, {{4}, {2}, {2}});
  EXPECT_EQ(s.wrr_gcd, 2u);
  EXPECT_EQ(s.wrr_max, 3u);  // IPVS mw = max - (gcd - 1)
  auto st = state();
  EXPECT_EQ(picks(s, *st, 8), (std::vector<int>{0, 0, 1, 2, 0, 0, 1, 2}));
}

TEST(Wrr, RatiosOverAFullCycle) {
  Service s = make_service(Sched::kWrr, {{5}, {3}, {2}, {0}, {7, false}});
  auto st = state();
  const std::vector<int> seq = picks(s, *st, 1000);  // 100 cycles of 10
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 0), 500);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 1), 300);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 2), 200);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 3), 0);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 4), 0);
}

TEST(Wrr, StateFromHeavierWeightsRestartsTheSequence) {
  Service heavy = make_service(Sched::kWrr, {{100}, {1}});
  auto st = state();
  picks(heavy, *st, 3);  // cw is 98 now
  Service light = make_service(Sched::kWrr, {{2}, {1}});
  const std::vector<int> seq = picks(light, *st, 300);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 0), 200);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 1), 100);
}

// --- lc / wlc ---

TEST(Lc, PicksFewestOverhead) {
  Service s = make_service(Sched::kLc, {{}, {}, {}, {1, false}});
  auto st = state();
  st->active[100] = 1;      // overhead 256
  st->inactive[101] = 300;  // 300
  st->inactive[102] = 255;  // 255
  // 103: unusable, even though idle
  EXPECT_EQ(pick(s, *st, 0, 0), 2);
  st->inactive[102] = 256;  // tie with dest 0: the first in list order wins (IPVS)
  EXPECT_EQ(pick(s, *st, 0, 0), 0);
  st->active[100] = 2;
  EXPECT_EQ(pick(s, *st, 0, 0), 2);
}

TEST(Lc, IgnoresWeightsExceptZero) {
  Service s = make_service(Sched::kLc, {{100}, {1}, {0}});
  auto st = state();
  st->inactive[100] = 5;
  st->inactive[101] = 4;
  EXPECT_EQ(pick(s, *st, 0, 0), 1);
}

TEST(Wlc, PicksLowestOverheadPerWeight) {
  Service s = make_service(Sched::kWlc, {{1}, {3}, {2}, {0}});
  auto st = state();
  st->active[100] = 1;  // 256 / 1
  st->active[101] = 2;
  st->inactive[101] = 88;   // 600 / 3 = 200
  st->inactive[102] = 300;  // 300 / 2 = 150
  // 103: weight 0 and idle, never picked
  EXPECT_EQ(pick(s, *st, 0, 0), 2);
  st->inactive[101] = 194;  // 706 / 3 = 235.3
  st->inactive[102] = 471;  // 471 / 2 = 235.5
  EXPECT_EQ(pick(s, *st, 0, 0), 1);
  st->inactive[102] = 470;  // 235.0
  EXPECT_EQ(pick(s, *st, 0, 0), 2);
}

TEST(Wlc, TieGoesToFirstAndIdleServersWin) {
  Service s = make_service(Sched::kWlc, {{2}, {4}, {1}});
  auto st = state();
  EXPECT_EQ(pick(s, *st, 0, 0), 0);  // all idle: first usable
  st->inactive[100] = 10;            // 5 per weight unit
  st->inactive[101] = 20;            // 5
  st->inactive[102] = 5;             // 5
  EXPECT_EQ(pick(s, *st, 0, 0), 0);
  st->inactive[100] = 11;
  EXPECT_EQ(pick(s, *st, 0, 0), 1);
}

TEST(Wlc, HugeCountsAndWeightsDoNotOverflow) {
  // Overheads near 2^40 times weights near 2^16: the cross products need 57 bits.
  Service s = make_service(Sched::kWlc, {{65535}, {65535}, {1}});
  auto st = state();
  st->active[100] = 0xffffffffu;
  st->inactive[100] = 0xffffffffu;
  st->active[101] = 0xfffffff0u;
  st->inactive[101] = 0xffffffffu;
  // Dest 1: 0x100ffffefff / 65535 = 16843008.94 per weight unit; dest 2 (weight 1) on either
  // side of it.
  st->inactive[102] = 16843009;
  EXPECT_EQ(pick(s, *st, 0, 0), 1);
  st->inactive[102] = 16843008;
  EXPECT_EQ(pick(s, *st, 0, 0), 2);
}

// --- sh ---

TEST(Sh, BucketIsIpvsHash32) {
  // hash_32(val, 8) = (val * 0x61C88647) >> 24, computed by hand for two addresses.
  EXPECT_EQ(sh_bucket(0), 0u);
  EXPECT_EQ(sh_bucket(1), 0x61u);
  EXPECT_EQ(sh_bucket(0xc0000201), 0x32u);  // 192.0.2.1
  EXPECT_EQ(sh_bucket(0x0a000001), 0x27u);  // 10.0.0.1
}

TEST(Sh, SameClientSameDestWhateverThePort) {
  Service s = make_service(Sched::kSh, {{}, {}, {}, {}});
  auto st = state();
  for (uint32_t c = 0; c < 1000; ++c) {
    const uint32_t ip = 0xc6336400 + c * 7919;
    const int d = pick(s, *st, ip, 1000);
    ASSERT_GE(d, 0);
    EXPECT_EQ(pick(s, *st, ip, 1001), d);
    EXPECT_EQ(pick(s, *st, ip, 65535), d);
    EXPECT_EQ(d, s.lookup[sh_bucket(ip)]);
  }
}

TEST(Sh, BucketsAndClientsFollowWeights) {
  Service s = make_service(Sched::kSh, {{1}, {3}});
  auto c = slot_counts(s.lookup);
  EXPECT_EQ(c[0], 64u);
  EXPECT_EQ(c[1], 192u);
  auto st = state();
  std::array<int, 2> hits{};
  const int clients = 100000;
  for (int k = 0; k < clients; ++k) ++hits[pick(s, *st, 0x0a000000u + static_cast<uint32_t>(k), 0)];
  EXPECT_NEAR(hits[1] / static_cast<double>(clients), 0.75, 0.02);

  // Weights summing past 256 stay proportional (IPVS would starve the last dests).
  Service big = make_service(Sched::kSh, {{100}, {100}, {100}, {1}});
  auto cb = slot_counts(big.lookup);
  EXPECT_EQ(cb.count(kNoDest), 0u);
  for (uint16_t d = 0; d < 3; ++d) EXPECT_NEAR(cb[d], 85, 1);
  EXPECT_EQ(cb[3], 1u);
}

TEST(Sh, UnusableDestsGetNoBucketAfterRebuild) {
  Service s = make_service(Sched::kSh, {{1}, {1, false}, {0}, {2}});
  auto c = slot_counts(s.lookup);
  EXPECT_EQ(c.count(1), 0u);
  EXPECT_EQ(c.count(2), 0u);
  EXPECT_NEAR(c[0], 85, 1);
  EXPECT_NEAR(c[3], 171, 1);
}

TEST(Sh, StaleTableFallsBackWithoutMovingOthers) {
  Service s = make_service(Sched::kSh, {{}, {}, {}});
  auto st = state();
  std::vector<int> before;
  for (uint32_t c = 0; c < 2000; ++c) before.push_back(pick(s, *st, c * 2654435761u, 0));
  s.dests[1].available = false;  // health changed, tables not rebuilt yet
  for (uint32_t c = 0; c < 2000; ++c) {
    const int d = pick(s, *st, c * 2654435761u, 0);
    ASSERT_GE(d, 0);
    EXPECT_NE(d, 1);
    if (before[c] != 1) {
      EXPECT_EQ(d, before[c]);
    }
  }
}

TEST(Sh, OrderOfDestsDoesNotMatter) {
  Service a = make_service(Sched::kSh, {{1}, {2}, {3}});
  Service b = a;
  std::reverse(b.dests.begin(), b.dests.end());
  build_tables(b);
  EXPECT_EQ(owners(a), owners(b));
}

// --- Maglev ---

TEST(Maglev, TableSizeIsPrime) {
  EXPECT_EQ(maglev_table_size(65537), 65537u);
  EXPECT_EQ(maglev_table_size(65536), 65537u);
  EXPECT_EQ(maglev_table_size(65538), 65539u);
  EXPECT_EQ(maglev_table_size(0), 2u);
  EXPECT_EQ(maglev_table_size(100), 101u);
  Service s = equal_service(Sched::kMh, 3, 70000);
  EXPECT_EQ(s.lookup.size(), 70001u);
}

TEST(Maglev, PermutationIsInRange) {
  for (uint32_t ip = 0; ip < 1000; ++ip) {
    const MaglevPermutation p = maglev_permutation(kBase + ip, 443, 65537);
    EXPECT_LT(p.offset, 65537u);
    EXPECT_GE(p.skip, 1u);
    EXPECT_LT(p.skip, 65537u);
  }
}

TEST(Maglev, NoEmptySlotAndEachDestWithinOnePercentOfFairShare) {
  for (size_t n : {10, 100, 250, 600}) {
    Service s = equal_service(Sched::kMh, n);
    ASSERT_EQ(s.lookup.size(), 65537u);
    auto c = slot_counts(s.lookup);
    EXPECT_EQ(c.count(kNoDest), 0u) << n << " dests";
    ASSERT_EQ(c.size(), n);
    const double fair = 65537.0 / static_cast<double>(n);
    for (auto [d, count] : c) {
      EXPECT_LE(std::abs(count - fair), fair * 0.01) << "dest " << d << " of " << n;
    }
  }
}

TEST(Maglev, WeightedShares) {
  const std::vector<DestSpec> specs = {{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {10}, {20}};
  Service s = make_service(Sched::kMh, specs);
  auto c = slot_counts(s.lookup);
  EXPECT_EQ(c.count(kNoDest), 0u);
  double total_w = 0;
  for (const DestSpec& d : specs) total_w += d.weight;
  for (size_t i = 0; i < specs.size(); ++i) {
    const double fair = 65537.0 * specs[i].weight / total_w;
    EXPECT_LE(std::abs(c[static_cast<uint16_t>(i)] - fair), fair * 0.01)
        << "weight " << specs[i].weight;
  }

  // A common divisor changes nothing: 10:20:30 is 1:2:3.
  Service a = make_service(Sched::kMh, {{1}, {2}, {3}});
  Service b = make_service(Sched::kMh, {{10}, {20}, {30}});
  EXPECT_EQ(a.lookup, b.lookup);

  // Ratios the table can hold are kept (IPVS would cap 1:1000 to 1:250).
  Service skew = make_service(Sched::kMh, {{1}, {1000}});
  auto cs = slot_counts(skew.lookup);
  EXPECT_NEAR(cs[0], 65537.0 / 1001, 2);
}

TEST(Maglev, UnusableDestsAreLeftOut) {
  Service s = make_service(Sched::kMh, {{1}, {1, false}, {0}, {1}});
  auto c = slot_counts(s.lookup);
  EXPECT_EQ(c.count(1), 0u);
  EXPECT_EQ(c.count(2), 0u);
  EXPECT_EQ(c.count(kNoDest), 0u);
  EXPECT_NEAR(c[0], 65537 / 2, 1);
}

TEST(Maglev, OneDestLeavingMovesAboutOneNth) {
  for (size_t n : {10, 50, 100, 300, 600}) {
    Service before = equal_service(Sched::kMh, n);
    const std::vector<uint32_t> old_owner = owners(before);
    for (size_t gone : {size_t{0}, n / 2, n - 1}) {
      Service after = before;
      after.dests.erase(after.dests.begin() + static_cast<std::ptrdiff_t>(gone));
      build_tables(after);
      const std::vector<uint32_t> new_owner = owners(after);
      const uint32_t gone_ip = before.dests[gone].ip;
      size_t moved = 0;
      size_t moved_survivors = 0;
      for (size_t k = 0; k < old_owner.size(); ++k) {
        if (old_owner[k] == new_owner[k]) continue;
        ++moved;
        if (old_owner[k] != gone_ip) ++moved_survivors;
        EXPECT_NE(new_owner[k], gone_ip);
      }
      const double m = static_cast<double>(old_owner.size());
      EXPECT_LE(moved / m, 1.0 / static_cast<double>(n) + 0.02) << n << " dests, -" << gone;
      EXPECT_LE(moved_survivors / m, 0.02) << n << " dests, -" << gone;
    }
  }
}

TEST(Maglev, OneDestJoiningTakesAboutOneNth) {
  const size_t n = 100;
  Service before = equal_service(Sched::kMh, n);
  Service after = equal_service(Sched::kMh, n + 1);
  const std::vector<uint32_t> a = owners(before);
  const std::vector<uint32_t> b = owners(after);
  size_t moved = 0;
  for (size_t k = 0; k < a.size(); ++k) moved += a[k] != b[k];
  EXPECT_LE(moved / static_cast<double>(a.size()), 1.0 / (n + 1) + 0.02);
}

TEST(Maglev, SameInputSameBytes) {
  Service a = equal_service(Sched::kMh, 37);
  Service b = equal_service(Sched::kMh, 37);
  ASSERT_EQ(a.lookup.size(), b.lookup.size());
  EXPECT_EQ(0, std::memcmp(a.lookup.data(), b.lookup.data(), a.lookup.size() * sizeof(uint16_t)));
  // Listing order does not matter either: the same owner for every slot.
  Service r = a;
  std::reverse(r.dests.begin(), r.dests.end());
  build_tables(r);
  EXPECT_EQ(owners(a), owners(r));
}

// Pinned: a change here means a new release would map clients differently from an old one
// (a rolling upgrade of a pair would break connections). Change it only on purpose.
TEST(Maglev, GoldenDigest) {
  Service s = make_service(Sched::kMh, {{1}, {2}, {1}, {5}});
  EXPECT_EQ(digest(s.lookup), 0x929ea995ad88ea86ull) << std::hex << digest(s.lookup);
  EXPECT_EQ(maglev_slot(0xc0000201, 65537), 8246u);
}

TEST(Maglev, BuiltInTwoProcessesIsIdentical) {
  auto build = [] {
    Service s = make_service(Sched::kMh, {{1}, {2}, {3}, {1}, {1}, {4}, {2}, {1}, {1}, {9}});
    return digest(s.lookup);
  };
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    const uint64_t d = build();
    const bool ok = write(fds[1], &d, sizeof d) == static_cast<ssize_t>(sizeof d);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  uint64_t theirs = 0;
  const ssize_t got = read(fds[0], &theirs, sizeof theirs);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof theirs));
  EXPECT_EQ(theirs, build());
}

// --- mh pick ---

TEST(Mh, PickIsTheClientsSlotAndIgnoresThePort) {
  Service s = equal_service(Sched::kMh, 20);
  auto st = state();
  std::vector<uint32_t> hits(20);
  for (uint32_t c = 0; c < 20000; ++c) {
    const uint32_t ip = 0xc0a80000 + c;
    const int d = pick(s, *st, ip, 1234);
    ASSERT_GE(d, 0);
    EXPECT_EQ(d, s.lookup[maglev_slot(ip, 65537)]);
    EXPECT_EQ(pick(s, *st, ip, 4321), d);
    ++hits[static_cast<size_t>(d)];
  }
  for (uint32_t h : hits) EXPECT_NEAR(h, 1000, 150);  // clients spread, not just slots
}

TEST(Mh, StaleTableNeverReturnsAnUnusableDest) {
  Service s = equal_service(Sched::kMh, 4);
  auto st = state();
  std::vector<int> before;
  for (uint32_t c = 0; c < 2000; ++c) before.push_back(pick(s, *st, 0x0b000000 + c, 0));
  s.dests[2].available = false;
  for (uint32_t c = 0; c < 2000; ++c) {
    const int d = pick(s, *st, 0x0b000000 + c, 0);
    ASSERT_GE(d, 0);
    EXPECT_NE(d, 2);
    if (before[c] != 2) {
      EXPECT_EQ(d, before[c]);
    }
  }
}

// --- no usable dest ---

TEST(AllSchedulers, NoUsableDestGivesMinusOne) {
  for (Sched sched : {Sched::kRr, Sched::kWrr, Sched::kLc, Sched::kWlc, Sched::kSh, Sched::kMh}) {
    auto st = state();
    Service none = make_service(sched, {{1, false}, {0, true}, {3, false}});
    Service empty = make_service(sched, {});
    for (uint32_t c = 0; c < 50; ++c) {
      EXPECT_EQ(pick(none, *st, c * 977, 0), -1) << to_string(sched);
      EXPECT_EQ(pick(empty, *st, c * 977, 0), -1) << to_string(sched);
    }
    if (sched == Sched::kSh || sched == Sched::kMh) {
      auto c = slot_counts(none.lookup);
      EXPECT_EQ(c.size(), 1u);
      EXPECT_EQ(c.count(kNoDest), 1u);
    }
    // Everything failing after the tables were built (not rebuilt yet): still -1, never a dead one.
    Service stale = make_service(sched, {{1}, {2}});
    for (Dest& d : stale.dests) d.available = false;
    for (uint32_t c = 0; c < 50; ++c) {
      EXPECT_EQ(pick(stale, *st, c * 977, 0), -1) << to_string(sched);
    }
  }
}

}  // namespace
}  // namespace lb
