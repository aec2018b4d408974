#include "dhcp/rate_limit.h"

#include <cstdint>

namespace dhcp {

RequestLimiter::RequestLimiter(size_t slots) {
  size_t n = 2;
  while (n < slots) n <<= 1;
  slots_.resize(n);
  mask_ = n - 1;
}

bool RequestLimiter::allow(uint64_t key, uint32_t limit, uint64_t window_ns,
                           uint64_t now) noexcept {
  if (limit == 0) return true;
  if (key == 0) key = 1;
  const size_t a = static_cast<size_t>(key ^ (key >> 29)) & mask_, b = a ^ 1;
  const auto stale = [&](const Slot& s) { return s.key == 0 || now - s.window_start >= window_ns; };
  Slot* s = slots_[a].key == key ? &slots_[a] : slots_[b].key == key ? &slots_[b] : nullptr;
  if (s == nullptr) {
    s = stale(slots_[a]) ? &slots_[a] : stale(slots_[b]) ? &slots_[b] : nullptr;
    if (s == nullptr) {
      untracked_.add();
      return true;
    }
    *s = Slot{key, now, 0};
  } else if (now - s->window_start >= window_ns) {
    s->window_start = now;
    s->count = 0;
  }
  if (s->count >= limit) return false;
  ++s->count;
  return true;
}

CircuitCounts::CircuitCounts(size_t slots) {
  size_t n = 2;
  while (n < slots) n <<= 1;
  slots_.resize(n);
  mask_ = n - 1;
}

uint32_t CircuitCounts::count(uint64_t key) const noexcept {
  if (key == 0) key = 1;
  for (size_t i = key & mask_, probes = 0; probes <= mask_; i = (i + 1) & mask_, ++probes) {
    if (slots_[i].key == key) return slots_[i].count;
    if (slots_[i].key == 0) return 0;
  }
  return 0;
}

uint32_t CircuitCounts::add(uint64_t key) noexcept {
  if (key == 0) key = 1;
  size_t reuse = SIZE_MAX;
  // The whole chain is walked (up to a never-used slot) before a zero-count slot is reused, so a
  // key is never in the table twice.
  for (size_t i = key & mask_, probes = 0; probes <= mask_; i = (i + 1) & mask_, ++probes) {
    Slot& s = slots_[i];
    if (s.key == key) {
      ++s.count;
      return static_cast<uint32_t>(i + 1);
    }
    if (s.key == 0) {
      if (reuse == SIZE_MAX) reuse = i;
      break;
    }
    if (s.count == 0 && reuse == SIZE_MAX) reuse = i;
  }
  if (reuse == SIZE_MAX) return 0;
  slots_[reuse] = Slot{key, 1};
  return static_cast<uint32_t>(reuse + 1);
}

void CircuitCounts::remove(uint32_t mark) noexcept {
  if (mark == 0 || mark > slots_.size()) return;
  Slot& s = slots_[mark - 1];
  if (s.count != 0) --s.count;
}

}  // namespace dhcp
