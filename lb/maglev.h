#pragma once
// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, §3.4), weighted the way Linux IPVS "mh" does it: in every round of the
// population loop a backend claims `turns` slots (its weight divided by the weights' gcd) instead
// of one. Pure logic; the control thread builds tables, workers only index them.
//
// Determinism: every hash here is a fixed function of its input (no std::hash, no seed chosen at
// run time), and backends are placed in (ip, port) order whatever order the caller lists them in,
// so the same set of backends gives the same table -- byte for byte once indices are mapped back
// to backends -- on every node, in every process and in every release. Changing a constant below
// changes every table in a cluster: the golden digest in tests/unit/lb_sched_test.cpp guards it.
//
// Deliberate differences from IPVS mh (the behaviour an operator observes is the same: a client
// address sticks to a backend, a backend leaving moves about 1/N of the clients):
// - hashes: a 64-bit mixer (below) instead of the kernel's hsiphash with fixed keys;
// - table size: a prime >= 65537 by default (IPVS: a prime picked at kernel build, 4093 unless
//   CONFIG_IP_VS_MH_TAB_INDEX says otherwise);
// - weight cap: IPVS shifts weight/gcd right until the largest fits in log2(size)/2 bits, which
//   flattens 1:1000 to 1:250 and still lets a few hundred heavy backends exhaust the table before
//   the last ones get a slot. We shift only while one round (the sum of turns) would be longer
//   than size / kMaglevMinRounds, so configured ratios survive whenever the table can hold them
//   and every backend gets at least one slot per round while N <= size.

#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/hash.h"

namespace lb {

inline constexpr uint32_t kMaglevDefaultSize = 65537;  // prime
inline constexpr uint32_t kMaglevMaxSize = 1u << 22;   // requests above this are clamped
// A round of the population loop takes at most size / kMaglevMinRounds slots (see above): the
// last, partial round then skews any backend's share by at most ~1/16 of it, and by far less in
// practice (one turn per backend: 1 slot in M/N).
inline constexpr uint32_t kMaglevMinRounds = 16;
// "No backend" in a lookup table (Maglev and sh): a table built from zero usable backends.
inline constexpr uint16_t kNoDest = 0xffff;

// One candidate backend for a Maglev table. weight 0 keeps it out of the table.
struct MaglevBackend {
  uint32_t ip = 0;
  uint16_t port = 0;
  uint32_t weight = 1;
};

// The 64-bit finaliser of SplitMix64 (a bijection with full avalanche). Fixed forever: see above.
constexpr uint64_t maglev_mix(uint64_t x) noexcept {
  return dp::splitmix64_mix(x);
}

// Seeds of the three independent hashes (arbitrary, fixed).
inline constexpr uint64_t kMaglevSeedOffset = 0x6d61676c65762d6full;  // "maglev-o"
inline constexpr uint64_t kMaglevSeedSkip = 0x6d61676c65762d73ull;    // "maglev-s"
inline constexpr uint64_t kMaglevSeedClient = 0x6d61676c65762d63ull;  // "maglev-c"

// Worker, per new connection: the slot of `client_ip` in a table of `size` slots (size > 0).
// `attempt` > 0 gives further independent slots (fallback past a stale entry). A multiply and a
// few shifts; no division (Lemire's multiply-high range reduction).
constexpr uint32_t maglev_slot(uint32_t client_ip, uint32_t size, uint32_t attempt = 0) noexcept {
  const uint64_t h = maglev_mix(((uint64_t{attempt} << 32) | client_ip) ^ kMaglevSeedClient);
  return static_cast<uint32_t>(((h >> 32) * size) >> 32);
}

// A backend's preference list is offset, offset + skip, offset + 2 skip, ... (mod size): with a
// prime size and 0 < skip < size it visits every slot once.
struct MaglevPermutation {
  uint32_t offset = 0;  // [0, size)
  uint32_t skip = 1;    // [1, size)
};
// Any thread: the permutation of backend ip:port in a table of `size` (prime, >= 2) slots. O(1).
MaglevPermutation maglev_permutation(uint32_t ip, uint16_t port, uint32_t size) noexcept;

// Control thread: the smallest prime >= n, n clamped to [2, kMaglevMaxSize]. O(sqrt(n)) per
// candidate; microseconds for the default.
uint32_t maglev_table_size(uint32_t n) noexcept;

// Control thread: fills `table` with maglev_table_size(size) entries, each the index in
// `backends` of the backend owning that slot, or kNoDest everywhere when no backend has a
// weight. Backends at index >= kNoDest are ignored. Allocates; expected O(M log M) probes for M
// slots (about 1 ms for 65537 slots).
void maglev_build(std::span<const MaglevBackend> backends, uint32_t size,
                  std::vector<uint16_t>& table);

}  // namespace lb
