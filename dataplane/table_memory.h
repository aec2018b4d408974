#pragma once
// Memory for the large per-worker tables (connection table, lease store): anonymous mappings
// with transparent huge pages requested once they reach 2 MiB. With 4 KiB pages every random
// access to a table of tens or hundreds of megabytes also misses the TLB; with 2 MiB pages the
// page walk mostly disappears. Advisory: where THP is off, the pages stay 4 KiB. Header-only and
// pure (no DPDK): the tables are allocated by the control thread before workers start.

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <vector>

namespace dp {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// The mapping's length for `bytes`: whole huge pages for a table of one or more, else whole
// 4 KiB pages.
inline size_t table_bytes(size_t bytes) noexcept {
  const size_t unit = bytes >= kHugePageBytes ? kHugePageBytes : size_t{4096};
  return (bytes + unit - 1) / unit * unit;
}

// Zero-filled memory for a table of `bytes` bytes; throws std::bad_alloc. Release it with
// unmap_table(p, bytes).
inline void* map_table(size_t bytes) {
  const size_t len = table_bytes(bytes == 0 ? 1 : bytes);
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (len >= kHugePageBytes) ::madvise(p, len, MADV_HUGEPAGE);
#endif
  return p;
}

inline void unmap_table(void* p, size_t bytes) noexcept {
  if (p != nullptr) ::munmap(p, table_bytes(bytes == 0 ? 1 : bytes));
}

// A std::vector allocator over map_table, for tables sized once (reserve or assign) at start.
template <class T>
struct TableAllocator {
  using value_type = T;
  TableAllocator() noexcept = default;
  template <class U>
  TableAllocator(const TableAllocator<U>&) noexcept {}  // NOLINT: rebinding converts implicitly
  T* allocate(size_t n) { return static_cast<T*>(map_table(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { unmap_table(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const TableAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using TableVector = std::vector<T, TableAllocator<T>>;

}  // namespace dp
