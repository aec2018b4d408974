#pragma once
// The lease keeper: the one non-worker thread that takes every lease change the workers make
// (one SP/SC ring per worker), writes it to the journal (dhcp::Journal: append-only, batched,
// fsync per policy, compacted into snapshots), tells the workers how far their changes are
// durable (strict durability: replies wait for that), and keeps the view of all leases that
// tandemctl and the metrics read. At start it replays the journal so every lease is restored
// into the workers' stores before they serve.
//
// Threads: open()/start()/stop() and the queries are called by the control thread; run() is the
// keeper's own thread. The view is guarded by a mutex the workers never touch.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/model.h"
#include "dhcp/journal.h"
#include "dhcp/leases.h"

namespace dp {
class Dataplane;
}

namespace ctl {

struct LeaseKeeperStats {
  dhcp::JournalStats journal;  // copy, refreshed by the keeper after every batch
  uint64_t events = 0;         // lease changes taken from the workers
  uint64_t batches = 0;        // ... in this many passes
  uint64_t lag_events = 0;     // taken but not yet durable (strict/batched), at the last pass
  uint64_t journal_failures = 0;
  uint64_t peer_leases = 0;           // leases the peer reported, taken into the view/journal
  std::array<uint64_t, 6> by_kind{};  // lease changes by dhcp::LeaseEvent::Kind
  bool journal_enabled = false;
};
inline constexpr std::array<const char*, 6> kLeaseEventNames{"offer",   "bind",   "release",
                                                             "decline", "expire", "offer_expired"};

class SyncService;

class LeaseKeeper {
 public:
  LeaseKeeper(dp::Dataplane& dp, const cfg::Config& c);
  ~LeaseKeeper();  // stop()
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Control thread, before the workers start: opens the journal (unless durability = "none")
  // and replays it, handing every restored lease to `restore` (which installs it in the store
  // that holds its address) and into the view. "" or an error naming the file.
  std::string open(const std::function<void(const dhcp::Lease&)>& restore);
  void start();
  // Drains what the workers left, syncs and closes the journal. Idempotent.
  void stop();
  // Control thread, before start(): replicate lease changes through `s` (after journaling
  // them), and with strict sync release replies only once the peer holds their leases.
  void set_sync(SyncService* s) { sync_ = s; }
  // Sync thread: a lease the peer reported; journaled and added to the view by the next pass
  // (if newer than what the view holds; the peer's word wins a tie).
  void ingest(const dhcp::Lease& l);
  // Any thread: every lease the view holds, FREE ones with a history included (bulk resync).
  std::vector<dhcp::Lease> all_leases() const;

  // Control thread (API): leases in the view (not FREE ones), filtered; sorted by address.
  std::vector<dhcp::Lease> leases(std::optional<uint32_t> ip,
                                  std::optional<std::array<uint8_t, 6>> mac) const;
  // Control thread: counts by pool id and state (maintained with the view: O(pools)).
  struct PoolCounts {
    uint64_t offered = 0, bound = 0, declined = 0;
  };
  std::vector<PoolCounts> pool_counts(size_t n_pools) const;
  LeaseKeeperStats stats() const;

 private:
  void run();
  // View, under mu_ (the newest generation wins; a tie takes the newcomer). `ours`: counted by
  // kind (the peer's leases are not our events).
  void apply(const dhcp::LeaseEvent& e, bool ours = true);
  void count(const dhcp::Lease& l, int delta);  // counts_, under mu_

  dp::Dataplane& dp_;
  cfg::DhcpLeaseStore conf_;
  uint32_t n_workers_;
  dhcp::Journal journal_;
  bool journal_open_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, dhcp::Lease> view_;  // ip -> latest lease (by generation)
  std::vector<PoolCounts> counts_;  // by pool id, kept with view_ (scrapes never walk it)
  LeaseKeeperStats stats_;
  SyncService* sync_ = nullptr;
  std::mutex in_mu_;  // sync thread → keeper
  std::vector<dhcp::Lease> inbox_;
};

}  // namespace ctl
