#include "control/metrics.h"

#include <rte_ethdev.h>

#include <limits>

#include "control/lease_keeper.h"
#include "dataplane/dataplane.h"
#include "dhcp/server.h"
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

}  // namespace

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
