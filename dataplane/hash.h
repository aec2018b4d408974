#pragma once
// Fixed, portable hash mixing shared by the tables that need it (the workers' neighbour cache,
// the DHCP lease index, Maglev). Header-only and constexpr: no std::hash, no per-process state, so
// a value computed on one node or in one process is the same everywhere (Maglev depends on it).

#include <cstdint>

namespace dp {

// The 64-bit finaliser of SplitMix64: a bijection with full avalanche (every input bit reaches
// every output bit). Its constants are fixed forever: Maglev tables on both nodes depend on them.
constexpr uint64_t splitmix64_mix(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace dp
