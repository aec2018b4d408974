// ctl::sync::Channel: the wire format against an independent reference codec, then two channels
// over a simulated network (fake clock; loss, duplication, reordering, delay, blackouts):
// exactly-once in-order delivery, sessions (flaps, restarts), authentication, replays,
// malformed input, flow control and the API's limits.

#include "control/sync/channel.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using ctl::sync::Channel;
using ctl::sync::ChannelParams;
using ctl::sync::ChannelState;
using ctl::sync::ChannelStats;
using ctl::sync::DgramType;
using ctl::sync::kHmacLen;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr size_t kMaxHeader = 41 + 4 * 16;  // full SACK

const Bytes kKey = {'s', 'y', 'n', 'c', '-', 'k', 'e', 'y', 0, 1, 2, 3, 4, 5, 6, 7};

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The body the test application sends as entry `seq` of the stream salted `salt`: its length
// and bytes are a function of both, so the receiver can check every byte.
Bytes body_for(uint64_t salt, uint64_t seq, size_t max_len) {
  const uint64_t h = mix(salt * 1'000'003 + seq);
  Bytes b(h % (max_len + 1));
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(mix(h + i));
  return b;
}
uint8_t type_for(uint64_t seq) {
  return static_cast<uint8_t>(seq * 7);
}

// ---------------------------------------------------------------------------------------------
// Reference codec, written from channel.h's wire description only.

Bytes hmac(std::span<const uint8_t> msg, const Bytes& key = kKey) {
  Bytes out(kHmacLen);
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(), out.data(),
       &len);
  EXPECT_EQ(len, kHmacLen);
  return out;
}

struct Wire {
  uint8_t version = 1;
  uint8_t type = 0;
  uint16_t flags = 0;
  uint64_t sboot = 0, rboot = 0, pkt = 0, ack = 0;
  std::vector<std::pair<uint64_t, uint64_t>> sack;
  Bytes body;
};

void be(Bytes& d, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) d.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t rd(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

Bytes seal(Bytes d, const Bytes& key = kKey) {
  const Bytes m = hmac(d, key);
  d.insert(d.end(), m.begin(), m.end());
  return d;
}

Bytes encode(const Wire& w, const Bytes& key = kKey) {
  Bytes d = {'T', 'D', 'S', 'Y', w.version, w.type};
  be(d, w.flags, 2);
  be(d, w.sboot, 8);
  be(d, w.rboot, 8);
  be(d, w.pkt, 8);
  be(d, w.ack, 8);
  be(d, w.sack.size(), 1);
  for (auto [f, l] : w.sack) {
    be(d, f, 8);
    be(d, l, 8);
  }
  d.insert(d.end(), w.body.begin(), w.body.end());
  return seal(d, key);
}

std::optional<Wire> decode(const Bytes& d, const Bytes& key = kKey) {
  if (d.size() < 41 + kHmacLen || std::memcmp(d.data(), "TDSY", 4) != 0) return std::nullopt;
  const std::span<const uint8_t> signed_part(d.data(), d.size() - kHmacLen);
  if (hmac(signed_part, key) != Bytes(d.end() - kHmacLen, d.end())) return std::nullopt;
  Wire w;
  w.version = d[4];
  w.type = d[5];
  w.flags = static_cast<uint16_t>(rd(&d[6], 2));
  w.sboot = rd(&d[8], 8);
  w.rboot = rd(&d[16], 8);
  w.pkt = rd(&d[24], 8);
  w.ack = rd(&d[32], 8);
  const size_t n = d[40];
  if (41 + 16 * n > signed_part.size()) return std::nullopt;
  for (size_t i = 0; i < n; ++i)
    w.sack.emplace_back(rd(&d[41 + 16 * i], 8), rd(&d[49 + 16 * i], 8));
  w.body.assign(d.begin() + static_cast<long>(41 + 16 * n), d.end() - kHmacLen);
  return w;
}

Bytes hello_body(uint64_t nonce, uint64_t echo, const Bytes& status = {}) {
  Bytes b;
  be(b, nonce, 8);
  be(b, echo, 8);
  be(b, status.size(), 2);
  b.insert(b.end(), status.begin(), status.end());
  return b;
}

struct RefEntry {
  uint64_t seq;
  uint8_t type;
  Bytes body;
  bool operator==(const RefEntry&) const = default;
};

Bytes data_body(const std::vector<RefEntry>& es) {
  Bytes b;
  be(b, es.size(), 2);
  for (const auto& e : es) {
    be(b, e.seq, 8);
    be(b, e.type, 1);
    be(b, e.body.size(), 2);
    b.insert(b.end(), e.body.begin(), e.body.end());
  }
  return b;
}

std::vector<RefEntry> parse_entries(const Bytes& b) {
  std::vector<RefEntry> es;
  size_t at = 2;
  const size_t n = rd(b.data(), 2);
  for (size_t i = 0; i < n; ++i) {
    RefEntry e{rd(&b[at], 8), b[at + 8], {}};
    const size_t len = rd(&b[at + 9], 2);
    e.body.assign(b.begin() + static_cast<long>(at + 11),
                  b.begin() + static_cast<long>(at + 11 + len));
    at += 11 + len;
    es.push_back(std::move(e));
  }
  EXPECT_EQ(at, b.size());
  return es;
}

// ---------------------------------------------------------------------------------------------
// Two channels over a simulated network with a fake clock.

struct LinkModel {
  double loss = 0, dup = 0, reorder = 0;
  uint64_t delay = 200 * kUs, jitter = 50 * kUs;
};

ChannelParams params(uint64_t boot) {
  ChannelParams p;
  p.key = kKey;
  p.boot_id = boot;
  return p;
}

class Sim {
 public:
  struct Side {
    std::unique_ptr<Channel> ch;
    std::string events;     // 'U' per up, 'D' per down, in order
    uint64_t expect = 1;    // next seq of the peer's stream, this session
    uint64_t received = 0;  // entries of the peer's stream, this session
    uint64_t sent_seq = 0;  // last seq our send() returned, this session
    uint64_t last_acked = 0;
    std::vector<std::string> errors;
    uint64_t salt = 0;  // of our stream's bodies
    uint64_t peer_salt = 0;
    size_t max_len = 200;  // our bodies' maximum length
    size_t peer_max_len = 200;
  };

  Sim(ChannelParams a, ChannelParams b, LinkModel link = {}, uint64_t seed = 1)
      : link_(link), rng_(seed) {
    side[0].salt = side[1].peer_salt = 11;
    side[1].salt = side[0].peer_salt = 22;
    make(0, std::move(a));
    make(1, std::move(b));
  }

  // Replaces side i's channel (a restart: new boot id, empty application state).
  void make(int i, ChannelParams p) {
    Side& s = side[i];
    s.events.clear();
    s.expect = 1;
    s.received = s.sent_seq = s.last_acked = 0;
    Channel::Events ev;
    ev.entry = [this, i](uint64_t seq, uint8_t type, std::span<const uint8_t> body) {
      Side& me = side[i];
      if (seq != me.expect)
        record(i, "seq " + std::to_string(seq) + " expected " + std::to_string(me.expect));
      if (type != type_for(seq)) record(i, "type of " + std::to_string(seq));
      const Bytes want = body_for(me.peer_salt, seq, me.peer_max_len);
      if (!std::equal(body.begin(), body.end(), want.begin(), want.end())) {
        record(i, "body of " + std::to_string(seq));
      }
      me.expect = seq + 1;
      ++me.received;
    };
    ev.up = [this, i] {
      Side& me = side[i];
      me.events += 'U';
      me.expect = 1;
      me.received = me.sent_seq = me.last_acked = 0;
      if (me.ch->state() != ChannelState::kUp) record(i, "up event while down");
    };
    ev.down = [this, i] { side[i].events += 'D'; };
    s.ch = std::make_unique<Channel>(std::move(p), std::move(ev));
  }

  Channel& ch(int i) { return *side[i].ch; }

  // Sends entries sent_seq+1 .. sent_seq+n of side i's stream; false if one was refused.
  bool send(int i, uint64_t n) {
    Side& s = side[i];
    for (uint64_t k = 0; k < n; ++k) {
      const uint64_t seq = s.sent_seq + 1;
      if (s.ch->send(type_for(seq), body_for(s.salt, seq, s.max_len)) != seq) return false;
      s.sent_seq = seq;
    }
    return true;
  }

  // Moves the clock to the next thing due (a delivery or a channel's deadline), never past
  // `limit`, then delivers what arrived and polls both sides.
  void step(uint64_t limit = UINT64_MAX) {
    uint64_t next = q_.empty() ? UINT64_MAX : q_.top().at;
    for (auto& s : side) {
      if (s.ch) next = std::min(next, s.ch->next_deadline());
    }
    if (next > now) {
      now = std::max(now, std::min(next, limit));
      same_ = 0;
    } else if (++same_ > 1000) {
      now += 1;  // something claims to be due forever: let time move rather than spin
    }
    while (!q_.empty() && q_.top().at <= now) {
      Pkt p = q_.top();
      q_.pop();
      if (on_deliver) on_deliver(p.to, p.d);
      if (side[p.to].ch) side[p.to].ch->on_datagram(p.d, now);
    }
    for (int i = 0; i < 2; ++i) {
      if (!side[i].ch) continue;
      out_.clear();
      side[i].ch->poll(now, out_);
      for (auto& d : out_) transmit(i, std::move(d));
      check(i);
    }
    ++steps;
  }

  template <class Pred>
  bool run_until(Pred pred, uint64_t for_ns) {
    const uint64_t end = now + for_ns;
    while (!pred()) {
      if (now >= end) return false;
      step(end);
    }
    return true;
  }
  void run_for(uint64_t ns) {
    run_until([] { return false; }, ns);
  }
  bool both_up() {
    return ch(0).state() == ChannelState::kUp && ch(1).state() == ChannelState::kUp;
  }
  // Feeds a datagram straight to side i, as if it came off the wire now.
  void inject(int i, const Bytes& d) { ch(i).on_datagram(d, now); }

  uint64_t now = 1 * kSec;
  uint64_t steps = 0;
  bool blackout = false;
  size_t max_seen = 0;  // largest datagram sent
  Side side[2];
  // Sees every datagram a side sends (before loss); returning false drops it.
  std::function<bool(int from, const Bytes& d)> tap;
  std::function<void(int to, const Bytes& d)> on_deliver;  // before the channel sees it

 private:
  struct Pkt {
    uint64_t at, order;
    int to;
    Bytes d;
    bool operator>(const Pkt& o) const { return std::tie(at, order) > std::tie(o.at, o.order); }
  };

  void record(int i, std::string e) {
    if (side[i].errors.size() < 10) side[i].errors.push_back(std::move(e));
  }

  // The API's bookkeeping holds after every poll: acked() + unacked() covers what was sent, and
  // acked() never goes back within a session.
  void check(int i) {
    Side& s = side[i];
    if (s.ch->state() != ChannelState::kUp) return;
    if (s.ch->acked() + s.ch->unacked() != s.sent_seq) {
      record(i, "acked " + std::to_string(s.ch->acked()) + " + unacked " +
                    std::to_string(s.ch->unacked()) + " != sent " + std::to_string(s.sent_seq));
    }
    if (s.ch->acked() < s.last_acked) record(i, "acked went back");
    s.last_acked = s.ch->acked();
  }

  void transmit(int from, Bytes d) {
    max_seen = std::max(max_seen, d.size());
    if (tap && !tap(from, d)) return;
    if (blackout || chance(link_.loss)) return;
    const int copies = chance(link_.dup) ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      // A FIFO link with variable latency; only the reorder chance overtakes.
      uint64_t at = now + link_.delay + (link_.jitter ? rng_() % link_.jitter : 0);
      if (chance(link_.reorder)) {
        at += rng_() % (5 * link_.delay + 1);
      } else {
        at = std::max(at, fifo_at_[1 - from]);
        fifo_at_[1 - from] = at;
      }
      q_.push(Pkt{at, order_++, 1 - from, d});
    }
  }

  bool chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }

  LinkModel link_;
  std::mt19937_64 rng_;
  std::priority_queue<Pkt, std::vector<Pkt>, std::greater<>> q_;
  std::vector<Bytes> out_;
  uint64_t order_ = 0;
  uint64_t same_ = 0;
  uint64_t fifo_at_[2] = {0, 0};
};

#define EXPECT_NO_APP_ERRORS(sim)                                    \
  do {                                                               \
    for (int i_ = 0; i_ < 2; ++i_) {                                 \
      EXPECT_TRUE((sim).side[i_].errors.empty())                     \
          << "side " << i_ << ": " << (sim).side[i_].errors.front(); \
    }                                                                \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Wire format

TEST(SyncWire, FirstHelloMatchesTheReferenceCodec) {
  ChannelParams p = params(0x1122334455667788);
  Channel ch(p, {});
  const Bytes status = {'s', 't', 'a', 't', 'u', 's'};
  ch.set_status(status);
  std::vector<Bytes> out;
  ch.poll(5 * kSec, out);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& d = out[0];
  EXPECT_EQ(Bytes(d.begin(), d.begin() + 4), (Bytes{'T', 'D', 'S', 'Y'}));
  auto w = decode(d);
  ASSERT_TRUE(w) << "HMAC-SHA256 over the datagram does not match";
  EXPECT_EQ(w->version, ctl::sync::kVersion);
  EXPECT_EQ(w->type, static_cast<uint8_t>(DgramType::kHello));
  EXPECT_EQ(w->sboot, 0x1122334455667788u);
  EXPECT_EQ(w->rboot, 0u);
  EXPECT_EQ(w->pkt, 1u);
  EXPECT_EQ(w->ack, 0u);
  EXPECT_TRUE(w->sack.empty());
  ASSERT_EQ(w->body.size(), 18 + status.size());
  EXPECT_NE(rd(&w->body[0], 8), 0u) << "nonce";
  EXPECT_EQ(rd(&w->body[8], 8), 0u) << "echo before hearing the peer";
  EXPECT_EQ(rd(&w->body[16], 2), status.size());
  EXPECT_EQ(Bytes(w->body.begin() + 18, w->body.end()), status);
  EXPECT_EQ(d.size(), 41 + w->body.size() + kHmacLen);
  EXPECT_EQ(ch.stats().dgrams_sent, 1u);
  EXPECT_EQ(ch.stats().bytes_sent, d.size());
  EXPECT_EQ(ch.state(), ChannelState::kDown);
  EXPECT_EQ(ch.peer_boot_id(), 0u);
}

// The test plays the peer with the reference codec: handshake, data both ways, acks and SACKs.
TEST(SyncWire, RoundTripWithAReferencePeer) {
  constexpr uint64_t kUs_ = 0xA1, kPeer = 0xB2, kPeerNonce = 0xC3C3;
  std::vector<RefEntry> got;
  int ups = 0;
  Channel::Events ev;
  ev.entry = [&](uint64_t seq, uint8_t type, std::span<const uint8_t> b) {
    got.push_back({seq, type, Bytes(b.begin(), b.end())});
  };
  ev.up = [&] { ++ups; };
  Channel ch(params(kUs_), ev);
  std::vector<Bytes> out;
  uint64_t now = kSec, pkt = 0;
  ch.poll(now, out);
  ASSERT_EQ(out.size(), 1u);
  const uint64_t nonce = rd(&decode(out[0])->body[0], 8);

  // Our HELLO echoes its nonce: it comes up at once and tells us it is up.
  Wire h{1, 1, 0, kPeer, kUs_, ++pkt, 0, {}, hello_body(kPeerNonce, nonce, {'p', 's'})};
  ch.on_datagram(encode(h), now);
  EXPECT_EQ(ch.state(), ChannelState::kUp);
  EXPECT_EQ(ch.peer_boot_id(), kPeer);
  EXPECT_EQ(ups, 1);
  EXPECT_EQ(ch.peer_status(), (Bytes{'p', 's'}));
  EXPECT_EQ(ch.last_heard(), now);
  out.clear();
  ch.poll(now, out);
  ASSERT_EQ(out.size(), 1u);
  auto r = decode(out[0]);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, 1);
  EXPECT_EQ(r->flags & 1, 1) << "answer says it is up";
  EXPECT_EQ(r->rboot, kPeer);
  EXPECT_EQ(rd(&r->body[0], 8), nonce);
  EXPECT_EQ(rd(&r->body[8], 8), kPeerNonce);

  // Entries in, with a gap: delivered in order, SACKed beyond the gap.
  const std::vector<RefEntry> es = {{1, 9, {1, 2, 3}}, {2, 0, {}}, {3, 255, Bytes(300, 0xee)}};
  Wire dw{1, 3, 0, kPeer, kUs_, ++pkt, 0, {}, data_body(es)};
  ch.on_datagram(encode(dw), now);
  EXPECT_EQ(got, es);
  dw.pkt = ++pkt;
  dw.body = data_body({{5, 1, {5}}, {7, 1, {7}}, {8, 1, {8}}});
  ch.on_datagram(encode(dw), now);
  EXPECT_EQ(got.size(), 3u);
  out.clear();
  ch.poll(now, out);
  ASSERT_EQ(out.size(), 1u);
  r = decode(out[0]);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, static_cast<uint8_t>(DgramType::kAck));
  EXPECT_EQ(r->ack, 3u);
  EXPECT_EQ(r->sack, (std::vector<std::pair<uint64_t, uint64_t>>{{5, 5}, {7, 8}}));
  EXPECT_TRUE(r->body.empty());
  dw.pkt = ++pkt;
  dw.body = data_body({{4, 1, {4}}});
  ch.on_datagram(encode(dw), now);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[3].seq, 4u);
  EXPECT_EQ(got[4], (RefEntry{5, 1, {5}}));
  out.clear();
  ch.poll(now, out);
  r = decode(out.at(0));
  EXPECT_EQ(r->ack, 5u);
  EXPECT_EQ(r->sack, (std::vector<std::pair<uint64_t, uint64_t>>{{7, 8}}));

  // Entries out: one data datagram, parsed by the reference codec.
  EXPECT_EQ(ch.send(42, Bytes{'a'}), 1u);
  EXPECT_EQ(ch.send(43, Bytes{}), 2u);
  EXPECT_EQ(ch.send(44, Bytes(1000, 'c')), 3u);
  EXPECT_EQ(ch.unacked(), 3u);
  out.clear();
  ch.poll(now, out);
  ASSERT_EQ(out.size(), 1u);
  r = decode(out[0]);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, static_cast<uint8_t>(DgramType::kData));
  EXPECT_EQ(r->ack, 5u) << "data carries the ack";
  EXPECT_EQ(parse_entries(r->body),
            (std::vector<RefEntry>{{1, 42, {'a'}}, {2, 43, {}}, {3, 44, Bytes(1000, 'c')}}));
  EXPECT_EQ(ch.stats().entries_sent, 3u);

  Wire aw{1, 4, 0, kPeer, kUs_, ++pkt, 3, {}, {}};
  ch.on_datagram(encode(aw), now + 100 * kUs);  // a 100 us round trip
  EXPECT_EQ(ch.acked(), 3u);
  EXPECT_EQ(ch.unacked(), 0u);

  // Three datagrams; a SACK of the third with a cumulative ack of the first: the second goes
  // again (a later packet arrived without it) once it is out for longer than a round trip and a
  // quarter (the last ack measured 100 us), and only once until a later ack says so.
  for (uint8_t t = 4; t <= 6; ++t) {
    EXPECT_EQ(ch.send(t, Bytes{t}), t);
    ch.poll(now + 100 * kUs, out);
  }
  EXPECT_EQ(ch.unacked(), 3u);
  aw = {1, 4, 0, kPeer, kUs_, ++pkt, 4, {{6, 6}}, {}};
  ch.on_datagram(encode(aw), now + 200 * kUs);
  EXPECT_EQ(ch.acked(), 4u);
  EXPECT_EQ(ch.unacked(), 2u);
  out.clear();
  ch.poll(now + 200 * kUs, out);
  EXPECT_TRUE(out.empty()) << "within the reordering allowance";
  EXPECT_EQ(ch.next_deadline(), now + 100 * kUs + 125 * kUs);
  ch.poll(now + 225 * kUs, out);
  ASSERT_EQ(out.size(), 1u);
  r = decode(out[0]);
  EXPECT_EQ(parse_entries(r->body), (std::vector<RefEntry>{{5, 5, {5}}}));
  EXPECT_EQ(ch.stats().entries_retransmitted, 1u);
  aw.pkt = ++pkt;
  ch.on_datagram(encode(aw), now + 300 * kUs);  // the same news again: no second retransmission
  out.clear();
  ch.poll(now + 1 * kMs, out);
  EXPECT_TRUE(out.empty());
  // Nothing more heard: rto_ns (20 ms) sends it again.
  ch.poll(now + 225 * kUs + 20 * kMs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(parse_entries(decode(out[0])->body), (std::vector<RefEntry>{{5, 5, {5}}}));
  EXPECT_EQ(ch.stats().entries_retransmitted, 2u);
  aw = {1, 4, 0, kPeer, kUs_, ++pkt, 6, {}, {}};
  ch.on_datagram(encode(aw), now + 21 * kMs);
  EXPECT_EQ(ch.acked(), 6u);
  EXPECT_EQ(ch.unacked(), 0u);

  // A heartbeat carries the peer's status.
  Wire hb{1, 2, 0, kPeer, kUs_, ++pkt, 6, {}, {0, 2, 'o', 'k'}};
  ch.on_datagram(encode(hb), now + 22 * kMs);
  EXPECT_EQ(ch.peer_status(), (Bytes{'o', 'k'}));
  EXPECT_EQ(ch.stats().auth_failures + ch.stats().malformed + ch.stats().replays, 0u);
  EXPECT_EQ(ch.stats().entries_delivered, 5u);
  EXPECT_EQ(ch.stats().entries_sent, 6u);
}

// Authenticated but malformed datagrams: each is counted once as malformed and changes nothing.
TEST(SyncWire, MalformedAuthenticatedDatagramsAreCounted) {
  constexpr uint64_t kUs_ = 0xA1, kPeer = 0xB2;
  int entries = 0;
  Channel::Events ev;
  ev.entry = [&](uint64_t, uint8_t, std::span<const uint8_t>) { ++entries; };
  Channel ch(params(kUs_), ev);
  std::vector<Bytes> out;
  ch.poll(kSec, out);
  const uint64_t nonce = rd(&decode(out[0])->body[0], 8);
  ch.on_datagram(encode({1, 1, 1, kPeer, kUs_, 1, 0, {}, hello_body(7, nonce)}), kSec);
  ASSERT_EQ(ch.state(), ChannelState::kUp);

  uint64_t pkt = 10;
  auto data = [&](Bytes body) { return Wire{1, 3, 0, kPeer, kUs_, ++pkt, 0, {}, body}; };
  std::vector<std::pair<std::string, Bytes>> cases;
  auto bad_magic = encode(data(data_body({{1, 1, {}}})));
  bad_magic[0] = 'X';
  cases.push_back({"magic", seal(Bytes(bad_magic.begin(), bad_magic.end() - kHmacLen))});
  Wire w = data(data_body({{1, 1, {}}}));
  w.version = 2;
  cases.push_back({"version", encode(w)});
  for (uint8_t t : {0, 5, 255}) {
    w = data(data_body({{1, 1, {}}}));
    w.type = t;
    cases.push_back({"type " + std::to_string(t), encode(w)});
  }
  w = data(data_body({{1, 1, {}}}));
  w.sack = {{5, 4}};
  cases.push_back({"sack first > last", encode(w)});
  w.sack = {{0, 4}};
  cases.push_back({"sack from 0", encode(w)});
  w = data(data_body({{1, 1, {}}}));
  w.sboot = 0;
  cases.push_back({"sender boot 0", encode(w)});
  w = data(data_body({{1, 1, {}}}));
  w.pkt = 0;
  cases.push_back({"packet 0", encode(w)});
  {
    Bytes d = encode(data(data_body({{1, 1, {}}})));
    d.resize(d.size() - kHmacLen);
    d[40] = 5;  // sack count > kMaxSack
    for (int i = 0; i < 80; ++i) d.push_back(1);
    cases.push_back({"sack count", seal(d)});
  }
  cases.push_back({"data count 0", encode(data({0, 0}))});
  cases.push_back({"entry seq 0", encode(data(data_body({{0, 1, {1}}})))});
  {
    Bytes b = data_body({{1, 1, {1, 2, 3}}});
    b.pop_back();
    cases.push_back({"entry truncated", encode(data(b))});
    b = data_body({{1, 1, {1, 2, 3}}});
    b.push_back(0);
    cases.push_back({"trailing byte", encode(data(b))});
    b = data_body({{1, 1, {1}}, {2, 1, {2}}});
    b[1] = 3;  // count says 3
    cases.push_back({"count too high", encode(data(b))});
  }
  cases.push_back({"data body empty", encode(data({}))});
  Wire a{1, 4, 0, kPeer, kUs_, ++pkt, 0, {}, {0}};
  cases.push_back({"ack with a body", encode(a)});
  Wire hb{1, 2, 0, kPeer, kUs_, ++pkt, 0, {}, {0, 3, 'a'}};
  cases.push_back({"heartbeat status truncated", encode(hb)});
  Bytes big = {2, 1};  // 513 bytes of status
  big.resize(2 + 513, 'x');
  hb.body = big;
  cases.push_back({"status > 512", encode(hb)});
  Wire h{1, 1, 0, kPeer, kUs_, ++pkt, 0, {}, hello_body(0, nonce)};
  cases.push_back({"hello nonce 0", encode(h)});
  h.body = hello_body(9, nonce);
  h.body.pop_back();
  h.body.pop_back();
  cases.push_back({"hello short", encode(h)});
  cases.push_back({"shorter than a header", seal(Bytes{'T', 'D', 'S', 'Y', 1, 3})});
  // An ack of entries never sent cannot come from a correct peer.
  Wire fa{1, 4, 0, kPeer, kUs_, ++pkt, 5, {}, {}};
  cases.push_back({"ack beyond what was sent", encode(fa)});

  for (const auto& [name, d] : cases) {
    const ChannelStats before = ch.stats();
    ch.on_datagram(d, kSec);
    EXPECT_EQ(ch.stats().malformed, before.malformed + 1) << name;
    EXPECT_EQ(ch.stats().auth_failures, before.auth_failures) << name;
    EXPECT_EQ(ch.state(), ChannelState::kUp) << name;
  }
  EXPECT_EQ(entries, 0);
  // Still a working session: a good datagram goes through.
  ch.on_datagram(encode(data(data_body({{1, 1, {1}}}))), kSec);
  EXPECT_EQ(entries, 1);
  // Too short to hold a MAC at all: malformed, not an auth failure.
  const uint64_t m = ch.stats().malformed;
  ch.on_datagram(Bytes{}, kSec);
  ch.on_datagram(Bytes(72, 0), kSec);
  EXPECT_EQ(ch.stats().malformed, m + 2);
}

// ---------------------------------------------------------------------------------------------
// Handshake

TEST(SyncSession, SimultaneousStartComesUpOnce) {
  Sim sim(params(1), params(2));
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  sim.run_for(2 * kSec);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sim.side[i].events, "U") << i;
    EXPECT_EQ(sim.ch(i).stats().sessions, 1u);
    EXPECT_EQ(sim.ch(i).peer_boot_id(), static_cast<uint64_t>(2 - i));
    EXPECT_EQ(sim.ch(i).stats().auth_failures + sim.ch(i).stats().malformed, 0u);
  }
}

TEST(SyncSession, LateStartAndStatusBothWays) {
  Sim sim(params(1), params(2));
  auto b = std::move(sim.side[1].ch);  // B not started yet: A's HELLOs go nowhere
  sim.ch(0).set_status(Bytes{'a', '1'});
  sim.run_for(3 * kSec);
  EXPECT_EQ(sim.ch(0).state(), ChannelState::kDown);
  // HELLO every hello_ns (200 ms) while down: t = 0, 0.2, ..., 3.0 s.
  EXPECT_EQ(sim.ch(0).stats().dgrams_sent, 16u);
  EXPECT_EQ(sim.ch(0).last_heard(), 0u);
  sim.side[1].ch = std::move(b);
  sim.ch(1).set_status(Bytes{'b', '1'});
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  EXPECT_EQ(sim.ch(0).peer_status(), (Bytes{'b', '1'}));
  EXPECT_EQ(sim.ch(1).peer_status(), (Bytes{'a', '1'}));
  // A new status reaches the peer within one heartbeat interval (plus the link's delay).
  sim.ch(0).set_status(Bytes{'a', '2'});
  sim.ch(1).set_status(Bytes(600, 'B'));  // longer than 512: truncated
  sim.run_for(101 * kMs);
  EXPECT_EQ(sim.ch(1).peer_status(), (Bytes{'a', '2'}));
  EXPECT_EQ(sim.ch(0).peer_status(), Bytes(512, 'B'));
  // Idle but up: heartbeats keep the session (dead_ns = 5 heartbeats) for a long time.
  const uint64_t sent = sim.ch(0).stats().dgrams_sent;
  sim.run_for(10 * kSec);
  EXPECT_EQ(sim.side[0].events, "U");
  EXPECT_EQ(sim.side[1].events, "U");
  EXPECT_NEAR(static_cast<double>(sim.ch(0).stats().dgrams_sent - sent), 100, 2);
  EXPECT_GE(sim.ch(0).last_heard(), sim.now - 101 * kMs);
}

TEST(SyncSession, NextDeadlineFollowsTheTimers) {
  Channel ch(params(5), {});
  std::vector<Bytes> out;
  ch.poll(kSec, out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(ch.next_deadline(), kSec + 200 * kMs);
  out.clear();
  ch.poll(kSec + 199 * kMs, out);
  EXPECT_TRUE(out.empty());
  ch.poll(kSec + 200 * kMs, out);
  EXPECT_EQ(out.size(), 1u);

  Sim sim(params(1), params(2), LinkModel{0, 0, 0, 100 * kUs, 0});
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  sim.run_for(kMs);
  // Idle: the next thing is a heartbeat.
  std::vector<Bytes> ignored;
  sim.ch(0).poll(sim.now, ignored);
  const uint64_t d = sim.ch(0).next_deadline();
  EXPECT_GT(d, sim.now);
  EXPECT_LE(d, sim.now + 100 * kMs);
  sim.send(0, 1);
  EXPECT_LE(sim.ch(0).next_deadline(), sim.now) << "queued data goes at the next poll";
}

// ---------------------------------------------------------------------------------------------
// Reliability: exactly once, in order, under loss, duplication and reordering.

struct NetCase {
  const char* name;
  LinkModel link;
};

class SyncReliability : public ::testing::TestWithParam<std::tuple<NetCase, uint64_t>> {};

TEST_P(SyncReliability, EveryEntryExactlyOnceInOrderBothWays) {
  const auto& [net, seed] = GetParam();
  constexpr uint64_t kEntries = 20'000;
  ChannelParams pa = params(100 + seed), pb = params(200 + seed);
  // Silence long enough that 30% loss cannot end the session by chance.
  pa.dead_ns = pb.dead_ns = 5 * kSec;
  Sim sim(pa, pb, net.link, seed);
  size_t max_in_flight_excess = 0;
  sim.tap = [&](int from, const Bytes& d) {
    if (d[5] != static_cast<uint8_t>(DgramType::kData)) return true;
    for (const auto& e : parse_entries(decode(d)->body)) {
      if (e.seq > sim.ch(from).acked() + 65536) ++max_in_flight_excess;
    }
    return true;
  };
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 30 * kSec)) << net.name;
  ASSERT_TRUE(sim.send(0, kEntries));
  ASSERT_TRUE(sim.send(1, kEntries));
  const bool done = sim.run_until(
      [&] {
        return sim.side[0].received == kEntries && sim.side[1].received == kEntries &&
               sim.ch(0).unacked() == 0 && sim.ch(1).unacked() == 0;
      },
      120 * kSec);
  ASSERT_TRUE(done) << net.name << " seed " << seed << ": received " << sim.side[0].received << "/"
                    << sim.side[1].received << " unacked " << sim.ch(0).unacked() << "/"
                    << sim.ch(1).unacked();
  EXPECT_NO_APP_ERRORS(sim);
  EXPECT_EQ(max_in_flight_excess, 0u);
  for (int i = 0; i < 2; ++i) {
    const ChannelStats& s = sim.ch(i).stats();
    EXPECT_EQ(sim.side[i].events, "U") << "no session flap";
    EXPECT_EQ(s.entries_delivered, kEntries);
    EXPECT_EQ(s.entries_sent, kEntries);
    EXPECT_EQ(sim.ch(i).acked(), kEntries);
    EXPECT_EQ(s.auth_failures + s.malformed, 0u);
    if (net.link.loss >= 0.3) {
      EXPECT_GT(s.entries_retransmitted, kEntries / 10);
    }
    if (net.link.loss == 0 && net.link.dup == 0 && net.link.reorder == 0) {
      EXPECT_EQ(s.entries_retransmitted, 0u);
      EXPECT_EQ(s.duplicates, 0u);
      EXPECT_EQ(s.replays, 0u);
    }
    if (net.link.dup > 0) {
      EXPECT_GT(s.replays, 0u) << "duplicated datagrams are replays";
    }
  }
  EXPECT_LE(sim.max_seen, 1400u);
}

INSTANTIATE_TEST_SUITE_P(
    Nets, SyncReliability,
    ::testing::Combine(::testing::Values(NetCase{"clean", {0, 0, 0, 200 * kUs, 0}},
                                         NetCase{"loss1", {0.01}}, NetCase{"loss30", {0.30}},
                                         NetCase{"dup_reorder", {0.0, 0.1, 0.3}},
                                         NetCase{"loss5_dup_reorder", {0.05, 0.05, 0.2}},
                                         NetCase{"loss30_dup_reorder", {0.30, 0.1, 0.3}}),
                       ::testing::Values(1, 2, 3, 4)),
    [](const auto& p) {
      return std::string(std::get<0>(p.param).name) + "_seed" +
             std::to_string(std::get<1>(p.param));
    });

TEST(SyncBulk, TwoHundredThousandEntriesAtOnePercentLoss) {
  constexpr uint64_t kEntries = 200'000;
  Sim sim(params(1), params(2), LinkModel{0.01, 0.001, 0.01}, 7);
  sim.side[0].max_len = sim.side[1].peer_max_len = 64;
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kSec));
  ASSERT_TRUE(sim.send(0, kEntries));
  EXPECT_EQ(sim.ch(0).unacked(), kEntries);
  ASSERT_TRUE(sim.run_until(
      [&] { return sim.side[1].received == kEntries && sim.ch(0).unacked() == 0; }, 60 * kSec))
      << sim.side[1].received;
  EXPECT_NO_APP_ERRORS(sim);
  EXPECT_EQ(sim.ch(0).acked(), kEntries);
  EXPECT_EQ(sim.ch(1).stats().entries_delivered, kEntries);
  EXPECT_GT(sim.ch(0).stats().entries_retransmitted, 0u);
  // Batching: 64-byte entries, ~15 per datagram.
  EXPECT_LT(sim.ch(0).stats().dgrams_sent, kEntries / 10);
  EXPECT_EQ(sim.side[0].events, "U");
}

TEST(SyncBulk, FlowControlKeepsAtMostWindowEntriesInFlight) {
  constexpr uint64_t kEntries = 5'000;
  constexpr size_t kWindow = 50;
  ChannelParams pa = params(1), pb = params(2);
  pa.window_entries = pb.window_entries = kWindow;
  Sim sim(pa, pb, LinkModel{0.05, 0, 0.2}, 3);
  uint64_t violations = 0, data_dgrams = 0;
  size_t max_entries_per_dgram = 0;
  sim.tap = [&](int from, const Bytes& d) {
    if (from != 0 || d[5] != static_cast<uint8_t>(DgramType::kData)) return true;
    ++data_dgrams;
    const auto es = parse_entries(decode(d)->body);
    max_entries_per_dgram = std::max(max_entries_per_dgram, es.size());
    for (const auto& e : es) {
      if (e.seq > sim.ch(0).acked() + kWindow) ++violations;
    }
    return true;
  };
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kSec));
  ASSERT_TRUE(sim.send(0, kEntries));
  ASSERT_TRUE(sim.run_until([&] { return sim.ch(0).unacked() == 0; }, 60 * kSec));
  EXPECT_NO_APP_ERRORS(sim);
  EXPECT_EQ(sim.side[1].received, kEntries);
  EXPECT_EQ(violations, 0u);
  EXPECT_GT(data_dgrams, kEntries / kWindow);
  EXPECT_GT(max_entries_per_dgram, 1u);
}

TEST(SyncBulk, DatagramsNeverExceedMaxDatagram) {
  ChannelParams pa = params(1), pb = params(2);
  pa.max_datagram = pb.max_datagram = 300;
  const size_t max_body = 300 - kMaxHeader - kHmacLen - 2 - 11;
  Sim sim(pa, pb, LinkModel{0.1, 0.05, 0.3}, 5);
  sim.side[0].max_len = sim.side[1].peer_max_len = max_body;
  sim.side[1].max_len = sim.side[0].peer_max_len = max_body;
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kSec));
  EXPECT_EQ(sim.ch(0).send(1, Bytes(max_body + 1, 0)), 0u) << "longer than fits";
  EXPECT_EQ(sim.ch(0).stats().refused, 0u) << "a too long body is not a full queue";
  ASSERT_TRUE(sim.send(0, 3000));
  ASSERT_TRUE(sim.send(1, 3000));
  sim.ch(0).set_status(Bytes(512, 's'));
  ASSERT_TRUE(sim.run_until(
      [&] { return sim.side[0].received == 3000 && sim.side[1].received == 3000; }, 60 * kSec));
  sim.run_for(300 * kMs);  // heartbeats carry the status
  EXPECT_NO_APP_ERRORS(sim);
  EXPECT_LE(sim.max_seen, 300u);
  EXPECT_GE(sim.max_seen, 250u);
  EXPECT_EQ(sim.ch(0).peer_status(), Bytes());
  EXPECT_EQ(sim.ch(1).peer_status().size(), 300 - kMaxHeader - 18 - kHmacLen)
      << "status truncated to what fits a HELLO";
}

// ---------------------------------------------------------------------------------------------
// Sessions ending and starting again

TEST(SyncSession, FlappingLinkEndsAndReestablishesTheSession) {
  Sim sim(params(1), params(2), LinkModel{}, 9);
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  ASSERT_TRUE(sim.send(0, 100));
  ASSERT_TRUE(sim.run_until([&] { return sim.side[1].received == 100; }, kSec));
  sim.blackout = true;
  ASSERT_TRUE(sim.send(0, 50));  // never acknowledged: dropped with the session
  ASSERT_TRUE(sim.send(1, 50));
  sim.run_for(400 * kMs);
  EXPECT_TRUE(sim.both_up()) << "shorter than dead_ns";
  EXPECT_EQ(sim.ch(0).unacked(), 50u);
  sim.run_for(200 * kMs);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sim.ch(i).state(), ChannelState::kDown);
    EXPECT_EQ(sim.side[i].events, "UD");
    EXPECT_EQ(sim.ch(i).stats().timeouts, 1u);
    EXPECT_EQ(sim.ch(i).unacked(), 0u);
    EXPECT_EQ(sim.ch(i).acked(), 0u);
    EXPECT_EQ(sim.ch(i).peer_boot_id(), 0u);
    EXPECT_EQ(sim.ch(i).send(1, Bytes{1}), 0u) << "refused while down";
  }
  sim.run_for(2 * kSec);
  EXPECT_EQ(sim.side[0].events, "UD");
  sim.blackout = false;
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, kSec));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sim.side[i].events, "UDU");
    EXPECT_EQ(sim.ch(i).stats().sessions, 2u);
    EXPECT_EQ(sim.ch(i).acked(), 0u);
  }
  // Both streams start over at seq 1.
  ASSERT_TRUE(sim.send(0, 500));
  ASSERT_TRUE(sim.send(1, 500));
  ASSERT_TRUE(sim.run_until(
      [&] {
        return sim.side[0].received == 500 && sim.side[1].received == 500 &&
               sim.ch(0).unacked() + sim.ch(1).unacked() == 0;
      },
      kSec));
  EXPECT_NO_APP_ERRORS(sim);
  EXPECT_EQ(sim.ch(1).stats().entries_delivered, 600u);
  EXPECT_EQ(sim.ch(0).stats().entries_delivered, 500u) << "B's 50 unacked were dropped";
}

TEST(SyncSession, OneSidedTimeoutRestartsBothStreams) {
  // Only B->A is cut long enough for A to give up; B still believes in the session until it
  // hears A's new handshake.
  Sim sim(params(1), params(2), LinkModel{}, 4);
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  bool cut = true;
  sim.tap = [&](int from, const Bytes&) { return !(cut && from == 1); };
  ASSERT_TRUE(sim.send(1, 10));
  ASSERT_TRUE(sim.run_until([&] { return sim.ch(0).state() == ChannelState::kDown; }, kSec));
  cut = false;
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, kSec));
  sim.run_for(kSec);
  EXPECT_EQ(sim.side[0].events, "UDU");
  EXPECT_EQ(sim.side[1].events, "UDU");
  EXPECT_EQ(sim.ch(0).stats().timeouts, 1u);
  EXPECT_EQ(sim.ch(1).stats().timeouts, 1u);
  ASSERT_TRUE(sim.send(0, 300));
  ASSERT_TRUE(sim.send(1, 300));
  ASSERT_TRUE(sim.run_until(
      [&] { return sim.side[0].received == 300 && sim.side[1].received == 300; }, kSec));
  EXPECT_NO_APP_ERRORS(sim);
}

TEST(SyncSession, RestartedPeerIsDetectedQuickly) {
  Sim sim(params(1), params(2), LinkModel{}, 6);
  std::vector<Bytes> old_hellos;  // B's first incarnation's HELLOs, for a replay later
  sim.tap = [&](int from, const Bytes& d) {
    if (from == 1 && d[5] == 1) old_hellos.push_back(d);
    return true;
  };
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  ASSERT_TRUE(sim.send(0, 200));
  ASSERT_TRUE(sim.run_until([&] { return sim.side[1].received == 200; }, kSec));
  sim.run_for(50 * kMs);
  // A has entries in flight that the old B never acknowledges.
  bool drop_to_b = true;
  sim.tap = [&](int from, const Bytes&) { return !(drop_to_b && from == 0); };
  ASSERT_TRUE(sim.send(0, 30));
  sim.step();
  drop_to_b = false;
  sim.tap = nullptr;
  EXPECT_EQ(sim.ch(0).unacked(), 30u);
  sim.make(1, params(3));  // B restarts with a new boot id
  const uint64_t t0 = sim.now;
  std::string order_at_up;
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up() && sim.ch(0).peer_boot_id() == 3; }, kSec));
  EXPECT_LT(sim.now - t0, 10 * kMs) << "noticed through HELLO, not through dead_ns";
  EXPECT_EQ(sim.side[0].events, "UDU");
  EXPECT_EQ(sim.side[1].events, "U");
  EXPECT_EQ(sim.ch(0).stats().peer_restarts, 1u);
  EXPECT_EQ(sim.ch(0).stats().timeouts, 0u);
  EXPECT_EQ(sim.ch(0).stats().sessions, 2u);
  EXPECT_EQ(sim.ch(0).unacked(), 0u) << "unacked entries dropped with the old session";
  EXPECT_EQ(sim.ch(0).acked(), 0u);
  ASSERT_TRUE(sim.send(0, 100));
  ASSERT_TRUE(sim.send(1, 100));
  EXPECT_EQ(sim.side[0].sent_seq, 100u) << "stream restarted at 1";
  ASSERT_TRUE(sim.run_until(
      [&] { return sim.side[0].received == 100 && sim.side[1].received == 100; }, kSec));
  EXPECT_NO_APP_ERRORS(sim);

  // Replaying the old incarnation's HELLOs must not reset the session. Those that echo a nonce
  // of ours are recognisably stale (replays); the first one (echo 0) only earns a probe nobody
  // answers.
  ASSERT_GE(old_hellos.size(), 2u);
  size_t echoed = 0;
  for (const auto& d : old_hellos) echoed += rd(&decode(d)->body[8], 8) != 0;
  ASSERT_GE(echoed, 1u);
  const uint64_t replays = sim.ch(0).stats().replays;
  for (const auto& d : old_hellos) sim.inject(0, d);
  EXPECT_EQ(sim.ch(0).stats().replays, replays + echoed);
  sim.run_for(2 * kSec);
  EXPECT_EQ(sim.side[0].events, "UDU");
  EXPECT_EQ(sim.side[1].events, "U");
  EXPECT_EQ(sim.ch(0).peer_boot_id(), 3u);
  EXPECT_EQ(sim.ch(0).stats().sessions, 2u);
}

TEST(SyncSession, BothRestartOneAfterTheOther) {
  Sim sim(params(1), params(2), LinkModel{0.1, 0.05, 0.1}, 8);
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kSec));
  uint64_t boot = 10;
  for (int round = 0; round < 6; ++round) {
    const int i = round % 2;
    sim.make(i, params(++boot));
    ASSERT_TRUE(sim.run_until([&] { return sim.both_up() && sim.ch(1 - i).peer_boot_id() == boot; },
                              10 * kSec))
        << round;
    ASSERT_TRUE(sim.send(0, 300));
    ASSERT_TRUE(sim.send(1, 300));
    ASSERT_TRUE(sim.run_until(
        [&] { return sim.side[0].received == 300 && sim.side[1].received == 300; }, 10 * kSec))
        << round;
    EXPECT_NO_APP_ERRORS(sim);
    EXPECT_EQ(sim.side[i].events, "U");
  }
}

// ---------------------------------------------------------------------------------------------
// Authentication and replays

// A data datagram from A to B, captured instead of delivered.
struct Captured {
  Sim sim{params(1), params(2)};
  Bytes data;

  Captured() {
    EXPECT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
    sim.run_for(kMs);
    sim.tap = [&](int from, const Bytes& d) {
      if (from == 0 && d[5] == static_cast<uint8_t>(DgramType::kData)) {
        data = d;
        return false;
      }
      return true;
    };
    EXPECT_TRUE(sim.send(0, 3));
    sim.step();
    sim.tap = nullptr;
    EXPECT_FALSE(data.empty());
  }
};

TEST(SyncSecurity, EveryTamperedByteFailsAuthentication) {
  Captured c;
  Channel& b = c.sim.ch(1);
  const uint64_t before = b.stats().auth_failures;
  std::mt19937 rng(1);
  for (size_t i = 0; i < c.data.size(); ++i) {
    Bytes t = c.data;
    t[i] ^= static_cast<uint8_t>(1u << (rng() % 8));
    c.sim.inject(1, t);
  }
  EXPECT_EQ(b.stats().auth_failures, before + c.data.size());
  EXPECT_EQ(c.sim.side[1].received, 0u);
  // Truncated or extended: also unauthenticated.
  c.sim.inject(1, Bytes(c.data.begin(), c.data.end() - 1));
  Bytes longer = c.data;
  longer.push_back(0);
  c.sim.inject(1, longer);
  EXPECT_EQ(b.stats().auth_failures, before + c.data.size() + 2);
  EXPECT_EQ(b.stats().malformed, 0u);
  // The genuine one still counts (tampered copies did not consume its packet number).
  c.sim.inject(1, c.data);
  EXPECT_EQ(c.sim.side[1].received, 3u);
  EXPECT_EQ(b.state(), ChannelState::kUp);
}

TEST(SyncSecurity, ReplayedDatagramsAreRejected) {
  Captured c;
  Channel& b = c.sim.ch(1);
  c.sim.inject(1, c.data);
  ASSERT_EQ(c.sim.side[1].received, 3u);
  const ChannelStats s = b.stats();
  c.sim.inject(1, c.data);
  c.sim.inject(1, c.data);
  EXPECT_EQ(b.stats().replays, s.replays + 2);
  EXPECT_EQ(b.stats().duplicates, s.duplicates) << "rejected before looking at the entries";
  EXPECT_EQ(b.stats().entries_delivered, 3u);
  // Much older than the replay window: still rejected.
  uint64_t pkts = 0;
  std::vector<Bytes> mid;
  c.sim.tap = [&](int from, const Bytes& d) {
    if (from == 0) {
      ++pkts;
      if (pkts == 10) mid.push_back(d);
    }
    return true;
  };
  for (int k = 0; k < 500 && pkts < 5000; ++k) {
    c.sim.send(0, 200);
    c.sim.run_for(5 * kMs);
  }
  ASSERT_GE(pkts, 5000u);
  ASSERT_EQ(mid.size(), 1u);
  const uint64_t r = b.stats().replays, delivered = b.stats().entries_delivered;
  c.sim.inject(1, c.data);
  c.sim.inject(1, mid[0]);
  EXPECT_EQ(b.stats().replays, r + 2);
  EXPECT_EQ(b.stats().entries_delivered, delivered);
  EXPECT_NO_APP_ERRORS(c.sim);
}

TEST(SyncSecurity, ReplayedHandshakeDoesNotResetALiveSession) {
  Sim sim(params(1), params(2));
  std::vector<Bytes> hellos;
  sim.tap = [&](int from, const Bytes& d) {
    if (from == 1 && d[5] == 1) hellos.push_back(d);
    return true;
  };
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  sim.run_for(kSec);
  ASSERT_FALSE(hellos.empty());
  const uint64_t r = sim.ch(0).stats().replays;
  sim.tap = nullptr;
  for (const auto& d : hellos) sim.inject(0, d);
  EXPECT_EQ(sim.ch(0).stats().replays, r + hellos.size());
  EXPECT_EQ(sim.side[0].events, "U");
  // After a timeout on both sides the old HELLOs are still refused: they echo a nonce that no
  // longer exists, and their packet numbers are old.
  sim.blackout = true;
  sim.run_for(kSec);
  ASSERT_EQ(sim.side[0].events, "UD");
  const uint64_t r2 = sim.ch(0).stats().replays;
  for (const auto& d : hellos) sim.inject(0, d);
  EXPECT_EQ(sim.ch(0).stats().replays, r2 + hellos.size());
  EXPECT_EQ(sim.ch(0).state(), ChannelState::kDown);
  sim.blackout = false;
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, kSec));
  EXPECT_EQ(sim.side[0].events, "UDU");
}

TEST(SyncSecurity, WrongKeyNeverComesUp) {
  ChannelParams pb = params(2);
  pb.key = {'o', 't', 'h', 'e', 'r'};
  Sim sim(params(1), pb);
  sim.run_for(3 * kSec);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sim.ch(i).state(), ChannelState::kDown);
    EXPECT_EQ(sim.ch(i).stats().sessions, 0u);
    EXPECT_EQ(sim.ch(i).stats().auth_failures, sim.ch(i).stats().dgrams_received);
    EXPECT_GE(sim.ch(i).stats().auth_failures, 10u);
    EXPECT_EQ(sim.ch(i).last_heard(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------
// Robustness

TEST(SyncRobustness, RandomMutationsNeverCrashAndAreCounted) {
  Sim sim(params(1), params(2), LinkModel{}, 12);
  std::vector<Bytes> seen;
  sim.tap = [&](int, const Bytes& d) {
    if (seen.size() < 200) seen.push_back(d);
    return true;
  };
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  ASSERT_TRUE(sim.send(0, 300));
  ASSERT_TRUE(sim.send(1, 300));
  sim.run_for(200 * kMs);
  sim.tap = nullptr;
  ASSERT_GE(seen.size(), 20u);
  std::mt19937_64 rng(99);
  const ChannelStats s0 = sim.ch(1).stats();
  uint64_t fed = 0;
  for (int k = 0; k < 4000; ++k) {
    Bytes d = seen[rng() % seen.size()];
    switch (rng() % 5) {
      case 0:  // flip a few bits
        for (int f = 0, n = 1 + static_cast<int>(rng() % 4); f < n; ++f)
          d[rng() % d.size()] ^= 1u << (rng() % 8);
        break;
      case 1:  // truncate
        d.resize(rng() % d.size());
        break;
      case 2:  // extend with garbage
        for (int f = 0, n = 1 + static_cast<int>(rng() % 64); f < n; ++f)
          d.push_back(static_cast<uint8_t>(rng()));
        break;
      case 3:  // overwrite a run
        for (size_t at = rng() % d.size(), n = 1 + rng() % 16; n-- && at < d.size(); ++at)
          d[at] = static_cast<uint8_t>(rng());
        break;
      default:  // random bytes
        d.resize(rng() % 1500);
        for (auto& x : d) x = static_cast<uint8_t>(rng());
        break;
    }
    if (std::find(seen.begin(), seen.end(), d) != seen.end()) continue;
    sim.inject(1, d);
    ++fed;
  }
  const ChannelStats& s = sim.ch(1).stats();
  EXPECT_EQ((s.auth_failures - s0.auth_failures) + (s.malformed - s0.malformed), fed);
  EXPECT_EQ(s.entries_delivered, s0.entries_delivered);
  EXPECT_EQ(sim.side[1].events, "U");
}

// Mutations re-signed with the right key get past the MAC: the parser and the protocol logic
// must survive whatever an authenticated (buggy) peer could send, and the pair must recover.
TEST(SyncRobustness, AuthenticatedGarbageNeverCrashesAndThePairRecovers) {
  Sim sim(params(1), params(2), LinkModel{}, 13);
  std::vector<Bytes> seen;
  sim.tap = [&](int from, const Bytes& d) {
    if (from == 0 && seen.size() < 300) seen.push_back(Bytes(d.begin(), d.end() - kHmacLen));
    return true;
  };
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  ASSERT_TRUE(sim.send(0, 500));
  sim.run_for(300 * kMs);
  sim.tap = nullptr;
  ASSERT_GE(seen.size(), 10u);
  std::mt19937_64 rng(5);
  const ChannelStats s0 = sim.ch(1).stats();
  for (int k = 0; k < 3000; ++k) {
    Bytes d = seen[rng() % seen.size()];
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < n; ++f) {
      switch (rng() % 4) {
        case 0:
          d[rng() % d.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          d.resize(rng() % (d.size() + 1));
          break;
        case 2:
          d.push_back(static_cast<uint8_t>(rng()));
          break;
        default:  // a plausible packet number far ahead, or a huge length
          if (d.size() > 32) d[24 + rng() % 8] = static_cast<uint8_t>(rng());
          break;
      }
      if (d.empty()) d.push_back(0);
    }
    sim.inject(1, seal(d));
    sim.step();
  }
  EXPECT_GT(sim.ch(1).stats().malformed, s0.malformed);
  // Whatever state that left B in, it takes up a session with A's next incarnation (A's own
  // boot id may be unusable: a forged packet number far ahead, which takes the key, poisons its
  // replay window) and data flows again.
  sim.make(0, params(7));
  ASSERT_TRUE(
      sim.run_until([&] { return sim.both_up() && sim.ch(1).peer_boot_id() == 7; }, 2 * kSec));
  sim.side[0].errors.clear();
  sim.side[1].errors.clear();
  ASSERT_TRUE(sim.send(0, 200));
  ASSERT_TRUE(sim.send(1, 200));
  ASSERT_TRUE(sim.run_until(
      [&] { return sim.side[0].received == 200 && sim.side[1].received == 200; }, kSec));
  EXPECT_NO_APP_ERRORS(sim);
}

// ---------------------------------------------------------------------------------------------
// API limits

TEST(SyncApi, SendRefusesWhenDownTooLongOrQueueFull) {
  ChannelParams pa = params(1);
  pa.max_queued_entries = 10;
  pa.window_entries = 4;
  Channel down(pa, {});
  EXPECT_EQ(down.send(1, Bytes{1}), 0u);
  EXPECT_EQ(down.stats().refused, 0u);
  EXPECT_EQ(down.unacked(), 0u);

  Sim sim(pa, params(2));
  ASSERT_TRUE(sim.run_until([&] { return sim.both_up(); }, 10 * kMs));
  Channel& a = sim.ch(0);
  EXPECT_EQ(a.send(1, Bytes(1250, 0)), 1u) << "the largest body that fits 1400 bytes";
  EXPECT_EQ(a.send(1, Bytes(1251, 0)), 0u);
  for (uint64_t s = 2; s <= 10; ++s) EXPECT_EQ(a.send(1, Bytes{1}), s);
  EXPECT_EQ(a.send(1, Bytes{1}), 0u);
  EXPECT_EQ(a.send(1, Bytes{1}), 0u);
  EXPECT_EQ(a.stats().refused, 2u);
  EXPECT_EQ(a.unacked(), 10u);
  EXPECT_EQ(a.acked(), 0u);
  // One poll puts window_entries in flight: that much room in the queue again.
  std::vector<Bytes> out;
  a.poll(sim.now, out);
  EXPECT_EQ(a.stats().entries_sent, 4u);
  for (uint64_t s = 11; s <= 14; ++s) EXPECT_EQ(a.send(1, Bytes{1}), s);
  EXPECT_EQ(a.send(1, Bytes{1}), 0u);
  EXPECT_EQ(a.unacked(), 14u);
}

}  // namespace
