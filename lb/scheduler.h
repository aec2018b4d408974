#pragma once
// Schedulers: which real server gets a new connection of a virtual service, with the semantics
// of the Linux IPVS scheduler of the same name (ipvsadm -s rr|wrr|lc|wlc|sh|mh), so an operator
// comparing us with ipvsadm sees the same choices.
//
// Split between threads: the control thread builds an immutable Service (dests plus the
// precomputed tables of build_tables()) inside a published snapshot; each worker keeps its own
// SchedState (round-robin positions, connection counts) and calls pick() per new connection.
// pick() never allocates, locks or throws.
//
// "Usable" below means available && weight > 0 (usable()). The control thread is expected to
// clear `available` for failed servers and to call build_tables() whenever dests, weights or
// health change, so the hash tables (sh, mh) and the wrr weights hold usable dests only: a failed
// or drained server's clients move to the others, as they do under keepalived, which removes
// failed servers from IPVS. pick() still never returns an unusable dest if a table is stale: sh
// and mh then fall back to another bucket/slot (IPVS's sh-fallback / mh-fallback behaviour),
// where IPVS without those flags would return no dest.
//
// Per-worker state and several workers: rr and wrr run one sequence per worker, exactly as IPVS
// runs one per service; the mix over all workers keeps the configured ratios. lc and wlc compare
// the calling worker's own connection counts; flows are spread over workers by RSS, so each
// worker's share of a server's connections is a fair sample of the whole.

#include <cstdint>
#include <vector>

#include "lb/maglev.h"
#include "lb/model.h"

namespace lb {

inline constexpr uint32_t kMaxDests = 16384;
inline constexpr uint32_t kMaxServices = 4096;
inline constexpr uint32_t kShBuckets = 256;  // IPVS IP_VS_SH_TAB_SIZE (CONFIG_IP_VS_SH_TAB_BITS 8)
// Weights are 0..65535 (model.h); lc/wlc arithmetic clamps larger values to stay in 64 bits.
inline constexpr uint32_t kMaxWeight = 65535;

// One real server as the workers see it: immutable, inside a published snapshot.
struct Dest {
  uint32_t ip = 0;
  uint16_t port = 0;
  Fwd fwd = Fwd::kNat;
  uint32_t weight = 1;  // configured weight
  // Stable global id < kMaxDests: indexes per-worker arrays (connection counts, stats).
  uint32_t id = 0;
  bool available = true;  // healthy and weight > 0: may receive new connections
};

// May `d` receive new connections? (IPVS: weight > 0 and not overloaded/failed.)
constexpr bool usable(const Dest& d) noexcept {
  return d.available && d.weight > 0;
}

// A service as the workers see it (built by the control thread with build_service()).
struct Service {
  ServiceKey key;
  Sched sched = Sched::kWlc;
  uint32_t persist_s = 0;
  uint32_t persist_mask = ~0u;
  uint32_t id = 0;  // stable id < kMaxServices
  std::vector<Dest> dests;
  // mh: the Maglev table (index in `dests` per slot, prime size >= 65537 by default);
  // sh: kShBuckets buckets; empty otherwise. kNoDest (0xffff) = no dest.
  std::vector<uint16_t> lookup;
  // wrr (IPVS ip_vs_wrr_mark): gcd of the usable weights ("di") and the largest usable weight
  // minus (gcd - 1) ("mw"); both 0 when no dest is usable. Set by build_tables().
  uint32_t wrr_gcd = 0;
  uint32_t wrr_max = 0;
};

// Control thread, after any change to s.dests (membership, weight, health) or s.sched: computes
// the wrr weights and the sh/mh lookup table from the usable dests. mh: a Maglev table of
// maglev_table_size(maglev_size) slots (the smallest prime >= maglev_size; keep it above 100
// slots per dest for a 1% balance). Allocates; about 1 ms for a 65537-slot Maglev table.
void build_tables(Service& s, uint32_t maglev_size = kMaglevDefaultSize);

// Per-worker mutable scheduler state, indexed by Service::id / Dest::id. Owned by one worker, no
// atomics needed. Survives snapshot swaps: pick() copes with positions left by an older
// snapshot of the service (the next pick restarts the sequence).
struct SchedState {
  std::vector<uint32_t> rr_cursor;   // by service id: rr/wrr, the next index in dests to try
  std::vector<int64_t> wrr_current;  // by service id: wrr's current weight (IPVS "cw"); 0 = new
  std::vector<uint32_t> active;      // by dest id: this worker's active (TCP ESTABLISHED) conns
  std::vector<uint32_t> inactive;    // by dest id: other states
  SchedState();                      // kMaxServices / kMaxDests zeroed entries (allocates)
};

// IPVS sh's bucket for a source address: hash_32(addr, 8), the kernel's multiplicative hash
// (golden-ratio constant 0x61C88647, top 8 bits), with no port (no sh-port flag).
constexpr uint32_t sh_bucket(uint32_t client_ip) noexcept {
  return (client_ip * 0x61C88647u) >> 24;
}

// Worker, per new connection: the dest index in s.dests, or -1 when no dest is usable.
// rr/wrr: amortised O(1), worst case O(dests); lc/wlc: O(dests); sh/mh: O(1) (a few probes if a
// table is stale). Hash-based schedulers use the client address only (like IPVS sh and mh
// without the sh-port flag); client_port is unused today.
int pick(const Service& s, SchedState& st, uint32_t client_ip, uint16_t client_port) noexcept;

}  // namespace lb
