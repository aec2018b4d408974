#pragma once
// Clocks of the control threads, in nanoseconds. Not for workers (they read the TSC).

#include <ctime>
#include <cstdint>

namespace ctl {

inline uint64_t clock_ns(clockid_t id) noexcept {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
// Timers, intervals, deadlines.
inline uint64_t mono_ns() noexcept {
  return clock_ns(CLOCK_MONOTONIC);
}
// Lease times and anything shown as a date.
inline uint64_t wall_ns() noexcept {
  return clock_ns(CLOCK_REALTIME);
}

}  // namespace ctl
