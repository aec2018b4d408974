// Benchmark: the load balancer through the worker loop tandemd runs — Dataplane::poll_once() on
// two net_ring ports (front, back), one worker: RX burst, classification (IPv4 header checksum,
// kForward), service lookup, the worker's connection table, the TCP state machine, NAT rewrite
// with incremental checksums or DR's MAC rewrite, next hop from the routing table and the
// neighbour cache, per-service and per-real-server counters, buffered TX. Set up as tandemd does
// it: a parsed configuration, ctl::make_fib, config_services + make_lb_table, conn_params,
// make_snapshot with the VIP held, enable_forward, the neighbour cache filled.
//
// Modes (one process, side by side, so their ratios hold on a noisy machine):
//   nat_established     64-byte TCP ACKs (60 bytes + FCS) of N established NAT flows, in a random
//                       order (every packet's connection and index buckets are cold, as with
//                       many clients), client -> VIP:80 -> real server
//   nat_established_1k  the same over 1024 of those flows only (table hot in cache): the price of
//                       the cache misses is the difference
//   nat_reply           the real servers' ACKs of the same N flows, SNAT back to the clients
//   dr_established      client ACKs of N established DR flows (MAC rewrite only)
//   route_transit       plain routing (TTL, checksum, next hop) of client -> host traffic: the
//                       floor under the load balancer
//   new_conn            SYNs of distinct new clients into an empty table (NAT, rr): scheduling,
//                       connection insert (both keys), rewrite, out
//   syn_flood_evicting  the same once the table's embryonic share is full: every SYN evicts the
//                       oldest half-open connection first (the SYN-flood defence)
// The N established flows are opened before their mode, through the same worker (SYN, then ACK,
// in rounds, so the embryonic share never fills). Frames are built in rounds of --round packets
// and enqueued on the RX ring; the worker is polled until the ring is empty; only poll_once() is
// timed, building frames and draining TX are not. Rates: packets per second of TSC time in
// poll_once (wall clock, preemption included), per second of the polling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID: what a dedicated core would do), and the median round's.
//
// usage: lb_engine_bench [--flows N] [--packets N] [--new-conns N] [--burst B] [--round R]
//                        [--max-seconds S] [--modes nat_established,new_conn,...]
//   --max-seconds bounds each timed mode (default 8); the whole run stays under a minute with
//   the defaults (1M flows, 10M packets per forwarding mode, 400k new connections per SYN mode).
//   --modes runs only those (and the set-up they need), e.g. under perf record.

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "../tests/packet/eal_env.h"
#include "config/model.h"
#include "control/lb_translate.h"
#include "control/translate.h"
#include "dataplane/dataplane.h"
#include "dataplane/proto.h"
#include "dataplane/route.h"

namespace {

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr uint32_t kFront = 0, kBack = 1;
const dp::Mac kFrontMac{0x02, 0, 0, 0, 0x00, 0x02};
const dp::Mac kBackMac{0x02, 0, 0, 0, 0x01, 0x02};
const dp::Mac kRouterMac{0x02, 0, 0, 0, 0x00, 0x01};
const dp::Mac kRsMac{0x02, 0, 0, 0, 0x10, 0x00};  // last byte: the host part of the address
constexpr uint32_t kVip = ip4(192, 0, 2, 100);
constexpr uint32_t kRouter = ip4(192, 0, 2, 1);
constexpr uint32_t kNatRs[2] = {ip4(198, 51, 100, 11), ip4(198, 51, 100, 12)};
constexpr uint32_t kDrRs[2] = {ip4(198, 51, 100, 21), ip4(198, 51, 100, 22)};
constexpr uint32_t kHost = ip4(198, 51, 100, 50);
constexpr uint32_t kClientBase = ip4(10, 0, 0, 1);  // clients behind the front router

constexpr const char* kConf = R"(ports = (
  { name = "front"; device = "net_ring0"; addresses = [ "192.0.2.2/24" ]; },
  { name = "back"; device = "net_ring1"; addresses = [ "198.51.100.2/24" ]; }
);
dataplane = { worker_cores = [ 1 ]; idle = "busy"; };
vrrp = {
  instances = (
    { name = "VI_FRONT"; port = "front"; vrid = 51; priority = 150;
      virtual_ips = [ "192.0.2.100/24" ]; }
  );
};
routing = {
  forward = true;
  routes = ( { to = "10.0.0.0/8"; via = "192.0.2.1"; } );
};
lb = {
  services = (
    { protocol = "tcp"; vip = "192.0.2.100"; port = 80; scheduler = "rr"; mode = "nat";
      reals = ( { address = "198.51.100.11"; }, { address = "198.51.100.12"; } ); },
    { protocol = "tcp"; vip = "192.0.2.100"; port = 8080; scheduler = "rr"; mode = "dr";
      reals = ( { address = "198.51.100.21"; }, { address = "198.51.100.22"; } ); }
  );
};
)";

// --- frames ------------------------------------------------------------------------------------

// Flow i: client 10.0.0.1 + i/4, port 32768 + i%4 (four connections per client).
uint32_t client_ip(uint32_t i) {
  return kClientBase + i / 4;
}
uint16_t client_port(uint32_t i) {
  return static_cast<uint16_t>(32768 + i % 4);
}

// A 60-byte Ethernet/IPv4/TCP frame (54 bytes of headers, zero padding) with right checksums.
struct Template {
  uint8_t f[dp::kMinFrameLen] = {};
  uint32_t src = 0;
  uint16_t sport = 0;
};

Template tcp_template(const dp::Mac& dst_mac, const dp::Mac& src_mac, uint32_t src, uint32_t dst,
                      uint16_t sport, uint16_t dport, uint8_t flags) {
  Template t;
  t.src = src;
  t.sport = sport;
  uint8_t* f = t.f;
  dp::write_eth(f, dst_mac, src_mac, dp::kEtherTypeIpv4);
  uint8_t* ip = f + dp::kEthHdrLen;
  ip[0] = 0x45;
  dp::store_be16(ip + 2, 40);
  dp::store_be16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = dp::kIpProtoTcp;
  dp::store_be32(ip + 12, src);
  dp::store_be32(ip + 16, dst);
  dp::store_be16(ip + 10, dp::csum(ip, 20));
  uint8_t* tcp = ip + 20;
  dp::store_be16(tcp, sport);
  dp::store_be16(tcp + 2, dport);
  dp::store_be32(tcp + 4, 1000);
  dp::store_be32(tcp + 8, flags & 0x10 ? 7001 : 0);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  dp::store_be16(tcp + 14, 502);
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = dp::kIpProtoTcp;
  dp::store_be16(pseudo + 10, 20);
  dp::store_be16(tcp + 16, dp::csum(tcp, 20, dp::csum_partial(pseudo, 12)));
  return t;
}

// Copies `t` into `m` with the source (client side) or destination (reply side) address and
// port replaced; checksums updated incrementally. Untimed.
void fill(rte_mbuf* m, const Template& t, uint32_t addr, uint16_t port, bool replace_src) {
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  std::memcpy(f, t.f, sizeof t.f);
  m->data_len = sizeof t.f;
  m->pkt_len = sizeof t.f;
  uint8_t* ip = f + dp::kEthHdrLen;
  uint8_t* tcp = ip + 20;
  const uint32_t a_off = replace_src ? 12 : 16;
  const uint32_t p_off = replace_src ? 0 : 2;
  const uint32_t old_a = dp::load_be32(ip + a_off);
  const uint16_t old_p = dp::load_be16(tcp + p_off);
  dp::store_be32(ip + a_off, addr);
  dp::store_be16(tcp + p_off, port);
  dp::store_be16(ip + 10, dp::csum_replace4(dp::load_be16(ip + 10), old_a, addr));
  const uint16_t c = dp::csum_replace4(dp::load_be16(tcp + 16), old_a, addr);
  dp::store_be16(tcp + 16, dp::csum_replace2(c, old_p, port));
}

// --- clocks ------------------------------------------------------------------------------------

uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o;
}

// --- one data plane ------------------------------------------------------------------------------

struct Options {
  uint32_t flows = 1'000'000;
  uint64_t packets = 10'000'000;
  uint32_t new_conns = 400'000;
  uint32_t burst = 32;
  uint32_t round = 1024;
  double max_seconds = 8;
  std::vector<std::string> modes;  // empty: all
  bool want(const char* m) const {
    return modes.empty() || std::find(modes.begin(), modes.end(), m) != modes.end();
  }
};

struct Measure {
  uint64_t packets = 0, cycles = 0, cpu_ns = 0;
  uint64_t out = 0;  // frames that left on the expected port
  std::vector<double> round_cpp;
  double seconds = 0;  // wall time of the whole mode, building included
};

class Plane {
 public:
  explicit Plane(rte_mempool* pool) : pool_(pool) {}

  // The two ring ports, the data plane and its forwarding state, as tandemd builds them.
  // "" or what failed.
  std::string init(const Options& o, uint32_t capacity) {
    static int seq = 0;
    const std::string base = "lbeb" + std::to_string(++seq);
    std::string devs[2];
    for (uint32_t i = 0; i < 2; ++i) {
      const std::string name = base + (i == kFront ? "f" : "b");
      rx_[i] = rte_ring_create((name + "_rx").c_str(), 4096, SOCKET_ID_ANY,
                               RING_F_SP_ENQ | RING_F_SC_DEQ);
      for (uint32_t q = 0; q < 2; ++q)
        tx_[i][q] = rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), 4096, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!rx_[i] || !tx_[i][0] || !tx_[i][1]) return "rings: " + errno_text();
      const int id = rte_eth_from_rings(name.c_str(), &rx_[i], 1, tx_[i], 2, SOCKET_ID_ANY);
      char dev[RTE_ETH_NAME_MAX_LEN];
      if (id < 0 || rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), dev) != 0)
        return "ring port: " + errno_text();
      devs[i] = dev;
    }
    auto loaded = cfg::load_string(kConf, "lb_engine_bench.conf");
    if (!loaded.config) return "config: " + loaded.errors[0].str();
    cfg_ = *loaded.config;
    cfg_.lb.connections = capacity;

    dp::Params p;
    p.ports.push_back({"front", devs[0], 1500, 1024, 1024, ""});
    p.ports.push_back({"back", devs[1], 1500, 1024, 1024, ""});
    p.worker_lcores = {1};
    p.mbufs = 1023;
    if (std::string err = dp_.init(p); !err.empty()) return "init: " + err;
    dp::ForwardParams fp;
    fp.engines.push_back(std::make_unique<dp::ForwardEngine>(ctl::conn_params(cfg_), 0, 1,
                                                             cfg_.routing.icmp_errors_per_s));
    if (std::string err = dp_.enable_forward(std::move(fp)); !err.empty()) return "forward: " + err;
    dp::NeighborCache& nc = *dp_.neighbor_cache();
    nc.set(kFront, kRouter, kRouterMac);
    for (uint32_t rs : {kNatRs[0], kNatRs[1], kDrRs[0], kDrRs[1], kHost}) {
      dp::Mac m = kRsMac;
      m[5] = static_cast<uint8_t>(rs);
      nc.set(kBack, rs, m);
    }
    auto f = std::make_shared<dp::ForwardConfig>();
    f->routing = cfg_.routing.forward;
    if (std::string err = ctl::make_fib(cfg_, f->fib); !err.empty()) return "fib: " + err;
    ctl::LbIds ids;
    f->lb = ctl::make_lb_table(ctl::config_services(cfg_), ids, {}, cfg_.lb.maglev_table_size);
    const std::vector<ctl::ExtraAddress> vips = {{kFront, {kVip, 24}, std::nullopt}};
    auto s =
        std::make_unique<dp::Snapshot>(ctl::make_snapshot(cfg_, {kFrontMac, kBackMac}, 1, vips));
    s->burst = o.burst;
    s->fwd = f;
    if (std::string err = dp_.start(std::move(s), false); !err.empty()) return "start: " + err;
    dp_.attach_reader(0);
    return "";
  }
  ~Plane() {
    dp_.stop();
    for (uint32_t i = 0; i < 2; ++i) {
      drain_free(rx_[i]);
      for (rte_ring* r : tx_[i]) drain_free(r);
    }
  }
  Plane(const Plane&) = delete;
  Plane& operator=(const Plane&) = delete;

  dp::ForwardEngine& engine() { return *dp_.forward_engine(0); }
  const dp::WorkerStats& stats() { return dp_.worker_stats(0); }

  // One round: `n` frames made by make(k, mbuf) for k in [0, n) into the RX ring of `in`, the
  // worker polled until it is empty (timed into *ms when not null), then what left on `out`
  // counted and everything sent freed. False when mbufs run out.
  template <class Make>
  bool round(uint32_t in, uint32_t out, uint32_t n, Make&& make, Measure* ms) {
    rte_mbuf* mb[4096];
    if (n > 4096 || rte_pktmbuf_alloc_bulk(pool_, mb, n) != 0) return false;
    for (uint32_t k = 0; k < n; ++k) make(k, mb[k]);
    if (rte_ring_enqueue_bulk(rx_[in], reinterpret_cast<void**>(mb), n, nullptr) != n) {
      rte_pktmbuf_free_bulk(mb, n);
      return false;
    }
    dp::Worker& w = dp_.worker(0);
    const uint64_t c0 = ms ? thread_cpu_ns() : 0;
    const uint64_t t0 = rte_rdtsc();
    uint64_t got = 0;
    while (rte_ring_count(rx_[in]) != 0) got += dp_.poll_once(w);
    const uint64_t cycles = rte_rdtsc() - t0;
    if (ms != nullptr) {
      ms->cpu_ns += thread_cpu_ns() - c0;
      ms->cycles += cycles;
      ms->packets += got;
      if (got != 0) ms->round_cpp.push_back(static_cast<double>(cycles) / static_cast<double>(got));
    }
    for (uint32_t port = 0; port < 2; ++port) {
      void* objs[512];
      for (unsigned k; (k = rte_ring_dequeue_burst(tx_[port][0], objs, 512, nullptr)) != 0;) {
        if (ms != nullptr && port == out) ms->out += k;
        rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), k);
      }
    }
    return true;
  }

 private:
  static std::string errno_text() { return rte_strerror(rte_errno); }
  static void drain_free(rte_ring* r) {
    if (r == nullptr) return;
    void* obj;
    while (rte_ring_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    rte_ring_free(r);
  }

  rte_mempool* pool_;
  rte_ring* rx_[2] = {};
  rte_ring* tx_[2][2] = {};
  cfg::Config cfg_;
  dp::Dataplane dp_;
};

// --- results -----------------------------------------------------------------------------------

struct Result {
  std::string mode;
  std::string what;  // packets or connections
  uint64_t flows = 0;
  Measure m;
  uint64_t conns_before = 0, conns_after = 0;
  uint64_t evicted = 0;
  std::string drops;  // {"reason": n, ...} during the mode
  bool ok = false;
};

std::string drops_since(const dp::WorkerStats& st, const std::vector<uint64_t>& before) {
  std::string s;
  for (size_t r = 0; r < dp::kDropNames.size(); ++r) {
    const uint64_t d = st.drops[r].get() - before[r];
    if (d == 0) continue;
    s += std::string(s.empty() ? "" : ", ") + "\"" + std::string(dp::kDropNames[r]) +
         "\": " + std::to_string(d);
  }
  return "{" + s + "}";
}

std::vector<uint64_t> drop_snapshot(const dp::WorkerStats& st) {
  std::vector<uint64_t> v;
  for (const auto& d : st.drops) v.push_back(d.get());
  return v;
}

std::string result_json(const Result& r, double hz) {
  const Measure& m = r.m;
  const double cpp = m.packets ? static_cast<double>(m.cycles) / static_cast<double>(m.packets) : 0;
  const double per_s = cpp > 0 ? hz / cpp : 0;
  const double per_cpu_s =
      m.cpu_ns ? static_cast<double>(m.packets) * 1e9 / static_cast<double>(m.cpu_ns) : 0;
  const double med = median(m.round_cpp);
  char buf[1024];
  if (r.what == "connections") {
    const uint64_t created = r.conns_after - r.conns_before + r.evicted;
    std::snprintf(
        buf, sizeof buf,
        "\"%s\": {\"syns\": %llu, \"connections_created\": %llu, \"evicted\": %llu, "
        "\"forwarded\": %llu, \"cycles_per_conn\": %.1f, \"conns_per_s\": %.0f, "
        "\"conns_per_cpu_s\": %.0f, \"round_median_conns_per_s\": %.0f, "
        "\"table_size_after\": %llu, \"drops\": %s, \"ok\": %s}",
        r.mode.c_str(), static_cast<unsigned long long>(m.packets),
        static_cast<unsigned long long>(created), static_cast<unsigned long long>(r.evicted),
        static_cast<unsigned long long>(m.out), cpp, per_s, per_cpu_s, med > 0 ? hz / med : 0,
        static_cast<unsigned long long>(r.conns_after), r.drops.c_str(), r.ok ? "true" : "false");
  } else {
    std::snprintf(buf, sizeof buf,
                  "\"%s\": {\"flows\": %llu, \"packets\": %llu, \"forwarded\": %llu, "
                  "\"cycles_per_packet\": %.1f, \"mpps\": %.2f, \"mpps_cpu\": %.2f, "
                  "\"round_median_mpps\": %.2f, \"drops\": %s, \"ok\": %s}",
                  r.mode.c_str(), static_cast<unsigned long long>(r.flows),
                  static_cast<unsigned long long>(m.packets),
                  static_cast<unsigned long long>(m.out), cpp, per_s / 1e6, per_cpu_s / 1e6,
                  med > 0 ? hz / med / 1e6 : 0, r.drops.c_str(), r.ok ? "true" : "false");
  }
  return buf;
}

double rate(const Result& r, double hz) {
  return r.m.cycles ? static_cast<double>(r.m.packets) * hz / static_cast<double>(r.m.cycles) : 0;
}

// --- the modes ---------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Opens flows [0, n) to VIP:vport through the worker: SYN then ACK, a round of each at a time.
// Returns the setup's wall seconds, or -1 on failure.
double open_flows(Plane& pl, uint32_t n, uint16_t vport, uint32_t round_n) {
  const auto t0 = Clock::now();
  const Template syn =
      tcp_template(kFrontMac, kRouterMac, client_ip(0), kVip, client_port(0), vport, 0x02);
  const Template ack =
      tcp_template(kFrontMac, kRouterMac, client_ip(0), kVip, client_port(0), vport, 0x10);
  for (uint32_t a = 0; a < n; a += round_n) {
    const uint32_t k = std::min(round_n, n - a);
    for (const Template* t : {&syn, &ack}) {
      auto make = [&](uint32_t j, rte_mbuf* m) {
        fill(m, *t, client_ip(a + j), client_port(a + j), true);
      };
      if (!pl.round(kFront, kBack, k, make, nullptr)) return -1;
    }
  }
  return since(t0);
}

// Sends `o.packets` frames over the flows listed in `order` (cycled), as make(flow, mbuf) builds
// them, from `in`; counts what leaves on `out`.
template <class Make>
Result forward_mode(Plane& pl, const char* mode, const std::vector<uint32_t>& order, uint32_t in,
                    uint32_t out, const Options& o, Make&& make) {
  Result r;
  r.mode = mode;
  r.what = "packets";
  r.flows = order.size();
  const auto drops0 = drop_snapshot(pl.stats());
  const auto t0 = Clock::now();
  size_t pos = 0;
  while (r.m.packets < o.packets && since(t0) < o.max_seconds) {
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(o.round, o.packets - r.m.packets));
    auto mk = [&](uint32_t, rte_mbuf* m) {
      make(order[pos], m);
      if (++pos == order.size()) pos = 0;
    };
    if (!pl.round(in, out, n, mk, &r.m)) break;
  }
  r.m.seconds = since(t0);
  r.drops = drops_since(pl.stats(), drops0);
  r.ok = r.m.packets != 0 && r.m.out == r.m.packets && r.drops == "{}";
  return r;
}

// SYNs of clients first, first + 1, ... (one connection each) to VIP:80 until `count` are sent.
Result syn_mode(Plane& pl, const char* mode, uint32_t first, uint32_t count, const Options& o) {
  Result r;
  r.mode = mode;
  r.what = "connections";
  const Template syn = tcp_template(kFrontMac, kRouterMac, kClientBase, kVip, 40000, 80, 0x02);
  const auto drops0 = drop_snapshot(pl.stats());
  r.conns_before = pl.engine().conns.size();
  const uint64_t evicted0 = pl.engine().conns.stats().evicted_embryonic;
  const auto t0 = Clock::now();
  uint32_t next = first;
  while (r.m.packets < count && since(t0) < o.max_seconds) {
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(o.round, count - r.m.packets));
    auto mk = [&](uint32_t, rte_mbuf* m) {
      const uint32_t c = next++;
      fill(m, syn, kClientBase + c, static_cast<uint16_t>(1024 + c % 60000), true);
    };
    if (!pl.round(kFront, kBack, n, mk, &r.m)) break;
  }
  r.m.seconds = since(t0);
  r.conns_after = pl.engine().conns.size();
  r.evicted = pl.engine().conns.stats().evicted_embryonic - evicted0;
  r.drops = drops_since(pl.stats(), drops0);
  r.ok = r.m.packets != 0 && r.m.out == r.m.packets && r.drops == "{}" &&
         r.conns_after - r.conns_before + r.evicted == r.m.packets;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "0";
    if (a == "--flows")
      o.flows = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--packets")
      o.packets = std::strtoull(v, nullptr, 10), ++i;
    else if (a == "--new-conns")
      o.new_conns = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--burst")
      o.burst = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--round")
      o.round = static_cast<uint32_t>(std::strtoul(v, nullptr, 10)), ++i;
    else if (a == "--max-seconds")
      o.max_seconds = std::strtod(v, nullptr), ++i;
    else if (a == "--modes") {
      for (std::string m = v; !m.empty();) {
        const size_t comma = m.find(',');
        o.modes.push_back(m.substr(0, comma));
        m = comma == std::string::npos ? "" : m.substr(comma + 1);
      }
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--flows N] [--packets N] [--new-conns N] [--burst B] [--round R] "
                   "[--max-seconds S] [--modes a,b,...]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.round == 0 || o.round > 2048 || o.flows < 1024 || o.flows > (1u << 24) || o.burst == 0 ||
      o.burst > dp::kMaxBurst) {
    std::fprintf(stderr, "--round 1..2048, --flows 1024..16777216, --burst 1..%u\n", dp::kMaxBurst);
    return 2;
  }
  // Room for N established flows: the table holds its connections at <= 95% of its slots.
  // tandemd's default table (lb.connections = 2^20 per worker), or the next power of two that
  // holds every flow.
  uint32_t capacity = 1u << 20;
  while (capacity < o.flows) capacity <<= 1;
  const std::string load_start = read_first_line("/proc/loadavg");
  const auto wall0 = Clock::now();

  if (!tandem_test::init_eal(argv[0])) return 1;
  rte_mempool* pool =
      rte_pktmbuf_pool_create("lbeb_pool", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool == nullptr) return std::fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno)), 1;
  const double hz = static_cast<double>(rte_get_tsc_hz());

  std::vector<Result> results;
  std::string setup;
  std::vector<uint32_t> order(o.flows);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  // 1024 flows of the same table, in a random order of their own.
  std::vector<uint32_t> hot(order.begin(), order.begin() + 1024);
  char buf[256];

  if (o.want("nat_established") || o.want("nat_established_1k") || o.want("nat_reply") ||
      o.want("route_transit")) {
    // NAT: N flows opened, then their client ACKs, a hot subset, their replies; routing.
    Plane pl(pool);
    if (std::string err = pl.init(o, capacity); !err.empty())
      return std::fprintf(stderr, "%s\n", err.c_str()), 1;
    const double s = open_flows(pl, o.flows, 80, o.round);
    if (s < 0 || pl.engine().conns.size() != o.flows)
      return std::fprintf(stderr, "NAT setup: %u of %u flows\n", pl.engine().conns.size(), o.flows),
             1;
    std::snprintf(buf, sizeof buf, "%s\"nat_open_s\": %.2f", setup.empty() ? "" : ", ", s);
    setup += buf;
    const Template ack =
        tcp_template(kFrontMac, kRouterMac, client_ip(0), kVip, client_port(0), 80, 0x10);
    auto client_ack = [&](uint32_t f, rte_mbuf* m) {
      fill(m, ack, client_ip(f), client_port(f), true);
    };
    if (o.want("nat_established"))
      results.push_back(forward_mode(pl, "nat_established", order, kFront, kBack, o, client_ack));
    if (o.want("nat_established_1k"))
      results.push_back(forward_mode(pl, "nat_established_1k", hot, kFront, kBack, o, client_ack));
    // Replies: flow f went to real server f % 2 (rr, flows opened in index order).
    Template rs_ack[2];
    for (int k = 0; k < 2; ++k) {
      dp::Mac m = kRsMac;
      m[5] = static_cast<uint8_t>(kNatRs[k]);
      rs_ack[k] = tcp_template(kBackMac, m, kNatRs[k], client_ip(0), 80, client_port(0), 0x10);
    }
    auto reply_ack = [&](uint32_t f, rte_mbuf* m) {
      fill(m, rs_ack[f % 2], client_ip(f), client_port(f), false);
    };
    if (o.want("nat_reply")) {
      results.push_back(forward_mode(pl, "nat_reply", order, kBack, kFront, o, reply_ack));
      const uint64_t lb_out = pl.engine().stats.lb_out.get();
      if (lb_out != results.back().m.packets) results.back().ok = false;
    }
    const Template transit =
        tcp_template(kFrontMac, kRouterMac, client_ip(0), kHost, client_port(0), 80, 0x10);
    auto routed = [&](uint32_t f, rte_mbuf* m) {
      fill(m, transit, client_ip(f), client_port(f), true);
    };
    if (o.want("route_transit"))
      results.push_back(forward_mode(pl, "route_transit", order, kFront, kBack, o, routed));
  }
  if (o.want("dr_established")) {  // DR: N flows opened, then their client ACKs.
    Plane pl(pool);
    if (std::string err = pl.init(o, capacity); !err.empty())
      return std::fprintf(stderr, "%s\n", err.c_str()), 1;
    const double s = open_flows(pl, o.flows, 8080, o.round);
    if (s < 0 || pl.engine().conns.size() != o.flows)
      return std::fprintf(stderr, "DR setup failed\n"), 1;
    std::snprintf(buf, sizeof buf, "%s\"dr_open_s\": %.2f", setup.empty() ? "" : ", ", s);
    setup += buf;
    const Template ack =
        tcp_template(kFrontMac, kRouterMac, client_ip(0), kVip, client_port(0), 8080, 0x10);
    results.push_back(forward_mode(
        pl, "dr_established", order, kFront, kBack, o,
        [&](uint32_t f, rte_mbuf* m) { fill(m, ack, client_ip(f), client_port(f), true); }));
  }
  if (o.want("new_conn") || o.want("syn_flood_evicting")) {
    // New connections into an empty table, then past its embryonic share.
    Plane pl(pool);
    if (std::string err = pl.init(o, capacity); !err.empty())
      return std::fprintf(stderr, "%s\n", err.c_str()), 1;
    const uint32_t limit = pl.engine().conns.embryonic_limit();
    const uint32_t fresh = std::min(o.new_conns, limit);
    const Result first = syn_mode(pl, "new_conn", 0, fresh, o);
    if (o.want("new_conn")) results.push_back(first);
    if (o.want("syn_flood_evicting")) {
      // Fill the embryonic share (untimed), then every SYN has to evict.
      uint32_t next = static_cast<uint32_t>(first.m.packets);
      const Result fill_up = syn_mode(pl, "fill", next, limit - pl.engine().conns.embryonic(), o);
      next += static_cast<uint32_t>(fill_up.m.packets);
      results.push_back(syn_mode(pl, "syn_flood_evicting", next, o.new_conns, o));
      if (results.back().evicted != results.back().m.packets) results.back().ok = false;
    }
  }

  const std::string load_end = read_first_line("/proc/loadavg");
  auto find = [&](const char* mode) -> const Result* {
    for (const Result& r : results)
      if (r.mode == mode) return &r;
    return nullptr;
  };
  std::string body;
  for (const Result& r : results)
    body += std::string(body.empty() ? "" : ", ") + result_json(r, hz);
  auto ratio = [&](const char* a, const char* b) {
    const Result* x = find(a);
    const Result* y = find(b);
    return x && y && rate(*y, hz) > 0 ? rate(*x, hz) / rate(*y, hz) : 0.0;
  };
  const Result* nat = find("nat_established");
  const Result* dr = find("dr_established");
  const Result* nc = find("new_conn");
  std::printf(
      "{\"bench\": \"lb_engine\", \"cpu\": \"%s\", \"nproc\": %ld, \"tsc_hz\": %.0f, "
      "\"thp\": \"%s\", \"loadavg_start\": \"%s\", \"loadavg_end\": \"%s\", "
      "\"params\": {\"flows\": %u, \"capacity\": %u, \"packets\": %llu, \"new_conns\": %u, "
      "\"burst\": %u, \"round\": %u, \"max_seconds\": %.1f}, "
      "\"setup\": {%s}, \"results\": {%s}, "
      "\"ratios\": {\"nat_1k_over_nat\": %.2f, \"dr_over_nat\": %.2f, "
      "\"nat_reply_over_nat\": %.2f, \"route_over_nat\": %.2f, \"flood_over_new_conn\": %.2f}, "
      "\"targets\": {\"forward_mpps\": 10, \"nat_vs_target\": %.2f, \"dr_vs_target\": %.2f, "
      "\"new_conns_per_s\": 2000000, \"new_conn_vs_target\": %.2f}, "
      "\"elapsed_s\": %.1f}\n",
      json_escape(cpu_model()).c_str(), sysconf(_SC_NPROCESSORS_ONLN), hz,
      json_escape(read_first_line("/sys/kernel/mm/transparent_hugepage/enabled")).c_str(),
      load_start.c_str(), load_end.c_str(), o.flows, capacity,
      static_cast<unsigned long long>(o.packets), o.new_conns, o.burst, o.round, o.max_seconds,
      setup.c_str(), body.c_str(), ratio("nat_established_1k", "nat_established"),
      ratio("dr_established", "nat_established"), ratio("nat_reply", "nat_established"),
      ratio("route_transit", "nat_established"), ratio("syn_flood_evicting", "new_conn"),
      nat ? rate(*nat, hz) / 10e6 : 0, dr ? rate(*dr, hz) / 10e6 : 0, nc ? rate(*nc, hz) / 2e6 : 0,
      since(wall0));
  std::fflush(stdout);
  bool ok = true;
  for (const Result& r : results) {
    if (!r.ok)
      std::fprintf(stderr, "%s: not every packet went through (see JSON)\n", r.mode.c_str());
    ok = ok && r.ok;
  }
  rte_eal_cleanup();
  return ok ? 0 : 1;
}
