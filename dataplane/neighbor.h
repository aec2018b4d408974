#pragma once
// The neighbour (ARP) table: resolution, refresh and aging of next hops.
// Owned by the control thread (single-threaded, no locks). Pure logic over a caller-supplied
// clock in nanoseconds, so unit tests drive it with a fake clock.
//
// States follow Linux's neighbour FSM, simplified:
//   INCOMPLETE --reply--> REACHABLE --reachable_ns elapses--> PROBE --reply--> REACHABLE
//   INCOMPLETE/PROBE --`probes` unanswered--> removed;  STATIC never ages.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "dataplane/proto.h"

namespace dp {

enum class NeighState : uint8_t { kIncomplete, kReachable, kProbe, kStatic };
const char* to_string(NeighState s) noexcept;

struct NeighEntry {
  uint16_t port = 0;
  uint32_t ip = 0;  // host order
  Mac mac{};        // zero while kIncomplete
  NeighState state = NeighState::kIncomplete;
  uint64_t updated_ns = 0;   // last confirmation (reply or learn), or creation
  uint64_t next_ns = 0;      // when tick() next acts on it (expiry or next probe)
  uint32_t probes_sent = 0;  // in the current INCOMPLETE/PROBE round
};

// An ARP request the control thread must send. Broadcast when resolving (INCOMPLETE);
// unicast to the known MAC when re-probing a known entry (PROBE), as Linux does.
struct NeighProbe {
  uint16_t port = 0;
  uint32_t ip = 0;
  bool unicast = false;
  Mac mac{};  // destination when unicast
};

class NeighborTable {
 public:
  struct Params {
    uint64_t reachable_ns = 30'000'000'000;
    uint64_t probe_interval_ns = 1'000'000'000;
    uint32_t probes = 3;
    size_t max_entries = 65536;
  };
  enum class Learn : uint8_t { kAdded, kUpdated, kRefreshed, kIgnored, kFull };

  explicit NeighborTable(Params p);

  // Control thread. Replaces all parameters (reload); existing entries keep their deadlines.
  void set_params(Params p) { params_ = p; }
  const Params& params() const { return params_; }

  // Static entries: never aged, never overwritten by learning. Returns false if full.
  bool add_static(uint16_t port, uint32_t ip, const Mac& mac);
  // Removes every static entry (before re-adding the reloaded set).
  void clear_static();

  // A sender seen in ARP. Targeted packets (a request for one of our addresses, a reply) create
  // or confirm entries; untargeted ones (gratuitous ARP, requests for others) only update an
  // existing entry, so a busy segment cannot fill the table.
  Learn learn(uint16_t port, uint32_t ip, const Mac& mac, bool targeted, uint64_t now_ns);

  // Starts resolving `ip` (no-op if known or already resolving). The first probe is due at once.
  // Returns false if the table is full.
  bool request(uint16_t port, uint32_t ip, uint64_t now_ns);

  // Advances timers: appends the probes to send now to `out`; drops entries that exhausted
  // their probes. O(entries due): entries are kept in a deadline-ordered index, so this does not
  // scan the whole table.
  void tick(uint64_t now_ns, std::vector<NeighProbe>& out);

  const NeighEntry* find(uint16_t port, uint32_t ip) const;
  bool remove(uint16_t port, uint32_t ip);
  size_t size() const { return entries_.size(); }
  // Earliest deadline, for the control loop's sleep (nullopt when nothing is pending).
  std::optional<uint64_t> next_deadline() const;
  // Deadline-index entries, stale ones included (tests check it stays bounded).
  size_t heap_size() const { return heap_.size(); }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& [key, e] : entries_) f(e);
  }

 private:
  static uint64_t key(uint16_t port, uint32_t ip) { return (uint64_t{port} << 32) | ip; }
  void schedule(NeighEntry& e, uint64_t at);
  bool live(uint64_t deadline, uint64_t k) const;
  void rebuild_heap();
  // After every mutation: the heap's top is live and its size within 4 * entries + 64.
  void tidy();

  Params params_;
  std::unordered_map<uint64_t, NeighEntry> entries_;
  // Deadline index: a min-heap with lazy deletion (stale pairs are skipped when popped).
  std::vector<std::pair<uint64_t, uint64_t>> heap_;  // (deadline, key) min-heap, lazy deletion
};

}  // namespace dp
