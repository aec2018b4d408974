#pragma once
// The EAL half of the data plane: ports, queues, mempools, worker lcores, the snapshot published
// to them and the rings between workers and the control thread.
//
// Threads: every public method is called by the control thread (the EAL main lcore) unless it
// says otherwise. Workers only run worker_loop()/poll_once().

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dhcp_path.h"
#include "dataplane/flow_rules.h"
#include "dataplane/forward.h"
#include "dataplane/neighbor_cache.h"
#include "dataplane/local.h"
#include "dataplane/snapshot.h"
#include "dataplane/stats.h"

struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;
struct rte_eth_dev_tx_buffer;
struct rte_mbuf;
struct rte_flow;

namespace dp {

inline constexpr uint32_t kMaxWorkers = 64;
inline constexpr uint32_t kMaxBurst = 256;

struct PortParams {
  std::string name;       // logical name (metrics, CLI)
  std::string dpdk_name;  // ethdev name to look up: vdev name ("net_af_packet0") or PCI address
  uint16_t mtu = 1500;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  // For ports backed by a kernel interface (net_af_packet, net_af_xdp): its name. Their PMDs
  // report the link up whatever the carrier, so link state is read from the kernel instead.
  std::string kernel_iface;
};

struct Params {
  std::vector<PortParams> ports;
  std::vector<unsigned> worker_lcores;  // EAL lcore ids, one worker each
  uint32_t mbufs = 16383;               // per port
  uint32_t mbuf_cache = 256;
  uint32_t event_ring_size = 4096;  // worker → control neighbour events
};

// DHCP on the workers (Dataplane::enable_dhcp). One engine per worker, built by the control
// thread (pools sliced, leases restored) before start().
struct DhcpParams {
  std::vector<std::unique_ptr<DhcpEngine>> engines;  // index = worker
  // Replies that change a lease wait until the journal thread reports the change durable
  // (set_lease_durable); otherwise they leave at once.
  bool hold_for_journal = false;
  uint32_t journal_ring_size = 65536;  // lease changes per worker awaiting the journal thread
};

// Routing and load balancing on the workers (Dataplane::enable_forward). One engine per worker
// (connection table, scheduler state, counters), built by the control thread before start().
struct ForwardParams {
  std::vector<std::unique_ptr<ForwardEngine>> engines;  // index = worker
  uint32_t neighbor_capacity = 65536;                    // next hops the workers can see
};

// Replication over the sync link (Dataplane::enable_sync): the rings between the workers and
// the sync thread.
struct SyncParams {
  uint32_t ring_size = 65536;  // per worker and direction (power of two)
  bool connections = true;     // workers report connection changes (forwarding enabled)
  uint64_t conn_refresh_ns = 60'000'000'000;
};

// Control → worker: an operator's order on one lease (tandemctl lease release).
struct DhcpCommand {
  enum Kind : uint32_t { kRelease = 1 };
  uint32_t kind = kRelease;
  uint32_t ip = 0;  // host order
};

// Worker → control: a sender learned from ARP. POD, carried over an MP/SC rte_ring.
struct NeighborEvent {
  uint16_t port = 0;  // our port index
  uint8_t targeted = 0;
  uint8_t resolve = 0;  // 1: not a learned sender but a next hop a worker needs resolved (no MAC)
  uint32_t ip = 0;
  Mac mac{};
  uint8_t pad2[2] = {};
};
static_assert(sizeof(NeighborEvent) == 16);

// Worker → control: a frame for the control thread (VRRP), copied out of its mbuf by
// poll_punted() on the control thread.
struct PuntedFrame {
  // VRRP adverts are < 200 bytes; frames for the kernel's TAP are up to the MTU (longer ones are
  // cut).
  static constexpr uint32_t kMaxLen = 9618;
  enum Kind : uint16_t { kControl = 0, kKernel = 1 };  // for the control thread / for the TAP
  uint32_t port = 0;                                   // our port index
  uint16_t kind = kControl;
  uint32_t len = 0;  // bytes in data (≤ kMaxLen)
  uint8_t data[kMaxLen];
};

struct PortStatus {
  std::string name;
  std::string kernel_iface;
  std::string dpdk_name;
  uint16_t port_id = 0;
  Mac mac{};
  bool link_up = false;
  uint32_t speed_mbps = 0;
  uint16_t rx_queues = 0, tx_queues = 0;
  std::string driver;
};

// One worker's queues and state. Cache-aligned, owned by its lcore.
struct alignas(64) Worker {
  struct RxQueue {
    uint16_t port_index;
    uint16_t port_id;
    uint16_t queue;
  };
  uint32_t index = 0;
  unsigned lcore = 0;
  uint32_t n_rx = 0;
  RxQueue rx[kMaxPorts * 2] = {};
  uint16_t txq = 0;                                  // same TX queue index on every port
  uint16_t port_ids[kMaxPorts] = {};                 // our port index → DPDK port id
  rte_eth_dev_tx_buffer* tx_buffer[kMaxPorts] = {};  // per port
  uint32_t n_ports = 0;
  // handle_burst's per-burst arrays, allocated once (see there).
  struct BurstScratch {
    NeighborEvent events[2 * kMaxBurst];
    LocalResult results[kMaxBurst];
    lb::FlowKey keys[kMaxBurst];
    ConnHint hints[kMaxBurst];
  };
  std::unique_ptr<BurstScratch> scratch = std::make_unique<BurstScratch>();
  uint32_t idle_polls = 0;  // consecutive empty loops (adaptive mode)
  uint32_t sleep_us = 0;    // current backoff
  WorkerStats stats;

  // Routing and load balancing (null when disabled).
  ForwardEngine* fwd = nullptr;
  uint64_t next_maintenance = 0;  // TSC of the next connection-aging pass

  // Frames other workers pass us (DHCP requests of our clients, packets of our flows): rte_mbuf*
  // with hash.usr = port | hops << 16 | kHandoffForward (MP/SC).
  rte_ring* handoff = nullptr;

  // DHCP (null when disabled).
  DhcpEngine* dhcp = nullptr;
  rte_ring* journal = nullptr;   // dhcp::LeaseEvent: our lease changes → journal thread (SP/SC)
  rte_ring* commands = nullptr;  // DhcpCommand: control → us (SP/SC)
  uint64_t journal_seq = 0;      // lease changes enqueued so far
  std::atomic<uint64_t> durable_seq{0};  // ... of which the journal thread made durable
  // Replies waiting for their lease change to be durable (hold_for_journal), oldest first.
  struct Held {
    uint64_t seq;  // journal_seq that must be durable
    rte_mbuf* m;
    uint32_t port;
  };
  static constexpr uint32_t kHeldMax = 8192;
  std::vector<Held> held;  // circular, kHeldMax entries
  uint32_t held_head = 0, held_count = 0;
  std::vector<dhcp::LeaseEvent> expiry;  // this loop's expiry changes (capacity kExpiryBatch)

  // Replication (null when the pair has no sync link). SP/SC each.
  rte_ring* sync_out = nullptr;   // ConnSync: our connection changes → sync thread
  rte_ring* lease_in = nullptr;   // dhcp::Lease: the peer's leases → us (if our ranges hold them)
  rte_ring* conn_in = nullptr;    // ConnSync: the peer's connections of our clients → us
  Counter peer_leases;            // the peer's leases installed (or newer held already)
};

class Dataplane {
 public:
  Dataplane();
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // After rte_eal_init. Creates mempools, rings, the QSBR variable; configures every port
  // (one RX queue per worker, one TX queue per worker plus one for the control thread).
  // Returns "" or a message naming the port/queue and the DPDK error.
  std::string init(const Params& p);
  // Publishes the first snapshot, starts the ports and launches workers on their lcores.
  // launch = false leaves the workers to a caller that drives poll_once() itself (packet tests,
  // benchmarks): it must call attach_reader() first.
  std::string start(std::unique_ptr<Snapshot> first, bool launch = true);
  // Signals the workers to stop and waits for them; ports, rings and memory stay (the journal
  // thread drains the lease rings after this). Idempotent.
  void halt();
  // halt(), then stops and closes the ports and frees everything. Idempotent.
  void stop();

  // Replaces the snapshot workers read; frees the previous one once every worker moved on.
  // Blocks for at most one worker loop (plus an adaptive sleep).
  void publish(std::unique_ptr<Snapshot> next);
  const Snapshot& snapshot() const { return *current_.load(std::memory_order_acquire); }

  // Control thread: sends one frame on the port's control TX queue. Returns false (and counts)
  // when no mbuf is free or the queue is full.
  bool send_frame(uint32_t port_index, const uint8_t* data, uint32_t len);

  // Control thread: drains up to `max` neighbour events.
  uint32_t poll_events(NeighborEvent* out, uint32_t max);
  // Control thread: drains up to `max` punted frames (copied, mbufs freed).
  uint32_t poll_punted(PuntedFrame* out, uint32_t max);

  // Control thread, before start(): makes the port accept frames to `mac` (a VRRP virtual MAC):
  // a MAC filter where the NIC has one, promiscuous mode otherwise. Returns "" or why not.
  std::string accept_mac(uint32_t port_index, const Mac& mac);

  // Control thread, after init() and before start(): serves DHCP on the workers.
  std::string enable_dhcp(DhcpParams p);
  bool dhcp_enabled() const { return dhcp_.hold_for_journal || !dhcp_.engines.empty(); }
  // Journal thread: drains up to `max` lease changes of worker `w` (in order).
  uint32_t poll_lease_events(uint32_t w, dhcp::LeaseEvent* out, uint32_t max);
  // Journal thread: the first `seq` lease changes of worker `w` are durable.
  void set_lease_durable(uint32_t w, uint64_t seq) {
    workers_[w]->durable_seq.store(seq, std::memory_order_release);
  }
  // Control thread: queues an order for every worker (the one whose store holds the address
  // acts). False if a worker's queue is full.
  bool dhcp_command(const DhcpCommand& c);
  // Any thread: per-worker DHCP counters (null when disabled).
  const DhcpEngine* dhcp_engine(uint32_t w) const { return workers_[w]->dhcp; }

  // Control thread, after init() and before start() (and after enable_dhcp/enable_forward):
  // creates the replication rings. Returns "" or why not.
  std::string enable_sync(const SyncParams& p);
  bool sync_enabled() const { return sync_enabled_; }
  // Sync thread: drains up to `max` connection changes of worker `w`.
  uint32_t poll_conn_updates(uint32_t w, ConnSync* out, uint32_t max);
  // Sync thread: hands the peer's lease to the workers (the one whose ranges hold the address
  // installs it), the peer's connection to the worker owning its client. False when a ring is
  // full (the caller retries later: nothing is lost).
  bool push_peer_lease(const dhcp::Lease& l);
  bool push_peer_conn(const ConnSync& c);
  // Any thread: every worker has taken what was pushed to it (a takeover waits for this).
  bool peer_state_applied() const;

  // Control thread, after init() and before start(): routes and load-balances on the workers.
  std::string enable_forward(ForwardParams p);
  bool forward_enabled() const { return !fwd_.engines.empty(); }
  // Any thread: per-worker forwarding state (null when disabled). Counters only, outside the
  // worker.
  ForwardEngine* forward_engine(uint32_t w) const { return workers_[w]->fwd; }
  // Control thread, forwarding enabled: replaces the hardware steering rules with `rules`
  // (validated first, all of them; created only if every one validates). On success the workers
  // trust their RX queue (no software hand-off of forwarded packets); on failure the previous
  // rules are removed and software steering is used. Returns "" or why the NIC refused.
  // `installed` receives a description of each rule created.
  std::string install_flow_rules(const std::vector<FlowRuleSpec>& rules,
                                 std::vector<std::string>* installed);
  bool hardware_steering() const { return !flows_.empty(); }
  // Control thread: the next hops workers see (mirrors the neighbour table). Null when disabled.
  NeighborCache* neighbor_cache() { return neigh_cache_.get(); }
  // Control thread: a frame from a kernel TAP, sent on the port's control TX queue as is.
  // (send_frame.)
  // Monotonic nanoseconds of the workers' clock (TSC based), for connection listings.
  uint64_t mono_ns(uint64_t tsc) const noexcept {
    return static_cast<uint64_t>(static_cast<double>(tsc - tsc_base_) * ns_per_tsc_);
  }

  // Control thread: refreshes link state; returns indexes of ports whose state changed.
  std::vector<uint32_t> poll_links();

  uint32_t n_ports() const { return static_cast<uint32_t>(ports_.size()); }
  uint32_t n_workers() const { return static_cast<uint32_t>(workers_.size()); }
  const PortStatus& port(uint32_t i) const { return ports_[i]; }
  // Any thread: counters are single-writer atomics.
  const WorkerStats& worker_stats(uint32_t w) const { return workers_[w]->stats; }
  const Counter& control_tx_packets() const { return ctl_tx_packets_; }
  const Counter& control_tx_dropped() const { return ctl_tx_dropped_; }
  uint64_t tsc_hz() const { return tsc_hz_; }
  bool running() const { return running_; }

  // Worker lcore entry (rte_eal_remote_launch). Runs until stop().
  static int worker_main(void* arg);
  // One loop iteration of worker `w`: RX all its queues, handle, flush TX. Returns packets
  // received. Used by worker_main, packet tests and benchmarks (which drive it on their thread).
  uint32_t poll_once(Worker& w) noexcept;
  Worker& worker(uint32_t i) { return *workers_[i]; }
  // Registers the calling thread as QSBR reader `w` (tests/benchmarks driving poll_once).
  void attach_reader(uint32_t w);

 private:
  struct LaunchArg {
    Dataplane* dp;
    Worker* w;
  };
  void handle_burst(Worker& w, const Snapshot& s, uint16_t port_index, rte_mbuf** pkts, uint16_t n,
                    uint64_t now, uint64_t mono) noexcept;
  // The burst's side batches: punted frames and neighbour events, one ring operation each.
  void flush_side(Worker& w, NeighborEvent* events, uint16_t n_events, rte_mbuf** punt,
                  uint16_t n_punt) noexcept;
  void idle_backoff(Worker& w, const Snapshot& s, uint64_t now) noexcept;
  // DHCP: one request (frame already classified kDhcp); takes the mbuf (sends, holds, hands
  // off or frees it).
  void dhcp_request(Worker& w, const Snapshot& s, uint32_t port, rte_mbuf* m, uint32_t l4_off,
                    uint32_t l4_len, uint64_t now, uint32_t hops = 0) noexcept;
  uint32_t dhcp_loop_start(Worker& w, uint64_t now) noexcept;
  // Frames other workers handed us.
  uint32_t drain_handoff(Worker& w, const Snapshot& s, uint64_t wall, uint64_t mono) noexcept;
  // Forwarding: one packet classified kForward; takes the mbuf. Neighbour requests and kernel
  // frames are collected into the burst's batches.
  void forward_packet(Worker& w, const Snapshot& s, uint32_t port, rte_mbuf* m,
                      const LocalResult& r, uint64_t mono, uint32_t hops, NeighborEvent* events,
                      uint16_t* n_events, rte_mbuf** punt, uint16_t* n_punt,
                      const ConnHint* hint = nullptr) noexcept;
  // Enqueues this loop's lease changes (expiry first) for the journal thread.
  void dhcp_flush(Worker& w) noexcept;
  // Replication: installs what the peer sent (bounded per loop) and hands our connection changes
  // to the sync thread.
  uint32_t sync_loop(Worker& w, const Snapshot& s, uint64_t mono) noexcept;
  uint64_t wall_ns(uint64_t tsc) const noexcept {
    return wall_base_ns_ +
           static_cast<uint64_t>(static_cast<double>(tsc - tsc_base_) * ns_per_tsc_);
  }

  std::vector<PortStatus> ports_;
  std::vector<rte_mempool*> pools_;
  rte_mempool* ctl_pool_ = nullptr;
  rte_ring* events_ = nullptr;
  rte_ring* punt_ = nullptr;  // rte_mbuf*, workers (MP) → control (SC)
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<LaunchArg> launch_args_;
  std::atomic<Snapshot*> current_{nullptr};  // written by control, read by workers (acquire)
  std::atomic<bool> stop_{false};            // written by control, read by workers
  uint16_t ctl_txq_ = 0;
  bool started_ports_ = false;
  bool running_ = false;
  bool halted_ = false;
  uint64_t tsc_hz_ = 1;
  Counter ctl_tx_packets_, ctl_tx_dropped_;
  DhcpParams dhcp_;
  ForwardParams fwd_;
  bool sync_enabled_ = false;
  std::unique_ptr<NeighborCache> neigh_cache_;
  std::vector<std::pair<uint16_t, rte_flow*>> flows_;  // (DPDK port id, rule) installed
  void remove_flow_rules();
  uint64_t wall_base_ns_ = 0, tsc_base_ = 0;  // wall clock at tsc_base_ (CLOCK_REALTIME)
  double ns_per_tsc_ = 1.0;
};

}  // namespace dp
