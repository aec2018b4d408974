#include "control/metrics.h"

#include <rte_ethdev.h>

#include <algorithm>
#include <limits>

#include "control/lease_keeper.h"
#include "control/sync_service.h"
#include "dataplane/dataplane.h"
#include "dataplane/forward.h"
#include "dhcp/server.h"
#include "lb/model.h"
#include "tandem_version.h"

namespace ctl {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

class Families {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType t) {
    for (auto& f : out_)
      if (f.name == name) return f;
    out_.push_back({name, help, t, {}});
    return out_.back();
  }
  void add(const std::string& name, const std::string& help, MetricType t, Labels labels,
           double v) {
    ClientMetric m;
    m.label = std::move(labels);
    switch (t) {
      case MetricType::Counter:
        m.counter.value = v;
        break;
      case MetricType::Gauge:
        m.gauge.value = v;
        break;
      default:
        m.untyped.value = v;
        break;
    }
    family(name, help, t).metric.push_back(std::move(m));
  }
  void counter(const std::string& n, const std::string& h, Labels l, double v) {
    add(n, h, MetricType::Counter, std::move(l), v);
  }
  void gauge(const std::string& n, const std::string& h, Labels l, double v) {
    add(n, h, MetricType::Gauge, std::move(l), v);
  }
  std::vector<MetricFamily> take() { return std::move(out_); }

 private:
  std::vector<MetricFamily> out_;
};

double d(uint64_t v) {
  return static_cast<double>(v);
}

// Replication over the sync link.
void collect_sync(Families& f, const dp::Dataplane& dp, const SyncService& s) {
  const SyncStats& st = s.stats();
  const sync::ChannelStats cs = s.channel_stats();
  f.gauge("tandem_sync_peer_up", "1 while the session with the peer is up.", {},
          s.peer_alive() ? 1 : 0);
  f.gauge("tandem_sync_resynced",
          "1 once a bulk resync from the peer completed in the current session.", {},
          s.resynced() ? 1 : 0);
  f.gauge("tandem_sync_last_heard_timestamp_seconds",
          "Unix time a valid datagram last came from the peer.", {},
          static_cast<double>(st.last_heard_unix_ms.load()) / 1000.0);
  f.gauge("tandem_sync_unacked_entries", "Entries sent to the peer and not yet acknowledged.", {},
          d(st.unacked.load()));
  const char* kEntries = "Entries replicated, by kind and direction.";
  f.counter("tandem_sync_entries_total", kEntries, {{"kind", "lease"}, {"direction", "out"}},
            d(st.entries_out_leases.get()));
  f.counter("tandem_sync_entries_total", kEntries, {{"kind", "lease"}, {"direction", "in"}},
            d(st.entries_in_leases.get()));
  f.counter("tandem_sync_entries_total", kEntries, {{"kind", "connection"}, {"direction", "out"}},
            d(st.entries_out_conns.get()));
  f.counter("tandem_sync_entries_total", kEntries, {{"kind", "connection"}, {"direction", "in"}},
            d(st.entries_in_conns.get()));
  f.counter("tandem_sync_messages_total", "Datagrams on the sync link.", {{"direction", "out"}},
            d(cs.dgrams_sent));
  f.counter("tandem_sync_messages_total", "Datagrams on the sync link.", {{"direction", "in"}},
            d(cs.dgrams_received));
  f.counter("tandem_sync_bytes_total", "Bytes on the sync link.", {{"direction", "out"}},
            d(cs.bytes_sent));
  f.counter("tandem_sync_bytes_total", "Bytes on the sync link.", {{"direction", "in"}},
            d(cs.bytes_received));
  f.counter("tandem_sync_retransmissions_total", "Entries sent again (loss or reordering).", {},
            d(cs.entries_retransmitted));
  f.counter("tandem_sync_duplicates_total", "Entries received twice (dropped).", {},
            d(cs.duplicates));
  const char* kRej = "Datagrams rejected, by reason.";
  f.counter("tandem_sync_rejected_total", kRej, {{"reason", "auth"}}, d(cs.auth_failures));
  f.counter("tandem_sync_rejected_total", kRej, {{"reason", "replay"}}, d(cs.replays));
  f.counter("tandem_sync_rejected_total", kRej, {{"reason", "malformed"}}, d(cs.malformed));
  f.counter("tandem_sync_sessions_total", "Sessions established with the peer.", {},
            d(cs.sessions));
  f.counter("tandem_sync_session_ends_total", "Sessions ended, by cause.", {{"cause", "restart"}},
            d(cs.peer_restarts));
  f.counter("tandem_sync_session_ends_total", "Sessions ended, by cause.", {{"cause", "silence"}},
            d(cs.timeouts));
  f.counter("tandem_sync_resyncs_total", "Bulk resyncs, by direction.", {{"direction", "out"}},
            d(st.resyncs_sent.get()));
  f.counter("tandem_sync_resyncs_total", "Bulk resyncs, by direction.", {{"direction", "in"}},
            d(st.resyncs_received.get()));
  f.counter("tandem_sync_connections_unsent_total",
            "Connection changes not sent: no session (the next bulk resync carries them) or "
            "their ring was full.",
            {}, d(st.conns_dropped_down.get()));
  f.counter("tandem_sync_strict_released_total",
            "Lease batches whose ACKs stopped waiting because the session went down.", {},
            d(st.strict_released_down.get()));
  uint64_t sync_dropped = 0, installed = 0, stale = 0, refused = 0;
  for (uint32_t w = 0; w < dp.n_workers(); ++w) {
    if (const dp::ForwardEngine* e = dp.forward_engine(w)) {
      sync_dropped += e->stats.sync_dropped.get();
      installed += e->stats.sync_installed.get();
      stale += e->stats.sync_stale.get();
      refused += e->stats.sync_refused.get();
    }
  }
  f.counter("tandem_sync_worker_ring_full_total",
            "Connection changes a worker could not hand to the sync thread.", {},
            d(sync_dropped));
  const char* kInst = "The peer's connections, by outcome in the workers' tables.";
  f.counter("tandem_sync_connections_applied_total", kInst, {{"result", "installed"}},
            d(installed));
  f.counter("tandem_sync_connections_applied_total", kInst, {{"result", "stale"}}, d(stale));
  f.counter("tandem_sync_connections_applied_total", kInst, {{"result", "refused"}}, d(refused));
  ClientMetric m;
  uint64_t cum = 0;
  for (size_t b = 0; b < st.lag_buckets.size(); ++b) {
    cum += st.lag_buckets[b].get();
    ClientMetric::Bucket bk;
    bk.cumulative_count = cum;
    bk.upper_bound = b < SyncStats::kLagBounds.size() ? SyncStats::kLagBounds[b]
                                                      : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(bk);
  }
  m.histogram.sample_count = st.lag_count.get();
  m.histogram.sample_sum = static_cast<double>(st.lag_sum_ns.load()) / 1e9;
  f.family("tandem_sync_lag_seconds",
           "Replication lag of lease changes: queued for the peer → acknowledged by it.",
           MetricType::Histogram)
      .metric.push_back(std::move(m));
}

const char* const kMessageNames[] = {"none", "discover", "offer",   "request", "decline",
                                     "ack",  "nak",      "release", "inform"};

// DHCP: per-worker counters summed, the lease keeper's view for the pools, its journal stats.
void collect_dhcp(Families& f, const dp::Dataplane& dp, const LeaseKeeper& lk,
                  const dhcp::ServerConfig& sc) {
  std::array<uint64_t, 9> rx{}, tx{};
  std::array<uint64_t, static_cast<size_t>(dhcp::Malformed::kCount)> bad{};
  std::array<uint64_t, static_cast<size_t>(dhcp::Reason::kCount)> why{};
  uint64_t lent = 0, handed = 0, handoff_full = 0, journal_full = 0, held = 0, held_full = 0,
           no_route = 0;
  uint64_t left_out = 0, relay_left_out = 0, untracked = 0;
  for (uint32_t w = 0; w < dp.n_workers(); ++w) {
    const dp::DhcpEngine* e = dp.dhcp_engine(w);
    if (e == nullptr) continue;
    for (size_t i = 0; i < rx.size(); ++i) rx[i] += e->stats.received[i].get();
    for (size_t i = 0; i < tx.size(); ++i) tx[i] += e->server.counters().sent[i].get();
    for (size_t i = 0; i < bad.size(); ++i) bad[i] += e->stats.malformed[i].get();
    for (size_t i = 0; i < why.size(); ++i) why[i] += e->server.counters().reasons[i].get();
    handed += e->stats.handed_off.get();
    lent += e->stats.lent.get();
    handoff_full += e->stats.handoff_full.get();
    journal_full += e->stats.journal_full.get();
    held += e->stats.held.get();
    held_full += e->stats.held_full.get();
    no_route += e->stats.no_route.get();
    untracked += e->limiter.untracked();
    left_out += e->server.counters().options_left_out.get();
    relay_left_out += e->server.counters().relay_info_left_out.get();
  }
  for (size_t t : {1, 3, 4, 7, 8})
    f.counter("tandem_dhcp_received_total", "DHCP requests received (parsed), by message type.",
              {{"type", kMessageNames[t]}}, d(rx[t]));
  for (size_t t : {2, 5, 6})
    f.counter("tandem_dhcp_sent_total", "DHCP replies sent, by message type.",
              {{"type", kMessageNames[t]}}, d(tx[t]));
  const char* const kDropHelp = "DHCP requests dropped before the server logic, by reason.";
  for (size_t i = 0; i < bad.size(); ++i)
    f.counter("tandem_dhcp_drops_total", kDropHelp, {{"reason", dhcp::kMalformedNames[i]}},
              d(bad[i]));
  f.counter("tandem_dhcp_drops_total", kDropHelp, {{"reason", "handoff_full"}}, d(handoff_full));
  f.counter("tandem_dhcp_drops_total", kDropHelp, {{"reason", "held_full"}}, d(held_full));
  f.counter("tandem_dhcp_drops_total", kDropHelp, {{"reason", "no_route"}}, d(no_route));
  for (size_t i = 1; i < why.size(); ++i)
    f.counter("tandem_dhcp_refusals_total",
              "Requests the server did not grant as asked (no reply, or a NAK), by reason.",
              {{"reason", dhcp::kReasonNames[i]}}, d(why[i]));
  f.counter("tandem_dhcp_handoffs_total", "Requests passed to the worker that owns their client.",
            {}, d(handed));
  f.counter("tandem_dhcp_lent_total",
            "DISCOVERs a worker passed on because its share of the pools was dry (borrowing).", {},
            d(lent));
  f.counter("tandem_dhcp_held_replies_total",
            "Replies held until their lease change was on disk (strict durability).", {}, d(held));
  f.counter("tandem_dhcp_options_left_out_total",
            "Replies that left out options for the client's size limit.", {}, d(left_out));
  f.counter("tandem_dhcp_relay_info_left_out_total",
            "Replies sent without option 82 because it did not fit.", {}, d(relay_left_out));
  f.counter("tandem_dhcp_limiter_untracked_total",
            "Requests let through unlimited because the limit table was full (a flood).", {},
            d(untracked));
  f.counter("tandem_dhcp_journal_lost_total",
            "Lease changes the journal ring refused (the keeper fell behind).", {},
            d(journal_full));

  const LeaseKeeperStats ks = lk.stats();
  for (size_t k = 0; k < ks.by_kind.size(); ++k)
    f.counter("tandem_dhcp_lease_events_total",
              "Lease changes by kind (offer_expired: offers never claimed by a REQUEST).",
              {{"kind", kLeaseEventNames[k]}}, d(ks.by_kind[k]));
  const auto counts = lk.pool_counts(sc.pools.size());
  for (size_t p = 0; p < sc.pools.size(); ++p) {
    const dhcp::PoolConf& pc = sc.pools[p];
    const dhcp::SubnetConf& sn = sc.subnets[pc.subnet];
    const std::string subnet = cfg::format_prefix(sn.network, sn.len);
    const std::string range = cfg::format_ipv4(pc.first) + "-" + cfg::format_ipv4(pc.last);
    const uint64_t size = pc.size();
    const auto& c = counts[p];
    const uint64_t used = c.offered + c.bound + c.declined;
    const std::pair<const char*, uint64_t> states[] = {{"total", size},
                                                       {"offered", c.offered},
                                                       {"bound", c.bound},
                                                       {"declined", c.declined},
                                                       {"free", size >= used ? size - used : 0}};
    for (const auto& [state, v] : states)
      f.gauge("tandem_dhcp_pool_addresses", "Addresses of each pool by state.",
              {{"subnet", subnet}, {"pool", range}, {"state", state}}, d(v));
  }
  if (!ks.journal_enabled) return;
  const dhcp::JournalStats& js = ks.journal;
  f.counter("tandem_dhcp_journal_records_total", "Lease records written to the journal.", {},
            d(js.records_written));
  f.counter("tandem_dhcp_journal_bytes_total", "Bytes written to the journal.", {},
            d(js.bytes_written));
  f.counter("tandem_dhcp_journal_fsyncs_total", "Journal fsyncs.", {}, d(js.fsyncs));
  f.counter("tandem_dhcp_journal_compactions_total", "Snapshots written (journal compactions).", {},
            d(js.compactions));
  f.counter("tandem_dhcp_journal_errors_total", "Journal I/O errors.", {}, d(js.errors));
  f.gauge("tandem_dhcp_journal_lag_records", "Lease records written but not yet fsynced.", {},
          d(ks.lag_events));
  f.gauge("tandem_dhcp_leases_restored", "Lease records restored from disk at start.", {},
          d(js.restored));
  ClientMetric m;
  uint64_t cum = 0;
  for (size_t b = 0; b < js.fsync_buckets.size(); ++b) {
    cum += js.fsync_buckets[b];
    ClientMetric::Bucket bk;
    bk.cumulative_count = cum;
    bk.upper_bound = b < dhcp::JournalStats::kFsyncBucketsUs.size()
                         ? dhcp::JournalStats::kFsyncBucketsUs[b] / 1e6
                         : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(bk);
  }
  m.histogram.sample_count = cum;
  m.histogram.sample_sum = static_cast<double>(js.fsync_ns_sum) / 1e9;
  f.family("tandem_dhcp_journal_fsync_seconds", "Journal fsync latency.", MetricType::Histogram)
      .metric.push_back(std::move(m));
}

// Forwarding and load balancing: per-worker counters summed; per service and real server by the
// ids of the control thread's last view. Only the workers' atomics are read: the connection
// table's own fields (size, embryonic count, refusal stats) are plain worker-owned integers and
// are not exported; its entries are the workers' active + inactive levels, which count every
// connection once (each one has a real server from its first packet to its expiry).
void collect_forward(Families& f, const dp::Dataplane& dp, const LbMetricsView* view) {
  const uint32_t nw = dp.n_workers();
  uint64_t routed = 0, lb_in = 0, lb_out = 0, related = 0, to_kernel = 0, handed = 0;
  uint64_t icmp_sent = 0, icmp_limited = 0, misses = 0, expired = 0, persist = 0;
  for (uint32_t w = 0; w < nw; ++w) {
    const dp::ForwardEngine* e = dp.forward_engine(w);
    if (e == nullptr) continue;
    const dp::ForwardStats& s = e->stats;
    routed += s.routed.get();
    lb_in += s.lb_in.get();
    lb_out += s.lb_out.get();
    related += s.icmp_related.get();
    to_kernel += s.to_kernel.get();
    handed += s.handed_off.get();
    icmp_sent += s.icmp_sent.get();
    icmp_limited += s.icmp_limited.get();
    misses += s.neighbor_misses.get();
    expired += s.conn_expired.get();
    persist += s.persist_hits.get();
    int64_t entries = 0;
    for (const dp::LbDestStats& d : e->dests) entries += d.active.get() + d.inactive.get();
    const std::string id = std::to_string(w);
    f.gauge("tandem_lb_conn_table_entries", "Connections in a worker's connection table.",
            {{"worker", id}}, entries > 0 ? static_cast<double>(entries) : 0);
    // Fixed when the engine is built, before the exposer starts: not a shared mutable field.
    f.gauge("tandem_lb_conn_table_capacity", "Size of a worker's connection table.",
            {{"worker", id}}, e->conns.capacity());
  }
  const char* const kFwdHelp = "Packets the forwarding path passed on, by kind.";
  const std::pair<const char*, uint64_t> kinds[] = {
      {"routed", routed},        {"lb_in", lb_in},         {"lb_out", lb_out},
      {"icmp_related", related}, {"to_kernel", to_kernel}, {"handed_off", handed}};
  for (const auto& [kind, v] : kinds)
    f.counter("tandem_forward_packets_total", kFwdHelp, {{"kind", kind}}, d(v));
  f.counter("tandem_icmp_errors_sent_total",
            "ICMP errors generated (time exceeded, unreachable, fragmentation needed).", {},
            d(icmp_sent));
  f.counter("tandem_icmp_errors_limited_total", "ICMP errors not sent: over the rate limit.", {},
            d(icmp_limited));
  f.counter("tandem_neighbor_misses_total",
            "Packets dropped because their next hop was unresolved (resolution started).", {},
            d(misses));
  f.counter("tandem_lb_connections_expired_total", "Connections aged out of the tables.", {},
            d(expired));
  f.counter("tandem_lb_persistence_hits_total",
            "New connections sent to their client's persistence template's real server.", {},
            d(persist));
  if (view == nullptr) return;

  auto traffic = [&](auto&& get) {
    Counters c;
    for (uint32_t w = 0; w < nw; ++w) {
      const dp::ForwardEngine* e = dp.forward_engine(w);
      const dp::LbTraffic* t = e != nullptr ? get(*e) : nullptr;
      if (t == nullptr) continue;
      c.conns += t->conns.get();
      c.in_pkts += t->in_pkts.get();
      c.in_bytes += t->in_bytes.get();
      c.out_pkts += t->out_pkts.get();
      c.out_bytes += t->out_bytes.get();
    }
    return c;
  };
  for (const LbMetricsView::Service& s : view->services) {
    const Labels l{{"service", s.key}};
    f.gauge("tandem_lb_service_info", "A virtual service: its name and scheduler; always 1.",
            {{"service", s.key}, {"name", s.name}, {"scheduler", s.sched}}, 1);
    const Counters sc = traffic([&](const dp::ForwardEngine& e) -> const dp::LbTraffic* {
      return s.id < e.services.size() ? &e.services[s.id] : nullptr;
    });
    f.counter("tandem_lb_service_connections_total", "Connections scheduled to a virtual service.",
              l, d(sc.conns));
    const char* const kSvcPkts = "Packets of a virtual service, by direction.";
    const char* const kSvcBytes = "Bytes of a virtual service, by direction.";
    f.counter("tandem_lb_service_packets_total", kSvcPkts,
              {{"service", s.key}, {"direction", "in"}}, d(sc.in_pkts));
    f.counter("tandem_lb_service_packets_total", kSvcPkts,
              {{"service", s.key}, {"direction", "out"}}, d(sc.out_pkts));
    f.counter("tandem_lb_service_bytes_total", kSvcBytes, {{"service", s.key}, {"direction", "in"}},
              d(sc.in_bytes));
    f.counter("tandem_lb_service_bytes_total", kSvcBytes,
              {{"service", s.key}, {"direction", "out"}}, d(sc.out_bytes));
    for (const LbMetricsView::Real& r : s.reals) {
      const Labels rl{{"service", s.key}, {"real", r.endpoint}};
      auto with = [&](const char* k, const char* v) {
        Labels x = rl;
        x.push_back({k, v});
        return x;
      };
      const Counters rc = traffic([&](const dp::ForwardEngine& e) -> const dp::LbTraffic* {
        return r.id < e.dests.size() ? &e.dests[r.id].t : nullptr;
      });
      int64_t active = 0, inactive = 0;
      for (uint32_t w = 0; w < nw; ++w) {
        const dp::ForwardEngine* e = dp.forward_engine(w);
        if (e == nullptr || r.id >= e->dests.size()) continue;
        active += e->dests[r.id].active.get();
        inactive += e->dests[r.id].inactive.get();
      }
      f.counter("tandem_lb_connections_total", "Connections scheduled to a real server.", rl,
                d(rc.conns));
      const char* const kPkts = "Packets of a real server's connections, by direction.";
      const char* const kBytes = "Bytes of a real server's connections, by direction.";
      f.counter("tandem_lb_packets_total", kPkts, with("direction", "in"), d(rc.in_pkts));
      f.counter("tandem_lb_packets_total", kPkts, with("direction", "out"), d(rc.out_pkts));
      f.counter("tandem_lb_bytes_total", kBytes, with("direction", "in"), d(rc.in_bytes));
      f.counter("tandem_lb_bytes_total", kBytes, with("direction", "out"), d(rc.out_bytes));
      f.gauge("tandem_lb_active_connections", "A real server's established connections.", rl,
              active > 0 ? static_cast<double>(active) : 0);
      f.gauge("tandem_lb_inactive_connections",
              "A real server's connections in any other state (opening, closing, UDP).", rl,
              inactive > 0 ? static_cast<double>(inactive) : 0);
      f.gauge("tandem_lb_real_up", "1 while a real server is in the scheduler (health check).", rl,
              r.up ? 1 : 0);
      f.gauge("tandem_lb_real_weight", "A real server's weight (0: draining).", rl, r.weight);
      if (!r.checked) continue;
      if (r.has_latency)
        f.gauge("tandem_lb_check_latency_seconds",
                "Duration of a real server's last successful health-check attempt.", rl,
                r.check_latency_s);
      f.counter("tandem_lb_checks_total", "Health-check attempts, retries included.", rl,
                d(r.checks));
      f.counter("tandem_lb_check_failures_total", "Failed health-check attempts.", rl,
                d(r.check_failures));
      f.counter("tandem_lb_health_transitions_total",
                "Up/down changes of a real server's health check.", rl, d(r.transitions));
    }
  }
}

}  // namespace

std::shared_ptr<const LbMetricsView> make_lb_metrics_view(const ServiceSet& services, const LbIds& ids,
                                                          const std::unordered_set<uint32_t>& down,
                                                          const std::vector<CheckStatus>& checks,
                                                          const std::vector<cfg::LbService>& conf) {
  auto v = std::make_shared<LbMetricsView>();
  for (const ServiceEntry& se : services.services()) {
    LbMetricsView::Service s;
    // No spaces in label values: line-oriented tools (awk, cut) split series on them.
    s.key = std::string(se.spec.key.proto == lb::Proto::kUdp ? "udp/" : "tcp/") +
            lb::format_endpoint(se.spec.key.vip, se.spec.key.port);
    s.sched = std::string(lb::to_string(se.spec.sched));
    s.id = ids.find_service(se.spec.key);
    if (s.id == UINT32_MAX) continue;
    for (const cfg::LbService& c : conf)
      if (c.spec.key == se.spec.key) s.name = c.name;
    for (const lb::RealServer& r : se.spec.reals) {
      LbMetricsView::Real x;
      x.endpoint = lb::format_endpoint(r.ip, r.port);
      x.id = ids.find_dest(se.spec.key, r.ip, r.port);
      if (x.id == UINT32_MAX) continue;
      x.weight = r.weight;
      x.up = down.count(x.id) == 0;
      const auto it =
          std::lower_bound(checks.begin(), checks.end(), uint64_t{x.id},
                           [](const CheckStatus& c, uint64_t key) { return c.key < key; });
      if (it != checks.end() && it->key == x.id) {
        x.checked = true;
        x.checks = it->checks;
        x.check_failures = it->failures;
        x.transitions = it->transitions;
        x.has_latency = it->checks > it->failures;
        x.check_latency_s = it->last_latency_us / 1e6;
      }
      s.reals.push_back(std::move(x));
    }
    v->services.push_back(std::move(s));
  }
  return v;
}

std::vector<MetricFamily> MetricsCollector::Collect() const {
  Families f;
  f.gauge("tandem_build_info", "Build information; always 1.",
          {{"version", TANDEM_VERSION}, {"git", TANDEM_GIT}, {"node", node_}}, 1);
  f.gauge("tandem_start_time_seconds", "Unix time tandemd started.", {},
          static_cast<double>(cs_.start_unix.load()));

  // Ports: ethdev basic stats, link, and every xstat the driver offers.
  for (uint32_t i = 0; i < dp_.n_ports(); ++i) {
    const dp::PortStatus& ps = dp_.port(i);
    Labels l{{"port", ps.name}};
    rte_eth_stats st{};
    if (rte_eth_stats_get(ps.port_id, &st) == 0) {
      f.counter("tandem_port_rx_packets_total", "Packets received by the port.", l, d(st.ipackets));
      f.counter("tandem_port_tx_packets_total", "Packets sent by the port.", l, d(st.opackets));
      f.counter("tandem_port_rx_bytes_total", "Bytes received by the port.", l, d(st.ibytes));
      f.counter("tandem_port_tx_bytes_total", "Bytes sent by the port.", l, d(st.obytes));
      f.counter("tandem_port_rx_errors_total", "Erroneous packets received.", l, d(st.ierrors));
      f.counter("tandem_port_tx_errors_total", "Failed transmissions.", l, d(st.oerrors));
      f.counter("tandem_port_rx_missed_total", "Packets the NIC dropped: RX queues full.", l,
                d(st.imissed));
      f.counter("tandem_port_rx_nombuf_total", "RX mbuf allocation failures.", l, d(st.rx_nombuf));
    }
    f.gauge("tandem_port_link_up", "1 when the port's link is up.", l, ps.link_up ? 1 : 0);
    f.gauge("tandem_port_link_speed_mbps", "Link speed reported by the driver.", l, ps.speed_mbps);
    int n = rte_eth_xstats_get(ps.port_id, nullptr, 0);
    if (n > 0) {
      std::vector<rte_eth_xstat> xs(static_cast<size_t>(n));
      std::vector<rte_eth_xstat_name> names(static_cast<size_t>(n));
      if (rte_eth_xstats_get_names(ps.port_id, names.data(), static_cast<unsigned>(n)) == n &&
          rte_eth_xstats_get(ps.port_id, xs.data(), static_cast<unsigned>(n)) == n) {
        for (const auto& x : xs)
          f.add("tandem_port_xstat", "Driver extended statistics (rte_eth_xstats).",
                MetricType::Untyped, {{"port", ps.name}, {"name", names[x.id].name}}, d(x.value));
      }
    }
  }

  // Workers: summed per lcore at scrape time.
  const double hz = static_cast<double>(dp_.tsc_hz());
  std::array<uint64_t, static_cast<size_t>(dp::Drop::kCount)> drops{};
  uint64_t arp_req = 0, arp_rep_out = 0, arp_rep_in = 0, arp_other = 0, echo_in = 0, echo_out = 0,
           events = 0;
  for (uint32_t w = 0; w < dp_.n_workers(); ++w) {
    const dp::WorkerStats& s = dp_.worker_stats(w);
    std::string id = std::to_string(w);
    f.counter("tandem_worker_packets_total", "Packets handled by a worker.",
              {{"worker", id}, {"direction", "rx"}}, d(s.rx_packets.get()));
    f.counter("tandem_worker_packets_total", "Packets handled by a worker.",
              {{"worker", id}, {"direction", "tx"}}, d(s.tx_packets.get()));
    f.counter("tandem_worker_bytes_total", "Bytes handled by a worker.",
              {{"worker", id}, {"direction", "rx"}}, d(s.rx_bytes.get()));
    f.counter("tandem_worker_bytes_total", "Bytes handled by a worker.",
              {{"worker", id}, {"direction", "tx"}}, d(s.tx_bytes.get()));
    f.counter("tandem_worker_busy_seconds_total", "Time a worker spent on loops that had packets.",
              {{"worker", id}}, d(s.busy_cycles.get()) / hz);
    f.counter("tandem_worker_idle_seconds_total",
              "Time a worker spent polling empty queues or sleeping (adaptive idle).",
              {{"worker", id}}, d(s.idle_cycles.get()) / hz);
    f.counter("tandem_worker_busy_cycles_total", "TSC cycles of loops that had packets.",
              {{"worker", id}}, d(s.busy_cycles.get()));
    f.counter("tandem_worker_idle_cycles_total", "TSC cycles of empty loops, sleeps included.",
              {{"worker", id}}, d(s.idle_cycles.get()));
    f.counter("tandem_worker_loops_total", "Worker loop iterations.", {{"worker", id}},
              d(s.loops.get()));
    f.counter("tandem_worker_sleeps_total", "Adaptive-idle sleeps taken.", {{"worker", id}},
              d(s.sleeps.get()));
    for (size_t r = 0; r < drops.size(); ++r) drops[r] += s.drops[r].get();
    arp_req += s.arp_requests_in.get();
    arp_rep_out += s.arp_replies_out.get();
    arp_rep_in += s.arp_replies_in.get();
    arp_other += s.arp_other_in.get();
    echo_in += s.icmp_echo_in.get();
    echo_out += s.icmp_echo_out.get();
    events += s.neighbor_events.get();
  }
  for (size_t r = 0; r < drops.size(); ++r)
    f.counter("tandem_drops_total", "Packets dropped by the data plane, by reason.",
              {{"reason", std::string(dp::kDropNames[r])}}, d(drops[r]));
  f.counter("tandem_arp_requests_total", "ARP requests received.", {}, d(arp_req));
  f.counter("tandem_arp_replies_sent_total", "ARP replies sent for our addresses.", {},
            d(arp_rep_out));
  f.counter("tandem_arp_replies_received_total", "ARP replies received.", {}, d(arp_rep_in));
  f.counter("tandem_arp_requests_sent_total",
            "ARP requests sent by the control thread (resolution and probes).", {},
            d(cs_.arp_requests_sent.get()));
  f.counter("tandem_arp_gratuitous_sent_total", "Gratuitous ARP announcements sent.", {},
            d(cs_.garp_sent.get()));
  f.counter("tandem_icmp_echo_requests_total", "ICMP echo requests received for our addresses.", {},
            d(echo_in));
  f.counter("tandem_icmp_echo_replies_total", "ICMP echo replies sent.", {}, d(echo_out));
  f.counter("tandem_neighbor_events_total",
            "ARP senders handed from workers to the control thread.", {}, d(events));
  uint64_t punted = 0;
  for (uint32_t w = 0; w < dp_.n_workers(); ++w) punted += dp_.worker_stats(w).punted.get();
  f.counter("tandem_punted_total", "Frames handed from workers to the control thread (VRRP).", {},
            d(punted));
  static constexpr const char* kStates[] = {"incomplete", "reachable", "probe", "static"};
  for (size_t i = 0; i < 4; ++i)
    f.gauge("tandem_neighbors", "Neighbour table entries by state.", {{"state", kStates[i]}},
            d(cs_.neighbors_by_state[i].load()));
  f.counter("tandem_neighbor_expired_total", "Neighbour entries removed after unanswered probes.",
            {}, d(cs_.neighbor_expired.get()));
  f.counter("tandem_neighbor_table_full_total", "Neighbours not learned: the table was full.", {},
            d(cs_.neighbor_full.get()));
  f.counter("tandem_control_tx_packets_total", "Frames sent on the control TX queues.", {},
            d(dp_.control_tx_packets().get()));
  f.counter("tandem_control_tx_dropped_total",
            "Control frames not sent (no mbuf or TX queue full).", {},
            d(dp_.control_tx_dropped().get()));
  f.counter("tandem_port_link_changes_total", "Link state changes seen on all ports.", {},
            d(cs_.link_changes.get()));
  // VRRP
  static constexpr const char* kVrrpStates[] = {"INIT", "BACKUP", "MASTER", "FAULT"};
  for (const auto& in : vs_.instances) {
    Labels l{{"instance", in->name}};
    const int st = in->state.load();
    for (int s = 0; s < 4; ++s) {
      Labels ls = l;
      ls.push_back({"state", kVrrpStates[s]});
      f.gauge("tandem_vrrp_state", "1 for the state a VRRP instance is in.", ls, st == s ? 1 : 0);
    }
    f.gauge("tandem_vrrp_priority", "Configured priority.", l, in->priority.load());
    f.gauge("tandem_vrrp_effective_priority", "Priority after tracking.", l,
            in->effective_priority.load());
    f.counter("tandem_vrrp_transitions_total", "State transitions.", l, d(in->transitions.get()));
    f.counter("tandem_vrrp_became_master_total", "Transitions to MASTER.", l,
              d(in->became_master.get()));
    f.counter("tandem_vrrp_adverts_sent_total", "Adverts sent.", l, d(in->adverts_sent.get()));
    f.counter("tandem_vrrp_adverts_received_total", "Valid adverts received.", l,
              d(in->adverts_received.get()));
    f.counter("tandem_vrrp_takeovers_held_total",
              "Master-down expiries that did not take over: the sync link said the peer is "
              "alive and master, or our resync was not complete.",
              l, d(in->held_takeovers.get()));
    f.gauge("tandem_vrrp_split_brain_alarm",
            "1 while the master's adverts are missing but the sync link says it is alive and "
            "master (takeover held back).",
            l, in->split_brain_alarm.load());
    f.gauge("tandem_vrrp_sync_demoted",
            "1 while the instance is demoted until the sync link's bulk resync completes.", l,
            in->demoted.load());
  }
  for (size_t r = 0; r < vs_.invalid.size(); ++r)
    f.counter("tandem_vrrp_adverts_invalid_total", "Adverts refused, by reason.",
              {{"reason", vrrp::kInvalidNames[r]}}, d(vs_.invalid[r].get()));
  {
    ClientMetric m;
    uint64_t cum = 0;
    for (size_t b = 0; b < vs_.jitter_buckets.size(); ++b) {
      cum += vs_.jitter_buckets[b].get();
      ClientMetric::Bucket bk;
      bk.cumulative_count = cum;
      bk.upper_bound = b < VrrpStats::kJitterBounds.size()
                           ? VrrpStats::kJitterBounds[b]
                           : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(bk);
    }
    m.histogram.sample_count = vs_.jitter_count.get();
    m.histogram.sample_sum = static_cast<double>(vs_.jitter_sum_ns.load()) / 1e9;
    f.family("tandem_vrrp_advert_jitter_seconds",
             "How late a master's adverts left relative to their schedule.", MetricType::Histogram)
        .metric.push_back(std::move(m));
  }
  f.counter("tandem_vrrp_notify_total", "Notify scripts started.", {}, d(vs_.notify_spawned.get()));
  f.counter("tandem_vrrp_notify_failures_total", "Notify scripts that failed or could not start.",
            {}, d(vs_.notify_failed.get()));
  f.counter("tandem_vrrp_script_runs_total", "Track script runs.", {}, d(vs_.script_runs.get()));
  f.counter("tandem_vrrp_script_failures_total", "Track script runs that failed or timed out.", {},
            d(vs_.script_failures.get()));

  if (leases_ != nullptr && dhcp_ != nullptr) collect_dhcp(f, dp_, *leases_, *dhcp_);
  if (sync_ != nullptr) collect_sync(f, dp_, *sync_);
  if (dp_.forward_enabled()) {
    const std::shared_ptr<const LbMetricsView> view = lb_view_.load();
    collect_forward(f, dp_, view.get());
  }

  f.counter("tandem_config_reloads_total", "Configuration reloads by result.", {{"result", "ok"}},
            d(cs_.reloads_ok.get()));
  f.counter("tandem_config_reloads_total", "Configuration reloads by result.",
            {{"result", "failed"}}, d(cs_.reloads_failed.get()));
  f.gauge("tandem_config_last_reload_success_timestamp_seconds",
          "Unix time of the last successful reload (0: none since start).", {},
          static_cast<double>(cs_.last_reload_ok_unix.load()));
  return f.take();
}

}  // namespace ctl
