// tandemctl: the operator's CLI. Sends one request to tandemd's control socket and prints the
// answer as text, or as JSON with --json. Daemon errors are printed verbatim.
// Exit codes: 0 ok, 1 the daemon refused or is unreachable, 2 usage.
//
// Installed (or symlinked) as `ipvsadm`, `ipvsadm-save` or `ipvsadm-restore` it behaves as
// `tandemctl ipvsadm ARGS`, `... -S ARGS`, `... -R ARGS`, so LVS runbooks run unchanged.

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "control/keepalived_import.h"
#include "control/lb_admin.h"

using nlohmann::json;

namespace {

constexpr const char* kDefaultSocket = "/run/tandem/tandem.sock";
// The longest request line tandemd reads (control/api.cpp), newline included.
constexpr size_t kMaxRequest = 64 * 1024;

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: tandemctl [-s SOCKET] [--json] COMMAND\n"
      "commands:\n"
      "  status                       node, version, uptime, workers, config state\n"
      "  ports                        ports with link, MAC, addresses and counters\n"
      "  neighbors                    the neighbour (ARP) table\n"
      "  neighbors resolve IP [PORT]  start ARP resolution of IP\n"
      "  vrrp                         VRRP instances: state, priority, master, timers\n"
      "  leases [--ip IP | --mac MAC] [--format kea-csv]\n"
      "                               DHCP leases (kea-csv: Kea's memfile CSV, v4)\n"
      "  lease release IP             free a DHCP lease now\n"
      "  dhcp pools                   DHCP pools: size, offered, bound, declined, free\n"
      "  lb list [--stats|--rate] [--exact] [--conns]\n"
      "                               virtual services and real servers (ipvsadm -L -n)\n"
      "  lb add-service|edit-service|del-service|add-real|edit-real|del-real|clear ...\n"
      "                               change the running services (see: tandemctl lb help)\n"
      "  ipvsadm ARGS...              an ipvsadm command line, as pasted: -A -E -D -a -e -d\n"
      "                               -C -L -S -Z, and -R reading the rules from stdin\n"
      "  import keepalived FILE       translate a keepalived.conf (local, no daemon)\n"
      "  sync                         the sync link: peer, session, resync, lag, unacked\n"
      "                               entries, traffic, VRRP coupling\n"
      "  config reload                re-read the configuration file (like SIGHUP)\n"
      "  config push                  send sync.config_include to the peer, which validates\n"
      "                               and applies it (answers with its result)\n"
      "options:\n"
      "  -s, --socket PATH  control socket (default %s, or $TANDEM_SOCKET)\n"
      "  --json             print the daemon's JSON answer (before 'ipvsadm': what\n"
      "                     follows 'ipvsadm' is passed on as it is)\n"
      "invoked as ipvsadm (ln -s tandemctl /usr/local/sbin/ipvsadm), tandemctl runs\n"
      "'tandemctl ipvsadm ARGS' on $TANDEM_SOCKET or the default socket; as ipvsadm-save\n"
      "and ipvsadm-restore, 'ipvsadm -S ARGS' and 'ipvsadm -R'.\n",
      kDefaultSocket);
}

// Checks the command's shape before anything is sent, so usage errors exit 2 whether or not a
// daemon runs. Returns "" or what is wrong.
std::string check_usage(const std::vector<std::string>& c) {
  const size_t n = c.size();
  if (c[0] == "status" || c[0] == "ports" || c[0] == "vrrp" || c[0] == "sync") {
    return n == 1 ? "" : "'" + c[0] + "' takes no arguments";
  }
  if (c[0] == "neighbors") {
    if (n == 1) return "";
    if (c[1] != "resolve") return "unknown neighbors command '" + c[1] + "' (try: resolve)";
    if (n < 3 || n > 4) return "usage: neighbors resolve IP [PORT]";
    in_addr a{};
    if (inet_pton(AF_INET, c[2].c_str(), &a) != 1) return "not an IPv4 address: '" + c[2] + "'";
    return "";
  }
  if (c[0] == "leases") {
    for (size_t i = 1; i < n; i += 2) {
      if (i + 1 >= n) return "usage: leases [--ip IP | --mac MAC] [--format kea-csv]";
      if (c[i] == "--format") {
        if (c[i + 1] != "kea-csv") return "unknown format '" + c[i + 1] + "' (try: kea-csv)";
      } else if (c[i] == "--ip") {
        in_addr a{};
        if (inet_pton(AF_INET, c[i + 1].c_str(), &a) != 1)
          return "not an IPv4 address: '" + c[i + 1] + "'";
      } else if (c[i] != "--mac") {
        return "usage: leases [--ip IP | --mac MAC] [--format kea-csv]";
      }
    }
    return "";
  }
  if (c[0] == "lease") {
    if (n != 3 || c[1] != "release") return "usage: lease release IP";
    in_addr a{};
    if (inet_pton(AF_INET, c[2].c_str(), &a) != 1) return "not an IPv4 address: '" + c[2] + "'";
    return "";
  }
  if (c[0] == "dhcp") {
    return n == 2 && c[1] == "pools" ? "" : "usage: dhcp pools";
  }
  if (c[0] == "import") {
    return n == 3 && c[1] == "keepalived" ? "" : "usage: import keepalived FILE";
  }
  if (c[0] == "config") {
    return n == 2 && (c[1] == "reload" || c[1] == "push") ? "" : "usage: config reload|push";
  }
  return "unknown command '" + c[0] + "'";
}

// Returns the daemon's reply, or prints one line and exits 1 when it cannot be reached.
json call(const std::string& path, const std::vector<std::string>& argv) {
  const std::string req = json{{"argv", argv}}.dump() + "\n";
  if (req.size() > kMaxRequest) {
    // tandemd would answer "request too large" and stop reading; say why here instead.
    std::fprintf(stderr,
                 "tandemctl: the request is %zu bytes, over the control socket's limit of %zu "
                 "(define large service sets in the configuration file)\n",
                 req.size(), kMaxRequest);
    std::exit(1);
  }
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "tandemctl: %s %s: %s (is tandemd running?)\n", what.c_str(), path.c_str(),
                 std::strerror(errno));
    std::exit(1);
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    std::fprintf(stderr, "tandemctl: socket path too long: %s\n", path.c_str());
    std::exit(2);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("cannot create socket for");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) fail("cannot connect to");
  for (size_t off = 0; off < req.size();) {
    ssize_t w = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (w <= 0) fail("cannot send to");
    off += static_cast<size_t>(w);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0) fail("no answer from");
    if (r == 0) break;
    resp.append(buf, static_cast<size_t>(r));
    if (resp.back() == '\n') break;
  }
  close(fd);
  try {
    return json::parse(resp);
  } catch (const json::exception&) {
    std::fprintf(stderr, "tandemctl: malformed answer from %s\n", path.c_str());
    std::exit(1);
  }
}

std::string num(const json& j) {
  if (j.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof(b), "%.1f%%", j.get<double>() * 100);
    return b;
  }
  return j.dump();
}

void print_status(const json& r) {
  std::printf("node      %s\n", r["node"].get<std::string>().c_str());
  std::printf("version   %s (%s), pid %s\n", r["version"].get<std::string>().c_str(),
              r["git"].get<std::string>().c_str(), r["pid"].dump().c_str());
  std::printf("uptime    %s s\n", r["uptime_s"].dump().c_str());
  std::printf("workers   %s (idle mode %s)\n", r["workers"].dump().c_str(),
              r["idle"].get<std::string>().c_str());
  for (const auto& w : r["worker_stats"])
    std::printf("  worker %s on lcore %s: rx %s tx %s busy %s\n", w["worker"].dump().c_str(),
                w["lcore"].dump().c_str(), w["rx_packets"].dump().c_str(),
                w["tx_packets"].dump().c_str(), num(w["busy_ratio"]).c_str());
  std::printf("ports     %s\n", r["ports"].dump().c_str());
  std::printf("neighbors %s\n", r["neighbors"].dump().c_str());
  const auto& c = r["config"];
  std::printf("config    %s (reloads: %s ok, %s failed)\n", c["file"].get<std::string>().c_str(),
              c["reloads_ok"].dump().c_str(), c["reloads_failed"].dump().c_str());
  std::string err = c["last_error"].get<std::string>();
  if (!err.empty()) std::printf("last reload error:\n%s\n", err.c_str());
}

void print_ports(const json& r) {
  std::printf("%-10s %-5s %-17s %-20s %12s %12s %8s %8s\n", "PORT", "LINK", "MAC", "ADDRESSES",
              "RX-PKTS", "TX-PKTS", "RX-ERR", "MISSED");
  for (const auto& p : r) {
    std::string addrs;
    for (const auto& a : p["addresses"]) addrs += (addrs.empty() ? "" : ",") + a.get<std::string>();
    std::printf("%-10s %-5s %-17s %-20s %12s %12s %8s %8s\n", p["name"].get<std::string>().c_str(),
                p["link"].get<std::string>().c_str(), p["mac"].get<std::string>().c_str(),
                addrs.c_str(), p["rx_packets"].dump().c_str(), p["tx_packets"].dump().c_str(),
                p["rx_errors"].dump().c_str(), p["rx_missed"].dump().c_str());
  }
}

void print_vrrp(const json& r) {
  std::printf("%-12s %-8s %-5s %-7s %-9s %-16s %-9s %-6s %s\n", "INSTANCE", "PORT", "VRID", "STATE",
              "PRIO", "MASTER", "ADVERT", "TRANS", "VIPS");
  for (const auto& v : r) {
    std::string vips;
    for (const auto& a : v["virtual_ips"]) vips += (vips.empty() ? "" : ",") + a.get<std::string>();
    std::string prio = v["priority"].dump() + "/" + v["effective_priority"].dump();
    std::printf("%-12s %-8s %-5s %-7s %-9s %-16s %-9s %-6s %s\n",
                v["name"].get<std::string>().c_str(), v["port"].get<std::string>().c_str(),
                v["vrid"].dump().c_str(), v["state"].get<std::string>().c_str(), prio.c_str(),
                v["master"].get<std::string>().c_str(),
                (v["advert_interval_ms"].dump() + "ms").c_str(), v["transitions"].dump().c_str(),
                vips.c_str());
  }
}

void print_sync(const json& r) {
  std::printf("peer        %s (%s) from %s:%s\n", r["peer"].get<std::string>().c_str(),
              r.value("peer_node", std::string("?")).c_str(), r["address"].get<std::string>().c_str(),
              r["port"].dump().c_str());
  const int64_t ago = r["last_heard_ago_ms"].get<int64_t>();
  std::printf("session     %s, last heard %s\n", r["state"].get<std::string>().c_str(),
              ago < 0 ? "never" : (std::to_string(ago) + " ms ago").c_str());
  std::printf("resync      ours %s, peer's %s (last bulk received in %s ms; %s sent, %s received)\n",
              r["resynced"].get<bool>() ? "complete" : "PENDING",
              r.value("peer_resynced", false) ? "complete" : "pending",
              r["last_resync_ms"].dump().c_str(), r["resyncs"]["sent"].dump().c_str(),
              r["resyncs"]["received"].dump().c_str());
  std::printf("dhcp        %s; connections %s\n", r["dhcp"].get<std::string>().c_str(),
              r["connections"].get<bool>() ? "replicated" : "not replicated");
  std::printf("lag         mean %.0f us; unacked entries %s; strict batches waiting %s\n",
              r["lag_mean_us"].get<double>(), r["unacked_entries"].dump().c_str(),
              r["strict_waiting_batches"].dump().c_str());
  const auto& e = r["entries"];
  std::printf("entries     leases out %s in %s; connections out %s in %s\n",
              e["leases_out"].dump().c_str(), e["leases_in"].dump().c_str(),
              e["connections_out"].dump().c_str(), e["connections_in"].dump().c_str());
  std::printf("traffic     datagrams out %s in %s; bytes out %s in %s; retransmitted %s\n",
              r["datagrams"]["sent"].dump().c_str(), r["datagrams"]["received"].dump().c_str(),
              r["bytes"]["sent"].dump().c_str(), r["bytes"]["received"].dump().c_str(),
              r["retransmitted"].dump().c_str());
  std::printf("rejected    auth %s, replay %s, malformed %s; sessions %s (ended: restart %s, "
              "silence %s)\n",
              r["rejected"]["auth"].dump().c_str(), r["rejected"]["replay"].dump().c_str(),
              r["rejected"]["malformed"].dump().c_str(), r["sessions"].dump().c_str(),
              r["peer_restarts"].dump().c_str(), r["timeouts"].dump().c_str());
  std::printf("config      digest %s, %s the peer's\n", r["config_digest"].get<std::string>().c_str(),
              r["config_match"].get<bool>() ? "matches" : "DIFFERS FROM");
  for (const auto& v : r["vrrp"])
    std::printf("vrrp        %-12s %-7s%s%s%s\n", v["name"].get<std::string>().c_str(),
                v["state"].get<std::string>().c_str(),
                v["sync_demoted"].get<bool>() ? " demoted (resync pending)" : "",
                v["takeover_held"].get<bool>() ? " takeover held" : "",
                v["split_brain_alarm"].get<bool>() ? " SPLIT-BRAIN ALARM" : "");
}

void print_neighbors(const json& r) {
  std::printf("%-10s %-16s %-17s %-11s %s\n", "PORT", "IP", "MAC", "STATE", "AGE");
  for (const auto& n : r)
    std::printf("%-10s %-16s %-17s %-11s %.1fs\n", n["port"].get<std::string>().c_str(),
                n["ip"].get<std::string>().c_str(), n["mac"].get<std::string>().c_str(),
                n["state"].get<std::string>().c_str(), n["age_ms"].get<double>() / 1000.0);
}

void print_leases(const json& r) {
  std::printf("%-16s %-17s %-8s %-10s %-20s %s\n", "IP", "MAC", "STATE", "REMAINING", "SUBNET",
              "CLIENT-ID");
  for (const auto& l : r)
    std::printf("%-16s %-17s %-8s %-10s %-20s %s\n", l["ip"].get<std::string>().c_str(),
                l["mac"].get<std::string>().c_str(), l["state"].get<std::string>().c_str(),
                (l["remaining_s"].dump() + "s").c_str(), l.value("subnet", "").c_str(),
                l["client_id"].get<std::string>().c_str());
}

// Kea's memfile lease file (kea-leases4.csv, schema of Kea 2.2): bound leases as state 0 and
// quarantined ones as 1 (declined); offers are not leases to Kea and are left out. client_id is
// empty when the client sent no option 61 (our key is then 01 + chaddr, RFC 2132 §9.14).
void print_kea_csv(const json& r) {
  std::printf(
      "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
      "state,user_context\n");
  for (const auto& l : r) {
    const std::string state = l["state"].get<std::string>();
    if (state != "bound" && state != "declined") continue;
    const std::string mac = l["mac"].get<std::string>();
    std::string cid = l["client_id"].get<std::string>();
    if (cid == "01:" + mac) cid.clear();
    std::printf("%s,%s,%s,%s,%s,%s,0,0,,%d,\n", l["ip"].get<std::string>().c_str(), mac.c_str(),
                cid.c_str(), l["valid_lifetime_s"].dump().c_str(), l["expires_unix"].dump().c_str(),
                l.value("subnet_id", json(0)).dump().c_str(), state == "bound" ? 0 : 1);
  }
}

void print_pools(const json& r) {
  std::printf("%-5s %-18s %-33s %8s %8s %8s %8s %8s\n", "POOL", "SUBNET", "RANGE", "SIZE",
              "OFFERED", "BOUND", "DECLINED", "FREE");
  for (const auto& p : r)
    std::printf("%-5s %-18s %-33s %8s %8s %8s %8s %8s\n", p["pool"].dump().c_str(),
                p["subnet"].get<std::string>().c_str(), p["range"].get<std::string>().c_str(),
                p["size"].dump().c_str(), p["offered"].dump().c_str(), p["bound"].dump().c_str(),
                p["declined"].dump().c_str(), p["free"].dump().c_str());
}

// The converted configuration on stdout; what was not translated, and errors, on stderr too.
// Exit 1 when the input has errors (the output then leaves the affected parts out).
int import_keepalived_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "tandemctl: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  ctl::ImportResult r = ctl::import_keepalived(ss.str(), path);
  std::fwrite(r.config.data(), 1, r.config.size(), stdout);
  for (const auto& u : r.untranslated) std::fprintf(stderr, "not translated: %s\n", u.c_str());
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
  return r.errors.empty() ? 0 : 1;
}

// Prints `m` with exactly one trailing newline (usage texts already end with one).
void print_message(FILE* out, const std::string& m) {
  std::fputs(m.c_str(), out);
  if (m.empty() || m.back() != '\n') std::fputc('\n', out);
}

// Prints the daemon's error and returns true when it refused.
bool refused(const json& reply) {
  if (reply.value("ok", false)) return false;
  print_message(stderr, reply.value("error", std::string("unknown error")));
  return true;
}

// The ipvsadm-formatted text of an lb/ipvsadm answer, verbatim.
void print_text(const json& result) {
  const std::string t = result.value("text", std::string());
  std::fwrite(t.data(), 1, t.size(), stdout);
  if (!t.empty() && t.back() != '\n') std::fputc('\n', stdout);
}

// `tandemctl lb ...` (cmd[0] == "lb"). The grammar is checked here with the daemon's own parser
// (control/lb_admin.h), so what is refused here with exit 2 is exactly what tandemd would refuse
// as malformed. Listings print the ipvsadm-style text; changes print nothing.
int run_lb(const std::string& sock, bool as_json, const std::vector<std::string>& cmd) {
  const std::vector<std::string> rest(cmd.begin() + 1, cmd.end());
  if (rest.size() == 1 && (rest[0] == "help" || rest[0] == "--help")) {
    std::fputs(ctl::lb_usage().c_str(), stdout);
    return 0;
  }
  auto parsed = ctl::parse_lb(rest);
  if (const auto* err = std::get_if<std::string>(&parsed)) {
    print_message(stderr, "tandemctl: " + *err);
    return 2;
  }
  const ctl::Command& c = std::get<ctl::Command>(parsed);
  const json reply = call(sock, cmd);
  if (refused(reply)) return 1;
  const json& r = reply["result"];
  if (as_json || c.list.json) {
    std::cout << r.dump(2) << "\n";
  } else if (c.op == ctl::Command::Op::kList) {
    print_text(r);
  }
  return 0;
}

// `tandemctl ipvsadm ARGS...` and the ipvsadm symlink. `args` are ipvsadm's own words. Errors
// are printed as ipvsadm prints them (no prefix) and exit 2 like ipvsadm's parse errors; -h
// prints the usage and exits 0. -R sends the rules read from stdin after "--" (the daemon splits
// there); they are checked here first, line by line, with the daemon's parser.
int run_ipvsadm(const std::string& sock, bool as_json, const std::vector<std::string>& args) {
  auto parsed = ctl::parse_ipvsadm(args);
  if (const auto* err = std::get_if<std::string>(&parsed)) {
    const std::string usage_text = ctl::ipvsadm_usage();
    if (*err == usage_text) {  // -h: parse_ipvsadm answers the usage alone
      std::fputs(usage_text.c_str(), stdout);
      return 0;
    }
    print_message(stderr, *err);
    return 2;
  }
  std::vector<std::string> req{"ipvsadm"};
  req.insert(req.end(), args.begin(), args.end());
  if (std::get<ctl::Command>(parsed).op == ctl::Command::Op::kRestore) {
    std::string text;
    char buf[65536];
    for (;;) {
      const size_t n = std::fread(buf, 1, sizeof buf, stdin);
      text.append(buf, n);
      if (n < sizeof buf) break;
    }
    if (std::ferror(stdin)) {
      std::fprintf(stderr, "tandemctl: cannot read the rules from stdin: %s\n",
                   std::strerror(errno));
      return 1;
    }
    auto rules = ctl::parse_ipvsadm_restore(text);
    if (const auto* err = std::get_if<std::string>(&rules)) {
      print_message(stderr, *err);
      return 2;
    }
    req.push_back("--");
    req.push_back(std::move(text));
  }
  const json reply = call(sock, req);
  if (refused(reply)) return 1;
  const json& r = reply["result"];
  if (as_json)
    std::cout << r.dump(2) << "\n";
  else
    print_text(r);
  return 0;
}

std::string basename_of(const char* path) {
  const std::string p = path != nullptr ? path : "";
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock = std::getenv("TANDEM_SOCKET") ? std::getenv("TANDEM_SOCKET") : kDefaultSocket;
  // Symlinked as ipvsadm: every argument is ipvsadm's (its -s is the scheduler, not a socket).
  const std::string self = basename_of(argc > 0 ? argv[0] : nullptr);
  if (self == "ipvsadm" || self == "ipvsadm-save" || self == "ipvsadm-restore") {
    std::vector<std::string> args;
    if (self == "ipvsadm-save") args.push_back("-S");
    if (self == "ipvsadm-restore") args.push_back("-R");
    for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
    return run_ipvsadm(sock, false, args);
  }
  bool as_json = false;
  std::vector<std::string> cmd;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!cmd.empty() && cmd[0] == "ipvsadm") {
      cmd.push_back(a);  // ipvsadm's own options (-s, -h, ...), passed on as they are
    } else if ((a == "-s" || a == "--socket") && i + 1 < argc) {
      sock = argv[++i];
    } else if (a == "--json" || a == "-j") {
      as_json = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-' && cmd.empty()) {
      std::fprintf(stderr, "tandemctl: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    } else {
      cmd.push_back(a);
    }
  }
  if (cmd.empty()) {
    usage(stderr);
    return 2;
  }
  if (cmd[0] == "lb") return run_lb(sock, as_json, cmd);
  if (cmd[0] == "ipvsadm")
    return run_ipvsadm(sock, as_json, std::vector<std::string>(cmd.begin() + 1, cmd.end()));
  if (std::string err = check_usage(cmd); !err.empty()) {
    std::fprintf(stderr, "tandemctl: %s\n", err.c_str());
    usage(stderr);
    return 2;
  }
  if (cmd[0] == "import") return import_keepalived_file(cmd[2]);
  // Output formats are tandemctl's business: the daemon answers JSON.
  bool kea_csv = false;
  if (cmd[0] == "leases") {
    for (size_t i = 1; i + 1 < cmd.size();) {
      if (cmd[i] == "--format") {
        kea_csv = true;
        cmd.erase(cmd.begin() + static_cast<long>(i), cmd.begin() + static_cast<long>(i) + 2);
      } else {
        i += 2;
      }
    }
  }
  json reply = call(sock, cmd);
  if (refused(reply)) return 1;
  const json& r = reply["result"];
  if (kea_csv) {
    print_kea_csv(r);
    return 0;
  }
  if (as_json) {
    std::cout << r.dump(2) << "\n";
    return 0;
  }
  const std::string& c = cmd[0];
  if (c == "status") {
    print_status(r);
  } else if (c == "ports") {
    print_ports(r);
  } else if (c == "vrrp") {
    print_vrrp(r);
  } else if (c == "neighbors" && cmd.size() == 1) {
    print_neighbors(r);
  } else if (c == "neighbors") {
    std::printf("resolving %s on %s: %s\n", r["ip"].get<std::string>().c_str(),
                r["port"].get<std::string>().c_str(), r["state"].get<std::string>().c_str());
  } else if (c == "leases") {
    print_leases(r);
  } else if (c == "lease") {
    std::printf("released %s\n", r["released"].get<std::string>().c_str());
  } else if (c == "dhcp") {
    print_pools(r);
  } else if (c == "sync") {
    print_sync(r);
  } else if (c == "config" && cmd[1] == "push") {
    std::printf("pushed %s (%s bytes): %s\n", r["pushed"].get<std::string>().c_str(),
                r["bytes"].dump().c_str(), r["peer"].get<std::string>().c_str());
  } else if (c == "config") {
    std::printf("configuration reloaded from %s (generation %s)\n",
                r["file"].get<std::string>().c_str(), r["generation"].dump().c_str());
  } else {
    std::cout << r.dump(2) << "\n";
  }
  return 0;
}
