// Benchmark: DHCP messages answered per second by one worker core, end to end through the worker
// loop tandemd runs — Dataplane::poll_once() on a net_ring port: RX burst, classification (IPv4,
// UDP checksum), parse, dhcp::Server over the worker's LeaseStore, the reply framed in place
// (both checksums), buffered TX, lease changes onto the journal ring — while a journal thread on
// the other core drains that ring into a real dhcp::Journal (fsync policy "batch": one
// fdatasync per append, group commit) in a temporary directory and reports durability back.
//
// Set-up as tandemd builds it: the configuration is parsed (cfg::load_string), then
// ctl::make_snapshot, make_dhcp_config, lease_params and fill_lease_store, enable_dhcp.
// The only large range we may use is 198.18.0.0/15 (RFC 2544): one subnet, pool
// 198.18.0.10 - 198.19.255.250 (131057 addresses), behind relay 192.0.2.10 and on the port
// (which holds 198.18.0.1/15 besides 192.0.2.2/24).
//
// Clients outnumber addresses (default 2^20 distinct MACs over 131057 addresses), so the store is
// kept from running dry the way real churn does it: every client goes through DISCOVER → OFFER,
// REQUEST → ACK, then RELEASE (no reply). Client i asks (option 50) for address
// first + i mod pool — the address client i - pool released long before — so every offer and
// every ACK is deterministic and checked (no NAK, no refusal may occur).
//
// Modes, each on a fresh data plane, store and journal:
//   relayed_dora  DISCOVER and REQUEST through the relay (giaddr, hops 1, option 82 with
//                 circuit-id and remote-id, echoed in the replies, sent to the relay's port 67);
//                 RELEASE unicast from the client through its router (giaddr 0), as clients do.
//   local_dora    the same clients on the link: broadcast from 0.0.0.0, replies unicast to
//                 yiaddr at chaddr (broadcast flag clear), RELEASE unicast to the server.
//   local_renew   100000 clients bound first (not timed), then RENEWING REQUESTs (ciaddr set,
//                 unicast) in round-robin until as many requests as clients: ACK only.
//   relayed_dr    the issue's mix as written: DISCOVER and REQUEST of 2^20 distinct relayed
//                 clients, no RELEASE, into a pool larger than the population (2^21 addresses of
//                 10.0.0.0/11 — ring ports, so no frame reaches a network); every lease cell and
//                 client slot is touched once, cold, as with a million subscribers.
// Requests are built in mbufs in rounds of --round clients (3 frames each), enqueued on the RX
// ring, and the worker polled until the ring is empty; only poll_once() is timed, building and
// draining are not. Rates, all replies (OFFER + ACK) per second:
//   replies_per_s               over the TSC time spent in poll_once (wall clock: includes any
//                               preemption and interrupts the shared machine inflicts)
//   round_median_replies_per_s  the median round's rate (robust to a few preempted rounds)
//   replies_per_cpu_s           over the polling thread's own CPU time (CLOCK_THREAD_CPUTIME_ID):
//                               what a dedicated core would do
//   end_to_end_replies_per_s    over the mode's whole wall time (one core builds, answers, counts)
//
// usage: dhcp_engine_bench [--clients N] [--round N] [--burst B] [--dir BASE] [--strict]
//                          [--journal batch|none] [--queue N]
//                          [--mode relayed_dora|local_dora|local_renew|relayed_dr]
//   --strict: replies that change a lease wait for the journal's fsync (dhcp.leases.durability
//             "strict"); the timed loop then spins until the last held reply has left.
//   --journal none: the journal thread drains and counts the lease changes but writes nothing
//             (isolates what the disk and its interrupts cost the worker on a shared machine).
//   --queue N: the worker's lease-change ring (dhcp.leases.queue, default 65536, a power of two):
//             what rides out the journal's slowest fsyncs.

#include <pthread.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sched.h>
#include <sys/vfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../tests/packet/eal_env.h"
#include "bench_util.h"
#include "config/model.h"
#include "control/dhcp_translate.h"
#include "control/translate.h"
#include "dataplane/dataplane.h"
#include "dataplane/proto.h"
#include "dhcp/codec.h"
#include "dhcp/journal.h"

namespace {

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}
const dp::Mac kOurMac{0x02, 0, 0, 0, 0, 0x02};
const dp::Mac kRelayMac{0x02, 0, 0, 0, 0, 0x0a};
constexpr uint32_t kOurIp = ip4(192, 0, 2, 2);
constexpr uint32_t kRelayIp = ip4(192, 0, 2, 10);
constexpr uint32_t kRenewClients = 100000;

// The address plan of a mode: one subnet behind relay 192.0.2.10, its pool, and whether the
// port is on the subnet too (the local modes need it). conf() is tandemd's configuration for it.
struct Plan {
  const char* subnet;
  const char* router;  // option 3, and the port's address in the subnet when on_port
  const char* prefix;  // the subnet's prefix length
  bool on_port;
  uint32_t first, last;
  uint32_t size() const { return last - first + 1; }
  std::string conf() const {
    const std::string port_addrs =
        std::string("\"192.0.2.2/24\"") +
        (on_port ? ", \"" + std::string(router) + "/" + prefix + "\"" : "");
    return R"(ports = (
  { name = "front0"; device = "net_ring0"; addresses = [ )" +
           port_addrs + R"( ]; }
);
dataplane = { worker_cores = [ 1 ]; idle = "busy"; };
dhcp = {
  options = ( { name = "domain-name-servers"; value = [ "192.0.2.53", "198.51.100.53" ]; } );
  subnets = (
    {
      subnet = ")" +
           std::string(subnet) + "/" + prefix + R"(";
      relays = [ "192.0.2.10" ];
      options = (
        { name = "routers"; value = [ ")" +
           router + R"(" ]; },
        { name = "domain-name"; value = "bench.example"; }
      );
      pools = ( { range = ")" +
           cfg::format_ipv4(first) + " - " + cfg::format_ipv4(last) + R"("; } );
    }
  );
};
)";
  }
};

const Plan kSmall{"198.18.0.0", "198.18.0.1",        "15",
                  true,         ip4(198, 18, 0, 10), ip4(198, 19, 255, 250)};
// relayed_dr: 2^21 addresses (10.0.0.0/11), more than the 2^20 clients. Ring ports only: no
// frame of this benchmark reaches a network, so the size of the range is all that matters.
const Plan kLarge{"10.0.0.0", "10.0.0.1", "11", false, ip4(10, 0, 0, 10), ip4(10, 31, 255, 250)};

enum class Mode { kRelayedDora, kLocalDora, kLocalRenew, kRelayedDr };
const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kRelayedDora:
      return "relayed_dora";
    case Mode::kRelayedDr:
      return "relayed_dr";
    case Mode::kLocalDora:
      return "local_dora";
    case Mode::kLocalRenew:
      break;
  }
  return "local_renew";
}

// --- request frames ----------------------------------------------------------------------------

dp::Mac client_mac(uint32_t i) {
  return {0x02,
          0xbe,
          static_cast<uint8_t>(i >> 24),
          static_cast<uint8_t>(i >> 16),
          static_cast<uint8_t>(i >> 8),
          static_cast<uint8_t>(i)};
}
uint32_t client_ip(const Plan& plan, uint32_t i) {
  return plan.first + i % plan.size();
}

struct Req {
  dhcp::MessageType type;
  uint32_t client;
  bool relayed;  // through the relay (giaddr, option 82), from the relay's address and port 67
  bool unicast;  // from ciaddr to the server (RENEWING, RELEASE)
  bool routed;   // ... through the client's router (L2 source: the router's MAC)
};

// Writes the frame of `r` at `f` (room for 600 bytes); returns its length. Untimed.
uint16_t build(uint8_t* f, const Plan& plan, const Req& r) {
  const dp::Mac mac = client_mac(r.client);
  const uint32_t ip = client_ip(plan, r.client);
  uint8_t* b = f + dp::kUdpFrameHdrLen;
  std::memset(b, 0, 240);
  b[0] = 1;  // BOOTREQUEST
  b[1] = 1;
  b[2] = 6;
  b[3] = r.relayed ? 1 : 0;
  dp::store_be32(b + 4, 0x5eed0000u ^ r.client);
  if (r.unicast) dp::store_be32(b + 12, ip);  // ciaddr
  if (r.relayed) dp::store_be32(b + 24, kRelayIp);
  std::memcpy(b + 28, mac.data(), 6);
  dp::store_be32(b + 236, dhcp::kMagicCookie);
  size_t n = 240;
  auto opt = [&](uint8_t code, std::initializer_list<uint8_t> v) {
    b[n++] = code;
    b[n++] = static_cast<uint8_t>(v.size());
    for (uint8_t x : v) b[n++] = x;
  };
  auto opt_ip = [&](uint8_t code, uint32_t v) {
    opt(code, {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
  };
  opt(53, {static_cast<uint8_t>(r.type)});
  opt(61, {1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]});
  if (r.type == dhcp::MessageType::kDiscover) opt_ip(50, ip);
  if (r.type == dhcp::MessageType::kRequest && !r.unicast) {
    opt_ip(50, ip);
    opt_ip(54, kOurIp);
  }
  if (r.type == dhcp::MessageType::kRelease) opt_ip(54, kOurIp);
  if (r.type != dhcp::MessageType::kRelease) {
    opt(55, {1, 3, 6, 15, 28, 51, 58, 59});
    opt(57, {0x05, 0xdc});
  }
  if (r.relayed) {
    // Option 82: circuit-id "olt1/1/NNNN" (a port of 4096), remote-id = the client's MAC.
    char circuit[16];
    const int cl = std::snprintf(circuit, sizeof circuit, "olt1/1/%04u", r.client % 4096);
    b[n++] = 82;
    b[n++] = static_cast<uint8_t>(2 + cl + 2 + 6);
    b[n++] = 1;
    b[n++] = static_cast<uint8_t>(cl);
    std::memcpy(b + n, circuit, static_cast<size_t>(cl));
    n += static_cast<size_t>(cl);
    b[n++] = 2;
    b[n++] = 6;
    std::memcpy(b + n, mac.data(), 6);
    n += 6;
  }
  b[n++] = 255;
  while (n < 300) b[n++] = 0;  // BOOTP minimum, as dhclient pads
  if (r.relayed) {
    return static_cast<uint16_t>(
        dp::write_udp_frame(f, kOurMac, kRelayMac, kRelayIp, kOurIp, 67, 67, n));
  }
  if (r.unicast) {
    return static_cast<uint16_t>(
        dp::write_udp_frame(f, kOurMac, r.routed ? kRelayMac : mac, ip, kOurIp, 68, 67, n));
  }
  return static_cast<uint16_t>(
      dp::write_udp_frame(f, dp::kBroadcastMac, mac, 0, 0xffffffffu, 68, 67, n));
}

// --- the journal thread ------------------------------------------------------------------------

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// On-CPU time of the calling thread: the shared machine preempts us, TSC intervals include that.
uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Drains worker 0's lease changes into the journal, as tandemd's lease keeper does: append (one
// write + one fdatasync per pass), then tell the worker how far its changes are durable; tick()
// when idle. Runs on the CPU of EAL lcore 1 (not launched), away from the measured loop.
class JournalThread {
 public:
  JournalThread(dp::Dataplane& d, const std::string& dir, bool write) : dp_(d), write_(write) {
    if (!write_) {
      start();
      return;
    }
    dhcp::JournalParams p;
    p.dir = dir;
    p.fsync = dhcp::FsyncPolicy::kEveryBatch;
    error_ = journal_.open(p);
    if (error_.empty()) error_ = journal_.replay([](const dhcp::Lease&) {});
    if (!error_.empty()) return;
    start();
  }
  void start() {
    thread_ = std::thread([this] { run(); });
    rte_cpuset_t cpus = rte_lcore_cpuset(1);
    pthread_setaffinity_np(thread_.native_handle(), sizeof cpus, &cpus);
    pthread_setname_np(thread_.native_handle(), "bench-journal");
  }
  ~JournalThread() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      stop_.store(true);
      thread_.join();
    }
    if (write_) journal_.close();
  }
  const std::string& error() const { return error_; }
  uint64_t events() const { return events_.load(); }
  const dhcp::JournalStats& stats() const { return journal_.stats(); }  // after stop()
  uint64_t append_failures() const { return failures_; }

 private:
  void run() {
    std::vector<dhcp::LeaseEvent> batch(8192);
    uint64_t taken = 0;
    uint32_t idle_us = 0;
    for (;;) {
      const bool stopping = stop_.load(std::memory_order_acquire);
      const uint32_t n =
          dp_.poll_lease_events(0, batch.data(), static_cast<uint32_t>(batch.size()));
      if (n != 0) {
        if (write_ && !journal_.append({batch.data(), n}, mono_ns())) ++failures_;
        taken += n;
        events_.store(taken, std::memory_order_relaxed);
        dp_.set_lease_durable(0, taken);
        idle_us = 0;
        continue;
      }
      if (write_) journal_.tick(mono_ns());
      if (stopping) break;
      idle_us = idle_us == 0 ? 20 : std::min<uint32_t>(idle_us * 2, 1000);
      timespec ts{0, static_cast<long>(idle_us) * 1000};
      nanosleep(&ts, nullptr);
    }
  }

  dp::Dataplane& dp_;
  bool write_;
  dhcp::Journal journal_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> events_{0};
  uint64_t failures_ = 0;
  std::string error_;
};

// --- one mode ----------------------------------------------------------------------------------

struct Options {
  uint32_t clients = 1u << 20;
  uint32_t round = 1024;  // clients per round (3 frames each)
  uint32_t burst = 32;
  bool strict = false;
  bool journal = true;            // false: the journal thread drains and counts, writes nothing
  uint32_t journal_ring = 65536;  // dhcp.leases.queue
  std::string dir_base = "/tmp";
};

struct Counts {
  uint64_t discover = 0, request = 0, release = 0;
  uint64_t offer = 0, ack = 0, nak = 0, other = 0;
  uint64_t poll_cycles = 0;
  uint64_t poll_cpu_ns = 0;       // on-CPU time of the polling thread (excludes preemption)
  std::vector<double> round_cpr;  // cycles per reply of each timed round
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

int run_mode(Mode mode, const Options& o, rte_mempool* pool) {
  static int seq = 0;
  const std::string name = "dheb" + std::to_string(++seq);
  rte_ring* rx =
      rte_ring_create((name + "_rx").c_str(), 8192, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx[2] = {
      rte_ring_create((name + "_tx0").c_str(), 8192, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ),
      rte_ring_create((name + "_tx1").c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ)};
  if (!rx || !tx[0] || !tx[1])
    return std::fprintf(stderr, "rings: %s\n", rte_strerror(rte_errno)), 1;
  const int port = rte_eth_from_rings(name.c_str(), &rx, 1, tx, 2, SOCKET_ID_ANY);
  char dev[RTE_ETH_NAME_MAX_LEN];
  if (port < 0 || rte_eth_dev_get_name_by_port(static_cast<uint16_t>(port), dev) != 0)
    return std::fprintf(stderr, "ring port: %s\n", rte_strerror(rte_errno)), 1;

  const Plan& plan = mode == Mode::kRelayedDr ? kLarge : kSmall;
  auto loaded = cfg::load_string(plan.conf(), "dhcp_engine_bench.conf");
  if (!loaded.config)
    return std::fprintf(stderr, "config: %s\n", loaded.errors[0].str().c_str()), 1;
  const cfg::Config& c = *loaded.config;

  dp::Dataplane d;
  dp::Params p;
  p.ports.push_back({"front0", dev, 1500, 1024, 1024, ""});
  p.worker_lcores = {1};
  p.mbufs = 1023;
  if (std::string err = d.init(p); !err.empty())
    return std::fprintf(stderr, "init: %s\n", err.c_str()), 1;
  auto sc = std::make_shared<const dhcp::ServerConfig>(ctl::make_dhcp_config(c));
  dp::DhcpParams dh;
  dh.hold_for_journal = o.strict;
  dh.journal_ring_size = o.journal_ring;
  {
    auto store = std::make_unique<dhcp::LeaseStore>(ctl::lease_params(c, *sc, 0));
    std::string err;
    if (!ctl::fill_lease_store(c, *sc, 0, *store, &err))
      return std::fprintf(stderr, "leases: %s\n", err.c_str()), 1;
    dh.engines.push_back(std::make_unique<dp::DhcpEngine>(*sc, std::move(store), 0, 1));
  }
  if (std::string err = d.enable_dhcp(std::move(dh)); !err.empty())
    return std::fprintf(stderr, "dhcp: %s\n", err.c_str()), 1;
  auto snap = std::make_unique<dp::Snapshot>(ctl::make_snapshot(c, {kOurMac}, 1));
  snap->burst = o.burst;
  snap->dhcp = sc;
  if (std::string err = d.start(std::move(snap), false); !err.empty())
    return std::fprintf(stderr, "start: %s\n", err.c_str()), 1;
  d.attach_reader(0);
  dp::Worker& w = d.worker(0);

  char tmpl[4096];
  std::snprintf(tmpl, sizeof tmpl, "%s/tandem-dhcp-bench-XXXXXX", o.dir_base.c_str());
  if (mkdtemp(tmpl) == nullptr) return std::perror("mkdtemp"), 1;
  const std::string dir = tmpl;
  auto journal = std::make_unique<JournalThread>(d, dir, o.journal);
  if (!journal->error().empty())
    return std::fprintf(stderr, "journal: %s\n", journal->error().c_str()), 1;

  Counts k;
  std::vector<Req> reqs;
  reqs.reserve(3 * size_t{o.round});
  std::vector<rte_mbuf*> ms(3 * size_t{o.round});
  void* out[512];

  // Builds `reqs` into mbufs, enqueues them, polls until all are handled (and, strict, every
  // held reply has left), then counts and frees what was sent.
  auto round = [&](bool timed) -> bool {
    const auto n = static_cast<unsigned>(reqs.size());
    if (rte_pktmbuf_alloc_bulk(pool, ms.data(), n) != 0) return false;
    for (unsigned i = 0; i < n; ++i) {
      uint8_t* f = rte_pktmbuf_mtod(ms[i], uint8_t*);
      const uint16_t len = build(f, plan, reqs[i]);
      ms[i]->data_len = len;
      ms[i]->pkt_len = len;
    }
    if (rte_ring_enqueue_bulk(rx, reinterpret_cast<void**>(ms.data()), n, nullptr) != n)
      return false;
    const uint64_t c0 = thread_cpu_ns();
    const uint64_t t0 = rte_rdtsc();
    while (d.poll_once(w) != 0 || rte_ring_count(rx) != 0 || w.held_count != 0) {
    }
    const uint64_t cycles = rte_rdtsc() - t0;
    if (timed) k.poll_cycles += cycles;
    if (timed) k.poll_cpu_ns += thread_cpu_ns() - c0;
    uint64_t replies = 0;
    for (unsigned got; (got = rte_ring_dequeue_burst(tx[0], out, 512, nullptr)) != 0;) {
      for (unsigned i = 0; i < got; ++i) {
        const uint8_t* f = rte_pktmbuf_mtod(static_cast<rte_mbuf*>(out[i]), const uint8_t*);
        const uint8_t* t = f + dp::kUdpFrameHdrLen + 240;  // option 53 comes first
        const uint8_t type = t[0] == 53 && t[1] == 1 ? t[2] : 0;
        ++replies;
        if (timed) {
          k.offer += type == 2;
          k.ack += type == 5;
          k.nak += type == 6;
          k.other += type != 2 && type != 5 && type != 6;
        }
      }
      rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(out), got);
    }
    if (timed && replies != 0)
      k.round_cpr.push_back(static_cast<double>(cycles) / static_cast<double>(replies));
    if (timed) {
      for (const Req& r : reqs) {
        k.discover += r.type == dhcp::MessageType::kDiscover;
        k.request += r.type == dhcp::MessageType::kRequest;
        k.release += r.type == dhcp::MessageType::kRelease;
      }
    }
    reqs.clear();
    return true;
  };

  const bool relayed = mode == Mode::kRelayedDora || mode == Mode::kRelayedDr;
  if (mode == Mode::kLocalRenew) {
    // Bind the renewing population first (not timed).
    for (uint32_t c0 = 0; c0 < kRenewClients; c0 += o.round) {
      const uint32_t c1 = std::min(kRenewClients, c0 + o.round);
      for (uint32_t i = c0; i < c1; ++i)
        reqs.push_back({dhcp::MessageType::kDiscover, i, false, false, false});
      for (uint32_t i = c0; i < c1; ++i)
        reqs.push_back({dhcp::MessageType::kRequest, i, false, false, false});
      if (!round(false)) return std::fprintf(stderr, "mbufs\n"), 1;
    }
  }
  // The journal thread catches up with the set-up's changes before the measurement starts.
  for (int i = 0;
       i < 5000 && journal->events() < 2ull * kRenewClients * (mode == Mode::kLocalRenew); ++i)
    rte_delay_us_sleep(1000);
  const uint64_t events0 = journal->events();
  const auto wall0 = std::chrono::steady_clock::now();
  uint32_t next_renew = 0;
  for (uint32_t c0 = 0; c0 < o.clients; c0 += o.round) {
    const uint32_t c1 = std::min(o.clients, c0 + o.round);
    if (mode == Mode::kLocalRenew) {
      for (uint32_t i = c0; i < c1; ++i) {
        reqs.push_back({dhcp::MessageType::kRequest, next_renew, false, true, false});
        next_renew = (next_renew + 1) % kRenewClients;
      }
    } else {
      for (uint32_t i = c0; i < c1; ++i)
        reqs.push_back({dhcp::MessageType::kDiscover, i, relayed, false, false});
      for (uint32_t i = c0; i < c1; ++i)
        reqs.push_back({dhcp::MessageType::kRequest, i, relayed, false, false});
      // RELEASE: unicast from the client (through its router when relayed), never relayed.
      for (uint32_t i = c0; i < c1 && mode != Mode::kRelayedDr; ++i)
        reqs.push_back({dhcp::MessageType::kRelease, i, false, true, relayed});
    }
    if (!round(true)) return std::fprintf(stderr, "mbufs\n"), 1;
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  // Let the journal thread catch up before reading its totals.
  const uint64_t expected_events = k.discover + k.request + k.release + events0;
  for (int i = 0; i < 5000 && journal->events() < expected_events; ++i) rte_delay_us_sleep(1000);
  journal->stop();

  const dp::DhcpEngine& e = *d.dhcp_engine(0);
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const uint64_t messages = k.discover + k.request + k.release;
  const uint64_t replies = k.offer + k.ack + k.nak + k.other;
  const double poll_s = static_cast<double>(k.poll_cycles) / hz;
  std::string refusals;
  for (size_t r = 1; r < dhcp::kReasonNames.size(); ++r) {
    const uint64_t v = e.server.counters().reasons[r].get();
    if (v == 0) continue;
    refusals += std::string(refusals.empty() ? "" : ", ") + "\"" + dhcp::kReasonNames[r] +
                "\": " + std::to_string(v);
  }
  uint64_t malformed = 0;
  for (const auto& m : e.stats.malformed) malformed += m.get();
  const auto& js = journal->stats();
  std::printf(
      "{\"bench\": \"dhcp_engine\", \"mode\": \"%s\", \"strict\": %s, \"burst\": %u, "
      "\"clients\": %u, \"pool\": %u, \"messages\": %llu, "
      "\"mix\": {\"discover\": %llu, \"request\": %llu, \"release\": %llu}, "
      "\"replies\": {\"offer\": %llu, \"ack\": %llu, \"nak\": %llu, \"other\": %llu}, "
      "\"replies_per_s\": %.0f, \"messages_per_s\": %.0f, \"cycles_per_message\": %.1f, "
      "\"cycles_per_reply\": %.1f, \"round_median_cycles_per_reply\": %.1f, "
      "\"round_median_replies_per_s\": %.0f, \"replies_per_cpu_s\": %.0f, "
      "\"end_to_end_replies_per_s\": %.0f, "
      "\"refusals\": {%s}, \"malformed\": %llu, \"tx_full\": %llu, "
      "\"journal\": {\"fs\": \"%s\", \"fsync\": \"%s\", \"queue\": %u, \"events_drained\": %llu, "
      "\"records_written\": %llu, \"appends\": %llu, \"fsyncs\": %llu, "
      "\"mean_fsync_us\": %.1f, \"max_fsync_us\": %.1f, \"compactions\": %llu, "
      "\"journal_full\": %llu, \"append_failures\": %llu}, \"tsc_hz\": %.0f}\n",
      mode_name(mode), o.strict ? "true" : "false", o.burst, o.clients, plan.size(),
      static_cast<unsigned long long>(messages), static_cast<unsigned long long>(k.discover),
      static_cast<unsigned long long>(k.request), static_cast<unsigned long long>(k.release),
      static_cast<unsigned long long>(k.offer), static_cast<unsigned long long>(k.ack),
      static_cast<unsigned long long>(k.nak), static_cast<unsigned long long>(k.other),
      poll_s > 0 ? static_cast<double>(replies) / poll_s : 0,
      poll_s > 0 ? static_cast<double>(messages) / poll_s : 0,
      messages ? static_cast<double>(k.poll_cycles) / static_cast<double>(messages) : 0,
      replies ? static_cast<double>(k.poll_cycles) / static_cast<double>(replies) : 0,
      median(k.round_cpr), median(k.round_cpr) > 0 ? hz / median(k.round_cpr) : 0,
      k.poll_cpu_ns ? static_cast<double>(replies) * 1e9 / static_cast<double>(k.poll_cpu_ns) : 0,
      wall_s > 0 ? static_cast<double>(replies) / wall_s : 0, refusals.c_str(),
      static_cast<unsigned long long>(malformed),
      static_cast<unsigned long long>(
          d.worker_stats(0).drops[static_cast<size_t>(dp::Drop::kTxFull)].get()),
      bench::fs_name(dir), o.journal ? "batch" : "none (drained, not written)", o.journal_ring,
      static_cast<unsigned long long>(journal->events() - events0),
      static_cast<unsigned long long>(js.records_written),
      static_cast<unsigned long long>(js.batches), static_cast<unsigned long long>(js.fsyncs),
      js.fsyncs ? static_cast<double>(js.fsync_ns_sum) / static_cast<double>(js.fsyncs) / 1e3 : 0,
      static_cast<double>(js.max_fsync_ns) / 1e3, static_cast<unsigned long long>(js.compactions),
      static_cast<unsigned long long>(e.stats.journal_full.get()),
      static_cast<unsigned long long>(journal->append_failures()), hz);
  std::fflush(stdout);
  const bool ok = k.nak == 0 && k.other == 0 && refusals.empty() && malformed == 0 &&
                  k.offer == k.discover && k.ack == k.request;
  journal.reset();
  d.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ok) std::fprintf(stderr, "%s: unexpected replies or refusals (see JSON)\n", mode_name(mode));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<Mode> modes{Mode::kRelayedDora, Mode::kLocalDora, Mode::kLocalRenew,
                          Mode::kRelayedDr};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--clients")
      o.clients = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--round")
      o.round = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--burst")
      o.burst = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--dir")
      o.dir_base = v, ++i;
    else if (a == "--strict")
      o.strict = true;
    else if (a == "--journal")
      o.journal = std::string(v) != "none", ++i;
    else if (a == "--queue")
      o.journal_ring = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--mode") {
      const std::string m = v;
      ++i;
      modes = {m == "relayed_dora" ? Mode::kRelayedDora
               : m == "local_dora" ? Mode::kLocalDora
               : m == "relayed_dr" ? Mode::kRelayedDr
                                   : Mode::kLocalRenew};
    } else {
      std::fprintf(stderr,
                   "usage: %s [--clients N] [--round N] [--burst B] [--dir BASE] [--strict] "
                   "[--journal batch|none] [--queue N] "
                   "[--mode relayed_dora|local_dora|local_renew|relayed_dr]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.round == 0 || o.round > 2048 || o.round > kSmall.size()) {
    std::fprintf(stderr, "--round must be 1..2048\n");
    return 2;
  }
  if (!tandem_test::init_eal(argv[0])) return 1;
  rte_mempool* pool =
      rte_pktmbuf_pool_create("dheb_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool == nullptr) return std::fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno)), 1;
  int rc = 0;
  for (Mode m : modes) rc |= run_mode(m, o, pool);
  rte_eal_cleanup();
  return rc;
}
