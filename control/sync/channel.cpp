// The sync link's transport (see channel.h for the wire format and the contract).
//
// Handshake, in this implementation's terms. Each side has a current nonce (nonce_), fresh every
// time it goes down. A HELLO carries (our nonce, the last nonce we heard from the candidate, an
// "up" flag). A side comes up with boot id X only on a HELLO from X that echoes its current
// nonce: X has heard us since we last went down, so the HELLO is not a recording. A side answers
// every HELLO whose sender is not up yet, which makes simultaneous starts converge in one round
// trip and lost HELLOs recover at the next retry. While up:
//   - a HELLO from the peer with the session's nonce is a late or repeated handshake message
//     (answered if the peer is not up yet);
//   - a HELLO from the peer with a new nonce means the peer ended the session (it went silent on
//     its side): we end ours and take part in the new handshake;
//   - a HELLO from another boot id (the peer restarted, or a recording) gets a probe HELLO with a
//     fresh nonce; only an answer echoing that nonce ends the session and starts the new one, so
//     a replayed HELLO of an old incarnation cannot reset anything.
// A session the peer ended that way counts in stats().timeouts: it went silent on its side.
// Replays: a session's replay window starts at the HELLO that established it (everything the
// peer sent before, i.e. everything of earlier sessions, counts as seen).
//
// Loss detection (sender). The peer reports its lowest kMaxSack ranges, so only the newest
// report says anything complete, and only up to its last range: holes below that are candidates
// for fast retransmit, nothing above it is. A candidate is lost once an entry sent after its
// latest copy arrived (packet numbers; entries sent twice are ambiguous and never count, after
// Karn) and it has been out for srtt + srtt/4 (a packet merely overtaken arrives within that).
// Everything else waits rto_ns. New entries stop while the oldest unacknowledged transmission is
// kReplayWindow / 2 packets back, so a late packet that matters is never outside the peer's
// replay window.

#include "control/sync/channel.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <iterator>
#include <utility>

#include "control/sync/bytes.h"
#include "dataplane/hash.h"

namespace ctl::sync {
namespace {

constexpr uint8_t kMagic[4] = {'T', 'D', 'S', 'Y'};
// magic 4 | version 1 | type 1 | flags 2 | sender boot 8 | receiver boot 8 | packet 8 | ack 8 |
// sack count 1
constexpr size_t kBaseHeaderLen = 41;
constexpr size_t kSackLen = 16;
constexpr size_t kMaxHeaderLen = kBaseHeaderLen + kMaxSack * kSackLen;
constexpr size_t kEntryHeaderLen = 11;  // seq u64 | type u8 | length u16
constexpr size_t kCountLen = 2;
constexpr size_t kHelloFixedLen = 8 + 8 + 2;  // nonce, echo, status length
constexpr size_t kMaxStatus = 512;
// The smallest max_datagram we honour: a HELLO with a full header and no status, plus room for
// a short entry. Any real link's MTU is far above it.
constexpr size_t kMinDatagram = kMaxHeaderLen + kHelloFixedLen + kHmacLen + 64;
// flags bit 0 (HELLO only): the sender is up in the session the HELLO's nonces identify, so it
// needs no answer.
constexpr uint16_t kFlagUp = 1;

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

struct Hello {
  uint64_t nonce = 0, echo = 0;
  std::span<const uint8_t> status;
};

bool parse_status(Reader& r, std::span<const uint8_t>& status) {
  const size_t n = r.u16();
  if (n > kMaxStatus) return false;
  status = r.bytes(n);
  return r.ok() && r.left() == 0;
}

bool parse_hello(std::span<const uint8_t> body, Hello& h) {
  Reader r(body);
  h.nonce = r.u64();
  h.echo = r.u64();
  return parse_status(r, h.status) && h.nonce != 0;
}

// Calls f(seq, type, bytes) per entry; false (and possibly some calls) if the body is malformed.
template <class F>
bool for_each_entry(std::span<const uint8_t> body, F&& f) {
  Reader r(body);
  const size_t count = r.u16();
  if (!r.ok() || count == 0) return false;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t seq = r.u64();
    const uint8_t type = r.u8();
    const size_t len = r.u16();
    const auto bytes = r.bytes(len);
    if (!r.ok() || seq == 0) return false;
    f(seq, type, bytes);
  }
  return r.left() == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HMAC

struct Channel::Mac {
  EVP_MAC_CTX* ctx = nullptr;
  ~Mac() { EVP_MAC_CTX_free(ctx); }

  bool init(std::span<const uint8_t> key) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) return false;
    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context holds its own reference
    if (ctx == nullptr) return false;
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_END};
    static const uint8_t kNoKey = 0;  // OpenSSL wants a non-null pointer even for length 0
    return EVP_MAC_init(ctx, key.empty() ? &kNoKey : key.data(), key.size(), params) == 1;
  }

  // A null key re-initialises with the key set in init(), keeping its precomputed pads: one
  // HMAC costs the hash of the message, not a fetch and a key schedule.
  bool compute(std::span<const uint8_t> msg, uint8_t* out) {
    size_t n = 0;
    return ctx != nullptr && EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1 &&
           EVP_MAC_update(ctx, msg.data(), msg.size()) == 1 &&
           EVP_MAC_final(ctx, out, &n, kHmacLen) == 1 && n == kHmacLen;
  }
};

void Channel::MacFree::operator()(Mac* m) const {
  delete m;
}

// ---------------------------------------------------------------------------------------------
// RangeSet, ReplayWindow

template <class F>
void Channel::RangeSet::add(uint64_t first, uint64_t last, F&& on_new) {
  if (first > last) return;
  auto it = ranges_.upper_bound(first);
  if (it != ranges_.begin()) {
    auto p = std::prev(it);
    if (p->second >= first - 1) it = p;  // overlaps or touches [first, last]
  }
  uint64_t lo = first, hi = last, cur = first;  // cur: first seq not yet known to be covered
  while (it != ranges_.end() && it->first <= sat_add(last, 1)) {
    if (it->first > cur) on_new(cur, std::min(last, it->first - 1));
    cur = std::max(cur, sat_add(it->second, 1));
    lo = std::min(lo, it->first);
    hi = std::max(hi, it->second);
    it = ranges_.erase(it);
  }
  if (cur <= last) on_new(cur, last);
  ranges_.emplace(lo, hi);
}

void Channel::RangeSet::erase_below(uint64_t seq) {
  while (!ranges_.empty() && ranges_.begin()->first < seq) {
    const uint64_t last = ranges_.begin()->second;
    ranges_.erase(ranges_.begin());
    if (last >= seq) {
      ranges_.emplace(seq, last);
      break;
    }
  }
}

bool Channel::ReplayWindow::seen(uint64_t pn) const {
  if (pn == 0) return true;
  if (pn > top_) return false;
  if (top_ - pn >= kReplayWindow) return true;
  const uint64_t bit = pn % kReplayWindow;
  return (bits_[bit / 64] >> (bit % 64)) & 1;
}

void Channel::ReplayWindow::mark(uint64_t pn) {
  if (pn > top_) {
    if (pn - top_ >= kReplayWindow) {
      bits_.fill(0);
    } else {
      for (uint64_t q = top_ + 1; q < pn; ++q) {
        const uint64_t bit = q % kReplayWindow;
        bits_[bit / 64] &= ~(uint64_t{1} << (bit % 64));
      }
    }
    top_ = pn;
  }
  const uint64_t bit = pn % kReplayWindow;
  bits_[bit / 64] |= uint64_t{1} << (bit % 64);
}

void Channel::ReplayWindow::mark_through(uint64_t pn) {
  if (pn >= top_) {
    top_ = pn;
    bits_.fill(~uint64_t{0});
    return;
  }
  const uint64_t from = top_ >= kReplayWindow ? top_ - kReplayWindow + 1 : 1;
  for (uint64_t q = from; q <= pn; ++q) {
    const uint64_t bit = q % kReplayWindow;
    bits_[bit / 64] |= uint64_t{1} << (bit % 64);
  }
}

// ---------------------------------------------------------------------------------------------
// Channel

struct Channel::Header {
  DgramType type{};
  uint16_t flags = 0;
  uint64_t sboot = 0, rboot = 0, pkt = 0, ack = 0;
  size_t nsack = 0;
  std::array<std::pair<uint64_t, uint64_t>, kMaxSack> sack{};
};

Channel::Channel(ChannelParams p, Events ev) : p_(std::move(p)), ev_(std::move(ev)) {
  assert(!p_.key.empty() && "the sync link needs a key");
  p_.max_datagram = std::max(p_.max_datagram, kMinDatagram);
  p_.window_entries = std::max<size_t>(p_.window_entries, 1);
  max_body_ = std::min<size_t>(
      UINT16_MAX, p_.max_datagram - kMaxHeaderLen - kHmacLen - kCountLen - kEntryHeaderLen);
  max_status_ = std::min(kMaxStatus, p_.max_datagram - kMaxHeaderLen - kHelloFixedLen - kHmacLen);
  if (p_.boot_id == 0) {
    // The contract asks the caller for a random non-zero id; do not run with a broken one.
    while (p_.boot_id == 0) p_.boot_id = fresh_nonce();
  }
  mac_.reset(new Mac);
  if (!mac_->init(p_.key)) mac_.reset();  // every datagram then fails: counted, never sent
  nonce_ = fresh_nonce();
}

uint64_t Channel::fresh_nonce() {
  uint64_t v = 0;
  while (v == 0) {
    uint8_t b[8];
    if (RAND_bytes(b, sizeof b) == 1) {
      v = Reader({b, sizeof b}).u64();
    } else {
      const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
      // SplitMix64 (the shared finaliser after its increment) of the boot id, a counter, time.
      auto mix = [](uint64_t x) { return dp::splitmix64_mix(x + 0x9e3779b97f4a7c15ull); };
      v = mix(p_.boot_id ^ mix(++nonce_counter_ ^ static_cast<uint64_t>(t)));
    }
  }
  return v;
}

uint64_t Channel::send(uint8_t type, std::span<const uint8_t> body) {
  if (state_ != ChannelState::kUp || body.size() > max_body_) return 0;
  if (next_seq_ - snd_nxt_ >= p_.max_queued_entries) {
    ++stats_.refused;
    return 0;
  }
  tx_.push_back(TxEntry{{body.begin(), body.end()}, 0, 0, type, false, false});
  return next_seq_++;
}

uint64_t Channel::acked() const {
  return snd_una_ - 1;
}
size_t Channel::unacked() const {
  return tx_.size();
}

void Channel::set_status(std::span<const uint8_t> s) {
  status_.assign(s.begin(), s.begin() + static_cast<ptrdiff_t>(std::min(s.size(), max_status_)));
}

const std::vector<uint8_t>& Channel::peer_status() const {
  return peer_status_;
}
uint64_t Channel::last_heard() const {
  return last_heard_;
}
ChannelState Channel::state() const {
  return state_;
}
uint64_t Channel::peer_boot_id() const {
  return state_ == ChannelState::kUp ? peer_boot_ : 0;
}
const ChannelStats& Channel::stats() const {
  return stats_;
}

void Channel::reset_streams() {
  tx_.clear();
  sent_.clear();
  sacked_.clear();
  snd_una_ = snd_nxt_ = next_seq_ = 1;
  rack_pkt_ = ack_pkt_ = sack_high_ = srtt_ = 0;
  rcv_cum_ = 0;
  for (const auto& [first, last] : rx_ranges_.ranges()) {
    for (uint64_t q = first; q <= last; ++q) rx_ring_[q & (rx_ring_.size() - 1)].present = false;
  }
  rx_ranges_.clear();
  ack_due_ = false;
}

void Channel::teardown(bool restart) {
  state_ = ChannelState::kDown;
  ++(restart ? stats_.peer_restarts : stats_.timeouts);
  reset_streams();
  // HELLOs go to whoever answers (receiver boot 0): the old peer if it is alive, or its next
  // incarnation. The new nonce makes the old peer end its side of the session too.
  peer_boot_ = peer_nonce_ = sess_nonce_ = 0;
  cand_boot_ = cand_nonce_ = 0;
  nonce_ = fresh_nonce();
  hello_due_ = true;
  reply_due_ = false;
  if (ev_.down) ev_.down();
}

void Channel::establish(uint64_t boot, uint64_t peer_nonce, uint64_t our_nonce, uint64_t pkt,
                        bool peer_up, std::span<const uint8_t> status, uint64_t now) {
  if (peer_win_.boot() != boot)
    peer_win_ = cand_win_.boot() == boot ? cand_win_ : ReplayWindow(boot);
  peer_win_.mark_through(pkt);
  reset_streams();
  state_ = ChannelState::kUp;
  peer_boot_ = boot;
  peer_nonce_ = peer_nonce;
  sess_nonce_ = nonce_ = our_nonce;
  cand_boot_ = cand_nonce_ = 0;
  hello_due_ = false;
  reply_due_ = !peer_up;
  last_rx_ = now;
  next_hb_ = sat_add(now, p_.heartbeat_ns);
  peer_status_.assign(status.begin(), status.end());
  ++stats_.sessions;
  if (ev_.up) ev_.up();
}

void Channel::on_datagram(std::span<const uint8_t> dgram, uint64_t now) {
  now_ = std::max(now_, now);
  ++stats_.dgrams_received;
  stats_.bytes_received += dgram.size();
  if (dgram.size() < kBaseHeaderLen + kHmacLen) {
    ++stats_.malformed;
    return;
  }
  // Authenticate before looking inside: whatever was changed on the way, the MAC says so.
  const auto signed_part = dgram.first(dgram.size() - kHmacLen);
  uint8_t mac[kHmacLen];
  if (!mac_ || !mac_->compute(signed_part, mac) ||
      CRYPTO_memcmp(mac, dgram.data() + signed_part.size(), kHmacLen) != 0) {
    ++stats_.auth_failures;
    return;
  }

  Reader r(signed_part);
  Header h;
  const auto magic = r.bytes(4);
  const uint8_t version = r.u8();
  const uint8_t type = r.u8();
  h.flags = r.u16();
  h.sboot = r.u64();
  h.rboot = r.u64();
  h.pkt = r.u64();
  h.ack = r.u64();
  h.nsack = r.u8();
  bool ok = r.ok() && std::memcmp(magic.data(), kMagic, 4) == 0 && version == kVersion &&
            type >= static_cast<uint8_t>(DgramType::kHello) &&
            type <= static_cast<uint8_t>(DgramType::kAck) && h.nsack <= kMaxSack && h.sboot != 0 &&
            h.pkt != 0;
  for (size_t i = 0; ok && i < h.nsack; ++i) {
    h.sack[i] = {r.u64(), r.u64()};
    ok = r.ok() && h.sack[i].first != 0 && h.sack[i].first <= h.sack[i].second;
  }
  if (!ok) {
    ++stats_.malformed;
    return;
  }
  h.type = static_cast<DgramType>(type);
  const auto body = r.bytes(r.left());
  switch (h.type) {
    case DgramType::kHello: {
      Hello m;
      ok = parse_hello(body, m);
      break;
    }
    case DgramType::kHeartbeat: {
      Reader b(body);
      std::span<const uint8_t> s;
      ok = parse_status(b, s);
      break;
    }
    case DgramType::kData:
      ok = for_each_entry(body, [](uint64_t, uint8_t, std::span<const uint8_t>) {});
      break;
    case DgramType::kAck:
      ok = body.empty();
      break;
  }
  if (!ok) {
    ++stats_.malformed;
    return;
  }

  if (h.type == DgramType::kHello) {
    on_hello(h, body, now);
    return;
  }
  if (h.rboot != p_.boot_id) {  // meant for an earlier incarnation of ours
    ++stats_.replays;
    return;
  }
  if (state_ != ChannelState::kUp || h.sboot != peer_boot_) {
    // The sender believes in a session we do not have (we went down, or have not seen its last
    // HELLO): a HELLO from us settles it. From any other boot id: a stale recording.
    if (h.sboot == cand_boot_ || (state_ == ChannelState::kDown && h.sboot == peer_win_.boot())) {
      hello_due_ = true;
    } else {
      ++stats_.replays;
    }
    return;
  }
  if (peer_win_.seen(h.pkt)) {
    ++stats_.replays;
    return;
  }
  // An ack beyond what we sent cannot come from this session's peer.
  bool ack_ok = h.ack < snd_nxt_;
  for (size_t i = 0; i < h.nsack; ++i) ack_ok = ack_ok && h.sack[i].second < snd_nxt_;
  if (!ack_ok) {
    ++stats_.malformed;
    return;
  }
  peer_win_.mark(h.pkt);
  last_heard_ = last_rx_ = now;
  apply_ack(h, now);
  if (h.type == DgramType::kHeartbeat) {
    Reader b(body);
    std::span<const uint8_t> s;
    parse_status(b, s);
    peer_status_.assign(s.begin(), s.end());
  } else if (h.type == DgramType::kData) {
    ack_due_ = true;
    receive_entries(body);
  }
}

void Channel::on_hello(const Header& h, std::span<const uint8_t> body, uint64_t now) {
  Hello m;
  parse_hello(body, m);  // validated by the caller
  if (h.rboot != 0 && h.rboot != p_.boot_id) {
    ++stats_.replays;
    return;
  }
  ReplayWindow* win = &peer_win_;
  if (h.sboot != peer_win_.boot()) {
    if (h.sboot != cand_win_.boot()) cand_win_ = ReplayWindow(h.sboot);
    win = &cand_win_;
  }
  if (win->seen(h.pkt)) {
    ++stats_.replays;
    return;
  }
  const bool up = state_ == ChannelState::kUp;
  const bool from_peer = up && h.sboot == peer_boot_;
  // The echo tells which of our nonces the sender heard. Anything but 0 (it has heard none) or
  // the nonce it could have heard is a recording.
  bool fresh;
  if (from_peer) {
    fresh = m.echo == 0 || m.echo == sess_nonce_;
  } else if (up && h.sboot != cand_boot_) {
    fresh = m.echo == 0;
  } else {
    fresh = m.echo == 0 || m.echo == nonce_;
  }
  if (!fresh) {
    ++stats_.replays;
    return;
  }
  win->mark(h.pkt);
  last_heard_ = now;
  const bool peer_up = (h.flags & kFlagUp) != 0;

  if (from_peer) {
    last_rx_ = now;
    if (m.nonce == peer_nonce_) {  // this session's handshake, late or repeated
      peer_status_.assign(m.status.begin(), m.status.end());
      if (!peer_up) reply_due_ = true;
      return;
    }
    teardown(false);  // the peer started over: it ended the session on silence
  }
  if (state_ == ChannelState::kUp) {
    // Another boot id claims to be our peer. Challenge it; the session stays until it answers.
    if (h.sboot != cand_boot_) {
      cand_boot_ = h.sboot;
      cand_nonce_ = m.nonce;
      nonce_ = fresh_nonce();
      hello_due_ = true;
      return;
    }
    cand_nonce_ = m.nonce;
    if (m.echo == nonce_) {
      const uint64_t ours = nonce_;
      teardown(true);
      establish(h.sboot, m.nonce, ours, h.pkt, peer_up, m.status, now);
    } else {
      hello_due_ = true;
    }
    return;
  }
  cand_boot_ = h.sboot;
  cand_nonce_ = m.nonce;
  if (m.echo == nonce_) {
    establish(h.sboot, m.nonce, nonce_, h.pkt, peer_up, m.status, now);
  } else {
    hello_due_ = true;
  }
}

void Channel::apply_ack(const Header& h, uint64_t now) {
  // Entries sent more than once say nothing about which copy arrived (Karn): they neither move
  // rack_pkt_ nor give an RTT sample. One sample per ack: the latest transmission it covers.
  uint64_t sample_pkt = 0, sample_at = 0;
  auto arrived = [&](const TxEntry& e) {
    if (e.resent || e.last_pkt <= rack_pkt_) return;
    rack_pkt_ = sample_pkt = e.last_pkt;
    sample_at = e.sent_at;
  };
  const bool advanced = h.ack >= snd_una_;
  while (snd_una_ <= h.ack) {
    const TxEntry& e = tx_.front();
    if (!e.sacked) arrived(e);
    tx_.pop_front();
    ++snd_una_;
  }
  if (advanced) sacked_.erase_below(snd_una_);
  // Only the newest report bounds the holes: beyond its last range the peer said nothing (it
  // reports the lowest kMaxSack ranges), and an older report's far range may since have been
  // followed by arrivals nobody reported.
  const bool newest = h.pkt > ack_pkt_;
  if (newest) {
    ack_pkt_ = h.pkt;
    sack_high_ = h.ack;
  }
  for (size_t i = 0; i < h.nsack; ++i) {
    if (newest) sack_high_ = std::max(sack_high_, h.sack[i].second);
    sacked_.add(std::max(h.sack[i].first, snd_una_), h.sack[i].second, [&](uint64_t a, uint64_t b) {
      for (uint64_t s = a; s <= b; ++s) {
        TxEntry& e = tx_[s - snd_una_];
        e.sacked = true;
        arrived(e);
      }
    });
  }
  if (sample_pkt != 0 && now >= sample_at) {
    const uint64_t rtt = now - sample_at;
    srtt_ = srtt_ == 0 ? rtt : srtt_ - srtt_ / 8 + rtt / 8;
  }
  prune_sent();
}

// When a hole counts as lost (fast retransmit), UINT64_MAX if not yet: something sent after it
// arrived (once per RTT: its own latest copy must predate that), and it has been out longer than
// a round trip plus a quarter, so that a packet merely overtaken is not sent twice.
uint64_t Channel::lost_at(const TxEntry& e) const {
  if (e.last_pkt >= rack_pkt_) return UINT64_MAX;
  return sat_add(e.sent_at, srtt_ + srtt_ / 4);
}

void Channel::receive_entries(std::span<const uint8_t> body) {
  // Entries held beyond the gap are added to the SACK ranges one contiguous run at a time.
  uint64_t run_first = 0, run_last = 0;
  auto flush_run = [&] {
    if (run_first != 0) rx_ranges_.add(run_first, run_last, [](uint64_t, uint64_t) {});
    run_first = 0;
  };
  for_each_entry(body, [&](uint64_t seq, uint8_t type, std::span<const uint8_t> bytes) {
    if (seq <= rcv_cum_) {
      ++stats_.duplicates;
    } else if (seq - rcv_cum_ > p_.window_entries) {
      // Beyond what a correct sender has in flight: ignored, the sender will send it again.
    } else if (seq == rcv_cum_ + 1) {
      flush_run();
      deliver(seq, type, bytes);
      // The first range beyond the gap may now follow on.
      while (!rx_ranges_.ranges().empty() && rx_ranges_.ranges().begin()->first == rcv_cum_ + 1) {
        const uint64_t last = rx_ranges_.ranges().begin()->second;
        rx_ranges_.erase_below(last + 1);
        while (rcv_cum_ < last) {
          const uint64_t next = rcv_cum_ + 1;
          RxSlot& slot = rx_ring_[next & (rx_ring_.size() - 1)];
          slot.present = false;
          deliver(next, slot.type, slot.body);
          // Keep small buffers for reuse; give back what a burst of large entries took.
          if (slot.body.capacity() > 192) std::vector<uint8_t>().swap(slot.body);
        }
      }
    } else {
      if (rx_ring_.empty()) {
        size_t n = 1;
        while (n < p_.window_entries) n <<= 1;
        rx_ring_.resize(n);
      }
      RxSlot& slot = rx_ring_[seq & (rx_ring_.size() - 1)];
      if (slot.present) {
        ++stats_.duplicates;
        return;
      }
      slot.body.assign(bytes.begin(), bytes.end());
      slot.type = type;
      slot.present = true;
      if (run_first != 0 && seq == run_last + 1) {
        run_last = seq;
      } else {
        flush_run();
        run_first = run_last = seq;
      }
    }
  });
  flush_run();
}

void Channel::deliver(uint64_t seq, uint8_t type, std::span<const uint8_t> body) {
  rcv_cum_ = seq;
  ++stats_.entries_delivered;
  if (ev_.entry) ev_.entry(seq, type, body);
}

void Channel::prune_sent() {
  while (!sent_.empty()) {
    const Sent& s = sent_.front();
    if (s.seq >= snd_una_) {
      const TxEntry& e = tx_[s.seq - snd_una_];
      if (!e.sacked && e.last_pkt == s.pkt) return;
    }
    sent_.pop_front();
  }
}

const Channel::Sent* Channel::first_live() const {
  for (const Sent& s : sent_) {
    if (s.seq < snd_una_) continue;
    const TxEntry& e = tx_[s.seq - snd_una_];
    if (!e.sacked && e.last_pkt == s.pkt) return &s;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Sending

// New entries go out while the window has room, and while the oldest transmission still waiting
// for an ack is less than half a replay window of packet numbers back: the peer drops anything
// kReplayWindow older than the newest packet it saw, so a reordered packet that still matters
// must never fall that far behind, however many small datagrams a window of entries makes.
bool Channel::can_send_new() const {
  if (snd_nxt_ >= next_seq_ || snd_nxt_ - snd_una_ >= p_.window_entries) return false;
  const Sent* oldest = first_live();
  return oldest == nullptr || next_pkt_ - oldest->pkt < kReplayWindow / 2;
}

void Channel::put_header(std::vector<uint8_t>& d, DgramType t, uint16_t flags, uint64_t rboot,
                         bool with_ack) {
  d.clear();
  d.reserve(p_.max_datagram);
  d.insert(d.end(), std::begin(kMagic), std::end(kMagic));
  put8(d, kVersion);
  put8(d, static_cast<uint8_t>(t));
  put16(d, flags);
  put64(d, p_.boot_id);
  put64(d, rboot);
  put64(d, next_pkt_++);
  put64(d, with_ack ? rcv_cum_ : 0);
  // The lowest ranges: they border the holes that hold up delivery.
  size_t n = 0;
  if (with_ack) n = std::min(kMaxSack, rx_ranges_.ranges().size());
  put8(d, static_cast<uint8_t>(n));
  auto it = rx_ranges_.ranges().begin();
  for (size_t i = 0; i < n; ++i, ++it) {
    put64(d, it->first);
    put64(d, it->second);
  }
}

bool Channel::seal(std::vector<uint8_t>& d, std::vector<std::vector<uint8_t>>& out) {
  uint8_t mac[kHmacLen];
  if (!mac_ || !mac_->compute(d, mac)) return false;
  d.insert(d.end(), mac, mac + kHmacLen);
  assert(d.size() <= p_.max_datagram);
  ++stats_.dgrams_sent;
  stats_.bytes_sent += d.size();
  out.push_back(std::move(d));
  return true;
}

void Channel::put_hello(std::vector<std::vector<uint8_t>>& out, bool session_reply) {
  std::vector<uint8_t> d;
  if (session_reply) {
    put_header(d, DgramType::kHello, kFlagUp, peer_boot_, false);
    put64(d, sess_nonce_);
    put64(d, peer_nonce_);
  } else {
    put_header(d, DgramType::kHello, 0, cand_boot_, false);
    put64(d, nonce_);
    put64(d, cand_nonce_);
  }
  put16(d, static_cast<uint16_t>(status_.size()));
  d.insert(d.end(), status_.begin(), status_.end());
  seal(d, out);
}

size_t Channel::poll_data(uint64_t now, uint64_t first_pkt, std::vector<std::vector<uint8_t>>& out,
                          size_t budget) {
  // Fast retransmit: holes below the highest seq the peer reported (a later entry arrived without
  // them), unless sent again since something that arrived was sent (at most once per RTT). Only
  // the region the peer described counts: beyond its SACK ranges nothing is known.
  lost_.clear();
  uint64_t hole = snd_una_;
  for (auto it = sacked_.ranges().begin(); hole < sack_high_; ++it) {
    const bool last = it == sacked_.ranges().end();
    const uint64_t hole_end = last ? sack_high_ : std::min(sack_high_, it->first);
    for (; hole < hole_end; ++hole) {
      if (lost_at(tx_[hole - snd_una_]) <= now) lost_.push_back(hole);
    }
    if (last) break;
    hole = std::max(hole, it->second + 1);
  }
  size_t next_lost = 0;

  size_t n = 0;
  std::vector<uint8_t> d;
  while (n < budget) {
    size_t count = 0;
    uint64_t pkt = 0;
    // Adds entry `seq` to the datagram being built (started on first use); false if full.
    auto add = [&](uint64_t seq, TxEntry& e) {
      if (count == 0) {
        pkt = next_pkt_;
        put_header(d, DgramType::kData, 0, peer_boot_, true);
        put16(d, 0);  // count, patched below
      }
      if (d.size() + kEntryHeaderLen + e.body.size() + kHmacLen > p_.max_datagram) return false;
      put64(d, seq);
      put8(d, e.type);
      put16(d, static_cast<uint16_t>(e.body.size()));
      d.insert(d.end(), e.body.begin(), e.body.end());
      e.last_pkt = pkt;
      e.sent_at = now;
      sent_.push_back({pkt, seq, now});
      ++count;
      return true;
    };
    bool full = false;
    for (; next_lost < lost_.size(); ++next_lost) {
      TxEntry& e = tx_[lost_[next_lost] - snd_una_];
      if (e.last_pkt >= first_pkt) continue;  // already sent again in this poll
      if (!add(lost_[next_lost], e)) {
        full = true;
        break;
      }
      e.resent = true;
      ++stats_.entries_retransmitted;
    }
    // Then whatever waited rto_ns for an ack (only what an earlier poll sent, so that
    // rto_ns = 0 cannot loop here).
    for (prune_sent(); !full && !sent_.empty(); prune_sent()) {
      const Sent s = sent_.front();
      if (s.pkt >= first_pkt || sat_add(s.at, p_.rto_ns) > now) break;
      TxEntry& e = tx_[s.seq - snd_una_];
      if (!add(s.seq, e)) {
        full = true;
        break;
      }
      e.resent = true;
      ++stats_.entries_retransmitted;
    }
    while (!full && can_send_new()) {
      if (!add(snd_nxt_, tx_[snd_nxt_ - snd_una_])) break;
      ++stats_.entries_sent;
      ++snd_nxt_;
    }
    if (count == 0) break;
    const size_t at = kBaseHeaderLen + kSackLen * d[kBaseHeaderLen - 1];
    d[at] = static_cast<uint8_t>(count >> 8);
    d[at + 1] = static_cast<uint8_t>(count);
    seal(d, out);
    ++n;
  }
  return n;
}

void Channel::poll(uint64_t now, std::vector<std::vector<uint8_t>>& out, size_t budget) {
  now_ = std::max(now_, now);
  size_t n = 0;
  if (state_ == ChannelState::kUp && now >= sat_add(last_rx_, p_.dead_ns)) teardown(false);
  if (state_ == ChannelState::kDown) {
    if (n < budget && (hello_due_ || now >= next_hello_)) {
      put_hello(out, false);
      ++n;
      hello_due_ = false;
      next_hello_ = sat_add(now, p_.hello_ns);
    }
    return;
  }
  if (n < budget && reply_due_) {
    put_hello(out, true);
    ++n;
    reply_due_ = false;
  }
  if (n < budget && hello_due_) {  // probing a boot id that claims to be our peer
    put_hello(out, false);
    ++n;
    hello_due_ = false;
  }
  if (n < budget && now >= next_hb_) {
    std::vector<uint8_t> d;
    put_header(d, DgramType::kHeartbeat, 0, peer_boot_, true);
    put16(d, static_cast<uint16_t>(status_.size()));
    d.insert(d.end(), status_.begin(), status_.end());
    seal(d, out);
    ++n;
    ack_due_ = false;
    next_hb_ = sat_add(now, p_.heartbeat_ns);
  }
  if (n < budget) {
    const size_t data = poll_data(now, next_pkt_, out, budget - n);
    if (data > 0) ack_due_ = false;
    n += data;
  }
  if (n < budget && ack_due_) {
    std::vector<uint8_t> d;
    put_header(d, DgramType::kAck, 0, peer_boot_, true);
    seal(d, out);
    ++n;
    ack_due_ = false;
  }
}

uint64_t Channel::next_deadline() const {
  if (state_ == ChannelState::kDown) return hello_due_ ? now_ : next_hello_;
  if (reply_due_ || hello_due_ || ack_due_) return now_;
  if (can_send_new()) return now_;
  uint64_t t = std::min(sat_add(last_rx_, p_.dead_ns), next_hb_);
  if (const Sent* s = first_live()) t = std::min(t, sat_add(s->at, p_.rto_ns));
  // Holes below what the peer reported: fast retransmit when lost_at() says so.
  uint64_t hole = snd_una_;
  for (auto it = sacked_.ranges().begin(); hole < sack_high_; ++it) {
    const bool last = it == sacked_.ranges().end();
    const uint64_t hole_end = last ? sack_high_ : std::min(sack_high_, it->first);
    for (; hole < hole_end; ++hole) t = std::min(t, lost_at(tx_[hole - snd_una_]));
    if (last) break;
    hole = std::max(hole, it->second + 1);
  }
  return t;
}

}  // namespace ctl::sync
