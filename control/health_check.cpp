#include "control/health_check.h"
#include "control/clock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace ctl {
namespace {

constexpr uint64_t kNsPerMs = 1'000'000;
constexpr size_t kMaxStatusLine = 1024;  // an HTTP status line longer than this is malformed
constexpr int kMaxEvents = 256;
constexpr uint64_t kWakeToken = 0;  // epoll token of the wake eventfd; probes use 1, 2, ...

// splitmix64's finaliser: a well-mixed, deterministic jitter source from the key.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string dotted(uint32_t ip) {
  char buf[INET_ADDRSTRLEN];
  uint32_t n = htonl(ip);
  inet_ntop(AF_INET, &n, buf, sizeof(buf));
  return buf;
}

void bump(uint32_t& c) {
  if (c != UINT32_MAX) ++c;
}

void drain_eventfd(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof(v)) == sizeof(v)) {
  }
}

void signal_eventfd(int fd) {
  uint64_t one = 1;
  // EAGAIN only when the counter is at its maximum: it is readable anyway.
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}

}  // namespace

struct HealthChecker::Impl {
  enum class Phase : uint8_t {
    kIdle,       // waiting for the next round (or kNone: never checked)
    kRetryWait,  // an attempt failed, the next one starts at the timer
    kConnecting,
    kSending,  // HTTP: request not fully sent
    kReading,  // HTTP: waiting for the status line
  };

  struct Probe {
    CheckTarget target;
    CheckStatus st;
    std::string request;  // HTTP: the whole request, built once per spec
    Phase phase = Phase::kIdle;
    int fd = -1;
    bool armed = false;  // fd is in the epoll set
    uint64_t token = 0;  // epoll token of fd
    uint64_t round_start_ns = 0;
    uint64_t attempt_start_ns = 0;
    uint32_t attempts = 0;  // in the current round
    size_t sent = 0;
    std::string rx;
    uint64_t timer_ns = 0;   // the one live timer of this probe...
    uint64_t timer_gen = 0;  // ...and its generation (0: none)
  };

  struct Timer {
    uint64_t at_ns;
    uint64_t gen;
    uint64_t key;
    bool operator>(const Timer& o) const { return at_ns > o.at_ns; }
  };

  // Fixed at construction.
  int ep = -1;
  int wake_fd = -1;    // written by set_targets() and the destructor, read by the thread
  int notify_fd = -1;  // written by the thread, drained by take_transitions()
  std::thread thread;
  std::atomic<bool> stop{false};  // written by the destructor, read by the thread

  // Everything below: read and written by the checker thread and the control thread (set_targets,
  // status, take_transitions) under mu. The thread releases it only around epoll_wait.
  mutable std::mutex mu;
  std::unordered_map<uint64_t, std::unique_ptr<Probe>> probes;  // by key
  std::unordered_map<uint64_t, uint64_t> token_key;  // epoll token → key, for open sockets
  std::vector<Timer> heap;                           // min-heap on at_ns; stale entries skipped
  uint64_t next_gen = 1;
  uint64_t next_token = 1;
  std::vector<CheckTransition> pending;
  std::unordered_map<uint64_t, size_t> pending_index;  // key → index in pending

  Impl() {
    ep = epoll_create1(EPOLL_CLOEXEC);
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep < 0 || wake_fd < 0 || notify_fd < 0) {
      int err = errno;
      close_fds();
      throw std::system_error(err, std::generic_category(), "health checker: epoll/eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeToken;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev) < 0) {
      int err = errno;
      close_fds();
      throw std::system_error(err, std::generic_category(), "health checker: epoll_ctl");
    }
  }

  void close_fds() {
    for (int* fd : {&ep, &wake_fd, &notify_fd}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  ~Impl() {
    for (auto& [key, p] : probes) close_socket(*p, false);
    close_fds();
  }

  // --- timers ---

  void schedule(Probe& p, uint64_t at_ns) {
    p.timer_ns = at_ns;
    p.timer_gen = next_gen++;
    heap.push_back({at_ns, p.timer_gen, p.target.key});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  }

  void cancel_timer(Probe& p) { p.timer_gen = 0; }

  void rebuild_heap() {
    heap.clear();
    for (auto& [key, p] : probes)
      if (p->timer_gen != 0) heap.push_back({p->timer_ns, p->timer_gen, key});
    std::make_heap(heap.begin(), heap.end(), std::greater<>());
  }

  // The live probe a heap entry belongs to, or nullptr when the entry is stale.
  Probe* live(const Timer& t) {
    auto it = probes.find(t.key);
    if (it == probes.end() || it->second->timer_gen != t.gen) return nullptr;
    return it->second.get();
  }

  // Milliseconds until the earliest live timer (-1: none), rounded up so we never wake early.
  int next_timeout_ms(uint64_t now) {
    while (!heap.empty() && live(heap.front()) == nullptr) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      heap.pop_back();
    }
    if (heap.empty()) return -1;
    uint64_t at = heap.front().at_ns;
    if (at <= now) return 0;
    uint64_t ms = (at - now + kNsPerMs - 1) / kNsPerMs;
    return static_cast<int>(std::min<uint64_t>(ms, 60'000));
  }

  void run_timers(uint64_t now) {
    while (!heap.empty() && heap.front().at_ns <= now) {
      Timer t = heap.front();
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      heap.pop_back();
      Probe* p = live(t);
      if (p == nullptr) continue;
      p->timer_gen = 0;
      on_timer(*p, now);
    }
  }

  // --- one probe ---

  static uint16_t check_port(const Probe& p) {
    return p.target.spec.port != 0 ? p.target.spec.port : p.target.port;
  }

  static std::string build_request(const CheckTarget& t) {
    if (t.spec.type != CheckSpec::Type::kHttp) return {};
    uint16_t port = t.spec.port != 0 ? t.spec.port : t.port;
    std::string host = t.spec.host;
    if (host.empty()) {
      host = dotted(t.ip);
      if (port != 80) host += ":" + std::to_string(port);
    }
    std::string path = t.spec.path.empty() ? "/" : t.spec.path;
    return "GET " + path + " HTTP/1.0\r\nHost: " + host +
           "\r\nUser-Agent: tandem-check\r\nConnection: close\r\n\r\n";
  }

  void close_socket(Probe& p, bool reset) {
    if (p.fd < 0) return;
    if (reset) {
      // A TCP check carried no data: end it with a RST rather than leave TIME_WAIT sockets
      // behind, thousands of targets at short intervals would pile them up.
      linger lg{1, 0};
      setsockopt(p.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(p.fd);  // also leaves the epoll set
    token_key.erase(p.token);
    p.fd = -1;
    p.armed = false;
    p.token = 0;
  }

  // Stops whatever the probe is doing; it is idle with no timer afterwards.
  void abort_round(Probe& p) {
    close_socket(p, false);
    cancel_timer(p);
    p.phase = Phase::kIdle;
    p.attempts = 0;
    p.rx.clear();
  }

  bool arm(Probe& p, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = p.token;
    if (epoll_ctl(ep, p.armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p.fd, &ev) < 0) return false;
    p.armed = true;
    return true;
  }

  void on_timer(Probe& p, uint64_t now) {
    switch (p.phase) {
      case Phase::kIdle:
        p.round_start_ns = now;
        p.attempts = 0;
        start_attempt(p, now);
        break;
      case Phase::kRetryWait:
        start_attempt(p, now);
        break;
      case Phase::kConnecting:
      case Phase::kSending:
      case Phase::kReading:
        fail_attempt(p, now, "timeout after " + std::to_string(p.target.spec.timeout_ms) + " ms");
        break;
    }
  }

  void start_attempt(Probe& p, uint64_t now) {
    ++p.attempts;
    ++p.st.checks;
    p.attempt_start_ns = now;
    p.sent = 0;
    p.rx.clear();
    uint16_t port = check_port(p);
    if (port == 0) return fail_attempt(p, now, "no port to check");
    p.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p.fd < 0) return fail_attempt(p, now, std::string("socket: ") + std::strerror(errno));
    p.token = next_token++;
    token_key[p.token] = p.target.key;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(p.target.ip);
    schedule(p, now + uint64_t{p.target.spec.timeout_ms} * kNsPerMs);
    if (connect(p.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return connected(p, now);
    if (errno != EINPROGRESS)
      return fail_attempt(p, now, std::string("connect: ") + std::strerror(errno));
    p.phase = Phase::kConnecting;
    if (!arm(p, EPOLLOUT))
      return fail_attempt(p, now, std::string("epoll_ctl: ") + std::strerror(errno));
  }

  void connected(Probe& p, uint64_t now) {
    if (p.target.spec.type != CheckSpec::Type::kHttp) return succeed_attempt(p, now);
    p.phase = Phase::kSending;
    send_request(p, now);
  }

  void send_request(Probe& p, uint64_t now) {
    while (p.sent < p.request.size()) {
      ssize_t n = send(p.fd, p.request.data() + p.sent, p.request.size() - p.sent, MSG_NOSIGNAL);
      if (n > 0) {
        p.sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!arm(p, EPOLLOUT))
          fail_attempt(p, now, std::string("epoll_ctl: ") + std::strerror(errno));
        return;
      }
      return fail_attempt(p, now, std::string("send: ") + std::strerror(errno));
    }
    p.phase = Phase::kReading;
    if (!arm(p, EPOLLIN | EPOLLRDHUP))
      fail_attempt(p, now, std::string("epoll_ctl: ") + std::strerror(errno));
  }

  void read_status(Probe& p, uint64_t now) {
    char buf[512];
    for (;;) {
      ssize_t n = recv(p.fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // more later
        return fail_attempt(p, now, std::string("recv: ") + std::strerror(errno));
      }
      if (n == 0) {
        if (p.rx.empty()) return fail_attempt(p, now, "HTTP: connection closed without a response");
        return parse_status(p, now, p.rx);  // a status line cut by EOF is judged as is
      }
      size_t take = std::min(static_cast<size_t>(n), kMaxStatusLine + 1 - p.rx.size());
      p.rx.append(buf, take);
      size_t eol = p.rx.find('\n');
      if (eol != std::string::npos) return parse_status(p, now, p.rx.substr(0, eol));
      if (p.rx.size() > kMaxStatusLine) return fail_attempt(p, now, "HTTP: status line too long");
    }
  }

  // "HTTP/1.1 200 OK"
  void parse_status(Probe& p, uint64_t now, std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t sp = line.find(' ');
    bool ok = line.compare(0, 5, "HTTP/") == 0 && sp != std::string::npos &&
              line.size() >= sp + 4 && (line.size() == sp + 4 || line[sp + 4] == ' ');
    uint32_t code = 0;
    for (size_t i = sp + 1; ok && i < sp + 4; ++i) {
      if (line[i] < '0' || line[i] > '9') ok = false;
      code = code * 10 + static_cast<uint32_t>(line[i] - '0');
    }
    if (!ok) return fail_attempt(p, now, "HTTP: malformed status line");
    if (code != p.target.spec.status)
      return fail_attempt(p, now, "HTTP status " + std::to_string(code));
    succeed_attempt(p, now);
  }

  void on_io(Probe& p, uint32_t events, uint64_t now) {
    switch (p.phase) {
      case Phase::kConnecting: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) err = ECONNRESET;
        if (err != 0) return fail_attempt(p, now, std::string("connect: ") + std::strerror(err));
        return connected(p, now);
      }
      case Phase::kSending:
        return send_request(p, now);
      case Phase::kReading:
        return read_status(p, now);
      case Phase::kIdle:
      case Phase::kRetryWait:
        return;  // a late event for a socket already closed
    }
  }

  void succeed_attempt(Probe& p, uint64_t now) {
    close_socket(p, p.target.spec.type == CheckSpec::Type::kTcp);
    cancel_timer(p);
    uint64_t us = (now - p.attempt_start_ns) / 1000;
    p.st.last_latency_us = static_cast<uint32_t>(std::min<uint64_t>(us, UINT32_MAX));
    end_round(p, now, true,
              p.target.spec.type == CheckSpec::Type::kHttp
                  ? "HTTP status " + std::to_string(p.target.spec.status)
                  : std::string("connect succeeded"));
  }

  void fail_attempt(Probe& p, uint64_t now, std::string error) {
    close_socket(p, false);
    cancel_timer(p);
    ++p.st.failures;
    p.st.last_error = std::move(error);
    if (p.attempts <= p.target.spec.retries) {
      p.phase = Phase::kRetryWait;
      schedule(p, now + uint64_t{p.target.spec.retry_delay_ms} * kNsPerMs);
      return;
    }
    end_round(p, now, false, p.st.last_error);
  }

  void end_round(Probe& p, uint64_t now, bool ok, const std::string& reason) {
    CheckStatus& st = p.st;
    ++st.rounds;
    if (ok) {
      bump(st.consecutive_ok);
      st.consecutive_fail = 0;
      if (!st.up && st.consecutive_ok >= std::max<uint32_t>(p.target.spec.rise, 1))
        transition(p, true, reason);
    } else {
      ++st.failed_rounds;
      bump(st.consecutive_fail);
      st.consecutive_ok = 0;
      if (st.up && st.consecutive_fail >= std::max<uint32_t>(p.target.spec.fall, 1))
        transition(p, false, reason);
    }
    p.phase = Phase::kIdle;
    p.attempts = 0;
    uint64_t interval = std::max<uint64_t>(p.target.spec.interval_ms, 1) * kNsPerMs;
    schedule(p, std::max(p.round_start_ns + interval, now));
  }

  void transition(Probe& p, bool up, const std::string& reason) {
    p.st.up = up;
    ++p.st.transitions;
    uint64_t key = p.target.key;
    auto it = pending_index.find(key);
    if (it != pending_index.end()) {
      pending[it->second].up = up;
      pending[it->second].reason = reason;
    } else {
      pending_index[key] = pending.size();
      pending.push_back({key, up, reason});
    }
    signal_eventfd(notify_fd);
  }

  // --- the thread ---

  void run() {
    epoll_event events[kMaxEvents];
    std::unique_lock lock(mu);
    while (!stop.load(std::memory_order_acquire)) {
      int timeout = next_timeout_ms(mono_ns());
      lock.unlock();
      int n = epoll_wait(ep, events, kMaxEvents, timeout);
      lock.lock();
      for (int i = 0; i < n; ++i) {
        uint64_t token = events[i].data.u64;
        if (token == kWakeToken) {
          drain_eventfd(wake_fd);
          continue;
        }
        // Sockets closed by set_targets() between epoll_wait and the lock leave stale tokens.
        auto tk = token_key.find(token);
        if (tk == token_key.end()) continue;
        auto it = probes.find(tk->second);
        if (it == probes.end() || it->second->token != token) continue;
        on_io(*it->second, events[i].events, mono_ns());
      }
      run_timers(mono_ns());
      // Rescheduling leaves stale entries behind; they are skipped when they surface. Rebuild
      // when they dominate so churn (reloads, removed targets) cannot grow the heap unbounded.
      if (heap.size() > 2 * probes.size() + 1024) rebuild_heap();
    }
  }

  // --- control thread, under mu ---

  void apply(std::vector<CheckTarget>& targets) {
    uint64_t now = mono_ns();
    std::unordered_map<uint64_t, std::unique_ptr<Probe>> next;
    next.reserve(targets.size());
    for (CheckTarget& t : targets) {
      auto old = probes.find(t.key);
      std::unique_ptr<Probe> p;
      if (old != probes.end()) {
        p = std::move(old->second);
        probes.erase(old);
        if (p->target.ip == t.ip && p->target.port == t.port && p->target.spec == t.spec) {
          next[t.key] = std::move(p);
          continue;
        }
        // Changed: keep the up/down state the caller knows, start judging afresh.
        abort_round(*p);
        p->st.consecutive_ok = 0;
        p->st.consecutive_fail = 0;
        p->target = std::move(t);
        if (p->target.spec.type == CheckSpec::Type::kNone && !p->st.up)
          transition(*p, true, "check disabled");
        start(*p, now);
      } else if (next.find(t.key) == next.end()) {
        p = std::make_unique<Probe>();
        p->st.key = t.key;
        p->st.up = true;
        p->target = std::move(t);
        uint64_t window_ms = std::min<uint64_t>(p->target.spec.interval_ms / 4, 250);
        start(*p, now + mix(p->target.key) % (window_ms * 1000 + 1) * 1000);
      } else {
        continue;  // duplicate key: the first one wins
      }
      uint64_t key = p->target.key;
      next[key] = std::move(p);
    }
    bool removed = !probes.empty();
    for (auto& [key, p] : probes) abort_round(*p);
    probes = std::move(next);
    if (removed) drop_pending_of_removed();
    signal_eventfd(wake_fd);  // the earliest deadline may have moved
  }

  void start(Probe& p, uint64_t at_ns) {
    p.request = build_request(p.target);
    if (p.target.spec.type == CheckSpec::Type::kNone) return;
    schedule(p, at_ns);
  }

  void drop_pending_of_removed() {
    std::vector<CheckTransition> kept;
    for (auto& t : pending)
      if (probes.count(t.key) != 0) kept.push_back(std::move(t));
    pending = std::move(kept);
    pending_index.clear();
    for (size_t i = 0; i < pending.size(); ++i) pending_index[pending[i].key] = i;
  }
};

HealthChecker::HealthChecker() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  pthread_setname_np(impl_->thread.native_handle(), "tandem-hcheck");
}

HealthChecker::~HealthChecker() {
  impl_->stop.store(true, std::memory_order_release);
  signal_eventfd(impl_->wake_fd);
  impl_->thread.join();
}

void HealthChecker::set_targets(std::vector<CheckTarget> targets) {
  std::lock_guard lock(impl_->mu);
  impl_->apply(targets);
}

std::vector<CheckTransition> HealthChecker::take_transitions() {
  std::lock_guard lock(impl_->mu);
  drain_eventfd(impl_->notify_fd);
  std::vector<CheckTransition> out;
  out.swap(impl_->pending);
  impl_->pending_index.clear();
  return out;
}

std::vector<CheckStatus> HealthChecker::status() const {
  std::vector<CheckStatus> out;
  {
    std::lock_guard lock(impl_->mu);
    out.reserve(impl_->probes.size());
    for (const auto& [key, p] : impl_->probes) out.push_back(p->st);
  }
  std::sort(out.begin(), out.end(),
            [](const CheckStatus& a, const CheckStatus& b) { return a.key < b.key; });
  return out;
}

int HealthChecker::notify_fd() const {
  return impl_->notify_fd;
}

}  // namespace ctl
