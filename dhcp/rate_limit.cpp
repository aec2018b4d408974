#include "dhcp/rate_limit.h"

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

}  // namespace dhcp
