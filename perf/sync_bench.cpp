// Benchmark: the sync link's transport (ctl::sync::Channel) end to end, two channels in one
// thread over an in-memory link, real clock: entries/s through the whole path (queue, pack,
// encode, HMAC-SHA256, verify, decode, deliver in order, ack, SACK, retransmit). One JSON object
// per case (entry size x loss):
//   entries_per_s      entries delivered in order to the receiving application, per second
//   bytes_per_s        their payload bytes per second; wire_bytes_per_s: datagrams both ways
//   retransmitted      entries sent again (fast retransmit or RTO)
//   cpu_ns_per_entry   process CPU time per delivered entry: sender and receiver together
// The link has no bandwidth limit: this is the CPU cost of the protocol, not of a network.
//
// usage: sync_bench [--seconds S]   (per case; default 1, at most 1.5, plus the handshake)

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "control/sync/channel.h"

namespace {

using ctl::sync::Channel;
using ctl::sync::ChannelParams;
using ctl::sync::ChannelState;
using ctl::sync::ChannelStats;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// xorshift64*: cheap enough not to show up next to an HMAC.
struct Rng {
  uint64_t s;
  double uniform() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<double>((s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
  }
};

struct Result {
  uint64_t delivered = 0, order_errors = 0;
};

void run_case(size_t entry_bytes, double loss, double seconds) {
  ChannelParams pa, pb;
  pa.key = pb.key = std::vector<uint8_t>(32, 0x5a);
  pa.boot_id = 0x1111;
  pb.boot_id = 0x2222;
  Result r;
  uint64_t expect = 1;
  Channel::Events eb;
  eb.entry = [&](uint64_t seq, uint8_t, std::span<const uint8_t> body) {
    if (seq != expect || body.size() != entry_bytes) ++r.order_errors;
    expect = seq + 1;
    ++r.delivered;
  };
  Channel a(pa, {});
  Channel b(pb, eb);
  Rng rng{0x9e3779b97f4a7c15ULL};
  std::vector<std::vector<uint8_t>> out;
  uint64_t wire = 0;
  // Delivers what `from` has to send now to `to`, dropping `loss` of it.
  auto pump = [&](Channel& from, Channel& to, uint64_t now) {
    out.clear();
    from.poll(now, out);
    for (const auto& d : out) {
      wire += d.size();
      if (loss > 0 && rng.uniform() < loss) continue;
      to.on_datagram(d, now);
    }
  };

  const uint64_t setup_deadline = now_ns() + 500'000'000;
  while ((a.state() != ChannelState::kUp || b.state() != ChannelState::kUp) &&
         now_ns() < setup_deadline) {
    const uint64_t now = now_ns();
    pump(a, b, now);
    pump(b, a, now);
  }
  if (a.state() != ChannelState::kUp) {
    std::printf("{\"bench\": \"sync_channel\", \"error\": \"no session\"}\n");
    return;
  }

  std::vector<uint8_t> body(entry_bytes);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 31);
  const ChannelStats sa0 = a.stats();
  wire = 0;
  const uint64_t t0 = now_ns(), c0 = cpu_ns();
  const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
  uint64_t now = t0;
  while (now < end) {
    // Keep the sender's queue ahead of its window: the link never waits for the application.
    while (a.unacked() < 100'000) {
      if (a.send(7, body) == 0) break;
    }
    pump(a, b, now);
    pump(b, a, now);
    now = now_ns();
  }
  const double s = static_cast<double>(now_ns() - t0) / 1e9;
  const uint64_t cpu = cpu_ns() - c0;
  const ChannelStats& sa = a.stats();
  std::printf(
      "{\"bench\": \"sync_channel\", \"entry_bytes\": %zu, \"loss\": %.2f, \"seconds\": %.3f, "
      "\"entries\": %llu, \"entries_per_s\": %.0f, \"bytes_per_s\": %.0f, "
      "\"wire_bytes_per_s\": %.0f, \"entries_per_dgram\": %.1f, \"retransmitted\": %llu, "
      "\"cpu_ns_per_entry\": %.1f, \"order_errors\": %llu}\n",
      entry_bytes, loss, s, static_cast<unsigned long long>(r.delivered), r.delivered / s,
      r.delivered * entry_bytes / s, wire / s,
      static_cast<double>(sa.entries_sent - sa0.entries_sent) /
          static_cast<double>(std::max<uint64_t>(1, sa.dgrams_sent - sa0.dgrams_sent)),
      static_cast<unsigned long long>(sa.entries_retransmitted - sa0.entries_retransmitted),
      static_cast<double>(cpu) / static_cast<double>(std::max<uint64_t>(1, r.delivered)),
      static_cast<unsigned long long>(r.order_errors));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
  }
  seconds = std::clamp(seconds, 0.05, 1.5);
  for (size_t size : {64, 128}) {
    for (double loss : {0.0, 0.01}) run_case(size, loss, seconds);
  }
  return 0;
}
