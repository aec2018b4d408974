#pragma once
// keepalived-style health checks of real servers (TCP_CHECK, HTTP_GET), run on their own thread
// with non-blocking sockets, one epoll and a timer heap, so thousands of targets never block the
// control thread. The checks use ordinary kernel sockets: in production they leave through the
// port's kernel TAP (control/kernel_tap.h).
//
// A target is checked in rounds, one every interval_ms (measured from the start of the previous
// round). A round is up to 1 + retries attempts, retry_delay_ms apart; it succeeds as soon as one
// attempt does. An attempt is a non-blocking TCP connect and, for HTTP, a
// "GET path HTTP/1.0" request and the response's status line, all within timeout_ms. fall
// consecutive failed rounds take an UP target down; rise consecutive successful rounds take a
// DOWN target up. Targets start UP (keepalived's default).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ctl {

struct CheckSpec {                                                     // one check configuration
  enum class Type : uint8_t { kNone, kTcp, kHttp } type = Type::kTcp;  // kNone: always up
  uint16_t port = 0;                                                   // 0: the real server's port
  std::string path = "/";                                              // HTTP GET path
  uint32_t status = 200;                                               // expected HTTP status
  std::string host;             // Host header; "" = the real server's address (":port" unless 80)
  uint32_t interval_ms = 2000;  // between round starts
  uint32_t timeout_ms = 1000;   // per attempt: connect (+ request + status line for HTTP)
  uint32_t retries = 1;         // extra attempts after a failure within one round
  uint32_t retry_delay_ms = 200;
  uint32_t rise = 1;  // consecutive successful rounds to go up (0 behaves as 1)
  uint32_t fall = 1;  // consecutive failed rounds to go down (0 behaves as 1)
  bool operator==(const CheckSpec&) const = default;
};

// key: the lead's stable id for (service, real server). Addresses and ports in host order.
struct CheckTarget {
  uint64_t key = 0;
  uint32_t ip = 0;
  uint16_t port = 0;
  CheckSpec spec;
};

struct CheckStatus {
  uint64_t key = 0;
  bool up = true;
  uint64_t checks = 0;       // attempts (retries included)
  uint64_t failures = 0;     // failed attempts
  uint64_t transitions = 0;  // up↔down changes
  uint32_t last_latency_us =
      0;                        // of the last successful attempt: connect, or until the status line
  std::string last_error;       // of the last failed attempt ("" if none yet)
  uint32_t consecutive_ok = 0;  // rounds
  uint32_t consecutive_fail = 0;
  uint64_t rounds = 0;         // completed rounds
  uint64_t failed_rounds = 0;  // completed rounds whose every attempt failed
};

struct CheckTransition {
  uint64_t key = 0;
  bool up = false;
  std::string reason;  // "connect: Connection refused", "HTTP status 503", "timeout after 1000 ms"
};

class HealthChecker {
 public:
  // Starts the checker thread ("tandem-hcheck"). Throws std::system_error if the epoll or
  // eventfds cannot be created.
  HealthChecker();
  // Wakes and joins the thread (bounded: it never blocks outside epoll_wait), closes the sockets.
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Control thread; O(targets) under the lock, closes the sockets of removed targets. Replaces
  // the target set:
  // - same key, address, port and spec: state, counters and schedule kept;
  // - same key, changed address, port or spec: counters and up/down state kept (the caller's
  //   view stays valid), rise/fall progress reset, checked again at once;
  // - new key: starts UP, first round within a short deterministic jitter derived from the key
  //   (≤ interval/4, ≤ 250 ms) so a thousand new targets do not all connect at the same time;
  // - missing key: dropped, with its pending transitions.
  // A kNone target is always up (a target switched to kNone while down reports a transition).
  void set_targets(std::vector<CheckTarget> targets);

  // Control thread; cheap. The up↔down transitions since the last call, oldest first. At most
  // one per key: a key that flapped reports its latest state and reason.
  std::vector<CheckTransition> take_transitions();

  // Control thread (API, metrics); copies O(targets) under the lock. Sorted by key.
  std::vector<CheckStatus> status() const;

  // An eventfd (non-blocking) that becomes readable when transitions are pending;
  // take_transitions() drains it.
  int notify_fd() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctl
