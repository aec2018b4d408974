#include "lb/model.h"

#include <charconv>

#include "config/model.h"

namespace lb {

std::string_view to_string(Proto p) noexcept {
  return p == Proto::kUdp ? "UDP" : "TCP";
}

std::string_view to_string(Fwd f) noexcept {
  switch (f) {
    case Fwd::kNat: return "nat";
    case Fwd::kDr: return "dr";
    case Fwd::kTun: return "tun";
  }
  return "?";
}

std::string_view to_string(Sched s) noexcept {
  switch (s) {
    case Sched::kRr: return "rr";
    case Sched::kWrr: return "wrr";
    case Sched::kLc: return "lc";
    case Sched::kWlc: return "wlc";
    case Sched::kSh: return "sh";
    case Sched::kMh: return "mh";
  }
  return "?";
}

std::optional<Sched> parse_sched(std::string_view s) noexcept {
  for (Sched v : {Sched::kRr, Sched::kWrr, Sched::kLc, Sched::kWlc, Sched::kSh, Sched::kMh})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

std::optional<Fwd> parse_fwd(std::string_view s) noexcept {
  if (s == "nat" || s == "masq" || s == "NAT") return Fwd::kNat;
  if (s == "dr" || s == "gate" || s == "route" || s == "DR") return Fwd::kDr;
  if (s == "tun" || s == "ipip" || s == "TUN") return Fwd::kTun;
  return std::nullopt;
}

std::string format_endpoint(uint32_t ip, uint16_t port) {
  return cfg::format_ipv4(ip) + ":" + std::to_string(port);
}

std::string format_key(const ServiceKey& k) {
  return std::string(to_string(k.proto)) + " " + format_endpoint(k.vip, k.port);
}

std::optional<std::pair<uint32_t, uint16_t>> parse_endpoint(std::string_view s) noexcept {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= s.size()) return std::nullopt;
  const auto ip = cfg::parse_ipv4(std::string(s.substr(0, colon)));
  if (!ip) return std::nullopt;
  unsigned port = 0;
  const char* b = s.data() + colon + 1;
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, port);
  if (ec != std::errc() || p != e || port > 65535) return std::nullopt;
  return std::make_pair(*ip, static_cast<uint16_t>(port));
}

}  // namespace lb
