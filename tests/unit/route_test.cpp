// Routing: Fib longest-prefix match (fixed cases and a randomized comparison against brute
// force), ICMP errors (golden frames, RFC 1812 §4.3.2.7 refusals, 576-byte cap), the ICMP rate
// limit on a fake clock, TTL decrement and incremental checksums against full recomputes, and
// the lock-free NeighborCache (including a concurrent torn-read check).
// Checksums here come from a textbook RFC 1071 implementation in this file, and the golden
// frames were computed independently (by a short Python script), so the code under test never
// checks itself.

#include "dataplane/route.h"

#include <gtest/gtest.h>

#include <time.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "dataplane/neighbor_cache.h"
#include "dataplane/snapshot.h"

namespace dp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr Mac kOurMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
constexpr uint32_t kPortIp = ip4(192, 0, 2, 1);
constexpr uint32_t kSrcIp = ip4(198, 51, 100, 7);
constexpr uint32_t kDstIp = ip4(203, 0, 113, 9);

// Textbook RFC 1071: add 16-bit big-endian words, fold carries. ref_sum is the folded sum (not
// inverted); ref_csum the checksum.
uint16_t ref_sum(const uint8_t* p, size_t n, uint64_t seed = 0) {
  uint64_t sum = seed;
  for (size_t i = 0; i < n; ++i) sum += (i % 2 == 0) ? uint64_t{p[i]} << 8 : p[i];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
uint16_t ref_csum(const uint8_t* p, size_t n, uint64_t seed = 0) {
  return static_cast<uint16_t>(~ref_sum(p, n, seed) & 0xffff);
}
uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t rd32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void wr32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
// Pseudo-header sum for TCP/UDP (RFC 768/793), as a seed for ref_sum.
uint64_t ref_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

// ============================================================================================
// Fib

Route rt(uint32_t prefix, uint8_t len, uint16_t port, uint32_t gw = 0) {
  return Route{prefix, len, port, gw};
}

void expect_hop(const Fib& fib, uint32_t dst, uint16_t port, uint32_t next_hop) {
  const Fib::Hop h = fib.lookup(dst);
  EXPECT_TRUE(h.found) << std::hex << dst;
  EXPECT_EQ(h.port, port) << std::hex << dst;
  EXPECT_EQ(h.next_hop, next_hop) << std::hex << dst;
}
void expect_none(const Fib& fib, uint32_t dst) {
  const Fib::Hop h = fib.lookup(dst);
  EXPECT_FALSE(h.found) << std::hex << dst;
  EXPECT_EQ(h.port, 0);
  EXPECT_EQ(h.next_hop, 0u);
}

TEST(Fib, EmptyFindsNothing) {
  Fib fib;
  EXPECT_EQ(fib.size(), 0u);
  expect_none(fib, 0);
  expect_none(fib, ip4(10, 0, 0, 1));
  expect_none(fib, 0xffffffffu);
  ASSERT_EQ(fib.build({}), "");
  expect_none(fib, ip4(10, 0, 0, 1));
}

TEST(Fib, DefaultRouteCoversEverything) {
  Fib fib;
  const uint32_t gw = ip4(192, 0, 2, 254);
  ASSERT_EQ(fib.build({rt(0, 0, 3, gw)}), "");
  EXPECT_EQ(fib.size(), 1u);
  for (uint32_t d : {0u, 1u, ip4(10, 1, 2, 3), ip4(128, 0, 0, 0), 0xffffffffu})
    expect_hop(fib, d, 3, gw);
}

TEST(Fib, ConnectedNextHopIsTheDestination) {
  Fib fib;
  ASSERT_EQ(
      fib.build({rt(ip4(192, 0, 2, 0), 24, 0), rt(ip4(10, 0, 0, 0), 8, 1, ip4(192, 0, 2, 9))}), "");
  expect_hop(fib, ip4(192, 0, 2, 77), 0, ip4(192, 0, 2, 77));
  expect_hop(fib, ip4(192, 0, 2, 0), 0, ip4(192, 0, 2, 0));
  expect_hop(fib, ip4(10, 200, 3, 4), 1, ip4(192, 0, 2, 9));
  expect_none(fib, ip4(192, 0, 3, 1));
  expect_none(fib, ip4(11, 0, 0, 0));
  expect_none(fib, ip4(9, 255, 255, 255));
}

TEST(Fib, LongestPrefixWinsAcrossAllLevels) {
  Fib fib;
  // Given longest first to show the order does not matter.
  ASSERT_EQ(fib.build({
                rt(ip4(10, 1, 2, 3), 32, 4, ip4(172, 16, 0, 4)),
                rt(ip4(10, 1, 2, 128), 25, 6),
                rt(ip4(10, 1, 2, 0), 24, 3, ip4(172, 16, 0, 3)),
                rt(ip4(10, 1, 0, 0), 16, 2, ip4(172, 16, 0, 2)),
                rt(ip4(10, 1, 128, 0), 17, 7),
                rt(ip4(10, 0, 0, 0), 8, 1, ip4(172, 16, 0, 1)),
                rt(0, 0, 0, ip4(172, 16, 0, 254)),
            }),
            "");
  expect_hop(fib, ip4(10, 1, 2, 3), 4, ip4(172, 16, 0, 4));  // /32
  expect_hop(fib, ip4(10, 1, 2, 2), 3, ip4(172, 16, 0, 3));  // its /24
  expect_hop(fib, ip4(10, 1, 2, 4), 3, ip4(172, 16, 0, 3));
  expect_hop(fib, ip4(10, 1, 2, 127), 3, ip4(172, 16, 0, 3));
  expect_hop(fib, ip4(10, 1, 2, 128), 6, ip4(10, 1, 2, 128));  // /25, connected
  expect_hop(fib, ip4(10, 1, 2, 255), 6, ip4(10, 1, 2, 255));
  expect_hop(fib, ip4(10, 1, 3, 0), 2, ip4(172, 16, 0, 2));  // /16
  expect_hop(fib, ip4(10, 1, 1, 255), 2, ip4(172, 16, 0, 2));
  expect_hop(fib, ip4(10, 1, 127, 255), 2, ip4(172, 16, 0, 2));
  expect_hop(fib, ip4(10, 1, 128, 0), 7, ip4(10, 1, 128, 0));  // /17
  expect_hop(fib, ip4(10, 1, 255, 255), 7, ip4(10, 1, 255, 255));
  expect_hop(fib, ip4(10, 0, 255, 255), 1, ip4(172, 16, 0, 1));  // /8
  expect_hop(fib, ip4(10, 2, 0, 0), 1, ip4(172, 16, 0, 1));
  expect_hop(fib, ip4(10, 255, 255, 255), 1, ip4(172, 16, 0, 1));
  expect_hop(fib, ip4(11, 0, 0, 0), 0, ip4(172, 16, 0, 254));  // default
  expect_hop(fib, ip4(9, 255, 255, 255), 0, ip4(172, 16, 0, 254));
}

TEST(Fib, HostRoutesUnderNoShorterRoute) {
  Fib fib;
  ASSERT_EQ(fib.build({rt(ip4(198, 51, 100, 7), 32, 5), rt(ip4(198, 51, 100, 8), 31, 6)}), "");
  expect_hop(fib, ip4(198, 51, 100, 7), 5, ip4(198, 51, 100, 7));
  expect_hop(fib, ip4(198, 51, 100, 8), 6, ip4(198, 51, 100, 8));
  expect_hop(fib, ip4(198, 51, 100, 9), 6, ip4(198, 51, 100, 9));
  expect_none(fib, ip4(198, 51, 100, 6));
  expect_none(fib, ip4(198, 51, 100, 10));
  expect_none(fib, ip4(198, 51, 101, 7));
  EXPECT_EQ(fib.groups(), 2u);  // one second-level and one third-level group
}

TEST(Fib, BuildRefusesBadTablesAndKeepsTheOldOne) {
  Fib fib;
  ASSERT_EQ(fib.build({rt(ip4(10, 0, 0, 0), 8, 1)}), "");

  std::vector<Route> many;
  for (uint32_t i = 0; i <= Fib::kMaxRoutes; ++i) many.push_back(rt(ip4(10, 0, 0, 0) + i, 32, 0));
  EXPECT_NE(fib.build(many).find("at most 4096"), std::string::npos);
  many.pop_back();
  Fib full;
  EXPECT_EQ(full.build(many), "");  // exactly kMaxRoutes is fine
  EXPECT_EQ(full.size(), Fib::kMaxRoutes);
  expect_hop(full, ip4(10, 0, 15, 255), 0, ip4(10, 0, 15, 255));
  expect_none(full, ip4(10, 0, 16, 0));

  const std::string port_err = fib.build({rt(ip4(10, 0, 0, 0), 8, 1), rt(0, 0, 16)});
  EXPECT_NE(port_err.find("route 1"), std::string::npos) << port_err;
  EXPECT_NE(port_err.find("port 16"), std::string::npos) << port_err;

  const std::string dup = fib.build({rt(ip4(192, 0, 2, 0), 24, 0), rt(ip4(10, 0, 0, 0), 8, 1),
                                     rt(ip4(192, 0, 2, 0), 24, 2, ip4(10, 0, 0, 1))});
  EXPECT_NE(dup.find("routes 0 and 2"), std::string::npos) << dup;
  EXPECT_NE(dup.find("duplicate prefix 192.0.2.0/24"), std::string::npos) << dup;

  EXPECT_NE(fib.build({rt(ip4(10, 0, 0, 0), 33, 0)}).find("longer than 32"), std::string::npos);
  const std::string host = fib.build({rt(ip4(10, 1, 0, 0), 8, 0)});
  EXPECT_NE(host.find("10.1.0.0/8"), std::string::npos) << host;
  EXPECT_NE(host.find("host bits"), std::string::npos) << host;
  EXPECT_NE(fib.build({rt(1, 0, 0)}), "");

  // Same prefix with different lengths is not a duplicate.
  Fib nested;
  EXPECT_EQ(nested.build({rt(ip4(10, 0, 0, 0), 8, 1), rt(ip4(10, 0, 0, 0), 16, 2)}), "");

  // Every refusal left the first table in place.
  EXPECT_EQ(fib.size(), 1u);
  expect_hop(fib, ip4(10, 9, 9, 9), 1, ip4(10, 9, 9, 9));
  expect_none(fib, ip4(192, 0, 2, 1));
}

TEST(Fib, RebuildReplacesEverything) {
  Fib fib;
  ASSERT_EQ(fib.build({rt(ip4(10, 1, 2, 0), 24, 1), rt(ip4(10, 1, 2, 3), 32, 2)}), "");
  ASSERT_EQ(fib.build({rt(ip4(172, 16, 0, 0), 12, 3)}), "");
  expect_none(fib, ip4(10, 1, 2, 3));
  expect_hop(fib, ip4(172, 31, 255, 255), 3, ip4(172, 31, 255, 255));
  EXPECT_EQ(fib.groups(), 0u);
}

// Random routes clustered under a few parents so that they nest at many lengths, including
// /0 and /32; no two with the same prefix and length.
// min_len 0 allows a default route (rarely) and very short prefixes.
std::vector<Route> random_routes(std::mt19937& rng, size_t n, int min_len = 0) {
  std::vector<uint32_t> bases(48);
  for (auto& b : bases) b = rng();
  std::set<std::pair<uint32_t, uint8_t>> seen;
  std::vector<Route> out;
  std::uniform_int_distribution<int> len_d(0, 32);
  while (out.size() < n) {
    int len = len_d(rng);
    if (rng() % 3 == 0) len = 16 + static_cast<int>(rng() % 17);  // more deep ones
    if (len < min_len || (len == 0 && rng() % 8 != 0)) continue;  // the default only sometimes
    const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
    const uint32_t prefix =
        (bases[rng() % bases.size()] ^ (rng() & (rng() % 2 ? 0xff : 0xffff))) & mask;
    if (!seen.insert({prefix, static_cast<uint8_t>(len)}).second) continue;
    const uint32_t gw = rng() % 2 ? 0 : rng() | 1;
    out.push_back(
        rt(prefix, static_cast<uint8_t>(len), static_cast<uint16_t>(rng() % kMaxPorts), gw));
  }
  return out;
}

Fib::Hop brute_lookup(const std::vector<Route>& routes, uint32_t dst) {
  int best = -1;
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    const uint32_t mask = r.len == 0 ? 0 : ~uint32_t{0} << (32 - r.len);
    if ((dst & mask) == r.prefix && (best < 0 || r.len > routes[best].len))
      best = static_cast<int>(i);
  }
  if (best < 0) return Fib::Hop{0, 0, false};
  const Route& r = routes[best];
  return Fib::Hop{r.port, r.gateway != 0 ? r.gateway : dst, true};
}

std::vector<uint32_t> random_dsts(std::mt19937& rng, const std::vector<Route>& routes, size_t n) {
  std::vector<uint32_t> out(n);
  for (auto& d : out) {
    if (rng() % 3 == 0 || routes.empty()) {
      d = rng();
    } else {
      // Inside a route, or just outside it (one bit flipped right below the prefix).
      const Route& r = routes[rng() % routes.size()];
      const uint32_t host = r.len == 32 ? 0 : (rng() & (~uint32_t{0} >> r.len));
      d = r.prefix | host;
      if (r.len > 0 && rng() % 4 == 0) d ^= uint32_t{1} << (32 - r.len);
    }
  }
  return out;
}

TEST(Fib, MatchesBruteForceOnRandomTables) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 2; ++round) {
    // Round 0: no prefix shorter than /8, so many destinations have no route; round 1 adds
    // a default route.
    std::vector<Route> routes = random_routes(rng, 2000, /*min_len=*/8);
    if (round == 1) routes.back() = rt(0, 0, 9, ip4(192, 0, 2, 254));
    std::vector<Route> shuffled = routes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    Fib fib;
    ASSERT_EQ(fib.build(shuffled), "");
    ASSERT_EQ(fib.size(), 2000u);
    EXPECT_LE(fib.groups(), 2 * routes.size());

    const std::vector<uint32_t> dsts = random_dsts(rng, routes, 50'000);
    std::vector<Fib::Hop> bulk(dsts.size());
    fib.lookup_bulk(dsts.data(), bulk.data(), static_cast<uint32_t>(dsts.size()));
    size_t found = 0, mismatches = 0;
    for (size_t i = 0; i < dsts.size(); ++i) {
      const Fib::Hop want = brute_lookup(routes, dsts[i]);
      const Fib::Hop got = fib.lookup(dsts[i]);
      found += want.found;
      const bool same = got.found == want.found && got.port == want.port &&
                        got.next_hop == want.next_hop && bulk[i].found == want.found &&
                        bulk[i].port == want.port && bulk[i].next_hop == want.next_hop;
      if (!same && ++mismatches <= 5)
        ADD_FAILURE() << "dst " << std::hex << dsts[i] << ": want " << want.found << "/"
                      << want.port << "/" << want.next_hop << " got " << got.found << "/"
                      << got.port << "/" << got.next_hop;
    }
    EXPECT_EQ(mismatches, 0u);
    // The destinations exercise both outcomes.
    EXPECT_GT(found, dsts.size() / 2);
    if (round == 0) {
      EXPECT_LT(found, dsts.size());
    } else {
      EXPECT_EQ(found, dsts.size());  // the default route catches the rest
    }
  }
}

TEST(Fib, BulkLookupHandlesPartialChunks) {
  Fib fib;
  ASSERT_EQ(fib.build({rt(ip4(10, 0, 0, 0), 8, 1), rt(ip4(10, 1, 2, 3), 32, 2, ip4(1, 1, 1, 1))}),
            "");
  std::vector<uint32_t> d;
  for (uint32_t i = 0; i < 37; ++i) d.push_back(i % 3 == 0 ? ip4(10, 1, 2, 3) : ip4(11, 0, 0, i));
  std::vector<Fib::Hop> out(d.size() + 1, Fib::Hop{99, 99, true});
  fib.lookup_bulk(d.data(), out.data(), static_cast<uint32_t>(d.size()));
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_EQ(out[i].found, i % 3 == 0);
    if (i % 3 == 0) {
      EXPECT_EQ(out[i].next_hop, ip4(1, 1, 1, 1));
    }
  }
  EXPECT_EQ(out.back().port, 99);  // nothing written past n
  fib.lookup_bulk(d.data(), out.data(), 0);
}

// Thread CPU time: on a shared machine wall time mostly measures the other processes.
double cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// Not a gate (timings vary): prints the cost of a lookup for a small and a full table, with
// destinations inside the routes (every level used).
TEST(Fib, LookupSpeedReport) {
  std::mt19937 rng(7);
  for (const size_t n : {size_t{8}, size_t{Fib::kMaxRoutes}}) {
    const std::vector<Route> routes = random_routes(rng, n, 8);
    Fib fib;
    ASSERT_EQ(fib.build(routes), "");
    std::vector<uint32_t> dsts(1 << 18);
    for (auto& d : dsts) {
      const Route& r = routes[rng() % routes.size()];
      d = r.prefix | (r.len == 32 ? 0 : (rng() & (~uint32_t{0} >> r.len)));
    }
    uint64_t sink = 0;
    double single = 1e18, bulk = 1e18;
    std::vector<Fib::Hop> out(32);
    for (int rep = 0; rep < 3; ++rep) {
      const double t0 = cpu_ns();
      for (const uint32_t d : dsts) {
        const Fib::Hop h = fib.lookup(d);
        sink += h.next_hop + h.port;
      }
      const double t1 = cpu_ns();
      for (size_t i = 0; i < dsts.size(); i += 32) {
        fib.lookup_bulk(dsts.data() + i, out.data(), 32);
        for (const auto& h : out) sink += h.next_hop + h.port;
      }
      const double t2 = cpu_ns();
      single = std::min(single, (t1 - t0) / double(dsts.size()));
      bulk = std::min(bulk, (t2 - t1) / double(dsts.size()));
    }
    std::printf(
        "fib %4zu routes, %4zu groups: lookup %.1f ns, lookup_bulk(32) %.1f ns per dst "
        "(warm caches; sink %llu)\n",
        n, fib.groups(), single, bulk, static_cast<unsigned long long>(sink & 1));
  }
}

// ============================================================================================
// ICMP errors

// Golden frames, computed outside this code base (Python, RFC 1071 checksums).
// Time exceeded about a UDP datagram (36 bytes, TTL 1) padded to 60 bytes on the wire: the
// padding must not be quoted.
const Bytes kTeIn = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x45,
    0x00, 0x00, 0x24, 0x12, 0x34, 0x00, 0x00, 0x01, 0x11, 0x41, 0x51, 0xc6, 0x33, 0x64, 0x07,
    0xcb, 0x00, 0x71, 0x09, 0x30, 0x39, 0x00, 0x35, 0x00, 0x10, 0x00, 0x00, 0x61, 0x62, 0x63,
    0x64, 0x65, 0x66, 0x67, 0x68, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
const Bytes kTeOut = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0xc0,
    0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x8d, 0xc1, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33,
    0x64, 0x07, 0x0b, 0x00, 0x32, 0xec, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x24, 0x12, 0x34,
    0x00, 0x00, 0x01, 0x11, 0x41, 0x51, 0xc6, 0x33, 0x64, 0x07, 0xcb, 0x00, 0x71, 0x09, 0x30, 0x39,
    0x00, 0x35, 0x00, 0x10, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
};
// Fragmentation needed (MTU 1400) about a 50-byte TCP segment with DF and TOS 0x10.
const Bytes kFnIn = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x45, 0x10,
    0x00, 0x32, 0xab, 0xcd, 0x40, 0x00, 0x3f, 0x06, 0x29, 0xa4, 0xc6, 0x33, 0x64, 0x07, 0xcb, 0x00,
    0x71, 0x09, 0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x50, 0x18,
    0x02, 0x00, 0xbe, 0xef, 0x00, 0x00, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
};
const Bytes kFnOut = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0xc0,
    0x00, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x8d, 0xb3, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33,
    0x64, 0x07, 0x03, 0x04, 0x40, 0xdb, 0x00, 0x00, 0x05, 0x78, 0x45, 0x10, 0x00, 0x32, 0xab, 0xcd,
    0x40, 0x00, 0x3f, 0x06, 0x29, 0xa4, 0xc6, 0x33, 0x64, 0x07, 0xcb, 0x00, 0x71, 0x09, 0x9c, 0x40,
    0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x50, 0x18, 0x02, 0x00, 0xbe, 0xef,
    0x00, 0x00, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
};

// An offending frame: Ethernet + IPv4 (ihl_words * 4 bytes of header) + `payload` bytes whose
// first byte is `first` (the ICMP type when proto is ICMP), valid header checksum.
Bytes offending(uint32_t payload, uint8_t proto = kIpProtoUdp, uint8_t first = 0x30,
                uint32_t ihl_words = 5) {
  Bytes f(kEthHdrLen + ihl_words * 4 + payload);
  std::memcpy(f.data(), kOurMac.data(), 6);
  std::memcpy(f.data() + 6, kClientMac.data(), 6);
  wr16(f.data() + 12, kEtherTypeIpv4);
  uint8_t* ip = f.data() + kEthHdrLen;
  ip[0] = static_cast<uint8_t>(0x40 | ihl_words);
  wr16(ip + 2, static_cast<uint16_t>(ihl_words * 4 + payload));
  wr16(ip + 4, 0x4242);
  ip[8] = 1;
  ip[9] = proto;
  wr32(ip + 12, kSrcIp);
  wr32(ip + 16, kDstIp);
  for (uint32_t i = 20; i < ihl_words * 4; ++i) ip[i] = 0x01;  // NOP options
  for (uint32_t i = 0; i < payload; ++i)
    ip[ihl_words * 4 + i] = static_cast<uint8_t>(i == 0 ? first : i * 7 + 3);
  wr16(ip + 10, ref_csum(ip, ihl_words * 4));
  return f;
}

void refresh_ip_csum(Bytes& f, uint32_t ip_off = kEthHdrLen) {
  uint8_t* ip = f.data() + ip_off;
  wr16(ip + 10, 0);
  wr16(ip + 10, ref_csum(ip, (ip[0] & 0xf) * 4u));
}

uint32_t error_of(const Bytes& in, Bytes& out, uint8_t type = icmp::kTimeExceeded,
                  uint8_t code = icmp::kTtlExceeded, uint16_t mtu = 0,
                  uint32_t cap = icmp::kErrorMaxFrame + 10) {
  out.assign(cap, 0xee);
  const uint32_t n = build_icmp_error(out.data(), cap, in.data(), static_cast<uint32_t>(in.size()),
                                      kEthHdrLen, type, code, mtu, kPortIp, kOurMac);
  return n;
}

// Checks everything an ICMP error frame must satisfy, whatever the offending packet was.
void check_error_frame(const Bytes& out, uint32_t n, const uint8_t* orig_ip, uint32_t quote,
                       uint8_t type, uint8_t code, uint16_t mtu) {
  ASSERT_EQ(n, kEthHdrLen + 28 + quote);
  const uint8_t* f = out.data();
  EXPECT_TRUE(std::equal(kClientMac.begin(), kClientMac.end(), f));
  EXPECT_TRUE(std::equal(kOurMac.begin(), kOurMac.end(), f + 6));
  EXPECT_EQ(rd16(f + 12), kEtherTypeIpv4);
  const uint8_t* ip = f + kEthHdrLen;
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(ip[1], 0xc0);
  EXPECT_EQ(rd16(ip + 2), 28 + quote);
  EXPECT_LE(rd16(ip + 2), 576);
  EXPECT_EQ(rd16(ip + 4), 0);  // id
  EXPECT_EQ(rd16(ip + 6), 0);  // DF clear, not a fragment
  EXPECT_EQ(ip[8], 64);
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  EXPECT_EQ(ref_csum(ip, 20), 0) << "IP checksum";
  EXPECT_EQ(rd32(ip + 12), kPortIp);
  EXPECT_EQ(rd32(ip + 16), rd32(orig_ip + 12));
  const uint8_t* ic = ip + 20;
  EXPECT_EQ(ic[0], type);
  EXPECT_EQ(ic[1], code);
  EXPECT_EQ(ref_csum(ic, 8 + quote), 0) << "ICMP checksum";
  EXPECT_EQ(rd16(ic + 4), 0);
  EXPECT_EQ(rd16(ic + 6), mtu);
  EXPECT_TRUE(std::equal(orig_ip, orig_ip + quote, ic + 8)) << "quoted datagram";
}

TEST(IcmpError, TimeExceededGolden) {
  Bytes out;
  const uint32_t n = error_of(kTeIn, out);
  ASSERT_EQ(n, kTeOut.size());
  EXPECT_EQ(Bytes(out.begin(), out.begin() + n), kTeOut);
  EXPECT_EQ(out[n], 0xee);  // nothing written past the frame
  check_error_frame(out, n, kTeIn.data() + kEthHdrLen, 36, icmp::kTimeExceeded, 0, 0);
}

TEST(IcmpError, FragNeededGolden) {
  Bytes out;
  const uint32_t n = error_of(kFnIn, out, icmp::kDestUnreachable, icmp::kFragNeeded, 1400);
  ASSERT_EQ(n, kFnOut.size());
  EXPECT_EQ(Bytes(out.begin(), out.begin() + n), kFnOut);
  check_error_frame(out, n, kFnIn.data() + kEthHdrLen, 50, icmp::kDestUnreachable, 4, 1400);
  // The MTU field belongs to code 4 only: other unreachables leave bytes 4-7 zero.
  const uint32_t m = error_of(kFnIn, out, icmp::kDestUnreachable, icmp::kHostUnreachable, 1400);
  check_error_frame(out, m, kFnIn.data() + kEthHdrLen, 50, icmp::kDestUnreachable, 1, 0);
}

TEST(IcmpError, BigPacketIsQuotedUpTo576Bytes) {
  const Bytes in = offending(1480);  // a full 1500-byte datagram
  Bytes out;
  const uint32_t n = error_of(in, out, icmp::kDestUnreachable, icmp::kFragNeeded, 1280);
  check_error_frame(out, n, in.data() + kEthHdrLen, 548, icmp::kDestUnreachable, 4, 1280);
  EXPECT_EQ(n, 14u + 576u);
  EXPECT_EQ(out[n], 0xee);
  // Exactly 576 - 28 bytes of datagram is quoted whole; one more is cut.
  for (const uint32_t payload : {528u, 529u}) {
    const Bytes in2 = offending(payload);
    const uint32_t n2 = error_of(in2, out);
    check_error_frame(out, n2, in2.data() + kEthHdrLen, 548, icmp::kTimeExceeded, 0, 0);
  }
}

TEST(IcmpError, ShortPayloadOptionsAndTruncatedFrames) {
  Bytes out;
  // Fewer than 8 payload bytes: all of it.
  const Bytes tiny = offending(3);
  check_error_frame(out, error_of(tiny, out), tiny.data() + kEthHdrLen, 23, icmp::kTimeExceeded, 0,
                    0);
  // No payload at all.
  const Bytes bare = offending(0);
  check_error_frame(out, error_of(bare, out), bare.data() + kEthHdrLen, 20, icmp::kTimeExceeded, 0,
                    0);
  // Options: the whole 60-byte header is quoted, then 8+ data bytes.
  const Bytes opts = offending(100, kIpProtoTcp, 0x30, 15);
  check_error_frame(out, error_of(opts, out), opts.data() + kEthHdrLen, 160, icmp::kTimeExceeded, 0,
                    0);
  // A frame shorter than its total length: only the bytes present.
  Bytes cut = offending(200);
  cut.resize(kEthHdrLen + 20 + 30);
  check_error_frame(out, error_of(cut, out), cut.data() + kEthHdrLen, 50, icmp::kTimeExceeded, 0,
                    0);
}

TEST(IcmpError, CapacityLimitsTheQuote) {
  const Bytes in = offending(400);
  Bytes out;
  // Room for the headers, the offending header and 8 bytes, plus 2: quote 30.
  uint32_t n = error_of(in, out, icmp::kTimeExceeded, 0, 0, 42 + 30);
  check_error_frame(out, n, in.data() + kEthHdrLen, 30, icmp::kTimeExceeded, 0, 0);
  n = error_of(in, out, icmp::kTimeExceeded, 0, 0, 42 + 28);
  check_error_frame(out, n, in.data() + kEthHdrLen, 28, icmp::kTimeExceeded, 0, 0);
  // Not even the header and 8 bytes: nothing.
  EXPECT_EQ(error_of(in, out, icmp::kTimeExceeded, 0, 0, 42 + 27), 0u);
  EXPECT_EQ(error_of(in, out, icmp::kTimeExceeded, 0, 0, 0), 0u);
}

TEST(IcmpError, InPlaceMatchesSeparateBuffer) {
  for (const uint32_t payload : {8u, 100u, 1000u}) {
    const Bytes in = offending(payload, kIpProtoTcp);
    Bytes want;
    const uint32_t n = error_of(in, want);
    Bytes buf(in);
    buf.resize(2048, 0);
    const uint32_t m = build_icmp_error(buf.data(), static_cast<uint32_t>(buf.size()), buf.data(),
                                        static_cast<uint32_t>(in.size()), kEthHdrLen,
                                        icmp::kTimeExceeded, 0, 0, kPortIp, kOurMac);
    ASSERT_EQ(m, n);
    EXPECT_TRUE(std::equal(want.begin(), want.begin() + n, buf.begin())) << payload;
  }
}

TEST(IcmpError, VlanOffsetTakesMacsFromTheFrameStart) {
  Bytes in = offending(40);
  // Insert an 802.1Q tag: the IP header moves to offset 18, the MACs stay at 0 and 6.
  in.insert(in.begin() + 12, {0x81, 0x00, 0x00, 0x05});
  Bytes out(700, 0);
  const uint32_t n = build_icmp_error(out.data(), 700, in.data(), static_cast<uint32_t>(in.size()),
                                      18, icmp::kTimeExceeded, 0, 0, kPortIp, kOurMac);
  check_error_frame(out, n, in.data() + 18, 60, icmp::kTimeExceeded, 0, 0);
}

TEST(IcmpError, NeverAboutAnIcmpError) {
  Bytes out;
  for (const uint8_t t : {3, 4, 5, 11, 12}) {
    const Bytes in = offending(36, kIpProtoIcmp, t);
    EXPECT_EQ(error_of(in, out), 0u) << int(t);
  }
  // Queries are fine: echo request and reply, timestamp.
  for (const uint8_t t : {0, 8, 13, 14}) {
    const Bytes in = offending(36, kIpProtoIcmp, t);
    check_error_frame(out, error_of(in, out), in.data() + kEthHdrLen, 56, icmp::kTimeExceeded, 0,
                      0);
  }
  // ICMP that does not even show its type: silence.
  const Bytes empty = offending(0, kIpProtoIcmp);
  EXPECT_EQ(error_of(empty, out), 0u);
}

TEST(IcmpError, NeverAboutANonInitialFragment) {
  Bytes out;
  Bytes in = offending(64);
  wr16(in.data() + kEthHdrLen + 6, 0x2000);  // MF, offset 0: the first fragment is fine
  refresh_ip_csum(in);
  EXPECT_NE(error_of(in, out), 0u);
  for (const uint16_t frag : {0x0001, 0x2001, 0x4010, 0x1fff}) {
    wr16(in.data() + kEthHdrLen + 6, frag);
    refresh_ip_csum(in);
    EXPECT_EQ(error_of(in, out), 0u) << std::hex << frag;
  }
}

TEST(IcmpError, NeverAboutBroadcastOrMulticast) {
  Bytes out;
  {
    Bytes in = offending(16);
    std::fill_n(in.begin(), 6, 0xff);  // link-layer broadcast
    EXPECT_EQ(error_of(in, out), 0u);
    in[0] = 0x01, in[1] = 0x00, in[2] = 0x5e;  // link-layer multicast
    EXPECT_EQ(error_of(in, out), 0u);
  }
  {
    Bytes in = offending(16);
    in[6] = 0x01;  // a group source MAC cannot be answered
    EXPECT_EQ(error_of(in, out), 0u);
  }
  for (const uint32_t dst : {0xffffffffu, ip4(224, 0, 0, 5), ip4(239, 255, 255, 250)}) {
    Bytes in = offending(16);
    wr32(in.data() + kEthHdrLen + 16, dst);
    refresh_ip_csum(in);
    EXPECT_EQ(error_of(in, out), 0u) << std::hex << dst;
  }
  for (const uint32_t src : {0u, ip4(0, 1, 2, 3), ip4(127, 0, 0, 1), ip4(224, 0, 0, 1),
                             ip4(240, 0, 0, 1), 0xffffffffu}) {
    Bytes in = offending(16);
    wr32(in.data() + kEthHdrLen + 12, src);
    refresh_ip_csum(in);
    EXPECT_EQ(error_of(in, out), 0u) << std::hex << src;
  }
  // Neighbours of the refused ranges are answered.
  for (const uint32_t src :
       {ip4(1, 0, 0, 0), ip4(126, 255, 255, 255), ip4(128, 0, 0, 0), ip4(223, 255, 255, 255)}) {
    Bytes in = offending(16);
    wr32(in.data() + kEthHdrLen + 12, src);
    refresh_ip_csum(in);
    const uint32_t n = error_of(in, out);
    ASSERT_NE(n, 0u) << std::hex << src;
    EXPECT_EQ(rd32(out.data() + kEthHdrLen + 16), src);
  }
}

TEST(IcmpError, MalformedOffendersAreRefused) {
  Bytes out;
  Bytes in = offending(16);
  auto with = [&](size_t off, uint8_t v) {
    Bytes b = in;
    b[kEthHdrLen + off] = v;
    return b;
  };
  EXPECT_EQ(error_of(with(0, 0x65), out), 0u);  // IPv6 version
  EXPECT_EQ(error_of(with(0, 0x44), out), 0u);  // IHL 4
  EXPECT_EQ(error_of(with(0, 0x4f), out), 0u);  // IHL 15 but only 36 bytes there
  Bytes short_tot = in;
  wr16(short_tot.data() + kEthHdrLen + 2, 19);
  EXPECT_EQ(error_of(short_tot, out), 0u);  // total length below the header
  Bytes stub(in.begin(), in.begin() + kEthHdrLen + 19);
  EXPECT_EQ(error_of(stub, out), 0u);  // header not all there
  EXPECT_EQ(build_icmp_error(out.data(), 600, in.data(), static_cast<uint32_t>(in.size()), 10,
                             icmp::kTimeExceeded, 0, 0, kPortIp, kOurMac),
            0u);  // no room for an Ethernet header before the IP header
  EXPECT_EQ(build_icmp_error(out.data(), 600, in.data(), 10, kEthHdrLen, icmp::kTimeExceeded, 0, 0,
                             kPortIp, kOurMac),
            0u);  // ip_off beyond frame_len
}

// Random, mostly well-formed offenders of exact-size buffers (so ASan catches any read past
// frame_len): whenever an error is built, it must be a valid error about that packet.
TEST(IcmpError, FuzzNeverReadsPastTheFrameAndAlwaysBuildsValidErrors) {
  std::mt19937 rng(77);
  int built = 0;
  for (int i = 0; i < 20'000; ++i) {
    const uint32_t payload = rng() % 1600;
    Bytes in = offending(payload, static_cast<uint8_t>(rng() % 3 == 0 ? kIpProtoIcmp : rng()),
                         static_cast<uint8_t>(rng() % 16), 5 + rng() % 11);
    // Damage something now and then: length, flags, addresses, version, MACs.
    switch (rng() % 8) {
      case 0:
        wr16(in.data() + kEthHdrLen + 2, static_cast<uint16_t>(rng()));
        break;
      case 1:
        wr16(in.data() + kEthHdrLen + 6, static_cast<uint16_t>(rng()));
        break;
      case 2:
        wr32(in.data() + kEthHdrLen + 12, static_cast<uint32_t>(rng()));
        break;
      case 3:
        wr32(in.data() + kEthHdrLen + 16, static_cast<uint32_t>(rng()));
        break;
      case 4:
        in[kEthHdrLen] = static_cast<uint8_t>(rng());
        break;
      case 5:
        in[rng() % 12] = static_cast<uint8_t>(rng());
        break;
      default:
        break;
    }
    if (rng() % 4 == 0) in.resize(rng() % (in.size() + 1));
    const auto cap = static_cast<uint32_t>(rng() % 2 ? 600 : rng() % 700);
    Bytes out(cap);
    // A separate exact-size copy, so the read bound is the vector's end.
    const Bytes frame(in);
    const uint32_t n =
        build_icmp_error(out.data(), cap, frame.data(), static_cast<uint32_t>(frame.size()),
                         kEthHdrLen, icmp::kTimeExceeded, 0, 0, kPortIp, kOurMac);
    if (n == 0) continue;
    ++built;
    ASSERT_LE(n, cap);
    ASSERT_LE(n, 590u);
    const uint8_t* ip = out.data() + kEthHdrLen;
    ASSERT_EQ(ref_csum(ip, 20), 0);
    ASSERT_EQ(ref_csum(ip + 20, n - kEthHdrLen - 20), 0);
    const uint32_t quote = n - 42;
    ASSERT_LE(kEthHdrLen + quote, frame.size());
    ASSERT_TRUE(std::equal(ip + 28, ip + 28 + quote, frame.data() + kEthHdrLen));
    ASSERT_GE(quote, (frame[kEthHdrLen] & 0xfu) * 4u);
  }
  EXPECT_GT(built, 2000);
}

// ============================================================================================
// Rate limit

TEST(IcmpRateLimit, BurstThenSteadyRate) {
  IcmpRateLimit rl(1000, 50);  // 1 per ms, 50 at once
  uint64_t t = 5'000'000'000;
  int ok = 0;
  for (int i = 0; i < 200; ++i) ok += rl.allow(t);
  EXPECT_EQ(ok, 50);
  EXPECT_FALSE(rl.allow(t + 999'999));  // not yet one token
  EXPECT_TRUE(rl.allow(t + 1'000'000));
  EXPECT_FALSE(rl.allow(t + 1'000'000));
  // Ten simulated seconds of a flood, one attempt per 10 µs: exactly the rate gets through.
  t += 1'000'000;
  ok = 0;
  for (int i = 1; i <= 1'000'000; ++i) ok += rl.allow(t + uint64_t(i) * 10'000);
  EXPECT_EQ(ok, 10'000);
  // After a long silence the bucket holds the burst, not more.
  t += 10'000'000'000 + 3600'000'000'000ull;
  ok = 0;
  for (int i = 0; i < 100; ++i) ok += rl.allow(t);
  EXPECT_EQ(ok, 50);
}

TEST(IcmpRateLimit, RatesThatDoNotDivideTheClockDoNotDrift) {
  IcmpRateLimit rl(3, 5);  // one every 333.33 ms
  int ok = 0;
  for (uint64_t t = 0; t <= 30'000'000'000; t += 1'000'000) ok += rl.allow(t);
  EXPECT_EQ(ok, 5 + 90);  // the initial burst, then exactly 3 per second for 30 s
  // A full bucket earns nothing: with burst 1 a token taken 0.67 ms late starts the next
  // 333.33 ms from then, so attempts every ms get one per 334 ms.
  IcmpRateLimit one(3, 1);
  ok = 0;
  for (uint64_t t = 0; t <= 30'000'000'000; t += 1'000'000) ok += one.allow(t);
  EXPECT_EQ(ok, 1 + 30'000 / 334);
}

TEST(IcmpRateLimit, TscClockAndEdgeCases) {
  IcmpRateLimit tsc(100, 1, 2'500'000'000);  // a 2.5 GHz TSC: one per 25M cycles
  uint64_t t = 123;
  EXPECT_TRUE(tsc.allow(t));
  EXPECT_FALSE(tsc.allow(t + 24'999'999));
  EXPECT_TRUE(tsc.allow(t + 25'000'000));
  // The clock going backwards earns nothing and breaks nothing.
  EXPECT_FALSE(tsc.allow(t));
  EXPECT_TRUE(tsc.allow(t + 50'000'000));

  IcmpRateLimit off(0, 50);
  IcmpRateLimit no_burst(1000, 0);
  for (uint64_t x : {0ull, 1'000'000'000ull, 1'000'000'000'000ull}) {
    EXPECT_FALSE(off.allow(x));
    EXPECT_FALSE(no_burst.allow(x));
  }
  // Extreme parameters neither overflow nor stop working.
  IcmpRateLimit big(~0u, ~0u, ~0ull);
  EXPECT_TRUE(big.allow(0));
  EXPECT_TRUE(big.allow(~0ull));
}

// ============================================================================================
// TTL and incremental checksums

TEST(DecrementTtl, EqualsFullRecomputeOnRandomHeaders) {
  std::mt19937 rng(99);
  for (int i = 0; i < 100'000; ++i) {
    const uint32_t ihl = 5 + rng() % 11;
    uint8_t h[60];
    for (uint32_t k = 0; k < ihl * 4; ++k) h[k] = static_cast<uint8_t>(rng());
    h[0] = static_cast<uint8_t>(0x40 | ihl);
    if (i % 16 == 0) h[8] = 2;  // the smallest forwardable TTL
    if (h[8] <= 1) h[8] = static_cast<uint8_t>(2 + rng() % 254);
    wr16(h + 10, 0);
    wr16(h + 10, ref_csum(h, ihl * 4));
    uint8_t want[60];
    std::memcpy(want, h, sizeof want);
    want[8] = static_cast<uint8_t>(want[8] - 1);
    wr16(want + 10, 0);
    wr16(want + 10, ref_csum(want, ihl * 4));
    ASSERT_TRUE(decrement_ttl(h));
    ASSERT_EQ(0, std::memcmp(h, want, ihl * 4)) << "header " << i;
  }
}

TEST(DecrementTtl, RefusesTtlZeroAndOneAndKeepsCorruptionVisible) {
  for (const uint8_t ttl : {0, 1}) {
    Bytes f = offending(8);
    f[kEthHdrLen + 8] = ttl;
    refresh_ip_csum(f);
    const Bytes before = f;
    EXPECT_FALSE(decrement_ttl(f.data() + kEthHdrLen));
    EXPECT_EQ(f, before);
  }
  // A header with a bad checksum still fails verification afterwards, by the same amount.
  Bytes f = offending(8);
  f[kEthHdrLen + 8] = 64;
  refresh_ip_csum(f);
  f[kEthHdrLen + 11] ^= 0x5a;
  const uint16_t bad = ref_sum(f.data() + kEthHdrLen, 20);
  ASSERT_NE(bad, 0xffff);
  ASSERT_TRUE(decrement_ttl(f.data() + kEthHdrLen));
  EXPECT_EQ(f[kEthHdrLen + 8], 63);
  EXPECT_EQ(ref_sum(f.data() + kEthHdrLen, 20), bad);
}

// fold16 is a fixed sequence of adds: it must give what folding carries until none is left gives,
// for every 64-bit sum (0 stays 0, a nonzero multiple of 0xffff folds to 0xffff).
TEST(Fold16, MatchesFoldingUntilNoCarryIsLeft) {
  auto loop_fold = [](uint64_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint32_t>(s);
  };
  std::vector<uint64_t> v = {0,
                             1,
                             0xffff,
                             0x10000,
                             0x1fffe,
                             0x1ffff,
                             0xfffe0001,
                             0xffffffff,
                             0x100000000,
                             0x1fffffffe,
                             0x1ffffffff,
                             ~uint64_t{0},
                             ~uint64_t{0} - 1,
                             uint64_t{0xffff} << 48,
                             uint64_t{0xffff} * 0x10001};
  std::mt19937_64 rng(16);
  for (int i = 0; i < 200'000; ++i) {
    const uint64_t r = rng();
    v.push_back(r);
    v.push_back(r >> (rng() % 64));
    v.push_back((r % 0x10000) * 0xffff);  // multiples of 0xffff
  }
  for (const uint64_t s : v) ASSERT_EQ(fold16(s), loop_fold(s)) << std::hex << s;
}

// The 20-byte fast path says what the full sum says, for valid, corrupted and edge headers.
TEST(Ipv4HeaderOk, AgreesWithTheFullSum) {
  std::mt19937 rng(18);
  int valid = 0;
  for (int i = 0; i < 100'000; ++i) {
    uint8_t h[24];
    for (auto& b : h) b = static_cast<uint8_t>(i % 9 == 0 ? 0xff : i % 10 == 0 ? 0 : rng());
    const uint32_t ihl = i % 5 == 0 ? 24 : 20;
    if (i % 2 == 0) {  // a correct checksum, maybe then one bit flipped
      wr16(h + 10, 0);
      wr16(h + 10, ref_csum(h, ihl));
      if (i % 4 == 0) h[rng() % ihl] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    const bool want = ref_sum(h, ihl) == 0xffff;
    valid += want;
    ASSERT_EQ(ipv4_header_ok(h, ihl), want) << i;
  }
  EXPECT_GT(valid, 20'000);
}

// The whole-buffer sum against the textbook one, every length and alignment near a header's.
TEST(CsumPartial, MatchesTextbookSumForEveryLengthAndSeed) {
  std::mt19937 rng(17);
  std::vector<uint8_t> buf(80);
  for (int i = 0; i < 20'000; ++i) {
    for (auto& b : buf) b = static_cast<uint8_t>(i % 11 == 0 ? 0xff : i % 13 == 0 ? 0 : rng());
    const size_t off = rng() % 8, len = rng() % 72;
    const uint32_t seed = i % 3 == 0 ? 0 : rng() % 0x20000;
    ASSERT_EQ(csum_partial(buf.data() + off, len, seed), ref_sum(buf.data() + off, len, seed))
        << "len " << len << " seed " << seed;
  }
}

TEST(CsumReplace, SingleFieldsAgainstFullRecompute) {
  std::mt19937 rng(5);
  for (int i = 0; i < 100'000; ++i) {
    uint8_t buf[40];
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    if (i % 7 == 0) std::memset(buf, 0, 20);  // sums near zero, to hit the edge cases
    buf[0] |= 0x40;                           // never an all-zero buffer (as in IP/TCP/UDP)
    wr16(buf + 10, 0);
    const uint16_t c0 = ref_csum(buf, sizeof buf);
    wr16(buf + 10, c0);
    const size_t off4 = 12 + 4 * (rng() % 5);  // a 32-bit field
    const uint32_t o4 = rd32(buf + off4);
    const uint32_t n4 = i % 5 == 0 ? ~o4 : static_cast<uint32_t>(rng());
    wr32(buf + off4, n4);
    wr16(buf + 10, 0);
    const uint16_t c1 = ref_csum(buf, sizeof buf);
    ASSERT_EQ(csum_replace4(c0, o4, n4), c1) << i;
    // The same with raw memory values (network byte order in a native integer).
    uint32_t ro4, rn4;
    uint8_t tmp[4];
    wr32(tmp, o4);
    std::memcpy(&ro4, tmp, 4);
    wr32(tmp, n4);
    std::memcpy(&rn4, tmp, 4);
    uint16_t rc0;
    wr16(tmp, c0);
    std::memcpy(&rc0, tmp, 2);
    const uint16_t rc1 = csum_replace4(rc0, ro4, rn4);
    std::memcpy(tmp, &rc1, 2);
    ASSERT_EQ(rd16(tmp), c1) << i;

    const size_t off2 = 30 + 2 * (rng() % 5);
    const uint16_t o2 = rd16(buf + off2);
    const auto n2 = static_cast<uint16_t>(rng());
    wr16(buf + off2, n2);
    const uint16_t c2 = ref_csum(buf, sizeof buf);
    ASSERT_EQ(csum_replace2(c1, o2, n2), c2) << i;
  }
}

// A TCP or UDP packet as a NAT sees it, with both checksums from the reference.
struct L4Packet {
  uint8_t b[20 + 8 + 64];
  uint8_t proto;
  uint32_t len;  // IP total length
  uint8_t* ip() { return b; }
  uint8_t* l4() { return b + 20; }
  uint32_t l4_len() const { return len - 20; }
  uint32_t csum_off() const { return proto == kIpProtoTcp ? 16 : 6; }
  void finish(bool udp_zero = false) {
    wr16(b + 10, 0);
    wr16(b + 10, ref_csum(b, 20));
    wr16(l4() + csum_off(), 0);
    if (udp_zero) return;
    uint16_t c = ref_csum(l4(), l4_len(), ref_pseudo(rd32(b + 12), rd32(b + 16), proto, l4_len()));
    if (proto == kIpProtoUdp && c == 0) c = 0xffff;
    wr16(l4() + csum_off(), c);
  }
};

L4Packet random_l4(std::mt19937& rng, uint8_t proto) {
  L4Packet p;
  for (auto& x : p.b) x = static_cast<uint8_t>(rng());
  p.proto = proto;
  const uint32_t l4_min = proto == kIpProtoTcp ? 20 : 8;
  p.len = 20 + l4_min + rng() % (sizeof p.b - 20 - l4_min + 1);
  p.b[0] = 0x45;
  wr16(p.b + 2, static_cast<uint16_t>(p.len));
  p.b[9] = proto;
  if (proto == kIpProtoUdp) wr16(p.l4() + 4, static_cast<uint16_t>(p.l4_len()));
  if (proto == kIpProtoTcp) p.l4()[12] = 0x50;
  p.finish();
  return p;
}

// Source NAT of (address, port) by incremental updates, as the LB does.
void snat(L4Packet& p, uint32_t new_ip, uint16_t new_port) {
  const uint32_t old_ip = rd32(p.b + 12);
  const uint16_t old_port = rd16(p.l4());
  wr32(p.b + 12, new_ip);
  wr16(p.b + 10, csum_replace4(rd16(p.b + 10), old_ip, new_ip));
  wr16(p.l4(), new_port);
  uint8_t* c = p.l4() + p.csum_off();
  if (p.proto == kIpProtoTcp) {
    wr16(c, csum_replace2(csum_replace4(rd16(c), old_ip, new_ip), old_port, new_port));
  } else {
    wr16(c, udp_csum_replace2(udp_csum_replace4(rd16(c), old_ip, new_ip), old_port, new_port));
  }
}

TEST(CsumReplace, NatRewritesOfRandomTcpAndUdpPackets) {
  std::mt19937 rng(11);
  for (int i = 0; i < 50'000; ++i) {
    const uint8_t proto = i % 2 ? kIpProtoTcp : kIpProtoUdp;
    L4Packet p = random_l4(rng, proto);
    const auto new_ip = static_cast<uint32_t>(rng());
    const auto new_port = static_cast<uint16_t>(rng());
    L4Packet want = p;
    wr32(want.b + 12, new_ip);
    wr16(want.l4(), new_port);
    want.finish();
    snat(p, new_ip, new_port);
    ASSERT_EQ(0, std::memcmp(p.b, want.b, p.len)) << "packet " << i;
  }
}

TEST(CsumReplace, UdpZeroChecksumRules) {
  std::mt19937 rng(12);
  // 0 means "no checksum": it stays 0 through any rewrite.
  for (int i = 0; i < 1000; ++i) {
    L4Packet p = random_l4(rng, kIpProtoUdp);
    p.finish(/*udp_zero=*/true);
    snat(p, static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng()));
    ASSERT_EQ(rd16(p.l4() + 6), 0);
    EXPECT_EQ(ref_csum(p.b, 20), 0);
  }
  // A rewrite whose true checksum is 0 must send 0xffff. Build the packet as it will be after
  // NAT, tune one payload word so its checksum computes to 0, then rewind to the original.
  int hit = 0;
  for (int i = 0; i < 200; ++i) {
    L4Packet after = random_l4(rng, kIpProtoUdp);
    if (after.l4_len() < 10) continue;
    uint8_t* w = after.l4() + 8;  // first payload word
    wr16(w, 0);
    wr16(after.l4() + 6, 0);
    const uint16_t s =
        ref_sum(after.l4(), after.l4_len(),
                ref_pseudo(rd32(after.b + 12), rd32(after.b + 16), kIpProtoUdp, after.l4_len()));
    wr16(w, static_cast<uint16_t>(~s));  // the sum becomes 0xffff: the checksum computes to 0
    after.finish();
    ASSERT_EQ(rd16(after.l4() + 6), 0xffff);
    L4Packet before = after;
    const auto orig_ip = static_cast<uint32_t>(rng());
    const auto orig_port = static_cast<uint16_t>(rng());
    wr32(before.b + 12, orig_ip);
    wr16(before.l4(), orig_port);
    before.finish();
    if (rd16(before.l4() + 6) == 0xffff) continue;
    snat(before, rd32(after.b + 12), rd16(after.l4()));
    ASSERT_EQ(0, std::memcmp(before.b, after.b, after.len)) << i;
    ++hit;
  }
  EXPECT_GT(hit, 100);
  EXPECT_EQ(udp_csum_replace2(0x1234, 0x0102, 0x0102), 0x1234);
}

// ============================================================================================
// NeighborCache

Mac mac_of_byte(uint8_t b) {
  return Mac{b, b, b, b, b, b};
}

TEST(NeighborCache, SetLookupOverwriteErase) {
  NeighborCache nc(1024);
  EXPECT_EQ(nc.capacity(), 1024u);
  Mac m{};
  const uint32_t a = ip4(192, 0, 2, 10);
  EXPECT_FALSE(nc.lookup(0, a, &m));
  const Mac m1{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  const Mac m2{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
  ASSERT_TRUE(nc.set(0, a, m1));
  EXPECT_EQ(nc.size(), 1u);
  ASSERT_TRUE(nc.lookup(0, a, &m));
  EXPECT_EQ(m, m1);
  // Same address on another port is another neighbour.
  EXPECT_FALSE(nc.lookup(1, a, &m));
  ASSERT_TRUE(nc.set(1, a, m2));
  ASSERT_TRUE(nc.lookup(1, a, &m));
  EXPECT_EQ(m, m2);
  ASSERT_TRUE(nc.lookup(0, a, &m));
  EXPECT_EQ(m, m1);
  // Overwrite keeps one entry.
  ASSERT_TRUE(nc.set(0, a, m2));
  EXPECT_EQ(nc.size(), 2u);
  ASSERT_TRUE(nc.lookup(0, a, &m));
  EXPECT_EQ(m, m2);
  // Erase.
  EXPECT_TRUE(nc.erase(0, a));
  EXPECT_FALSE(nc.erase(0, a));
  EXPECT_FALSE(nc.lookup(0, a, &m));
  EXPECT_TRUE(nc.lookup(1, a, &m));
  EXPECT_EQ(nc.size(), 1u);
  // Address 0 is never a neighbour.
  EXPECT_FALSE(nc.set(0, 0, m1));
  EXPECT_FALSE(nc.lookup(0, 0, &m));
  EXPECT_FALSE(nc.erase(0, 0));
  // Port 0xffff and the all-ones MAC survive packing.
  ASSERT_TRUE(nc.set(0xffff, 0xffffffffu, kBroadcastMac));
  ASSERT_TRUE(nc.lookup(0xffff, 0xffffffffu, &m));
  EXPECT_EQ(m, kBroadcastMac);
  nc.clear();
  EXPECT_EQ(nc.size(), 0u);
  EXPECT_FALSE(nc.lookup(1, a, &m));
  EXPECT_FALSE(nc.lookup(0xffff, 0xffffffffu, &m));
}

TEST(NeighborCache, CapacityIsRoundedToAPowerOfTwo) {
  EXPECT_EQ(NeighborCache(0).capacity(), NeighborCache::kMinCapacity);
  EXPECT_EQ(NeighborCache(17).capacity(), 32u);
  EXPECT_EQ(NeighborCache(1000).capacity(), 1024u);
  EXPECT_EQ(NeighborCache(4096).capacity(), 4096u);
}

TEST(NeighborCache, FullTableRefusesThenAcceptsAfterErase) {
  // Two buckets: every key may use both, so all 16 slots fill before the first refusal.
  NeighborCache nc(16);
  Mac m{};
  for (uint32_t i = 1; i <= 16; ++i) ASSERT_TRUE(nc.set(0, i, mac_of_byte(uint8_t(i)))) << i;
  EXPECT_EQ(nc.size(), 16u);
  EXPECT_FALSE(nc.set(0, 17, mac_of_byte(17)));
  EXPECT_FALSE(nc.lookup(0, 17, &m));
  // Updating an existing entry still works when full.
  ASSERT_TRUE(nc.set(0, 5, mac_of_byte(0x55)));
  ASSERT_TRUE(nc.lookup(0, 5, &m));
  EXPECT_EQ(m, mac_of_byte(0x55));
  ASSERT_TRUE(nc.erase(0, 9));
  ASSERT_TRUE(nc.set(0, 17, mac_of_byte(17)));
  for (uint32_t i = 1; i <= 17; ++i) {
    if (i == 9) continue;
    ASSERT_TRUE(nc.lookup(0, i, &m)) << i;
    EXPECT_EQ(m, mac_of_byte(i == 5 ? 0x55 : uint8_t(i)));
  }
  EXPECT_FALSE(nc.lookup(0, 9, &m));
}

// How full a table gets before it refuses, with random addresses and a random seed per round.
TEST(NeighborCache, LoadBeforeRefusal) {
  std::mt19937_64 rng(3);
  constexpr uint32_t kCap = 1 << 16;
  for (int round = 0; round < 3; ++round) {
    NeighborCache nc(kCap, rng());
    std::vector<std::pair<uint16_t, uint32_t>> keys;
    std::set<uint64_t> seen;
    uint32_t refused_at_half = 0, refused_at_75 = 0, refused_at_90 = 0, first_refusal = 0;
    while (keys.size() < kCap * 9 / 10) {
      const auto port = static_cast<uint16_t>(rng() % 4);
      const auto ip = static_cast<uint32_t>(ip4(10, 0, 0, 0) | (rng() & 0xffffff));
      if (ip == 0 || !seen.insert((uint64_t{port} << 32) | ip).second) continue;
      keys.push_back({port, ip});
      if (!nc.set(port, ip, mac_of_byte(uint8_t(ip)))) {
        if (first_refusal == 0) first_refusal = static_cast<uint32_t>(keys.size());
        const size_t load = keys.size();
        (load <= kCap / 2       ? refused_at_half
         : load <= kCap * 3 / 4 ? refused_at_75
                                : refused_at_90)++;
        keys.pop_back();
      }
    }
    EXPECT_EQ(refused_at_half, 0u);
    EXPECT_LT(refused_at_75, kCap / 1000);
    std::printf(
        "neighbor cache %u slots: first refusal at %.1f%% load; refused: %u up to 75%%, "
        "%u more up to 90%%\n",
        kCap, first_refusal ? 100.0 * first_refusal / kCap : 90.0, refused_at_75, refused_at_90);
    Mac m{};
    for (const auto& [port, ip] : keys) {
      ASSERT_TRUE(nc.lookup(port, ip, &m));
      ASSERT_EQ(m, mac_of_byte(uint8_t(ip)));
    }
    EXPECT_EQ(nc.size(), keys.size());
  }
}

// One writer churning keys (set, change, erase) through a table too small for all of them, so
// slots keep passing from one key to another; readers check every MAC they get. MACs have six
// equal bytes, and the byte names the key (byte % 24): a torn read or another key's MAC shows.
TEST(NeighborCache, ConcurrentReadersNeverSeeTornOrForeignMacs) {
  constexpr uint32_t kKeys = 24;
  NeighborCache nc(16);
  auto key_port = [](uint32_t k) { return static_cast<uint16_t>(k & 1); };
  auto key_ip = [](uint32_t k) { return ip4(10, 0, 0, 1) + k; };
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> hits{0}, misses{0}, bad{0};

  auto reader = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    uint64_t h = 0, m = 0, b = 0;
    Mac mac{};
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 256; ++i) {
        const uint32_t k = rng() % kKeys;
        if (!nc.lookup(key_port(k), key_ip(k), &mac)) {
          ++m;
          continue;
        }
        ++h;
        const bool same =
            std::all_of(mac.begin(), mac.end(), [&](uint8_t x) { return x == mac[0]; });
        if (!same || mac[0] % kKeys != k) ++b;
      }
    }
    hits += h;
    misses += m;
    bad += b;
  };

  std::thread r1(reader, 1), r2(reader, 2);
  std::mt19937 rng(42);
  uint64_t writes = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 1024; ++i) {
      const uint32_t k = rng() % kKeys;
      if (rng() % 4 == 0) {
        nc.erase(key_port(k), key_ip(k));
      } else {
        const auto gen = static_cast<uint8_t>(rng() % 10);
        nc.set(key_port(k), key_ip(k), mac_of_byte(static_cast<uint8_t>(gen * kKeys + k)));
      }
      ++writes;
    }
  }
  stop = true;
  r1.join();
  r2.join();
  std::printf("neighbor cache race: %llu writes, %llu hits, %llu misses, %llu bad\n",
              static_cast<unsigned long long>(writes), static_cast<unsigned long long>(hits.load()),
              static_cast<unsigned long long>(misses.load()),
              static_cast<unsigned long long>(bad.load()));
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 1000u);
  EXPECT_GT(writes, 10'000u);
}

}  // namespace
}  // namespace dp
