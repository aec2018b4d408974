#pragma once
// The operator's control surface of the load balancer: the running set of virtual services
// (config file + runtime edits), the two command grammars that edit it (`ipvsadm` as operators
// paste it, and the native `tandemctl lb ...`), and the text/JSON the daemon reports.
// Pure logic: no sockets, no DPDK. Control thread only; nothing here is thread-safe.
//
// ipvsadm compatibility (checked against ipvsadm.c / libipvs.c):
// - options, defaults (scheduler wlc, forwarding -g, weight 1, -p alone = 300 s), the table of
//   legal option/command combinations and its messages, the kernel errors' wording
//   ("Service already exists", "No such service", "Service not defined", "Destination already
//   exists", "No such destination", "Memory allocation problem");
// - `-L -n` / `--stats` / `--rate` / `--exact` / `-c` / `-S` layouts byte for byte, including the
//   trailing padding of real-server lines and the K/M/G/T number suffixes;
// - services listed sorted by protocol, address, port, real servers by address, port (as
//   ipvsadm without --nosort; ipvsadm's comparator wraps for addresses 2^31 apart, ours does
//   not).
// Deliberate differences:
// - -E / -e change only what they name (ipvsadm resends a whole entry: -E without -s resets the
//   scheduler to wlc and drops persistence, -e without -w resets the weight to 1). Persistence
//   is turned off with `tandemctl lb edit-service ... --persist 0`.
// - host names are never resolved (IPv4 addresses only); port names are accepted for a short
//   built-in list of well-known ones (http, https, ...) because `ipvsadm-save` without -n writes
//   them. IPv6, fwmark services, thresholds, one-packet scheduling and the sync daemon options
//   are refused with a message saying so.
// - -R applies all lines or none (ipvsadm stops at the first bad line, keeping earlier ones).

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "lb/model.h"

namespace ctl {

// One parsed operator command, from either grammar.
struct Command {
  enum class Op : uint8_t {
    kAddService,
    kEditService,
    kDelService,
    kAddReal,
    kEditReal,
    kDelReal,
    kClear,
    kList,
    kSave,
    kRestore,
    kZero,
  };
  Op op = Op::kList;
  lb::ServiceSpec svc;  // key always; sched, persist_s, persist_mask for -A/-E (reals unused)
  lb::RealServer real;  // -a/-e/-d: address, port, forwarding, weight
  // What -E / -e actually set; apply() leaves the other fields of the entry as they are.
  bool has_sched = false, has_persist = false, has_weight = false, has_fwd = false;
  bool has_mask = false;  // -M / --netmask given
  struct ListOpts {
    bool numeric = false, stats = false, rate = false, conns = false, exact = false, json = false;
    bool nosort = false;   // --nosort: services and reals in the order given
    bool has_key = false;  // kList / kZero: svc.key names one service (-L -t VIP:PORT)
  } list;
  std::vector<Command> restore;  // kRestore: the parsed lines, in order
  int line = 0;                  // restore input line this command came from (0: not from -R)
};

// The service set's origin tag: reload replaces kConfig entries, keeps kRuntime ones.
enum class Origin : uint8_t { kConfig, kRuntime };

struct ServiceEntry {
  lb::ServiceSpec spec;
  Origin origin = Origin::kConfig;
  bool operator==(const ServiceEntry&) const = default;
};

// The running set of virtual services: those from the config file plus runtime edits, in a
// stable order (insertion order; a reload keeps an entry's position).
class ServiceSet {
 public:
  // Capacity, as the data plane sizes its tables; beyond it apply() answers ipvsadm's
  // "Memory allocation problem".
  struct Limits {
    size_t services = 1024;
    size_t reals_per_service = 256;
  };
  ServiceSet() = default;
  explicit ServiceSet(Limits limits) : limits_(limits) {}

  // Control thread, at start and on reload; O(services²) for small sets.
  // Reload rule: the file is the authority for the keys it defines.
  // - a key the file defines becomes exactly the file's service (origin kConfig), replacing a
  //   config- or runtime-defined one with that key in place: runtime edits to it are lost;
  // - a config-defined service the file no longer defines is removed;
  // - a runtime-added service whose key the file does not define is kept as it is;
  // - a config-defined service deleted at runtime comes back.
  // New keys are appended in file order. Later duplicates of a key in `from_config` are ignored
  // (the config parser refuses them). Bumps generation() when anything changed.
  void load_config(const std::vector<lb::ServiceSpec>& from_config);

  // Control thread; O(services + reals). Applies one command: "" on success, else ipvsadm's
  // error message and the set unchanged. kList / kSave / kZero change nothing (they only check
  // that a named service exists). kRestore applies every line or none; its error is
  // "line N: message". kClear removes config-defined services too, until the next reload.
  // Added services are kRuntime; edits keep the entry's origin, so a real server added to a
  // config-defined service is gone after the next reload.
  std::string apply(const Command& c);

  const std::vector<ServiceEntry>& services() const { return entries_; }
  const ServiceEntry* find(const lb::ServiceKey& k) const;  // nullptr when absent
  std::vector<lb::ServiceSpec> specs() const;               // for the workers' snapshot
  uint64_t generation() const { return generation_; }       // bumps on every change

 private:
  std::string apply_one(const Command& c, bool& changed);
  ServiceEntry* find_mut(const lb::ServiceKey& k);

  Limits limits_;
  std::vector<ServiceEntry> entries_;
  uint64_t generation_ = 0;
};

// `ipvsadm ARGS...`: argv as an operator pastes it after "ipvsadm", e.g.
// {"-A", "-t", "192.0.2.100:80", "-s", "rr"}. Short options may be grouped ("-Ln") and take
// their value attached or as the next word; long options as "--name value" or "--name=value".
// Empty argv = -L (as ipvsadm with no argument). For -R the text comes separately: parse it with
// parse_ipvsadm_restore() and put the result in Command::restore. An error is ipvsadm's message;
// for an unknown option, a missing argument or no command it is followed by a short usage; -h
// (there is no help Op) gives the usage alone as the error.
std::variant<Command, std::string> parse_ipvsadm(const std::vector<std::string>& argv);

// ipvsadm-save / ipvsadm -S text: one command per line; "#" starts a comment, blank lines and
// "ipvsadm" words are skipped (as ipvsadm -R does). Only -A/-E/-D/-a/-e/-d/-C/-Z lines. Errors
// are "line N: message".
std::variant<std::vector<Command>, std::string> parse_ipvsadm_restore(const std::string& text);

// `tandemctl lb ARGS...` (argv starts after "lb"):
//   list [--stats|--rate] [--exact] [--conns] [--json]
//   add-service  tcp|udp VIP:PORT [--sched S] [--persist SECONDS] [--netmask MASK]
//   edit-service tcp|udp VIP:PORT [--sched S] [--persist SECONDS] [--netmask MASK]
//   del-service  tcp|udp VIP:PORT
//   add-real     tcp|udp VIP:PORT RIP[:PORT] [--mode nat|dr|tun] [--weight W]
//   edit-real    tcp|udp VIP:PORT RIP[:PORT] [--mode nat|dr|tun] [--weight W]
//   del-real     tcp|udp VIP:PORT RIP[:PORT]
//   clear
// add-real defaults: mode nat, weight 1; RIP without port = the service's port. --persist 0 on
// edit-service turns persistence off. dr/tun reals must use the service's port.
std::variant<Command, std::string> parse_lb(const std::vector<std::string>& argv);
std::string lb_usage();  // the grammar above, for `tandemctl lb help` and errors
std::string ipvsadm_usage();

// What the daemon reports, filled from its counters.
struct Counters {
  uint64_t conns = 0, in_pkts = 0, out_pkts = 0, in_bytes = 0, out_bytes = 0;  // totals
};
struct Rates {
  uint64_t cps = 0, in_pps = 0, out_pps = 0, in_bps = 0, out_bps = 0;  // per second; bps = bytes/s
};
struct RealView {
  lb::RealServer real;
  bool healthy = true;
  uint64_t active = 0, inactive = 0;
  Counters c;
  Rates r;
};
struct ServiceView {
  lb::ServiceSpec spec;  // spec.reals is not used: `reals` is
  Counters c;
  Rates r;
  std::vector<RealView> reals;
};
struct ConnView {
  lb::Proto proto = lb::Proto::kTcp;
  uint32_t client_ip = 0;
  uint16_t client_port = 0;
  uint32_t vip = 0;
  uint16_t vport = 0;
  uint32_t rs_ip = 0;
  uint16_t rs_port = 0;
  std::string state;  // as IPVS names them: "ESTABLISHED", "SYN_RECV", "FIN_WAIT", ..., "UDP"
  uint32_t expires_s = 0;
};

// Control thread; linear in the views (plus the sort). `ipvsadm -L -n` [--stats|--rate]
// [--exact] layout. With opts.has_key the caller passes the one service and the
// "IP Virtual Server version" line is left out, as `ipvsadm -L -t` does. opts.conns is not
// looked at: use format_ipvsadm_conns(). Unhealthy real servers are left out, as keepalived
// removes a failed real server from IPVS: the listing shows what traffic goes to (the JSON and
// the save format show them all).
std::string format_ipvsadm_list(const std::vector<ServiceView>& views,
                                const Command::ListOpts& opts);
// `ipvsadm -L -n -c`, connections in the order given.
std::string format_ipvsadm_conns(const std::vector<ConnView>& conns);
// `ipvsadm -S -n`; parse_ipvsadm_restore() of it gives back the same services.
std::string format_ipvsadm_save(const std::vector<ServiceView>& views);
// `tandemctl lb list --json`: {"services": [...]} in the order given (see the .cpp for fields).
nlohmann::json to_json(const std::vector<ServiceView>& views);

// Views with zero counters for every service of `set` (what a listing shows before the daemon
// fills in counters; also what the tests format).
std::vector<ServiceView> plain_views(const ServiceSet& set);

}  // namespace ctl
