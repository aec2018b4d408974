#pragma once
// The DHCP server as a worker runs it: a request classified by handle_local() (Verdict::kDhcp)
// is parsed, handed to dhcp::Server with the worker's LeaseStore, and the reply is framed in
// place — Ethernet, IPv4 and UDP addressed per RFC 2131 §4.1 (dhcp::Addressing). Pure over bytes
// (no EAL): the worker loop calls it per packet, unit tests call it directly. The rings around it
// (hand-off between workers, lease events to the journal thread, replies held for the journal)
// are the EAL half's business (dataplane.cpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/counter.h"
#include "dataplane/snapshot.h"
#include "dhcp/codec.h"
#include "dhcp/leases.h"
#include "dhcp/server.h"

namespace dp {

// Per-worker DHCP counters (single writer: the worker). The server's own counters (sent by type,
// refusals by reason) live in dhcp::Server::Counters.
struct DhcpStats {
  std::array<Counter, 9> received;  // parsed requests by message type (index = MessageType)
  std::array<Counter, static_cast<size_t>(dhcp::Malformed::kCount)> malformed;
  Counter handed_off;    // requests passed to the worker that owns their client
  Counter lent;          // DISCOVERs passed on because our share of the pools was dry
  Counter handoff_full;  // ... dropped: that worker's ring was full
  Counter journal_full;  // lease changes the journal ring refused (strict: reply dropped)
  Counter held;          // replies held until their lease change was on disk (strict)
  Counter held_full;     // replies dropped: the hold queue was full
  Counter no_route;      // replies with no way to address them (no source MAC to answer)
  Counter expired;       // lease changes made by expiry (offers, leases, quarantines)
};

// What the caller does with the frame after dhcp_handle().
enum class DhcpAction : uint8_t {
  kDrop,      // nothing to send (refused, malformed or no reply): free it
  kTransmit,  // the frame now holds the reply (length `len`): send it on the receiving port
  kHandOff,   // another worker owns this client: pass the untouched frame to worker `owner`
};

struct DhcpResult {
  DhcpAction action = DhcpAction::kDrop;
  uint32_t len = 0;    // kTransmit: frame length
  uint32_t owner = 0;  // kHandOff
  uint32_t hops = 0;   // kHandOff: 0 = to the request's owner; k > 0 = lent on, k-th worker asked
};

// One worker's DHCP state. Built by the control thread before the worker starts; afterwards only
// the worker touches it (except `stats` and the server's counters, read at scrape time).
struct DhcpEngine {
  DhcpEngine(const dhcp::ServerConfig& cfg, std::unique_ptr<dhcp::LeaseStore> s, uint32_t self,
             uint32_t n)
      : store(std::move(s)), server(cfg, *store), worker(self), n_workers(n) {
    events.reserve(kEventBatch);
    server.set_limiter(&limiter);
    server.set_circuit_counts(&circuits);
  }
  // Lease changes one burst may produce: ≤ 2 per request, plus an expiry batch.
  static constexpr size_t kEventBatch = 2 * 256 + 256;

  std::unique_ptr<dhcp::LeaseStore> store;
  dhcp::Server server;
  uint32_t worker;
  uint32_t n_workers;
  std::vector<dhcp::LeaseEvent> events;  // this burst's lease changes; capacity kEventBatch
  dhcp::Request req;                     // reused: parse() clears only what it set last time
  dhcp::RequestLimiter limiter;          // dhcp.limits for this worker's clients
  dhcp::CircuitCounts circuits;          // leases_per_circuit
  alignas(64) std::array<uint8_t, dhcp::kMaxReplyLen> out{};
  DhcpStats stats;
};

// Worker, per burst, before its requests are handled: warms the lease store for the request at
// [l4_off, l4_off + l4_len) of `frame` (its client's index slot, the address it names) and
// returns the tag to pass to e.store->warm_lease() once every request of the burst was warmed.
// A hint only (dhcp::peek); the request is left untouched.
uint32_t dhcp_warm(const DhcpEngine& e, const uint8_t* frame, uint32_t l4_off,
                   uint32_t l4_len) noexcept;

// Worker, per request. `frame` holds the whole received frame (`len` bytes) in a buffer of `cap`
// bytes; the DHCP payload is at [l4_off, l4_off + l4_len) (from handle_local). The receiving port
// is `port` of snapshot `s`, whose dhcp config must be set. With more than one worker: when
// another worker handles this request (dhcp::owner_of), returns kHandOff (hops 0) before touching
// anything; a DISCOVER this worker's share of the pools cannot serve is passed on to the next
// worker (kHandOff, hops + 1) until every worker was asked. `hops` > 0: a lent DISCOVER, served
// here whoever owns it. Otherwise runs the server (appending lease changes to e.events, which
// must have room for 2) and, for a reply, rewrites `frame` into it. `now_ns`: wall clock (leases
// outlive the process). No allocation.
DhcpResult dhcp_handle(DhcpEngine& e, const Snapshot& s, uint32_t port, uint8_t* frame,
                       uint32_t len, uint32_t cap, uint32_t l4_off, uint32_t l4_len,
                       uint64_t now_ns, uint32_t hops = 0) noexcept;

}  // namespace dp
