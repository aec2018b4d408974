#include "dataplane/flow_rules.h"

#include <arpa/inet.h>
#include <rte_ethdev.h>

namespace dp {

// Microsoft's published Toeplitz verification key, widely used as the default RSS key.
const std::array<uint8_t, 40> kFlowRssKey{
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

void build_rte_flow(const FlowRuleSpec& spec, RteFlowRule& out) noexcept {
  out = RteFlowRule{};
  out.attr.ingress = 1;
  const bool client = spec.side == FlowRuleSpec::Side::kClient;
  out.items[0].type = RTE_FLOW_ITEM_TYPE_ETH;
  out.items[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
  (client ? out.ip_spec.hdr.dst_addr : out.ip_spec.hdr.src_addr) = htonl(spec.addr);
  (client ? out.ip_mask.hdr.dst_addr : out.ip_mask.hdr.src_addr) = 0xffffffffu;
  out.ip_spec.hdr.next_proto_id = spec.proto;
  out.ip_mask.hdr.next_proto_id = 0xff;
  out.items[1].spec = &out.ip_spec;
  out.items[1].mask = &out.ip_mask;
  const uint16_t port_be = htons(spec.l4_port);
  const uint16_t mask_be = spec.l4_port != 0 ? 0xffff : 0;
  if (spec.proto == 17) {
    out.items[2].type = RTE_FLOW_ITEM_TYPE_UDP;
    (client ? out.udp_spec.hdr.dst_port : out.udp_spec.hdr.src_port) = port_be;
    (client ? out.udp_mask.hdr.dst_port : out.udp_mask.hdr.src_port) = mask_be;
    out.items[2].spec = &out.udp_spec;
    out.items[2].mask = &out.udp_mask;
  } else {
    out.items[2].type = RTE_FLOW_ITEM_TYPE_TCP;
    (client ? out.tcp_spec.hdr.dst_port : out.tcp_spec.hdr.src_port) = port_be;
    (client ? out.tcp_mask.hdr.dst_port : out.tcp_mask.hdr.src_port) = mask_be;
    out.items[2].spec = &out.tcp_spec;
    out.items[2].mask = &out.tcp_mask;
  }
  out.items[3].type = RTE_FLOW_ITEM_TYPE_END;

  const uint16_t n = spec.n_queues < 64 ? spec.n_queues : 64;
  for (uint16_t q = 0; q < n; ++q) out.queues[q] = q;
  out.rss.func = RTE_ETH_HASH_FUNCTION_TOEPLITZ;
  out.rss.level = 0;
  out.rss.types = RTE_ETH_RSS_IPV4 |
                  (spec.proto == 17 ? RTE_ETH_RSS_NONFRAG_IPV4_UDP : RTE_ETH_RSS_NONFRAG_IPV4_TCP) |
                  (client ? RTE_ETH_RSS_L3_SRC_ONLY : RTE_ETH_RSS_L3_DST_ONLY);
  out.rss.key_len = static_cast<uint32_t>(kFlowRssKey.size());
  out.rss.key = kFlowRssKey.data();
  out.rss.queue_num = n;
  out.rss.queue = out.queues;
  out.actions[0].type = RTE_FLOW_ACTION_TYPE_RSS;
  out.actions[0].conf = &out.rss;
  out.actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

std::string describe(const FlowRuleSpec& spec) {
  const bool client = spec.side == FlowRuleSpec::Side::kClient;
  char addr[INET_ADDRSTRLEN];
  const uint32_t be = htonl(spec.addr);
  inet_ntop(AF_INET, &be, addr, sizeof addr);
  std::string s = "port " + std::to_string(spec.port) + ": ipv4 " + (client ? "dst " : "src ") +
                  addr + (spec.proto == 17 ? " udp" : " tcp");
  if (spec.l4_port != 0) s += std::string(client ? " dst " : " src ") + std::to_string(spec.l4_port);
  s += std::string(" -> rss(") + (client ? "l3-src" : "l3-dst") + ") queues 0-" +
       std::to_string(spec.n_queues == 0 ? 0 : spec.n_queues - 1);
  return s;
}

}  // namespace dp
