#pragma once
// Control-thread logging to stderr (journald or the lab's log file captures it). Never called
// from workers: they count, they do not log.

#include <cstdio>
#include <ctime>
#include <string_view>

namespace ctl {

enum class Level { kError, kWarning, kInfo };

inline void log(Level lvl, std::string_view msg) {
  static constexpr const char* kNames[] = {"error", "warning", "info"};
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &t);
  std::fprintf(stderr, "%s.%03ldZ tandemd %s: %.*s\n", when, ts.tv_nsec / 1000000,
               kNames[static_cast<int>(lvl)], static_cast<int>(msg.size()), msg.data());
  std::fflush(stderr);
}
inline void log_error(std::string_view m) {
  log(Level::kError, m);
}
inline void log_warning(std::string_view m) {
  log(Level::kWarning, m);
}
inline void log_info(std::string_view m) {
  log(Level::kInfo, m);
}

}  // namespace ctl
