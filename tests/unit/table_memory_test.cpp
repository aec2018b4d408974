// dp::map_table / TableVector: the memory of the big per-worker tables (lease store, connection
// table). Sizes round to whole pages (huge pages from 2 MiB), memory starts zeroed, and a
// TableVector behaves as a std::vector whatever its size.

#include "dataplane/table_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <numeric>

namespace dp {
namespace {

TEST(TableMemory, SizesRoundToWholePages) {
  EXPECT_EQ(table_bytes(1), 4096u);
  EXPECT_EQ(table_bytes(4096), 4096u);
  EXPECT_EQ(table_bytes(4097), 8192u);
  EXPECT_EQ(table_bytes(kHugePageBytes - 1), kHugePageBytes);  // 4 KiB pages, 512 of them
  EXPECT_EQ(table_bytes(kHugePageBytes), kHugePageBytes);
  EXPECT_EQ(table_bytes(kHugePageBytes + 1), 2 * kHugePageBytes);
}

TEST(TableMemory, MappedMemoryIsZeroedWritableAndAligned) {
  for (size_t bytes : {size_t{1}, size_t{5000}, 3 * kHugePageBytes + 17}) {
    SCOPED_TRACE(bytes);
    auto* p = static_cast<uint8_t*>(map_table(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
    for (size_t i = 0; i < bytes; i += 997) EXPECT_EQ(p[i], 0) << i;
    std::memset(p, 0xa5, bytes);
    EXPECT_EQ(p[bytes - 1], 0xa5);
    unmap_table(p, bytes);
  }
  unmap_table(nullptr, 123);  // nothing to do
}

TEST(TableMemory, TableVectorBehavesAsAVector) {
  TableVector<uint64_t> big(3 * kHugePageBytes / sizeof(uint64_t) + 3);
  for (uint64_t v : big) ASSERT_EQ(v, 0u);
  std::iota(big.begin(), big.end(), uint64_t{1});
  TableVector<uint64_t> copy = big;
  EXPECT_EQ(copy, big);
  EXPECT_EQ(copy.back(), big.size());

  TableVector<uint32_t> grown;  // reallocations map and unmap on the way
  for (uint32_t i = 0; i < 100000; ++i) grown.push_back(i * 7);
  EXPECT_EQ(grown[99999], 99999u * 7);
  grown.assign(16, 5);
  EXPECT_EQ(grown.size(), 16u);
  EXPECT_EQ(grown[15], 5u);
}

}  // namespace
}  // namespace dp
