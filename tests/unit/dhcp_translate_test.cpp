// ctl::make_dhcp_config / fill_lease_store: a configuration read by cfg::load_string becomes the
// server snapshot and the worker's lease store, and the server then answers as the
// configuration says.

#include "control/dhcp_translate.h"

#include <gtest/gtest.h>

#include <memory>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ctl {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr const char* kConf = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
dhcp = {
  authoritative = false;
  default_lease_s = 7200;
  min_lease_s = 600;
  max_lease_s = 172800;
  renew_permille = 400;
  rebind_permille = 800;
  offer_hold_ms = 5000;
  decline_hold_s = 600;
  options = (
    { name = "domain-name-servers"; value = [ "192.0.2.53", "198.51.100.53" ]; },
    { name = "domain-name"; value = "lab.example"; }
  );
  classes = (
    { name = "phones"; vendor_class_prefix = "Yealink"; },
    { name = "olt7"; circuit_id_prefix = "olt7/"; },
    { name = "pxe"; vendor_class = "PXEClient"; }
  );
  subnets = (
    {
      subnet = "192.0.2.0/24";
      port = "front0";
      server_id = "192.0.2.100";
      authoritative = true;
      default_lease_s = 600;
      renew_permille = 500; rebind_permille = 875;
      options = ( { name = "routers"; value = [ "192.0.2.1" ]; } );
      pools = (
        { range = "192.0.2.150 - 192.0.2.199"; classes = [ "phones", "pxe" ]; max_lease_s = 3600;
          options = ( { name = "tftp-server-name"; value = "tftp.lab.example"; } ); },
        { range = "192.0.2.200-192.0.2.250"; }
      );
      hosts = (
        { name = "printer"; mac = "02:00:00:00:00:50"; ip = "192.0.2.50";
          options = ( { name = "host-name"; value = "printer"; } ); },
        { client_id = "01:02:00:00:00:00:51"; ip = "192.0.2.51"; },
        { name = "cpe-7"; circuit_id = "olt7/1/1"; ip = "192.0.2.160"; }
      );
    },
    {
      subnet = "198.18.0.0/16";
      relays = [ "192.0.2.10", "192.0.2.11" ];
      min_secs = 4;
      pools = ( { range = "198.18.0.10 - 198.18.0.250"; } );
    },
    {
      subnet = "198.51.100.0/24";
      pools = ( { range = "198.51.100.10 - 198.51.100.20"; } );
    }
  );
};
)";

cfg::Config load(const std::string& text) {
  cfg::LoadResult r = cfg::load_string(text, "t.conf");
  for (const auto& e : r.errors) ADD_FAILURE() << e.str();
  return r.config.value_or(cfg::Config{});
}

Bytes encode(dhcp::MessageType type, const std::array<uint8_t, 6>& mac, uint32_t giaddr,
             uint16_t secs, const std::vector<std::pair<uint8_t, Bytes>>& opts) {
  Bytes b(240, 0);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b[4] = 0x42;
  b[8] = uint8_t(secs >> 8);
  b[9] = uint8_t(secs);
  for (int i = 0; i < 4; ++i) b[24 + i] = uint8_t(giaddr >> (24 - 8 * i));
  for (int i = 0; i < 6; ++i) b[28 + i] = mac[i];
  b[236] = 0x63;
  b[237] = 0x82;
  b[238] = 0x53;
  b[239] = 0x63;
  b.push_back(53);
  b.push_back(1);
  b.push_back(uint8_t(type));
  for (const auto& [code, v] : opts) {
    b.push_back(code);
    b.push_back(uint8_t(v.size()));
    for (uint8_t x : v) b.push_back(x);
  }
  b.push_back(255);
  return b;
}

uint32_t yiaddr(const std::array<uint8_t, dhcp::kMaxReplyLen>& out) {
  return (uint32_t(out[16]) << 24) | (uint32_t(out[17]) << 16) | (uint32_t(out[18]) << 8) | out[19];
}

TEST(DhcpTranslate, SnapshotFollowsTheConfiguration) {
  const cfg::Config c = load(kConf);
  const dhcp::ServerConfig sc = make_dhcp_config(c);
  ASSERT_EQ(sc.subnets.size(), 3u);
  ASSERT_EQ(sc.pools.size(), 4u);
  ASSERT_EQ(sc.hosts.size(), 3u);
  ASSERT_EQ(sc.classes.size(), 3u);
  ASSERT_EQ(sc.port_addresses.size(), 2u);

  const dhcp::SubnetConf& a = sc.subnets[0];
  EXPECT_EQ(a.network, ip4(192, 0, 2, 0));
  EXPECT_EQ(a.len, 24);
  EXPECT_EQ(a.port, 0u);
  EXPECT_EQ(a.server_id, ip4(192, 0, 2, 100));
  EXPECT_TRUE(a.authoritative);
  EXPECT_EQ(a.renew_permille, 500);
  EXPECT_EQ(a.lease.default_s, 600u);
  EXPECT_EQ(a.first_pool, 0u);
  EXPECT_EQ(a.pool_count, 2u);
  ASSERT_NE(a.options, dhcp::kNoIndex);
  EXPECT_EQ(
      std::vector<uint8_t>(sc.tables[a.options].get(3).begin(), sc.tables[a.options].get(3).end()),
      (Bytes{192, 0, 2, 1}));
  const dhcp::SubnetConf& b = sc.subnets[1];
  EXPECT_EQ(b.port, dhcp::kNoIndex);
  EXPECT_FALSE(b.authoritative);
  EXPECT_EQ(b.min_secs, 4);
  EXPECT_EQ(b.renew_permille, 400);
  EXPECT_EQ(b.rebind_permille, 800);
  EXPECT_EQ(b.options, dhcp::kNoIndex);

  EXPECT_EQ(sc.pools[0].classes, 0b101u);  // phones, pxe
  EXPECT_EQ(sc.pools[0].lease.max_s, 3600u);
  EXPECT_EQ(sc.pools[1].classes, 0u);
  EXPECT_EQ(sc.pools[2].subnet, 1u);

  EXPECT_EQ(sc.hosts[0].key, dhcp::HostKey::kMac);
  EXPECT_EQ(sc.hosts[0].pool, dhcp::kNoIndex);  // 192.0.2.50: outside the pools
  EXPECT_EQ(sc.hosts[1].key, dhcp::HostKey::kClientId);
  EXPECT_EQ(sc.hosts[2].key, dhcp::HostKey::kCircuitId);
  EXPECT_EQ(sc.hosts[2].pool, 0u);

  ASSERT_NE(sc.global_options, dhcp::kNoIndex);
  EXPECT_EQ(sc.tables[sc.global_options].codes().size(), 2u);
  EXPECT_EQ(sc.tables[sc.global_options].get(6).size(), 8u);

  // Selection indexes: front0 serves subnet 0, back0 the port-less subnet 2 (its address is in
  // it); both relays select subnet 1.
  ASSERT_EQ(sc.by_port.size(), 2u);
  ASSERT_EQ(sc.by_port[0].count, 1u);
  EXPECT_EQ(sc.lists[sc.by_port[0].off], 0u);
  ASSERT_EQ(sc.by_port[1].count, 1u);
  EXPECT_EQ(sc.lists[sc.by_port[1].off], 2u);
  ASSERT_EQ(sc.relays.size(), 2u);
  EXPECT_EQ(sc.relays[0].ip, ip4(192, 0, 2, 10));
  EXPECT_EQ(sc.lists[sc.relays[1].subnets.off], 1u);
}

TEST(DhcpTranslate, LeaseStoreAndServerEndToEnd) {
  const cfg::Config c = load(kConf);
  const dhcp::ServerConfig sc = make_dhcp_config(c);
  const dhcp::LeaseStore::Params p = lease_params(c, sc, 0);
  EXPECT_EQ(p.offer_hold_ns, 5'000'000'000u);
  EXPECT_EQ(p.decline_hold_ns, 600'000'000'000u);
  EXPECT_EQ(p.max_addresses, 50u + 51u + 241u + 11u);
  EXPECT_EQ(lease_params(c, sc, 1).max_addresses, 1u);

  dhcp::LeaseStore store(p);
  std::string err;
  ASSERT_TRUE(fill_lease_store(c, sc, 0, store, &err)) << err;
  EXPECT_EQ(store.stats(0).size, 50u);
  EXPECT_EQ(store.stats(3).size, 11u);
  dhcp::LeaseStore other(lease_params(c, sc, 1));
  ASSERT_TRUE(fill_lease_store(c, sc, 1, other, &err));
  EXPECT_EQ(other.stats(0).size, 0u);

  dhcp::Server server(sc, store);
  std::vector<dhcp::LeaseEvent> events;
  events.reserve(8);
  std::array<uint8_t, dhcp::kMaxReplyLen> out{};
  const auto ask = [&](const Bytes& bytes, uint32_t port) {
    dhcp::Request req;
    dhcp::Malformed why{};
    EXPECT_TRUE(dhcp::parse(bytes, req, why));
    events.clear();
    return server.handle(req, dhcp::Ingress{port, port == 0 ? ip4(192, 0, 2, 2) : 0, true},
                         1'000'000'000'000, out, &events);
  };
  const std::array<uint8_t, 6> printer{0x02, 0, 0, 0, 0, 0x50};
  const std::array<uint8_t, 6> phone{0x02, 0, 0, 0, 0, 0x60};
  const std::array<uint8_t, 6> laptop{0x02, 0, 0, 0, 0, 0x61};

  dhcp::Outcome o = ask(encode(dhcp::MessageType::kDiscover, printer, 0, 0, {}), 0);
  ASSERT_EQ(o.sent, dhcp::MessageType::kOffer);
  EXPECT_EQ(yiaddr(out), ip4(192, 0, 2, 50));
  EXPECT_EQ(o.dst.src_ip, ip4(192, 0, 2, 100));

  o = ask(encode(dhcp::MessageType::kDiscover, phone, 0, 0,
                 {{60, Bytes{'Y', 'e', 'a', 'l', 'i', 'n', 'k', '-', 'T'}}}),
          0);
  ASSERT_EQ(o.sent, dhcp::MessageType::kOffer);
  EXPECT_GE(yiaddr(out), ip4(192, 0, 2, 150));
  EXPECT_LE(yiaddr(out), ip4(192, 0, 2, 199));
  EXPECT_NE(yiaddr(out), ip4(192, 0, 2, 160));  // reserved for cpe-7

  o = ask(encode(dhcp::MessageType::kDiscover, laptop, 0, 0, {}), 0);
  ASSERT_EQ(o.sent, dhcp::MessageType::kOffer);
  EXPECT_GE(yiaddr(out), ip4(192, 0, 2, 200));

  // cpe-7 is a host of subnet 0 by circuit-id: a request carrying that circuit gets its address
  // (inside the class pool, whatever its classes), before any lease the client already has.
  const Bytes ri{1, 8, 'o', 'l', 't', '7', '/', '1', '/', '1'};
  o = ask(encode(dhcp::MessageType::kDiscover, laptop, 0, 0, {{82, ri}}), 0);
  ASSERT_EQ(o.sent, dhcp::MessageType::kOffer);
  EXPECT_EQ(yiaddr(out), ip4(192, 0, 2, 160));

  o = ask(encode(dhcp::MessageType::kDiscover, laptop, ip4(192, 0, 2, 11), 3, {}), 1);
  EXPECT_EQ(o.reason, dhcp::Reason::kMinSecs);
  o = ask(encode(dhcp::MessageType::kDiscover, laptop, ip4(192, 0, 2, 11), 4, {}), 1);
  ASSERT_EQ(o.sent, dhcp::MessageType::kOffer);
  EXPECT_GE(yiaddr(out), ip4(198, 18, 0, 10));
  EXPECT_EQ(o.dst.ip, ip4(192, 0, 2, 11));

  o = ask(encode(dhcp::MessageType::kDiscover, laptop, 0, 0, {}), 1);
  ASSERT_EQ(o.sent, dhcp::MessageType::kOffer);
  EXPECT_GE(yiaddr(out), ip4(198, 51, 100, 10));
  EXPECT_LE(yiaddr(out), ip4(198, 51, 100, 20));
  EXPECT_EQ(o.dst.src_ip, 0u) << "back0 has an address but ingress said 0";
}

TEST(DhcpTranslate, TooManyClassesIsRefused) {
  // The parser already refuses more than 64 classes with FILE:LINE (config_test); this guards a
  // Config built another way (e.g. replicated from a peer) from silently wrapping the class mask.
  cfg::Config c = load(
      "ports = ( { name = \"p0\"; device = \"net_ring0\"; } );\n"
      "dhcp = { classes = ( { name = \"c0\"; vendor_class = \"v0\"; } ); };\n");
  ASSERT_EQ(c.dhcp.classes.size(), 1u);
  for (int i = 1; i < 65; ++i) {
    c.dhcp.classes.push_back(c.dhcp.classes[0]);
    c.dhcp.classes.back().name = "c" + std::to_string(i);
  }
  EXPECT_THROW(make_dhcp_config(c), std::length_error);
}

// Share-nothing slices: every pool address belongs to exactly one worker, and a reserved address
// to the worker its client is dispatched to.
TEST(DhcpTranslate, WorkerSlicesPartitionEveryPool) {
  for (uint32_t n : {2u, 3u, 7u}) {
    cfg::Config c = load(kConf);
    c.dataplane.worker_cores.resize(n, 1);
    const dhcp::ServerConfig sc = make_dhcp_config(c);
    std::vector<std::unique_ptr<dhcp::LeaseStore>> stores;
    uint64_t total = 0;
    for (uint32_t w = 0; w < n; ++w) {
      stores.push_back(std::make_unique<dhcp::LeaseStore>(lease_params(c, sc, w)));
      std::string err;
      ASSERT_TRUE(fill_lease_store(c, sc, w, *stores.back(), &err)) << err;
      for (uint32_t p = 0; p < sc.pools.size(); ++p) total += stores.back()->stats(p).size;
    }
    uint64_t want = 0;
    for (const auto& pool : sc.pools) {
      want += uint64_t{pool.last} - pool.first + 1;
      for (uint32_t ip = pool.first; ip <= pool.last; ++ip) {
        int owners = 0;
        for (const auto& st : stores) owners += st->find(ip) != nullptr;
        ASSERT_EQ(owners, 1) << "n=" << n << " ip=" << ip;
        // The dispatch table names the same worker (requests naming ip go there).
        const uint32_t h = sc.holder_of(ip);
        ASSERT_LT(h, n) << "n=" << n << " ip=" << ip;
        EXPECT_NE(stores[h]->find(ip), nullptr) << "n=" << n << " ip=" << ip;
      }
    }
    EXPECT_EQ(total, want) << "n=" << n;
    for (const dhcp::HostConf& h : sc.hosts) {
      if (h.pool == dhcp::kNoIndex) continue;
      EXPECT_NE(stores[dhcp::owner_of(sc, h, n)]->find(h.ip), nullptr) << "n=" << n;
    }
  }
}

TEST(DhcpTranslate, EmptyDhcpSection) {
  const cfg::Config c = load("ports = ( { name = \"p0\"; device = \"net_ring0\"; } );\n");
  const dhcp::ServerConfig sc = make_dhcp_config(c);
  EXPECT_TRUE(sc.subnets.empty());
  EXPECT_EQ(sc.global_options, dhcp::kNoIndex);
  dhcp::LeaseStore store(lease_params(c, sc, 0));
  std::string err;
  EXPECT_TRUE(fill_lease_store(c, sc, 0, store, &err));
}

}  // namespace
}  // namespace ctl
