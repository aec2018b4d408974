#pragma once
// The validated configuration model: plain data, no libconfig, no DPDK.
// Produced by cfg::load_file() on the control thread; read-only afterwards.
// Addresses are stored in host byte order.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lb/model.h"

namespace cfg {

using Mac = std::array<uint8_t, 6>;

struct Ipv4Prefix {
  uint32_t addr = 0;  // host byte order
  uint8_t len = 32;
  bool operator==(const Ipv4Prefix&) const = default;
  uint32_t mask() const { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
  // True when `ip` (host order) lies in this prefix's subnet.
  bool contains(uint32_t ip) const { return (ip & mask()) == (addr & mask()); }
};

enum class IdleMode { kBusy, kAdaptive };

// eal { ... }: how the DPDK environment abstraction layer is started.
struct Eal {
  uint32_t memory_mb = 256;            // -m; 16..1048576
  bool hugepages = true;               // false: --no-huge --no-shconf (tests, small labs)
  bool in_memory = true;               // --in-memory (needs hugepages); false: --file-prefix
  std::string file_prefix = "tandem";  // used when in_memory = false (secondary tools attach)
  std::string log_level = "notice";    // emerg|alert|crit|error|warning|notice|info|debug
  std::vector<std::string> args;       // extra EAL args, verbatim, appended last
  int line = 0;
};

// dataplane { ... }: lcores, idle behaviour, mempool.
struct Dataplane {
  uint32_t control_core = 0;              // EAL main lcore: control thread
  std::vector<uint32_t> worker_cores{1};  // one worker lcore each; 1..64 entries, distinct
  IdleMode idle = IdleMode::kAdaptive;
  uint32_t idle_sleep_max_us = 200;  // adaptive: longest sleep when idle; 1..100000
  uint32_t burst = 32;               // RX burst size; 1..256
  uint32_t mbufs = 16383;            // per-port mbuf pool size; 1023..16777215
  uint32_t mbuf_cache = 256;         // per-lcore cache; 0..512
  int line = 0;
};

// ports = ( { ... }, ... ): one DPDK port each.
struct Port {
  std::string name;    // logical name used by CLI, metrics and other config keys
  std::string device;  // "0000:03:00.0" (PCI, allow-listed) or a vdev "net_af_packet0,iface=front0"
  bool is_pci = false;                // derived: device is a PCI address
  std::vector<Ipv4Prefix> addresses;  // interface addresses owned by this port
  uint16_t mtu = 1500;                // 68..9600
  uint16_t rx_desc = 1024;            // 64..16384, power of two
  uint16_t tx_desc = 1024;            // 64..16384, power of two
  // Kernel exception path: a TAP interface of this name (≤ 15 characters) gets the port's MAC
  // and interface addresses; the kernel's traffic for them (health checks of real servers, an
  // operator's ssh) passes through it. "" = none.
  std::string tap;
  int line = 0;
};

struct StaticNeighbor {
  std::string port;
  uint32_t ip = 0;
  Mac mac{};
  int line = 0;
};

// neighbors { ... }: ARP resolution and aging of next hops.
struct Neighbors {
  uint32_t reachable_ms = 30000;  // learned entry valid this long before re-probing; 1000..3600000
  uint32_t probe_interval_ms = 1000;  // between ARP probes; 10..60000
  uint32_t probes = 3;                // unanswered probes before an entry is dropped; 1..100
  uint32_t max_entries = 65536;       // table size; 16..16777216
  std::vector<StaticNeighbor> statics;
  int line = 0;
};

// arp { ... }: announcements.
struct Arp {
  uint32_t garp_count = 3;           // gratuitous ARPs per address at start; 0..100
  uint32_t garp_interval_ms = 1000;  // spacing; 10..60000
  int line = 0;
};

struct Control {
  std::string socket = "/run/tandem/tandem.sock";
  int line = 0;
};

struct Metrics {
  bool enabled = true;
  std::string listen = "127.0.0.1:9469";  // host:port
  int line = 0;
};

// vrrp { ... }: virtual routers (keepalived's vrrp_instance / vrrp_script / vrrp_sync_group).
enum class VrrpChecksum { kKeepalived, kRfc9568 };

struct VrrpScript {  // vrrp.scripts: a command run at an interval; exit 0 = up
  std::string name;
  std::string command;          // run with /bin/sh -c
  uint32_t interval_ms = 1000;  // 100..3600000
  uint32_t timeout_ms = 1000;   // 10..3600000, < interval_ms; default: 1000, or interval/2 if less
  int weight = 0;               // -254..254; 0: FAULT while down
  uint32_t rise = 1;            // 1..100 consecutive successes to go up
  uint32_t fall = 1;            // 1..100 consecutive failures to go down
  int line = 0;
};

struct VrrpTrackPort {  // link state of a port
  std::string port;
  int weight = 0;  // -254..254; 0: FAULT while the link is down
  int line = 0;
};

struct VrrpTrackScript {
  std::string script;         // a vrrp.scripts name
  std::optional<int> weight;  // overrides the script's weight for this instance
  int line = 0;
};

struct VrrpTrackService {  // a load-balanced service's health (lb.services[].name)
  std::string service;
  uint32_t min_healthy = 1;  // up while at least this many real servers are healthy; 1..1000
  int weight = 0;            // -254..254; 0: FAULT while fewer are healthy
  int line = 0;
};

struct VrrpInstance {
  std::string name;
  std::string port;         // the port the instance runs on
  uint32_t vrid = 0;        // 1..255, unique per port
  uint32_t version = 3;     // 2 or 3
  uint32_t priority = 100;  // 1..255 (255: address owner)
  uint32_t advert_interval_ms =
      1000;  // v3: 10..40950 in steps of 10; v2: 1000..255000 in steps of 1000
  bool preempt = true;
  uint32_t preempt_delay_ms = 0;        // 0..3600000
  std::vector<Ipv4Prefix> virtual_ips;  // 1..32
  bool virtual_mac = false;             // answer and send with 00:00:5e:00:01:VRID
  std::string auth_pass;                // v2 only, ≤ 8 characters (auth_type PASS)
  std::vector<uint32_t> unicast_peers;  // send adverts unicast to these instead of 224.0.0.18
  std::vector<VrrpTrackPort> track_ports;
  std::vector<VrrpTrackScript> track_scripts;
  std::vector<VrrpTrackService> track_services;
  std::string notify;  // script run on every transition: INSTANCE NAME STATE PRIORITY
  int line = 0;
};

struct VrrpSyncGroup {  // instances that always change state together
  std::string name;
  std::vector<std::string> instances;
  std::string notify;  // run on group transitions: GROUP NAME STATE 0
  int line = 0;
};

struct Vrrp {
  VrrpChecksum checksum = VrrpChecksum::kKeepalived;  // v3 checksum we send
  uint32_t garp_count = 5;          // gratuitous ARPs per VIP on becoming master; 0..100
  uint32_t garp_interval_ms = 100;  // 10..60000
  uint32_t garp_refresh_s = 0;      // re-announce every N s while master; 0 = never; 0..86400
  std::string notify;               // run on every instance transition (like keepalived's notify)
  std::vector<VrrpScript> scripts;
  std::vector<VrrpInstance> instances;
  // Instances in no explicit group form one implicit group: by default every VIP fails over
  // together and one node owns them all.
  std::vector<VrrpSyncGroup> sync_groups;
  int line = 0;
};

// dhcp { ... }: the DHCPv4 server the workers run (RFC 2131/2132). Vocabulary from ISC dhcpd and
// Kea: subnets with pools (ranges), host reservations, client classes, options at every level.
// Values that an inner level may override (lease times, authoritative, min_secs, renew/rebind)
// are stored resolved: each subnet and pool holds what applies to it.

// An option as it goes on the wire: the parser encodes the typed value (addresses, strings,
// integers, RFC 3442 routes, RFC 1035 domain lists, hex) into `data`.
struct DhcpOption {
  uint8_t code = 0;           // 1..254, none of those the server sets itself (0, 50..59, 61,
                              // 82, 255: see docs/configuration.md)
  std::vector<uint8_t> data;  // value bytes, without code and length; 0..1024 bytes (values over
                              // 255 bytes go out as several instances, RFC 3396)
  int line = 0;
  // Same option on the wire (the line does not count).
  bool operator==(const DhcpOption& o) const { return code == o.code && data == o.data; }
};

// Lease times in seconds, each 10..31536000, min_s <= default_s <= max_s.
struct DhcpLeaseTime {
  uint32_t default_s = 3600;  // default_lease_s: granted when the client asks for no time
  uint32_t min_s = 60;        // min_lease_s: a client's request (option 51) is raised to this
  uint32_t max_s = 86400;     // max_lease_s: ... and lowered to this
  bool operator==(const DhcpLeaseTime&) const = default;
};

// One test of a client class: option 60 (vendor class) or an option-82 sub-option.
struct DhcpMatch {
  enum class Field : uint8_t { kVendorClass, kCircuitId, kRemoteId };  // 60, 82.1, 82.2
  Field field = Field::kVendorClass;
  bool prefix = false;         // the client's value starts with `value` (else: equals it)
  std::vector<uint8_t> value;  // 1..255 bytes
  bool operator==(const DhcpMatch&) const = default;
};

// dhcp.classes: a client belongs when every match holds
struct DhcpClass {
  std::string name;
  std::vector<DhcpMatch> match;  // at least one, at most one per field
  int line = 0;
};

// How a reservation recognises its client.
enum class DhcpHostKey : uint8_t { kMac, kClientId, kCircuitId, kRemoteId };

// subnets[].hosts: a reservation (ISC host, Kea reservation)
struct DhcpHost {
  std::string name;  // optional; unique among all hosts when set
  DhcpHostKey key = DhcpHostKey::kMac;
  std::vector<uint8_t> id;  // 6 bytes (chaddr) or the value of option 61 / 82.1 / 82.2
  uint32_t ip = 0;          // inside the subnet; may lie in a pool (withheld from others)
  std::vector<DhcpOption> options;
  int line = 0;
};

// subnets[].pools
struct DhcpPool {
  uint32_t first = 0;                // range, inclusive, host order; inside the subnet, never
  uint32_t last = 0;                 // its network or broadcast address; no overlaps anywhere
  std::vector<std::string> classes;  // empty: any client; else members of one of these only
  DhcpLeaseTime lease;               // resolved (pool, else subnet, else global)
  std::vector<DhcpOption> options;
  int line = 0;
};

struct DhcpSubnet {
  Ipv4Prefix subnet;               // network address (host bits zero), length 1..30
  std::string port;                // clients on this port, unrelayed; "": any port with an
                                   // address inside `subnet`
  std::vector<uint32_t> relays;    // giaddr values that select this subnet (may be shared)
  uint32_t server_id = 0;          // option 54; 0: the receiving port's address
  bool authoritative = true;       // resolved
  uint32_t min_secs = 0;           // resolved
  uint32_t renew_permille = 500;   // resolved; T1 = lease * renew_permille / 1000
  uint32_t rebind_permille = 875;  // resolved; T2
  DhcpLeaseTime lease;             // resolved
  std::vector<DhcpOption> options;
  std::vector<DhcpPool> pools;
  std::vector<DhcpHost> hosts;
  int line = 0;
};

enum class DhcpDurability : uint8_t {
  kStrict,   // a reply waits until its lease change is on disk (group commit: one fsync a batch)
  kBatched,  // reply at once; write and fsync every fsync_interval_ms (a crash loses that much)
  kNone,     // no journal, no snapshots: leases live in memory only
};

// dhcp.leases
struct DhcpLeaseStore {
  std::string journal = "/var/lib/tandem/dhcp4.journal";    // append-only; absolute path
  std::string snapshot = "/var/lib/tandem/dhcp4.snapshot";  // absolute, not the journal
  DhcpDurability durability = DhcpDurability::kStrict;
  uint32_t fsync_interval_ms = 10;      // batched: 1..10000
  uint32_t snapshot_interval_s = 3600;  // write a snapshot and restart the journal; 60..86400
  uint32_t journal_max_mb = 64;         // ... or as soon as the journal is this big; 1..65536
  // Lease changes each worker may have waiting for the journal thread (a power of two,
  // 1024..16777216, 80 bytes each of hugepage memory): what rides out a slow fsync.
  uint32_t queue = 65536;
  int line = 0;
};

// dhcp.limits: against starvation and floods; 0 = no limit
struct DhcpLimits {
  uint32_t window_ms = 10000;         // counting window of the request limits; 100..3600000
  uint32_t requests_per_mac = 0;      // DISCOVER+REQUEST per chaddr per window; 0..1000000
  uint32_t requests_per_circuit = 0;  // ... per option-82 circuit-id and giaddr; 0..1000000
  uint32_t leases_per_circuit = 0;    // addresses offered or bound per circuit-id; 0..1000000
  int line = 0;
};

struct Dhcp {
  bool enabled = false;       // true when the dhcp group is present, unless set false
  bool authoritative = true;  // NAK requests for addresses we do not know
  DhcpLeaseTime lease;
  uint32_t renew_permille = 500;    // T1 (option 58) = lease * renew_permille / 1000; 1..999
  uint32_t rebind_permille = 875;   // T2 (option 59); 1..999, > renew_permille
  uint32_t min_secs = 0;            // ignore DISCOVER/REQUEST with a lower secs; 0..65535
  uint32_t offer_hold_ms = 30000;   // an offered address waits this long for its REQUEST;
                                    // 1000..600000
  uint32_t decline_hold_s = 86400;  // quarantine of a DECLINEd address; 1..31536000
  DhcpLimits limits;
  DhcpLeaseStore leases;
  std::vector<DhcpOption> options;  // global level
  std::vector<DhcpClass> classes;
  std::vector<DhcpSubnet> subnets;  // prefixes do not overlap
  int line = 0;
};

// routing { ... }: the node as an IPv4 router between its ports (an LVS-NAT director is its real
// servers' gateway). Connected prefixes of the ports are routes of their own.
struct StaticRoute {
  Ipv4Prefix to;     // destination prefix (network address, host bits zero)
  uint32_t via = 0;  // gateway: on a connected prefix of some port
  std::string port;  // resolved: the port whose connected prefix holds `via`
  int line = 0;
};

struct Routing {
  bool forward = false;              // route transit traffic (true when the group is present)
  uint32_t icmp_errors_per_s = 1000;  // ICMP errors (TTL exceeded, unreachable) per worker; 0..1000000
  std::vector<StaticRoute> routes;
  int line = 0;
};

// lb { ... }: the L4 load balancer (LVS's virtual_server / real_server).
struct LbCheck {  // keepalived's TCP_CHECK / HTTP_GET
  enum class Type : uint8_t { kNone, kTcp, kHttp };
  Type type = Type::kNone;
  uint16_t port = 0;  // 0: the real server's port
  std::string path = "/";
  uint32_t status = 200;
  std::string host;              // HTTP Host header; "": the real server's address
  uint32_t interval_ms = 2000;   // delay_loop; 10..3600000
  uint32_t timeout_ms = 1000;    // connect_timeout; 10..600000, < interval_ms
  uint32_t retries = 1;          // extra attempts in a round (retry); 0..100
  uint32_t retry_delay_ms = 200;  // delay_before_retry; 0..600000
  uint32_t rise = 1, fall = 1;   // consecutive rounds to come back / to fail; 1..100
  bool operator==(const LbCheck&) const = default;
};

struct LbService {
  std::string name;  // optional label (metrics use the service key)
  lb::ServiceSpec spec;
  LbCheck check;
  std::vector<int> real_lines;  // line of each spec.reals[i]
  int line = 0;
};

struct LbTimeouts {  // seconds (ipvsadm --set tcp tcpfin udp)
  uint32_t tcp = 900, tcp_fin = 120, udp = 300;
  bool operator==(const LbTimeouts&) const = default;
};

struct Lb {
  bool enabled = false;            // true when the group is present
  uint32_t connections = 1 << 20;  // connection table entries per worker; 1024..67108864
  uint32_t maglev_table_size = 65537;  // prime, 65537..1048573
  LbTimeouts timeouts;
  std::vector<LbService> services;
  int line = 0;
};

// sync { ... }: replication to the pair's other node over the dedicated sync link.
enum class SyncMode { kStrict, kAsync };
struct Sync {
  bool enabled = false;  // true when the group is present
  uint32_t address = 0;  // ours on the sync link (the socket binds it), host order
  uint32_t peer = 0;     // the other node's address on the sync link
  uint16_t port = 9470;  // UDP, both sides
  std::string interface;  // optional: the socket is bound to it (SO_BINDTODEVICE)
  std::string key;        // HMAC-SHA256 key (key or key_file; at least 16 bytes)
  SyncMode dhcp = SyncMode::kStrict;  // strict: an ACK leaves once the peer holds its lease
  bool connections = true;            // replicate load-balancer connections (asynchronously)
  uint32_t heartbeat_ms = 100;
  uint32_t dead_ms = 500;             // peer silent this long: down (strict stops waiting)
  uint32_t connection_refresh_s = 60;  // a busy connection is re-sent this often
  uint32_t resync_wait_ms = 1000;  // at start, how long to wait for the peer before serving alone
  std::string config_include;      // file `tandemctl config push` sends (relative to the config)
  int line = 0;
};

struct Config {
  std::string file;             // path it was loaded from
  std::string node = "tandem";  // node name, shown by status and metrics
  Eal eal;
  Dataplane dataplane;
  std::vector<Port> ports;
  Neighbors neighbors;
  Arp arp;
  Control control;
  Metrics metrics;
  Vrrp vrrp;
  Dhcp dhcp;
  Routing routing;
  Lb lb;
  Sync sync;
};

struct Error {
  std::string file;
  int line = 0;  // 0 when the error is not tied to a line (unreadable file)
  std::string message;
  // "FILE:LINE: message" (or "FILE: message" when line is 0)
  std::string str() const;
};

struct LoadResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<Error> errors;     // every problem found, in file order
};

// Control thread. Parses and validates; never throws.
LoadResult load_file(const std::string& path);
// Same, from text; `name` stands in for the file name in errors (tests).
LoadResult load_string(const std::string& text, const std::string& name);

// Keys that cannot change without a restart (EAL, lcores, the set of ports and their devices,
// control socket, metrics listener, the VRRP routers, dhcp.enabled and the lease files): one error
// per changed key, located in `next`'s file. Empty when `next` can be applied to a running daemon.
std::vector<Error> reload_conflicts(const Config& running, const Config& next);

// Formatting helpers shared by parser, CLI and daemon.
std::string format_ipv4(uint32_t host_order);
std::string format_prefix(uint32_t addr, uint8_t len);  // "A.B.C.D/LEN"
std::string format_mac(const Mac& mac);
std::optional<uint32_t> parse_ipv4(const std::string& s);
std::optional<Mac> parse_mac(const std::string& s);

}  // namespace cfg
