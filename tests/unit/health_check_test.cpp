// HealthChecker against real sockets on 127.0.0.1 (a TCP listener, a small HTTP responder, a
// refused port, a server that never answers), and KernelTap inside a private network namespace
// (a forked child), so the host is untouched.

#include "control/health_check.h"
#include "control/kernel_tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace {

using ctl::CheckSpec;
using ctl::CheckStatus;
using ctl::CheckTarget;
using ctl::CheckTransition;
using ctl::HealthChecker;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kLoopback = 0x7f000001;

// Polls `cond` every 2 ms until it holds or `ms` pass.
template <class F>
bool wait_for(F cond, int ms = 3000) {
  auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (!cond()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A test server on 127.0.0.1, port chosen by the kernel, served by its own thread.
class Server {
 public:
  enum class Mode {
    kAccept,  // accept and close: a TCP check target
    kHttp,    // answer "HTTP/1.0 <status>" once the request is in, then close
    kSilent,  // accept, read, never answer
  };

  explicit Server(Mode mode) : mode_(mode) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(kLoopback);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(listen(listen_fd_, 4096), 0);
    socklen_t len = sizeof(sa);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { run(); });
  }
  ~Server() {
    uint64_t one = 1;
    EXPECT_EQ(write(stop_fd_, &one, sizeof(one)), 8);
    thread_.join();
    for (auto& [fd, buf] : clients_) close(fd);
    close(listen_fd_);
    close(stop_fd_);
  }

  uint16_t port() const { return port_; }
  void set_status(int s) { status_ = s; }
  void set_delay_ms(int ms) { delay_ms_ = ms; }
  // Odd connections (1st, 3rd, ...) get 503, even ones get the status.
  void set_alternate(bool on) { alternate_ = on; }
  uint64_t connections() const { return connections_; }
  std::string last_request() const {
    std::lock_guard lock(mu_);
    return last_request_;
  }

 private:
  void run() {
    for (;;) {
      std::vector<pollfd> fds{{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (auto& [fd, buf] : clients_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) return;
      if (fds[1].revents != 0) {
        for (int c;
             (c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          ++connections_;
          if (mode_ == Mode::kAccept)
            close(c);
          else
            clients_[c] = {};
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        int fd = fds[i].fd;
        char buf[2048];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
          close(fd);
          clients_.erase(fd);
          continue;
        }
        std::string& req = clients_[fd];
        req.append(buf, static_cast<size_t>(n));
        if (mode_ != Mode::kHttp || req.find("\r\n\r\n") == std::string::npos) continue;
        {
          std::lock_guard lock(mu_);
          last_request_ = req;
        }
        // Simulates a slow application, not a synchronisation sleep.
        if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
        int status = status_;
        if (alternate_ && (++answered_ % 2) == 1) status = 503;
        std::string resp = "HTTP/1.0 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n";
        EXPECT_EQ(write(fd, resp.data(), resp.size()), static_cast<ssize_t>(resp.size()));
        close(fd);
        clients_.erase(fd);
      }
    }
  }

  Mode mode_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> status_{200};
  std::atomic<int> delay_ms_{0};
  std::atomic<bool> alternate_{false};
  uint64_t answered_ = 0;
  std::atomic<uint64_t> connections_{0};
  std::map<int, std::string> clients_;  // server thread only
  mutable std::mutex mu_;
  std::string last_request_;
  std::thread thread_;
};

// A port nobody listens on: bound (so nobody else takes it) but not listening, connects to it
// are refused.
class RefusedPort {
 public:
  RefusedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(kLoopback);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }
  ~RefusedPort() { close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

CheckSpec fast_spec(CheckSpec::Type type) {
  CheckSpec s;
  s.type = type;
  s.interval_ms = 50;
  s.timeout_ms = 500;
  s.retries = 0;
  s.retry_delay_ms = 5;
  s.rise = 1;
  s.fall = 1;
  return s;
}

CheckTarget target(uint64_t key, uint16_t port, CheckSpec spec) {
  return {key, kLoopback, port, std::move(spec)};
}

std::optional<CheckStatus> status_of(const HealthChecker& hc, uint64_t key) {
  for (const CheckStatus& s : hc.status())
    if (s.key == key) return s;
  return std::nullopt;
}

uint64_t rounds_of(const HealthChecker& hc, uint64_t key) {
  auto s = status_of(hc, key);
  return s ? s->rounds : 0;
}

// Collects transitions into `seen` until one for `key` arrives.
std::optional<CheckTransition> wait_transition(HealthChecker& hc, uint64_t key,
                                               std::vector<CheckTransition>& seen, int ms = 3000) {
  std::optional<CheckTransition> found;
  wait_for(
      [&] {
        for (auto& t : hc.take_transitions()) {
          if (t.key == key && !found) found = t;
          seen.push_back(std::move(t));
        }
        return found.has_value();
      },
      ms);
  return found;
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

TEST(HealthCheck, TcpUpStaysUp) {
  Server srv(Server::Mode::kAccept);
  HealthChecker hc;
  hc.set_targets({target(1, srv.port(), fast_spec(CheckSpec::Type::kTcp))});
  auto st0 = status_of(hc, 1);
  ASSERT_TRUE(st0);
  EXPECT_TRUE(st0->up);  // new targets start up
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 1) >= 3; }));
  auto st = status_of(hc, 1);
  EXPECT_TRUE(st->up);
  EXPECT_EQ(st->failures, 0u);
  EXPECT_EQ(st->failed_rounds, 0u);
  EXPECT_EQ(st->transitions, 0u);
  EXPECT_GE(st->consecutive_ok, 3u);
  EXPECT_TRUE(st->checks == st->rounds || st->checks == st->rounds + 1);  // maybe mid-round
  EXPECT_EQ(st->last_error, "");
  EXPECT_TRUE(hc.take_transitions().empty());
  EXPECT_FALSE(readable(hc.notify_fd()));
  EXPECT_TRUE(wait_for([&] { return srv.connections() >= 3; }));  // the server accepts later
}

TEST(HealthCheck, RefusedGoesDownAfterFallRoundsWithRetries) {
  RefusedPort closed;
  HealthChecker hc;
  CheckSpec spec = fast_spec(CheckSpec::Type::kTcp);
  spec.fall = 2;
  spec.retries = 1;
  hc.set_targets({target(7, closed.port(), spec)});
  ASSERT_TRUE(wait_for([&] { return readable(hc.notify_fd()); }));
  auto at_transition = status_of(hc, 7);
  auto tr = hc.take_transitions();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].key, 7u);
  EXPECT_FALSE(tr[0].up);
  EXPECT_EQ(tr[0].reason, "connect: Connection refused");
  EXPECT_FALSE(readable(hc.notify_fd()));  // drained by take_transitions
  // Not before `fall` failed rounds, each of 1 + retries attempts.
  EXPECT_GE(at_transition->failed_rounds, 2u);
  auto st = status_of(hc, 7);
  EXPECT_FALSE(st->up);
  EXPECT_EQ(st->transitions, 1u);
  EXPECT_EQ(st->rounds, st->failed_rounds);
  EXPECT_TRUE(st->checks == 2 * st->failed_rounds || st->checks == 2 * st->failed_rounds + 1)
      << st->checks << " attempts in " << st->failed_rounds << " rounds";
  EXPECT_EQ(st->failures, st->checks);
  EXPECT_GE(st->consecutive_fail, 2u);
  EXPECT_EQ(st->last_error, "connect: Connection refused");
}

TEST(HealthCheck, HttpDownOnBadStatusAndBackUpAfterRise) {
  Server srv(Server::Mode::kHttp);
  HealthChecker hc;
  CheckSpec spec = fast_spec(CheckSpec::Type::kHttp);
  spec.path = "/health";
  spec.rise = 2;
  hc.set_targets({target(3, srv.port(), spec)});
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 3) >= 2; }));
  EXPECT_TRUE(status_of(hc, 3)->up);
  EXPECT_EQ(srv.last_request(),
            "GET /health HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) +
                "\r\nUser-Agent: tandem-check\r\nConnection: close\r\n\r\n");

  std::vector<CheckTransition> seen;
  srv.set_status(503);
  auto down = wait_transition(hc, 3, seen);
  ASSERT_TRUE(down);
  EXPECT_FALSE(down->up);
  EXPECT_EQ(down->reason, "HTTP status 503");

  srv.set_status(200);
  auto up = wait_transition(hc, 3, seen = {});
  ASSERT_TRUE(up);
  EXPECT_TRUE(up->up);
  EXPECT_EQ(up->reason, "HTTP status 200");
  auto st = status_of(hc, 3);
  EXPECT_TRUE(st->up);
  EXPECT_GE(st->consecutive_ok, 2u);  // rise
  EXPECT_EQ(st->transitions, 2u);
}

TEST(HealthCheck, HttpTimeoutWhenServerNeverAnswers) {
  Server srv(Server::Mode::kSilent);
  HealthChecker hc;
  CheckSpec spec = fast_spec(CheckSpec::Type::kHttp);
  spec.timeout_ms = 100;
  hc.set_targets({target(4, srv.port(), spec)});
  std::vector<CheckTransition> seen;
  auto down = wait_transition(hc, 4, seen);
  ASSERT_TRUE(down);
  EXPECT_FALSE(down->up);
  EXPECT_EQ(down->reason, "timeout after 100 ms");
  EXPECT_GE(srv.connections(), 1u);  // the connect worked, the answer never came
}

TEST(HealthCheck, HttpLatencyRecorded) {
  Server srv(Server::Mode::kHttp);
  srv.set_delay_ms(30);
  HealthChecker hc;
  CheckSpec spec = fast_spec(CheckSpec::Type::kHttp);
  spec.timeout_ms = 1000;
  hc.set_targets({target(5, srv.port(), spec)});
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 5) >= 1; }));
  auto st = status_of(hc, 5);
  EXPECT_TRUE(st->up);
  EXPECT_EQ(st->failures, 0u);
  EXPECT_GE(st->last_latency_us, 30'000u);
  EXPECT_LT(st->last_latency_us, 1'000'000u);
}

TEST(HealthCheck, RetryWithinRoundSavesTheRound) {
  Server srv(Server::Mode::kHttp);
  srv.set_alternate(true);  // every first attempt of a round gets 503, its retry 200
  HealthChecker hc;
  CheckSpec spec = fast_spec(CheckSpec::Type::kHttp);
  spec.retries = 1;
  hc.set_targets({target(6, srv.port(), spec)});
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 6) >= 3; }));
  auto st = status_of(hc, 6);
  EXPECT_TRUE(st->up);
  EXPECT_EQ(st->transitions, 0u);
  EXPECT_EQ(st->failed_rounds, 0u);
  EXPECT_GE(st->failures, 3u);
  EXPECT_TRUE(st->checks == 2 * st->rounds || st->checks == 2 * st->rounds + 1) << st->checks;
  EXPECT_EQ(st->last_error, "HTTP status 503");
  EXPECT_TRUE(hc.take_transitions().empty());
}

TEST(HealthCheck, SetTargetsKeepsUnchangedDropsRemovedRestartsChanged) {
  Server srv(Server::Mode::kAccept);
  RefusedPort closed;
  HealthChecker hc;
  CheckTarget a = target(10, closed.port(), fast_spec(CheckSpec::Type::kTcp));
  CheckTarget b = target(11, srv.port(), fast_spec(CheckSpec::Type::kTcp));
  hc.set_targets({a, b});
  std::vector<CheckTransition> seen;
  ASSERT_TRUE(wait_transition(hc, 10, seen));
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 11) >= 2; }));

  // Unchanged: state and counters survive.
  auto a_before = status_of(hc, 10);
  auto b_before = status_of(hc, 11);
  hc.set_targets({a, b});
  auto a_after = status_of(hc, 10);
  EXPECT_FALSE(a_after->up);
  EXPECT_GE(a_after->checks, a_before->checks);
  EXPECT_EQ(a_after->transitions, 1u);
  EXPECT_GE(status_of(hc, 11)->rounds, b_before->rounds);

  // Changed spec: counters and up/down kept, judged afresh.
  a.spec.interval_ms = 60;
  hc.set_targets({a, b});
  auto a_changed = status_of(hc, 10);
  EXPECT_FALSE(a_changed->up);
  EXPECT_GE(a_changed->rounds, a_before->rounds);
  EXPECT_EQ(a_changed->transitions, 1u);
  uint64_t rounds_at_change = a_changed->rounds;
  ASSERT_TRUE(wait_for([&] { return status_of(hc, 10)->rounds >= rounds_at_change + 2; }));
  EXPECT_FALSE(status_of(hc, 10)->up);
  EXPECT_TRUE(hc.take_transitions().empty());  // still down: nothing new to report

  // Removed: gone, with its pending transition. Make A come up (now a listener) but remove it
  // before the transition is taken.
  a.port = srv.port();
  hc.set_targets({a, b});
  ASSERT_TRUE(wait_for([&] { return status_of(hc, 10)->up; }));
  hc.set_targets({b});
  auto all = hc.status();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].key, 11u);
  EXPECT_TRUE(hc.take_transitions().empty());

  // Re-added: a new target, starting up with fresh counters (it had two transitions).
  hc.set_targets({a, b});
  auto fresh = status_of(hc, 10);
  EXPECT_TRUE(fresh->up);
  EXPECT_EQ(fresh->transitions, 0u);
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 10) >= 1; }));
  EXPECT_TRUE(status_of(hc, 10)->up);
  EXPECT_TRUE(hc.take_transitions().empty());
}

TEST(HealthCheck, NoneIsAlwaysUpAndDisablingACheckBringsItUp) {
  RefusedPort closed;
  HealthChecker hc;
  CheckTarget none = target(20, closed.port(), fast_spec(CheckSpec::Type::kNone));
  CheckTarget tcp = target(21, closed.port(), fast_spec(CheckSpec::Type::kTcp));
  hc.set_targets({none, tcp});
  std::vector<CheckTransition> seen;
  ASSERT_TRUE(wait_transition(hc, 21, seen));
  ASSERT_TRUE(wait_for([&] { return rounds_of(hc, 21) >= 3; }));
  auto n = status_of(hc, 20);
  EXPECT_TRUE(n->up);
  EXPECT_EQ(n->checks, 0u);
  for (const auto& t : seen) EXPECT_NE(t.key, 20u);

  tcp.spec.type = CheckSpec::Type::kNone;
  hc.set_targets({none, tcp});
  auto tr = hc.take_transitions();
  ASSERT_EQ(tr.size(), 1u);
  EXPECT_EQ(tr[0].key, 21u);
  EXPECT_TRUE(tr[0].up);
  EXPECT_EQ(tr[0].reason, "check disabled");
  EXPECT_TRUE(status_of(hc, 21)->up);
}

TEST(HealthCheck, NoPortToCheckFails) {
  HealthChecker hc;
  hc.set_targets({target(30, 0, fast_spec(CheckSpec::Type::kTcp))});
  std::vector<CheckTransition> seen;
  auto down = wait_transition(hc, 30, seen);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->reason, "no port to check");
}

TEST(HealthCheck, ThousandTargetsAndStopDoesNotHang) {
  Server srv(Server::Mode::kAccept);
  Server silent(Server::Mode::kSilent);
  auto hc = std::make_unique<HealthChecker>();
  std::vector<CheckTarget> targets;
  CheckSpec spec = fast_spec(CheckSpec::Type::kTcp);
  spec.interval_ms = 100;
  spec.timeout_ms = 2000;
  for (uint64_t k = 1; k <= 1000; ++k) targets.push_back(target(k, srv.port(), spec));
  spec.type = CheckSpec::Type::kHttp;
  spec.timeout_ms = 5000;  // still pending when the checker stops
  for (uint64_t k = 2001; k <= 2200; ++k) targets.push_back(target(k, silent.port(), spec));
  hc->set_targets(targets);
  ASSERT_TRUE(wait_for([&] {
    for (const auto& s : hc->status())
      if (s.key <= 1000 && s.rounds < 2) return false;
    return true;
  }));
  for (const auto& s : hc->status()) {
    EXPECT_TRUE(s.up) << s.key;
    if (s.key <= 1000) {
      EXPECT_EQ(s.failures, 0u) << s.key << ": " << s.last_error;
    }
  }
  ASSERT_TRUE(wait_for([&] { return silent.connections() >= 200; }));
  auto t0 = Clock::now();
  hc.reset();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(500));
}

// --- KernelTap, in a forked child inside its own network namespace ---

constexpr uint32_t kTapIp = 0xc6336402;    // 198.51.100.2
constexpr uint32_t kPeerIp = 0xc633640a;   // 198.51.100.10
constexpr uint32_t kOtherIp = 0xc633640b;  // 198.51.100.11
constexpr uint32_t kTapIp2 = 0xcb007107;   // 203.0.113.7
constexpr std::array<uint8_t, 6> kTapMac{0x02, 0, 0, 0, 0, 0x01};
constexpr std::array<uint8_t, 6> kPeerMac{0x02, 0, 0, 0, 0, 0x99};

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(get16(p)) << 16 | get16(p + 2);
}

std::vector<uint8_t> arp_request(const std::array<uint8_t, 6>& sha, uint32_t spa, uint32_t tpa) {
  std::vector<uint8_t> f(42, 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(f.data() + 6, sha.data(), 6);
  put16(f.data() + 12, 0x0806);
  uint8_t* a = f.data() + 14;
  put16(a, 1);
  put16(a + 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, 1);
  std::memcpy(a + 8, sha.data(), 6);
  put32(a + 14, spa);
  put32(a + 24, tpa);
  return f;
}

struct Arp {
  uint16_t op;
  std::array<uint8_t, 6> eth_dst, sha, tha;
  uint32_t spa, tpa;
};

// Reads frames from the TAP until an ARP frame satisfying `want` arrives (1 s).
std::optional<Arp> read_arp(ctl::KernelTap& tap, const std::function<bool(const Arp&)>& want) {
  auto end = Clock::now() + std::chrono::seconds(1);
  uint8_t buf[2048];
  while (Clock::now() < end) {
    pollfd p{tap.fd(), POLLIN, 0};
    poll(&p, 1, 20);
    ssize_t n = tap.read_frame(buf, sizeof(buf));
    if (n < 42 || get16(buf + 12) != 0x0806) continue;
    Arp a{};
    const uint8_t* h = buf + 14;
    a.op = get16(h + 6);
    std::memcpy(a.eth_dst.data(), buf, 6);
    std::memcpy(a.sha.data(), h + 8, 6);
    a.spa = get32(h + 14);
    std::memcpy(a.tha.data(), h + 18, 6);
    a.tpa = get32(h + 24);
    if (want(a)) return a;
  }
  return std::nullopt;
}

// Runs in the child: "" on success, "SKIP: why" when the environment cannot, else the failure.
std::string tap_scenario() {
  if (unshare(CLONE_NEWNET) != 0)
    return std::string("SKIP: unshare(CLONE_NEWNET): ") + strerror(errno);
  if (access("/dev/net/tun", R_OK | W_OK) != 0) return "SKIP: no /dev/net/tun";

  ctl::KernelTap tap;
  std::string err = tap.open("tdmtap0-name-too-long", kTapMac, {}, 1500);
  if (err.find("interface name") == std::string::npos) return "long name accepted: " + err;

  err = tap.open("tdmtap0", kTapMac, {{kTapIp, 24}, {kTapIp2, 24}}, 1400);
  if (!err.empty()) return "open: " + err;
  if (tap.fd() < 0 || tap.name() != "tdmtap0") return "no fd or name after open";

  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "tdmtap0");
  if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0 ||
      std::memcmp(ifr.ifr_hwaddr.sa_data, kTapMac.data(), 6) != 0)
    return "MAC not set";
  if (ioctl(s, SIOCGIFMTU, &ifr) != 0 || ifr.ifr_mtu != 1400) return "MTU not set";
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0 || (ifr.ifr_flags & IFF_UP) == 0) return "not up";
  if (ioctl(s, SIOCGIFADDR, &ifr) != 0 ||
      ntohl(reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr) != kTapIp)
    return "primary address not set";
  if (ioctl(s, SIOCGIFNETMASK, &ifr) != 0 ||
      ntohl(reinterpret_cast<sockaddr_in*>(&ifr.ifr_netmask)->sin_addr.s_addr) != 0xffffff00u)
    return "netmask not set";
  close(s);
  int found = 0;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return "getifaddrs failed";
  for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (std::strcmp(i->ifa_name, "tdmtap0") != 0) continue;
    uint32_t a = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if (a == kTapIp || a == kTapIp2) ++found;
  }
  freeifaddrs(ifa);
  if (found != 2) return "expected both addresses on tdmtap0, found " + std::to_string(found);
  std::ifstream v6("/proc/sys/net/ipv6/conf/tdmtap0/disable_ipv6");
  std::string v;
  if (v6 && (!(v6 >> v) || v != "1")) return "IPv6 not disabled: " + v;

  // The kernel answers an ARP request written into the TAP.
  std::vector<uint8_t> req = arp_request(kPeerMac, kPeerIp, kTapIp);
  if (!tap.write_frame(req.data(), req.size())) return "write_frame refused";
  if (tap.tx_frames() != 1 || tap.tx_errors() != 0) return "tx counters wrong";
  auto reply = read_arp(tap, [](const Arp& a) { return a.op == 2; });
  if (!reply) return "no ARP reply from the kernel";
  if (reply->sha != kTapMac || reply->spa != kTapIp || reply->tha != kPeerMac ||
      reply->tpa != kPeerIp || reply->eth_dst != kPeerMac)
    return "ARP reply fields wrong";
  if (tap.rx_frames() < 1) return "rx counter not counted";

  // A kernel socket connecting to an unknown neighbour makes the kernel ARP through the TAP.
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(80);
  sa.sin_addr.s_addr = htonl(kOtherIp);
  if (connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 || errno != EINPROGRESS)
    return std::string("connect: ") + strerror(errno);
  auto who_has = read_arp(tap, [](const Arp& a) { return a.op == 1 && a.tpa == kOtherIp; });
  close(c);
  if (!who_has) return "no ARP request for 198.51.100.11";
  if (who_has->sha != kTapMac || who_has->spa != kTapIp) return "ARP request fields wrong";

  // Nothing pending: read_frame says 0 without blocking.
  uint8_t buf[2048];
  while (tap.read_frame(buf, sizeof(buf)) > 0) {
  }
  if (tap.read_frame(buf, sizeof(buf)) != 0) return "read_frame did not return 0 when idle";

  tap.close();
  if (tap.fd() != -1) return "fd still open after close";
  if (if_nametoindex("tdmtap0") != 0) return "interface still present after close";
  if (tap.write_frame(req.data(), req.size()) || tap.tx_errors() != 1) return "write after close";
  return "";
}

TEST(KernelTap, AddressesArpAndKernelSocketsInPrivateNamespace) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    std::string r = tap_scenario();
    ssize_t w = write(p[1], r.data(), r.size());
    _exit(w == static_cast<ssize_t>(r.size()) ? 0 : 1);
  }
  close(p[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0;)
    result.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  if (result.rfind("SKIP: ", 0) == 0) GTEST_SKIP() << result;
  EXPECT_EQ(result, "");
}

}  // namespace
