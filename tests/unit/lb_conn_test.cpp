// lb::ConnTable (lb/conn_table.h): the per-worker connection table. Both-direction lookups,
// refusals (full, embryonic limit, duplicate keys), IPVS's TCP state table for NAT and for DR's
// input-only view, aging on a fake clock (timeouts, touches, shortened timeouts, bounded work,
// clock jumps), a SYN flood, and a randomized comparison with a std::unordered_map model.

#include "lb/conn_table.h"

#include <cstdint>
#include <functional>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

namespace lb {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kTick = ConnTable::kTickNs;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint32_t kVip = 0xc0000264;  // 192.0.2.100
constexpr uint32_t kRs = 0x0a000101;   // 10.0.1.1
constexpr uint64_t kT0 = 1000 * kSec;  // a clock that does not start at zero

struct KeyHash {
  size_t operator()(const FlowKey& k) const noexcept {
    return std::hash<uint64_t>()((uint64_t{k.src_ip} << 32) | k.dst_ip) * 31 +
           std::hash<uint64_t>()((uint64_t{k.src_port} << 24) | (uint64_t{k.dst_port} << 8) |
                                 k.proto);
  }
};

FlowKey client(uint32_t i, uint8_t proto = kTcp, uint32_t vip = kVip) {
  return {0x64000000 + i, vip, static_cast<uint16_t>(1024 + i % 60000), 80, proto};
}

// NAT reply key: real server -> client.
FlowKey reply_of(const FlowKey& fwd, uint32_t rs_ip = kRs, uint16_t rs_port = 8080) {
  return {rs_ip, fwd.src_ip, rs_port, fwd.src_port, fwd.proto};
}

ConnTable::Params params(uint32_t capacity, uint32_t permille = 1000, uint64_t seed = 1) {
  ConnTable::Params p;
  p.capacity = capacity;
  p.embryonic_permille = permille;
  p.hash_seed = seed;
  return p;
}

const auto kIgnore = [](const Conn&) {};

uint64_t timeout_s(TcpState s) {
  const Timeouts t;
  switch (s) {
    case TcpState::kNone:
      return t.tcp_none;
    case TcpState::kSynSent:
      return t.tcp_syn_sent;
    case TcpState::kSynRecv:
      return t.tcp_syn;
    case TcpState::kEstablished:
      return t.tcp_established;
    case TcpState::kFinWait:
      return t.tcp_fin;
    case TcpState::kTimeWait:
      return t.tcp_time_wait;
    case TcpState::kClose:
      return t.tcp_close;
    case TcpState::kCloseWait:
      return t.tcp_close_wait;
    case TcpState::kLastAck:
      return t.tcp_last_ack;
    case TcpState::kListen:
      return t.tcp_syn_sent;
    case TcpState::kSynAck:
      return t.tcp_syn_sent;
    case TcpState::kUdp:
      return t.udp;
  }
  return 0;
}

// Drives the wheel in steps, as a worker loop would; returns how many expired.
uint32_t run_clock(ConnTable& t, uint64_t from, uint64_t to, uint64_t step) {
  uint32_t n = 0;
  for (uint64_t now = from; now <= to; now += step) n += t.expire(now, UINT32_MAX, kIgnore);
  return n;
}

TEST(ConnTableNames, IpvsSpelling) {
  EXPECT_EQ(to_string(TcpState::kNone), "NONE");
  EXPECT_EQ(to_string(TcpState::kSynSent), "SYN_SENT");
  EXPECT_EQ(to_string(TcpState::kSynRecv), "SYN_RECV");
  EXPECT_EQ(to_string(TcpState::kEstablished), "ESTABLISHED");
  EXPECT_EQ(to_string(TcpState::kFinWait), "FIN_WAIT");
  EXPECT_EQ(to_string(TcpState::kTimeWait), "TIME_WAIT");
  EXPECT_EQ(to_string(TcpState::kClose), "CLOSE");
  EXPECT_EQ(to_string(TcpState::kCloseWait), "CLOSE_WAIT");
  EXPECT_EQ(to_string(TcpState::kLastAck), "LAST_ACK");
  EXPECT_EQ(to_string(TcpState::kListen), "LISTEN");
  EXPECT_EQ(to_string(TcpState::kSynAck), "SYNACK");
  EXPECT_EQ(to_string(TcpState::kUdp), "UDP");
  EXPECT_EQ(to_string(Refusal::kFull), "full");
  EXPECT_EQ(to_string(Refusal::kEmbryonicLimit), "embryonic_limit");
  EXPECT_EQ(to_string(Refusal::kExists), "exists");
}

TEST(ConnTable, RejectsBadCapacity) {
  EXPECT_THROW(ConnTable(params(0)), std::invalid_argument);
  EXPECT_THROW(ConnTable(params(ConnTable::kMaxCapacity + 1)), std::invalid_argument);
}

// find_bulk() prefetches one line per connection: every field a packet of an established flow
// reads or writes (with replication on) must be in it.
TEST(ConnTable, PerPacketFieldsShareTheFirstCacheLine) {
  EXPECT_EQ(sizeof(Conn), 128u);
  EXPECT_EQ(alignof(Conn), 64u);
  const Conn c;
  const auto* base = reinterpret_cast<const char*>(&c);
  auto in_first_line = [base](const auto& field) {
    const auto* p = reinterpret_cast<const char*>(&field);
    return p >= base && p + sizeof(field) <= base + 64;
  };
  EXPECT_TRUE(in_first_line(c.fwd));
  EXPECT_TRUE(in_first_line(c.rev));
  EXPECT_TRUE(in_first_line(c.dest_id));
  EXPECT_TRUE(in_first_line(c.service_id));
  EXPECT_TRUE(in_first_line(c.fwd_mode));
  EXPECT_TRUE(in_first_line(c.state));
  EXPECT_TRUE(in_first_line(c.expires_ns));
  EXPECT_TRUE(in_first_line(c.synced_ns));
  EXPECT_TRUE(in_first_line(c.sync_gen));
}

TEST(ConnTable, InsertFindBothDirections) {
  ConnTable t(params(1024));
  const FlowKey f = client(1), r = reply_of(f);
  Conn* c = t.insert(f, r, kT0);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->fwd, f);
  EXPECT_EQ(c->rev, r);
  EXPECT_EQ(c->state, TcpState::kNone);
  EXPECT_EQ(c->expires_ns, kT0 + 2 * kSec);
  EXPECT_EQ(c->service_id, 0u);
  EXPECT_EQ(c->sync_gen, 0u);
  EXPECT_EQ(c->synced_ns, 0u);
  EXPECT_TRUE(c->embryonic());
  EXPECT_EQ(c->rs_ip(), kRs);
  EXPECT_EQ(c->rs_port(), 8080);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.embryonic(), 1u);

  bool reply = true;
  EXPECT_EQ(t.find(f, &reply), c);
  EXPECT_FALSE(reply);
  EXPECT_EQ(t.find(r, &reply), c);
  EXPECT_TRUE(reply);
  EXPECT_EQ(t.find(r, nullptr), c);
  EXPECT_EQ(t.find(client(2), &reply), nullptr);
  FlowKey other_proto = f;
  other_proto.proto = kUdp;
  EXPECT_EQ(t.find(other_proto, &reply), nullptr);

  Conn* u = t.insert(client(3, kUdp), reply_of(client(3, kUdp)), kT0);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->state, TcpState::kUdp);
  EXPECT_EQ(u->expires_ns, kT0 + 300 * kSec);
  EXPECT_FALSE(u->embryonic());
  EXPECT_EQ(t.embryonic(), 1u);
  EXPECT_EQ(t.stats().inserted, 2u);
}

TEST(ConnTable, DuplicateKeysRefused) {
  ConnTable t(params(64));
  const FlowKey f = client(1);
  ASSERT_NE(t.insert(f, reply_of(f), kT0), nullptr);
  EXPECT_EQ(t.insert(f, reply_of(f, kRs + 1), kT0), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kExists);
  // Same client to another VIP, bound to the same real server: same reply key.
  const FlowKey g = client(1, kTcp, kVip + 1);
  EXPECT_EQ(t.insert(g, reply_of(g), kT0), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kExists);
  EXPECT_EQ(t.stats().refused_exists, 2u);
  EXPECT_NE(t.insert(g, reply_of(g, kRs + 1), kT0), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kNone);
  EXPECT_EQ(t.size(), 2u);
}

TEST(ConnTable, FullTableRefusesAndCounts) {
  ConnTable t(params(1024));
  const size_t bytes = t.memory_bytes();
  for (uint32_t i = 0; i < 1024; ++i)
    ASSERT_NE(t.insert(client(i, kUdp), reply_of(client(i, kUdp)), kT0), nullptr) << i;
  EXPECT_EQ(t.size(), t.capacity());
  EXPECT_EQ(t.insert(client(5000, kUdp), reply_of(client(5000, kUdp)), kT0), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kFull);
  EXPECT_EQ(t.insert(client(5001), reply_of(client(5001)), kT0), nullptr);
  EXPECT_EQ(t.stats().refused_full, 2u);
  t.erase(t.find(client(7, kUdp), nullptr));
  EXPECT_EQ(t.size(), 1023u);
  EXPECT_NE(t.insert(client(5000, kUdp), reply_of(client(5000, kUdp)), kT0), nullptr);
  EXPECT_EQ(t.memory_bytes(), bytes);
}

// The index is sized for at most 85% load: at exactly that load, structured (sequential) and
// random keys all fit, and all are found.
TEST(ConnTable, IndexFillsToCapacityAtMaxLoad) {
  constexpr uint32_t kCap = 55705;  // 2 * kCap keys in 16384 buckets of 8: 85.0%
  for (uint64_t seed : {1, 2, 3}) {
    ConnTable t(params(kCap, 1000, seed));
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<FlowKey> keys;
    for (uint32_t i = 0; i < kCap; ++i) {
      // Half sequential clients, half random ones.
      FlowKey f = i % 2 ? client(i, kUdp)
                        : FlowKey{static_cast<uint32_t>(rng()), kVip, static_cast<uint16_t>(rng()),
                                  443, kUdp};
      Conn* c = t.insert(f, reply_of(f), kT0);
      ASSERT_NE(c, nullptr) << "seed " << seed << " i " << i << " " << to_string(t.last_refusal());
      keys.push_back(f);
    }
    EXPECT_GT(t.index_load(), 0.84);
    EXPECT_EQ(t.stats().refused_no_slot, 0u);
    for (const FlowKey& f : keys) {
      bool reply = true;
      Conn* c = t.find(f, &reply);
      ASSERT_NE(c, nullptr);
      EXPECT_FALSE(reply);
      EXPECT_EQ(t.find(reply_of(f), &reply), c);
      EXPECT_TRUE(reply);
    }
    // Churn at full load: erase and re-insert different keys.
    for (uint32_t i = 0; i < kCap; i += 3) {
      t.erase(t.find(keys[i], nullptr));
      const FlowKey f{static_cast<uint32_t>(rng()), kVip + 7, 53, 53, kUdp};
      ASSERT_NE(t.insert(f, reply_of(f), kT0), nullptr);
    }
    EXPECT_EQ(t.size(), kCap);
  }
}

TEST(ConnTable, EraseThenReinsert) {
  ConnTable t(params(16));
  const FlowKey f = client(1), r = reply_of(f);
  Conn* c = t.insert(f, r, kT0);
  ASSERT_NE(c, nullptr);
  c->service_id = 42;
  t.erase(c);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_EQ(t.find(f, nullptr), nullptr);
  EXPECT_EQ(t.find(r, nullptr), nullptr);
  t.erase(nullptr);
  EXPECT_EQ(t.stats().erased, 1u);

  const FlowKey r2 = reply_of(f, kRs + 5);
  Conn* d = t.insert(f, r2, kT0 + kSec);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->service_id, 0u);  // nothing left over from the previous occupant
  EXPECT_EQ(t.find(f, nullptr), d);
  EXPECT_EQ(t.find(r2, nullptr), d);
  EXPECT_EQ(t.find(r, nullptr), nullptr);
  // Erased connections are not expired later.
  EXPECT_EQ(run_clock(t, kT0, kT0 + 10 * kSec, kTick), 1u);  // d: NONE, 2 s
  EXPECT_EQ(t.size(), 0u);
}

TEST(ConnTable, ForEachVisitsAll) {
  ConnTable t(params(2048));
  std::set<uint32_t> live;
  for (uint32_t i = 0; i < 1000; ++i) {
    ASSERT_NE(t.insert(client(i), reply_of(client(i)), kT0), nullptr);
    live.insert(client(i).src_ip);
  }
  for (uint32_t i = 0; i < 1000; i += 10) {
    t.erase(t.find(client(i), nullptr));
    live.erase(client(i).src_ip);
  }
  std::set<uint32_t> seen;
  t.for_each([&](const Conn& c) { EXPECT_TRUE(seen.insert(c.fwd.src_ip).second); });
  EXPECT_EQ(seen, live);
  EXPECT_EQ(t.size(), 900u);

  // In pieces, as a worker serves a listing between bursts.
  std::set<uint32_t> pieces;
  uint32_t pos = 0, calls = 0;
  while (pos < t.capacity()) {
    pos = t.for_each_from(pos, 100, [&](const Conn& c) { pieces.insert(c.fwd.src_ip); });
    ++calls;
  }
  EXPECT_EQ(pieces, live);
  EXPECT_EQ(calls, 21u);  // 2048 slots, 100 at a time
  EXPECT_EQ(t.for_each_from(5000, 100, [](const Conn&) { ADD_FAILURE(); }), t.capacity());
  EXPECT_EQ(t.for_each_from(2000, 0xffffffffu, [](const Conn&) {}), t.capacity());
}

TEST(ConnTable, FindBulkMatchesFind) {
  ConnTable t(params(8192));
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 5000; ++i) {
    ASSERT_NE(t.insert(client(i), reply_of(client(i)), kT0), nullptr);
    keys.push_back(client(i));
    keys.push_back(reply_of(client(i)));
    keys.push_back(client(i + 100000));  // unknown
  }
  for (uint32_t burst : {1u, 7u, 32u, 100u}) {
    std::vector<Conn*> out(burst);
    bool reply[100];
    for (size_t base = 0; base + burst <= keys.size(); base += burst) {
      t.find_bulk(&keys[base], burst, out.data(), reply);
      for (uint32_t j = 0; j < burst; ++j) {
        bool r = false;
        Conn* c = t.find(keys[base + j], &r);
        ASSERT_EQ(out[j], c);
        if (c) {
          EXPECT_EQ(reply[j], r);
        }
      }
    }
  }
}

// ---- TCP states ------------------------------------------------------------------------------

struct Step {
  bool reply;
  uint8_t flags;
  TcpState expect;
};

void run_steps(ConnTable& t, Conn& c, const std::vector<Step>& steps, uint64_t& now) {
  for (const Step& s : steps) {
    const TcpState before = c.state;
    now += 10 * kMs;
    EXPECT_EQ(t.on_tcp(c, s.reply, s.flags, now), before);
    EXPECT_EQ(c.state, s.expect) << (s.reply ? "reply " : "client ") << int{s.flags} << " from "
                                 << to_string(before);
    EXPECT_EQ(c.expires_ns, now + timeout_s(c.state) * kSec) << to_string(c.state);
  }
}

constexpr uint8_t kSynAck = kTcpSyn | kTcpAck;
constexpr uint8_t kFinAck = kTcpFin | kTcpAck;

TEST(ConnTableTcp, NatHandshakeAndClientClose) {
  ConnTable t(params(16));
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  c->fwd_mode = Fwd::kNat;
  run_steps(t, *c,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished}},
            now);
  EXPECT_FALSE(c->embryonic());
  EXPECT_EQ(t.embryonic(), 0u);
  run_steps(t, *c,
            {{false, kTcpAck, TcpState::kEstablished},
             {true, kTcpAck, TcpState::kEstablished},
             {false, kFinAck, TcpState::kCloseWait},
             {true, kTcpAck, TcpState::kCloseWait},
             {true, kFinAck, TcpState::kTimeWait},
             {false, kTcpAck, TcpState::kTimeWait}},
            now);
  EXPECT_EQ(t.embryonic(), 0u);  // closing, but it was established: not embryonic
}

TEST(ConnTableTcp, NatServerCloses) {
  ConnTable t(params(16));
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  run_steps(t, *c,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {true, kFinAck, TcpState::kFinWait},
             {false, kTcpAck, TcpState::kFinWait},
             {false, kFinAck, TcpState::kTimeWait},
             {true, kTcpAck, TcpState::kTimeWait}},
            now);
}

TEST(ConnTableTcp, ResetsAndOddPackets) {
  ConnTable t(params(16));
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  run_steps(t, *c,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {false, kTcpRst, TcpState::kSynRecv},  // IPVS: a client RST in SYN_RECV is ignored
             {true, kTcpRst | kTcpAck, TcpState::kClose},
             {false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {false, kTcpRst, TcpState::kClose},
             {false, 0, TcpState::kClose}},  // no SYN/FIN/ACK/RST: CLOSE, as IPVS
            now);
  Conn* d = t.insert(client(2), reply_of(client(2)), now);
  ASSERT_NE(d, nullptr);
  run_steps(t, *d,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {false, 0x08 /* PSH alone */, TcpState::kClose}},
            now);
  // A UDP entry handed to on_tcp() is treated as new, not as garbage.
  Conn* u = t.insert(client(3, kUdp), reply_of(client(3, kUdp)), now);
  ASSERT_NE(u, nullptr);
  run_steps(t, *u, {{false, kTcpSyn, TcpState::kSynRecv}}, now);
}

// DR/TUN: the director sees only the client: IPVS's INPUT-ONLY table.
TEST(ConnTableTcp, DirectRoutingInputOnly) {
  ConnTable t(params(16));
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  c->fwd_mode = Fwd::kDr;
  run_steps(t, *c,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {false, kTcpAck, TcpState::kEstablished},
             {false, kFinAck, TcpState::kFinWait},  // NAT would say CLOSE_WAIT
             {false, kTcpAck, TcpState::kFinWait},
             {false, kFinAck, TcpState::kFinWait}},
            now);
  EXPECT_EQ(c->expires_ns, now + 120 * kSec);  // tcp_fin: ipvsadm --set's second value
  EXPECT_FALSE(c->seen_reply());

  Conn* d = t.insert(client(2), reply_of(client(2)), now);
  ASSERT_NE(d, nullptr);
  d->fwd_mode = Fwd::kTun;
  run_steps(t, *d,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {false, kTcpRst, TcpState::kClose}},
            now);

  // A reply seen on a DR connection turns the normal tables on (IPVS clears NOOUTPUT).
  Conn* e = t.insert(client(3), reply_of(client(3)), now);
  ASSERT_NE(e, nullptr);
  e->fwd_mode = Fwd::kDr;
  run_steps(t, *e,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {false, kFinAck, TcpState::kCloseWait}},
            now);
  EXPECT_TRUE(e->seen_reply());
}

TEST(ConnTableTcp, SynReusesTimeWaitAndClose) {
  ConnTable t(params(16));
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  run_steps(t, *c,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {false, kFinAck, TcpState::kCloseWait},
             {true, kFinAck, TcpState::kTimeWait},
             {false, kTcpAck, TcpState::kTimeWait}},
            now);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_TRUE(ConnTable::is_reusable(*c, false, kTcpSyn));
  EXPECT_FALSE(ConnTable::is_reusable(*c, true, kTcpSyn));
  EXPECT_FALSE(ConnTable::is_reusable(*c, false, kSynAck));
  EXPECT_FALSE(ConnTable::is_reusable(*c, false, kTcpAck));
  run_steps(t, *c, {{false, kTcpSyn, TcpState::kSynRecv}}, now);
  EXPECT_TRUE(c->embryonic());
  EXPECT_EQ(t.embryonic(), 1u);
  EXPECT_EQ(t.stats().reused, 1u);
  run_steps(t, *c,
            {{true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished},
             {true, kTcpRst, TcpState::kClose}},
            now);
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_TRUE(ConnTable::is_reusable(*c, false, kTcpSyn));
  EXPECT_FALSE(ConnTable::is_reusable(*c, false, kTcpSyn | kTcpFin));
  run_steps(t, *c, {{false, kTcpSyn, TcpState::kSynRecv}}, now);
  EXPECT_EQ(t.embryonic(), 1u);
  EXPECT_EQ(t.stats().reused, 2u);
}

// ---- embryonic limit -------------------------------------------------------------------------

TEST(ConnTableEmbryonic, LimitRefusesTcpNotEstablishedFlows) {
  ConnTable t(params(1000, 500));
  EXPECT_EQ(t.embryonic_limit(), 500u);
  uint64_t now = kT0;
  std::vector<Conn*> syn;
  for (uint32_t i = 0; i < 500; ++i) {
    Conn* c = t.insert(client(i), reply_of(client(i)), now);
    ASSERT_NE(c, nullptr) << i;
    t.on_tcp(*c, false, kTcpSyn, now);
    syn.push_back(c);
  }
  EXPECT_EQ(t.embryonic(), 500u);
  EXPECT_EQ(t.insert(client(600), reply_of(client(600)), now), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kEmbryonicLimit);
  EXPECT_EQ(t.stats().refused_embryonic, 1u);
  // UDP is not limited.
  EXPECT_NE(t.insert(client(601, kUdp), reply_of(client(601, kUdp)), now), nullptr);
  // Handshakes that complete leave the embryonic share and make room for as many new ones.
  for (uint32_t i = 0; i < 10; ++i) {
    t.on_tcp(*syn[i], true, kSynAck, now);
    t.on_tcp(*syn[i], false, kTcpAck, now);
  }
  EXPECT_EQ(t.embryonic(), 490u);
  for (uint32_t i = 0; i < 10; ++i)
    EXPECT_NE(t.insert(client(700 + i), reply_of(client(700 + i)), now), nullptr);
  EXPECT_EQ(t.insert(client(800), reply_of(client(800)), now), nullptr);
  // Spoofed SYNs never complete: they age out after tcp_syn and the share is free again.
  now += 61 * kSec + kTick;
  EXPECT_EQ(t.expire(now, UINT32_MAX, kIgnore), 500u);  // 490 SYN_RECV + 10 NONE
  EXPECT_EQ(t.embryonic(), 0u);
  EXPECT_EQ(t.size(), 11u);  // 10 established + 1 UDP
  EXPECT_NE(t.insert(client(800), reply_of(client(800)), now), nullptr);
}

TEST(ConnTableEmbryonic, EvictingInsertLetsEstablishedFlowsIn) {
  ConnTable t(params(1000, 500));
  uint64_t now = kT0;
  for (uint32_t i = 0; i < 500; ++i) {
    Conn* c = t.insert(client(i), reply_of(client(i)), now);
    ASSERT_NE(c, nullptr);
    t.on_tcp(*c, false, kTcpSyn, now);
    now += kMs;
  }
  std::vector<FlowKey> evicted;
  auto on_evict = [&](const Conn& c) { evicted.push_back(c.fwd); };
  // 500 legitimate clients arrive during the flood: each evicts the oldest half-open one and
  // completes its handshake. Then the table is full, and they still get in.
  for (uint32_t i = 0; i < 700; ++i) {
    const FlowKey f = client(10000 + i);
    Conn* c = t.insert(f, reply_of(f), now, on_evict);
    ASSERT_NE(c, nullptr) << i << " " << to_string(t.last_refusal());
    t.on_tcp(*c, false, kTcpSyn, now);
    t.on_tcp(*c, true, kSynAck, now);
    t.on_tcp(*c, false, kTcpAck, now);
    now += kMs;
    ASSERT_LE(t.size(), t.capacity());
  }
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_EQ(t.embryonic(), 300u);
  // One at the limit (each completed handshake then frees its share), then one per insert once
  // the table is full (after 501 legitimate ones): 1 + 199.
  ASSERT_EQ(evicted.size(), 200u);
  for (uint32_t i = 0; i < evicted.size(); ++i) EXPECT_EQ(evicted[i], client(i)) << "oldest first";
  EXPECT_EQ(t.stats().evicted_embryonic, 200u);
  for (uint32_t i = 0; i < 700; ++i) EXPECT_NE(t.find(client(10000 + i), nullptr), nullptr);
  // No embryonic connection left to evict: full refuses.
  ConnTable u(params(4, 500));
  for (uint32_t i = 0; i < 4; ++i)
    ASSERT_NE(u.insert(client(i, kUdp), client(i + 50), now), nullptr);
  EXPECT_EQ(u.insert(client(9), reply_of(client(9)), now, on_evict), nullptr);
  EXPECT_EQ(u.last_refusal(), Refusal::kFull);
}

// Flows established elsewhere (mid-stream pickup under Maglev, the peer's sync) are not
// embryonic and not held back by the limit; set_state() keeps the accounting.
TEST(ConnTableEmbryonic, EstablishedElsewhere) {
  ConnTable t(params(8, 500));
  uint64_t now = kT0;
  for (uint32_t i = 0; i < 4; ++i)
    ASSERT_NE(t.insert(client(i), reply_of(client(i)), now), nullptr);
  EXPECT_EQ(t.insert(client(4), reply_of(client(4)), now), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kEmbryonicLimit);
  Conn* c = t.insert_established(client(4), reply_of(client(4)), now);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, TcpState::kEstablished);
  EXPECT_FALSE(c->embryonic());
  EXPECT_EQ(c->expires_ns, now + 900 * kSec);
  EXPECT_EQ(t.embryonic(), 4u);
  run_steps(t, *c, {{false, kTcpAck, TcpState::kEstablished}}, now);
  Conn* u = t.insert_established(client(5, kUdp), reply_of(client(5, kUdp)), now);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->state, TcpState::kUdp);
  EXPECT_EQ(t.insert_established(client(4), reply_of(client(4)), now), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kExists);

  // Synced states.
  EXPECT_EQ(t.set_state(*c, TcpState::kSynRecv, now), TcpState::kEstablished);
  EXPECT_TRUE(c->embryonic());
  EXPECT_EQ(t.embryonic(), 5u);
  EXPECT_EQ(c->expires_ns, now + 60 * kSec);
  EXPECT_EQ(t.set_state(*c, TcpState::kFinWait, now), TcpState::kSynRecv);
  EXPECT_FALSE(c->embryonic());
  EXPECT_EQ(t.embryonic(), 4u);
  EXPECT_EQ(t.set_state(*c, TcpState::kClose, now), TcpState::kFinWait);
  EXPECT_EQ(c->expires_ns, now + 10 * kSec);
  for (uint32_t i = 6; i < 8; ++i)
    ASSERT_NE(t.insert_established(client(i), reply_of(client(i)), now), nullptr);
  EXPECT_EQ(t.insert_established(client(9), reply_of(client(9)), now), nullptr);
  EXPECT_EQ(t.last_refusal(), Refusal::kFull);
  // The CLOSE one goes after 10 s; the NONE ones after 2 s.
  EXPECT_EQ(run_clock(t, now, now + 10 * kSec - 1, 10 * kMs), 4u);
  EXPECT_EQ(t.find(client(4), nullptr), c);
  EXPECT_EQ(run_clock(t, now + 10 * kSec, now + 10 * kSec + kTick, kMs), 1u);
  EXPECT_EQ(t.embryonic(), 0u);
}

// 1M spoofed SYNs from random sources into a 64k table over 100 s of fake time, the worker
// expiring as it goes. Capacity, embryonic share and memory hold; an established flow stays.
TEST(ConnTableEmbryonic, SynFloodNeverDisplacesEstablished) {
  for (bool evicting : {false, true}) {
    ConnTable t(params(65536, 500, 7));
    const size_t bytes = t.memory_bytes();
    uint64_t now = kT0;
    const FlowKey ef = client(1), er = reply_of(ef);
    Conn* e = t.insert(ef, er, now);
    ASSERT_NE(e, nullptr);
    t.on_tcp(*e, false, kTcpSyn, now);
    t.on_tcp(*e, true, kSynAck, now);
    t.on_tcp(*e, false, kTcpAck, now);

    std::mt19937 rng(11);
    uint32_t expired = 0, refused = 0, legit_ok = 0;
    uint64_t evicted = 0;
    auto on_evict = [&](const Conn& c) {
      ++evicted;
      EXPECT_NE(c.state, TcpState::kEstablished);
    };
    for (uint32_t i = 0; i < 1'000'000; ++i) {
      now += 100'000;  // 10k SYN/s
      const FlowKey f{static_cast<uint32_t>(rng()), kVip, static_cast<uint16_t>(rng()), 80, kTcp};
      Conn* c = evicting ? t.insert(f, reply_of(f), now, on_evict) : t.insert(f, reply_of(f), now);
      if (c) {
        t.on_tcp(*c, false, kTcpSyn, now);
        t.on_tcp(*c, true, kSynAck, now);  // the real server answers the spoofed address
      } else {
        ++refused;
      }
      if (i % 1000 == 0) {
        expired += t.expire(now, 4096, kIgnore);
        bool reply = false;
        Conn* found = t.find(ef, &reply);
        ASSERT_EQ(found, e);
        t.on_tcp(*found, false, kTcpAck, now);
        ASSERT_EQ(t.find(er, &reply), e);
        EXPECT_TRUE(reply);
        t.on_tcp(*e, true, kTcpAck, now);
        ASSERT_LE(t.size(), t.capacity());
        ASSERT_LE(t.embryonic(), t.embryonic_limit());
      }
      if (evicting && i % 10000 == 5000) {
        // A real client's handshake completes 1 ms (10 flood SYNs) later.
        const FlowKey lf{0x0b000000 + i, kVip, 4000, 80, kTcp};
        Conn* l = t.insert(lf, reply_of(lf), now, on_evict);
        ASSERT_NE(l, nullptr);
        t.on_tcp(*l, false, kTcpSyn, now);
        for (int k = 0; k < 10; ++k) {
          now += 100'000;
          const FlowKey g{static_cast<uint32_t>(rng()), kVip, static_cast<uint16_t>(rng()), 80,
                          kTcp};
          if (Conn* x = t.insert(g, reply_of(g), now, on_evict)) t.on_tcp(*x, false, kTcpSyn, now);
        }
        Conn* back = t.find(reply_of(lf), nullptr);
        ASSERT_EQ(back, l);
        t.on_tcp(*l, true, kSynAck, now);
        t.on_tcp(*l, false, kTcpAck, now);
        EXPECT_EQ(l->state, TcpState::kEstablished);
        ++legit_ok;
      }
    }
    EXPECT_EQ(t.memory_bytes(), bytes);
    EXPECT_EQ(t.find(ef, nullptr), e);
    EXPECT_EQ(e->state, TcpState::kEstablished);
    if (evicting) {
      EXPECT_GT(evicted, 500'000u);
      EXPECT_EQ(legit_ok, 100u);
      EXPECT_EQ(t.embryonic(), t.embryonic_limit());
    } else {
      EXPECT_GT(expired, 0u);  // evicted before they could age, in the other mode
      EXPECT_GT(refused, 500'000u);
      EXPECT_EQ(t.stats().refused_embryonic + t.stats().refused_exists, refused);
      EXPECT_EQ(t.embryonic(), t.embryonic_limit());
    }
  }
}

// ---- aging -----------------------------------------------------------------------------------

TEST(ConnTableAging, ExpiresAtTimeoutNotBefore) {
  ConnTable t(params(64));
  const FlowKey f = client(1, kUdp);
  ASSERT_NE(t.insert(f, reply_of(f), kT0), nullptr);
  EXPECT_EQ(run_clock(t, kT0, kT0 + 300 * kSec - 1, 10 * kMs), 0u);
  EXPECT_NE(t.find(f, nullptr), nullptr);
  std::vector<FlowKey> gone;
  uint64_t now = kT0 + 300 * kSec - 1;
  while (gone.empty() && now < kT0 + 400 * kSec) {
    now += kMs;
    t.expire(now, 16, [&](const Conn& c) {
      EXPECT_LE(c.expires_ns, now);
      gone.push_back(c.fwd);
    });
  }
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], f);
  EXPECT_LE(now, kT0 + 300 * kSec + kTick + kMs);  // at most a tick late
  EXPECT_EQ(t.find(f, nullptr), nullptr);
  EXPECT_EQ(t.find(reply_of(f), nullptr), nullptr);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stats().expired, 1u);
}

TEST(ConnTableAging, EveryStateItsOwnTimeout) {
  uint64_t now = kT0;
  struct Case {
    std::vector<Step> steps;
    Fwd mode;
  };
  const std::vector<Case> cases = {
      {{{false, kTcpSyn, TcpState::kSynRecv}}, Fwd::kNat},
      {{{false, kTcpSyn, TcpState::kSynRecv},
        {true, kSynAck, TcpState::kSynRecv},
        {false, kTcpAck, TcpState::kEstablished}},
       Fwd::kNat},
      {{{false, kTcpSyn, TcpState::kSynRecv},
        {false, kTcpAck, TcpState::kEstablished},
        {false, kTcpFin, TcpState::kFinWait}},
       Fwd::kDr},
      {{{false, kTcpSyn, TcpState::kSynRecv},
        {false, kTcpAck, TcpState::kEstablished},
        {false, kTcpRst, TcpState::kClose}},
       Fwd::kDr},
      {{{true, kTcpSyn, TcpState::kSynSent}}, Fwd::kNat},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    ConnTable u(params(64));
    now = kT0;
    Conn* c =
        u.insert(client(static_cast<uint32_t>(i)), reply_of(client(static_cast<uint32_t>(i))), now);
    ASSERT_NE(c, nullptr);
    c->fwd_mode = cases[i].mode;
    run_steps(u, *c, cases[i].steps, now);
    const uint64_t due = now + timeout_s(c->state) * kSec;
    EXPECT_EQ(c->expires_ns, due);
    const TcpState s = c->state;
    EXPECT_EQ(run_clock(u, now, due - 1, 50 * kMs), 0u) << to_string(s);
    EXPECT_EQ(run_clock(u, due, due + kTick + kMs, kMs), 1u) << to_string(s);
  }
}

TEST(ConnTableAging, TouchedConnectionStays) {
  ConnTable t(params(64));
  const FlowKey f = client(1, kUdp), g = client(2, kUdp);
  Conn* c = t.insert(f, reply_of(f), kT0);
  ASSERT_NE(t.insert(g, reply_of(g), kT0), nullptr);
  ASSERT_NE(c, nullptr);
  // Touched every 100 s for longer than a turn of the wheel (1126 s).
  uint64_t now = kT0, expired = 0;
  for (int i = 1; i <= 40; ++i) {
    expired += run_clock(t, now + kMs, kT0 + i * 100 * kSec, 20 * kMs);
    now = kT0 + i * 100 * kSec;
    Conn* x = t.find(f, nullptr);
    ASSERT_NE(x, nullptr) << i;
    t.on_udp(*x, now);
  }
  EXPECT_EQ(expired, 1u);  // g only
  EXPECT_EQ(t.find(g, nullptr), nullptr);
  EXPECT_EQ(run_clock(t, now, now + 300 * kSec - 1, 100 * kMs), 0u);
  EXPECT_EQ(run_clock(t, now + 300 * kSec, now + 300 * kSec + kTick, kMs), 1u);
}

// Timeouts longer than a turn of the wheel: re-placed each turn, expired on time.
TEST(ConnTableAging, TimeoutLongerThanTheWheel) {
  ConnTable::Params p = params(64);
  p.timeouts.tcp_established = 7200;
  ConnTable t(p);
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  t.on_tcp(*c, false, kTcpSyn, now);
  t.on_tcp(*c, true, kSynAck, now);
  t.on_tcp(*c, false, kTcpAck, now);
  EXPECT_EQ(c->state, TcpState::kEstablished);
  EXPECT_EQ(c->expires_ns, now + 7200 * kSec);
  EXPECT_EQ(run_clock(t, now, now + 7200 * kSec - 1, kSec), 0u);
  EXPECT_EQ(run_clock(t, now + 7200 * kSec, now + 7200 * kSec + kTick, kMs), 1u);
}

// RST (and FIN) shorten the timeout: the connection leaves at the short one, not the old one.
TEST(ConnTableAging, ShorterTimeoutTakesEffect) {
  ConnTable t(params(64));
  uint64_t now = kT0;
  Conn* c = t.insert(client(1), reply_of(client(1)), now);
  ASSERT_NE(c, nullptr);
  run_steps(t, *c,
            {{false, kTcpSyn, TcpState::kSynRecv},
             {true, kSynAck, TcpState::kSynRecv},
             {false, kTcpAck, TcpState::kEstablished}},
            now);
  EXPECT_EQ(run_clock(t, now, now + 100 * kSec, 100 * kMs), 0u);
  now += 100 * kSec;
  t.on_tcp(*c, false, kTcpRst, now);
  EXPECT_EQ(c->state, TcpState::kClose);
  EXPECT_EQ(run_clock(t, now, now + 10 * kSec - 1, 10 * kMs), 0u);
  EXPECT_EQ(run_clock(t, now + 10 * kSec, now + 10 * kSec + kTick, kMs), 1u);
}

TEST(ConnTableAging, SetTimeoutsAppliesFromTheNextPacket) {
  ConnTable t(params(64));
  const FlowKey f = client(1, kUdp), g = client(2, kUdp);
  Conn* c = t.insert(f, reply_of(f), kT0);
  ASSERT_NE(t.insert(g, reply_of(g), kT0), nullptr);
  ASSERT_NE(c, nullptr);
  Timeouts to;
  to.udp = 10;
  t.set_timeouts(to);
  EXPECT_EQ(t.timeouts().udp, 10u);
  EXPECT_EQ(c->expires_ns, kT0 + 300 * kSec);  // untouched
  t.on_udp(*c, kT0 + kSec);
  EXPECT_EQ(c->expires_ns, kT0 + 11 * kSec);
  EXPECT_EQ(run_clock(t, kT0, kT0 + 11 * kSec - 1, 10 * kMs), 0u);
  EXPECT_EQ(run_clock(t, kT0 + 11 * kSec, kT0 + 11 * kSec + kTick, kMs), 1u);
  EXPECT_NE(t.find(g, nullptr), nullptr);
  EXPECT_EQ(run_clock(t, kT0 + 12 * kSec, kT0 + 300 * kSec + kTick, 50 * kMs), 1u);
  // A new connection takes the new value at once.
  Conn* d = t.insert(client(3, kUdp), reply_of(client(3, kUdp)), kT0 + 400 * kSec);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->expires_ns, kT0 + 410 * kSec);
}

TEST(ConnTableAging, ExpireIsBoundedByMax) {
  ConnTable t(params(2048));
  for (uint32_t i = 0; i < 1000; ++i)
    ASSERT_NE(t.insert(client(i, kUdp), reply_of(client(i, kUdp)), kT0), nullptr);
  const uint64_t now = kT0 + 301 * kSec;
  for (int round = 0; round < 10; ++round) {
    EXPECT_EQ(t.expire(now, 100, kIgnore), 100u) << round;
    EXPECT_EQ(t.size(), 1000u - 100u * (round + 1));
  }
  EXPECT_EQ(t.expire(now, 100, kIgnore), 0u);
  EXPECT_EQ(t.expire(now, 0, kIgnore), 0u);

  // Not-yet-due connections that share a slot are moved at most `max` per call too; repeated
  // calls get through them and lose none.
  for (uint32_t i = 0; i < 1000; ++i)
    ASSERT_NE(t.insert(client(i, kUdp), reply_of(client(i, kUdp)), now), nullptr);
  for (uint32_t i = 0; i < 1000; ++i) t.on_udp(*t.find(client(i, kUdp), nullptr), now + 200 * kSec);
  for (int round = 0; round < 40; ++round) EXPECT_EQ(t.expire(now + 301 * kSec, 50, kIgnore), 0u);
  EXPECT_EQ(t.size(), 1000u);
  uint32_t n = 0;
  for (int round = 0; round < 100 && n < 1000; ++round)
    n += t.expire(now + 501 * kSec, 50, kIgnore);
  EXPECT_EQ(n, 1000u);
}

// The clock jumps by hours (a stalled worker, a suspended VM): one call walks one turn of the
// wheel, not every tick in between; idle connections go, one touched just before stays and
// still expires on time afterwards.
TEST(ConnTableAging, ClockJumpOfHours) {
  ConnTable t(params(16384));
  for (uint32_t i = 0; i < 10000; ++i) {
    const uint64_t at = kT0 + i * 10 * kMs;  // spread over 100 s
    ASSERT_NE(t.insert(client(i, kUdp), reply_of(client(i, kUdp)), at), nullptr);
    if (i % 1000 == 0) t.expire(at, UINT32_MAX, kIgnore);
  }
  const uint64_t jump = kT0 + 10 * 3600 * kSec;
  for (uint32_t i = 0; i < 100; ++i) t.on_udp(*t.find(client(i * 100, kUdp), nullptr), jump - kSec);
  EXPECT_EQ(t.expire(jump, UINT32_MAX, kIgnore), 9900u);
  EXPECT_EQ(t.size(), 100u);
  const uint64_t due = jump - kSec + 300 * kSec;
  EXPECT_EQ(run_clock(t, jump, due - 1, 100 * kMs), 0u);
  EXPECT_EQ(run_clock(t, due, due + kTick, kMs), 100u);

  // And a jump of decades with the table empty, then one with conns in it.
  const uint64_t far = uint64_t{40} * 365 * 24 * 3600 * kSec;
  EXPECT_EQ(t.expire(far, UINT32_MAX, kIgnore), 0u);
  const FlowKey f = client(1, kUdp);
  ASSERT_NE(t.insert(f, reply_of(f), far), nullptr);
  EXPECT_EQ(t.expire(far + 299 * kSec, UINT32_MAX, kIgnore), 0u);
  EXPECT_EQ(t.expire(far * 2, UINT32_MAX, kIgnore), 1u);
}

// ---- model -----------------------------------------------------------------------------------

// Random inserts, finds, packets, erases and clock moves against std::unordered_map. Checks
// lookups both ways, refusals, every expiry (never early; none missed when drained) and the
// embryonic count.
void run_model(uint32_t capacity, uint32_t permille, uint32_t ops, uint32_t seed) {
  ConnTable t(params(capacity, permille, seed));
  struct M {
    FlowKey rev;
    uint64_t expires;
  };
  std::unordered_map<FlowKey, M, KeyHash> model;
  std::unordered_map<FlowKey, FlowKey, KeyHash> by_rev;  // rev -> fwd
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  auto fwd_key = [&]() {
    const uint32_t c = pick(3000);
    return FlowKey{0x64000000 + c, kVip + pick(2), static_cast<uint16_t>(1000 + pick(3)), 80,
                   (c & 1) ? kUdp : kTcp};
  };
  const size_t bytes = t.memory_bytes();
  uint64_t now = kT0;

  auto check_embryonic = [&] {
    uint32_t emb = 0, n = 0;
    t.for_each([&](const Conn& c) {
      ++n;
      emb += c.embryonic();
      EXPECT_EQ(c.embryonic() && c.fwd.proto != kTcp, false);
    });
    ASSERT_EQ(n, model.size());
    ASSERT_EQ(emb, t.embryonic());
    ASSERT_LE(t.embryonic(), t.embryonic_limit());
  };

  for (uint32_t op = 0; op < ops; ++op) {
    const uint32_t kind = pick(100);
    if (kind < 30) {  // insert
      const FlowKey f = fwd_key();
      const FlowKey r{0x0a000000 + pick(3), f.src_ip, 8080, f.src_port, f.proto};
      const uint32_t emb_before = t.embryonic();
      Conn* c = t.insert(f, r, now);
      Refusal want = Refusal::kNone;
      if (model.count(f) || by_rev.count(r))
        want = Refusal::kExists;
      else if (model.size() == capacity)
        want = Refusal::kFull;
      else if (f.proto == kTcp && emb_before >= t.embryonic_limit())
        want = Refusal::kEmbryonicLimit;
      if (want == Refusal::kNone) {
        ASSERT_NE(c, nullptr) << op << " " << to_string(t.last_refusal());
        model[f] = {r, now + timeout_s(c->state) * kSec};
        by_rev[r] = f;
      } else {
        ASSERT_EQ(c, nullptr) << op;
        ASSERT_EQ(t.last_refusal(), want) << op;
      }
    } else if (kind < 60) {  // find
      FlowKey k = fwd_key();
      const bool as_reply = pick(2) == 1;
      if (as_reply) k = FlowKey{0x0a000000 + pick(3), k.src_ip, 8080, k.src_port, k.proto};
      bool reply = !as_reply;
      Conn* c = t.find(k, &reply);
      FlowKey f = k;
      bool known = model.count(k) == 1;
      if (as_reply) {
        auto it = by_rev.find(k);
        known = it != by_rev.end();
        if (known) f = it->second;
      }
      if (!known) {
        ASSERT_EQ(c, nullptr);
      } else {
        ASSERT_NE(c, nullptr);
        ASSERT_EQ(reply, as_reply);
        ASSERT_EQ(c->fwd, f);
        ASSERT_EQ(c->rev, model[f].rev);
        ASSERT_EQ(c->expires_ns, model[f].expires);
      }
    } else if (kind < 80) {  // a packet on a known connection
      const FlowKey f = fwd_key();
      Conn* c = t.find(f, nullptr);
      if (!c) continue;
      if (f.proto == kTcp) {
        static constexpr uint8_t kFlags[] = {kTcpSyn, kSynAck, kTcpAck, kTcpAck, kFinAck, kTcpRst};
        t.on_tcp(*c, pick(2) == 1, kFlags[pick(6)], now);
      } else {
        t.on_udp(*c, now);
      }
      model[f].expires = now + timeout_s(c->state) * kSec;
      ASSERT_EQ(c->expires_ns, model[f].expires);
    } else if (kind < 88) {  // erase
      const FlowKey f = fwd_key();
      Conn* c = t.find(f, nullptr);
      ASSERT_EQ(c != nullptr, model.count(f) == 1);
      if (c) {
        by_rev.erase(c->rev);
        model.erase(f);
        t.erase(c);
      }
    } else {  // time passes; the worker expires
      now += pick(2) ? pick(1000) * kMs : pick(30) * kSec;
      const bool drain = pick(2) == 1;
      const uint32_t max = drain ? UINT32_MAX : 1 + pick(64);
      t.expire(now, max, [&](const Conn& c) {
        ASSERT_LE(c.expires_ns, now);
        auto it = model.find(c.fwd);
        ASSERT_NE(it, model.end());
        ASSERT_EQ(it->second.expires, c.expires_ns);
        by_rev.erase(c.rev);
        model.erase(it);
      });
      if (drain) {
        for (const auto& [f, m] : model) ASSERT_GT(m.expires + kTick, now) << "missed expiry";
      }
    }
    ASSERT_EQ(t.size(), model.size());
    if (op % 4096 == 0) check_embryonic();
  }
  check_embryonic();
  EXPECT_EQ(t.memory_bytes(), bytes);
  EXPECT_EQ(t.stats().refused_no_slot, 0u);
}

TEST(ConnTableModel, RandomOpsNoEmbryonicLimit) {
  run_model(2048, 1000, 200'000, 1);
}
TEST(ConnTableModel, RandomOpsWithEmbryonicLimit) {
  run_model(1024, 300, 150'000, 2);
}

}  // namespace
}  // namespace lb
