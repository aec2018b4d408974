// Benchmark: the lease store alone (no packets), at the size one worker is built for: 2^20
// addresses (a /12) and 1M distinct clients. Prints one JSON object per mode.
//
// Modes (one process, side by side, so ratios are meaningful on a noisy machine):
//   dora   every client once, in random order: offer() (DISCOVER) then commit() (REQUEST) into
//          an empty pool; the fake clock moves 1 us per operation.
//   mixed  random clients, half DISCOVER (offer, usually rule 1), half REQUEST (commit of the
//          address it was last offered: renewals, and re-binding after a lease ended); 60 s
//          leases and 30 us of fake time per operation, so leases end and addresses churn.
// In both, expire() runs every 1024 operations with a 4096-event sink, as a worker loop would,
// and its cost is included. Memory: heap bytes the store holds (mallinfo2), per address.
//
// usage: dhcp_leases_bench [--clients N] [--mixed-ops N]

#include <malloc.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "dhcp/leases.h"

namespace {

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint32_t kPool = 1;
constexpr uint32_t kFirst = 10u << 24;  // 10.0.0.0/12
constexpr uint32_t kAddresses = 1u << 20;
constexpr uint32_t kExpireEvery = 1024;

// Built from the index in registers, so the harness adds no cache misses of its own.
std::array<uint8_t, 6> mac_of(uint32_t i) {
  std::array<uint8_t, 6> m{0x02, 0x00};
  for (int b = 0; b < 4; ++b) m[2 + b] = static_cast<uint8_t>(i >> (24 - 8 * b));
  return m;
}

size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small blocks + mmapped large blocks (our tables)
}

struct Result {
  uint64_t ops = 0, offers = 0, commits = 0, failed = 0, expired = 0;
  double seconds = 0;
};

void print(const char* mode, const Result& r, uint32_t clients, double bytes_per_address) {
  std::printf(
      "{\"bench\": \"dhcp_leases\", \"mode\": \"%s\", \"addresses\": %u, \"clients\": %u, "
      "\"ops\": %llu, \"offers\": %llu, \"commits\": %llu, \"failed\": %llu, "
      "\"expired\": %llu, \"ops_per_sec\": %.0f, \"ns_per_op\": %.1f, "
      "\"bytes_per_address\": %.1f}\n",
      mode, kAddresses, clients, static_cast<unsigned long long>(r.ops),
      static_cast<unsigned long long>(r.offers), static_cast<unsigned long long>(r.commits),
      static_cast<unsigned long long>(r.failed), static_cast<unsigned long long>(r.expired),
      static_cast<double>(r.ops) / r.seconds, r.seconds * 1e9 / static_cast<double>(r.ops),
      bytes_per_address);
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t clients = 1'000'000;
  uint64_t mixed_ops = 4'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char* v = argv[i + 1];
    if (std::strcmp(argv[i], "--clients") == 0) clients = static_cast<uint32_t>(std::atol(v));
    if (std::strcmp(argv[i], "--mixed-ops") == 0) mixed_ops = std::strtoull(v, nullptr, 10);
  }
  if (clients == 0 || clients > kAddresses) {
    std::fprintf(stderr, "usage: dhcp_leases_bench [--clients 1..%u] [--mixed-ops N]\n",
                 kAddresses);
    return 2;
  }

  const size_t heap_before = heap_in_use();
  dhcp::LeaseStore::Params p;
  p.max_addresses = kAddresses;
  auto store = std::make_unique<dhcp::LeaseStore>(p);
  if (!store->add_range(kPool, kFirst, kFirst + kAddresses - 1)) {
    std::fprintf(stderr, "add_range failed\n");
    return 1;
  }
  const double bytes_per_address =
      static_cast<double>(heap_in_use() - heap_before) / static_cast<double>(kAddresses);

  std::vector<uint32_t> order(clients);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(7);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<uint32_t> ip_of(clients, 0);  // what each client was last offered
  std::vector<dhcp::LeaseEvent> events;
  events.reserve(4096);
  uint64_t now = 1000 * kSec;

  auto tick = [&](Result& r) {
    if (r.ops % kExpireEvery != 0) return;
    events.clear();
    store->expire(now, &events);
    r.expired += events.size();
  };

  // dora
  {
    Result r;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint32_t c : order) {
      const dhcp::ClientKey key = dhcp::ClientKey::from_mac(mac_of(c));
      const auto ip = store->offer(kPool, key, mac_of(c), 0, now);
      ++r.offers;
      ++r.ops;
      now += kUs;
      tick(r);
      if (!ip) {
        ++r.failed;
        continue;
      }
      ip_of[c] = *ip;
      r.failed += store->commit(kPool, key, mac_of(c), *ip, 3600 * kSec, now) !=
                  dhcp::LeaseStore::Commit::kOk;
      ++r.commits;
      ++r.ops;
      now += kUs;
      tick(r);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print("dora", r, clients, bytes_per_address);
  }

  // mixed
  {
    Result r;
    std::vector<uint32_t> picks(mixed_ops);
    for (auto& x : picks) x = static_cast<uint32_t>(rng() % clients);
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < mixed_ops; ++i) {
      const uint32_t c = picks[i];
      const dhcp::ClientKey key = dhcp::ClientKey::from_mac(mac_of(c));
      if (i & 1) {
        r.failed += store->commit(kPool, key, mac_of(c), ip_of[c], 60 * kSec, now) !=
                    dhcp::LeaseStore::Commit::kOk;
        ++r.commits;
      } else {
        const auto ip = store->offer(kPool, key, mac_of(c), ip_of[c], now);
        if (ip) {
          ip_of[c] = *ip;
        } else {
          ++r.failed;
        }
        ++r.offers;
      }
      ++r.ops;
      now += 30 * kUs;
      tick(r);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print("mixed", r, clients, bytes_per_address);
  }
  return 0;
}
