// The rte_flow rule builders: pure structures, no EAL. They must express "hash the client address
// only" identically on both sides of a flow, so the NIC sends both directions to one queue.
#include "dataplane/flow_rules.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_ethdev.h>

#include "control/lb_translate.h"

namespace {

using dp::FlowRuleSpec;

FlowRuleSpec spec(FlowRuleSpec::Side side, uint32_t addr, uint8_t proto, uint16_t port) {
  FlowRuleSpec s;
  s.port = 1;
  s.side = side;
  s.addr = addr;
  s.proto = proto;
  s.l4_port = port;
  s.n_queues = 4;
  return s;
}

constexpr uint32_t kVip = 0xc0000264;  // 192.0.2.100
constexpr uint32_t kRs = 0xc633640b;   // 198.51.100.11

TEST(FlowRules, ClientSideMatchesVipAndPortAndHashesTheSource) {
  dp::RteFlowRule r;
  dp::build_rte_flow(spec(FlowRuleSpec::Side::kClient, kVip, 6, 80), r);
  EXPECT_EQ(r.attr.ingress, 1u);
  EXPECT_EQ(r.items[0].type, RTE_FLOW_ITEM_TYPE_ETH);
  ASSERT_EQ(r.items[1].type, RTE_FLOW_ITEM_TYPE_IPV4);
  const auto* ip = static_cast<const rte_flow_item_ipv4*>(r.items[1].spec);
  const auto* ipm = static_cast<const rte_flow_item_ipv4*>(r.items[1].mask);
  EXPECT_EQ(ntohl(ip->hdr.dst_addr), kVip);
  EXPECT_EQ(ipm->hdr.dst_addr, 0xffffffffu);
  EXPECT_EQ(ipm->hdr.src_addr, 0u);
  EXPECT_EQ(ip->hdr.next_proto_id, 6);
  ASSERT_EQ(r.items[2].type, RTE_FLOW_ITEM_TYPE_TCP);
  const auto* tcp = static_cast<const rte_flow_item_tcp*>(r.items[2].spec);
  const auto* tcpm = static_cast<const rte_flow_item_tcp*>(r.items[2].mask);
  EXPECT_EQ(ntohs(tcp->hdr.dst_port), 80);
  EXPECT_EQ(tcpm->hdr.dst_port, 0xffff);
  EXPECT_EQ(tcpm->hdr.src_port, 0);
  EXPECT_EQ(r.items[3].type, RTE_FLOW_ITEM_TYPE_END);
  ASSERT_EQ(r.actions[0].type, RTE_FLOW_ACTION_TYPE_RSS);
  EXPECT_EQ(r.actions[1].type, RTE_FLOW_ACTION_TYPE_END);
  const auto* rss = static_cast<const rte_flow_action_rss*>(r.actions[0].conf);
  EXPECT_TRUE(rss->types & RTE_ETH_RSS_L3_SRC_ONLY);
  EXPECT_FALSE(rss->types & RTE_ETH_RSS_L3_DST_ONLY);
  EXPECT_TRUE(rss->types & RTE_ETH_RSS_NONFRAG_IPV4_TCP);
  ASSERT_EQ(rss->queue_num, 4u);
  for (uint16_t q = 0; q < 4; ++q) EXPECT_EQ(rss->queue[q], q);
  EXPECT_EQ(rss->key_len, 40u);
  EXPECT_EQ(rss->func, RTE_ETH_HASH_FUNCTION_TOEPLITZ);
}

TEST(FlowRules, ServerSideMatchesTheRealServerAndHashesTheDestination) {
  dp::RteFlowRule r;
  dp::build_rte_flow(spec(FlowRuleSpec::Side::kServer, kRs, 17, 53), r);
  const auto* ip = static_cast<const rte_flow_item_ipv4*>(r.items[1].spec);
  const auto* ipm = static_cast<const rte_flow_item_ipv4*>(r.items[1].mask);
  EXPECT_EQ(ntohl(ip->hdr.src_addr), kRs);
  EXPECT_EQ(ipm->hdr.src_addr, 0xffffffffu);
  EXPECT_EQ(ipm->hdr.dst_addr, 0u);
  ASSERT_EQ(r.items[2].type, RTE_FLOW_ITEM_TYPE_UDP);
  const auto* udp = static_cast<const rte_flow_item_udp*>(r.items[2].spec);
  const auto* udpm = static_cast<const rte_flow_item_udp*>(r.items[2].mask);
  EXPECT_EQ(ntohs(udp->hdr.src_port), 53);
  EXPECT_EQ(udpm->hdr.src_port, 0xffff);
  EXPECT_EQ(udpm->hdr.dst_port, 0);
  const auto* rss = static_cast<const rte_flow_action_rss*>(r.actions[0].conf);
  EXPECT_TRUE(rss->types & RTE_ETH_RSS_L3_DST_ONLY);
  EXPECT_FALSE(rss->types & RTE_ETH_RSS_L3_SRC_ONLY);
  EXPECT_TRUE(rss->types & RTE_ETH_RSS_NONFRAG_IPV4_UDP);
}

TEST(FlowRules, BothSidesShareKeyAndQueues) {
  dp::RteFlowRule a, b;
  dp::build_rte_flow(spec(FlowRuleSpec::Side::kClient, kVip, 6, 80), a);
  dp::build_rte_flow(spec(FlowRuleSpec::Side::kServer, kRs, 6, 8080), b);
  const auto* ra = static_cast<const rte_flow_action_rss*>(a.actions[0].conf);
  const auto* rb = static_cast<const rte_flow_action_rss*>(b.actions[0].conf);
  ASSERT_EQ(ra->key_len, rb->key_len);
  EXPECT_EQ(0, memcmp(ra->key, rb->key, ra->key_len));
  ASSERT_EQ(ra->queue_num, rb->queue_num);
  EXPECT_EQ(0, memcmp(ra->queue, rb->queue, ra->queue_num * sizeof(uint16_t)));
  // Pointers stay inside each rule (nothing shared between them but the constant key).
  EXPECT_EQ(a.items[1].spec, &a.ip_spec);
  EXPECT_EQ(b.items[2].spec, &b.tcp_spec);
}

TEST(FlowRules, AnyPortLeavesTheL4MaskEmpty) {
  dp::RteFlowRule r;
  dp::build_rte_flow(spec(FlowRuleSpec::Side::kClient, kVip, 6, 0), r);
  const auto* tcpm = static_cast<const rte_flow_item_tcp*>(r.items[2].mask);
  EXPECT_EQ(tcpm->hdr.dst_port, 0);
  EXPECT_EQ(dp::describe(spec(FlowRuleSpec::Side::kClient, kVip, 6, 0)),
            "port 1: ipv4 dst 192.0.2.100 tcp -> rss(l3-src) queues 0-3");
  EXPECT_EQ(dp::describe(spec(FlowRuleSpec::Side::kServer, kRs, 6, 80)),
            "port 1: ipv4 src 198.51.100.11 tcp src 80 -> rss(l3-dst) queues 0-3");
}

TEST(FlowRules, PlanCoversVipPortAndNatRealServers) {
  const char* text = R"(
    dataplane = { worker_cores = [1, 2]; };
    ports = ( { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
              { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; } );
    vrrp = { instances = ( { name = "F"; port = "front0"; vrid = 1;
                             virtual_ips = [ "192.0.2.100/24" ]; } ); };
    lb = { services = (
      { vip = "192.0.2.100"; port = 80; scheduler = "rr";
        reals = ( { address = "198.51.100.11"; },
                  { address = "198.51.100.12"; mode = "dr"; } ); } ); };
  )";
  const cfg::LoadResult lr = cfg::load_string(text, "t.conf");
  ASSERT_TRUE(lr.config) << (lr.errors.empty() ? "" : lr.errors[0].str());
  const cfg::Config& c = *lr.config;
  dp::ForwardConfig f;
  ASSERT_EQ(ctl::make_fib(c, f.fib), "");
  ctl::LbIds ids;
  f.lb = ctl::make_lb_table(ctl::config_services(c), ids, {}, 65537);
  EXPECT_TRUE(ctl::plan_flow_rules(c, f, 1).empty()) << "one worker needs no steering";
  const auto rules = ctl::plan_flow_rules(c, f, 2);
  ASSERT_EQ(rules.size(), 2u) << "the VIP on front0 and the NAT real server on back0 (not DR)";
  EXPECT_EQ(rules[0].side, FlowRuleSpec::Side::kClient);
  EXPECT_EQ(rules[0].port, 0);
  EXPECT_EQ(rules[0].addr, kVip);
  EXPECT_EQ(rules[0].l4_port, 80);
  EXPECT_EQ(rules[1].side, FlowRuleSpec::Side::kServer);
  EXPECT_EQ(rules[1].port, 1);
  EXPECT_EQ(rules[1].addr, kRs);
  EXPECT_EQ(rules[1].n_queues, 2);
}

}  // namespace
