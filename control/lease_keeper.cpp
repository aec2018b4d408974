#include "control/lease_keeper.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "control/clock.h"
#include "control/log.h"
#include "control/sync_service.h"
#include "dataplane/dataplane.h"

namespace ctl {
namespace {

constexpr uint32_t kBatchMax = 8192;  // lease changes per pass (all workers)

}  // namespace

LeaseKeeper::LeaseKeeper(dp::Dataplane& dp, const cfg::Config& c)
    : dp_(dp), conf_(c.dhcp.leases), n_workers_(dp.n_workers()) {}

LeaseKeeper::~LeaseKeeper() {
  stop();
}

std::string LeaseKeeper::open(const std::function<void(const dhcp::Lease&)>& restore) {
  if (conf_.durability == cfg::DhcpDurability::kNone) return "";
  dhcp::JournalParams p;
  const std::filesystem::path jp(conf_.journal), sp(conf_.snapshot);
  if (jp.parent_path() != sp.parent_path())
    return "dhcp.leases.journal (" + conf_.journal + ") and dhcp.leases.snapshot (" +
           conf_.snapshot + ") must be in the same directory";
  p.dir = sp.parent_path().string();
  p.journal_file = jp.filename().string();
  p.snapshot_file = sp.filename().string();
  p.fsync = conf_.durability == cfg::DhcpDurability::kStrict ? dhcp::FsyncPolicy::kEveryBatch
                                                             : dhcp::FsyncPolicy::kInterval;
  p.fsync_interval_ms = conf_.fsync_interval_ms;
  p.compact_bytes = uint64_t{conf_.journal_max_mb} << 20;
  p.compact_interval_ms = uint64_t{conf_.snapshot_interval_s} * 1000;
  if (std::string err = journal_.open(p); !err.empty()) return err;
  std::string err = journal_.replay([&](const dhcp::Lease& l) {
    restore(l);
    auto [it, added] = view_.try_emplace(l.ip, l);
    if (added) {
      count(l, +1);
    } else if (l.generation >= it->second.generation) {
      count(it->second, -1);
      it->second = l;
      count(l, +1);
    }
  });
  if (!err.empty()) return err;
  journal_open_ = true;
  stats_.journal_enabled = true;
  stats_.journal = journal_.stats();
  if (journal_.stats().torn_tail_bytes != 0)
    log_warning("dhcp journal " + conf_.journal + ": dropped a torn tail of " +
                std::to_string(journal_.stats().torn_tail_bytes) + " bytes (a crash mid-write)");
  log_info("dhcp leases restored: " + std::to_string(journal_.stats().restored) + " records, " +
           std::to_string(view_.size()) + " addresses, from " + conf_.snapshot + " and " +
           conf_.journal);
  return "";
}

void LeaseKeeper::start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
}

void LeaseKeeper::stop() {
  if (thread_.joinable()) {
    stop_.store(true);
    thread_.join();
  }
  if (journal_open_) {
    journal_.close();
    journal_open_ = false;
  }
}

void LeaseKeeper::apply(const dhcp::LeaseEvent& e, bool ours) {
  if (ours && e.kind < stats_.by_kind.size()) ++stats_.by_kind[e.kind];
  auto [it, added] = view_.try_emplace(e.lease.ip, e.lease);
  if (added) {
    count(e.lease, +1);
  } else if (e.lease.generation >= it->second.generation) {
    count(it->second, -1);
    it->second = e.lease;
    count(e.lease, +1);
  }
}

void LeaseKeeper::count(const dhcp::Lease& l, int delta) {
  if (l.state == dhcp::LeaseState::kFree || l.pool > (1u << 24)) return;
  if (l.pool >= counts_.size()) counts_.resize(l.pool + 1);
  PoolCounts& c = counts_[l.pool];
  uint64_t& v = l.state == dhcp::LeaseState::kOffered ? c.offered
                : l.state == dhcp::LeaseState::kBound ? c.bound
                                                      : c.declined;
  v += static_cast<uint64_t>(static_cast<int64_t>(delta));
}

void LeaseKeeper::ingest(const dhcp::Lease& l) {
  std::lock_guard<std::mutex> g(in_mu_);
  inbox_.push_back(l);
}

std::vector<dhcp::Lease> LeaseKeeper::all_leases() const {
  std::vector<dhcp::Lease> out;
  std::lock_guard<std::mutex> g(mu_);
  out.reserve(view_.size());
  for (const auto& [ip, l] : view_) out.push_back(l);
  return out;
}

namespace {

dhcp::LeaseEvent::Kind kind_of(const dhcp::Lease& l) {
  switch (l.state) {
    case dhcp::LeaseState::kOffered:
      return dhcp::LeaseEvent::kOffer;
    case dhcp::LeaseState::kBound:
      return dhcp::LeaseEvent::kBind;
    case dhcp::LeaseState::kDeclined:
      return dhcp::LeaseEvent::kDecline;
    case dhcp::LeaseState::kFree:
      break;
  }
  return dhcp::LeaseEvent::kRelease;
}

}  // namespace

void LeaseKeeper::run() {
  std::vector<dhcp::LeaseEvent> batch(kBatchMax);
  std::vector<uint64_t> taken(n_workers_, 0);  // per worker, since start
  std::vector<uint64_t> durable(n_workers_, 0);  // journaled (when ok), per worker
  std::vector<dhcp::Lease> peer;
  std::vector<dhcp::LeaseEvent> peer_events;
  uint32_t idle_us = 0;
  bool failing = false;
  // Replies may leave once their change is journaled and, with strict sync, held by the peer.
  auto release = [&] {
    for (uint32_t w = 0; w < n_workers_; ++w) {
      uint64_t d = durable[w];
      if (sync_ != nullptr) d = std::min(d, sync_->acked_upto(w));
      dp_.set_lease_durable(w, d);
    }
  };
  for (;;) {
    const bool stopping = stop_.load(std::memory_order_acquire);
    // The peer's leases: into the journal and the view (the sync thread installs them in the
    // workers' stores).
    {
      std::lock_guard<std::mutex> g(in_mu_);
      peer.swap(inbox_);
    }
    if (!peer.empty()) {
      peer_events.clear();
      for (const dhcp::Lease& l : peer) peer_events.push_back({kind_of(l), l});
      // Durable on the peer already (its strict journal): written now, fsynced within
      // fsync_interval_ms rather than per batch (one disk's fsyncs per node, not two).
      if (journal_open_)
        journal_.append({peer_events.data(), peer_events.size()}, mono_ns(), true);
      std::lock_guard<std::mutex> g(mu_);
      for (const dhcp::LeaseEvent& e : peer_events) apply(e, false);
      stats_.peer_leases += peer.size();
      peer.clear();
    }
    size_t n = 0;
    std::vector<uint64_t> upto(taken);
    for (uint32_t w = 0; w < n_workers_ && n < kBatchMax; ++w) {
      const uint32_t got =
          dp_.poll_lease_events(w, batch.data() + n, static_cast<uint32_t>(kBatchMax - n));
      n += got;
      upto[w] += got;
    }
    const uint64_t now = mono_ns();
    if (n != 0) {
      bool ok = !journal_open_ || journal_.append({batch.data(), n}, now);
      // After a failed pass, what it held is only in the journal's table: sync() compacts it
      // into a snapshot, which makes it durable too.
      if (ok && failing) ok = journal_.sync();
      if (!ok && !failing)
        log_error("dhcp journal: " + journal_.last_error() +
                  " (strict durability holds replies until it is writable again)");
      failing = !ok;
      {
        std::lock_guard<std::mutex> g(mu_);
        for (size_t i = 0; i < n; ++i) apply(batch[i]);
        stats_.events += n;
        ++stats_.batches;
        if (!ok) ++stats_.journal_failures;
        if (journal_open_) stats_.journal = journal_.stats();
        stats_.lag_events = journal_open_ ? journal_.written() - journal_.synced_upto() : 0;
      }
      // Written (and, when strict, fsynced by append): the workers may release the replies.
      // Without a journal, or batched, nothing waits for this.
      // A failed pass is retried by the next successful one (which then covers it).
      taken = upto;
      if (sync_ != nullptr) sync_->queue_leases(batch.data(), n, upto);
      if (ok) durable = taken;
      release();
      // Under steady load there is no idle pass: fsync interval and compaction are due here too.
      if (journal_open_) journal_.tick(now);
      idle_us = 0;
      continue;
    }
    if (journal_open_ && journal_.tick(now)) {
      std::lock_guard<std::mutex> g(mu_);
      stats_.journal = journal_.stats();
      stats_.lag_events = journal_.written() - journal_.synced_upto();
    }
    if (sync_ != nullptr) release();  // the peer's acknowledgements arrive between passes
    if (stopping) break;
    // Replies wait for the peer: sleep until it acknowledges (woken at once), at most 200 µs so
    // new lease changes are not held up either.
    if (sync_ != nullptr && sync_->strict_waiting()) {
      sync_->wait_acks(200);
      idle_us = 0;
      continue;
    }
    // Adaptive: a waiting ACK costs at most ~100 µs of latency, an idle keeper a few wakeups.
    idle_us = idle_us == 0 ? 20 : std::min<uint32_t>(idle_us * 2, 1000);
    timespec ts{0, static_cast<long>(idle_us) * 1000};
    nanosleep(&ts, nullptr);
  }
  if (journal_open_) journal_.sync();
}

std::vector<dhcp::Lease> LeaseKeeper::leases(std::optional<uint32_t> ip,
                                             std::optional<std::array<uint8_t, 6>> mac) const {
  std::vector<dhcp::Lease> out;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (ip) {  // one address: no walk
      const auto it = view_.find(*ip);
      if (it != view_.end() && it->second.state != dhcp::LeaseState::kFree &&
          (!mac || it->second.mac == *mac))
        out.push_back(it->second);
      return out;
    }
    for (const auto& [addr, l] : view_) {
      if (l.state == dhcp::LeaseState::kFree) continue;
      if (ip && addr != *ip) continue;
      if (mac && l.mac != *mac) continue;
      out.push_back(l);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ip < b.ip; });
  return out;
}

std::vector<LeaseKeeper::PoolCounts> LeaseKeeper::pool_counts(size_t n_pools) const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<PoolCounts> out(counts_.begin(), counts_.begin() + std::min(n_pools, counts_.size()));
  out.resize(n_pools);
  return out;
}

LeaseKeeperStats LeaseKeeper::stats() const {
  std::lock_guard<std::mutex> g(mu_);
  return stats_;
}

}  // namespace ctl
