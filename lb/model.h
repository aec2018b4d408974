#pragma once
// The load balancer's vocabulary, shared by the config parser, the control plane (tandemctl lb,
// ipvsadm compatibility, health checks) and the workers' snapshot. Plain data, no DPDK.
// Addresses and ports in host byte order.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lb {

enum class Proto : uint8_t { kTcp = 6, kUdp = 17 };

// How a packet reaches a real server (ipvsadm -m / -g / -i).
enum class Fwd : uint8_t {
  kNat,  // masquerading: destination rewritten to the real server, replies rewritten back
  kDr,   // direct routing ("gatewaying"): only the Ethernet destination changes
  kTun,  // IPIP tunnelling: the packet is wrapped in an outer IPv4 header to the real server
};

// Schedulers (ipvsadm -s). ipvsadm's default is wlc.
enum class Sched : uint8_t { kRr, kWrr, kLc, kWlc, kSh, kMh };

std::string_view to_string(Proto p) noexcept;  // "TCP" / "UDP"
std::string_view to_string(Fwd f) noexcept;    // "nat" / "dr" / "tun"
std::string_view to_string(Sched s) noexcept;  // "rr", "wrr", "lc", "wlc", "sh", "mh"
std::optional<Sched> parse_sched(std::string_view s) noexcept;
std::optional<Fwd> parse_fwd(std::string_view s) noexcept;  // "nat"|"masq", "dr"|"gate"|"route", "tun"|"ipip"

// A virtual service: protocol, virtual address and port (0: every port, ipvsadm's "-p" services
// with port 0 / keepalived's "virtual_server IP 0").
struct ServiceKey {
  Proto proto = Proto::kTcp;
  uint32_t vip = 0;
  uint16_t port = 0;
  bool operator==(const ServiceKey&) const = default;
};

struct RealServer {
  uint32_t ip = 0;
  uint16_t port = 0;  // 0: the client's destination port (all-port services, DR/TUN)
  Fwd fwd = Fwd::kNat;
  uint32_t weight = 1;  // 0..65535; 0 = drain: existing connections stay, no new ones
  bool operator==(const RealServer&) const = default;
};

struct ServiceSpec {
  ServiceKey key;
  Sched sched = Sched::kWlc;
  uint32_t persist_s = 0;                // 0: no persistence (ipvsadm -p TIMEOUT)
  uint32_t persist_mask = 0xffffffffu;   // ipvsadm -M NETMASK (client address mask)
  std::vector<RealServer> reals;
  bool operator==(const ServiceSpec&) const = default;
};

// "TCP 192.0.2.100:80" style label used by logs, CLI and metrics ("192.0.2.100:80/tcp" for
// metrics labels is built by the caller).
std::string format_key(const ServiceKey& k);
std::string format_endpoint(uint32_t ip, uint16_t port);  // "A.B.C.D:P"
// Parses "A.B.C.D:PORT" (port 0..65535). nullopt when malformed.
std::optional<std::pair<uint32_t, uint16_t>> parse_endpoint(std::string_view s) noexcept;

}  // namespace lb
