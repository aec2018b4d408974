// DHCPv4 codec: golden payloads from an independent Python generator
// (tests/fixtures/gen_dhcp_golden.py), one test per refusal reason, truncation of every golden
// at every length, a mutation fuzz loop checked against a reference parser written here, and
// Writer round trips (splitting, size limit, echo, padding). The reference parser shares no code
// with codec.cpp, so the code under test never checks itself.

#include "dhcp/codec.h"

#include <gtest/gtest.h>

#include "tests/golden.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#ifndef TANDEM_SOURCE_DIR
#error "TANDEM_SOURCE_DIR must point at the source tree (see tests/unit/meson.build)"
#endif

namespace dhcp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}
constexpr uint32_t kServerId = ip4(192, 0, 2, 2);
constexpr uint32_t kMask = ip4(255, 255, 255, 0);
constexpr uint32_t kRouter = ip4(192, 0, 2, 1);
constexpr std::array<uint8_t, 6> kDhclientMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr std::array<uint8_t, 6> kRelayedMac{0x02, 0x00, 0x00, 0x00, 0x10, 0x01};
constexpr std::array<uint8_t, 6> kOverloadMac{0x02, 0x00, 0x00, 0x00, 0x20, 0x02};
constexpr std::array<uint8_t, 6> kLongMac{0x02, 0x00, 0x00, 0x00, 0x30, 0x03};
constexpr std::array<uint8_t, 6> kInformMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x77};
constexpr std::array<uint8_t, 6> kNoEndMac{0x02, 0x00, 0x00, 0x00, 0x40, 0x04};
constexpr size_t kOptionsAt = 240, kFileAt = 108, kSnameAt = 44;

// ---------------------------------------------------------------------------------------------
// Fixtures and byte helpers (independent of codec.cpp)

const std::map<std::string, Bytes>& golden() {
  static const auto all = tandem_test::read_golden_frames("dhcp_golden.txt");
  return all;
}

Bytes fixture(const std::string& name) {
  auto it = golden().find(name);
  EXPECT_TRUE(it != golden().end()) << "fixture " << name << " missing";
  return it == golden().end() ? Bytes{} : it->second;
}

const std::vector<std::string> kRequestNames = {"discover_dhclient",    "request_selecting",
                                                "discover_relayed",     "discover_overload",
                                                "discover_long_option", "inform",
                                                "discover_no_end"};
const std::vector<std::string> kReplyNames = {"offer_dhclient", "offer_relayed", "ack_inform",
                                              "nak_request"};

Bytes str(const std::string& s) {
  return Bytes(s.begin(), s.end());
}
Bytes be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes tlv(uint8_t code, const Bytes& v) {
  return cat({{code, static_cast<uint8_t>(v.size())}, v});
}
Bytes client_id(const std::array<uint8_t, 6>& mac) {
  return cat({{1}, Bytes(mac.begin(), mac.end())});
}
Bytes long_value() {  // the 300-byte vendor class of discover_long_option
  Bytes v;
  for (size_t i = 0; i < 300; ++i) v.push_back(static_cast<uint8_t>((i * 7 + 3) % 256));
  return v;
}

// A BOOTREQUEST with Ethernet htype/hlen, the magic cookie and `options` after it; `file` and
// `sname` (each at most its field size) are copied into their fields.
Bytes make_msg(const Bytes& options, const Bytes& file = {}, const Bytes& sname = {}) {
  Bytes m(236, 0);
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  std::copy(sname.begin(), sname.end(), m.begin() + kSnameAt);
  std::copy(file.begin(), file.end(), m.begin() + kFileAt);
  m.insert(m.end(), {99, 130, 83, 99});
  m.insert(m.end(), options.begin(), options.end());
  return m;
}
const Bytes kDiscover53{53, 1, 1};

// ---------------------------------------------------------------------------------------------
// Reference parser: the option rules of codec.h restated as plainly as possible.

struct RefInstance {
  uint8_t code;
  size_t at;  // value offset
  size_t len;
};
struct RefResult {
  std::optional<Malformed> why;  // nullopt: accepted
  std::vector<RefInstance> instances;
  Bytes value(const Bytes& msg, uint8_t code) const {
    Bytes v;
    for (const auto& i : instances) {
      if (i.code == code) v.insert(v.end(), msg.begin() + i.at, msg.begin() + i.at + i.len);
    }
    return v;
  }
  bool has(uint8_t code) const {
    return std::any_of(instances.begin(), instances.end(),
                       [code](const RefInstance& i) { return i.code == code; });
  }
};

RefResult ref_parse(const Bytes& m) {
  RefResult r;
  if (m.size() < 240) return {Malformed::kTruncated, {}};
  if (m[0] != 1) return {Malformed::kOp, {}};
  if (m[1] != 1 || m[2] != 6) return {Malformed::kHtype, {}};
  if (!(m[236] == 99 && m[237] == 130 && m[238] == 83 && m[239] == 99)) {
    return {Malformed::kMagic, {}};
  }
  if (m.size() > 65535) return {Malformed::kOptionOverrun, {}};
  int overload = -1;
  auto scan = [&](size_t from, size_t to, bool main) -> std::optional<Malformed> {
    size_t i = from;
    while (i < to && m[i] != 255) {
      if (m[i] == 0) {
        ++i;
        continue;
      }
      if (i + 1 >= to || i + 2 + m[i + 1] > to) return Malformed::kOptionOverrun;
      if (m[i] == 52) {
        if (!main || overload != -1 || m[i + 1] != 1 || m[i + 2] == 0 || m[i + 2] > 3) {
          return Malformed::kOverload;
        }
        overload = m[i + 2];
      }
      r.instances.push_back({m[i], i + 2, m[i + 1]});
      i += 2 + m[i + 1];
    }
    return std::nullopt;
  };
  if (auto e = scan(240, m.size(), true)) return {e, {}};
  if (overload > 0 && (overload & 1) != 0) {
    if (auto e = scan(108, 236, false)) return {e, {}};
  }
  if (overload > 0 && (overload & 2) != 0) {
    if (auto e = scan(44, 108, false)) return {e, {}};
  }
  const Bytes type = r.value(m, 53);
  if (!r.has(53)) return {Malformed::kNoMessageType, {}};
  if (type.size() != 1) return {Malformed::kBadOption, {}};
  if (type[0] < 1 || type[0] > 8) return {Malformed::kNoMessageType, {}};
  for (uint8_t code : {50, 54, 51}) {
    if (r.has(code) && r.value(m, code).size() != 4) return {Malformed::kBadOption, {}};
  }
  if (r.has(57)) {
    const Bytes v = r.value(m, 57);
    if (v.size() != 2 || (v[0] << 8 | v[1]) < 576) return {Malformed::kBadOption, {}};
  }
  return r;
}

const char* name(std::optional<Malformed> why) {
  return why ? kMalformedNames[static_cast<size_t>(*why)] : "accepted";
}

// Parses an exact-size heap copy of `m` (so AddressSanitizer sees any read past the end).
struct Parsed {
  bool ok = false;
  Malformed why = Malformed::kCount;
  Request req;
  Bytes buf;  // keeps req.data valid
};
Parsed parse_copy(const Bytes& m) {
  Parsed p;
  p.buf = Bytes(m.begin(), m.end());
  p.ok = parse(std::span<const uint8_t>(p.buf.data(), p.buf.size()), p.req, p.why);
  return p;
}

Malformed refusal(const Bytes& m) {
  Parsed p = parse_copy(m);
  EXPECT_FALSE(p.ok);
  return p.why;
}

Bytes option(const Request& r, uint8_t code) {
  Bytes out(r.len + 1);  // any value fits: instances occupy distinct bytes of the message
  out.resize(r.copy_option(code, out));
  return out;
}

std::vector<uint8_t> present(const Request& r) {
  std::vector<uint8_t> codes;
  for (size_t c = 0; c < 256; ++c) {
    if (r.has(static_cast<uint8_t>(c))) codes.push_back(static_cast<uint8_t>(c));
  }
  return codes;
}

// Checks the codec's verdict, reason and whole option index against the reference parser, and
// that every option it reports lies inside the buffer.
void expect_matches_reference(const Bytes& m) {
  const RefResult ref = ref_parse(m);
  Parsed p = parse_copy(m);
  ASSERT_EQ(p.ok, !ref.why.has_value())
      << "codec " << (p.ok ? "accepted" : name(p.why)) << ", reference " << name(ref.why);
  if (!p.ok) {
    ASSERT_EQ(p.why, *ref.why) << name(p.why) << " vs " << name(ref.why);
    return;
  }
  ASSERT_EQ(p.req.data, p.buf.data());
  ASSERT_EQ(p.req.len, m.size());
  std::array<size_t, 256> count{}, total{}, first{}, first_len{};
  for (const auto& i : ref.instances) {
    if (count[i.code]++ == 0) {
      first[i.code] = i.at;
      first_len[i.code] = i.len;
    }
    total[i.code] += i.len;
  }
  for (size_t c = 0; c < 256; ++c) {
    const Request::Span& s = p.req.options[c];
    ASSERT_EQ(s.count, std::min<size_t>(count[c], 255)) << "code " << c;
    if (count[c] == 0) continue;
    ASSERT_EQ(s.len, total[c]) << "code " << c;
    ASSERT_EQ(s.first, first[c]) << "code " << c;
    ASSERT_GE(s.first, kSnameAt) << "code " << c;
    ASSERT_LE(s.first + first_len[c], m.size()) << "code " << c;
    ASSERT_LE(s.len, m.size()) << "code " << c;
    ASSERT_EQ(option(p.req, static_cast<uint8_t>(c)), ref.value(m, static_cast<uint8_t>(c)))
        << "code " << c;
  }
  ASSERT_EQ(static_cast<uint8_t>(p.req.type), ref.value(m, 53)[0]);
}

// ---------------------------------------------------------------------------------------------
// Golden requests

TEST(DhcpGolden, FixtureHasEveryCase) {
  for (const auto& n : kRequestNames) EXPECT_EQ(golden().count(n), 1u) << n;
  for (const auto& n : kReplyNames) EXPECT_EQ(golden().count(n), 1u) << n;
}

TEST(DhcpGolden, EveryGoldenMatchesTheReference) {
  for (const auto& n : kRequestNames) {
    SCOPED_TRACE(n);
    expect_matches_reference(fixture(n));
  }
}

TEST(DhcpGolden, DhclientDiscover) {
  Parsed p = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(p.ok) << name(p.why);
  const Request& r = p.req;
  EXPECT_EQ(r.len, 300u);
  EXPECT_EQ(r.type, MessageType::kDiscover);
  EXPECT_EQ(r.xid, 0x3903f326u);
  EXPECT_EQ(r.secs, 4);
  EXPECT_EQ(r.flags, 0);
  EXPECT_FALSE(r.broadcast());
  EXPECT_EQ(r.hops, 0);
  EXPECT_EQ(r.ciaddr, 0u);
  EXPECT_EQ(r.yiaddr, 0u);
  EXPECT_EQ(r.siaddr, 0u);
  EXPECT_EQ(r.giaddr, 0u);
  EXPECT_EQ(r.chaddr, kDhclientMac);
  EXPECT_EQ(present(r), (std::vector<uint8_t>{12, 53, 55, 57, 61}));
  EXPECT_EQ(r.options[53].first, 242);  // right after the cookie and the 2-byte header
  EXPECT_EQ(r.options[61].first, 245);
  EXPECT_EQ(option(r, opt::kClientId), client_id(kDhclientMac));
  EXPECT_EQ(option(r, opt::kParamRequest), (Bytes{1, 3, 6, 15, 28, 42, 51, 58, 59, 121}));
  EXPECT_EQ(option(r, opt::kHostName), str("client-a"));
  EXPECT_EQ(r.max_message_size(), 1500);
  EXPECT_EQ(r.option_ip(opt::kRequestedIp), 0u);
  EXPECT_EQ(r.option_ip(opt::kServerId), 0u);
  for (uint8_t c : {12, 53, 55, 57, 61}) EXPECT_EQ(r.options[c].count, 1) << int{c};
}

TEST(DhcpGolden, RequestSelecting) {
  Parsed p = parse_copy(fixture("request_selecting"));
  ASSERT_TRUE(p.ok) << name(p.why);
  const Request& r = p.req;
  EXPECT_EQ(r.type, MessageType::kRequest);
  EXPECT_EQ(r.xid, 0x3903f326u);
  EXPECT_EQ(r.secs, 5);
  EXPECT_EQ(r.ciaddr, 0u);
  EXPECT_EQ(r.giaddr, 0u);
  EXPECT_EQ(r.chaddr, kDhclientMac);
  EXPECT_EQ(present(r), (std::vector<uint8_t>{12, 50, 53, 54, 55, 57, 61}));
  EXPECT_EQ(r.option_ip(opt::kRequestedIp), ip4(192, 0, 2, 50));
  EXPECT_EQ(r.option_ip(opt::kServerId), kServerId);
  EXPECT_EQ(r.option_ip(opt::kHostName), 0u);  // not 4 bytes
  EXPECT_EQ(r.max_message_size(), 1500);
  EXPECT_EQ(option(r, opt::kClientId), client_id(kDhclientMac));
}

TEST(DhcpGolden, RelayedDiscover) {
  Parsed p = parse_copy(fixture("discover_relayed"));
  ASSERT_TRUE(p.ok) << name(p.why);
  const Request& r = p.req;
  EXPECT_EQ(r.type, MessageType::kDiscover);
  EXPECT_EQ(r.xid, 0x1001u);
  EXPECT_EQ(r.hops, 1);
  EXPECT_EQ(r.flags, 0x8000);
  EXPECT_TRUE(r.broadcast());
  EXPECT_EQ(r.giaddr, ip4(192, 0, 2, 10));
  EXPECT_EQ(r.ciaddr, 0u);
  EXPECT_EQ(r.chaddr, kRelayedMac);
  EXPECT_EQ(present(r), (std::vector<uint8_t>{53, 55, 82}));
  EXPECT_FALSE(r.has(opt::kClientId));
  EXPECT_EQ(r.max_message_size(), 576);  // absent
  EXPECT_EQ(option(r, opt::kRelayAgent),
            cat({tlv(opt::kCircuitId, str("ge-0/0/1.100")),
                 tlv(opt::kRemoteId, Bytes(kRelayedMac.begin(), kRelayedMac.end()))}));
}

TEST(DhcpGolden, OverloadIntoFileAndSname) {
  Parsed p = parse_copy(fixture("discover_overload"));
  ASSERT_TRUE(p.ok) << name(p.why);
  const Request& r = p.req;
  EXPECT_EQ(r.type, MessageType::kDiscover);
  EXPECT_EQ(r.xid, 0x22222222u);
  EXPECT_EQ(r.chaddr, kOverloadMac);
  EXPECT_EQ(present(r), (std::vector<uint8_t>{12, 52, 53, 55, 60, 61}));
  EXPECT_EQ(option(r, opt::kOverload), Bytes{3});
  // 55 starts in the options field and continues in file (RFC 3396 aggregate order).
  EXPECT_EQ(r.options[55].count, 2);
  EXPECT_EQ(r.options[55].len, 10);
  EXPECT_EQ(r.options[55].first, 240 + 3 + 3 + 9 + 2);
  EXPECT_EQ(option(r, opt::kParamRequest), (Bytes{1, 3, 6, 15, 28, 42, 51, 58, 59, 121}));
  EXPECT_EQ(r.options[12].first, kFileAt + 8 + 2);
  EXPECT_EQ(option(r, opt::kHostName), str("overflow-host"));
  EXPECT_EQ(r.options[60].first, kSnameAt + 2);
  EXPECT_EQ(option(r, opt::kVendorClass), str("tandem-vendor-class"));
  EXPECT_EQ(option(r, opt::kClientId), client_id(kOverloadMac));
}

TEST(DhcpGolden, LongOptionSplitInTwo) {
  Parsed p = parse_copy(fixture("discover_long_option"));
  ASSERT_TRUE(p.ok) << name(p.why);
  const Request& r = p.req;
  EXPECT_EQ(r.type, MessageType::kDiscover);
  EXPECT_EQ(r.xid, 0x33333333u);
  EXPECT_EQ(r.chaddr, kLongMac);
  EXPECT_EQ(present(r), (std::vector<uint8_t>{53, 55, 57, 60, 61}));
  EXPECT_EQ(r.options[60].count, 2);
  EXPECT_EQ(r.options[60].len, 300);
  EXPECT_EQ(r.options[60].first, 240 + 3 + 9 + 4 + 2);
  EXPECT_EQ(option(r, opt::kVendorClass), long_value());
  EXPECT_EQ(option(r, opt::kParamRequest), (Bytes{1, 3, 6}));  // between the two instances
  // A buffer one byte short gets nothing rather than a silently cut value.
  Bytes small(299);
  EXPECT_EQ(r.copy_option(opt::kVendorClass, small), 0u);
}

TEST(DhcpGolden, Inform) {
  Parsed p = parse_copy(fixture("inform"));
  ASSERT_TRUE(p.ok) << name(p.why);
  const Request& r = p.req;
  EXPECT_EQ(r.len, 260u);
  EXPECT_EQ(r.type, MessageType::kInform);
  EXPECT_EQ(r.xid, 0xabcdef01u);
  EXPECT_EQ(r.ciaddr, ip4(192, 0, 2, 77));
  EXPECT_EQ(r.yiaddr, 0u);
  EXPECT_EQ(r.chaddr, kInformMac);
  EXPECT_EQ(present(r), (std::vector<uint8_t>{53, 55, 61}));
  EXPECT_EQ(option(r, opt::kParamRequest), (Bytes{1, 3, 6, 15, 252}));
}

TEST(DhcpGolden, NoEndIsTolerated) {
  Parsed p = parse_copy(fixture("discover_no_end"));
  ASSERT_TRUE(p.ok) << name(p.why);
  EXPECT_EQ(p.req.type, MessageType::kDiscover);
  EXPECT_EQ(p.req.chaddr, kNoEndMac);
  EXPECT_EQ(option(p.req, opt::kClientId), client_id(kNoEndMac));
}

// ---------------------------------------------------------------------------------------------
// Golden replies: the Writer reproduces the generator's bytes from the same inputs

// Builds a reply in a 0xaa-filled buffer of capacity kMaxReplyLen and checks that nothing past
// the capacity was touched.
template <class Fill>
Bytes build(const Request& req, MessageType type, uint32_t yiaddr, Fill&& fill,
            size_t capacity = kMaxReplyLen) {
  std::vector<uint8_t> buf(capacity + 16, 0xaa);
  Writer w(std::span<uint8_t>(buf.data(), capacity), req, type, yiaddr);
  fill(w);
  const size_t n = w.finish();
  for (size_t i = capacity; i < buf.size(); ++i) EXPECT_EQ(buf[i], 0xaa) << "byte " << i;
  return Bytes(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
}

TEST(DhcpGoldenReply, OfferToDhclient) {
  Parsed p = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(p.ok);
  const Bytes out = build(p.req, MessageType::kOffer, ip4(192, 0, 2, 50), [](Writer& w) {
    EXPECT_TRUE(w.add_u32(opt::kServerId, kServerId));
    EXPECT_TRUE(w.add_u32(opt::kLeaseTime, 3600));
    EXPECT_TRUE(w.add_u32(opt::kT1, 1800));
    EXPECT_TRUE(w.add_u32(opt::kT2, 3150));
    EXPECT_TRUE(w.add_u32(opt::kSubnetMask, kMask));
    EXPECT_TRUE(w.add_u32(opt::kRouter, kRouter));
    EXPECT_TRUE(w.add(opt::kDns, cat({be32(ip4(192, 0, 2, 53)), be32(ip4(198, 51, 100, 53))})));
    EXPECT_TRUE(w.add(opt::kDomainName, str("example.test")));
    EXPECT_TRUE(w.echo(opt::kClientId));
  });
  EXPECT_EQ(out, fixture("offer_dhclient"));
}

TEST(DhcpGoldenReply, OfferToRelayEchoesOption82Last) {
  Parsed p = parse_copy(fixture("discover_relayed"));
  ASSERT_TRUE(p.ok);
  const Bytes out = build(p.req, MessageType::kOffer, ip4(192, 0, 2, 60), [](Writer& w) {
    EXPECT_TRUE(w.add_u32(opt::kServerId, kServerId));
    EXPECT_TRUE(w.add_u32(opt::kLeaseTime, 600));
    EXPECT_TRUE(w.add_u32(opt::kSubnetMask, kMask));
    EXPECT_TRUE(w.add_u32(opt::kRouter, kRouter));
    EXPECT_FALSE(w.echo(opt::kClientId));  // the relayed client sent none
    EXPECT_TRUE(w.echo(opt::kRelayAgent));
  });
  EXPECT_EQ(out, fixture("offer_relayed"));
}

TEST(DhcpGoldenReply, AckToInformCopiesCiaddr) {
  Parsed p = parse_copy(fixture("inform"));
  ASSERT_TRUE(p.ok);
  const Bytes out = build(p.req, MessageType::kAck, 0, [](Writer& w) {
    EXPECT_TRUE(w.add_u32(opt::kServerId, kServerId));
    EXPECT_TRUE(w.add_u32(opt::kSubnetMask, kMask));
    EXPECT_TRUE(w.add_u32(opt::kRouter, kRouter));
    EXPECT_TRUE(w.echo(opt::kClientId));
  });
  EXPECT_EQ(out, fixture("ack_inform"));
}

TEST(DhcpGoldenReply, NakHasNoYiaddr) {
  Parsed p = parse_copy(fixture("request_selecting"));
  ASSERT_TRUE(p.ok);
  const Bytes out = build(p.req, MessageType::kNak, ip4(192, 0, 2, 50), [](Writer& w) {
    EXPECT_TRUE(w.add_u32(opt::kServerId, kServerId));
    EXPECT_TRUE(w.add(opt::kMessage, str("address not available")));
    EXPECT_TRUE(w.echo(opt::kClientId));
  });
  EXPECT_EQ(out, fixture("nak_request"));
}

TEST(DhcpGoldenReply, RepliesParseBackAsTheirType) {
  const std::map<std::string, MessageType> types = {{"offer_dhclient", MessageType::kOffer},
                                                    {"offer_relayed", MessageType::kOffer},
                                                    {"ack_inform", MessageType::kAck},
                                                    {"nak_request", MessageType::kNak}};
  for (const auto& [n, type] : types) {
    SCOPED_TRACE(n);
    Bytes m = fixture(n);
    EXPECT_EQ(refusal(m), Malformed::kOp);  // BOOTREPLY is not served
    m[0] = 1;
    Parsed p = parse_copy(m);
    ASSERT_TRUE(p.ok) << name(p.why);
    EXPECT_EQ(p.req.type, type);
    expect_matches_reference(m);
  }
}

// ---------------------------------------------------------------------------------------------
// Refusals, one per reason, and their order

TEST(DhcpMalformed, Truncated) {
  EXPECT_EQ(refusal({}), Malformed::kTruncated);
  Bytes m = fixture("discover_dhclient");
  m.resize(239);
  EXPECT_EQ(refusal(m), Malformed::kTruncated);
  m[0] = 2;  // length is checked first
  EXPECT_EQ(refusal(m), Malformed::kTruncated);
}

TEST(DhcpMalformed, Op) {
  for (uint8_t op : {0, 2, 3, 255}) {
    Bytes m = fixture("discover_dhclient");
    m[0] = op;
    EXPECT_EQ(refusal(m), Malformed::kOp) << int{op};
  }
}

TEST(DhcpMalformed, Htype) {
  const std::vector<std::pair<uint8_t, uint8_t>> bad = {{6, 6}, {0, 6},  {1, 0},  {1, 5},
                                                        {1, 7}, {1, 16}, {1, 17}, {1, 255}};
  for (auto [htype, hlen] : bad) {
    Bytes m = fixture("discover_dhclient");
    m[1] = htype;
    m[2] = hlen;
    EXPECT_EQ(refusal(m), Malformed::kHtype) << int{htype} << "/" << int{hlen};
    m[0] = 2;  // op is checked before htype
    EXPECT_EQ(refusal(m), Malformed::kOp);
  }
}

TEST(DhcpMalformed, Magic) {
  for (size_t i = 236; i < 240; ++i) {
    Bytes m = fixture("discover_dhclient");
    m[i] ^= 0x01;
    EXPECT_EQ(refusal(m), Malformed::kMagic) << i;
    m[2] = 16;  // htype/hlen before magic
    EXPECT_EQ(refusal(m), Malformed::kHtype);
  }
  // The magic cookie alone, no options: a BOOTP message, not DHCP.
  EXPECT_EQ(refusal(make_msg({})), Malformed::kNoMessageType);
}

TEST(DhcpMalformed, OptionOverrun) {
  // Value runs past the end of the buffer.
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {12, 10, 'a', 'b'}}))), Malformed::kOptionOverrun);
  // A code byte with no length byte.
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {12}}))), Malformed::kOptionOverrun);
  // One byte short of fitting exactly.
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {12, 3, 'a', 'b'}}))), Malformed::kOptionOverrun);
  // Inside file: the option may not continue into the magic cookie.
  {
    Bytes file(128, 0);
    file[120] = 12;
    file[121] = 7;  // 122 + 7 > 128
    EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {52, 1, 1, 255}}), file)),
              Malformed::kOptionOverrun);
  }
  // Inside sname: may not continue into file.
  {
    Bytes sname(64, 0);
    sname[62] = 12;
    sname[63] = 1;
    EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {52, 1, 2, 255}}), {}, sname)),
              Malformed::kOptionOverrun);
  }
  // Longer than any UDP payload: 16-bit offsets could not index it.
  Bytes huge = make_msg(cat({kDiscover53, {255}}));
  huge.resize(65536, 0);
  EXPECT_EQ(refusal(huge), Malformed::kOptionOverrun);
  huge.resize(65535);
  EXPECT_TRUE(parse_copy(huge).ok);
  // An overrun is found before the missing message type.
  EXPECT_EQ(refusal(make_msg({12, 10, 'a'})), Malformed::kOptionOverrun);
}

TEST(DhcpMalformed, Overload) {
  // Values other than 1..3, or a length other than 1.
  for (const Bytes& o :
       {Bytes{52, 1, 0}, Bytes{52, 1, 4}, Bytes{52, 1, 255}, Bytes{52, 0}, Bytes{52, 2, 1, 0}}) {
    EXPECT_EQ(refusal(make_msg(cat({kDiscover53, o, {255}}))), Malformed::kOverload);
  }
  // Twice in the options field, even with the same value.
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {52, 1, 1, 52, 1, 1, 255}}))), Malformed::kOverload);
  // Inside file or sname: could make the walk loop.
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {52, 1, 1, 255}}), {52, 1, 2, 255})),
            Malformed::kOverload);
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {52, 1, 3, 255}}), {255}, {52, 1, 1, 255})),
            Malformed::kOverload);
  EXPECT_EQ(refusal(make_msg(cat({kDiscover53, {52, 1, 2, 255}}), {}, {52, 1, 2, 255})),
            Malformed::kOverload);
  // Options after END in the main area are not read, so a 52 there is ignored (and so is file).
  Parsed p = parse_copy(make_msg(cat({kDiscover53, {255, 52, 1, 9}}), {52, 1, 2, 255}));
  ASSERT_TRUE(p.ok) << name(p.why);
  EXPECT_FALSE(p.req.has(opt::kOverload));
  // file/sname are only read when 52 says so: garbage there is otherwise someone's boot file.
  Bytes junk(128, 0xee);
  EXPECT_TRUE(parse_copy(make_msg(cat({kDiscover53, {255}}), junk, Bytes(64, 0xee))).ok);
  EXPECT_TRUE(parse_copy(make_msg(cat({kDiscover53, {52, 1, 2, 255}}), junk)).ok);
}

TEST(DhcpMalformed, NoMessageType) {
  EXPECT_EQ(refusal(make_msg({12, 1, 'a', 255})), Malformed::kNoMessageType);
  for (uint8_t t : {0, 9, 13, 255}) {
    EXPECT_EQ(refusal(make_msg({53, 1, t, 255})), Malformed::kNoMessageType) << int{t};
  }
  for (uint8_t t = 1; t <= 8; ++t) {
    Parsed p = parse_copy(make_msg({53, 1, t, 255}));
    ASSERT_TRUE(p.ok) << int{t};
    EXPECT_EQ(static_cast<uint8_t>(p.req.type), t);
  }
  // 53 in sname but no overload: not an option.
  EXPECT_EQ(refusal(make_msg({255}, {}, {53, 1, 1, 255})), Malformed::kNoMessageType);
  // ... and with overload it is.
  EXPECT_TRUE(parse_copy(make_msg({52, 1, 2, 255}, {}, {53, 1, 1, 255})).ok);
}

TEST(DhcpMalformed, BadOption) {
  const std::vector<Bytes> bad = {
      {53, 2, 1, 1},         // 53 ≠ 1 byte
      {53, 0},               // 53 empty
      {53, 1, 1, 53, 1, 1},  // 53 twice: concatenated it is 2 bytes (RFC 3396)
      cat({kDiscover53, {50, 3, 1, 2, 3}}),
      cat({kDiscover53, {50, 0}}),
      cat({kDiscover53, {54, 5, 1, 2, 3, 4, 5}}),
      cat({kDiscover53, {54, 4, 1, 2, 3, 4, 54, 4, 1, 2, 3, 4}}),
      cat({kDiscover53, {51, 2, 0, 1}}),
      cat({kDiscover53, {57, 1, 5}}),
      cat({kDiscover53, {57, 3, 5, 0, 0}}),
      cat({kDiscover53, {57, 2, 0x02, 0x3f}}),  // 575 < 576
      cat({kDiscover53, {57, 2, 0, 0}}),
  };
  for (const Bytes& o : bad) {
    Bytes opts = o;
    opts.push_back(255);
    EXPECT_EQ(refusal(make_msg(opts)), Malformed::kBadOption) << ::testing::PrintToString(o);
  }
  // The smallest legal 57, and fixed-size options split across instances (RFC 3396).
  Parsed p =
      parse_copy(make_msg(cat({kDiscover53, {57, 2, 0x02, 0x40, 50, 2,  192, 0, 50, 2, 2,  7,
                                             54, 1, 192,  54,   0,  54, 3,   0, 2,  2, 255}})));
  ASSERT_TRUE(p.ok) << name(p.why);
  EXPECT_EQ(p.req.max_message_size(), 576);
  EXPECT_EQ(p.req.option_ip(opt::kRequestedIp), ip4(192, 0, 2, 7));
  EXPECT_EQ(p.req.option_ip(opt::kServerId), kServerId);
  EXPECT_EQ(p.req.options[54].count, 3);
  // Message type split as an empty instance followed by the byte.
  Parsed q = parse_copy(make_msg({53, 0, 53, 1, 3, 255}));
  ASSERT_TRUE(q.ok) << name(q.why);
  EXPECT_EQ(q.req.type, MessageType::kRequest);
}

TEST(DhcpMalformed, NoEndIsNeverReturned) {
  // Main area: last option ends at the end of the buffer; or padding runs to the end.
  EXPECT_TRUE(parse_copy(make_msg(kDiscover53)).ok);
  EXPECT_TRUE(parse_copy(make_msg(cat({kDiscover53, Bytes(60, 0)}))).ok);
  // file: an option filling the area exactly, no room for END.
  Bytes file(128, 0);
  file[0] = 12;
  file[1] = 126;
  Parsed p = parse_copy(make_msg(cat({kDiscover53, {52, 1, 3, 255}}), file, {12, 2, 'x', 'y'}));
  ASSERT_TRUE(p.ok) << name(p.why);
  EXPECT_EQ(p.req.options[12].len, 128);
  EXPECT_EQ(p.req.options[12].count, 2);
  // The counter label set still has it.
  EXPECT_STREQ(kMalformedNames[static_cast<size_t>(Malformed::kNoEnd)], "no_end");
}

TEST(DhcpMalformed, NamesCoverEveryReason) {
  EXPECT_EQ(kMalformedNames.size(), static_cast<size_t>(Malformed::kCount));
  for (const char* n : kMalformedNames) EXPECT_NE(std::string(n), "");
}

TEST(DhcpMalformed, ManyInstancesSaturateTheCount) {
  Bytes opts = kDiscover53;
  for (int i = 0; i < 300; ++i) opts.insert(opts.end(), {12, 1, static_cast<uint8_t>(i)});
  Parsed p = parse_copy(make_msg(opts));
  ASSERT_TRUE(p.ok) << name(p.why);
  EXPECT_EQ(p.req.options[12].count, 255);
  EXPECT_TRUE(p.req.has(12));
  EXPECT_EQ(p.req.options[12].len, 300);
  EXPECT_EQ(option(p.req, 12).size(), 300u);
  expect_matches_reference(make_msg(opts));
}

// Every prefix of every golden: never crashes, never reads past the end (ASan), and agrees with
// the reference parser on verdict and reason.
TEST(DhcpTruncation, EveryPrefixOfEveryGolden) {
  std::vector<Bytes> all;
  for (const auto& n : kRequestNames) all.push_back(fixture(n));
  for (const auto& n : kReplyNames) {
    all.push_back(fixture(n));
    all.back()[0] = 1;
  }
  size_t accepted = 0;
  for (const Bytes& g : all) {
    for (size_t n = 0; n <= g.size(); ++n) {
      SCOPED_TRACE(n);
      const Bytes prefix(g.begin(), g.begin() + static_cast<ptrdiff_t>(n));
      expect_matches_reference(prefix);
      if (n < kMinLen) {
        EXPECT_EQ(refusal(prefix), Malformed::kTruncated);
      }
      accepted += parse_copy(prefix).ok ? 1 : 0;
    }
  }
  EXPECT_GT(accepted, 0u);
}

// ---------------------------------------------------------------------------------------------
// Fuzz: random mutations of the goldens, fixed seed.

TEST(DhcpFuzz, MutationsNeverCrashAndMatchTheReference) {
  std::vector<Bytes> corpus;
  for (const auto& n : kRequestNames) corpus.push_back(fixture(n));
  for (const auto& n : kReplyNames) {
    corpus.push_back(fixture(n));
    corpus.back()[0] = 1;
  }
  std::mt19937 rng(0x7a4d3e01);
  auto pick = [&rng](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const uint8_t interesting[] = {0, 1, 2, 3, 4, 6, 50, 51, 52, 53, 54, 57, 61, 82, 254, 255};
  std::array<size_t, static_cast<size_t>(Malformed::kCount) + 1> verdicts{};
  constexpr int kIterations = 200'000;
  for (int iter = 0; iter < kIterations; ++iter) {
    Bytes m = corpus[pick(corpus.size())];
    const int edits = 1 + static_cast<int>(pick(4));
    for (int e = 0; e < edits && !m.empty(); ++e) {
      // Most edits land on the options, file and sname: the fixed fields are plain loads.
      const size_t at = pick(3) == 0 ? pick(m.size()) : std::min(m.size() - 1, 44 + pick(m.size()));
      // Structural edits stay behind the cookie most of the time, or they only test kMagic.
      const size_t deep = m.size() > kOptionsAt && pick(4) != 0 ? kOptionsAt : 0;
      switch (pick(9)) {
        case 0:
          m[at] ^= static_cast<uint8_t>(1u << pick(8));
          break;
        case 1:
          m[at] = static_cast<uint8_t>(rng());
          break;
        case 2:
          m[at] = interesting[pick(sizeof interesting)];
          break;
        case 3:
          m.resize(deep + pick(m.size() - deep + 1));
          break;
        case 4:
          m.insert(m.begin() + static_cast<ptrdiff_t>(std::max(at, deep)),
                   static_cast<uint8_t>(rng()));
          break;
        case 5: {
          const size_t from = std::min(std::max(at, deep), m.size() - 1);
          const size_t n = std::min(m.size() - from, 1 + pick(8));
          m.erase(m.begin() + static_cast<ptrdiff_t>(from),
                  m.begin() + static_cast<ptrdiff_t>(from + n));
          break;
        }
        case 6: {  // an overload option somewhere in the options field
          const size_t o = kOptionsAt + pick(m.size() > kOptionsAt ? m.size() - kOptionsAt : 1);
          const uint8_t v[3] = {52, static_cast<uint8_t>(pick(3)), static_cast<uint8_t>(pick(5))};
          for (size_t i = 0; i < 3 && o + i < m.size(); ++i) m[o + i] = v[i];
          break;
        }
        case 7: {  // an option header inside sname/file
          const size_t o = kSnameAt + pick(192);
          if (o + 1 < m.size()) {
            m[o] = interesting[pick(sizeof interesting)];
            m[o + 1] = static_cast<uint8_t>(pick(3) == 0 ? rng() : pick(8));
          }
          break;
        }
        default:
          for (size_t i = 1 + pick(16); i > 0; --i) m.push_back(static_cast<uint8_t>(rng()));
          break;
      }
    }
    expect_matches_reference(m);
    if (::testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "iteration " << iter << " input " << ::testing::PrintToString(m);
      return;
    }
    Parsed p = parse_copy(m);
    ++verdicts[p.ok ? verdicts.size() - 1 : static_cast<size_t>(p.why)];
  }
  // The mutations must exercise both sides: plenty accepted, and most refusal reasons seen.
  EXPECT_GT(verdicts.back(), size_t{kIterations / 20});
  for (Malformed why : {Malformed::kTruncated, Malformed::kOp, Malformed::kHtype, Malformed::kMagic,
                        Malformed::kOptionOverrun, Malformed::kOverload, Malformed::kNoMessageType,
                        Malformed::kBadOption}) {
    EXPECT_GT(verdicts[static_cast<size_t>(why)], 0u) << name(why);
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

Parsed parse_reply(const Bytes& reply) {
  Bytes m = reply;
  if (!m.empty()) m[0] = 1;  // parse() serves BOOTREQUESTs only
  return parse_copy(m);
}

TEST(DhcpWriter, RoundTripKeepsEveryOption) {
  Parsed req = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(req.ok);
  Bytes big(600);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 13);
  const std::map<uint8_t, Bytes> opts = {{opt::kSubnetMask, be32(kMask)},
                                         {opt::kRouter, be32(kRouter)},
                                         {opt::kDomainName, str("lab.test")},
                                         {43, big},
                                         {80, {}},
                                         {opt::kMtu, {0x05, 0xdc}},
                                         {opt::kT1, be32(100)}};
  const Bytes out = build(req.req, MessageType::kAck, ip4(192, 0, 2, 9), [&](Writer& w) {
    w.limit(kMaxReplyLen);
    for (const auto& [code, v] : opts) EXPECT_TRUE(w.add(code, v)) << int{code};
    EXPECT_TRUE(w.add_u8(opt::kBroadcast + 100, 7));
    EXPECT_TRUE(w.add_u16(opt::kMaxSize, 1400));
    EXPECT_TRUE(w.echo(opt::kClientId));
  });
  Parsed back = parse_reply(out);
  ASSERT_TRUE(back.ok) << name(back.why);
  EXPECT_EQ(back.req.type, MessageType::kAck);
  EXPECT_EQ(back.req.xid, req.req.xid);
  EXPECT_EQ(back.req.yiaddr, ip4(192, 0, 2, 9));
  EXPECT_EQ(back.req.chaddr, kDhclientMac);
  EXPECT_EQ(back.req.hops, 0);
  EXPECT_EQ(back.req.secs, 0);
  for (const auto& [code, v] : opts) EXPECT_EQ(option(back.req, code), v) << int{code};
  EXPECT_EQ(back.req.options[43].count, 3);  // 255 + 255 + 90
  EXPECT_EQ(option(back.req, opt::kBroadcast + 100), Bytes{7});
  EXPECT_EQ(back.req.max_message_size(), 1400);
  EXPECT_EQ(option(back.req, opt::kClientId), client_id(kDhclientMac));
  EXPECT_EQ(present(back.req),
            (std::vector<uint8_t>{1, 3, 15, 26, 43, 53, 57, 58, 61, 80, opt::kBroadcast + 100}));
  expect_matches_reference(Bytes(back.buf));
}

TEST(DhcpWriter, FixedFieldsFollowRfc2131Table3) {
  Parsed inform = parse_copy(fixture("inform"));  // ciaddr 192.0.2.77
  ASSERT_TRUE(inform.ok);
  Bytes m = fixture("inform");
  m[3] = 3;     // hops
  m[9] = 0x22;  // secs
  m[20] = 10;   // siaddr
  Parsed noisy = parse_copy(m);
  ASSERT_TRUE(noisy.ok);
  const uint32_t y = ip4(192, 0, 2, 50);
  struct Case {
    MessageType type;
    uint32_t ciaddr, yiaddr;
  };
  for (const Case& c : {Case{MessageType::kOffer, 0, y}, Case{MessageType::kAck, 0xc000024d, y},
                        Case{MessageType::kNak, 0, 0}}) {
    const Bytes out = build(noisy.req, c.type, y, [](Writer&) {});
    ASSERT_EQ(out.size(), kMinReplyLen);
    Parsed back = parse_reply(out);
    ASSERT_TRUE(back.ok) << name(back.why);
    EXPECT_EQ(out[0], 2);
    EXPECT_EQ(back.req.hops, 0);
    EXPECT_EQ(back.req.secs, 0);
    EXPECT_EQ(back.req.siaddr, 0u);
    EXPECT_EQ(back.req.ciaddr, c.ciaddr);
    EXPECT_EQ(back.req.yiaddr, c.yiaddr);
    EXPECT_EQ(back.req.xid, 0xabcdef01u);
    EXPECT_EQ(back.req.type, c.type);
    EXPECT_EQ(back.req.options[53].first, 242);  // option 53 comes first
    // chaddr is the MAC followed by ten zeros; sname and file are zero.
    EXPECT_EQ(Bytes(out.begin() + 28, out.begin() + 44),
              cat({Bytes(kInformMac.begin(), kInformMac.end()), Bytes(10, 0)}));
    EXPECT_EQ(Bytes(out.begin() + 44, out.begin() + 236), Bytes(192, 0));
  }
  // flags and giaddr are copied.
  Parsed relayed = parse_copy(fixture("discover_relayed"));
  ASSERT_TRUE(relayed.ok);
  Parsed back = parse_reply(build(relayed.req, MessageType::kOffer, y, [](Writer&) {}));
  ASSERT_TRUE(back.ok);
  EXPECT_EQ(back.req.flags, 0x8000);
  EXPECT_EQ(back.req.giaddr, ip4(192, 0, 2, 10));
}

TEST(DhcpWriter, SplitsLongValuesIntoConsecutiveInstances) {
  Parsed req = parse_copy(fixture("discover_long_option"));  // 57 = 1500
  ASSERT_TRUE(req.ok);
  for (size_t n : {0u, 1u, 254u, 255u, 256u, 509u, 510u, 511u, 765u}) {
    SCOPED_TRACE(n);
    Bytes v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i + 1);
    const Bytes out =
        build(req.req, MessageType::kOffer, 0, [&](Writer& w) { EXPECT_TRUE(w.add(43, v)); });
    // Expected wire image: 255-byte chunks, each with its header; empty is one instance.
    Bytes want;
    size_t i = 0;
    do {
      const size_t k = std::min<size_t>(255, n - i);
      want.push_back(43);
      want.push_back(static_cast<uint8_t>(k));
      want.insert(want.end(), v.begin() + static_cast<ptrdiff_t>(i),
                  v.begin() + static_cast<ptrdiff_t>(i + k));
      i += k;
    } while (i < n);
    want.push_back(255);
    ASSERT_GE(out.size(), 243 + want.size());
    EXPECT_EQ(Bytes(out.begin() + 243, out.begin() + 243 + static_cast<ptrdiff_t>(want.size())),
              want);
    EXPECT_EQ(out.size(), std::max<size_t>(kMinReplyLen, 243 + want.size()));
    Parsed back = parse_reply(out);
    ASSERT_TRUE(back.ok);
    EXPECT_EQ(option(back.req, 43), v);
  }
}

TEST(DhcpWriter, DefaultLimitFollowsOption57) {
  struct Case {
    std::optional<uint16_t> mms;
    size_t capacity;
    size_t limit;
  };
  const std::vector<Case> cases = {
      {std::nullopt, kMaxReplyLen, 548},  // 576 − IP − UDP
      {576, kMaxReplyLen, 548},
      {1000, kMaxReplyLen, 972},
      {1500, kMaxReplyLen, 1472},
      {9000, 9000, kMaxReplyLen},  // never beyond kMaxReplyLen by default
      {1500, 600, 600},            // capacity
      {1500, 300, 300},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.limit);
    Bytes opts = kDiscover53;
    if (c.mms)
      opts.insert(opts.end(),
                  {57, 2, static_cast<uint8_t>(*c.mms >> 8), static_cast<uint8_t>(*c.mms)});
    opts.push_back(255);
    Parsed req = parse_copy(make_msg(opts));
    ASSERT_TRUE(req.ok) << name(req.why);
    // Fill to the byte: after 53 (ends at 243) the limit leaves limit − 243 − 1 (END) bytes.
    const size_t room = c.limit - 243 - 1;
    Bytes value(room - 2 * ((room + 256) / 257));  // exactly `room` bytes on the wire
    ASSERT_EQ(value.size() + 2 * ((value.size() + 254) / 255), room);
    Bytes one_more(value.size() + 1);
    const Bytes full = build(
        req.req, MessageType::kOffer, 0,
        [&](Writer& w) {
          EXPECT_FALSE(w.add(43, one_more));
          EXPECT_TRUE(w.add(43, value));
          EXPECT_FALSE(w.add(80, {}));  // not even an empty option: END needs the last byte
        },
        c.capacity);
    EXPECT_EQ(full.size(), c.limit);
    EXPECT_EQ(full.back(), 255);
    Parsed back = parse_reply(full);
    ASSERT_TRUE(back.ok) << name(back.why);
    EXPECT_EQ(option(back.req, 43).size(), value.size());
  }
}

TEST(DhcpWriter, RefusedOptionLeavesTheReplyIntact) {
  Parsed req = parse_copy(fixture("discover_relayed"));  // no 57: 548 bytes
  ASSERT_TRUE(req.ok);
  std::vector<uint8_t> buf(kMaxReplyLen, 0xaa);
  Writer w(buf, req.req, MessageType::kOffer, ip4(192, 0, 2, 60));
  EXPECT_TRUE(w.add_u32(opt::kServerId, kServerId));
  EXPECT_TRUE(w.add(43, Bytes(200, 0x11)));
  const Bytes before = buf;
  EXPECT_FALSE(w.add(44, Bytes(200, 0x22)));  // 243 + 6 + 202 + 202 + 1 > 548
  EXPECT_EQ(buf, before);                     // nothing written
  EXPECT_TRUE(w.echo(opt::kRelayAgent));      // smaller ones still fit
  const size_t n = w.finish();
  EXPECT_LE(n, 548u);
  Parsed back = parse_reply(Bytes(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n)));
  ASSERT_TRUE(back.ok) << name(back.why);
  EXPECT_FALSE(back.req.has(44));
  EXPECT_EQ(option(back.req, 43), Bytes(200, 0x11));
  EXPECT_EQ(option(back.req, opt::kRelayAgent), option(req.req, opt::kRelayAgent));
}

TEST(DhcpWriter, ExplicitLimitIsClamped) {
  Parsed req = parse_copy(fixture("discover_dhclient"));  // 57 = 1500
  ASSERT_TRUE(req.ok);
  // Lowered below the BOOTP minimum: clamped to 300, so padding still fits.
  Bytes out = build(req.req, MessageType::kOffer, 0, [](Writer& w) {
    w.limit(10);
    EXPECT_TRUE(w.add(43, Bytes(300 - 243 - 1 - 2, 1)));
    EXPECT_FALSE(w.add(80, {}));
  });
  EXPECT_EQ(out.size(), 300u);
  // Raised above the default: up to the capacity.
  out = build(
      req.req, MessageType::kOffer, 0,
      [](Writer& w) {
        w.limit(100000);
        EXPECT_TRUE(w.add(43, Bytes(1742, 1)));  // 7 instances: 1756 bytes, END at 1999
      },
      2000);
  EXPECT_EQ(out.size(), 2000u);
  // Never below what is already written.
  out = build(req.req, MessageType::kOffer, 0, [](Writer& w) {
    EXPECT_TRUE(w.add(43, Bytes(400, 1)));
    w.limit(300);
    EXPECT_FALSE(w.add(80, {}));
  });
  EXPECT_EQ(out.size(), 243u + 404 + 1);
  EXPECT_TRUE(parse_reply(out).ok);
}

TEST(DhcpWriter, EchoIsByteExact) {
  // 61 (RFC 6842) and 82 (RFC 3046): the reply carries the same option bytes.
  Parsed dh = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(dh.ok);
  Bytes out = build(dh.req, MessageType::kOffer, 0, [](Writer& w) { EXPECT_TRUE(w.echo(61)); });
  const Bytes want61 = cat({{61, 7}, client_id(kDhclientMac)});
  EXPECT_EQ(Bytes(out.begin() + 243, out.begin() + 252), want61);
  Bytes g = fixture("discover_dhclient");
  EXPECT_NE(std::search(g.begin(), g.end(), want61.begin(), want61.end()), g.end());

  Parsed rel = parse_copy(fixture("discover_relayed"));
  ASSERT_TRUE(rel.ok);
  out = build(rel.req, MessageType::kOffer, 0, [](Writer& w) { EXPECT_TRUE(w.echo(82)); });
  g = fixture("discover_relayed");
  const size_t at82 = rel.req.options[82].first - 2u;
  const Bytes raw82(
      g.begin() + static_cast<ptrdiff_t>(at82),
      g.begin() + static_cast<ptrdiff_t>(rel.req.options[82].first + rel.req.options[82].len));
  EXPECT_EQ(Bytes(out.begin() + 243, out.begin() + 243 + static_cast<ptrdiff_t>(raw82.size())),
            raw82);
  EXPECT_EQ(out[243 + raw82.size()], 255);  // 82 is the last option (RFC 3046 §2.2)
}

TEST(DhcpWriter, EchoOfASplitOptionKeepsItsValue) {
  Parsed req = parse_copy(fixture("discover_long_option"));
  ASSERT_TRUE(req.ok);
  const Bytes out = build(req.req, MessageType::kOffer, 0, [](Writer& w) {
    EXPECT_TRUE(w.echo(opt::kVendorClass));
    EXPECT_TRUE(w.echo(opt::kClientId));
  });
  const Bytes v = long_value();
  const Bytes want = cat({{60, 255},
                          Bytes(v.begin(), v.begin() + 255),
                          {60, 45},
                          Bytes(v.begin() + 255, v.end()),
                          {61, 7},
                          client_id(kLongMac),
                          {255}});
  EXPECT_EQ(Bytes(out.begin() + 243, out.begin() + 243 + static_cast<ptrdiff_t>(want.size())),
            want);
  // Split across the options field and file (discover_overload's 55).
  Parsed ov = parse_copy(fixture("discover_overload"));
  ASSERT_TRUE(ov.ok);
  const Bytes o = build(ov.req, MessageType::kOffer, 0, [](Writer& w) { EXPECT_TRUE(w.echo(55)); });
  EXPECT_EQ(Bytes(o.begin() + 243, o.begin() + 256),
            (Bytes{55, 10, 1, 3, 6, 15, 28, 42, 51, 58, 59, 121, 255}));
}

TEST(DhcpWriter, EchoRefusals) {
  Parsed req = parse_copy(fixture("discover_long_option"));
  ASSERT_TRUE(req.ok);
  std::vector<uint8_t> buf(kMaxReplyLen, 0xaa);
  Writer w(buf, req.req, MessageType::kOffer, 0);
  w.limit(548);
  EXPECT_FALSE(w.echo(opt::kRelayAgent));   // absent
  EXPECT_FALSE(w.echo(opt::kMessageType));  // the writer owns 53
  EXPECT_TRUE(w.add(43, Bytes(100, 1)));
  const Bytes before = buf;
  EXPECT_FALSE(w.echo(opt::kVendorClass));  // 304 bytes do not fit in what is left
  EXPECT_EQ(buf, before);
  EXPECT_TRUE(w.echo(opt::kClientId));
  EXPECT_TRUE(parse_reply(Bytes(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(w.finish()))).ok);
}

TEST(DhcpWriter, RefusesCodesItOwns) {
  Parsed req = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(req.ok);
  const Bytes out = build(req.req, MessageType::kOffer, 0, [](Writer& w) {
    for (uint8_t c : {opt::kPad, opt::kEnd, opt::kOverload, opt::kMessageType}) {
      EXPECT_FALSE(w.add_u8(c, 1)) << int{c};
    }
  });
  EXPECT_EQ(out, build(req.req, MessageType::kOffer, 0, [](Writer&) {}));
}

TEST(DhcpWriter, PadsToThreeHundredWithZeros) {
  Parsed req = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(req.ok);
  std::vector<uint8_t> buf(kMaxReplyLen, 0xaa);
  Writer w(buf, req.req, MessageType::kOffer, ip4(192, 0, 2, 50));
  EXPECT_EQ(w.finish(), kMinReplyLen);
  EXPECT_EQ(Bytes(buf.begin() + 240, buf.begin() + 244), (Bytes{53, 1, 2, 255}));
  for (size_t i = 244; i < kMinReplyLen; ++i) ASSERT_EQ(buf[i], 0) << i;
  EXPECT_EQ(buf[kMinReplyLen], 0xaa);  // nothing written past the padding
  // finish() is idempotent and closes the writer.
  EXPECT_EQ(w.finish(), kMinReplyLen);
  EXPECT_FALSE(w.add_u8(80, 1));
  w.limit(kMaxReplyLen);
  EXPECT_FALSE(w.add_u8(80, 1));
  EXPECT_EQ(buf[244], 0);
  // A reply longer than 300 bytes gets no padding.
  const Bytes out = build(req.req, MessageType::kOffer, 0,
                          [](Writer& x) { EXPECT_TRUE(x.add(43, Bytes(100, 9))); });
  EXPECT_EQ(out.size(), 243u + 102 + 1);
}

TEST(DhcpWriter, TooSmallABufferWritesNothing) {
  Parsed req = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(req.ok);
  for (size_t cap : {size_t{0}, size_t{100}, size_t{243}, kMinReplyLen - 1}) {
    std::vector<uint8_t> buf(kMinReplyLen, 0xaa);
    Writer w(std::span<uint8_t>(buf.data(), cap), req.req, MessageType::kOffer, 0);
    w.limit(kMaxReplyLen);
    EXPECT_FALSE(w.add_u8(80, 1));
    EXPECT_FALSE(w.echo(61));
    EXPECT_EQ(w.finish(), 0u);
    EXPECT_EQ(buf, Bytes(kMinReplyLen, 0xaa)) << cap;
  }
}

// A Request built by hand (not by parse) whose index lies about its bytes: accessors and echo
// stay inside the buffer and report nothing.
TEST(DhcpWriter, InconsistentRequestIsHandledSafely) {
  Bytes m = make_msg({53, 1, 1, 255});
  Request r;
  r.data = m.data();
  r.len = m.size();
  r.options[61] = {250, 20, 1};  // runs past the end
  r.options[12] = {242, 3, 2};   // claims two instances, the bytes hold none
  Bytes out(64);
  EXPECT_EQ(r.copy_option(61, out), 0u);
  EXPECT_EQ(r.copy_option(12, out), 0u);
  std::vector<uint8_t> buf(kMaxReplyLen);
  Writer w(buf, r, MessageType::kOffer, 0);
  EXPECT_FALSE(w.echo(61));
  EXPECT_FALSE(w.echo(12));
  EXPECT_EQ(w.finish(), kMinReplyLen);
  Request empty;
  EXPECT_EQ(empty.copy_option(53, out), 0u);
  EXPECT_EQ(empty.option_ip(50), 0u);
  EXPECT_EQ(empty.max_message_size(), 576);
}

}  // namespace
}  // namespace dhcp

namespace dhcp {
namespace {

// A Request is reused per worker: a parse() must leave no trace of the previous message's
// options, whether that parse succeeded or was refused half-way.
TEST(DhcpParse, ReusedRequestForgetsThePreviousOptions) {
  const Bytes rich = make_msg(cat({tlv(53, {1}),
                                   tlv(61, client_id({2, 0, 0, 0, 0, 1})),
                                   tlv(60, str("PXEClient")),
                                   tlv(50, be32(0xc0000296)),
                                   tlv(55, {1, 3, 6}),
                                   {255}}));
  const Bytes plain = make_msg(cat({tlv(53, {3}), {255}}));
  const Bytes torn = make_msg(cat({tlv(53, {1}), tlv(43, str("abc")), {12, 200}}));  // overrun
  Request r;
  Malformed why{};
  ASSERT_TRUE(parse(rich, r, why));
  EXPECT_EQ(r.n_present, 5u);
  ASSERT_TRUE(parse(plain, r, why));
  EXPECT_EQ(present(r), (std::vector<uint8_t>{53}));
  EXPECT_EQ(r.n_present, 1u);
  EXPECT_FALSE(parse(torn, r, why));
  ASSERT_TRUE(parse(plain, r, why));
  EXPECT_EQ(present(r), (std::vector<uint8_t>{53}));
  // Against a fresh Request, field by field.
  Request fresh;
  ASSERT_TRUE(parse(plain, fresh, why));
  for (int c = 0; c < 256; ++c) {
    EXPECT_EQ(r.options[c].count, fresh.options[c].count) << c;
    EXPECT_EQ(r.options[c].len, fresh.options[c].len) << c;
  }
}

// ---------------------------------------------------------------------------------------------
// peek() and Request::value()

TEST(DhcpPeek, ClientIdentityAndNamedAddress) {
  const Bytes with_id = make_msg(cat(
      {kDiscover53, tlv(61, client_id(kDhclientMac)), tlv(50, be32(ip4(192, 0, 2, 150))), {255}}));
  Peek p;
  ASSERT_TRUE(peek(with_id, p));
  EXPECT_EQ(Bytes(p.client_id.begin(), p.client_id.end()), client_id(kDhclientMac));
  EXPECT_EQ(p.client_id.data(), with_id.data() + kOptionsAt + 3 + 2);  // a view, not a copy
  EXPECT_EQ(p.chaddr, with_id.data() + 28);
  EXPECT_EQ(p.addr, ip4(192, 0, 2, 150));

  // ciaddr wins over option 50; without 61 the identity is chaddr's.
  Bytes renew = make_msg(cat({tlv(53, {3}), tlv(50, be32(ip4(192, 0, 2, 9))), {255}}));
  const Bytes ci = be32(ip4(192, 0, 2, 151));
  std::copy(ci.begin(), ci.end(), renew.begin() + 12);
  ASSERT_TRUE(peek(renew, p));
  EXPECT_TRUE(p.client_id.empty());
  EXPECT_EQ(p.addr, ip4(192, 0, 2, 151));

  // An option 50 of the wrong length names nothing; a walk that runs into an overrun keeps what
  // it found before it.
  const Bytes odd = make_msg(cat({kDiscover53, tlv(61, {7, 7}), tlv(50, {1, 2, 3}), {43, 200}}));
  ASSERT_TRUE(peek(odd, p));
  EXPECT_EQ(Bytes(p.client_id.begin(), p.client_id.end()), (Bytes{7, 7}));
  EXPECT_EQ(p.addr, 0u);

  // Too short for the fixed part and cookie, or a wrong cookie: nothing.
  EXPECT_FALSE(peek(Bytes(with_id.begin(), with_id.begin() + 239), p));
  Bytes bad = with_id;
  bad[236] ^= 1;
  EXPECT_FALSE(peek(bad, p));
}

TEST(DhcpPeek, AgreesWithParseOnEveryPrefixOfEveryGolden) {
  for (const auto& name : kRequestNames) {
    const Bytes full = fixture(name);
    for (size_t n = 0; n <= full.size(); ++n) {
      SCOPED_TRACE(name + " prefix " + std::to_string(n));
      const Bytes m(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
      Peek p;
      const bool seen = peek(m, p);
      EXPECT_EQ(seen, n >= kOptionsAt);  // the goldens' cookies are right
      Parsed q = parse_copy(m);
      if (!seen || !q.ok) continue;
      // A single-instance 61 in the options field is what peek() reports; parse() agrees.
      const Request::Span& s = q.req.options[opt::kClientId];
      if (s.count == 1 && s.first >= kOptionsAt) {
        EXPECT_EQ(Bytes(p.client_id.begin(), p.client_id.end()), option(q.req, opt::kClientId));
      }
      const uint32_t named = q.req.ciaddr != 0 ? q.req.ciaddr : q.req.option_ip(50);
      const Request::Span& r = q.req.options[50];
      if (r.count == 0 || (r.count == 1 && r.first >= kOptionsAt)) {
        EXPECT_EQ(p.addr, named);
      }
    }
  }
}

TEST(DhcpRequestValue, InPlaceForOneInstanceConcatenatedForSplits) {
  Parsed one = parse_copy(fixture("discover_dhclient"));
  ASSERT_TRUE(one.ok);
  std::array<uint8_t, 512> scratch{};
  const std::span<const uint8_t> v = one.req.value(opt::kClientId, scratch);
  EXPECT_EQ(Bytes(v.begin(), v.end()), client_id(kDhclientMac));
  EXPECT_GE(v.data(), one.req.data);  // in the request's bytes, not in scratch
  EXPECT_LT(v.data(), one.req.data + one.req.len);
  EXPECT_TRUE(one.req.value(opt::kVendorClass, scratch).empty());  // absent

  Parsed split = parse_copy(fixture("discover_long_option"));  // 300-byte vendor class in two
  ASSERT_TRUE(split.ok);
  ASSERT_EQ(split.req.options[opt::kVendorClass].count, 2);
  const std::span<const uint8_t> w = split.req.value(opt::kVendorClass, scratch);
  EXPECT_EQ(Bytes(w.begin(), w.end()), long_value());
  EXPECT_EQ(w.data(), scratch.data());
  std::array<uint8_t, 299> small{};
  EXPECT_TRUE(split.req.value(opt::kVendorClass, small).empty());  // does not fit: absent
}

}  // namespace
}  // namespace dhcp
