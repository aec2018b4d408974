#pragma once
// Replication to the pair's other node: one thread that owns the sync link's UDP socket and the
// Channel (control/sync/channel.h), and moves state both ways.
//
//   out: lease changes (from the lease keeper, which journals them first), connection changes
//        (from the workers' sync_out rings), a bulk resync whenever a session comes up, the
//        status blob (VRRP states, resync state, configuration digest) in every heartbeat;
//   in:  the peer's leases (to the keeper's view and journal, and to the worker whose pool slice
//        holds the address), its connections (to the worker owning the client), its bulk
//        markers and status, configuration pushes.
//
// Strict DHCP sync: the keeper asks acked_upto(w) how far worker w's lease changes are held by
// the peer and releases a client's ACK only then. While no session is up (peer dead or never
// seen) nothing waits: a lone node serves. A session that goes silent for dead_ms ends, and what
// waited is released.
//
// Threads: start()/stop()/quiesce()/the setters are called by the control thread; queue_leases()
// by the keeper; run() is the sync thread; status and counters are read by anyone.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config/model.h"
#include "control/sync/channel.h"
#include "control/sync/entries.h"
#include "dataplane/counter.h"
#include "dhcp/leases.h"

namespace dp {
class Dataplane;
}

namespace ctl {

class LeaseKeeper;

// Counters and gauges for the metrics collector and `tandemctl sync` (atomics: any thread).
struct SyncStats {
  dp::Counter entries_out_leases, entries_out_conns, entries_in_leases, entries_in_conns;
  dp::Counter resyncs_sent, resyncs_received, conns_dropped_down, backlog_full, send_refused;
  dp::Counter strict_released_down;  // strict waits ended because the session went down
  dp::Counter config_mismatch_seen, config_pushes_in, config_pushes_failed;
  std::atomic<uint64_t> unacked{0};
  std::atomic<uint64_t> last_heard_unix_ms{0};
  std::atomic<int> up{0};
  // Replication lag: a local change queued → acknowledged by the peer.
  static constexpr std::array<double, 12> kLagBounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                     0.005,  0.01,    0.025,  0.05,  0.1,
                                                     0.25,   1.0};
  std::array<dp::Counter, kLagBounds.size() + 1> lag_buckets;
  dp::Counter lag_count;
  std::atomic<uint64_t> lag_sum_ns{0};
};

class SyncService {
 public:
  SyncService(dp::Dataplane& dp, const cfg::Config& c, LeaseKeeper* keeper);
  ~SyncService();  // stop()
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  // Control thread: opens the socket and starts the thread. "" or why not.
  std::string start();
  void stop();

  // Keeper thread: lease changes to replicate (after the journal took them), and the position of
  // each worker's change stream they reach (so strict sync can release the ACKs they cover).
  void queue_leases(const dhcp::LeaseEvent* ev, size_t n, const std::vector<uint64_t>& upto);
  // Keeper thread: worker w's lease changes up to this position are held by the peer or need
  // not wait (async mode, or no session). UINT64_MAX: nothing waits.
  uint64_t acked_upto(uint32_t w) const;
  bool strict_waiting() const { return waiting_.load(std::memory_order_relaxed); }
  // Keeper thread, while strict_waiting(): sleeps until the peer acknowledges something (or the
  // session ends), at most max_us. Cheaper than polling acked_upto().
  void wait_acks(uint32_t max_us);

  // Control thread: what our heartbeats say.
  void set_status(const sync::Status& s);
  // Any thread.
  bool peer_alive() const { return stats_.up.load(std::memory_order_relaxed) != 0; }
  // We hold the peer's whole state: a bulk resync from it completed in the current session.
  bool resynced() const { return resynced_.load(std::memory_order_acquire); }
  // The peer's last status (empty optional before the first).
  std::optional<sync::Status> peer_status() const;
  // Control thread: waits (at most timeout_ms) until everything the peer sent so far is in the
  // workers' tables. True when it is.
  bool quiesce(uint32_t timeout_ms);
  // Control thread: sends `name`'s contents to the peer as a configuration push; the answer
  // arrives later (push_result). "" or why it cannot be sent.
  std::string push_config(const std::string& name, const std::string& text, uint64_t* id);
  std::optional<sync::ConfigResult> push_result(uint64_t id) const;
  // Control thread: a configuration push received from the peer, waiting to be applied (the
  // daemon validates and applies it, then calls answer_push).
  std::optional<sync::ConfigChunk> take_push();
  void answer_push(const sync::ConfigResult& r);

  nlohmann::json status_json() const;
  const SyncStats& stats() const { return stats_; }
  sync::ChannelStats channel_stats() const;  // a copy, refreshed by the sync thread

 private:
  // Lease changes of one keeper pass, waiting for the peer's acknowledgement: worker w's
  // changes from `from[w]` on are not acknowledged while this batch is pending.
  struct Batch {
    std::vector<std::vector<uint8_t>> entries;  // encoded; emptied once sent
    std::vector<uint64_t> from;
    uint64_t queued_ns = 0;
    uint64_t last_seq = 0;  // our stream's seq of its last entry, once sent
  };
  void run();
  void on_entry(uint64_t seq, uint8_t type, std::span<const uint8_t> body, uint64_t now);
  void on_up(uint64_t now);
  void on_down();
  void send_local(uint64_t now);
  void bulk_step(uint64_t now);
  void retry_backlog();
  void settle(uint64_t now);
  void release_all();
  void wake();

  dp::Dataplane& dp_;
  cfg::Sync cfg_;
  std::string node_;
  LeaseKeeper* keeper_;
  uint32_t n_workers_;
  int fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the keeper queued leases / the control thread asks something
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<sync::Channel> channel_;  // sync thread only (after start)

  // Keeper → sync thread: batches in order, sent or not (guarded by out_mu_).
  mutable std::mutex out_mu_;
  std::deque<Batch> pending_;
  std::vector<uint64_t> keeper_pos_;  // keeper thread: positions reached so far, per worker
  bool strict_ = false;
  std::atomic<bool> waiting_{false};
  std::mutex ack_mu_;  // ack_epoch_: bumped when batches settle (wakes the keeper)
  std::condition_variable ack_cv_;
  uint64_t ack_epoch_ = 0;

  // Received, not yet accepted by a full worker ring (sync thread).
  std::deque<dhcp::Lease> lease_backlog_;
  std::deque<dp::ConnSync> conn_backlog_;

  // Bulk resync we send (sync thread).
  struct Bulk {
    bool active = false;
    uint64_t id = 0;
    uint64_t started_ns = 0;
    uint64_t leases = 0, conns = 0;
    bool dumps_requested = false;
    std::vector<uint64_t> dump_req;  // per worker
  } bulk_;
  bool up_event_ = false;  // sync thread: a session came up (acted on after the callback)
  uint64_t bulk_in_started_ns_ = 0;
  uint64_t bulk_in_leases_ = 0, bulk_in_conns_ = 0;
  std::atomic<bool> resynced_{false};
  std::atomic<uint64_t> last_resync_ms_{0};

  mutable std::mutex status_mu_;
  std::vector<uint8_t> our_status_;
  bool status_dirty_ = false;
  std::optional<sync::Status> peer_status_;

  std::atomic<uint64_t> quiesce_req_{0}, quiesce_done_{0};

  // Configuration push.
  mutable std::mutex push_mu_;
  std::vector<sync::ConfigChunk> push_out_;  // control → sync thread
  std::string push_in_buf_;
  sync::ConfigChunk push_in_;                // being assembled (sync thread)
  std::optional<sync::ConfigChunk> push_ready_;
  std::vector<sync::ConfigResult> results_out_, results_in_;
  uint64_t next_push_id_ = 1;

  SyncStats stats_;
  mutable std::mutex chan_mu_;
  sync::ChannelStats chan_stats_;
  uint64_t boot_id_ = 0;
  uint64_t started_ns_ = 0;
};

}  // namespace ctl
