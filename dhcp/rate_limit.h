#pragma once
// Request limits against starvation and floods (dhcp.limits): each worker counts DISCOVERs and
// REQUESTs per client MAC and per relay circuit (option-82 circuit-id with its giaddr) in fixed
// windows, in a table sized once at start. A key that finds no free slot (the table is full of
// keys active in their window, e.g. under a spoofed-MAC flood) is let through and counted as
// untracked: a flood can make the limiter forget, never make it block the innocent or grow.
// Pure; no allocation, locks or exceptions after construction.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/counter.h"

namespace dhcp {

class RequestLimiter {
 public:
  explicit RequestLimiter(size_t slots = size_t{1} << 16);  // rounded up to a power of two

  // Worker, per request. Counts one request for `key` (a stable 64-bit hash; 0 is remapped) in
  // the window of length `window_ns` holding `now`; false when that makes more than `limit`
  // requests in the window (the request must be refused). O(1): two slots probed.
  bool allow(uint64_t key, uint32_t limit, uint64_t window_ns, uint64_t now) noexcept;

  uint64_t untracked() const noexcept { return untracked_.get(); }  // any thread

 private:
  struct Slot {
    uint64_t key = 0;  // 0: empty
    uint64_t window_start = 0;
    uint32_t count = 0;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  dp::Counter untracked_;
};

// Addresses held (offered or bound) per relay circuit, for dhcp.limits.leases_per_circuit. Keys
// are 64-bit circuit hashes; a key's slot index is stable while its count is above zero (slots
// are reused only at zero, never moved), so callers mark each counted address with slot + 1.
class CircuitCounts {
 public:
  explicit CircuitCounts(size_t slots = size_t{1} << 16);  // rounded up to a power of two
  uint32_t count(uint64_t key) const noexcept;
  // Adds one address for `key`; returns its slot + 1, or 0 when the table is full (not counted).
  uint32_t add(uint64_t key) noexcept;
  // Removes one address counted in slot `mark - 1` (the value add() returned).
  void remove(uint32_t mark) noexcept;

 private:
  struct Slot {
    uint64_t key = 0;  // 0: never used
    uint32_t count = 0;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace dhcp
