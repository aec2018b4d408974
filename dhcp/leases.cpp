#include "dhcp/leases.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "dataplane/hash.h"

// Design notes (why, not what):
// - Expiry uses a single-level timing wheel with intrusive per-slot lists rather than a min-heap.
//   Scheduling and cancelling are O(1) (a heap would be O(log n) with a cache miss per level over
//   a million leases), and cancelling unlinks at once, so there are no stale entries, no
//   generation checks on pop and no growth: the wheel needs one pair of links per address, which
//   it shares with the free lists. Deadlines beyond one lap stay in their slot; slot_min_ (a
//   lower bound of the slot's deadlines) keeps expire() from walking a slot until something in
//   it is due, so long leases cost nothing per lap and expire() is exact to the nanosecond.
// - The client index stores no keys: a slot is (address, low 32 bits of the hash) and the key
//   is read from the lease, which the caller touches next anyway. 2x over-provisioned for the
//   worst case (every address remembers a client), so it can never fill.

namespace dhcp {
namespace {

constexpr uint32_t kMaxCapacity = uint32_t{1} << 30;  // keeps node indexes clear of kNone
constexpr unsigned kGranuleShift = 20;                // wheel slot: 2^20 ns (about 1 ms)
constexpr uint32_t kMinSlots = 1024;
constexpr uint32_t kMaxSlots = 65536;  // 1 ms x 64 Ki = a 68.7 s lap, 768 KiB of slot state
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
constexpr size_t kNotFound = std::numeric_limits<size_t>::max();

uint64_t sat_add(uint64_t a, uint64_t b) noexcept {
  return a > kNever - b ? kNever : a + b;
}

uint64_t load_le64(const uint8_t* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

// splitmix64's finaliser: full avalanche, so the low bits (home slot) depend on every input bit.
uint64_t fmix64(uint64_t h) noexcept {
  return dp::splitmix64_mix(h);
}

uint32_t pool_hash(uint32_t id) noexcept {
  return static_cast<uint32_t>((uint64_t{id} * 0x9e3779b97f4a7c15ull) >> 32);
}

bool holds(LeaseState s) noexcept {
  return s == LeaseState::kOffered || s == LeaseState::kBound;
}

void emit(std::vector<LeaseEvent>* events, LeaseEvent::Kind kind, const Lease& l) {
  // Within the capacity the caller reserved this never allocates (see leases.h).
  if (events != nullptr) events->push_back(LeaseEvent{kind, l});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClientKey

ClientKey ClientKey::from_mac(const std::array<uint8_t, 6>& mac) noexcept {
  ClientKey k;
  k.len = 7;
  k.bytes[0] = 0x01;  // hardware type: Ethernet (RFC 2132 §9.14)
  std::copy(mac.begin(), mac.end(), k.bytes.begin() + 1);
  return k;
}

ClientKey ClientKey::from_id(std::span<const uint8_t> client_id) noexcept {
  ClientKey k;
  if (client_id.size() <= kMax) {
    k.len = static_cast<uint8_t>(client_id.size());
    std::copy(client_id.begin(), client_id.end(), k.bytes.begin());
    return k;
  }
  // Long identifiers (DUIDs with long enterprise data) keep a readable prefix and a hash of the
  // whole, so two that share the prefix stay distinct. FNV-1a: stable everywhere, and this path
  // is rare.
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : client_id) h = (h ^ b) * 0x100000001b3ull;
  k.len = kMax;
  std::copy(client_id.begin(), client_id.begin() + (kMax - 8), k.bytes.begin());
  for (size_t i = 0; i < 8; ++i) k.bytes[kMax - 8 + i] = static_cast<uint8_t>(h >> (8 * i));
  return k;
}

uint64_t ClientKey::hash() const noexcept {
  // Word at a time with a fixed multiplier (no seed, byte order fixed to little-endian), so the
  // journal, the replication peer and a restarted process all agree. Bytes past len are masked
  // off rather than trusted to be zero.
  const size_t n = std::min<size_t>(len, kMax);
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t{len} * 0xc2b2ae3d27d4eb4full);
  for (size_t off = 0; off < n; off += 8) {
    uint64_t w = load_le64(bytes.data() + off);
    const size_t m = n - off;
    if (m < 8) w &= (uint64_t{1} << (8 * m)) - 1;
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return fmix64(h);
}

bool ClientKey::operator==(const ClientKey& o) const noexcept {
  return len == o.len &&
         std::memcmp(bytes.data(), o.bytes.data(), std::min<size_t>(len, kMax)) == 0;
}

// ---------------------------------------------------------------------------------------------
// Construction (control thread)

LeaseStore::LeaseStore(Params p) : params_(p) {
  cap_ = static_cast<uint32_t>(std::min<size_t>(p.max_addresses, kMaxCapacity));
  cells_.reserve(cap_);  // never reallocated: find() hands out pointers into it
  const uint32_t slots =
      std::clamp<uint32_t>(std::bit_ceil(std::max<uint32_t>(cap_, 1)) / 8, kMinSlots, kMaxSlots);
  wheel_mask_ = slots - 1;
  slot_min_.assign(slots, kNever);
  heads_.resize(slots);
  for (uint32_t s = 0; s < slots; ++s) heads_[s] = Link{cap_ + s, cap_ + s};
  const size_t client_slots = std::max<size_t>(16, 2 * std::bit_ceil(size_t{cap_}));
  clients_.assign(client_slots, Slot{});
  clients_mask_ = static_cast<uint32_t>(client_slots - 1);
  resv_map_.assign(16, Slot{});
  resv_mask_ = 15;
  pool_map_.assign(8, 0);
}

bool LeaseStore::add_range(uint32_t pool, uint32_t first, uint32_t last) {
  if (first > last) return false;
  const uint64_t n = uint64_t{last} - first + 1;
  if (cells_.size() + n > cap_) return false;
  for (const Range& r : ranges_) {
    if (!(last < r.first || first > r.last)) return false;
  }
  uint32_t p = pool_index(pool);
  if (p == kNone) {
    p = static_cast<uint32_t>(pools_.size());
    pools_.push_back(Pool{pool, PoolStats{}});
    const uint32_t head = pool_head(p);
    heads_.push_back(Link{head, head});
    // Rebuild the id -> index map at <= 1/2 load.
    const size_t size = std::max<size_t>(8, std::bit_ceil(2 * pools_.size()));
    pool_map_.assign(size, 0);
    for (uint32_t i = 0; i < pools_.size(); ++i) {
      size_t pos = pool_hash(pools_[i].id) & (size - 1);
      while (pool_map_[pos] != 0) pos = (pos + 1) & (size - 1);
      pool_map_[pos] = i + 1;
    }
  }
  const auto base = static_cast<uint32_t>(cells_.size());
  for (uint64_t k = 0; k < n; ++k) {
    const auto a = static_cast<uint32_t>(base + k);
    cells_.push_back(Cell{});
    cells_[a].lease.ip = static_cast<uint32_t>(first + k);
    cells_[a].lease.pool = pool;
    cells_[a].link = Link{a, a};
    link_before(a, pool_head(p));  // ascending LRU order
  }
  ranges_.push_back(Range{first, last, base, p});
  std::sort(ranges_.begin(), ranges_.end(),
            [](const Range& a, const Range& b) { return a.first < b.first; });
  pools_[p].stats.size += n;
  pools_[p].stats.free += n;
  return true;
}

bool LeaseStore::reserve(uint32_t ip, const ClientKey& client) {
  const Where w = locate(ip);
  if (w.addr == kNone) return false;
  if (cells_[w.addr].resv != kNone) return reservations_[cells_[w.addr].resv].client == client;
  const auto tag = static_cast<uint32_t>(client.hash());
  if (find_reservation(tag, client, pools_[w.pool].id) != kNone) return false;
  const auto r = static_cast<uint32_t>(reservations_.size());
  reservations_.push_back(Reservation{client, w.addr});
  cells_[w.addr].resv = r;
  if (reservations_.size() * 2 > resv_map_.size()) {
    resv_map_.assign(resv_map_.size() * 2, Slot{});
    resv_mask_ = static_cast<uint32_t>(resv_map_.size() - 1);
    for (uint32_t i = 0; i < reservations_.size(); ++i) {
      const auto t = static_cast<uint32_t>(reservations_[i].client.hash());
      size_t pos = t & resv_mask_;
      while (resv_map_[pos].idx != kNone) pos = (pos + 1) & resv_mask_;
      resv_map_[pos] = Slot{i, t};
    }
  } else {
    size_t pos = tag & resv_mask_;
    while (resv_map_[pos].idx != kNone) pos = (pos + 1) & resv_mask_;
    resv_map_[pos] = Slot{r, tag};
  }
  // Off the dynamic free list, so the LRU pick never meets it; offer() reaches it directly.
  if (cells_[w.addr].lease.state == LeaseState::kFree) unlink(w.addr);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Lookups

LeaseStore::Where LeaseStore::locate(uint32_t ip) const noexcept {
  // Ranges are few (a worker's slices of each pool): a binary search stays in L1.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), ip,
                             [](uint32_t v, const Range& r) { return v < r.first; });
  if (it == ranges_.begin()) return Where{};
  --it;
  if (ip > it->last) return Where{};
  return Where{it->base + (ip - it->first), it->pool};
}

uint32_t LeaseStore::pool_index(uint32_t pool_id) const noexcept {
  const size_t mask = pool_map_.size() - 1;
  for (size_t pos = pool_hash(pool_id) & mask;; pos = (pos + 1) & mask) {
    const uint32_t v = pool_map_[pos];
    if (v == 0) return kNone;
    if (pools_[v - 1].id == pool_id) return v - 1;
  }
}

bool LeaseStore::reserved_for_other(uint32_t a, const ClientKey& client) const noexcept {
  const uint32_t r = cells_[a].resv;
  return r != kNone && !(reservations_[r].client == client);
}

uint32_t LeaseStore::find_reservation(uint32_t tag, const ClientKey& client,
                                      uint32_t pool_id) const noexcept {
  for (size_t pos = tag & resv_mask_;; pos = (pos + 1) & resv_mask_) {
    const Slot& s = resv_map_[pos];
    if (s.idx == kNone) return kNone;
    if (s.tag != tag) continue;
    const Reservation& r = reservations_[s.idx];
    if (cells_[r.addr].lease.pool == pool_id && r.client == client) return r.addr;
  }
}

size_t LeaseStore::client_slot(uint32_t tag, const ClientKey& client,
                               uint32_t pool_id) const noexcept {
  for (size_t pos = tag & clients_mask_;; pos = (pos + 1) & clients_mask_) {
    const Slot& s = clients_[pos];
    if (s.idx == kNone) return kNotFound;
    if (s.tag != tag) continue;
    const Lease& l = cells_[s.idx].lease;
    if (l.pool == pool_id && l.client == client) return pos;
  }
}

namespace {
// Both cache lines a cell may straddle.
void warm(const void* p) noexcept {
  __builtin_prefetch(p);
  __builtin_prefetch(static_cast<const uint8_t*>(p) + 64);
}
}  // namespace

uint32_t LeaseStore::warm_client(const ClientKey& client) const noexcept {
  const auto tag = static_cast<uint32_t>(client.hash());
  __builtin_prefetch(&clients_[tag & clients_mask_]);
  return tag;
}

void LeaseStore::warm_lease(uint32_t tag) const noexcept {
  const Slot& s = clients_[tag & clients_mask_];  // its home slot: probes are short
  if (s.idx != kNone && s.tag == tag) warm(&cells_[s.idx]);
}

void LeaseStore::warm_addr(uint32_t ip) const noexcept {
  const Where w = locate(ip);
  if (w.addr != kNone) warm(&cells_[w.addr]);
}

void LeaseStore::client_set(uint32_t tag, uint32_t a) noexcept {
  const Lease& l = cells_[a].lease;
  size_t pos = tag & clients_mask_;
  for (;; pos = (pos + 1) & clients_mask_) {
    const Slot& s = clients_[pos];
    if (s.idx == kNone) break;
    if (s.tag != tag) continue;
    const Lease& o = cells_[s.idx].lease;
    if (o.pool == l.pool && o.client == l.client) break;
  }
  if (clients_[pos].idx == kNone) ++clients_used_;
  clients_[pos] = Slot{a, tag};
}

void LeaseStore::client_drop(uint32_t a) noexcept {
  const Lease& l = cells_[a].lease;
  const auto tag = static_cast<uint32_t>(l.client.hash());
  const size_t pos = client_slot(tag, l.client, l.pool);
  // Only if it still points here: the client may have moved on to another address since.
  if (pos != kNotFound && clients_[pos].idx == a) {
    slot_erase(clients_, clients_mask_, pos);
    --clients_used_;
  }
}

void LeaseStore::slot_erase(dp::TableVector<Slot>& t, uint32_t mask, size_t pos) noexcept {
  // Backward-shift deletion: no tombstones, so probe lengths never degrade over time.
  size_t hole = pos;
  for (size_t j = (pos + 1) & mask; t[j].idx != kNone; j = (j + 1) & mask) {
    const size_t home = t[j].tag & mask;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      t[hole] = t[j];
      hole = j;
    }
  }
  t[hole] = Slot{};
}

const Lease* LeaseStore::find(uint32_t ip) const noexcept {
  const Where w = locate(ip);
  return w.addr == kNone ? nullptr : &cells_[w.addr].lease;
}

void LeaseStore::set_mark(uint32_t ip, uint32_t m) noexcept {
  const Where w = locate(ip);
  if (w.addr != kNone) cells_[w.addr].user = m;
}

uint32_t LeaseStore::mark(uint32_t ip) const noexcept {
  const Where w = locate(ip);
  return w.addr == kNone ? 0 : cells_[w.addr].user;
}

const Lease* LeaseStore::find(const ClientKey& client) const noexcept {
  const auto tag = static_cast<uint32_t>(client.hash());
  for (size_t pos = tag & clients_mask_;; pos = (pos + 1) & clients_mask_) {
    const Slot& s = clients_[pos];
    if (s.idx == kNone) return nullptr;
    if (s.tag != tag) continue;
    const Lease& l = cells_[s.idx].lease;
    if (holds(l.state) && l.client == client) return &l;
  }
}

PoolStats LeaseStore::stats(uint32_t pool) const noexcept {
  const uint32_t p = pool_index(pool);
  return p == kNone ? PoolStats{} : pools_[p].stats;
}

// ---------------------------------------------------------------------------------------------
// Lists and the wheel

void LeaseStore::unlink(uint32_t a) noexcept {
  Link& l = node(a);
  node(l.prev).next = l.next;
  node(l.next).prev = l.prev;
  l = Link{a, a};  // unlinking an unlinked node is then a no-op
}

void LeaseStore::link_before(uint32_t a, uint32_t at) noexcept {
  Link& h = node(at);
  const uint32_t prev = h.prev;
  node(a) = Link{prev, at};
  node(prev).next = a;
  h.prev = a;
}

void LeaseStore::schedule(uint32_t a) noexcept {
  const uint64_t t = cells_[a].lease.expires_ns;
  // A deadline already behind the cursor goes to the cursor's slot, which expire() checks on
  // every call, instead of a slot it will only revisit a lap later.
  const uint64_t g = std::max(t >> kGranuleShift, cursor_);
  const auto s = static_cast<uint32_t>(g & wheel_mask_);
  link_before(a, cap_ + s);
  slot_min_[s] = std::min(slot_min_[s], t);
}

void LeaseStore::make_free(uint32_t a, uint32_t p) noexcept {
  // Tail of the LRU list: the address freed last is handed out last, so a returning client
  // finds its old address (affinity) for as long as possible.
  if (cells_[a].resv == kNone) link_before(a, pool_head(p));
}

// ---------------------------------------------------------------------------------------------
// State changes

void LeaseStore::count(uint32_t p, LeaseState s, int delta) noexcept {
  PoolStats& st = pools_[p].stats;
  uint64_t* c = &st.free;
  switch (s) {
    case LeaseState::kFree:
      break;
    case LeaseState::kOffered:
      c = &st.offered;
      break;
    case LeaseState::kBound:
      c = &st.bound;
      break;
    case LeaseState::kDeclined:
      c = &st.declined;
      break;
  }
  if (delta > 0) {
    ++*c;
  } else {
    --*c;
  }
}

void LeaseStore::to_free(uint32_t a, uint32_t p, LeaseEvent::Kind kind, uint64_t now,
                         std::vector<LeaseEvent>* events) noexcept {
  Lease& l = cells_[a].lease;
  unlink(a);  // off the wheel
  count(p, l.state, -1);
  count(p, LeaseState::kFree, +1);
  l.state = LeaseState::kFree;
  l.expires_ns = 0;
  l.updated_ns = now;
  ++l.generation;
  make_free(a, p);
  emit(events, kind, l);  // the client index keeps pointing here: affinity
}

void LeaseStore::take(uint32_t a, uint32_t p, const ClientKey& client, uint32_t tag,
                      const std::array<uint8_t, 6>& mac, LeaseState s, uint64_t expires,
                      uint64_t now, LeaseEvent::Kind kind,
                      std::vector<LeaseEvent>* events) noexcept {
  Lease& l = cells_[a].lease;
  if (!(l.client == client)) {
    client_drop(a);  // the previous client's affinity to this address ends here
    l.client = client;
  }
  unlink(a);  // off the free list or the wheel
  count(p, l.state, -1);
  count(p, s, +1);
  l.state = s;
  l.mac = mac;
  l.expires_ns = expires;
  l.updated_ns = now;
  ++l.generation;
  schedule(a);
  client_set(tag, a);
  emit(events, kind, l);
}

std::optional<uint32_t> LeaseStore::offer(uint32_t pool, const ClientKey& client,
                                          const std::array<uint8_t, 6>& mac, uint32_t requested,
                                          uint64_t now, std::vector<LeaseEvent>* events) noexcept {
  const uint32_t p = pool_index(pool);
  if (p == kNone) return std::nullopt;
  const auto tag = static_cast<uint32_t>(client.hash());
  const uint64_t hold_until = sat_add(now, params_.offer_hold_ns);

  uint32_t held = kNone;  // its OFFERED/BOUND lease, which it may not keep (reserved for another)
  uint32_t last = kNone;  // its last address, now FREE
  if (const size_t pos = client_slot(tag, client, pool); pos != kNotFound) {
    const uint32_t a = clients_[pos].idx;
    const Lease& l = cells_[a].lease;
    if (holds(l.state)) {
      if (!reserved_for_other(a, client)) {  // 1. current lease
        // A retransmitted DISCOVER restarts the hold so it cannot lapse before the REQUEST; a
        // BOUND lease stays as it is (the client may still be using it).
        if (l.state == LeaseState::kOffered) {
          take(a, p, client, tag, mac, LeaseState::kOffered, hold_until, now, LeaseEvent::kOffer,
               events);
        }
        return l.ip;
      }
      held = a;
    } else if (l.state == LeaseState::kFree) {
      last = a;
    }
  }

  uint32_t pick = kNone;
  if (!reservations_.empty()) {  // 2. reservation
    const uint32_t r = find_reservation(tag, client, pool);
    if (r != kNone && cells_[r].lease.state == LeaseState::kFree) pick = r;
  }
  if (pick == kNone && requested != 0) {  // 3. requested address
    const Where w = locate(requested);
    if (w.addr != kNone && w.pool == p && cells_[w.addr].lease.state == LeaseState::kFree &&
        !reserved_for_other(w.addr, client)) {
      pick = w.addr;
    }
  }
  if (pick == kNone && last != kNone && !reserved_for_other(last, client)) pick = last;  // 4.
  if (pick == kNone) {  // 5. least recently used
    const uint32_t head = node(pool_head(p)).next;
    if (head != pool_head(p)) pick = head;
  }
  if (pick == kNone) return std::nullopt;  // exhausted: nothing changed

  if (held != kNone) to_free(held, p, LeaseEvent::kRelease, now, events);
  take(pick, p, client, tag, mac, LeaseState::kOffered, hold_until, now, LeaseEvent::kOffer,
       events);
  return cells_[pick].lease.ip;
}

LeaseStore::Commit LeaseStore::commit(uint32_t pool, const ClientKey& client,
                                      const std::array<uint8_t, 6>& mac, uint32_t ip,
                                      uint64_t lease_ns, uint64_t now,
                                      std::vector<LeaseEvent>* events) noexcept {
  const Where w = locate(ip);
  if (w.addr == kNone) return Commit::kUnknown;
  if (pools_[w.pool].id != pool) return Commit::kNotInPool;
  if (reserved_for_other(w.addr, client)) return Commit::kTaken;
  const Lease& l = cells_[w.addr].lease;
  switch (l.state) {
    case LeaseState::kOffered:
    case LeaseState::kBound:
      if (!(l.client == client)) return Commit::kTaken;
      break;
    case LeaseState::kDeclined:
      return Commit::kTaken;
    case LeaseState::kFree:
      break;
  }
  const auto tag = static_cast<uint32_t>(client.hash());
  if (const size_t pos = client_slot(tag, client, pool); pos != kNotFound) {
    const uint32_t k = clients_[pos].idx;
    if (k != w.addr && holds(cells_[k].lease.state)) {
      to_free(k, w.pool, LeaseEvent::kRelease, now, events);  // one lease per client and pool
    }
  }
  take(w.addr, w.pool, client, tag, mac, LeaseState::kBound, sat_add(now, lease_ns), now,
       LeaseEvent::kBind, events);
  return Commit::kOk;
}

bool LeaseStore::release(const ClientKey& client, uint32_t ip, uint64_t now,
                         std::vector<LeaseEvent>* events) noexcept {
  const Where w = locate(ip);
  if (w.addr == kNone) return false;
  const Lease& l = cells_[w.addr].lease;
  if (!holds(l.state) || !(l.client == client)) return false;
  to_free(w.addr, w.pool, LeaseEvent::kRelease, now, events);
  return true;
}

bool LeaseStore::decline(const ClientKey& client, uint32_t ip, uint64_t now,
                         std::vector<LeaseEvent>* events) noexcept {
  const Where w = locate(ip);
  if (w.addr == kNone) return false;
  Lease& l = cells_[w.addr].lease;
  if (!holds(l.state) || !(l.client == client)) return false;
  client_drop(w.addr);  // no affinity to an address in conflict; the client gets another one
  unlink(w.addr);
  count(w.pool, l.state, -1);
  count(w.pool, LeaseState::kDeclined, +1);
  l.state = LeaseState::kDeclined;
  l.expires_ns = sat_add(now, params_.decline_hold_ns);
  l.updated_ns = now;
  ++l.generation;
  schedule(w.addr);
  emit(events, LeaseEvent::kDecline, l);
  return true;
}

bool LeaseStore::scan_slot(uint32_t s, uint64_t now, std::vector<LeaseEvent>* events) noexcept {
  const uint32_t head = cap_ + s;
  uint64_t min = kNever;
  for (uint32_t a = node(head).next; a != head;) {
    const uint32_t next = cells_[a].link.next;  // `a` may leave the list below
    Lease& l = cells_[a].lease;
    if (l.expires_ns <= now) {
      // Sink full: stop; slot_min_[s] stays <= now, so the next call walks this slot again.
      if (events != nullptr && events->size() >= events->capacity()) return false;
      const LeaseEvent::Kind kind =
          l.state == LeaseState::kOffered ? LeaseEvent::kOfferExpired : LeaseEvent::kExpire;
      if (l.state == LeaseState::kDeclined) {
        // The quarantine is over; its client's index entry was dropped at decline().
        l.client = ClientKey{};
        l.mac = {};
      }
      to_free(a, pool_index(l.pool), kind, now, events);
    } else {
      min = std::min(min, l.expires_ns);  // a later lap, or later within this granule
    }
    a = next;
  }
  slot_min_[s] = min;
  return true;
}

bool LeaseStore::expire(uint64_t now, std::vector<LeaseEvent>* events) noexcept {
  const uint64_t n = now >> kGranuleShift;
  // Every scheduled deadline d sits in the slot of granule max(d's granule, cursor at the time),
  // and everything due before cursor_ has been handled, so the slots of granules
  // [cursor_, n] hold all that is due: at most one full lap of slots after a long pause.
  const uint64_t steps =
      n < cursor_ ? 1 : std::min<uint64_t>(n - cursor_ + 1, uint64_t{wheel_mask_} + 1);
  for (uint64_t k = 0; k < steps; ++k) {
    const auto s = static_cast<uint32_t>((cursor_ + k) & wheel_mask_);
    if (slot_min_[s] <= now && !scan_slot(s, now, events)) {
      cursor_ += k;  // resume here; every slot before it is clean up to `now`
      return false;
    }
  }
  cursor_ = std::max(cursor_, n);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Restore (control or worker, off the per-packet path)

bool LeaseStore::restore(const Lease& l, bool ties) {
  const Where w = locate(l.ip);
  if (w.addr == kNone || pools_[w.pool].id != l.pool) return false;
  if (static_cast<uint8_t>(l.state) > static_cast<uint8_t>(LeaseState::kDeclined) ||
      l.client.len > ClientKey::kMax) {
    return false;
  }
  const uint32_t a = w.addr;
  const uint32_t p = w.pool;
  Lease& cur = cells_[a].lease;
  if (l.generation < cur.generation || (l.generation == cur.generation && !ties))
    return true;  // ours is newer (or as new)

  // The index entry is found through the lease's client, so drop it before the client changes.
  if (!(cur.client == l.client) || l.state == LeaseState::kDeclined) client_drop(a);
  unlink(a);
  count(p, cur.state, -1);
  count(p, l.state, +1);
  cur = l;
  const auto tag = static_cast<uint32_t>(cur.client.hash());
  switch (cur.state) {
    case LeaseState::kFree:
      make_free(a, p);
      // Affinity as the live store has it, unless the client already points elsewhere.
      if (cur.client.len != 0 && client_slot(tag, cur.client, cur.pool) == kNotFound) {
        client_set(tag, a);
      }
      break;
    case LeaseState::kOffered:
    case LeaseState::kBound:
      schedule(a);
      client_set(tag, a);
      break;
    case LeaseState::kDeclined:
      schedule(a);
      break;
  }
  return true;
}

}  // namespace dhcp
