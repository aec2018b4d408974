// Benchmark: lb::ConnTable alone (no packets, no DPDK), at the size one worker is built for:
// capacity 2^20 and 1M established TCP flows (NAT: both keys indexed). Prints one JSON object
// per mode:
//   insert      new flow: find() (a miss) + insert() + on_tcp(SYN), random client addresses,
//               until 1M flows are half-open
//   handshake   the rest of each handshake (SYN-ACK reply, ACK): connections become established
//   find        find() of a random flow (half client keys, half reply keys)
//   packet      find() + on_tcp(ACK): the per-packet work of the worker on an established flow
//   find_bulk   find_bulk() in bursts of 32, random flows, staged prefetch
//   miss        find() of unknown keys (a SYN flood's lookups before the insert)
//   expire      every flow aged out by expire(now, 4096) calls
// The fake clock moves 100 ns per operation. Memory: memory_bytes(), per connection.
//
// usage: conn_table_bench [--flows N] [--capacity N]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "lb/conn_table.h"

namespace {

using lb::Conn;
using lb::ConnTable;
using lb::FlowKey;

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint32_t kVip = 0xc0000264;
constexpr uint8_t kTcp = 6;

FlowKey reply_of(const FlowKey& f, uint32_t rs) {
  return {rs, f.src_ip, 8080, f.src_port, kTcp};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void print(const char* mode, uint64_t ops, double s, uint32_t flows, const ConnTable& t) {
  std::printf(
      "{\"bench\": \"conn_table\", \"mode\": \"%s\", \"flows\": %u, \"capacity\": %u, "
      "\"ops\": %llu, \"seconds\": %.3f, \"ops_per_s\": %.0f, \"ns_per_op\": %.1f, "
      "\"memory_bytes\": %zu, \"bytes_per_conn\": %.1f, \"index_load\": %.3f}\n",
      mode, flows, t.capacity(), static_cast<unsigned long long>(ops), s, ops / s, s * 1e9 / ops,
      t.memory_bytes(), static_cast<double>(t.memory_bytes()) / t.capacity(), t.index_load());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t flows = 1'000'000;
  uint32_t capacity = 1u << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--flows")) flows = static_cast<uint32_t>(std::atol(argv[i + 1]));
    if (!std::strcmp(argv[i], "--capacity"))
      capacity = static_cast<uint32_t>(std::atol(argv[i + 1]));
  }
  flows = std::min(flows, capacity);

  ConnTable::Params p;
  p.capacity = capacity;
  p.embryonic_permille = 1000;  // the insert phase has every flow half-open at once
  ConnTable t(p);

  std::mt19937_64 rng(42);
  std::vector<FlowKey> fwd(flows);
  for (uint32_t i = 0; i < flows; ++i) {
    // Distinct clients: a random address per index, the index in the port to break ties.
    fwd[i] = {static_cast<uint32_t>(rng()) | 1u, kVip, static_cast<uint16_t>(i), 80, kTcp};
    fwd[i].dst_ip = kVip + (i >> 16);  // no two flows share (address, port, VIP)
  }
  auto rs_of = [](uint32_t i) { return 0x0a000001u + (i & 15); };

  uint64_t now = 1000 * kSec;
  uint32_t failed = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < flows; ++i) {
    now += 100;
    if (t.find(fwd[i], nullptr)) continue;  // a worker looks the packet up first
    Conn* c = t.insert(fwd[i], reply_of(fwd[i], rs_of(i)), now);
    if (!c) {
      ++failed;
      continue;
    }
    t.on_tcp(*c, false, lb::kTcpSyn, now);
  }
  print("insert", flows, seconds_since(t0), flows, t);
  if (failed)
    std::fprintf(stderr, "insert: %u refused (%s)\n", failed,
                 std::string(lb::to_string(t.last_refusal())).c_str());

  t0 = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < flows; ++i) {
    now += 100;
    Conn* c = t.find(reply_of(fwd[i], rs_of(i)), nullptr);
    t.on_tcp(*c, true, lb::kTcpSyn | lb::kTcpAck, now);
    c = t.find(fwd[i], nullptr);
    t.on_tcp(*c, false, lb::kTcpAck, now);
  }
  print("handshake", 2ull * flows, seconds_since(t0), flows, t);

  // Random order, half client keys and half reply keys.
  const uint32_t lookups = std::max<uint32_t>(flows, 1'000'000);
  std::vector<FlowKey> keys(lookups);
  for (uint32_t j = 0; j < lookups; ++j) {
    const uint32_t i = static_cast<uint32_t>(rng() % flows);
    keys[j] = (j & 1) ? reply_of(fwd[i], rs_of(i)) : fwd[i];
  }

  uint64_t found = 0;
  t0 = std::chrono::steady_clock::now();
  for (uint32_t j = 0; j < lookups; ++j) found += t.find(keys[j], nullptr) != nullptr;
  print("find", lookups, seconds_since(t0), flows, t);
  if (found != lookups)
    std::fprintf(stderr, "find: %llu of %u found\n", static_cast<unsigned long long>(found),
                 lookups);

  t0 = std::chrono::steady_clock::now();
  for (uint32_t j = 0; j < lookups; ++j) {
    now += 100;
    bool reply = false;
    if (Conn* c = t.find(keys[j], &reply)) t.on_tcp(*c, reply, lb::kTcpAck, now);
  }
  print("packet", lookups, seconds_since(t0), flows, t);

  constexpr uint32_t kBurst = 32;
  Conn* out[kBurst];
  bool reply[kBurst];
  found = 0;
  t0 = std::chrono::steady_clock::now();
  for (uint32_t j = 0; j + kBurst <= lookups; j += kBurst) {
    t.find_bulk(&keys[j], kBurst, out, reply);
    for (uint32_t k = 0; k < kBurst; ++k) found += out[k] != nullptr;
  }
  print("find_bulk", lookups / kBurst * kBurst, seconds_since(t0), flows, t);

  for (uint32_t j = 0; j < lookups; ++j) keys[j].src_port ^= 0x5a5a;  // unknown now
  found = 0;
  t0 = std::chrono::steady_clock::now();
  for (uint32_t j = 0; j < lookups; ++j) found += t.find(keys[j], nullptr) != nullptr;
  print("miss", lookups, seconds_since(t0), flows, t);

  now += 901 * kSec;
  uint64_t expired = 0;
  const uint32_t size = t.size();
  t0 = std::chrono::steady_clock::now();
  while (uint32_t n = t.expire(now, 4096, [](const Conn&) {})) expired += n;
  print("expire", expired, seconds_since(t0), flows, t);
  if (expired != size)
    std::fprintf(stderr, "expire: %llu of %u\n", static_cast<unsigned long long>(expired), size);
  return 0;
}
