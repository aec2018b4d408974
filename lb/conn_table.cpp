#include "lb/conn_table.h"

#include <algorithm>
#include <cassert>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "dataplane/table_memory.h"

namespace lb {

static_assert(sizeof(FlowKey) == 16);
static_assert(sizeof(Conn) == 128, "hot fields in the first cache line, the rest in the second");
static_assert((ConnTable::kWheelSlots & (ConnTable::kWheelSlots - 1)) == 0);

namespace {

constexpr uint8_t kProtoTcp = static_cast<uint8_t>(Proto::kTcp);
constexpr uint64_t kNsPerSec = 1'000'000'000;

// IPVS's TCP state table (ip_vs_proto_tcp.c, tcp_states), re-indexed by our TcpState order.
// [direction][event][current state] -> next state.
enum Dir { kInput = 0, kOutput = 1, kInputOnly = 2 };
enum Event { kEvSyn = 0, kEvFin = 1, kEvAck = 2, kEvRst = 3 };
constexpr size_t kTcpStates = 11;  // kNone .. kSynAck

// Short aliases, so the table below reads like the one in IPVS.
constexpr TcpState NO = TcpState::kNone, SS = TcpState::kSynSent, SR = TcpState::kSynRecv,
                   ES = TcpState::kEstablished, FW = TcpState::kFinWait, TW = TcpState::kTimeWait,
                   CL = TcpState::kClose, CW = TcpState::kCloseWait, LA = TcpState::kLastAck,
                   LI = TcpState::kListen, SA = TcpState::kSynAck;

// clang-format off
constexpr TcpState kNext[3][4][kTcpStates] = {
    // client -> server, replies seen (NAT)
    //  NO  SS  SR  ES  FW  TW  CL  CW  LA  LI  SA
    {{SR, ES, SR, ES, SR, SR, SR, SR, SR, SR, SR},   // syn
     {CL, SS, TW, CW, TW, TW, CL, CW, LA, LI, TW},   // fin
     {CL, SS, ES, ES, FW, TW, CL, CW, CL, LI, ES},   // ack
     {CL, CL, SR, CL, CL, CL, CL, CL, LA, LI, SR}},  // rst
    // server -> client
    {{SS, SS, SR, ES, SS, SS, SS, SS, SS, LI, SR},
     {TW, SS, TW, FW, FW, TW, CL, TW, LA, LI, TW},
     {ES, SS, ES, ES, FW, TW, CL, CW, LA, ES, ES},
     {CL, SS, CL, CL, CL, TW, CL, CL, CL, CL, CL}},
    // client -> server, replies bypass us (DR/TUN until a reply shows up)
    {{SR, ES, SR, ES, SR, SR, SR, SR, SR, SR, SR},
     {CL, SS, TW, FW, FW, TW, CL, CW, LA, LI, TW},
     {CL, SS, ES, ES, FW, TW, CL, CW, CL, LI, ES},
     {CL, CL, SR, CL, CL, CL, CL, CL, LA, LI, CL}},
};
// clang-format on

// IPVS's precedence: RST, then SYN, then FIN, then ACK; -1 when none is set.
constexpr int event_of(uint8_t flags) noexcept {
  if (flags & kTcpRst) return kEvRst;
  if (flags & kTcpSyn) return kEvSyn;
  if (flags & kTcpFin) return kEvFin;
  if (flags & kTcpAck) return kEvAck;
  return -1;
}

uint32_t next_pow2(uint64_t v) noexcept {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return static_cast<uint32_t>(p);
}

}  // namespace

std::string_view to_string(TcpState s) noexcept {
  switch (s) {
    case TcpState::kNone:
      return "NONE";
    case TcpState::kSynSent:
      return "SYN_SENT";
    case TcpState::kSynRecv:
      return "SYN_RECV";
    case TcpState::kEstablished:
      return "ESTABLISHED";
    case TcpState::kFinWait:
      return "FIN_WAIT";
    case TcpState::kTimeWait:
      return "TIME_WAIT";
    case TcpState::kClose:
      return "CLOSE";
    case TcpState::kCloseWait:
      return "CLOSE_WAIT";
    case TcpState::kLastAck:
      return "LAST_ACK";
    case TcpState::kListen:
      return "LISTEN";
    case TcpState::kSynAck:
      return "SYNACK";
    case TcpState::kUdp:
      return "UDP";
  }
  return "ERR!";
}

std::string_view to_string(Refusal r) noexcept {
  switch (r) {
    case Refusal::kNone:
      return "none";
    case Refusal::kFull:
      return "full";
    case Refusal::kEmbryonicLimit:
      return "embryonic_limit";
    case Refusal::kExists:
      return "exists";
    case Refusal::kNoSlot:
      return "no_slot";
  }
  return "?";
}

void ConnTable::Unmap::operator()(void* p) const noexcept {
  dp::unmap_table(p, bytes);
}

template <class T>
ConnTable::Mapped<T> ConnTable::map_array(size_t n) {
  static_assert(std::is_trivially_destructible_v<T>);
  const size_t bytes = n * sizeof(T);
  T* a = static_cast<T*>(dp::map_table(bytes));
  for (size_t i = 0; i < n; ++i) new (&a[i]) T();
  return Mapped<T>(a, Unmap{bytes});
}

ConnTable::ConnTable(const Params& p) : capacity_(p.capacity) {
  if (p.capacity == 0 || p.capacity > kMaxCapacity)
    throw std::invalid_argument("connection table capacity must be 1.." +
                                std::to_string(kMaxCapacity));
  embryonic_limit_ = static_cast<uint32_t>(uint64_t{capacity_} *
                                           std::min<uint32_t>(p.embryonic_permille, 1000) / 1000);

  // Two keys per connection, at most 85% of the ways used when every slot is.
  const uint64_t keys = uint64_t{capacity_} * 2;
  const uint64_t need = (keys * 100 + kWays * 85 - 1) / (kWays * 85);
  const uint32_t buckets = next_pow2(std::max<uint64_t>(need, 2));
  bucket_mask_ = buckets - 1;
  bucket_bits_ = 0;
  while ((uint32_t{1} << bucket_bits_) < buckets) ++bucket_bits_;

  if (p.hash_seed != 0) {
    seed_[0] = dp::splitmix64_mix(p.hash_seed);
    seed_[1] = dp::splitmix64_mix(p.hash_seed ^ 0x9e3779b97f4a7c15ULL);
  } else {
    std::random_device rd;
    seed_[0] = (uint64_t{rd()} << 32) | rd();
    seed_[1] = (uint64_t{rd()} << 32) | rd();
  }

  conns_ = map_array<Conn>(capacity_);
  for (uint32_t i = 0; i < capacity_; ++i) conns_[i].wheel_next_ = i + 1 < capacity_ ? i + 1 : kNil;
  free_head_ = 0;

  buckets_ = map_array<Bucket>(buckets);
  for (uint32_t b = 0; b < buckets; ++b) {
    for (uint32_t w = 0; w < kWays; ++w) {
      buckets_[b].sig[w] = 0;
      buckets_[b].val[w] = kNil;
    }
  }

  wheel_ = std::make_unique<uint32_t[]>(kWheelSlots);
  std::fill_n(wheel_.get(), kWheelSlots, kNil);

  set_timeouts(p.timeouts);
}

ConnTable::~ConnTable() = default;

size_t ConnTable::memory_bytes() const noexcept {
  return sizeof(*this) + conns_.get_deleter().bytes + buckets_.get_deleter().bytes +
         size_t{kWheelSlots} * sizeof(uint32_t);
}

double ConnTable::index_load() const noexcept {
  return 2.0 * size_ / (static_cast<double>(bucket_mask_ + 1) * kWays);
}

void ConnTable::set_timeouts(const Timeouts& t) noexcept {
  timeouts_ = t;
  auto ns = [](uint32_t s) { return uint64_t{s} * kNsPerSec; };
  timeout_ns_[static_cast<size_t>(TcpState::kNone)] = ns(t.tcp_none);
  timeout_ns_[static_cast<size_t>(TcpState::kSynSent)] = ns(t.tcp_syn_sent);
  timeout_ns_[static_cast<size_t>(TcpState::kSynRecv)] = ns(t.tcp_syn);
  timeout_ns_[static_cast<size_t>(TcpState::kEstablished)] = ns(t.tcp_established);
  timeout_ns_[static_cast<size_t>(TcpState::kFinWait)] = ns(t.tcp_fin);
  timeout_ns_[static_cast<size_t>(TcpState::kTimeWait)] = ns(t.tcp_time_wait);
  timeout_ns_[static_cast<size_t>(TcpState::kClose)] = ns(t.tcp_close);
  timeout_ns_[static_cast<size_t>(TcpState::kCloseWait)] = ns(t.tcp_close_wait);
  timeout_ns_[static_cast<size_t>(TcpState::kLastAck)] = ns(t.tcp_last_ack);
  timeout_ns_[static_cast<size_t>(TcpState::kListen)] = ns(t.tcp_syn_sent);
  timeout_ns_[static_cast<size_t>(TcpState::kSynAck)] = ns(t.tcp_syn_sent);
  timeout_ns_[static_cast<size_t>(TcpState::kUdp)] = ns(t.udp);
}

// ---- hash index ----------------------------------------------------------------------------

void ConnTable::prefetch_both(uint64_t h) const noexcept {
  const uint32_t b = static_cast<uint32_t>(h) & bucket_mask_;
  __builtin_prefetch(&buckets_[b]);
  __builtin_prefetch(&buckets_[alt_bucket(b, static_cast<uint32_t>(h >> 32))]);
}

uint32_t ConnTable::lookup(const FlowKey& k, uint64_t h) const noexcept {
  const uint32_t sig = static_cast<uint32_t>(h >> 32);
  uint32_t b = static_cast<uint32_t>(h) & bucket_mask_;
  for (int pass = 0; pass < 2; ++pass) {
    const Bucket& bk = buckets_[b];
    for (uint32_t m = sig_matches(bk, sig); m != 0; m &= m - 1) {
      const uint32_t v = bk.val[__builtin_ctz(m)];
      if (v == kNil) continue;
      const Conn& c = conns_[v >> 1];
      if (((v & 1) ? c.rev : c.fwd) == k) return v;
    }
    b = alt_bucket(b, sig);
  }
  return kNil;
}

Conn* ConnTable::find(const FlowKey& k, uint64_t h, bool* reply) noexcept {
  const uint32_t v = lookup(k, h);
  if (v == kNil) return nullptr;
  if (reply) *reply = (v & 1) != 0;
  return &conns_[v >> 1];
}

void ConnTable::find_bulk(const FlowKey* keys, uint32_t n, Conn** out, bool* reply) noexcept {
  constexpr uint32_t kChunk = 32;
  uint64_t h[kChunk];
  for (uint32_t base = 0; base < n; base += kChunk) {
    const uint32_t m = std::min(kChunk, n - base);
    for (uint32_t j = 0; j < m; ++j) {
      h[j] = hash(keys[base + j]);
    }
    find_bulk(keys + base, h, m, out + base, reply != nullptr ? reply + base : nullptr);
  }
}

void ConnTable::find_bulk(const FlowKey* keys, const uint64_t* hashes, uint32_t n, Conn** out,
                          bool* reply) noexcept {
  constexpr uint32_t kChunk = 64;
  uint32_t cand[kChunk];
  for (uint32_t base = 0; base < n; base += kChunk) {
    const uint32_t m = std::min(kChunk, n - base);
    const FlowKey* k = keys + base;
    const uint64_t* h = hashes + base;
    for (uint32_t j = 0; j < m; ++j) prefetch(h[j]);
    // First used signature match in the first bucket (where most keys live); prefetch its
    // connection, or the second bucket when there is none.
    for (uint32_t j = 0; j < m; ++j) {
      const uint32_t sig = static_cast<uint32_t>(h[j] >> 32);
      const uint32_t b = static_cast<uint32_t>(h[j]) & bucket_mask_;
      const Bucket& bk = buckets_[b];
      cand[j] = kNil;
      for (uint32_t ms = sig_matches(bk, sig); ms != 0; ms &= ms - 1) {
        const uint32_t v = bk.val[__builtin_ctz(ms)];
        if (v != kNil) {
          cand[j] = v;
          break;
        }
      }
      if (cand[j] != kNil) {
        // The first line only: everything a packet of an established flow touches.
        __builtin_prefetch(&conns_[cand[j] >> 1]);
      } else {
        __builtin_prefetch(&buckets_[alt_bucket(b, sig)]);
      }
    }
    for (uint32_t j = 0; j < m; ++j) {
      if (cand[j] != kNil) {
        Conn& c = conns_[cand[j] >> 1];
        if (((cand[j] & 1) ? c.rev : c.fwd) == k[j]) {
          out[base + j] = &c;
          if (reply) reply[base + j] = (cand[j] & 1) != 0;
          continue;
        }
      }
      const uint32_t v = lookup(k[j], h[j]);
      out[base + j] = v == kNil ? nullptr : &conns_[v >> 1];
      if (reply) reply[base + j] = v != kNil && (v & 1) != 0;
    }
  }
}

// Places (sig, val) in one of its two buckets. When both are full, a breadth-first search over
// "move a resident to its other bucket" finds the shortest path ending at a free way (at most
// kBfsNodes buckets read, no allocation); the moves are then made from the free end backwards,
// so the table is consistent at every step and untouched when no path exists.
bool ConnTable::index_add(uint64_t h, uint32_t val) noexcept {
  const uint32_t sig = static_cast<uint32_t>(h >> 32);
  const uint32_t b1 = static_cast<uint32_t>(h) & bucket_mask_;
  const uint32_t b2 = alt_bucket(b1, sig);
  auto free_way = [this](uint32_t b) -> int {
    for (uint32_t w = 0; w < kWays; ++w) {
      if (buckets_[b].val[w] == kNil) return static_cast<int>(w);
    }
    return -1;
  };
  auto put = [this](uint32_t b, uint32_t w, uint32_t s, uint32_t v) {
    buckets_[b].sig[w] = s;
    buckets_[b].val[w] = v;
  };
  // Fill the first bucket first: find_bulk() prefetches it.
  for (uint32_t b : {b1, b2}) {
    if (const int w = free_way(b); w >= 0) {
      put(b, static_cast<uint32_t>(w), sig, val);
      return true;
    }
  }

  constexpr int kBfsNodes = 512;
  struct Node {
    uint32_t bucket;
    int16_t parent;  // -1 for the two roots
    uint8_t way;     // the way of the parent's bucket whose resident moves here
  };
  Node q[kBfsNodes];
  int head = 0, tail = 0;
  q[tail++] = {b1, -1, 0};
  q[tail++] = {b2, -1, 0};
  while (head < tail) {
    const int n = head++;
    const uint32_t nb = q[n].bucket;
    for (uint32_t w = 0; w < kWays; ++w) {
      const uint32_t a = alt_bucket(nb, buckets_[nb].sig[w]);
      bool on_path = false;
      for (int x = n; x >= 0; x = q[x].parent) {
        if (q[x].bucket == a) {
          on_path = true;
          break;
        }
      }
      if (on_path) continue;
      if (const int e = free_way(a); e >= 0) {
        // Move nb[w] -> a[e], then each ancestor's way into the way just vacated.
        uint32_t dst_b = a, dst_w = static_cast<uint32_t>(e), src_w = w;
        for (int x = n;;) {
          const Bucket& src = buckets_[q[x].bucket];
          put(dst_b, dst_w, src.sig[src_w], src.val[src_w]);
          dst_b = q[x].bucket;
          dst_w = src_w;
          if (q[x].parent < 0) break;
          src_w = q[x].way;
          x = q[x].parent;
        }
        put(dst_b, dst_w, sig, val);
        return true;
      }
      if (tail < kBfsNodes) q[tail++] = {a, static_cast<int16_t>(n), static_cast<uint8_t>(w)};
    }
  }
  return false;
}

void ConnTable::index_del(uint64_t h, uint32_t val) noexcept {
  const uint32_t sig = static_cast<uint32_t>(h >> 32);
  uint32_t b = static_cast<uint32_t>(h) & bucket_mask_;
  for (int pass = 0; pass < 2; ++pass) {
    Bucket& bk = buckets_[b];
    for (uint32_t w = 0; w < kWays; ++w) {
      if (bk.val[w] == val) {
        bk.val[w] = kNil;
        return;
      }
    }
    b = alt_bucket(b, sig);
  }
  assert(!"connection key missing from the index");
}

// ---- connections -----------------------------------------------------------------------------

Refusal ConnTable::admit(const FlowKey& fwd, const FlowKey& rev, uint64_t hf, uint64_t hr,
                         bool embryonic) const noexcept {
  if (lookup(fwd, hf) != kNil || lookup(rev, hr) != kNil) return Refusal::kExists;
  if (size_ >= capacity_) return Refusal::kFull;
  if (embryonic && embryonic_ >= embryonic_limit_) return Refusal::kEmbryonicLimit;
  return Refusal::kNone;
}

Conn* ConnTable::refuse(Refusal r) noexcept {
  last_refusal_ = r;
  switch (r) {
    case Refusal::kFull:
      ++stats_.refused_full;
      break;
    case Refusal::kEmbryonicLimit:
      ++stats_.refused_embryonic;
      break;
    case Refusal::kExists:
      ++stats_.refused_exists;
      break;
    case Refusal::kNoSlot:
      ++stats_.refused_no_slot;
      break;
    case Refusal::kNone:
      break;
  }
  return nullptr;
}

Conn* ConnTable::insert(const FlowKey& fwd, const FlowKey& rev, uint64_t now_ns) noexcept {
  const uint64_t hf = hash(fwd), hr = hash(rev);
  prefetch_both(hf);
  prefetch_both(hr);
  const Refusal r = admit(fwd, rev, hf, hr, fwd.proto == kProtoTcp);
  if (r != Refusal::kNone) return refuse(r);
  return create(fwd, rev, hf, hr, now_ns, false);
}

Conn* ConnTable::insert_established(const FlowKey& fwd, const FlowKey& rev,
                                    uint64_t now_ns) noexcept {
  const uint64_t hf = hash(fwd), hr = hash(rev);
  prefetch_both(hf);
  prefetch_both(hr);
  const Refusal r = admit(fwd, rev, hf, hr, false);
  if (r != Refusal::kNone) return refuse(r);
  return create(fwd, rev, hf, hr, now_ns, true);
}

Conn* ConnTable::create(const FlowKey& fwd, const FlowKey& rev, uint64_t hf, uint64_t hr,
                        uint64_t now_ns, bool established) noexcept {
  const uint32_t i = free_head_;
  if (!index_add(hf, i << 1)) return refuse(Refusal::kNoSlot);
  if (!index_add(hr, (i << 1) | 1)) {
    index_del(hf, i << 1);
    return refuse(Refusal::kNoSlot);
  }
  Conn& c = conns_[i];
  free_head_ = c.wheel_next_;
  c = Conn{};
  c.fwd = fwd;
  c.rev = rev;
  c.flags_ = Conn::kUsed;
  const bool tcp = fwd.proto == kProtoTcp;
  c.state = !tcp ? TcpState::kUdp : established ? TcpState::kEstablished : TcpState::kNone;
  c.expires_ns = now_ns + timeout_ns_[static_cast<size_t>(c.state)];
  if (size_ == 0) cursor_ = std::max(cursor_, now_ns >> kTickShift);  // empty wheel: catch up
  ++size_;
  place(i, cursor_);
  if (tcp && !established) set_embryonic(c, true);
  ++stats_.inserted;
  last_refusal_ = Refusal::kNone;
  return &c;
}

void ConnTable::set_embryonic(Conn& c, bool on) noexcept {
  if (on == c.embryonic()) return;
  if (on) {
    c.flags_ |= Conn::kEmbryonic;
    emb_append(index_of(c));
    ++embryonic_;
  } else {
    c.flags_ &= static_cast<uint8_t>(~Conn::kEmbryonic);
    emb_remove(index_of(c));
    --embryonic_;
  }
}

void ConnTable::release(uint32_t i) noexcept {
  Conn& c = conns_[i];
  assert(c.flags_ & Conn::kUsed);
  index_del(hash(c.fwd), i << 1);
  index_del(hash(c.rev), (i << 1) | 1);
  wheel_unlink(i);
  set_embryonic(c, false);
  c.flags_ = 0;
  c.wheel_next_ = free_head_;
  free_head_ = i;
  --size_;
  ++released_;
}

void ConnTable::erase(Conn* c) noexcept {
  if (c == nullptr) return;
  const uint32_t i = index_of(*c);
  if (i >= capacity_ || !(c->flags_ & Conn::kUsed)) {
    assert(!"erase() of a connection that is not in this table");
    return;
  }
  release(i);
  ++stats_.erased;
}

// on_tcp() beyond its inline case: the whole table.
TcpState ConnTable::on_tcp_table(Conn& c, bool reply, uint8_t tcp_flags, uint64_t now_ns) noexcept {
  assert(index_of(c) < capacity_ && (c.flags_ & Conn::kUsed));
  const TcpState prev = c.state;
  if (reply) c.flags_ |= Conn::kSeenReply;
  const Dir dir = reply                                                         ? kOutput
                  : (c.fwd_mode != Fwd::kNat && !(c.flags_ & Conn::kSeenReply)) ? kInputOnly
                                                                                : kInput;
  // A UDP entry handed to on_tcp() (a caller bug) starts over from NONE.
  const size_t from = static_cast<size_t>(prev) < kTcpStates ? static_cast<size_t>(prev) : 0;
  const int ev = event_of(tcp_flags);
  const TcpState next = ev < 0 ? TcpState::kClose : kNext[dir][ev][from];
  c.state = next;

  if (c.embryonic()) {
    if (next == TcpState::kEstablished) set_embryonic(c, false);
  } else if (ev == kEvSyn && (prev == TcpState::kTimeWait || prev == TcpState::kClose) &&
             next != TcpState::kEstablished && c.fwd.proto == kProtoTcp) {
    // A new connection on the same addresses and ports: not established until it is again.
    set_embryonic(c, true);
    ++stats_.reused;
  }
  set_expiry(c, now_ns, next);
  return prev;
}

TcpState ConnTable::set_state(Conn& c, TcpState s, uint64_t now_ns) noexcept {
  assert(index_of(c) < capacity_ && (c.flags_ & Conn::kUsed));
  const TcpState prev = c.state;
  c.state = s;
  const bool opening = s == TcpState::kNone || s == TcpState::kSynSent || s == TcpState::kSynRecv ||
                       s == TcpState::kSynAck || s == TcpState::kListen;
  set_embryonic(c, opening && c.fwd.proto == kProtoTcp);
  set_expiry(c, now_ns, s);
  return prev;
}

void ConnTable::on_udp(Conn& c, uint64_t now_ns) noexcept {
  assert(index_of(c) < capacity_ && (c.flags_ & Conn::kUsed));
  c.state = TcpState::kUdp;
  set_expiry(c, now_ns, TcpState::kUdp);
}

bool ConnTable::is_reusable(const Conn& c, bool reply, uint8_t tcp_flags) noexcept {
  return !reply && (tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) == kTcpSyn &&
         (c.state == TcpState::kTimeWait || c.state == TcpState::kClose);
}

// ---- aging -----------------------------------------------------------------------------------

void ConnTable::set_expiry(Conn& c, uint64_t now_ns, TcpState s) noexcept {
  const uint64_t before = c.expires_ns;
  c.expires_ns = now_ns + timeout_ns_[static_cast<size_t>(s)];
  if (c.expires_ns >= before) return;  // later: the wheel catches up lazily
  // Sooner than its slot: relink now, or it would outlive its timeout.
  const uint64_t slot_tick =
      cursor_ + ((c.wheel_slot_ - static_cast<uint32_t>(cursor_)) & kSlotMask);
  if ((c.expires_ns >> kTickShift) < slot_tick) {
    const uint32_t i = index_of(c);
    wheel_unlink(i);
    place(i, cursor_);
  }
}

void ConnTable::wheel_link(uint32_t i, uint64_t tick) noexcept {
  const uint32_t slot = static_cast<uint32_t>(tick) & kSlotMask;
  Conn& c = conns_[i];
  c.wheel_slot_ = slot;
  c.wheel_prev_ = kNil;
  c.wheel_next_ = wheel_[slot];
  if (c.wheel_next_ != kNil) conns_[c.wheel_next_].wheel_prev_ = i;
  wheel_[slot] = i;
}

void ConnTable::wheel_unlink(uint32_t i) noexcept {
  Conn& c = conns_[i];
  if (c.wheel_prev_ != kNil)
    conns_[c.wheel_prev_].wheel_next_ = c.wheel_next_;
  else
    wheel_[c.wheel_slot_] = c.wheel_next_;
  if (c.wheel_next_ != kNil) conns_[c.wheel_next_].wheel_prev_ = c.wheel_prev_;
}

// Slot of the connection's expiry, kept inside [lowest_tick, cursor_ + kWheelSlots - 1]: never
// later than its expiry (so never expired late), and never the slot being processed.
void ConnTable::place(uint32_t i, uint64_t lowest_tick) noexcept {
  const uint64_t tick =
      std::clamp(conns_[i].expires_ns >> kTickShift, lowest_tick, cursor_ + kWheelSlots - 1);
  wheel_link(i, tick);
}

uint32_t ConnTable::next_due(uint64_t now_ns, uint32_t* moves_left) noexcept {
  // Ticks before now_tick are over: everything placed there expired before now_ns, unless it
  // was touched since.
  const uint64_t now_tick = now_ns >> kTickShift;
  if (size_ == 0) {
    cursor_ = std::max(cursor_, now_tick);
    return kNil;
  }
  // After a jump, one turn of the wheel visits every connection: start it just one turn back.
  if (now_tick > cursor_ + kWheelSlots) cursor_ = now_tick - kWheelSlots;
  while (cursor_ < now_tick) {
    uint32_t& head = wheel_[static_cast<uint32_t>(cursor_) & kSlotMask];
    while (head != kNil) {
      const uint32_t i = head;
      if (conns_[i].expires_ns <= now_ns) return i;
      if (*moves_left == 0) return kNil;
      --*moves_left;
      wheel_unlink(i);
      place(i, cursor_ + 1);
    }
    ++cursor_;
  }
  return kNil;
}

void ConnTable::emb_append(uint32_t i) noexcept {
  Conn& c = conns_[i];
  c.emb_next_ = kNil;
  c.emb_prev_ = emb_tail_;
  if (emb_tail_ != kNil)
    conns_[emb_tail_].emb_next_ = i;
  else
    emb_head_ = i;
  emb_tail_ = i;
}

void ConnTable::emb_remove(uint32_t i) noexcept {
  Conn& c = conns_[i];
  if (c.emb_prev_ != kNil)
    conns_[c.emb_prev_].emb_next_ = c.emb_next_;
  else
    emb_head_ = c.emb_next_;
  if (c.emb_next_ != kNil)
    conns_[c.emb_next_].emb_prev_ = c.emb_prev_;
  else
    emb_tail_ = c.emb_prev_;
}

}  // namespace lb
