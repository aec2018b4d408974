#pragma once
// Wire formats (Ethernet, ARP, IPv4, ICMP) and checksums over plain bytes.
// Pure and allocation-free: used by workers per packet, by the control thread to build
// frames, and by unit tests without EAL. All multi-byte wire fields are network order.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dp {

using Mac = std::array<uint8_t, 6>;
inline constexpr Mac kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoVrrp = 112;
inline constexpr uint32_t kVrrpGroup = 0xe0000012;  // 224.0.0.18
inline constexpr Mac kVrrpGroupMac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12};

inline constexpr size_t kEthHdrLen = 14;
inline constexpr size_t kArpLen = 28;
inline constexpr size_t kIpv4MinHdrLen = 20;
inline constexpr size_t kIcmpHdrLen = 8;
inline constexpr size_t kMinFrameLen = 60;  // without FCS

// Network byte order, any alignment: one load or store and a byte swap (the compiler does not
// always merge byte-wise stores).
inline uint16_t load_be16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, 2);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  return v;
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  return v;
}
inline void store_be16(uint8_t* p, uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  std::memcpy(p, &v, 2);
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline Mac load_mac(const uint8_t* p) noexcept {
  Mac m;
  std::memcpy(m.data(), p, 6);
  return m;
}
inline void store_mac(uint8_t* p, const Mac& m) noexcept {
  std::memcpy(p, m.data(), 6);
}
inline bool is_multicast(const Mac& m) noexcept {
  return (m[0] & 1) != 0;
}

// Ones'-complement sum of 16-bit values, folded to 16 bits (not inverted): 0 only for 0, else
// 1..0xffff, congruent to `sum` mod 0xffff (2^16 ≡ 1). A fixed sequence, no loop: 64 -> 33 -> 32
// bits by adding halves (the second carry cannot overflow), then 32 -> 17 -> 16 the same way.
inline uint32_t fold16(uint64_t sum) noexcept {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  auto r = static_cast<uint32_t>(sum);
  r = (r & 0xffff) + (r >> 16);
  r = (r & 0xffff) + (r >> 16);
  return r;
}

// Ones'-complement sum of `len` bytes as big-endian 16-bit words, folded to 16 bits but not
// inverted; `seed` chains sums. Adds native 32-bit words into a 64-bit accumulator and swaps the
// folded result once: the ones'-complement sum is byte-order independent (RFC 1071 §2(B)).
inline uint32_t csum_partial(const uint8_t* p, size_t len, uint32_t seed = 0) noexcept {
  uint64_t sum = 0;
  // Four independent accumulators: a DHCP reply (~330 bytes) is summed without one long
  // dependency chain. 32-bit words into 64-bit sums cannot overflow below 2^34 bytes.
  uint64_t s1 = 0, s2 = 0, s3 = 0;
  while (len >= 16) {
    uint32_t v[4];
    std::memcpy(v, p, 16);
    sum += v[0];
    s1 += v[1];
    s2 += v[2];
    s3 += v[3];
    p += 16;
    len -= 16;
  }
  sum += s1 + s2 + s3;
  while (len >= 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    sum += v;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    sum += v;
    p += 2;
    len -= 2;
  }
  if (len != 0) {
    uint8_t tail[2] = {p[0], 0};
    uint16_t v;
    std::memcpy(&v, tail, 2);
    sum += v;
  }
  uint32_t r = fold16(sum);
  if constexpr (std::endian::native == std::endian::little) r = ((r & 0xff) << 8) | (r >> 8);
  return fold16(uint64_t{r} + seed);
}
// Final Internet checksum (RFC 1071) of a buffer, in host order: store with store_be16.
inline uint16_t csum(const uint8_t* p, size_t len, uint32_t seed = 0) noexcept {
  return static_cast<uint16_t>(~csum_partial(p, len, seed) & 0xffff);
}

// True when the IPv4 header at `ip` (`ihl_bytes` long) carries a correct checksum: its words sum
// to 0xffff. The usual 20-byte header is five loads and a fold.
inline bool ipv4_header_ok(const uint8_t* ip, uint32_t ihl_bytes) noexcept {
  if (ihl_bytes != 20) return csum(ip, ihl_bytes) == 0;
  // Word by word from the frame (a local array was filled with a 16-byte store and read back
  // in 4-byte pieces: a store-forwarding stall).
  auto word = [ip](size_t i) {
    uint32_t v;
    std::memcpy(&v, ip + 4 * i, 4);
    return uint64_t{v};
  };
  return fold16(word(0) + word(1) + word(2) + word(3) + word(4)) == 0xffff;
}

// Ethernet header (no VLAN; tagged frames are classified and dropped for now).
struct EthView {
  static Mac dst(const uint8_t* f) noexcept { return load_mac(f); }
  static Mac src(const uint8_t* f) noexcept { return load_mac(f + 6); }
  static uint16_t type(const uint8_t* f) noexcept { return load_be16(f + 12); }
};

inline void write_eth(uint8_t* f, const Mac& dst, const Mac& src, uint16_t type) noexcept {
  store_mac(f, dst);
  store_mac(f + 6, src);
  store_be16(f + 12, type);
}

// ARP over Ethernet/IPv4 (RFC 826), offsets relative to the ARP header.
namespace arp {
inline constexpr uint16_t kHtypeEthernet = 1;
inline constexpr uint16_t kOpRequest = 1;
inline constexpr uint16_t kOpReply = 2;
inline constexpr size_t kOffHtype = 0, kOffPtype = 2, kOffHlen = 4, kOffPlen = 5, kOffOp = 6,
                        kOffSha = 8, kOffSpa = 14, kOffTha = 18, kOffTpa = 24;
}  // namespace arp

// Writes a complete ARP frame (Ethernet + ARP, padded to 60 bytes) into `f`; returns its length.
// Used by the control thread for requests, probes and gratuitous ARP.
inline size_t write_arp_frame(uint8_t* f, uint16_t op, const Mac& eth_dst, const Mac& sha,
                              uint32_t spa, const Mac& tha, uint32_t tpa) noexcept {
  write_eth(f, eth_dst, sha, kEtherTypeArp);
  uint8_t* a = f + kEthHdrLen;
  store_be16(a + arp::kOffHtype, arp::kHtypeEthernet);
  store_be16(a + arp::kOffPtype, kEtherTypeIpv4);
  a[arp::kOffHlen] = 6;
  a[arp::kOffPlen] = 4;
  store_be16(a + arp::kOffOp, op);
  store_mac(a + arp::kOffSha, sha);
  store_be32(a + arp::kOffSpa, spa);
  store_mac(a + arp::kOffTha, tha);
  store_be32(a + arp::kOffTpa, tpa);
  std::memset(f + kEthHdrLen + kArpLen, 0, kMinFrameLen - kEthHdrLen - kArpLen);
  return kMinFrameLen;
}

// IPv4 header accessors, offsets relative to the IP header.
namespace ipv4 {
inline constexpr size_t kOffVerIhl = 0, kOffTos = 1, kOffTotLen = 2, kOffId = 4, kOffFrag = 6,
                        kOffTtl = 8, kOffProto = 9, kOffCsum = 10, kOffSrc = 12, kOffDst = 16;
inline constexpr uint16_t kFragMask = 0x3fff;  // MF flag + offset
}  // namespace ipv4

namespace udp {
inline constexpr size_t kHdrLen = 8;
inline constexpr size_t kOffSport = 0, kOffDport = 2, kOffLen = 4, kOffCsum = 6;
}  // namespace udp

namespace tcp {
inline constexpr uint32_t kMinHdr = 20;
inline constexpr uint32_t kOffFlags = 13, kOffCsum = 16;
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
}  // namespace tcp

// Ones'-complement sum of the IPv4 pseudo-header (RFC 768) for a UDP/TCP checksum.
inline uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len) noexcept {
  uint8_t ph[12];
  store_be32(ph, src);
  store_be32(ph + 4, dst);
  ph[8] = 0;
  ph[9] = proto;
  store_be16(ph + 10, l4_len);
  return csum_partial(ph, sizeof ph);
}

inline constexpr size_t kUdpFrameHdrLen = kEthHdrLen + kIpv4MinHdrLen + udp::kHdrLen;  // 42

// Writes Ethernet, IPv4 (no options, TTL 64, DF clear) and UDP headers at `f` followed by the
// `payload_len` bytes at `payload` (copied unless already at f + kUdpFrameHdrLen), both checksums
// included. The header checksums are computed from the values, and the payload's from its
// source, so nothing just written is read back (no store-forwarding stalls). Addresses in host
// order. Returns the frame length.
inline size_t write_udp_frame(uint8_t* f, const Mac& dst, const Mac& src, uint32_t src_ip,
                              uint32_t dst_ip, uint16_t sport, uint16_t dport,
                              const uint8_t* payload, size_t payload_len) noexcept {
  const uint32_t body = csum_partial(payload, payload_len);
  if (payload != f + kUdpFrameHdrLen) std::memcpy(f + kUdpFrameHdrLen, payload, payload_len);
  write_eth(f, dst, src, kEtherTypeIpv4);
  uint8_t* ip = f + kEthHdrLen;
  const auto udp_len = static_cast<uint16_t>(udp::kHdrLen + payload_len);
  const auto tot_len = static_cast<uint16_t>(kIpv4MinHdrLen + udp_len);
  const uint64_t addrs = (src_ip >> 16) + (src_ip & 0xffff) + (dst_ip >> 16) + (dst_ip & 0xffff);
  ip[ipv4::kOffVerIhl] = 0x45;
  ip[ipv4::kOffTos] = 0;
  store_be16(ip + ipv4::kOffTotLen, tot_len);
  store_be16(ip + ipv4::kOffId, 0);
  store_be16(ip + ipv4::kOffFrag, 0);
  ip[ipv4::kOffTtl] = 64;
  ip[ipv4::kOffProto] = kIpProtoUdp;
  store_be16(ip + ipv4::kOffCsum,
             static_cast<uint16_t>(~fold16(0x4500u + tot_len + (64u << 8 | kIpProtoUdp) + addrs)));
  store_be32(ip + ipv4::kOffSrc, src_ip);
  store_be32(ip + ipv4::kOffDst, dst_ip);
  uint8_t* u = ip + kIpv4MinHdrLen;
  store_be16(u + udp::kOffSport, sport);
  store_be16(u + udp::kOffDport, dport);
  store_be16(u + udp::kOffLen, udp_len);
  // Pseudo-header (addresses, protocol, length) + header (ports, length) + payload.
  const uint32_t sum =
      fold16(addrs + kIpProtoUdp + udp_len + sport + dport + udp_len + uint64_t{body});
  const auto c = static_cast<uint16_t>(~sum);
  store_be16(u + udp::kOffCsum, c == 0 ? 0xffff : c);  // 0 means "no checksum" (RFC 768)
  return kUdpFrameHdrLen + payload_len;
}

// The same with the payload already in place at f + kUdpFrameHdrLen.
inline size_t write_udp_frame(uint8_t* f, const Mac& dst, const Mac& src, uint32_t src_ip,
                              uint32_t dst_ip, uint16_t sport, uint16_t dport,
                              size_t payload_len) noexcept {
  return write_udp_frame(f, dst, src, src_ip, dst_ip, sport, dport, f + kUdpFrameHdrLen,
                         payload_len);
}

namespace icmp {
inline constexpr uint8_t kEchoReply = 0;
inline constexpr uint8_t kEchoRequest = 8;
}  // namespace icmp

}  // namespace dp
