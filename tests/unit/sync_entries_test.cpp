// The sync link's entries (control/sync/entries): exact wire layouts written out byte by byte
// here (big-endian, independent of the encoder), round trips of every encoder/decoder pair, one
// test per refusal (truncation at every length, trailing bytes, out-of-range fields), and a fuzz
// loop of random mutations: decoders never crash and whatever they accept re-encodes to the same
// bytes (the lossless encodings) or to an equivalent entry.

#include "control/sync/entries.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace ctl::sync {
namespace {

using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------
// Reference writer (independent of entries.cpp)

void be(Bytes& b, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void str(Bytes& b, const std::string& s) {
  be(b, s.size(), 2);
  b.insert(b.end(), s.begin(), s.end());
}

// ---------------------------------------------------------------------------------------------
// Samples and comparisons

dhcp::Lease lease(uint8_t client_len, dhcp::LeaseState st) {
  dhcp::Lease l;
  l.ip = 0x0a000011;  // 10.0.0.17
  l.pool = 0x01020304;
  l.state = st;
  l.client.len = client_len;
  for (uint8_t i = 0; i < client_len; ++i) l.client.bytes[i] = static_cast<uint8_t>(0xa0 + i);
  l.mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  l.expires_ns = 0x1122334455667788ull;
  l.updated_ns = 0x0102030405060708ull;
  l.generation = 0xfedcba9876543210ull;
  return l;
}

void expect_same(const dhcp::Lease& a, const dhcp::Lease& b) {
  EXPECT_EQ(a.ip, b.ip);
  EXPECT_EQ(a.pool, b.pool);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.client.len, b.client.len);
  EXPECT_TRUE(a.client == b.client);
  EXPECT_EQ(a.client.bytes, b.client.bytes);  // bytes past len stay zero
  EXPECT_EQ(a.mac, b.mac);
  EXPECT_EQ(a.expires_ns, b.expires_ns);
  EXPECT_EQ(a.updated_ns, b.updated_ns);
  EXPECT_EQ(a.generation, b.generation);
}

dp::ConnSync conn(uint8_t state = static_cast<uint8_t>(lb::TcpState::kEstablished),
                  uint8_t fwd_mode = 0) {
  dp::ConnSync c;
  c.proto = 6;
  c.state = state;
  c.fwd_mode = fwd_mode;
  c.client_ip = 0xc000020a;  // 192.0.2.10
  c.client_port = 40000;
  c.vip = 0xc0000264;  // 192.0.2.100
  c.vport = 80;
  c.rs_ip = 0xc633640b;  // 198.51.100.11
  c.rs_port = 8080;
  c.generation = 0x80000001u;
  return c;
}

void expect_same(const dp::ConnSync& a, const dp::ConnSync& b) {
  EXPECT_EQ(a.proto, b.proto);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.fwd_mode, b.fwd_mode);
  EXPECT_EQ(a.client_ip, b.client_ip);
  EXPECT_EQ(a.client_port, b.client_port);
  EXPECT_EQ(a.vip, b.vip);
  EXPECT_EQ(a.vport, b.vport);
  EXPECT_EQ(a.rs_ip, b.rs_ip);
  EXPECT_EQ(a.rs_port, b.rs_port);
  EXPECT_EQ(a.generation, b.generation);
}

ConfigChunk chunk() {
  ConfigChunk c;
  c.push_id = 0x0102030405060708ull;
  c.total = 3000;
  c.offset = 2048;
  c.name = "tandem.conf";
  c.data = std::string(952, 'x');  // the last piece: offset + data == total
  return c;
}

Status status_with(size_t n_vrrp, std::string node = "node-a") {
  Status s;
  s.resynced = true;
  s.config_digest = {1, 2, 3, 4, 5, 6, 7, 8};
  s.node = std::move(node);
  for (size_t i = 0; i < n_vrrp; ++i)
    s.vrrp.push_back({static_cast<uint8_t>(50 + i), static_cast<uint8_t>(i % 4)});
  return s;
}

void expect_same(const Status& a, const Status& b) {
  EXPECT_EQ(a.resynced, b.resynced);
  EXPECT_EQ(a.config_digest, b.config_digest);
  EXPECT_EQ(a.node, b.node);
  ASSERT_EQ(a.vrrp.size(), b.vrrp.size());
  for (size_t i = 0; i < a.vrrp.size(); ++i) {
    EXPECT_EQ(a.vrrp[i].vrid, b.vrrp[i].vrid) << i;
    EXPECT_EQ(a.vrrp[i].state, b.vrrp[i].state) << i;
  }
}

// Every proper prefix of `b` is refused by `dec`, and so is `b` with one more byte.
template <class Dec>
void expect_exact_length(const Bytes& b, Dec dec, const char* what) {
  for (size_t n = 0; n < b.size(); ++n) {
    const Bytes cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));  // exact size
    EXPECT_FALSE(dec(std::span<const uint8_t>(cut)).has_value()) << what << ": length " << n;
  }
  for (const uint8_t extra : {uint8_t{0}, uint8_t{0xff}}) {
    Bytes longer = b;
    longer.push_back(extra);
    EXPECT_FALSE(dec(std::span<const uint8_t>(longer)).has_value()) << what << ": trailing";
  }
  EXPECT_TRUE(dec(std::span<const uint8_t>(b)).has_value()) << what << ": whole";
}

// ---------------------------------------------------------------------------------------------
// Leases

TEST(SyncEntriesLease, WireLayoutIsBigEndianFieldsInOrder) {
  const dhcp::Lease l = lease(3, dhcp::LeaseState::kBound);
  Bytes want;
  be(want, 0x0a000011, 4);
  be(want, 0x01020304, 4);
  want.push_back(2);  // kBound
  want.push_back(3);
  want.insert(want.end(), {0xa0, 0xa1, 0xa2});
  want.insert(want.end(), {0x02, 0x11, 0x22, 0x33, 0x44, 0x55});
  be(want, 0x1122334455667788ull, 8);
  be(want, 0x0102030405060708ull, 8);
  be(want, 0xfedcba9876543210ull, 8);
  EXPECT_EQ(encode_lease(l), want);
  EXPECT_EQ(want.size(), 43u);
}

TEST(SyncEntriesLease, RoundTripsEveryClientLengthAndState) {
  for (uint8_t len = 0; len <= dhcp::ClientKey::kMax; ++len) {
    for (uint8_t st = 0; st <= 3; ++st) {
      const dhcp::Lease l = lease(len, static_cast<dhcp::LeaseState>(st));
      const Bytes b = encode_lease(l);
      ASSERT_EQ(b.size(), 40u + len);
      const auto d = decode_lease(b);
      ASSERT_TRUE(d.has_value()) << "len " << int{len} << " state " << int{st};
      expect_same(*d, l);
    }
  }
  // A FREE lease with everything zero (the default) too.
  const auto d = decode_lease(encode_lease(dhcp::Lease{}));
  ASSERT_TRUE(d.has_value());
  expect_same(*d, dhcp::Lease{});
}

TEST(SyncEntriesLease, RefusesTruncatedAndTrailingAtEveryClientLength) {
  for (const uint8_t len : {uint8_t{0}, uint8_t{1}, uint8_t{7}, uint8_t{32}})
    expect_exact_length(
        encode_lease(lease(len, dhcp::LeaseState::kOffered)),
        [](std::span<const uint8_t> b) { return decode_lease(b); }, "lease");
}

TEST(SyncEntriesLease, RefusesStateAboveDeclined) {
  Bytes b = encode_lease(lease(7, dhcp::LeaseState::kDeclined));
  ASSERT_TRUE(decode_lease(b).has_value());
  for (int st = 4; st <= 255; ++st) {
    b[8] = static_cast<uint8_t>(st);
    EXPECT_FALSE(decode_lease(b).has_value()) << st;
  }
}

TEST(SyncEntriesLease, RefusesClientLongerThan32) {
  // A well-formed frame in every other respect: 33 client bytes really follow.
  Bytes b;
  be(b, 0x0a000011, 4);
  be(b, 7, 4);
  b.push_back(2);
  b.push_back(33);
  b.insert(b.end(), 33, 0x55);
  b.insert(b.end(), 6, 0x02);
  be(b, 1, 8);
  be(b, 2, 8);
  be(b, 3, 8);
  EXPECT_FALSE(decode_lease(b).has_value());
  for (const uint8_t len : {uint8_t{64}, uint8_t{200}, uint8_t{255}}) {
    b[9] = len;
    EXPECT_FALSE(decode_lease(b).has_value()) << int{len};
  }
  // The same with 32 bytes is fine.
  b[9] = 32;
  b.erase(b.begin() + 10);
  const auto d = decode_lease(b);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->client.len, 32);
  EXPECT_EQ(d->client.bytes[31], 0x55);
  EXPECT_EQ(d->generation, 3u);
}

// ---------------------------------------------------------------------------------------------
// Connections

TEST(SyncEntriesConn, WireLayoutIsBigEndianFieldsInOrder) {
  const dp::ConnSync c = conn(3, 2);
  Bytes want{6, 3, 2};
  be(want, 0xc000020a, 4);
  be(want, 40000, 2);
  be(want, 0xc0000264, 4);
  be(want, 80, 2);
  be(want, 0xc633640b, 4);
  be(want, 8080, 2);
  be(want, 0x80000001u, 4);
  EXPECT_EQ(encode_conn(c), want);
  EXPECT_EQ(want.size(), 25u);
}

TEST(SyncEntriesConn, RoundTripsEveryStateAndForwardingMode) {
  for (uint8_t st = 0; st < lb::kTcpStateCount; ++st) {
    for (uint8_t fwd = 0; fwd <= 2; ++fwd) {
      dp::ConnSync c = conn(st, fwd);
      c.proto = st == static_cast<uint8_t>(lb::TcpState::kUdp) ? 17 : 6;
      const auto d = decode_conn(encode_conn(c));
      ASSERT_TRUE(d.has_value()) << int{st} << "/" << int{fwd};
      expect_same(*d, c);
    }
  }
}

TEST(SyncEntriesConn, RefusesTruncatedAndTrailing) {
  expect_exact_length(
      encode_conn(conn()), [](std::span<const uint8_t> b) { return decode_conn(b); }, "conn");
}

TEST(SyncEntriesConn, RefusesUnknownStateAndForwardingMode) {
  Bytes b = encode_conn(conn());
  for (int st = static_cast<int>(lb::kTcpStateCount); st <= 255; ++st) {
    Bytes m = b;
    m[1] = static_cast<uint8_t>(st);
    EXPECT_FALSE(decode_conn(m).has_value()) << st;
  }
  for (int fwd = 3; fwd <= 255; ++fwd) {
    Bytes m = b;
    m[2] = static_cast<uint8_t>(fwd);
    EXPECT_FALSE(decode_conn(m).has_value()) << fwd;
  }
  b[1] = static_cast<uint8_t>(lb::kTcpStateCount - 1);
  b[2] = 2;
  EXPECT_TRUE(decode_conn(b).has_value());
}

// ---------------------------------------------------------------------------------------------
// Bulk markers

TEST(SyncEntriesBulk, StartAndEndRoundTripWithExactLayout) {
  BulkMarker m;
  m.id = 0x0102030405060708ull;
  m.leases = 12345;
  m.connections = 0xffffffffffffffffull;
  Bytes start;
  be(start, m.id, 8);
  EXPECT_EQ(encode_bulk(m, false), start);  // counts are not carried by the start
  Bytes end = start;
  be(end, 12345, 8);
  be(end, 0xffffffffffffffffull, 8);
  EXPECT_EQ(encode_bulk(m, true), end);

  const auto s = decode_bulk(start, false);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->id, m.id);
  EXPECT_EQ(s->leases, 0u);
  EXPECT_EQ(s->connections, 0u);
  const auto e = decode_bulk(end, true);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->id, m.id);
  EXPECT_EQ(e->leases, 12345u);
  EXPECT_EQ(e->connections, 0xffffffffffffffffull);
}

TEST(SyncEntriesBulk, RefusesTruncatedTrailingAndTheOtherKind) {
  BulkMarker m{7, 8, 9};
  expect_exact_length(
      encode_bulk(m, false), [](std::span<const uint8_t> b) { return decode_bulk(b, false); },
      "start");
  expect_exact_length(
      encode_bulk(m, true), [](std::span<const uint8_t> b) { return decode_bulk(b, true); }, "end");
  EXPECT_FALSE(decode_bulk(encode_bulk(m, true), false).has_value());
  EXPECT_FALSE(decode_bulk(encode_bulk(m, false), true).has_value());
}

// ---------------------------------------------------------------------------------------------
// Configuration push

TEST(SyncEntriesConfig, ChunkRoundTripsWithExactLayout) {
  ConfigChunk c;
  c.push_id = 9;
  c.total = 5;
  c.offset = 1;
  c.name = "a.conf";
  c.data = "bcd";
  Bytes want;
  be(want, 9, 8);
  be(want, 5, 4);
  be(want, 1, 4);
  str(want, "a.conf");
  str(want, "bcd");
  EXPECT_EQ(encode_config_chunk(c), want);
  const auto d = decode_config_chunk(want);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->push_id, 9u);
  EXPECT_EQ(d->total, 5u);
  EXPECT_EQ(d->offset, 1u);
  EXPECT_EQ(d->name, "a.conf");
  EXPECT_EQ(d->data, "bcd");
}

TEST(SyncEntriesConfig, ChunkRoundTripsFullPiecesEmptyFilesAndBinaryData) {
  ConfigChunk c = chunk();
  auto d = decode_config_chunk(encode_config_chunk(c));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->push_id, c.push_id);
  EXPECT_EQ(d->total, 3000u);
  EXPECT_EQ(d->offset, 2048u);
  EXPECT_EQ(d->name, "tandem.conf");
  EXPECT_EQ(d->data, c.data);

  c.offset = 0;
  c.data.assign(kConfigChunkData, '\0');  // binary zeros survive
  c.data[5] = '\xff';
  d = decode_config_chunk(encode_config_chunk(c));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->data, c.data);

  ConfigChunk empty;  // an empty file: one piece, no data
  empty.push_id = 1;
  empty.name = "x";
  d = decode_config_chunk(encode_config_chunk(empty));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->total, 0u);
  EXPECT_EQ(d->data, "");
}

TEST(SyncEntriesConfig, ChunkRefusesTruncatedAndTrailing) {
  ConfigChunk c;
  c.push_id = 3;
  c.total = 10;
  c.offset = 4;
  c.name = "n.conf";
  c.data = "abc";
  expect_exact_length(
      encode_config_chunk(c), [](std::span<const uint8_t> b) { return decode_config_chunk(b); },
      "chunk");
}

TEST(SyncEntriesConfig, ChunkRefusesPathsHiddenNamesAndNoName) {
  for (const char* bad : {"/etc/tandem.conf", "../tandem.conf", "dir/tandem.conf", "a/", "/",
                          ".hidden", ".", "..", ""}) {
    ConfigChunk c = chunk();
    c.name = bad;
    EXPECT_FALSE(decode_config_chunk(encode_config_chunk(c)).has_value()) << bad;
  }
  for (const char* good : {"tandem.conf", "a", "a.b.c", "x..y"}) {
    ConfigChunk c = chunk();
    c.name = good;
    EXPECT_TRUE(decode_config_chunk(encode_config_chunk(c)).has_value()) << good;
  }
}

TEST(SyncEntriesConfig, ChunkRefusesPiecesOutsideTheFile) {
  ConfigChunk c = chunk();  // total 3000
  c.data = "";
  c.offset = 3000;  // at the very end, empty: fine
  EXPECT_TRUE(decode_config_chunk(encode_config_chunk(c)).has_value());
  c.offset = 3001;  // beyond the end
  EXPECT_FALSE(decode_config_chunk(encode_config_chunk(c)).has_value());
  c.offset = 0xffffffffu;
  EXPECT_FALSE(decode_config_chunk(encode_config_chunk(c)).has_value());
  c.offset = 2999;
  c.data = "a";  // the last byte
  EXPECT_TRUE(decode_config_chunk(encode_config_chunk(c)).has_value());
  c.data = "ab";  // one past the end
  EXPECT_FALSE(decode_config_chunk(encode_config_chunk(c)).has_value());
  c.offset = 0;
  c.total = 0;
  c.data = "a";
  EXPECT_FALSE(decode_config_chunk(encode_config_chunk(c)).has_value());
}

TEST(SyncEntriesConfig, ResultRoundTripsWithExactLayout) {
  ConfigResult r;
  r.push_id = 0x1122334455667788ull;
  r.ok = false;
  r.message = "tandem.conf:12: unknown setting";
  Bytes want;
  be(want, r.push_id, 8);
  want.push_back(0);
  str(want, r.message);
  EXPECT_EQ(encode_config_result(r), want);
  auto d = decode_config_result(want);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->push_id, r.push_id);
  EXPECT_FALSE(d->ok);
  EXPECT_EQ(d->message, r.message);

  r.ok = true;
  r.message = "";
  const Bytes b = encode_config_result(r);
  EXPECT_EQ(b.size(), 11u);
  EXPECT_EQ(b[8], 1);
  d = decode_config_result(b);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->ok);
  EXPECT_EQ(d->message, "");
}

TEST(SyncEntriesConfig, ResultRefusesTruncatedAndTrailing) {
  expect_exact_length(
      encode_config_result({42, true, "applied"}),
      [](std::span<const uint8_t> b) { return decode_config_result(b); }, "result");
}

// ---------------------------------------------------------------------------------------------
// Status

TEST(SyncEntriesStatus, WireLayout) {
  const Status s = status_with(2, "b");
  const Bytes want{1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 'b', 2, 50, 0, 51, 1};
  EXPECT_EQ(encode_status(s), want);
}

TEST(SyncEntriesStatus, RoundTripsNoneAndSeveralVrrpEntries) {
  for (const size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{64}}) {
    const Status s = status_with(n);
    const auto d = decode_status(encode_status(s));
    ASSERT_TRUE(d.has_value()) << n;
    expect_same(*d, s);
  }
  Status plain;  // defaults: not resynced, zero digest, no name
  const auto d = decode_status(encode_status(plain));
  ASSERT_TRUE(d.has_value());
  expect_same(*d, plain);
  EXPECT_FALSE(d->resynced);
}

TEST(SyncEntriesStatus, EncoderCutsTheNameAndTheVrrpListAt64) {
  Status s = status_with(70, std::string(100, 'n'));
  const auto d = decode_status(encode_status(s));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->node, std::string(64, 'n'));
  ASSERT_EQ(d->vrrp.size(), 64u);
  EXPECT_EQ(d->vrrp[63].vrid, 50 + 63);
}

TEST(SyncEntriesStatus, RefusesTruncatedAndTrailing) {
  for (const size_t n : {size_t{0}, size_t{2}, size_t{64}})
    expect_exact_length(
        encode_status(status_with(n)), [](std::span<const uint8_t> b) { return decode_status(b); },
        "status");
}

TEST(SyncEntriesStatus, RefusesOtherVersions) {
  Bytes b = encode_status(status_with(1));
  for (const uint8_t v : {uint8_t{0}, uint8_t{2}, uint8_t{0x81}, uint8_t{255}}) {
    b[0] = v;
    EXPECT_FALSE(decode_status(b).has_value()) << int{v};
  }
}

TEST(SyncEntriesStatus, RefusesMoreThan64VrrpEntries) {
  Bytes b{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 65};
  for (int i = 0; i < 65; ++i) b.insert(b.end(), {static_cast<uint8_t>(i), 2});
  EXPECT_FALSE(decode_status(b).has_value());
  b[12] = 64;  // the same count the bytes carry, less one entry
  b.resize(b.size() - 2);
  const auto d = decode_status(b);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->vrrp.size(), 64u);
  EXPECT_EQ(d->node, "");
}

// ---------------------------------------------------------------------------------------------
// Fuzz: random mutations of valid encodings through every decoder

// What a decoder made of `b`, re-encoded, compared with `b` where the encoding is lossless.
void check_all_decoders(const Bytes& b) {
  const std::span<const uint8_t> s(b);
  if (auto l = decode_lease(s)) {
    EXPECT_LE(static_cast<int>(l->state), 3);
    EXPECT_LE(l->client.len, dhcp::ClientKey::kMax);
    EXPECT_EQ(encode_lease(*l), b);
  }
  if (auto c = decode_conn(s)) {
    EXPECT_LT(c->state, lb::kTcpStateCount);
    EXPECT_LE(c->fwd_mode, 2);
    EXPECT_EQ(encode_conn(*c), b);
  }
  for (const bool end : {false, true}) {
    if (auto m = decode_bulk(s, end)) {
      EXPECT_EQ(encode_bulk(*m, end), b);
    }
  }
  if (auto c = decode_config_chunk(s)) {
    EXPECT_LE(c->offset, c->total);
    EXPECT_LE(c->data.size(), c->total - c->offset);
    EXPECT_FALSE(c->name.empty());
    EXPECT_NE(c->name[0], '.');
    EXPECT_EQ(c->name.find('/'), std::string::npos);
    EXPECT_EQ(encode_config_chunk(*c), b);
  }
  if (auto r = decode_config_result(s)) {
    const auto again = decode_config_result(encode_config_result(*r));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->push_id, r->push_id);
    EXPECT_EQ(again->ok, r->ok);
    EXPECT_EQ(again->message, r->message);
  }
  if (auto st = decode_status(s)) {
    EXPECT_LE(st->vrrp.size(), 64u);
    EXPECT_EQ(b[0], Status::kVersion);
    if (st->node.size() <= 64) {
      const auto again = decode_status(encode_status(*st));
      ASSERT_TRUE(again.has_value());
      expect_same(*again, *st);
    }
  }
}

TEST(SyncEntriesFuzz, RandomMutationsNeverCrashAndAcceptedInputsReencode) {
  std::vector<Bytes> seeds = {
      encode_lease(lease(0, dhcp::LeaseState::kFree)),
      encode_lease(lease(7, dhcp::LeaseState::kBound)),
      encode_lease(lease(32, dhcp::LeaseState::kDeclined)),
      encode_conn(conn()),
      encode_bulk({1, 2, 3}, false),
      encode_bulk({1, 2, 3}, true),
      encode_config_chunk(chunk()),
      encode_config_result({5, false, "no"}),
      encode_status(status_with(0)),
      encode_status(status_with(5, "node-b")),
      Bytes{},
  };
  std::mt19937_64 rng(20261122);
  uint64_t accepted = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    Bytes b = seeds[rng() % seeds.size()];
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 6) {
        case 0:  // flip a bit
          if (!b.empty()) b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:  // a random byte
          if (!b.empty()) b[rng() % b.size()] = static_cast<uint8_t>(rng());
          break;
        case 2:  // cut
          if (!b.empty()) b.resize(rng() % b.size());
          break;
        case 3:  // append random bytes
          for (uint64_t k = rng() % 8; k > 0; --k) b.push_back(static_cast<uint8_t>(rng()));
          break;
        case 4:  // insert a byte
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % (b.size() + 1)),
                   static_cast<uint8_t>(rng()));
          break;
        case 5:  // a length-ish field set to an extreme
          if (b.size() > 1) {
            const size_t at = rng() % (b.size() - 1);
            b[at] = rng() % 2 ? 0xff : 0x00;
            b[at + 1] = rng() % 2 ? 0xff : 0x40;
          }
          break;
      }
    }
    b.shrink_to_fit();  // exact size: a sanitizer sees any over-read
    check_all_decoders(b);
    if (decode_lease(b) || decode_conn(b) || decode_status(b)) ++accepted;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "iteration " << iter;
      return;
    }
  }
  // The mutations must leave some inputs valid, or the loop only tested refusals.
  EXPECT_GT(accepted, 1000u);
}

}  // namespace
}  // namespace ctl::sync
