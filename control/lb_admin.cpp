#include "control/lb_admin.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <optional>
#include <string_view>

#include "config/model.h"

namespace ctl {
namespace {

constexpr uint32_t kDefaultPersistS = 300;       // ipvsadm's -p without a value
constexpr uint32_t kMaxTimeoutS = 86400U * 31U;  // ipvsadm's MAX_TIMEOUT: 31 days
constexpr uint32_t kMaxWeight = 65535;
constexpr uint32_t kAllOnes = 0xffffffffU;
// ipvsadm prints the kernel's IPVS version and connection-table size; scripts match the prefix.
constexpr const char* kVersionLine = "IP Virtual Server version 1.2.1 (size=4096)\n";

// ipvsadm/libipvs wording.
constexpr const char* kErrSvcExists = "Service already exists";
constexpr const char* kErrNoService = "No such service";
constexpr const char* kErrSvcNotDefined = "Service not defined";
constexpr const char* kErrDestExists = "Destination already exists";
constexpr const char* kErrNoDest = "No such destination";
constexpr const char* kErrNoMem = "Memory allocation problem";
constexpr const char* kErrZeroPort = "Zero port specified for non-persistent service";

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > 0) out.append(buf, std::min(static_cast<size_t>(n), sizeof(buf) - 1));
}

// ---------------------------------------------------------------------------------------------
// Addresses and numbers

// `ipvsadm-save` without -n writes port names (getservbyname); these are the ones an L4 load
// balancer's rules carry in practice. Anything else must be a number.
struct PortName {
  std::string_view name;
  uint16_t port;
};
constexpr PortName kPortNames[] = {
    {"ftp", 21},          {"ssh", 22},        {"telnet", 23},      {"smtp", 25},
    {"domain", 53},       {"http", 80},       {"www", 80},         {"pop3", 110},
    {"ntp", 123},         {"imap", 143},      {"imap2", 143},      {"snmp", 161},
    {"ldap", 389},        {"https", 443},     {"submission", 587}, {"ldaps", 636},
    {"imaps", 993},       {"pop3s", 995},     {"ms-sql-s", 1433},  {"mysql", 3306},
    {"postgresql", 5432}, {"http-alt", 8080}, {"webcache", 8080},
};

bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// Decimal digits only (no sign, no spaces), within [lo, hi].
std::optional<uint32_t> parse_number(std::string_view s, uint32_t lo, uint32_t hi) {
  if (!all_digits(s) || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char ch : s) v = v * 10 + static_cast<uint64_t>(ch - '0');
  if (v < lo || v > hi) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (auto n = parse_number(s, 0, 65535)) return static_cast<uint16_t>(*n);
  for (const PortName& p : kPortNames)
    if (p.name == s) return p.port;
  return std::nullopt;
}

struct Endpoint {
  uint32_t ip = 0;
  uint16_t port = 0;
  bool has_port = false;
};

// "A.B.C.D[:PORT]". Returns "" or why it is not one (appended to ipvsadm's message).
std::string parse_addr(std::string_view s, Endpoint& out) {
  if (s.empty()) return "empty address";
  if (s.front() == '[' || std::count(s.begin(), s.end(), ':') > 1) return "IPv6 is not supported";
  if (all_digits(s)) return "expected A.B.C.D[:PORT]";
  const size_t colon = s.rfind(':');
  const std::string_view addr = colon == std::string_view::npos ? s : s.substr(0, colon);
  const auto ip = cfg::parse_ipv4(std::string(addr));
  if (!ip) {
    const bool letters = std::any_of(addr.begin(), addr.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    });
    return letters ? "host names are not resolved: give an IPv4 address"
                   : "'" + std::string(addr) + "' is not an IPv4 address";
  }
  out.ip = *ip;
  out.port = 0;
  out.has_port = colon != std::string_view::npos;
  if (out.has_port) {
    const auto port = parse_port(s.substr(colon + 1));
    if (!port) return "bad port '" + std::string(s.substr(colon + 1)) + "' (0..65535)";
    out.port = *port;
  }
  return "";
}

std::string with_hint(const char* msg, const std::string& why) {
  return why.empty() ? std::string(msg) : std::string(msg) + " (" + why + ")";
}

std::string sched_list() {
  return "rr, wrr, lc, wlc, sh, mh";
}

// ---------------------------------------------------------------------------------------------
// ipvsadm argv

enum class ArgKind : uint8_t { kNone, kRequired, kOptional };

// Long-only options get tags outside the ASCII range of short ones.
enum : int {
  kTagStats = 256,
  kTagRate,
  kTagThresholds,
  kTagPersistentConn,
  kTagNoSort,
  kTagSort,
  kTagSet,
  kTagStartDaemon,
  kTagStopDaemon,
  kTagMcast,
  kTagSyncId,
  kTagTimeout,
  kTagDaemon,
};

struct OptDef {
  std::string_view long_name;  // empty: short only
  char short_name;             // 0: long only
  ArgKind arg;
  int tag;
};

constexpr OptDef kOpts[] = {
    {"add-service", 'A', ArgKind::kNone, 'A'},
    {"edit-service", 'E', ArgKind::kNone, 'E'},
    {"delete-service", 'D', ArgKind::kNone, 'D'},
    {"clear", 'C', ArgKind::kNone, 'C'},
    {"list", 'L', ArgKind::kNone, 'L'},
    {"", 'l', ArgKind::kNone, 'L'},
    {"zero", 'Z', ArgKind::kNone, 'Z'},
    {"add-server", 'a', ArgKind::kNone, 'a'},
    {"edit-server", 'e', ArgKind::kNone, 'e'},
    {"delete-server", 'd', ArgKind::kNone, 'd'},
    {"help", 'h', ArgKind::kNone, 'h'},
    {"version", 'v', ArgKind::kNone, 'v'},
    {"restore", 'R', ArgKind::kNone, 'R'},
    {"save", 'S', ArgKind::kNone, 'S'},
    {"tcp-service", 't', ArgKind::kRequired, 't'},
    {"udp-service", 'u', ArgKind::kRequired, 'u'},
    {"fwmark-service", 'f', ArgKind::kRequired, 'f'},
    {"scheduler", 's', ArgKind::kRequired, 's'},
    {"persistent", 'p', ArgKind::kOptional, 'p'},
    {"netmask", 'M', ArgKind::kRequired, 'M'},
    {"real-server", 'r', ArgKind::kRequired, 'r'},
    {"masquerading", 'm', ArgKind::kNone, 'm'},
    {"ipip", 'i', ArgKind::kNone, 'i'},
    {"gatewaying", 'g', ArgKind::kNone, 'g'},
    {"weight", 'w', ArgKind::kRequired, 'w'},
    {"u-threshold", 'x', ArgKind::kRequired, 'x'},
    {"l-threshold", 'y', ArgKind::kRequired, 'y'},
    {"numeric", 'n', ArgKind::kNone, 'n'},
    {"connection", 'c', ArgKind::kNone, 'c'},
    {"exact", 'X', ArgKind::kNone, 'X'},
    {"ipv6", '6', ArgKind::kNone, '6'},
    {"ops", 'o', ArgKind::kNone, 'o'},
    {"stats", 0, ArgKind::kNone, kTagStats},
    {"rate", 0, ArgKind::kNone, kTagRate},
    {"thresholds", 0, ArgKind::kNone, kTagThresholds},
    {"persistent-conn", 0, ArgKind::kNone, kTagPersistentConn},
    {"nosort", 0, ArgKind::kNone, kTagNoSort},
    {"sort", 0, ArgKind::kNone, kTagSort},
    {"set", 0, ArgKind::kNone, kTagSet},
    {"start-daemon", 0, ArgKind::kRequired, kTagStartDaemon},
    {"stop-daemon", 0, ArgKind::kRequired, kTagStopDaemon},
    {"mcast-interface", 0, ArgKind::kRequired, kTagMcast},
    {"syncid", 0, ArgKind::kRequired, kTagSyncId},
    {"timeout", 0, ArgKind::kNone, kTagTimeout},
    {"daemon", 0, ArgKind::kNone, kTagDaemon},
};

struct Opt {
  const OptDef* def;
  std::string shown;  // as typed ("-t", "--tcp-service"), for messages
  std::optional<std::string> value;
};

// ipvsadm's commands, in the order of its commands/options table.
enum Cmd : int {
  kCmdNone = -1,
  kCmdAdd,
  kCmdEdit,
  kCmdDel,
  kCmdFlush,
  kCmdList,
  kCmdAddDest,
  kCmdDelDest,
  kCmdEditDest,
  kCmdRestore,
  kCmdSave,
  kCmdZero,
  kCmdCount,
};
constexpr const char* kCmdNames[kCmdCount] = {
    "add-service",   "edit-service", "delete-service", "flush", "list", "add-server",
    "delete-server", "edit-server",  "restore",        "save",  "zero",
};

// The options the table checks, in ipvsadm's bit order (its messages name the first offender).
enum OptBit : int {
  kOptNumeric,
  kOptConnection,
  kOptService,
  kOptScheduler,
  kOptPersistent,
  kOptNetmask,
  kOptServer,
  kOptForward,
  kOptWeight,
  kOptStats,
  kOptRate,
  kOptNoSort,
  kOptExact,
  kOptCount,
};
constexpr const char* kOptNames[kOptCount] = {
    "numeric",     "connection",        "service-address", "scheduler", "persistent", "netmask",
    "real-server", "forwarding-method", "weight",          "stats",     "rate",       "nosort",
    "exact",
};
// One row per command, one column per option in kOptNames order: '+' compulsory, 'x' illegal,
// '1' at most one of the '1's, ' ' optional.
constexpr const char* kCmdVsOpt[kCmdCount] = {
    /* add    */ "xx+   xxxxxxx",
    /* edit   */ "xx+   xxxxxxx",
    /* del    */ "xx+xxxxxxxxxx",
    /* flush  */ "xxxxxxxxxxxxx",
    /* list   */ " 11xxxxxx    ",
    /* adddst */ "xx+xxx+  xxxx",
    /* deldst */ "xx+xxx+xxxxxx",
    /* editdst*/ "xx+xxx+  xxxx",
    /* restore*/ "xxxxxxxxxxxxx",
    /* save   */ " xxxxxxxxxxxx",
    /* zero   */ "xx xxxxxxxxxx",
};

const OptDef* find_long(std::string_view name) {
  for (const OptDef& d : kOpts)
    if (!d.long_name.empty() && d.long_name == name) return &d;
  return nullptr;
}

const OptDef* find_short(char ch) {
  for (const OptDef& d : kOpts)
    if (d.short_name == ch) return &d;
  return nullptr;
}

struct ParseError {
  std::string message;
  bool usage = false;  // append the short usage
};

// popt-like splitting: "--name", "--name=value", "--name value", "-abc", "-svalue", "-s value";
// an optional value is taken from the next word only when that word does not start with '-'.
std::variant<std::vector<Opt>, ParseError> tokenize(const std::vector<std::string>& argv) {
  std::vector<Opt> out;
  auto take_value = [&](size_t& i, const OptDef& d, Opt& o) -> bool {
    if (d.arg == ArgKind::kRequired) {
      if (i + 1 >= argv.size()) return false;
      o.value = argv[++i];
    } else if (d.arg == ArgKind::kOptional) {
      if (i + 1 < argv.size() && !argv[i + 1].empty() && argv[i + 1][0] != '-') o.value = argv[++i];
    }
    return true;
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& tok = argv[i];
    if (tok.size() > 2 && tok[0] == '-' && tok[1] == '-') {
      const size_t eq = tok.find('=');
      const std::string name = tok.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const OptDef* d = find_long(name);
      if (d == nullptr) return ParseError{"--" + name + ": unknown option", true};
      Opt o{d, "--" + name, std::nullopt};
      if (eq != std::string::npos) {
        if (d->arg == ArgKind::kNone)
          return ParseError{o.shown + ": option does not take an argument", true};
        o.value = tok.substr(eq + 1);
      } else if (!take_value(i, *d, o)) {
        return ParseError{o.shown + ": missing argument", true};
      }
      out.push_back(std::move(o));
    } else if (tok.size() > 1 && tok[0] == '-' && tok[1] != '-') {
      for (size_t j = 1; j < tok.size(); ++j) {
        const OptDef* d = find_short(tok[j]);
        if (d == nullptr) return ParseError{std::string("-") + tok[j] + ": unknown option", true};
        Opt o{d, std::string("-") + tok[j], std::nullopt};
        if (d->arg != ArgKind::kNone) {
          if (j + 1 < tok.size()) {
            o.value = tok.substr(j + 1);
          } else if (!take_value(i, *d, o)) {
            return ParseError{o.shown + ": missing argument", true};
          }
          out.push_back(std::move(o));
          break;
        }
        out.push_back(std::move(o));
      }
    } else {
      return ParseError{"unexpected argument " + tok, false};
    }
  }
  return out;
}

std::string unsupported(const Opt& o, const char* why) {
  return "option '" + o.shown + "' is not supported by tandem (" + why + ")";
}

std::variant<Command, ParseError> parse_ipvsadm_impl(const std::vector<std::string>& argv) {
  Command c;
  if (argv.empty()) {  // bare `ipvsadm` lists the table
    c.op = Command::Op::kList;
    return c;
  }
  auto toks = tokenize(argv);
  if (auto* e = std::get_if<ParseError>(&toks)) return *e;

  int cmd = kCmdNone;
  unsigned opts = 0;
  Endpoint svc_ep, rip_ep;
  auto set_command = [&](int next) -> std::optional<ParseError> {
    if (cmd != kCmdNone) return ParseError{"multiple commands specified", false};
    cmd = next;
    return std::nullopt;
  };
  auto set_option = [&](int bit) -> std::optional<ParseError> {
    if (opts & (1U << bit))
      return ParseError{std::string("multiple '") + kOptNames[bit] + "' options specified", false};
    opts |= 1U << bit;
    return std::nullopt;
  };

  for (const Opt& o : std::get<std::vector<Opt>>(toks)) {
    std::optional<ParseError> err;
    const std::string v = o.value.value_or("");
    switch (o.def->tag) {
      case 'A':
        err = set_command(kCmdAdd);
        break;
      case 'E':
        err = set_command(kCmdEdit);
        break;
      case 'D':
        err = set_command(kCmdDel);
        break;
      case 'C':
        err = set_command(kCmdFlush);
        break;
      case 'L':
        err = set_command(kCmdList);
        break;
      case 'Z':
        err = set_command(kCmdZero);
        break;
      case 'a':
        err = set_command(kCmdAddDest);
        break;
      case 'e':
        err = set_command(kCmdEditDest);
        break;
      case 'd':
        err = set_command(kCmdDelDest);
        break;
      case 'R':
        err = set_command(kCmdRestore);
        break;
      case 'S':
        err = set_command(kCmdSave);
        break;
      case 'h':
        return ParseError{"", true};
      case 't':
      case 'u': {
        if ((err = set_option(kOptService))) break;
        c.svc.key.proto = o.def->tag == 't' ? lb::Proto::kTcp : lb::Proto::kUdp;
        const std::string why = parse_addr(v, svc_ep);
        if (!why.empty())
          return ParseError{with_hint("illegal virtual server address[:port] specified", why)};
        c.svc.key.vip = svc_ep.ip;
        c.svc.key.port = svc_ep.port;
        break;
      }
      case 's': {
        if ((err = set_option(kOptScheduler))) break;
        const auto s = lb::parse_sched(v);
        if (!s)
          return ParseError{"Scheduler not found: '" + v + "' (tandem has " + sched_list() + ")"};
        c.svc.sched = *s;
        break;
      }
      case 'p': {
        if ((err = set_option(kOptPersistent))) break;
        if (!o.value) {
          c.svc.persist_s = kDefaultPersistS;
        } else if (auto t = parse_number(v, 1, kMaxTimeoutS)) {
          c.svc.persist_s = *t;
        } else {
          return ParseError{"invalid timeout value `" + v + "' specified"};
        }
        break;
      }
      case 'M': {
        if ((err = set_option(kOptNetmask))) break;
        const auto m = cfg::parse_ipv4(v);
        if (!m) return ParseError{"illegal virtual server persistent mask specified"};
        c.svc.persist_mask = *m;
        break;
      }
      case 'r': {
        if ((err = set_option(kOptServer))) break;
        const std::string why = parse_addr(v, rip_ep);
        if (!why.empty())
          return ParseError{with_hint("illegal real server address[:port] specified", why)};
        break;
      }
      case 'm':
      case 'g':
      case 'i':
        if ((err = set_option(kOptForward))) break;
        c.real.fwd = o.def->tag == 'm'   ? lb::Fwd::kNat
                     : o.def->tag == 'g' ? lb::Fwd::kDr
                                         : lb::Fwd::kTun;
        break;
      case 'w': {
        if ((err = set_option(kOptWeight))) break;
        const auto w = parse_number(v, 0, kMaxWeight);
        if (!w) return ParseError{"illegal weight specified"};
        c.real.weight = *w;
        break;
      }
      case 'n':
        err = set_option(kOptNumeric);
        break;
      case 'c':
        err = set_option(kOptConnection);
        break;
      case 'X':
        err = set_option(kOptExact);
        break;
      case kTagStats:
        err = set_option(kOptStats);
        break;
      case kTagRate:
        err = set_option(kOptRate);
        break;
      case kTagNoSort:
        err = set_option(kOptNoSort);
        break;
      case kTagSort:
        break;  // the default; a no-op in ipvsadm too
      case 'f':
        return ParseError{unsupported(o, "fwmark services; use -t or -u")};
      case '6':
        return ParseError{unsupported(o, "IPv4 only")};
      case 'x':
      case 'y':
        return ParseError{unsupported(o, "no connection thresholds")};
      case 'o':
        return ParseError{unsupported(o, "no one-packet scheduling")};
      case kTagThresholds:
      case kTagPersistentConn:
        return ParseError{unsupported(o, "not reported")};
      case kTagSet:
      case kTagTimeout:
        return ParseError{unsupported(o, "timeouts are set in the config file")};
      case kTagStartDaemon:
      case kTagStopDaemon:
      case kTagMcast:
      case kTagSyncId:
      case kTagDaemon:
        return ParseError{unsupported(o, "connections are replicated over the sync link")};
      case 'v':
      default:
        return ParseError{unsupported(o, "no version report"), true};
    }
    if (err) return *err;
  }
  if (cmd == kCmdNone) return ParseError{"no command specified", true};

  // ipvsadm's table of legal command/option combinations, checked in its order.
  int last_exclusive = -1;
  for (int j = 0; j < kOptCount; ++j) {
    const char rule = kCmdVsOpt[cmd][j];
    if (!(opts & (1U << j))) {
      if (rule == '+')
        return ParseError{std::string("You need to supply the '") + kOptNames[j] +
                          "' option for the '" + kCmdNames[cmd] + "' command"};
      continue;
    }
    if (rule == 'x')
      return ParseError{std::string("Illegal '") + kOptNames[j] + "' option with the '" +
                        kCmdNames[cmd] + "' command"};
    if (rule == '1') {
      if (last_exclusive >= 0)
        return ParseError{std::string("The option '") + kOptNames[j] + "' conflicts with the '" +
                          kOptNames[last_exclusive] + "' option in the '" + kCmdNames[cmd] +
                          "' command"};
      last_exclusive = j;
    }
  }

  const auto has = [&](int bit) { return (opts & (1U << bit)) != 0; };
  c.has_sched = has(kOptScheduler);
  c.has_persist = has(kOptPersistent);
  c.has_mask = has(kOptNetmask);
  c.has_fwd = has(kOptForward);
  c.has_weight = has(kOptWeight);
  switch (cmd) {
    case kCmdAdd:
      c.op = Command::Op::kAddService;
      if (c.svc.key.port == 0 && !c.has_persist) return ParseError{kErrZeroPort};
      break;
    case kCmdEdit:
      c.op = Command::Op::kEditService;
      break;
    case kCmdDel:
      c.op = Command::Op::kDelService;
      break;
    case kCmdFlush:
      c.op = Command::Op::kClear;
      break;
    case kCmdRestore:
      c.op = Command::Op::kRestore;
      break;
    case kCmdSave:
      c.op = Command::Op::kSave;
      c.list.numeric = has(kOptNumeric);
      break;
    case kCmdZero:
      c.op = Command::Op::kZero;
      c.list.has_key = has(kOptService);
      break;
    case kCmdList:
      if (has(kOptConnection) && (has(kOptStats) || has(kOptRate)))
        return ParseError{"options conflicts in the list command"};
      c.op = Command::Op::kList;
      c.list.numeric = has(kOptNumeric);
      c.list.conns = has(kOptConnection);
      c.list.stats = has(kOptStats);
      c.list.rate = has(kOptRate) && !c.list.stats;  // ipvsadm: --stats wins
      c.list.exact = has(kOptExact);
      c.list.nosort = has(kOptNoSort);
      c.list.has_key = has(kOptService);
      break;
    case kCmdAddDest:
    case kCmdEditDest:
    case kCmdDelDest: {
      c.op = cmd == kCmdAddDest    ? Command::Op::kAddReal
             : cmd == kCmdEditDest ? Command::Op::kEditReal
                                   : Command::Op::kDelReal;
      if (cmd == kCmdAddDest && !c.has_fwd) c.real.fwd = lb::Fwd::kDr;  // ipvsadm's default
      c.real.ip = rip_ep.ip;
      c.real.port = rip_ep.has_port ? rip_ep.port : c.svc.key.port;
      // Direct routing and tunnelling cannot change the port: ipvsadm forces the service's.
      const bool sets_fwd = cmd == kCmdAddDest || c.has_fwd;
      if (cmd != kCmdDelDest && sets_fwd && c.real.fwd != lb::Fwd::kNat)
        c.real.port = c.svc.key.port;
      break;
    }
    default:
      break;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Native `lb` grammar

struct Flags {
  std::vector<std::pair<std::string, std::string>> values;  // name (without --), value
  std::vector<std::string> switches;
  const std::string* get(const std::string& name) const {
    for (const auto& [n, v] : values)
      if (n == name) return &v;
    return nullptr;
  }
  bool has(const std::string& name) const {
    return std::find(switches.begin(), switches.end(), name) != switches.end() || get(name);
  }
};

// Splits argv[from..] into positionals and --flags. `with_value` / `switches` name the allowed
// flags. Returns "" or the error.
std::string split_flags(const std::vector<std::string>& argv, size_t from,
                        const std::vector<std::string>& with_value,
                        const std::vector<std::string>& switches,
                        std::vector<std::string>& positional, Flags& flags) {
  auto known = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (size_t i = from; i < argv.size(); ++i) {
    const std::string& tok = argv[i];
    if (tok.rfind("--", 0) != 0) {
      positional.push_back(tok);
      continue;
    }
    const size_t eq = tok.find('=');
    const std::string name = tok.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (flags.has(name)) return "--" + name + " given twice";
    if (known(switches, name)) {
      if (eq != std::string::npos) return "--" + name + " takes no value";
      flags.switches.push_back(name);
    } else if (known(with_value, name)) {
      if (eq != std::string::npos) {
        flags.values.emplace_back(name, tok.substr(eq + 1));
      } else if (i + 1 < argv.size()) {
        flags.values.emplace_back(name, argv[++i]);
      } else {
        return "--" + name + " needs a value";
      }
    } else {
      return "unknown option '" + tok + "'";
    }
  }
  return "";
}

std::optional<lb::Proto> parse_proto(std::string_view s) {
  if (s == "tcp" || s == "TCP") return lb::Proto::kTcp;
  if (s == "udp" || s == "UDP") return lb::Proto::kUdp;
  return std::nullopt;
}

std::variant<Command, std::string> parse_lb_impl(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::string("missing lb command");
  const std::string& sub = argv[0];
  Command c;
  std::vector<std::string> pos;
  Flags f;
  auto fail = [&](const std::string& m) { return "lb " + sub + ": " + m; };

  if (sub == "list") {
    const std::string e =
        split_flags(argv, 1, {}, {"stats", "rate", "exact", "conns", "json"}, pos, f);
    if (!e.empty()) return fail(e);
    if (!pos.empty()) return fail("unexpected argument '" + pos[0] + "'");
    c.op = Command::Op::kList;
    c.list.numeric = true;
    c.list.stats = f.has("stats");
    c.list.rate = f.has("rate");
    c.list.exact = f.has("exact");
    c.list.conns = f.has("conns");
    c.list.json = f.has("json");
    if (c.list.stats && c.list.rate) return fail("--stats and --rate exclude each other");
    if (c.list.conns && (c.list.stats || c.list.rate))
      return fail("--conns excludes --stats and --rate");
    return c;
  }
  if (sub == "clear") {
    if (argv.size() > 1) return fail("unexpected argument '" + argv[1] + "'");
    c.op = Command::Op::kClear;
    return c;
  }

  struct Sub {
    const char* name;
    Command::Op op;
    bool real;
    std::vector<std::string> flags;
  };
  const Sub subs[] = {
      {"add-service", Command::Op::kAddService, false, {"sched", "persist", "netmask"}},
      {"edit-service", Command::Op::kEditService, false, {"sched", "persist", "netmask"}},
      {"del-service", Command::Op::kDelService, false, {}},
      {"add-real", Command::Op::kAddReal, true, {"mode", "weight"}},
      {"edit-real", Command::Op::kEditReal, true, {"mode", "weight"}},
      {"del-real", Command::Op::kDelReal, true, {}},
  };
  const Sub* s = nullptr;
  for (const Sub& x : subs)
    if (sub == x.name) s = &x;
  if (s == nullptr) return "unknown lb command '" + sub + "'";

  const std::string e = split_flags(argv, 1, s->flags, {}, pos, f);
  if (!e.empty()) return fail(e);
  const size_t want = s->real ? 3 : 2;
  const std::string shape = s->real ? "tcp|udp VIP:PORT RIP[:PORT]" : "tcp|udp VIP:PORT";
  if (pos.size() != want) return fail("expected " + shape);
  c.op = s->op;
  const auto proto = parse_proto(pos[0]);
  if (!proto) return fail("'" + pos[0] + "' is not tcp or udp");
  Endpoint vip;
  std::string why = parse_addr(pos[1], vip);
  if (!why.empty()) return fail("virtual service '" + pos[1] + "': " + why);
  if (!vip.has_port) return fail("virtual service '" + pos[1] + "' needs a port (VIP:PORT)");
  c.svc.key = {*proto, vip.ip, vip.port};

  if (!s->real) {
    if (const std::string* v = f.get("sched")) {
      const auto sc = lb::parse_sched(*v);
      if (!sc) return fail("unknown scheduler '" + *v + "' (" + sched_list() + ")");
      c.svc.sched = *sc;
      c.has_sched = true;
    }
    if (const std::string* v = f.get("persist")) {
      const auto t = parse_number(*v, 0, kMaxTimeoutS);
      if (!t) return fail("--persist " + *v + ": expected seconds, 0..2678400");
      c.svc.persist_s = *t;
      c.has_persist = true;
    }
    if (const std::string* v = f.get("netmask")) {
      const auto m = cfg::parse_ipv4(*v);
      if (!m) return fail("--netmask " + *v + ": expected A.B.C.D");
      c.svc.persist_mask = *m;
      c.has_mask = true;
    }
    if (c.op == Command::Op::kAddService && c.svc.key.port == 0 && c.svc.persist_s == 0)
      return fail(std::string(kErrZeroPort) + " (port 0 needs --persist SECONDS)");
    return c;
  }

  Endpoint rip;
  why = parse_addr(pos[2], rip);
  if (!why.empty()) return fail("real server '" + pos[2] + "': " + why);
  c.real.ip = rip.ip;
  c.real.port = rip.has_port ? rip.port : c.svc.key.port;
  c.real.fwd = lb::Fwd::kNat;
  if (const std::string* v = f.get("mode")) {
    const auto m = lb::parse_fwd(*v);
    if (!m) return fail("unknown mode '" + *v + "' (nat, dr, tun)");
    c.real.fwd = *m;
    c.has_fwd = true;
  }
  if (const std::string* v = f.get("weight")) {
    const auto w = parse_number(*v, 0, kMaxWeight);
    if (!w) return fail("--weight " + *v + ": expected 0..65535");
    c.real.weight = *w;
    c.has_weight = true;
  }
  if (c.op != Command::Op::kDelReal && c.real.fwd != lb::Fwd::kNat &&
      (c.op == Command::Op::kAddReal || c.has_fwd) && c.real.port != c.svc.key.port) {
    return fail(std::string(lb::to_string(c.real.fwd)) +
                " keeps the service's port: give the real server as " +
                lb::format_endpoint(c.real.ip, c.svc.key.port) + " or without a port");
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Formatting

// ipvsadm's print_largenum: 9 columns, K/M/G/T beyond 8 digits unless --exact.
void largenum(std::string& out, uint64_t v, bool exact) {
  if (exact) {
    const std::string d = std::to_string(v);
    const int width = d.size() <= 8 ? 9 : static_cast<int>(d.size()) + 1;
    appendf(out, "%*s", width, d.c_str());
    return;
  }
  if (v < 100000000ULL)
    appendf(out, "%9" PRIu64, v);
  else if (v < 1000000000ULL)
    appendf(out, "%8" PRIu64 "K", v / uint64_t{1000});
  else if (v < 100000000000ULL)
    appendf(out, "%8" PRIu64 "M", v / uint64_t{1000000});
  else if (v < 100000000000000ULL)
    appendf(out, "%8" PRIu64 "G", v / uint64_t{1000000000});
  else
    appendf(out, "%8" PRIu64 "T", v / uint64_t{1000000000000});
}

const char* fwd_name(lb::Fwd f) {
  switch (f) {
    case lb::Fwd::kNat:
      return "Masq";
    case lb::Fwd::kDr:
      return "Route";
    case lb::Fwd::kTun:
      return "Tunnel";
  }
  return "Route";
}

const char* fwd_switch(lb::Fwd f) {
  switch (f) {
    case lb::Fwd::kNat:
      return "-m";
    case lb::Fwd::kDr:
      return "-g";
    case lb::Fwd::kTun:
      return "-i";
  }
  return "-g";
}

bool key_less(const lb::ServiceKey& a, const lb::ServiceKey& b) {
  if (a.proto != b.proto) return static_cast<uint8_t>(a.proto) < static_cast<uint8_t>(b.proto);
  if (a.vip != b.vip) return a.vip < b.vip;
  return a.port < b.port;
}

// ipvsadm lists services by protocol, address, port and real servers by address, port.
std::vector<ServiceView> sorted(const std::vector<ServiceView>& views, bool nosort) {
  std::vector<ServiceView> out = views;
  if (nosort) return out;
  std::stable_sort(out.begin(), out.end(), [](const ServiceView& a, const ServiceView& b) {
    return key_less(a.spec.key, b.spec.key);
  });
  for (ServiceView& v : out) {
    std::stable_sort(v.reals.begin(), v.reals.end(), [](const RealView& a, const RealView& b) {
      return a.real.ip != b.real.ip ? a.real.ip < b.real.ip : a.real.port < b.real.port;
    });
  }
  return out;
}

nlohmann::json counters_json(const Counters& c) {
  return {{"conns", c.conns},
          {"in_packets", c.in_pkts},
          {"out_packets", c.out_pkts},
          {"in_bytes", c.in_bytes},
          {"out_bytes", c.out_bytes}};
}

nlohmann::json rates_json(const Rates& r) {
  return {{"cps", r.cps},
          {"in_pps", r.in_pps},
          {"out_pps", r.out_pps},
          {"in_bps", r.in_bps},
          {"out_bps", r.out_bps}};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ServiceSet

const ServiceEntry* ServiceSet::find(const lb::ServiceKey& k) const {
  for (const ServiceEntry& e : entries_)
    if (e.spec.key == k) return &e;
  return nullptr;
}

ServiceEntry* ServiceSet::find_mut(const lb::ServiceKey& k) {
  for (ServiceEntry& e : entries_)
    if (e.spec.key == k) return &e;
  return nullptr;
}

std::vector<lb::ServiceSpec> ServiceSet::specs() const {
  std::vector<lb::ServiceSpec> out;
  out.reserve(entries_.size());
  for (const ServiceEntry& e : entries_) out.push_back(e.spec);
  return out;
}

void ServiceSet::load_config(const std::vector<lb::ServiceSpec>& from_config) {
  std::vector<const lb::ServiceSpec*> cfg;
  for (const lb::ServiceSpec& s : from_config) {
    const bool dup = std::any_of(cfg.begin(), cfg.end(),
                                 [&](const lb::ServiceSpec* p) { return p->key == s.key; });
    if (!dup) cfg.push_back(&s);
  }
  std::vector<bool> placed(cfg.size(), false);
  std::vector<ServiceEntry> next;
  next.reserve(entries_.size() + cfg.size());
  for (const ServiceEntry& e : entries_) {
    const auto it = std::find_if(cfg.begin(), cfg.end(),
                                 [&](const lb::ServiceSpec* p) { return p->key == e.spec.key; });
    if (it != cfg.end()) {
      const size_t idx = static_cast<size_t>(it - cfg.begin());
      next.push_back({**it, Origin::kConfig});
      placed[idx] = true;
    } else if (e.origin == Origin::kRuntime) {
      next.push_back(e);
    }
  }
  for (size_t i = 0; i < cfg.size(); ++i)
    if (!placed[i]) next.push_back({*cfg[i], Origin::kConfig});
  if (next != entries_) {
    entries_ = std::move(next);
    ++generation_;
  }
}

std::string ServiceSet::apply_one(const Command& c, bool& changed) {
  using Op = Command::Op;
  const lb::ServiceKey& key = c.svc.key;
  switch (c.op) {
    case Op::kAddService: {
      if (find(key) != nullptr) return kErrSvcExists;
      if (entries_.size() >= limits_.services) return kErrNoMem;
      if (key.port == 0 && c.svc.persist_s == 0) return kErrZeroPort;
      ServiceEntry e;
      e.origin = Origin::kRuntime;
      e.spec.key = key;
      e.spec.sched = c.svc.sched;
      e.spec.persist_s = c.svc.persist_s;
      e.spec.persist_mask = c.svc.persist_mask;
      entries_.push_back(std::move(e));
      changed = true;
      return "";
    }
    case Op::kEditService: {
      ServiceEntry* e = find_mut(key);
      if (e == nullptr) return kErrNoService;
      lb::ServiceSpec s = e->spec;
      if (c.has_sched) s.sched = c.svc.sched;
      if (c.has_persist) s.persist_s = c.svc.persist_s;
      if (c.has_mask) s.persist_mask = c.svc.persist_mask;
      if (key.port == 0 && s.persist_s == 0) return kErrZeroPort;
      if (s != e->spec) {
        e->spec = std::move(s);
        changed = true;
      }
      return "";
    }
    case Op::kDelService: {
      const auto it = std::find_if(entries_.begin(), entries_.end(),
                                   [&](const ServiceEntry& e) { return e.spec.key == key; });
      if (it == entries_.end()) return kErrNoService;
      entries_.erase(it);
      changed = true;
      return "";
    }
    case Op::kAddReal:
    case Op::kEditReal:
    case Op::kDelReal: {
      ServiceEntry* e = find_mut(key);
      if (e == nullptr) return kErrSvcNotDefined;
      auto& reals = e->spec.reals;
      const auto it = std::find_if(reals.begin(), reals.end(), [&](const lb::RealServer& r) {
        return r.ip == c.real.ip && r.port == c.real.port;
      });
      if (c.op == Op::kAddReal) {
        if (it != reals.end()) return kErrDestExists;
        if (reals.size() >= limits_.reals_per_service) return kErrNoMem;
        reals.push_back(c.real);
        changed = true;
        return "";
      }
      if (it == reals.end()) return kErrNoDest;
      if (c.op == Op::kDelReal) {
        reals.erase(it);
        changed = true;
        return "";
      }
      lb::RealServer r = *it;
      if (c.has_weight) r.weight = c.real.weight;
      if (c.has_fwd) r.fwd = c.real.fwd;
      if (r != *it) {
        *it = r;
        changed = true;
      }
      return "";
    }
    case Op::kClear:
      if (!entries_.empty()) {
        entries_.clear();
        changed = true;
      }
      return "";
    case Op::kList:
    case Op::kZero:
      if (c.list.has_key && find(key) == nullptr) return kErrNoService;
      return "";
    case Op::kSave:
      return "";
    case Op::kRestore:
      return "-R cannot be nested";
  }
  return "";
}

std::string ServiceSet::apply(const Command& c) {
  bool changed = false;
  if (c.op != Command::Op::kRestore) {
    std::string err = apply_one(c, changed);
    if (changed) ++generation_;
    return err;
  }
  std::vector<ServiceEntry> saved = entries_;
  for (size_t i = 0; i < c.restore.size(); ++i) {
    const Command& l = c.restore[i];
    std::string err = apply_one(l, changed);
    if (!err.empty()) {
      entries_ = std::move(saved);
      const int line = l.line > 0 ? l.line : static_cast<int>(i) + 1;
      return "line " + std::to_string(line) + ": " + err;
    }
  }
  if (changed) ++generation_;
  return "";
}

// ---------------------------------------------------------------------------------------------
// Parsers

std::string ipvsadm_usage() {
  return "Usage:\n"
         "  ipvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask]\n"
         "  ipvsadm -D -t|u service-address\n"
         "  ipvsadm -C\n"
         "  ipvsadm -R\n"
         "  ipvsadm -S [-n]\n"
         "  ipvsadm -a|e -t|u service-address -r server-address [-g|-i|-m] [-w weight]\n"
         "  ipvsadm -d -t|u service-address -r server-address\n"
         "  ipvsadm -L|l [-n] [--stats|--rate] [--exact] [-c] [-t|u service-address]\n"
         "  ipvsadm -Z [-t|u service-address]\n"
         "service-address is A.B.C.D[:port], server-address A.B.C.D[:port]; schedulers: " +
         sched_list() + " (default wlc); forwarding: -g (default), -m, -i; weight 0..65535\n";
}

std::string lb_usage() {
  return "Usage:\n"
         "  lb list [--stats|--rate] [--exact] [--conns] [--json]\n"
         "  lb add-service  tcp|udp VIP:PORT [--sched S] [--persist SECONDS] [--netmask MASK]\n"
         "  lb edit-service tcp|udp VIP:PORT [--sched S] [--persist SECONDS] [--netmask MASK]\n"
         "  lb del-service  tcp|udp VIP:PORT\n"
         "  lb add-real  tcp|udp VIP:PORT RIP[:PORT] [--mode nat|dr|tun] [--weight W]\n"
         "  lb edit-real tcp|udp VIP:PORT RIP[:PORT] [--mode nat|dr|tun] [--weight W]\n"
         "  lb del-real  tcp|udp VIP:PORT RIP[:PORT]\n"
         "  lb clear\n"
         "schedulers: " +
         sched_list() + " (default wlc); add-real defaults: --mode nat --weight 1\n";
}

std::variant<Command, std::string> parse_ipvsadm(const std::vector<std::string>& argv) {
  auto r = parse_ipvsadm_impl(argv);
  if (auto* c = std::get_if<Command>(&r)) return std::move(*c);
  const ParseError& e = std::get<ParseError>(r);
  if (!e.usage) return e.message;
  return e.message.empty() ? ipvsadm_usage() : e.message + "\n" + ipvsadm_usage();
}

std::variant<std::vector<Command>, std::string> parse_ipvsadm_restore(const std::string& text) {
  std::vector<Command> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> words;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      const size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      if (i > start && line.compare(start, i - start, "ipvsadm") != 0)
        words.push_back(line.substr(start, i - start));
    }
    if (words.empty()) continue;
    auto r = parse_ipvsadm_impl(words);
    if (auto* e = std::get_if<ParseError>(&r))
      return "line " + std::to_string(line_no) + ": " +
             (e->message.empty() ? std::string("-h is not a rule") : e->message);
    Command c = std::get<Command>(std::move(r));
    using Op = Command::Op;
    if (c.op == Op::kList || c.op == Op::kSave || c.op == Op::kRestore)
      return "line " + std::to_string(line_no) + ": only -A, -E, -D, -a, -e, -d, -C and -Z " +
             "are rules (got " + words[0] + ")";
    c.line = line_no;
    out.push_back(std::move(c));
  }
  return out;
}

std::variant<Command, std::string> parse_lb(const std::vector<std::string>& argv) {
  auto r = parse_lb_impl(argv);
  if (auto* e = std::get_if<std::string>(&r)) {
    if (argv.empty() || e->rfind("unknown lb command", 0) == 0) return *e + "\n" + lb_usage();
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Reports

std::string format_ipvsadm_list(const std::vector<ServiceView>& views,
                                const Command::ListOpts& opts) {
  std::string out;
  if (!opts.has_key) out += kVersionLine;
  if (opts.stats) {
    appendf(out, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes");
  } else if (opts.rate) {
    appendf(out, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS");
  } else {
    out +=
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
  }
  for (const ServiceView& v : sorted(views, opts.nosort)) {
    const lb::ServiceSpec& s = v.spec;
    const std::string name =
        std::string(lb::to_string(s.key.proto)) + "  " + lb::format_endpoint(s.key.vip, s.key.port);
    if (opts.stats || opts.rate) {
      appendf(out, "%-33s", name.c_str());
      const uint64_t nums[5] = {
          opts.stats ? v.c.conns : v.r.cps, opts.stats ? v.c.in_pkts : v.r.in_pps,
          opts.stats ? v.c.out_pkts : v.r.out_pps, opts.stats ? v.c.in_bytes : v.r.in_bps,
          opts.stats ? v.c.out_bytes : v.r.out_bps};
      for (uint64_t n : nums) largenum(out, n, opts.exact);
    } else {
      out += name + " " + std::string(lb::to_string(s.sched));
      if (s.persist_s != 0) {
        appendf(out, " persistent %u", s.persist_s);
        if (s.persist_mask != kAllOnes) out += " mask " + cfg::format_ipv4(s.persist_mask);
      }
    }
    out += '\n';
    for (const RealView& r : v.reals) {
      if (!r.healthy) continue;
      const std::string dname = lb::format_endpoint(r.real.ip, r.real.port);
      if (opts.stats) {
        appendf(out, "  -> %-28s", dname.c_str());
        for (uint64_t n : {r.c.conns, r.c.in_pkts, r.c.out_pkts, r.c.in_bytes, r.c.out_bytes})
          largenum(out, n, opts.exact);
        out += '\n';
      } else if (opts.rate) {
        // ipvsadm prints a real server's CPS and PPS plainly, its BPS like the other numbers.
        appendf(out, "  -> %-28s %8" PRIu64 " %8" PRIu64 " %8" PRIu64, dname.c_str(), r.r.cps,
                r.r.in_pps, r.r.out_pps);
        largenum(out, r.r.in_bps, opts.exact);
        largenum(out, r.r.out_bps, opts.exact);
        out += '\n';
      } else {
        appendf(out, "  -> %-28s %-7s %-6u %-10" PRIu64 " %-10" PRIu64 "\n", dname.c_str(),
                fwd_name(r.real.fwd), r.real.weight, r.active, r.inactive);
      }
    }
  }
  return out;
}

std::string format_ipvsadm_conns(const std::vector<ConnView>& conns) {
  std::string out = "IPVS connection entries\n";
  appendf(out, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination");
  for (const ConnView& c : conns) {
    char expire[24];
    std::snprintf(expire, sizeof(expire), "%02u:%02u", c.expires_s / 60, c.expires_s % 60);
    appendf(out, "%-3s %-6s %-11s %-18s %-18s %s\n", std::string(lb::to_string(c.proto)).c_str(),
            expire, c.state.c_str(), lb::format_endpoint(c.client_ip, c.client_port).c_str(),
            lb::format_endpoint(c.vip, c.vport).c_str(),
            lb::format_endpoint(c.rs_ip, c.rs_port).c_str());
  }
  return out;
}

std::string format_ipvsadm_save(const std::vector<ServiceView>& views) {
  std::string out;
  for (const ServiceView& v : sorted(views, false)) {
    const lb::ServiceSpec& s = v.spec;
    const std::string svc = std::string(s.key.proto == lb::Proto::kUdp ? "-u " : "-t ") +
                            lb::format_endpoint(s.key.vip, s.key.port);
    out += "-A " + svc + " -s " + std::string(lb::to_string(s.sched));
    if (s.persist_s != 0) {
      appendf(out, " -p %u", s.persist_s);
      if (s.persist_mask != kAllOnes) out += " -M " + cfg::format_ipv4(s.persist_mask);
    }
    out += '\n';
    for (const RealView& r : v.reals) {
      appendf(out, "-a %s -r %s %s -w %u\n", svc.c_str(),
              lb::format_endpoint(r.real.ip, r.real.port).c_str(), fwd_switch(r.real.fwd),
              r.real.weight);
    }
  }
  return out;
}

// {"services": [{"key": "TCP 192.0.2.100:80", "protocol": "tcp", "vip": "192.0.2.100",
//   "port": 80, "scheduler": "rr", "persistence_s": 0, "persistence_mask": "255.255.255.255",
//   "counters": {...}, "rates": {...}, "reals": [{"address": "198.51.100.11:80",
//   "ip": "198.51.100.11", "port": 80, "mode": "nat", "weight": 1, "healthy": true,
//   "active": 0, "inactive": 0, "counters": {...}, "rates": {...}}]}]}
// counters: conns, in_packets, out_packets, in_bytes, out_bytes; rates: cps, in_pps, out_pps,
// in_bps, out_bps (bytes per second).
nlohmann::json to_json(const std::vector<ServiceView>& views) {
  nlohmann::json services = nlohmann::json::array();
  for (const ServiceView& v : views) {
    const lb::ServiceSpec& s = v.spec;
    nlohmann::json reals = nlohmann::json::array();
    for (const RealView& r : v.reals) {
      reals.push_back({{"address", lb::format_endpoint(r.real.ip, r.real.port)},
                       {"ip", cfg::format_ipv4(r.real.ip)},
                       {"port", r.real.port},
                       {"mode", std::string(lb::to_string(r.real.fwd))},
                       {"weight", r.real.weight},
                       {"healthy", r.healthy},
                       {"active", r.active},
                       {"inactive", r.inactive},
                       {"counters", counters_json(r.c)},
                       {"rates", rates_json(r.r)}});
    }
    services.push_back({{"key", lb::format_key(s.key)},
                        {"protocol", lower(lb::to_string(s.key.proto))},
                        {"vip", cfg::format_ipv4(s.key.vip)},
                        {"port", s.key.port},
                        {"scheduler", std::string(lb::to_string(s.sched))},
                        {"persistence_s", s.persist_s},
                        {"persistence_mask", cfg::format_ipv4(s.persist_mask)},
                        {"counters", counters_json(v.c)},
                        {"rates", rates_json(v.r)},
                        {"reals", std::move(reals)}});
  }
  return {{"services", std::move(services)}};
}

std::vector<ServiceView> plain_views(const ServiceSet& set) {
  std::vector<ServiceView> out;
  out.reserve(set.services().size());
  for (const ServiceEntry& e : set.services()) {
    ServiceView v;
    v.spec = e.spec;
    v.spec.reals.clear();
    for (const lb::RealServer& r : e.spec.reals) {
      RealView rv;
      rv.real = r;
      v.reals.push_back(rv);
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace ctl
