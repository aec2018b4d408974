#include "dataplane/neighbor.h"

#include <algorithm>
#include <functional>

namespace dp {

namespace {
constexpr auto kHeapCmp = std::greater<std::pair<uint64_t, uint64_t>>{};  // min-heap
}  // namespace

const char* to_string(NeighState s) noexcept {
  switch (s) {
    case NeighState::kIncomplete:
      return "incomplete";
    case NeighState::kReachable:
      return "reachable";
    case NeighState::kProbe:
      return "probe";
    case NeighState::kStatic:
      return "static";
  }
  return "unknown";
}

NeighborTable::NeighborTable(Params p) : params_(p) {}

bool NeighborTable::live(uint64_t deadline, uint64_t k) const {
  auto it = entries_.find(k);
  return it != entries_.end() && it->second.state != NeighState::kStatic &&
         it->second.next_ns == deadline;
}

void NeighborTable::tidy() {
  // Confirmations that land on an unchanged deadline, and removals, leave pairs below the top
  // that popping never reaches; rebuild before they outnumber the entries.
  if (heap_.size() > 4 * entries_.size() + 64) {
    rebuild_heap();
    return;
  }
  // Stale pairs at the top are dropped at once, so next_deadline() can simply read the top.
  while (!heap_.empty() && !live(heap_.front().first, heap_.front().second)) {
    std::pop_heap(heap_.begin(), heap_.end(), kHeapCmp);
    heap_.pop_back();
  }
}

void NeighborTable::rebuild_heap() {
  heap_.clear();
  for (const auto& [k, e] : entries_) {
    if (e.state != NeighState::kStatic) heap_.emplace_back(e.next_ns, k);
  }
  std::make_heap(heap_.begin(), heap_.end(), kHeapCmp);
}

void NeighborTable::schedule(NeighEntry& e, uint64_t at) {
  e.next_ns = at;
  heap_.emplace_back(at, key(e.port, e.ip));
  std::push_heap(heap_.begin(), heap_.end(), kHeapCmp);
}

bool NeighborTable::add_static(uint16_t port, uint32_t ip, const Mac& mac) {
  const uint64_t k = key(port, ip);
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    if (entries_.size() >= params_.max_entries) return false;
    it = entries_.emplace(k, NeighEntry{}).first;
  }
  NeighEntry& e = it->second;
  e.port = port;
  e.ip = ip;
  e.mac = mac;
  e.state = NeighState::kStatic;
  e.updated_ns = 0;
  e.next_ns = 0;
  e.probes_sent = 0;
  tidy();  // a dynamic entry turned static may have owned the top of the heap
  return true;
}

void NeighborTable::clear_static() {
  std::erase_if(entries_, [](const auto& kv) { return kv.second.state == NeighState::kStatic; });
  tidy();
}

NeighborTable::Learn NeighborTable::learn(uint16_t port, uint32_t ip, const Mac& mac, bool targeted,
                                          uint64_t now_ns) {
  const uint64_t k = key(port, ip);
  auto it = entries_.find(k);
  Learn result;
  if (it != entries_.end()) {
    NeighEntry& e = it->second;
    if (e.state == NeighState::kStatic) return Learn::kIgnored;
    // Any sender answers an open question, so even an untargeted packet resolves INCOMPLETE.
    result =
        (e.state == NeighState::kIncomplete || e.mac != mac) ? Learn::kUpdated : Learn::kRefreshed;
  } else {
    if (!targeted) return Learn::kIgnored;
    if (entries_.size() >= params_.max_entries) return Learn::kFull;
    NeighEntry fresh;
    fresh.port = port;
    fresh.ip = ip;
    it = entries_.emplace(k, fresh).first;
    result = Learn::kAdded;
  }
  NeighEntry& e = it->second;
  e.mac = mac;
  e.state = NeighState::kReachable;
  e.updated_ns = now_ns;
  e.probes_sent = 0;
  schedule(e, now_ns + params_.reachable_ns);
  tidy();
  return result;
}

bool NeighborTable::request(uint16_t port, uint32_t ip, uint64_t now_ns) {
  const uint64_t k = key(port, ip);
  if (entries_.contains(k)) return true;
  if (entries_.size() >= params_.max_entries) return false;
  NeighEntry e;
  e.port = port;
  e.ip = ip;
  e.state = NeighState::kIncomplete;
  e.updated_ns = now_ns;
  NeighEntry& stored = entries_.emplace(k, e).first->second;
  schedule(stored, now_ns);
  tidy();
  return true;
}

void NeighborTable::tick(uint64_t now_ns, std::vector<NeighProbe>& out) {
  while (!heap_.empty() && heap_.front().first <= now_ns) {
    const auto [deadline, k] = heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), kHeapCmp);
    heap_.pop_back();
    if (!live(deadline, k)) continue;
    NeighEntry& e = entries_.find(k)->second;

    if (e.state == NeighState::kReachable) {
      if (params_.probes == 0) {
        entries_.erase(k);
        continue;
      }
      e.state = NeighState::kProbe;
      e.probes_sent = 0;
    }
    if (e.probes_sent >= params_.probes) {
      // The last probe's interval has elapsed without a reply.
      entries_.erase(k);
      continue;
    }
    NeighProbe p;
    p.port = e.port;
    p.ip = e.ip;
    // PROBE re-checks a MAC we already trust; only resolution needs to ask everyone.
    p.unicast = e.state == NeighState::kProbe;
    if (p.unicast) p.mac = e.mac;
    out.push_back(p);
    ++e.probes_sent;
    schedule(e, now_ns + params_.probe_interval_ns);
  }
  tidy();
}

const NeighEntry* NeighborTable::find(uint16_t port, uint32_t ip) const {
  auto it = entries_.find(key(port, ip));
  return it == entries_.end() ? nullptr : &it->second;
}

bool NeighborTable::remove(uint16_t port, uint32_t ip) {
  if (entries_.erase(key(port, ip)) == 0) return false;
  tidy();
  return true;
}

std::optional<uint64_t> NeighborTable::next_deadline() const {
  // tidy() after every mutation keeps the top live, so it is the true earliest deadline.
  if (heap_.empty()) return std::nullopt;
  return heap_.front().first;
}

}  // namespace dp
