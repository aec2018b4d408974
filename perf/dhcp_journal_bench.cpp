// Benchmark: the lease journal on a real directory. For each fsync policy (never, interval at
// 10 ms, the config default, and batch) and batch size (1, 32, 256): append until N records or
// T seconds, whichever comes first, into a fresh journal, calling tick() between batches as the
// journal thread would. Reports records/s, append() latency (write + any fsync it does) and the
// latency of every journal fsync (JournalStats::last_fsync_ns after each one). Then compaction
// and replay of the last run's journal. Prints one JSON object.
//
// The numbers are the disk's: run it on the filesystem the daemon will use (fsync on tmpfs is
// free; "fs" in the output says which it was).
//
// usage: dhcp_journal_bench [--dir BASE] [--records N] [--seconds S]

#include <sys/vfs.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "dhcp/journal.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

double pct_us(std::vector<uint64_t> v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return static_cast<double>(v[i]) / 1000.0;
}

const char* policy_name(dhcp::FsyncPolicy p) {
  switch (p) {
    case dhcp::FsyncPolicy::kNever:
      return "never";
    case dhcp::FsyncPolicy::kInterval:
      return "interval";
    case dhcp::FsyncPolicy::kEveryBatch:
      return "batch";
  }
  return "?";
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "dhcp_journal_bench: %s\n", what.c_str());
  std::exit(1);
}

dhcp::LeaseEvent event_for(uint64_t n) {
  dhcp::LeaseEvent e{};
  e.kind = dhcp::LeaseEvent::kBind;
  dhcp::Lease& l = e.lease;
  const uint32_t i = static_cast<uint32_t>(n % 65536);
  l.ip = (10u << 24) | i;
  l.pool = 1;
  l.state = dhcp::LeaseState::kBound;
  l.mac = {0x02, 0, 0, 0, uint8_t(i >> 8), uint8_t(i)};
  l.client = dhcp::ClientKey::from_mac(l.mac);
  l.expires_ns = n + 3'600'000'000'000ull;
  l.updated_ns = n;
  l.generation = n / 65536 + 1;
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  std::string base = fs::temp_directory_path().string();
  uint64_t max_records = 200'000;
  double max_seconds = 5.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) {
      base = argv[i + 1];
    } else if (std::strcmp(argv[i], "--records") == 0) {
      max_records = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--seconds") == 0) {
      max_seconds = std::strtod(argv[i + 1], nullptr);
    } else {
      die(std::string("unknown option ") + argv[i]);
    }
  }
  std::string root = base + "/tandem-journal-bench-XXXXXX";
  if (::mkdtemp(root.data()) == nullptr) die("mkdtemp in " + base + ": " + std::strerror(errno));

  std::string runs;
  std::string last_dir;
  const uint64_t deadline_ns = static_cast<uint64_t>(max_seconds * 1e9);
  for (auto policy :
       {dhcp::FsyncPolicy::kNever, dhcp::FsyncPolicy::kInterval, dhcp::FsyncPolicy::kEveryBatch}) {
    for (size_t batch : {size_t{1}, size_t{32}, size_t{256}}) {
      dhcp::JournalParams p;
      p.dir = root + "/" + policy_name(policy) + "-" + std::to_string(batch);
      p.fsync = policy;
      p.fsync_interval_ms = 10;
      p.compact_bytes = ~uint64_t{0};  // appends only; compaction is measured below
      dhcp::Journal j;
      if (std::string e = j.open(p); !e.empty()) die(e);
      if (std::string e = j.replay([](const dhcp::Lease&) {}); !e.empty()) die(e);

      std::vector<dhcp::LeaseEvent> events(batch);
      std::vector<uint64_t> append_ns, fsync_ns;
      append_ns.reserve(max_records / batch + 1);
      uint64_t n = 0, fsyncs = 0;
      const uint64_t t0 = now_ns();
      uint64_t t = t0;
      while (n < max_records && t - t0 < deadline_ns) {
        for (size_t k = 0; k < batch; ++k) events[k] = event_for(n + k);
        const uint64_t a = now_ns();
        if (!j.append(events, a)) die(j.last_error());
        t = now_ns();
        append_ns.push_back(t - a);
        n += batch;
        if (j.stats().fsyncs != fsyncs) fsync_ns.push_back(j.stats().last_fsync_ns);
        fsyncs = j.stats().fsyncs;
        if (!j.tick(t)) die(j.last_error());
        if (j.stats().fsyncs != fsyncs) fsync_ns.push_back(j.stats().last_fsync_ns);
        fsyncs = j.stats().fsyncs;
      }
      const double secs = static_cast<double>(now_ns() - t0) / 1e9;
      char line[640];
      std::snprintf(line, sizeof line,
                    "%s\n    {\"fsync\": \"%s\", \"batch\": %zu, \"records\": %llu, "
                    "\"seconds\": %.3f, \"records_per_s\": %.0f, \"fsyncs\": %llu, "
                    "\"append_p50_us\": %.1f, \"append_p99_us\": %.1f, "
                    "\"fsync_p50_us\": %.1f, \"fsync_p99_us\": %.1f, \"fsync_max_us\": %.1f}",
                    runs.empty() ? "" : ",", policy_name(policy), batch,
                    static_cast<unsigned long long>(n), secs, static_cast<double>(n) / secs,
                    static_cast<unsigned long long>(j.stats().fsyncs), pct_us(append_ns, 0.50),
                    pct_us(append_ns, 0.99), pct_us(fsync_ns, 0.50), pct_us(fsync_ns, 0.99),
                    static_cast<double>(j.stats().max_fsync_ns) / 1000.0);
      runs += line;
      last_dir = p.dir;
    }
  }

  // Compaction of the last run's table, then a cold-ish replay (snapshot + empty journal) and a
  // replay of an uncompacted journal (the last run: batch policy, 256 a batch).
  char tail[512];
  {
    dhcp::JournalParams p;
    p.dir = last_dir;
    p.fsync = dhcp::FsyncPolicy::kNever;
    dhcp::Journal j;
    if (std::string e = j.open(p); !e.empty()) die(e);
    uint64_t t = now_ns();
    if (std::string e = j.replay([](const dhcp::Lease&) {}); !e.empty()) die(e);
    const double replay_journal_s = static_cast<double>(now_ns() - t) / 1e9;
    const uint64_t replayed = j.stats().restored;
    t = now_ns();
    if (std::string e = j.compact(); !e.empty()) die(e);
    const double compact_s = static_cast<double>(now_ns() - t) / 1e9;
    const size_t leases = j.leases();
    j.close();
    dhcp::Journal k;
    if (std::string e = k.open(p); !e.empty()) die(e);
    t = now_ns();
    if (std::string e = k.replay([](const dhcp::Lease&) {}); !e.empty()) die(e);
    const double replay_snap_s = static_cast<double>(now_ns() - t) / 1e9;
    std::snprintf(
        tail, sizeof tail,
        "\"replay_journal\": {\"records\": %llu, \"seconds\": %.3f, "
        "\"records_per_s\": %.0f},\n  \"compact\": {\"leases\": %zu, \"seconds\": %.3f},\n"
        "  \"replay_snapshot\": {\"records\": %zu, \"seconds\": %.3f}",
        static_cast<unsigned long long>(replayed), replay_journal_s,
        static_cast<double>(replayed) / replay_journal_s, leases, compact_s, leases, replay_snap_s);
  }

  std::printf(
      "{\"bench\": \"dhcp_journal\", \"fs\": \"%s\", \"record_bytes\": %zu, "
      "\"max_records\": %llu, \"max_seconds\": %.1f, \"interval_ms\": 10,\n  \"runs\": [%s\n  ],\n"
      "  %s}\n",
      bench::fs_name(root), dhcp::Journal::kRecordSize,
      static_cast<unsigned long long>(max_records), max_seconds, runs.c_str(), tail);
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
