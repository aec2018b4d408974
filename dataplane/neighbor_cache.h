#pragma once
// The workers' read-only view of resolved next hops: (port, IPv4) -> MAC.
//
// The control thread owns the real ARP table (NeighborTable, neighbor.h) and mirrors every
// change into this cache — set() when an entry resolves or its MAC changes, erase() when it is
// removed or stops being usable. Workers look up per packet with no locks and no stores.
// Unlike a Snapshot this object is updated in place and lives as long as the workers.
//
// Layout: 128-byte buckets of 8 slots, allocated once. A key may live in one of two buckets
// chosen by a seeded hash (two-choice hashing: set() fills the emptier one), and never anywhere
// else, so there is no probing, no tombstones and no rebuild: erase() just empties the slot, and
// set() returns false when both buckets are full. With two choices the fullest bucket stays close
// to the average: with random keys the first refusal comes at about 75% load (route_test prints
// it), so size the capacity at twice the neighbours expected and it never refuses.
//
// Concurrency: one writer (the control thread; set/erase/clear are not safe against each other
// from several threads) and any number of readers. Each slot carries a sequence counter
// (seqlock): the writer makes it odd, stores the slot's words, and makes it even again with
// release; a reader loads it with acquire, reads the words, fences with acquire and re-reads the
// counter, retrying a few times if it was odd or moved. All slot words are std::atomic accessed
// relaxed, so there is no data race in the C++ sense and a reader can never return a MAC torn
// between two writes, nor the MAC of another key. A reader that keeps losing the race (the
// writer was preempted mid-write) gives up and reports a miss, which the caller handles like an
// unresolved neighbour — it never spins on a worker core.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "dataplane/hash.h"
#include "dataplane/proto.h"

namespace dp {

class NeighborCache {
 public:
  static constexpr uint32_t kBucketSlots = 8;
  static constexpr uint32_t kMinCapacity = 2 * kBucketSlots;
  static constexpr uint32_t kMaxCapacity = uint32_t{1} << 30;
  static constexpr uint64_t kDefaultSeed = 0x9e3779b97f4a7c15ull;

  // Control thread, at start-up: allocates `capacity` slots, rounded up to a power of two within
  // [kMinCapacity, kMaxCapacity], 16 bytes each. `seed` keys the bucket hash: pass a random one
  // so on-link hosts cannot aim their addresses at one bucket.
  explicit NeighborCache(uint32_t capacity, uint64_t seed = kDefaultSeed)
      : n_buckets_(std::bit_ceil(std::clamp(capacity, kMinCapacity, kMaxCapacity)) / kBucketSlots),
        mask_(n_buckets_ - 1),
        seed_(seed),
        buckets_(std::make_unique<Bucket[]>(n_buckets_)) {}

  NeighborCache(const NeighborCache&) = delete;
  NeighborCache& operator=(const NeighborCache&) = delete;

  // Control thread, O(16 slots). Adds (port, ip) -> mac, or replaces the MAC of an existing
  // entry. False when ip is 0 (never a neighbour; it marks empty slots) or both of the key's
  // buckets are full: the neighbour then stays unresolved for workers.
  bool set(uint16_t port, uint32_t ip, const Mac& mac) noexcept {
    if (ip == 0) return false;
    const uint64_t v = pack(port, mac);
    const uint64_t h = hash(port, ip);
    Bucket& a = buckets_[first(h)];
    Bucket& b = buckets_[second(h)];
    Slot* found = find(a, port, ip);
    if (found == nullptr) found = find(b, port, ip);
    if (found != nullptr) {
      write(*found, ip, v);
      return true;
    }
    const uint32_t free_a = free_slots(a);
    const uint32_t free_b = free_slots(b);
    if (free_a == 0 && free_b == 0) return false;
    Bucket& into = free_a >= free_b ? a : b;
    for (Slot& s : into.slots) {
      if (s.ip.load(std::memory_order_relaxed) == 0) {
        write(s, ip, v);
        ++size_;
        return true;
      }
    }
    return false;  // unreachable: `into` had a free slot
  }

  // Control thread, O(16 slots). Removes (port, ip); false if it was not there.
  bool erase(uint16_t port, uint32_t ip) noexcept {
    if (ip == 0) return false;
    const uint64_t h = hash(port, ip);
    Slot* s = find(buckets_[first(h)], port, ip);
    if (s == nullptr) s = find(buckets_[second(h)], port, ip);
    if (s == nullptr) return false;
    write(*s, 0, 0);
    --size_;
    return true;
  }

  // Control thread, O(capacity): empties the cache (e.g. before mirroring a rebuilt table).
  void clear() noexcept {
    for (uint32_t i = 0; i < n_buckets_; ++i)
      for (Slot& s : buckets_[i].slots)
        if (s.ip.load(std::memory_order_relaxed) != 0) write(s, 0, 0);
    size_ = 0;
  }

  // Worker, per packet: at most two buckets (four cache lines), no stores. True and *out set
  // when (port, ip) is cached.
  bool lookup(uint16_t port, uint32_t ip, Mac* out) const noexcept {
    if (ip == 0) return false;
    const uint64_t h = hash(port, ip);
    if (read(buckets_[first(h)], port, ip, out)) return true;
    return read(buckets_[second(h)], port, ip, out);
  }

  // Control thread (the writer's own count).
  uint32_t size() const noexcept { return size_; }
  // Any thread.
  uint32_t capacity() const noexcept { return n_buckets_ * kBucketSlots; }

 private:
  static constexpr int kReadTries = 4;

  struct Slot {
    std::atomic<uint32_t> seq{0};  // odd while the writer is changing the slot
    std::atomic<uint32_t> ip{0};   // host order; 0 = empty
    std::atomic<uint64_t> val{0};  // port << 48 | MAC (first byte most significant)
  };
  struct alignas(128) Bucket {
    Slot slots[kBucketSlots];
  };
  static_assert(sizeof(Bucket) == 128);

  static uint64_t pack(uint16_t port, const Mac& m) noexcept {
    uint64_t v = uint64_t{port} << 48;
    for (int i = 0; i < 6; ++i) v |= uint64_t{m[i]} << (40 - 8 * i);
    return v;
  }
  static Mac mac_of(uint64_t v) noexcept {
    Mac m;
    for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(v >> (40 - 8 * i));
    return m;
  }
  static uint16_t port_of(uint64_t v) noexcept { return static_cast<uint16_t>(v >> 48); }

  // A full 64-bit mix (splitmix64's finaliser) of the seeded key: both bucket indices come from it.
  uint64_t hash(uint16_t port, uint32_t ip) const noexcept {
    return splitmix64_mix(((uint64_t{port} << 32) | ip) ^ seed_);
  }
  uint32_t first(uint64_t h) const noexcept { return static_cast<uint32_t>(h) & mask_; }
  uint32_t second(uint64_t h) const noexcept {
    const uint32_t b = static_cast<uint32_t>(h >> 32) & mask_;
    return b != first(h) ? b : first(h) ^ 1u;  // two distinct buckets (there are at least two)
  }

  // Writer only: plain relaxed loads see the writer's own stores.
  static Slot* find(Bucket& b, uint16_t port, uint32_t ip) noexcept {
    for (Slot& s : b.slots)
      if (s.ip.load(std::memory_order_relaxed) == ip &&
          port_of(s.val.load(std::memory_order_relaxed)) == port)
        return &s;
    return nullptr;
  }
  static uint32_t free_slots(const Bucket& b) noexcept {
    uint32_t n = 0;
    for (const Slot& s : b.slots) n += s.ip.load(std::memory_order_relaxed) == 0;
    return n;
  }
  static void write(Slot& s, uint32_t ip, uint64_t v) noexcept {
    const uint32_t seq = s.seq.load(std::memory_order_relaxed);
    s.seq.store(seq + 1, std::memory_order_relaxed);
    // Orders the odd counter before the data: a reader that sees any of the new words also
    // sees the counter move.
    std::atomic_thread_fence(std::memory_order_release);
    s.ip.store(ip, std::memory_order_relaxed);
    s.val.store(v, std::memory_order_relaxed);
    s.seq.store(seq + 2, std::memory_order_release);
  }

  static bool read(const Bucket& b, uint16_t port, uint32_t ip, Mac* out) noexcept {
    for (const Slot& s : b.slots) {
      // Unsynchronised filter; the answer is only taken from a consistent read below.
      if (s.ip.load(std::memory_order_relaxed) != ip) continue;
      for (int t = 0; t < kReadTries; ++t) {
        const uint32_t s1 = s.seq.load(std::memory_order_acquire);
        if (s1 & 1u) continue;
        const uint32_t sip = s.ip.load(std::memory_order_relaxed);
        const uint64_t v = s.val.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s.seq.load(std::memory_order_relaxed) != s1) continue;
        if (sip == ip && port_of(v) == port) {
          *out = mac_of(v);
          return true;
        }
        break;  // a consistent slot holding another key (other port, or just replaced)
      }
    }
    return false;
  }

  const uint32_t n_buckets_;
  const uint32_t mask_;
  const uint64_t seed_;
  const std::unique_ptr<Bucket[]> buckets_;  // slot words: written by the control thread only
  uint32_t size_ = 0;                        // control thread only
};

}  // namespace dp
