// DHCPv4 client emulator on a DPDK port: drives a DHCP server with DORA, renew and release
// exchanges from up to 2^24 distinct clients, open loop (--rate) or closed loop (--window), and
// prints one JSON object: what was sent and received, exchanges completed and dropped, NAKs,
// addresses handed to two clients, and latency percentiles. Usage and measured numbers are in
// docs/benchmarks.md ("DHCP load generator").
//
// usage: dhcp_loadgen [options] -- [EAL args]       (dhcp_loadgen --help lists the options)
//
// One lcore does everything, in a loop: RX burst → replies (the REQUEST for an OFFER is written
// into the OFFER's own mbuf) and ARP → timeouts → new exchanges (bulk-allocated mbufs filled from
// pre-built templates) → one TX burst. No allocation or map per packet: the xid carries the client
// index (low bits) and a generation (high bits), so a reply finds its client in O(1); the timeout
// is constant, so deadlines are pushed in order into a FIFO and only its head is ever examined.
//
// dhcp::parse() refuses BOOTREPLY (it is the server's request parser), so a reply's op byte is
// flipped to BOOTREQUEST in the mbuf we own before parsing it; every other check is the codec's.

#include <arpa/inet.h>
#include <getopt.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/proto.h"
#include "dhcp/codec.h"

namespace lg {
namespace {

using dhcp::MessageType;
using dp::load_be16;
using dp::load_be32;
using dp::Mac;
using dp::store_be16;
using dp::store_be32;

constexpr uint16_t kBurst = 32;
constexpr size_t kUdpHdrLen = 8;
constexpr size_t kL2L3Len = dp::kEthHdrLen + dp::kIpv4MinHdrLen + kUdpHdrLen;  // 42
constexpr size_t kPayloadLen = 300;  // BOOTP minimum: real clients pad to it, so do we
constexpr size_t kFrameLen = kL2L3Len + kPayloadLen;
// Offsets in the BOOTP payload (RFC 2131 §2).
constexpr size_t kOffOp = 0, kOffHtype = 1, kOffHlen = 2, kOffHops = 3, kOffXid = 4, kOffFlags = 10,
                 kOffCiaddr = 12, kOffGiaddr = 24, kOffChaddr = 28, kOffMagic = 236,
                 kOffOptions = 240;
constexpr uint32_t kMaxClients = 1u << 24;  // 24 index bits leave ≥ 8 generation bits in the xid
constexpr int kTscShift = 8;  // FIFO deadlines are tsc >> 8 in 32 bits (~100 ns; wraps in ~7 min)
constexpr unsigned kMbufs = 16383;
constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;

// SIGINT/SIGTERM: the first stops starting exchanges, a second one also cuts the drain short.
std::atomic<int> g_signals{0};
void on_signal(int) {
  g_signals.fetch_add(1, std::memory_order_relaxed);
}

enum class Mode : uint8_t { kDora, kRenew, kRelease, kMix };
constexpr const char* kModeNames[] = {"dora", "renew", "release", "mix"};

struct Params {
  uint32_t clients = 1'000'000;
  Mode mode = Mode::kDora;
  double rate = 0;       // exchanges started per second; 0 = closed loop
  uint32_t window = 64;  // closed loop: exchanges outstanding
  double duration_s = 10;
  uint64_t max_exchanges = 0;  // 0 = no bound
  uint32_t timeout_ms = 1000;
  uint32_t relay_ip = 0;  // host order everywhere; 0 = act as clients on the link
  uint32_t server_ip = 0;
  Mac server_mac{};
  bool have_server_mac = false;
  uint32_t subnet = 0;
  uint8_t subnet_len = 0;  // 0 = no --subnet
  bool broadcast_flag = false;
  bool client_id = false;
  Mac src_mac{};
  bool have_src_mac = false;
  uint32_t src_ip = 0;
  uint32_t renew_pct = 0, release_pct = 0;
  uint16_t port = 0;
  uint32_t idle_us = 0;  // sleep this long after an iteration with nothing to do
  bool quiet = false;
};

std::string ip_str(uint32_t ip) {
  char b[INET_ADDRSTRLEN];
  uint32_t n = htonl(ip);
  inet_ntop(AF_INET, &n, b, sizeof b);
  return b;
}

std::string mac_str(const Mac& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

bool parse_ip(const char* s, uint32_t& out) {
  in_addr a{};
  if (inet_pton(AF_INET, s, &a) != 1) return false;
  out = ntohl(a.s_addr);
  return true;
}

bool parse_mac(const char* s, Mac& out) {
  unsigned v[6];
  char tail = 0;
  if (std::sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) {
    if (v[i] > 255) return false;
    out[i] = static_cast<uint8_t>(v[i]);
  }
  return true;
}

bool parse_u64(const char* s, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-') return false;
  out = v;
  return true;
}

bool parse_double(const char* s, double& out) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0)) return false;
  out = v;
  return true;
}

constexpr const char* kUsage =
    R"(usage: dhcp_loadgen [options] -- EAL-args (e.g. --in-memory --vdev net_af_packet0,iface=eth0)
Emulates DHCPv4 clients (or a relay agent in front of them) on DPDK port 0; prints one JSON object.
  --clients N          distinct clients, MAC 02:xx:xx:xx:xx:xx from the index (default 1000000,
                       at most 16777216)
  --mode M             dora | renew | release | mix (default dora). A client without a lease
                       always does a DORA. renew/release: every client binds first (index order),
                       then bound clients renew (release) in turn, so --clients is the working
                       set; mix: --renew-share/--release-share percent of starts go to bound
                       clients
  --renew-share P      mix: percent of starts that are renews (default 30)
  --release-share P    mix: percent of starts that are releases (default 10)
  --rate R             open loop: exchanges started per second; 0 = closed loop (default 0)
  --window W           closed loop: exchanges outstanding (default 64)
  --duration S         stop starting exchanges after S seconds (default 10)
  --max-exchanges N    ... or after N exchanges (default 0 = no bound); both bounds apply
  --timeout-ms T       a reply not received within T ms counts as dropped (default 1000)
  --relay IP           act as relay agent IP: giaddr, option 82, unicast to --server port 67
  --server IP          the server (required with --relay; direct mode learns it from replies)
  --server-mac MAC     the server's MAC (default: ARP-resolve --server, or learn from replies)
  --subnet CIDR        track leased addresses in this subnet (/8 or longer): duplicates, ARP
                       answers for leased addresses (needed for direct-mode renew over a kernel
                       socket server)
  --broadcast-flag[=0|1]  set the BOOTP broadcast flag (default 0; the port is promiscuous)
  --client-id          send option 61 (type 1 + MAC)
  --src-mac MAC        our MAC for ARP and relayed frames (default: the port's)
  --src-ip IP          answer ARP for it; source of ARP requests (default: --relay IP, or none)
  --port N             DPDK port id (default 0)
  --idle-us U          sleep up to U µs after a loop iteration with nothing to do (default 0:
                       busy poll); frees the core on a shared machine, adds up to U to latencies
  --quiet              no progress lines on stderr
)";

bool parse_args(int argc, char** argv, Params& p, std::string& err) {
  enum : int {
    kOptClients = 256,
    kOptMode,
    kOptRate,
    kOptWindow,
    kOptDuration,
    kOptMaxEx,
    kOptTimeout,
    kOptRelay,
    kOptServer,
    kOptServerMac,
    kOptSubnet,
    kOptBcast,
    kOptClientId,
    kOptSrcMac,
    kOptSrcIp,
    kOptRenew,
    kOptRelease,
    kOptPort,
    kOptIdle,
    kOptQuiet,
    kOptHelp
  };
  static const option kLong[] = {{"clients", required_argument, nullptr, kOptClients},
                                 {"mode", required_argument, nullptr, kOptMode},
                                 {"rate", required_argument, nullptr, kOptRate},
                                 {"window", required_argument, nullptr, kOptWindow},
                                 {"duration", required_argument, nullptr, kOptDuration},
                                 {"max-exchanges", required_argument, nullptr, kOptMaxEx},
                                 {"timeout-ms", required_argument, nullptr, kOptTimeout},
                                 {"relay", required_argument, nullptr, kOptRelay},
                                 {"server", required_argument, nullptr, kOptServer},
                                 {"server-mac", required_argument, nullptr, kOptServerMac},
                                 {"subnet", required_argument, nullptr, kOptSubnet},
                                 {"broadcast-flag", optional_argument, nullptr, kOptBcast},
                                 {"client-id", no_argument, nullptr, kOptClientId},
                                 {"src-mac", required_argument, nullptr, kOptSrcMac},
                                 {"src-ip", required_argument, nullptr, kOptSrcIp},
                                 {"renew-share", required_argument, nullptr, kOptRenew},
                                 {"release-share", required_argument, nullptr, kOptRelease},
                                 {"port", required_argument, nullptr, kOptPort},
                                 {"idle-us", required_argument, nullptr, kOptIdle},
                                 {"quiet", no_argument, nullptr, kOptQuiet},
                                 {"help", no_argument, nullptr, kOptHelp},
                                 {nullptr, 0, nullptr, 0}};
  bool shares_set = false;
  p.renew_pct = 30;
  p.release_pct = 10;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    const std::string name = c >= kOptClients && c <= kOptHelp ? kLong[c - kOptClients].name : "?";
    auto bad = [&] {
      err = "bad value for --" + name + ": '" + (optarg ? optarg : "") + "'";
      return false;
    };
    uint64_t u = 0;
    switch (c) {
      case kOptClients:
        if (!parse_u64(optarg, u) || u == 0 || u > kMaxClients) return bad();
        p.clients = static_cast<uint32_t>(u);
        break;
      case kOptMode: {
        bool found = false;
        for (int i = 0; i < 4; ++i) {
          if (std::strcmp(optarg, kModeNames[i]) == 0) {
            p.mode = static_cast<Mode>(i);
            found = true;
          }
        }
        if (!found) return bad();
        break;
      }
      case kOptRate:
        if (!parse_double(optarg, p.rate) || p.rate > 1e8) return bad();
        break;
      case kOptWindow:
        if (!parse_u64(optarg, u) || u == 0 || u > kMaxClients) return bad();
        p.window = static_cast<uint32_t>(u);
        break;
      case kOptDuration:
        if (!parse_double(optarg, p.duration_s) || p.duration_s <= 0 || p.duration_s > 86400) {
          return bad();
        }
        break;
      case kOptMaxEx:
        if (!parse_u64(optarg, p.max_exchanges)) return bad();
        break;
      case kOptTimeout:
        if (!parse_u64(optarg, u) || u == 0 || u > 60'000) return bad();
        p.timeout_ms = static_cast<uint32_t>(u);
        break;
      case kOptRelay:
        if (!parse_ip(optarg, p.relay_ip) || p.relay_ip == 0) return bad();
        break;
      case kOptServer:
        if (!parse_ip(optarg, p.server_ip) || p.server_ip == 0) return bad();
        break;
      case kOptServerMac:
        if (!parse_mac(optarg, p.server_mac)) return bad();
        p.have_server_mac = true;
        break;
      case kOptSubnet: {
        std::string s = optarg;
        size_t slash = s.find('/');
        if (slash == std::string::npos || !parse_ip(s.substr(0, slash).c_str(), p.subnet) ||
            !parse_u64(s.c_str() + slash + 1, u) || u < 8 || u > 30) {
          return bad();
        }
        p.subnet_len = static_cast<uint8_t>(u);
        p.subnet &= ~uint32_t{0} << (32 - p.subnet_len);
        break;
      }
      case kOptBcast:
        if (optarg == nullptr || std::strcmp(optarg, "1") == 0) {
          p.broadcast_flag = true;
        } else if (std::strcmp(optarg, "0") == 0) {
          p.broadcast_flag = false;
        } else {
          return bad();
        }
        break;
      case kOptClientId:
        p.client_id = true;
        break;
      case kOptSrcMac:
        if (!parse_mac(optarg, p.src_mac)) return bad();
        p.have_src_mac = true;
        break;
      case kOptSrcIp:
        if (!parse_ip(optarg, p.src_ip)) return bad();
        break;
      case kOptRenew:
      case kOptRelease:
        if (!parse_u64(optarg, u) || u > 100) return bad();
        (c == kOptRenew ? p.renew_pct : p.release_pct) = static_cast<uint32_t>(u);
        shares_set = true;
        break;
      case kOptPort:
        if (!parse_u64(optarg, u) || u >= RTE_MAX_ETHPORTS) return bad();
        p.port = static_cast<uint16_t>(u);
        break;
      case kOptIdle:
        if (!parse_u64(optarg, u) || u > 100'000) return bad();
        p.idle_us = static_cast<uint32_t>(u);
        break;
      case kOptQuiet:
        p.quiet = true;
        break;
      case kOptHelp:
        std::fputs(kUsage, stdout);
        std::exit(0);
      default:
        err = "unknown option (see --help)";
        return false;
    }
  }
  if (optind != argc) {
    err = std::string("unexpected argument '") + argv[optind] + "' (EAL arguments go after --)";
    return false;
  }
  if (p.mode != Mode::kMix && shares_set) {
    err = "--renew-share/--release-share apply to --mode mix only";
    return false;
  }
  switch (p.mode) {
    case Mode::kDora:
      p.renew_pct = p.release_pct = 0;
      break;
    case Mode::kRenew:
      p.renew_pct = 100;
      p.release_pct = 0;
      break;
    case Mode::kRelease:
      p.renew_pct = 0;
      p.release_pct = 100;
      break;
    case Mode::kMix:
      if (p.renew_pct + p.release_pct > 100) {
        err = "--renew-share + --release-share exceed 100";
        return false;
      }
      break;
  }
  if (p.relay_ip != 0 && p.server_ip == 0) {
    err = "--relay needs --server";
    return false;
  }
  if (p.src_ip == 0) p.src_ip = p.relay_ip;
  return true;
}

// Log-linear histogram of TSC cycles: 64 sub-buckets per power of two (≤ 1.6% error), fixed
// 30 KB, O(1) add.
class Histogram {
 public:
  void add(uint64_t v) noexcept {
    ++counts_[index(v)];
    ++n_;
    sum_ += v;
    max_ = std::max(max_, v);
  }
  uint64_t count() const noexcept { return n_; }
  uint64_t max() const noexcept { return max_; }
  double mean() const noexcept {
    return n_ ? static_cast<double>(sum_) / static_cast<double>(n_) : 0;
  }
  // The bucket's midpoint that holds the q-quantile (q in (0,1]); the exact max for q = 1.
  double quantile(double q) const noexcept {
    if (n_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(q * static_cast<double>(n_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const uint64_t lo = lower(i), hi = i + 1 < kBuckets ? lower(i + 1) : lo + 1;
        return std::min(static_cast<double>(max_), static_cast<double>(lo + hi - 1) / 2.0);
      }
    }
    return static_cast<double>(max_);
  }

 private:
  static constexpr int kSub = 6;
  static constexpr size_t kBuckets = (64 - kSub + 1) << kSub;
  static size_t index(uint64_t v) noexcept {
    if (v < (1u << kSub)) return static_cast<size_t>(v);
    const int e = 63 - std::countl_zero(v);  // ≥ kSub
    return (static_cast<size_t>(e - kSub + 1) << kSub) +
           static_cast<size_t>((v >> (e - kSub)) & ((1u << kSub) - 1));
  }
  static uint64_t lower(size_t i) noexcept {
    if (i < (1u << kSub)) return i;
    const int e = static_cast<int>(i >> kSub) + kSub - 1;
    return (uint64_t{(1u << kSub) + (i & ((1u << kSub) - 1))}) << (e - kSub);
  }
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t n_ = 0, sum_ = 0, max_ = 0;
};

// FIFO of client indices with a power-of-two capacity fixed at start. Single thread.
class IndexRing {
 public:
  explicit IndexRing(uint32_t capacity)
      : v_(std::bit_ceil(std::max<uint32_t>(capacity, 2))), mask_(v_.size() - 1) {}
  bool push(uint32_t x) noexcept {
    if (tail_ - head_ == v_.size()) return false;
    v_[tail_++ & mask_] = x;
    return true;
  }
  bool pop(uint32_t& x) noexcept {
    if (head_ == tail_) return false;
    x = v_[head_++ & mask_];
    return true;
  }
  size_t size() const noexcept { return static_cast<size_t>(tail_ - head_); }

 private:
  std::vector<uint32_t> v_;
  uint64_t mask_;
  uint64_t head_ = 0, tail_ = 0;
};

// Timeout FIFO: one 8-byte entry per leg sent (deadline, client index, leg number). The timeout is
// constant, so entries are in deadline order and expiry looks at the head only. An entry whose leg
// was answered stays until its deadline (or until space is needed: see purge()).
class TimeoutFifo {
 public:
  explicit TimeoutFifo(size_t capacity) : v_(std::bit_ceil(capacity)), mask_(v_.size() - 1) {}
  bool full() const noexcept { return tail_ - head_ == v_.size(); }
  bool empty() const noexcept { return tail_ == head_; }
  void push(uint32_t deadline, uint32_t client, uint8_t leg) noexcept {
    v_[tail_++ & mask_] = (uint64_t{deadline} << 32) | (client << 8) | leg;
  }
  uint64_t front() const noexcept { return v_[head_ & mask_]; }
  void pop() noexcept { ++head_; }
  size_t size() const noexcept { return static_cast<size_t>(tail_ - head_); }
  size_t capacity() const noexcept { return v_.size(); }
  static uint32_t deadline(uint64_t e) noexcept { return static_cast<uint32_t>(e >> 32); }
  static uint32_t client(uint64_t e) noexcept { return static_cast<uint32_t>(e) >> 8; }
  static uint8_t leg(uint64_t e) noexcept { return static_cast<uint8_t>(e); }

 private:
  std::vector<uint64_t> v_;
  uint64_t mask_;
  uint64_t head_ = 0, tail_ = 0;
};

enum class State : uint8_t { kIdle, kSelecting, kRequesting, kRenewing };

struct Client {
  uint64_t start_tsc = 0;    // the exchange's first send
  uint64_t leg_tsc = 0;      // the current leg's send
  uint32_t xid = 0;          // index | generation << index bits
  uint32_t lease = 0;        // bound address, 0 if none
  uint32_t lease_end_s = 0;  // seconds since start when the lease ends
  uint32_t offered = 0;      // SELECTING: the address being requested
  uint32_t server_id = 0;    // option 54 of the last offer/ack
  State state = State::kIdle;
  uint8_t leg = 0;  // legs sent, mod 256: matches the timeout FIFO entry
};

enum Tpl : uint8_t { kTplDiscover, kTplSelect, kTplRenew, kTplRelease, kTplCount };

// A complete frame with the per-client fields left blank, and where they are.
struct Template {
  std::array<uint8_t, kFrameLen> f{};
  uint16_t off_req_ip = 0, off_server_id = 0, off_client_id = 0, off_circuit = 0, off_remote = 0;
};

struct KindStats {
  uint64_t started = 0, completed = 0, naks = 0, dropped = 0;
};
struct LegStats {
  uint64_t sent = 0, answered = 0, dropped = 0;
};

struct Counters {
  uint64_t tx_dhcp[kTplCount] = {};
  uint64_t tx_arp_request = 0, tx_arp_reply = 0;
  uint64_t rx_offer = 0, rx_ack = 0, rx_nak = 0, rx_other_dhcp = 0, rx_malformed = 0;
  uint64_t rx_unmatched = 0;   // xid/chaddr of no client of ours
  uint64_t rx_late = 0;        // a client's reply after its leg timed out (or a duplicate reply)
  uint64_t rx_unexpected = 0;  // right client and leg, wrong message type
  uint64_t rx_invalid = 0;     // OFFER without yiaddr or server id
  uint64_t rx_arp_request = 0, rx_arp_reply = 0, rx_ignored = 0;
  uint64_t malformed[static_cast<size_t>(dhcp::Malformed::kCount)] = {};
  KindStats dora, renew, release;
  LegStats discover_offer, request_ack, renew_ack;
  uint64_t duplicates = 0, bad_yiaddr = 0, out_of_subnet = 0;
  uint64_t skipped_busy = 0;  // open loop: a start slot found every client busy
  uint64_t fifo_full = 0;     // a start or a REQUEST found the timeout FIFO full of live legs
  uint64_t mbuf_alloc_failed = 0, tx_refused = 0;
  uint64_t max_backlog = 0;  // open loop: start slots behind schedule, at worst
};

class Generator {
 public:
  explicit Generator(const Params& p)
      : p_(p),
        hz_(rte_get_tsc_hz()),
        timeout_cycles_(hz_ * p.timeout_ms / 1000),
        clients_(p.clients),
        unbound_(p.clients),
        bound_(p.clients),
        fifo_(fifo_capacity(p)) {
    index_bits_ = std::max(1, static_cast<int>(std::bit_width(p.clients - 1)));
    index_mask_ = (uint32_t{1} << index_bits_) - 1;
    for (uint32_t i = 0; i < p.clients; ++i) {
      clients_[i].xid = i;
      unbound_.push(i);
    }
    if (p.subnet_len != 0) owners_.assign(size_t{1} << (32 - p.subnet_len), 0);
    rng_ = 0x9e3779b97f4a7c15ull ^ rte_rdtsc();
  }

  // Main thread. Configures and starts the port; returns an error message or "".
  std::string setup() {
    if (!rte_eth_dev_is_valid_port(p_.port)) {
      return "port " + std::to_string(p_.port) + " does not exist (no --vdev given?)";
    }
    const int socket = rte_eth_dev_socket_id(p_.port);
    pool_ = rte_pktmbuf_pool_create("lg_pool", kMbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    socket < 0 ? SOCKET_ID_ANY : socket);
    if (pool_ == nullptr) return std::string("mbuf pool: ") + rte_strerror(rte_errno);
    rte_eth_conf conf{};
    int rc = rte_eth_dev_configure(p_.port, 1, 1, &conf);
    if (rc < 0) return "port " + std::to_string(p_.port) + " configure: " + rte_strerror(-rc);
    uint16_t nrx = kRxDesc, ntx = kTxDesc;
    rte_eth_dev_adjust_nb_rx_tx_desc(p_.port, &nrx, &ntx);
    rc = rte_eth_rx_queue_setup(p_.port, 0, nrx, static_cast<unsigned>(socket), nullptr, pool_);
    if (rc < 0) return "port " + std::to_string(p_.port) + " rx queue 0: " + rte_strerror(-rc);
    rc = rte_eth_tx_queue_setup(p_.port, 0, ntx, static_cast<unsigned>(socket), nullptr);
    if (rc < 0) return "port " + std::to_string(p_.port) + " tx queue 0: " + rte_strerror(-rc);
    rc = rte_eth_dev_start(p_.port);
    if (rc < 0) return "port " + std::to_string(p_.port) + " start: " + rte_strerror(-rc);
    // Direct-mode replies without the broadcast flag go to each client's own MAC.
    rc = rte_eth_promiscuous_enable(p_.port);
    if (rc < 0) std::fprintf(stderr, "warning: promiscuous mode: %s\n", rte_strerror(-rc));
    if (p_.have_src_mac) {
      src_mac_ = p_.src_mac;
    } else {
      rte_ether_addr a{};
      rc = rte_eth_macaddr_get(p_.port, &a);
      if (rc < 0) return "port " + std::to_string(p_.port) + " MAC: " + rte_strerror(-rc);
      std::memcpy(src_mac_.data(), a.addr_bytes, 6);
    }
    server_ip_ = p_.server_ip;
    server_mac_ = p_.server_mac;
    have_server_mac_ = p_.have_server_mac;
    build_templates();
    return "";
  }

  // Main thread, before run(): ARP-resolves --server unless its MAC is known. Bounded to 3 s.
  // False only if a relay cannot reach its server; on the link the MAC is learned from replies.
  bool resolve_server() {
    if (have_server_mac_ || server_ip_ == 0) return true;
    const uint64_t t0 = rte_rdtsc();
    uint64_t next_send = t0;
    while (!have_server_mac_ && rte_rdtsc() - t0 < 3 * hz_ && g_signals.load() == 0) {
      const uint64_t now = rte_rdtsc();
      if (now >= next_send) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (m != nullptr) {
          auto* f = rte_pktmbuf_mtod(m, uint8_t*);
          const size_t n = dp::write_arp_frame(f, dp::arp::kOpRequest, dp::kBroadcastMac, src_mac_,
                                               p_.src_ip, Mac{}, server_ip_);
          m->data_len = static_cast<uint16_t>(n);
          m->pkt_len = static_cast<uint32_t>(n);
          tx_[n_tx_++] = m;
          ++c_.tx_arp_request;
        }
        next_send = now + hz_ / 2;
      }
      poll_rx(now);
      flush();
    }
    if (!have_server_mac_ && p_.relay_ip == 0) {
      std::fprintf(stderr, "warning: no ARP reply from %s: learning its MAC from replies\n",
                   ip_str(server_ip_).c_str());
    }
    return have_server_mac_ || p_.relay_ip == 0;
  }

  // Main thread: the load loop, then the drain of outstanding exchanges.
  void run() {
    t0_ = rte_rdtsc();
    const uint64_t t_end = t0_ + static_cast<uint64_t>(p_.duration_s * static_cast<double>(hz_));
    uint64_t next_progress = t0_ + hz_;
    uint64_t stop_tsc = 0;
    bool stopping = false;
    for (;;) {
      const uint64_t now = rte_rdtsc();
      now_s_ = static_cast<uint32_t>((now - t0_) / hz_);
      uint32_t work = poll_rx(now);
      expire(now);
      if (!stopping) {
        const uint64_t total = started_total();
        if (now >= t_end || g_signals.load(std::memory_order_relaxed) != 0 ||
            (p_.max_exchanges != 0 && total >= p_.max_exchanges)) {
          stopping = true;
          stop_tsc = now;
        } else {
          start_exchanges(now);
        }
      }
      work += flush();
      if (work == 0 && p_.idle_us != 0) idle(now, stopping);
      // Every leg outstanding at the stop ends within 2 timeouts (a DORA may still send its
      // REQUEST); the margin only matters if the loop itself stalls.
      if (stopping && (outstanding_ == 0 || now - stop_tsc > 2 * timeout_cycles_ + hz_ / 10 ||
                       g_signals.load(std::memory_order_relaxed) > 1)) {
        break;
      }
      if (now >= next_progress) {
        next_progress += hz_;
        if (!p_.quiet) progress(now);
      }
    }
    load_cycles_ = stop_tsc - t0_;
    end_tsc_ = rte_rdtsc();
  }

  void report() const;

 private:
  // Nothing was received or sent: sleep up to --idle-us, but not past the next open-loop start.
  void idle(uint64_t now, bool stopping) const noexcept {
    uint64_t us = p_.idle_us;
    if (p_.rate > 0 && !stopping) {
      const auto next = t0_ + static_cast<uint64_t>(static_cast<double>(slots_ + 1) *
                                                    static_cast<double>(hz_) / p_.rate);
      us = next > now ? std::min<uint64_t>(us, (next - now) * 1'000'000 / hz_) : 0;
    }
    if (us >= 2) rte_delay_us_sleep(static_cast<unsigned>(us));
  }

  static size_t fifo_capacity(const Params& p) {
    // Entries alive ≈ legs sent per timeout. Open loop: DORA sends two legs per start; closed
    // loop: assume up to 2M legs/s. Stale entries are purged early when it fills (see purge()).
    const double legs_per_s = p.rate > 0 ? 2.5 * p.rate + 4096 : 2e6;
    const double want = legs_per_s * p.timeout_ms / 1000.0;
    return static_cast<size_t>(std::clamp(want, 65536.0, static_cast<double>(1u << 24)));
  }

  uint64_t started_total() const noexcept {
    return c_.dora.started + c_.renew.started + c_.release.started;
  }

  static Mac client_mac(uint32_t idx) noexcept {
    return Mac{0x02,
               0x00,
               static_cast<uint8_t>(idx >> 24),
               static_cast<uint8_t>(idx >> 16),
               static_cast<uint8_t>(idx >> 8),
               static_cast<uint8_t>(idx)};
  }

  uint32_t fifo_deadline(uint64_t tsc) const noexcept {
    return static_cast<uint32_t>((tsc + timeout_cycles_) >> kTscShift);
  }

  uint64_t next_random() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  void build_templates() {
    const bool relay = p_.relay_ip != 0;
    for (int t = 0; t < kTplCount; ++t) {
      Template& tp = tpl_[t];
      uint8_t* f = tp.f.data();
      store_be16(f + 12, dp::kEtherTypeIpv4);
      uint8_t* ip = f + dp::kEthHdrLen;
      ip[dp::ipv4::kOffVerIhl] = 0x45;
      store_be16(ip + dp::ipv4::kOffTotLen,
                 static_cast<uint16_t>(dp::kIpv4MinHdrLen + kUdpHdrLen + kPayloadLen));
      ip[dp::ipv4::kOffTtl] = 64;
      ip[dp::ipv4::kOffProto] = dp::kIpProtoUdp;
      uint8_t* udp = ip + dp::kIpv4MinHdrLen;
      store_be16(udp, relay ? dhcp::kServerPort : dhcp::kClientPort);
      store_be16(udp + 2, dhcp::kServerPort);
      store_be16(udp + 4, static_cast<uint16_t>(kUdpHdrLen + kPayloadLen));
      uint8_t* d = f + kL2L3Len;
      d[kOffOp] = 1;  // BOOTREQUEST
      d[kOffHtype] = 1;
      d[kOffHlen] = 6;
      d[kOffHops] = relay ? 1 : 0;
      if (p_.broadcast_flag && t != kTplRelease) store_be16(d + kOffFlags, 0x8000);
      store_be32(d + kOffGiaddr, p_.relay_ip);
      store_be32(d + kOffMagic, dhcp::kMagicCookie);
      size_t o = kOffOptions;
      static constexpr uint8_t kTypes[kTplCount] = {1, 3, 3, 7};
      d[o++] = dhcp::opt::kMessageType;
      d[o++] = 1;
      d[o++] = kTypes[t];
      if (p_.client_id) {
        d[o++] = dhcp::opt::kClientId;
        d[o++] = 7;
        d[o++] = 1;  // hardware type: Ethernet, then the MAC
        tp.off_client_id = static_cast<uint16_t>(kL2L3Len + o);
        o += 6;
      }
      if (t == kTplSelect) {
        d[o++] = dhcp::opt::kRequestedIp;
        d[o++] = 4;
        tp.off_req_ip = static_cast<uint16_t>(kL2L3Len + o);
        o += 4;
      }
      if (t == kTplSelect || t == kTplRelease) {
        d[o++] = dhcp::opt::kServerId;
        d[o++] = 4;
        tp.off_server_id = static_cast<uint16_t>(kL2L3Len + o);
        o += 4;
      }
      if (t != kTplRelease) {
        static constexpr uint8_t kPrl[] = {1, 3, 6, 15, 28, 51, 54, 58, 59};
        d[o++] = dhcp::opt::kParamRequest;
        d[o++] = sizeof kPrl;
        std::memcpy(d + o, kPrl, sizeof kPrl);
        o += sizeof kPrl;
      }
      if (relay) {
        // RFC 3046: circuit-id = the client index (a port number on a real relay), remote-id =
        // the client's MAC (a subscriber line's modem).
        d[o++] = dhcp::opt::kRelayAgent;
        d[o++] = 2 + 4 + 2 + 6;
        d[o++] = dhcp::opt::kCircuitId;
        d[o++] = 4;
        tp.off_circuit = static_cast<uint16_t>(kL2L3Len + o);
        o += 4;
        d[o++] = dhcp::opt::kRemoteId;
        d[o++] = 6;
        tp.off_remote = static_cast<uint16_t>(kL2L3Len + o);
        o += 6;
      }
      d[o++] = dhcp::opt::kEnd;
    }
  }

  // Writes the frame of template `t` for client `idx` into `m`. Addresses come from the client
  // and the run's parameters; both checksums are computed (~300 bytes).
  void emit(rte_mbuf* m, Tpl t, uint32_t idx) noexcept {
    const Template& tp = tpl_[t];
    const Client& c = clients_[idx];
    rte_pktmbuf_reset(m);
    auto* f = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(f, tp.f.data(), kFrameLen);
    m->data_len = static_cast<uint16_t>(kFrameLen);
    m->pkt_len = static_cast<uint32_t>(kFrameLen);
    const Mac mac = client_mac(idx);
    const bool relay = p_.relay_ip != 0;
    const bool unicast = relay || t == kTplRenew || t == kTplRelease;
    // Relayed frames come from the relay; on the link, a client sends from its own MAC and, once
    // bound, unicasts from its lease to the server (RFC 2131 §4.4.5).
    dp::write_eth(f, unicast ? server_mac_ : dp::kBroadcastMac, relay ? src_mac_ : mac,
                  dp::kEtherTypeIpv4);
    uint32_t src = 0, dst = 0xffffffff, server = server_ip_;
    if (!relay && c.server_id != 0) server = c.server_id;
    if (relay) {
      src = p_.relay_ip;
      dst = server;
    } else if (unicast) {
      src = c.lease;
      dst = server;
    }
    uint8_t* ip = f + dp::kEthHdrLen;
    store_be32(ip + dp::ipv4::kOffSrc, src);
    store_be32(ip + dp::ipv4::kOffDst, dst);
    store_be16(ip + dp::ipv4::kOffCsum, dp::csum(ip, dp::kIpv4MinHdrLen));
    uint8_t* d = f + kL2L3Len;
    store_be32(d + kOffXid, c.xid);
    if (t == kTplRenew || t == kTplRelease) store_be32(d + kOffCiaddr, c.lease);
    dp::store_mac(d + kOffChaddr, mac);
    if (tp.off_client_id) dp::store_mac(f + tp.off_client_id, mac);
    if (tp.off_req_ip) store_be32(f + tp.off_req_ip, c.offered);
    if (tp.off_server_id) store_be32(f + tp.off_server_id, c.server_id != 0 ? c.server_id : server);
    if (tp.off_circuit) store_be32(f + tp.off_circuit, idx);
    if (tp.off_remote) dp::store_mac(f + tp.off_remote, mac);
    // UDP checksum over the pseudo-header and the datagram; 0 is sent as 0xffff (RFC 768).
    uint8_t* udp = ip + dp::kIpv4MinHdrLen;
    uint8_t ph[12];
    store_be32(ph, src);
    store_be32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = dp::kIpProtoUdp;
    store_be16(ph + 10, static_cast<uint16_t>(kUdpHdrLen + kPayloadLen));
    uint16_t sum = dp::csum(udp, kUdpHdrLen + kPayloadLen, dp::csum_partial(ph, sizeof ph));
    store_be16(udp + 6, sum == 0 ? 0xffff : sum);
    ++c_.tx_dhcp[t];
  }

  // Starts exchanges due now: open loop by schedule, closed loop up to the window.
  void start_exchanges(uint64_t now) noexcept {
    uint32_t want = 0;
    if (p_.rate > 0) {
      const auto due = static_cast<uint64_t>(static_cast<double>(now - t0_) * p_.rate /
                                             static_cast<double>(hz_));
      const uint64_t backlog = due > slots_ ? due - slots_ : 0;
      c_.max_backlog = std::max(c_.max_backlog, backlog);
      want = static_cast<uint32_t>(std::min<uint64_t>(backlog, kBurst));
    } else if (outstanding_ < p_.window) {
      want = std::min<uint32_t>(p_.window - outstanding_, kBurst);
    }
    if (p_.max_exchanges != 0) {
      want = static_cast<uint32_t>(std::min<uint64_t>(want, p_.max_exchanges - started_total()));
    }
    want = std::min<uint32_t>(want, static_cast<uint32_t>(kTxMax - n_tx_));
    if (want == 0) return;
    rte_mbuf* ms[kBurst];
    if (rte_pktmbuf_alloc_bulk(pool_, ms, want) != 0) {
      ++c_.mbuf_alloc_failed;
      return;
    }
    uint32_t used = 0;
    for (uint32_t i = 0; i < want; ++i) {
      if (p_.rate > 0) ++slots_;
      if (!start_one(now, ms[used])) {
        if (p_.rate == 0) break;
        continue;
      }
      tx_[n_tx_++] = ms[used++];
    }
    if (used < want) rte_pktmbuf_free_bulk(ms + used, want - used);
  }

  // Picks a client and the kind of exchange (see --mode) and sends its first packet into `m`.
  bool start_one(uint64_t now, rte_mbuf* m) noexcept {
    if (fifo_.full() && !purge()) {
      ++c_.fifo_full;
      return false;
    }
    uint32_t idx = 0;
    const auto r = static_cast<uint32_t>(next_random() % 100);
    // renew/release: every client binds first (index order), then the bound ones take turns;
    // mix: each start draws its kind, a DORA when no client is bound.
    const bool want_bound = p_.mode == Mode::kMix ? r < p_.renew_pct + p_.release_pct
                                                  : p_.mode != Mode::kDora && unbound_.size() == 0;
    bool dora = true;
    // Direct-mode renew and release unicast to the server: not before its MAC is known.
    if (want_bound && have_server_mac_ && bound_.pop(idx)) {
      dora = false;
    } else if (!unbound_.pop(idx) && !bound_.pop(idx)) {  // every client bound: DORA again
      if (p_.rate > 0) ++c_.skipped_busy;
      return false;
    }
    Client& c = clients_[idx];
    c.xid = idx | (((c.xid >> index_bits_) + 1) << index_bits_);
    c.start_tsc = c.leg_tsc = now;
    if (!dora && r >= p_.renew_pct) {  // release: fire and forget
      emit(m, kTplRelease, idx);
      c.lease = 0;
      c.state = State::kIdle;
      ++c_.release.started;
      ++c_.release.completed;
      unbound_.push(idx);
      return true;
    }
    ++c.leg;
    fifo_.push(fifo_deadline(now), idx, c.leg);
    ++outstanding_;
    if (dora) {
      c.state = State::kSelecting;
      emit(m, kTplDiscover, idx);
      ++c_.dora.started;
      ++c_.discover_offer.sent;
    } else {
      c.state = State::kRenewing;
      emit(m, kTplRenew, idx);
      ++c_.renew.started;
      ++c_.renew_ack.sent;
    }
    return true;
  }

  // The FIFO is full: drops answered legs from its head ahead of their deadline. False if the
  // head is a live leg (every slot may be: then nothing more can be tracked now).
  bool purge() noexcept {
    while (!fifo_.empty() && !live(fifo_.front())) fifo_.pop();
    return !fifo_.full();
  }

  bool live(uint64_t e) const noexcept {
    const Client& c = clients_[TimeoutFifo::client(e)];
    return c.state != State::kIdle && c.leg == TimeoutFifo::leg(e) &&
           fifo_deadline(c.leg_tsc) == TimeoutFifo::deadline(e);
  }

  void expire(uint64_t now) noexcept {
    const auto now32 = static_cast<uint32_t>(now >> kTscShift);
    while (!fifo_.empty()) {
      const uint64_t e = fifo_.front();
      if (static_cast<int32_t>(TimeoutFifo::deadline(e) - now32) > 0) break;
      fifo_.pop();
      if (!live(e)) continue;
      const uint32_t idx = TimeoutFifo::client(e);
      Client& c = clients_[idx];
      switch (c.state) {
        case State::kSelecting:
          ++c_.discover_offer.dropped;
          ++c_.dora.dropped;
          break;
        case State::kRequesting:
          ++c_.request_ack.dropped;
          ++c_.dora.dropped;
          break;
        case State::kRenewing:
          ++c_.renew_ack.dropped;
          ++c_.renew.dropped;
          break;
        case State::kIdle:
          break;
      }
      finish(idx);
    }
  }

  // Ends the client's exchange: back to the ring its lease says.
  void finish(uint32_t idx) noexcept {
    Client& c = clients_[idx];
    c.state = State::kIdle;
    --outstanding_;
    (c.lease != 0 ? bound_ : unbound_).push(idx);
  }

  uint32_t poll_rx(uint64_t now) noexcept {
    rte_mbuf* rx[kBurst];
    const uint16_t n = rte_eth_rx_burst(p_.port, 0, rx, kBurst);
    rte_mbuf* to_free[kBurst];
    uint16_t nf = 0;
    for (uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void*));
      if (!on_frame(rx[i], now)) to_free[nf++] = rx[i];
    }
    if (nf != 0) rte_pktmbuf_free_bulk(to_free, nf);
    return n;
  }

  // Handles one received frame. True if `m` was reused for TX (an ARP reply or a REQUEST).
  bool on_frame(rte_mbuf* m, uint64_t now) noexcept {
    auto* f = rte_pktmbuf_mtod(m, uint8_t*);
    const uint32_t len = m->data_len;  // multi-segment frames: only the first segment is read
    if (len < dp::kEthHdrLen + dp::kArpLen) return ignore();
    const uint16_t type = load_be16(f + 12);
    if (type == dp::kEtherTypeArp) return on_arp(m, f);
    if (type != dp::kEtherTypeIpv4 || len < kL2L3Len + dhcp::kMinLen) return ignore();
    const uint8_t* ip = f + dp::kEthHdrLen;
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    if ((ip[0] >> 4) != 4 || ihl < dp::kIpv4MinHdrLen ||
        ip[dp::ipv4::kOffProto] != dp::kIpProtoUdp ||
        (load_be16(ip + dp::ipv4::kOffFrag) & dp::ipv4::kFragMask) != 0) {
      return ignore();
    }
    const size_t ip_len =
        std::min<size_t>(load_be16(ip + dp::ipv4::kOffTotLen), len - dp::kEthHdrLen);
    if (ip_len < ihl + kUdpHdrLen) return ignore();
    uint8_t* udp = f + dp::kEthHdrLen + ihl;
    const uint16_t want_dport = p_.relay_ip != 0 ? dhcp::kServerPort : dhcp::kClientPort;
    if (load_be16(udp) != dhcp::kServerPort || load_be16(udp + 2) != want_dport) return ignore();
    // Relay mode: our own relayed requests (seen again on the link) go to the server, not to us.
    if (p_.relay_ip != 0 && load_be32(ip + dp::ipv4::kOffDst) != p_.relay_ip) return ignore();
    const size_t udp_len = std::min<size_t>(load_be16(udp + 4), ip_len - ihl);
    if (udp_len < kUdpHdrLen + dhcp::kMinLen) return ignore();
    uint8_t* payload = udp + kUdpHdrLen;
    if (payload[kOffOp] != 2) return ignore();  // a request: ours, or another client's
    payload[kOffOp] = 1;                        // see the file comment: parse() reads requests only
    dhcp::Malformed why{};
    if (!dhcp::parse(std::span<const uint8_t>(payload, udp_len - kUdpHdrLen), req_, why)) {
      ++c_.rx_malformed;
      ++c_.malformed[static_cast<size_t>(why)];
      return false;
    }
    switch (req_.type) {
      case MessageType::kOffer:
        ++c_.rx_offer;
        break;
      case MessageType::kAck:
        ++c_.rx_ack;
        break;
      case MessageType::kNak:
        ++c_.rx_nak;
        break;
      default:
        ++c_.rx_other_dhcp;
        return false;
    }
    const uint32_t idx = req_.xid & index_mask_;
    if (idx >= p_.clients || req_.chaddr != client_mac(idx)) {
      ++c_.rx_unmatched;
      return false;
    }
    Client& c = clients_[idx];
    if (c.xid != req_.xid || c.state == State::kIdle) {
      ++c_.rx_late;
      return false;
    }
    if (req_.type == MessageType::kNak) {
      on_nak(idx);
      return false;
    }
    if (c.state == State::kSelecting) {
      if (req_.type != MessageType::kOffer) {
        ++c_.rx_unexpected;
        return false;
      }
      return on_offer(idx, m, f, now);
    }
    if (req_.type != MessageType::kAck) {  // an OFFER while requesting: a second server, or a dup
      ++c_.rx_unexpected;
      return false;
    }
    on_ack(idx, now);
    return false;
  }

  bool ignore() noexcept {
    ++c_.rx_ignored;
    return false;
  }

  bool on_offer(uint32_t idx, rte_mbuf* m, const uint8_t* f, uint64_t now) noexcept {
    Client& c = clients_[idx];
    const uint32_t yi = req_.yiaddr;
    const uint32_t sid = req_.option_ip(dhcp::opt::kServerId);
    if (yi == 0 || sid == 0) {
      ++c_.rx_invalid;
      return false;
    }
    if (p_.subnet_len != 0 && !in_subnet(yi)) ++c_.out_of_subnet;
    if (p_.relay_ip == 0) learn_server(sid, f + 6);
    ++c_.discover_offer.answered;
    do_hist_.add(now - c.leg_tsc);
    if (fifo_.full() && !purge()) {
      ++c_.fifo_full;
      ++c_.dora.dropped;
      finish(idx);
      return false;
    }
    c.offered = yi;
    c.server_id = sid;
    c.state = State::kRequesting;
    c.leg_tsc = now;
    ++c.leg;
    fifo_.push(fifo_deadline(now), idx, c.leg);
    emit(m, kTplSelect, idx);  // the OFFER's fields were read: its mbuf becomes the REQUEST
    ++c_.request_ack.sent;
    queue_tx(m);
    return true;
  }

  void on_ack(uint32_t idx, uint64_t now) noexcept {
    Client& c = clients_[idx];
    const uint32_t yi = req_.yiaddr;
    const bool renewing = c.state == State::kRenewing;
    if (yi != (renewing ? c.lease : c.offered)) ++c_.bad_yiaddr;
    (renewing ? c_.renew_ack : c_.request_ack).answered++;
    (renewing ? ra_renew_hist_ : ra_hist_).add(now - c.leg_tsc);
    (renewing ? renew_hist_ : dora_hist_).add(now - c.start_tsc);
    (renewing ? c_.renew : c_.dora).completed++;
    if (const uint32_t sid = req_.option_ip(dhcp::opt::kServerId); sid != 0) c.server_id = sid;
    const uint32_t secs =
        req_.has(dhcp::opt::kLeaseTime) ? req_.option_ip(dhcp::opt::kLeaseTime) : UINT32_MAX;
    bind(idx, yi, secs);
    finish(idx);
  }

  void on_nak(uint32_t idx) noexcept {
    Client& c = clients_[idx];
    switch (c.state) {
      case State::kSelecting:
        ++c_.discover_offer.answered;
        ++c_.dora.naks;
        break;
      case State::kRequesting:
        ++c_.request_ack.answered;
        ++c_.dora.naks;
        break;
      case State::kRenewing:
        ++c_.renew_ack.answered;
        ++c_.renew.naks;
        break;
      case State::kIdle:
        break;
    }
    c.lease = 0;  // RFC 2131 §4.4.5: back to INIT
    finish(idx);
  }

  bool in_subnet(uint32_t ip) const noexcept {
    return (ip & (~uint32_t{0} << (32 - p_.subnet_len))) == p_.subnet;
  }

  // Records the lease; a different client still holding the same address is a duplicate.
  void bind(uint32_t idx, uint32_t yi, uint32_t secs) noexcept {
    Client& c = clients_[idx];
    c.lease = yi;
    c.lease_end_s = secs >= UINT32_MAX - now_s_ ? UINT32_MAX : now_s_ + secs;
    if (owners_.empty() || yi == 0) return;
    if (!in_subnet(yi)) {
      ++c_.out_of_subnet;
      return;
    }
    uint32_t& owner = owners_[yi - p_.subnet];
    if (owner != 0 && owner - 1 != idx) {
      const Client& o = clients_[owner - 1];
      if (o.lease == yi && o.lease_end_s > now_s_) ++c_.duplicates;
    }
    owner = idx + 1;
  }

  void learn_server(uint32_t sid, const uint8_t* eth_src) noexcept {
    if (server_ip_ == 0) server_ip_ = sid;
    if (!have_server_mac_ && sid == server_ip_) {
      server_mac_ = dp::load_mac(eth_src);
      have_server_mac_ = true;
    }
  }

  // ARP: answers requests for our address and, with --subnet, for addresses our clients lease
  // (a server replying through its kernel resolves ciaddr first); learns the server's MAC.
  bool on_arp(rte_mbuf* m, uint8_t* f) noexcept {
    const uint8_t* a = f + dp::kEthHdrLen;
    if (load_be16(a + dp::arp::kOffHtype) != dp::arp::kHtypeEthernet ||
        load_be16(a + dp::arp::kOffPtype) != dp::kEtherTypeIpv4 || a[dp::arp::kOffHlen] != 6 ||
        a[dp::arp::kOffPlen] != 4) {
      return ignore();
    }
    const uint16_t op = load_be16(a + dp::arp::kOffOp);
    const Mac sha = dp::load_mac(a + dp::arp::kOffSha);
    const uint32_t spa = load_be32(a + dp::arp::kOffSpa);
    const uint32_t tpa = load_be32(a + dp::arp::kOffTpa);
    if (op == dp::arp::kOpReply) {
      ++c_.rx_arp_reply;
      if (server_ip_ != 0 && spa == server_ip_ && !have_server_mac_) {
        server_mac_ = sha;
        have_server_mac_ = true;
      }
      return false;
    }
    if (op != dp::arp::kOpRequest) return ignore();
    ++c_.rx_arp_request;
    Mac mine{};
    if (tpa != 0 && (tpa == p_.src_ip || tpa == p_.relay_ip)) {
      mine = src_mac_;
    } else if (!owners_.empty() && in_subnet(tpa) && owners_[tpa - p_.subnet] != 0) {
      const uint32_t idx = owners_[tpa - p_.subnet] - 1;
      if (clients_[idx].lease != tpa) return false;
      mine = client_mac(idx);
    } else {
      return false;
    }
    if (spa == tpa) return false;  // a gratuitous ARP or a probe for it: not ours to answer
    rte_pktmbuf_reset(m);
    f = rte_pktmbuf_mtod(m, uint8_t*);
    const size_t n = dp::write_arp_frame(f, dp::arp::kOpReply, sha, mine, tpa, sha, spa);
    m->data_len = static_cast<uint16_t>(n);
    m->pkt_len = static_cast<uint32_t>(n);
    ++c_.tx_arp_reply;
    queue_tx(m);
    return true;
  }

  void queue_tx(rte_mbuf* m) noexcept { tx_[n_tx_++] = m; }

  // Sends what this iteration queued. The PMD may take a burst in parts; what it still refuses
  // after a bounded retry is freed and counted (those legs then time out).
  uint32_t flush() noexcept {
    const uint32_t queued = n_tx_;
    uint16_t sent = 0;
    for (int tries = 0; sent < n_tx_ && tries < 64; ++tries) {
      sent = static_cast<uint16_t>(
          sent + rte_eth_tx_burst(p_.port, 0, tx_ + sent, static_cast<uint16_t>(n_tx_ - sent)));
    }
    if (sent < n_tx_) {
      c_.tx_refused += n_tx_ - sent;
      rte_pktmbuf_free_bulk(tx_ + sent, n_tx_ - sent);
    }
    n_tx_ = 0;
    return queued;
  }

  void progress(uint64_t now) const {
    std::fprintf(stderr,
                 "t=%.1fs started=%llu completed=%llu naks=%llu dropped=%llu outstanding=%u\n",
                 static_cast<double>(now - t0_) / static_cast<double>(hz_),
                 static_cast<unsigned long long>(started_total()),
                 static_cast<unsigned long long>(c_.dora.completed + c_.renew.completed +
                                                 c_.release.completed),
                 static_cast<unsigned long long>(c_.dora.naks + c_.renew.naks),
                 static_cast<unsigned long long>(c_.dora.dropped + c_.renew.dropped), outstanding_);
  }

  static constexpr uint16_t kTxMax = 2 * kBurst + 8;  // one RX burst of replies + one of starts

  const Params p_;
  const uint64_t hz_;
  const uint64_t timeout_cycles_;
  std::vector<Client> clients_;
  IndexRing unbound_, bound_;
  TimeoutFifo fifo_;
  std::vector<uint32_t> owners_;  // --subnet: address - subnet → client index + 1 (0: none)
  int index_bits_ = 1;
  uint32_t index_mask_ = 1;
  uint64_t rng_ = 1;
  rte_mempool* pool_ = nullptr;
  Mac src_mac_{}, server_mac_{};
  bool have_server_mac_ = false;
  uint32_t server_ip_ = 0;
  std::array<Template, kTplCount> tpl_{};
  rte_mbuf* tx_[kTxMax] = {};
  uint16_t n_tx_ = 0;
  uint32_t outstanding_ = 0;  // clients waiting for a reply
  uint64_t slots_ = 0;        // open loop: start slots consumed
  uint64_t t0_ = 0, load_cycles_ = 0, end_tsc_ = 0;
  uint32_t now_s_ = 0;
  dhcp::Request req_;  // parse target, reused (1.5 KB)
  Counters c_;
  Histogram dora_hist_, renew_hist_, do_hist_, ra_hist_, ra_renew_hist_;
};

void print_hist(const char* name, const Histogram& h, double us_per_cycle, bool last) {
  std::printf(
      "    \"%s\": {\"count\": %llu, \"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
      "\"max\": %.1f}%s\n",
      name, static_cast<unsigned long long>(h.count()), h.mean() * us_per_cycle,
      h.quantile(0.50) * us_per_cycle, h.quantile(0.90) * us_per_cycle,
      h.quantile(0.99) * us_per_cycle, static_cast<double>(h.max()) * us_per_cycle,
      last ? "" : ",");
}

void print_kind(const char* name, const KindStats& k, bool last) {
  std::printf(
      "    \"%s\": {\"started\": %llu, \"completed\": %llu, \"naks\": %llu, \"dropped\": %llu}%s\n",
      name, static_cast<unsigned long long>(k.started),
      static_cast<unsigned long long>(k.completed), static_cast<unsigned long long>(k.naks),
      static_cast<unsigned long long>(k.dropped), last ? "" : ",");
}

void print_leg(const char* name, const LegStats& l, bool last) {
  std::printf("    \"%s\": {\"sent\": %llu, \"answered\": %llu, \"dropped\": %llu}%s\n", name,
              static_cast<unsigned long long>(l.sent), static_cast<unsigned long long>(l.answered),
              static_cast<unsigned long long>(l.dropped), last ? "" : ",");
}

void Generator::report() const {
  using ull = unsigned long long;
  const double hz = static_cast<double>(hz_);
  const double us = 1e6 / hz;
  const double load_s = static_cast<double>(load_cycles_) / hz;
  const double elapsed_s = static_cast<double>(end_tsc_ - t0_) / hz;
  // Exchanges that expect a reply; releases are sent and done.
  const uint64_t started = c_.dora.started + c_.renew.started;
  const uint64_t completed = c_.dora.completed + c_.renew.completed;
  const uint64_t naks = c_.dora.naks + c_.renew.naks;
  const uint64_t dropped = c_.dora.dropped + c_.renew.dropped;
  rte_eth_stats ps{};
  rte_eth_stats_get(p_.port, &ps);
  std::printf("{\n  \"tool\": \"dhcp_loadgen\",\n");
  std::printf(
      "  \"params\": {\"mode\": \"%s\", \"clients\": %u, \"rate\": %.0f, \"window\": %u, "
      "\"duration_s\": %.3f, \"max_exchanges\": %llu, \"timeout_ms\": %u, \"relay\": %s%s%s, "
      "\"server\": %s%s%s, \"server_mac\": %s%s%s, \"subnet\": %s%s%s, \"broadcast_flag\": %s, "
      "\"client_id\": %s, \"renew_share\": %u, \"release_share\": %u, \"src_mac\": \"%s\", "
      "\"port\": %u, \"idle_us\": %u},\n",
      kModeNames[static_cast<int>(p_.mode)], p_.clients, p_.rate, p_.window, p_.duration_s,
      static_cast<ull>(p_.max_exchanges), p_.timeout_ms, p_.relay_ip ? "\"" : "",
      p_.relay_ip ? ip_str(p_.relay_ip).c_str() : "null", p_.relay_ip ? "\"" : "",
      server_ip_ ? "\"" : "", server_ip_ ? ip_str(server_ip_).c_str() : "null",
      server_ip_ ? "\"" : "", have_server_mac_ ? "\"" : "",
      have_server_mac_ ? mac_str(server_mac_).c_str() : "null", have_server_mac_ ? "\"" : "",
      p_.subnet_len ? "\"" : "",
      p_.subnet_len ? (ip_str(p_.subnet) + "/" + std::to_string(p_.subnet_len)).c_str() : "null",
      p_.subnet_len ? "\"" : "", p_.broadcast_flag ? "true" : "false",
      p_.client_id ? "true" : "false", p_.renew_pct, p_.release_pct, mac_str(src_mac_).c_str(),
      p_.port, p_.idle_us);
  std::printf("  \"elapsed_s\": %.3f,\n  \"load_s\": %.3f,\n", elapsed_s, load_s);
  const uint64_t tx_total = c_.tx_dhcp[0] + c_.tx_dhcp[1] + c_.tx_dhcp[2] + c_.tx_dhcp[3] +
                            c_.tx_arp_request + c_.tx_arp_reply;
  std::printf(
      "  \"sent\": {\"discover\": %llu, \"request_selecting\": %llu, \"request_renew\": %llu, "
      "\"release\": %llu, \"arp_request\": %llu, \"arp_reply\": %llu, \"total\": %llu},\n",
      static_cast<ull>(c_.tx_dhcp[kTplDiscover]), static_cast<ull>(c_.tx_dhcp[kTplSelect]),
      static_cast<ull>(c_.tx_dhcp[kTplRenew]), static_cast<ull>(c_.tx_dhcp[kTplRelease]),
      static_cast<ull>(c_.tx_arp_request), static_cast<ull>(c_.tx_arp_reply),
      static_cast<ull>(tx_total));
  std::printf(
      "  \"received\": {\"offer\": %llu, \"ack\": %llu, \"nak\": %llu, \"other_dhcp\": %llu, "
      "\"malformed\": %llu, \"unmatched\": %llu, \"late\": %llu, \"unexpected\": %llu, "
      "\"invalid\": %llu, \"arp_request\": %llu, \"arp_reply\": %llu, \"ignored\": %llu},\n",
      static_cast<ull>(c_.rx_offer), static_cast<ull>(c_.rx_ack), static_cast<ull>(c_.rx_nak),
      static_cast<ull>(c_.rx_other_dhcp), static_cast<ull>(c_.rx_malformed),
      static_cast<ull>(c_.rx_unmatched), static_cast<ull>(c_.rx_late),
      static_cast<ull>(c_.rx_unexpected), static_cast<ull>(c_.rx_invalid),
      static_cast<ull>(c_.rx_arp_request), static_cast<ull>(c_.rx_arp_reply),
      static_cast<ull>(c_.rx_ignored));
  std::printf("  \"malformed\": {");
  for (size_t i = 0; i < static_cast<size_t>(dhcp::Malformed::kCount); ++i) {
    std::printf("%s\"%s\": %llu", i ? ", " : "", dhcp::kMalformedNames[i],
                static_cast<ull>(c_.malformed[i]));
  }
  std::printf("},\n");
  std::printf(
      "  \"exchanges\": {\"started\": %llu, \"completed\": %llu, \"naks\": %llu, \"dropped\": "
      "%llu, \"in_flight_at_end\": %u, \"releases\": %llu},\n",
      static_cast<ull>(started), static_cast<ull>(completed), static_cast<ull>(naks),
      static_cast<ull>(dropped), outstanding_, static_cast<ull>(c_.release.started));
  std::printf("  \"by_kind\": {\n");
  print_kind("dora", c_.dora, false);
  print_kind("renew", c_.renew, false);
  print_kind("release", c_.release, true);
  std::printf("  },\n  \"legs\": {\n");
  print_leg("discover_offer", c_.discover_offer, false);
  print_leg("request_ack", c_.request_ack, false);
  print_leg("renew_ack", c_.renew_ack, true);
  std::printf(
      "  },\n  \"drop_ratio\": %.6f,\n  \"naks\": %llu,\n  \"duplicates\": %llu,\n"
      "  \"bad_yiaddr\": %llu,\n  \"out_of_subnet\": %llu,\n",
      started ? static_cast<double>(dropped) / static_cast<double>(started) : 0.0,
      static_cast<ull>(naks), static_cast<ull>(c_.duplicates), static_cast<ull>(c_.bad_yiaddr),
      static_cast<ull>(c_.out_of_subnet));
  std::printf(
      "  \"offered_rate\": %.1f,\n  \"started_per_s\": %.1f,\n"
      "  \"achieved_exchanges_per_s\": %.1f,\n  \"packets_sent_per_s\": %.1f,\n",
      p_.rate, load_s > 0 ? static_cast<double>(started_total()) / load_s : 0.0,
      load_s > 0 ? static_cast<double>(completed) / load_s : 0.0,
      load_s > 0 ? static_cast<double>(tx_total) / load_s : 0.0);
  std::printf("  \"latency_us\": {\n");
  print_hist("dora", dora_hist_, us, false);
  print_hist("renew", renew_hist_, us, false);
  print_hist("discover_offer", do_hist_, us, false);
  print_hist("request_ack", ra_hist_, us, false);
  print_hist("renew_ack", ra_renew_hist_, us, true);
  std::printf(
      "  },\n  \"generator\": {\"skipped_busy\": %llu, \"fifo_full\": %llu, "
      "\"fifo_capacity\": %zu, \"mbuf_alloc_failed\": %llu, \"tx_refused\": %llu, "
      "\"max_backlog\": %llu, \"port_ipackets\": %llu, \"port_opackets\": %llu, "
      "\"port_imissed\": %llu, \"port_ierrors\": %llu, \"port_oerrors\": %llu, "
      "\"port_rx_nombuf\": %llu}\n}\n",
      static_cast<ull>(c_.skipped_busy), static_cast<ull>(c_.fifo_full), fifo_.capacity(),
      static_cast<ull>(c_.mbuf_alloc_failed), static_cast<ull>(c_.tx_refused),
      static_cast<ull>(c_.max_backlog), static_cast<ull>(ps.ipackets),
      static_cast<ull>(ps.opackets), static_cast<ull>(ps.imissed), static_cast<ull>(ps.ierrors),
      static_cast<ull>(ps.oerrors), static_cast<ull>(ps.rx_nombuf));
}

}  // namespace
}  // namespace lg

int main(int argc, char** argv) {
  // Our options before "--", the EAL's after it.
  int split = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  }
  lg::Params p;
  std::string err;
  if (!lg::parse_args(split, argv, p, err)) {
    std::fprintf(stderr, "dhcp_loadgen: %s\n", err.c_str());
    return 2;
  }
  std::vector<std::string> eal_args{argv[0]};
  bool has_no_pci = false;
  for (int i = split + 1; i < argc; ++i) {
    eal_args.emplace_back(argv[i]);
    if (eal_args.back() == "--no-pci") has_no_pci = true;
  }
  if (!has_no_pci) eal_args.emplace_back("--no-pci");
  std::vector<char*> eal_argv;
  for (auto& a : eal_args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "dhcp_loadgen: rte_eal_init: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  std::signal(SIGINT, lg::on_signal);
  std::signal(SIGTERM, lg::on_signal);
  int rc = 0;
  {
    auto gen = std::make_unique<lg::Generator>(p);
    if (std::string e = gen->setup(); !e.empty()) {
      std::fprintf(stderr, "dhcp_loadgen: %s\n", e.c_str());
      rc = 1;
    } else if (!gen->resolve_server()) {
      std::fprintf(stderr, "dhcp_loadgen: no ARP reply from server %s in 3 s (give --server-mac)\n",
                   lg::ip_str(p.server_ip).c_str());
      rc = 1;
    } else {
      gen->run();
      gen->report();
    }
    if (rte_eth_dev_is_valid_port(p.port)) rte_eth_dev_stop(p.port);
  }
  rte_eal_cleanup();
  return rc;
}
