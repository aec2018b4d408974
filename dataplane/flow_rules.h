#pragma once
// Hardware steering of load-balanced flows (rte_flow), where the NIC supports it: both
// directions of a flow must reach the worker that owns its connection. The rules hash the client
// address alone, with one RSS key on every port:
//   client side: IPv4 dst = VIP, TCP|UDP dst port = service port → RSS over the L3 source only
//   server side: IPv4 src = NAT real server, src port = its port → RSS over the L3 destination only
// The Toeplitz input is the same 4 bytes (the client address) in both directions, so with the
// same key and the same queue list both land on the same queue. Where rules cannot be installed
// (net_af_packet, net_tap on this kernel, NICs without rte_flow RSS), the workers steer in
// software (dp::owner_of and the hand-off rings), which is what runs in the lab.
//
// plan_flow_rules and build_rte_flow are pure (rte_flow structures, no EAL call): unit-tested.
// Dataplane::install_flow_rules validates every rule, then creates them.

#include <rte_flow.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace dp {

struct FlowRuleSpec {
  enum class Side : uint8_t { kClient, kServer };
  uint16_t port = 0;  // our port index
  Side side = Side::kClient;
  uint32_t addr = 0;     // client side: the VIP; server side: the real server (host order)
  uint8_t proto = 6;     // 6 TCP, 17 UDP
  uint16_t l4_port = 0;  // client side: the service port; server side: the real's port; 0 = any
  uint16_t n_queues = 0;  // the workers' RX queues 0..n_queues-1 (queue i = worker i)
  bool operator==(const FlowRuleSpec&) const = default;
};

// The fixed RSS key every rule uses (40 bytes, the size Toeplitz NICs take).
extern const std::array<uint8_t, 40> kFlowRssKey;

// A rule in rte_flow's terms. Self-contained: items and actions point into the object itself, so
// keep it where it was built (no copies) until rte_flow_create returned.
struct RteFlowRule {
  rte_flow_attr attr{};
  rte_flow_item items[4]{};
  rte_flow_item_ipv4 ip_spec{}, ip_mask{};
  rte_flow_item_tcp tcp_spec{}, tcp_mask{};
  rte_flow_item_udp udp_spec{}, udp_mask{};
  rte_flow_action actions[2]{};
  rte_flow_action_rss rss{};
  uint16_t queues[64]{};
};

// Fills `out` for `spec`. Items: ETH (any), IPV4 (dst or src address, exact), TCP or UDP (dst or
// src port when not 0), END. Actions: RSS (types = IPv4 + TCP/UDP with L3_SRC_ONLY on the client
// side, L3_DST_ONLY on the server side; kFlowRssKey; queues 0..n-1), END. Ingress.
void build_rte_flow(const FlowRuleSpec& spec, RteFlowRule& out) noexcept;

// A readable form for the log: "port 0: ipv4 dst 192.0.2.100 tcp dst 80 -> rss(l3-src) queues 0-1".
std::string describe(const FlowRuleSpec& spec);

}  // namespace dp
