#include "lb/scheduler.h"

#include <algorithm>
#include <cassert>
#include <numeric>

namespace lb {

namespace {

// sh and mh place dests in (ip, port) order so that two nodes listing the same servers in a
// different order (a config file vs ipvsadm commands) still map every client the same way.
std::vector<uint32_t> usable_in_address_order(const Service& s) {
  std::vector<uint32_t> order;
  const size_t limit = std::min<size_t>(s.dests.size(), kNoDest);
  for (size_t i = 0; i < limit; ++i) {
    if (usable(s.dests[i])) order.push_back(static_cast<uint32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const Dest& x = s.dests[a];
    const Dest& y = s.dests[b];
    if (x.ip != y.ip) return x.ip < y.ip;
    if (x.port != y.port) return x.port < y.port;
    return a < b;
  });
  return order;
}

// IPVS sh gives each dest `weight` consecutive buckets in turn, which is proportional only while
// the weights add up to at most 256 (beyond, the last dests get nothing). We split the 256
// buckets in proportion to the weights (largest remainder), with at least one bucket per dest;
// for small weights the counts are the same as IPVS's. With more than 256 usable dests, only
// the first 256 in address order get a bucket (IPVS has the same limit).
void build_sh(Service& s) {
  s.lookup.assign(kShBuckets, kNoDest);
  std::vector<uint32_t> order = usable_in_address_order(s);
  if (order.empty()) return;
  if (order.size() > kShBuckets) order.resize(kShBuckets);
  const size_t n = order.size();

  uint64_t total = 0;
  for (uint32_t i : order) total += s.dests[i].weight;
  std::vector<uint32_t> quota(n);
  std::vector<uint64_t> remainder(n);
  uint32_t given = 0;
  for (size_t k = 0; k < n; ++k) {
    const uint64_t share = uint64_t{kShBuckets} * s.dests[order[k]].weight;
    quota[k] = static_cast<uint32_t>(share / total);
    remainder[k] = share % total;
    given += quota[k];
  }
  std::vector<uint32_t> by_remainder(n);
  std::iota(by_remainder.begin(), by_remainder.end(), 0u);
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](uint32_t a, uint32_t b) { return remainder[a] > remainder[b]; });
  for (size_t k = 0; given < kShBuckets; ++k, ++given) ++quota[by_remainder[k]];
  // Everyone usable gets a bucket: take it from the dest with the most (n <= 256 leaves one > 1).
  for (size_t k = 0; k < n; ++k) {
    if (quota[k] != 0) continue;
    auto richest = std::max_element(quota.begin(), quota.end());
    --*richest;
    quota[k] = 1;
  }

  uint32_t b = 0;
  for (size_t k = 0; k < n; ++k) {
    for (uint32_t q = 0; q < quota[k]; ++q) s.lookup[b++] = static_cast<uint16_t>(order[k]);
  }
}

void build_mh(Service& s, uint32_t maglev_size) {
  std::vector<MaglevBackend> backends(s.dests.size());
  for (size_t i = 0; i < s.dests.size(); ++i) {
    const Dest& d = s.dests[i];
    backends[i] = {d.ip, d.port, usable(d) ? d.weight : 0};
  }
  maglev_build(backends, maglev_size, s.lookup);
}

int pick_rr(const Service& s, SchedState& st) noexcept {
  if (s.id >= st.rr_cursor.size()) return -1;
  const uint32_t n = static_cast<uint32_t>(s.dests.size());
  uint32_t& cursor = st.rr_cursor[s.id];
  const uint32_t start = cursor < n ? cursor : 0;
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t i = start + k;
    if (i >= n) i -= n;
    if (usable(s.dests[i])) {
      cursor = i + 1;
      return static_cast<int>(i);
    }
  }
  return -1;
}

// IPVS ip_vs_wrr_schedule: walk the list; a dest qualifies when its weight >= cw; each time the
// walk wraps, cw drops by gcd, and from mw again once it reaches 0. Weights 3 and 1 give
// A A A B; 4, 2, 2 give A, A B C. The bound only matters for a Service whose wrr fields do not
// match its dests (build_tables() not called): with them, a pick ends within two passes, as the
// heaviest dest qualifies at every cw.
int pick_wrr(const Service& s, SchedState& st) noexcept {
  if (s.id >= st.rr_cursor.size() || s.id >= st.wrr_current.size()) return -1;
  if (s.wrr_max == 0 || s.wrr_gcd == 0) return -1;
  const uint32_t n = static_cast<uint32_t>(s.dests.size());
  const int64_t mw = s.wrr_max;
  const int64_t di = s.wrr_gcd;
  uint32_t& pos = st.rr_cursor[s.id];
  int64_t& cw = st.wrr_current[s.id];
  if (cw <= 0 || cw > mw) {  // first pick on this worker, or the weights changed
    cw = mw;
    pos = 0;
  }
  if (pos > n) pos = 0;
  const uint64_t steps = uint64_t{n} * (static_cast<uint64_t>(mw / di) + 2);
  for (uint64_t k = 0; k < steps; ++k) {
    if (pos >= n) {
      pos = 0;
      cw -= di;
      if (cw <= 0) cw = mw;
    }
    const Dest& d = s.dests[pos++];
    if (usable(d) && d.weight >= cw) return static_cast<int>(pos - 1);
  }
  return -1;
}

// IPVS ip_vs_dest_conn_overhead: an active connection weighs 256 inactive ones. < 2^41.
uint64_t overhead(const SchedState& st, uint32_t id) noexcept {
  return (uint64_t{st.active[id]} << 8) + st.inactive[id];
}

bool has_counts(const SchedState& st, const Dest& d) noexcept {
  assert(d.id < st.active.size() && d.id < st.inactive.size());
  return d.id < st.active.size() && d.id < st.inactive.size();
}

// IPVS ip_vs_lc_schedule: the fewest overhead; ties go to the first in list order.
int pick_lc(const Service& s, const SchedState& st) noexcept {
  int best = -1;
  uint64_t best_oh = 0;
  for (size_t i = 0; i < s.dests.size(); ++i) {
    const Dest& d = s.dests[i];
    if (!usable(d) || !has_counts(st, d)) continue;
    const uint64_t oh = overhead(st, d.id);
    if (best < 0 || oh < best_oh) {
      best = static_cast<int>(i);
      best_oh = oh;
    }
  }
  return best;
}

// IPVS ip_vs_wlc_schedule: the lowest overhead / weight, compared as
// overhead_a * weight_b < overhead_b * weight_a (< 2^41 * 2^16: no overflow); ties go to the
// first in list order.
int pick_wlc(const Service& s, const SchedState& st) noexcept {
  int best = -1;
  uint64_t best_oh = 0;
  uint64_t best_w = 1;
  for (size_t i = 0; i < s.dests.size(); ++i) {
    const Dest& d = s.dests[i];
    if (!usable(d) || !has_counts(st, d)) continue;
    const uint64_t oh = overhead(st, d.id);
    const uint64_t w = std::min(d.weight, kMaxWeight);
    if (best < 0 || best_oh * w > oh * best_w) {
      best = static_cast<int>(i);
      best_oh = oh;
      best_w = w;
    }
  }
  return best;
}

// The dest a lookup entry names, or -1 when it is kNoDest, out of range or not usable.
int entry_dest(const Service& s, uint16_t entry) noexcept {
  if (entry >= s.dests.size() || !usable(s.dests[entry])) return -1;
  return entry;
}

int pick_sh(const Service& s, uint32_t client_ip) noexcept {
  if (s.lookup.size() != kShBuckets) return -1;
  const uint32_t first = sh_bucket(client_ip);
  if (s.lookup[first] == kNoDest) return -1;  // built from no usable dest
  // A stale table (health changed, build_tables() not yet run): the next usable bucket.
  for (uint32_t k = 0; k < kShBuckets; ++k) {
    const int d = entry_dest(s, s.lookup[(first + k) % kShBuckets]);
    if (d >= 0) return d;
  }
  return -1;
}

// Fallback probes past stale Maglev slots before giving up (each lands on a usable dest with
// the usable fraction of slots as probability).
constexpr uint32_t kMaglevProbes = 32;

int pick_mh(const Service& s, uint32_t client_ip) noexcept {
  const uint32_t m = static_cast<uint32_t>(s.lookup.size());
  if (m == 0) return -1;
  const uint16_t first = s.lookup[maglev_slot(client_ip, m)];
  if (first == kNoDest) return -1;  // built from no usable dest
  int d = entry_dest(s, first);
  for (uint32_t attempt = 1; d < 0 && attempt <= kMaglevProbes; ++attempt) {
    d = entry_dest(s, s.lookup[maglev_slot(client_ip, m, attempt)]);
  }
  return d;
}

}  // namespace

SchedState::SchedState()
    : rr_cursor(kMaxServices, 0),
      wrr_current(kMaxServices, 0),
      active(kMaxDests, 0),
      inactive(kMaxDests, 0) {}

void build_tables(Service& s, uint32_t maglev_size) {
  uint32_t gcd = 0;
  uint32_t max = 0;
  for (const Dest& d : s.dests) {
    if (!usable(d)) continue;
    gcd = std::gcd(gcd, d.weight);
    max = std::max(max, d.weight);
  }
  s.wrr_gcd = gcd;
  s.wrr_max = max == 0 ? 0 : max - (gcd - 1);

  switch (s.sched) {
    case Sched::kSh:
      build_sh(s);
      break;
    case Sched::kMh:
      build_mh(s, maglev_size);
      break;
    default:
      s.lookup.clear();
      s.lookup.shrink_to_fit();
      break;
  }
}

int pick(const Service& s, SchedState& st, uint32_t client_ip,
         [[maybe_unused]] uint16_t client_port) noexcept {
  switch (s.sched) {
    case Sched::kRr:
      return pick_rr(s, st);
    case Sched::kWrr:
      return pick_wrr(s, st);
    case Sched::kLc:
      return pick_lc(s, st);
    case Sched::kWlc:
      return pick_wlc(s, st);
    case Sched::kSh:
      return pick_sh(s, client_ip);
    case Sched::kMh:
      return pick_mh(s, client_ip);
  }
  return -1;
}

}  // namespace lb
