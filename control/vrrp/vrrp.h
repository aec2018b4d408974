#pragma once
// VRRP (RFC 5798 as updated by RFC 9568 for v3, RFC 3768 for v2), IPv4 only: the advert codec and
// the per-instance state machine. Pure logic over bytes and a caller-supplied clock (ns), run by
// the control thread; unit-tested without EAL.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ctl::vrrp {

inline constexpr uint8_t kIpProto = 112;
inline constexpr uint32_t kMulticastGroup = 0xe0000012;  // 224.0.0.18
inline constexpr uint8_t kIpTtl = 255;  // not kTtl: Invalid::kTtl would shadow it (-Wshadow)
inline constexpr size_t kMaxAddrs = 32;

// ---------------------------------------------------------------------------------------------
// Codec

// VRRPv3 over IPv4 checksum: keepalived and FRR include the IPv4 pseudo-header (Debian's
// keepalived 2.2.7 accepts nothing else); RFC 9568, Cisco and Juniper do not. v2 never does.
enum class Checksum : uint8_t { kWithPseudoHeader, kWithoutPseudoHeader };

struct Advert {
  uint8_t version = 3;         // 2 or 3
  uint8_t vrid = 0;            // 1..255
  uint8_t priority = 0;        // 0 = master leaving, 255 = address owner
  uint16_t interval_cs = 100;  // v3: max advert interval in centiseconds (12 bits); v2: seconds×100
  std::vector<uint32_t> addrs;    // host order
  std::array<uint8_t, 8> auth{};  // v2 auth data (PASS); zero when unused
  uint8_t auth_type = 0;          // v2: 0 none, 1 simple text password
};

// Why a received advert was refused. Names are the `reason` label of
// tandem_vrrp_adverts_invalid_total.
enum class Invalid : uint8_t {
  kTtl,          // IP TTL != 255
  kVersion,      // not 2 or 3, or not the version configured for the VRID
  kType,         // VRRP type != 1 (advertisement)
  kLength,       // truncated, or shorter than its address count says
  kChecksum,     // neither checksum variant verifies
  kVrid,         // no instance for this VRID on this port
  kAddressList,  // addresses differ from ours and the sender is not the owner (priority != 255)
  kInterval,     // v2: advert interval differs from ours
  kAuth,         // v2: auth type or password differs
  kCount
};
inline constexpr std::array<const char*, static_cast<size_t>(Invalid::kCount)> kInvalidNames{
    "ttl", "version", "type", "length", "checksum", "vrid", "address_list", "interval", "auth"};

struct Decoded {
  Advert advert;
  uint32_t src_ip = 0;  // IP source of the packet (host order)
  uint32_t dst_ip = 0;
  Checksum checksum = Checksum::kWithPseudoHeader;  // the variant that verified (v3)
};

// Parses an IPv4 packet (starting at the IP header, `len` bytes) carrying VRRP. Checks IP proto
// 112, TTL, VRRP version/type, lengths and the checksum (accepting both v3 variants); does not
// check VRID, addresses, interval or auth (that needs the instance: see Instance::check()).
// On failure returns nullopt and sets `why`.
std::optional<Decoded> decode(const uint8_t* ip, size_t len, Invalid& why);

// Writes the VRRP message (no IP header) into `out` (at least 16 + 4 × addrs bytes, plus 8 for
// v2); returns its length. The checksum covers the pseudo-header built from `src`/`dst` when `ck`
// is kWithPseudoHeader and the version is 3.
size_t encode_vrrp(uint8_t* out, const Advert& a, Checksum ck, uint32_t src, uint32_t dst);

// Writes a whole Ethernet frame: dst MAC, src MAC (the virtual MAC 00:00:5e:00:01:VRID or the
// port's), IPv4 header (TOS 0xc0, TTL 255, proto 112, DF clear, ID 0, checksum) and the VRRP
// message. `out` must hold 14 + 20 + 24 + 4 × kMaxAddrs bytes. Returns the frame length (≥ 60,
// zero-padded).
size_t encode_frame(uint8_t* out, const std::array<uint8_t, 6>& dst_mac,
                    const std::array<uint8_t, 6>& src_mac, const Advert& a, Checksum ck,
                    uint32_t src_ip, uint32_t dst_ip);

// 00:00:5e:00:01:VRID
std::array<uint8_t, 6> virtual_mac(uint8_t vrid);
// 01:00:5e:00:00:12
std::array<uint8_t, 6> multicast_mac();

// ---------------------------------------------------------------------------------------------
// State machine (RFC 5798 §6.4, with keepalived's extensions: preempt_delay, FAULT)

enum class State : uint8_t { kInit, kBackup, kMaster, kFault };
const char* to_string(State s);  // "INIT", "BACKUP", "MASTER", "FAULT" (keepalived's words)

struct Config {
  std::string name;
  uint8_t vrid = 1;
  uint8_t version = 3;
  uint8_t priority = 100;      // configured base priority, 1..255
  uint16_t interval_cs = 100;  // our advert interval (v2: multiple of 100)
  bool preempt = true;
  uint64_t preempt_delay_ns = 0;  // after start, a backup does not preempt for this long
  uint32_t primary_ip = 0;        // our address on the port: advert source, tie-break
  std::vector<uint32_t> addrs;    // the virtual IPs (sorted as configured)
  std::array<uint8_t, 8> auth{};  // v2 PASS password, zero-padded
  uint8_t auth_type = 0;
  bool accept_addr_mismatch = false;  // (reserved)
};

// What the caller must do after an event. Several can come from one event.
struct Action {
  enum Kind : uint8_t {
    kSendAdvert,  // send an advert now with `priority` (0 when leaving mastership)
    kBecome,      // the state changed to `state`: update the data plane, notify, GARP if master
    kReannounce,  // still master, but a split brain just healed: send gratuitous ARPs again
  };
  Kind kind;
  State state = State::kInit;
  uint8_t priority = 0;
};

class Instance {
 public:
  explicit Instance(Config c);

  const Config& config() const { return cfg_; }
  State state() const { return state_; }
  uint8_t effective_priority() const { return prio_; }
  uint32_t master_ip() const { return master_ip_; }           // 0 when unknown; ours when master
  uint16_t master_interval_cs() const { return master_cs_; }  // the interval in use
  uint64_t transitions() const { return transitions_; }
  uint64_t last_transition_ns() const { return last_transition_ns_; }
  // Skew_Time and Master_Down_Interval in ns for the interval in use (RFC 5798 §6.1).
  uint64_t skew_ns() const;
  uint64_t master_down_ns() const;
  // When tick() next has something to do (advert due or master down); UINT64_MAX if nothing is
  // armed. The end of preempt_delay needs no tick: adverts after it are ignored and Master_Down
  // runs out.
  uint64_t next_deadline() const { return deadline_; }

  // Instance-level checks on a decoded advert (VRID must already match): address list, v2
  // interval and auth. Returns nullopt if acceptable.
  std::optional<Invalid> check(const Advert& a) const;

  // Startup: priority 255 → MASTER at once (advert + become), else BACKUP with Master_Down.
  void start(uint64_t now, std::vector<Action>& out);
  // Clean shutdown: a master sends priority 0 and goes to INIT.
  void shutdown(uint64_t now, std::vector<Action>& out);
  // A valid advert (checked) from `src`.
  void on_advert(const Advert& a, uint32_t src, uint64_t now, std::vector<Action>& out);
  // Timers.
  void tick(uint64_t now, std::vector<Action>& out);
  // Tracking (keepalived semantics computed by effective_priority() below): a new effective
  // priority (1..254 for non-owners; the owner keeps 255), or FAULT (fault=true) when an
  // unweighted tracked object is down. Leaving FAULT goes to BACKUP.
  void set_priority(uint8_t prio, uint64_t now, std::vector<Action>& out);
  void set_fault(bool fault, uint64_t now, std::vector<Action>& out);
  // Sync group: force this instance to follow its group (MASTER or BACKUP), as keepalived does.
  void force(State s, uint64_t now, std::vector<Action>& out);
  // Replication coupling: while inhibited, a BACKUP whose Master_Down_Timer fires (the master's
  // adverts stopped, or it preempts a lower priority) stays BACKUP and re-arms the timer; an
  // owner (255) starts as BACKUP. The caller inhibits while the pair's sync link says the peer
  // is alive and master (split-brain witness) or while our state is still being resynced.
  // held_takeovers() counts the timer expiries it suppressed.
  // Lifting the inhibition after it held a takeover back fires the timer at the next tick (the
  // master is still silent: no need to wait a whole Master_Down_Interval again).
  void set_inhibit(bool inhibit) {
    if (inhibit_ && !inhibit && held_ && state_ == State::kBackup) deadline_ = 0;
    inhibit_ = inhibit;
  }
  bool inhibited() const { return inhibit_; }
  bool holding() const { return held_ && inhibit_; }  // a takeover is being held back now
  uint64_t held_takeovers() const { return held_takeovers_; }
  // Reload: new preemption settings apply from the next advert; the delay still counts from
  // start().
  void set_preempt(bool preempt, uint64_t delay_ns) {
    cfg_.preempt = preempt;
    cfg_.preempt_delay_ns = delay_ns;
  }

 private:
  void become(State s, uint64_t now, std::vector<Action>& out);

  Config cfg_;
  State state_ = State::kInit;
  uint8_t prio_;
  uint16_t master_cs_;
  uint32_t master_ip_ = 0;
  uint64_t deadline_ = 0;
  uint64_t started_ns_ = 0;
  uint64_t transitions_ = 0;
  uint64_t last_transition_ns_ = 0;
  bool fault_ = false;
  bool inhibit_ = false;
  bool held_ = false;  // a takeover was held back since the master's last advert
  uint64_t held_takeovers_ = 0;
};

// keepalived's tracking arithmetic: base priority plus the weights of tracked objects
// (a positive weight adds while the object is up, a negative one subtracts while it is down),
// clamped to 1..254; the owner (255) is never changed. Returns nullopt (FAULT) if any object with
// weight 0 is down.
struct Tracked {
  bool up = true;
  int weight = 0;  // -254..254
};
std::optional<uint8_t> effective_priority(uint8_t base, const std::vector<Tracked>& tracked);

// A tracked check with keepalived's rise/fall: `rise` consecutive successes to go up, `fall`
// consecutive failures to go down. Starts up (keepalived's default for scripts is down until the
// first result; we start as `initial`).
class RiseFall {
 public:
  RiseFall(uint32_t rise, uint32_t fall, bool initial) : rise_(rise), fall_(fall), up_(initial) {}
  // Returns true when the up/down state changed.
  bool report(bool ok);
  bool up() const { return up_; }

 private:
  uint32_t rise_, fall_;
  bool up_;
  uint32_t streak_ = 0;
};

}  // namespace ctl::vrrp
