#pragma once
// Small helpers shared by the benchmarks under perf/ (not part of tandemd).

#include <sys/vfs.h>

#include <string>

namespace bench {

// The file system a directory lives on, for the JSON a benchmark prints (fsync costs depend on it).
inline const char* fs_name(const std::string& dir) {
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    default:
      return "other";
  }
}

}  // namespace bench
