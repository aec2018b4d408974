#pragma once
// The lease store of one worker: the addresses of its pool slices, who holds them, and their
// timers. Pure logic over a caller-supplied clock (ns). Sized at construction: no allocation,
// locks or exceptions in any per-packet method; expiry costs O(expired), never a scan.
//
// Lifecycle of an address (RFC 2131 §4.3):
//   FREE --offer()--> OFFERED (held for one client until offer_hold elapses) --commit()--> BOUND
//   BOUND --release() / lease end--> FREE;  any --decline()--> DECLINED (quarantine) --> FREE
// Reserved addresses (reserve()) are never offered to anyone but their client.
//
// Events: every change appends exactly one LeaseEvent (the lease after the change) when the
// caller passes a sink. The caller reserves the sink's capacity at start and clears it per burst;
// the store only push_backs, and push_back within the reserved capacity never allocates.
// offer() and commit() append at most 2 events, release() and decline() at most 1; expire()
// stops when the sink is full (see there), so it never grows it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/table_memory.h"

namespace dhcp {

// Who a client is: option 61 when present, else 0x01 (Ethernet) + chaddr (RFC 2132 §9.14).
struct ClientKey {
  static constexpr size_t kMax = 32;  // longer client identifiers are hashed into the last bytes
  uint8_t len = 0;
  std::array<uint8_t, kMax> bytes{};
  static ClientKey from_mac(const std::array<uint8_t, 6>& mac) noexcept;
  // Identifiers longer than kMax keep their first kMax - 8 bytes followed by a stable 64-bit hash
  // of the whole identifier (little-endian), with len = kMax.
  static ClientKey from_id(std::span<const uint8_t> client_id) noexcept;
  uint64_t hash() const noexcept;  // stable across processes and runs (no random seed)
  bool operator==(const ClientKey& o) const noexcept;  // compares len and bytes[0, len)
};

enum class LeaseState : uint8_t { kFree, kOffered, kBound, kDeclined };

struct Lease {
  uint32_t ip = 0;  // host order
  uint32_t pool = 0;
  LeaseState state = LeaseState::kFree;
  // Valid unless kFree; kept after release and lease end (address affinity), cleared when a
  // quarantine ends (a client never gets back an address it declined).
  ClientKey client;
  std::array<uint8_t, 6> mac{};
  uint64_t expires_ns = 0;  // offer hold, lease end or quarantine end; 0 when kFree
  uint64_t updated_ns = 0;
  uint64_t generation = 0;  // increases on every change (replication: newer wins)
};

// A change, appended to the caller's sink for the journal and replication. POD.
struct LeaseEvent {
  // kRelease also reports a lease the store gave up for its client: the client moved to another
  // address of the same pool (commit()), or its lease became reserved for someone else (offer()).
  enum Kind : uint8_t { kOffer, kBind, kRelease, kDecline, kExpire, kOfferExpired };
  Kind kind;
  Lease lease;  // the lease after the change
};

struct PoolStats {
  uint64_t size = 0, free = 0, offered = 0, bound = 0, declined = 0;
};

class LeaseStore {
 public:
  struct Params {
    uint64_t offer_hold_ns = 30'000'000'000;        // how long an OFFER reserves its address
    uint64_t decline_hold_ns = 86'400'000'000'000;  // quarantine after DECLINE (ISC: 1 day)
    size_t max_addresses = 1 << 20;                 // capacity of all ranges (at most 2^30)
  };

  // Control thread, at start (allocates).
  explicit LeaseStore(Params p);
  // Adds [first, last] to `pool` (ranges must not overlap). False if over capacity/overlapping.
  bool add_range(uint32_t pool, uint32_t first, uint32_t last);
  // `ip` (inside a range) may only go to `client`. False if `ip` is in no range, is reserved for
  // another client, or `client` already has another reservation in that pool. A lease held by
  // another client when this is called runs on; that client is refused it at its next REQUEST
  // and moved at its next DISCOVER.
  bool reserve(uint32_t ip, const ClientKey& client);

  // Worker, per packet. DISCOVER: picks an address in `pool` for `client` and holds it:
  //  1. the client's current OFFERED/BOUND lease in this pool (an OFFERED hold is restarted; a
  //     BOUND lease is offered as it is, unchanged);
  //  2. its reservation;
  //  3. `requested` (option 50) if FREE, in the pool and not reserved for someone else;
  //  4. the address it had last (affinity), if still FREE;
  //  5. the least recently used FREE address.
  // nullopt when the pool has nothing free (exhaustion). O(1).
  std::optional<uint32_t> offer(uint32_t pool, const ClientKey& client,
                                const std::array<uint8_t, 6>& mac, uint32_t requested, uint64_t now,
                                std::vector<LeaseEvent>* events = nullptr) noexcept;

  enum class Commit : uint8_t {
    kOk,
    kNotInPool,  // the address is in a range of another pool (wrong subnet: NAK)
    kTaken,      // OFFERED/BOUND for another client, DECLINED (quarantine, whoever asks), or
                 // reserved for another (NAK)
    kUnknown,    // the address is in none of our ranges: no lease for it and none to give
                 // (RFC 2131 §4.3.2: stay silent in INIT-REBOOT)
  };
  // Worker, per packet. REQUEST: binds `ip` to `client` for `lease_ns` (a FREE address in the
  // pool may be bound directly: INIT-REBOOT after a restart, or a client that skipped DISCOVER).
  // A client holds at most one OFFERED/BOUND lease per pool: binding another address of the pool
  // releases the one it held (event kRelease, then kBind). O(1).
  Commit commit(uint32_t pool, const ClientKey& client, const std::array<uint8_t, 6>& mac,
                uint32_t ip, uint64_t lease_ns, uint64_t now,
                std::vector<LeaseEvent>* events = nullptr) noexcept;
  // RELEASE / DECLINE from the lease's own client (OFFERED or BOUND); false (ignored) otherwise.
  // O(1).
  bool release(const ClientKey& client, uint32_t ip, uint64_t now,
               std::vector<LeaseEvent>* events = nullptr) noexcept;
  bool decline(const ClientKey& client, uint32_t ip, uint64_t now,
               std::vector<LeaseEvent>* events = nullptr) noexcept;

  // Worker, once per loop: ends offers, leases and quarantines whose time has come. Cost is
  // proportional to what expires (timing wheel / deadline index), not to the table size.
  // Work per call is bounded by the sink: when `events` is full (size == capacity) it stops and
  // returns false, and the next call carries on (so a mass expiry, e.g. after a restore, never
  // stalls a worker or grows the sink). True when nothing due at `now` remains. A sink without
  // reserved capacity therefore expires nothing; pass nullptr for no events and no bound.
  bool expire(uint64_t now, std::vector<LeaseEvent>* events = nullptr) noexcept;

  // Restore (journal replay, replication): installs `l` if its generation is newer than what is
  // held for that address (or as new, with `ties`: the peer's word wins a tie, since a standby's
  // own expiry of a lease the master just renewed bumps the generation alike). False if the
  // address is not in any range of `l.pool` (or `l` is malformed); true otherwise, installed or
  // not. Events in the order they were emitted rebuild the same state, free-list order and
  // affinities included.
  bool restore(const Lease& l, bool ties = false);

  const Lease* find(uint32_t ip) const noexcept;  // any address in a range (kFree included)
  // A 32-bit mark the caller keeps per address (0 at start; the store never changes it): the
  // per-circuit lease count keeps its counter slot there. No-op / 0 outside the ranges. O(log
  // ranges).
  void set_mark(uint32_t ip, uint32_t mark) noexcept;
  uint32_t mark(uint32_t ip) const noexcept;
  // Its OFFERED or BOUND lease, if any (the first found if it holds leases in several pools).
  const Lease* find(const ClientKey& client) const noexcept;

  // Worker: cache hints for requests about to be handled. A burst warms its requests in two
  // stages so their misses overlap instead of queueing: warm_client() fetches the client's index
  // slot and returns the tag to pass to warm_lease() once that slot has had time to arrive,
  // which fetches the lease the slot points at; warm_addr() fetches an address's lease. They
  // change nothing; a wrong hint costs one wasted fetch.
  uint32_t warm_client(const ClientKey& client) const noexcept;
  void warm_lease(uint32_t tag) const noexcept;
  void warm_addr(uint32_t ip) const noexcept;
  PoolStats stats(uint32_t pool) const noexcept;  // O(1): counters maintained on every change
  template <class F>
  void for_each(F&& f) const;  // every non-FREE lease (control thread: dumps, tandemctl leases)
  // Entries in the client index: one per (client, pool) whose lease or last address the store
  // remembers. Tests check it holds exactly those, so stale entries can never pile up.
  size_t client_index_size() const noexcept { return clients_used_; }

 private:
  static constexpr uint32_t kNone = 0xffffffff;
  // Intrusive doubly linked, circular lists of address indexes with sentinel nodes. One pair of
  // links per address serves both lists an address can be on, because they exclude each other:
  // a FREE unreserved address is on its pool's LRU free list, an OFFERED/BOUND/DECLINED one on
  // its timing-wheel slot. A reserved FREE address is on none (linked to itself).
  // Nodes [0, cap_) are addresses, [cap_, cap_ + slots) wheel slots, then one per pool.
  struct Link {
    uint32_t prev, next;
  };
  // Everything the hot path reads about one address, side by side: one or two cache lines per
  // touched address instead of one per array (84 bytes, no padding).
  struct Cell {
    Lease lease;
    Link link;
    uint32_t resv = kNone;  // index into reservations_
    uint32_t user = 0;      // the caller's mark (set_mark)
  };
  // Open-addressing slot (linear probing, backward-shift deletion, load <= 1/2). The key is not
  // stored: it is read from the lease (or reservation) at `idx`; `tag` is the low 32 bits of the
  // key's hash (home slot = tag & mask), which rejects most mismatches without touching it.
  struct Slot {
    uint32_t idx = kNone;
    uint32_t tag = 0;
  };
  struct Range {
    uint32_t first, last, base, pool;  // pool: index into pools_
  };
  struct Pool {
    uint32_t id;
    PoolStats stats;
  };
  struct Reservation {
    ClientKey client;
    uint32_t addr;
  };
  struct Where {
    uint32_t addr = kNone;  // index into cells_
    uint32_t pool = kNone;  // index into pools_
  };

  Where locate(uint32_t ip) const noexcept;
  uint32_t pool_index(uint32_t pool_id) const noexcept;
  uint32_t pool_head(uint32_t p) const noexcept { return cap_ + wheel_mask_ + 1 + p; }
  Link& node(uint32_t n) noexcept { return n < cap_ ? cells_[n].link : heads_[n - cap_]; }
  bool reserved_for_other(uint32_t a, const ClientKey& client) const noexcept;
  uint32_t find_reservation(uint32_t tag, const ClientKey& client, uint32_t pool_id) const noexcept;

  // Lists.
  void unlink(uint32_t a) noexcept;
  void link_before(uint32_t a, uint32_t at) noexcept;
  void schedule(uint32_t a) noexcept;               // onto the wheel at its lease's expires_ns
  void make_free(uint32_t a, uint32_t p) noexcept;  // state is already kFree: LRU tail or nothing

  // Client index: (client, pool) -> address (its OFFERED/BOUND lease, else its last address).
  size_t client_slot(uint32_t tag, const ClientKey& client, uint32_t pool_id) const noexcept;
  void client_set(uint32_t tag, uint32_t a) noexcept;  // for a's client, which must be set
  void client_drop(uint32_t a) noexcept;               // the entry of a's client if it points at a
  void slot_erase(dp::TableVector<Slot>& t, uint32_t mask, size_t pos) noexcept;

  // State changes (each bumps the generation, counts and reports).
  void count(uint32_t p, LeaseState s, int delta) noexcept;
  void to_free(uint32_t a, uint32_t p, LeaseEvent::Kind kind, uint64_t now,
               std::vector<LeaseEvent>* events) noexcept;
  void take(uint32_t a, uint32_t p, const ClientKey& client, uint32_t tag,
            const std::array<uint8_t, 6>& mac, LeaseState s, uint64_t expires, uint64_t now,
            LeaseEvent::Kind kind, std::vector<LeaseEvent>* events) noexcept;
  bool scan_slot(uint32_t s, uint64_t now, std::vector<LeaseEvent>* events) noexcept;

  Params params_;
  uint32_t cap_ = 0;  // max addresses
  // The big arrays live on huge pages (dp::TableVector): a million subscribers are ~100 MB.
  dp::TableVector<Cell> cells_;  // per address; capacity cap_: find() pointers stay valid
  std::vector<Link> heads_;      // sentinels: wheel slots, then pools (node cap_ + i)
  std::vector<Range> ranges_;    // sorted by first
  std::vector<Pool> pools_;
  std::vector<uint32_t> pool_map_;  // pool id -> index + 1 (0 = empty), open addressing
  dp::TableVector<Slot> clients_;   // 2 * next_pow2(cap_) slots: never full
  uint32_t clients_mask_ = 0;
  size_t clients_used_ = 0;
  std::vector<Reservation> reservations_;
  dp::TableVector<Slot> resv_map_;  // (client, pool) -> index into reservations_
  uint32_t resv_mask_ = 0;
  // Timing wheel: 2^k slots of 2^kGranuleShift ns; a slot holds every entry whose deadline falls
  // in it on any lap. slot_min_ bounds the earliest deadline in the slot from below, so a slot
  // is only walked when something in it is due.
  std::vector<uint64_t> slot_min_;
  uint32_t wheel_mask_ = 0;
  uint64_t cursor_ = 0;  // granule up to which expire() has processed
};

template <class F>
void LeaseStore::for_each(F&& f) const {
  for (const Cell& c : cells_) {
    if (c.lease.state != LeaseState::kFree) f(c.lease);
  }
}

}  // namespace dhcp
