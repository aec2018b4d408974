// VRRP advert codec and per-instance state machine (see vrrp.h for the contract).

#include "control/vrrp/vrrp.h"

#include <algorithm>
#include <utility>

namespace ctl::vrrp {
namespace {

constexpr uint64_t kNever = UINT64_MAX;
constexpr uint64_t kNsPerCs = 10'000'000;
constexpr size_t kIpHeaderLen = 20;
constexpr size_t kEthHeaderLen = 14;
constexpr size_t kVrrpHeaderLen = 8;
constexpr size_t kAuthLen = 8;
constexpr size_t kMinFrameLen = 60;  // Ethernet minimum without FCS
constexpr uint8_t kTypeAdvert = 1;

uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t load_be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Unfolded one's complement sum (RFC 1071) of big-endian 16-bit words; an odd tail byte is
// padded with zero. 64 bits cannot overflow for anything an IPv4 packet can hold.
uint64_t sum16(const uint8_t* p, size_t n, uint64_t acc = 0) {
  for (; n >= 2; p += 2, n -= 2) acc += load_be16(p);
  if (n == 1) acc += static_cast<uint64_t>(p[0]) << 8;
  return acc;
}

// The IPv4 pseudo-header keepalived and FRR prepend for VRRPv3: src, dst, zero, protocol, length.
uint64_t pseudo_sum(uint32_t src, uint32_t dst, size_t vrrp_len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + kIpProto + vrrp_len;
}

// Folds a sum and complements it: the value to store, or 0 when verifying a correct message.
uint16_t fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Codec

std::optional<Decoded> decode(const uint8_t* ip, size_t len, Invalid& why) {
  auto fail = [&why](Invalid w) -> std::optional<Decoded> {
    why = w;
    return std::nullopt;
  };
  // The IPv4 header. A wrong IP version is reported as a version error and a wrong protocol as a
  // type error: the enum has no better bucket, and the datapath should never punt either.
  if (ip == nullptr || len < kIpHeaderLen) return fail(Invalid::kLength);
  if ((ip[0] >> 4) != 4) return fail(Invalid::kVersion);
  const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  // Total length, not `len`: short frames arrive with Ethernet padding after the packet.
  const size_t total = load_be16(ip + 2);
  if (ihl < kIpHeaderLen || ihl > len || total < ihl || total > len) {
    return fail(Invalid::kLength);
  }
  // Adverts are never fragmented; a fragment is not the whole message its lengths describe.
  if ((load_be16(ip + 6) & 0x3fff) != 0) return fail(Invalid::kLength);
  if (ip[9] != kIpProto) return fail(Invalid::kType);
  // RFC 5798 §7.1: TTL 255 proves the sender is on the link.
  // TTL 255 proves the advert was not routed (RFC 5798 §7.1). Unicast adverts (unicast_peers)
  // may cross routers: like keepalived, only the multicast ones are held to it.
  if (ip[8] != kIpTtl && load_be32(ip + 16) == kMulticastGroup) return fail(Invalid::kTtl);

  const uint8_t* v = ip + ihl;
  const size_t vlen = total - ihl;
  if (vlen < kVrrpHeaderLen) return fail(Invalid::kLength);
  const uint8_t version = v[0] >> 4;
  if (version != 2 && version != 3) return fail(Invalid::kVersion);
  if ((v[0] & 0x0f) != kTypeAdvert) return fail(Invalid::kType);
  const size_t count = v[3];
  if (count > kMaxAddrs) return fail(Invalid::kLength);
  const size_t need = kVrrpHeaderLen + 4 * count + (version == 2 ? kAuthLen : 0);
  if (vlen < need) return fail(Invalid::kLength);

  // The checksum covers the whole message as the IP length delimits it (RFC 3768 §5.3.8,
  // RFC 9568 §5.2.8), including anything after the addresses.
  const uint64_t body = sum16(v, vlen);
  Decoded d;
  if (version == 2) {
    if (fold(body) != 0) return fail(Invalid::kChecksum);
    d.checksum = Checksum::kWithoutPseudoHeader;
  } else if (fold(body + pseudo_sum(load_be32(ip + 12), load_be32(ip + 16), vlen)) == 0) {
    d.checksum = Checksum::kWithPseudoHeader;
  } else if (fold(body) == 0) {
    d.checksum = Checksum::kWithoutPseudoHeader;
  } else {
    return fail(Invalid::kChecksum);
  }

  Advert& a = d.advert;
  a.version = version;
  a.vrid = v[1];
  a.priority = v[2];
  a.addrs.reserve(count);
  for (size_t i = 0; i < count; ++i) a.addrs.push_back(load_be32(v + kVrrpHeaderLen + 4 * i));
  if (version == 2) {
    a.auth_type = v[4];
    a.interval_cs = static_cast<uint16_t>(v[5] * 100);
    std::copy_n(v + kVrrpHeaderLen + 4 * count, kAuthLen, a.auth.begin());
  } else {
    a.interval_cs = load_be16(v + 4) & 0x0fff;  // the top nibble is reserved
  }
  d.src_ip = load_be32(ip + 12);
  d.dst_ip = load_be32(ip + 16);
  return d;
}

size_t encode_vrrp(uint8_t* out, const Advert& a, Checksum ck, uint32_t src, uint32_t dst) {
  const bool v2 = a.version == 2;
  // Never write past the buffer the caller sized for kMaxAddrs; config limits VIPs to 32 anyway.
  const size_t count = std::min(a.addrs.size(), kMaxAddrs);
  out[0] = static_cast<uint8_t>((v2 ? 2 : 3) << 4 | kTypeAdvert);
  out[1] = a.vrid;
  out[2] = a.priority;
  out[3] = static_cast<uint8_t>(count);
  if (v2) {
    out[4] = a.auth_type;
    out[5] = static_cast<uint8_t>(std::min(a.interval_cs / 100, 255));
  } else {
    store_be16(out + 4, a.interval_cs & 0x0fff);
  }
  store_be16(out + 6, 0);
  size_t n = kVrrpHeaderLen;
  for (size_t i = 0; i < count; ++i, n += 4) store_be32(out + n, a.addrs[i]);
  if (v2) {
    std::copy(a.auth.begin(), a.auth.end(), out + n);
    n += kAuthLen;
  }
  uint64_t s = sum16(out, n);
  if (!v2 && ck == Checksum::kWithPseudoHeader) s += pseudo_sum(src, dst, n);
  store_be16(out + 6, fold(s));
  return n;
}

size_t encode_frame(uint8_t* out, const std::array<uint8_t, 6>& dst_mac,
                    const std::array<uint8_t, 6>& src_mac, const Advert& a, Checksum ck,
                    uint32_t src_ip, uint32_t dst_ip) {
  std::copy(dst_mac.begin(), dst_mac.end(), out);
  std::copy(src_mac.begin(), src_mac.end(), out + 6);
  store_be16(out + 12, 0x0800);
  uint8_t* ip = out + kEthHeaderLen;
  const size_t vlen = encode_vrrp(ip + kIpHeaderLen, a, ck, src_ip, dst_ip);
  ip[0] = 0x45;
  ip[1] = 0xc0;  // DSCP CS6 (network control), as keepalived and routers send
  store_be16(ip + 2, static_cast<uint16_t>(kIpHeaderLen + vlen));
  store_be16(ip + 4, 0);  // ID
  store_be16(ip + 6, 0);  // flags, fragment offset
  ip[8] = kIpTtl;
  ip[9] = kIpProto;
  store_be16(ip + 10, 0);
  store_be32(ip + 12, src_ip);
  store_be32(ip + 16, dst_ip);
  store_be16(ip + 10, fold(sum16(ip, kIpHeaderLen)));
  size_t n = kEthHeaderLen + kIpHeaderLen + vlen;
  if (n < kMinFrameLen) {
    std::fill(out + n, out + kMinFrameLen, 0);
    n = kMinFrameLen;
  }
  return n;
}

std::array<uint8_t, 6> virtual_mac(uint8_t vrid) {
  return {0x00, 0x00, 0x5e, 0x00, 0x01, vrid};
}

std::array<uint8_t, 6> multicast_mac() {
  return {0x01, 0x00, 0x5e, 0x00, 0x00, 0x12};
}

// ---------------------------------------------------------------------------------------------
// State machine

const char* to_string(State s) {
  switch (s) {
    case State::kInit:
      return "INIT";
    case State::kBackup:
      return "BACKUP";
    case State::kMaster:
      return "MASTER";
    case State::kFault:
      return "FAULT";
  }
  return "UNKNOWN";
}

Instance::Instance(Config c)
    : cfg_(std::move(c)), prio_(cfg_.priority), master_cs_(cfg_.interval_cs), deadline_(kNever) {}

uint64_t Instance::skew_ns() const {
  // RFC 3768 §6.1 (v2): Skew_Time = (256 − Priority) / 256 seconds, whatever the interval.
  if (cfg_.version == 2) return static_cast<uint64_t>(256 - prio_) * 100 * kNsPerCs / 256;
  // RFC 5798 §6.1 (v3): scaled by the interval. In ns rather than cs: (256 − 100) × 100 cs / 256
  // is 60.9375 cs, and keepalived keeps the fraction too (it computes in µs).
  return static_cast<uint64_t>(256 - prio_) * master_cs_ * kNsPerCs / 256;
}

uint64_t Instance::master_down_ns() const {
  return 3 * master_cs_ * kNsPerCs + skew_ns();
}

std::optional<Invalid> Instance::check(const Advert& a) const {
  if (a.version != cfg_.version) return Invalid::kVersion;
  if (cfg_.version == 2) {
    // RFC 3768 §7.1: v2 routers never adopt the master's interval, so it must be ours.
    if (a.auth_type != cfg_.auth_type || a.auth != cfg_.auth) return Invalid::kAuth;
    if (a.interval_cs != cfg_.interval_cs) return Invalid::kInterval;
  }
  // RFC 5798 §7.1: a different list is dropped unless the owner (priority 255) sent it.
  if (a.priority != 255) {
    std::vector<uint32_t> theirs = a.addrs;
    std::vector<uint32_t> ours = cfg_.addrs;
    std::sort(theirs.begin(), theirs.end());
    theirs.erase(std::unique(theirs.begin(), theirs.end()), theirs.end());
    std::sort(ours.begin(), ours.end());
    ours.erase(std::unique(ours.begin(), ours.end()), ours.end());
    if (theirs != ours) return Invalid::kAddressList;
  }
  return std::nullopt;
}

namespace {

void send_advert(uint8_t prio, std::vector<Action>& out) {
  out.push_back(Action{Action::kSendAdvert, State::kInit, prio});
}

uint64_t advert_deadline(uint64_t now, const Config& c) {
  return now + static_cast<uint64_t>(c.interval_cs) * kNsPerCs;
}

// The Master_Adver_Interval a backup uses after accepting `a`. v3 backups follow the master
// (RFC 5798 §6.4.2); v2 has one fixed interval that check() already made equal to ours. An
// interval of 0 would shrink Master_Down to Skew_Time and flap on every lost advert, so the one
// in use is kept.
uint16_t adopted_interval(const Config& c, const Advert& a, uint16_t in_use) {
  return c.version == 3 && a.interval_cs != 0 ? a.interval_cs : in_use;
}

}  // namespace

// Every transition goes through here, with the entry actions of the new state, so that no path
// can enter a state with a stale timer. Entering BACKUP arms Master_Down from the
// Master_Adver_Interval and master the caller has set.
void Instance::become(State s, uint64_t now, std::vector<Action>& out) {
  // A held takeover belongs to the BACKUP state it was held in: whatever state comes next, none
  // is held (or a master would report one, and a later BACKUP would skip its Master_Down when
  // the inhibition is lifted).
  held_ = false;
  switch (s) {
    case State::kMaster:
      send_advert(prio_, out);  // RFC 5798 §6.4.1/§6.4.2: advertise, then become master
      master_cs_ = cfg_.interval_cs;
      master_ip_ = cfg_.primary_ip;
      deadline_ = advert_deadline(now, cfg_);
      break;
    case State::kBackup:
      deadline_ = now + master_down_ns();
      break;
    case State::kInit:
    case State::kFault:
      master_ip_ = 0;
      deadline_ = kNever;
      break;
  }
  state_ = s;
  ++transitions_;
  last_transition_ns_ = now;
  out.push_back(Action{Action::kBecome, s, prio_});
}

void Instance::start(uint64_t now, std::vector<Action>& out) {
  if (state_ != State::kInit) return;
  started_ns_ = now;
  master_cs_ = cfg_.interval_cs;  // RFC 5798 §6.4.1: Master_Adver_Interval starts as ours
  master_ip_ = 0;
  if (fault_) {  // a tracked object already down: start where set_fault(true) would put us
    become(State::kFault, now, out);
  } else {
    // §6.4.1: owner → master (unless held back by the sync coupling)
    become(prio_ == 255 && !inhibit_ ? State::kMaster : State::kBackup, now, out);
  }
}

void Instance::shutdown(uint64_t now, std::vector<Action>& out) {
  if (state_ == State::kInit) return;
  if (state_ == State::kMaster) send_advert(0, out);  // backups take over after Skew_Time only
  become(State::kInit, now, out);
}

void Instance::on_advert(const Advert& a, uint32_t src, uint64_t now, std::vector<Action>& out) {
  held_ = false;
  if (state_ == State::kBackup) {
    if (a.priority == 0) {  // the master is leaving: take over after Skew_Time only
      deadline_ = now + skew_ns();
      return;
    }
    // Unsigned difference: no overflow when preempt_delay_ns is huge.
    const bool in_preempt_delay = now - started_ns_ < cfg_.preempt_delay_ns;
    if (!cfg_.preempt || in_preempt_delay || a.priority >= prio_) {
      master_cs_ = adopted_interval(cfg_, a, master_cs_);
      master_ip_ = src;
      deadline_ = now + master_down_ns();
    }
    // Else a lower-priority master while we may preempt: let Master_Down run out and take over.
    return;
  }
  if (state_ != State::kMaster) return;  // INIT and FAULT do not listen
  // Our own advert reflected back (a switch hairpin, a looped port) must not look like a peer
  // with our priority and address: that would re-announce on every advert we send.
  if (src == cfg_.primary_ip) return;
  if (a.priority == 0) {  // a peer leaving mastership: assert ours at once (RFC 5798 §6.4.3)
    send_advert(prio_, out);
    deadline_ = advert_deadline(now, cfg_);
    return;
  }
  if (a.priority > prio_ || (a.priority == prio_ && src > cfg_.primary_ip)) {
    master_cs_ = adopted_interval(cfg_, a, cfg_.interval_cs);
    master_ip_ = src;
    become(State::kBackup, now, out);
    return;
  }
  // A lower-priority peer believes it is master: a split brain is healing. Assert mastership
  // now and have the caller refresh the peers' ARP caches (keepalived issue #166).
  send_advert(prio_, out);
  out.push_back(Action{Action::kReannounce, state_, prio_});
  deadline_ = advert_deadline(now, cfg_);
}

void Instance::tick(uint64_t now, std::vector<Action>& out) {
  if (deadline_ == kNever || now < deadline_) return;
  switch (state_) {
    case State::kBackup:  // Master_Down_Timer fired
      if (inhibit_) {
        ++held_takeovers_;
        held_ = true;
        deadline_ = now + master_down_ns();
        break;
      }
      become(State::kMaster, now, out);
      break;
    case State::kMaster:  // Adver_Timer fired; rearm from now so a late tick does not burst
      send_advert(prio_, out);
      deadline_ = advert_deadline(now, cfg_);
      break;
    case State::kInit:
    case State::kFault:
      deadline_ = kNever;
      break;
  }
}

void Instance::set_priority(uint8_t prio, uint64_t /*now*/, std::vector<Action>& /*out*/) {
  // Priority 0 on the wire means "leaving"; effective_priority() never yields it, but a caller
  // bug must not turn every advert into a resignation.
  prio_ = std::max<uint8_t>(prio, 1);
}

void Instance::set_fault(bool fault, uint64_t now, std::vector<Action>& out) {
  fault_ = fault;
  if (fault) {
    if (state_ == State::kMaster) send_advert(0, out);  // hand over fast, as on shutdown
    if (state_ == State::kMaster || state_ == State::kBackup) become(State::kFault, now, out);
    return;  // INIT remembers the fault for start(); FAULT stays
  }
  if (state_ != State::kFault) return;
  master_cs_ = cfg_.interval_cs;
  // As at start(): an owner goes straight to MASTER unless the sync coupling holds it back.
  become(prio_ == 255 && !inhibit_ ? State::kMaster : State::kBackup, now, out);
}

void Instance::force(State s, uint64_t now, std::vector<Action>& out) {
  if (s == State::kMaster && state_ == State::kBackup) {
    become(State::kMaster, now, out);  // as if Master_Down had fired
  } else if (s == State::kBackup && state_ == State::kMaster) {
    // No priority-0 advert: the node is not leaving, only following its group; the peer's
    // instance takes over when our adverts stop, after its Master_Down.
    master_cs_ = cfg_.interval_cs;
    master_ip_ = 0;
    become(State::kBackup, now, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Tracking

std::optional<uint8_t> effective_priority(uint8_t base, const std::vector<Tracked>& tracked) {
  int sum = base;
  for (const Tracked& t : tracked) {
    if (t.weight == 0) {
      if (!t.up) return std::nullopt;  // unweighted objects gate the instance (FAULT)
    } else if ((t.weight > 0) == t.up) {
      sum += t.weight;  // positive weights add while up, negative ones subtract while down
    }
  }
  if (base == 255) return base;  // the owner's priority is what makes it the owner
  return static_cast<uint8_t>(std::clamp(sum, 1, 254));
}

bool RiseFall::report(bool ok) {
  if (ok == up_) {
    streak_ = 0;
    return false;
  }
  const uint32_t need = std::max<uint32_t>(up_ ? fall_ : rise_, 1);
  if (++streak_ < need) return false;
  up_ = ok;
  streak_ = 0;
  return true;
}

}  // namespace ctl::vrrp
