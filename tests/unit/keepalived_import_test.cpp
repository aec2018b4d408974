// Unit tests for control/keepalived_import.cpp: the keepalived configurations users run (seed 001,
// transcribed in tests/fixtures/keepalived/), a v3 + unicast + sync group one, and the edge cases.
// Every output must be a configuration tandemd accepts (cfg::load_string without errors).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/model.h"
#include "control/keepalived_import.h"

#ifndef TANDEM_SOURCE_DIR
#error "TANDEM_SOURCE_DIR must point at the source tree (see tests/unit/meson.build)"
#endif

namespace ctl {
namespace {

using Strings = std::vector<std::string>;

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(TANDEM_SOURCE_DIR) + "/tests/fixtures/keepalived/" + name);
  EXPECT_TRUE(f.good()) << name;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

uint32_t ip(const char* s) {
  return cfg::parse_ipv4(s).value();
}

// The import of `text`, and the tandem configuration it produced (which must load cleanly).
struct Imported {
  ImportResult result;
  cfg::Config config;
};

Imported import(const std::string& text, const std::string& name) {
  Imported out;
  out.result = import_keepalived(text, name);
  const cfg::LoadResult loaded = cfg::load_string(out.result.config, name + ".tandem");
  Strings errors;
  for (const auto& e : loaded.errors) errors.push_back(e.str());
  EXPECT_EQ(errors, Strings{}) << "the output must load:\n" << out.result.config;
  if (loaded.config) out.config = *loaded.config;
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Seed 001: the French keepalived + LVS tutorial (Master and Backup)

TEST(KeepalivedImport, Seed001Master) {
  const Imported m = import(fixture("seed001.conf"), "seed001.conf");
  EXPECT_EQ(m.result.errors, Strings{});
  EXPECT_EQ(m.result.untranslated,
            (Strings{
                "seed001.conf:17: notify_email { ... }: tandem sends no e-mail: send it from the "
                "notify script",
                "seed001.conf:20: smtp_server mail.test.local: tandem sends no e-mail: send it "
                "from the notify script",
                "seed001.conf:21: smtp_connect_timeout 30: tandem sends no e-mail: send it from "
                "the notify script",
                "seed001.conf:22: router_id LVS_MASTER: router_id belongs in global_defs (where "
                "it becomes tandem's node name)",
            }));
  const cfg::Config& c = m.config;
  EXPECT_EQ(c.node, "tandem");  // router_id is inside the instance there: not a node name
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].name, "eth0");
  EXPECT_EQ(c.ports[0].device, "net_af_packet0,iface=eth0");
  EXPECT_TRUE(c.ports[0].addresses.empty());

  ASSERT_EQ(c.vrrp.scripts.size(), 1u);
  const cfg::VrrpScript& s = c.vrrp.scripts[0];
  EXPECT_EQ(s.name, "chk_service");
  EXPECT_EQ(s.command, "/etc/keepalived/check_memory.sh");
  EXPECT_EQ(s.interval_ms, 2000u);
  EXPECT_EQ(s.timeout_ms, 1000u);
  EXPECT_EQ(s.weight, 2);
  EXPECT_EQ(s.rise, 1u);
  EXPECT_EQ(s.fall, 1u);

  ASSERT_EQ(c.vrrp.instances.size(), 1u);
  const cfg::VrrpInstance& i = c.vrrp.instances[0];
  EXPECT_EQ(i.name, "VI_1");
  EXPECT_EQ(i.port, "eth0");
  EXPECT_EQ(i.vrid, 51u);
  EXPECT_EQ(i.version, 2u);  // keepalived's default: its peers speak v2
  EXPECT_EQ(i.priority, 100u);
  EXPECT_EQ(i.advert_interval_ms, 1000u);
  EXPECT_TRUE(i.preempt);
  EXPECT_EQ(i.virtual_ips, (std::vector<cfg::Ipv4Prefix>{{ip("10.11.12.99"), 32}}));
  EXPECT_FALSE(i.virtual_mac);
  EXPECT_EQ(i.auth_pass, "1111");
  EXPECT_TRUE(i.unicast_peers.empty());
  ASSERT_EQ(i.track_scripts.size(), 1u);
  EXPECT_EQ(i.track_scripts[0].script, "chk_service");
  EXPECT_FALSE(i.track_scripts[0].weight.has_value());
  EXPECT_TRUE(c.vrrp.sync_groups.empty());

  // The operator is told what state MASTER meant and what to map.
  const std::string& out = m.result.config;
  EXPECT_TRUE(contains(out,
                       "# keepalived: state MASTER. A hint only, not translated: the "
                       "election decides who is master"))
      << out;
  EXPECT_TRUE(contains(out,
                       "port = \"eth0\";  # TODO: keepalived interface eth0: map it to a "
                       "tandem port"));
  EXPECT_TRUE(contains(out, "device = \"net_af_packet0,iface=eth0\";  # TODO"));
}

TEST(KeepalivedImport, Seed001BackupDiffersOnlyInPriority) {
  const Imported m = import(fixture("seed001.conf"), "seed001.conf");
  const Imported b = import(fixture("seed001_backup.conf"), "seed001_backup.conf");
  EXPECT_EQ(b.result.errors, Strings{});
  EXPECT_EQ(b.result.untranslated.size(), 4u);
  ASSERT_EQ(b.config.vrrp.instances.size(), 1u);
  EXPECT_EQ(b.config.vrrp.instances[0].priority, 90u);
  EXPECT_TRUE(contains(b.result.config, "# keepalived: state BACKUP. A hint only"));
  // Same virtual routers on both nodes: the backup's file could be loaded by the master's daemon
  // (priority changes on reload).
  EXPECT_TRUE(cfg::reload_conflicts(m.config, b.config).empty());
}

// ---------------------------------------------------------------------------------------------
// VRRPv3, fractional advert_int, unicast, sync group, track_interface, use_vmac

TEST(KeepalivedImport, V3UnicastSyncGroup) {
  const Imported r = import(fixture("v3_unicast.conf"), "v3_unicast.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  const cfg::Config& c = r.config;
  EXPECT_EQ(c.node, "lb-master");
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "eth0");
  EXPECT_EQ(c.ports[0].device, "net_af_packet0,iface=eth0");
  // unicast_src_ip, with the prefix length of the VIP in the same subnet.
  EXPECT_EQ(c.ports[0].addresses, (std::vector<cfg::Ipv4Prefix>{{ip("10.11.12.1"), 24}}));
  EXPECT_EQ(c.ports[1].name, "eth1");
  EXPECT_EQ(c.ports[1].device, "net_af_packet1,iface=eth1");
  EXPECT_EQ(c.ports[1].addresses, (std::vector<cfg::Ipv4Prefix>{{ip("192.168.100.1"), 24}}));

  EXPECT_EQ(c.vrrp.checksum, cfg::VrrpChecksum::kKeepalived);
  EXPECT_EQ(c.vrrp.garp_count, 3u);
  EXPECT_EQ(c.vrrp.garp_interval_ms, 100u);
  EXPECT_EQ(c.vrrp.garp_refresh_s, 60u);

  ASSERT_EQ(c.vrrp.scripts.size(), 1u);
  const cfg::VrrpScript& s = c.vrrp.scripts[0];
  EXPECT_EQ(s.name, "chk_nginx");
  EXPECT_EQ(s.command, "pidof nginx # not a comment inside quotes");
  EXPECT_EQ(s.interval_ms, 2000u);
  EXPECT_EQ(s.timeout_ms, 1000u);
  EXPECT_EQ(s.weight, -20);
  EXPECT_EQ(s.rise, 2u);
  EXPECT_EQ(s.fall, 3u);

  ASSERT_EQ(c.vrrp.instances.size(), 2u);
  const cfg::VrrpInstance& f = c.vrrp.instances[0];
  EXPECT_EQ(f.name, "VI_FRONT");
  EXPECT_EQ(f.port, "eth0");
  EXPECT_EQ(f.vrid, 51u);
  EXPECT_EQ(f.version, 3u);  // global_defs vrrp_version
  EXPECT_EQ(f.priority, 150u);
  EXPECT_EQ(f.advert_interval_ms, 100u);  // advert_int 0.1
  EXPECT_FALSE(f.preempt);                // nopreempt
  EXPECT_EQ(f.preempt_delay_ms, 5000u);
  EXPECT_EQ(f.virtual_ips, (std::vector<cfg::Ipv4Prefix>{{ip("10.11.12.99"), 24}}));
  EXPECT_TRUE(f.virtual_mac);
  EXPECT_EQ(f.auth_pass, "");
  EXPECT_EQ(f.unicast_peers, (std::vector<uint32_t>{ip("10.11.12.2")}));
  ASSERT_EQ(f.track_ports.size(), 1u);
  EXPECT_EQ(f.track_ports[0].port, "eth1");
  EXPECT_EQ(f.track_ports[0].weight, -50);
  ASSERT_EQ(f.track_scripts.size(), 1u);
  EXPECT_EQ(f.track_scripts[0].script, "chk_nginx");
  EXPECT_EQ(f.track_scripts[0].weight, std::optional<int>(-30));
  EXPECT_EQ(f.notify, "/etc/keepalived/notify.sh");

  const cfg::VrrpInstance& b = c.vrrp.instances[1];
  EXPECT_EQ(b.name, "VI_BACK");
  EXPECT_EQ(b.port, "eth1");
  EXPECT_EQ(b.vrid, 52u);
  EXPECT_EQ(b.advert_interval_ms, 250u);
  EXPECT_TRUE(b.preempt);
  EXPECT_EQ(b.unicast_peers, (std::vector<uint32_t>{ip("192.168.100.2")}));
  ASSERT_EQ(b.track_ports.size(), 1u);
  EXPECT_EQ(b.track_ports[0].port, "eth0");
  EXPECT_EQ(b.track_ports[0].weight, 0);  // keepalived's default: FAULT while down

  ASSERT_EQ(c.vrrp.sync_groups.size(), 1u);
  EXPECT_EQ(c.vrrp.sync_groups[0].name, "VG_1");
  EXPECT_EQ(c.vrrp.sync_groups[0].instances, (Strings{"VI_FRONT", "VI_BACK"}));
  EXPECT_EQ(c.vrrp.sync_groups[0].notify, "/etc/keepalived/notify-group.sh");

  const std::string per_state =
      "tandem runs one notify script per transition, with INSTANCE|GROUP NAME STATE PRIORITY as "
      "arguments: fold the per-state scripts into the notify script and switch on $3 (MASTER, "
      "BACKUP, FAULT)";
  EXPECT_EQ(r.result.untranslated,
            (Strings{
                "v3_unicast.conf:6: notification_email { ... }: tandem sends no e-mail: send it "
                "from the notify script",
                "v3_unicast.conf:9: smtp_server mail.test.local: tandem sends no e-mail: send it "
                "from the notify script",
                "v3_unicast.conf:12: enable_script_security: no tandem equivalent",
                "v3_unicast.conf:15: include /etc/keepalived/conf.d/*.conf: included files are "
                "not read: import each one, or concatenate them first",
                "v3_unicast.conf:23: notify_fault /etc/keepalived/fault.sh: " + per_state,
                "v3_unicast.conf:49: 10.11.12.99/24 dev eth0 label eth0:vip: 'label eth0:vip' not "
                "translated (tandem keeps only the address and prefix length)",
                "v3_unicast.conf:58: notify_master /etc/keepalived/master.sh: " + per_state,
                "v3_unicast.conf:92: HTTP_GET of real_server 192.168.100.20 80: differs from the "
                "service's check, the TCP_CHECK of real_server 192.168.100.10 80 (line 86): "
                "tandem runs one check per service",
            }));

  // The virtual_server: its VIP is VI_FRONT's, its real servers on eth1's prefix (from
  // VI_BACK's unicast_src_ip), so all of it is live.
  ASSERT_TRUE(c.lb.enabled);
  ASSERT_EQ(c.lb.services.size(), 1u);
  const cfg::LbService& s80 = c.lb.services[0];
  EXPECT_EQ(s80.spec.key.vip, ip("10.11.12.99"));
  EXPECT_EQ(s80.spec.key.port, 80u);
  EXPECT_EQ(s80.spec.key.proto, lb::Proto::kTcp);
  EXPECT_EQ(s80.spec.sched, lb::Sched::kRr);
  EXPECT_EQ(s80.check.type, cfg::LbCheck::Type::kTcp);  // the first real server's
  EXPECT_EQ(s80.check.interval_ms, 6000u);
  EXPECT_EQ(s80.check.timeout_ms, 3000u);
  ASSERT_EQ(s80.spec.reals.size(), 2u);
  EXPECT_EQ(s80.spec.reals[0].ip, ip("192.168.100.10"));
  EXPECT_EQ(s80.spec.reals[1].ip, ip("192.168.100.20"));
  EXPECT_EQ(s80.spec.reals[1].port, 80u);
  EXPECT_EQ(s80.spec.reals[1].fwd, lb::Fwd::kNat);
}

TEST(KeepalivedImport, UntranslatedItemsAreListedAtTheEndOfTheOutput) {
  const ImportResult r = import_keepalived(fixture("v3_unicast.conf"), "v3_unicast.conf");
  const size_t block = r.config.find("# Not translated (v3_unicast.conf:LINE: setting: why):");
  ASSERT_NE(block, std::string::npos) << r.config;
  ASSERT_FALSE(r.untranslated.empty());
  for (const auto& u : r.untranslated) {
    EXPECT_NE(r.config.find("#   " + u + "\n", block), std::string::npos) << u;
  }
  // The load balancer is in the configuration, before the block.
  const size_t lb = r.config.find("lb = {");
  ASSERT_NE(lb, std::string::npos) << r.config;
  EXPECT_LT(lb, block);
  EXPECT_TRUE(contains(r.config.substr(lb, block - lb), "address = \"192.168.100.10\";"));
}

// ---------------------------------------------------------------------------------------------
// keepalived's syntax

TEST(KeepalivedImport, CommentsQuotesContinuationsAndBraces) {
  const Imported r = import(R"(# comment
! another comment
global_defs { router_id edge-1 }   ! trailing comment
vrrp_script chk
{
  script "/usr/bin/check \"a b\" # kept"  # dropped
  interval 1 # dropped
}
vrrp_instance VI_1
{
  interface \
    eth0
  virtual_router_id 7
  virtual_ipaddress { 192.0.2.10/24 192.0.2.11/24 }
  virtual_ipaddress {
    192.0.2.12/24
  }
  track_script { chk }
  notify /usr/local/bin/vrrp\#notify.sh
}
)",
                            "k.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  const cfg::Config& c = r.config;
  EXPECT_EQ(c.node, "edge-1");
  ASSERT_EQ(c.vrrp.scripts.size(), 1u);
  EXPECT_EQ(c.vrrp.scripts[0].command, "/usr/bin/check \"a b\" # kept");
  EXPECT_EQ(c.vrrp.scripts[0].interval_ms, 1000u);
  ASSERT_EQ(c.vrrp.instances.size(), 1u);
  const cfg::VrrpInstance& i = c.vrrp.instances[0];
  EXPECT_EQ(i.port, "eth0");
  EXPECT_EQ(i.vrid, 7u);
  // Inline blocks: the first address is the statement, the second its argument.
  EXPECT_EQ(i.virtual_ips,
            (std::vector<cfg::Ipv4Prefix>{{ip("192.0.2.10"), 24}, {ip("192.0.2.12"), 24}}));
  EXPECT_EQ(r.result.untranslated,
            (Strings{"k.conf:14: 192.0.2.10/24 192.0.2.11/24: '192.0.2.11/24' not translated "
                     "(tandem keeps only the address and prefix length)"}));
  ASSERT_EQ(i.track_scripts.size(), 1u);
  EXPECT_EQ(i.notify, "/usr/local/bin/vrrp#notify.sh");
}

TEST(KeepalivedImport, SyntaxErrors) {
  const ImportResult r = import_keepalived(R"(vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    10.0.0.1
  }
  notify "/x.sh
}
}
vrrp_instance VI_2 {
  interface eth0
)",
                                           "bad.conf");
  EXPECT_EQ(r.errors, (Strings{
                          "bad.conf:7: unterminated quote",
                          "bad.conf:9: '}' closes no block",
                          "bad.conf:10: '{' opened here is never closed",
                          "bad.conf:10: vrrp_instance VI_2 has no valid virtual_router_id",
                      }));
  // What could be read is still translated, and the errors are in the output.
  EXPECT_TRUE(contains(r.config, "name = \"VI_1\";"));
  EXPECT_TRUE(contains(r.config, "#   bad.conf:9: '}' closes no block\n"));
  EXPECT_TRUE(cfg::load_string(r.config, "out").errors.empty());
}

TEST(KeepalivedImport, InstancesKeepalivedWouldRefuse) {
  const Imported r = import(R"(vrrp_instance NO_IF {
  virtual_router_id 1
  virtual_ipaddress { 10.0.0.1 }
}
vrrp_instance NO_VRID {
  interface eth0
  virtual_ipaddress { 10.0.0.2 }
}
vrrp_instance A {
  interface eth0
  virtual_router_id 300
  priority 0
  virtual_ipaddress { 10.0.0.3 }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 9
  virtual_ipaddress { 10.0.0.4 }
}
vrrp_instance C {
  interface eth0
  virtual_router_id 9
  virtual_ipaddress { 10.0.0.5 }
}
vrrp_instance B {
  interface eth1
  virtual_router_id 9
  virtual_ipaddress { 10.0.0.6 }
}
)",
                            "r.conf");
  EXPECT_EQ(r.result.errors, (Strings{
                                 "r.conf:1: vrrp_instance NO_IF has no interface",
                                 "r.conf:5: vrrp_instance NO_VRID has no valid virtual_router_id",
                                 "r.conf:9: vrrp_instance A has no valid virtual_router_id",
                                 "r.conf:11: virtual_router_id must be 1..255",
                                 "r.conf:12: priority must be 1..255",
                                 "r.conf:20: vrrp_instance C: virtual_router_id 9 is already used "
                                 "on interface eth0",
                                 "r.conf:25: vrrp_instance B is defined twice",
                             }));
  ASSERT_EQ(r.config.vrrp.instances.size(), 1u);
  EXPECT_EQ(r.config.vrrp.instances[0].name, "B");
}

// ---------------------------------------------------------------------------------------------
// What does not map 1:1

TEST(KeepalivedImport, ValuesThatDoNotMapOneToOne) {
  const Imported r = import(R"(global_defs {
  router_id "lb 1"
}
vrrp_script slow {
  script "/bin/true"
  interval 1
  timeout 5
  weight 300
}
vrrp_instance OWNER {
  interface eth0
  virtual_router_id 1
  priority 255
  nopreempt
  advert_int 1.5
  authentication {
    auth_type PASS
    auth_pass 0123456789
  }
  virtual_ipaddress {
    10.0.0.1/24
    2001:db8::1/64
    10.0.0.0/24
    10.0.0.2 dev eth1
  }
  track_script {
    slow weight 10
    missing
  }
}
vrrp_instance V3 {
  interface eth0
  vrrp_version 3
  virtual_router_id 2
  advert_int 0.105
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    10.0.0.1/24
    10.0.0.9/24
  }
  notify notify.sh
  garp_master_delay 1
}
vrrp_instance ONLY_V6 {
  interface eth0
  virtual_router_id 3
  virtual_ipaddress { fe80::1/64 }
}
vrrp_sync_group G {
  group { V3 ONLY_V6 NOPE }
  smtp_alert
}
vrrp_sync_group G2 {
  group { V3 }
}
virtual_server_group web { 10.0.0.1 80 }
static_ipaddress { 10.9.9.9/32 dev lo }
)",
                            "e.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  const cfg::Config& c = r.config;
  EXPECT_EQ(c.node, "lb_1");
  ASSERT_EQ(c.vrrp.scripts.size(), 1u);
  EXPECT_EQ(c.vrrp.scripts[0].interval_ms, 1000u);
  EXPECT_EQ(c.vrrp.scripts[0].timeout_ms, 990u);  // must be less than the interval
  EXPECT_EQ(c.vrrp.scripts[0].weight, 254);

  ASSERT_EQ(c.vrrp.instances.size(), 2u);
  const cfg::VrrpInstance& o = c.vrrp.instances[0];
  EXPECT_EQ(o.priority, 255u);
  EXPECT_TRUE(o.preempt);                  // the owner always preempts
  EXPECT_EQ(o.advert_interval_ms, 2000u);  // v2: whole seconds
  EXPECT_EQ(o.auth_pass, "01234567");      // keepalived keeps 8 characters too
  EXPECT_EQ(o.virtual_ips,
            (std::vector<cfg::Ipv4Prefix>{{ip("10.0.0.1"), 24}, {ip("10.0.0.2"), 32}}));
  ASSERT_EQ(o.track_scripts.size(), 1u);
  EXPECT_EQ(o.track_scripts[0].weight, std::optional<int>(10));

  const cfg::VrrpInstance& v3 = c.vrrp.instances[1];
  EXPECT_EQ(v3.version, 3u);
  EXPECT_EQ(v3.advert_interval_ms, 110u);  // centiseconds
  EXPECT_EQ(v3.auth_pass, "");
  EXPECT_EQ(v3.virtual_ips, (std::vector<cfg::Ipv4Prefix>{{ip("10.0.0.9"), 24}}));
  EXPECT_EQ(v3.notify, "");

  ASSERT_EQ(c.vrrp.sync_groups.size(), 1u);
  EXPECT_EQ(c.vrrp.sync_groups[0].instances, (Strings{"V3"}));

  EXPECT_EQ(
      r.result.untranslated,
      (Strings{
          "e.conf:2: router_id \"lb 1\": node name becomes \"lb_1\" (tandem names use only "
          "A-Z a-z 0-9 . _ -)",
          "e.conf:14: nopreempt: ignored: with priority 255 the address owner always preempts "
          "(RFC 5798)",
          "e.conf:22: 2001:db8::1/64: IPv6: tandem's VRRP is IPv4 only",
          "e.conf:23: 10.0.0.0/24: the network or broadcast address of its prefix",
          "e.conf:24: 10.0.0.2 dev eth1: dev eth1: tandem announces every virtual IP on the "
          "port of its instance (eth0)",
          "e.conf:28: missing: track_script: no usable vrrp_script missing in this file",
          "e.conf:36: authentication { ... }: VRRPv3 has no authentication (keepalived "
          "ignores it too)",
          "e.conf:41: 10.0.0.1/24: already in vrrp_instance OWNER (a tandem VIP belongs to "
          "one instance)",
          "e.conf:44: notify notify.sh: tandem needs an absolute path",
          "e.conf:45: garp_master_delay 1: no tandem equivalent",
          "e.conf:47: vrrp_instance ONLY_V6: no IPv4 virtual address tandem can use (an "
          "instance needs 1..32): instance left out",
          "e.conf:50: fe80::1/64: IPv6: tandem's VRRP is IPv4 only",
          "e.conf:53: vrrp_sync_group G member ONLY_V6: no translated vrrp_instance of that "
          "name",
          "e.conf:53: vrrp_sync_group G member NOPE: no translated vrrp_instance of that "
          "name",
          "e.conf:54: smtp_alert: tandem sends no e-mail: send it from the notify script",
          "e.conf:56: vrrp_sync_group G2: no translated member instance: group left out",
          "e.conf:57: vrrp_sync_group G2 member V3: already in vrrp_sync_group G",
          "e.conf:59: virtual_server_group web: tandem has no virtual_server_group: write one "
          "virtual_server per address",
          "e.conf:60: static_ipaddress { ... }: no tandem equivalent",
      }));
  // Lossy conversions leave a comment next to the value.
  EXPECT_TRUE(contains(r.result.config,
                       "# keepalived: advert_int 1.5 (VRRPv2 adverts carry whole "
                       "seconds)"));
  EXPECT_TRUE(contains(r.result.config, "auth_pass is cut to its first 8 characters"));
}

TEST(KeepalivedImport, UngroupedInstancesStayIndependent) {
  // Active/active: each node masters one VIP. keepalived fails them over separately; tandem
  // would move ungrouped instances together, so each gets a group of its own.
  const Imported r = import(R"(vrrp_instance VI_A {
  interface eth0
  virtual_router_id 1
  unicast_src_ip 10.1.1.1
  virtual_ipaddress { 10.0.0.1/24 }
}
vrrp_instance VI_B {
  interface eth0
  virtual_router_id 2
  unicast_src_ip 10.0.0.2
  virtual_ipaddress { 10.0.0.2/24 }
}
vrrp_instance VI_C {
  interface eth0
  virtual_router_id 3
  virtual_ipaddress { 10.0.0.3/24 }
}
vrrp_sync_group G { group { VI_C } }
)",
                            "aa.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  const cfg::Config& c = r.config;
  ASSERT_EQ(c.vrrp.sync_groups.size(), 3u);
  EXPECT_EQ(c.vrrp.sync_groups[0].name, "G");
  EXPECT_EQ(c.vrrp.sync_groups[1].name, "VI_A_alone");
  EXPECT_EQ(c.vrrp.sync_groups[1].instances, Strings{"VI_A"});
  EXPECT_EQ(c.vrrp.sync_groups[2].name, "VI_B_alone");
  EXPECT_EQ(c.vrrp.sync_groups[2].instances, Strings{"VI_B"});
  EXPECT_TRUE(contains(r.result.config, "# keepalived: VI_A is in no vrrp_sync_group"));
  // A source address outside every VIP subnet: /32 and a TODO. One that is a VIP: listed.
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].addresses, (std::vector<cfg::Ipv4Prefix>{{ip("10.1.1.1"), 32}}));
  EXPECT_TRUE(contains(r.result.config,
                       "# 10.1.1.1: keepalived's unicast_src_ip of VI_A; TODO: "
                       "set its prefix length"));
  EXPECT_EQ(r.result.untranslated,
            (Strings{"aa.conf:10: unicast_src_ip 10.0.0.2: also a virtual IP: set this node's "
                     "own address on port eth0"}));

  // One ungrouped instance has nothing to be kept apart from.
  const Imported one = import(fixture("seed001.conf"), "seed001.conf");
  EXPECT_TRUE(one.config.vrrp.sync_groups.empty());
}

// ---------------------------------------------------------------------------------------------
// virtual_server -> lb.services

// The seed's LVS service (its ipvsadm commands, as keepalived writes them). Its real servers
// are on no prefix the import knows (keepalived.conf has no address of this node): they are
// commented out with a TODO, and come in once the operator gives the port its address.
TEST(KeepalivedImport, Seed001LvsService) {
  const Imported r = import(fixture("seed001_lvs.conf"), "seed001_lvs.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  const std::string todo =
      "not on a connected prefix of any port: commented out. Add this node's address on its "
      "network to a port's addresses (or a route in routing.routes), then uncomment it";
  const std::string no_mail = "tandem sends no e-mail: send it from the notify script";
  EXPECT_EQ(r.result.untranslated,
            (Strings{
                "seed001_lvs.conf:17: notify_email { ... }: " + no_mail,
                "seed001_lvs.conf:20: smtp_server mail.test.local: " + no_mail,
                "seed001_lvs.conf:21: smtp_connect_timeout 30: " + no_mail,
                "seed001_lvs.conf:22: router_id LVS_MASTER: router_id belongs in global_defs "
                "(where it becomes tandem's node name)",
                "seed001_lvs.conf:37: real_server 192.168.100.10 80: " + todo,
                "seed001_lvs.conf:40: real_server 192.168.100.20 80: " + todo,
            }));
  const cfg::Config& c = r.config;
  ASSERT_TRUE(c.lb.enabled);
  ASSERT_EQ(c.lb.services.size(), 1u);
  const cfg::LbService& s = c.lb.services[0];
  EXPECT_EQ(s.spec.key.vip, ip("10.11.12.99"));  // VI_1's virtual_ipaddress
  EXPECT_EQ(s.spec.key.port, 80u);
  EXPECT_EQ(s.spec.key.proto, lb::Proto::kTcp);
  EXPECT_EQ(s.spec.sched, lb::Sched::kRr);
  EXPECT_EQ(s.check.type, cfg::LbCheck::Type::kNone);  // no checker: always up, as in keepalived
  EXPECT_TRUE(s.spec.reals.empty());
  EXPECT_TRUE(contains(r.result.config,
                       "        # { address = \"192.168.100.10\"; port = 80; weight = 1; }"))
      << r.result.config;

  // The operator's part: this node's address on the real servers' network, then uncomment.
  std::string done = r.result.config;
  const std::string todo_addr =
      "    # addresses = [ \"A.B.C.D/LEN\" ];  # TODO: this node's address on eth0\n";
  ASSERT_TRUE(contains(done, todo_addr));
  done.replace(done.find(todo_addr), todo_addr.size(),
               "    addresses = [ \"10.11.12.1/24\", \"192.168.100.1/24\" ];\n");
  for (size_t at; (at = done.find("        # {")) != std::string::npos;) done.erase(at + 8, 2);
  for (size_t at;
       (at = done.find("; }  # keepalived real_server 192.168.100.10")) != std::string::npos;) {
    done.insert(at + 3, ",");
  }
  const cfg::LoadResult after = cfg::load_string(done, "done.tandem");
  ASSERT_TRUE(after.errors.empty()) << after.errors[0].str() << "\n" << done;
  ASSERT_EQ(after.config->lb.services.size(), 1u);
  const auto& reals = after.config->lb.services[0].spec.reals;
  ASSERT_EQ(reals.size(), 2u);
  EXPECT_EQ(reals[0], (lb::RealServer{ip("192.168.100.10"), 80, lb::Fwd::kNat, 1}));
  EXPECT_EQ(reals[1], (lb::RealServer{ip("192.168.100.20"), 80, lb::Fwd::kNat, 1}));
}

TEST(KeepalivedImport, EveryVirtualServerKeyword) {
  const Imported r = import(fixture("lb_all.conf"), "lb_all.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  const cfg::Config& c = r.config;
  ASSERT_TRUE(c.lb.enabled);
  // 198.51.100.7 is commented out, SCTP and the duplicate are left out.
  ASSERT_EQ(c.lb.services.size(), 4u);

  // delay_loop, lb_algo, lb_kind, protocol, persistence_*, virtualhost, HTTP_GET, weight.
  const cfg::LbService& web = c.lb.services[0];
  EXPECT_EQ(web.spec.key, (lb::ServiceKey{lb::Proto::kTcp, ip("10.0.0.100"), 80}));
  EXPECT_EQ(web.spec.sched, lb::Sched::kWrr);
  EXPECT_EQ(web.spec.persist_s, 300u);
  EXPECT_EQ(web.spec.persist_mask, ip("255.255.255.0"));
  cfg::LbCheck http;
  http.type = cfg::LbCheck::Type::kHttp;
  http.port = 8080;
  http.path = "/health";
  http.status = 204;
  http.host = "www.example.com";
  http.interval_ms = 5000;
  http.timeout_ms = 2000;
  http.retries = 3;
  http.retry_delay_ms = 1500;
  EXPECT_EQ(web.check, http);
  // 10.0.0.100 80 (our own VIP) is left out; 10.0.0.13 keeps its port in nat mode.
  EXPECT_EQ(web.spec.reals, (std::vector<lb::RealServer>{
                                {ip("10.0.0.11"), 80, lb::Fwd::kDr, 3},
                                {ip("10.0.0.12"), 80, lb::Fwd::kDr, 0},
                                {ip("10.0.0.13"), 8080, lb::Fwd::kNat, 1},
                            }));

  // UDP, an unknown scheduler (wlc), TCP_CHECK with retry and delay_before_retry.
  const cfg::LbService& dns = c.lb.services[1];
  EXPECT_EQ(dns.spec.key, (lb::ServiceKey{lb::Proto::kUdp, ip("172.16.0.254"), 53}));
  EXPECT_EQ(dns.spec.sched, lb::Sched::kWlc);
  cfg::LbCheck tcp;
  tcp.type = cfg::LbCheck::Type::kTcp;
  tcp.port = 53;
  tcp.interval_ms = 3000;
  tcp.timeout_ms = 1000;
  tcp.retries = 2;
  tcp.retry_delay_ms = 500;
  EXPECT_EQ(dns.check, tcp);
  EXPECT_EQ(dns.spec.reals.size(), 3u);  // 192.0.2.53 is on no connected prefix
  EXPECT_TRUE(contains(r.result.config, "# { address = \"192.0.2.53\"; port = 53; weight = 1; }"));

  // SSL_GET becomes a TCP connect; keepalived's delay_loop default; tun and mh.
  const cfg::LbService& tls = c.lb.services[2];
  EXPECT_EQ(tls.spec.sched, lb::Sched::kMh);
  EXPECT_EQ(tls.check.type, cfg::LbCheck::Type::kTcp);
  EXPECT_EQ(tls.check.interval_ms, 60000u);
  EXPECT_EQ(tls.check.timeout_ms, 2000u);
  EXPECT_EQ(tls.spec.reals,
            (std::vector<lb::RealServer>{{ip("10.0.0.21"), 443, lb::Fwd::kTun, 1}}));

  // All-port service: its real servers take port 0.
  const cfg::LbService& all = c.lb.services[3];
  EXPECT_EQ(all.spec.key.port, 0u);
  EXPECT_EQ(all.spec.sched, lb::Sched::kSh);
  EXPECT_EQ(all.spec.persist_s, 60u);
  EXPECT_EQ(all.check.type, cfg::LbCheck::Type::kNone);
  EXPECT_EQ(all.spec.reals, (std::vector<lb::RealServer>{{ip("10.0.0.31"), 0, lb::Fwd::kNat, 1}}));

  EXPECT_TRUE(contains(r.result.config, "# keepalived: lb_algo sed, not in tandem: wlc instead"));
  EXPECT_TRUE(contains(r.result.config, "# keepalived inhibit_on_failure: tandem always does"));
  EXPECT_TRUE(contains(r.result.config, "    # TODO: 198.51.100.7 is not an address of this node"));
  EXPECT_TRUE(contains(r.result.config, "      # vip = \"198.51.100.7\";"));

  const std::string tcp_check = "the TCP_CHECK of real_server 172.16.0.10 53 (line 93)";
  EXPECT_EQ(
      r.result.untranslated,
      (Strings{
          "lb_all.conf:33: ha_suspend: no tandem equivalent",
          "lb_all.conf:34: alpha: no tandem equivalent",
          "lb_all.conf:35: omega: no tandem equivalent",
          "lb_all.conf:36: quorum 2: tandem has no quorum",
          "lb_all.conf:37: hysteresis 1: tandem has no quorum",
          "lb_all.conf:38: sorry_server 10.0.0.50 80: tandem has no sorry server",
          "lb_all.conf:45: digest 9b3a0c85a887a256d6939da88aabd8cd: tandem checks the status "
          "code, not a digest of the page",
          "lb_all.conf:47: url { ... }: tandem checks one URL: the first one is used",
          "lb_all.conf:83: real_server 10.0.0.100 80: one of this node's own addresses: real "
          "server left out",
          "lb_all.conf:89: lb_algo sed: tandem schedules with rr, wrr, lc, wlc, sh or mh: wlc is "
          "used",
          "lb_all.conf:99: MISC_CHECK { ... }: tandem runs no script checks (TCP connect or HTTP "
          "GET only)",
          "lb_all.conf:104: SSL_GET { ... }: tandem's checks speak no TLS: translated as a TCP "
          "connect check",
          "lb_all.conf:104: SSL_GET of real_server 172.16.0.11 53: differs from the service's "
          "check, " +
              tcp_check + ": tandem runs one check per service",
          "lb_all.conf:111: real_server 172.16.0.12 53: no checker (always up in keepalived); "
          "tandem checks it with the service's check, " +
              tcp_check,
          "lb_all.conf:113: real_server 192.0.2.53 53: not on a connected prefix of any port: "
          "commented out. Add this node's address on its network to a port's addresses (or a "
          "route in routing.routes), then uncomment it",
          "lb_all.conf:113: real_server 192.0.2.53 53: no checker (always up in keepalived); "
          "tandem checks it with the service's check, " +
              tcp_check,
          "lb_all.conf:121: SSL_GET { ... }: tandem's checks speak no TLS: translated as a TCP "
          "connect check",
          "lb_all.conf:135: virtual_server 198.51.100.7 80: 198.51.100.7 is not an address of "
          "this node (no translated virtual_ipaddress): commented out. Add it to a vrrp "
          "instance's virtual_ips or a port's addresses, then uncomment it",
          "lb_all.conf:142: protocol SCTP: tandem balances TCP and UDP only: service left out",
          "lb_all.conf:145: virtual_server 10.0.0.100 80: already defined on line 25",
          "lb_all.conf:149: virtual_server_group WEB: tandem has no virtual_server_group: write "
          "one virtual_server per address",
          "lb_all.conf:152: virtual_server group WEB: tandem has no virtual_server_group: write "
          "one virtual_server per address",
          "lb_all.conf:155: virtual_server fwmark 1: tandem does not classify by firewall mark: "
          "write one virtual_server per address and port (port 0: every port)",
      }));
}

TEST(KeepalivedImport, VirtualServerEdgeCases) {
  const Imported r = import(R"(vrrp_instance V {
  interface eth0
  virtual_router_id 1
  unicast_src_ip 10.0.0.2
  virtual_ipaddress { 10.0.0.100/24 }
}
virtual_server 10.0.0.100 80 {
  lb_kind DR
  connect_timeout 9
  delay_loop 4
  real_server 10.0.0.11 8080 {
    HTTP_GET {
      url {
        path "no slash"
        status_code 200-299
      }
    }
  }
  real_server 10.0.0.12 80 {
    delay_loop 8
    TCP_CHECK { }
    HTTP_GET { url { path / } }
    notify_up /bin/true
  }
}
virtual_server 2001:db8::1 80 {
  lb_algo rr
}
virtual_server 10.0.0.100 {
}
)",
                            "x.conf");
  EXPECT_EQ(r.result.errors,
            (Strings{"x.conf:29: virtual_server needs an IPv4 address and a port (0..65535)"}));
  ASSERT_EQ(r.config.lb.services.size(), 1u);
  const cfg::LbService& s = r.config.lb.services[0];
  // DR cannot change the port: the service's is used, with a note.
  EXPECT_EQ(s.spec.reals, (std::vector<lb::RealServer>{{ip("10.0.0.11"), 80, lb::Fwd::kDr, 1},
                                                       {ip("10.0.0.12"), 80, lb::Fwd::kDr, 1}}));
  // connect_timeout 9 s is not less than delay_loop 4 s: half the interval.
  EXPECT_EQ(s.check.type, cfg::LbCheck::Type::kHttp);
  EXPECT_EQ(s.check.path, "/");
  EXPECT_EQ(s.check.status, 200u);
  EXPECT_EQ(s.check.interval_ms, 4000u);
  EXPECT_EQ(s.check.timeout_ms, 2000u);
  const std::string& out = r.result.config;
  EXPECT_TRUE(contains(out, "# keepalived port 8080: dr cannot change the destination port"));
  EXPECT_TRUE(contains(out, "# keepalived: no status_code (any 2xx passed); tandem expects 200"));
  EXPECT_TRUE(contains(out, "# keepalived: connect_timeout is not less than delay_loop"));
  EXPECT_EQ(r.result.untranslated,
            (Strings{
                "x.conf:14: path \"no slash\": tandem needs a path that starts with / and has "
                "no spaces: / is used",
                "x.conf:15: status_code 200-299: tandem expects one status code, 100..599: 200 "
                "is used",
                "x.conf:21: TCP_CHECK of real_server 10.0.0.12 80: differs from the service's "
                "check, the HTTP_GET of real_server 10.0.0.11 8080 (line 12): tandem runs one "
                "check per service",
                "x.conf:22: HTTP_GET { ... }: tandem runs one check per service: the first one "
                "is used",
                "x.conf:23: notify_up /bin/true: tandem runs no script when a real server "
                "changes state",
                "x.conf:26: virtual_server 2001:db8::1 80: IPv6: tandem's load balancer is IPv4 "
                "only",
            }));
}

TEST(KeepalivedImport, EmptyInputStillLoads) {
  const Imported r = import("", "empty.conf");
  EXPECT_EQ(r.result.errors, Strings{});
  EXPECT_EQ(r.result.untranslated, Strings{});
  ASSERT_EQ(r.config.ports.size(), 1u);
  EXPECT_TRUE(r.config.vrrp.instances.empty());
  EXPECT_TRUE(contains(r.result.config, "# Everything in empty.conf was translated."));
}

}  // namespace
}  // namespace ctl
