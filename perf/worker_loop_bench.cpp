// Benchmark: the worker loop's own cost — RX burst → classify → handle → buffered TX — through the
// same Dataplane::poll_once() tandemd runs, on in-memory ports. Prints one JSON object per mode.
//
// Modes (all in one run, side by side, so ratios are meaningful on a noisy machine):
//   pmd_ring_baseline  rte_eth_rx_burst + rte_eth_tx_burst on the ring port, no tandem code:
//                      the ceiling of the PMD itself.
//   null_rx_drop       net_null RX (64-byte frames), classified and dropped (unknown EtherType).
//   arp_reply          ARP requests for our address, answered (rewrite in place + TX).
//   icmp_echo          ICMP echo requests (64-byte payload), answered (checksums + TX).
// Only poll_once() is timed; refilling the RX ring with fresh requests is not.
//
// usage: worker_loop_bench [--packets N] [--burst B]

#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../tests/packet/eal_env.h"
#include "dataplane/dataplane.h"

namespace {

const dp::Mac kOurMac{0x02, 0, 0, 0, 0, 0x02};
const dp::Mac kPeerMac{0x02, 0, 0, 0, 0, 0x0a};
constexpr uint32_t kOurIp = (192u << 24) | (2u << 8) | 2u;
constexpr uint32_t kPeerIp = (192u << 24) | (2u << 8) | 10u;

std::vector<uint8_t> arp_request() {
  std::vector<uint8_t> f(dp::kMinFrameLen);
  dp::write_arp_frame(f.data(), dp::arp::kOpRequest, dp::kBroadcastMac, kPeerMac, kPeerIp,
                      dp::Mac{}, kOurIp);
  return f;
}

std::vector<uint8_t> icmp_echo() {
  std::vector<uint8_t> f(dp::kEthHdrLen + 20 + 8 + 64);
  dp::write_eth(f.data(), kOurMac, kPeerMac, dp::kEtherTypeIpv4);
  uint8_t* ip = f.data() + dp::kEthHdrLen;
  ip[0] = 0x45;
  dp::store_be16(ip + 2, static_cast<uint16_t>(20 + 8 + 64));
  ip[8] = 64;
  ip[9] = dp::kIpProtoIcmp;
  dp::store_be32(ip + 12, kPeerIp);
  dp::store_be32(ip + 16, kOurIp);
  dp::store_be16(ip + 10, dp::csum(ip, 20));
  uint8_t* ic = ip + 20;
  ic[0] = dp::icmp::kEchoRequest;
  dp::store_be16(ic + 4, 0x1234);
  for (int i = 0; i < 64; ++i) ic[8 + i] = static_cast<uint8_t>(i);
  dp::store_be16(ic + 2, dp::csum(ic, 8 + 64));
  return f;
}

struct Result {
  uint64_t packets = 0;
  uint64_t cycles = 0;
};

void print(const char* mode, const Result& r, double baseline_cpp, uint32_t burst) {
  double hz = static_cast<double>(rte_get_tsc_hz());
  double cpp = r.packets ? static_cast<double>(r.cycles) / static_cast<double>(r.packets) : 0;
  std::printf(
      "{\"bench\": \"worker_loop\", \"mode\": \"%s\", \"burst\": %u, \"packets\": %llu, "
      "\"cycles_per_packet\": %.1f, \"mpps_per_core\": %.2f, \"vs_pmd_baseline\": %.2f, "
      "\"tsc_hz\": %.0f}\n",
      mode, burst, static_cast<unsigned long long>(r.packets), cpp, cpp > 0 ? hz / cpp / 1e6 : 0,
      baseline_cpp > 0 && cpp > 0 ? baseline_cpp / cpp : 0, hz);
}

// Refills `rx` from `tx` (or the pool) with copies of `tmpl`, up to `n` packets.
void refill(rte_ring* rx, rte_ring* tx, rte_mempool* pool, const std::vector<uint8_t>& tmpl,
            unsigned n) {
  void* objs[64];
  unsigned have = rte_ring_count(rx);
  while (have < n) {
    unsigned got = rte_ring_dequeue_burst(tx, objs, 64, nullptr);
    if (got == 0) {
      got = rte_pktmbuf_alloc_bulk(pool, reinterpret_cast<rte_mbuf**>(objs), 64) == 0 ? 64 : 0;
      if (got == 0) break;
    }
    for (unsigned i = 0; i < got; ++i) {
      auto* m = static_cast<rte_mbuf*>(objs[i]);
      rte_pktmbuf_reset(m);
      std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(tmpl.size())), tmpl.data(),
                  tmpl.size());
    }
    have += rte_ring_enqueue_burst(rx, objs, got, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t target = 20'000'000;
  uint32_t burst = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--packets")) target = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--burst")) burst = static_cast<uint32_t>(std::atoi(argv[i + 1]));
  }
  if (!tandem_test::init_eal(argv[0])) return 1;

  auto ring = tandem_test::make_ring_port("bring", 1, 2);
  rte_mempool* pool =
      rte_pktmbuf_pool_create("bpool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  int null_id = rte_vdev_init("net_null0", "size=64") == 0 ? 0 : -1;
  uint16_t null_port = 0;
  if (null_id == 0) rte_eth_dev_get_port_by_name("net_null0", &null_port);
  if (!pool || !ring.rx || null_id != 0) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }

  dp::Dataplane d;
  dp::Params p;
  p.ports.push_back({"ring", ring.name, 1500, 1024, 1024});
  p.ports.push_back({"null", "net_null0", 1500, 1024, 1024});
  p.worker_lcores = {1};
  p.mbufs = 8191;
  if (std::string err = d.init(p); !err.empty()) {
    std::fprintf(stderr, "init: %s\n", err.c_str());
    return 1;
  }
  auto snap = std::make_unique<dp::Snapshot>();
  snap->n_ports = 2;
  snap->burst = burst;
  snap->idle = dp::IdleMode::kBusy;
  for (int i = 0; i < 2; ++i) {
    snap->ports[i].mac = kOurMac;
    snap->ports[i].n_addrs = 1;
    snap->ports[i].addrs[0] = kOurIp;
    snap->ports[i].prefix_len[0] = 24;
  }
  if (std::string err = d.start(std::move(snap), false); !err.empty()) {
    std::fprintf(stderr, "start: %s\n", err.c_str());
    return 1;
  }
  d.attach_reader(0);
  dp::Worker& w = d.worker(0);
  const unsigned kFill = 2048;

  // The ring port's raw ceiling: the same rx/tx bursts with no tandem code in between.
  Result base;
  {
    auto tmpl = arp_request();
    rte_mbuf* pk[256];
    while (base.packets < target) {
      refill(ring.rx, ring.tx[0], pool, tmpl, kFill);
      uint64_t t0 = rte_rdtsc();
      uint16_t n = rte_eth_rx_burst(ring.port_id, 0, pk, static_cast<uint16_t>(burst));
      uint16_t s = rte_eth_tx_burst(ring.port_id, 0, pk, n);
      base.cycles += rte_rdtsc() - t0;
      if (s < n) rte_pktmbuf_free_bulk(pk + s, n - s);
      base.packets += n;
    }
  }
  double base_cpp = static_cast<double>(base.cycles) / static_cast<double>(base.packets);
  print("pmd_ring_baseline", base, base_cpp, burst);

  // Only the null port is polled for this mode: swap the worker's RX list temporarily.
  Result null_drop;
  {
    auto saved = w.rx[0];
    uint32_t saved_n = w.n_rx;
    w.rx[0] = {1, null_port, 0};
    w.n_rx = 1;
    while (null_drop.packets < target) {
      uint64_t t0 = rte_rdtsc();
      uint32_t n = d.poll_once(w);
      null_drop.cycles += rte_rdtsc() - t0;
      null_drop.packets += n;
    }
    w.rx[0] = saved;
    w.n_rx = saved_n;
  }
  print("null_rx_drop", null_drop, base_cpp, burst);

  // Ring RX only from here on.
  for (uint32_t r = 0; r < w.n_rx; ++r)
    if (w.rx[r].port_index != 0) w.n_rx = r;
  for (auto [name, tmpl] :
       {std::pair{"arp_reply", arp_request()}, std::pair{"icmp_echo", icmp_echo()}}) {
    Result r;
    dp::NeighborEvent ev[256];
    while (r.packets < target) {
      refill(ring.rx, ring.tx[0], pool, tmpl, kFill);
      while (d.poll_events(ev, 256) != 0) {
      }
      uint64_t t0 = rte_rdtsc();
      uint32_t n = d.poll_once(w);
      r.cycles += rte_rdtsc() - t0;
      r.packets += n;
    }
    print(name, r, base_cpp, burst);
  }
  d.stop();
  rte_eal_cleanup();
  return 0;
}
