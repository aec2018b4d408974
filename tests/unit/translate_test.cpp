// Translation of the configuration into EAL arguments and the worker snapshot.

#include "control/translate.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace {

cfg::Config base() {
  cfg::Config c;
  c.file = "t.conf";
  cfg::Port p;
  p.name = "front0";
  p.device = "net_af_packet0,iface=front0";
  p.addresses = {{(192u << 24) | (2u << 8) | 2u, 24}};
  c.ports.push_back(p);
  return c;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string after(const std::vector<std::string>& v, const std::string& s) {
  auto it = std::find(v.begin(), v.end(), s);
  return it != v.end() && it + 1 != v.end() ? *(it + 1) : "";
}

TEST(EalArgs, VirtualPortsNeverProbePci) {
  auto a = ctl::eal_args(base(), "tandemd");
  EXPECT_EQ(a[0], "tandemd");
  EXPECT_TRUE(has(a, "--no-pci"));
  EXPECT_FALSE(has(a, "-a"));
  EXPECT_EQ(after(a, "--vdev"), "net_af_packet0,iface=front0,qpairs=2");
  EXPECT_EQ(after(a, "-l"), "0,1");
  EXPECT_EQ(after(a, "--main-lcore"), "0");
  EXPECT_EQ(after(a, "-m"), "256");
  EXPECT_TRUE(has(a, "--in-memory"));
}

TEST(EalArgs, QpairsFollowWorkersUnlessSet) {
  auto c = base();
  c.dataplane.worker_cores = {1, 2, 3};
  EXPECT_EQ(after(ctl::eal_args(c, "x"), "--vdev"), "net_af_packet0,iface=front0,qpairs=4");
  c.ports[0].device = "net_af_packet0,iface=front0,qpairs=8";
  EXPECT_EQ(after(ctl::eal_args(c, "x"), "--vdev"), "net_af_packet0,iface=front0,qpairs=8");
  c.ports[0].device = "net_ring0";
  EXPECT_EQ(after(ctl::eal_args(c, "x"), "--vdev"), "net_ring0");
}

TEST(EalArgs, PciDevicesAreAllowListed) {
  auto c = base();
  cfg::Port p;
  p.name = "wan";
  p.device = "03:00.0";
  p.is_pci = true;
  c.ports.push_back(p);
  auto a = ctl::eal_args(c, "x");
  EXPECT_FALSE(has(a, "--no-pci"));
  EXPECT_EQ(after(a, "-a"), "0000:03:00.0");
  EXPECT_EQ(ctl::dpdk_name(c.ports[1]), "0000:03:00.0");
  EXPECT_EQ(ctl::dpdk_name(c.ports[0]), "net_af_packet0");
}

TEST(EalArgs, KernelInterfaceOfKernelBackedPorts) {
  auto c = base();
  EXPECT_EQ(ctl::kernel_iface(c.ports[0]), "front0");
  c.ports[0].device = "net_af_packet1,iface=back0,qpairs=3";
  EXPECT_EQ(ctl::kernel_iface(c.ports[0]), "back0");
  c.ports[0].device = "net_ring0";
  EXPECT_EQ(ctl::kernel_iface(c.ports[0]), "");
}

TEST(EalArgs, MemoryModes) {
  auto c = base();
  c.eal.in_memory = false;
  c.eal.file_prefix = "tandem-a";
  auto a = ctl::eal_args(c, "x");
  EXPECT_EQ(after(a, "--file-prefix"), "tandem-a");
  EXPECT_FALSE(has(a, "--in-memory"));
  c.eal.hugepages = false;
  a = ctl::eal_args(c, "x");
  EXPECT_TRUE(has(a, "--no-huge"));
  EXPECT_TRUE(has(a, "--no-shconf"));
  EXPECT_FALSE(has(a, "--file-prefix"));
}

TEST(EalArgs, ExtraArgsComeLast) {
  auto c = base();
  c.eal.args = {"--log-level=pmd.net.af_packet:debug"};
  c.eal.log_level = "info";
  auto a = ctl::eal_args(c, "x");
  EXPECT_EQ(a.back(), "--log-level=pmd.net.af_packet:debug");
  EXPECT_TRUE(has(a, "--log-level=info"));
}

TEST(Snapshot, CarriesAddressesMacsAndIdleMode) {
  auto c = base();
  c.ports[0].addresses.push_back({(198u << 24) | (51u << 16) | (100u << 8) | 1u, 24});
  c.dataplane.idle = cfg::IdleMode::kBusy;
  c.dataplane.burst = 64;
  dp::Mac mac{2, 0, 0, 0, 0, 2};
  auto s = ctl::make_snapshot(c, {mac}, 7);
  EXPECT_EQ(s.generation, 7u);
  EXPECT_EQ(s.idle, dp::IdleMode::kBusy);
  EXPECT_EQ(s.burst, 64u);
  ASSERT_EQ(s.n_ports, 1u);
  EXPECT_EQ(s.ports[0].mac, mac);
  ASSERT_EQ(s.ports[0].n_addrs, 2u);
  EXPECT_EQ(s.ports[0].addrs[1], (198u << 24) | (51u << 16) | (100u << 8) | 1u);
  EXPECT_EQ(s.ports[0].prefix_len[0], 24);
}

TEST(Limits, TooManyAddressesNamesTheLine) {
  auto c = base();
  c.ports[0].line = 12;
  for (uint32_t i = 0; i < dp::kMaxPortAddrs; ++i)
    c.ports[0].addresses.push_back({0x0a000000u + i, 32});
  EXPECT_EQ(ctl::validate_limits(c).rfind("t.conf:12: port 'front0' has 17 addresses", 0), 0u)
      << ctl::validate_limits(c);
  EXPECT_EQ(ctl::validate_limits(base()), "");
}

}  // namespace
