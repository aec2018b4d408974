#include "dataplane/route.h"

#include <algorithm>
#include <cassert>
#include <numeric>

#include "dataplane/snapshot.h"

namespace dp {

namespace {

std::string ip_str(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." +
         std::to_string((ip >> 8) & 0xff) + "." + std::to_string(ip & 0xff);
}

std::string route_str(const Route& r) {
  return ip_str(r.prefix) + "/" + std::to_string(r.len);
}

uint32_t host_mask(uint8_t len) noexcept {
  return len >= 32 ? 0 : (len == 0 ? 0xffffffffu : (0xffffffffu >> len));
}

// A source that names no single host (RFC 1812 §4.3.2.7, §5.3.7): 0/8, 127/8, 224/4, 240/4.
bool not_one_host(uint32_t src) noexcept {
  const uint32_t top = src >> 24;
  return top == 0 || top == 127 || top >= 224;
}

bool is_icmp_error(uint8_t type) noexcept {
  return type == icmp::kDestUnreachable || type == icmp::kSourceQuench || type == icmp::kRedirect ||
         type == icmp::kTimeExceeded || type == icmp::kParamProblem;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Fib

std::string Fib::build(std::vector<Route> routes) {
  if (routes.size() > kMaxRoutes)
    return std::to_string(routes.size()) + " routes: at most " + std::to_string(kMaxRoutes);
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    if (r.len > 32)
      return "route " + std::to_string(i) + ": prefix length " + std::to_string(r.len) +
             " is longer than 32";
    if (r.port >= kMaxPorts)
      return "route " + std::to_string(i) + " (" + route_str(r) + "): port " +
             std::to_string(r.port) + " out of range (ports 0.." + std::to_string(kMaxPorts - 1) +
             ")";
    if ((r.prefix & host_mask(r.len)) != 0)
      return "route " + std::to_string(i) + " (" + route_str(r) +
             "): host bits set beyond the prefix length";
  }

  // Insert shortest first: a longer prefix then simply overwrites the part of a shorter one it
  // covers, and every group is created after all shorter routes are in place, so it starts as a
  // copy of the best shorter match. Equal lengths never overlap once duplicates are refused.
  std::vector<uint32_t> order(routes.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (routes[a].len != routes[b].len) return routes[a].len < routes[b].len;
    return routes[a].prefix < routes[b].prefix;
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const Route& a = routes[order[k - 1]];
    const Route& b = routes[order[k]];
    if (a.len == b.len && a.prefix == b.prefix)
      return "routes " + std::to_string(std::min(order[k - 1], order[k])) + " and " +
             std::to_string(std::max(order[k - 1], order[k])) + ": duplicate prefix " +
             route_str(b);
  }

  std::vector<uint16_t> t16(65536, 0);
  std::vector<uint16_t> t8(256, 0);  // group 0: the dummy that lookup() reads when not in a group
  // Groups: at most one second-level per route longer than /16 and one third-level per route
  // longer than /24, so 2 * kMaxRoutes + 1 < kGroup: indices always fit in 15 bits.
  auto group_of = [&t8](uint16_t& entry) -> uint32_t {
    if (entry & kGroup) return entry & kIndexMask;
    const auto g = static_cast<uint32_t>(t8.size() / 256);
    assert(g < kGroup);
    t8.insert(t8.end(), 256, entry);
    entry = static_cast<uint16_t>(kGroup | g);
    return g;
  };
  for (const uint32_t i : order) {
    const Route& r = routes[i];
    const auto v = static_cast<uint16_t>(i + 1);
    if (r.len <= 16) {
      const uint32_t first = r.prefix >> 16;
      std::fill_n(t16.begin() + first, size_t{1} << (16 - r.len), v);
    } else if (r.len <= 24) {
      const uint32_t g = group_of(t16[r.prefix >> 16]);
      const uint32_t first = (g << 8) | ((r.prefix >> 8) & 0xff);
      std::fill_n(t8.begin() + first, size_t{1} << (24 - r.len), v);
    } else {
      const uint32_t g2 = group_of(t16[r.prefix >> 16]);
      // Copy the entry: group_of may grow t8 and move it.
      uint16_t e2 = t8[(g2 << 8) | ((r.prefix >> 8) & 0xff)];
      const uint32_t g3 = group_of(e2);
      t8[(g2 << 8) | ((r.prefix >> 8) & 0xff)] = e2;
      const uint32_t first = (g3 << 8) | (r.prefix & 0xff);
      std::fill_n(t8.begin() + first, size_t{1} << (32 - r.len), v);
    }
  }

  std::vector<NextHop> hops(routes.size() + 1, NextHop{0, 0, 0});
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    hops[i + 1] = NextHop{r.gateway, r.gateway == 0 ? 0xffffffffu : 0, r.port};
  }
  t8.shrink_to_fit();
  tbl16_ = std::move(t16);
  tbl8_ = std::move(t8);
  hops_ = std::move(hops);
  routes_ = std::move(routes);
  return {};
}

void Fib::lookup_bulk(const uint32_t* dst, Hop* out, uint32_t n) const noexcept {
  // Level by level across a chunk, prefetching the next level of every destination before
  // reading any of them: the misses of a chunk overlap instead of forming one chain per packet.
  constexpr uint32_t kChunk = 32;
  const uint16_t* t8 = tbl8_.data();
  uint32_t e[kChunk];
  for (uint32_t base = 0; base < n; base += kChunk) {
    const uint32_t m = std::min(kChunk, n - base);
    const uint32_t* d = dst + base;
    for (uint32_t j = 0; j < m; ++j) __builtin_prefetch(&tbl16_[d[j] >> 16]);
    for (uint32_t j = 0; j < m; ++j) {
      e[j] = tbl16_[d[j] >> 16];
      __builtin_prefetch(
          &t8[((e[j] & kIndexMask & (0u - (e[j] >> 15))) << 8) | ((d[j] >> 8) & 0xff)]);
    }
    for (uint32_t j = 0; j < m; ++j) {
      e[j] = level(t8, e[j], (d[j] >> 8) & 0xff);
      __builtin_prefetch(&t8[((e[j] & kIndexMask & (0u - (e[j] >> 15))) << 8) | (d[j] & 0xff)]);
    }
    for (uint32_t j = 0; j < m; ++j) {
      e[j] = level(t8, e[j], d[j] & 0xff);
      const NextHop& nh = hops_[e[j]];
      out[base + j] = Hop{nh.port, nh.gateway | (d[j] & nh.dst_mask), e[j] != 0};
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ICMP errors

uint32_t build_icmp_error(uint8_t* out, uint32_t cap, const uint8_t* frame, uint32_t frame_len,
                          uint32_t ip_off, uint8_t type, uint8_t code, uint16_t mtu,
                          uint32_t src_ip, const Mac& our_mac) noexcept {
  if (ip_off < kEthHdrLen || frame_len < ip_off || frame_len - ip_off < kIpv4MinHdrLen) return 0;
  const uint8_t* ip = frame + ip_off;
  if ((ip[ipv4::kOffVerIhl] >> 4) != 4) return 0;
  const uint32_t ihl = (ip[ipv4::kOffVerIhl] & 0x0fu) * 4u;
  if (ihl < kIpv4MinHdrLen || ihl > frame_len - ip_off) return 0;
  const uint32_t tot_len = load_be16(ip + ipv4::kOffTotLen);
  if (tot_len < ihl) return 0;
  // Quote only the datagram's own bytes: neither Ethernet padding nor what a short frame lacks.
  const uint32_t avail = std::min(tot_len, frame_len - ip_off);

  // RFC 1812 §4.3.2.7: when an error must not be sent.
  if ((load_be16(ip + ipv4::kOffFrag) & 0x1fff) != 0) return 0;  // not the first fragment
  const Mac eth_src = EthView::src(frame);
  if (is_multicast(EthView::dst(frame)) || is_multicast(eth_src)) return 0;
  const uint32_t src = load_be32(ip + ipv4::kOffSrc);
  const uint32_t dst = load_be32(ip + ipv4::kOffDst);
  if (not_one_host(src)) return 0;
  if (dst == 0xffffffffu || (dst >> 28) == 0xe) return 0;
  if (ip[ipv4::kOffProto] == kIpProtoIcmp) {
    if (avail <= ihl) return 0;  // cannot tell whether it is an error: stay silent
    if (is_icmp_error(ip[ihl])) return 0;
  }

  constexpr uint32_t kHdrs = kEthHdrLen + kIpv4MinHdrLen + kIcmpHdrLen;  // 42
  // RFC 792: at least the header and the first 8 data bytes (or all there is).
  const uint32_t need = ihl + std::min<uint32_t>(8, avail - ihl);
  if (cap < kHdrs + need) return 0;
  const uint32_t quote = std::min<uint32_t>(
      {avail, icmp::kErrorMaxDatagram - kIpv4MinHdrLen - kIcmpHdrLen, cap - kHdrs});

  // Everything needed from the offending frame is read above: `out` may now overwrite it.
  std::memmove(out + kHdrs, ip, quote);

  uint8_t* ic = out + kEthHdrLen + kIpv4MinHdrLen;
  ic[0] = type;
  ic[1] = code;
  store_be16(ic + 2, 0);
  store_be32(ic + 4, 0);
  if (type == icmp::kDestUnreachable && code == icmp::kFragNeeded) store_be16(ic + 6, mtu);
  store_be16(ic + 2, csum(ic, kIcmpHdrLen + quote));

  uint8_t* oip = out + kEthHdrLen;
  const auto ip_len = static_cast<uint16_t>(kIpv4MinHdrLen + kIcmpHdrLen + quote);
  oip[ipv4::kOffVerIhl] = 0x45;
  oip[ipv4::kOffTos] = 0xc0;  // precedence 6, internetwork control (RFC 1812 §4.3.2.5)
  store_be16(oip + ipv4::kOffTotLen, ip_len);
  store_be16(oip + ipv4::kOffId, 0);
  store_be16(oip + ipv4::kOffFrag, 0);
  oip[ipv4::kOffTtl] = 64;
  oip[ipv4::kOffProto] = kIpProtoIcmp;
  store_be32(oip + ipv4::kOffSrc, src_ip);
  store_be32(oip + ipv4::kOffDst, src);
  const uint64_t hsum = 0x45c0u + ip_len + ((64u << 8) | kIpProtoIcmp) + (src_ip >> 16) +
                        (src_ip & 0xffff) + (src >> 16) + (src & 0xffff);
  store_be16(oip + ipv4::kOffCsum, fold_not(hsum));

  write_eth(out, eth_src, our_mac, kEtherTypeIpv4);
  return kHdrs + quote;
}

IcmpRateLimit::IcmpRateLimit(uint32_t per_s, uint32_t burst, uint64_t ticks_per_s) noexcept
    : per_s_(burst == 0 ? 0 : per_s),
      cost_(std::clamp<uint64_t>(ticks_per_s, 1, uint64_t{1} << 40)) {
  // Keep credit + one refill below 2^64: cap_ ≤ 2^62 and a refill adds at most cap_ + per_s_.
  // A clock above 2^40 ticks/s (1 THz) or a burst above 2^22 tokens at such a clock is clamped.
  constexpr uint64_t kMaxCap = uint64_t{1} << 62;
  cap_ = per_s_ == 0 ? 0 : std::min<uint64_t>(burst, kMaxCap / cost_) * cost_;
  max_gap_ = per_s_ == 0 ? 0 : cap_ / per_s_ + 1;
  credit_ = cap_;
}

bool IcmpRateLimit::allow(uint64_t now) noexcept {
  if (now > last_) {
    const uint64_t gap = std::min(now - last_, max_gap_);
    credit_ = std::min(cap_, credit_ + gap * per_s_);
    last_ = now;
  }
  if (credit_ < cost_) return false;
  credit_ -= cost_;
  return true;
}

}  // namespace dp
