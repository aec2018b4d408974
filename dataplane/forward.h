#pragma once
// The forwarding path: what a worker does with an IPv4 datagram handle_local() classified
// kForward — load-balanced traffic to a virtual service (NAT, DR, TUN), the replies of NAT flows,
// ICMP errors about tracked flows, and plain routing between ports (the director is its real
// servers' gateway). Pure over bytes (no EAL): the worker loop calls forward() per packet, unit
// tests and benchmarks call it directly.
//
// Ownership across workers (software steering, the fallback where the NIC cannot steer): every
// flow of a client belongs to the worker `owner_of(client address)`. A packet to a virtual
// service is owned by its source's worker; a packet from a NAT real server by its destination's
// worker. Both directions of a NAT flow, and all flows of one client (persistence, sh), meet on
// one worker, whose connection table and scheduler state are its own: no locks.

#include <array>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "dataplane/counter.h"
#include "dataplane/local.h"
#include "dataplane/route.h"
#include "dataplane/stats.h"
#include "lb/conn_table.h"
#include "lb/scheduler.h"

namespace dp {

class NeighborCache;
struct Snapshot;

// The load balancer's immutable view, published in a Snapshot (shared between snapshots while
// services do not change). Built by the control thread with build().
struct LbTable {
  std::vector<lb::Service> services;
  // Service lookup: open addressing over (proto, vip, port), power-of-two slots, -1 = empty.
  std::vector<uint64_t> keys;
  std::vector<int32_t> index;
  uint64_t mask = 0;
  // Addresses of NAT real servers (sorted): packets from them may be replies of NAT flows.
  std::vector<uint32_t> nat_reals;

  // Control thread: indexes `services` (call after filling it and building their tables).
  void build();
  // Worker, per packet: the service for (proto, vip, port), falling back to the all-port
  // service (port 0); -1 when none. O(1).
  int find(uint8_t proto, uint32_t vip, uint16_t port) const noexcept;
  bool is_nat_real(uint32_t ip) const noexcept;
};

// Everything forwarding reads that changes only with configuration (routing table, services).
struct ForwardConfig {
  bool routing = false;               // route transit traffic (routing.forward)
  Fib fib;                            // connected prefixes and static routes
  std::shared_ptr<const LbTable> lb;  // null: no load balancer
};

// Traffic counters of one worker for one service or real server (single writer: the worker).
struct LbTraffic {
  Counter conns;                // connections scheduled
  Counter in_pkts, in_bytes;    // client → real server
  Counter out_pkts, out_bytes;  // real server → client (NAT only: DR/TUN replies bypass us)
};

// A single-writer level (active connections): the worker adds and subtracts, readers sum the
// workers' values at scrape time (two's-complement wrap makes the sum right).
class Level {
 public:
  void add(int64_t d) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + static_cast<uint64_t>(d),
             std::memory_order_relaxed);
  }
  int64_t get() const noexcept { return static_cast<int64_t>(v_.load(std::memory_order_relaxed)); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct LbDestStats {
  LbTraffic t;
  Level active, inactive;
};

// Forwarding counters of one worker beyond the drop reasons.
struct ForwardStats {
  Counter routed;           // transit packets forwarded by the routing table
  Counter lb_in, lb_out;    // load-balanced packets toward real servers / back to clients
  Counter icmp_related;     // ICMP errors about a tracked flow, translated and passed on
  Counter icmp_sent;        // ICMP errors we generated (TTL, unreachable, fragmentation)
  Counter icmp_limited;     // ... suppressed by the rate limit
  Counter to_kernel;        // frames for the kernel's TAP (exception path)
  Counter handed_off;       // packets passed to the worker owning their flow
  Counter neighbor_misses;  // next hop unresolved: resolution asked, packet dropped
  Counter conn_expired;     // connections aged out
  Counter persist_hits;     // new connections sent to their persistence template's server
  Counter sync_sent;        // connection updates handed to the sync thread
  Counter sync_dropped;     // ... lost because its ring was full (the peer misses them)
  Counter sync_installed;   // connections the peer reported, installed or updated
  Counter sync_stale;       // ... ignored: we hold a newer generation
  Counter sync_refused;     // ... not installed: no such service/real server here, table full
};

// Persistence templates (ipvsadm -p): (service, client & netmask) → real server, per worker.
// Fixed size, 4-way sets, the oldest entry of a set is replaced when it is full.
class PersistTable {
 public:
  explicit PersistTable(uint32_t sets = 16384);
  // The dest id remembered for (service, client) if not expired; -1 otherwise.
  int64_t find(uint32_t service, uint32_t client, uint64_t now_ns) const noexcept;
  void put(uint32_t service, uint32_t client, uint32_t dest_id, uint64_t expires_ns) noexcept;

 private:
  struct Entry {
    uint32_t service = 0, client = 0, dest = 0, used = 0;
    uint64_t expires = 0;
  };
  std::vector<Entry> e_;
  uint32_t mask_;
};

// A connection as the sync link carries it: worker → sync thread when it changes, sync thread →
// the owning worker on the peer. Addresses and ports host order. POD (rte_ring elements).
struct ConnSync {
  uint8_t proto = 0;
  uint8_t state = 0;     // lb::TcpState
  uint8_t fwd_mode = 0;  // lb::Fwd
  uint8_t pad = 0;
  uint16_t client_port = 0, vport = 0;
  uint32_t client_ip = 0, vip = 0, rs_ip = 0;
  uint16_t rs_port = 0, pad2 = 0;
  uint32_t generation = 0;  // per connection, +1 per update sent (an older one never overwrites)
};
static_assert(sizeof(ConnSync) == 28);

// The connection as ConnSync carries it (generation: the connection's current one).
ConnSync sync_record(const lb::Conn& c) noexcept;

// A connection as listed for the operator (ipvsadm -L -c) or sent in a bulk resync, copied out by
// the worker on request.
struct ConnRecord : ConnSync {
  uint64_t expires_ns = 0;
};

// Control → worker request for a copy of the connection table (at most `max` entries): the
// control thread sets max and bumps `req`; the worker fills `out` at its next maintenance pass
// and stores `done = req` (release). Not on the per-packet path.
struct ConnDump {
  std::atomic<uint64_t> req{0}, done{0};
  uint32_t max = 0;
  std::vector<ConnRecord> out;  // reserved by the control thread: the worker never allocates
  uint64_t serving = 0;         // worker: the request being filled
  uint32_t cursor = 0;          // worker: next slot to walk
};

// One worker's load-balancing and routing state. Built by the control thread before start;
// afterwards only its worker touches it (counters are read at scrape time).
struct ForwardEngine {
  ForwardEngine(const lb::ConnTable::Params& p, uint32_t self, uint32_t n, uint32_t icmp_per_s);
  lb::ConnTable conns;
  lb::SchedState sched;
  PersistTable persist;
  IcmpRateLimit icmp;
  uint32_t worker;
  uint32_t n_workers;
  // True unless the NIC steers both directions of a flow to its owner (rte_flow rules
  // installed): then a packet's RX queue is its owner and nothing is handed off.
  std::atomic<bool> software_steering{true};
  std::vector<LbDestStats> dests;   // by lb::Dest::id
  std::vector<LbTraffic> services;  // by lb::Service::id
  ForwardStats stats;
  // A new lb::ConnTable::Timeouts waiting to be applied by the worker (control writes it, then
  // bumps timeouts_gen; the worker applies it when it sees a new generation).
  lb::Timeouts next_timeouts;
  std::atomic<uint64_t> timeouts_gen{0};
  uint64_t applied_gen = 0;
  ConnDump dump;       // the operator's listings (control thread)
  ConnDump sync_dump;  // the sync thread's bulk resync

  // Destinations routed in this poll and their next hops' MACs, reused by the packets that
  // follow in the same poll (same snapshot, same now_ns): a burst toward a few real servers looks
  // each up once. Direct-mapped by the destination's low bits (hosts differ there). Only resolved
  // hops are kept, so a miss asks the control thread again. Worker only.
  static constexpr uint32_t kHopMemo = 16;
  struct HopMemo {
    const void* snap = nullptr;  // the snapshot it was resolved in; nullptr: empty
    uint64_t at = 0;             // the poll's now_ns
    uint32_t dst = 0;
    Fib::Hop hop{};
    bool resolved = false;  // hop found, on a port of the snapshot, MAC known
    Mac mac{};
  };
  std::array<HopMemo, kHopMemo> hop_memo{};
  // The last next hop whose MAC this poll resolved: traffic to many destinations behind one
  // gateway (NAT replies to clients) misses hop_memo, which is keyed by destination, but looks
  // the gateway up once per poll. Same contract: snapshot + now_ns, resolved hops only.
  struct GatewayMemo {
    const void* snap = nullptr;
    uint64_t at = 0;
    uint32_t port = 0, next_hop = 0;
    Mac mac{};
  };
  GatewayMemo gateway_memo{};

  // Replication (sync link). Set by the control thread before start; then worker only.
  // forward() appends an update when a connection reaches ESTABLISHED, changes state after
  // that (or is a new UDP flow), and again every sync_refresh_ns while it carries traffic, so the
  // peer's copy never ages out before ours. The worker hands the batch to the sync thread once
  // per loop; a full batch or ring drops (counted: Maglev services still pick flows up).
  bool sync_out = false;
  uint64_t sync_refresh_ns = 60'000'000'000;
  static constexpr uint32_t kSyncBatch = 2048;
  std::unique_ptr<ConnSync[]> sync_batch = std::make_unique<ConnSync[]>(kSyncBatch);
  uint32_t sync_n = 0;
};

enum class FwdAction : uint8_t {
  kDrop,      // free it and count `reason`
  kTransmit,  // rewritten in place: send on `out_port` (prepend `prepend` bytes first: TUN)
  kHandOff,   // another worker owns the flow: pass the untouched frame to `owner`
  kToKernel,  // for the kernel's TAP of the receiving port (exception path)
  kReply,     // the frame was replaced by an ICMP error of `len` bytes: send on `out_port`
};

// 16 bytes, trivially copyable: returned in two registers. Built field by field on the stack and
// copied out with wide loads, it cost two store-forwarding stalls per packet (perf annotate).
// Fields that never apply together share storage.
struct FwdResult {
  FwdAction action = FwdAction::kDrop;
  Drop reason = Drop::kIpv4NotLocal;
  // Set with kDrop/kNoNeighbor: ask the control thread to resolve resolve_ip on resolve_port.
  bool resolve = false;
  union {
    uint16_t out_port = 0;  // kTransmit, kReply
    uint16_t resolve_port;  // kDrop with `resolve`
  };
  uint16_t prepend = 0;  // kTransmit: the frame now starts `prepend` bytes earlier
  uint32_t len = 0;      // kReply: new frame length; kTransmit: frame length after rewrite
  union {
    uint32_t owner = 0;    // kHandOff
    uint32_t resolve_ip;  // kDrop with `resolve`
  };
};
static_assert(sizeof(FwdResult) == 16 && std::is_trivially_copyable_v<FwdResult>);

// A connection-table lookup done ahead for a whole burst (ConnTable::find_bulk) for the packet's
// own 5-tuple. A connection found stays this packet's while no connection was freed since
// (`released` = ConnTable::released() then: an eviction may reuse its slot); "none" stays true
// while nothing was inserted (`inserted` = stats().inserted then: the burst may have opened this
// very flow, e.g. a retransmitted SYN). forward() looks up again otherwise, with `hash`.
struct ConnHint {
  lb::Conn* conn = nullptr;
  bool reply = false;
  bool valid = false;
  uint64_t inserted = 0;
  uint64_t released = 0;
  const lb::FlowKey* key = nullptr;  // the packet's key as flow_key() built it
  uint64_t hash = 0;                 // ConnTable::hash(*key)
};

inline bool is_fragment(const uint8_t* ip) noexcept {
  return (load_be16(ip + ipv4::kOffFrag) & ipv4::kFragMask) != 0;
}

// The connection-table key of a TCP/UDP datagram as it travels (IP header at `ip`, L4 at `l4`).
inline lb::FlowKey key_of(const uint8_t* ip, const uint8_t* l4) noexcept {
  lb::FlowKey k;
  k.src_ip = load_be32(ip + ipv4::kOffSrc);
  k.dst_ip = load_be32(ip + ipv4::kOffDst);
  k.src_port = load_be16(l4);
  k.dst_port = load_be16(l4 + 2);
  k.proto = ip[ipv4::kOffProto];
  return k;
}

// Worker, per packet (inline: called once per frame of every burst). The 5-tuple of a kForward
// TCP/UDP datagram that may belong to a connection (to one of our addresses, or from a NAT real
// server of `t`; not a fragment, L4 header present) as the connection table keys it. False for
// anything else.
inline bool flow_key(const LbTable& t, const uint8_t* frame, const LocalResult& lr,
                     lb::FlowKey* out) noexcept {
  const uint8_t* ip = frame + kEthHdrLen;
  const uint8_t proto = ip[ipv4::kOffProto];
  if ((proto != kIpProtoTcp && proto != kIpProtoUdp) || is_fragment(ip) ||
      lr.l4_len < (proto == kIpProtoTcp ? tcp::kMinHdr : udp::kHdrLen))
    return false;
  // Transit traffic has connections only when it comes from a NAT real server.
  if (!lr.local && !t.is_nat_real(load_be32(ip + ipv4::kOffSrc))) return false;
  // Field by field into *out: a FlowKey temporary copied in (13 bytes: two overlapping 8-byte
  // moves) stalled the hash's loads right after it on store forwarding.
  const uint8_t* l4 = frame + lr.l4_off;
  out->src_ip = load_be32(ip + ipv4::kOffSrc);
  out->dst_ip = load_be32(ip + ipv4::kOffDst);
  out->src_port = load_be16(l4);
  out->dst_port = load_be16(l4 + 2);
  out->proto = proto;
  return true;
}

// The worker that owns the flows of `client` among `n` workers (both directions use it).
inline uint32_t owner_of(uint32_t client, uint32_t n) noexcept {
  uint32_t h = client * 0x9e3779b1u;
  h ^= h >> 15;
  h *= 0x85ebca77u;
  h ^= h >> 13;
  return static_cast<uint32_t>((uint64_t{h} * n) >> 32);
}

// Worker, per packet. `frame` holds `len` bytes and has `headroom` writable bytes before it
// (TUN prepends an outer header there); its room after `frame` is `cap` bytes (an ICMP error may
// be longer than the packet it quotes). `lr` is handle_local()'s kForward result for it,
// received on port `in_port` of `s`. `now_ns`: monotonic clock for connection aging, the same for
// every packet of one poll and different between polls (it also keys the next-hop memo: a
// neighbour change is seen from the next value on). `hops` > 0:
// the frame was handed to us by another worker (never hand it off again). `neigh`: resolved next
// hops (read-only). No allocation, no locks.
FwdResult forward(ForwardEngine& e, const Snapshot& s, const NeighborCache& neigh, uint8_t* frame,
                  uint32_t len, uint32_t headroom, uint32_t cap, uint32_t in_port,
                  const LocalResult& lr, uint64_t now_ns, uint32_t hops = 0,
                  const ConnHint* hint = nullptr) noexcept;

// Worker: installs (or updates) a connection the peer reported, on the worker owning its client.
// The service is found by (proto, VIP, port) and the real server by address in this node's
// snapshot (ids differ between nodes); the state is taken with its full timeout from now_ns.
// An update older than what we hold (generation) is ignored. Not per packet: sync traffic.
void install_conn(ForwardEngine& e, const Snapshot& s, const ConnSync& r, uint64_t now_ns) noexcept;

// Worker, once per loop: ages out up to `max` connections (bounded work), keeps the active and
// inactive levels right, applies new timeouts. Returns connections expired.
uint32_t forward_maintenance(ForwardEngine& e, uint64_t now_ns, uint32_t max) noexcept;

}  // namespace dp
