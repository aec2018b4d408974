#pragma once
// EAL set-up shared by packet tests and benchmarks: initialises the EAL once per process with
// --no-pci, in memory (hugepages when the machine has free ones, else --no-huge --no-shconf), so
// nothing is left behind and parallel runs never collide. TANDEM_NO_HUGE=1 in the environment
// forces --no-huge: the EAL cannot map hugepages under valgrind (instruction counts with
// callgrind, docs/benchmarks.md).

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace tandem_test {

inline bool free_hugepages(unsigned need) {
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  unsigned n = 0;
  return (f >> n) && n >= need;
}

// Returns false (and prints why) if the EAL cannot start.
inline bool init_eal(const char* prog, const std::string& lcores = "0,1") {
  std::vector<std::string> args{prog, "-l", lcores, "--no-pci", "--log-level=error", "-m", "256"};
  if (free_hugepages(160) && !std::getenv("TANDEM_NO_HUGE")) {
    args.push_back("--in-memory");
  } else {
    args.insert(args.end(), {"--no-huge", "--no-shconf"});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return false;
  }
  return true;
}

// A port backed by rings the test owns: frames enqueued on `rx` are received by the port,
// frames the port sends land on tx[queue].
struct RingPort {
  uint16_t port_id = 0;
  std::string name;
  rte_ring* rx = nullptr;
  std::vector<rte_ring*> tx;
};

inline RingPort make_ring_port(const std::string& name, unsigned n_rx, unsigned n_tx) {
  RingPort p;
  p.name = name;
  std::vector<rte_ring*> rxs;
  for (unsigned q = 0; q < n_rx; ++q) {
    rxs.push_back(rte_ring_create((name + "_rx" + std::to_string(q)).c_str(), 4096, SOCKET_ID_ANY,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ));
  }
  for (unsigned q = 0; q < n_tx; ++q) {
    p.tx.push_back(rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), 4096, SOCKET_ID_ANY,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ));
  }
  p.rx = rxs[0];
  int id = rte_eth_from_rings(name.c_str(), rxs.data(), n_rx, p.tx.data(), n_tx, SOCKET_ID_ANY);
  if (id >= 0) p.port_id = static_cast<uint16_t>(id);
  char dev_name[RTE_ETH_NAME_MAX_LEN];
  if (id >= 0 && rte_eth_dev_get_name_by_port(p.port_id, dev_name) == 0) p.name = dev_name;
  return p;
}

}  // namespace tandem_test
