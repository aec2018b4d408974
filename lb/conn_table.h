#pragma once
// The load balancer's per-worker connection table: which real server each client flow is bound
// to, indexed by the client's key (client -> VIP) and by the reply key (real server -> client),
// with IPVS's TCP state machine and timeouts and a timer wheel that ages connections out.
//
// One instance per worker lcore; single-threaded (no locks, no atomics). Every byte is allocated
// by the constructor from a fixed capacity; find/insert/on_tcp/on_udp/erase/expire never
// allocate, throw, log or make a system call. Pure C++, no DPDK.
//
// Hash index: a bucketised cuckoo table (8 ways per 64-byte bucket, a 32-bit signature and a
// 32-bit value per way) holding both keys of every connection. Each key may live in exactly two
// buckets, so a lookup reads at most two cache lines plus the connection, full table or not.
// Inserts that find both buckets full move residents to their other bucket along a short path
// found by a bounded breadth-first search (no allocation; the table stays consistent if no
// path exists, and the insert is refused as kNoSlot). The bucket count is sized so the table is
// at most 85% loaded when every connection slot is used, where such failures do not occur in
// practice. Keys are hashed with a per-table random seed, so spoofed sources cannot be chosen
// to collide.
//
// Aging: a hashed timer wheel of kWheelSlots slots of kTickNs each, keyed by expires_ns with lazy
// rescheduling: a packet only moves expires_ns forward; when a connection's slot comes up
// and it is not due yet it is moved to the slot of its current expiry. Only a shorter timeout
// (RST, FIN, a reduced set_timeouts) relinks it at once. A connection is never expired before
// expires_ns, and at most one tick after it (given expire() is called).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dataplane/hash.h"
#include "lb/model.h"

namespace lb {

// A flow as seen on the wire, host byte order.
struct FlowKey {
  uint32_t src_ip = 0, dst_ip = 0;
  uint16_t src_port = 0, dst_port = 0;
  uint8_t proto = 0;
  bool operator==(const FlowKey&) const = default;
};

// IPVS's TCP states (ip_vs_proto_tcp.c), plus kUdp for UDP (and any other non-TCP) entries.
enum class TcpState : uint8_t {
  kNone,
  kSynSent,
  kSynRecv,
  kEstablished,
  kFinWait,
  kTimeWait,
  kClose,
  kCloseWait,
  kLastAck,
  kListen,
  kSynAck,
  kUdp,
};
inline constexpr size_t kTcpStateCount = 12;

// IPVS spelling, as ipvsadm -L -c prints it: "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
// "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP".
std::string_view to_string(TcpState s) noexcept;

// TCP header flag bits as on_tcp() takes them.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

// Seconds per state; IPVS defaults. ipvsadm --set TCP TCPFIN UDP sets tcp_established, tcp_fin
// (FIN_WAIT) and udp.
struct Timeouts {
  uint32_t tcp_established = 900;
  uint32_t tcp_fin = 120;  // FIN_WAIT
  uint32_t udp = 300;
  uint32_t tcp_syn = 60;  // SYN_RECV
  uint32_t tcp_close = 10;
  uint32_t tcp_time_wait = 120;
  uint32_t tcp_close_wait = 60;
  uint32_t tcp_last_ack = 30;
  uint32_t tcp_syn_sent = 120;  // SYN_SENT, SYNACK, LISTEN (IPVS: 120 s each)
  uint32_t tcp_none = 2;        // NONE: inserted, no packet through on_tcp() yet
  bool operator==(const Timeouts&) const = default;
};

class ConnTable;

// One connection. The table owns the storage; a Conn* stays valid until erase() or expire()
// frees it. Everything a packet of an established flow reads or writes — keys, binding, state,
// expiry, replication — is in the first cache line, the only one find_bulk() prefetches; the
// second holds the list links that change only when a connection is created, freed, becomes
// established or is relinked on a shorter timeout.
struct alignas(64) Conn {
  FlowKey fwd;  // as the client sent it: client -> VIP:vport
  FlowKey rev;  // as replies arrive: rs_ip:rs_port -> client (DR/TUN: indexed, never seen)
  // Opaque to the table; the worker counts every packet under them (lb::kMaxDests and
  // lb::kMaxServices fit 16 bits).
  uint16_t dest_id = 0;
  uint16_t service_id = 0;
  Fwd fwd_mode = Fwd::kNat;  // set before the first on_tcp(): kDr/kTun select the input-only table
  TcpState state = TcpState::kNone;

 private:
  friend class ConnTable;
  static constexpr uint8_t kUsed = 1, kEmbryonic = 2, kSeenReply = 4;
  uint8_t flags_ = 0;

 public:
  uint64_t expires_ns = 0;  // the last packet's time + the timeout of the state it left

  // Replication, opaque to the table (zeroed by insert()): updates of this connection sent to or
  // taken from the peer (newer wins), and when it was last sent (read per packet when syncing).
  uint64_t synced_ns = 0;
  uint32_t sync_gen = 0;

  // The real server: where replies come from.
  uint32_t rs_ip() const noexcept { return rev.src_ip; }
  uint16_t rs_port() const noexcept { return rev.src_port; }
  bool embryonic() const noexcept { return (flags_ & kEmbryonic) != 0; }
  bool seen_reply() const noexcept { return (flags_ & kSeenReply) != 0; }

 private:
  uint32_t wheel_slot_ = 0;  // read when a shorter timeout may need a relink
  // Second line.
  alignas(64) uint32_t wheel_next_ = 0;
  uint32_t wheel_prev_ = 0;            // wheel list; free list when unused
  uint32_t emb_next_ = 0, emb_prev_ = 0;  // embryonic list, oldest first
};

// Why insert() returned nullptr.
enum class Refusal : uint8_t {
  kNone,
  kFull,            // every connection slot is used
  kEmbryonicLimit,  // TCP, and embryonic() reached Params::embryonic_permille of capacity
  kExists,          // the forward or the reply key already belongs to a connection
  kNoSlot,          // the hash index found no place for a key (not expected below 85% load)
};
std::string_view to_string(Refusal r) noexcept;  // "none", "full", "embryonic_limit", ...

class ConnTable {
 public:
  static constexpr uint32_t kTickShift = 26;  // 67.1 ms ticks
  static constexpr uint64_t kTickNs = uint64_t{1} << kTickShift;
  static constexpr uint32_t kWheelSlots = 16384;  // 1126 s: one turn covers 900 s
  static constexpr uint32_t kMaxCapacity = uint32_t{1} << 30;

  struct Params {
    uint32_t capacity = 1 << 20;  // 1 .. kMaxCapacity connections
    Timeouts timeouts;
    // Most connections, per mille of capacity, that may be TCP and not (yet) established: a
    // spoofed SYN flood fills this share and no more, so established flows keep the rest.
    // Checked by insert(); a SYN reusing a closed connection or set_state() may pass it.
    uint32_t embryonic_permille = 500;
    uint64_t hash_seed = 0;  // 0: random (std::random_device); fixed only for tests
  };

  // Per-reason counters; written by the owning worker only (it copies them to its lcore stats).
  struct Stats {
    uint64_t inserted = 0;
    uint64_t refused_full = 0;
    uint64_t refused_embryonic = 0;
    uint64_t refused_exists = 0;
    uint64_t refused_no_slot = 0;
    uint64_t evicted_embryonic = 0;  // by the evicting insert()
    uint64_t expired = 0;
    uint64_t erased = 0;
    uint64_t reused = 0;  // client SYN restarted a TIME_WAIT/CLOSE connection in place
  };

  // Control thread, at start-up: allocates everything. Throws std::invalid_argument when
  // capacity is 0 or above kMaxCapacity, std::bad_alloc when memory is short.
  explicit ConnTable(const Params& p);
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  // Worker. The 64-bit hash find() and prefetch() take (seeded: tables differ). ~3 ns.
  uint64_t hash(const FlowKey& k) const noexcept {
    const uint64_t a = (uint64_t{k.src_ip} << 32) | k.dst_ip;
    const uint64_t b = (uint64_t{k.src_port} << 32) | (uint64_t{k.dst_port} << 16) | k.proto;
    return dp::splitmix64_mix(dp::splitmix64_mix(a ^ seed_[0]) ^ b ^ seed_[1]);
  }
  // Worker. Prefetches the key's first bucket, a burst ahead of find(k, h, ...).
  void prefetch(uint64_t h) const noexcept {
    __builtin_prefetch(&buckets_[static_cast<uint32_t>(h) & bucket_mask_]);
  }

  // Worker, per packet. Looks `k` up as a forward (client -> VIP) or reply (RS -> client) key;
  // *reply (may be null) tells which. nullptr if unknown. At most two buckets and one Conn read.
  Conn* find(const FlowKey& k, bool* reply) noexcept { return find(k, hash(k), reply); }
  Conn* find(const FlowKey& k, uint64_t h, bool* reply) noexcept;
  // Worker, per burst: find() for n keys, hashing and prefetching buckets then connections in
  // stages so the cache misses overlap. out[i] / reply[i] as find() (reply may be null).
  void find_bulk(const FlowKey* keys, uint32_t n, Conn** out, bool* reply) noexcept;
  // The same for keys the caller hashed (hashes[i] == hash(keys[i])) and whose first buckets it
  // prefetched, as early as it could (a worker does while it classifies the burst): the
  // buckets are read, the connections prefetched, then compared.
  void find_bulk(const FlowKey* keys, const uint64_t* hashes, uint32_t n, Conn** out,
                 bool* reply) noexcept;

  // Worker, per new flow. Creates a connection indexed by both keys: state kNone (TCP, counted
  // embryonic) or kUdp (anything else), expiry by that state from now_ns, every other
  // field zero/default; the caller then fills service/dest/rs/fwd_mode and, for TCP, calls
  // on_tcp() with the packet that created it. nullptr when refused: the reason is
  // last_refusal() and is counted in stats(). O(1); an index insert may move a few entries.
  Conn* insert(const FlowKey& fwd, const FlowKey& rev, uint64_t now_ns) noexcept;
  // Worker. As insert(), but when the table is full or the embryonic limit is hit, frees the
  // oldest embryonic connection first (calling on_evict(const Conn&) so the caller can update
  // its counts), like IPVS's drop_entry defence: a sustained SYN flood then cycles through the
  // embryonic share instead of locking new clients out until it ages. Still refuses when there
  // is no embryonic connection to evict, and for kExists/kNoSlot. A Conn* the caller still
  // holds for the evicted connection dangles afterwards.
  template <class F>
  Conn* insert(const FlowKey& fwd, const FlowKey& rev, uint64_t now_ns, F&& on_evict) noexcept;
  // Worker. As insert(), for a TCP flow that is established already: picked up mid-stream (a
  // Maglev service after a failover or restart) or synced from the peer. State ESTABLISHED
  // with its timeout, not embryonic, not subject to the embryonic limit. Non-TCP: as insert().
  Conn* insert_established(const FlowKey& fwd, const FlowKey& rev, uint64_t now_ns) noexcept;
  Refusal last_refusal() const noexcept { return last_refusal_; }

  // Worker, per TCP packet of `c`; `reply` is the direction find() reported. Advances IPVS's
  // state table (tcp_states in ip_vs_proto_tcp.c): the OUTPUT table for replies, the INPUT
  // table for client packets, or the INPUT-ONLY table while c.fwd_mode is kDr/kTun and no reply
  // has been seen (IPVS's NOOUTPUT flag). Flags are taken in IPVS's order RST, SYN, FIN, ACK; a
  // packet with none of them moves to CLOSE, as in IPVS. Sets expires_ns from the
  // new state's timeout. Returns the previous state (for active/inactive counts).
  //
  // A client SYN on a TIME_WAIT or CLOSE connection restarts it in place (SYN_RECV, same real
  // server, embryonic again), as IPVS with conn_reuse_mode=0. A caller that wants IPVS's default
  // (reschedule to a possibly different real server) checks is_reusable() first and does
  // erase() + insert(). O(1).
  TcpState on_tcp(Conn& c, bool reply, uint8_t tcp_flags, uint64_t now_ns) noexcept {
    // Inline, the common case: an ACK (no RST, SYN or FIN) of an established connection stays
    // established in all three tables and only moves the expiry forward.
    if (c.state == TcpState::kEstablished &&
        (tcp_flags & (kTcpRst | kTcpSyn | kTcpFin | kTcpAck)) == kTcpAck) {
      const uint64_t e = now_ns + timeout_ns_[static_cast<size_t>(TcpState::kEstablished)];
      if (e >= c.expires_ns) {
        if (reply) c.flags_ |= Conn::kSeenReply;
        c.expires_ns = e;
        return TcpState::kEstablished;
      }
    }
    return on_tcp_table(c, reply, tcp_flags, now_ns);
  }
  // Worker. Sets a TCP state learnt elsewhere (the peer's sync messages) with that state's
  // timeout from now_ns; embryonic iff `s` is an opening state (NONE, SYN_SENT, SYN_RECV,
  // SYNACK, LISTEN). Returns the previous state. O(1).
  TcpState set_state(Conn& c, TcpState s, uint64_t now_ns) noexcept;
  // Worker, per UDP (or other non-TCP) packet of `c`: state kUdp, expiry now + udp. O(1).
  void on_udp(Conn& c, uint64_t now_ns) noexcept;
  // True when this packet would start a new connection on `c` (a bare client SYN on a
  // TIME_WAIT or CLOSE connection): IPVS's is_new_conn() && is_new_conn_expected().
  static bool is_reusable(const Conn& c, bool reply, uint8_t tcp_flags) noexcept;

  // Worker. Frees `c` (null is ignored). O(1).
  void erase(Conn* c) noexcept;

  // Worker, from its loop. Frees connections whose expires_ns <= now_ns, calling
  // on_expire(const Conn&) before each (which must not modify the table). Expires at most
  // `max` and moves at most `max` not-yet-due ones to later slots per call; walks at most
  // kWheelSlots slots, however far the clock jumped. Returns how many expired.
  template <class F>
  uint32_t expire(uint64_t now_ns, uint32_t max, F&& on_expire) noexcept;

  // Control plane reload, called on the worker: applies from each connection's next packet
  // (IPVS: the timeout is taken at every state transition).
  void set_timeouts(const Timeouts& t) noexcept;
  const Timeouts& timeouts() const noexcept { return timeouts_; }

  // Listing (ipvsadm -L -c), on the worker or while it is stopped; O(capacity), not per packet.
  template <class F>
  void for_each(F&& f) const;
  // The same in pieces, so a worker can serve a listing between bursts: visits the connections
  // in slots [from, from + count) and returns where to continue (capacity() when done).
  // Connections inserted or freed between pieces may or may not be seen, as in
  // /proc/net/ip_vs_conn.
  template <class F>
  uint32_t for_each_from(uint32_t from, uint32_t count, F&& f) const;

  uint32_t size() const noexcept { return size_; }
  uint32_t capacity() const noexcept { return capacity_; }
  uint32_t embryonic() const noexcept { return embryonic_; }
  uint32_t embryonic_limit() const noexcept { return embryonic_limit_; }
  const Stats& stats() const noexcept { return stats_; }
  // Connections freed so far (erase, expiry, eviction). A Conn* found earlier still names the
  // same connection while this has not changed (inserts never move connections).
  uint64_t released() const noexcept { return released_; }
  // Bytes this table holds; fixed at construction.
  size_t memory_bytes() const noexcept;
  // Index load (keys / ways), for tests and diagnostics.
  double index_load() const noexcept;

 private:
  static constexpr uint32_t kNil = 0xffffffffu;
  static constexpr uint32_t kWays = 8;
  static constexpr uint32_t kSlotMask = kWheelSlots - 1;

  struct alignas(64) Bucket {
    uint32_t sig[kWays];
    uint32_t val[kWays];  // (conn index << 1) | reply; kNil when empty
  };

  // Bit w set when way w of `bk` holds `sig` (used or not): compared all at once, no branch per
  // way (a loop that stops at the match mispredicts on nearly every lookup).
  static uint32_t sig_matches(const Bucket& bk, uint32_t sig) noexcept {
#if defined(__SSE2__)
    static_assert(kWays == 8);
    const __m128i s = _mm_set1_epi32(static_cast<int>(sig));
    const auto* p = reinterpret_cast<const __m128i*>(bk.sig);
    const int lo = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128(p), s)));
    const int hi = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128(p + 1), s)));
    return static_cast<uint32_t>(lo | (hi << 4));
#else
    uint32_t m = 0;
    for (uint32_t w = 0; w < kWays; ++w) m |= static_cast<uint32_t>(bk.sig[w] == sig) << w;
    return m;
#endif
  }
  // The other bucket of a key, from its signature alone, so entries can be moved without reading
  // their connection. Symmetric (alt(alt(b)) == b) and never b itself (the xor is odd).
  uint32_t alt_bucket(uint32_t b, uint32_t sig) const noexcept {
    const uint32_t x = ((sig * 0x9e3779b1u) >> (32 - bucket_bits_)) | 1u;
    return (b ^ x) & bucket_mask_;
  }
  void prefetch_both(uint64_t h) const noexcept;  // both buckets of a key
  bool index_add(uint64_t h, uint32_t val) noexcept;
  void index_del(uint64_t h, uint32_t val) noexcept;
  uint32_t lookup(const FlowKey& k, uint64_t h) const noexcept;  // index value or kNil

  Refusal admit(const FlowKey& fwd, const FlowKey& rev, uint64_t hf, uint64_t hr,
                bool embryonic) const noexcept;
  Conn* refuse(Refusal r) noexcept;
  Conn* create(const FlowKey& fwd, const FlowKey& rev, uint64_t hf, uint64_t hr, uint64_t now_ns,
               bool established) noexcept;
  void set_embryonic(Conn& c, bool on) noexcept;
  void release(uint32_t i) noexcept;

  void wheel_link(uint32_t i, uint64_t tick) noexcept;
  void wheel_unlink(uint32_t i) noexcept;
  void place(uint32_t i, uint64_t lowest_tick) noexcept;
  void set_expiry(Conn& c, uint64_t now_ns, TcpState s) noexcept;
  // Next due connection (still linked) or kNil; moves not-due ones while *moves_left allows.
  uint32_t next_due(uint64_t now_ns, uint32_t* moves_left) noexcept;

  void emb_append(uint32_t i) noexcept;
  void emb_remove(uint32_t i) noexcept;

  TcpState on_tcp_table(Conn& c, bool reply, uint8_t tcp_flags, uint64_t now_ns) noexcept;

  uint32_t index_of(const Conn& c) const noexcept {
    return static_cast<uint32_t>(&c - conns_.get());
  }

  // Big arrays come from dp::map_table (transparent huge pages requested): with 4 KiB pages
  // every random access to 160 MB would also miss the TLB.
  struct Unmap {
    size_t bytes;
    void operator()(void* p) const noexcept;
  };
  template <class T>
  using Mapped = std::unique_ptr<T[], Unmap>;
  template <class T>
  static Mapped<T> map_array(size_t n);

  uint32_t capacity_;
  uint32_t embryonic_limit_;
  uint32_t bucket_mask_;
  uint32_t bucket_bits_;
  uint64_t seed_[2];
  Mapped<Conn> conns_;
  Mapped<Bucket> buckets_;
  std::unique_ptr<uint32_t[]> wheel_;  // head per slot
  uint64_t cursor_ = 0;                // next tick to process; every conn sits within
                                       // [cursor_, cursor_ + kWheelSlots)
  uint32_t free_head_ = kNil;          // through wheel_next_
  uint32_t emb_head_ = kNil, emb_tail_ = kNil;
  uint32_t size_ = 0;
  uint32_t embryonic_ = 0;
  Refusal last_refusal_ = Refusal::kNone;
  Timeouts timeouts_;
  uint64_t timeout_ns_[kTcpStateCount] = {};
  Stats stats_;
  uint64_t released_ = 0;
};

template <class F>
Conn* ConnTable::insert(const FlowKey& fwd, const FlowKey& rev, uint64_t now_ns,
                        F&& on_evict) noexcept {
  const uint64_t hf = hash(fwd), hr = hash(rev);
  prefetch_both(hf);
  prefetch_both(hr);
  const bool tcp = fwd.proto == static_cast<uint8_t>(Proto::kTcp);
  Refusal r = admit(fwd, rev, hf, hr, tcp);
  if ((r == Refusal::kFull || r == Refusal::kEmbryonicLimit) && emb_head_ != kNil) {
    const uint32_t victim = emb_head_;
    on_evict(static_cast<const Conn&>(conns_[victim]));
    release(victim);
    ++stats_.evicted_embryonic;
    r = admit(fwd, rev, hf, hr, tcp);
  }
  if (r != Refusal::kNone) return refuse(r);
  return create(fwd, rev, hf, hr, now_ns, false);
}

template <class F>
uint32_t ConnTable::expire(uint64_t now_ns, uint32_t max, F&& on_expire) noexcept {
  uint32_t done = 0;
  uint32_t moves_left = max;
  while (done < max) {
    const uint32_t i = next_due(now_ns, &moves_left);
    if (i == kNil) break;
    on_expire(static_cast<const Conn&>(conns_[i]));
    release(i);
    ++done;
  }
  stats_.expired += done;
  return done;
}

template <class F>
void ConnTable::for_each(F&& f) const {
  for_each_from(0, capacity_, f);
}

template <class F>
uint32_t ConnTable::for_each_from(uint32_t from, uint32_t count, F&& f) const {
  const uint32_t left = from < capacity_ ? capacity_ - from : 0;
  const uint32_t end = count < left ? from + count : capacity_;
  for (uint32_t i = from; i < end; ++i) {
    if (conns_[i].flags_ & Conn::kUsed) f(static_cast<const Conn&>(conns_[i]));
  }
  return end;
}

}  // namespace lb
