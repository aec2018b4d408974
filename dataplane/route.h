#pragma once
// IPv4 routing between our ports: the forwarding table (Fib), the ICMP errors a router sends
// (RFC 792, RFC 1812 §4.3.2), and the per-packet header rewrites (TTL, incremental checksums).
// Pure and allocation-free on the per-packet path; no EAL, so unit tests call it directly.
// Addresses are host order (as load_be32 returns them) unless a comment says otherwise.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/proto.h"

namespace dp {

namespace icmp {
inline constexpr uint8_t kDestUnreachable = 3;
inline constexpr uint8_t kSourceQuench = 4;
inline constexpr uint8_t kRedirect = 5;
inline constexpr uint8_t kTimeExceeded = 11;
inline constexpr uint8_t kParamProblem = 12;
// Codes of kDestUnreachable.
inline constexpr uint8_t kNetUnreachable = 0;
inline constexpr uint8_t kHostUnreachable = 1;
inline constexpr uint8_t kFragNeeded = 4;
// Codes of kTimeExceeded.
inline constexpr uint8_t kTtlExceeded = 0;
// RFC 1812 §4.3.2.3: an ICMP error datagram (IP header included) never exceeds 576 bytes.
inline constexpr uint32_t kErrorMaxDatagram = 576;
// Room build_icmp_error needs at most: Ethernet header + a 576-byte datagram.
inline constexpr uint32_t kErrorMaxFrame = kEthHdrLen + kErrorMaxDatagram;
}  // namespace icmp

// One route. `prefix` host order with no bits set beyond `len`; `port` is our port index
// (Snapshot::ports order); `gateway` 0 means connected: the next hop is the destination itself.
struct Route {
  uint32_t prefix = 0;
  uint8_t len = 0;
  uint16_t port = 0;
  uint32_t gateway = 0;
};

// The routing table. Built by the control thread into a fresh object, then published read-only
// (e.g. in a Snapshot) and looked up by every worker without synchronisation.
//
// Layout (DIR-16-8-8): a 65536-entry first level indexed by the top 16 bits of the destination,
// then 256-entry groups for bits 16-23 and 24-31 created only under prefixes longer than /16 or
// /24. Each 16-bit entry is 0 (no route), a route index + 1, or kGroup | group index. A lookup is
// three dependent loads; the first level is 128 KiB, and kMaxRoutes bounds the groups to
// 2 * kMaxRoutes + 1 (4 MiB) in the worst case — far less than DIR-24-8's 32 MiB per copy, which
// matters because two snapshots coexist until the old one is reclaimed.
class Fib {
 public:
  static constexpr uint32_t kMaxRoutes = 4096;

  // Control thread, O(routes + entries written) — at most a few million stores. Replaces the
  // table with `routes` and returns "", or returns an error message and leaves the table as it
  // was. Refused: more than kMaxRoutes routes, a port ≥ kMaxPorts, len > 32, host bits set beyond
  // len, and duplicate prefixes (same prefix and length, whatever their next hop): the caller
  // decides which of two equal routes it means (e.g. connected before static) rather than have
  // the table pick silently. Overlapping prefixes of different lengths are the normal case: the
  // longest match wins.
  std::string build(std::vector<Route> routes);

  struct Hop {
    uint16_t port;
    uint32_t next_hop;  // the gateway, or `dst` itself for a connected route
    bool found;
  };

  // Worker, per packet: longest-prefix match. Branch-free: always three dependent loads, the
  // levels a destination does not need going to a dummy group that stays in L1, so the cost
  // does not depend on the table or on how destinations mix (mispredicted branches cost more
  // than the extra hits). {0, 0, false} when no route covers `dst`.
  Hop lookup(uint32_t dst) const noexcept {
    const uint16_t* t8 = tbl8_.data();
    uint32_t e = tbl16_[dst >> 16];
    e = level(t8, e, (dst >> 8) & 0xff);
    e = level(t8, e, dst & 0xff);
    const NextHop& nh = hops_[e];
    return Hop{nh.port, nh.gateway | (dst & nh.dst_mask), e != 0};
  }

  // Worker: `n` lookups with the same results as n calls of lookup(), done level by level over
  // chunks of 32 with each level prefetched for the whole chunk, so a burst's cache misses
  // overlap instead of forming one chain per packet. Worth it when the table is cold (caches
  // flushed between bursts of 32: ~60 instead of ~95 ns per destination); with a warm table the
  // extra passes cost more than they save (~10 instead of ~5 ns): prefer lookup() there.
  void lookup_bulk(const uint32_t* dst, Hop* out, uint32_t n) const noexcept;

  // Any thread holding the published table.
  size_t size() const noexcept { return routes_.size(); }
  // The routes in the order given (for the API and tests).
  const std::vector<Route>& routes() const noexcept { return routes_; }
  // Second- and third-level groups allocated (512 bytes each), the dummy not counted.
  size_t groups() const noexcept { return tbl8_.size() / 256 - 1; }

 private:
  static constexpr uint16_t kGroup = 0x8000;
  static constexpr uint16_t kIndexMask = 0x7fff;
  struct NextHop {
    uint32_t gateway;   // 0 when connected
    uint32_t dst_mask;  // all ones when connected: next hop = gateway | (dst & dst_mask)
    uint16_t port;
  };

  // An entry's next level: the group's entry for `byte` when `e` points to a group, else `e`
  // itself (read through the dummy group 0, which keeps the load unconditional).
  // Masks rather than conditionals: compilers turn `group ? a : b` back into a branch.
  static uint32_t level(const uint16_t* t8, uint32_t e, uint32_t byte) noexcept {
    const uint32_t group = 0u - (e >> 15);  // all ones when e points to a group
    const uint32_t next = t8[((e & kIndexMask & group) << 8) | byte];
    return (next & group) | (e & ~group);
  }

  std::vector<uint16_t> tbl16_ = std::vector<uint16_t>(65536, 0);
  std::vector<uint16_t> tbl8_ = std::vector<uint16_t>(256, 0);             // group 0: the dummy
  std::vector<NextHop> hops_ = std::vector<NextHop>(1, NextHop{0, 0, 0});  // [0]: no route
  std::vector<Route> routes_;  // routes_[i] is hops_[i + 1]
};

// Worker, per packet, O(quoted bytes ≤ 548). Builds into `out` (room for `cap` bytes; 600 is
// always enough) a complete Ethernet frame carrying ICMP `type`/`code` about the IPv4 packet at
// frame + ip_off (whose Ethernet header is at `frame`): its IP header and as much of its payload
// as fits in a 576-byte ICMP datagram (RFC 1812 §4.3.2.3), limited to the bytes present in both
// `frame_len` and the packet's total length. From `src_ip` (an address of the port the packet
// arrived on) to the packet's source; eth dst = the frame's source MAC, eth src = `our_mac`.
// IP: TTL 64, DF clear, id 0, TOS 0xc0 (precedence 6, RFC 1812 §4.3.2.5), no options. ICMP
// bytes 4-7 are zero except for type 3 code 4, whose bytes 6-7 carry `mtu` (RFC 1191).
// `out` may be `frame` itself (the quote is moved, the mbuf reused); otherwise they must not
// overlap. Returns the frame length, or 0 when no error may be sent (RFC 1812 §4.3.2.7) or the
// packet is too malformed to quote:
//  - it is itself an ICMP error (types 3, 4, 5, 11, 12; queries such as echo are fine), or an
//    ICMP packet too short to show its type;
//  - it is a fragment other than the first;
//  - it came as link-layer broadcast/multicast, or from a group MAC;
//  - its destination is 255.255.255.255 or multicast (224/4); directed broadcasts are known only
//    to the caller, who checks them before asking;
//  - its source is not one host: 0/8, 127/8, 224/4 (multicast) or 240/4 (incl. broadcast);
//  - version is not 4, IHL < 5, total length < IHL, or the header is not all in `frame_len`.
uint32_t build_icmp_error(uint8_t* out, uint32_t cap, const uint8_t* frame, uint32_t frame_len,
                          uint32_t ip_off, uint8_t type, uint8_t code, uint16_t mtu,
                          uint32_t src_ip, const Mac& our_mac) noexcept;

// Token bucket limiting the ICMP errors one worker sends (RFC 1812 §4.3.2.8): `per_s` per second
// on average, at most `burst` at once. One per worker, touched only by its worker; not shared.
// The clock is the caller's: ticks of any monotonic source, `ticks_per_s` of them per second
// (nanoseconds by default; pass the TSC rate to feed rte_rdtsc() directly). Arithmetic is exact
// integer credit (no drift for rates that do not divide the clock). per_s or burst 0: never.
class IcmpRateLimit {
 public:
  explicit IcmpRateLimit(uint32_t per_s = 1000, uint32_t burst = 50,
                         uint64_t ticks_per_s = 1'000'000'000) noexcept;

  // Worker, per error to send, O(1): takes a token if one is there. Starts full. A clock that
  // goes backwards adds nothing.
  bool allow(uint64_t now) noexcept;

 private:
  uint64_t per_s_;    // credit earned per tick
  uint64_t cost_;     // credit of one token: ticks_per_s
  uint64_t cap_;      // burst * cost_
  uint64_t max_gap_;  // ticks that fill an empty bucket (caps the multiplication)
  uint64_t credit_;
  uint64_t last_ = 0;
  bool started_ = false;
};

// Worker, per forwarded packet, O(1). Decrements the TTL of the IPv4 header at `ip` in place and
// updates its checksum incrementally (RFC 1624 eqn. 3: the result equals a full recompute, and a
// corrupt checksum stays corrupt). Returns false, leaving the packet untouched, when TTL ≤ 1: the
// packet must not be forwarded and the caller sends ICMP time exceeded (RFC 1812 §5.3.1).
// Per packet on workers: defined here so they inline.
inline uint16_t fold_not(uint64_t sum) noexcept {
  return static_cast<uint16_t>(~fold16(sum) & 0xffff);
}

inline bool decrement_ttl(uint8_t* ip) noexcept {
  const uint8_t ttl = ip[ipv4::kOffTtl];
  if (ttl <= 1) return false;
  ip[ipv4::kOffTtl] = static_cast<uint8_t>(ttl - 1);
  // The word at offset 8 is TTL:protocol, so it drops by 0x0100: ~m + m' = 0xffff - 0x0100.
  const uint64_t sum = static_cast<uint16_t>(~load_be16(ip + ipv4::kOffCsum)) + uint64_t{0xfeff};
  store_be16(ip + ipv4::kOffCsum, fold_not(sum));
  return true;
}

// RFC 1624 eqn. 3 incremental update of an Internet checksum when a 32-bit (address) or 16-bit
// (port) field it covers changes from `old_v` to `new_v`. Returns the new checksum field.
// Byte order: the ones'-complement sum does not depend on it (RFC 1071 §2(B)), so these work in
// either convention as long as all three values use the same one — either the numeric values
// load_be16/load_be32 return (and the result is stored with store_be16), or the raw bytes
// memcpy'd from the packet (and the result memcpy'd back). For IPv4 header and TCP checksums.
// Any thread, O(1).
inline uint16_t csum_replace4(uint16_t check, uint32_t old_v, uint32_t new_v) noexcept {
  const uint32_t nold = ~old_v;
  const uint64_t sum = uint64_t{static_cast<uint16_t>(~check)} + (nold >> 16) + (nold & 0xffff) +
                       (new_v >> 16) + (new_v & 0xffff);
  return fold_not(sum);
}
inline uint16_t csum_replace2(uint16_t check, uint16_t old_v, uint16_t new_v) noexcept {
  const uint64_t sum =
      uint64_t{static_cast<uint16_t>(~check)} + static_cast<uint16_t>(~old_v) + new_v;
  return fold_not(sum);
}

// The same for a UDP checksum: 0 ("no checksum", RFC 768) stays 0, and a result of 0 is sent as
// 0xffff. Any thread, O(1).
inline uint16_t udp_csum_replace4(uint16_t check, uint32_t old_v, uint32_t new_v) noexcept {
  if (check == 0) return 0;
  const uint16_t c = csum_replace4(check, old_v, new_v);
  return c == 0 ? 0xffff : c;
}
inline uint16_t udp_csum_replace2(uint16_t check, uint16_t old_v, uint16_t new_v) noexcept {
  if (check == 0) return 0;
  const uint16_t c = csum_replace2(check, old_v, new_v);
  return c == 0 ? 0xffff : c;
}

}  // namespace dp
