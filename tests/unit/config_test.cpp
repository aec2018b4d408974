// Unit tests for config/parser.cpp: the model it produces, every error it reports (with the exact
// line), the example configs, and which changes a reload refuses.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"

#ifndef TANDEM_SOURCE_DIR
#error "TANDEM_SOURCE_DIR must point at the source tree (see tests/unit/meson.build)"
#endif

namespace cfg {
namespace {

using Strings = std::vector<std::string>;

// Line 1 of every small config below: the one required port.
constexpr const char* kOnePort = "ports = ( { name = \"p0\"; device = \"net_ring0\"; } );\n";

Strings errors_of(const LoadResult& r) {
  Strings out;
  for (const auto& e : r.errors) out.push_back(e.str());
  EXPECT_EQ(r.config.has_value(), out.empty()) << "a config must come with no errors";
  return out;
}

Strings errors(const std::string& text) {
  return errors_of(load_string(text, "t.conf"));
}

// Errors of kOnePort followed by `rest`, whose first line is line 2.
Strings errors_after_port(const std::string& rest) {
  return errors(kOnePort + rest);
}

Config load_ok(const std::string& text) {
  auto r = load_string(text, "t.conf");
  EXPECT_EQ(errors_of(r), Strings{});
  return r.config.value_or(Config{});
}

uint32_t ip(const char* s) {
  return parse_ipv4(s).value();
}

std::string source(const std::string& rel) {
  return std::string(TANDEM_SOURCE_DIR) + "/" + rel;
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tandem-config-test-XXXXXX";
    const char* d = mkdtemp(tmpl);
    path_ = d != nullptr ? d : "/tmp";
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// The model

constexpr const char* kFull = R"(node = "lb-1";
eal = {
  memory_mb = 512;
  hugepages = true;
  in_memory = false;
  file_prefix = "tdm1";
  log_level = "debug";
  args = [ "--log-level=pmd.net.af_packet:debug", "--no-telemetry" ];
};
dataplane = {
  control_core = 3;
  worker_cores = [ 5, 4 ];
  idle = "busy";
  idle_sleep_max_us = 500;
  burst = 64;
  mbufs = 8191;
  mbuf_cache = 128;
};
ports = (
  {
    name = "front0";
    device = "0000:03:00.0";
    addresses = [ "192.0.2.2/24", "10.1.2.3" ];
    mtu = 9000;
    rx_desc = 2048;
    tx_desc = 512;
  },
  {
    name = "back0";
    device = "net_af_packet1,iface=back0";
  }
);
neighbors = {
  reachable_ms = 60000;
  probe_interval_ms = 500;
  probes = 5;
  max_entries = 1024;
  static = (
    { port = "back0"; ip = "198.51.100.11"; mac = "02:00:00:00:00:11"; },
    { port = "front0"; ip = "192.0.2.10"; mac = "0A:bc:DE:f0:12:34"; }
  );
};
arp = { garp_count = 0; garp_interval_ms = 50; };
control = { socket = "/run/x/y.sock"; };
metrics = { enabled = false; listen = "[::1]:9100"; };
)";

TEST(ConfigModel, FullConfigReadsEveryField) {
  const Config c = load_ok(kFull);
  EXPECT_EQ(c.file, "t.conf");
  EXPECT_EQ(c.node, "lb-1");

  EXPECT_EQ(c.eal.line, 2);
  EXPECT_EQ(c.eal.memory_mb, 512u);
  EXPECT_TRUE(c.eal.hugepages);
  EXPECT_FALSE(c.eal.in_memory);
  EXPECT_EQ(c.eal.file_prefix, "tdm1");
  EXPECT_EQ(c.eal.log_level, "debug");
  EXPECT_EQ(c.eal.args, (Strings{"--log-level=pmd.net.af_packet:debug", "--no-telemetry"}));

  EXPECT_EQ(c.dataplane.line, 10);
  EXPECT_EQ(c.dataplane.control_core, 3u);
  EXPECT_EQ(c.dataplane.worker_cores, (std::vector<uint32_t>{5, 4}));
  EXPECT_EQ(c.dataplane.idle, IdleMode::kBusy);
  EXPECT_EQ(c.dataplane.idle_sleep_max_us, 500u);
  EXPECT_EQ(c.dataplane.burst, 64u);
  EXPECT_EQ(c.dataplane.mbufs, 8191u);
  EXPECT_EQ(c.dataplane.mbuf_cache, 128u);

  ASSERT_EQ(c.ports.size(), 2u);
  const Port& f = c.ports[0];
  EXPECT_EQ(f.line, 20);
  EXPECT_EQ(f.name, "front0");
  EXPECT_EQ(f.device, "0000:03:00.0");
  EXPECT_TRUE(f.is_pci);
  ASSERT_EQ(f.addresses.size(), 2u);
  EXPECT_EQ(f.addresses[0], (Ipv4Prefix{0xc0000202, 24}));
  EXPECT_EQ(f.addresses[1], (Ipv4Prefix{0x0a010203, 32}));
  EXPECT_EQ(f.mtu, 9000);
  EXPECT_EQ(f.rx_desc, 2048);
  EXPECT_EQ(f.tx_desc, 512);
  const Port& b = c.ports[1];
  EXPECT_EQ(b.line, 28);
  EXPECT_EQ(b.name, "back0");
  EXPECT_EQ(b.device, "net_af_packet1,iface=back0");
  EXPECT_FALSE(b.is_pci);
  EXPECT_TRUE(b.addresses.empty());
  EXPECT_EQ(b.mtu, 1500);
  EXPECT_EQ(b.rx_desc, 1024);
  EXPECT_EQ(b.tx_desc, 1024);

  EXPECT_EQ(c.neighbors.line, 33);
  EXPECT_EQ(c.neighbors.reachable_ms, 60000u);
  EXPECT_EQ(c.neighbors.probe_interval_ms, 500u);
  EXPECT_EQ(c.neighbors.probes, 5u);
  EXPECT_EQ(c.neighbors.max_entries, 1024u);
  ASSERT_EQ(c.neighbors.statics.size(), 2u);
  EXPECT_EQ(c.neighbors.statics[0].line, 39);
  EXPECT_EQ(c.neighbors.statics[0].port, "back0");
  EXPECT_EQ(c.neighbors.statics[0].ip, ip("198.51.100.11"));
  EXPECT_EQ(c.neighbors.statics[0].mac, (Mac{0x02, 0, 0, 0, 0, 0x11}));
  EXPECT_EQ(c.neighbors.statics[1].line, 40);
  EXPECT_EQ(c.neighbors.statics[1].port, "front0");
  EXPECT_EQ(c.neighbors.statics[1].ip, 0xc000020au);
  EXPECT_EQ(c.neighbors.statics[1].mac, (Mac{0x0a, 0xbc, 0xde, 0xf0, 0x12, 0x34}));

  EXPECT_EQ(c.arp.line, 43);
  EXPECT_EQ(c.arp.garp_count, 0u);
  EXPECT_EQ(c.arp.garp_interval_ms, 50u);
  EXPECT_EQ(c.control.line, 44);
  EXPECT_EQ(c.control.socket, "/run/x/y.sock");
  EXPECT_EQ(c.metrics.line, 45);
  EXPECT_FALSE(c.metrics.enabled);
  EXPECT_EQ(c.metrics.listen, "[::1]:9100");
}

TEST(ConfigModel, DefaultsWhenOptionalGroupsAreMissing) {
  const Config c = load_ok(R"(ports = (
  { name = "p0"; device = "net_null0"; }
);
)");
  const Config d;
  EXPECT_EQ(c.node, "tandem");
  EXPECT_EQ(c.eal.line, 0);
  EXPECT_EQ(c.eal.memory_mb, 256u);
  EXPECT_TRUE(c.eal.hugepages);
  EXPECT_TRUE(c.eal.in_memory);
  EXPECT_EQ(c.eal.file_prefix, "tandem");
  EXPECT_EQ(c.eal.log_level, "notice");
  EXPECT_TRUE(c.eal.args.empty());
  EXPECT_EQ(c.dataplane.line, 0);
  EXPECT_EQ(c.dataplane.control_core, 0u);
  EXPECT_EQ(c.dataplane.worker_cores, (std::vector<uint32_t>{1}));
  EXPECT_EQ(c.dataplane.idle, IdleMode::kAdaptive);
  EXPECT_EQ(c.dataplane.idle_sleep_max_us, 200u);
  EXPECT_EQ(c.dataplane.burst, 32u);
  EXPECT_EQ(c.dataplane.mbufs, 16383u);
  EXPECT_EQ(c.dataplane.mbuf_cache, 256u);
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].line, 2);
  EXPECT_EQ(c.ports[0].mtu, 1500);
  EXPECT_EQ(c.ports[0].rx_desc, 1024);
  EXPECT_EQ(c.ports[0].tx_desc, 1024);
  EXPECT_TRUE(c.ports[0].addresses.empty());
  EXPECT_EQ(c.neighbors.line, 0);
  EXPECT_EQ(c.neighbors.reachable_ms, 30000u);
  EXPECT_EQ(c.neighbors.probe_interval_ms, 1000u);
  EXPECT_EQ(c.neighbors.probes, 3u);
  EXPECT_EQ(c.neighbors.max_entries, 65536u);
  EXPECT_TRUE(c.neighbors.statics.empty());
  EXPECT_EQ(c.arp.garp_count, 3u);
  EXPECT_EQ(c.arp.garp_interval_ms, 1000u);
  EXPECT_EQ(c.control.socket, "/run/tandem/tandem.sock");
  EXPECT_TRUE(c.metrics.enabled);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9469");
  EXPECT_EQ(c.metrics.listen, d.metrics.listen);
}

TEST(ConfigModel, EmptyGroupsKeepDefaultsAndRecordTheirLine) {
  const Config c =
      load_ok(std::string(kOnePort) + "eal = {};\ndataplane = {};\nneighbors = {\n};\n");
  EXPECT_EQ(c.eal.line, 2);
  EXPECT_EQ(c.eal.memory_mb, 256u);
  EXPECT_EQ(c.dataplane.line, 3);
  EXPECT_EQ(c.dataplane.worker_cores, (std::vector<uint32_t>{1}));
  EXPECT_EQ(c.neighbors.line, 4);
}

TEST(ConfigModel, StaticIsAnAcceptedSettingName) {
  const Config c = load_ok(std::string(kOnePort) +
                           "neighbors = { static = ( { port = \"p0\"; ip = \"10.0.0.1\"; "
                           "mac = \"02:00:00:00:00:01\"; } ); };\n");
  ASSERT_EQ(c.neighbors.statics.size(), 1u);
  EXPECT_EQ(c.neighbors.statics[0].line, 2);
}

TEST(ConfigModel, DevicesPciAndVdev) {
  struct Case {
    const char* device;
    bool is_pci;
  };
  for (const Case& k :
       {Case{"0000:03:00.0", true}, Case{"0000:AF:1f.7", true}, Case{"03:00.1", true},
        Case{"net_af_packet0,iface=front0", false}, Case{"net_ring0", false},
        Case{"net_null0", false}, Case{"net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap", false},
        Case{"net_tap0,iface=x", false}, Case{"net_af_xdp12,iface=veth1", false}}) {
    const Config c =
        load_ok(std::string("ports = ( { name = \"p\"; device = \"") + k.device + "\"; } );\n");
    ASSERT_EQ(c.ports.size(), 1u) << k.device;
    EXPECT_EQ(c.ports[0].is_pci, k.is_pci) << k.device;
    EXPECT_EQ(c.ports[0].device, k.device);
  }
}

TEST(ConfigModel, ScalarSequencesMayBeListsToo) {
  const Config c = load_ok(std::string(kOnePort) + "dataplane = { worker_cores = ( 1, 2 ); };\n");
  EXPECT_EQ(c.dataplane.worker_cores, (std::vector<uint32_t>{1, 2}));
}

TEST(ConfigModel, Int64LiteralsAreIntegers) {
  const Config c = load_ok(std::string(kOnePort) + "neighbors = { max_entries = 4096L; };\n");
  EXPECT_EQ(c.neighbors.max_entries, 4096u);
}

TEST(ConfigModel, HugepagesOffWithoutInMemoryIsFine) {
  const Config c =
      load_ok(std::string(kOnePort) + "eal = { hugepages = false; in_memory = false; };\n");
  EXPECT_FALSE(c.eal.hugepages);
  EXPECT_FALSE(c.eal.in_memory);
}

// ---------------------------------------------------------------------------------------------
// Syntax and files

TEST(ConfigErrors, SyntaxErrorWithLine) {
  EXPECT_EQ(errors("node = \"a\";\n\neal = { memory_mb = ; };\n"),
            (Strings{"t.conf:3: syntax error"}));
}

TEST(ConfigErrors, SyntaxErrorCarriesLibconfigText) {
  EXPECT_EQ(errors("node = \"a\";\nnode = \"b\";\n"),
            (Strings{"t.conf:2: syntax error: duplicate setting name"}));
}

TEST(ConfigErrors, NulByteIsASyntaxError) {
  EXPECT_EQ(errors(std::string("node = \"a\";\n\n", 13) + std::string(1, '\0')),
            (Strings{"t.conf:3: syntax error: NUL byte (not a text file?)"}));
}

TEST(ConfigErrors, MissingFileCannotBeRead) {
  const auto r = load_file("/nonexistent/tandem.conf");
  EXPECT_FALSE(r.config);
  EXPECT_EQ(errors_of(r),
            (Strings{"/nonexistent/tandem.conf: cannot read: No such file or directory"}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
}

TEST(ConfigErrors, DirectoryCannotBeRead) {
  TempDir dir;
  EXPECT_EQ(errors_of(load_file(dir.path())),
            (Strings{dir.path() + ": cannot read: Is a directory"}));
}

TEST(ConfigErrors, UnreadableFileCannotBeRead) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  TempDir dir;
  const std::string p = dir.write("locked.conf", kOnePort);
  ASSERT_EQ(chmod(p.c_str(), 0), 0);
  EXPECT_EQ(errors_of(load_file(p)), (Strings{p + ": cannot read: Permission denied"}));
}

TEST(ConfigErrors, FileErrorsNameTheFile) {
  TempDir dir;
  const std::string p =
      dir.write("x.conf", std::string(kOnePort) + "dataplane = { burst = 0; };\n");
  EXPECT_EQ(errors_of(load_file(p)),
            (Strings{p + ":2: 'dataplane.burst' = 0 is out of range 1..256"}));
  const std::string q = dir.write("y.conf", "ports = (\n");
  ASSERT_EQ(load_file(q).errors.size(), 1u);
  EXPECT_EQ(load_file(q).errors[0].file, q);
  EXPECT_NE(load_file(q).errors[0].message.find("syntax error"), std::string::npos);
}

TEST(ConfigErrors, IncludedFilesAreReadRelativeToTheConfigAndNamedInErrors) {
  TempDir dir;
  const std::string inc = dir.write("dp.conf", "dataplane = {\n  burst = 999;\n};\n");
  const std::string p = dir.write("main.conf", std::string(kOnePort) + "@include \"dp.conf\"\n");
  EXPECT_EQ(errors_of(load_file(p)),
            (Strings{inc + ":2: 'dataplane.burst' = 999 is out of range 1..256"}));
}

// ---------------------------------------------------------------------------------------------
// Unknown keys

TEST(ConfigErrors, UnknownKeySuggestsTheClosestKnownKey) {
  EXPECT_EQ(errors_after_port(R"(dataplane = {
  burst = 32;
  idel = "busy";
};
)"),
            (Strings{"t.conf:4: unknown key 'dataplane.idel' (did you mean 'idle'?)"}));
}

TEST(ConfigErrors, UnknownKeysAtEveryLevel) {
  EXPECT_EQ(errors(R"(neighbours = {};
ports = (
  { name = "p0"; device = "net_ring0"; adresses = [ "10.0.0.1/24" ]; }
);
eal = { Memory_MB = 64; };
neighbors = {
  static = ( { port = "p0"; ip = "10.0.0.9"; mac = "02:00:00:00:00:01"; weight = 1; } );
};
metrics = { enable = true; };
control = { path = "/run/x.sock"; };
)"),
            (Strings{
                "t.conf:1: unknown key 'neighbours' (did you mean 'neighbors'?)",
                "t.conf:3: unknown key 'ports[0].adresses' (did you mean 'addresses'?)",
                "t.conf:5: unknown key 'eal.Memory_MB' (did you mean 'memory_mb'?)",
                "t.conf:7: unknown key 'neighbors.static[0].weight'",
                "t.conf:9: unknown key 'metrics.enable' (did you mean 'enabled'?)",
                "t.conf:10: unknown key 'control.path'",
            }));
}

// ---------------------------------------------------------------------------------------------
// Types

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(errors(R"(node = 7;
eal = { hugepages = 1; args = "--foo"; };
dataplane = {
  burst = "32";
  mbufs = 1.5;
  worker_cores = [ "1" ];
};
ports = (
  { name = "p0"; device = "net_ring0"; addresses = [ 10 ]; mtu = true; },
  "p1"
);
arp = 3;
metrics = { listen = 9469; };
)"),
            (Strings{
                "t.conf:1: 'node' must be a string, got an integer",
                "t.conf:2: 'eal.hugepages' must be a boolean (true or false), got an integer",
                "t.conf:2: 'eal.args' must be an array [ ... ] of strings, got a string",
                "t.conf:4: 'dataplane.burst' must be an integer, got a string",
                "t.conf:5: 'dataplane.mbufs' must be an integer, got a float",
                "t.conf:6: 'dataplane.worker_cores[0]' must be an integer, got a string",
                "t.conf:9: 'ports[0].addresses[0]' must be a string, got an integer",
                "t.conf:9: 'ports[0].mtu' must be an integer, got a boolean",
                "t.conf:10: 'ports[1]' must be a group { ... }, got a string",
                "t.conf:12: 'arp' must be a group { ... }, got an integer",
                "t.conf:13: 'metrics.listen' must be a string, got an integer",
            }));
}

TEST(ConfigErrors, PortsMustBeAListOfGroups) {
  EXPECT_EQ(errors("node = \"a\";\nports = { name = \"p0\"; device = \"net_ring0\"; };\n"),
            (Strings{"t.conf:2: 'ports' must be a list of groups ( { ... }, ... ), got a group"}));
  EXPECT_EQ(errors("ports = [ \"p0\" ];\n"),
            (Strings{"t.conf:1: 'ports' must be a list of groups ( { ... }, ... ), got an array"}));
  EXPECT_EQ(errors_after_port("neighbors = { static = [ \"x\" ]; };\n"),
            (Strings{"t.conf:2: 'neighbors.static' must be a list of groups ( { ... }, ... ), got "
                     "an array"}));
  EXPECT_EQ(errors_after_port("neighbors = { static = ( 1 ); };\n"),
            (Strings{"t.conf:2: 'neighbors.static[0]' must be a group { ... }, got an integer"}));
}

// ---------------------------------------------------------------------------------------------
// Ranges: every integer key, one below and one above its range, and both ends accepted.

struct RangeCase {
  const char* group;  // "" for a port key
  const char* key;
  int64_t lo;
  int64_t hi;
};

std::string with_value(const RangeCase& k, int64_t v) {
  const std::string value = std::to_string(v) + (v > INT32_MAX || v < INT32_MIN ? "L" : "");
  if (std::string(k.group).empty()) {
    return std::string("ports = (\n  { name = \"p0\"; device = \"net_ring0\";\n    ") + k.key +
           " = " + value + "; }\n);\n";
  }
  return std::string(kOnePort) + k.group + " = {\n  " + k.key + " = " + value + ";\n};\n";
}

TEST(ConfigErrors, EveryIntegerKeyIsRangeChecked) {
  const RangeCase cases[] = {
      {"eal", "memory_mb", 16, 1048576},
      {"dataplane", "idle_sleep_max_us", 1, 100000},
      {"dataplane", "burst", 1, 256},
      {"dataplane", "mbufs", 1023, 16777215},
      {"dataplane", "mbuf_cache", 0, 512},
      {"neighbors", "reachable_ms", 1000, 3600000},
      {"neighbors", "probe_interval_ms", 10, 60000},
      {"neighbors", "probes", 1, 100},
      {"neighbors", "max_entries", 16, 16777216},
      {"arp", "garp_count", 0, 100},
      {"arp", "garp_interval_ms", 10, 60000},
      {"", "mtu", 68, 9600},
  };
  for (const RangeCase& k : cases) {
    const bool port = std::string(k.group).empty();
    const std::string path =
        port ? std::string("ports[0].") + k.key : std::string(k.group) + "." + k.key;
    const std::string range = std::to_string(k.lo) + ".." + std::to_string(k.hi);
    for (int64_t bad : {k.lo - 1, k.hi + 1}) {
      EXPECT_EQ(errors(with_value(k, bad)),
                (Strings{"t.conf:3: '" + path + "' = " + std::to_string(bad) + " is out of range " +
                         range}));
    }
    for (int64_t good : {k.lo, k.hi}) {
      EXPECT_EQ(errors(with_value(k, good)), Strings{}) << path << " = " << good;
    }
  }
}

TEST(ConfigErrors, CoreNumbersAreRangeChecked) {
  EXPECT_EQ(errors_after_port("dataplane = { control_core = 128; worker_cores = [ 1, -1 ]; };\n"),
            (Strings{"t.conf:2: 'dataplane.control_core' = 128 is out of range 0..127",
                     "t.conf:2: 'dataplane.worker_cores[1]' = -1 is out of range 0..127"}));
}

TEST(ConfigErrors, DescriptorsAreRangeCheckedAndPowersOfTwo) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "p0"; device = "net_ring0";
    rx_desc = 1000;
    tx_desc = 32768; },
  { name = "p1"; device = "net_ring1";
    rx_desc = 32;
    tx_desc = 16384; }
);
)"),
            (Strings{"t.conf:3: 'ports[0].rx_desc' = 1000 must be a power of two",
                     "t.conf:4: 'ports[0].tx_desc' = 32768 is out of range 64..16384",
                     "t.conf:6: 'ports[1].rx_desc' = 32 is out of range 64..16384"}));
}

TEST(ConfigErrors, IntegersBeyond32BitsAreNotSilentlyWrapped) {
  // libconfig 1.5 reads 4294983679 as 16383, a valid mbufs count.
  EXPECT_EQ(errors_after_port("dataplane = {\n  burst = 32; mbufs = 4294983679;\n};\n"),
            (Strings{"t.conf:3: 'dataplane.mbufs' = 4294983679 is out of range 1023..16777215"}));
  EXPECT_EQ(errors_after_port("arp = { garp_count = -99999999999999999999; };\n"),
            (Strings{"t.conf:2: 'arp.garp_count' = -99999999999999999999 is out of range 0..100"}));
  // Numbers in strings and comments are not integers.
  EXPECT_EQ(
      errors_after_port("node = \"n99999999999\"; # 99999999999\narp = { garp_count = 2; };\n"),
      Strings{});
}

// ---------------------------------------------------------------------------------------------
// Enumerations and names

TEST(ConfigErrors, BadEnumsListTheAllowedValues) {
  EXPECT_EQ(errors_after_port(R"(dataplane = { idle = "lazy"; };
eal = {
  log_level = "verbose";
};
)"),
            (Strings{"t.conf:2: 'dataplane.idle' = \"lazy\" is not one of: busy, adaptive",
                     "t.conf:4: 'eal.log_level' = \"verbose\" is not one of: emerg, alert, crit, "
                     "error, warning, notice, info, debug"}));
}

TEST(ConfigErrors, NodeName) {
  EXPECT_EQ(errors_after_port("node = \"\";\n"), (Strings{"t.conf:2: 'node' must not be empty"}));
  EXPECT_EQ(errors_after_port("node = \"lb 1\";\n"),
            (Strings{"t.conf:2: 'node' = \"lb 1\" may only contain A-Z a-z 0-9 . _ -"}));
  EXPECT_EQ(errors_after_port("node = \"lb/1\";\n"),
            (Strings{"t.conf:2: 'node' = \"lb/1\" may only contain A-Z a-z 0-9 . _ -"}));
  EXPECT_EQ(errors_after_port("node = \"Lb_1.fra-2\";\n"), Strings{});
}

TEST(ConfigErrors, FilePrefixAndPortNamesAreNames) {
  EXPECT_EQ(
      errors(R"(eal = { file_prefix = "../x"; };
ports = ( { name = "front 0"; device = "net_ring0"; } );
)"),
      (Strings{"t.conf:1: 'eal.file_prefix' = \"../x\" may only contain A-Z a-z 0-9 . _ -",
               "t.conf:2: 'ports[0].name' = \"front 0\" may only contain A-Z a-z 0-9 . _ -"}));
}

// ---------------------------------------------------------------------------------------------
// Required keys

TEST(ConfigErrors, PortsAreRequired) {
  EXPECT_EQ(errors("node = \"a\";\n"),
            (Strings{"t.conf: missing required key 'ports' (a list of at least one port)"}));
  EXPECT_EQ(errors("node = \"a\";\nports = ();\n"),
            (Strings{"t.conf:2: 'ports' must have at least one entry"}));
}

TEST(ConfigErrors, PortNeedsNameAndDevice) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "p0"; },
  {
    device = "net_ring1";
  },
  { mtu = 1500; }
);
)"),
            (Strings{"t.conf:2: missing required key 'ports[0].device'",
                     "t.conf:3: missing required key 'ports[1].name'",
                     "t.conf:6: missing required key 'ports[2].name'",
                     "t.conf:6: missing required key 'ports[2].device'"}));
}

TEST(ConfigErrors, StaticNeighborNeedsPortIpAndMac) {
  EXPECT_EQ(errors_after_port(R"(neighbors = {
  static = (
    { ip = "10.0.0.9"; }
  );
};
)"),
            (Strings{"t.conf:4: missing required key 'neighbors.static[0].port'",
                     "t.conf:4: missing required key 'neighbors.static[0].mac'"}));
}

// ---------------------------------------------------------------------------------------------
// Devices

TEST(ConfigErrors, BadDevices) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "a"; device = "eth0"; },
  { name = "b"; device = "0000:03:00.8"; },
  { name = "c"; device = "0000:03:20.0"; },
  { name = "d"; device = "net_af_packet,iface=x"; },
  { name = "e"; device = "net_ring0,iface"; },
  { name = "f"; device = "0000:3:00.0"; }
);
)"),
            (Strings{
                "t.conf:2: 'ports[0].device' = \"eth0\" is neither a PCI address (0000:03:00.0) "
                "nor a DPDK vdev (net_<driver><n>[,key=value...], e.g. net_af_packet0,iface=eth0)",
                "t.conf:3: 'ports[1].device' = \"0000:03:00.8\" is not a valid PCI address "
                "(device 00..1f, function 0..7)",
                "t.conf:4: 'ports[2].device' = \"0000:03:20.0\" is not a valid PCI address "
                "(device 00..1f, function 0..7)",
                "t.conf:5: 'ports[3].device' = \"net_af_packet,iface=x\" is neither a PCI "
                "address (0000:03:00.0) nor a DPDK vdev (net_<driver><n>[,key=value...], e.g. "
                "net_af_packet0,iface=eth0)",
                "t.conf:6: 'ports[4].device' = \"net_ring0,iface\" is neither a PCI address "
                "(0000:03:00.0) nor a DPDK vdev (net_<driver><n>[,key=value...], e.g. "
                "net_af_packet0,iface=eth0)",
                "t.conf:7: 'ports[5].device' = \"0000:3:00.0\" is neither a PCI address "
                "(0000:03:00.0) nor a DPDK vdev (net_<driver><n>[,key=value...], e.g. "
                "net_af_packet0,iface=eth0)",
            }));
}

TEST(ConfigErrors, DuplicatePortNamesAndDevices) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_af_packet0,iface=front0"; },
  { name = "front0"; device = "net_af_packet1,iface=back0"; },
  { name = "back0"; device = "net_af_packet1,iface=other"; },
  { name = "nic0"; device = "0000:03:00.0"; },
  { name = "nic1"; device = "03:00.0"; }
);
)"),
            (Strings{"t.conf:3: duplicate port name 'front0' (first defined on line 2)",
                     "t.conf:4: device 'net_af_packet1' is already used by port 'front0' (line 3)",
                     "t.conf:6: device '0000:03:00.0' is already used by port 'nic0' (line 5)"}));
}

// ---------------------------------------------------------------------------------------------
// Addresses

TEST(ConfigErrors, BadAddresses) {
  EXPECT_EQ(errors(R"(ports = ( { name = "p0"; device = "net_ring0"; addresses = [
  "192.0.2.300/24",
  "192.0.2.1/33",
  "192.0.2.1/",
  "192.0.2.1/x",
  "192.0.2.01/24",
  "127.0.0.1/8",
  "224.0.0.18/32",
  "0.0.0.0/0",
  "255.255.255.255/32",
  "192.0.2.0/24",
  "192.0.2.255/24",
  "192.0.2.254/24",
  "10.0.0.0/31",
  "10.0.0.1/32"
]; } );
)"),
            (Strings{
                "t.conf:2: 'ports[0].addresses[0]' = \"192.0.2.300/24\" is not an IPv4 address "
                "(expected A.B.C.D/LEN)",
                "t.conf:3: 'ports[0].addresses[1]' = \"192.0.2.1/33\" has prefix length 33, out "
                "of range 0..32",
                "t.conf:4: 'ports[0].addresses[2]' = \"192.0.2.1/\" has a bad prefix length "
                "(expected A.B.C.D/LEN, LEN 0..32)",
                "t.conf:5: 'ports[0].addresses[3]' = \"192.0.2.1/x\" has a bad prefix length "
                "(expected A.B.C.D/LEN, LEN 0..32)",
                "t.conf:6: 'ports[0].addresses[4]' = \"192.0.2.01/24\" is not an IPv4 address "
                "(expected A.B.C.D/LEN)",
                "t.conf:7: 'ports[0].addresses[5]' = \"127.0.0.1/8\" is a loopback address, not "
                "usable on a port",
                "t.conf:8: 'ports[0].addresses[6]' = \"224.0.0.18/32\" is a multicast address, "
                "not usable on a port",
                "t.conf:9: 'ports[0].addresses[7]' = \"0.0.0.0/0\" is in 0.0.0.0/8 (this "
                "network), not usable on a port",
                "t.conf:10: 'ports[0].addresses[8]' = \"255.255.255.255/32\" is a reserved or "
                "broadcast address, not usable on a port",
                "t.conf:11: 'ports[0].addresses[9]' = \"192.0.2.0/24\" is the network address of "
                "192.0.2.0/24",
                "t.conf:12: 'ports[0].addresses[10]' = \"192.0.2.255/24\" is the broadcast "
                "address of 192.0.2.0/24",
            }));
}

TEST(ConfigErrors, ConflictingAddresses) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0";
    addresses = [ "192.0.2.2/24",
                  "192.0.2.2/25" ]; },
  { name = "back0"; device = "net_ring1";
    addresses = [ "192.0.2.2/24" ]; }
);
)"),
            (Strings{"t.conf:4: address 192.0.2.2 is listed twice on port 'front0'",
                     "t.conf:6: address 192.0.2.2 is already assigned to port 'front0' (line 3)"}));
}

TEST(ConfigErrors, LastStringOfAMultiLineArrayHasItsOwnLine) {
  // libconfig itself reports the closing bracket's line for it.
  EXPECT_EQ(errors(R"(ports = ( { name = "p0"; device = "net_ring0"; addresses = [
  "192.0.2.2/24",
  "192.0.2.2/24"

]; } );
)"),
            (Strings{"t.conf:3: address 192.0.2.2 is listed twice on port 'p0'"}));
}

// ---------------------------------------------------------------------------------------------
// Static neighbors

TEST(ConfigErrors, StaticNeighbors) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
neighbors = {
  max_entries = 16;
  static = (
    { port = "bak0"; ip = "198.51.100.11"; mac = "02:00:00:00:00:11"; },
    { port = "back0"; ip = "198.51.100.11"; mac = "02:00:00:00:00:11"; },
    { port = "back0";
      ip = "198.51.100.11"; mac = "02:00:00:00:00:12"; },
    { port = "front0"; ip = "198.51.100.11"; mac = "02:00:00:00:00:11"; },
    { port = "front0"; ip = "192.0.2.2"; mac = "02:00:00:00:00:13"; },
    { port = "front0"; ip = "192.0.2.9/32"; mac = "02:00:00:00:00:14"; },
    { port = "front0"; ip = "192.0.2.10"; mac = "02:00:00:00:00"; },
    { port = "front0"; ip = "192.0.2.11"; mac = "01:00:5e:00:00:01"; },
    { port = "front0"; ip = "192.0.2.12"; mac = "00:00:00:00:00:00"; },
    { port = "front0"; ip = "224.0.0.5"; mac = "02:00:00:00:00:15"; }
  );
};
)"),
            (Strings{
                "t.conf:8: 'neighbors.static[0].port' = \"bak0\" is not a configured port (did "
                "you mean 'back0'?)",
                "t.conf:11: static neighbor 198.51.100.11 on port 'back0' is already defined on "
                "line 9",
                "t.conf:13: static neighbor 192.0.2.2 is one of our own addresses (port "
                "'front0')",
                "t.conf:14: 'neighbors.static[5].ip' = \"192.0.2.9/32\" is not an IPv4 address "
                "(expected A.B.C.D)",
                "t.conf:15: 'neighbors.static[6].mac' = \"02:00:00:00:00\" is not a MAC address "
                "(expected xx:xx:xx:xx:xx:xx)",
                "t.conf:16: 'neighbors.static[7].mac' = \"01:00:5e:00:00:01\" is not a unicast "
                "MAC address",
                "t.conf:17: 'neighbors.static[8].mac' = \"00:00:00:00:00:00\" is not a unicast "
                "MAC address",
                "t.conf:18: 'neighbors.static[9].ip' = \"224.0.0.5\" is a multicast address",
            }));
}

TEST(ConfigErrors, MoreStaticNeighborsThanTheTableHolds) {
  std::string text = std::string(kOnePort) + "neighbors = {\n  max_entries = 16;\n  static = (\n";
  for (int i = 0; i < 17; ++i) {
    text += std::string(i == 0 ? "" : ",") + "{ port = \"p0\"; ip = \"10.0.0." +
            std::to_string(i + 1) + "\"; mac = \"02:00:00:00:00:01\"; }\n";
  }
  text += "  );\n};\n";
  EXPECT_EQ(errors(text), (Strings{"t.conf:4: 'neighbors.static' has 17 entries, more than "
                                   "'neighbors.max_entries' = 16"}));
}

// ---------------------------------------------------------------------------------------------
// Cores

TEST(ConfigErrors, WorkerCores) {
  EXPECT_EQ(errors_after_port(R"(dataplane = {
  control_core = 2;
  worker_cores = [
    1,
    2,
    3,
    1
  ];
};
)"),
            (Strings{"t.conf:6: 'dataplane.worker_cores' contains core 2, which is "
                     "'dataplane.control_core'",
                     "t.conf:8: 'dataplane.worker_cores' lists core 1 twice"}));
  EXPECT_EQ(errors_after_port("dataplane = { worker_cores = []; };\n"),
            (Strings{"t.conf:2: 'dataplane.worker_cores' must have 1..64 entries, got 0"}));
  std::string many = "dataplane = { control_core = 100; worker_cores = [ 0";
  for (int i = 1; i < 65; ++i) many += ", " + std::to_string(i);
  EXPECT_EQ(errors_after_port(many + " ]; };\n"),
            (Strings{"t.conf:2: 'dataplane.worker_cores' must have 1..64 entries, got 65"}));
}

TEST(ConfigErrors, ControlCoreOnTheDefaultWorkerCore) {
  EXPECT_EQ(errors_after_port("dataplane = {\n  control_core = 1;\n};\n"),
            (Strings{"t.conf:3: 'dataplane.control_core' = 1 is also the default worker core: "
                     "set 'dataplane.worker_cores'"}));
}

// ---------------------------------------------------------------------------------------------
// EAL, control and metrics

TEST(ConfigErrors, InMemoryNeedsHugepages) {
  EXPECT_EQ(errors_after_port("eal = {\n  hugepages = false;\n  in_memory = true;\n};\n"),
            (Strings{"t.conf:4: 'eal.in_memory' = true cannot be combined with 'eal.hugepages' = "
                     "false: DPDK refuses --in-memory with --no-huge (set in_memory = false)"}));
  EXPECT_EQ(errors_after_port("eal = {\n  hugepages = false;\n};\n"),
            (Strings{"t.conf:3: 'eal.hugepages' = false needs 'eal.in_memory' = false (the "
                     "default is true): DPDK refuses --in-memory with --no-huge"}));
}

TEST(ConfigErrors, ControlSocketMustBeAnAbsolutePath) {
  EXPECT_EQ(errors_after_port("control = {\n  socket = \"run/tandem.sock\";\n};\n"),
            (Strings{"t.conf:3: 'control.socket' = \"run/tandem.sock\" must be an absolute path"}));
  EXPECT_EQ(errors_after_port("control = { socket = \"\"; };\n"),
            (Strings{"t.conf:2: 'control.socket' = \"\" must be an absolute path"}));
  EXPECT_EQ(errors_after_port("control = { socket = \"/" + std::string(107, 'x') + "\"; };\n"),
            (Strings{"t.conf:2: 'control.socket' is 108 bytes long, more than a unix socket path "
                     "can hold (107)"}));
  EXPECT_EQ(errors_after_port("control = { socket = \"/" + std::string(106, 'x') + "\"; };\n"),
            Strings{});
}

TEST(ConfigErrors, MetricsListenMustBeHostPort) {
  for (const char* bad :
       {"9469", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "localhost:9469",
        ":9469", "127.0.0.1:94a9", "[::1:9469", "[]:9469", "[zz]:9469", "127.0.0.1:123456"}) {
    EXPECT_EQ(errors_after_port(std::string("metrics = {\n  listen = \"") + bad + "\";\n};\n"),
              (Strings{std::string("t.conf:3: 'metrics.listen' = \"") + bad +
                       "\" is not HOST:PORT (e.g. 127.0.0.1:9469 or [::1]:9469, port 1..65535)"}));
  }
  for (const char* good :
       {"0.0.0.0:9469", "127.0.0.1:1", "10.1.2.3:65535", "[::]:9469", "[fe80::1]:80"}) {
    EXPECT_EQ(errors_after_port(std::string("metrics = { listen = \"") + good + "\"; };\n"),
              Strings{})
        << good;
  }
}

// ---------------------------------------------------------------------------------------------
// Many errors at once

TEST(ConfigErrors, AllErrorsAreReportedInFileOrder) {
  EXPECT_EQ(errors(R"(metrics = { listen = "nowhere"; };
dataplane = {
  burst = 0;
  idel = "busy";
};
ports = (
  { name = "p0"; device = "eth0"; mtu = 20; }
);
eal = { memory_mb = 1; };
node = "";
)"),
            (Strings{
                "t.conf:1: 'metrics.listen' = \"nowhere\" is not HOST:PORT (e.g. 127.0.0.1:9469 "
                "or [::1]:9469, port 1..65535)",
                "t.conf:3: 'dataplane.burst' = 0 is out of range 1..256",
                "t.conf:4: unknown key 'dataplane.idel' (did you mean 'idle'?)",
                "t.conf:7: 'ports[0].device' = \"eth0\" is neither a PCI address (0000:03:00.0) "
                "nor a DPDK vdev (net_<driver><n>[,key=value...], e.g. net_af_packet0,iface=eth0)",
                "t.conf:7: 'ports[0].mtu' = 20 is out of range 68..9600",
                "t.conf:9: 'eal.memory_mb' = 1 is out of range 16..1048576",
                "t.conf:10: 'node' must not be empty",
            }));
}

TEST(ConfigErrors, ErrorStrFormats) {
  EXPECT_EQ((Error{"a.conf", 12, "boom"}).str(), "a.conf:12: boom");
  EXPECT_EQ((Error{"a.conf", 0, "boom"}).str(), "a.conf: boom");
}

// ---------------------------------------------------------------------------------------------
// The shipped examples

TEST(ConfigExamples, LabNodeA) {
  const auto r = load_file(source("examples/lab/node-a.conf"));
  ASSERT_EQ(errors_of(r), Strings{});
  const Config& c = *r.config;
  EXPECT_EQ(c.node, "a");
  EXPECT_TRUE(c.eal.in_memory);
  EXPECT_TRUE(c.eal.hugepages);
  EXPECT_EQ(c.eal.memory_mb, 256u);
  EXPECT_EQ(c.dataplane.control_core, 0u);
  EXPECT_EQ(c.dataplane.worker_cores, (std::vector<uint32_t>{1}));
  EXPECT_EQ(c.dataplane.idle, IdleMode::kAdaptive);
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "front0");
  EXPECT_EQ(c.ports[0].device, "net_af_packet0,iface=front0,framecnt=4096");
  EXPECT_EQ(c.ports[0].addresses, (std::vector<Ipv4Prefix>{{ip("192.0.2.2"), 24}}));
  EXPECT_EQ(c.ports[1].name, "back0");
  EXPECT_EQ(c.ports[1].device, "net_af_packet1,iface=back0");
  EXPECT_EQ(c.ports[1].addresses, (std::vector<Ipv4Prefix>{{ip("198.51.100.2"), 24}}));
  EXPECT_EQ(c.control.socket, "/run/tandem/a.sock");
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9469");
  EXPECT_EQ(c.arp.garp_count, 3u);
  EXPECT_EQ(c.arp.garp_interval_ms, 1000u);
}

TEST(ConfigExamples, LabNodeB) {
  const auto r = load_file(source("examples/lab/node-b.conf"));
  ASSERT_EQ(errors_of(r), Strings{});
  const Config& c = *r.config;
  EXPECT_EQ(c.node, "b");
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].addresses, (std::vector<Ipv4Prefix>{{ip("192.0.2.3"), 24}}));
  EXPECT_EQ(c.ports[1].addresses, (std::vector<Ipv4Prefix>{{ip("198.51.100.3"), 24}}));
  EXPECT_EQ(c.control.socket, "/run/tandem/b.sock");
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9469");
}

TEST(ConfigExamples, LabNodesDifferOnlyWhereTheyMust) {
  const auto a = load_file(source("examples/lab/node-a.conf"));
  const auto b = load_file(source("examples/lab/node-b.conf"));
  ASSERT_TRUE(a.config && b.config);
  Strings diff;
  for (const auto& e : reload_conflicts(*a.config, *b.config)) diff.push_back(e.message);
  // Each node has its own socket and lease files (two daemons on one machine must not share
  // them: the journal is locked).
  EXPECT_EQ(diff,
            (Strings{"'control.socket' cannot change on reload (restart tandemd to apply)",
                     "'dhcp.leases.journal' cannot change on reload (restart tandemd to apply)",
                     "'dhcp.leases.snapshot' cannot change on reload (restart tandemd to apply)",
                     "'sync (address, peer, port, interface, key, connections)' cannot change on "
                     "reload (restart tandemd to apply)"}))
      << "node-a.conf and node-b.conf must describe the same daemon shape";
}

TEST(ConfigExamples, ProductionExample) {
  const auto r = load_file(source("examples/tandem.conf"));
  ASSERT_EQ(errors_of(r), Strings{});
  const Config& c = *r.config;
  EXPECT_FALSE(c.eal.in_memory);
  EXPECT_FALSE(c.eal.file_prefix.empty());
  EXPECT_EQ(c.dataplane.idle, IdleMode::kBusy);
  ASSERT_FALSE(c.ports.empty());
  EXPECT_TRUE(c.ports[0].is_pci);
  EXPECT_EQ(c.ports[0].device, "0000:03:00.0");
  EXPECT_FALSE(c.neighbors.statics.empty());
  EXPECT_EQ(c.vrrp.checksum, VrrpChecksum::kKeepalived);
  EXPECT_EQ(c.vrrp.notify, "/etc/tandem/notify.sh");
  ASSERT_EQ(c.vrrp.scripts.size(), 1u);
  ASSERT_EQ(c.vrrp.instances.size(), 2u);
  EXPECT_EQ(c.vrrp.instances[0].port, "front0");
  EXPECT_EQ(c.vrrp.instances[0].advert_interval_ms, 100u);
  EXPECT_EQ(c.vrrp.instances[1].port, "back0");
  ASSERT_EQ(c.vrrp.sync_groups.size(), 1u);
  EXPECT_EQ(c.vrrp.sync_groups[0].instances.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Reload

Strings conflicts(const std::string& running, const std::string& next) {
  const auto r = load_string(running, "a.conf");
  const auto n = load_string(next, "b.conf");
  EXPECT_EQ(errors_of(r), Strings{});
  EXPECT_EQ(errors_of(n), Strings{});
  if (!r.config || !n.config) return {"(did not load)"};
  Strings out;
  for (const auto& e : reload_conflicts(*r.config, *n.config)) out.push_back(e.str());
  return out;
}

TEST(ConfigReload, IdenticalConfigsHaveNoConflicts) {
  EXPECT_EQ(conflicts(kFull, kFull), Strings{});
}

TEST(ConfigReload, RuntimeKeysMayChange) {
  const std::string next = R"(node = "lb-2";
eal = {
  memory_mb = 512;
  hugepages = true;
  in_memory = false;
  file_prefix = "tdm1";
  log_level = "debug";
  args = [ "--log-level=pmd.net.af_packet:debug", "--no-telemetry" ];
};
dataplane = {
  control_core = 3;
  worker_cores = [ 5, 4 ];
  idle = "adaptive";
  idle_sleep_max_us = 50;
  burst = 16;
  mbufs = 8191;
  mbuf_cache = 128;
};
ports = (
  {
    name = "front0";
    device = "0000:03:00.0";
    addresses = [ "192.0.2.3/24" ];
    mtu = 9000;
    rx_desc = 2048;
    tx_desc = 512;
  },
  {
    name = "back0";
    device = "net_af_packet1,iface=back0";
    addresses = [ "198.51.100.2/24" ];
  }
);
neighbors = {
  reachable_ms = 1000;
  probe_interval_ms = 10;
  probes = 1;
  max_entries = 1024;
};
arp = { garp_count = 100; garp_interval_ms = 60000; };
control = { socket = "/run/x/y.sock"; };
metrics = { enabled = false; listen = "[::1]:9100"; };
)";
  EXPECT_EQ(conflicts(kFull, next), Strings{});
  EXPECT_EQ(conflicts(next, kFull), Strings{});
}

TEST(ConfigReload, RestartKeysAreRefusedOneErrorEach) {
  const std::string running = std::string(R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; }
);
)");
  const std::string next = R"(eal = {
  memory_mb = 512; hugepages = false; in_memory = false; file_prefix = "x";
  log_level = "debug"; args = [ "-v" ];
};
dataplane = {
  control_core = 2;
  worker_cores = [ 3 ];
  mbufs = 2047;
  mbuf_cache = 0;
};

ports = (
  { name = "front0"; device = "net_ring2"; mtu = 9000; },
  { name = "back1"; device = "net_ring1"; rx_desc = 64; tx_desc = 64; }
);
neighbors = { max_entries = 16; };
control = { socket = "/tmp/t.sock"; };
metrics = { enabled = false; listen = "127.0.0.1:1"; };
)";
  const std::string suffix = "' cannot change on reload (restart tandemd to apply)";
  EXPECT_EQ(conflicts(running, next), (Strings{
                                          "b.conf:1: 'eal.memory_mb" + suffix,
                                          "b.conf:1: 'eal.hugepages" + suffix,
                                          "b.conf:1: 'eal.in_memory" + suffix,
                                          "b.conf:1: 'eal.file_prefix" + suffix,
                                          "b.conf:1: 'eal.log_level" + suffix,
                                          "b.conf:1: 'eal.args" + suffix,
                                          "b.conf:5: 'dataplane.control_core" + suffix,
                                          "b.conf:5: 'dataplane.worker_cores" + suffix,
                                          "b.conf:5: 'dataplane.mbufs" + suffix,
                                          "b.conf:5: 'dataplane.mbuf_cache" + suffix,
                                          "b.conf:13: 'ports[0].device" + suffix,
                                          "b.conf:13: 'ports[0].mtu" + suffix,
                                          "b.conf:14: 'ports[1].name" + suffix,
                                          "b.conf:14: 'ports[1].rx_desc" + suffix,
                                          "b.conf:14: 'ports[1].tx_desc" + suffix,
                                          "b.conf:16: 'neighbors.max_entries" + suffix,
                                          "b.conf:17: 'control.socket" + suffix,
                                          "b.conf:18: 'metrics.enabled" + suffix,
                                          "b.conf:18: 'metrics.listen" + suffix,
                                      }));
  // And back again: every key is reported the other way too, located in the new next file
  // (b.conf), where the groups are absent: line 0, except the ports.
  const Strings back = conflicts(next, running);
  ASSERT_EQ(back.size(), 19u);
  EXPECT_EQ(back.front(), "b.conf: 'eal.memory_mb" + suffix);
  EXPECT_EQ(back.back(), "b.conf:3: 'ports[1].tx_desc" + suffix);
}

TEST(ConfigReload, AddingRemovingOrReorderingPortsIsRefused) {
  const std::string two = R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; }
);
)";
  const std::string three = R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; },
  { name = "sync0"; device = "net_ring2"; }
);
)";
  const std::string swapped = R"(ports = (
  { name = "back0"; device = "net_ring1"; },
  { name = "front0"; device = "net_ring0"; }
);
)";
  const std::string suffix = "' cannot change on reload (restart tandemd to apply)";
  EXPECT_EQ(conflicts(two, three), (Strings{"b.conf:4: 'ports" + suffix}));
  EXPECT_EQ(conflicts(three, two), (Strings{"b.conf:3: 'ports" + suffix}));
  EXPECT_EQ(conflicts(two, swapped),
            (Strings{"b.conf:2: 'ports[0].name" + suffix, "b.conf:2: 'ports[0].device" + suffix,
                     "b.conf:3: 'ports[1].name" + suffix, "b.conf:3: 'ports[1].device" + suffix}));
}

TEST(ConfigReload, WorkerCoresExampleFromTheDocs) {
  const std::string a = std::string(kOnePort) + "dataplane = { worker_cores = [1]; };\n";
  const std::string b = std::string(kOnePort) + "dataplane = { worker_cores = [1, 2]; };\n";
  EXPECT_EQ(conflicts(a, b),
            (Strings{"b.conf:2: 'dataplane.worker_cores' cannot change on reload (restart "
                     "tandemd to apply)"}));
}

// ---------------------------------------------------------------------------------------------
// VRRP

constexpr const char* kVrrpFull = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
vrrp = {
  checksum = "rfc9568";
  garp_count = 0;
  garp_interval_ms = 50;
  garp_refresh_s = 60;
  notify = "/etc/tandem/notify.sh";
  scripts = (
    { name = "chk_nginx"; command = "pidof nginx"; interval_ms = 2000; timeout_ms = 1500;
      weight = -20; rise = 2; fall = 3; },
    { name = "chk_disk"; command = "test -w /var"; }
  );
  instances = (
    {
      name = "VI_1";
      port = "front0";
      vrid = 51;
      version = 3;
      priority = 150;
      advert_interval_ms = 100;
      preempt = true;
      preempt_delay_ms = 5000;
      virtual_ips = [ "192.0.2.100/24", "192.0.2.101" ];
      virtual_mac = true;
      auth_pass = "";
      unicast_peers = [ "192.0.2.3", "192.0.2.4" ];
      track_ports = ( { port = "back0"; weight = -50; } );
      track_scripts = ( { script = "chk_nginx"; weight = -30; }, { script = "chk_disk"; } );
      notify = "/etc/tandem/vi1.sh";
    },
    { name = "VI_2"; port = "back0"; vrid = 51; version = 2; priority = 255;
      advert_interval_ms = 3000; preempt = true; auth_pass = "12345678";
      virtual_ips = [ "198.51.100.2/24" ]; },
    { name = "VI_3"; port = "back0"; vrid = 52; virtual_ips = [ "198.51.100.100/24" ]; }
  );
  sync_groups = ( { name = "VG_1"; instances = [ "VI_1", "VI_2" ]; notify = "/etc/tandem/vg.sh"; } );
};
)";

TEST(ConfigVrrp, FullSectionReadsEveryField) {
  const Config c = load_ok(kVrrpFull);
  const Vrrp& v = c.vrrp;
  EXPECT_EQ(v.line, 5);
  EXPECT_EQ(v.checksum, VrrpChecksum::kRfc9568);
  EXPECT_EQ(v.garp_count, 0u);
  EXPECT_EQ(v.garp_interval_ms, 50u);
  EXPECT_EQ(v.garp_refresh_s, 60u);
  EXPECT_EQ(v.notify, "/etc/tandem/notify.sh");

  ASSERT_EQ(v.scripts.size(), 2u);
  const VrrpScript& s0 = v.scripts[0];
  EXPECT_EQ(s0.line, 12);
  EXPECT_EQ(s0.name, "chk_nginx");
  EXPECT_EQ(s0.command, "pidof nginx");
  EXPECT_EQ(s0.interval_ms, 2000u);
  EXPECT_EQ(s0.timeout_ms, 1500u);
  EXPECT_EQ(s0.weight, -20);
  EXPECT_EQ(s0.rise, 2u);
  EXPECT_EQ(s0.fall, 3u);
  EXPECT_EQ(v.scripts[1].line, 14);
  EXPECT_EQ(v.scripts[1].name, "chk_disk");

  ASSERT_EQ(v.instances.size(), 3u);
  const VrrpInstance& i0 = v.instances[0];
  EXPECT_EQ(i0.line, 17);
  EXPECT_EQ(i0.name, "VI_1");
  EXPECT_EQ(i0.port, "front0");
  EXPECT_EQ(i0.vrid, 51u);
  EXPECT_EQ(i0.version, 3u);
  EXPECT_EQ(i0.priority, 150u);
  EXPECT_EQ(i0.advert_interval_ms, 100u);
  EXPECT_TRUE(i0.preempt);
  EXPECT_EQ(i0.preempt_delay_ms, 5000u);
  EXPECT_EQ(i0.virtual_ips,
            (std::vector<Ipv4Prefix>{{ip("192.0.2.100"), 24}, {ip("192.0.2.101"), 32}}));
  EXPECT_TRUE(i0.virtual_mac);
  EXPECT_EQ(i0.auth_pass, "");
  EXPECT_EQ(i0.unicast_peers, (std::vector<uint32_t>{ip("192.0.2.3"), ip("192.0.2.4")}));
  ASSERT_EQ(i0.track_ports.size(), 1u);
  EXPECT_EQ(i0.track_ports[0].port, "back0");
  EXPECT_EQ(i0.track_ports[0].weight, -50);
  EXPECT_EQ(i0.track_ports[0].line, 30);
  ASSERT_EQ(i0.track_scripts.size(), 2u);
  EXPECT_EQ(i0.track_scripts[0].script, "chk_nginx");
  EXPECT_EQ(i0.track_scripts[0].weight, std::optional<int>(-30));
  EXPECT_EQ(i0.track_scripts[0].line, 31);
  EXPECT_EQ(i0.track_scripts[1].script, "chk_disk");
  EXPECT_FALSE(i0.track_scripts[1].weight.has_value());
  EXPECT_EQ(i0.notify, "/etc/tandem/vi1.sh");

  const VrrpInstance& i1 = v.instances[1];
  EXPECT_EQ(i1.line, 34);
  EXPECT_EQ(i1.port, "back0");
  EXPECT_EQ(i1.vrid, 51u);  // the same VRID on another port
  EXPECT_EQ(i1.version, 2u);
  EXPECT_EQ(i1.priority, 255u);
  EXPECT_EQ(i1.advert_interval_ms, 3000u);
  EXPECT_EQ(i1.auth_pass, "12345678");
  // The owner's virtual IP is its own interface address.
  EXPECT_EQ(i1.virtual_ips, (std::vector<Ipv4Prefix>{{ip("198.51.100.2"), 24}}));
  EXPECT_EQ(v.instances[2].vrid, 52u);

  ASSERT_EQ(v.sync_groups.size(), 1u);
  EXPECT_EQ(v.sync_groups[0].line, 39);
  EXPECT_EQ(v.sync_groups[0].name, "VG_1");
  EXPECT_EQ(v.sync_groups[0].instances, (Strings{"VI_1", "VI_2"}));
  EXPECT_EQ(v.sync_groups[0].notify, "/etc/tandem/vg.sh");
}

TEST(ConfigVrrp, Defaults) {
  const Config none = load_ok(kOnePort);
  EXPECT_EQ(none.vrrp.line, 0);
  EXPECT_EQ(none.vrrp.checksum, VrrpChecksum::kKeepalived);
  EXPECT_EQ(none.vrrp.garp_count, 5u);
  EXPECT_EQ(none.vrrp.garp_interval_ms, 100u);
  EXPECT_EQ(none.vrrp.garp_refresh_s, 0u);
  EXPECT_EQ(none.vrrp.notify, "");
  EXPECT_TRUE(none.vrrp.scripts.empty());
  EXPECT_TRUE(none.vrrp.instances.empty());
  EXPECT_TRUE(none.vrrp.sync_groups.empty());

  const Config c = load_ok(std::string(kOnePort) + R"(vrrp = {
  scripts = ( { name = "s"; command = "true"; } );
  instances = ( { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.100/24" ]; } );
};
)");
  EXPECT_EQ(c.vrrp.line, 2);
  EXPECT_EQ(c.vrrp.checksum, VrrpChecksum::kKeepalived);
  EXPECT_EQ(c.vrrp.garp_count, 5u);
  ASSERT_EQ(c.vrrp.scripts.size(), 1u);
  const VrrpScript& s = c.vrrp.scripts[0];
  EXPECT_EQ(s.interval_ms, 1000u);
  EXPECT_EQ(s.timeout_ms, 500u);  // 1000 would not be less than the interval
  EXPECT_EQ(s.weight, 0);
  EXPECT_EQ(s.rise, 1u);
  EXPECT_EQ(s.fall, 1u);
  ASSERT_EQ(c.vrrp.instances.size(), 1u);
  const VrrpInstance& i = c.vrrp.instances[0];
  EXPECT_EQ(i.line, 4);
  EXPECT_EQ(i.version, 3u);
  EXPECT_EQ(i.priority, 100u);
  EXPECT_EQ(i.advert_interval_ms, 1000u);
  EXPECT_TRUE(i.preempt);
  EXPECT_EQ(i.preempt_delay_ms, 0u);
  EXPECT_FALSE(i.virtual_mac);
  EXPECT_EQ(i.auth_pass, "");
  EXPECT_TRUE(i.unicast_peers.empty());
  EXPECT_TRUE(i.track_ports.empty());
  EXPECT_TRUE(i.track_scripts.empty());
  EXPECT_EQ(i.notify, "");
  EXPECT_TRUE(c.vrrp.sync_groups.empty());
}

TEST(ConfigVrrp, ScriptTimeoutDefaultFollowsTheInterval) {
  auto timeout = [](const char* script) {
    const Config c = load_ok(std::string(kOnePort) + "vrrp = { scripts = ( " + script + " ); };\n");
    return c.vrrp.scripts.empty() ? 0u : c.vrrp.scripts[0].timeout_ms;
  };
  EXPECT_EQ(timeout("{ name = \"s\"; command = \"x\"; interval_ms = 5000; }"), 1000u);
  EXPECT_EQ(timeout("{ name = \"s\"; command = \"x\"; interval_ms = 1001; }"), 1000u);
  EXPECT_EQ(timeout("{ name = \"s\"; command = \"x\"; interval_ms = 200; }"), 100u);
  EXPECT_EQ(timeout("{ name = \"s\"; command = \"x\"; interval_ms = 200; timeout_ms = 199; }"),
            199u);
}

TEST(ConfigVrrp, UnknownKeysAndTypes) {
  EXPECT_EQ(errors_after_port(R"(vrrp = {
  instance = ();
  garp_cont = 1;
  scripts = ( { name = "s"; command = "x"; intervall_ms = 100; } );
  instances = (
    { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.100/24" ]; vird = 2;
      track_ports = ( { port = "p0"; wieght = 1; } );
      track_scripts = ( { script = "s"; weigth = 1; } ); },
    "VI_2"
  );
  sync_groups = ( { name = "G"; instances = [ "VI_1" ]; members = [ "VI_1" ]; } );
};
)"),
            (Strings{
                "t.conf:3: unknown key 'vrrp.instance' (did you mean 'instances'?)",
                "t.conf:4: unknown key 'vrrp.garp_cont' (did you mean 'garp_count'?)",
                "t.conf:5: unknown key 'vrrp.scripts[0].intervall_ms' (did you mean "
                "'interval_ms'?)",
                "t.conf:7: unknown key 'vrrp.instances[0].vird' (did you mean 'vrid'?)",
                "t.conf:8: unknown key 'vrrp.instances[0].track_ports[0].wieght' (did you mean "
                "'weight'?)",
                "t.conf:9: unknown key 'vrrp.instances[0].track_scripts[0].weigth' (did you mean "
                "'weight'?)",
                "t.conf:10: 'vrrp.instances[1]' must be a group { ... }, got a string",
                "t.conf:12: unknown key 'vrrp.sync_groups[0].members'",
            }));
  EXPECT_EQ(errors_after_port(R"(vrrp = {
  checksum = 1;
  scripts = { name = "s"; };
  instances = [ "VI_1" ];
  sync_groups = ( 1 );
};
vrrp2 = 1;
)"),
            (Strings{
                "t.conf:3: 'vrrp.checksum' must be a string, got an integer",
                "t.conf:4: 'vrrp.scripts' must be a list of groups ( { ... }, ... ), got a group",
                "t.conf:5: 'vrrp.instances' must be a list of groups ( { ... }, ... ), got an "
                "array",
                "t.conf:6: 'vrrp.sync_groups[0]' must be a group { ... }, got an integer",
                "t.conf:8: unknown key 'vrrp2' (did you mean 'vrrp'?)",
            }));
  EXPECT_EQ(errors_after_port(R"(vrrp = { instances = ( {
  name = "VI_1"; port = "p0"; vrid = "1"; virtual_ips = "10.0.0.100/24"; preempt = 1;
  track_ports = [ "p0" ]; track_scripts = ( "s" ); unicast_peers = [ 1 ];
} ); };
)"),
            (Strings{
                "t.conf:3: 'vrrp.instances[0].vrid' must be an integer, got a string",
                "t.conf:3: 'vrrp.instances[0].preempt' must be a boolean (true or false), got an "
                "integer",
                "t.conf:3: 'vrrp.instances[0].virtual_ips' must be an array [ ... ] of strings, "
                "got a string",
                "t.conf:4: 'vrrp.instances[0].unicast_peers[0]' must be a string, got an integer",
                "t.conf:4: 'vrrp.instances[0].track_ports' must be a list of groups ( { ... }, "
                "... ), got an array",
                "t.conf:4: 'vrrp.instances[0].track_scripts[0]' must be a group { ... }, got a "
                "string",
            }));
}

TEST(ConfigVrrp, RequiredKeys) {
  EXPECT_EQ(errors_after_port(R"(vrrp = {
  scripts = ( { interval_ms = 1000; } );
  instances = (
    { priority = 100; },
    { name = "VI_2"; port = "p0"; vrid = 2; virtual_ips = [ "10.0.0.100/24" ];
      track_ports = ( { weight = 1; } );
      track_scripts = ( { weight = 1; } ); }
  );
  sync_groups = ( {
    notify = "";
  } );
};
)"),
            (Strings{
                "t.conf:3: missing required key 'vrrp.scripts[0].name'",
                "t.conf:3: missing required key 'vrrp.scripts[0].command'",
                "t.conf:5: missing required key 'vrrp.instances[0].name'",
                "t.conf:5: missing required key 'vrrp.instances[0].port'",
                "t.conf:5: missing required key 'vrrp.instances[0].vrid'",
                "t.conf:5: missing required key 'vrrp.instances[0].virtual_ips'",
                "t.conf:7: missing required key 'vrrp.instances[1].track_ports[0].port'",
                "t.conf:8: missing required key 'vrrp.instances[1].track_scripts[0].script'",
                "t.conf:10: missing required key 'vrrp.sync_groups[0].name'",
                "t.conf:10: missing required key 'vrrp.sync_groups[0].instances'",
            }));
}

// Every integer key of the vrrp section, one below and one above its range, both ends accepted.
TEST(ConfigVrrp, EveryIntegerKeyIsRangeChecked) {
  struct Case {
    const char* where;  // "vrrp", "script", "instance", "track_port", "track_script"
    const char* key;
    int64_t lo;
    int64_t hi;
  };
  const Case cases[] = {
      {"vrrp", "garp_count", 0, 100},       {"vrrp", "garp_interval_ms", 10, 60000},
      {"vrrp", "garp_refresh_s", 0, 86400}, {"script", "interval_ms", 100, 3600000},
      {"script", "weight", -254, 254},      {"script", "rise", 1, 100},
      {"script", "fall", 1, 100},           {"instance", "vrid", 1, 255},
      {"instance", "priority", 1, 255},     {"instance", "preempt_delay_ms", 0, 3600000},
      {"track_port", "weight", -254, 254},  {"track_script", "weight", -254, 254},
  };
  // Line 2: vrrp = {; line 3: the key (or the entry holding it).
  auto text = [](const Case& k, int64_t v) {
    const std::string kv = std::string(k.key) + " = " + std::to_string(v) + ";";
    const std::string where = k.where;
    std::string script = "{ name = \"s\"; command = \"x\"; interval_ms = 3600000; }";
    std::string instance =
        "{ name = \"VI_1\"; port = \"p0\"; vrid = 1; virtual_ips = [ \"10.0.0.9\" ]; }";
    std::string top;
    if (where == "vrrp") top = kv;
    if (where == "script")
      script = "{ name = \"s\"; command = \"x\"; timeout_ms = 10; " + kv + " }";
    if (where == "instance") {
      instance = "{ name = \"VI_1\"; port = \"p0\"; virtual_ips = [ \"10.0.0.9\" ]; " +
                 (std::string(k.key) == "vrid" ? "" : std::string("vrid = 1; ")) + kv + " }";
    }
    if (where == "track_port") {
      instance =
          "{ name = \"VI_1\"; port = \"p0\"; vrid = 1; virtual_ips = [ \"10.0.0.9\" ]; "
          "track_ports = ( { port = \"p0\"; " +
          kv + " } ); }";
    }
    if (where == "track_script") {
      instance =
          "{ name = \"VI_1\"; port = \"p0\"; vrid = 1; virtual_ips = [ \"10.0.0.9\" ]; "
          "track_scripts = ( { script = \"s\"; " +
          kv + " } ); }";
    }
    const std::string line3 = where == "vrrp"     ? top
                              : where == "script" ? "scripts = ( " + script + " );"
                                                  : "instances = ( " + instance + " );";
    std::string out = std::string(kOnePort) + "vrrp = {\n  " + line3 + "\n";
    if (where != "script") out += "  scripts = ( " + script + " );\n";
    return out + "};\n";
  };
  for (const Case& k : cases) {
    const std::string where = k.where;
    const std::string path = where == "vrrp"       ? std::string("vrrp.") + k.key
                             : where == "script"   ? std::string("vrrp.scripts[0].") + k.key
                             : where == "instance" ? std::string("vrrp.instances[0].") + k.key
                             : where == "track_port"
                                 ? std::string("vrrp.instances[0].track_ports[0].") + k.key
                                 : std::string("vrrp.instances[0].track_scripts[0].") + k.key;
    const std::string range = std::to_string(k.lo) + ".." + std::to_string(k.hi);
    for (int64_t bad : {k.lo - 1, k.hi + 1}) {
      EXPECT_EQ(errors(text(k, bad)), (Strings{"t.conf:3: '" + path + "' = " + std::to_string(bad) +
                                               " is out of range " + range}));
    }
    for (int64_t good : {k.lo, k.hi}) {
      EXPECT_EQ(errors(text(k, good)), Strings{}) << path << " = " << good;
    }
  }
}

TEST(ConfigVrrp, VersionAndAdvertInterval) {
  EXPECT_EQ(errors_after_port(R"(vrrp = { instances = (
  { name = "A"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; version = 4; advert_interval_ms = 1; },
  { name = "B"; port = "p0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; advert_interval_ms = 5; },
  { name = "C"; port = "p0"; vrid = 3; virtual_ips = [ "10.0.0.103" ]; advert_interval_ms = 40960; },
  { name = "D"; port = "p0"; vrid = 4; virtual_ips = [ "10.0.0.104" ]; advert_interval_ms = 1005; },
  { name = "E"; port = "p0"; vrid = 5; virtual_ips = [ "10.0.0.105" ]; version = 2; advert_interval_ms = 100; },
  { name = "F"; port = "p0"; vrid = 6; virtual_ips = [ "10.0.0.106" ]; version = 2; advert_interval_ms = 256000; },
  { name = "G"; port = "p0"; vrid = 7; virtual_ips = [ "10.0.0.107" ]; version = 2; advert_interval_ms = 1500; },
  { name = "H"; port = "p0"; vrid = 8; virtual_ips = [ "10.0.0.108" ]; version = 3; advert_interval_ms = 40950; },
  { name = "I"; port = "p0"; vrid = 9; virtual_ips = [ "10.0.0.109" ]; version = 2; advert_interval_ms = 255000; }
); };
)"),
            (Strings{
                "t.conf:3: 'vrrp.instances[0].version' = 4 is not one of: 2, 3",
                "t.conf:4: 'vrrp.instances[1].advert_interval_ms' = 5 is out of range 10..40950 "
                "for version 3",
                "t.conf:5: 'vrrp.instances[2].advert_interval_ms' = 40960 is out of range "
                "10..40950 for version 3",
                "t.conf:6: 'vrrp.instances[3].advert_interval_ms' = 1005 must be a multiple of 10 "
                "for version 3 (adverts carry centiseconds)",
                "t.conf:7: 'vrrp.instances[4].advert_interval_ms' = 100 is out of range "
                "1000..255000 for version 2",
                "t.conf:8: 'vrrp.instances[5].advert_interval_ms' = 256000 is out of range "
                "1000..255000 for version 2",
                "t.conf:9: 'vrrp.instances[6].advert_interval_ms' = 1500 must be a multiple of "
                "1000 for version 2 (adverts carry seconds)",
            }));
}

TEST(ConfigVrrp, AuthPassAndOwnerPreemption) {
  EXPECT_EQ(errors_after_port(R"(vrrp = { instances = (
  { name = "A"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ];
    auth_pass = "1111"; },
  { name = "B"; port = "p0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; version = 2;
    auth_pass = "123456789"; },
  { name = "C"; port = "p0"; vrid = 3; virtual_ips = [ "10.0.0.103" ]; priority = 255;
    preempt = false; },
  { name = "D"; port = "p0"; vrid = 4; virtual_ips = [ "10.0.0.104" ]; priority = 254;
    preempt = false; version = 2; auth_pass = "12345678"; }
); };
)"),
            (Strings{
                "t.conf:4: 'vrrp.instances[0].auth_pass' needs version = 2: VRRPv3 has no "
                "authentication (RFC 5798)",
                "t.conf:6: 'vrrp.instances[1].auth_pass' is 9 characters long, more than VRRPv2 "
                "allows (8)",
                "t.conf:8: 'vrrp.instances[2].preempt' = false is not allowed with priority = "
                "255: the address owner always preempts (RFC 5798)",
            }));
}

TEST(ConfigVrrp, InstanceNamesPortsAndVrids) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; }
);
vrrp = { instances = (
  { name = "VI_1"; port = "front0"; vrid = 51; virtual_ips = [ "10.0.0.101" ]; },
  { name = "VI_1"; port = "back0"; vrid = 51; virtual_ips = [ "10.0.0.102" ]; },
  { name = "VI_3"; port = "fron0"; vrid = 52; virtual_ips = [ "10.0.0.103" ]; },
  { name = "VI_4"; port = "front0";
    vrid = 51; virtual_ips = [ "10.0.0.104" ]; },
  { name = "VI 5"; port = "front0"; vrid = 53; virtual_ips = [ "10.0.0.105" ]; }
); };
)"),
            (Strings{
                "t.conf:7: duplicate VRRP instance name 'VI_1' (first defined on line 6)",
                "t.conf:8: 'vrrp.instances[2].port' = \"fron0\" is not a configured port (did you "
                "mean 'front0'?)",
                "t.conf:10: VRID 51 is already used on port 'front0' by instance 'VI_1' (line 6)",
                "t.conf:11: 'vrrp.instances[4].name' = \"VI 5\" may only contain A-Z a-z 0-9 . _ -",
            }));
}

TEST(ConfigVrrp, VirtualIps) {
  std::string many = "[ ";
  for (int i = 1; i <= 33; ++i)
    many += (i > 1 ? ", \"10.0.1." : "\"10.0.1.") + std::to_string(i) + "\"";
  many += " ]";
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; }
);
vrrp = { instances = (
  { name = "A"; port = "front0"; vrid = 1; virtual_ips = [ ]; },
  { name = "B"; port = "front0"; vrid = 2; virtual_ips = )" +
                   many + R"(; },
  { name = "C"; port = "front0"; vrid = 3; virtual_ips = [
      "192.0.2.300/24",
      "127.0.0.1",
      "192.0.2.255/24",
      "192.0.2.2/24",
      "192.0.2.100/24",
      "192.0.2.100/25" ]; },
  { name = "D"; port = "front0"; vrid = 4; virtual_ips = [ "192.0.2.100" ]; },
  { name = "E"; port = "front0"; vrid = 5; priority = 255;
    virtual_ips = [ "192.0.2.2/24" ]; }
); };
)"),
            (Strings{
                "t.conf:5: 'vrrp.instances[0].virtual_ips' must have 1..32 entries, got 0",
                "t.conf:6: 'vrrp.instances[1].virtual_ips' must have 1..32 entries, got 33",
                "t.conf:8: 'vrrp.instances[2].virtual_ips[0]' = \"192.0.2.300/24\" is not an IPv4 "
                "address (expected A.B.C.D/LEN)",
                "t.conf:9: 'vrrp.instances[2].virtual_ips[1]' = \"127.0.0.1\" is a loopback "
                "address, not usable on a port",
                "t.conf:10: 'vrrp.instances[2].virtual_ips[2]' = \"192.0.2.255/24\" is the "
                "broadcast address of 192.0.2.0/24",
                "t.conf:11: virtual IP 192.0.2.2 is an address of port 'front0' (line 2): only the "
                "address owner (priority = 255) may use it",
                "t.conf:13: virtual IP 192.0.2.100 is listed twice in instance 'C'",
                "t.conf:14: virtual IP 192.0.2.100 is already used by instance 'C' (line 12)",
            }));
}

TEST(ConfigVrrp, UnicastPeers) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; }
);
vrrp = { instances = ( { name = "VI_1"; port = "front0"; vrid = 1;
  virtual_ips = [ "192.0.2.100/24" ];
  unicast_peers = [
    "192.0.2.3",
    "192.0.2.3/24",
    "224.0.0.18",
    "192.0.2.2",
    "192.0.2.4",
    "192.0.2.4"
  ]; } ); };
)"),
            (Strings{
                "t.conf:8: 'vrrp.instances[0].unicast_peers[1]' = \"192.0.2.3/24\" is not an IPv4 "
                "address (expected A.B.C.D)",
                "t.conf:9: 'vrrp.instances[0].unicast_peers[2]' = \"224.0.0.18\" is a multicast "
                "address",
                "t.conf:10: unicast peer 192.0.2.2 is one of our own addresses (port 'front0')",
                "t.conf:12: unicast peer 192.0.2.4 is listed twice in instance 'VI_1'",
            }));
}

TEST(ConfigVrrp, Tracking) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; }
);
vrrp = {
  scripts = ( { name = "chk_nginx"; command = "pidof nginx"; } );
  instances = ( { name = "VI_1"; port = "front0"; vrid = 1; virtual_ips = [ "10.0.0.100" ];
    track_ports = (
      { port = "bak0"; },
      { port = "back0"; weight = -10; },
      { port = "back0"; weight = -20; }
    );
    track_scripts = (
      { script = "chk_ngix"; },
      { script = "chk_nginx"; },
      { script = "chk_nginx"; weight = 5; }
    ); } );
};
)"),
            (Strings{
                "t.conf:9: 'vrrp.instances[0].track_ports[0].port' = \"bak0\" is not a configured "
                "port (did you mean 'back0'?)",
                "t.conf:11: port 'back0' is tracked twice in instance 'VI_1'",
                "t.conf:14: 'vrrp.instances[0].track_scripts[0].script' = \"chk_ngix\" is not a "
                "script in 'vrrp.scripts' (did you mean 'chk_nginx'?)",
                "t.conf:16: script 'chk_nginx' is tracked twice in instance 'VI_1'",
            }));
}

TEST(ConfigVrrp, ScriptsAreCheckedWhereverTheyAppear) {
  // scripts after instances in the file: still known to track_scripts.
  EXPECT_EQ(errors_after_port(R"(vrrp = {
  instances = ( { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.100" ];
                  track_scripts = ( { script = "chk"; } ); } );
  scripts = ( { name = "chk"; command = "true"; } );
};
)"),
            Strings{});
  EXPECT_EQ(errors_after_port(R"(vrrp = { scripts = (
  { name = "chk"; command = "true"; },
  { name = "chk"; command = "false"; },
  { name = "empty"; command = "  "; },
  { name = "slow"; command = "x"; interval_ms = 1000;
    timeout_ms = 1000; },
  { name = "fast"; command = "x"; interval_ms = 100; timeout_ms = 99; }
); };
)"),
            (Strings{
                "t.conf:4: duplicate VRRP script name 'chk' (first defined on line 3)",
                "t.conf:5: 'vrrp.scripts[2].command' must not be empty",
                "t.conf:7: 'vrrp.scripts[3].timeout_ms' = 1000 must be less than "
                "'vrrp.scripts[3].interval_ms' = 1000",
            }));
}

TEST(ConfigVrrp, SyncGroups) {
  EXPECT_EQ(errors_after_port(R"(vrrp = {
  instances = (
    { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; },
    { name = "VI_2"; port = "p0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; },
    { name = "VI_3"; port = "p0"; vrid = 3; virtual_ips = [ "10.0.0.103" ]; }
  );
  sync_groups = (
    { name = "G1"; instances = [ "VI_1", "VI_4" ]; },
    { name = "G1"; instances = [ "VI_2",
                                 "VI_2" ]; },
    { name = "G3"; instances = [ "VI_1" ]; },
    { name = "G4"; instances = [ ]; },
    { name = "G5"; instances = [ "VI_3" ]; }
  );
};
)"),
            (Strings{
                "t.conf:9: 'vrrp.sync_groups[0].instances[1]' = \"VI_4\" is not an instance in "
                "'vrrp.instances' (did you mean 'VI_1'?)",
                "t.conf:10: duplicate sync group name 'G1' (first defined on line 9)",
                "t.conf:11: instance 'VI_2' is listed twice in sync group 'G1'",
                "t.conf:12: instance 'VI_1' is already in sync group 'G1' (line 9)",
                "t.conf:13: 'vrrp.sync_groups[3].instances' must list at least one instance",
            }));
}

TEST(ConfigVrrp, NotifyPathsAndChecksum) {
  EXPECT_EQ(errors_after_port(R"(vrrp = {
  checksum = "rfc5798";
  notify = "notify.sh";
  instances = ( { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ];
                  notify = "./vi1.sh"; } );
  sync_groups = ( { name = "G"; instances = [ "VI_1" ];
                    notify = "~/g.sh"; } );
};
)"),
            (Strings{
                "t.conf:3: 'vrrp.checksum' = \"rfc5798\" is not one of: keepalived, rfc9568",
                "t.conf:4: 'vrrp.notify' = \"notify.sh\" must be an absolute path",
                "t.conf:6: 'vrrp.instances[0].notify' = \"./vi1.sh\" must be an absolute path",
                "t.conf:8: 'vrrp.sync_groups[0].notify' = \"~/g.sh\" must be an absolute path",
            }));
  // Empty means unset.
  EXPECT_EQ(errors_after_port("vrrp = { notify = \"\"; checksum = \"keepalived\"; };\n"),
            Strings{});
}

TEST(ConfigVrrp, ReloadMayChangePriorityTrackingScriptsNotifyChecksumAndGarp) {
  std::string next = kVrrpFull;
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = next.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    next.replace(at, from.size(), to);
  };
  replace("checksum = \"rfc9568\"", "checksum = \"keepalived\"");
  replace("garp_count = 0", "garp_count = 9");
  replace("garp_interval_ms = 50", "garp_interval_ms = 500");
  replace("garp_refresh_s = 60", "garp_refresh_s = 0");
  replace("notify = \"/etc/tandem/notify.sh\"", "notify = \"\"");
  replace("weight = -20; rise = 2; fall = 3;", "weight = -10; rise = 1; fall = 1;");
  replace("command = \"test -w /var\"", "command = \"test -w /srv\"");
  replace("priority = 150", "priority = 50");
  replace("preempt = true;\n      preempt_delay_ms = 5000",
          "preempt = false;\n      preempt_delay_ms = 0");
  replace("weight = -50", "weight = 0");
  replace("{ script = \"chk_nginx\"; weight = -30; }, ", "");
  replace("notify = \"/etc/tandem/vi1.sh\"", "notify = \"/x.sh\"");
  replace("notify = \"/etc/tandem/vg.sh\"", "notify = \"\"");
  EXPECT_EQ(conflicts(kVrrpFull, next), Strings{});
  EXPECT_EQ(conflicts(next, kVrrpFull), Strings{});
}

TEST(ConfigVrrp, ReloadRefusesChangesToTheVirtualRouters) {
  const std::string running = R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; }
);
vrrp = {
  instances = (
    { name = "VI_1"; port = "front0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; },
    { name = "VI_2"; port = "front0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; version = 2;
      advert_interval_ms = 1000; }
  );
  sync_groups = ( { name = "G"; instances = [ "VI_1", "VI_2" ]; } );
};
)";
  const std::string next = R"(ports = (
  { name = "front0"; device = "net_ring0"; },
  { name = "back0"; device = "net_ring1"; }
);
vrrp = {
  instances = (
    { name = "VI_1"; port = "back0"; vrid = 3; virtual_ips = [ "10.0.0.111" ]; version = 2;
      advert_interval_ms = 2000; virtual_mac = true; auth_pass = "x";
      unicast_peers = [ "10.0.0.3" ]; },
    { name = "VI_2"; port = "front0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; version = 2;
      advert_interval_ms = 1000; }
  );
  sync_groups = ( { name = "G"; instances = [ "VI_1" ]; } );
};
)";
  const std::string suffix = "' cannot change on reload (restart tandemd to apply)";
  const Strings expected = {
      "b.conf:7: 'vrrp.instances[0].port" + suffix,
      "b.conf:7: 'vrrp.instances[0].vrid" + suffix,
      "b.conf:7: 'vrrp.instances[0].version" + suffix,
      "b.conf:7: 'vrrp.instances[0].advert_interval_ms" + suffix,
      "b.conf:7: 'vrrp.instances[0].virtual_ips" + suffix,
      "b.conf:7: 'vrrp.instances[0].virtual_mac" + suffix,
      "b.conf:7: 'vrrp.instances[0].auth_pass" + suffix,
      "b.conf:7: 'vrrp.instances[0].unicast_peers" + suffix,
      "b.conf:13: 'vrrp.sync_groups[0].instances" + suffix,
  };
  EXPECT_EQ(conflicts(running, next), expected);
}

TEST(ConfigVrrp, ReloadRefusesAddingRemovingRenamingOrReorderingInstancesAndGroups) {
  const std::string one = std::string(kOnePort) + R"(vrrp = {
  instances = (
    { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; }
  );
};
)";
  const std::string two = std::string(kOnePort) + R"(vrrp = {
  instances = (
    { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; },
    { name = "VI_2"; port = "p0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; }
  );
  sync_groups = ( { name = "G"; instances = [ "VI_1" ]; } );
};
)";
  const std::string swapped = std::string(kOnePort) + R"(vrrp = {
  instances = (
    { name = "VI_2"; port = "p0"; vrid = 2; virtual_ips = [ "10.0.0.102" ]; },
    { name = "VI_1"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; }
  );
  sync_groups = ( { name = "H"; instances = [ "VI_1" ]; } );
};
)";
  const std::string renamed = std::string(kOnePort) + R"(vrrp = {
  instances = (
    { name = "VI_9"; port = "p0"; vrid = 1; virtual_ips = [ "10.0.0.101" ]; }
  );
};
)";
  const std::string suffix = "' cannot change on reload (restart tandemd to apply)";
  EXPECT_EQ(conflicts(one, two), (Strings{"b.conf:5: 'vrrp.instances" + suffix,
                                          "b.conf:7: 'vrrp.sync_groups" + suffix}));
  EXPECT_EQ(conflicts(two, one), (Strings{"b.conf:2: 'vrrp.sync_groups" + suffix,
                                          "b.conf:4: 'vrrp.instances" + suffix}));
  EXPECT_EQ(conflicts(two, swapped), (Strings{
                                         "b.conf:4: 'vrrp.instances[0].name" + suffix,
                                         "b.conf:4: 'vrrp.instances[0].vrid" + suffix,
                                         "b.conf:4: 'vrrp.instances[0].virtual_ips" + suffix,
                                         "b.conf:5: 'vrrp.instances[1].name" + suffix,
                                         "b.conf:5: 'vrrp.instances[1].vrid" + suffix,
                                         "b.conf:5: 'vrrp.instances[1].virtual_ips" + suffix,
                                         "b.conf:7: 'vrrp.sync_groups[0].name" + suffix,
                                     }));
  EXPECT_EQ(conflicts(one, renamed), (Strings{"b.conf:4: 'vrrp.instances[0].name" + suffix}));
  EXPECT_EQ(conflicts(one, kOnePort), (Strings{"b.conf: 'vrrp.instances" + suffix}));
}

// ---------------------------------------------------------------------------------------------
// DHCP

using Bytes = std::vector<uint8_t>;

Bytes text_bytes(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

constexpr const char* kDhcpFull = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
dhcp = {
  enabled = false;
  authoritative = false;
  default_lease_s = 7200;
  min_lease_s = 600;
  max_lease_s = 172800;
  renew_permille = 400;
  rebind_permille = 800;
  min_secs = 3;
  offer_hold_ms = 5000;
  decline_hold_s = 600;
  limits = { window_ms = 2000; requests_per_mac = 10; requests_per_circuit = 100; leases_per_circuit = 4; };
  leases = {
    journal = "/var/lib/t/j"; snapshot = "/var/lib/t/s"; durability = "batched";
    fsync_interval_ms = 50; snapshot_interval_s = 600; journal_max_mb = 16; queue = 262144;
  };
  options = (
    { name = "domain-name-servers"; value = [ "192.0.2.53", "198.51.100.53" ]; },
    { name = "domain-name"; value = "lab.example"; },
    { code = 121; value = [ "10.0.0.0/8 via 192.0.2.1", "0.0.0.0/0 via 192.0.2.1", "198.51.100.128/25 via 192.0.2.254", "203.0.113.7/32 via 192.0.2.1" ]; },
    { code = 250; type = "hex"; value = "01:02:0a"; }
  );
  classes = (
    { name = "phones"; vendor_class_prefix = "Yealink"; },
    { name = "olt7"; circuit_id_prefix = "olt7/"; remote_id_hex = "00:11:22"; },
    { name = "pxe"; vendor_class = "PXEClient"; }
  );
  subnets = (
    {
      subnet = "192.0.2.0/24";
      port = "front0";
      server_id = "192.0.2.100";
      authoritative = true;
      min_secs = 0;
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
        { name = "cpe-7"; circuit_id = "olt7/1/1"; ip = "192.0.2.160"; },
        { remote_id_hex = "0a0b0c"; ip = "192.0.2.52"; },
        { circuit_id_hex = "01:02"; ip = "192.0.2.54"; },
        { remote_id = "cpe-mac-1"; ip = "192.0.2.55"; }
      );
    },
    {
      subnet = "198.18.0.0/16";
      relays = [ "192.0.2.10", "192.0.2.11" ];
      pools = ( { range = "198.18.0.10 - 198.18.255.250"; } );
    }
  );
};
)";

TEST(ConfigDhcp, FullSectionReadsEveryField) {
  const Config c = load_ok(kDhcpFull);
  const Dhcp& d = c.dhcp;
  EXPECT_EQ(d.line, 5);
  EXPECT_FALSE(d.enabled);
  EXPECT_FALSE(d.authoritative);
  EXPECT_EQ(d.lease, (DhcpLeaseTime{7200, 600, 172800}));
  EXPECT_EQ(d.renew_permille, 400u);
  EXPECT_EQ(d.rebind_permille, 800u);
  EXPECT_EQ(d.min_secs, 3u);
  EXPECT_EQ(d.offer_hold_ms, 5000u);
  EXPECT_EQ(d.decline_hold_s, 600u);

  EXPECT_EQ(d.limits.line, 16);
  EXPECT_EQ(d.limits.window_ms, 2000u);
  EXPECT_EQ(d.limits.requests_per_mac, 10u);
  EXPECT_EQ(d.limits.requests_per_circuit, 100u);
  EXPECT_EQ(d.limits.leases_per_circuit, 4u);

  EXPECT_EQ(d.leases.line, 17);
  EXPECT_EQ(d.leases.journal, "/var/lib/t/j");
  EXPECT_EQ(d.leases.snapshot, "/var/lib/t/s");
  EXPECT_EQ(d.leases.durability, DhcpDurability::kBatched);
  EXPECT_EQ(d.leases.fsync_interval_ms, 50u);
  EXPECT_EQ(d.leases.snapshot_interval_s, 600u);
  EXPECT_EQ(d.leases.journal_max_mb, 16u);
  EXPECT_EQ(d.leases.queue, 262144u);

  ASSERT_EQ(d.options.size(), 4u);
  EXPECT_EQ(d.options[0].line, 22);
  EXPECT_EQ(d.options[0].code, 6);
  EXPECT_EQ(d.options[0].data, (Bytes{192, 0, 2, 53, 198, 51, 100, 53}));
  EXPECT_EQ(d.options[1].line, 23);
  EXPECT_EQ(d.options[1].code, 15);
  EXPECT_EQ(d.options[1].data, text_bytes("lab.example"));
  EXPECT_EQ(d.options[2].line, 24);
  EXPECT_EQ(d.options[2].code, 121);
  // RFC 3442: width, the significant octets of the destination, the router.
  EXPECT_EQ(d.options[2].data, (Bytes{8,  10,  192, 0,   2,   1,               //
                                      0,  192, 0,   2,   1,                    //
                                      25, 198, 51,  100, 128, 192, 0, 2, 254,  //
                                      32, 203, 0,   113, 7,   192, 0, 2, 1}));
  EXPECT_EQ(d.options[3].line, 25);
  EXPECT_EQ(d.options[3].code, 250);
  EXPECT_EQ(d.options[3].data, (Bytes{0x01, 0x02, 0x0a}));

  ASSERT_EQ(d.classes.size(), 3u);
  EXPECT_EQ(d.classes[0].line, 28);
  EXPECT_EQ(d.classes[0].name, "phones");
  EXPECT_EQ(
      d.classes[0].match,
      (std::vector<DhcpMatch>{{DhcpMatch::Field::kVendorClass, true, text_bytes("Yealink")}}));
  EXPECT_EQ(d.classes[1].name, "olt7");
  EXPECT_EQ(d.classes[1].match,
            (std::vector<DhcpMatch>{{DhcpMatch::Field::kCircuitId, true, text_bytes("olt7/")},
                                    {DhcpMatch::Field::kRemoteId, false, Bytes{0, 0x11, 0x22}}}));
  EXPECT_EQ(
      d.classes[2].match,
      (std::vector<DhcpMatch>{{DhcpMatch::Field::kVendorClass, false, text_bytes("PXEClient")}}));

  ASSERT_EQ(d.subnets.size(), 2u);
  const DhcpSubnet& s0 = d.subnets[0];
  EXPECT_EQ(s0.line, 33);
  EXPECT_EQ(s0.subnet, (Ipv4Prefix{ip("192.0.2.0"), 24}));
  EXPECT_EQ(s0.port, "front0");
  EXPECT_TRUE(s0.relays.empty());
  EXPECT_EQ(s0.server_id, ip("192.0.2.100"));
  EXPECT_TRUE(s0.authoritative);
  EXPECT_EQ(s0.min_secs, 0u);
  EXPECT_EQ(s0.lease, (DhcpLeaseTime{600, 600, 172800}));  // min and max from dhcp
  EXPECT_EQ(s0.renew_permille, 500u);
  EXPECT_EQ(s0.rebind_permille, 875u);
  ASSERT_EQ(s0.options.size(), 1u);
  EXPECT_EQ(s0.options[0].code, 3);
  EXPECT_EQ(s0.options[0].data, (Bytes{192, 0, 2, 1}));
  EXPECT_EQ(s0.options[0].line, 41);

  ASSERT_EQ(s0.pools.size(), 2u);
  EXPECT_EQ(s0.pools[0].line, 43);
  EXPECT_EQ(s0.pools[0].first, ip("192.0.2.150"));
  EXPECT_EQ(s0.pools[0].last, ip("192.0.2.199"));
  EXPECT_EQ(s0.pools[0].classes, (Strings{"phones", "pxe"}));
  EXPECT_EQ(s0.pools[0].lease, (DhcpLeaseTime{600, 600, 3600}));
  ASSERT_EQ(s0.pools[0].options.size(), 1u);
  EXPECT_EQ(s0.pools[0].options[0].code, 66);
  EXPECT_EQ(s0.pools[0].options[0].data, text_bytes("tftp.lab.example"));
  EXPECT_EQ(s0.pools[0].options[0].line, 44);
  EXPECT_EQ(s0.pools[1].first, ip("192.0.2.200"));
  EXPECT_EQ(s0.pools[1].last, ip("192.0.2.250"));
  EXPECT_TRUE(s0.pools[1].classes.empty());
  EXPECT_EQ(s0.pools[1].lease, s0.lease);
  EXPECT_TRUE(s0.pools[1].options.empty());

  ASSERT_EQ(s0.hosts.size(), 6u);
  EXPECT_EQ(s0.hosts[0].line, 48);
  EXPECT_EQ(s0.hosts[0].name, "printer");
  EXPECT_EQ(s0.hosts[0].key, DhcpHostKey::kMac);
  EXPECT_EQ(s0.hosts[0].id, (Bytes{2, 0, 0, 0, 0, 0x50}));
  EXPECT_EQ(s0.hosts[0].ip, ip("192.0.2.50"));
  ASSERT_EQ(s0.hosts[0].options.size(), 1u);
  EXPECT_EQ(s0.hosts[0].options[0].code, 12);
  EXPECT_EQ(s0.hosts[0].options[0].data, text_bytes("printer"));
  EXPECT_EQ(s0.hosts[1].name, "");
  EXPECT_EQ(s0.hosts[1].key, DhcpHostKey::kClientId);
  EXPECT_EQ(s0.hosts[1].id, (Bytes{1, 2, 0, 0, 0, 0, 0x51}));
  EXPECT_EQ(s0.hosts[1].ip, ip("192.0.2.51"));
  EXPECT_EQ(s0.hosts[2].key, DhcpHostKey::kCircuitId);
  EXPECT_EQ(s0.hosts[2].id, text_bytes("olt7/1/1"));
  EXPECT_EQ(s0.hosts[2].ip, ip("192.0.2.160"));  // inside a pool: allowed
  EXPECT_EQ(s0.hosts[3].key, DhcpHostKey::kRemoteId);
  EXPECT_EQ(s0.hosts[3].id, (Bytes{0x0a, 0x0b, 0x0c}));
  EXPECT_EQ(s0.hosts[4].key, DhcpHostKey::kCircuitId);
  EXPECT_EQ(s0.hosts[4].id, (Bytes{1, 2}));
  EXPECT_EQ(s0.hosts[5].key, DhcpHostKey::kRemoteId);
  EXPECT_EQ(s0.hosts[5].id, text_bytes("cpe-mac-1"));
  EXPECT_EQ(s0.hosts[5].line, 54);

  const DhcpSubnet& s1 = d.subnets[1];
  EXPECT_EQ(s1.line, 57);
  EXPECT_EQ(s1.subnet, (Ipv4Prefix{ip("198.18.0.0"), 16}));
  EXPECT_EQ(s1.port, "");
  EXPECT_EQ(s1.relays, (std::vector<uint32_t>{ip("192.0.2.10"), ip("192.0.2.11")}));
  EXPECT_EQ(s1.server_id, 0u);
  // Everything inherited from dhcp.
  EXPECT_FALSE(s1.authoritative);
  EXPECT_EQ(s1.min_secs, 3u);
  EXPECT_EQ(s1.lease, d.lease);
  EXPECT_EQ(s1.renew_permille, 400u);
  EXPECT_EQ(s1.rebind_permille, 800u);
  ASSERT_EQ(s1.pools.size(), 1u);
  EXPECT_EQ(s1.pools[0].first, ip("198.18.0.10"));
  EXPECT_EQ(s1.pools[0].last, ip("198.18.255.250"));
  EXPECT_EQ(s1.pools[0].lease, d.lease);
  EXPECT_TRUE(s1.hosts.empty());
}

TEST(ConfigDhcp, Defaults) {
  const Config none = load_ok(kOnePort);
  EXPECT_FALSE(none.dhcp.enabled);
  EXPECT_EQ(none.dhcp.line, 0);
  EXPECT_TRUE(none.dhcp.subnets.empty());

  const Config c = load_ok(std::string(kOnePort) +
                           "dhcp = {\n  subnets = ( { subnet = \"10.0.0.0/8\"; } );\n};\n");
  const Dhcp& d = c.dhcp;
  EXPECT_TRUE(d.enabled);  // the group is there
  EXPECT_EQ(d.line, 2);
  EXPECT_TRUE(d.authoritative);
  EXPECT_EQ(d.lease, (DhcpLeaseTime{3600, 60, 86400}));
  EXPECT_EQ(d.renew_permille, 500u);
  EXPECT_EQ(d.rebind_permille, 875u);
  EXPECT_EQ(d.min_secs, 0u);
  EXPECT_EQ(d.offer_hold_ms, 30000u);
  EXPECT_EQ(d.decline_hold_s, 86400u);
  EXPECT_EQ(d.limits.line, 0);
  EXPECT_EQ(d.limits.window_ms, 10000u);
  EXPECT_EQ(d.limits.requests_per_mac, 0u);
  EXPECT_EQ(d.limits.requests_per_circuit, 0u);
  EXPECT_EQ(d.limits.leases_per_circuit, 0u);
  EXPECT_EQ(d.leases.line, 0);
  EXPECT_EQ(d.leases.journal, "/var/lib/tandem/dhcp4.journal");
  EXPECT_EQ(d.leases.snapshot, "/var/lib/tandem/dhcp4.snapshot");
  EXPECT_EQ(d.leases.durability, DhcpDurability::kStrict);
  EXPECT_EQ(d.leases.fsync_interval_ms, 10u);
  EXPECT_EQ(d.leases.snapshot_interval_s, 3600u);
  EXPECT_EQ(d.leases.journal_max_mb, 64u);
  EXPECT_EQ(d.leases.queue, 65536u);
  EXPECT_TRUE(d.options.empty());
  EXPECT_TRUE(d.classes.empty());
  ASSERT_EQ(d.subnets.size(), 1u);
  const DhcpSubnet& s = d.subnets[0];
  EXPECT_EQ(s.line, 3);
  EXPECT_EQ(s.subnet, (Ipv4Prefix{ip("10.0.0.0"), 8}));
  EXPECT_EQ(s.port, "");
  EXPECT_TRUE(s.relays.empty());
  EXPECT_EQ(s.server_id, 0u);
  EXPECT_TRUE(s.authoritative);
  EXPECT_EQ(s.min_secs, 0u);
  EXPECT_EQ(s.lease, d.lease);
  EXPECT_EQ(s.renew_permille, 500u);
  EXPECT_EQ(s.rebind_permille, 875u);
  EXPECT_TRUE(s.options.empty());
  EXPECT_TRUE(s.pools.empty());
  EXPECT_TRUE(s.hosts.empty());

  EXPECT_FALSE(load_ok(std::string(kOnePort) + "dhcp = { enabled = false; };\n").dhcp.enabled);
  EXPECT_TRUE(load_ok(std::string(kOnePort) + "dhcp = { enabled = true; };\n").dhcp.enabled);
}

// The bytes of the one option `entry` defines at the global level.
Bytes option_bytes(const std::string& entry) {
  const Config c = load_ok(std::string(kOnePort) + "dhcp = { options = ( " + entry + " ); };\n");
  if (c.dhcp.options.size() != 1) return {0xde, 0xad};
  return c.dhcp.options[0].data;
}

TEST(ConfigDhcp, OptionValuesAreEncodedForTheWire) {
  EXPECT_EQ(option_bytes(R"({ name = "subnet-mask"; value = "255.255.255.0"; })"),
            (Bytes{255, 255, 255, 0}));
  EXPECT_EQ(option_bytes(R"({ name = "subnet-mask"; value = "0.0.0.0"; })"), (Bytes{0, 0, 0, 0}));
  EXPECT_EQ(option_bytes(R"({ name = "time-offset"; value = -3600; })"),
            (Bytes{0xff, 0xff, 0xf1, 0xf0}));
  EXPECT_EQ(option_bytes(R"({ name = "routers"; value = [ "192.0.2.1", "192.0.2.254" ]; })"),
            (Bytes{192, 0, 2, 1, 192, 0, 2, 254}));
  EXPECT_EQ(option_bytes(R"({ name = "ntp-servers"; value = ( "198.51.100.123" ); })"),
            (Bytes{198, 51, 100, 123}));
  EXPECT_EQ(option_bytes(R"({ name = "default-ip-ttl"; value = 64; })"), (Bytes{64}));
  EXPECT_EQ(option_bytes(R"({ name = "interface-mtu"; value = 9000; })"), (Bytes{0x23, 0x28}));
  EXPECT_EQ(option_bytes(R"({ name = "interface-mtu"; value = 68; })"), (Bytes{0, 68}));
  EXPECT_EQ(option_bytes(R"({ name = "arp-cache-timeout"; value = 4294967295L; })"),
            (Bytes{0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(
      errors_after_port(
          R"(dhcp = { options = ( { name = "arp-cache-timeout"; value = 4294967295; } ); };)"),
      (Strings{"t.conf:2: 'dhcp.options[0].value' = 4294967295 must be written "
               "4294967295L: libconfig reads integers beyond 32 bits only with the L "
               "suffix"}));
  EXPECT_EQ(option_bytes(R"({ name = "arp-cache-timeout"; value = 0x01020304; })"),
            (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(option_bytes(R"({ name = "ip-forwarding"; value = true; })"), (Bytes{1}));
  EXPECT_EQ(option_bytes(R"({ name = "broadcast-address"; value = "192.0.2.255"; })"),
            (Bytes{192, 0, 2, 255}));
  EXPECT_EQ(option_bytes(R"({ name = "vendor-class-identifier"; value = "PXEClient"; })"),
            text_bytes("PXEClient"));
  EXPECT_EQ(option_bytes(R"({ name = "v4-captive-portal"; value = "https://portal.example/"; })"),
            text_bytes("https://portal.example/"));
  EXPECT_EQ(option_bytes(R"({ name = "vendor-encapsulated-options"; value = "0104C0000201"; })"),
            (Bytes{1, 4, 192, 0, 2, 1}));
  // RFC 1035 names without compression (RFC 3397); a trailing dot changes nothing.
  EXPECT_EQ(
      option_bytes(R"({ name = "domain-search"; value = [ "lab.example", "net." ]; })"),
      (Bytes{3, 'l', 'a', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 3, 'n', 'e', 't', 0}));
  // RFC 3442's own examples of destination encoding, and the default route.
  EXPECT_EQ(option_bytes(R"({ name = "classless-static-routes"; value = [
      "10.17.0.0/16 via 10.0.0.1", "10.229.0.128/25 via 10.0.0.1",
      "10.198.122.47/32 via 10.0.0.1", "0.0.0.0/0 via 10.0.0.1" ]; })"),
            (Bytes{16, 10, 17,  10,  0,   0,  1,        //
                   25, 10, 229, 0,   128, 10, 0, 0, 1,  //
                   32, 10, 198, 122, 47,  10, 0, 0, 1,  //
                   0,  10, 0,   0,   1}));
  // "hex" fits every option: raw bytes, one or two digits between colons.
  EXPECT_EQ(option_bytes(R"({ name = "routers"; type = "hex"; value = "c0:0:2:1"; })"),
            (Bytes{192, 0, 2, 1}));
  EXPECT_EQ(option_bytes(R"({ name = "routers"; type = "ips"; value = [ "192.0.2.1" ]; })"),
            (Bytes{192, 0, 2, 1}));
  // Codes without a name take an explicit type.
  EXPECT_EQ(option_bytes(R"({ code = 150; type = "ips"; value = [ "192.0.2.69" ]; })"),
            (Bytes{192, 0, 2, 69}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "ip"; value = "192.0.2.9"; })"),
            (Bytes{192, 0, 2, 9}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "string"; value = "x"; })"), text_bytes("x"));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "u8"; value = 255; })"), (Bytes{255}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "u16"; value = 65535; })"), (Bytes{255, 255}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "u32"; value = 16909060; })"),
            (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "i32"; value = -2147483648; })"),
            (Bytes{0x80, 0, 0, 0}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "bool"; value = false; })"), (Bytes{0}));
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "hex"; value = ""; })"), Bytes{});
  EXPECT_EQ(option_bytes(R"({ code = 224; type = "domains"; value = [ "a" ]; })"),
            (Bytes{1, 'a', 0}));
  EXPECT_EQ(
      option_bytes(R"({ code = 224; type = "routes"; value = [ "0.0.0.0/0 via 0.0.0.0" ]; })"),
      (Bytes{0, 0, 0, 0, 0}));
  EXPECT_EQ(option_bytes(R"({ code = 1; value = "255.255.255.252"; })"),
            (Bytes{255, 255, 255, 252}));
  EXPECT_EQ(option_bytes(R"({ code = 254; type = "u8"; value = 1; })"), (Bytes{1}));
  // A value up to 1024 bytes (sent as several instances, RFC 3396).
  EXPECT_EQ(
      option_bytes("{ code = 224; type = \"string\"; value = \"" + std::string(1024, 'x') + "\"; }")
          .size(),
      1024u);
}

TEST(ConfigDhcp, OptionsAtEveryLevelAndTheSameCodeAtSeveralLevels) {
  const Config c = load_ok(std::string(kOnePort) + R"(dhcp = {
  options = ( { name = "routers"; value = [ "10.0.0.1" ]; } );
  subnets = ( {
    subnet = "10.0.0.0/24";
    options = ( { name = "routers"; value = [ "10.0.0.2" ]; } );
    pools = ( { range = "10.0.0.10 - 10.0.0.20";
                options = ( { name = "routers"; value = [ "10.0.0.3" ]; } ); } );
    hosts = ( { mac = "02:00:00:00:00:01"; ip = "10.0.0.5";
                options = ( { name = "routers"; value = [ "10.0.0.4" ]; } ); } );
  } );
};
)");
  const DhcpSubnet& s = c.dhcp.subnets.at(0);
  EXPECT_EQ(c.dhcp.options.at(0).data, (Bytes{10, 0, 0, 1}));
  EXPECT_EQ(s.options.at(0).data, (Bytes{10, 0, 0, 2}));
  EXPECT_EQ(s.pools.at(0).options.at(0).data, (Bytes{10, 0, 0, 3}));
  EXPECT_EQ(s.hosts.at(0).options.at(0).data, (Bytes{10, 0, 0, 4}));
}

TEST(ConfigDhcp, LeaseTimesAndTimersAreInheritedLevelByLevel) {
  const Config c = load_ok(std::string(kOnePort) + R"(dhcp = {
  max_lease_s = 7200;
  subnets = (
    { subnet = "10.0.0.0/24"; min_lease_s = 120; rebind_permille = 900;
      pools = ( { range = "10.0.0.10 - 10.0.0.20"; default_lease_s = 300; },
                { range = "10.0.0.30 - 10.0.0.40"; } ); },
    { subnet = "10.0.1.0/24"; default_lease_s = 7200; renew_permille = 600; }
  );
};
)");
  const auto& s = c.dhcp.subnets;
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].lease, (DhcpLeaseTime{3600, 120, 7200}));
  EXPECT_EQ(s[0].pools.at(0).lease, (DhcpLeaseTime{300, 120, 7200}));
  EXPECT_EQ(s[0].pools.at(1).lease, (DhcpLeaseTime{3600, 120, 7200}));
  EXPECT_EQ(s[0].renew_permille, 500u);
  EXPECT_EQ(s[0].rebind_permille, 900u);
  EXPECT_EQ(s[1].lease, (DhcpLeaseTime{7200, 60, 7200}));
  EXPECT_EQ(s[1].renew_permille, 600u);
  EXPECT_EQ(s[1].rebind_permille, 875u);
}

TEST(ConfigDhcp, UnknownKeysAndTypes) {
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  enable = true;
  lease = { journal = "/x"; };
  leases = { jounral = "/x"; };
  limits = { window = 1; };
  options = ( { name = "routers"; valeu = [ "10.0.0.1" ]; value = [ "10.0.0.1" ]; } );
  classes = ( { name = "c"; vendor_clas = "x"; vendor_class = "x"; } );
  subnets = ( { subnet = "10.0.0.0/24"; relay = [ "10.0.1.1" ];
    pools = ( { range = "10.0.0.10 - 10.0.0.20"; class = [ "c" ]; } );
    hosts = ( { mac = "02:00:00:00:00:01"; ip = "10.0.0.5"; adress = "x"; } ); } );
};
)"),
            (Strings{
                "t.conf:3: unknown key 'dhcp.enable' (did you mean 'enabled'?)",
                "t.conf:4: unknown key 'dhcp.lease' (did you mean 'leases'?)",
                "t.conf:5: unknown key 'dhcp.leases.jounral' (did you mean 'journal'?)",
                "t.conf:6: unknown key 'dhcp.limits.window' (did you mean 'window_ms'?)",
                "t.conf:7: unknown key 'dhcp.options[0].valeu' (did you mean 'value'?)",
                "t.conf:8: unknown key 'dhcp.classes[0].vendor_clas' (did you mean "
                "'vendor_class'?)",
                "t.conf:9: unknown key 'dhcp.subnets[0].relay' (did you mean 'relays'?)",
                "t.conf:10: unknown key 'dhcp.subnets[0].pools[0].class' (did you mean "
                "'classes'?)",
                "t.conf:11: unknown key 'dhcp.subnets[0].hosts[0].adress'",
            }));
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  enabled = 1;
  authoritative = "yes";
  default_lease_s = "3600";
  limits = 1;
  leases = ( );
  options = { name = "routers"; };
  classes = [ "c" ];
  subnets = ( "10.0.0.0/24", { subnet = 10; port = 1; relays = "10.0.0.1"; server_id = 1;
    pools = { range = "x"; }; hosts = ( 1 ); options = ( "routers" ); } );
};
dhcp4 = 1;
)"),
            (Strings{
                "t.conf:3: 'dhcp.enabled' must be a boolean (true or false), got an integer",
                "t.conf:4: 'dhcp.authoritative' must be a boolean (true or false), got a string",
                "t.conf:5: 'dhcp.default_lease_s' must be an integer, got a string",
                "t.conf:6: 'dhcp.limits' must be a group { ... }, got an integer",
                "t.conf:7: 'dhcp.leases' must be a group { ... }, got a list",
                "t.conf:8: 'dhcp.options' must be a list of groups ( { ... }, ... ), got a group",
                "t.conf:9: 'dhcp.classes' must be a list of groups ( { ... }, ... ), got an array",
                "t.conf:10: 'dhcp.subnets[0]' must be a group { ... }, got a string",
                "t.conf:10: 'dhcp.subnets[1].subnet' must be a string, got an integer",
                "t.conf:10: 'dhcp.subnets[1].port' must be a string, got an integer",
                "t.conf:10: 'dhcp.subnets[1].relays' must be an array [ ... ] of strings, got a "
                "string",
                "t.conf:10: 'dhcp.subnets[1].server_id' must be a string, got an integer",
                "t.conf:11: 'dhcp.subnets[1].options[0]' must be a group { ... }, got a string",
                "t.conf:11: 'dhcp.subnets[1].pools' must be a list of groups ( { ... }, ... ), "
                "got a group",
                "t.conf:11: 'dhcp.subnets[1].hosts[0]' must be a group { ... }, got an integer",
                "t.conf:13: unknown key 'dhcp4' (did you mean 'dhcp'?)",
            }));
  EXPECT_EQ(errors_after_port(R"(dhcp = { subnets = ( { subnet = "10.0.0.0/24";
  pools = ( 1, { range = 1; classes = "c"; } ); hosts = ( { mac = 1; ip = 2; } ); } ); };
)"),
            (Strings{
                "t.conf:3: 'dhcp.subnets[0].pools[0]' must be a group { ... }, got an integer",
                "t.conf:3: 'dhcp.subnets[0].pools[1].range' must be a string, got an integer",
                "t.conf:3: 'dhcp.subnets[0].pools[1].classes' must be an array [ ... ] of "
                "strings, got a string",
                "t.conf:3: 'dhcp.subnets[0].hosts[0].mac' must be a string, got an integer",
                "t.conf:3: 'dhcp.subnets[0].hosts[0].ip' must be a string, got an integer",
            }));
}

TEST(ConfigDhcp, RequiredKeys) {
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  classes = ( { vendor_class = "x"; } );
  options = ( { value = 1; }, { name = "routers"; } );
  subnets = (
    { min_secs = 1; },
    { subnet = "10.0.0.0/24";
      pools = ( { classes = []; } );
      hosts = ( { ip = "10.0.0.5"; }, { mac = "02:00:00:00:00:01"; } ); }
  );
};
)"),
            (Strings{
                "t.conf:3: missing required key 'dhcp.classes[0].name'",
                "t.conf:4: missing required key 'dhcp.options[0].name' or 'dhcp.options[0].code'",
                "t.conf:4: missing required key 'dhcp.options[1].value'",
                "t.conf:6: missing required key 'dhcp.subnets[0].subnet'",
                "t.conf:8: missing required key 'dhcp.subnets[1].pools[0].range'",
                "t.conf:9: 'dhcp.subnets[1].hosts[0]' needs one of: mac, client_id, circuit_id, "
                "circuit_id_hex, remote_id, remote_id_hex",
                "t.conf:9: missing required key 'dhcp.subnets[1].hosts[1].ip'",
            }));
}

// Every integer key of the dhcp section, one below and one above its range, both ends accepted.
TEST(ConfigDhcp, EveryIntegerKeyIsRangeChecked) {
  struct Case {
    const char* where;  // "dhcp", "limits", "leases", "subnet", "pool"
    const char* key;
    int64_t lo;
    int64_t hi;
  };
  const Case cases[] = {
      {"dhcp", "min_secs", 0, 65535},
      {"dhcp", "offer_hold_ms", 1000, 600000},
      {"dhcp", "decline_hold_s", 1, 31536000},
      {"limits", "window_ms", 100, 3600000},
      {"limits", "requests_per_mac", 0, 1000000},
      {"limits", "requests_per_circuit", 0, 1000000},
      {"limits", "leases_per_circuit", 0, 1000000},
      {"leases", "fsync_interval_ms", 1, 10000},
      {"leases", "snapshot_interval_s", 60, 86400},
      {"leases", "journal_max_mb", 1, 65536},
      {"subnet", "min_secs", 0, 65535},
  };
  // dhcp.leases.queue: a power of two in 1024..16777216 (a ring's size).
  EXPECT_EQ(errors_after_port("dhcp = { leases = { queue = 100000; }; };\n"),
            (Strings{"t.conf:2: 'dhcp.leases.queue' = 100000 must be a power of two"}));
  EXPECT_EQ(errors_after_port("dhcp = { leases = { queue = 512; }; };\n"),
            (Strings{"t.conf:2: 'dhcp.leases.queue' = 512 is out of range 1024..16777216"}));
  EXPECT_EQ(errors_after_port("dhcp = { leases = { queue = 33554432; }; };\n"),
            (Strings{"t.conf:2: 'dhcp.leases.queue' = 33554432 is out of range 1024..16777216"}));
  for (const char* good : {"1024", "16777216"}) {
    EXPECT_EQ(errors_after_port(std::string("dhcp = { leases = { queue = ") + good + "; }; };\n"),
              Strings{})
        << good;
  }
  // Line 2: dhcp = {; line 3: the key.
  auto text = [](const Case& k, int64_t v) {
    const std::string kv = std::string(k.key) + " = " + std::to_string(v) + ";";
    const std::string where = k.where;
    const std::string line3 = where == "dhcp"     ? kv
                              : where == "limits" ? "limits = { " + kv + " };"
                              : where == "leases"
                                  ? "leases = { " + kv + " };"
                                  : "subnets = ( { subnet = \"10.0.0.0/24\"; " + kv + " } );";
    return std::string(kOnePort) + "dhcp = {\n  " + line3 + "\n};\n";
  };
  for (const Case& k : cases) {
    const std::string where = k.where;
    const std::string path = where == "subnet" ? std::string("dhcp.subnets[0].") + k.key
                             : where == "dhcp" ? std::string("dhcp.") + k.key
                                               : "dhcp." + where + "." + k.key;
    const std::string range = std::to_string(k.lo) + ".." + std::to_string(k.hi);
    for (int64_t bad : {k.lo - 1, k.hi + 1}) {
      EXPECT_EQ(errors(text(k, bad)), (Strings{"t.conf:3: '" + path + "' = " + std::to_string(bad) +
                                               " is out of range " + range}));
    }
    for (int64_t good : {k.lo, k.hi}) {
      EXPECT_EQ(errors(text(k, good)), Strings{}) << path << " = " << good;
    }
  }
  // Per mille of the lease: 1..999 (and renew before rebind, below).
  for (const char* key : {"renew_permille", "rebind_permille"}) {
    const std::string k = key;
    for (int bad : {0, 1000}) {
      EXPECT_EQ(errors_after_port("dhcp = { " + k + " = " + std::to_string(bad) + "; };\n"),
                (Strings{"t.conf:2: 'dhcp." + k + "' = " + std::to_string(bad) +
                         " is out of range 1..999"}));
    }
  }
  EXPECT_EQ(errors_after_port("dhcp = { renew_permille = 1; rebind_permille = 999; };\n"),
            Strings{});
  // Lease times: 10 s to a year, at every level.
  for (const char* key : {"default_lease_s", "min_lease_s", "max_lease_s"}) {
    const std::string k = key;
    EXPECT_EQ(errors_after_port("dhcp = { " + k + " = 9; };\n"),
              (Strings{"t.conf:2: 'dhcp." + k + "' = 9 is out of range 10..31536000"}));
    EXPECT_EQ(errors_after_port("dhcp = { subnets = ( { subnet = \"10.0.0.0/24\"; pools = ( { "
                                "range = \"10.0.0.1 - 10.0.0.2\"; " +
                                k + " = 31536001; } ); } ); };\n"),
              (Strings{"t.conf:2: 'dhcp.subnets[0].pools[0]." + k +
                       "' = 31536001 is out of range 10..31536000"}));
  }
  EXPECT_EQ(errors_after_port("dhcp = { min_lease_s = 10; default_lease_s = 10; max_lease_s = "
                              "31536000; decline_hold_s = 31536000; };\n"),
            Strings{});
  EXPECT_EQ(errors_after_port("dhcp = { max_lease_s = 5000000000; };\n"),
            (Strings{"t.conf:2: 'dhcp.max_lease_s' = 5000000000 is out of range 10..31536000"}));
}

TEST(ConfigDhcp, LeaseTimesMustBeOrderedAtEveryLevel) {
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  min_lease_s = 7200;
  subnets = (
    { subnet = "10.0.0.0/24"; max_lease_s = 600; },
    { subnet = "10.0.1.0/24"; default_lease_s = 9000; max_lease_s = 8000;
      pools = ( { range = "10.0.1.10 - 10.0.1.20"; min_lease_s = 9500; } ); },
    { subnet = "10.0.2.0/24";
      default_lease_s = 7200; }
  );
};
)"),
            (Strings{
                "t.conf:3: 'dhcp.min_lease_s' = 7200 is more than 'dhcp.default_lease_s' = 3600 "
                "(min_lease_s <= default_lease_s <= max_lease_s)",
                "t.conf:5: 'dhcp.default_lease_s' = 3600 is more than "
                "'dhcp.subnets[0].max_lease_s' = 600 (min_lease_s <= default_lease_s <= "
                "max_lease_s)",
                "t.conf:6: 'dhcp.subnets[1].default_lease_s' = 9000 is more than "
                "'dhcp.subnets[1].max_lease_s' = 8000 (min_lease_s <= default_lease_s <= "
                "max_lease_s)",
                "t.conf:7: 'dhcp.subnets[1].pools[0].min_lease_s' = 9500 is more than "
                "'dhcp.subnets[1].default_lease_s' = 9000 (min_lease_s <= default_lease_s <= "
                "max_lease_s)",
            }));
}

TEST(ConfigDhcp, RenewBeforeRebind) {
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  renew_permille = 900;
  subnets = (
    { subnet = "10.0.0.0/24"; renew_permille = 600; rebind_permille = 600; },
    { subnet = "10.0.1.0/24"; renew_permille = 500;
      rebind_permille = 400; }
  );
};
)"),
            (Strings{
                "t.conf:3: 'dhcp.renew_permille' = 900 must be less than 'dhcp.rebind_permille' "
                "= 875 (T1 before T2)",
                "t.conf:5: 'dhcp.subnets[0].renew_permille' = 600 must be less than "
                "'dhcp.subnets[0].rebind_permille' = 600 (T1 before T2)",
                "t.conf:7: 'dhcp.subnets[1].renew_permille' = 500 must be less than "
                "'dhcp.subnets[1].rebind_permille' = 400 (T1 before T2)",
            }));
}

TEST(ConfigDhcp, LeaseFiles) {
  EXPECT_EQ(errors_after_port(R"(dhcp = { leases = {
  journal = "leases.journal";
  snapshot = "/var/lib/tandem/";
  durability = "fsync";
}; };
dhcp2 = 1;
)"),
            (Strings{
                "t.conf:3: 'dhcp.leases.journal' = \"leases.journal\" must be an absolute path",
                "t.conf:4: 'dhcp.leases.snapshot' = \"/var/lib/tandem/\" must name a file, not a "
                "directory",
                "t.conf:5: 'dhcp.leases.durability' = \"fsync\" is not one of: strict, batched, "
                "none",
                "t.conf:7: unknown key 'dhcp2' (did you mean 'dhcp'?)",
            }));
  EXPECT_EQ(
      errors_after_port("dhcp = { leases = {\n  journal = \"/a\";\n  snapshot = \"/a\"; }; };\n"),
      (Strings{"t.conf:4: 'dhcp.leases.journal' and 'dhcp.leases.snapshot' must be "
               "different files"}));
  EXPECT_EQ(errors_after_port(
                "dhcp = { leases = { journal = \"/var/lib/tandem/dhcp4.snapshot\"; }; };\n"),
            (Strings{"t.conf:2: 'dhcp.leases.journal' and 'dhcp.leases.snapshot' must be "
                     "different files"}));
  EXPECT_EQ(load_ok(std::string(kOnePort) + "dhcp = { leases = { durability = \"none\"; }; };\n")
                .dhcp.leases.durability,
            DhcpDurability::kNone);
  EXPECT_EQ(load_ok(std::string(kOnePort) + "dhcp = { leases = { durability = \"strict\"; }; };\n")
                .dhcp.leases.durability,
            DhcpDurability::kStrict);
}

constexpr const char* kTwoPorts = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back0"; device = "net_ring1"; }
);
)";

TEST(ConfigDhcp, Subnets) {
  EXPECT_EQ(errors(std::string(kTwoPorts) + R"(dhcp = { subnets = (
  { subnet = "192.0.2.0"; },
  { subnet = "192.0.2.0/31"; },
  { subnet = "192.0.2.0/0"; },
  { subnet = "192.0.2.1/24"; },
  { subnet = "224.0.0.0/4"; },
  { subnet = "192.0.2.0/24"; port = "fron0"; },
  { subnet = "192.0.2.128/25"; },
  { subnet = "192.0.0.0/16"; },
  { subnet = "198.51.100.0/24"; port = "back0"; },
  { subnet = "203.0.113.0/24"; server_id = "203.0.113.0.1"; },
  { subnet = "203.0.114.0/24"; server_id = "0.0.0.1"; }
); };
)"),
            (Strings{
                "t.conf:6: 'dhcp.subnets[0].subnet' = \"192.0.2.0\" is not an IPv4 prefix "
                "(expected A.B.C.D/LEN)",
                "t.conf:7: 'dhcp.subnets[1].subnet' = \"192.0.2.0/31\" has prefix length 31, "
                "out of range 1..30",
                "t.conf:8: 'dhcp.subnets[2].subnet' = \"192.0.2.0/0\" has prefix length 0, out "
                "of range 1..30",
                "t.conf:9: 'dhcp.subnets[3].subnet' = \"192.0.2.1/24\" has host bits set (the "
                "subnet is 192.0.2.0/24)",
                "t.conf:10: 'dhcp.subnets[4].subnet' = \"224.0.0.0/4\" is a multicast address",
                "t.conf:11: 'dhcp.subnets[5].port' = \"fron0\" is not a configured port (did you "
                "mean 'front0'?)",
                "t.conf:12: subnet 192.0.2.128/25 overlaps subnet 192.0.2.0/24 (line 11)",
                "t.conf:13: subnet 192.0.0.0/16 overlaps subnet 192.0.2.0/24 (line 11)",
                "t.conf:14: 'dhcp.subnets[8]' needs 'server_id': port 'back0' has no address to "
                "use as the server identifier",
                "t.conf:15: 'dhcp.subnets[9].server_id' = \"203.0.113.0.1\" is not an IPv4 "
                "address (expected A.B.C.D)",
                "t.conf:16: 'dhcp.subnets[10].server_id' = \"0.0.0.1\" is in 0.0.0.0/8 (this "
                "network)",
            }));
  // A port without an address is fine with a server_id; several subnets may share a port.
  EXPECT_EQ(errors(std::string(kTwoPorts) + R"(dhcp = { subnets = (
  { subnet = "198.51.100.0/24"; port = "back0"; server_id = "198.51.100.1"; },
  { subnet = "198.51.101.0/24"; port = "back0"; server_id = "198.51.100.1"; }
); };
)"),
            Strings{});
}

TEST(ConfigDhcp, Relays) {
  EXPECT_EQ(errors(std::string(kTwoPorts) + R"(dhcp = { subnets = (
  { subnet = "198.18.0.0/24"; relays = ( "192.0.2.10", "192.0.2.2", "192.0.2.10", "x",
                                         "255.255.255.255", 7 ); },
  { subnet = "198.18.1.0/24"; relays = [ "192.0.2.10" ]; }
); };
)"),
            (Strings{
                "t.conf:6: relay 192.0.2.2 is one of our own addresses (port 'front0')",
                "t.conf:6: relay 192.0.2.10 is listed twice in subnet 198.18.0.0/24",
                "t.conf:6: 'dhcp.subnets[0].relays[3]' = \"x\" is not an IPv4 address (expected "
                "A.B.C.D)",
                "t.conf:7: 'dhcp.subnets[0].relays[4]' = \"255.255.255.255\" is a reserved or "
                "broadcast address",
                "t.conf:7: 'dhcp.subnets[0].relays[5]' must be a string, got an integer",
            }));
}

TEST(ConfigDhcp, Ranges) {
  EXPECT_EQ(errors(std::string(kTwoPorts) + R"(dhcp = { subnets = (
  { subnet = "192.0.2.0/24"; server_id = "192.0.2.100"; pools = (
    { range = "192.0.2.150 192.0.2.250"; },
    { range = "192.0.2.250 - 192.0.2.150"; },
    { range = "192.0.2.200 - 192.0.3.10"; },
    { range = "192.0.2.0 - 192.0.2.10"; },
    { range = "192.0.2.250 - 192.0.2.255"; },
    { range = "192.0.2.20 - 192.0.2.30"; },
    { range = "192.0.2.25 - 192.0.2.40"; },
    { range = "192.0.2.1 - 192.0.2.3"; },
    { range = "192.0.2.90 - 192.0.2.110"; }
  ); },
  { subnet = "198.18.0.0/24"; relays = [ "192.0.2.60" ]; server_id = "198.18.0.1"; pools = (
    { range = "198.18.0.1 - 198.18.0.9"; }
  ); },
  { subnet = "192.0.3.0/24"; pools = (
    { range = "192.0.3.1 - 192.0.3.2"; }
  ); },
  { subnet = "192.0.4.0/24"; pools = ( { range = "192.0.4.1 - 192.0.4.254"; } );
    hosts = ( { mac = "02:00:00:00:00:01"; ip = "192.0.4.9"; } ); }
); };
dhcp2 = {};
)"),
            (Strings{
                "t.conf:7: 'dhcp.subnets[0].pools[0].range' = \"192.0.2.150 192.0.2.250\" is not "
                "a range (expected \"FIRST - LAST\", e.g. \"192.0.2.150 - 192.0.2.250\")",
                "t.conf:8: 'dhcp.subnets[0].pools[1].range' = \"192.0.2.250 - 192.0.2.150\" ends "
                "before it starts",
                "t.conf:9: range 192.0.2.200 - 192.0.3.10 is not inside subnet 192.0.2.0/24",
                "t.conf:10: range 192.0.2.0 - 192.0.2.10 includes the network address 192.0.2.0 "
                "of subnet 192.0.2.0/24",
                "t.conf:11: range 192.0.2.250 - 192.0.2.255 includes the broadcast address "
                "192.0.2.255 of subnet 192.0.2.0/24",
                "t.conf:13: range 192.0.2.25 - 192.0.2.40 overlaps range 192.0.2.20 - 192.0.2.30 "
                "(line 12)",
                "t.conf:14: range 192.0.2.1 - 192.0.2.3 contains 192.0.2.2, an address of port "
                "'front0'",
                "t.conf:15: range 192.0.2.90 - 192.0.2.110 contains 192.0.2.100, the server_id of "
                "subnet 192.0.2.0/24 (line 6)",
                "t.conf:18: range 198.18.0.1 - 198.18.0.9 contains 198.18.0.1, the server_id of "
                "subnet 198.18.0.0/24 (line 17)",
                "t.conf:26: unknown key 'dhcp2' (did you mean 'dhcp'?)",
            }));
}

TEST(ConfigDhcp, RangesAvoidVirtualIpsRelaysAndServerIdsOfOtherSubnets) {
  EXPECT_EQ(errors(std::string(kTwoPorts) + R"(vrrp = { instances = (
  { name = "VI_1"; port = "front0"; vrid = 1; virtual_ips = [ "192.0.2.100/24" ]; }
); };
dhcp = { subnets = (
  { subnet = "192.0.2.0/24"; pools = ( { range = "192.0.2.3 - 192.0.2.254"; } ); },
  { subnet = "198.18.0.0/16"; relays = [ "192.0.2.10" ]; server_id = "192.0.2.100";
    pools = ( { range = "198.18.0.10 - 198.18.255.250"; } ); },
  { subnet = "198.19.0.0/16"; relays = [ "192.0.2.10" ]; server_id = "192.0.2.100"; }
); };
)"),
            (Strings{
                "t.conf:9: range 192.0.2.3 - 192.0.2.254 contains 192.0.2.100, a virtual IP of "
                "VRRP instance 'VI_1'",
                "t.conf:9: range 192.0.2.3 - 192.0.2.254 contains 192.0.2.10, a relay address of "
                "subnet 198.18.0.0/16 (line 10)",
                "t.conf:9: range 192.0.2.3 - 192.0.2.254 contains 192.0.2.100, the server_id of "
                "subnet 198.18.0.0/16 (line 10)",
            }));
}

TEST(ConfigDhcp, TheLeaseStoreHoldsAtMostSixteenMillionAddresses) {
  EXPECT_EQ(errors_after_port(R"(dhcp = { subnets = (
  { subnet = "10.0.0.0/8"; pools = ( { range = "10.0.0.1 - 10.255.255.254"; } ); },
  { subnet = "11.0.0.0/8"; pools = ( { range = "11.0.0.1 - 11.0.0.2"; },
                                     { range = "11.0.0.3 - 11.0.0.4"; } ); }
); };
)"),
            (Strings{"t.conf:5: range 11.0.0.3 - 11.0.0.4 brings the ranges to 16777218 "
                     "addresses, more than the lease store holds (16777216)"}));
}

TEST(ConfigDhcp, Hosts) {
  EXPECT_EQ(errors(std::string(kTwoPorts) + R"(dhcp = { subnets = ( { subnet = "192.0.2.0/24";
  pools = ( { range = "192.0.2.150 - 192.0.2.250"; } );
  hosts = (
    { name = "a"; mac = "02:00:00:00:00:01"; ip = "192.0.2.11"; },
    { name = "a"; mac = "02:00:00:00:00:01"; ip = "192.0.2.11"; },
    { mac = "02:00:00:00:00:02"; client_id = "01:02"; ip = "192.0.2.12"; },
    { mac = "01:00:5e:00:00:01"; ip = "192.0.2.13"; },
    { mac = "02:00:00:00:00"; ip = "192.0.2.14"; },
    { client_id = "01"; ip = "192.0.2.15"; },
    { client_id = "0x01"; ip = "192.0.2.16"; },
    { circuit_id = ""; ip = "192.0.2.17"; },
    { circuit_id = "c1"; ip = "192.0.2.18"; },
    { circuit_id_hex = "63:31"; ip = "192.0.2.19"; },
    { remote_id = "r"; ip = "10.0.0.1"; },
    { remote_id = "s"; ip = "192.0.2.0"; },
    { remote_id = "t"; ip = "192.0.2.255"; },
    { remote_id = "u"; ip = "192.0.2.2"; },
    { name = "v w"; remote_id = "v"; ip = "192.0.2.160"; }
  ); } ); };
)"),
            (Strings{
                "t.conf:9: duplicate DHCP host name 'a' (first defined on line 8)",
                "t.conf:9: MAC 02:00:00:00:00:01 already has a reservation in subnet "
                "192.0.2.0/24 (line 8)",
                "t.conf:9: address 192.0.2.11 is already reserved for host 'a' (line 8)",
                "t.conf:10: 'dhcp.subnets[0].hosts[2]' sets both 'mac' and 'client_id': a "
                "reservation has one identifier",
                "t.conf:11: 'dhcp.subnets[0].hosts[3].mac' = \"01:00:5e:00:00:01\" is not a "
                "unicast MAC address",
                "t.conf:12: 'dhcp.subnets[0].hosts[4].mac' = \"02:00:00:00:00\" is not a MAC "
                "address (expected xx:xx:xx:xx:xx:xx)",
                "t.conf:13: 'dhcp.subnets[0].hosts[5].client_id' is 1 byte long, out of range "
                "2..255",
                "t.conf:14: 'dhcp.subnets[0].hosts[6].client_id' = \"0x01\" is not hex bytes "
                "(e.g. \"01:02:0a\" or \"01020a\")",
                "t.conf:15: 'dhcp.subnets[0].hosts[7].circuit_id' must not be empty",
                "t.conf:17: circuit_id_hex 63:31 already has a reservation in subnet "
                "192.0.2.0/24 (line 16)",
                "t.conf:18: 'dhcp.subnets[0].hosts[10].ip' = \"10.0.0.1\" is not inside subnet "
                "192.0.2.0/24",
                "t.conf:19: 'dhcp.subnets[0].hosts[11].ip' = \"192.0.2.0\" is the network address "
                "of subnet 192.0.2.0/24",
                "t.conf:20: 'dhcp.subnets[0].hosts[12].ip' = \"192.0.2.255\" is the broadcast "
                "address of subnet 192.0.2.0/24",
                "t.conf:21: reserved address 192.0.2.2 is an address of port 'front0'",
                "t.conf:22: 'dhcp.subnets[0].hosts[14].name' = \"v w\" may only contain A-Z a-z "
                "0-9 . _ -",
            }));
  // The same identifier in two subnets, and the kinds of identifier kept apart.
  EXPECT_EQ(errors_after_port(R"(dhcp = { subnets = (
  { subnet = "10.0.0.0/24"; hosts = ( { mac = "02:00:00:00:00:01"; ip = "10.0.0.5"; },
                                      { circuit_id = "x"; ip = "10.0.0.6"; },
                                      { remote_id = "x"; ip = "10.0.0.7"; } ); },
  { subnet = "10.0.1.0/24"; hosts = ( { mac = "02:00:00:00:00:01"; ip = "10.0.1.5"; } ); }
); };
)"),
            Strings{});
}

TEST(ConfigDhcp, Classes) {
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  classes = (
    { name = "phones"; vendor_class_prefix = "Yealink"; },
    { name = "phones"; vendor_class = "x"; },
    { name = "none"; },
    { name = "both"; circuit_id = "a"; circuit_id_prefix = "b"; },
    { name = "long"; remote_id = ")" +
                              std::string(260, 'r') + R"("; },
    { name = "hex"; remote_id_hex = "zz"; },
    1
  );
  subnets = ( { subnet = "10.0.0.0/24"; pools = (
    { range = "10.0.0.10 - 10.0.0.20"; classes = [ "phone", "phones", "phones", "pc" ]; }
  ); } );
};
)"),
            (Strings{
                "t.conf:5: duplicate DHCP class name 'phones' (first defined on line 4)",
                "t.conf:6: 'dhcp.classes[2]' has nothing to match: set one of vendor_class, "
                "vendor_class_prefix, circuit_id, circuit_id_prefix, circuit_id_hex, remote_id, "
                "remote_id_prefix, remote_id_hex",
                "t.conf:7: 'dhcp.classes[3]' sets both 'circuit_id' and 'circuit_id_prefix': one "
                "test per field",
                "t.conf:8: 'dhcp.classes[4].remote_id' is 260 bytes long, out of range 1..255",
                "t.conf:9: 'dhcp.classes[5].remote_id_hex' = \"zz\" is not hex bytes (e.g. "
                "\"01:02:0a\" or \"01020a\")",
                "t.conf:10: 'dhcp.classes[6]' must be a group { ... }, got an integer",
                "t.conf:13: 'dhcp.subnets[0].pools[0].classes[0]' = \"phone\" is not a class in "
                "'dhcp.classes' (did you mean 'phones'?)",
                "t.conf:13: class 'phones' is listed twice in 'dhcp.subnets[0].pools[0].classes'",
                "t.conf:13: 'dhcp.subnets[0].pools[0].classes[3]' = \"pc\" is not a class in "
                "'dhcp.classes'",
            }));
  // Classes are known wherever they appear in the group.
  EXPECT_EQ(errors_after_port(R"(dhcp = {
  subnets = ( { subnet = "10.0.0.0/24"; pools = ( { range = "10.0.0.10 - 10.0.0.20"; classes = [ "c" ]; } ); } );
  classes = ( { name = "c"; remote_id_prefix = "x"; } );
};
)"),
            Strings{});
}

TEST(ConfigDhcp, OptionErrors) {
  EXPECT_EQ(errors_after_port(R"(dhcp = { options = (
  { name = "routers"; code = 3; value = [ "10.0.0.1" ]; },
  { name = "router"; value = [ "10.0.0.1" ]; },
  { name = "frobnicator"; value = 1; },
  { name = "dhcp-lease-time"; value = 60; },
  { code = 54; value = "10.0.0.1"; },
  { code = 58; value = 1; },
  { code = 61; value = "x"; },
  { code = 82; value = "x"; },
  { code = 0; value = 1; },
  { code = 255; value = 1; },
  { code = 200; value = 1; },
  { code = 201; type = "int"; value = 1; },
  { name = "domain-name"; type = "ips"; value = [ "10.0.0.1" ]; },
  { name = "domain-name"; type = 1; value = "x"; },
  { code = 202; type = "u8"; }
); };
)"),
            (Strings{
                "t.conf:3: 'dhcp.options[0]' sets both 'name' and 'code': use one",
                "t.conf:4: 'dhcp.options[1].name' = \"router\" is not a known option (did you "
                "mean 'routers'?)",
                "t.conf:5: 'dhcp.options[2].name' = \"frobnicator\" is not a known option (set "
                "'code' and 'type' instead)",
                "t.conf:6: 'dhcp.options[3].name' = \"dhcp-lease-time\" (option 51) is set by the "
                "server: use 'default_lease_s', 'min_lease_s' and 'max_lease_s'",
                "t.conf:7: 'dhcp.options[4].code' = 54 (dhcp-server-identifier) is set by the "
                "server: use the subnet's 'server_id'",
                "t.conf:8: 'dhcp.options[5].code' = 58 (dhcp-renewal-time) is set by the server: "
                "use 'renew_permille'",
                "t.conf:9: 'dhcp.options[6].code' = 61 (dhcp-client-identifier) is set by the "
                "server: replies echo the client's (RFC 6842); reserve by it with a host's "
                "'client_id'",
                "t.conf:10: 'dhcp.options[7].code' = 82 (relay-agent-information) is set by the "
                "server: replies echo the relay's (RFC 3046); match it with classes and hosts",
                "t.conf:11: 'dhcp.options[8].code' = 0 is out of range 1..254",
                "t.conf:12: 'dhcp.options[9].code' = 255 is out of range 1..254",
                "t.conf:13: option 200 has no known type: set 'dhcp.options[10].type' (one of: "
                "ip, ips, string, u8, u16, u32, i32, bool, hex, routes, domains)",
                "t.conf:14: 'dhcp.options[11].type' = \"int\" is not one of: ip, ips, string, u8, "
                "u16, u32, i32, bool, hex, routes, domains",
                "t.conf:15: 'dhcp.options[12].type' = \"ips\" does not fit option 15 "
                "(domain-name), which is string (or \"hex\" for raw bytes)",
                "t.conf:16: 'dhcp.options[13].type' must be a string, got an integer",
                "t.conf:17: missing required key 'dhcp.options[14].value'",
            }));
  EXPECT_EQ(errors_after_port(R"(dhcp = { options = (
  { name = "routers"; value = "10.0.0.1"; },
  { name = "domain-name-servers"; value = [ ]; },
  { name = "ntp-servers"; value = ( "10.0.0.1", "10.0.0.300", 5 ); },
  { name = "subnet-mask"; value = "255.0.255.0"; },
  { name = "broadcast-address"; value = [ "10.0.0.255" ]; },
  { name = "domain-name"; value = ""; },
  { name = "host-name"; value = 1; },
  { name = "interface-mtu"; value = 67; },
  { name = "default-ip-ttl"; value = 256; },
  { name = "time-offset"; value = 2147483648; },
  { name = "ip-forwarding"; value = 1; },
  { name = "vendor-encapsulated-options"; value = "012"; },
  { name = "domain-search"; value = [ "a..b", "-ok.example", "x_" ]; },
  { name = "classless-static-routes"; value = [ "10.0.0.0/8 10.0.0.1", "10.0.0.0/33 via 10.0.0.1", "10.1.0.0/8 via 10.0.0.1" ]; },
  { code = 220; type = "u16"; value = "1"; },
  { code = 221; type = "string"; value = ")" +
                              std::string(1030, 's') + R"("; },
  { name = "routers"; value = [ "10.0.0.1" ]; },
  { name = "routers"; value = [ "10.0.0.2" ]; },
  { name = "classless-static-routes"; value = "0.0.0.0/0 via 10.0.0.1"; },
  { name = "domain-search"; value = "example.net"; },
  { code = 222; type = "hex"; value = 1; },
  { name = "broadcast-address"; value = "10.0.0"; }
); };
)"),
            (Strings{
                "t.conf:3: 'dhcp.options[0].value' must be an array [ ... ] of IPv4 addresses for "
                "option 3 (routers), got a string",
                "t.conf:4: 'dhcp.options[1].value' must not be empty",
                "t.conf:5: 'dhcp.options[2].value[1]' = \"10.0.0.300\" is not an IPv4 address "
                "(expected A.B.C.D)",
                "t.conf:5: 'dhcp.options[2].value[2]' must be a string, got an integer",
                "t.conf:6: 'dhcp.options[3].value' = \"255.0.255.0\" is not a netmask (e.g. "
                "255.255.255.0)",
                "t.conf:7: 'dhcp.options[4].value' must be a string (an IPv4 address) for option "
                "28 (broadcast-address), got an array",
                "t.conf:8: 'dhcp.options[5].value' must not be empty",
                "t.conf:9: 'dhcp.options[6].value' must be a string for option 12 (host-name), "
                "got an integer",
                "t.conf:10: 'dhcp.options[7].value' = 67 is out of range 68..65535 for option 26 "
                "(interface-mtu)",
                "t.conf:11: 'dhcp.options[8].value' = 256 is out of range 0..255 for option 23 "
                "(default-ip-ttl)",
                "t.conf:12: 'dhcp.options[9].value' = 2147483648 is out of range "
                "-2147483648..2147483647 for option 2 (time-offset)",
                "t.conf:13: 'dhcp.options[10].value' must be a boolean (true or false) for "
                "option 19 (ip-forwarding), got an integer",
                "t.conf:14: 'dhcp.options[11].value' = \"012\" is not hex bytes (e.g. "
                "\"01:02:0a\" or \"01020a\")",
                "t.conf:15: 'dhcp.options[12].value[0]' = \"a..b\" is not a domain name (labels "
                "of 1..63 letters, digits, '-' or '_', joined by dots)",
                "t.conf:16: 'dhcp.options[13].value[0]' = \"10.0.0.0/8 10.0.0.1\" is not a route "
                "(expected \"DEST/LEN via ROUTER\", e.g. \"10.0.0.0/8 via 192.0.2.1\")",
                "t.conf:16: 'dhcp.options[13].value[1]' = \"10.0.0.0/33 via 10.0.0.1\" has "
                "prefix length 33, out of range 0..32",
                "t.conf:16: 'dhcp.options[13].value[2]' = \"10.1.0.0/8 via 10.0.0.1\" has host "
                "bits set (the destination is 10.0.0.0/8)",
                "t.conf:17: 'dhcp.options[14].value' must be an integer, got a string",
                "t.conf:18: option 221 is 1030 bytes long, more than 1024",
                "t.conf:20: option 3 (routers) is set twice in 'dhcp.options' (first on line 19)",
                "t.conf:21: 'dhcp.options[18].value' must be an array [ ... ] of routes for "
                "option 121 (classless-static-routes), got a string",
                "t.conf:22: 'dhcp.options[19].value' must be an array [ ... ] of domain names for "
                "option 119 (domain-search), got a string",
                "t.conf:23: 'dhcp.options[20].value' must be a string of hex bytes for option "
                "222, got an integer",
                "t.conf:24: 'dhcp.options[21].value' = \"10.0.0\" is not an IPv4 address "
                "(expected A.B.C.D)",
            }));
  // Options are checked the same way at every level.
  EXPECT_EQ(errors_after_port(R"(dhcp = { subnets = ( { subnet = "10.0.0.0/24";
  options = ( { name = "routers"; value = [ "x" ]; } );
  pools = ( { range = "10.0.0.10 - 10.0.0.20"; options = ( { code = 51; value = 1; } ); } );
  hosts = ( { mac = "02:00:00:00:00:01"; ip = "10.0.0.5";
              options = ( { name = "host-name"; value = "a"; }, { code = 12; value = "b"; } ); } );
} ); };
)"),
            (Strings{
                "t.conf:3: 'dhcp.subnets[0].options[0].value[0]' = \"x\" is not an IPv4 address "
                "(expected A.B.C.D)",
                "t.conf:4: 'dhcp.subnets[0].pools[0].options[0].code' = 51 (dhcp-lease-time) is "
                "set by the server: use 'default_lease_s', 'min_lease_s' and 'max_lease_s'",
                "t.conf:6: option 12 (host-name) is set twice in "
                "'dhcp.subnets[0].hosts[0].options' (first on line 6)",
            }));
}

TEST(ConfigDhcp, ReloadMayChangeEverythingButTheSwitchTheLeaseFilesAndTheAddressPlan) {
  std::string next = kDhcpFull;
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = next.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    next.replace(at, from.size(), to);
  };
  replace("authoritative = false", "authoritative = true");
  replace("default_lease_s = 7200", "default_lease_s = 1800");
  replace("renew_permille = 400", "renew_permille = 300");
  replace("min_secs = 3", "min_secs = 0");
  replace("requests_per_mac = 10", "requests_per_mac = 0");
  replace("fsync_interval_ms = 50; snapshot_interval_s = 600; journal_max_mb = 16",
          "fsync_interval_ms = 5; snapshot_interval_s = 60; journal_max_mb = 1");
  replace("\"198.51.100.53\"", "\"198.51.100.54\"");
  replace("{ name = \"pxe\"; vendor_class = \"PXEClient\"; }",
          "{ name = \"pxe\"; vendor_class = \"PXE\"; }");
  replace("server_id = \"192.0.2.100\"", "server_id = \"192.0.2.101\"");
  replace("relays = [ \"192.0.2.10\", \"192.0.2.11\" ]", "relays = [ \"192.0.2.12\" ]");
  EXPECT_EQ(conflicts(kDhcpFull, next), Strings{});
  EXPECT_EQ(conflicts(next, kDhcpFull), Strings{});
}

// The workers' lease stores are built from the address plan at start: changing it needs a
// restart (the running plan stays, and the reload says so).
TEST(ConfigDhcp, ReloadRefusesAnotherAddressPlan) {
  const auto changed = [](const std::string& from, const std::string& to) {
    std::string next = kDhcpFull;
    const size_t at = next.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) next.replace(at, from.size(), to);
    return conflicts(kDhcpFull, next);
  };
  const std::string plan =
      "'dhcp.subnets (prefix, pool ranges or reservations)' cannot change on reload (restart "
      "tandemd to apply)";
  const auto has = [&](const Strings& v, const std::string& what) {
    for (const auto& e : v)
      if (e.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has(changed("192.0.2.200-192.0.2.250", "192.0.2.200-192.0.2.240"), plan));
  EXPECT_TRUE(has(changed("ip = \"192.0.2.50\"", "ip = \"192.0.2.49\""), plan));
  EXPECT_TRUE(has(changed("offer_hold_ms = 5000", "offer_hold_ms = 10000"), "dhcp.offer_hold_ms"));
  EXPECT_TRUE(has(changed("decline_hold_s = 600", "decline_hold_s = 60"), "dhcp.decline_hold_s"));
  const std::string one =
      std::string(kOnePort) + "dhcp = { subnets = ( { subnet = \"10.0.0.0/24\"; } ); };\n";
  const std::string two = std::string(kOnePort) +
                          "dhcp = { subnets = ( { subnet = \"10.0.0.0/24\"; }, { subnet = "
                          "\"10.0.1.0/24\"; } ); };\n";
  EXPECT_FALSE(conflicts(one, two).empty());
}

TEST(ConfigDhcp, ReloadRefusesTheSwitchAndTheLeaseFiles) {
  std::string next = kDhcpFull;
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = next.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    next.replace(at, from.size(), to);
  };
  replace("enabled = false", "enabled = true");
  replace("journal = \"/var/lib/t/j\"", "journal = \"/var/lib/t/j2\"");
  replace("snapshot = \"/var/lib/t/s\"", "snapshot = \"/var/lib/t/s2\"");
  replace("durability = \"batched\"", "durability = \"strict\"");
  replace("queue = 262144", "queue = 1048576");
  const std::string suffix = "' cannot change on reload (restart tandemd to apply)";
  EXPECT_EQ(conflicts(kDhcpFull, next), (Strings{
                                            "b.conf:5: 'dhcp.enabled" + suffix,
                                            "b.conf:17: 'dhcp.leases.journal" + suffix,
                                            "b.conf:17: 'dhcp.leases.snapshot" + suffix,
                                            "b.conf:17: 'dhcp.leases.durability" + suffix,
                                            "b.conf:17: 'dhcp.leases.queue" + suffix,
                                        }));
  // Adding the dhcp group turns the server on; removing it turns it off.
  const std::string with = std::string(kOnePort) + "dhcp = { };\n";
  EXPECT_EQ(conflicts(kOnePort, with), (Strings{"b.conf:2: 'dhcp.enabled" + suffix}));
  EXPECT_EQ(conflicts(with, kOnePort), (Strings{"b.conf: 'dhcp.enabled" + suffix}));
  EXPECT_EQ(conflicts(kOnePort, std::string(kOnePort) + "dhcp = { enabled = false; };\n"),
            Strings{});
}

// The seeds' DHCP configurations, translated one to one (examples/dhcp).
TEST(ConfigExamples, DhcpSeed000IscFailover) {
  const auto r = load_file(source("examples/dhcp/seed000-isc-failover.conf"));
  ASSERT_EQ(errors_of(r), Strings{});
  const Dhcp& d = r.config->dhcp;
  EXPECT_TRUE(d.enabled);
  EXPECT_TRUE(d.authoritative);
  EXPECT_EQ(d.leases.durability, DhcpDurability::kStrict);
  ASSERT_EQ(d.subnets.size(), 1u);
  const DhcpSubnet& s = d.subnets[0];
  EXPECT_EQ(s.subnet, (Ipv4Prefix{ip("192.0.2.0"), 24}));
  EXPECT_EQ(s.port, "front0");
  ASSERT_EQ(s.pools.size(), 1u);
  EXPECT_EQ(s.pools[0].first, ip("192.0.2.150"));
  EXPECT_EQ(s.pools[0].last, ip("192.0.2.250"));
  EXPECT_EQ(s.pools[0].lease.default_s, 600u);
  EXPECT_EQ(s.pools[0].lease.max_s, 7200u);
  ASSERT_EQ(s.pools[0].options.size(), 3u);
  EXPECT_EQ(s.pools[0].options[0].code, 3);
  EXPECT_EQ(s.pools[0].options[1].code, 6);
  EXPECT_EQ(s.pools[0].options[1].data, (Bytes{8, 8, 8, 8, 8, 8, 4, 4}));
  EXPECT_EQ(s.pools[0].options[2].code, 15);
  EXPECT_EQ(s.pools[0].options[2].data, text_bytes("mondomaine.local"));
}

TEST(ConfigExamples, DhcpSeed002Mikrotik) {
  const auto r = load_file(source("examples/dhcp/seed002-mikrotik.conf"));
  ASSERT_EQ(errors_of(r), Strings{});
  const Config& c = *r.config;
  EXPECT_EQ(c.node, "b");
  const Dhcp& d = c.dhcp;
  EXPECT_EQ(d.min_secs, 10u);  // delay-threshold=10s
  EXPECT_EQ(d.lease.default_s, 600u);
  EXPECT_EQ(d.leases.durability, DhcpDurability::kBatched);
  ASSERT_EQ(d.subnets.size(), 1u);
  const DhcpSubnet& s = d.subnets[0];
  EXPECT_EQ(s.min_secs, 10u);
  EXPECT_EQ(s.server_id, ip("192.0.2.2"));  // src-address: the primary's address
  ASSERT_EQ(s.pools.size(), 1u);
  EXPECT_EQ(s.hosts.size(), 3u);
  for (const auto& h : s.hosts) {
    EXPECT_EQ(h.key, DhcpHostKey::kMac);
    EXPECT_TRUE(s.subnet.contains(h.ip));
  }
}

TEST(ConfigExamples, DhcpSeed004Isc) {
  const auto r = load_file(source("examples/dhcp/seed004-isc.conf"));
  ASSERT_EQ(errors_of(r), Strings{});
  const Dhcp& d = r.config->dhcp;
  EXPECT_FALSE(d.authoritative);
  EXPECT_EQ(d.lease, (DhcpLeaseTime{43200, 60, 86400}));
  ASSERT_EQ(d.options.size(), 1u);
  EXPECT_EQ(d.options[0].code, 6);
  ASSERT_EQ(d.subnets.size(), 1u);
  ASSERT_EQ(d.subnets[0].pools.size(), 1u);
  EXPECT_EQ(d.subnets[0].pools[0].last - d.subnets[0].pools[0].first + 1, 9u);  // .2 to .10
  EXPECT_FALSE(d.subnets[0].authoritative);
}

// ---------------------------------------------------------------------------------------------
// Address helpers

TEST(ConfigHelpers, Ipv4) {
  EXPECT_EQ(parse_ipv4("192.0.2.1"), 0xc0000201u);
  EXPECT_EQ(parse_ipv4("0.0.0.0"), 0u);
  EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xffffffffu);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",
                          "1..2.3", "1.2.3.-4", "a.b.c.d", "1.2.3.4/24", "1234.1.1.1"}) {
    EXPECT_FALSE(parse_ipv4(bad)) << bad;
  }
  EXPECT_EQ(format_ipv4(0xc0000201u), "192.0.2.1");
  EXPECT_EQ(format_ipv4(0), "0.0.0.0");
  EXPECT_EQ(format_ipv4(0xffffffffu), "255.255.255.255");
  for (uint32_t v : {0u, 1u, 0x0a000001u, 0x7f000001u, 0xc6336402u, 0xffffffffu}) {
    EXPECT_EQ(parse_ipv4(format_ipv4(v)), v);
  }
}

TEST(ConfigHelpers, Mac) {
  EXPECT_EQ(parse_mac("02:00:5E:0a:Ff:11"), (Mac{0x02, 0x00, 0x5e, 0x0a, 0xff, 0x11}));
  for (const char* bad : {"", "02:00:00:00:00", "02:00:00:00:00:11:22", "02-00-00-00-00-11",
                          "0g:00:00:00:00:11", "02:00:00:00:00:1", "020:00:00:00:00:1"}) {
    EXPECT_FALSE(parse_mac(bad)) << bad;
  }
  EXPECT_EQ(format_mac(Mac{0x02, 0x00, 0x5e, 0x0a, 0xff, 0x11}), "02:00:5e:0a:ff:11");
  const Mac m{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
  EXPECT_EQ(parse_mac(format_mac(m)), m);
}

TEST(ConfigDhcp, AtMost64Classes) {
  // Classes are selected through a 64-bit mask in the workers' snapshot. Line 2 opens dhcp,
  // line 3 the list; class k sits on line 4 + k, so the 65th is on line 68.
  std::string text = "dhcp = {\n  classes = (\n";
  for (int k = 0; k < 65; ++k)
    text += "    { name = \"c" + std::to_string(k) + "\"; vendor_class = \"v" + std::to_string(k) +
            "\"; }" + (k < 64 ? "," : "") + "\n";
  text += "  );\n};\n";
  EXPECT_EQ(
      errors_after_port(text),
      (Strings{"t.conf:68: 'dhcp.classes' has 65 entries; at most 64 classes are supported"}));
}

// ---------------------------------------------------------------------------------------------
// Routing and load balancer

// Two ports (lines 1-4) and a VRRP VIP on the front (line 5): the start of every config below.
constexpr const char* kLbBase = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; tap = "tdm-front"; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
vrrp = { instances = ( { name = "VI_1"; port = "front0"; vrid = 51; virtual_ips = [ "192.0.2.100" ]; } ); };
)";

TEST(ConfigLb, FullSectionsReadEveryField) {
  const Config c = load_ok(std::string(kLbBase) + R"(routing = {
  forward = true;
  icmp_errors_per_s = 50;
  routes = (
    { to = "203.0.113.0/24"; via = "198.51.100.1"; },
    { to = "0.0.0.0/0"; via = "192.0.2.1"; }
  );
};
lb = {
  connections = 4096;
  maglev_table_size = 131071;
  timeouts = { tcp = 600; tcp_fin = 60; udp = 30; };
  services = (
    { name = "web"; protocol = "tcp"; vip = "192.0.2.100"; port = 80; scheduler = "rr";
      persistence_s = 300; persistence_netmask = "255.255.255.0"; mode = "nat";
      check = { type = "http"; port = 8080; path = "/health"; status = 204; host = "example.org";
                interval_ms = 500; timeout_ms = 300; retries = 2; retry_delay_ms = 50;
                rise = 3; fall = 2; };
      reals = (
        { address = "198.51.100.11"; port = 8080; weight = 3; },
        { address = "198.51.100.12"; port = 8081; weight = 0; },
        { address = "203.0.113.5"; mode = "tun"; }
      );
    },
    { protocol = "udp"; vip = "192.0.2.100"; port = 0; mode = "dr";
      check = { type = "tcp"; };
      reals = ( { address = "198.51.100.21"; } ); },
    { vip = "192.0.2.2"; port = 443; scheduler = "mh";
      reals = ( { address = "198.51.100.31"; mode = "dr"; }, { address = "10.7.0.1"; } ); }
  );
};
)");
  EXPECT_EQ(c.ports[0].tap, "tdm-front");
  EXPECT_EQ(c.ports[1].tap, "");

  EXPECT_TRUE(c.routing.forward);
  EXPECT_EQ(c.routing.line, 6);
  EXPECT_EQ(c.routing.icmp_errors_per_s, 50u);
  ASSERT_EQ(c.routing.routes.size(), 2u);
  EXPECT_EQ(c.routing.routes[0].to.addr, ip("203.0.113.0"));
  EXPECT_EQ(c.routing.routes[0].to.len, 24);
  EXPECT_EQ(c.routing.routes[0].via, ip("198.51.100.1"));
  EXPECT_EQ(c.routing.routes[0].port, "back0");
  EXPECT_EQ(c.routing.routes[0].line, 10);
  EXPECT_EQ(c.routing.routes[1].to.addr, 0u);
  EXPECT_EQ(c.routing.routes[1].to.len, 0);
  EXPECT_EQ(c.routing.routes[1].port, "front0");

  EXPECT_TRUE(c.lb.enabled);
  EXPECT_EQ(c.lb.line, 14);
  EXPECT_EQ(c.lb.connections, 4096u);
  EXPECT_EQ(c.lb.maglev_table_size, 131071u);
  EXPECT_EQ(c.lb.timeouts, (LbTimeouts{600, 60, 30}));
  ASSERT_EQ(c.lb.services.size(), 3u);

  const LbService& web = c.lb.services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.line, 19);
  EXPECT_EQ(web.spec.key, (lb::ServiceKey{lb::Proto::kTcp, ip("192.0.2.100"), 80}));
  EXPECT_EQ(web.spec.sched, lb::Sched::kRr);
  EXPECT_EQ(web.spec.persist_s, 300u);
  EXPECT_EQ(web.spec.persist_mask, 0xffffff00u);
  LbCheck want;
  want.type = LbCheck::Type::kHttp;
  want.port = 8080;
  want.path = "/health";
  want.status = 204;
  want.host = "example.org";
  want.interval_ms = 500;
  want.timeout_ms = 300;
  want.retries = 2;
  want.retry_delay_ms = 50;
  want.rise = 3;
  want.fall = 2;
  EXPECT_EQ(web.check, want);
  EXPECT_EQ(web.spec.reals, (std::vector<lb::RealServer>{
                                {ip("198.51.100.11"), 8080, lb::Fwd::kNat, 3},
                                {ip("198.51.100.12"), 8081, lb::Fwd::kNat, 0},
                                {ip("203.0.113.5"), 80, lb::Fwd::kTun, 1},  // port: the service's
                            }));
  EXPECT_EQ(web.real_lines, (std::vector<int>{25, 26, 27}));

  const LbService& dns = c.lb.services[1];
  EXPECT_EQ(dns.name, "");
  EXPECT_EQ(dns.spec.key, (lb::ServiceKey{lb::Proto::kUdp, ip("192.0.2.100"), 0}));
  EXPECT_EQ(dns.spec.sched, lb::Sched::kWlc);  // ipvsadm's default
  EXPECT_EQ(dns.spec.persist_s, 0u);
  EXPECT_EQ(dns.spec.persist_mask, 0xffffffffu);
  LbCheck tcp;
  tcp.type = LbCheck::Type::kTcp;
  EXPECT_EQ(dns.check, tcp);  // defaults: 2000 ms, timeout 1000 ms
  EXPECT_EQ(dns.spec.reals,
            (std::vector<lb::RealServer>{{ip("198.51.100.21"), 0, lb::Fwd::kDr, 1}}));

  const LbService& tls = c.lb.services[2];
  EXPECT_EQ(tls.spec.key, (lb::ServiceKey{lb::Proto::kTcp, ip("192.0.2.2"), 443}));
  EXPECT_EQ(tls.spec.sched, lb::Sched::kMh);
  EXPECT_EQ(tls.check.type, LbCheck::Type::kNone);
  EXPECT_EQ(tls.spec.reals,
            (std::vector<lb::RealServer>{{ip("198.51.100.31"), 443, lb::Fwd::kDr, 1},
                                         {ip("10.7.0.1"), 443, lb::Fwd::kNat, 1}}));
}

TEST(ConfigLb, DefaultsAndEmptyGroups) {
  const Config none = load_ok(kLbBase);
  EXPECT_FALSE(none.routing.forward);
  EXPECT_FALSE(none.lb.enabled);
  EXPECT_EQ(none.lb.connections, 1u << 20);
  EXPECT_EQ(none.lb.maglev_table_size, 65537u);
  EXPECT_EQ(none.routing.icmp_errors_per_s, 1000u);

  const Config empty = load_ok(std::string(kLbBase) + "routing = {};\nlb = {};\n");
  EXPECT_TRUE(empty.routing.forward);  // the group's presence turns it on
  EXPECT_EQ(empty.routing.line, 6);
  EXPECT_TRUE(empty.lb.enabled);
  EXPECT_EQ(empty.lb.line, 7);
  EXPECT_EQ(empty.lb.timeouts, LbTimeouts{});
  EXPECT_TRUE(empty.lb.services.empty());

  const Config off = load_ok(std::string(kLbBase) +
                             "routing = { forward = false; };\nlb = { enabled = false; };\n");
  EXPECT_FALSE(off.routing.forward);
  EXPECT_FALSE(off.lb.enabled);

  // The check timeout follows a short interval.
  const Config quick = load_ok(std::string(kLbBase) + R"(lb = { services = (
  { vip = "192.0.2.100"; port = 80; check = { interval_ms = 100; }; } ); };
)");
  EXPECT_EQ(quick.lb.services[0].check.timeout_ms, 50u);
}

TEST(ConfigLb, WeightBelongsToRealServers) {
  // A weight on the service was once accepted and silently ignored: it is an unknown key.
  EXPECT_EQ(errors(std::string(kLbBase) + R"(lb = { services = (
  { vip = "192.0.2.100"; port = 80; weight = 0;
    reals = ( { address = "198.51.100.11"; } ); } ); };
)"),
            (Strings{"t.conf:7: unknown key 'lb.services[0].weight'"}));
}

TEST(ConfigLb, RouteErrors) {
  EXPECT_EQ(errors(std::string(kLbBase) + R"(routing = { routes = (
  { to = "203.0.113.0/24"; via = "198.51.100.1"; },
  { to = "203.0.113.0/24"; via = "192.0.2.1"; },
  { to = "203.0.113.1/24"; via = "192.0.2.1"; },
  { to = "10.0.0.0/8"; via = "172.16.0.1"; },
  { to = "10.0.0.0"; via = "192.0.2.1"; },
  { to = "10.0.0.0/33"; via = "192.0.2.1"; },
  { to = "10.1.0.0/16"; via = "192.0.2.2"; },
  { to = "10.2.0.0/16"; },
  { to = "10.3.0.0/16"; via = "192.0.2.1"; metric = 5; },
  { to = "10.4.0.0/16"; via = "192.0.2.300"; }
); icmp_errors_per_s = 1000001; };
)"),
            (Strings{
                "t.conf:8: route to 203.0.113.0/24 is already defined on line 7",
                "t.conf:9: 'routing.routes[2].to' = \"203.0.113.1/24\" has host bits set (the "
                "network is 203.0.113.0/24)",
                "t.conf:10: 'routing.routes[3].via' = \"172.16.0.1\" is not on a connected prefix "
                "of any port (a gateway must be on-link)",
                "t.conf:11: 'routing.routes[4].to' = \"10.0.0.0\" is not a prefix (expected "
                "A.B.C.D/LEN)",
                "t.conf:12: 'routing.routes[5].to' = \"10.0.0.0/33\" is not a prefix (expected "
                "A.B.C.D/LEN)",
                "t.conf:13: 'routing.routes[6].via' = \"192.0.2.2\" is not on a connected prefix "
                "of any port (a gateway must be on-link)",
                "t.conf:14: missing required key 'routing.routes[7].via'",
                "t.conf:15: unknown key 'routing.routes[8].metric'",
                "t.conf:16: 'routing.routes[9].via' = \"192.0.2.300\" is not an IPv4 address "
                "(expected A.B.C.D)",
                "t.conf:17: 'routing.icmp_errors_per_s' = 1000001 is out of range 0..1000000",
            }));
}

TEST(ConfigLb, ServiceErrors) {
  EXPECT_EQ(errors(std::string(kLbBase) +
                   R"(routing = { routes = ( { to = "203.0.113.0/24"; via = "198.51.100.1"; } ); };
lb = { maglev_table_size = 100000; services = (
  { vip = "192.0.2.99"; port = 80; reals = ( { address = "198.51.100.11"; } ); },
  { vip = "192.0.2.100"; port = 80; reals = ( { address = "198.51.100.11"; } ); },
  { vip = "192.0.2.100"; port = 80; reals = ( { address = "198.51.100.12"; } ); },
  { vip = "192.0.2.100"; port = 81; reals = (
      { address = "198.51.100.11"; },
      { address = "198.51.100.11"; port = 81; } ); },
  { vip = "192.0.2.100"; port = 82; mode = "dr"; reals = ( { address = "203.0.113.5"; } ); },
  { vip = "192.0.2.100"; port = 83; reals = ( { address = "10.9.9.9"; } ); },
  { vip = "192.0.2.100"; port = 84; reals = (
      { address = "198.51.100.11"; port = 8084; mode = "dr"; } ); },
  { vip = "192.0.2.100"; port = 0; reals = ( { address = "198.51.100.11"; port = 80; } ); },
  { vip = "192.0.2.100"; port = 85; scheduler = "fastest"; },
  { vip = "192.0.2.100"; port = 86; check = { interval_ms = 100; timeout_ms = 100; }; },
  { vip = "192.0.2.100"; port = 87; check = { type = "http"; path = "health"; }; },
  { vip = "192.0.2.100"; port = 88; reals = ( { address = "192.0.2.2"; }, { address = "192.0.2.100"; } ); },
  { vip = "192.0.2.100"; port = 89; persistence_netmask = "255.0.255.0"; protocol = "sctp"; },
  { port = 90; },
  { vip = "192.0.2.100"; },
  { vip = "192.0.2.100"; port = 91; reals = ( { port = 8080; } ); }
); };
)"),
            (Strings{
                "t.conf:7: 'lb.maglev_table_size' = 100000 must be a prime (e.g. 65537, 131071, "
                "262139)",
                "t.conf:8: 'lb.services[0].vip' = \"192.0.2.99\" is not an address of this node: "
                "list it in a port's addresses or in a VRRP instance's virtual_ips",
                "t.conf:10: service TCP 192.0.2.100:80 is already defined on line 9",
                "t.conf:13: real server 198.51.100.11:81 is already listed on line 12",
                "t.conf:14: real server 203.0.113.5 is in direct-routing mode but not on a "
                "connected prefix of any port (DR rewrites only the MAC address: the real server "
                "must be on-link)",
                "t.conf:15: real server 10.9.9.9 is neither on a connected prefix of a port nor "
                "covered by a route in 'routing.routes'",
                "t.conf:17: real server 198.51.100.11 has port 8084 but dr mode cannot change the "
                "destination port (service port 84)",
                "t.conf:18: real server 198.51.100.11 of an all-port service (port 0) must have "
                "port 0",
                "t.conf:19: 'lb.services[8].scheduler' = \"fastest\" is not one of: rr, wrr, lc, "
                "wlc, sh, mh",
                "t.conf:20: 'lb.services[9].check.timeout_ms' = 100 must be less than "
                "'lb.services[9].check.interval_ms' = 100",
                "t.conf:21: 'lb.services[10].check.path' = \"health\" must start with / and "
                "contain no spaces or line breaks",
                // One message each: not also "neither on a connected prefix ... nor routed".
                "t.conf:22: real server 192.0.2.2 is one of this node's own addresses",
                "t.conf:22: real server 192.0.2.100 is one of this node's own addresses",
                // Same line: in the order the parser reads the keys.
                "t.conf:23: 'lb.services[12].protocol' = \"sctp\" is not one of: tcp, udp",
                "t.conf:23: 'lb.services[12].persistence_netmask' = \"255.0.255.0\" is not a "
                "netmask (e.g. 255.255.255.0)",
                "t.conf:24: missing required key 'lb.services[13].vip'",
                "t.conf:25: missing required key 'lb.services[14].port' (0: every port)",
                "t.conf:26: missing required key 'lb.services[15].reals[0].address'",
            }));
  // Only valid services reach the model: a failed real server fails its service's load too.
  EXPECT_EQ(errors(std::string(kLbBase) + R"(lb = { services = (
  { vip = "192.0.2.100"; port = 80; scheduler = "wrr"; reals = ( { address = "198.51.100.11"; weight = 65536; } ); }
); connections = 1000; maglev_table_size = 1048583; timeouts = { tcp = 0; }; };
)"),
            (Strings{
                "t.conf:7: 'lb.services[0].reals[0].weight' = 65536 is out of range 0..65535",
                "t.conf:8: 'lb.connections' = 1000 is out of range 1024..67108864",
                "t.conf:8: 'lb.maglev_table_size' = 1048583 is out of range 65537..1048573",
                "t.conf:8: 'lb.timeouts.tcp' = 0 is out of range 1..31536000",
            }));
}

TEST(ConfigLb, TapNames) {
  EXPECT_EQ(errors(R"(ports = (
  { name = "front0"; device = "net_ring0"; tap = "averyveryverylongname"; },
  { name = "back0"; device = "net_ring1"; tap = "tdm0"; },
  { name = "mgmt0"; device = "net_ring2"; tap = "tdm0"; },
  { name = "x0"; device = "net_ring3"; tap = "tdm 1"; },
  { name = "y0"; device = "net_ring4"; tap = "0123456789abcde"; }
);
)"),
            (Strings{
                "t.conf:2: 'ports[0].tap' = \"averyveryverylongname\" is longer than a Linux "
                "interface name may be (15 characters)",
                "t.conf:4: TAP interface 'tdm0' is already used on line 3",
                "t.conf:5: 'ports[3].tap' = \"tdm 1\" may only contain A-Z a-z 0-9 . _ -",
            }));
}

TEST(ConfigLb, ReloadMayChangeServicesRoutesAndTimeouts) {
  const std::string running =
      std::string(kLbBase) +
      R"(routing = { routes = ( { to = "203.0.113.0/24"; via = "198.51.100.1"; } ); };
lb = { connections = 4096; services = (
  { vip = "192.0.2.100"; port = 80; reals = ( { address = "198.51.100.11"; } ); } ); };
)";
  const std::string next =
      std::string(kLbBase) +
      R"(routing = { icmp_errors_per_s = 10; routes = ( { to = "10.0.0.0/8"; via = "192.0.2.1"; } ); };
lb = { connections = 4096; maglev_table_size = 131071; timeouts = { tcp = 60; }; services = (
  { vip = "192.0.2.100"; port = 443; scheduler = "mh"; check = { type = "tcp"; };
    reals = ( { address = "198.51.100.12"; weight = 5; }, { address = "10.1.1.1"; } ); } ); };
)";
  EXPECT_EQ(conflicts(running, next), Strings{});
  EXPECT_EQ(conflicts(next, running), Strings{});
}

TEST(ConfigLb, ReloadRefusesTheTablesSizeTheSwitchesAndTaps) {
  const std::string running = std::string(kLbBase) + R"(routing = {};
lb = { connections = 4096; };
)";
  const std::string next = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; tap = "tdm-f"; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; tap = "tdm-b"; }
);
vrrp = { instances = ( { name = "VI_1"; port = "front0"; vrid = 51; virtual_ips = [ "192.0.2.100" ]; } ); };
routing = { forward = false; };
lb = { connections = 8192; enabled = false; };
)";
  const std::string suffix = "' cannot change on reload (restart tandemd to apply)";
  EXPECT_EQ(conflicts(running, next), (Strings{
                                          "b.conf:2: 'ports[0].tap" + suffix,
                                          "b.conf:3: 'ports[1].tap" + suffix,
                                          "b.conf:6: 'routing.forward" + suffix,
                                          "b.conf:7: 'lb.enabled" + suffix,
                                          "b.conf:7: 'lb.connections" + suffix,
                                      }));
  // Removing the groups turns both off (and lb.connections back to its default): the groups
  // are absent from the new file, so no line.
  EXPECT_EQ(conflicts(running, kLbBase), (Strings{
                                             "b.conf: 'lb.enabled" + suffix,
                                             "b.conf: 'lb.connections" + suffix,
                                             "b.conf: 'routing.forward" + suffix,
                                         }));
}

// vrrp.instances[].track_services names a service of lb (parsed after vrrp: checked at the end).
TEST(ConfigLb, TrackedServicesMustBeNamedServices) {
  const std::string vrrp_tracking = R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back0"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
vrrp = { instances = ( { name = "VI_1"; port = "front0"; vrid = 51;
  virtual_ips = [ "192.0.2.100" ];
  track_services = ( { service = "web"; min_healthy = 2; weight = -40; } ); } ); };
)";
  const std::string lb_web = R"(lb = { services = ( { name = "web"; vip = "192.0.2.100"; port = 80;
  reals = ( { address = "198.51.100.11"; }, { address = "198.51.100.12"; } ); } ); };
)";
  const Config c = load_ok(vrrp_tracking + lb_web);
  ASSERT_EQ(c.vrrp.instances[0].track_services.size(), 1u);
  const VrrpTrackService& t = c.vrrp.instances[0].track_services[0];
  EXPECT_EQ(t.service, "web");
  EXPECT_EQ(t.min_healthy, 2u);
  EXPECT_EQ(t.weight, -40);
  EXPECT_EQ(t.line, 7);

  std::string misnamed = lb_web;
  misnamed.replace(misnamed.find("\"web\""), 5, "\"web1\"");
  EXPECT_EQ(errors(vrrp_tracking + misnamed),
            Strings{"t.conf:7: instance 'VI_1' tracks service 'web', which is no named service "
                    "in 'lb.services' (did you mean 'web1'?)"});
}

// ------------------------------------------------------------------------------------- sync

TEST(ConfigSync, ReadsEveryFieldAndDefaults) {
  const Config off = load_ok(kOnePort);
  EXPECT_FALSE(off.sync.enabled);

  const Config d = load_ok(std::string(kOnePort) + R"(sync = {
  address = "203.0.113.1"; peer = "203.0.113.2"; key = "0123456789abcdef";
};
)");
  EXPECT_TRUE(d.sync.enabled);
  EXPECT_EQ(d.sync.line, 2);
  EXPECT_EQ(d.sync.address, ip("203.0.113.1"));
  EXPECT_EQ(d.sync.peer, ip("203.0.113.2"));
  EXPECT_EQ(d.sync.port, 9470);
  EXPECT_EQ(d.sync.dhcp, SyncMode::kStrict);
  EXPECT_TRUE(d.sync.connections);
  EXPECT_EQ(d.sync.heartbeat_ms, 100u);
  EXPECT_EQ(d.sync.dead_ms, 500u);
  EXPECT_EQ(d.sync.resync_wait_ms, 1000u);
  EXPECT_EQ(d.sync.connection_refresh_s, 60u);

  const Config f = load_ok(std::string(kOnePort) + R"(sync = {
  address = "203.0.113.1"; peer = "203.0.113.2"; port = 7000; interface = "sync0";
  key = "0123456789abcdef0123"; dhcp = "async"; connections = false; heartbeat_ms = 50;
  dead_ms = 200; connection_refresh_s = 30; resync_wait_ms = 0; config_include = "shared.conf";
};
)");
  EXPECT_EQ(f.sync.port, 7000);
  EXPECT_EQ(f.sync.interface, "sync0");
  EXPECT_EQ(f.sync.key, "0123456789abcdef0123");
  EXPECT_EQ(f.sync.dhcp, SyncMode::kAsync);
  EXPECT_FALSE(f.sync.connections);
  EXPECT_EQ(f.sync.heartbeat_ms, 50u);
  EXPECT_EQ(f.sync.dead_ms, 200u);
  EXPECT_EQ(f.sync.connection_refresh_s, 30u);
  EXPECT_EQ(f.sync.resync_wait_ms, 0u);
  EXPECT_EQ(f.sync.config_include, "shared.conf");
}

TEST(ConfigSync, ErrorsNameTheLine) {
  EXPECT_EQ(errors_after_port("sync = { peer = \"203.0.113.2\"; key = \"0123456789abcdef\"; };\n"),
            (Strings{"t.conf:2: missing required key 'sync.address'"}));
  EXPECT_EQ(
      errors_after_port("sync = {\n address = \"203.0.113.1\";\n peer = \"203.0.113.2\";\n};\n"),
      (Strings{"t.conf:2: missing required key 'sync.key' (or 'sync.key_file'): the sync "
               "link is authenticated"}));
  EXPECT_EQ(errors_after_port("sync = {\n address = \"203.0.113.1\";\n peer = \"203.0.113.2\";\n"
                              " key = \"short\";\n};\n"),
            (Strings{"t.conf:5: 'sync.key' is too short (5 bytes): use at least 16 random bytes"}));
  EXPECT_EQ(errors_after_port("sync = {\n address = \"203.0.113.1\";\n peer = \"203.0.113.1\";\n"
                              " key = \"0123456789abcdef\";\n};\n"),
            (Strings{"t.conf:4: 'sync.peer' must differ from 'sync.address'"}));
  EXPECT_EQ(errors_after_port("sync = {\n address = \"203.0.113.1\";\n peer = \"203.0.113.2\";\n"
                              " key = \"0123456789abcdef\";\n heartbeat_ms = 100;\n"
                              " dead_ms = 200;\n};\n"),
            (Strings{"t.conf:7: 'sync.dead_ms' (200) must be at least 3 × 'sync.heartbeat_ms' "
                     "(100)"}));
  EXPECT_EQ(errors_after_port("sync = {\n address = \"203.0.113.1\";\n peer = \"203.0.113.2\";\n"
                              " key = \"0123456789abcdef\";\n dhcp = \"sometimes\";\n};\n"),
            (Strings{"t.conf:6: 'sync.dhcp' = \"sometimes\" is not one of: strict, async"}));
  EXPECT_EQ(errors_after_port("sync = {\n address = \"203.0.113.1\";\n peer = \"203.0.113.2\";\n"
                              " key_file = \"/nonexistent/tandem.key\";\n};\n"),
            (Strings{"t.conf:5: 'sync.key_file' = \"/nonexistent/tandem.key\" cannot be read"}));
}

TEST(ConfigSync, ChangesNeedARestart) {
  const std::string base = std::string(kOnePort) +
                           "sync = { address = \"203.0.113.1\"; peer = \"203.0.113.2\"; "
                           "key = \"0123456789abcdef\"; ";
  const Config a = load_ok(base + "};\n");
  const Config b = load_ok(base + "dhcp = \"async\"; heartbeat_ms = 50; dead_ms = 150; };\n");
  EXPECT_TRUE(reload_conflicts(a, b).empty()) << "modes and timers apply on reload";
  const Config c = load_ok(std::string(kOnePort) +
                           "sync = { address = \"203.0.113.1\"; peer = \"203.0.113.6\"; "
                           "key = \"0123456789abcdef\"; };\n");
  ASSERT_EQ(reload_conflicts(a, c).size(), 1u);
}

}  // namespace
}  // namespace cfg
