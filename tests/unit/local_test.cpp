// handle_local: golden ARP/ICMP exchanges, one test per drop reason, and a fuzz loop.
// Frames are built byte by byte here and checksums come from a reference implementation in this
// file, so the code under test is never used to check itself.

#include "dataplane/local.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

// Under AddressSanitizer the guard bytes after each fuzz frame are poisoned, so reading past
// `len` fails the run; without it only writes are caught (by comparing the guard).
#if defined(__SANITIZE_ADDRESS__)
#define TANDEM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TANDEM_TEST_ASAN 1
#endif
#endif
#ifdef TANDEM_TEST_ASAN
#include <sanitizer/asan_interface.h>
#define GUARD_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define GUARD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define GUARD_POISON(p, n) ((void)(p), (void)(n))
#define GUARD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace dp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr Mac kOurMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
constexpr Mac kOtherMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x33};
constexpr Mac kZeroMac{};

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}
constexpr uint32_t kOurIp = ip4(192, 0, 2, 2);
constexpr uint32_t kVip = ip4(192, 0, 2, 100);
constexpr uint32_t kBackIp = ip4(198, 51, 100, 2);
constexpr uint32_t kClientIp = ip4(192, 0, 2, 10);
constexpr uint32_t kPeerIp = ip4(192, 0, 2, 3);

// Textbook RFC 1071: add 16-bit big-endian words, fold carries, invert.
uint16_t ref_csum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += (i % 2 == 0) ? uint64_t{p[i]} << 8 : p[i];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

void put8(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
}
void put16(Bytes& b, uint32_t v) {
  put8(b, v >> 8);
  put8(b, v);
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v);
}
void put_mac(Bytes& b, const Mac& m) {
  b.insert(b.end(), m.begin(), m.end());
}
void set16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}
uint32_t get32(const Bytes& b, size_t off) {
  return (uint32_t{get16(b, off)} << 16) | get16(b, off + 2);
}
Mac get_mac(const Bytes& b, size_t off) {
  Mac m;
  std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(off), 6, m.begin());
  return m;
}

Bytes eth_hdr(const Mac& dst, const Mac& src, uint16_t type) {
  Bytes b;
  put_mac(b, dst);
  put_mac(b, src);
  put16(b, type);
  return b;
}

struct ArpSpec {
  Mac eth_dst = kBroadcastMac;
  uint16_t htype = 1, ptype = 0x0800;
  uint8_t hlen = 6, plen = 4;
  uint16_t op = 1;
  Mac sha = kClientMac;
  uint32_t spa = kClientIp;
  Mac tha = kZeroMac;
  uint32_t tpa = kOurIp;
  bool pad = true;  // to the 60-byte Ethernet minimum
};

Bytes arp_frame(const ArpSpec& s) {
  Bytes b = eth_hdr(s.eth_dst, s.sha, 0x0806);
  put16(b, s.htype);
  put16(b, s.ptype);
  put8(b, s.hlen);
  put8(b, s.plen);
  put16(b, s.op);
  put_mac(b, s.sha);
  put32(b, s.spa);
  put_mac(b, s.tha);
  put32(b, s.tpa);
  if (s.pad) b.resize(60, 0);
  return b;
}

Bytes icmp_msg(uint8_t type, uint8_t code, const Bytes& payload, uint16_t id = 0x2a,
               uint16_t seq = 1) {
  Bytes b;
  put8(b, type);
  put8(b, code);
  put16(b, 0);
  put16(b, id);
  put16(b, seq);
  b.insert(b.end(), payload.begin(), payload.end());
  set16(b, 2, ref_csum(b.data(), b.size()));
  return b;
}

struct IpSpec {
  Mac eth_dst = kOurMac;
  uint8_t version = 4;
  uint8_t ihl = 5;
  int tot_len = -1;        // -1: computed
  uint16_t frag = 0x4000;  // DF
  uint8_t ttl = 64;
  uint8_t proto = 1;
  uint32_t src = kClientIp;
  uint32_t dst = kOurIp;
  bool good_csum = true;
  size_t frame_len = 0;  // pad the frame to this length with 0xee (0: no padding)
};

constexpr size_t kIp = 14;  // offset of the IP header in untagged frames

Bytes ipv4_frame(const IpSpec& s, const Bytes& l4) {
  Bytes b = eth_hdr(s.eth_dst, kClientMac, 0x0800);
  const size_t hdr = size_t{s.ihl} * 4 < 20 ? 20 : size_t{s.ihl} * 4;
  put8(b, (uint32_t{s.version} << 4) | s.ihl);
  put8(b, 0);
  put16(b,
        s.tot_len >= 0 ? static_cast<uint32_t>(s.tot_len) : static_cast<uint32_t>(hdr + l4.size()));
  put16(b, 0x1234);
  put16(b, s.frag);
  put8(b, s.ttl);
  put8(b, s.proto);
  put16(b, 0);
  put32(b, s.src);
  put32(b, s.dst);
  for (size_t i = 20; i < hdr; ++i) put8(b, i == 20 ? 0x94 : (i == 21 ? 0x04 : 0));  // RTR ALERT
  uint16_t c = ref_csum(b.data() + kIp, hdr);
  if (!s.good_csum) c ^= 0x0101;
  set16(b, kIp + 10, c);
  b.insert(b.end(), l4.begin(), l4.end());
  if (b.size() < s.frame_len) b.resize(s.frame_len, 0xee);
  return b;
}

Bytes pattern(size_t n, uint8_t first = 0x10) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

Bytes echo_request(size_t payload_len, IpSpec s = {}) {
  return ipv4_frame(s, icmp_msg(8, 0, pattern(payload_len)));
}

PortView front_port() {
  PortView p;
  p.mac = kOurMac;
  p.n_addrs = 3;
  p.addrs[0] = kOurIp;
  p.prefix_len[0] = 24;
  p.addrs[1] = kVip;
  p.prefix_len[1] = 24;
  p.addrs[2] = kBackIp;
  p.prefix_len[2] = 24;
  p.dhcp = true;
  return p;
}

// A UDP datagram (checksum over the pseudo-header of src/dst unless `csum` is given).
Bytes udp_msg(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const Bytes& payload,
              int csum = -1, int len_field = -1) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, len_field >= 0 ? static_cast<uint32_t>(len_field)
                          : static_cast<uint32_t>(8 + payload.size()));
  put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  if (csum >= 0) {
    set16(u, 6, static_cast<uint16_t>(csum));
    return u;
  }
  Bytes ph;
  put32(ph, src);
  put32(ph, dst);
  put16(ph, 17);
  put16(ph, static_cast<uint32_t>(u.size()));
  ph.insert(ph.end(), u.begin(), u.end());
  uint16_t c = ref_csum(ph.data(), ph.size());
  set16(u, 6, c == 0 ? 0xffff : c);
  return u;
}

Bytes dhcp_frame(uint32_t src, uint32_t dst, const Mac& eth_dst, const Bytes& payload,
                 int csum = -1) {
  IpSpec s;
  s.proto = 17;
  s.src = src;
  s.dst = dst;
  s.eth_dst = eth_dst;
  s.frag = 0;
  return ipv4_frame(s, udp_msg(src, dst, 68, 67, payload, csum));
}

class LocalTest : public ::testing::Test {
 protected:
  LocalResult run(Bytes& f) {
    return handle_local(f.data(), static_cast<uint32_t>(f.size()), port_, stats_);
  }
  PortView port_ = front_port();
  WorkerStats stats_;
};

// ---------------------------------------------------------------------------------------------
// Golden exchanges

TEST_F(LocalTest, ArpRequestGolden) {
  Bytes f = {// Ethernet: broadcast, from the client, ARP
             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x06,
             // htype 1, ptype IPv4, hlen 6, plen 4, op request
             0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
             // sha, spa 192.0.2.10
             0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xc0, 0x00, 0x02, 0x0a,
             // tha 0, tpa 192.0.2.2
             0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x02,
             // padding to 60
             0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
             0x00, 0x00, 0x00, 0x00};
  const Bytes expected = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
                          0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00,
                          0x00, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00,
                          0x00, 0x0a, 0xc0, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  ASSERT_EQ(f.size(), 60u);
  ASSERT_EQ(f, arp_frame({}));  // the builder used by the other tests agrees with the literal

  const LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kTransmit);
  EXPECT_EQ(f, expected);
  ASSERT_TRUE(r.learned);
  EXPECT_EQ(r.hint.ip, kClientIp);
  EXPECT_EQ(r.hint.mac, kClientMac);
  EXPECT_TRUE(r.hint.targeted);
  EXPECT_EQ(stats_.arp_requests_in.get(), 1u);
  EXPECT_EQ(stats_.arp_replies_out.get(), 1u);
  EXPECT_EQ(stats_.arp_replies_in.get(), 0u);
  EXPECT_EQ(stats_.arp_other_in.get(), 0u);
}

TEST_F(LocalTest, IcmpEchoGolden) {
  // 192.0.2.10 -> 192.0.2.2, TTL 62, DF, id 0x1234; echo id 0x2a seq 1, 56 bytes 0x10..0x47.
  Bytes f = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00,
             0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x3e, 0x01, 0xa6, 0x68, 0xc0, 0x00,
             0x02, 0x0a, 0xc0, 0x00, 0x02, 0x02, 0x08, 0x00, 0x3f, 0x00, 0x00, 0x2a, 0x00, 0x01,
             0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
             0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
             0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
             0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
  // Addresses swapped, TTL 64 (IP checksum 0xa468), type 0 (ICMP checksum 0x4700).
  const Bytes expected = {
      0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
      0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0xa4, 0x68, 0xc0, 0x00,
      0x02, 0x02, 0xc0, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x47, 0x00, 0x00, 0x2a, 0x00, 0x01,
      0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
      0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
      0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
      0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
  ASSERT_EQ(f.size(), 98u);
  // The literals are self-consistent under the reference checksum.
  EXPECT_EQ(ref_csum(f.data() + 14, 20), 0);
  EXPECT_EQ(ref_csum(f.data() + 34, 64), 0);
  EXPECT_EQ(ref_csum(expected.data() + 14, 20), 0);
  EXPECT_EQ(ref_csum(expected.data() + 34, 64), 0);
  IpSpec s;
  s.ttl = 62;
  ASSERT_EQ(f, echo_request(56, s));

  const LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kTransmit);
  EXPECT_FALSE(r.learned);
  EXPECT_EQ(f, expected);
  EXPECT_EQ(stats_.icmp_echo_in.get(), 1u);
  EXPECT_EQ(stats_.icmp_echo_out.get(), 1u);
}

// ---------------------------------------------------------------------------------------------
// ARP

TEST_F(LocalTest, ArpRequestUnicastToOurMacIsAnswered) {
  ArpSpec s;
  s.eth_dst = kOurMac;
  s.tha = kOurMac;  // a Linux-style unicast re-probe
  Bytes f = arp_frame(s);
  EXPECT_EQ(run(f).verdict, Verdict::kTransmit);
  EXPECT_EQ(get_mac(f, 0), kClientMac);
  EXPECT_EQ(get_mac(f, 6), kOurMac);
  EXPECT_EQ(get16(f, 20), 2);
}

TEST_F(LocalTest, ArpRequestForSecondaryAddressAnswersWithThatAddress) {
  ArpSpec s;
  s.tpa = kVip;
  Bytes f = arp_frame(s);
  EXPECT_EQ(run(f).verdict, Verdict::kTransmit);
  EXPECT_EQ(get_mac(f, 22), kOurMac);
  EXPECT_EQ(get32(f, 28), kVip);
  EXPECT_EQ(get_mac(f, 32), kClientMac);
  EXPECT_EQ(get32(f, 38), kClientIp);
}

TEST_F(LocalTest, ArpRequestWithoutPaddingIsAnsweredInPlace) {
  ArpSpec s;
  s.pad = false;
  Bytes f = arp_frame(s);
  ASSERT_EQ(f.size(), 42u);
  EXPECT_EQ(run(f).verdict, Verdict::kTransmit);
  EXPECT_EQ(f.size(), 42u);
  EXPECT_EQ(get32(f, 38), kClientIp);
}

TEST_F(LocalTest, ArpProbeIsAnsweredButNotLearned) {
  ArpSpec s;
  s.spa = 0;  // RFC 5227 probe
  Bytes f = arp_frame(s);
  const LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kTransmit);
  EXPECT_FALSE(r.learned);
  EXPECT_EQ(get_mac(f, 0), kClientMac);
  EXPECT_EQ(get_mac(f, 22), kOurMac);
  EXPECT_EQ(get32(f, 28), kOurIp);
  EXPECT_EQ(get_mac(f, 32), kClientMac);
  EXPECT_EQ(get32(f, 38), 0u);
}

TEST_F(LocalTest, ArpRequestForOthersIsDroppedButLearnedUntargeted) {
  ArpSpec s;
  s.tpa = kPeerIp;
  Bytes f = arp_frame(s);
  const Bytes before = f;
  const LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, Drop::kArpNotOurs);
  ASSERT_TRUE(r.learned);
  EXPECT_EQ(r.hint.ip, kClientIp);
  EXPECT_EQ(r.hint.mac, kClientMac);
  EXPECT_FALSE(r.hint.targeted);
  EXPECT_EQ(f, before);
  EXPECT_EQ(stats_.arp_requests_in.get(), 1u);
  EXPECT_EQ(stats_.arp_replies_out.get(), 0u);
}

TEST_F(LocalTest, ArpReplyToUsIsConsumedAndLearnedTargeted) {
  ArpSpec s;
  s.op = 2;
  s.eth_dst = kOurMac;
  s.tha = kOurMac;
  Bytes f = arp_frame(s);
  const Bytes before = f;
  const LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kConsumed);
  ASSERT_TRUE(r.learned);
  EXPECT_EQ(r.hint.ip, kClientIp);
  EXPECT_EQ(r.hint.mac, kClientMac);
  EXPECT_TRUE(r.hint.targeted);
  EXPECT_EQ(f, before);
  EXPECT_EQ(stats_.arp_replies_in.get(), 1u);
  EXPECT_EQ(stats_.arp_requests_in.get(), 0u);
}

TEST_F(LocalTest, GratuitousArpIsLearnedUntargeted) {
  for (uint16_t op : {1, 2}) {
    ArpSpec s;
    s.op = op;
    s.spa = kPeerIp;
    s.tpa = kPeerIp;
    Bytes f = arp_frame(s);
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, op == 1 ? Verdict::kDrop : Verdict::kConsumed) << op;
    if (op == 1) {
      EXPECT_EQ(r.reason, Drop::kArpNotOurs);
    }
    ASSERT_TRUE(r.learned) << op;
    EXPECT_EQ(r.hint.ip, kPeerIp);
    EXPECT_FALSE(r.hint.targeted) << op;
  }
}

TEST_F(LocalTest, ArpClaimingOurAddressIsUntargeted) {
  // Another host announcing one of our addresses (a conflict, or a VRRP peer taking over a
  // VIP). It asked nothing, so it must not create an entry; the request is still answered,
  // which tells the claimant the address is in use.
  for (uint16_t op : {1, 2}) {
    ArpSpec s;
    s.op = op;
    s.spa = kVip;
    s.tpa = kVip;
    Bytes f = arp_frame(s);
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, op == 1 ? Verdict::kTransmit : Verdict::kConsumed) << op;
    ASSERT_TRUE(r.learned) << op;
    EXPECT_EQ(r.hint.ip, kVip);
    EXPECT_FALSE(r.hint.targeted) << op;
  }
}

TEST_F(LocalTest, ArpSenderNotLearnedWhenOffLinkOrBroadcast) {
  const Mac mcast{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
  struct Case {
    uint32_t spa;
    Mac sha;
  };
  for (const Case& c : {Case{ip4(10, 1, 1, 1), kClientMac}, Case{ip4(192, 0, 2, 255), kClientMac},
                        Case{ip4(255, 255, 255, 255), kClientMac}}) {
    ArpSpec s;
    s.spa = c.spa;
    s.sha = c.sha;
    Bytes f = arp_frame(s);
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, Verdict::kTransmit);
    EXPECT_FALSE(r.learned) << std::hex << c.spa;
  }
  // A group sender hardware address is never answered nor learned.
  for (const Mac& sha : {mcast, kBroadcastMac}) {
    ArpSpec s;
    s.sha = sha;
    Bytes f = arp_frame(s);
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, Verdict::kDrop);
    EXPECT_EQ(r.reason, Drop::kArpMalformed);
    EXPECT_FALSE(r.learned);
  }
}

TEST_F(LocalTest, TtlZeroForUsIsStillAnswered) {
  IpSpec s;
  s.ttl = 0;
  Bytes f = echo_request(8, s);
  EXPECT_EQ(run(f).verdict, Verdict::kTransmit);
}

TEST_F(LocalTest, ArpOtherOpcodesAreCountedAndDropped) {
  for (uint16_t op : {0, 3, 4, 8}) {
    ArpSpec s;
    s.op = op;
    Bytes f = arp_frame(s);
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, Verdict::kDrop);
    EXPECT_EQ(r.reason, Drop::kArpMalformed);
    EXPECT_FALSE(r.learned);
  }
  EXPECT_EQ(stats_.arp_other_in.get(), 4u);
  EXPECT_EQ(stats_.arp_requests_in.get(), 0u);
}

TEST_F(LocalTest, ArpTruncatedAtEveryLength) {
  const Bytes full = arp_frame({});
  for (size_t n = 14; n < 42; ++n) {
    Bytes f(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, Verdict::kDrop) << n;
    EXPECT_EQ(r.reason, Drop::kTooShort) << n;
    EXPECT_FALSE(r.learned);
  }
}

// ---------------------------------------------------------------------------------------------
// Ethernet

TEST_F(LocalTest, ShorterThanEthernetAtEveryLength) {
  for (const Bytes& full : {arp_frame({}), echo_request(56)}) {
    for (size_t n = 0; n < 14; ++n) {
      Bytes f(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      const LocalResult r = run(f);
      EXPECT_EQ(r.verdict, Verdict::kDrop) << n;
      EXPECT_EQ(r.reason, Drop::kTooShort) << n;
    }
  }
}

TEST_F(LocalTest, MulticastAndForeignUnicastAreNotOurs) {
  for (const Mac& dst : {kOtherMac, Mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12},
                         Mac{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}}) {
    ArpSpec s;
    s.eth_dst = dst;
    Bytes a = arp_frame(s);
    EXPECT_EQ(run(a).reason, Drop::kNotOurMac);
    IpSpec is;
    is.eth_dst = dst;
    Bytes i = echo_request(8, is);
    EXPECT_EQ(run(i).reason, Drop::kNotOurMac);
  }
}

TEST_F(LocalTest, UnicastIpInLinkBroadcastIsNotOurs) {
  // RFC 1122 3.3.6: broadcast is for ARP; a unicast datagram in a broadcast frame is discarded.
  IpSpec s;
  s.eth_dst = kBroadcastMac;
  Bytes f = echo_request(8, s);
  const LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, Drop::kNotOurMac);
}

// ---------------------------------------------------------------------------------------------
// IPv4 and ICMP

TEST_F(LocalTest, Ipv4TruncatedAtEveryLength) {
  const Bytes full = echo_request(56);
  for (size_t n = 14; n < 34; ++n) {
    Bytes f(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(run(f).reason, Drop::kTooShort) << n;
  }
  // Cut inside the ICMP message: total length now claims more than the frame holds.
  for (size_t n = 34; n < full.size(); ++n) {
    Bytes f(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const LocalResult r = run(f);
    EXPECT_EQ(r.verdict, Verdict::kDrop) << n;
    EXPECT_EQ(r.reason, Drop::kTooShort) << n;
  }
}

TEST_F(LocalTest, EchoWithEthernetPaddingKeepsFrameAndPadding) {
  IpSpec s;
  s.frame_len = 60;
  Bytes f = echo_request(0, s);  // IP total length 28 inside a 60-byte frame
  ASSERT_EQ(f.size(), 60u);
  const LocalResult r = run(f);
  ASSERT_EQ(r.verdict, Verdict::kTransmit);
  EXPECT_EQ(f.size(), 60u);
  EXPECT_EQ(get16(f, kIp + 2), 28);
  EXPECT_EQ(ref_csum(f.data() + kIp, 20), 0);
  EXPECT_EQ(ref_csum(f.data() + 34, 8), 0);
  EXPECT_EQ(f[34], 0);
  EXPECT_TRUE(std::all_of(f.begin() + 42, f.end(), [](uint8_t b) { return b == 0xee; }));
}

TEST_F(LocalTest, EchoReplyChecksumMatchesFullRecomputation) {
  // Odd lengths, random payloads, ids and addresses: the in-place reply must equal a reply built
  // from scratch with the reference checksum.
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    const size_t n = rng() % 1473;
    Bytes payload(n);
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    const auto id = static_cast<uint16_t>(rng());
    const auto seq = static_cast<uint16_t>(rng());
    IpSpec s;
    s.ttl = static_cast<uint8_t>(1 + rng() % 255);
    s.dst = (i % 2) ? kVip : kOurIp;
    s.src = ip4(1, 0, 0, 0) +
            static_cast<uint32_t>(rng() % (ip4(223, 255, 255, 255) - ip4(1, 0, 0, 0)));
    if ((s.src >> 24) == 127) s.src ^= 0x01000000;  // unicast, not loopback: not martian
    Bytes f = ipv4_frame(s, icmp_msg(8, 0, payload, id, seq));
    ASSERT_EQ(run(f).verdict, Verdict::kTransmit) << i;

    IpSpec rs;
    rs.eth_dst = kClientMac;
    rs.src = s.dst;
    rs.dst = s.src;
    Bytes want = ipv4_frame(rs, icmp_msg(0, 0, payload, id, seq));
    std::copy(kOurMac.begin(), kOurMac.end(), want.begin() + 6);
    ASSERT_EQ(f, want) << i;
  }
}

TEST_F(LocalTest, TtlOneAndDfAreFine) {
  IpSpec s;
  s.ttl = 1;
  s.frag = 0x4000;
  Bytes f = echo_request(8, s);
  EXPECT_EQ(run(f).verdict, Verdict::kTransmit);
  EXPECT_EQ(f[kIp + 8], 64);
}

TEST_F(LocalTest, EchoReplyCountersOnlyOnSuccess) {
  Bytes bad = ipv4_frame({}, icmp_msg(13, 0, pattern(12)));
  run(bad);
  EXPECT_EQ(stats_.icmp_echo_in.get(), 0u);
  EXPECT_EQ(stats_.icmp_echo_out.get(), 0u);
  Bytes good = echo_request(4);
  run(good);
  EXPECT_EQ(stats_.icmp_echo_in.get(), 1u);
  EXPECT_EQ(stats_.icmp_echo_out.get(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Every drop reason handle_local can return, table-driven. Dropped frames are left untouched.

struct DropCase {
  std::string name;
  Bytes frame;
  Drop reason;
};

std::vector<DropCase> drop_cases() {
  std::vector<DropCase> v;
  v.push_back({"empty", {}, Drop::kTooShort});
  v.push_back({"13 bytes", Bytes(13, 0xff), Drop::kTooShort});
  {
    Bytes f = eth_hdr(kOurMac, kClientMac, 0x8100);
    put16(f, 0x0064);
    put16(f, 0x0800);
    f.resize(60, 0);
    v.push_back({"vlan", f, Drop::kVlanTagged});
  }
  {
    Bytes f = eth_hdr(kOurMac, kClientMac, 0x86dd);
    f.resize(60, 0);
    v.push_back({"ipv6", f, Drop::kEtherType});
    Bytes g = eth_hdr(kBroadcastMac, kClientMac, 0x88cc);
    g.resize(60, 0);
    v.push_back({"lldp", g, Drop::kEtherType});
  }
  {
    ArpSpec s;
    s.eth_dst = kOtherMac;
    v.push_back({"arp to other mac", arp_frame(s), Drop::kNotOurMac});
  }
  {
    IpSpec s;
    s.eth_dst = kOtherMac;
    v.push_back({"ip to other mac", echo_request(8, s), Drop::kNotOurMac});
  }
  {
    ArpSpec s;
    s.pad = false;
    Bytes f = arp_frame(s);
    f.pop_back();
    v.push_back({"arp 41 bytes", f, Drop::kTooShort});
  }
  {
    ArpSpec s;
    s.hlen = 8;
    v.push_back({"arp hlen 8", arp_frame(s), Drop::kArpMalformed});
    s = {};
    s.plen = 16;
    v.push_back({"arp plen 16", arp_frame(s), Drop::kArpMalformed});
    s = {};
    s.htype = 6;
    v.push_back({"arp htype 6", arp_frame(s), Drop::kArpMalformed});
    s = {};
    s.ptype = 0x86dd;
    v.push_back({"arp ptype ipv6", arp_frame(s), Drop::kArpMalformed});
    s = {};
    s.op = 3;
    v.push_back({"arp op 3", arp_frame(s), Drop::kArpMalformed});
    s = {};
    s.tpa = kPeerIp;
    v.push_back({"arp not ours", arp_frame(s), Drop::kArpNotOurs});
  }
  {
    Bytes f = echo_request(56);
    f.resize(33);
    v.push_back({"ipv4 33 bytes", f, Drop::kTooShort});
  }
  {
    IpSpec s;
    s.version = 6;
    v.push_back({"ip version 6", echo_request(8, s), Drop::kIpv4Malformed});
    s = {};
    s.ihl = 4;
    v.push_back({"ihl 4", echo_request(8, s), Drop::kIpv4Malformed});
    s = {};
    s.ihl = 0;
    v.push_back({"ihl 0", echo_request(8, s), Drop::kIpv4Malformed});
    s = {};
    s.ihl = 15;  // 60-byte header claimed, 40 bytes present
    s.tot_len = 20;
    Bytes f = echo_request(0, s);
    f.resize(14 + 40);
    v.push_back({"ihl beyond frame", f, Drop::kTooShort});
    s = {};
    s.tot_len = 19;
    v.push_back({"totlen < ihl", echo_request(8, s), Drop::kIpv4Malformed});
    s = {};
    s.tot_len = 0;
    v.push_back({"totlen 0", echo_request(8, s), Drop::kIpv4Malformed});
    s = {};
    s.tot_len = 20 + 16 + 1;
    v.push_back({"totlen > frame", echo_request(8, s), Drop::kTooShort});
    s = {};
    s.tot_len = 0xffff;
    v.push_back({"totlen 65535", echo_request(8, s), Drop::kTooShort});
    s = {};
    s.good_csum = false;
    v.push_back({"bad ip checksum", echo_request(8, s), Drop::kIpv4Checksum});
    s = {};
    s.dst = kPeerIp;
    v.push_back({"not local", echo_request(8, s), Drop::kIpv4NotLocal});
    s.frag = 0x2000;
    v.push_back({"fragment not local", echo_request(8, s), Drop::kIpv4NotLocal});
    s = {};
    s.frag = 0x2000;  // MF
    v.push_back({"first fragment", echo_request(8, s), Drop::kIpv4Fragment});
    s.frag = 0x00b9;  // offset 185*8, last fragment
    v.push_back({"last fragment", echo_request(8, s), Drop::kIpv4Fragment});
    s = {};
    s.ihl = 6;
    v.push_back({"options", echo_request(8, s), Drop::kIpv4Options});
    for (uint32_t src : {ip4(0, 0, 0, 0), ip4(127, 0, 0, 1), ip4(224, 0, 0, 1), ip4(240, 0, 0, 1),
                         ip4(255, 255, 255, 255)}) {
      s = {};
      s.src = src;
      v.push_back({"martian source", echo_request(8, s), Drop::kIpv4Martian});
    }
  }
  {
    Bytes icmp7 = icmp_msg(8, 0, {});
    icmp7.pop_back();
    v.push_back({"icmp 7 bytes", ipv4_frame({}, icmp7), Drop::kIcmpMalformed});
    v.push_back({"icmp 0 bytes", ipv4_frame({}, {}), Drop::kIcmpMalformed});
    Bytes bad = icmp_msg(8, 0, pattern(56));
    bad[2] ^= 0x40;
    v.push_back({"bad icmp checksum", ipv4_frame({}, bad), Drop::kIcmpChecksum});
    Bytes bad_payload = icmp_msg(8, 0, pattern(56));
    bad_payload[63] ^= 0x01;
    v.push_back({"icmp payload corrupted", ipv4_frame({}, bad_payload), Drop::kIcmpChecksum});
    v.push_back(
        {"icmp timestamp", ipv4_frame({}, icmp_msg(13, 0, pattern(12))), Drop::kIcmpUnhandled});
    v.push_back(
        {"icmp echo reply", ipv4_frame({}, icmp_msg(0, 0, pattern(8))), Drop::kIcmpUnhandled});
    v.push_back(
        {"icmp echo code 1", ipv4_frame({}, icmp_msg(8, 1, pattern(8))), Drop::kIcmpUnhandled});
  }
  {
    Bytes udp;
    put16(udp, 40000);
    put16(udp, 53);
    put16(udp, 8);
    put16(udp, 0);
    IpSpec s;
    s.proto = 17;
    v.push_back({"udp to us", ipv4_frame(s, udp), Drop::kL4Unhandled});
    Bytes tcp(20, 0);
    s.proto = 6;
    v.push_back({"tcp to us", ipv4_frame(s, tcp), Drop::kL4Unhandled});
    s.proto = 47;
    v.push_back({"gre to us", ipv4_frame(s, tcp), Drop::kL4Unhandled});
    s.proto = 17;
    v.push_back({"udp shorter than its header", ipv4_frame(s, Bytes{0x00, 0x44, 0x00, 0x43}),
                 Drop::kUdpMalformed});
    v.push_back({"udp length over the datagram",
                 ipv4_frame(s, udp_msg(kClientIp, kOurIp, 68, 67, pattern(20), -1, 40)),
                 Drop::kUdpMalformed});
    v.push_back({"udp length under its header",
                 ipv4_frame(s, udp_msg(kClientIp, kOurIp, 68, 67, pattern(20), -1, 7)),
                 Drop::kUdpMalformed});
    v.push_back({"dhcp with a bad udp checksum",
                 dhcp_frame(0, 0xffffffffu, kBroadcastMac, pattern(300), 0x1234),
                 Drop::kUdpChecksum});
    Bytes frag = dhcp_frame(0, 0xffffffffu, kBroadcastMac, pattern(300));
    set16(frag, kIp + 6, 0x2000);  // MF
    set16(frag, kIp + 10, 0);
    set16(frag, kIp + 10, ref_csum(frag.data() + kIp, 20));
    v.push_back({"dhcp fragment", frag, Drop::kIpv4Fragment});
  }
  return v;
}

TEST_F(LocalTest, EveryDropReason) {
  std::set<Drop> seen;
  for (DropCase& c : drop_cases()) {
    const Bytes before = c.frame;
    const LocalResult r = run(c.frame);
    EXPECT_EQ(r.verdict, Verdict::kDrop) << c.name;
    EXPECT_EQ(r.reason, c.reason) << c.name << ": got "
                                  << kDropNames[static_cast<size_t>(r.reason)];
    EXPECT_EQ(c.frame, before) << c.name;
    seen.insert(c.reason);
  }
  // Only the worker's own drops (TX full, punt ring full) and the forwarding path's (from
  // kNoRoute on: forward_test covers them) are outside handle_local.
  for (size_t i = 0; i < static_cast<size_t>(Drop::kNoRoute); ++i) {
    const auto d = static_cast<Drop>(i);
    if (d == Drop::kTxFull || d == Drop::kPuntRingFull) continue;
    EXPECT_TRUE(seen.contains(d)) << "no test for " << kDropNames[i];
  }
  EXPECT_EQ(stats_.icmp_echo_out.get(), 0u);
  EXPECT_EQ(stats_.arp_replies_out.get(), 0u);
}

// ---------------------------------------------------------------------------------------------
// PortView

// ---------------------------------------------------------------------------------------------
// DHCP classification

TEST_F(LocalTest, DhcpBroadcastFromUnspecifiedSourceIsDhcp) {
  Bytes f = dhcp_frame(0, 0xffffffffu, kBroadcastMac, pattern(300));
  const Bytes before = f;
  const LocalResult r = run(f);
  ASSERT_EQ(r.verdict, Verdict::kDhcp);
  EXPECT_EQ(r.l4_off, 14 + 20 + 8);
  EXPECT_EQ(r.l4_len, 300);
  EXPECT_EQ(f, before);  // classification only
}

TEST_F(LocalTest, DhcpUnicastToUsAndZeroChecksumAreDhcp) {
  Bytes f = dhcp_frame(kClientIp, kOurIp, kOurMac, pattern(248));
  EXPECT_EQ(run(f).verdict, Verdict::kDhcp);
  Bytes z = dhcp_frame(kClientIp, kVip, kOurMac, pattern(248), 0);  // no checksum (RFC 768)
  const LocalResult r = run(z);
  EXPECT_EQ(r.verdict, Verdict::kDhcp);
  EXPECT_EQ(r.l4_len, 248);
}

TEST_F(LocalTest, DhcpIgnoresEthernetPaddingAndIpOptions) {
  Bytes f = dhcp_frame(0, 0xffffffffu, kBroadcastMac, pattern(100));
  f.resize(f.size() + 20, 0xee);  // trailing bytes past the IP total length
  const LocalResult r = run(f);
  ASSERT_EQ(r.verdict, Verdict::kDhcp);
  EXPECT_EQ(r.l4_len, 100);
}

TEST_F(LocalTest, DhcpOnlyWhenThePortServesIt) {
  port_.dhcp = false;
  Bytes b = dhcp_frame(0, 0xffffffffu, kBroadcastMac, pattern(300));
  LocalResult r = run(b);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, Drop::kNotOurMac);
  Bytes u = dhcp_frame(kClientIp, kOurIp, kOurMac, pattern(300));
  r = run(u);
  EXPECT_EQ(r.reason, Drop::kL4Unhandled);
}

TEST_F(LocalTest, DhcpToAnotherAddressOrOtherBroadcastUdpIsNotOurs) {
  Bytes f = dhcp_frame(0, kClientIp + 50, kOurMac, pattern(300));
  LocalResult r = run(f);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, Drop::kIpv4NotLocal);
  // Broadcast UDP to another port (NetBIOS, mDNS-like chatter) is not taken from broadcast.
  IpSpec s;
  s.proto = 17;
  s.src = kClientIp;
  s.dst = 0xffffffffu;
  s.eth_dst = kBroadcastMac;
  Bytes o = ipv4_frame(s, udp_msg(kClientIp, 0xffffffffu, 137, 137, pattern(50)));
  r = run(o);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, Drop::kNotOurMac);
}

TEST(PortViewTest, OwnsAndOnLink) {
  PortView p = front_port();
  EXPECT_TRUE(p.owns(kOurIp));
  EXPECT_TRUE(p.owns(kVip));
  EXPECT_TRUE(p.owns(kBackIp));
  EXPECT_FALSE(p.owns(kClientIp));
  EXPECT_FALSE(p.owns(0));

  EXPECT_TRUE(p.on_link(kClientIp));
  EXPECT_TRUE(p.on_link(ip4(198, 51, 100, 11)));
  EXPECT_TRUE(p.on_link(ip4(192, 0, 2, 1)));
  EXPECT_FALSE(p.on_link(ip4(192, 0, 3, 1)));
  EXPECT_FALSE(p.on_link(ip4(192, 0, 2, 255)));  // directed broadcast
  EXPECT_FALSE(p.on_link(0));
  EXPECT_FALSE(p.on_link(0xffffffffu));
}

TEST(PortViewTest, PointToPointAndHostPrefixes) {
  PortView p;
  p.n_addrs = 2;
  p.addrs[0] = ip4(203, 0, 113, 0);
  p.prefix_len[0] = 31;  // RFC 3021: both addresses are hosts
  p.addrs[1] = ip4(203, 0, 113, 9);
  p.prefix_len[1] = 32;
  EXPECT_TRUE(p.on_link(ip4(203, 0, 113, 1)));
  EXPECT_FALSE(p.on_link(ip4(203, 0, 113, 2)));
  EXPECT_TRUE(p.on_link(ip4(203, 0, 113, 9)));
  EXPECT_FALSE(p.on_link(ip4(203, 0, 113, 8)));
}

TEST(PortViewTest, EmptyAndOversizedAddressCounts) {
  PortView p;
  EXPECT_FALSE(p.owns(0));
  EXPECT_FALSE(p.on_link(ip4(10, 0, 0, 1)));
  p.n_addrs = 1000;  // corrupt snapshot: must not read past addrs[]
  p.addrs[kMaxPortAddrs - 1] = ip4(10, 0, 0, 1);
  p.prefix_len[kMaxPortAddrs - 1] = 8;
  EXPECT_TRUE(p.owns(ip4(10, 0, 0, 1)));
  EXPECT_TRUE(p.on_link(ip4(10, 9, 9, 9)));
  p.prefix_len[kMaxPortAddrs - 1] = 0;
  EXPECT_TRUE(p.on_link(ip4(11, 9, 9, 9)));
}

// ---------------------------------------------------------------------------------------------
// Fuzz: random and mutated frames never crash, never touch bytes past len, and every kTransmit
// is a well-formed reply.

void fix_checksums(Bytes& f) {
  if (f.size() < 34 || get16(f, 12) != 0x0800) return;
  const size_t ihl = size_t{f[kIp] & 0x0fu} * 4;
  if (ihl < 20 || kIp + ihl > f.size()) return;
  set16(f, kIp + 10, 0);
  set16(f, kIp + 10, ref_csum(f.data() + kIp, ihl));
  const size_t tot = get16(f, kIp + 2);
  if (f[kIp + 9] != 1 || tot < ihl + 8 || kIp + tot > f.size()) return;
  uint8_t* icmp = f.data() + kIp + ihl;
  icmp[2] = icmp[3] = 0;
  const uint16_t c = ref_csum(icmp, tot - ihl);
  icmp[2] = static_cast<uint8_t>(c >> 8);
  icmp[3] = static_cast<uint8_t>(c);
}

TEST_F(LocalTest, FuzzNeverCrashesAndRepliesAreValid) {
  std::mt19937_64 rng(0x7a6e64656d);
  std::vector<Bytes> seeds;
  seeds.push_back(arp_frame({}));
  {
    ArpSpec s;
    s.pad = false;
    s.spa = 0;
    seeds.push_back(arp_frame(s));
    s = {};
    s.op = 2;
    s.eth_dst = kOurMac;
    seeds.push_back(arp_frame(s));
  }
  seeds.push_back(echo_request(56));
  seeds.push_back(echo_request(1472));
  seeds.push_back(echo_request(7));
  {
    IpSpec s;
    s.frame_len = 60;
    seeds.push_back(echo_request(1, s));
    s.dst = kVip;
    s.ihl = 6;
    seeds.push_back(echo_request(3, s));
  }

  constexpr size_t kGuard = 32;
  constexpr uint8_t kGuardByte = 0xa5;
  size_t transmitted_arp = 0, transmitted_icmp = 0, consumed = 0, dropped = 0;
  for (int iter = 0; iter < 200'000; ++iter) {
    Bytes f;
    const int mode = iter % 4;
    if (mode == 0) {
      f.resize(rng() % 1515);
      for (auto& b : f) b = static_cast<uint8_t>(rng());
    } else if (mode == 1) {
      // Random body behind a plausible header, so the length checks deeper in are reached.
      f.resize(rng() % 1515);
      for (auto& b : f) b = static_cast<uint8_t>(rng());
      if (f.size() >= 14) {
        const Mac dst = (rng() & 1) ? kOurMac : kBroadcastMac;
        std::copy(dst.begin(), dst.end(), f.begin());
        set16(f, 12, (rng() & 1) ? 0x0800 : 0x0806);
      }
      if (f.size() >= 34 && get16(f, 12) == 0x0800) {
        f[kIp] = static_cast<uint8_t>(0x40 | (rng() % 16));
        set16(f, kIp + 2, static_cast<uint16_t>(rng() % (f.size() - kIp + 8)));
        f[kIp + 9] = (rng() % 4 == 0) ? 17 : 1;
        const uint32_t dst = (rng() & 1) ? kOurIp : kVip;
        f[kIp + 16] = static_cast<uint8_t>(dst >> 24);
        f[kIp + 17] = static_cast<uint8_t>(dst >> 16);
        f[kIp + 18] = static_cast<uint8_t>(dst >> 8);
        f[kIp + 19] = static_cast<uint8_t>(dst);
        if (rng() % 4 != 0) set16(f, kIp + 6, 0);
        if (rng() % 4 != 0) fix_checksums(f);
      }
    } else {
      f = seeds[rng() % seeds.size()];
      const int mutations = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < mutations; ++m) {
        switch (rng() % 4) {
          case 0:
            if (!f.empty()) f[rng() % f.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
          case 1:
            if (!f.empty()) f[rng() % f.size()] = static_cast<uint8_t>(rng());
            break;
          case 2:
            f.resize(rng() % (f.size() + 1));
            break;
          case 3:
            f.resize(std::min<size_t>(1514, f.size() + rng() % 64), static_cast<uint8_t>(rng()));
            break;
        }
      }
      if (rng() % 2 == 0) fix_checksums(f);
    }

    Bytes buf(f.size() + kGuard, kGuardByte);
    std::copy(f.begin(), f.end(), buf.begin());
    const auto len = static_cast<uint32_t>(f.size());
    GUARD_POISON(buf.data() + len, kGuard);
    const LocalResult r = handle_local(buf.data(), len, port_, stats_);
    GUARD_UNPOISON(buf.data() + len, kGuard);
    ASSERT_TRUE(
        std::all_of(buf.begin() + len, buf.end(), [](uint8_t b) { return b == kGuardByte; }))
        << "wrote past len at iteration " << iter;

    switch (r.verdict) {
      case Verdict::kDrop:
        ++dropped;
        ASSERT_LT(static_cast<size_t>(r.reason), static_cast<size_t>(Drop::kCount));
        ASSERT_NE(r.reason, Drop::kTxFull);
        ASSERT_NE(r.reason, Drop::kPuntRingFull);
        ASSERT_TRUE(std::equal(f.begin(), f.end(), buf.begin())) << "drop modified frame " << iter;
        break;
      case Verdict::kConsumed:
        ++consumed;
        ASSERT_TRUE(std::equal(f.begin(), f.end(), buf.begin()));
        break;
      case Verdict::kTransmit: {
        Bytes out(buf.begin(), buf.begin() + len);
        ASSERT_GE(out.size(), 42u);
        ASSERT_EQ(get_mac(out, 6), kOurMac);
        if (get16(out, 12) == 0x0806) {
          ++transmitted_arp;
          ASSERT_EQ(get_mac(out, 0), get_mac(f, 22)) << "reply goes to the sender hardware address";
          ASSERT_EQ(get16(out, 20), 2);
          ASSERT_EQ(get_mac(out, 22), kOurMac);
          ASSERT_TRUE(port_.owns(get32(out, 28)));
          ASSERT_EQ(get_mac(out, 32), get_mac(f, 22));
          ASSERT_EQ(get32(out, 38), get32(f, 28));
        } else {
          ++transmitted_icmp;
          ASSERT_EQ(get16(out, 12), 0x0800);
          ASSERT_EQ(get_mac(out, 0), get_mac(f, 6)) << "reply goes back to the sender";
          ASSERT_EQ(out[kIp], 0x45);
          ASSERT_EQ(ref_csum(out.data() + kIp, 20), 0) << iter;
          const size_t tot = get16(out, kIp + 2);
          ASSERT_LE(kIp + tot, out.size());
          ASSERT_EQ(ref_csum(out.data() + 34, tot - 20), 0) << iter;
          ASSERT_EQ(out[34], 0);
          ASSERT_EQ(out[kIp + 8], 64);
          ASSERT_TRUE(port_.owns(get32(out, kIp + 12)));
          ASSERT_EQ(get32(out, kIp + 16), get32(f, kIp + 12));
          // Everything after the ICMP checksum, padding included, is echoed unchanged.
          ASSERT_TRUE(std::equal(out.begin() + 38, out.end(), f.begin() + 38));
        }
        break;
      }
      default:
        FAIL() << "verdict " << static_cast<int>(r.verdict);
    }
  }
  // The generator must actually reach the interesting paths.
  EXPECT_GT(transmitted_arp, 1000u);
  EXPECT_GT(transmitted_icmp, 1000u);
  EXPECT_GT(consumed, 100u);
  EXPECT_GT(dropped, 100'000u);
}

}  // namespace
}  // namespace dp
