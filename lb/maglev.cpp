#include "lb/maglev.h"

#include <algorithm>
#include <numeric>

namespace lb {

namespace {

bool is_prime(uint32_t n) noexcept {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; uint64_t{d} * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// The key both permutation hashes see: address and port, so two ports of one host (two real
// servers) get unrelated preference lists.
constexpr uint64_t backend_key(uint32_t ip, uint16_t port) noexcept {
  return (uint64_t{ip} << 16) | port;
}

}  // namespace

MaglevPermutation maglev_permutation(uint32_t ip, uint16_t port, uint32_t size) noexcept {
  const uint64_t key = backend_key(ip, port);
  MaglevPermutation p;
  if (size < 2) return p;
  p.offset = static_cast<uint32_t>(maglev_mix(key ^ kMaglevSeedOffset) % size);
  p.skip = static_cast<uint32_t>(maglev_mix(key ^ kMaglevSeedSkip) % (size - 1) + 1);
  return p;
}

uint32_t maglev_table_size(uint32_t n) noexcept {
  n = std::clamp<uint32_t>(n, 2, kMaglevMaxSize);
  while (!is_prime(n)) ++n;
  return n;
}

void maglev_build(std::span<const MaglevBackend> backends, uint32_t size,
                  std::vector<uint16_t>& table) {
  const uint32_t m = maglev_table_size(size);
  table.assign(m, kNoDest);

  struct Entry {
    uint32_t index;  // in `backends`
    uint32_t pos;    // the next slot of its preference list to try
    uint32_t skip;
    uint32_t turns;  // slots claimed per round
  };
  std::vector<Entry> entries;
  entries.reserve(backends.size());
  const size_t limit = std::min<size_t>(backends.size(), kNoDest);
  uint32_t gcd = 0;
  for (size_t i = 0; i < limit; ++i) {
    const MaglevBackend& b = backends[i];
    if (b.weight == 0) continue;
    const MaglevPermutation p = maglev_permutation(b.ip, b.port, m);
    entries.push_back({static_cast<uint32_t>(i), p.offset, p.skip, b.weight});
    gcd = std::gcd(gcd, b.weight);
  }
  if (entries.empty()) return;

  // Placement order decides who wins a contested slot: make it a function of the backends
  // themselves, never of the order the configuration happened to list them in.
  std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    const MaglevBackend& x = backends[a.index];
    const MaglevBackend& y = backends[b.index];
    if (x.ip != y.ip) return x.ip < y.ip;
    if (x.port != y.port) return x.port < y.port;
    return a.index < b.index;
  });

  // Turns: weight / gcd, halved (rounding down, never below 1) until one round fits the budget.
  const uint64_t budget = std::max<uint64_t>(m / kMaglevMinRounds, 1);
  uint32_t shift = 0;
  for (; shift < 32; ++shift) {
    uint64_t round = 0;
    bool all_one = true;
    for (const Entry& e : entries) {
      const uint32_t t = std::max<uint32_t>((e.turns / gcd) >> shift, 1);
      round += t;
      all_one = all_one && t == 1;
    }
    if (round <= budget || all_one) break;
  }
  for (Entry& e : entries) e.turns = std::max<uint32_t>((e.turns / gcd) >> shift, 1);

  // Every preference list covers every slot (m prime, 0 < skip < m), so each inner probe loop
  // ends, and the table is full after exactly m placements.
  uint32_t filled = 0;
  for (;;) {
    for (Entry& e : entries) {
      for (uint32_t t = 0; t < e.turns; ++t) {
        while (table[e.pos] != kNoDest) {
          e.pos += e.skip;
          if (e.pos >= m) e.pos -= m;
        }
        table[e.pos] = static_cast<uint16_t>(e.index);
        e.pos += e.skip;
        if (e.pos >= m) e.pos -= m;
        if (++filled == m) return;
      }
    }
  }
}

}  // namespace lb
