// Unit tests for control/lb_admin.cpp: ipvsadm and `tandemctl lb` command parsing, the running
// service set (runtime edits, reload rule, ipvsadm's error wording), and the ipvsadm listing,
// connection, save and JSON reports. Expected listings were produced independently from
// ipvsadm's printf formats (print_title / print_service_entry / print_largenum / print_conn).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "config/model.h"
#include "control/lb_admin.h"

namespace ctl {
namespace {

using Args = std::vector<std::string>;
using Op = Command::Op;

uint32_t ip(const char* s) {
  return cfg::parse_ipv4(s).value();
}

Command ok(const Args& argv) {
  auto r = parse_ipvsadm(argv);
  if (auto* e = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << "parse_ipvsadm failed: " << *e;
    return {};
  }
  return std::get<Command>(r);
}

std::string err(const Args& argv) {
  auto r = parse_ipvsadm(argv);
  if (std::holds_alternative<Command>(r)) {
    ADD_FAILURE() << "parse_ipvsadm accepted what it should refuse";
    return {};
  }
  return std::get<std::string>(r);
}

Command lb_ok(const Args& argv) {
  auto r = parse_lb(argv);
  if (auto* e = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << "parse_lb failed: " << *e;
    return {};
  }
  return std::get<Command>(r);
}

std::string lb_err(const Args& argv) {
  auto r = parse_lb(argv);
  if (std::holds_alternative<Command>(r)) {
    ADD_FAILURE() << "parse_lb accepted what it should refuse";
    return {};
  }
  return std::get<std::string>(r);
}

// Applies `ipvsadm ARGS` and expects success.
void run(ServiceSet& s, const Args& argv) {
  EXPECT_EQ(s.apply(ok(argv)), "") << argv[0];
}

// The seed's LVS-NAT setup (seed 001): one round-robin TCP service, two masqueraded reals.
ServiceSet seed_set() {
  ServiceSet s;
  run(s, {"-A", "-t", "10.11.12.99:80", "-s", "rr"});
  run(s, {"-a", "-t", "10.11.12.99:80", "-r", "192.168.100.10:80", "-m"});
  run(s, {"-a", "-t", "10.11.12.99:80", "-r", "192.168.100.20:80", "-m"});
  return s;
}

lb::ServiceSpec spec(lb::Proto p, const char* vip, uint16_t port, lb::Sched sched,
                     std::vector<lb::RealServer> reals = {}) {
  lb::ServiceSpec s;
  s.key = {p, ip(vip), port};
  s.sched = sched;
  s.reals = std::move(reals);
  return s;
}

lb::RealServer real(const char* a, uint16_t port, lb::Fwd f = lb::Fwd::kNat, uint32_t w = 1) {
  return {ip(a), port, f, w};
}

// Services by key and their reals by address: the order-independent content of a set.
std::vector<lb::ServiceSpec> canonical(std::vector<lb::ServiceSpec> v) {
  auto key = [](const lb::ServiceKey& k) {
    return std::tuple(static_cast<int>(k.proto), k.vip, k.port);
  };
  std::sort(v.begin(), v.end(),
            [&](const auto& a, const auto& b) { return key(a.key) < key(b.key); });
  for (auto& s : v)
    std::sort(s.reals.begin(), s.reals.end(), [](const auto& a, const auto& b) {
      return std::tuple(a.ip, a.port) < std::tuple(b.ip, b.port);
    });
  return v;
}

// ---------------------------------------------------------------------------------------------
// The seed's commands

TEST(LbAdminSeed, CommandsParseAndApply) {
  const Command a = ok({"-A", "-t", "10.11.12.99:80", "-s", "rr"});
  EXPECT_EQ(a.op, Op::kAddService);
  EXPECT_EQ(a.svc.key, (lb::ServiceKey{lb::Proto::kTcp, ip("10.11.12.99"), 80}));
  EXPECT_EQ(a.svc.sched, lb::Sched::kRr);
  EXPECT_TRUE(a.has_sched);
  EXPECT_EQ(a.svc.persist_s, 0u);

  const Command r = ok({"-a", "-t", "10.11.12.99:80", "-r", "192.168.100.10:80", "-m"});
  EXPECT_EQ(r.op, Op::kAddReal);
  EXPECT_EQ(r.real, real("192.168.100.10", 80, lb::Fwd::kNat, 1));

  const ServiceSet s = seed_set();
  ASSERT_EQ(s.services().size(), 1u);
  EXPECT_EQ(s.services()[0].origin, Origin::kRuntime);
  EXPECT_EQ(s.services()[0].spec.reals,
            (std::vector<lb::RealServer>{real("192.168.100.10", 80), real("192.168.100.20", 80)}));
  EXPECT_EQ(s.generation(), 3u);
}

TEST(LbAdminSeed, ListNumericIsIpvsadmByteForByte) {
  const ServiceSet s = seed_set();
  const Command l = ok({"-L", "-n"});
  EXPECT_EQ(l.op, Op::kList);
  EXPECT_TRUE(l.list.numeric);
  EXPECT_FALSE(l.list.stats);
  // Real-server lines keep ipvsadm's trailing "%-10u" padding.
  EXPECT_EQ(format_ipvsadm_list(plain_views(s), l.list),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  10.11.12.99:80 rr\n"
            "  -> 192.168.100.10:80            Masq    1      0          0         \n"
            "  -> 192.168.100.20:80            Masq    1      0          0         \n");
}

TEST(LbAdminSeed, ListStatsWithSuffixesAndExact) {
  const ServiceSet s = seed_set();
  const Command l = ok({"-L", "-n", "--stats"});
  ASSERT_TRUE(l.list.stats);
  auto views = plain_views(s);
  views[0].c = {1234, 123456789, 5, 98765432109ULL, 123456789012345ULL};
  views[0].reals[0].c = {1000, 2000, 3000, 4000, 5000};
  EXPECT_EQ(format_ipvsadm_list(views, l.list),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
            "  -> RemoteAddress:Port\n"
            "TCP  10.11.12.99:80                   1234  123456K        5   98765M     123T\n"
            "  -> 192.168.100.10:80                1000     2000     3000     4000     5000\n"
            "  -> 192.168.100.20:80                   0        0        0        0        0\n");

  const Command x = ok({"-L", "-n", "--stats", "--exact"});
  ASSERT_TRUE(x.list.exact);
  const std::string exact = format_ipvsadm_list(views, x.list);
  EXPECT_NE(exact.find("TCP  10.11.12.99:80                   1234 123456789        5 "
                       "98765432109 123456789012345\n"),
            std::string::npos)
      << exact;
}

TEST(LbAdminSeed, DeleteService) {
  ServiceSet s = seed_set();
  const Command d = ok({"-D", "-t", "10.11.12.99:80"});
  EXPECT_EQ(d.op, Op::kDelService);
  EXPECT_EQ(s.apply(d), "");
  EXPECT_TRUE(s.services().empty());
  EXPECT_EQ(s.apply(d), "No such service");
  EXPECT_EQ(format_ipvsadm_list(plain_views(s), ok({"-Ln"}).list),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
}

// ---------------------------------------------------------------------------------------------
// ipvsadm grammar

TEST(LbAdminIpvsadm, Defaults) {
  const Command a = ok({"-A", "-t", "192.0.2.100:80"});
  EXPECT_EQ(a.svc.sched, lb::Sched::kWlc);
  EXPECT_FALSE(a.has_sched);
  EXPECT_EQ(a.svc.persist_mask, 0xffffffffu);

  // -a without -m/-g/-i is gatewaying (direct routing), weight 1, the service's port.
  const Command r = ok({"-a", "-t", "192.0.2.100:80", "-r", "198.51.100.11"});
  EXPECT_EQ(r.real, real("198.51.100.11", 80, lb::Fwd::kDr, 1));
  EXPECT_FALSE(r.has_fwd);
  EXPECT_FALSE(r.has_weight);

  // DR and TUN cannot change the port: ipvsadm forces the service's; NAT keeps the given one.
  EXPECT_EQ(ok({"-a", "-t", "192.0.2.100:80", "-r", "198.51.100.11:8080", "-i"}).real.port, 80);
  EXPECT_EQ(ok({"-a", "-t", "192.0.2.100:80", "-r", "198.51.100.11:8080", "-m"}).real.port, 8080);
  EXPECT_EQ(ok({"-a", "-t", "192.0.2.100:80", "-r", "198.51.100.11", "-m"}).real.port, 80);

  // -p alone is 300 s, with or without something after it.
  EXPECT_EQ(ok({"-A", "-t", "192.0.2.100:443", "-p"}).svc.persist_s, 300u);
  const Command p = ok({"-A", "-t", "192.0.2.100:443", "-p", "-s", "sh"});
  EXPECT_EQ(p.svc.persist_s, 300u);
  EXPECT_EQ(p.svc.sched, lb::Sched::kSh);
  EXPECT_TRUE(p.has_persist);
  EXPECT_EQ(ok({"-A", "-t", "192.0.2.100:443", "-p", "60"}).svc.persist_s, 60u);
  const Command m = ok({"-A", "-u", "192.0.2.53:53", "-p", "600", "-M", "255.255.255.0"});
  EXPECT_EQ(m.svc.key.proto, lb::Proto::kUdp);
  EXPECT_EQ(m.svc.persist_mask, ip("255.255.255.0"));

  // Port 0 (every port) needs persistence, as ipvsadm.
  EXPECT_EQ(ok({"-A", "-t", "192.0.2.100", "-p"}).svc.key.port, 0);

  // Bare ipvsadm lists.
  EXPECT_EQ(ok({}).op, Op::kList);
}

TEST(LbAdminIpvsadm, LongOptionsGroupedShortOptionsAttachedValues) {
  const Command a = ok({"--add-service", "--tcp-service", "192.0.2.100:80", "--scheduler=wrr",
                        "--persistent", "120", "--netmask", "255.255.0.0"});
  EXPECT_EQ(a.op, Op::kAddService);
  EXPECT_EQ(a.svc.sched, lb::Sched::kWrr);
  EXPECT_EQ(a.svc.persist_s, 120u);
  EXPECT_EQ(a.svc.persist_mask, ip("255.255.0.0"));

  const Command r = ok({"--add-server", "--udp-service", "192.0.2.53:53", "--real-server",
                        "198.51.100.1:53", "--masquerading", "--weight", "7"});
  EXPECT_EQ(r.op, Op::kAddReal);
  EXPECT_EQ(r.real, real("198.51.100.1", 53, lb::Fwd::kNat, 7));
  EXPECT_EQ(ok({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "--ipip"}).real.fwd,
            lb::Fwd::kTun);
  EXPECT_EQ(ok({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "--gatewaying"}).real.fwd,
            lb::Fwd::kDr);

  const Command ln = ok({"-Ln"});
  EXPECT_EQ(ln.op, Op::kList);
  EXPECT_TRUE(ln.list.numeric);
  const Command lnc = ok({"-lnc"});
  EXPECT_TRUE(lnc.list.conns);
  EXPECT_EQ(ok({"-At", "192.0.2.1:80", "-srr"}).svc.sched, lb::Sched::kRr);
  EXPECT_EQ(ok({"-A", "-t192.0.2.1:80", "-p30"}).svc.persist_s, 30u);

  const Command rate = ok({"--list", "--numeric", "--rate", "-t", "192.0.2.1:80"});
  EXPECT_TRUE(rate.list.rate);
  EXPECT_TRUE(rate.list.has_key);
  EXPECT_EQ(rate.svc.key.port, 80);

  EXPECT_EQ(ok({"--clear"}).op, Op::kClear);
  EXPECT_EQ(ok({"-C"}).op, Op::kClear);
  EXPECT_EQ(ok({"--save", "-n"}).op, Op::kSave);
  EXPECT_EQ(ok({"-R"}).op, Op::kRestore);
  EXPECT_EQ(ok({"--zero"}).op, Op::kZero);
  const Command z = ok({"-Z", "-t", "192.0.2.1:80"});
  EXPECT_EQ(z.op, Op::kZero);
  EXPECT_TRUE(z.list.has_key);
  EXPECT_EQ(ok({"--edit-service", "-t", "192.0.2.1:80", "-s", "lc"}).op, Op::kEditService);
  EXPECT_EQ(ok({"--delete-service", "-t", "192.0.2.1:80"}).op, Op::kDelService);
  EXPECT_EQ(ok({"--edit-server", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-w", "0"}).op,
            Op::kEditReal);
  EXPECT_EQ(ok({"--delete-server", "-t", "192.0.2.1:80", "-r", "198.51.100.1"}).op, Op::kDelReal);
}

TEST(LbAdminIpvsadm, ErrorsUseIpvsadmWording) {
  // Unknown option and missing argument: named, then a short usage.
  std::string e = err({"-A", "-t", "192.0.2.1:80", "--frobnicate"});
  EXPECT_EQ(e.rfind("--frobnicate: unknown option\nUsage:\n", 0), 0u) << e;
  EXPECT_NE(e.find("ipvsadm -A|E -t|u service-address"), std::string::npos);
  EXPECT_EQ(err({"-A", "-Q"}).rfind("-Q: unknown option\n", 0), 0u);
  EXPECT_EQ(err({"-A", "-t"}).rfind("-t: missing argument\nUsage:", 0), 0u);
  EXPECT_EQ(err({"-a", "-t", "192.0.2.1:80", "--weight"}).rfind("--weight: missing argument", 0),
            0u);
  EXPECT_EQ(err({"-t", "192.0.2.1:80"}).rfind("no command specified\nUsage:", 0), 0u);
  EXPECT_EQ(err({"-h"}).rfind("Usage:", 0), 0u);

  // The commands/options table.
  EXPECT_EQ(err({"-A", "-s", "rr"}),
            "You need to supply the 'service-address' option for the 'add-service' command");
  EXPECT_EQ(err({"-a", "-t", "192.0.2.1:80"}),
            "You need to supply the 'real-server' option for the 'add-server' command");
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1:80", "-w", "3"}),
            "Illegal 'weight' option with the 'add-service' command");
  EXPECT_EQ(err({"-d", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-m"}),
            "Illegal 'forwarding-method' option with the 'delete-server' command");
  EXPECT_EQ(err({"-C", "-n"}), "Illegal 'numeric' option with the 'flush' command");
  EXPECT_EQ(err({"-L", "-c", "-t", "192.0.2.1:80"}),
            "The option 'service-address' conflicts with the 'connection' option in the 'list' "
            "command");
  EXPECT_EQ(err({"-L", "-c", "--stats"}), "options conflicts in the list command");
  EXPECT_EQ(err({"-A", "-D", "-t", "192.0.2.1:80"}), "multiple commands specified");
  EXPECT_EQ(err({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-m", "-g"}),
            "multiple 'forwarding-method' options specified");
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1:80", "extra"}), "unexpected argument extra");

  // Values.
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1"}), "Zero port specified for non-persistent service");
  EXPECT_EQ(err({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-w", "65536"}),
            "illegal weight specified");
  EXPECT_EQ(err({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-w", "-1"}),
            "illegal weight specified");
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1:80", "-p", "0"}), "invalid timeout value `0' specified");
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1:80", "-p", "2678401"}),
            "invalid timeout value `2678401' specified");
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1:80", "-p", "-M", "255.0.0.x"}),
            "illegal virtual server persistent mask specified");
  EXPECT_EQ(err({"-A", "-t", "192.0.2.1:80", "-s", "dh"}).rfind("Scheduler not found", 0), 0u);

  // Addresses: IPv4 literals only, no name resolution, a clear reason.
  e = err({"-A", "-t", "10.11.12.300:80"});
  EXPECT_EQ(e.rfind("illegal virtual server address[:port] specified", 0), 0u) << e;
  e = err({"-A", "-t", "www.example.com:80"});
  EXPECT_EQ(e.rfind("illegal virtual server address[:port] specified", 0), 0u) << e;
  EXPECT_NE(e.find("host names are not resolved"), std::string::npos) << e;
  EXPECT_NE(err({"-A", "-t", "[2001:db8::1]:80"}).find("IPv6"), std::string::npos);
  EXPECT_NE(err({"-A", "-t", "192.0.2.1:70000"}).find("bad port"), std::string::npos);
  EXPECT_NE(err({"-A", "-t", "192.0.2.1:"}).find("bad port"), std::string::npos);
  EXPECT_EQ(err({"-A", "-t", "8080"}).rfind("illegal virtual server address", 0), 0u);
  e = err({"-a", "-t", "192.0.2.1:80", "-r", "backend1"});
  EXPECT_EQ(e.rfind("illegal real server address[:port] specified", 0), 0u) << e;

  // Known ipvsadm options tandem does not do say so.
  EXPECT_NE(err({"-A", "-f", "1"}).find("not supported"), std::string::npos);
  EXPECT_NE(err({"--start-daemon", "master"}).find("not supported"), std::string::npos);
  EXPECT_NE(
      err({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-x", "10"}).find("not supported"),
      std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The service set

TEST(LbAdminSet, ApplyErrorsUseKernelWordingAndChangeNothing) {
  ServiceSet s = seed_set();
  const auto before = s.services();
  const uint64_t gen = s.generation();
  EXPECT_EQ(s.apply(ok({"-A", "-t", "10.11.12.99:80", "-s", "wlc"})), "Service already exists");
  EXPECT_EQ(s.apply(ok({"-a", "-t", "10.11.12.99:80", "-r", "192.168.100.10:80", "-m"})),
            "Destination already exists");
  EXPECT_EQ(s.apply(ok({"-E", "-t", "10.11.12.98:80", "-s", "rr"})), "No such service");
  EXPECT_EQ(s.apply(ok({"-D", "-u", "10.11.12.99:80"})), "No such service");
  EXPECT_EQ(s.apply(ok({"-a", "-t", "10.11.12.99:81", "-r", "192.168.100.10", "-m"})),
            "Service not defined");
  EXPECT_EQ(s.apply(ok({"-e", "-t", "10.11.12.99:80", "-r", "192.168.100.30:80", "-w", "2"})),
            "No such destination");
  EXPECT_EQ(s.apply(ok({"-d", "-t", "10.11.12.99:80", "-r", "192.168.100.30:80"})),
            "No such destination");
  EXPECT_EQ(s.apply(ok({"-d", "-t", "10.11.12.98:80", "-r", "192.168.100.10:80"})),
            "Service not defined");
  EXPECT_EQ(s.apply(ok({"-L", "-t", "10.11.12.98:80"})), "No such service");
  EXPECT_EQ(s.apply(ok({"-Z", "-t", "10.11.12.98:80"})), "No such service");
  EXPECT_EQ(s.services(), before);
  EXPECT_EQ(s.generation(), gen);
  // Read-only commands succeed and change nothing.
  EXPECT_EQ(s.apply(ok({"-L", "-n"})), "");
  EXPECT_EQ(s.apply(ok({"-Z"})), "");
  EXPECT_EQ(s.apply(ok({"-S", "-n"})), "");
  EXPECT_EQ(s.generation(), gen);
}

TEST(LbAdminSet, LimitsAnswerMemoryAllocationProblem) {
  ServiceSet s(ServiceSet::Limits{2, 1});
  run(s, {"-A", "-t", "192.0.2.1:80"});
  run(s, {"-A", "-t", "192.0.2.2:80"});
  EXPECT_EQ(s.apply(ok({"-A", "-t", "192.0.2.3:80"})), "Memory allocation problem");
  run(s, {"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1"});
  EXPECT_EQ(s.apply(ok({"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.2"})),
            "Memory allocation problem");
  EXPECT_EQ(s.services().size(), 2u);
}

TEST(LbAdminSet, EditKeepsWhatItDoesNotName) {
  ServiceSet s = seed_set();
  run(s, {"-E", "-t", "10.11.12.99:80", "-p", "60", "-M", "255.255.255.0"});
  const lb::ServiceSpec* sp = &s.services()[0].spec;
  EXPECT_EQ(sp->sched, lb::Sched::kRr);  // ipvsadm would reset it to wlc
  EXPECT_EQ(sp->persist_s, 60u);
  EXPECT_EQ(sp->persist_mask, ip("255.255.255.0"));
  EXPECT_EQ(sp->reals.size(), 2u);

  run(s, {"-E", "-t", "10.11.12.99:80", "-s", "wlc"});
  sp = &s.services()[0].spec;
  EXPECT_EQ(sp->sched, lb::Sched::kWlc);
  EXPECT_EQ(sp->persist_s, 60u);  // ipvsadm would drop persistence

  // -e -w: the forwarding method stays Masq (ipvsadm would reset it to Route); weight 0 drains.
  run(s, {"-e", "-t", "10.11.12.99:80", "-r", "192.168.100.10:80", "-w", "0"});
  EXPECT_EQ(s.services()[0].spec.reals[0], real("192.168.100.10", 80, lb::Fwd::kNat, 0));
  run(s, {"-e", "-t", "10.11.12.99:80", "-r", "192.168.100.20:80", "-g"});
  EXPECT_EQ(s.services()[0].spec.reals[1], real("192.168.100.20", 80, lb::Fwd::kDr, 1));

  const std::string l = format_ipvsadm_list(plain_views(s), ok({"-L", "-n"}).list);
  EXPECT_NE(l.find("TCP  10.11.12.99:80 wlc persistent 60 mask 255.255.255.0\n"), std::string::npos)
      << l;
  EXPECT_NE(l.find("  -> 192.168.100.10:80            Masq    0      0          0         \n"),
            std::string::npos)
      << l;
  EXPECT_NE(l.find("  -> 192.168.100.20:80            Route   1      0          0         \n"),
            std::string::npos)
      << l;

  // Persistence off through the native grammar; a port-0 service must keep it.
  EXPECT_EQ(s.apply(lb_ok({"edit-service", "tcp", "10.11.12.99:80", "--persist", "0"})), "");
  EXPECT_EQ(s.services()[0].spec.persist_s, 0u);
  run(s, {"-A", "-t", "10.11.12.99:0", "-p"});
  EXPECT_EQ(s.apply(lb_ok({"edit-service", "tcp", "10.11.12.99:0", "--persist", "0"})),
            "Zero port specified for non-persistent service");
}

TEST(LbAdminSet, GenerationBumpsOnChangesOnly) {
  ServiceSet s;
  EXPECT_EQ(s.generation(), 0u);
  run(s, {"-A", "-t", "192.0.2.1:80", "-s", "rr"});
  EXPECT_EQ(s.generation(), 1u);
  run(s, {"-E", "-t", "192.0.2.1:80", "-s", "rr"});  // same value: nothing to publish
  EXPECT_EQ(s.generation(), 1u);
  run(s, {"-a", "-t", "192.0.2.1:80", "-r", "198.51.100.1", "-m"});
  EXPECT_EQ(s.generation(), 2u);
  run(s, {"-C"});
  EXPECT_EQ(s.generation(), 3u);
  EXPECT_TRUE(s.services().empty());
  run(s, {"-C"});
  EXPECT_EQ(s.generation(), 3u);
}

TEST(LbAdminSet, ReloadReplacesConfigServicesKeepsRuntimeOnes) {
  ServiceSet s;
  const auto web = spec(lb::Proto::kTcp, "192.0.2.10", 80, lb::Sched::kRr,
                        {real("198.51.100.1", 80), real("198.51.100.2", 80)});
  const auto dns = spec(lb::Proto::kUdp, "192.0.2.53", 53, lb::Sched::kSh,
                        {real("198.51.100.53", 53, lb::Fwd::kDr)});
  s.load_config({web, dns});
  ASSERT_EQ(s.services().size(), 2u);
  EXPECT_EQ(s.services()[0].origin, Origin::kConfig);
  const uint64_t g1 = s.generation();
  EXPECT_EQ(g1, 1u);

  // Runtime: one new service, an edit to a config one, a runtime service the next file defines.
  run(s, {"-A", "-t", "192.0.2.20:443", "-s", "wlc"});
  run(s, {"-a", "-t", "192.0.2.20:443", "-r", "198.51.100.9:443", "-m"});
  run(s, {"-A", "-t", "192.0.2.30:25"});
  run(s, {"-e", "-t", "192.0.2.10:80", "-r", "198.51.100.1:80", "-w", "9"});
  EXPECT_EQ(s.services()[2].origin, Origin::kRuntime);

  // The new file: web changed, dns dropped, mail (192.0.2.30:25) now from the file.
  auto web2 = web;
  web2.sched = lb::Sched::kMh;
  const auto mail =
      spec(lb::Proto::kTcp, "192.0.2.30", 25, lb::Sched::kLc, {real("198.51.100.25", 25)});
  s.load_config({web2, mail});
  const auto& v = s.services();
  ASSERT_EQ(v.size(), 3u);
  // web: the file's version in its old place (the runtime weight change is gone).
  EXPECT_EQ(v[0].spec, web2);
  EXPECT_EQ(v[0].origin, Origin::kConfig);
  // runtime-only service kept as it was.
  EXPECT_EQ(v[1].spec.key.vip, ip("192.0.2.20"));
  EXPECT_EQ(v[1].origin, Origin::kRuntime);
  EXPECT_EQ(v[1].spec.reals.size(), 1u);
  // the runtime service the file now defines: replaced by the file's, now config-owned.
  EXPECT_EQ(v[2].spec, mail);
  EXPECT_EQ(v[2].origin, Origin::kConfig);
  EXPECT_GT(s.generation(), g1);

  // Same file again: nothing changes. A config service deleted at runtime comes back.
  const uint64_t g2 = s.generation();
  s.load_config({web2, mail});
  EXPECT_EQ(s.generation(), g2);
  run(s, {"-D", "-t", "192.0.2.10:80"});
  s.load_config({web2, mail});
  ASSERT_EQ(s.services().size(), 3u);
  EXPECT_EQ(s.services()[2].spec, web2);  // re-added at the end
}

// ---------------------------------------------------------------------------------------------
// Save and restore

TEST(LbAdminSave, FormatAndRoundTrip) {
  ServiceSet s = seed_set();
  run(s, {"-A", "-u", "192.0.2.53:53", "-s", "sh", "-p", "600", "-M", "255.255.255.0"});
  run(s, {"-a", "-u", "192.0.2.53:53", "-r", "198.51.100.53"});  // -g by default
  run(s, {"-a", "-u", "192.0.2.53:53", "-r", "198.51.100.54", "-i", "-w", "0"});
  run(s, {"-A", "-t", "10.11.12.99:0", "-s", "wrr", "-p"});
  run(s, {"-a", "-t", "10.11.12.99:0", "-r", "192.168.100.10", "-g", "-w", "3"});
  run(s, {"-A", "-t", "10.11.12.7:8080", "-s", "mh"});

  const std::string saved = format_ipvsadm_save(plain_views(s));
  // Sorted by protocol, address, port, as ipvsadm -S.
  EXPECT_EQ(saved,
            "-A -t 10.11.12.7:8080 -s mh\n"
            "-A -t 10.11.12.99:0 -s wrr -p 300\n"
            "-a -t 10.11.12.99:0 -r 192.168.100.10:0 -g -w 3\n"
            "-A -t 10.11.12.99:80 -s rr\n"
            "-a -t 10.11.12.99:80 -r 192.168.100.10:80 -m -w 1\n"
            "-a -t 10.11.12.99:80 -r 192.168.100.20:80 -m -w 1\n"
            "-A -u 192.0.2.53:53 -s sh -p 600 -M 255.255.255.0\n"
            "-a -u 192.0.2.53:53 -r 198.51.100.53:53 -g -w 1\n"
            "-a -u 192.0.2.53:53 -r 198.51.100.54:53 -i -w 0\n");

  auto parsed = parse_ipvsadm_restore(saved);
  ASSERT_TRUE(std::holds_alternative<std::vector<Command>>(parsed))
      << std::get<std::string>(parsed);
  Command restore = ok({"-R"});
  restore.restore = std::get<std::vector<Command>>(parsed);
  EXPECT_EQ(restore.restore.size(), 9u);
  EXPECT_EQ(restore.restore[2].line, 3);
  ServiceSet back;
  EXPECT_EQ(back.apply(restore), "");
  EXPECT_EQ(back.generation(), 1u);  // one publication for the whole restore
  EXPECT_EQ(canonical(back.specs()), canonical(s.specs()));
  EXPECT_EQ(format_ipvsadm_save(plain_views(back)), saved);
}

TEST(LbAdminSave, RestoreSkipsCommentsAndNamesBadLines) {
  // ipvsadm-save without -n writes port names; "ipvsadm" words are ignored like ipvsadm -R.
  const std::string text =
      "# saved by ipvsadm-save\n"
      "\n"
      "-A -t 10.11.12.99:http -s rr   # the web VIP\n"
      "ipvsadm -a -t 10.11.12.99:http -r 192.168.100.10:http -m -w 1\r\n"
      "   \t\n";
  auto ok_r = parse_ipvsadm_restore(text);
  ASSERT_TRUE(std::holds_alternative<std::vector<Command>>(ok_r)) << std::get<std::string>(ok_r);
  const auto& cmds = std::get<std::vector<Command>>(ok_r);
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0].svc.key.port, 80);
  EXPECT_EQ(cmds[1].line, 4);
  EXPECT_EQ(cmds[1].real, real("192.168.100.10", 80, lb::Fwd::kNat, 1));

  auto bad = parse_ipvsadm_restore(
      "-A -t 10.0.0.1:80 -s rr\n# comment\n\n-a -t 10.0.0.1:80 -r "
      "10.0.1.1 -w 99999\n");
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_EQ(std::get<std::string>(bad), "line 4: illegal weight specified");
  bad = parse_ipvsadm_restore("-A -t 10.0.0.1:80\n-L -n\n");
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_EQ(std::get<std::string>(bad).rfind("line 2: ", 0), 0u);
  bad = parse_ipvsadm_restore("-A -t 10.0.0.1:80 --bogus\n");
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_EQ(std::get<std::string>(bad), "line 1: --bogus: unknown option");  // no usage block

  // A line the set refuses: reported with its line, and nothing of the restore is kept.
  ServiceSet s = seed_set();
  const auto before = s.services();
  Command r = ok({"-R"});
  r.restore = std::get<std::vector<Command>>(
      parse_ipvsadm_restore("-A -t 10.0.0.2:80\n\n-A -t 10.11.12.99:80 -s rr\n"));
  EXPECT_EQ(s.apply(r), "line 3: Service already exists");
  EXPECT_EQ(s.services(), before);
}

// ---------------------------------------------------------------------------------------------
// Native grammar

TEST(LbAdminNative, Grammar) {
  const Command a = lb_ok({"add-service", "tcp", "192.0.2.100:80", "--sched", "rr", "--persist",
                           "300", "--netmask", "255.255.255.0"});
  EXPECT_EQ(a.op, Op::kAddService);
  EXPECT_EQ(a.svc.key, (lb::ServiceKey{lb::Proto::kTcp, ip("192.0.2.100"), 80}));
  EXPECT_EQ(a.svc.sched, lb::Sched::kRr);
  EXPECT_EQ(a.svc.persist_s, 300u);
  EXPECT_EQ(a.svc.persist_mask, ip("255.255.255.0"));
  EXPECT_EQ(lb_ok({"add-service", "udp", "192.0.2.53:53"}).svc.sched, lb::Sched::kWlc);

  // add-real defaults: nat, weight 1; a bare RIP takes the service's port.
  const Command r = lb_ok({"add-real", "tcp", "192.0.2.100:80", "198.51.100.11:8080"});
  EXPECT_EQ(r.op, Op::kAddReal);
  EXPECT_EQ(r.real, real("198.51.100.11", 8080, lb::Fwd::kNat, 1));
  EXPECT_EQ(lb_ok({"add-real", "tcp", "192.0.2.100:80", "198.51.100.11"}).real.port, 80);
  const Command dr = lb_ok(
      {"add-real", "tcp", "192.0.2.100:80", "198.51.100.12:80", "--mode=dr", "--weight", "0"});
  EXPECT_EQ(dr.real, real("198.51.100.12", 80, lb::Fwd::kDr, 0));

  const Command e =
      lb_ok({"edit-real", "tcp", "192.0.2.100:80", "198.51.100.11:8080", "--weight", "5"});
  EXPECT_EQ(e.op, Op::kEditReal);
  EXPECT_TRUE(e.has_weight);
  EXPECT_FALSE(e.has_fwd);
  const Command es = lb_ok({"edit-service", "tcp", "192.0.2.100:80", "--sched", "mh"});
  EXPECT_TRUE(es.has_sched);
  EXPECT_FALSE(es.has_persist);
  EXPECT_EQ(lb_ok({"del-real", "tcp", "192.0.2.100:80", "198.51.100.11:8080"}).op, Op::kDelReal);
  EXPECT_EQ(lb_ok({"del-service", "tcp", "192.0.2.100:80"}).op, Op::kDelService);
  EXPECT_EQ(lb_ok({"clear"}).op, Op::kClear);

  const Command l = lb_ok({"list", "--stats", "--json"});
  EXPECT_EQ(l.op, Op::kList);
  EXPECT_TRUE(l.list.stats);
  EXPECT_TRUE(l.list.json);
  EXPECT_FALSE(l.list.rate);
  EXPECT_TRUE(lb_ok({"list", "--rate"}).list.rate);

  // Applying native commands to the set.
  ServiceSet s;
  EXPECT_EQ(s.apply(a), "");
  EXPECT_EQ(s.apply(r), "");
  EXPECT_EQ(s.apply(dr), "");
  EXPECT_EQ(s.apply(e), "");
  EXPECT_EQ(s.services()[0].spec.reals[0], real("198.51.100.11", 8080, lb::Fwd::kNat, 5));
  EXPECT_EQ(s.apply(r), "Destination already exists");
}

TEST(LbAdminNative, Errors) {
  std::string e = lb_err({"frobnicate"});
  EXPECT_EQ(e.rfind("unknown lb command 'frobnicate'\nUsage:\n", 0), 0u) << e;
  EXPECT_EQ(lb_err({}).rfind("missing lb command\nUsage:", 0), 0u);
  EXPECT_EQ(lb_err({"add-service", "sctp", "192.0.2.1:80"}),
            "lb add-service: 'sctp' is not tcp or udp");
  EXPECT_EQ(lb_err({"add-service", "tcp"}), "lb add-service: expected tcp|udp VIP:PORT");
  EXPECT_EQ(lb_err({"add-service", "tcp", "192.0.2.1"}),
            "lb add-service: virtual service '192.0.2.1' needs a port (VIP:PORT)");
  EXPECT_NE(lb_err({"add-service", "tcp", "lb.example.com:80"}).find("host names are not resolved"),
            std::string::npos);
  EXPECT_EQ(lb_err({"add-service", "tcp", "192.0.2.1:80", "--sched", "dh"}),
            "lb add-service: unknown scheduler 'dh' (rr, wrr, lc, wlc, sh, mh)");
  EXPECT_EQ(lb_err({"add-service", "tcp", "192.0.2.1:80", "--weight", "3"}),
            "lb add-service: unknown option '--weight'");
  EXPECT_EQ(lb_err({"add-service", "tcp", "192.0.2.1:80", "--sched"}),
            "lb add-service: --sched needs a value");
  EXPECT_EQ(lb_err({"add-service", "tcp", "192.0.2.1:0"})
                .rfind("lb add-service: Zero port specified for non-persistent service", 0),
            0u);
  EXPECT_EQ(lb_err({"add-real", "tcp", "192.0.2.1:80", "198.51.100.1:80", "--mode", "fast"}),
            "lb add-real: unknown mode 'fast' (nat, dr, tun)");
  EXPECT_EQ(lb_err({"add-real", "tcp", "192.0.2.1:80", "198.51.100.1:80", "--weight", "65536"}),
            "lb add-real: --weight 65536: expected 0..65535");
  EXPECT_NE(lb_err({"add-real", "tcp", "192.0.2.1:80", "198.51.100.1:8080", "--mode", "dr"})
                .find("keeps the service's port"),
            std::string::npos);
  EXPECT_EQ(lb_err({"list", "--stats", "--rate"}),
            "lb list: --stats and --rate exclude each other");
  EXPECT_EQ(lb_err({"clear", "now"}), "lb clear: unexpected argument 'now'");
}

// ---------------------------------------------------------------------------------------------
// Other reports

TEST(LbAdminReport, RateLayout) {
  ServiceView v;
  v.spec = spec(lb::Proto::kUdp, "192.0.2.53", 53, lb::Sched::kSh);
  v.r = {10, 20, 30, 400000000, 50};
  RealView rv;
  rv.real = real("198.51.100.1", 53, lb::Fwd::kDr);
  rv.r = {1, 2, 3, 1500000000, 7};
  v.reals.push_back(rv);
  EXPECT_EQ(format_ipvsadm_list({v}, ok({"-L", "-n", "--rate"}).list),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
            "  -> RemoteAddress:Port\n"
            "UDP  192.0.2.53:53                      10       20       30  400000K       50\n"
            "  -> 198.51.100.1:53                     1        2        3    1500M        7\n");
}

TEST(LbAdminReport, ListSortsLikeIpvsadmAndHidesUnhealthyReals) {
  ServiceView udp, web_hi, web_lo;
  udp.spec = spec(lb::Proto::kUdp, "10.0.0.1", 53, lb::Sched::kRr);
  web_hi.spec = spec(lb::Proto::kTcp, "192.0.2.1", 80, lb::Sched::kRr);
  web_hi.spec.persist_s = 300;
  web_lo.spec = spec(lb::Proto::kTcp, "10.0.0.1", 443, lb::Sched::kLc);
  RealView a, b, down;
  a.real = real("198.51.100.20", 80);
  a.active = 12;
  a.inactive = 3;
  b.real = real("198.51.100.3", 80, lb::Fwd::kTun, 2);
  down.real = real("198.51.100.9", 80);
  down.healthy = false;
  web_hi.reals = {a, down, b};
  const std::vector<ServiceView> views = {udp, web_hi, web_lo};
  EXPECT_EQ(format_ipvsadm_list(views, ok({"-L", "-n"}).list),
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  10.0.0.1:443 lc\n"
            "TCP  192.0.2.1:80 rr persistent 300\n"
            "  -> 198.51.100.3:80              Tunnel  2      0          0         \n"
            "  -> 198.51.100.20:80             Masq    1      12         3         \n"
            "UDP  10.0.0.1:53 rr\n");
  // The unhealthy real stays in the save and the JSON.
  EXPECT_NE(format_ipvsadm_save(views).find("-r 198.51.100.9:80 -m -w 1\n"), std::string::npos);

  // -L -t: the one service, without the version line (ipvsadm's list_service).
  const Command one = ok({"-L", "-n", "-t", "10.0.0.1:443"});
  EXPECT_EQ(format_ipvsadm_list({web_lo}, one.list),
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  10.0.0.1:443 lc\n");
  // --nosort keeps the order given.
  EXPECT_EQ(format_ipvsadm_list(views, ok({"-L", "-n", "--nosort"}).list).find("UDP  10.0.0.1:53"),
            std::string("IP Virtual Server version 1.2.1 (size=4096)\n"
                        "Prot LocalAddress:Port Scheduler Flags\n"
                        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
                .size());
}

TEST(LbAdminReport, Connections) {
  ConnView t{lb::Proto::kTcp,
             ip("203.0.113.7"),
             52044,
             ip("10.11.12.99"),
             80,
             ip("192.168.100.10"),
             80,
             "ESTABLISHED",
             898};
  ConnView u{lb::Proto::kUdp,
             ip("203.0.113.8"),
             5353,
             ip("192.0.2.53"),
             53,
             ip("198.51.100.1"),
             53,
             "UDP",
             5};
  EXPECT_EQ(format_ipvsadm_conns({t, u}),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination\n"
            "TCP 14:58  ESTABLISHED 203.0.113.7:52044  10.11.12.99:80     192.168.100.10:80\n"
            "UDP 00:05  UDP         203.0.113.8:5353   192.0.2.53:53      198.51.100.1:53\n");
  EXPECT_EQ(format_ipvsadm_conns({}),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination\n");
}

TEST(LbAdminReport, Json) {
  auto views = plain_views(seed_set());
  views[0].c.conns = 42;
  views[0].r.in_bps = 1000;
  views[0].reals[1].healthy = false;
  views[0].reals[1].active = 4;
  const nlohmann::json j = to_json(views);
  ASSERT_EQ(j.at("services").size(), 1u);
  const auto& s = j.at("services")[0];
  EXPECT_EQ(s.at("key"), "TCP 10.11.12.99:80");
  EXPECT_EQ(s.at("protocol"), "tcp");
  EXPECT_EQ(s.at("vip"), "10.11.12.99");
  EXPECT_EQ(s.at("port"), 80);
  EXPECT_EQ(s.at("scheduler"), "rr");
  EXPECT_EQ(s.at("persistence_s"), 0);
  EXPECT_EQ(s.at("counters").at("conns"), 42);
  EXPECT_EQ(s.at("rates").at("in_bps"), 1000);
  ASSERT_EQ(s.at("reals").size(), 2u);
  const auto& r = s.at("reals")[1];
  EXPECT_EQ(r.at("address"), "192.168.100.20:80");
  EXPECT_EQ(r.at("mode"), "nat");
  EXPECT_EQ(r.at("weight"), 1);
  EXPECT_EQ(r.at("healthy"), false);
  EXPECT_EQ(r.at("active"), 4);
  EXPECT_EQ(r.at("inactive"), 0);
  EXPECT_TRUE(r.at("counters").contains("out_bytes"));
  EXPECT_TRUE(r.at("rates").contains("cps"));
  EXPECT_EQ(to_json({}).at("services").size(), 0u);
}

}  // namespace
}  // namespace ctl
