#pragma once
// The DHCPv4 server logic a worker runs per request (RFC 2131 §4.3): subnet selection, client
// classes, reservations, pools (through the worker's LeaseStore), lease times, option precedence
// and the reply's addressing (§4.1). Pure C++ over a parsed Request and a reply buffer: no DPDK,
// no config parser; the per-packet path never allocates, locks or throws.
//
// ServerConfig is an immutable snapshot built once by control (ctl::make_dhcp_config) and read by
// workers; Server holds per-worker state (counters) and a reference to the worker's LeaseStore.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/counter.h"
#include "dhcp/codec.h"
#include "dhcp/leases.h"
#include "dhcp/rate_limit.h"

namespace dhcp {

inline constexpr uint32_t kNoIndex = 0xffffffff;

// Lease times in seconds (resolved: each subnet and pool holds what applies to it).
struct LeaseTimes {
  uint32_t default_s = 3600;
  uint32_t min_s = 60;
  uint32_t max_s = 86400;
};

// The options of one level, pre-encoded: value bytes in one buffer, an O(1) index per code, and
// the codes in the order they were set. Control builds it (allocates); workers only read.
class OptionTable {
 public:
  // Control thread. Sets `code` (1..254) to `value` (at most 65535 bytes); a second set of the
  // same code replaces the index entry (the old bytes stay, unused).
  void set(uint8_t code, std::span<const uint8_t> value);
  // Worker; O(1).
  bool has(uint8_t code) const noexcept { return index_[code].present; }
  std::span<const uint8_t> get(uint8_t code) const noexcept {
    const Entry& e = index_[code];
    return {bytes_.data() + e.off, e.len};
  }
  std::span<const uint8_t> codes() const noexcept { return codes_; }

 private:
  struct Entry {
    uint32_t off = 0;
    uint16_t len = 0;
    bool present = false;
  };
  std::array<Entry, 256> index_{};
  std::vector<uint8_t> bytes_;
  std::vector<uint8_t> codes_;
};

struct SubnetConf {
  uint32_t network = 0;  // host order, host bits zero
  uint8_t len = 24;
  uint32_t port =
      kNoIndex;            // unrelayed clients on this port; kNoIndex: ports with an address in it
  uint32_t server_id = 0;  // option 54; 0: the receiving port's address
  bool authoritative = true;  // NAK what we cannot give (else stay silent)
  uint16_t min_secs = 0;
  uint16_t renew_permille = 500;   // T1
  uint16_t rebind_permille = 875;  // T2
  LeaseTimes lease;
  uint32_t options = kNoIndex;              // index into ServerConfig::tables
  uint32_t first_pool = 0, pool_count = 0;  // pools[first_pool, first_pool + pool_count)

  uint32_t mask() const noexcept { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
  bool contains(uint32_t ip) const noexcept { return (ip & mask()) == network; }
};

// A pool; its index in ServerConfig::pools is its pool id in the LeaseStore.
struct PoolConf {
  uint32_t first = 0, last = 0;  // inclusive, host order
  uint32_t subnet = 0;
  uint64_t classes = 0;  // bit i: members of class i may use it; 0: open to every client
  LeaseTimes lease;
  uint32_t options = kNoIndex;

  uint64_t size() const noexcept { return uint64_t{last} - first + 1; }
};

enum class HostKey : uint8_t { kMac, kClientId, kCircuitId, kRemoteId };

// A reservation. Its client is known to the LeaseStore by host_client_key(), whatever the
// client's own key (so that circuit-id and remote-id reservations work through LeaseStore).
struct HostConf {
  uint32_t subnet = 0;
  HostKey key = HostKey::kMac;
  uint32_t id_off = 0;  // into ServerConfig::bytes
  uint16_t id_len = 0;
  uint32_t ip = 0;
  uint32_t pool = kNoIndex;  // pool holding `ip` (reserved in the LeaseStore), or none (static)
  uint32_t options = kNoIndex;
};

struct ClassMatch {
  enum class Field : uint8_t { kVendorClass, kCircuitId, kRemoteId };  // 60, 82.1, 82.2
  Field field = Field::kVendorClass;
  bool prefix = false;
  uint32_t off = 0;  // value in ServerConfig::bytes
  uint16_t len = 0;
};

struct ClassConf {
  uint32_t first_match = 0, match_count = 0;  // all must hold
};

// The immutable snapshot. Written by the control thread only (add_* helpers, then finish())
// before it is published; read-only for workers afterwards, and freed by control once no worker
// uses it any more.
struct ServerConfig {
  static constexpr size_t kMaxClasses = 64;  // class masks are 64-bit

  std::vector<SubnetConf> subnets;  // file order
  std::vector<PoolConf> pools;      // grouped by subnet, file order inside
  std::vector<HostConf> hosts;
  std::vector<ClassConf> classes;
  std::vector<ClassMatch> matches;
  std::vector<uint8_t> bytes;  // host identifiers and class match values
  std::vector<OptionTable> tables;
  uint32_t global_options = kNoIndex;
  // Addresses of each port (index = port index): subnets without `port` serve the ports that hold
  // an address inside them.
  std::vector<std::vector<uint32_t>> port_addresses;

  // Built by finish().
  struct List {
    uint32_t off = 0, count = 0;  // into `lists`
  };
  struct Relay {
    uint32_t ip = 0;
    List subnets;
  };
  struct HostIndex {
    uint64_t hash = 0;  // of (subnet, key kind, id)
    uint32_t host = 0;
    bool operator<(const HostIndex& o) const noexcept { return hash < o.hash; }
  };
  std::vector<uint32_t> lists;        // subnet indexes
  std::vector<List> by_port;          // port index -> subnets, file order
  std::vector<Relay> relays;          // sorted by ip
  std::vector<uint32_t> by_network;   // subnet indexes sorted by network
  std::vector<HostIndex> host_index;  // sorted by hash
  bool dispatch_by_circuit = false;   // owner_of: clients by circuit-id (per-circuit limits)
  // dhcp.limits (0 = no limit): DISCOVER+REQUEST per chaddr, and per circuit-id + giaddr, per
  // window. Counted by each worker's RequestLimiter (a circuit's clients share one worker when
  // per_circuit is set: dispatch_by_circuit).
  struct Limits {
    uint64_t window_ns = 10'000'000'000;
    uint32_t per_mac = 0, per_circuit = 0;
    uint32_t leases_per_circuit = 0;  // addresses offered or bound per circuit-id + giaddr
  };
  Limits limits;
  // With several workers: which worker's LeaseStore holds each pool address (its slice), sorted
  // by `first`. Requests that name an address go to its holder (owner_of). Empty with one worker.
  struct Holder {
    uint32_t first = 0, last = 0, worker = 0;
  };
  std::vector<Holder> holders;
  // The worker holding `ip`, or kNoIndex. O(log slices).
  uint32_t holder_of(uint32_t ip) const noexcept;

  // Control thread (allocate). Each returns the new element's index.
  uint32_t add_table(const OptionTable& t);
  uint32_t add_subnet(const SubnetConf& s);
  // Appends to the last subnet added; sets subnet and the subnet's pool span.
  uint32_t add_pool(PoolConf p);
  // Finds the pool of the host's subnet holding `h.ip` itself.
  uint32_t add_host(HostConf h, std::span<const uint8_t> id);
  // Returns false past kMaxClasses.
  bool add_class(std::span<const ClassMatch> matches_in,
                 std::span<const std::span<const uint8_t>> values);
  // Builds the lookup indexes. `relays_of[s]`: the relay addresses of subnet s.
  void finish(const std::vector<std::vector<uint32_t>>& relays_of);
};

// The LeaseStore identity of a reservation's client (see HostConf). Pure.
ClientKey host_client_key(const ServerConfig& c, const HostConf& h) noexcept;

// Multi-worker dispatch: which of `n` workers handles a request. A client with a reservation (by
// any key) goes to the worker holding the reserved address; a request naming an address of our
// pools (REQUEST: option 50 or ciaddr; RELEASE, DECLINE: ciaddr; DISCOVER: option 50) to the
// worker holding that address; any other to the hash of chaddr, or of the option-82 circuit-id
// when per-circuit limits are set (then every request of a circuit goes there, so one worker
// counts it). Pure; O(log hosts + log slices).
struct Ingress;
uint32_t owner_of(const ServerConfig& c, const Request& req, const Ingress& in,
                  uint32_t n) noexcept;
// The worker that holds a reservation's address: a hash of its key (for a MAC reservation the same
// as the chaddr dispatch).
uint32_t owner_of(const ServerConfig& c, const HostConf& h, uint32_t n) noexcept;

// Where the receiving worker got the request.
struct Ingress {
  uint32_t port = 0;          // port index (as in ServerConfig::port_addresses)
  uint32_t port_ip = 0;       // the receiving port's address: server id when a subnet sets none
  bool to_broadcast = false;  // informational: the request was sent to a broadcast address
  // The addresses this node holds now (interface addresses and the VIPs it is VRRP master of).
  // When set, a subnet whose server_id is none of them is not served (Reason::kStandby): in a
  // pair, only the node holding the virtual IP answers. Empty: no such gating (tests, tools).
  std::span<const uint32_t> owned;
  // The caller passes a DISCOVER this worker cannot serve for want of an address to another
  // worker (borrowing from its slice): pool_exhausted is then not counted here.
  bool may_lend = false;
};

// Where the reply goes (RFC 2131 §4.1). The caller builds Ethernet/IP/UDP from it.
struct Addressing {
  enum class L2 : uint8_t {
    kBroadcast,  // ff:ff:ff:ff:ff:ff
    kChaddr,     // the request's chaddr (client on the link, no ARP)
    kRoute,      // resolve `ip` as a next hop (a relay)
  };
  uint32_t ip = 0;  // destination, host order
  uint16_t port = 0;
  L2 l2 = L2::kBroadcast;
  uint32_t src_ip = 0;  // source address: the server identifier sent in option 54
};

// Why a request got no reply (or a NAK). Names are the `reason` label of the counter.
enum class Reason : uint8_t {
  kNone,
  kNoSubnet,        // no subnet for the relay or the receiving port
  kMinSecs,         // secs below min_secs
  kNotForUs,        // option 54 names another server (SELECTING, DECLINE, RELEASE)
  kPoolExhausted,   // no free address in the pools the client may use
  kNoPool,          // the client may use no pool of the subnet(s)
  kWrongSubnet,     // the requested address lies outside the selected subnet(s)
  kNotAllowed,      // the address is reserved for another client or in a pool of other classes
  kTaken,           // the address is held by another client or in quarantine
  kUnknownAddress,  // the address is in the subnet but in no pool or reservation of ours
  kBadRequest,      // REQUEST without 50 or ciaddr, DECLINE without 50, RELEASE without ciaddr
  kNoLease,         // RELEASE/DECLINE of an address the client does not hold
  kNotServed,       // OFFER, ACK, NAK: messages a server does not take
  kNoRoom,          // reply buffer shorter than kMinReplyLen
  kStandby,         // the subnet's server identifier is a virtual IP this node does not hold
  kRateLimited,     // over dhcp.limits (requests per MAC or per circuit in the window)
  kCircuitFull,     // the client's circuit holds leases_per_circuit addresses already
  kCount
};
inline constexpr std::array<const char*, static_cast<size_t>(Reason::kCount)> kReasonNames{
    "none",         "no_subnet",   "min_secs", "not_for_us",      "pool_exhausted", "no_pool",
    "wrong_subnet", "not_allowed", "taken",    "unknown_address", "bad_request",    "no_lease",
    "not_served",   "no_room",     "standby",  "rate_limited",    "circuit_full"};

struct Outcome {
  MessageType sent = MessageType::kNone;  // kNone: nothing to send
  size_t len = 0;                         // payload length in `out`
  Addressing dst;
  Reason reason = Reason::kNone;     // why nothing was sent, or why a NAK
  bool options_left_out = false;     // some option did not fit the client's size limit
  bool relay_info_left_out = false;  // option 82 did not fit (RFC 3046 §2.2: reply without it)
};

class Server {
 public:
  // Single writer: the worker that owns this Server; the exporter reads (sums) them.
  struct Counters {
    std::array<dp::Counter, static_cast<size_t>(Reason::kCount)> reasons{};  // drops and NAKs
    std::array<dp::Counter, 9> sent{};                                       // by MessageType
    dp::Counter options_left_out, relay_info_left_out;
  };

  // Worker, at start or at a loop boundary (config swap). Both must outlive the Server.
  Server(const ServerConfig& config, LeaseStore& store) noexcept : cfg_(&config), store_(&store) {}
  void set_config(const ServerConfig& config) noexcept { cfg_ = &config; }
  const ServerConfig* config() const noexcept { return cfg_; }
  // Worker, at start: the table that enforces ServerConfig::limits (none: no limits).
  void set_limiter(RequestLimiter* l) noexcept { limiter_ = l; }
  // Worker, at start: the per-circuit lease counts (leases_per_circuit); none: not enforced.
  void set_circuit_counts(CircuitCounts* c) noexcept { circuits_ = c; }
  // Worker: accounts a lease change the server did not make itself (expiry, operator release)
  // in the per-circuit counts. Cheap no-op when leases_per_circuit is off.
  void track(const LeaseEvent& e, uint64_t circuit_key = 0) noexcept;
  const RequestLimiter* limiter() const noexcept { return limiter_; }

  // Worker, per request. Handles `req` (already parsed), writes any reply into `out` (capacity
  // >= kMaxReplyLen recommended; must not overlap the request) and appends lease changes to
  // `events` (reserved capacity: at most 2 per call). No allocation; O(subnets + pools of the
  // selected subnets + classes) plus O(log hosts).
  Outcome handle(const Request& req, const Ingress& in, uint64_t now_ns, std::span<uint8_t> out,
                 std::vector<LeaseEvent>* events) noexcept;

  const Counters& counters() const noexcept { return counters_; }

 private:
  struct Client;
  struct Reply;
  Outcome discover(const Request& req, const Ingress& in, const Client& cl, uint64_t now,
                   std::span<uint8_t> out, std::vector<LeaseEvent>* events) noexcept;
  Outcome request(const Request& req, const Ingress& in, const Client& cl, uint64_t now,
                  std::span<uint8_t> out, std::vector<LeaseEvent>* events) noexcept;
  Outcome inform(const Request& req, const Ingress& in, const Client& cl,
                 std::span<uint8_t> out) noexcept;
  Outcome release_or_decline(const Request& req, const Ingress& in, const Client& cl, uint64_t now,
                             std::vector<LeaseEvent>* events) noexcept;
  Outcome build(const Request& req, const Ingress& in, const Reply& r,
                std::span<uint8_t> out) noexcept;
  Outcome nak_or_ignore(const Request& req, const Ingress& in, uint32_t subnet, Reason why,
                        std::span<uint8_t> out) noexcept;
  const HostConf* find_host(uint32_t subnet, const Client& cl) const noexcept;
  uint32_t server_id(uint32_t subnet, const Ingress& in) const noexcept;
  bool standby(std::span<const uint32_t> cands, const Ingress& in) const noexcept;
  void count(const Outcome& o, const Ingress& in) noexcept;
  uint32_t lease_seconds(const Request& req, const LeaseTimes& t) const noexcept;
  bool pool_allowed(const PoolConf& p, uint64_t classes) const noexcept {
    return p.classes == 0 || (p.classes & classes) != 0;
  }

  const ServerConfig* cfg_;
  LeaseStore* store_;
  RequestLimiter* limiter_ = nullptr;
  CircuitCounts* circuits_ = nullptr;
  Counters counters_;
};

}  // namespace dhcp
