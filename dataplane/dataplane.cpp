#include "dataplane/dataplane.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <ctime>
#include <new>
#include <optional>
#include <type_traits>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

namespace dp {
namespace {

// Drivers whose RX and TX queues are one kernel socket each (queue pairs): every configured RX
// queue receives a share of the traffic, so the control TX queue's RX side must be polled too.
bool paired_queues(const char* driver) {
  std::string_view d = driver ? driver : "";
  return d == "net_af_packet" || d == "net_af_xdp";
}

std::string dpdk_err(int rc) {
  return std::string(rte_strerror(rc < 0 ? -rc : rc));
}

// Control thread: a kernel interface's carrier (up and running), or nullopt if unreadable.
std::optional<bool> kernel_carrier(const std::string& iface) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  const int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  close(fd);
  if (rc != 0) return std::nullopt;
  return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
}

// TX-buffer error callback: the queue refused part of a flush.
void tx_buffer_error(rte_mbuf** unsent, uint16_t count, void* userdata) {
  auto* stats = static_cast<WorkerStats*>(userdata);
  stats->drop(Drop::kTxFull, count);
  rte_pktmbuf_free_bulk(unsent, count);
}

// Consecutive empty polls before an adaptive worker starts sleeping: a few microseconds of
// spinning keeps latency low for bursty traffic without burning a core when idle.
constexpr uint32_t kSpinPollsBeforeSleep = 256;

// Lease changes one loop's expiry may make (the rest waits for the next loop).
constexpr size_t kExpiryBatch = 256;

// hash.usr of a handed-off mbuf: port | hops << 16, plus this bit for the forwarding path.
constexpr uint32_t kHandoffForward = 1u << 31;
// hash.usr of a punted mbuf: port, plus this bit when it is for the kernel's TAP.
constexpr uint32_t kPuntKernel = 1u << 16;

// Connections aged per worker pass, and passes per second (bounded work, no table scans).
constexpr uint32_t kAgingBatch = 1024;
constexpr uint64_t kAgingPerSecond = 1000;

}  // namespace

Dataplane::Dataplane() = default;

Dataplane::~Dataplane() {
  stop();
}

std::string Dataplane::init(const Params& p) {
  if (p.ports.empty()) return "no ports configured";
  if (p.ports.size() > kMaxPorts) return "too many ports (max " + std::to_string(kMaxPorts) + ")";
  if (p.worker_lcores.empty() || p.worker_lcores.size() > kMaxWorkers)
    return "need 1.." + std::to_string(kMaxWorkers) + " worker lcores";
  tsc_hz_ = rte_get_tsc_hz();
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tsc_base_ = rte_rdtsc();
  wall_base_ns_ =
      static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
  ns_per_tsc_ = 1e9 / static_cast<double>(tsc_hz_);
  const uint32_t n_workers = static_cast<uint32_t>(p.worker_lcores.size());
  ctl_txq_ = static_cast<uint16_t>(n_workers);

  for (uint32_t w = 0; w < n_workers; ++w) {
    unsigned lcore = p.worker_lcores[w];
    if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore())
      return "worker lcore " + std::to_string(lcore) + " is not an enabled EAL worker lcore";
    auto wk = std::make_unique<Worker>();
    wk->index = w;
    wk->lcore = lcore;
    wk->txq = static_cast<uint16_t>(w);
    workers_.push_back(std::move(wk));
  }

  // Worker → control events: multi-producer (workers), single consumer (control).
  events_ = rte_ring_create_elem("tdm_events", sizeof(NeighborEvent), p.event_ring_size,
                                 static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
  if (!events_) return "cannot create event ring: " + dpdk_err(rte_errno);

  punt_ = rte_ring_create("tdm_punt", 1024, static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
  if (!punt_) return "cannot create punt ring: " + dpdk_err(rte_errno);

  size_t qsz = rte_rcu_qsbr_get_memsize(n_workers);
  qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("tdm_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (!qsbr_) return "cannot allocate QSBR variable";
  if (int rc = rte_rcu_qsbr_init(qsbr_, n_workers); rc != 0)
    return "rte_rcu_qsbr_init: " + dpdk_err(rte_errno);

  ctl_pool_ = rte_pktmbuf_pool_create("tdm_ctl", 1023, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      static_cast<int>(rte_socket_id()));
  if (!ctl_pool_) return "cannot create control mempool: " + dpdk_err(rte_errno);

  for (uint32_t i = 0; i < p.ports.size(); ++i) {
    const PortParams& pp = p.ports[i];
    PortStatus st;
    st.name = pp.name;
    st.kernel_iface = pp.kernel_iface;
    st.dpdk_name = pp.dpdk_name;
    if (rte_eth_dev_get_port_by_name(pp.dpdk_name.c_str(), &st.port_id) != 0)
      return "port " + pp.name + ": no DPDK device named '" + pp.dpdk_name +
             "' (did the EAL probe it? check the device string and that the interface exists)";
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(st.port_id, &info); rc != 0)
      return "port " + pp.name + ": rte_eth_dev_info_get: " + dpdk_err(rc);
    st.driver = info.driver_name ? info.driver_name : "";
    const bool paired = paired_queues(info.driver_name);
    uint16_t nb_tx = static_cast<uint16_t>(n_workers + 1);
    uint16_t nb_rx = paired ? nb_tx : static_cast<uint16_t>(n_workers);
    if (info.max_tx_queues < nb_tx || info.max_rx_queues < nb_rx)
      return "port " + pp.name + ": driver " + st.driver + " offers " +
             std::to_string(info.max_rx_queues) + " RX / " + std::to_string(info.max_tx_queues) +
             " TX queues, need " + std::to_string(nb_rx) + " / " + std::to_string(nb_tx) +
             " (one per worker plus one for the control thread" +
             (paired ? "; for net_af_packet set qpairs=" + std::to_string(nb_tx) : "") + ")";
    st.rx_queues = nb_rx;
    st.tx_queues = nb_tx;

    std::string pool_name = "tdm_mp" + std::to_string(i);
    rte_mempool* pool =
        rte_pktmbuf_pool_create(pool_name.c_str(), p.mbufs, p.mbuf_cache, 0,
                                RTE_MBUF_DEFAULT_BUF_SIZE, rte_eth_dev_socket_id(st.port_id));
    if (!pool)
      return "port " + pp.name + ": cannot create mempool of " + std::to_string(p.mbufs) +
             " mbufs: " + dpdk_err(rte_errno) + " (raise eal.memory_mb or lower dataplane.mbufs)";
    pools_.push_back(pool);

    rte_eth_conf conf{};
    if (nb_rx > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_IP)) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & RTE_ETH_RSS_IP;
    }
    if (int rc = rte_eth_dev_configure(st.port_id, nb_rx, nb_tx, &conf); rc != 0)
      return "port " + pp.name + ": rte_eth_dev_configure: " + dpdk_err(rc);
    uint16_t rxd = pp.rx_desc, txd = pp.tx_desc;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(st.port_id, &rxd, &txd); rc != 0)
      return "port " + pp.name + ": descriptor counts: " + dpdk_err(rc);
    int sock = rte_eth_dev_socket_id(st.port_id);
    for (uint16_t q = 0; q < nb_rx; ++q) {
      if (int rc = rte_eth_rx_queue_setup(st.port_id, q, rxd, sock, nullptr, pool); rc != 0)
        return "port " + pp.name + ": RX queue " + std::to_string(q) + ": " + dpdk_err(rc);
      Worker& w = *workers_[q % n_workers];
      w.rx[w.n_rx++] = {static_cast<uint16_t>(i), st.port_id, q};
    }
    for (uint16_t q = 0; q < nb_tx; ++q) {
      if (int rc = rte_eth_tx_queue_setup(st.port_id, q, txd, sock, nullptr); rc != 0)
        return "port " + pp.name + ": TX queue " + std::to_string(q) + ": " + dpdk_err(rc);
    }
    if (int rc = rte_eth_dev_set_mtu(st.port_id, pp.mtu); rc != 0 && rc != -ENOTSUP)
      return "port " + pp.name + ": MTU " + std::to_string(pp.mtu) + ": " + dpdk_err(rc);
    rte_ether_addr mac{};
    if (int rc = rte_eth_macaddr_get(st.port_id, &mac); rc != 0)
      return "port " + pp.name + ": cannot read MAC: " + dpdk_err(rc);
    std::memcpy(st.mac.data(), mac.addr_bytes, 6);
    // VRRP adverts go to 224.0.0.18: take multicast (drivers without the knob pass it anyway).
    if (int rc = rte_eth_allmulticast_enable(st.port_id); rc != 0 && rc != -ENOTSUP)
      return "port " + pp.name + ": cannot enable multicast reception: " + dpdk_err(rc);
    ports_.push_back(std::move(st));
  }

  for (auto& wp : workers_) {
    Worker& w = *wp;
    w.n_ports = static_cast<uint32_t>(ports_.size());
    for (uint32_t i = 0; i < ports_.size(); ++i) {
      w.port_ids[i] = ports_[i].port_id;
      auto* buf = static_cast<rte_eth_dev_tx_buffer*>(rte_zmalloc_socket(
          "tdm_txbuf", RTE_ETH_TX_BUFFER_SIZE(kMaxBurst), 0, rte_lcore_to_socket_id(w.lcore)));
      if (!buf) return "cannot allocate TX buffer";
      rte_eth_tx_buffer_init(buf, kMaxBurst);
      rte_eth_tx_buffer_set_err_callback(buf, tx_buffer_error, &w.stats);
      w.tx_buffer[i] = buf;
    }
    if (int rc = rte_rcu_qsbr_thread_register(qsbr_, w.index); rc != 0)
      return "QSBR register: " + dpdk_err(rte_errno);
    const std::string n = std::to_string(w.index);
    w.handoff = rte_ring_create(("tdm_ho" + n).c_str(), 4096,
                                static_cast<int>(rte_lcore_to_socket_id(w.lcore)), RING_F_SC_DEQ);
    if (!w.handoff) return "cannot create the hand-off ring of worker " + n + ": " +
                           dpdk_err(rte_errno);
  }
  return "";
}

std::string Dataplane::start(std::unique_ptr<Snapshot> first, bool launch) {
  current_.store(first.release(), std::memory_order_release);
  for (auto& st : ports_) {
    if (int rc = rte_eth_dev_start(st.port_id); rc != 0)
      return "port " + st.name + ": rte_eth_dev_start: " + dpdk_err(rc);
  }
  started_ports_ = true;
  poll_links();
  stop_.store(false);
  if (!launch) return "";
  launch_args_.clear();
  launch_args_.reserve(workers_.size());
  for (auto& w : workers_) launch_args_.push_back({this, w.get()});
  for (auto& a : launch_args_) {
    if (int rc = rte_eal_remote_launch(&Dataplane::worker_main, &a, a.w->lcore); rc != 0)
      return "cannot launch worker on lcore " + std::to_string(a.w->lcore) + ": " + dpdk_err(rc);
  }
  running_ = true;
  return "";
}

void Dataplane::halt() {
  if (!running_) return;
  stop_.store(true, std::memory_order_release);
  for (auto& w : workers_) rte_eal_wait_lcore(w->lcore);  // each goes offline itself
  running_ = false;
  halted_ = true;
}

void Dataplane::stop() {
  if (running_) {
    halt();
  } else if (halted_) {
    halted_ = false;  // the workers went offline themselves
  } else if (qsbr_) {
    // Readers attached by a caller driving poll_once() on this thread.
    for (auto& w : workers_) rte_rcu_qsbr_thread_offline(qsbr_, w->index);
  }
  remove_flow_rules();  // before the ports close
  for (auto& st : ports_) {
    if (started_ports_) rte_eth_dev_stop(st.port_id);
    rte_eth_dev_close(st.port_id);
  }
  started_ports_ = false;
  ports_.clear();
  for (auto& w : workers_) {
    for (uint32_t i = 0; i < w->n_ports; ++i) rte_free(w->tx_buffer[i]);
    for (; w->held_count != 0;
         --w->held_count, w->held_head = (w->held_head + 1) % Worker::kHeldMax)
      rte_pktmbuf_free(w->held[w->held_head].m);
    if (w->handoff) {
      void* m;
      while (rte_ring_dequeue(w->handoff, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
    rte_ring_free(w->handoff);
    rte_ring_free(w->journal);
    rte_ring_free(w->commands);
    rte_ring_free(w->sync_out);
    rte_ring_free(w->lease_in);
    rte_ring_free(w->conn_in);
  }
  workers_.clear();
  dhcp_ = DhcpParams{};
  fwd_ = ForwardParams{};
  neigh_cache_.reset();
  delete current_.exchange(nullptr);
  for (auto* mp : pools_) rte_mempool_free(mp);
  pools_.clear();
  rte_mempool_free(ctl_pool_);
  ctl_pool_ = nullptr;
  rte_ring_free(events_);
  events_ = nullptr;
  if (punt_) {
    void* m;
    while (rte_ring_dequeue(punt_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(punt_);
    punt_ = nullptr;
  }
  rte_free(qsbr_);
  qsbr_ = nullptr;
}

void Dataplane::publish(std::unique_ptr<Snapshot> next) {
  Snapshot* old = current_.exchange(next.release(), std::memory_order_acq_rel);
  // Every online worker passes a quiescent point once per loop; after that none holds `old`.
  // Without launched workers the caller drives poll_once() on this very thread, between calls.
  if (qsbr_ && running_) rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  delete old;
}

void Dataplane::attach_reader(uint32_t w) {
  rte_rcu_qsbr_thread_online(qsbr_, w);
}

std::string Dataplane::enable_dhcp(DhcpParams p) {
  if (p.engines.size() != workers_.size()) return "one DHCP engine per worker is needed";
  for (auto& wp : workers_) {
    Worker& w = *wp;
    const int sock = static_cast<int>(rte_lcore_to_socket_id(w.lcore));
    const std::string n = std::to_string(w.index);
    w.journal = rte_ring_create_elem(("tdm_dj" + n).c_str(), sizeof(dhcp::LeaseEvent),
                                     p.journal_ring_size, sock, RING_F_SP_ENQ | RING_F_SC_DEQ);
    w.commands = rte_ring_create_elem(("tdm_dc" + n).c_str(), sizeof(DhcpCommand), 1024, sock,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!w.journal || !w.commands)
      return "cannot create the DHCP rings of worker " + n + ": " + dpdk_err(rte_errno);
    w.dhcp = p.engines[w.index].get();
    w.held.resize(Worker::kHeldMax);
    w.expiry.reserve(kExpiryBatch);
  }
  dhcp_ = std::move(p);
  return "";
}

void Dataplane::remove_flow_rules() {
  for (auto& [port_id, flow] : flows_) {
    rte_flow_error err{};
    rte_flow_destroy(port_id, flow, &err);
  }
  flows_.clear();
}

std::string Dataplane::install_flow_rules(const std::vector<FlowRuleSpec>& rules,
                                          std::vector<std::string>* installed) {
  auto software = [this] {
    for (auto& w : workers_)
      if (w->fwd) w->fwd->software_steering.store(true, std::memory_order_release);
  };
  remove_flow_rules();
  software();
  if (rules.empty()) return "";
  std::vector<RteFlowRule> built(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].port >= ports_.size()) return "rule names no port";
    build_rte_flow(rules[i], built[i]);
    rte_flow_error err{};
    if (rte_flow_validate(ports_[rules[i].port].port_id, &built[i].attr, built[i].items,
                          built[i].actions, &err) != 0)
      return "port " + ports_[rules[i].port].name + " refused " + describe(rules[i]) + ": " +
             (err.message ? err.message : "no reason given") + " (" + dpdk_err(rte_errno) + ")";
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    const uint16_t pid = ports_[rules[i].port].port_id;
    rte_flow_error err{};
    rte_flow* f = rte_flow_create(pid, &built[i].attr, built[i].items, built[i].actions, &err);
    if (f == nullptr) {
      remove_flow_rules();
      return "port " + ports_[rules[i].port].name + ": creating " + describe(rules[i]) +
             " failed: " + (err.message ? err.message : "no reason given");
    }
    flows_.emplace_back(pid, f);
    if (installed) installed->push_back(describe(rules[i]));
  }
  for (auto& w : workers_)
    if (w->fwd) w->fwd->software_steering.store(false, std::memory_order_release);
  return "";
}

std::string Dataplane::enable_forward(ForwardParams p) {
  if (p.engines.size() != workers_.size()) return "one forwarding engine per worker is needed";
  neigh_cache_ = std::make_unique<NeighborCache>(p.neighbor_capacity);
  for (auto& wp : workers_) wp->fwd = p.engines[wp->index].get();
  fwd_ = std::move(p);
  return "";
}

std::string Dataplane::enable_sync(const SyncParams& p) {
  for (auto& wp : workers_) {
    Worker& w = *wp;
    const int sock = static_cast<int>(rte_lcore_to_socket_id(w.lcore));
    const std::string n = std::to_string(w.index);
    constexpr unsigned kFlags = RING_F_SP_ENQ | RING_F_SC_DEQ;
    if (w.fwd != nullptr) {
      w.sync_out = rte_ring_create_elem(("tdm_so" + n).c_str(), sizeof(ConnSync), p.ring_size,
                                        sock, kFlags);
      w.conn_in = rte_ring_create_elem(("tdm_ci" + n).c_str(), sizeof(ConnSync), p.ring_size,
                                       sock, kFlags);
      if (!w.sync_out || !w.conn_in)
        return "cannot create the replication rings of worker " + n + ": " + dpdk_err(rte_errno);
      w.fwd->sync_out = p.connections;
      w.fwd->sync_refresh_ns = p.conn_refresh_ns;
    }
    if (w.dhcp != nullptr) {
      w.lease_in = rte_ring_create_elem(("tdm_li" + n).c_str(), sizeof(dhcp::Lease), p.ring_size,
                                        sock, kFlags);
      if (!w.lease_in)
        return "cannot create the replication rings of worker " + n + ": " + dpdk_err(rte_errno);
    }
  }
  sync_enabled_ = true;
  return "";
}

uint32_t Dataplane::poll_conn_updates(uint32_t w, ConnSync* out, uint32_t max) {
  rte_ring* r = w < workers_.size() ? workers_[w]->sync_out : nullptr;
  if (!r) return 0;
  return rte_ring_sc_dequeue_burst_elem(r, out, sizeof(ConnSync), max, nullptr);
}

bool Dataplane::push_peer_lease(const dhcp::Lease& l) {
  // Every worker: the one whose pool slices hold the address installs it. A worker whose ring is
  // full makes the whole push fail: the caller retries it (a lease installed twice is harmless).
  for (auto& w : workers_)
    if (w->lease_in && rte_ring_free_count(w->lease_in) == 0) return false;
  dhcp::Lease copy = l;
  for (auto& w : workers_)
    if (w->lease_in) rte_ring_sp_enqueue_elem(w->lease_in, &copy, sizeof copy);
  return true;
}

bool Dataplane::push_peer_conn(const ConnSync& c) {
  if (workers_.empty()) return true;
  Worker& w = *workers_[owner_of(c.client_ip, static_cast<uint32_t>(workers_.size()))];
  if (!w.conn_in) return true;
  ConnSync copy = c;
  return rte_ring_sp_enqueue_elem(w.conn_in, &copy, sizeof copy) == 0;
}

bool Dataplane::peer_state_applied() const {
  for (const auto& w : workers_) {
    if (w->lease_in && rte_ring_count(w->lease_in) != 0) return false;
    if (w->conn_in && rte_ring_count(w->conn_in) != 0) return false;
  }
  return true;
}

uint32_t Dataplane::sync_loop(Worker& w, const Snapshot& s, uint64_t mono) noexcept {
  uint32_t work = 0;
  constexpr uint32_t kMax = 256;  // per loop and ring: a bulk resync never stalls packets
  if (w.lease_in != nullptr && w.dhcp != nullptr && rte_ring_count(w.lease_in) != 0) {
    dhcp::Lease ls[32];
    for (uint32_t done = 0; done < kMax;) {
      const uint32_t n = rte_ring_sc_dequeue_burst_elem(w.lease_in, ls, sizeof(dhcp::Lease), 32,
                                                        nullptr);
      if (n == 0) break;
      for (uint32_t i = 0; i < n; ++i)
        if (w.dhcp->store->find(ls[i].ip) != nullptr && w.dhcp->store->restore(ls[i], true))
          w.peer_leases.add();
      done += n;
      work += n;
    }
  }
  if (w.fwd == nullptr) return work;
  ForwardEngine& e = *w.fwd;
  if (w.conn_in != nullptr && rte_ring_count(w.conn_in) != 0) {
    ConnSync cs[32];
    for (uint32_t done = 0; done < kMax;) {
      const uint32_t n =
          rte_ring_sc_dequeue_burst_elem(w.conn_in, cs, sizeof(ConnSync), 32, nullptr);
      if (n == 0) break;
      for (uint32_t i = 0; i < n; ++i) install_conn(e, s, cs[i], mono);
      done += n;
      work += n;
    }
  }
  if (e.sync_n != 0) {
    const unsigned sent = w.sync_out != nullptr
                              ? rte_ring_sp_enqueue_burst_elem(w.sync_out, e.sync_batch.get(),
                                                               sizeof(ConnSync), e.sync_n, nullptr)
                              : 0;
    e.stats.sync_sent.add(sent);
    if (sent < e.sync_n) e.stats.sync_dropped.add(e.sync_n - sent);
    e.sync_n = 0;
  }
  return work;
}

uint32_t Dataplane::poll_lease_events(uint32_t w, dhcp::LeaseEvent* out, uint32_t max) {
  rte_ring* r = w < workers_.size() ? workers_[w]->journal : nullptr;
  if (!r) return 0;
  return rte_ring_sc_dequeue_burst_elem(r, out, sizeof(dhcp::LeaseEvent), max, nullptr);
}

bool Dataplane::dhcp_command(const DhcpCommand& c) {
  bool ok = true;
  DhcpCommand copy = c;  // rte_ring_*_elem take a non-const pointer
  for (auto& w : workers_)
    ok = w->commands && rte_ring_sp_enqueue_elem(w->commands, &copy, sizeof copy) == 0 && ok;
  return ok;
}

bool Dataplane::send_frame(uint32_t port_index, const uint8_t* data, uint32_t len) {
  if (port_index >= ports_.size()) return false;
  rte_mbuf* m = rte_pktmbuf_alloc(ctl_pool_);
  if (!m) {
    ctl_tx_dropped_.add();
    return false;
  }
  char* dst = rte_pktmbuf_append(m, static_cast<uint16_t>(len));
  if (!dst) {
    rte_pktmbuf_free(m);
    ctl_tx_dropped_.add();
    return false;
  }
  std::memcpy(dst, data, len);
  if (rte_eth_tx_burst(ports_[port_index].port_id, ctl_txq_, &m, 1) != 1) {
    rte_pktmbuf_free(m);
    ctl_tx_dropped_.add();
    return false;
  }
  ctl_tx_packets_.add();
  return true;
}

uint32_t Dataplane::poll_events(NeighborEvent* out, uint32_t max) {
  if (!events_) return 0;
  return rte_ring_sc_dequeue_burst_elem(events_, out, sizeof(NeighborEvent), max, nullptr);
}

uint32_t Dataplane::poll_punted(PuntedFrame* out, uint32_t max) {
  if (!punt_) return 0;
  rte_mbuf* ms[64];
  uint32_t n =
      rte_ring_sc_dequeue_burst(punt_, reinterpret_cast<void**>(ms), max < 64 ? max : 64, nullptr);
  for (uint32_t i = 0; i < n; ++i) {
    out[i].port = ms[i]->hash.usr & 0xffff;
    out[i].kind = (ms[i]->hash.usr & kPuntKernel) ? PuntedFrame::kKernel : PuntedFrame::kControl;
    out[i].len = rte_pktmbuf_data_len(ms[i]) < PuntedFrame::kMaxLen ? rte_pktmbuf_data_len(ms[i])
                                                                    : PuntedFrame::kMaxLen;
    std::memcpy(out[i].data, rte_pktmbuf_mtod(ms[i], const uint8_t*), out[i].len);
    rte_pktmbuf_free(ms[i]);
  }
  return n;
}

std::string Dataplane::accept_mac(uint32_t port_index, const Mac& mac) {
  if (port_index >= ports_.size()) return "no such port";
  const PortStatus& st = ports_[port_index];
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, mac.data(), 6);
  if (rte_eth_dev_mac_addr_add(st.port_id, &a, 0) == 0) return "";
  if (int rc = rte_eth_promiscuous_enable(st.port_id); rc != 0)
    return "port " + st.name + ": no MAC filter left and promiscuous mode failed: " + dpdk_err(rc);
  return "";
}

std::vector<uint32_t> Dataplane::poll_links() {
  std::vector<uint32_t> changed;
  for (uint32_t i = 0; i < ports_.size(); ++i) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(ports_[i].port_id, &link) != 0) continue;
    bool up = link.link_status == RTE_ETH_LINK_UP;
    if (!ports_[i].kernel_iface.empty())
      if (auto carrier = kernel_carrier(ports_[i].kernel_iface)) up = up && *carrier;
    ports_[i].speed_mbps = link.link_speed;
    if (up != ports_[i].link_up) {
      ports_[i].link_up = up;
      changed.push_back(i);
    }
  }
  return changed;
}

int Dataplane::worker_main(void* arg) {
  auto* a = static_cast<LaunchArg*>(arg);
  Dataplane& self = *a->dp;
  Worker& w = *a->w;
  rte_rcu_qsbr_thread_online(self.qsbr_, w.index);
  while (!self.stop_.load(std::memory_order_relaxed)) self.poll_once(w);
  rte_rcu_qsbr_thread_offline(self.qsbr_, w.index);
  for (uint32_t i = 0; i < w.n_ports; ++i)
    rte_eth_tx_buffer_flush(w.port_ids[i], w.txq, w.tx_buffer[i]);
  return 0;
}

uint32_t Dataplane::poll_once(Worker& w) noexcept {
  const uint64_t t0 = rte_rdtsc();
  const Snapshot& s = *current_.load(std::memory_order_acquire);
  const uint16_t burst = static_cast<uint16_t>(s.burst < kMaxBurst ? s.burst : kMaxBurst);
  rte_mbuf* pkts[kMaxBurst];
  uint32_t total = 0;
  uint64_t now = 0;
  bool tx = false;
  if (w.dhcp != nullptr && s.dhcp != nullptr) {
    now = wall_ns(t0);
    if (w.dhcp->server.config() != s.dhcp.get()) w.dhcp->server.set_config(*s.dhcp);
    const uint32_t n = dhcp_loop_start(w, now);
    total += n;
    tx = n != 0;
  }
  const uint64_t mono = w.fwd != nullptr ? mono_ns(t0) : 0;
  if (w.fwd != nullptr && t0 >= w.next_maintenance) {
    w.next_maintenance = t0 + tsc_hz_ / kAgingPerSecond;
    forward_maintenance(*w.fwd, mono, kAgingBatch);
  }
  if (rte_ring_count(w.handoff) != 0) {
    const uint32_t n = drain_handoff(w, s, now, mono);
    total += n;
    tx = tx || n != 0;
  }
  for (uint32_t r = 0; r < w.n_rx; ++r) {
    const Worker::RxQueue& q = w.rx[r];
    uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, burst);
    if (n == 0) continue;
    total += n;
    handle_burst(w, s, q.port_index, pkts, n, now, mono);
    if (w.dhcp != nullptr) dhcp_flush(w);
  }
  // The peer's state is installed between polls but is not traffic: it does not keep an
  // adaptive worker spinning (a standby's worker would otherwise never sleep while the master is
  // busy). A takeover waits until the rings are drained (Dataplane::peer_state_applied).
  if (sync_enabled_) sync_loop(w, s, mono != 0 ? mono : mono_ns(t0));
  if (total != 0 || tx) {
    for (uint32_t i = 0; i < w.n_ports; ++i)
      rte_eth_tx_buffer_flush(w.port_ids[i], w.txq, w.tx_buffer[i]);
  }
  // The snapshot reference `s` is dead past this point.
  rte_rcu_qsbr_quiescent(qsbr_, w.index);
  w.stats.loops.add();
  const uint64_t t1 = rte_rdtsc();
  if (total != 0) {
    w.stats.busy_loops.add();
    w.stats.busy_cycles.add(t1 - t0);
    w.idle_polls = 0;
    w.sleep_us = 0;
  } else {
    idle_backoff(w, s, t1);
    w.stats.idle_cycles.add(rte_rdtsc() - t0);
  }
  return total;
}

void Dataplane::idle_backoff(Worker& w, const Snapshot& s, uint64_t) noexcept {
  if (s.idle != IdleMode::kAdaptive) return;
  if (++w.idle_polls < kSpinPollsBeforeSleep) return;
  // Exponential backoff up to idle_sleep_max_us: the first packet after a quiet spell waits at
  // most one sleep; a node with no traffic costs a few hundred wakeups per second.
  w.sleep_us = w.sleep_us == 0 ? 1 : w.sleep_us * 2;
  if (w.sleep_us > s.idle_sleep_max_us) w.sleep_us = s.idle_sleep_max_us;
  w.stats.sleeps.add();
  rte_delay_us_sleep(w.sleep_us);
}

uint32_t Dataplane::dhcp_loop_start(Worker& w, uint64_t now) noexcept {
  DhcpEngine& e = *w.dhcp;
  uint32_t work = 0;
  // Replies whose lease changes the journal thread has made durable.
  const uint64_t durable = w.durable_seq.load(std::memory_order_acquire);
  while (w.held_count != 0 && w.held[w.held_head].seq <= durable) {
    const Worker::Held& h = w.held[w.held_head];
    w.stats.tx_packets.add();
    w.stats.tx_bytes.add(h.m->pkt_len);
    rte_eth_tx_buffer(w.port_ids[h.port], w.txq, w.tx_buffer[h.port], h.m);
    w.held_head = (w.held_head + 1) % Worker::kHeldMax;
    --w.held_count;
    ++work;
  }
  // Expiry: bounded per loop by the batch's capacity.
  e.store->expire(now, &w.expiry);
  e.stats.expired.add(w.expiry.size());
  for (const dhcp::LeaseEvent& ev : w.expiry) e.server.track(ev);
  // Operators' orders.
  DhcpCommand cmds[16];
  const uint32_t nc =
      rte_ring_sc_dequeue_burst_elem(w.commands, cmds, sizeof(DhcpCommand), 16, nullptr);
  for (uint32_t i = 0; i < nc; ++i) {
    const dhcp::Lease* l = e.store->find(cmds[i].ip);
    if (cmds[i].kind == DhcpCommand::kRelease && l != nullptr &&
        (l->state == dhcp::LeaseState::kBound || l->state == dhcp::LeaseState::kOffered)) {
      const dhcp::ClientKey client = l->client;
      if (e.store->release(client, cmds[i].ip, now, &e.events)) e.server.track(e.events.back());
    }
  }
  dhcp_flush(w);
  return work;
}

uint32_t Dataplane::drain_handoff(Worker& w, const Snapshot& s, uint64_t wall,
                                  uint64_t mono) noexcept {
  rte_mbuf* ms[32];
  const uint32_t nh =
      rte_ring_sc_dequeue_burst(w.handoff, reinterpret_cast<void**>(ms), 32, nullptr);
  NeighborEvent events[32];
  rte_mbuf* punt[32];
  uint16_t n_events = 0, n_punt = 0;
  for (uint32_t i = 0; i < nh; ++i) {
    const uint32_t usr = ms[i]->hash.usr;
    const uint32_t port = usr & 0xffff, hops = (usr & ~kHandoffForward) >> 16;
    const LocalResult r = port < s.n_ports ? handle_local(rte_pktmbuf_mtod(ms[i], uint8_t*),
                                                          ms[i]->data_len, s.ports[port], w.stats)
                                           : LocalResult{};
    if (r.verdict == Verdict::kDhcp && w.dhcp != nullptr && s.dhcp != nullptr) {
      dhcp_request(w, s, port, ms[i], r.l4_off, r.l4_len, wall, hops);
    } else if (r.verdict == Verdict::kForward && w.fwd != nullptr && (usr & kHandoffForward)) {
      forward_packet(w, s, port, ms[i], r, mono, 1, events, &n_events, punt, &n_punt);
    } else {
      rte_pktmbuf_free(ms[i]);
    }
  }
  if (w.dhcp != nullptr) dhcp_flush(w);
  flush_side(w, events, n_events, punt, n_punt);
  return nh;
}

void Dataplane::flush_side(Worker& w, NeighborEvent* events, uint16_t n_events, rte_mbuf** punt,
                           uint16_t n_punt) noexcept {
  if (n_punt) {
    unsigned sent =
        rte_ring_mp_enqueue_burst(punt_, reinterpret_cast<void**>(punt), n_punt, nullptr);
    w.stats.punted.add(sent);
    if (sent < n_punt) {
      w.stats.drop(Drop::kPuntRingFull, n_punt - sent);
      rte_pktmbuf_free_bulk(punt + sent, n_punt - sent);
    }
  }
  if (n_events) {
    unsigned sent =
        rte_ring_mp_enqueue_burst_elem(events_, events, sizeof(NeighborEvent), n_events, nullptr);
    w.stats.neighbor_events.add(sent);
    if (sent < n_events) w.stats.drop(Drop::kPuntRingFull, n_events - sent);
  }
}

[[gnu::always_inline]] inline void Dataplane::forward_packet(Worker& w, const Snapshot& s, uint32_t port, rte_mbuf* m,
                               const LocalResult& r, uint64_t mono, uint32_t hops,
                               NeighborEvent* events, uint16_t* n_events, rte_mbuf** punt,
                               uint16_t* n_punt, const ConnHint* hint) noexcept {
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  const FwdResult f = dp::forward(*w.fwd, s, *neigh_cache_, frame, m->data_len,
                                  rte_pktmbuf_headroom(m), rte_pktmbuf_tailroom(m) + m->data_len,
                                  port, r, mono, hops, hint);
  switch (f.action) {
    case FwdAction::kTransmit:
      if (f.prepend != 0 && rte_pktmbuf_prepend(m, f.prepend) == nullptr) {
        w.stats.drop(Drop::kTooShort);
        rte_pktmbuf_free(m);
        return;
      }
      break;
    case FwdAction::kReply:
      // The datagram itself was not forwarded (TTL, no route, MTU): counted under its reason
      // whether or not the rate limit let the ICMP error out.
      w.stats.drop(f.reason);
      m->data_len = static_cast<uint16_t>(f.len);
      m->pkt_len = f.len;
      break;
    case FwdAction::kHandOff:
      m->hash.usr = port | kHandoffForward;
      if (f.owner < workers_.size() && rte_ring_mp_enqueue(workers_[f.owner]->handoff, m) == 0) {
        w.fwd->stats.handed_off.add();
      } else {
        w.stats.drop(Drop::kHandoffFull);
        rte_pktmbuf_free(m);
      }
      return;
    case FwdAction::kToKernel:
      m->hash.usr = port | kPuntKernel;
      w.fwd->stats.to_kernel.add();
      punt[(*n_punt)++] = m;
      return;
    case FwdAction::kDrop:
      w.stats.drop(f.reason);
      if (f.resolve) {
        NeighborEvent& ev = events[(*n_events)++];
        ev = NeighborEvent{};
        ev.port = f.resolve_port;
        ev.ip = f.resolve_ip;
        ev.resolve = 1;
      }
      rte_pktmbuf_free(m);
      return;
  }
  w.stats.tx_packets.add();
  w.stats.tx_bytes.add(m->pkt_len);
  rte_eth_tx_buffer(w.port_ids[f.out_port], w.txq, w.tx_buffer[f.out_port], m);
}

void Dataplane::dhcp_flush(Worker& w) noexcept {
  DhcpEngine& e = *w.dhcp;
  const size_t n1 = w.expiry.size(), total = n1 + e.events.size();
  if (total == 0) return;
  const size_t esz = sizeof(dhcp::LeaseEvent);
  size_t k = n1 ? rte_ring_sp_enqueue_burst_elem(w.journal, w.expiry.data(), esz,
                                                 static_cast<unsigned>(n1), nullptr)
                : 0;
  if (k == n1 && !e.events.empty())
    k += rte_ring_sp_enqueue_burst_elem(w.journal, e.events.data(), esz,
                                        static_cast<unsigned>(e.events.size()), nullptr);
  if (k < total) {
    // The journal thread fell behind: these changes will not be journaled. Held replies that
    // waited for them are dropped (the client retries); without holding they left already.
    e.stats.journal_full.add(total - k);
    const uint64_t last = w.journal_seq + k;
    while (w.held_count != 0) {
      const uint32_t tail = (w.held_head + w.held_count - 1) % Worker::kHeldMax;
      if (w.held[tail].seq <= last) break;
      rte_pktmbuf_free(w.held[tail].m);
      --w.held_count;
    }
  }
  w.journal_seq += k;
  w.expiry.clear();
  e.events.clear();
}

void Dataplane::dhcp_request(Worker& w, const Snapshot& s, uint32_t port, rte_mbuf* m,
                             uint32_t l4_off, uint32_t l4_len, uint64_t now,
                             uint32_t hops) noexcept {
  DhcpEngine& e = *w.dhcp;
  const size_t before = e.events.size();
  const DhcpResult r = dhcp_handle(e, s, port, rte_pktmbuf_mtod(m, uint8_t*), m->data_len,
                                   m->buf_len - m->data_off, l4_off, l4_len, now, hops);
  switch (r.action) {
    case DhcpAction::kDrop:
      rte_pktmbuf_free(m);
      return;
    case DhcpAction::kHandOff:
      m->hash.usr = port | r.hops << 16;
      if (r.owner < workers_.size() && rte_ring_mp_enqueue(workers_[r.owner]->handoff, m) == 0) {
        e.stats.handed_off.add();
      } else {
        e.stats.handoff_full.add();
        rte_pktmbuf_free(m);
      }
      return;
    case DhcpAction::kTransmit:
      break;
  }
  m->data_len = static_cast<uint16_t>(r.len);
  m->pkt_len = r.len;
  if (dhcp_.hold_for_journal && e.events.size() != before) {
    if (w.held_count == Worker::kHeldMax) {
      e.stats.held_full.add();
      rte_pktmbuf_free(m);
      return;
    }
    const uint32_t tail = (w.held_head + w.held_count) % Worker::kHeldMax;
    w.held[tail] = {w.journal_seq + w.expiry.size() + e.events.size(), m, port};
    ++w.held_count;
    e.stats.held.add();
    return;
  }
  w.stats.tx_packets.add();
  w.stats.tx_bytes.add(r.len);
  rte_eth_tx_buffer(w.port_ids[port], w.txq, w.tx_buffer[port], m);
}

static_assert(std::is_trivially_destructible_v<LocalResult>,
              "handle_burst constructs results over the previous burst's without destroying them");

void Dataplane::handle_burst(Worker& w, const Snapshot& s, uint16_t port_index, rte_mbuf** pkts,
                             uint16_t n, uint64_t now, uint64_t mono) noexcept {
  constexpr uint16_t kPrefetch = 3;
  for (uint16_t i = 0; i < n && i < kPrefetch; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  const PortView& pv = s.ports[port_index];
  // Frees and control events are batched per burst: one bulk free, one ring enqueue.
  rte_mbuf* to_free[kMaxBurst];
  rte_mbuf* to_punt[kMaxBurst];
  // Per-burst scratch lives in the worker: arrays of types with member initialisers on the stack
  // would be zeroed on every call (kMaxBurst entries each, whatever the burst).
  Worker::BurstScratch& sc = *w.scratch;
  NeighborEvent* events = sc.events;  // learned senders and next hops to resolve
  uint16_t n_free = 0, n_events = 0, n_punt = 0;
  uint64_t bytes = 0, tx_bytes = 0, n_tx = 0;
  // Pass 1: classify every frame (prefetching a few ahead). The connection-table bucket of each
  // forwarded TCP/UDP flow is prefetched as soon as its key is known, then the whole burst is
  // looked up at once: the bucket misses overlap the classification of the frames after it, the
  // connection misses one another.
  LocalResult* results = sc.results;
  lb::FlowKey* keys = sc.keys;
  uint64_t key_hash[kMaxBurst];
  uint16_t keyed[kMaxBurst];
  uint16_t n_keys = 0;
  const bool lb_on = w.fwd != nullptr && s.fwd != nullptr && s.fwd->lb != nullptr;
  // DHCP requests warm the lease store the same way, in two stages (the client's index slot
  // now, the lease it points at after the burst was classified).
  const bool dhcp_on = w.dhcp != nullptr && s.dhcp != nullptr;
  uint32_t warm_tags[kMaxBurst];
  uint16_t n_warm = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kPrefetch < n) {
      // Every cache line of the frame (up to 6: a DHCP request is ~350 bytes; ARP and ICMP
      // echo fit in one or two).
      const rte_mbuf* next = pkts[i + kPrefetch];
      const auto* d = rte_pktmbuf_mtod(next, const uint8_t*);
      const uint32_t lines = next->data_len > 384 ? 6 : (next->data_len + 63) / 64;
      for (uint32_t l = 0; l < lines; ++l) rte_prefetch0(d + 64 * l);
    }
    // Constructed in place, not assigned: handle_local's result is built straight in results[i]
    // (a returned temporary would be copied back with store-forwarding stalls).
    ::new (static_cast<void*>(&results[i])) LocalResult(
        handle_local(rte_pktmbuf_mtod(pkts[i], uint8_t*), pkts[i]->data_len, pv, w.stats));
    if (lb_on && results[i].verdict == Verdict::kForward &&
        flow_key(*s.fwd->lb, rte_pktmbuf_mtod(pkts[i], const uint8_t*), results[i],
                 &keys[n_keys])) {
      key_hash[n_keys] = w.fwd->conns.hash(keys[n_keys]);
      keyed[n_keys++] = i;
    }
    if (dhcp_on && results[i].verdict == Verdict::kDhcp)
      warm_tags[n_warm++] = dhcp_warm(*w.dhcp, rte_pktmbuf_mtod(pkts[i], const uint8_t*),
                                      results[i].l4_off, results[i].l4_len);
  }
  for (uint16_t k = 0; k < n_warm; ++k) w.dhcp->store->warm_lease(warm_tags[k]);
  ConnHint* hints = sc.hints;
  for (uint16_t i = 0; i < n; ++i) hints[i] = ConnHint{};
  if (n_keys != 0) {
    lb::Conn* found[kMaxBurst];
    bool reply[kMaxBurst];
    w.fwd->conns.find_bulk(keys, key_hash, n_keys, found, reply);
    const uint64_t inserted = w.fwd->conns.stats().inserted;
    const uint64_t released = w.fwd->conns.released();
    for (uint16_t k = 0; k < n_keys; ++k)
      hints[keyed[k]] =
          ConnHint{found[k], reply[k], true, inserted, released, &keys[k], key_hash[k]};
  }
  // Pass 2: act on each frame.
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    bytes += m->pkt_len;
    const LocalResult& r = results[i];
    if (r.learned) {
      NeighborEvent& ev = events[n_events++];
      ev = NeighborEvent{};  // the array is reused: no field may keep an earlier burst's value
      ev.port = port_index;
      ev.targeted = r.hint.targeted ? 1 : 0;
      ev.ip = r.hint.ip;
      ev.mac = r.hint.mac;
    }
    switch (r.verdict) {
      case Verdict::kTransmit:
        ++n_tx;
        tx_bytes += m->pkt_len;
        rte_eth_tx_buffer(w.port_ids[port_index], w.txq, w.tx_buffer[port_index], m);
        break;
      case Verdict::kDrop:
        w.stats.drop(r.reason);
        to_free[n_free++] = m;
        break;
      case Verdict::kConsumed:
        // An ARP reply to us: the kernel behind the port's TAP may be waiting for it too (its
        // own sockets resolve next hops through the TAP).
        if (pv.tap && r.learned && r.hint.targeted) {
          m->hash.usr = port_index | kPuntKernel;
          to_punt[n_punt++] = m;
        } else {
          to_free[n_free++] = m;
        }
        break;
      case Verdict::kPunt:
        m->hash.usr = port_index;
        to_punt[n_punt++] = m;
        break;
      case Verdict::kForward:
        if (w.fwd != nullptr && s.fwd != nullptr) {
          forward_packet(w, s, port_index, m, r, mono, 0, events, &n_events, to_punt, &n_punt,
                         &hints[i]);
        } else {
          w.stats.drop(r.local ? Drop::kL4Unhandled : Drop::kIpv4NotLocal);
          to_free[n_free++] = m;
        }
        break;
      case Verdict::kDhcp:
        if (w.dhcp != nullptr && s.dhcp != nullptr) {
          dhcp_request(w, s, port_index, m, r.l4_off, r.l4_len, now);
        } else {
          w.stats.drop(Drop::kL4Unhandled);
          to_free[n_free++] = m;
        }
        break;
    }
  }
  if (n_free) rte_pktmbuf_free_bulk(to_free, n_free);
  flush_side(w, events, n_events, to_punt, n_punt);
  w.stats.rx_packets.add(n);
  w.stats.rx_bytes.add(bytes);
  w.stats.tx_packets.add(n_tx);
  w.stats.tx_bytes.add(tx_bytes);
}

}  // namespace dp
