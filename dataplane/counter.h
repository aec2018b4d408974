#pragma once
// A single-writer counter: its owner (one worker, or the control thread) adds, any thread reads
// at scrape time with a relaxed load. Header-only, so pure libraries (dhcp/) use it without
// linking the data plane. Increments are plain load+store on x86 (no lock prefix): single
// writer, so nothing is lost.

#include <atomic>
#include <cstdint>

namespace dp {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace dp
