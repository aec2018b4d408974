// VRRP codec and state machine: golden frames from an independent Python generator
// (tests/fixtures/gen_vrrp_golden.py), one test per refusal reason, a decode fuzz loop, and the
// RFC 5798 §6.4 state machine on a fake clock. Checksums of mutated frames come from a reference
// implementation in this file, so the code under test never checks itself.

#include "control/vrrp/vrrp.h"

#include <gtest/gtest.h>

#include "tests/golden.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ctl::vrrp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kOurIp = 0xc0000202;     // 192.0.2.2
constexpr uint32_t kLowerIp = 0xc0000201;   // 192.0.2.1
constexpr uint32_t kHigherIp = 0xc0000203;  // 192.0.2.3
constexpr uint32_t kVip = 0xc0000264;       // 192.0.2.100
constexpr uint32_t kVip2 = 0xc0000265;      // 192.0.2.101
constexpr uint32_t kVip3 = 0xc0000266;      // 192.0.2.102
constexpr size_t kEth = 14;                 // Ethernet header; the IP header follows
constexpr size_t kVrrpAt = kEth + 20;       // VRRP message in a frame without IP options
constexpr size_t kFrameCap = 14 + 20 + 24 + 4 * kMaxAddrs;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kNever = UINT64_MAX;

// ---------------------------------------------------------------------------------------------
// Reference wire helpers (independent of vrrp.cpp)

uint16_t be16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

uint16_t ref_csum(const Bytes& data) {
  uint32_t s = 0;
  for (size_t i = 0; i < data.size(); i += 2) {
    s += static_cast<uint32_t>(data[i]) << 8 | (i + 1 < data.size() ? data[i + 1] : 0);
  }
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

enum class Ck { kPseudo, kPlain };

// Recomputes the IP header checksum and the VRRP checksum of a frame after a test mutated it.
void fix_checksums(Bytes& f, Ck ck) {
  const size_t ihl = (f[kEth] & 0x0f) * 4u;
  const size_t total = be16(f, kEth + 2);
  const size_t v = kEth + ihl;
  put16(f, kEth + 10, 0);
  put16(f, kEth + 10, ref_csum(Bytes(f.begin() + kEth, f.begin() + kEth + ihl)));
  put16(f, v + 6, 0);
  Bytes sum_over;
  if (ck == Ck::kPseudo) {
    sum_over.assign(f.begin() + kEth + 12, f.begin() + kEth + 20);  // src, dst
    sum_over.insert(sum_over.end(), {0, kIpProto, static_cast<uint8_t>((total - ihl) >> 8),
                                     static_cast<uint8_t>(total - ihl)});
  }
  sum_over.insert(sum_over.end(), f.begin() + v, f.begin() + kEth + total);
  put16(f, v + 6, ref_csum(sum_over));
}

const std::map<std::string, Bytes>& golden() {
  static const auto all = tandem_test::read_golden_frames("vrrp_golden.txt");
  return all;
}

Bytes frame(const std::string& name) {
  auto it = golden().find(name);
  EXPECT_TRUE(it != golden().end()) << "fixture " << name << " missing";
  return it == golden().end() ? Bytes{} : it->second;
}

// Decodes a frame from its IP header, exactly `len` bytes (default: up to the frame's end).
std::optional<Decoded> decode_frame(const Bytes& f, Invalid& why, size_t len = SIZE_MAX) {
  const size_t n = std::min(len, f.size() - kEth);
  Bytes ip(f.begin() + kEth, f.begin() + kEth + n);  // exact size: ASan sees overreads
  return decode(ip.data(), ip.size(), why);
}

Invalid refusal(const Bytes& f, size_t len = SIZE_MAX) {
  Invalid why = Invalid::kCount;
  auto d = decode_frame(f, why, len);
  EXPECT_FALSE(d.has_value());
  return why;
}

const char* name(Invalid why) {
  return why == Invalid::kCount ? "none" : kInvalidNames[static_cast<size_t>(why)];
}

// ---------------------------------------------------------------------------------------------
// Golden frames

struct GoldenCase {
  std::string name;
  Advert advert;
  Checksum ck;  // how to encode, and (v3) the variant decode must report
};

Advert v3_advert(uint8_t prio, uint16_t interval_cs, std::vector<uint32_t> addrs) {
  Advert a;
  a.version = 3;
  a.vrid = 51;
  a.priority = prio;
  a.interval_cs = interval_cs;
  a.addrs = std::move(addrs);
  return a;
}

std::array<uint8_t, 8> password(const std::string& s) {
  std::array<uint8_t, 8> out{};
  std::copy_n(s.begin(), std::min<size_t>(s.size(), 8), out.begin());
  return out;
}

std::vector<GoldenCase> golden_cases() {
  Advert v2;
  v2.version = 2;
  v2.vrid = 51;
  v2.priority = 90;
  v2.interval_cs = 100;
  v2.addrs = {kVip};
  v2.auth_type = 1;
  v2.auth = password("secret");
  return {
      {"v3_keepalived", v3_advert(100, 100, {kVip}), Checksum::kWithPseudoHeader},
      {"v3_rfc9568", v3_advert(100, 100, {kVip}), Checksum::kWithoutPseudoHeader},
      {"v3_two_addrs_50ms", v3_advert(100, 5, {kVip, kVip2}), Checksum::kWithPseudoHeader},
      // v2 never uses the pseudo-header, whatever the caller asks for.
      {"v2_pass", v2, Checksum::kWithPseudoHeader},
      {"v3_priority0", v3_advert(0, 100, {kVip}), Checksum::kWithPseudoHeader},
  };
}

TEST(VrrpGolden, FixtureHasEveryCase) {
  for (const auto& c : golden_cases()) EXPECT_EQ(golden().count(c.name), 1u) << c.name;
}

TEST(VrrpGolden, EncodeFrameMatchesBytes) {
  for (const auto& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    std::array<uint8_t, kFrameCap + 8> buf;
    buf.fill(0xaa);  // padding must be written as zeros, nothing past the frame touched
    const size_t n = encode_frame(buf.data(), multicast_mac(), virtual_mac(51), c.advert, c.ck,
                                  kOurIp, kMulticastGroup);
    EXPECT_EQ(Bytes(buf.begin(), buf.begin() + n), frame(c.name));
    for (size_t i = n; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xaa) << "byte " << i;
  }
}

TEST(VrrpGolden, EncodeVrrpIsTheFramesPayload) {
  for (const auto& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    std::array<uint8_t, 24 + 4 * kMaxAddrs> buf{};
    const size_t n = encode_vrrp(buf.data(), c.advert, c.ck, kOurIp, kMulticastGroup);
    const Bytes f = frame(c.name);
    ASSERT_EQ(n, be16(f, kEth + 2) - 20u);
    EXPECT_EQ(Bytes(buf.begin(), buf.begin() + n),
              Bytes(f.begin() + kVrrpAt, f.begin() + kVrrpAt + n));
  }
}

TEST(VrrpGolden, DecodeGivesFieldsAndChecksumVariant) {
  for (const auto& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    Invalid why = Invalid::kCount;
    const auto d = decode_frame(frame(c.name), why);
    ASSERT_TRUE(d.has_value()) << name(why);
    EXPECT_EQ(d->src_ip, kOurIp);
    EXPECT_EQ(d->dst_ip, kMulticastGroup);
    EXPECT_EQ(d->advert.version, c.advert.version);
    EXPECT_EQ(d->advert.vrid, 51);
    EXPECT_EQ(d->advert.priority, c.advert.priority);
    EXPECT_EQ(d->advert.interval_cs, c.advert.interval_cs);
    EXPECT_EQ(d->advert.addrs, c.advert.addrs);
    EXPECT_EQ(d->advert.auth_type, c.advert.auth_type);
    EXPECT_EQ(d->advert.auth, c.advert.auth);
    const Checksum want =
        c.advert.version == 2 ? Checksum::kWithoutPseudoHeader : c.ck;  // v2: plain sum
    EXPECT_EQ(d->checksum, want);
  }
}

TEST(VrrpGolden, MacsAreTheWellKnownOnes) {
  EXPECT_EQ(multicast_mac(), (std::array<uint8_t, 6>{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}));
  EXPECT_EQ(virtual_mac(51), (std::array<uint8_t, 6>{0x00, 0x00, 0x5e, 0x00, 0x01, 0x33}));
  EXPECT_EQ(virtual_mac(255), (std::array<uint8_t, 6>{0x00, 0x00, 0x5e, 0x00, 0x01, 0xff}));
}

// ---------------------------------------------------------------------------------------------
// Decode: what is accepted beyond the golden frames

TEST(VrrpDecode, IgnoresEthernetPaddingAfterTotalLength) {
  Bytes f = frame("v3_keepalived");
  for (size_t i = kEth + be16(f, kEth + 2); i < f.size(); ++i) f[i] = 0xff;
  Invalid why = Invalid::kCount;
  EXPECT_TRUE(decode_frame(f, why).has_value()) << name(why);
}

TEST(VrrpDecode, AcceptsIpOptions) {
  Bytes f = frame("v3_keepalived");
  f.insert(f.begin() + kVrrpAt, {1, 1, 1, 1});  // four NOP options
  f[kEth] = 0x46;
  put16(f, kEth + 2, static_cast<uint16_t>(be16(f, kEth + 2) + 4));
  fix_checksums(f, Ck::kPseudo);
  Invalid why = Invalid::kCount;
  const auto d = decode_frame(f, why);
  ASSERT_TRUE(d.has_value()) << name(why);
  EXPECT_EQ(d->advert.addrs, std::vector<uint32_t>{kVip});
  EXPECT_EQ(d->checksum, Checksum::kWithPseudoHeader);
}

TEST(VrrpDecode, ReservedNibbleOfV3IntervalIsIgnored) {
  Bytes f = frame("v3_rfc9568");
  f[kVrrpAt + 4] |= 0xf0;
  fix_checksums(f, Ck::kPlain);
  Invalid why = Invalid::kCount;
  const auto d = decode_frame(f, why);
  ASSERT_TRUE(d.has_value()) << name(why);
  EXPECT_EQ(d->advert.interval_cs, 100);
  EXPECT_EQ(d->checksum, Checksum::kWithoutPseudoHeader);
}

TEST(VrrpDecode, V2IntervalSecondsBecomeCentiseconds) {
  Bytes f = frame("v2_pass");
  f[kVrrpAt + 5] = 255;
  fix_checksums(f, Ck::kPlain);
  Invalid why = Invalid::kCount;
  const auto d = decode_frame(f, why);
  ASSERT_TRUE(d.has_value()) << name(why);
  EXPECT_EQ(d->advert.interval_cs, 25500);
}

TEST(VrrpDecode, RoundTripsRandomAdverts) {
  std::mt19937 rng(5798);
  for (int i = 0; i < 2000; ++i) {
    Advert a;
    a.version = rng() % 2 ? 3 : 2;
    a.vrid = static_cast<uint8_t>(rng());
    a.priority = static_cast<uint8_t>(rng());
    a.interval_cs = a.version == 3 ? static_cast<uint16_t>(rng() % 4096)
                                   : static_cast<uint16_t>(rng() % 256 * 100);
    a.addrs.resize(rng() % (kMaxAddrs + 1));
    for (auto& x : a.addrs) x = static_cast<uint32_t>(rng());
    if (a.version == 2) {
      a.auth_type = static_cast<uint8_t>(rng() % 3);
      for (auto& x : a.auth) x = static_cast<uint8_t>(rng());
    }
    const Checksum ck = rng() % 2 ? Checksum::kWithPseudoHeader : Checksum::kWithoutPseudoHeader;
    const uint32_t src = static_cast<uint32_t>(rng());
    std::array<uint8_t, kFrameCap> buf{};
    const size_t n =
        encode_frame(buf.data(), multicast_mac(), virtual_mac(a.vrid), a, ck, src, kMulticastGroup);
    ASSERT_GE(n, 60u);
    Invalid why = Invalid::kCount;
    const auto d = decode(buf.data() + kEth, n - kEth, why);
    ASSERT_TRUE(d.has_value()) << name(why);
    EXPECT_EQ(d->advert.version, a.version);
    EXPECT_EQ(d->advert.vrid, a.vrid);
    EXPECT_EQ(d->advert.priority, a.priority);
    EXPECT_EQ(d->advert.interval_cs, a.interval_cs);
    EXPECT_EQ(d->advert.addrs, a.addrs);
    EXPECT_EQ(d->advert.auth_type, a.auth_type);
    EXPECT_EQ(d->advert.auth, a.auth);
    EXPECT_EQ(d->src_ip, src);
    // A pseudo-header sum can fold to zero, making both variants verify; then decode reports the
    // pseudo-header one. Otherwise it must report what was sent.
    if (a.version == 3 && ck == Checksum::kWithPseudoHeader) {
      EXPECT_EQ(d->checksum, Checksum::kWithPseudoHeader);
    } else if (a.version == 2) {
      EXPECT_EQ(d->checksum, Checksum::kWithoutPseudoHeader);
    }
  }
}

TEST(VrrpEncode, ClampsAddressListToMax) {
  Advert a = v3_advert(100, 100, {});
  for (uint32_t i = 0; i < kMaxAddrs + 8; ++i) a.addrs.push_back(kVip + i);
  std::array<uint8_t, kFrameCap + 8> buf;
  buf.fill(0xaa);
  const size_t n = encode_frame(buf.data(), multicast_mac(), virtual_mac(51), a,
                                Checksum::kWithPseudoHeader, kOurIp, kMulticastGroup);
  EXPECT_EQ(n, 14 + 20 + 8 + 4 * kMaxAddrs);
  EXPECT_EQ(buf[kFrameCap], 0xaa);
  Invalid why = Invalid::kCount;
  const auto d = decode(buf.data() + kEth, n - kEth, why);
  ASSERT_TRUE(d.has_value()) << name(why);
  EXPECT_EQ(d->advert.addrs.size(), kMaxAddrs);
}

// ---------------------------------------------------------------------------------------------
// Decode: every refusal

TEST(VrrpMalformed, TtlNot255) {
  for (uint8_t ttl : {0, 1, 64, 254}) {
    Bytes f = frame("v3_keepalived");
    f[kEth + 8] = ttl;
    fix_checksums(f, Ck::kPseudo);
    EXPECT_EQ(name(refusal(f)), std::string("ttl")) << int{ttl};
  }
}

TEST(VrrpDecode, UnicastAdvertsMayHaveCrossedARouter) {
  // keepalived's rule for unicast_peer: only adverts to 224.0.0.18 must carry TTL 255.
  Bytes f = frame("v3_keepalived");
  f[kEth + 8] = 254;
  f[kEth + 16] = 192;  // destination 192.0.2.3 instead of the group
  f[kEth + 17] = 0;
  f[kEth + 18] = 2;
  f[kEth + 19] = 3;
  fix_checksums(f, Ck::kPseudo);
  Invalid why{};
  EXPECT_TRUE(decode(f.data() + kEth, f.size() - kEth, why).has_value()) << name(why);
}

TEST(VrrpMalformed, BadChecksumInEachVariant) {
  for (const char* n : {"v3_keepalived", "v3_rfc9568", "v3_two_addrs_50ms", "v2_pass"}) {
    SCOPED_TRACE(n);
    Bytes f = frame(n);
    f[kVrrpAt + 7] ^= 0x01;  // the checksum itself
    EXPECT_EQ(name(refusal(f)), std::string("checksum"));
    f = frame(n);
    f[kVrrpAt + 8] ^= 0x80;  // a covered byte (first address)
    EXPECT_EQ(name(refusal(f)), std::string("checksum"));
  }
  // The pseudo-header binds the addresses: the keepalived frame from another source fails.
  Bytes f = frame("v3_keepalived");
  f[kEth + 15] = 9;
  fix_checksums(f, Ck::kPlain);  // valid without pseudo-header: accepted as RFC 9568 then
  Invalid why = Invalid::kCount;
  auto d = decode_frame(f, why);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->checksum, Checksum::kWithoutPseudoHeader);
  f = frame("v3_keepalived");
  f[kEth + 15] = 9;  // change src only; VRRP checksum still for 192.0.2.2
  put16(f, kEth + 10, 0);
  put16(f, kEth + 10, ref_csum(Bytes(f.begin() + kEth, f.begin() + kEth + 20)));
  EXPECT_EQ(name(refusal(f)), std::string("checksum"));
}

TEST(VrrpMalformed, V2WithPseudoHeaderChecksumIsRefused) {
  Bytes f = frame("v2_pass");
  fix_checksums(f, Ck::kPseudo);
  EXPECT_EQ(name(refusal(f)), std::string("checksum"));
}

TEST(VrrpMalformed, WrongVrrpVersion) {
  for (uint8_t v : {0, 1, 4, 15}) {
    Bytes f = frame("v3_keepalived");
    f[kVrrpAt] = static_cast<uint8_t>(v << 4 | 1);
    fix_checksums(f, Ck::kPseudo);
    EXPECT_EQ(name(refusal(f)), std::string("version")) << int{v};
  }
}

TEST(VrrpMalformed, WrongIpVersion) {
  Bytes f = frame("v3_keepalived");
  f[kEth] = 0x65;
  EXPECT_EQ(name(refusal(f)), std::string("version"));
}

TEST(VrrpMalformed, TypeNotAdvertisement) {
  for (uint8_t t : {0, 2, 15}) {
    Bytes f = frame("v3_keepalived");
    f[kVrrpAt] = static_cast<uint8_t>(0x30 | t);
    fix_checksums(f, Ck::kPseudo);
    EXPECT_EQ(name(refusal(f)), std::string("type")) << int{t};
  }
}

TEST(VrrpMalformed, NotVrrpProtocol) {
  Bytes f = frame("v3_rfc9568");
  f[kEth + 9] = 17;
  fix_checksums(f, Ck::kPlain);
  EXPECT_EQ(name(refusal(f)), std::string("type"));
}

TEST(VrrpMalformed, TruncatedAtEveryLength) {
  for (const auto& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    const Bytes f = frame(c.name);
    const size_t total = be16(f, kEth + 2);
    for (size_t len = 0; len < total; ++len) {
      EXPECT_EQ(name(refusal(f, len)), std::string("length")) << "len " << len;
    }
    Invalid why = Invalid::kCount;
    EXPECT_TRUE(decode_frame(f, why, total).has_value()) << name(why);
  }
}

TEST(VrrpMalformed, IpTotalLengthCutsTheMessage) {
  // The buffer is whole but the IP header says the packet ends early: the message is short.
  for (const auto& c : golden_cases()) {
    SCOPED_TRACE(c.name);
    const Bytes g = frame(c.name);
    const size_t total = be16(g, kEth + 2);
    for (size_t t = 20; t < total; ++t) {
      Bytes f = g;
      put16(f, kEth + 2, static_cast<uint16_t>(t));
      put16(f, kEth + 10, 0);
      put16(f, kEth + 10, ref_csum(Bytes(f.begin() + kEth, f.begin() + kEth + 20)));
      EXPECT_EQ(name(refusal(f)), std::string("length")) << "total " << t;
    }
  }
}

TEST(VrrpMalformed, CountLargerThanTheData) {
  for (uint8_t count : {2, 3, 33, 255}) {
    Bytes f = frame("v3_keepalived");
    f[kVrrpAt + 3] = count;
    fix_checksums(f, Ck::kPseudo);
    EXPECT_EQ(name(refusal(f)), std::string("length")) << int{count};
  }
  // More than kMaxAddrs is refused even when the addresses are all there.
  Bytes f = frame("v3_keepalived");
  f.resize(kVrrpAt + 8);
  for (uint32_t i = 0; i < kMaxAddrs + 1; ++i) f.insert(f.end(), {192, 0, 2, 100});
  f[kVrrpAt + 3] = kMaxAddrs + 1;
  put16(f, kEth + 2, static_cast<uint16_t>(f.size() - kEth));
  fix_checksums(f, Ck::kPseudo);
  EXPECT_EQ(name(refusal(f)), std::string("length"));
}

TEST(VrrpMalformed, V2WithoutAuthBytes) {
  Bytes f = frame("v2_pass");
  const size_t total = be16(f, kEth + 2) - 8;  // drop the 8 auth bytes
  f.resize(kEth + total);
  put16(f, kEth + 2, static_cast<uint16_t>(total));
  fix_checksums(f, Ck::kPlain);
  EXPECT_EQ(name(refusal(f)), std::string("length"));
}

TEST(VrrpMalformed, BadIpHeaderLengths) {
  Bytes f = frame("v3_keepalived");
  f[kEth] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(name(refusal(f)), std::string("length"));
  f = frame("v3_keepalived");
  f[kEth] = 0x4f;  // IHL 60 bytes > total length
  EXPECT_EQ(name(refusal(f)), std::string("length"));
  f = frame("v3_keepalived");
  put16(f, kEth + 2, 200);  // total length beyond the buffer
  EXPECT_EQ(name(refusal(f)), std::string("length"));
}

TEST(VrrpMalformed, Fragments) {
  for (uint16_t frag : {0x2000, 0x0001, 0x2010}) {  // MF, offset, both
    Bytes f = frame("v3_keepalived");
    put16(f, kEth + 6, frag);
    fix_checksums(f, Ck::kPseudo);
    EXPECT_EQ(name(refusal(f)), std::string("length")) << frag;
  }
  Bytes f = frame("v3_keepalived");
  put16(f, kEth + 6, 0x4000);  // DF alone is fine
  fix_checksums(f, Ck::kPseudo);
  Invalid why = Invalid::kCount;
  EXPECT_TRUE(decode_frame(f, why).has_value()) << name(why);
}

TEST(VrrpMalformed, NullBuffer) {
  Invalid why = Invalid::kCount;
  EXPECT_FALSE(decode(nullptr, 0, why).has_value());
  EXPECT_EQ(why, Invalid::kLength);
}

TEST(VrrpMalformed, FuzzNeverReadsOutOfBounds) {
  // Exact-size heap buffers: under AddressSanitizer any read past `len` fails the run.
  std::mt19937 rng(3768);
  const std::vector<Bytes> seeds = [] {
    std::vector<Bytes> s;
    for (const auto& kv : golden()) s.emplace_back(kv.second.begin() + kEth, kv.second.end());
    return s;
  }();
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes b;
    if (i % 2) {
      b.resize(rng() % 80);
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      if (b.size() > 9) {  // get past the IP checks more often
        b[0] = 0x45;
        b[8] = 255;
        b[9] = kIpProto;
      }
    } else {
      b = seeds[rng() % seeds.size()];
      for (int k = rng() % 4; k >= 0; --k) b[rng() % b.size()] ^= static_cast<uint8_t>(rng());
      b.resize(rng() % (b.size() + 1));
    }
    Invalid why = Invalid::kCount;
    const auto d = decode(b.data(), b.size(), why);
    if (d) {
      ++accepted;
      EXPECT_LE(d->advert.addrs.size(), kMaxAddrs);
    } else {
      EXPECT_NE(why, Invalid::kCount);
    }
  }
  EXPECT_GT(accepted, 0u);  // the mutations leave some frames intact
}

// ---------------------------------------------------------------------------------------------
// Instance::check

Config base_config() {
  Config c;
  c.name = "VI_1";
  c.vrid = 51;
  c.version = 3;
  c.priority = 100;
  c.interval_cs = 100;
  c.primary_ip = kOurIp;
  c.addrs = {kVip, kVip2};
  return c;
}

TEST(VrrpCheck, AddressListAsASet) {
  const Instance in(base_config());
  EXPECT_EQ(in.check(v3_advert(100, 100, {kVip, kVip2})), std::nullopt);
  EXPECT_EQ(in.check(v3_advert(100, 100, {kVip2, kVip})), std::nullopt);  // order-insensitive
  EXPECT_EQ(in.check(v3_advert(100, 100, {kVip})), Invalid::kAddressList);
  EXPECT_EQ(in.check(v3_advert(100, 100, {kVip, kVip2, kVip3})), Invalid::kAddressList);
  EXPECT_EQ(in.check(v3_advert(100, 100, {kVip, kVip3})), Invalid::kAddressList);
  EXPECT_EQ(in.check(v3_advert(100, 100, {})), Invalid::kAddressList);
  EXPECT_EQ(in.check(v3_advert(254, 100, {kVip3})), Invalid::kAddressList);
  // The owner is authoritative for the addresses.
  EXPECT_EQ(in.check(v3_advert(255, 100, {kVip3})), std::nullopt);
  EXPECT_EQ(in.check(v3_advert(255, 100, {})), std::nullopt);
}

TEST(VrrpCheck, V3AcceptsAnyInterval) {
  const Instance in(base_config());
  EXPECT_EQ(in.check(v3_advert(100, 5, {kVip, kVip2})), std::nullopt);
  EXPECT_EQ(in.check(v3_advert(100, 4095, {kVip, kVip2})), std::nullopt);
}

TEST(VrrpCheck, VersionMustMatchConfig) {
  const Instance v3(base_config());
  Advert a = v3_advert(100, 100, {kVip, kVip2});
  a.version = 2;
  EXPECT_EQ(v3.check(a), Invalid::kVersion);
  Config c = base_config();
  c.version = 2;
  const Instance v2(c);
  EXPECT_EQ(v2.check(v3_advert(100, 100, {kVip, kVip2})), Invalid::kVersion);
}

TEST(VrrpCheck, V2IntervalAndAuth) {
  Config c = base_config();
  c.version = 2;
  c.auth_type = 1;
  c.auth = password("secret");
  const Instance in(c);
  Advert a = v3_advert(90, 100, {kVip, kVip2});
  a.version = 2;
  a.auth_type = 1;
  a.auth = password("secret");
  EXPECT_EQ(in.check(a), std::nullopt);
  Advert b = a;
  b.interval_cs = 200;
  EXPECT_EQ(in.check(b), Invalid::kInterval);
  b = a;
  b.auth = password("secreT");
  EXPECT_EQ(in.check(b), Invalid::kAuth);
  b = a;
  b.auth = password("secret1");  // the password is all 8 bytes, not a C string
  EXPECT_EQ(in.check(b), Invalid::kAuth);
  b = a;
  b.auth_type = 0;
  EXPECT_EQ(in.check(b), Invalid::kAuth);
  b = a;
  b.addrs = {kVip};
  EXPECT_EQ(in.check(b), Invalid::kAddressList);
}

TEST(VrrpCheck, AcceptsTheGoldenV2Frame) {
  Config c = base_config();
  c.version = 2;
  c.addrs = {kVip};
  c.auth_type = 1;
  c.auth = password("secret");
  Invalid why = Invalid::kCount;
  const auto d = decode_frame(frame("v2_pass"), why);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(Instance(c).check(d->advert), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// State machine on a fake clock

std::string describe(const std::vector<Action>& actions) {
  std::string s;
  for (const Action& a : actions) {
    if (!s.empty()) s += ' ';
    switch (a.kind) {
      case Action::kSendAdvert:
        s += "send(" + std::to_string(a.priority) + ")";
        break;
      case Action::kBecome:
        s += std::string("become(") + to_string(a.state) + ")";
        break;
      case Action::kReannounce:
        s += "reannounce";
        break;
    }
  }
  return s;
}

// Drives one instance and returns what each event asked for, as text.
class Fsm {
 public:
  explicit Fsm(Config c) : in_(std::move(c)) {}
  Instance& operator*() { return in_; }
  Instance* operator->() { return &in_; }

  std::string start(uint64_t now) {
    return run([&](auto& o) { in_.start(now, o); });
  }
  std::string shutdown(uint64_t now) {
    return run([&](auto& o) { in_.shutdown(now, o); });
  }
  std::string tick(uint64_t now) {
    return run([&](auto& o) { in_.tick(now, o); });
  }
  std::string advert(uint8_t prio, uint32_t src, uint64_t now, uint16_t interval_cs = 100) {
    Advert a = v3_advert(prio, interval_cs, in_.config().addrs);
    a.version = in_.config().version;
    return run([&](auto& o) { in_.on_advert(a, src, now, o); });
  }
  std::string fault(bool f, uint64_t now) {
    return run([&](auto& o) { in_.set_fault(f, now, o); });
  }
  std::string priority(uint8_t p, uint64_t now) {
    return run([&](auto& o) { in_.set_priority(p, now, o); });
  }
  std::string force(State s, uint64_t now) {
    return run([&](auto& o) { in_.force(s, now, o); });
  }
  // Fires the pending deadline; returns its time.
  uint64_t fire(std::string* actions = nullptr) {
    const uint64_t t = in_.next_deadline();
    const std::string a = tick(t);
    if (actions) *actions = a;
    return t;
  }

 private:
  template <typename F>
  std::string run(F f) {
    std::vector<Action> out;
    f(out);
    return describe(out);
  }
  Instance in_;
};

Config with(uint8_t prio, uint16_t interval_cs = 100, uint8_t version = 3) {
  Config c = base_config();
  c.priority = prio;
  c.interval_cs = interval_cs;
  c.version = version;
  return c;
}

// A master at t = 0 + its Master_Down.
Fsm master(Config c) {
  Fsm f(std::move(c));
  f.start(0);
  f.fire();
  EXPECT_EQ(f->state(), State::kMaster);
  return f;
}

constexpr uint64_t kT0 = 1000 * kSec;  // an arbitrary start: nothing may assume 0

TEST(VrrpFsm, NothingArmedBeforeStart) {
  Fsm f(with(100));
  EXPECT_EQ(f->state(), State::kInit);
  EXPECT_EQ(f->next_deadline(), kNever);
  EXPECT_EQ(f.tick(kT0), "");
  EXPECT_EQ(f.advert(200, kHigherIp, kT0), "");
  EXPECT_EQ(f->transitions(), 0u);
}

TEST(VrrpFsm, MasterDownIsThreeIntervalsPlusSkew) {
  Fsm f(with(100));
  EXPECT_EQ(f.start(kT0), "become(BACKUP)");
  // Skew = (256 − 100) × 1 s / 256 = 609.375 ms; Master_Down = 3 s + Skew.
  EXPECT_EQ(f->skew_ns(), 609'375'000u);
  EXPECT_EQ(f->master_down_ns(), 3'609'375'000u);
  EXPECT_EQ(f->next_deadline(), kT0 + 3'609'375'000u);
  EXPECT_EQ(f->master_ip(), 0u);
  EXPECT_EQ(f->master_interval_cs(), 100);
  EXPECT_EQ(f.tick(kT0 + 3'609'374'999), "");
  EXPECT_EQ(f->state(), State::kBackup);
  EXPECT_EQ(f.tick(kT0 + 3'609'375'000), "send(100) become(MASTER)");
  EXPECT_EQ(f->master_ip(), kOurIp);
  EXPECT_EQ(f->next_deadline(), kT0 + 3'609'375'000 + kSec);
}

TEST(VrrpFsm, FieldNotesFailoverFigures) {
  // keepalived's figures: 3.61 s at 1 s adverts, 0.361 s at 100 ms (v3), priority 100.
  EXPECT_EQ(Instance(with(100, 100)).master_down_ns(), 3'609'375'000u);
  EXPECT_EQ(Instance(with(100, 10)).master_down_ns(), 360'937'500u);
  EXPECT_EQ(Instance(with(254, 100)).skew_ns(), 7'812'500u);
  EXPECT_EQ(Instance(with(1, 100)).skew_ns(), 996'093'750u);
}

TEST(VrrpFsm, V2SkewIsInSecondsWhateverTheInterval) {
  // RFC 3768 §6.1: Skew_Time = (256 − Priority) / 256 seconds; Master_Down = 3 × interval + skew.
  EXPECT_EQ(Instance(with(100, 200, 2)).skew_ns(), 609'375'000u);
  EXPECT_EQ(Instance(with(100, 200, 2)).master_down_ns(), 6'609'375'000u);
  EXPECT_EQ(Instance(with(100, 100, 2)).master_down_ns(), 3'609'375'000u);
}

TEST(VrrpFsm, BackupAcceptsHigherOrEqualMaster) {
  Fsm f(with(100));
  f.start(kT0);
  for (uint8_t prio : {100, 200, 255}) {
    const uint64_t t = kT0 + prio * kMs;
    EXPECT_EQ(f.advert(prio, kHigherIp, t), "");
    EXPECT_EQ(f->master_ip(), kHigherIp);
    EXPECT_EQ(f->next_deadline(), t + 3'609'375'000u);
  }
  EXPECT_EQ(f->state(), State::kBackup);
}

TEST(VrrpFsm, PriorityZeroTakeoverAfterSkewOnly) {
  Fsm f(with(100));
  f.start(kT0);
  f.advert(200, kHigherIp, kT0 + kSec);
  EXPECT_EQ(f.advert(0, kHigherIp, kT0 + 2 * kSec), "");
  EXPECT_EQ(f->next_deadline(), kT0 + 2 * kSec + 609'375'000u);
  std::string a;
  EXPECT_EQ(f.fire(&a), kT0 + 2 * kSec + 609'375'000u);
  EXPECT_EQ(a, "send(100) become(MASTER)");
}

TEST(VrrpFsm, PriorityZeroSkewUsesTheAdoptedInterval) {
  Fsm f(with(100));
  f.start(kT0);
  f.advert(200, kHigherIp, kT0, 50);
  f.advert(0, kHigherIp, kT0 + kMs, 50);
  EXPECT_EQ(f->next_deadline(), kT0 + kMs + 304'687'500u);  // 156 × 500 ms / 256
}

TEST(VrrpFsm, V3BackupAdoptsTheMastersInterval) {
  Fsm f(with(100, 100));
  f.start(kT0);
  EXPECT_EQ(f.advert(200, kHigherIp, kT0 + kSec, 5), "");
  EXPECT_EQ(f->master_interval_cs(), 5);
  // 3 × 50 ms + 156 × 50 ms / 256 = 150 ms + 30.46875 ms.
  EXPECT_EQ(f->master_down_ns(), 180'468'750u);
  EXPECT_EQ(f->next_deadline(), kT0 + kSec + 180'468'750u);
  // When it takes over it advertises at its own interval again.
  std::string a;
  const uint64_t t = f.fire(&a);
  EXPECT_EQ(a, "send(100) become(MASTER)");
  EXPECT_EQ(f->master_interval_cs(), 100);
  EXPECT_EQ(f->next_deadline(), t + kSec);
}

TEST(VrrpFsm, V2NeverAdoptsTheMastersInterval) {
  Fsm f(with(100, 100, 2));
  f.start(kT0);
  f.advert(200, kHigherIp, kT0 + kSec, 300);  // would fail check(); the FSM must not care
  EXPECT_EQ(f->master_interval_cs(), 100);
  EXPECT_EQ(f->next_deadline(), kT0 + kSec + 3'609'375'000u);
  Fsm m = master(with(100, 100, 2));
  EXPECT_EQ(m.advert(200, kHigherIp, 10 * kSec, 300), "become(BACKUP)");
  EXPECT_EQ(m->master_interval_cs(), 100);
}

TEST(VrrpFsm, IgnoresZeroIntervalFromMaster) {
  Fsm f(with(100));
  f.start(kT0);
  f.advert(200, kHigherIp, kT0, 0);
  EXPECT_EQ(f->master_interval_cs(), 100);
  EXPECT_EQ(f->next_deadline(), kT0 + 3'609'375'000u);
}

TEST(VrrpFsm, HigherPriorityBackupPreemptsAfterMasterDown) {
  Fsm f(with(150));
  f.start(kT0);
  const uint64_t down = kT0 + 3 * kSec + 414'062'500;  // skew = 106 × 1 s / 256
  EXPECT_EQ(f->next_deadline(), down);
  for (uint64_t s = 1; s <= 3; ++s) {  // the lower-priority master's adverts do not hold us
    EXPECT_EQ(f.advert(100, kLowerIp, kT0 + s * kSec), "");
    EXPECT_EQ(f->next_deadline(), down);
    EXPECT_EQ(f.tick(kT0 + s * kSec), "");
  }
  EXPECT_EQ(f.tick(down), "send(150) become(MASTER)");
  // The old master has not heard us yet and advertises once more: it is told again.
  EXPECT_EQ(f.advert(100, kLowerIp, down + kMs), "send(150) reannounce");
  EXPECT_EQ(f->state(), State::kMaster);
}

TEST(VrrpFsm, PreemptDelayHoldsOffTakeover) {
  Config c = with(150);
  c.preempt_delay_ns = 10 * kSec;
  Fsm f(c);
  f.start(kT0);
  // Within the delay the lower master is accepted like a higher one.
  for (uint64_t s = 1; s <= 9; ++s) {
    const uint64_t t = kT0 + s * kSec;
    EXPECT_EQ(f.tick(t), "");
    EXPECT_EQ(f.advert(100, kLowerIp, t), "");
    EXPECT_EQ(f->master_ip(), kLowerIp);
    EXPECT_EQ(f->next_deadline(), t + 3'414'062'500u);
  }
  // From the end of the delay on, its adverts are ignored and Master_Down runs out.
  const uint64_t down = kT0 + 9 * kSec + 3'414'062'500u;
  for (uint64_t s = 10; s <= 12; ++s) {
    EXPECT_EQ(f.tick(kT0 + s * kSec), "");
    EXPECT_EQ(f.advert(100, kLowerIp, kT0 + s * kSec), "");
    EXPECT_EQ(f->next_deadline(), down);
  }
  EXPECT_EQ(f.tick(down), "send(150) become(MASTER)");
}

TEST(VrrpFsm, NopreemptAcceptsALowerMasterForever) {
  Config c = with(200);
  c.preempt = false;
  Fsm f(c);
  f.start(kT0);
  for (uint64_t s = 1; s <= 1000; ++s) {
    const uint64_t t = kT0 + s * kSec;
    ASSERT_EQ(f.tick(t), "");
    ASSERT_EQ(f.advert(50, kLowerIp, t), "");
  }
  EXPECT_EQ(f->state(), State::kBackup);
  EXPECT_EQ(f->master_ip(), kLowerIp);
  EXPECT_EQ(f->transitions(), 1u);
  // It still takes over when the master goes silent.
  std::string a;
  f.fire(&a);
  EXPECT_EQ(a, "send(200) become(MASTER)");
}

TEST(VrrpFsm, EqualPriorityHigherAddressWins) {
  // We are 192.0.2.2. A peer at .3 with our priority wins; a peer at .1 loses.
  Fsm lose = master(with(100));
  const uint64_t t = 10 * kSec;
  EXPECT_EQ(lose.advert(100, kHigherIp, t), "become(BACKUP)");
  EXPECT_EQ(lose->master_ip(), kHigherIp);
  EXPECT_EQ(lose->next_deadline(), t + 3'609'375'000u);

  Fsm win = master(with(100));
  EXPECT_EQ(win.advert(100, kLowerIp, t), "send(100) reannounce");
  EXPECT_EQ(win->state(), State::kMaster);
  EXPECT_EQ(win->master_ip(), kOurIp);
}

TEST(VrrpFsm, AddressTieBreakIsUnsignedHostOrder) {
  // Compared as unsigned numbers in host order: a signed compare would rank 192.x below 10.x,
  // and a compare of the raw network-order words on x86 would rank by the last octet.
  Config c = with(100);
  c.primary_ip = 0x0a000001;  // 10.0.0.1
  Fsm f = master(c);
  EXPECT_EQ(f.advert(100, 0xc0000201, 10 * kSec), "become(BACKUP)");  // 192.0.2.1 is higher
  c.primary_ip = 0xc1000001;                                          // 193.0.0.1
  Fsm g = master(c);
  EXPECT_EQ(g.advert(100, 0xc00002ff, 10 * kSec), "send(100) reannounce");  // 192.0.2.255 lower
}

TEST(VrrpFsm, MasterStepsDownToHigherPriorityAndAdoptsItsInterval) {
  Fsm f = master(with(100, 100));
  const uint64_t t = 10 * kSec;
  EXPECT_EQ(f.advert(200, kHigherIp, t, 50), "become(BACKUP)");
  EXPECT_EQ(f->master_interval_cs(), 50);
  EXPECT_EQ(f->next_deadline(), t + 1'804'687'500u);  // 1.5 s + 156 × 0.5 s / 256
}

TEST(VrrpFsm, OwnerStartsAsMaster) {
  Fsm f(with(255));
  EXPECT_EQ(f.start(kT0), "send(255) become(MASTER)");
  EXPECT_EQ(f->master_ip(), kOurIp);
  EXPECT_EQ(f->next_deadline(), kT0 + kSec);
  EXPECT_EQ(f.advert(254, kHigherIp, kT0 + kMs), "send(255) reannounce");
}

TEST(VrrpFsm, MasterAdvertisesEveryInterval) {
  Fsm f(with(255, 25));
  f.start(kT0);
  uint64_t t = kT0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(f.tick(t + 250 * kMs - 1), "");
    std::string a;
    t = f.fire(&a);
    EXPECT_EQ(a, "send(255)");
    EXPECT_EQ(f->next_deadline(), t + 250 * kMs);
  }
  // A late tick rearms from now rather than catching up with a burst.
  EXPECT_EQ(f.tick(t + 5 * kSec), "send(255)");
  EXPECT_EQ(f->next_deadline(), t + 5 * kSec + 250 * kMs);
}

TEST(VrrpFsm, MasterAnswersPriorityZeroAtOnce) {
  Fsm f = master(with(100));
  const uint64_t t = 10 * kSec;
  EXPECT_EQ(f.advert(0, kHigherIp, t), "send(100)");
  EXPECT_EQ(f->state(), State::kMaster);
  EXPECT_EQ(f->next_deadline(), t + kSec);
}

TEST(VrrpFsm, SplitBrainHealsWithReannounce) {
  Fsm f = master(with(150));
  const uint64_t transitions = f->transitions();
  const uint64_t t = 10 * kSec;
  EXPECT_EQ(f.advert(100, kHigherIp, t), "send(150) reannounce");
  EXPECT_EQ(f->state(), State::kMaster);
  EXPECT_EQ(f->next_deadline(), t + kSec);
  EXPECT_EQ(f->transitions(), transitions);
}

TEST(VrrpFsm, OwnAdvertLoopedBackIsIgnored) {
  Fsm f = master(with(100));
  const uint64_t deadline = f->next_deadline();
  EXPECT_EQ(f.advert(100, kOurIp, 5 * kSec), "");
  EXPECT_EQ(f->next_deadline(), deadline);
}

TEST(VrrpFsm, FaultFromMasterSendsPriorityZero) {
  Fsm f = master(with(100));
  const uint64_t t = 10 * kSec;
  EXPECT_EQ(f.fault(true, t), "send(0) become(FAULT)");
  EXPECT_EQ(f->state(), State::kFault);
  EXPECT_EQ(f->next_deadline(), kNever);
  EXPECT_EQ(f->master_ip(), 0u);
  // FAULT ignores adverts, timers and repeated faults.
  EXPECT_EQ(f.advert(0, kHigherIp, t + kSec), "");
  EXPECT_EQ(f.advert(50, kHigherIp, t + kSec), "");
  EXPECT_EQ(f.tick(t + 100 * kSec), "");
  EXPECT_EQ(f.fault(true, t + 100 * kSec), "");
  EXPECT_EQ(f.force(State::kMaster, t + 100 * kSec), "");
  // Leaving it goes to BACKUP with a fresh Master_Down.
  EXPECT_EQ(f.fault(false, t + 200 * kSec), "become(BACKUP)");
  EXPECT_EQ(f->next_deadline(), t + 200 * kSec + 3'609'375'000u);
  EXPECT_EQ(f.fault(false, t + 201 * kSec), "");
}

TEST(VrrpFsm, FaultFromBackup) {
  Fsm f(with(100));
  f.start(kT0);
  f.advert(200, kHigherIp, kT0, 50);
  EXPECT_EQ(f.fault(true, kT0 + kSec), "become(FAULT)");
  EXPECT_EQ(f->next_deadline(), kNever);
  EXPECT_EQ(f.fault(false, kT0 + 2 * kSec), "become(BACKUP)");
  EXPECT_EQ(f->master_interval_cs(), 100);  // the master is unknown again: our own interval
  EXPECT_EQ(f->next_deadline(), kT0 + 2 * kSec + 3'609'375'000u);
}

TEST(VrrpFsm, OwnerLeavesFaultAsMaster) {
  Fsm f(with(255));
  f.start(kT0);
  EXPECT_EQ(f.fault(true, kT0 + kSec), "send(0) become(FAULT)");
  EXPECT_EQ(f.fault(false, kT0 + 2 * kSec), "send(255) become(MASTER)");
  EXPECT_EQ(f->next_deadline(), kT0 + 3 * kSec);
}

TEST(VrrpFsm, FaultBeforeStartStartsInFault) {
  Fsm f(with(100));
  EXPECT_EQ(f.fault(true, kT0), "");
  EXPECT_EQ(f.start(kT0), "become(FAULT)");
  EXPECT_EQ(f->next_deadline(), kNever);
  EXPECT_EQ(f.fault(false, kT0 + kSec), "become(BACKUP)");
}

TEST(VrrpFsm, ForceFollowsTheSyncGroup) {
  Fsm f(with(100));
  f.start(kT0);
  EXPECT_EQ(f.force(State::kBackup, kT0 + kMs), "");  // already BACKUP
  EXPECT_EQ(f.force(State::kMaster, kT0 + kSec), "send(100) become(MASTER)");
  EXPECT_EQ(f->master_ip(), kOurIp);
  EXPECT_EQ(f->next_deadline(), kT0 + 2 * kSec);
  EXPECT_EQ(f.force(State::kMaster, kT0 + 2 * kSec), "");                // already MASTER
  EXPECT_EQ(f.force(State::kBackup, kT0 + 3 * kSec), "become(BACKUP)");  // no priority 0
  EXPECT_EQ(f->next_deadline(), kT0 + 3 * kSec + 3'609'375'000u);
  EXPECT_EQ(f.force(State::kFault, kT0 + 4 * kSec), "");
  EXPECT_EQ(f.force(State::kInit, kT0 + 4 * kSec), "");
  EXPECT_EQ(f->state(), State::kBackup);
  Fsm idle(with(100));
  EXPECT_EQ(idle.force(State::kMaster, kT0), "");  // INIT stays INIT
}

// Replication coupling (set_inhibit): the sync link says the peer is master, or our copy of its
// state is incomplete.

TEST(VrrpFsm, InhibitHoldsTheTakeoverOfABackupAndRearmsMasterDown) {
  Fsm f(with(100));
  EXPECT_EQ(f.start(kT0), "become(BACKUP)");
  f.advert(200, kHigherIp, kT0 + kSec);
  f->set_inhibit(true);
  EXPECT_TRUE(f->inhibited());
  EXPECT_FALSE(f->holding());  // nothing held yet
  uint64_t t = kT0 + kSec + 3'609'375'000u;
  EXPECT_EQ(f->next_deadline(), t);
  for (uint64_t n = 1; n <= 3; ++n) {
    EXPECT_EQ(f.tick(t - 1), "");
    std::string a;
    EXPECT_EQ(f.fire(&a), t);
    EXPECT_EQ(a, "");  // no advert, no transition
    EXPECT_EQ(f->state(), State::kBackup);
    EXPECT_EQ(f->held_takeovers(), n);
    EXPECT_TRUE(f->holding());
    t += 3'609'375'000u;
    EXPECT_EQ(f->next_deadline(), t);  // Master_Down again from the held expiry
  }
  EXPECT_EQ(f->transitions(), 1u);
  EXPECT_EQ(f->master_ip(), kHigherIp);
}

TEST(VrrpFsm, LiftingInhibitAfterAHeldExpiryTakesOverAtTheNextTick) {
  Fsm f(with(100));
  f.start(kT0);
  f->set_inhibit(true);
  const uint64_t held_at = f.fire();
  ASSERT_EQ(f->held_takeovers(), 1u);
  f->set_inhibit(false);
  EXPECT_FALSE(f->inhibited());
  EXPECT_FALSE(f->holding());
  EXPECT_LE(f->next_deadline(), held_at + kMs);  // due now, not a Master_Down away
  EXPECT_EQ(f.tick(held_at + kMs), "send(100) become(MASTER)");
  EXPECT_EQ(f->state(), State::kMaster);
  EXPECT_EQ(f->master_ip(), kOurIp);
  EXPECT_EQ(f->next_deadline(), held_at + kMs + kSec);
  EXPECT_EQ(f->held_takeovers(), 1u);
}

TEST(VrrpFsm, LiftingInhibitWithNothingHeldKeepsTheTimer) {
  Fsm f(with(100));
  f.start(kT0);
  f->set_inhibit(true);
  const uint64_t due = f->next_deadline();
  f->set_inhibit(false);
  EXPECT_EQ(f->next_deadline(), due);
  EXPECT_EQ(f.tick(due - 1), "");
  EXPECT_EQ(f.tick(due), "send(100) become(MASTER)");
  EXPECT_EQ(f->held_takeovers(), 0u);
}

TEST(VrrpFsm, AnAdvertEndsTheHold) {
  Fsm f(with(100));
  f.start(kT0);
  f->set_inhibit(true);
  const uint64_t held_at = f.fire();
  ASSERT_TRUE(f->holding());
  const uint64_t t = held_at + kSec;
  EXPECT_EQ(f.advert(200, kHigherIp, t), "");
  EXPECT_FALSE(f->holding());
  EXPECT_TRUE(f->inhibited());
  EXPECT_EQ(f->held_takeovers(), 1u);
  EXPECT_EQ(f->next_deadline(), t + 3'609'375'000u);
  // The master is heard again: lifting the inhibition waits for a full Master_Down.
  f->set_inhibit(false);
  EXPECT_EQ(f->next_deadline(), t + 3'609'375'000u);
  EXPECT_EQ(f.tick(t + kMs), "");
  EXPECT_EQ(f->state(), State::kBackup);
  EXPECT_EQ(f.tick(t + 3'609'375'000u), "send(100) become(MASTER)");
}

TEST(VrrpFsm, InhibitedOwnerStartsAsBackup) {
  Fsm f(with(255));
  f->set_inhibit(true);
  EXPECT_EQ(f.start(kT0), "become(BACKUP)");
  EXPECT_EQ(f->master_ip(), 0u);
  EXPECT_EQ(f->next_deadline(), kT0 + f->master_down_ns());
  std::string a;
  f.fire(&a);
  EXPECT_EQ(a, "");
  EXPECT_EQ(f->state(), State::kBackup);
  EXPECT_EQ(f->held_takeovers(), 1u);
  f->set_inhibit(false);
  EXPECT_EQ(f.tick(f->next_deadline()), "send(255) become(MASTER)");
}

TEST(VrrpFsm, InhibitedOwnerLeavesFaultAsBackup) {
  Fsm f(with(255));
  std::vector<Action> out;
  f->set_fault(true, kT0, out);
  f.start(kT0);
  EXPECT_EQ(f->state(), State::kFault);
  f->set_inhibit(true);
  out.clear();
  f->set_fault(false, kT0 + 1, out);
  EXPECT_EQ(f->state(), State::kBackup) << "held back like at start()";
  f->set_inhibit(false);
  out.clear();
  f->set_fault(true, kT0 + 2, out);
  f->set_fault(false, kT0 + 3, out);
  EXPECT_EQ(f->state(), State::kMaster) << "an owner not held back goes straight to MASTER";
}

TEST(VrrpFsm, InhibitDoesNotAffectAMaster) {
  Fsm f = master(with(100));
  f->set_inhibit(true);
  EXPECT_FALSE(f->holding());
  uint64_t t = 0;
  for (int i = 0; i < 3; ++i) {
    std::string a;
    t = f.fire(&a);
    EXPECT_EQ(a, "send(100)");
    EXPECT_EQ(f->state(), State::kMaster);
  }
  EXPECT_EQ(f->held_takeovers(), 0u);
  EXPECT_FALSE(f->holding());
  EXPECT_EQ(f.advert(50, kLowerIp, t + kMs), "send(100) reannounce");
  // It still steps down to a better master; as a BACKUP it is then held.
  EXPECT_EQ(f.advert(200, kHigherIp, t + 2 * kMs), "become(BACKUP)");
  std::string a;
  f.fire(&a);
  EXPECT_EQ(a, "");
  EXPECT_EQ(f->state(), State::kBackup);
  EXPECT_TRUE(f->holding());
}

TEST(VrrpFsm, AHoldEndsWithTheTakeoverItHeldBack) {
  // Held, lifted, MASTER: inhibited again (a new resync), the master holds nothing back, and
  // after following its group back to BACKUP no stale hold may skip the next Master_Down.
  Fsm f(with(100));
  f.start(kT0);
  f->set_inhibit(true);
  const uint64_t held_at = f.fire();
  f->set_inhibit(false);
  ASSERT_EQ(f.tick(held_at + kMs), "send(100) become(MASTER)");
  f->set_inhibit(true);
  EXPECT_FALSE(f->holding());
  const uint64_t t = held_at + 10 * kSec;
  EXPECT_EQ(f.force(State::kBackup, t), "become(BACKUP)");
  EXPECT_FALSE(f->holding());
  f->set_inhibit(false);
  EXPECT_EQ(f->next_deadline(), t + 3'609'375'000u);
  EXPECT_EQ(f.tick(t + kMs), "");
  EXPECT_EQ(f->state(), State::kBackup);
}

TEST(VrrpFsm, ShutdownSendsPriorityZero) {
  Fsm f = master(with(100));
  EXPECT_EQ(f.shutdown(10 * kSec), "send(0) become(INIT)");
  EXPECT_EQ(f->state(), State::kInit);
  EXPECT_EQ(f->next_deadline(), kNever);
  EXPECT_EQ(f.tick(100 * kSec), "");
  EXPECT_EQ(f.advert(200, kHigherIp, 100 * kSec), "");
  EXPECT_EQ(f.shutdown(100 * kSec), "");

  Fsm b(with(100));
  b.start(kT0);
  EXPECT_EQ(b.shutdown(kT0 + kSec), "become(INIT)");
  EXPECT_EQ(b->next_deadline(), kNever);

  Fsm flt(with(100));
  flt.start(kT0);
  flt.fault(true, kT0);
  EXPECT_EQ(flt.shutdown(kT0 + kSec), "become(INIT)");
}

TEST(VrrpFsm, SetPriorityTakesEffectOnNextAdvertAndTimer) {
  Fsm m = master(with(100));
  EXPECT_EQ(m.priority(80, 5 * kSec), "");
  EXPECT_EQ(m->effective_priority(), 80);
  EXPECT_EQ(m->state(), State::kMaster);
  std::string a;
  m.fire(&a);
  EXPECT_EQ(a, "send(80)");

  Fsm b(with(100));
  b.start(kT0);
  const uint64_t deadline = b->next_deadline();
  EXPECT_EQ(b.priority(200, kT0 + kMs), "");
  EXPECT_EQ(b->next_deadline(), deadline);  // the running timer is left alone
  b.advert(250, kHigherIp, kT0 + kSec);
  EXPECT_EQ(b->next_deadline(), kT0 + kSec + 3'218'750'000u);  // skew 56 × 1 s / 256
}

TEST(VrrpFsm, LoweredMasterIsPreemptedByTheBackup) {
  // Tracking drops the master below the backup: the backup ignores the now-lower adverts.
  Fsm m = master(with(150));
  Config cb = with(120);
  cb.primary_ip = kHigherIp;
  Fsm b(cb);
  b.start(kT0);
  b.advert(150, kOurIp, kT0 + kSec);
  m.priority(100, kT0 + kSec);
  EXPECT_EQ(b.advert(100, kOurIp, kT0 + 2 * kSec), "");
  std::string a;
  b.fire(&a);
  EXPECT_EQ(a, "send(120) become(MASTER)");
  EXPECT_EQ(b->next_deadline() - kSec, kT0 + kSec + 3'531'250'000u);  // skew 136 × 1 s / 256
}

TEST(VrrpFsm, TransitionsAreCountedAndTimed) {
  Fsm f(with(100));
  f.start(kT0);
  EXPECT_EQ(f->transitions(), 1u);
  EXPECT_EQ(f->last_transition_ns(), kT0);
  const uint64_t t = f.fire();
  EXPECT_EQ(f->transitions(), 2u);
  EXPECT_EQ(f->last_transition_ns(), t);
  f.advert(100, kLowerIp, t + kSec);  // split brain: no transition
  f.tick(t + kSec);
  EXPECT_EQ(f->transitions(), 2u);
  f.advert(200, kHigherIp, t + 2 * kSec);
  f.fault(true, t + 3 * kSec);
  f.fault(false, t + 4 * kSec);
  f.shutdown(t + 5 * kSec);
  EXPECT_EQ(f->transitions(), 6u);
  EXPECT_EQ(f->last_transition_ns(), t + 5 * kSec);
}

TEST(VrrpFsm, StartTwiceIsANoOp) {
  Fsm f(with(100));
  f.start(kT0);
  EXPECT_EQ(f.start(kT0 + kSec), "");
  EXPECT_EQ(f->transitions(), 1u);
}

TEST(VrrpFsm, RestartAfterShutdown) {
  Fsm f = master(with(100));
  f.shutdown(10 * kSec);
  EXPECT_EQ(f.start(20 * kSec), "become(BACKUP)");
  EXPECT_EQ(f->next_deadline(), 20 * kSec + 3'609'375'000u);
}

TEST(VrrpFsm, StateNames) {
  EXPECT_STREQ(to_string(State::kInit), "INIT");
  EXPECT_STREQ(to_string(State::kBackup), "BACKUP");
  EXPECT_STREQ(to_string(State::kMaster), "MASTER");
  EXPECT_STREQ(to_string(State::kFault), "FAULT");
}

// Two instances wired back to back: whatever the start order and priorities, exactly one ends
// as master once adverts flow, and it is the one RFC 5798 elects.
TEST(VrrpFsm, TwoNodesConvergeToOneMaster) {
  struct Node {
    Instance in;
    std::vector<Action> out;
  };
  for (uint8_t pa : {100, 150, 255}) {
    for (uint8_t pb : {100, 120, 150}) {
      for (uint64_t b_late : {uint64_t{0}, 5 * kSec, 60 * kSec}) {
        Config ca = with(pa);
        Config cb = with(pb);
        cb.primary_ip = kHigherIp;
        Node a{Instance(ca), {}};
        Node b{Instance(cb), {}};
        a.in.start(kT0, a.out);
        bool b_started = false;
        uint64_t now = kT0;
        for (int step = 0; step < 2000; ++step) {
          // Deliver what each node sent to the other, then advance to the next deadline.
          for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            for (const Action& act : from->out) {
              if (act.kind != Action::kSendAdvert) continue;
              Advert adv = v3_advert(act.priority, 100, from->in.config().addrs);
              if (to == &b && !b_started) continue;
              to->in.on_advert(adv, from->in.config().primary_ip, now, to->out);
            }
            from->out.clear();
          }
          uint64_t next =
              std::min(a.in.next_deadline(), b_started ? b.in.next_deadline() : kT0 + b_late);
          now = std::max(now, next);
          if (!b_started && now >= kT0 + b_late) {
            b.in.start(now, b.out);
            b_started = true;
          }
          a.in.tick(now, a.out);
          if (b_started) b.in.tick(now, b.out);
          if (now > kT0 + b_late + 60 * kSec) break;
        }
        SCOPED_TRACE(testing::Message()
                     << "pa " << int{pa} << " pb " << int{pb} << " late " << b_late / kSec);
        const bool a_master = a.in.state() == State::kMaster;
        const bool b_master = b.in.state() == State::kMaster;
        EXPECT_NE(a_master, b_master);
        // Preemption is on: the higher priority wins. On a tie the higher address (b) wins only
        // when both were masters at once (same start); a backup accepts an incumbent of equal
        // priority (RFC 5798 §6.4.2: "greater than or equal").
        EXPECT_EQ(b_master, pb > pa || (pb == pa && b_late == 0));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tracking

TEST(VrrpTracking, WeightsAddAndSubtract) {
  EXPECT_EQ(effective_priority(100, {}), 100);
  EXPECT_EQ(effective_priority(100, {{true, 10}}), 110);
  EXPECT_EQ(effective_priority(100, {{false, 10}}), 100);  // positive weights count while up
  EXPECT_EQ(effective_priority(100, {{false, -30}}), 70);
  EXPECT_EQ(effective_priority(100, {{true, -30}}), 100);  // negative ones while down
  EXPECT_EQ(effective_priority(100, {{true, 10}, {false, -20}, {true, 0}, {true, 5}}), 95);
}

TEST(VrrpTracking, ClampedToOneThrough254) {
  EXPECT_EQ(effective_priority(250, {{true, 20}}), 254);
  EXPECT_EQ(effective_priority(254, {{true, 254}}), 254);
  EXPECT_EQ(effective_priority(10, {{false, -50}}), 1);
  EXPECT_EQ(effective_priority(1, {{false, -254}, {false, -254}}), 1);
  EXPECT_EQ(effective_priority(100, {{true, 254}, {false, -254}}), 100);
}

TEST(VrrpTracking, OwnerIsNeverChanged) {
  EXPECT_EQ(effective_priority(255, {{false, -50}}), 255);
  EXPECT_EQ(effective_priority(255, {{true, 50}}), 255);
}

TEST(VrrpTracking, UnweightedDownMeansFault) {
  EXPECT_EQ(effective_priority(100, {{false, 0}}), std::nullopt);
  EXPECT_EQ(effective_priority(100, {{true, 10}, {false, 0}}), std::nullopt);
  EXPECT_EQ(effective_priority(255, {{false, 0}}), std::nullopt);  // even the owner
  EXPECT_EQ(effective_priority(100, {{true, 0}}), 100);
}

TEST(VrrpRiseFall, NeedsConsecutiveResults) {
  RiseFall rf(3, 2, true);
  EXPECT_TRUE(rf.up());
  EXPECT_FALSE(rf.report(true));
  EXPECT_FALSE(rf.report(false));  // 1 of 2
  EXPECT_FALSE(rf.report(true));   // streak broken
  EXPECT_FALSE(rf.report(false));
  EXPECT_TRUE(rf.report(false));  // 2 of 2: down
  EXPECT_FALSE(rf.up());
  EXPECT_FALSE(rf.report(false));
  EXPECT_FALSE(rf.report(true));
  EXPECT_FALSE(rf.report(true));
  EXPECT_FALSE(rf.report(false));  // streak broken at 2 of 3
  EXPECT_FALSE(rf.report(true));
  EXPECT_FALSE(rf.report(true));
  EXPECT_TRUE(rf.report(true));  // 3 of 3: up
  EXPECT_TRUE(rf.up());
}

TEST(VrrpRiseFall, OneMeansImmediate) {
  RiseFall rf(1, 1, false);
  EXPECT_FALSE(rf.up());
  EXPECT_FALSE(rf.report(false));
  EXPECT_TRUE(rf.report(true));
  EXPECT_TRUE(rf.up());
  EXPECT_TRUE(rf.report(false));
  EXPECT_FALSE(rf.up());
}

TEST(VrrpRiseFall, ZeroActsAsOne) {
  RiseFall rf(0, 0, true);
  EXPECT_TRUE(rf.report(false));
  EXPECT_TRUE(rf.report(true));
}

}  // namespace
}  // namespace ctl::vrrp
