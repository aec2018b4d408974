#include "control/sync_service.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "control/clock.h"
#include "control/lease_keeper.h"
#include "control/log.h"
#include "control/vrrp/vrrp.h"
#include "dataplane/dataplane.h"

namespace ctl {
namespace {

constexpr uint64_t kNone = UINT64_MAX;
constexpr size_t kBacklogMax = 1 << 20;       // received entries waiting for a worker ring
constexpr uint32_t kConnPoll = 1024;          // connection changes taken per worker and pass
constexpr uint64_t kBulkDumpTimeoutNs = 10'000'000'000;

uint64_t unix_ms() {
  return wall_ns() / 1'000'000;
}

uint64_t random_u64() {
  uint64_t v = 0;
  while (v == 0) {
    if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v))
      v = static_cast<uint64_t>(mono_ns()) * 0x9e3779b97f4a7c15ull;
  }
  return v;
}


}  // namespace

SyncService::SyncService(dp::Dataplane& dp, const cfg::Config& c, LeaseKeeper* keeper)
    : dp_(dp),
      cfg_(c.sync),
      node_(c.node),
      keeper_(keeper),
      n_workers_(dp.n_workers()),
      keeper_pos_(dp.n_workers(), 0),
      strict_(c.sync.dhcp == cfg::SyncMode::kStrict) {}

SyncService::~SyncService() {
  stop();
}

std::string SyncService::start() {
  const std::string where = cfg::format_ipv4(cfg_.address) + ":" + std::to_string(cfg_.port);
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return std::string("sync: socket: ") + std::strerror(errno);
  const int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Room for a bulk resync in flight both ways.
  const int buf = 8 << 20;
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (!cfg_.interface.empty() &&
      setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, cfg_.interface.c_str(),
                 static_cast<socklen_t>(cfg_.interface.size())) != 0)
    return "sync: cannot bind to interface " + cfg_.interface + ": " + std::strerror(errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(cfg_.port);
  a.sin_addr.s_addr = htonl(cfg_.address);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return "sync: cannot bind " + where + ": " + std::strerror(errno) +
           " (is the address configured on the sync interface?)";
  // Connected: the kernel passes us only the peer's datagrams.
  sockaddr_in p{};
  p.sin_family = AF_INET;
  p.sin_port = htons(cfg_.port);
  p.sin_addr.s_addr = htonl(cfg_.peer);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&p), sizeof p) != 0)
    return "sync: cannot connect to " + cfg::format_ipv4(cfg_.peer) + ": " + std::strerror(errno);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return std::string("sync: eventfd: ") + std::strerror(errno);

  sync::ChannelParams cp;
  cp.key.assign(cfg_.key.begin(), cfg_.key.end());
  boot_id_ = random_u64();
  cp.boot_id = boot_id_;
  cp.heartbeat_ns = uint64_t{cfg_.heartbeat_ms} * 1'000'000;
  cp.dead_ns = uint64_t{cfg_.dead_ms} * 1'000'000;
  cp.hello_ns = cp.heartbeat_ns * 2;
  sync::Channel::Events ev;
  ev.entry = [this](uint64_t seq, uint8_t type, std::span<const uint8_t> body) {
    on_entry(seq, type, body, mono_ns());
  };
  ev.up = [this] { up_event_ = true; };
  ev.down = [this] { on_down(); };
  channel_ = std::make_unique<sync::Channel>(std::move(cp), std::move(ev));
  started_ns_ = mono_ns();
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
  log_info("sync: listening on " + where + (cfg_.interface.empty() ? "" : " (" + cfg_.interface + ")") +
           ", peer " + cfg::format_ipv4(cfg_.peer) + ", dhcp " +
           (strict_ ? "strict" : "async") + ", connections " + (cfg_.connections ? "on" : "off"));
  return "";
}

void SyncService::stop() {
  if (thread_.joinable()) {
    stop_.store(true);
    wake();
    thread_.join();
  }
  release_all();
  if (fd_ >= 0) close(fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  fd_ = wake_fd_ = -1;
}

void SyncService::wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(wake_fd_, &one, sizeof one);
}

// ------------------------------------------------------------------ keeper side

void SyncService::queue_leases(const dhcp::LeaseEvent* ev, size_t n,
                               const std::vector<uint64_t>& upto) {
  Batch b;
  for (size_t i = 0; i < n; ++i) {
    // Expiry is not replicated: both nodes end a lease at the same expires_ns by themselves, and
    // a standby's own expiry must not race with the master's renewal of the same lease.
    if (ev[i].kind == dhcp::LeaseEvent::kExpire || ev[i].kind == dhcp::LeaseEvent::kOfferExpired)
      continue;
    b.entries.push_back(sync::encode_lease(ev[i].lease));
  }
  std::vector<uint64_t> from = keeper_pos_;
  keeper_pos_ = upto;
  if (b.entries.empty()) return;
  b.from = std::move(from);
  b.queued_ns = mono_ns();
  {
    std::lock_guard<std::mutex> g(out_mu_);
    // No session: nobody to wait for (the bulk resync of the next session carries the state).
    if (!peer_alive()) return;
    pending_.push_back(std::move(b));
    waiting_.store(strict_, std::memory_order_relaxed);
  }
  wake();
}

uint64_t SyncService::acked_upto(uint32_t w) const {
  if (!strict_) return kNone;
  std::lock_guard<std::mutex> g(out_mu_);
  if (pending_.empty() || w >= pending_.front().from.size()) return kNone;
  return pending_.front().from[w];
}

void SyncService::release_all() {
  {
    std::lock_guard<std::mutex> g(out_mu_);
    if (!pending_.empty()) stats_.strict_released_down.add(pending_.size());
    pending_.clear();
    waiting_.store(false, std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> g(ack_mu_);
    ++ack_epoch_;
  }
  ack_cv_.notify_all();
}

void SyncService::wait_acks(uint32_t max_us) {
  std::unique_lock<std::mutex> g(ack_mu_);
  const uint64_t seen = ack_epoch_;
  ack_cv_.wait_for(g, std::chrono::microseconds(max_us), [&] { return ack_epoch_ != seen; });
}

// ------------------------------------------------------------------ control side

void SyncService::set_status(const sync::Status& s) {
  std::vector<uint8_t> b = sync::encode_status(s);
  std::lock_guard<std::mutex> g(status_mu_);
  if (b == our_status_) return;
  our_status_ = std::move(b);
  status_dirty_ = true;
}

std::optional<sync::Status> SyncService::peer_status() const {
  std::lock_guard<std::mutex> g(status_mu_);
  return peer_status_;
}

bool SyncService::quiesce(uint32_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const uint64_t req = quiesce_req_.fetch_add(1) + 1;
  wake();
  while (quiesce_done_.load(std::memory_order_acquire) < req) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  while (!dp_.peer_state_applied()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

std::string SyncService::push_config(const std::string& name, const std::string& text,
                                     uint64_t* id) {
  if (!peer_alive()) return "the peer is not connected on the sync link";
  std::lock_guard<std::mutex> g(push_mu_);
  const uint64_t pid = (boot_id_ << 16) ^ next_push_id_++;
  for (size_t off = 0; off == 0 || off < text.size(); off += sync::kConfigChunkData) {
    sync::ConfigChunk c;
    c.push_id = pid;
    c.total = static_cast<uint32_t>(text.size());
    c.offset = static_cast<uint32_t>(off);
    c.name = name;
    c.data = text.substr(off, sync::kConfigChunkData);
    push_out_.push_back(std::move(c));
    if (text.empty()) break;
  }
  *id = pid;
  wake();
  return "";
}

std::optional<sync::ConfigResult> SyncService::push_result(uint64_t id) const {
  std::lock_guard<std::mutex> g(push_mu_);
  for (const auto& r : results_in_)
    if (r.push_id == id) return r;
  return std::nullopt;
}

std::optional<sync::ConfigChunk> SyncService::take_push() {
  std::lock_guard<std::mutex> g(push_mu_);
  std::optional<sync::ConfigChunk> r = std::move(push_ready_);
  push_ready_.reset();
  return r;
}

void SyncService::answer_push(const sync::ConfigResult& r) {
  {
    std::lock_guard<std::mutex> g(push_mu_);
    results_out_.push_back(r);
  }
  wake();
}

sync::ChannelStats SyncService::channel_stats() const {
  std::lock_guard<std::mutex> g(chan_mu_);
  return chan_stats_;
}

// ------------------------------------------------------------------ sync thread

void SyncService::on_up(uint64_t now) {
  stats_.up.store(1);
  log_info("sync: session with " + cfg::format_ipv4(cfg_.peer) +
           " up; sending our state (bulk resync)");
  // Our whole state, between markers; live changes interleave (generations order them).
  bulk_ = Bulk{};
  bulk_.active = true;
  bulk_.id = random_u64();
  bulk_.started_ns = now;
  sync::BulkMarker m;
  m.id = bulk_.id;
  channel_->send(static_cast<uint8_t>(sync::EntryType::kBulkStart), sync::encode_bulk(m, false));
  if (keeper_ != nullptr) {
    for (const dhcp::Lease& l : keeper_->all_leases()) {
      if (channel_->send(static_cast<uint8_t>(sync::EntryType::kLease), sync::encode_lease(l)) ==
          0) {
        stats_.send_refused.add();
        continue;
      }
      ++bulk_.leases;
    }
  }
  bulk_.dump_req.assign(n_workers_, 0);
  if (cfg_.connections && dp_.forward_enabled()) {
    for (uint32_t w = 0; w < n_workers_; ++w) {
      dp::ForwardEngine* e = dp_.forward_engine(w);
      dp::ConnDump& d = e->sync_dump;
      // The worker owns `out` and `max` while a request is being served; a request still being
      // served (a previous session's) is superseded by the new one, which the worker restarts
      // into the room reserved for the first.
      if (d.done.load(std::memory_order_acquire) == d.req.load(std::memory_order_relaxed)) {
        d.out.reserve(e->conns.capacity());
        d.max = e->conns.capacity();
      }
      bulk_.dump_req[w] = d.req.fetch_add(1, std::memory_order_acq_rel) + 1;
    }
    bulk_.dumps_requested = true;
  }
  bulk_step(now);
}

void SyncService::bulk_step(uint64_t now) {
  if (!bulk_.active) return;
  if (bulk_.dumps_requested) {
    bool all = true;
    for (uint32_t w = 0; w < n_workers_ && all; ++w)
      all = dp_.forward_engine(w)->sync_dump.done.load(std::memory_order_acquire) >=
            bulk_.dump_req[w];
    if (!all && now - bulk_.started_ns < kBulkDumpTimeoutNs) return;
    if (!all) log_warning("sync: connection dump for the bulk resync timed out; sending what we have");
    for (uint32_t w = 0; w < n_workers_; ++w) {
      dp::ConnDump& d = dp_.forward_engine(w)->sync_dump;
      if (d.done.load(std::memory_order_acquire) < bulk_.dump_req[w]) continue;
      for (const dp::ConnRecord& r : d.out) {
        if (channel_->send(static_cast<uint8_t>(sync::EntryType::kConn),
                           sync::encode_conn(r)) == 0) {
          stats_.send_refused.add();
          continue;
        }
        ++bulk_.conns;
      }
      d.out = {};
    }
  }
  sync::BulkMarker m;
  m.id = bulk_.id;
  m.leases = bulk_.leases;
  m.connections = bulk_.conns;
  channel_->send(static_cast<uint8_t>(sync::EntryType::kBulkEnd), sync::encode_bulk(m, true));
  stats_.resyncs_sent.add();
  bulk_.active = false;
  log_info("sync: bulk resync sent: " + std::to_string(bulk_.leases) + " leases, " +
           std::to_string(bulk_.conns) + " connections");
}

void SyncService::on_down() {
  const bool was = stats_.up.exchange(0) != 0;
  resynced_.store(false, std::memory_order_release);
  bulk_.active = false;
  release_all();
  if (was)
    log_warning("sync: session with " + cfg::format_ipv4(cfg_.peer) +
                " down (peer silent or restarted); serving without waiting for it");
}

void SyncService::on_entry(uint64_t, uint8_t type, std::span<const uint8_t> body, uint64_t now) {
  switch (static_cast<sync::EntryType>(type)) {
    case sync::EntryType::kLease: {
      auto l = sync::decode_lease(body);
      if (!l) break;
      stats_.entries_in_leases.add();
      ++bulk_in_leases_;
      if (keeper_ != nullptr) keeper_->ingest(*l);
      if (!lease_backlog_.empty() || !dp_.push_peer_lease(*l)) {
        if (lease_backlog_.size() < kBacklogMax)
          lease_backlog_.push_back(*l);
        else
          stats_.backlog_full.add();
      }
      return;
    }
    case sync::EntryType::kConn: {
      auto c = sync::decode_conn(body);
      if (!c) break;
      stats_.entries_in_conns.add();
      ++bulk_in_conns_;
      if (!conn_backlog_.empty() || !dp_.push_peer_conn(*c)) {
        if (conn_backlog_.size() < kBacklogMax)
          conn_backlog_.push_back(*c);
        else
          stats_.backlog_full.add();
      }
      return;
    }
    case sync::EntryType::kBulkStart:
      if (!sync::decode_bulk(body, false)) break;
      bulk_in_started_ns_ = now;
      bulk_in_leases_ = bulk_in_conns_ = 0;
      return;
    case sync::EntryType::kBulkEnd: {
      auto m = sync::decode_bulk(body, true);
      if (!m) break;
      stats_.resyncs_received.add();
      last_resync_ms_.store(bulk_in_started_ns_ != 0 ? (now - bulk_in_started_ns_) / 1'000'000
                                                     : 0);
      resynced_.store(true, std::memory_order_release);
      log_info("sync: bulk resync from the peer complete: " + std::to_string(m->leases) +
               " leases, " + std::to_string(m->connections) + " connections in " +
               std::to_string(last_resync_ms_.load()) + " ms");
      return;
    }
    case sync::EntryType::kConfigPush: {
      auto c = sync::decode_config_chunk(body);
      if (!c) break;
      if (c->offset == 0) {
        push_in_ = *c;
        push_in_buf_.clear();
      }
      if (c->push_id != push_in_.push_id || c->offset != push_in_buf_.size()) break;
      push_in_buf_ += c->data;
      if (push_in_buf_.size() == c->total) {
        sync::ConfigChunk whole = push_in_;
        whole.offset = 0;
        whole.data = std::move(push_in_buf_);
        push_in_buf_.clear();
        stats_.config_pushes_in.add();
        std::lock_guard<std::mutex> g(push_mu_);
        push_ready_ = std::move(whole);
      }
      return;
    }
    case sync::EntryType::kConfigResult: {
      auto r = sync::decode_config_result(body);
      if (!r) break;
      std::lock_guard<std::mutex> g(push_mu_);
      results_in_.push_back(std::move(*r));
      if (results_in_.size() > 64) results_in_.erase(results_in_.begin());
      return;
    }
  }
  log_warning("sync: an entry of type " + std::to_string(type) + " from the peer was malformed");
}

void SyncService::retry_backlog() {
  while (!lease_backlog_.empty() && dp_.push_peer_lease(lease_backlog_.front()))
    lease_backlog_.pop_front();
  while (!conn_backlog_.empty() && dp_.push_peer_conn(conn_backlog_.front()))
    conn_backlog_.pop_front();
}

void SyncService::send_local(uint64_t now) {
  const bool up = channel_->state() == sync::ChannelState::kUp;
  // Lease batches from the keeper, in order.
  {
    std::lock_guard<std::mutex> g(out_mu_);
    for (Batch& b : pending_) {
      if (b.last_seq != 0 || b.entries.empty()) continue;
      uint64_t seq = 0;
      for (auto& e : b.entries) {
        const uint64_t s = channel_->send(static_cast<uint8_t>(sync::EntryType::kLease), e);
        if (s == 0) {
          stats_.send_refused.add();
          continue;
        }
        seq = s;
        stats_.entries_out_leases.add();
      }
      b.entries.clear();
      b.entries.shrink_to_fit();
      // Nothing could be sent (queue full): wait no longer than for what is in flight.
      b.last_seq = seq != 0 ? seq : std::max<uint64_t>(channel_->acked(), 1);
    }
  }
  settle(now);
  // Connection changes from the workers.
  if (cfg_.connections && dp_.forward_enabled()) {
    dp::ConnSync buf[kConnPoll];
    for (uint32_t w = 0; w < n_workers_; ++w) {
      const uint32_t n = dp_.poll_conn_updates(w, buf, kConnPoll);
      for (uint32_t i = 0; i < n; ++i) {
        if (!up) {
          stats_.conns_dropped_down.add();
          continue;
        }
        if (channel_->send(static_cast<uint8_t>(sync::EntryType::kConn),
                           sync::encode_conn(buf[i])) == 0)
          stats_.send_refused.add();
        else
          stats_.entries_out_conns.add();
      }
    }
  }
  // Configuration pushes and answers.
  {
    std::lock_guard<std::mutex> g(push_mu_);
    if (up) {
      for (const auto& c : push_out_)
        channel_->send(static_cast<uint8_t>(sync::EntryType::kConfigPush),
                       sync::encode_config_chunk(c));
      for (const auto& r : results_out_)
        channel_->send(static_cast<uint8_t>(sync::EntryType::kConfigResult),
                       sync::encode_config_result(r));
    }
    push_out_.clear();
    results_out_.clear();
  }
  {
    std::lock_guard<std::mutex> g(status_mu_);
    if (status_dirty_) {
      channel_->set_status(our_status_);
      status_dirty_ = false;
    }
  }
}

void SyncService::settle(uint64_t now) {
  const uint64_t acked = channel_->acked();
  bool settled = false;
  {
    std::lock_guard<std::mutex> g(out_mu_);
    while (!pending_.empty() && pending_.front().last_seq != 0 &&
           pending_.front().last_seq <= acked) {
      const uint64_t lag_ns = now - pending_.front().queued_ns;
      const double lag = static_cast<double>(lag_ns) / 1e9;
      size_t b = 0;
      while (b < SyncStats::kLagBounds.size() && lag > SyncStats::kLagBounds[b]) ++b;
      stats_.lag_buckets[b].add();
      stats_.lag_count.add();
      stats_.lag_sum_ns.fetch_add(lag_ns, std::memory_order_relaxed);
      pending_.pop_front();
      settled = true;
    }
    waiting_.store(strict_ && !pending_.empty(), std::memory_order_relaxed);
  }
  if (settled) {
    {
      std::lock_guard<std::mutex> g(ack_mu_);
      ++ack_epoch_;
    }
    ack_cv_.notify_all();
  }
}

void SyncService::run() {
  std::vector<uint8_t> buf(65536);
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> last_peer_status;
  while (!stop_.load(std::memory_order_acquire)) {
    uint64_t now = mono_ns();
    for (int i = 0; i < 4096; ++i) {
      const ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) break;
      channel_->on_datagram({buf.data(), static_cast<size_t>(n)}, now);
    }
    // Session events are acted on here, outside the channel's callbacks.
    if (up_event_) {
      up_event_ = false;
      if (channel_->state() == sync::ChannelState::kUp) on_up(now);
    }
    if (const auto& ps = channel_->peer_status(); ps != last_peer_status) {
      last_peer_status = ps;
      if (auto st = sync::decode_status(ps)) {
        std::lock_guard<std::mutex> g(status_mu_);
        peer_status_ = std::move(st);
      }
    }
    retry_backlog();
    send_local(now);
    bulk_step(now);
    now = mono_ns();
    out.clear();
    channel_->poll(now, out);
    for (const auto& d : out) {
      if (send(fd_, d.data(), d.size(), MSG_DONTWAIT) < 0 && errno != EAGAIN &&
          errno != ECONNREFUSED)
        break;  // ECONNREFUSED: the peer's port is closed (it is restarting)
    }
    settle(now);
    stats_.unacked.store(channel_->unacked(), std::memory_order_relaxed);
    if (channel_->last_heard() != 0) {
      const uint64_t age_ms = (mono_ns() - channel_->last_heard()) / 1'000'000;
      stats_.last_heard_unix_ms.store(unix_ms() - age_ms, std::memory_order_relaxed);
    }
    {
      std::lock_guard<std::mutex> g(chan_mu_);
      chan_stats_ = channel_->stats();
    }
    if (lease_backlog_.empty() && conn_backlog_.empty())
      quiesce_done_.store(quiesce_req_.load(std::memory_order_acquire), std::memory_order_release);

    // Sleep until the socket, a wake-up or the channel's next timer; at most 1 ms while workers
    // may be reporting connections or a backlog waits for ring room.
    uint64_t wait_ns = 5'000'000;
    const uint64_t next = channel_->next_deadline();
    const uint64_t t = mono_ns();
    if (next != UINT64_MAX) wait_ns = next > t ? std::min(wait_ns, next - t) : 0;
    if ((cfg_.connections && dp_.forward_enabled()) || !lease_backlog_.empty() ||
        !conn_backlog_.empty() || bulk_.active)
      wait_ns = std::min<uint64_t>(wait_ns, 1'000'000);
    if (wait_ns == 0) continue;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000),
                static_cast<long>(wait_ns % 1'000'000'000)};
    if (ppoll(fds, 2, &ts, nullptr) > 0 && (fds[1].revents & POLLIN)) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(wake_fd_, &v, sizeof v);
    }
  }
}

nlohmann::json SyncService::status_json() const {
  const sync::ChannelStats cs = channel_stats();
  nlohmann::json j;
  j["peer"] = cfg::format_ipv4(cfg_.peer);
  j["address"] = cfg::format_ipv4(cfg_.address);
  j["port"] = cfg_.port;
  j["state"] = peer_alive() ? "up" : "down";
  j["resynced"] = resynced();
  j["dhcp"] = strict_ ? "strict" : "async";
  j["connections"] = cfg_.connections;
  const uint64_t heard = stats_.last_heard_unix_ms.load();
  j["last_heard_unix_ms"] = heard;
  j["last_heard_ago_ms"] = heard != 0 ? static_cast<int64_t>(unix_ms() - heard) : -1;
  j["unacked_entries"] = stats_.unacked.load();
  j["last_resync_ms"] = last_resync_ms_.load();
  {
    std::lock_guard<std::mutex> g(out_mu_);
    j["strict_waiting_batches"] = pending_.size();
  }
  const uint64_t lc = stats_.lag_count.get();
  j["lag_mean_us"] = lc != 0 ? static_cast<double>(stats_.lag_sum_ns.load()) / lc / 1000.0 : 0.0;
  j["entries"] = {{"leases_out", stats_.entries_out_leases.get()},
                  {"leases_in", stats_.entries_in_leases.get()},
                  {"connections_out", stats_.entries_out_conns.get()},
                  {"connections_in", stats_.entries_in_conns.get()},
                  {"connections_dropped_while_down", stats_.conns_dropped_down.get()}};
  j["resyncs"] = {{"sent", stats_.resyncs_sent.get()}, {"received", stats_.resyncs_received.get()}};
  j["datagrams"] = {{"sent", cs.dgrams_sent}, {"received", cs.dgrams_received}};
  j["bytes"] = {{"sent", cs.bytes_sent}, {"received", cs.bytes_received}};
  j["retransmitted"] = cs.entries_retransmitted;
  j["duplicates"] = cs.duplicates;
  j["rejected"] = {{"auth", cs.auth_failures}, {"replay", cs.replays}, {"malformed", cs.malformed}};
  j["sessions"] = cs.sessions;
  j["peer_restarts"] = cs.peer_restarts;
  j["timeouts"] = cs.timeouts;
  if (auto ps = peer_status()) {
    j["peer_node"] = ps->node;
    j["peer_resynced"] = ps->resynced;
    j["peer_config_digest"] = sync::digest_hex(ps->config_digest);
    nlohmann::json v = nlohmann::json::array();
    for (const auto& x : ps->vrrp)
      v.push_back({{"vrid", x.vrid},
                   {"state", vrrp::to_string(static_cast<vrrp::State>(x.state))}});
    j["peer_vrrp"] = v;
  }
  return j;
}

}  // namespace ctl
