// DHCPv4 server logic: requests are built here byte by byte (no codec Writer), parsed with the
// codec, answered by dhcp::Server over a real LeaseStore, and the replies decoded here again.
// The snapshot is built by hand; tests/unit/dhcp_translate_test.cpp builds one from a config.

#include "dhcp/server.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#ifndef TANDEM_SOURCE_DIR
#error "TANDEM_SOURCE_DIR must point at the source tree (see tests/unit/meson.build)"
#endif

namespace dhcp {
namespace {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}
constexpr uint32_t kPortIp = ip4(192, 0, 2, 2);
constexpr uint32_t kRelay = ip4(192, 0, 2, 10);
constexpr uint32_t kRelayedSid = ip4(192, 0, 2, 100);
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kNow = 1000 * kSec;

Bytes be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}
Bytes str(const std::string& s) {
  return Bytes(s.begin(), s.end());
}
Mac mac_n(uint8_t n) {
  return Mac{0x02, 0x00, 0x00, 0x00, 0x10, n};
}

// A request, encoded independently of the codec.
struct Msg {
  MessageType type = MessageType::kDiscover;
  Mac mac = mac_n(1);
  uint32_t xid = 0x11223344, ciaddr = 0, giaddr = 0;
  uint16_t flags = 0, secs = 0;
  std::vector<std::pair<uint8_t, Bytes>> opts;
  Msg& opt(uint8_t code, Bytes v) {
    opts.emplace_back(code, std::move(v));
    return *this;
  }
};

Bytes encode(const Msg& m) {
  Bytes b(240, 0);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b[3] = m.giaddr != 0 ? 1 : 0;
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (24 - 8 * i));
  };
  put32(4, m.xid);
  b[8] = uint8_t(m.secs >> 8);
  b[9] = uint8_t(m.secs);
  b[10] = uint8_t(m.flags >> 8);
  b[11] = uint8_t(m.flags);
  put32(12, m.ciaddr);
  put32(24, m.giaddr);
  std::copy(m.mac.begin(), m.mac.end(), b.begin() + 28);
  put32(236, 0x63825363);
  b.push_back(53);
  b.push_back(1);
  b.push_back(uint8_t(m.type));
  for (const auto& [code, v] : m.opts) {
    b.push_back(code);
    b.push_back(uint8_t(v.size()));
    for (uint8_t x : v) b.push_back(x);
  }
  b.push_back(255);
  return b;
}

// A reply, decoded independently of the codec.
struct Reply {
  uint8_t op = 0;
  uint32_t xid = 0, ciaddr = 0, yiaddr = 0, giaddr = 0;
  uint16_t flags = 0;
  std::vector<std::pair<uint8_t, Bytes>> opts;  // in wire order
  std::optional<Bytes> get(uint8_t code) const {
    for (const auto& [c, v] : opts) {
      if (c == code) return v;
    }
    return std::nullopt;
  }
  uint32_t u32(uint8_t code) const {
    const auto v = get(code);
    if (!v || v->size() != 4) return 0;
    return (uint32_t((*v)[0]) << 24) | (uint32_t((*v)[1]) << 16) | (uint32_t((*v)[2]) << 8) |
           (*v)[3];
  }
  std::vector<uint8_t> codes() const {
    std::vector<uint8_t> out;
    for (const auto& [c, v] : opts) out.push_back(c);
    return out;
  }
};

Reply decode(std::span<const uint8_t> b) {
  Reply r;
  if (b.size() < 240) return r;
  auto get32 = [&](size_t at) {
    return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) |
           b[at + 3];
  };
  r.op = b[0];
  r.xid = get32(4);
  r.flags = uint16_t((b[10] << 8) | b[11]);
  r.ciaddr = get32(12);
  r.yiaddr = get32(16);
  r.giaddr = get32(24);
  for (size_t i = 240; i < b.size() && b[i] != 255;) {
    if (b[i] == 0) {
      ++i;
      continue;
    }
    const size_t n = b[i + 1];
    r.opts.emplace_back(b[i], Bytes(b.begin() + i + 2, b.begin() + i + 2 + n));
    i += 2 + n;
  }
  return r;
}

// Port 0 (192.0.2.2/24) serves subnet A; relay 192.0.2.10 selects subnet B; a relay inside
// 203.0.113.0/24 selects subnet C (not authoritative, min_secs 3).
ServerConfig make_config() {
  ServerConfig c;
  c.port_addresses = {{kPortIp}, {ip4(198, 51, 100, 2)}};
  OptionTable global;
  global.set(opt::kDns, be32(ip4(192, 0, 2, 53)));
  global.set(opt::kDomainName, str("lab.example"));
  global.set(opt::kNtp, be32(ip4(192, 0, 2, 123)));
  c.global_options = c.add_table(global);
  std::span<const uint8_t> yealink_v[] = {{reinterpret_cast<const uint8_t*>("Yealink"), 7}};
  ClassMatch yealink;
  yealink.field = ClassMatch::Field::kVendorClass;
  yealink.prefix = true;
  c.add_class(std::span<const ClassMatch>(&yealink, 1), yealink_v);  // class 0: phones
  std::span<const uint8_t> olt_v[] = {{reinterpret_cast<const uint8_t*>("olt7/"), 5}};
  ClassMatch olt;
  olt.field = ClassMatch::Field::kCircuitId;
  olt.prefix = true;
  c.add_class(std::span<const ClassMatch>(&olt, 1), olt_v);  // class 1: olt7

  SubnetConf a;  // 0
  a.network = ip4(192, 0, 2, 0);
  a.len = 24;
  a.port = 0;
  a.lease = {600, 60, 3600};
  OptionTable at;
  at.set(opt::kRouter, be32(ip4(192, 0, 2, 1)));
  at.set(opt::kDomainName, str("a.lab.example"));  // replaces the global one
  a.options = c.add_table(at);
  c.add_subnet(a);
  PoolConf phones;  // pool 0
  phones.first = ip4(192, 0, 2, 100);
  phones.last = ip4(192, 0, 2, 109);
  phones.classes = 1;
  phones.lease = {1200, 60, 3600};
  OptionTable pt;
  pt.set(66, str("tftp.lab.example"));
  pt.set(opt::kNtp, be32(ip4(192, 0, 2, 124)));
  phones.options = c.add_table(pt);
  c.add_pool(phones);
  PoolConf open;  // pool 1
  open.first = ip4(192, 0, 2, 150);
  open.last = ip4(192, 0, 2, 159);
  open.lease = {600, 60, 3600};
  c.add_pool(open);
  HostConf printer;
  printer.subnet = 0;
  printer.key = HostKey::kMac;
  printer.ip = ip4(192, 0, 2, 155);  // inside pool 1
  OptionTable ht;
  ht.set(opt::kHostName, str("printer"));
  ht.set(opt::kNtp, be32(ip4(192, 0, 2, 125)));
  printer.options = c.add_table(ht);
  const Mac pm = mac_n(0x50);
  c.add_host(printer, pm);
  HostConf byid;
  byid.subnet = 0;
  byid.key = HostKey::kClientId;
  byid.ip = ip4(192, 0, 2, 51);  // outside the pools: static
  const Bytes cid{0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04};
  c.add_host(byid, cid);

  SubnetConf b;  // 1
  b.network = ip4(198, 18, 0, 0);
  b.len = 16;
  b.server_id = kRelayedSid;
  b.lease = {3600, 60, 86400};
  b.renew_permille = 400;
  b.rebind_permille = 800;
  c.add_subnet(b);
  PoolConf bp;  // pool 2
  bp.first = ip4(198, 18, 0, 10);
  bp.last = ip4(198, 18, 0, 30);
  c.add_pool(bp);
  HostConf cpe;
  cpe.subnet = 1;
  cpe.key = HostKey::kCircuitId;
  cpe.ip = ip4(198, 18, 0, 20);
  c.add_host(cpe, str("olt7/1/1"));

  SubnetConf cc;  // 2
  cc.network = ip4(203, 0, 113, 0);
  cc.len = 24;
  cc.authoritative = false;
  cc.min_secs = 3;
  c.add_subnet(cc);
  PoolConf cp1;  // pool 3: olt7 only
  cp1.first = ip4(203, 0, 113, 10);
  cp1.last = ip4(203, 0, 113, 11);
  cp1.classes = 2;
  c.add_pool(cp1);

  c.finish({{}, {kRelay}, {}});
  return c;
}

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : cfg_(make_config()), store_(params()), server_(cfg_, store_) {
    for (uint32_t p = 0; p < cfg_.pools.size(); ++p) {
      EXPECT_TRUE(store_.add_range(p, cfg_.pools[p].first, cfg_.pools[p].last));
    }
    for (const HostConf& h : cfg_.hosts) {
      if (h.pool != kNoIndex) {
        EXPECT_TRUE(store_.reserve(h.ip, host_client_key(cfg_, h)));
      }
    }
    events_.reserve(16);
  }
  static LeaseStore::Params params() {
    LeaseStore::Params p;
    p.offer_hold_ns = 30 * kSec;
    p.decline_hold_ns = 600 * kSec;
    p.max_addresses = 256;
    return p;
  }

  Outcome send(const Msg& m, uint32_t port = 0, uint64_t now = kNow) {
    bytes_ = encode(m);
    Malformed why{};
    EXPECT_TRUE(parse(bytes_, req_, why)) << kMalformedNames[size_t(why)];
    out_.fill(0xee);
    events_.clear();
    const Outcome o =
        server_.handle(req_, Ingress{port, port == 0 ? kPortIp : 0, true}, now, out_, &events_);
    reply_ = decode(std::span<const uint8_t>(out_.data(), o.len));
    EXPECT_LE(events_.size(), 2u);
    if (o.sent != MessageType::kNone) {
      EXPECT_GE(o.len, kMinReplyLen);
      EXPECT_EQ(reply_.op, 2);
      EXPECT_EQ(reply_.xid, m.xid);
      EXPECT_EQ(reply_.codes().front(), opt::kMessageType);
      EXPECT_EQ(reply_.get(opt::kMessageType), Bytes{uint8_t(o.sent)});
    }
    return o;
  }
  uint64_t count(Reason r) const { return server_.counters().reasons[size_t(r)].get(); }

  ServerConfig cfg_;
  LeaseStore store_;
  Server server_;
  Bytes bytes_;
  Request req_;
  std::array<uint8_t, kMaxReplyLen> out_{};
  std::vector<LeaseEvent> events_;
  Reply reply_;
};

Msg dhclient(MessageType t, const Mac& mac = mac_n(1)) {
  Msg m;
  m.type = t;
  m.mac = mac;
  m.opt(opt::kClientId, {0x01, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]});
  m.opt(opt::kParamRequest, {1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42, 51, 54});
  m.opt(opt::kHostName, str("box"));
  return m;
}

TEST_F(ServerTest, DoraForDhclient) {
  const Outcome offer = send(dhclient(MessageType::kDiscover));
  ASSERT_EQ(offer.sent, MessageType::kOffer);
  EXPECT_EQ(offer.reason, Reason::kNone);
  const uint32_t ip = reply_.yiaddr;
  EXPECT_GE(ip, ip4(192, 0, 2, 150));
  EXPECT_LE(ip, ip4(192, 0, 2, 159));
  EXPECT_NE(ip, ip4(192, 0, 2, 155));  // reserved for the printer
  // 53, 54, 51, 58, 59, then the asked-for options in the order of 55, then 61.
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 51, 58, 59, 1, 28, 3, 15, 6, 42, 61}));
  EXPECT_EQ(reply_.u32(opt::kServerId), kPortIp);
  EXPECT_EQ(reply_.u32(opt::kLeaseTime), 600u);
  EXPECT_EQ(reply_.u32(opt::kT1), 300u);
  EXPECT_EQ(reply_.u32(opt::kT2), 525u);
  EXPECT_EQ(reply_.u32(opt::kSubnetMask), ip4(255, 255, 255, 0));
  EXPECT_EQ(reply_.u32(opt::kBroadcast), ip4(192, 0, 2, 255));
  EXPECT_EQ(reply_.get(opt::kDomainName), str("a.lab.example"));  // subnet over global
  EXPECT_EQ(reply_.u32(opt::kNtp), ip4(192, 0, 2, 123));
  EXPECT_EQ(reply_.get(opt::kClientId), (Bytes{1, 2, 0, 0, 0, 0x10, 1}));
  EXPECT_EQ(offer.dst.ip, ip);  // unicast to yiaddr / chaddr
  EXPECT_EQ(offer.dst.port, kClientPort);
  EXPECT_EQ(offer.dst.l2, Addressing::L2::kChaddr);
  EXPECT_EQ(offer.dst.src_ip, kPortIp);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, LeaseEvent::kOffer);

  Msg req = dhclient(MessageType::kRequest);
  req.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip));
  const Outcome ack = send(req);
  ASSERT_EQ(ack.sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, ip);
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 51, 58, 59, 1, 28, 3, 15, 6, 42, 61}));
  ASSERT_NE(store_.find(ip), nullptr);
  EXPECT_EQ(store_.find(ip)->state, LeaseState::kBound);
  EXPECT_EQ(store_.find(ip)->expires_ns, kNow + 600 * kSec);
  EXPECT_EQ(events_.back().kind, LeaseEvent::kBind);
  EXPECT_EQ(server_.counters().sent[size_t(MessageType::kOffer)].get(), 1u);
  EXPECT_EQ(server_.counters().sent[size_t(MessageType::kAck)].get(), 1u);
}

TEST_F(ServerTest, BroadcastFlagGivesBroadcastReply) {
  Msg m = dhclient(MessageType::kDiscover);
  m.flags = 0x8000;
  const Outcome o = send(m);
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_EQ(o.dst.ip, 0xffffffffu);
  EXPECT_EQ(o.dst.port, kClientPort);
  EXPECT_EQ(o.dst.l2, Addressing::L2::kBroadcast);
  EXPECT_EQ(reply_.flags, 0x8000);
}

TEST_F(ServerTest, WithoutParameterListSendsEveryOptionAscending) {
  Msg m;
  m.opt(opt::kLeaseTime, be32(100000));  // asks too much: lowered to max
  const Outcome o = send(m);
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 51, 58, 59, 1, 3, 6, 15, 28, 42}));
  EXPECT_EQ(reply_.u32(opt::kLeaseTime), 3600u);
  EXPECT_FALSE(reply_.get(opt::kClientId));
}

TEST_F(ServerTest, RelayedDiscoverWithOption82) {
  Msg m;
  m.mac = mac_n(7);
  m.giaddr = kRelay;
  const Bytes ri{1, 8, 'o', 'l', 't', '7', '/', '2', '/', '2', 2, 3, 0xaa, 0xbb, 0xcc};
  m.opt(opt::kParamRequest, {1, 3, 6}).opt(opt::kRelayAgent, ri);
  const Outcome o = send(m, 1);
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_GE(reply_.yiaddr, ip4(198, 18, 0, 10));
  EXPECT_LE(reply_.yiaddr, ip4(198, 18, 0, 30));
  EXPECT_EQ(reply_.giaddr, kRelay);
  EXPECT_EQ(o.dst.ip, kRelay);
  EXPECT_EQ(o.dst.port, kServerPort);
  EXPECT_EQ(o.dst.l2, Addressing::L2::kRoute);
  EXPECT_EQ(o.dst.src_ip, kRelayedSid);
  EXPECT_EQ(reply_.u32(opt::kServerId), kRelayedSid);
  EXPECT_EQ(reply_.u32(opt::kLeaseTime), 3600u);
  EXPECT_EQ(reply_.u32(opt::kT1), 1440u);  // 400 permille
  EXPECT_EQ(reply_.u32(opt::kT2), 2880u);
  EXPECT_EQ(reply_.u32(opt::kSubnetMask), ip4(255, 255, 0, 0));
  ASSERT_FALSE(reply_.opts.empty());
  EXPECT_EQ(reply_.opts.back().first, opt::kRelayAgent);  // RFC 3046: last
  EXPECT_EQ(reply_.opts.back().second, ri);
}

TEST_F(ServerTest, RelayInsideSubnetSelectsIt) {
  Msg m;
  m.giaddr = ip4(203, 0, 113, 1);
  m.secs = 10;
  m.opt(opt::kRelayAgent, {1, 6, 'o', 'l', 't', '7', '/', '9'});
  const Outcome o = send(m, 1);
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_EQ(reply_.yiaddr, ip4(203, 0, 113, 10));
  EXPECT_EQ(reply_.u32(opt::kServerId), 0u) << "port 1 has no address and the subnet no id";
}

TEST_F(ServerTest, UnknownRelayOrPortIsNotAnswered) {
  Msg m;
  m.giaddr = ip4(10, 9, 9, 9);
  EXPECT_EQ(send(m, 1).reason, Reason::kNoSubnet);
  Msg n;
  EXPECT_EQ(send(n, 1).reason, Reason::kNoSubnet);  // port 1: no subnet of its own
  EXPECT_EQ(send(n, 7).reason, Reason::kNoSubnet);  // no such port
  EXPECT_EQ(count(Reason::kNoSubnet), 3u);
}

TEST_F(ServerTest, RequestForAnotherServerIsDroppedAndFreesOurOffer) {
  ASSERT_EQ(send(dhclient(MessageType::kDiscover)).sent, MessageType::kOffer);
  const uint32_t ip = reply_.yiaddr;
  EXPECT_EQ(store_.find(ip)->state, LeaseState::kOffered);
  Msg req = dhclient(MessageType::kRequest);
  req.opt(opt::kServerId, be32(ip4(192, 0, 2, 3))).opt(50, be32(ip4(192, 0, 2, 77)));
  const Outcome o = send(req);
  EXPECT_EQ(o.sent, MessageType::kNone);
  EXPECT_EQ(o.reason, Reason::kNotForUs);
  EXPECT_EQ(count(Reason::kNotForUs), 1u);
  EXPECT_EQ(store_.find(ip)->state, LeaseState::kFree);
}

TEST_F(ServerTest, InitRebootWrongSubnetIsNakedBroadcast) {
  Msg req = dhclient(MessageType::kRequest);
  req.opt(50, be32(ip4(10, 1, 2, 3)));
  const Outcome o = send(req);
  ASSERT_EQ(o.sent, MessageType::kNak);
  EXPECT_EQ(o.reason, Reason::kWrongSubnet);
  EXPECT_EQ(reply_.yiaddr, 0u);
  EXPECT_EQ(reply_.ciaddr, 0u);
  EXPECT_EQ(o.dst.ip, 0xffffffffu);
  EXPECT_EQ(o.dst.port, kClientPort);
  EXPECT_EQ(o.dst.l2, Addressing::L2::kBroadcast);
  EXPECT_EQ(reply_.u32(opt::kServerId), kPortIp);
  EXPECT_FALSE(reply_.get(opt::kLeaseTime));
  EXPECT_FALSE(reply_.get(opt::kRouter));
  EXPECT_EQ(reply_.get(opt::kMessage), str("wrong_subnet"));
  EXPECT_EQ(count(Reason::kWrongSubnet), 1u);
}

TEST_F(ServerTest, InitRebootOfAFreeAddressIsBound) {
  Msg req = dhclient(MessageType::kRequest);
  req.opt(50, be32(ip4(192, 0, 2, 152)));
  ASSERT_EQ(send(req).sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 152));
  EXPECT_EQ(store_.find(ip4(192, 0, 2, 152))->state, LeaseState::kBound);
  // Someone else asking for it is refused; an address in no pool is refused.
  Msg other = dhclient(MessageType::kRequest, mac_n(2));
  other.opt(50, be32(ip4(192, 0, 2, 152)));
  EXPECT_EQ(send(other).sent, MessageType::kNak);
  EXPECT_EQ(count(Reason::kTaken), 1u);
  Msg nopool = dhclient(MessageType::kRequest, mac_n(2));
  nopool.opt(50, be32(ip4(192, 0, 2, 20)));
  EXPECT_EQ(send(nopool).reason, Reason::kUnknownAddress);
  EXPECT_EQ(nopool.type, MessageType::kRequest);
}

TEST_F(ServerTest, NotAuthoritativeStaysSilent) {
  Msg req;
  req.type = MessageType::kRequest;
  req.giaddr = ip4(203, 0, 113, 1);
  req.secs = 5;
  req.opt(50, be32(ip4(10, 1, 2, 3)));
  const Outcome o = send(req, 1);
  EXPECT_EQ(o.sent, MessageType::kNone);
  EXPECT_EQ(o.reason, Reason::kWrongSubnet);
}

TEST_F(ServerTest, RelayedNakSetsBroadcastBit) {
  Msg req;
  req.type = MessageType::kRequest;
  req.giaddr = kRelay;
  req.opt(50, be32(ip4(10, 1, 2, 3)));
  const Outcome o = send(req, 1);
  ASSERT_EQ(o.sent, MessageType::kNak);
  EXPECT_EQ(o.dst.ip, kRelay);
  EXPECT_EQ(o.dst.port, kServerPort);
  EXPECT_EQ(reply_.flags & 0x8000, 0x8000);
}

TEST_F(ServerTest, RenewIsAckedUnicastToCiaddr) {
  ASSERT_EQ(send(dhclient(MessageType::kDiscover)).sent, MessageType::kOffer);
  const uint32_t ip = reply_.yiaddr;
  Msg sel = dhclient(MessageType::kRequest);
  sel.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip));
  ASSERT_EQ(send(sel).sent, MessageType::kAck);
  Msg renew = dhclient(MessageType::kRequest);
  renew.ciaddr = ip;
  const Outcome o = send(renew, 0, kNow + 300 * kSec);
  ASSERT_EQ(o.sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, ip);
  EXPECT_EQ(reply_.ciaddr, ip);
  EXPECT_EQ(o.dst.ip, ip);
  EXPECT_EQ(o.dst.port, kClientPort);
  EXPECT_EQ(o.dst.l2, Addressing::L2::kChaddr);
  EXPECT_EQ(store_.find(ip)->expires_ns, kNow + 900 * kSec);
  // Renewing someone else's address: NAK.
  Msg thief = dhclient(MessageType::kRequest, mac_n(9));
  thief.ciaddr = ip;
  EXPECT_EQ(send(thief).sent, MessageType::kNak);
}

TEST_F(ServerTest, ReleaseThenDiscoverGetsSameAddress) {
  ASSERT_EQ(send(dhclient(MessageType::kDiscover)).sent, MessageType::kOffer);
  const uint32_t ip = reply_.yiaddr;
  Msg sel = dhclient(MessageType::kRequest);
  sel.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip));
  ASSERT_EQ(send(sel).sent, MessageType::kAck);
  // Others take addresses meanwhile.
  for (uint8_t n = 20; n < 23; ++n)
    ASSERT_EQ(send(dhclient(MessageType::kDiscover, mac_n(n))).sent, MessageType::kOffer);
  Msg rel = dhclient(MessageType::kRelease);
  rel.ciaddr = ip;
  rel.opt(opt::kServerId, be32(kPortIp));
  const Outcome o = send(rel);
  EXPECT_EQ(o.sent, MessageType::kNone);
  EXPECT_EQ(o.reason, Reason::kNone);
  EXPECT_EQ(store_.find(ip)->state, LeaseState::kFree);
  EXPECT_EQ(send(rel).reason, Reason::kNoLease);  // twice: nothing held any more
  ASSERT_EQ(send(dhclient(MessageType::kDiscover)).sent, MessageType::kOffer);
  EXPECT_EQ(reply_.yiaddr, ip);
}

TEST_F(ServerTest, DeclineQuarantinesTheAddress) {
  ASSERT_EQ(send(dhclient(MessageType::kDiscover)).sent, MessageType::kOffer);
  const uint32_t ip = reply_.yiaddr;
  Msg sel = dhclient(MessageType::kRequest);
  sel.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip));
  ASSERT_EQ(send(sel).sent, MessageType::kAck);
  Msg dec = dhclient(MessageType::kDecline);
  dec.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip));
  const Outcome o = send(dec);
  EXPECT_EQ(o.sent, MessageType::kNone);
  EXPECT_EQ(o.reason, Reason::kNone);
  EXPECT_EQ(store_.find(ip)->state, LeaseState::kDeclined);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, LeaseEvent::kDecline);
  ASSERT_EQ(send(dhclient(MessageType::kDiscover)).sent, MessageType::kOffer);
  EXPECT_NE(reply_.yiaddr, ip);
  Msg noip = dhclient(MessageType::kDecline);
  EXPECT_EQ(send(noip).reason, Reason::kBadRequest);
}

TEST_F(ServerTest, ReservationByMacInsidePool) {
  const Mac pm = mac_n(0x50);
  Msg m;
  m.mac = pm;
  m.opt(opt::kParamRequest, {12, 42, 3, 6});
  ASSERT_EQ(send(m).sent, MessageType::kOffer);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 155));
  EXPECT_EQ(reply_.get(opt::kHostName), str("printer"));
  EXPECT_EQ(reply_.u32(opt::kNtp), ip4(192, 0, 2, 125));  // host over pool/global
  Msg req = m;
  req.type = MessageType::kRequest;
  req.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip4(192, 0, 2, 155)));
  ASSERT_EQ(send(req).sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 155));
  // The reserved client asking for another address is refused.
  Msg other = m;
  other.type = MessageType::kRequest;
  other.opt(50, be32(ip4(192, 0, 2, 151)));
  EXPECT_EQ(send(other).sent, MessageType::kNak);
  EXPECT_EQ(count(Reason::kNotAllowed), 1u);
}

TEST_F(ServerTest, ReservedAddressNeverGoesToOthers) {
  for (uint8_t n = 0; n < 9; ++n) {
    ASSERT_EQ(send(dhclient(MessageType::kDiscover, mac_n(100 + n))).sent, MessageType::kOffer);
    EXPECT_NE(reply_.yiaddr, ip4(192, 0, 2, 155));
  }
  const Outcome o = send(dhclient(MessageType::kDiscover, mac_n(200)));
  EXPECT_EQ(o.reason, Reason::kPoolExhausted);
  EXPECT_EQ(count(Reason::kPoolExhausted), 1u);
  Msg steal = dhclient(MessageType::kRequest, mac_n(201));
  steal.opt(50, be32(ip4(192, 0, 2, 155)));
  EXPECT_EQ(send(steal).sent, MessageType::kNak);
}

TEST_F(ServerTest, ReservationByClientIdOutsidePools) {
  Msg m;
  m.mac = mac_n(0x33);
  m.opt(opt::kClientId, {0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04});
  ASSERT_EQ(send(m).sent, MessageType::kOffer);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 51));
  EXPECT_EQ(reply_.u32(opt::kLeaseTime), 600u);  // the subnet's
  EXPECT_TRUE(events_.empty());                  // static: no lease record
  Msg req = m;
  req.type = MessageType::kRequest;
  req.opt(opt::kServerId, be32(kPortIp)).opt(50, be32(ip4(192, 0, 2, 51)));
  ASSERT_EQ(send(req).sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 51));
}

TEST_F(ServerTest, ReservationByCircuitId) {
  Msg m;
  m.mac = mac_n(0x44);
  m.giaddr = kRelay;
  m.opt(opt::kRelayAgent, {1, 8, 'o', 'l', 't', '7', '/', '1', '/', '1'});
  ASSERT_EQ(send(m, 1).sent, MessageType::kOffer);
  EXPECT_EQ(reply_.yiaddr, ip4(198, 18, 0, 20));
  Msg req = m;
  req.type = MessageType::kRequest;
  req.opt(opt::kServerId, be32(kRelayedSid)).opt(50, be32(ip4(198, 18, 0, 20)));
  ASSERT_EQ(send(req, 1).sent, MessageType::kAck);
  // The address belongs to the circuit, not to a device: a new device behind it renews it.
  Msg other = m;
  other.mac = mac_n(0x45);
  other.type = MessageType::kRequest;
  other.ciaddr = ip4(198, 18, 0, 20);
  EXPECT_EQ(send(other, 1).sent, MessageType::kAck);
  // Without the circuit, never.
  Msg plain;
  plain.type = MessageType::kRequest;
  plain.giaddr = kRelay;
  plain.opt(50, be32(ip4(198, 18, 0, 20)));
  EXPECT_EQ(send(plain, 1).sent, MessageType::kNak);
}

TEST_F(ServerTest, ClassesSelectPools) {
  Msg phone;
  phone.mac = mac_n(0x60);
  phone.opt(opt::kVendorClass, str("Yealink SIP-T46S")).opt(opt::kParamRequest, {66, 42});
  ASSERT_EQ(send(phone).sent, MessageType::kOffer);
  EXPECT_GE(reply_.yiaddr, ip4(192, 0, 2, 100));
  EXPECT_LE(reply_.yiaddr, ip4(192, 0, 2, 109));
  EXPECT_EQ(reply_.get(66), str("tftp.lab.example"));
  EXPECT_EQ(reply_.u32(opt::kNtp), ip4(192, 0, 2, 124));  // pool over global
  EXPECT_EQ(reply_.u32(opt::kLeaseTime), 1200u);
  Msg pc;
  pc.mac = mac_n(0x61);
  pc.opt(opt::kVendorClass, str("MSFT 5.0"));
  ASSERT_EQ(send(pc).sent, MessageType::kOffer);
  EXPECT_GE(reply_.yiaddr, ip4(192, 0, 2, 150));
  EXPECT_FALSE(reply_.get(66));
  // A non-member asking for a phone address is refused.
  Msg steal;
  steal.type = MessageType::kRequest;
  steal.mac = mac_n(0x62);
  steal.opt(50, be32(ip4(192, 0, 2, 105)));
  EXPECT_EQ(send(steal).sent, MessageType::kNak);
  EXPECT_EQ(count(Reason::kNotAllowed), 1u);
  // Subnet C keeps its only pool for olt7: others get nothing.
  Msg stranger;
  stranger.giaddr = ip4(203, 0, 113, 1);
  stranger.secs = 5;
  EXPECT_EQ(send(stranger, 1).reason, Reason::kNoPool);
}

TEST_F(ServerTest, MinSecs) {
  Msg m;
  m.giaddr = ip4(203, 0, 113, 1);
  m.opt(opt::kRelayAgent, {1, 5, 'o', 'l', 't', '7', '/'});
  m.secs = 2;
  EXPECT_EQ(send(m, 1).reason, Reason::kMinSecs);
  m.type = MessageType::kRequest;
  m.opt(50, be32(ip4(203, 0, 113, 10)));
  EXPECT_EQ(send(m, 1).reason, Reason::kMinSecs);
  EXPECT_EQ(count(Reason::kMinSecs), 2u);
  m.secs = 3;
  EXPECT_EQ(send(m, 1).sent, MessageType::kAck);
}

TEST_F(ServerTest, Exhaustion) {
  Msg m;
  m.giaddr = ip4(203, 0, 113, 1);
  m.secs = 60;
  m.opt(opt::kRelayAgent, {1, 5, 'o', 'l', 't', '7', '/'});
  for (uint8_t n = 0; n < 2; ++n) {
    m.mac = mac_n(n);
    ASSERT_EQ(send(m, 1).sent, MessageType::kOffer);
  }
  m.mac = mac_n(3);
  const Outcome o = send(m, 1);
  EXPECT_EQ(o.sent, MessageType::kNone);
  EXPECT_EQ(o.reason, Reason::kPoolExhausted);
  // Once the offers lapse, there is room again.
  store_.expire(kNow + 31 * kSec);
  EXPECT_EQ(send(m, 1, kNow + 31 * kSec).sent, MessageType::kOffer);
}

TEST_F(ServerTest, Inform) {
  Msg m;
  m.type = MessageType::kInform;
  m.mac = mac_n(0x77);
  m.ciaddr = ip4(192, 0, 2, 77);
  m.opt(opt::kParamRequest, {1, 3, 6, 51, 58});
  const Outcome o = send(m);
  ASSERT_EQ(o.sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, 0u);
  EXPECT_EQ(reply_.ciaddr, ip4(192, 0, 2, 77));
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 1, 3, 6}));
  EXPECT_EQ(o.dst.ip, ip4(192, 0, 2, 77));
  EXPECT_EQ(o.dst.port, kClientPort);
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(store_.find(ip4(192, 0, 2, 77)), nullptr);
}

TEST_F(ServerTest, SizeLimitKeepsEchoes) {
  // A 576-byte limit (548 bytes of payload) and a large option: it is left out, 61 and 82 stay.
  ServerConfig big = make_config();
  OptionTable t = big.tables[big.global_options];
  t.set(43, Bytes(300, 0x5a));
  big.tables[big.global_options] = t;
  server_.set_config(big);
  Msg m;
  m.giaddr = kRelay;
  const Bytes ri{1, 200};
  Bytes ri_full = ri;
  ri_full.resize(202, 'x');
  m.opt(opt::kClientId, Bytes(40, 7)).opt(opt::kRelayAgent, ri_full);
  const Outcome o = send(m, 1);
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_TRUE(o.options_left_out);
  EXPECT_FALSE(o.relay_info_left_out);
  EXPECT_LE(o.len, 548u);
  EXPECT_FALSE(reply_.get(43));
  EXPECT_EQ(reply_.get(opt::kClientId), Bytes(40, 7));
  EXPECT_EQ(reply_.opts.back().first, opt::kRelayAgent);
  EXPECT_EQ(server_.counters().options_left_out.get(), 1u);
  server_.set_config(cfg_);
}

TEST_F(ServerTest, ShortBufferAndServerMessages) {
  std::array<uint8_t, 100> small{};
  bytes_ = encode(dhclient(MessageType::kDiscover));
  Malformed why{};
  ASSERT_TRUE(parse(bytes_, req_, why));
  const Outcome o = server_.handle(req_, Ingress{0, kPortIp, true}, kNow, small, &events_);
  EXPECT_EQ(o.sent, MessageType::kNone);
  EXPECT_EQ(o.reason, Reason::kNoRoom);
  Msg offer;
  offer.type = MessageType::kOffer;
  EXPECT_EQ(send(offer).reason, Reason::kNotServed);
  Msg bad;
  bad.type = MessageType::kRequest;
  EXPECT_EQ(send(bad).reason, Reason::kBadRequest);
}

TEST_F(ServerTest, NeverTwoClientsOneAddress) {
  // Property: across a random mix of DISCOVER/REQUEST/RELEASE/DECLINE, no address is ACKed to two
  // clients at once.
  std::array<uint32_t, 32> held{};
  uint64_t now = kNow;
  uint32_t seed = 12345;
  auto rnd = [&] { return seed = seed * 1103515245 + 12345, (seed >> 16) & 0x7fff; };
  for (int i = 0; i < 2000; ++i) {
    now += kSec;
    store_.expire(now);
    const uint8_t c = uint8_t(rnd() % 32);
    const unsigned op = rnd() % 4;
    Msg m = dhclient(MessageType::kDiscover, mac_n(c));
    if (op == 0) {
      send(m, 0, now);
    } else if (op == 1) {
      m.type = MessageType::kRequest;
      m.opt(50, be32(ip4(192, 0, 2, 150 + rnd() % 10)));
      if (send(m, 0, now).sent == MessageType::kAck) {
        held[c] = reply_.yiaddr;
        for (size_t o = 0; o < held.size(); ++o) {
          if (o != c && held[o] == held[c]) {
            const Lease* l = store_.find(held[o]);
            ASSERT_TRUE(l == nullptr || l->mac != mac_n(uint8_t(o)) ||
                        l->state != LeaseState::kBound)
                << "two holders of an address";
          }
        }
      }
    } else if (op == 2 && held[c] != 0) {
      m.type = MessageType::kRelease;
      m.ciaddr = held[c];
      send(m, 0, now);
      held[c] = 0;
    } else if (op == 3 && held[c] != 0) {
      m.type = MessageType::kDecline;
      m.opt(50, be32(held[c]));
      send(m, 0, now);
      held[c] = 0;
    }
  }
  for (size_t r = 0; r < size_t(Reason::kCount); ++r) EXPECT_NE(kReasonNames[r], nullptr);
}

// ---------------------------------------------------------------------------------------------
// Golden requests from tests/fixtures/dhcp_golden.txt (tests/fixtures/gen_dhcp_golden.py).

Bytes from_hex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::map<std::string, Bytes> goldens() {
  std::map<std::string, Bytes> out;
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) + "/tests/fixtures/dhcp_golden.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t bar = line.find('|');
    if (bar == std::string::npos) continue;
    std::string name = line.substr(0, bar), hex = line.substr(bar + 1);
    name.erase(name.find_last_not_of(' ') + 1);
    hex.erase(0, hex.find_first_not_of(' '));
    out[name] = from_hex(hex);
  }
  return out;
}

// The generator's server: 192.0.2.2 on port 0, router 192.0.2.1, relay 192.0.2.10 for the same
// subnet; a pool for vendor class "tandem-vendor..." and an open one starting at .50.
ServerConfig golden_config() {
  ServerConfig c;
  c.port_addresses = {{kPortIp}};
  std::span<const uint8_t> v[] = {{reinterpret_cast<const uint8_t*>("tandem-vendor"), 13}};
  ClassMatch m;
  m.field = ClassMatch::Field::kVendorClass;
  m.prefix = true;
  c.add_class(std::span<const ClassMatch>(&m, 1), v);
  SubnetConf s;
  s.network = ip4(192, 0, 2, 0);
  s.len = 24;
  s.port = 0;
  s.lease = {3600, 60, 86400};
  OptionTable t;
  t.set(opt::kRouter, be32(ip4(192, 0, 2, 1)));
  s.options = c.add_table(t);
  c.add_subnet(s);
  PoolConf vendor;
  vendor.first = ip4(192, 0, 2, 40);
  vendor.last = ip4(192, 0, 2, 49);
  vendor.classes = 1;
  c.add_pool(vendor);
  PoolConf open;
  open.first = ip4(192, 0, 2, 50);
  open.last = ip4(192, 0, 2, 60);
  c.add_pool(open);
  c.finish({{kRelay}});
  return c;
}

class GoldenTest : public ::testing::Test {
 protected:
  GoldenTest()
      : gold_(goldens()),
        cfg_(golden_config()),
        store_(LeaseStore::Params{}),
        server_(cfg_, store_) {
    for (uint32_t p = 0; p < cfg_.pools.size(); ++p) {
      EXPECT_TRUE(store_.add_range(p, cfg_.pools[p].first, cfg_.pools[p].last));
    }
    events_.reserve(8);
  }
  Outcome send(const std::string& name) {
    EXPECT_TRUE(gold_.count(name)) << name;
    bytes_ = gold_[name];
    Malformed why{};
    EXPECT_TRUE(parse(bytes_, req_, why)) << name;
    events_.clear();
    const Outcome o = server_.handle(req_, Ingress{0, kPortIp, true}, kNow, out_, &events_);
    reply_ = decode(std::span<const uint8_t>(out_.data(), o.len));
    return o;
  }

  std::map<std::string, Bytes> gold_;
  ServerConfig cfg_;
  LeaseStore store_;
  Server server_;
  Bytes bytes_;
  Request req_;
  std::array<uint8_t, kMaxReplyLen> out_{};
  std::vector<LeaseEvent> events_;
  Reply reply_;
};

TEST_F(GoldenTest, DhclientDiscoverThenSelectingRequest) {
  Outcome o = send("discover_dhclient");
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 50));
  // PRL 1, 3, 6, 15, 28, 42, 51, 58, 59, 121: 6, 15, 42, 121 are not configured.
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 51, 58, 59, 1, 3, 28, 61}));
  EXPECT_EQ(reply_.u32(opt::kT2), 3150u);
  o = send("request_selecting");  // asks for 192.0.2.50 from 192.0.2.2
  ASSERT_EQ(o.sent, MessageType::kAck);
  EXPECT_EQ(reply_.yiaddr, ip4(192, 0, 2, 50));
  EXPECT_EQ(store_.find(ip4(192, 0, 2, 50))->state, LeaseState::kBound);
}

TEST_F(GoldenTest, RelayedDiscoverEchoes82Last) {
  const Outcome o = send("discover_relayed");
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_EQ(o.dst.ip, kRelay);
  EXPECT_EQ(o.dst.port, kServerPort);
  EXPECT_EQ(reply_.flags, 0x8000);
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 51, 58, 59, 1, 3, 82}));
  Bytes ri{1, 12};
  for (char ch : std::string("ge-0/0/1.100")) ri.push_back(uint8_t(ch));
  ri.insert(ri.end(), {2, 6, 0x02, 0x00, 0x00, 0x00, 0x10, 0x01});
  EXPECT_EQ(reply_.get(opt::kRelayAgent), ri);
}

TEST_F(GoldenTest, OverloadedVendorClassSelectsClassPool) {
  const Outcome o = send("discover_overload");  // 60 in sname, 55 split over options and file
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_GE(reply_.yiaddr, ip4(192, 0, 2, 40));
  EXPECT_LE(reply_.yiaddr, ip4(192, 0, 2, 49));
  EXPECT_EQ(reply_.codes(), (std::vector<uint8_t>{53, 54, 51, 58, 59, 1, 3, 28, 61}));
}

TEST_F(GoldenTest, LongVendorClassIsNoMember) {
  const Outcome o = send("discover_long_option");
  ASSERT_EQ(o.sent, MessageType::kOffer);
  EXPECT_GE(reply_.yiaddr, ip4(192, 0, 2, 50));
}

TEST_F(GoldenTest, InformAckMatchesGoldenBytes) {
  const Outcome o = send("inform");
  ASSERT_EQ(o.sent, MessageType::kAck);
  const Bytes& want = gold_["ack_inform"];
  EXPECT_EQ(Bytes(out_.begin(), out_.begin() + o.len), want);
  EXPECT_EQ(o.dst.ip, ip4(192, 0, 2, 77));
}

}  // namespace
}  // namespace dhcp

namespace dhcp {
namespace {

// Multi-worker dispatch: a client with a reservation (by MAC, client id or circuit-id) goes to
// the worker that holds its address, whatever else it sends; any other client always to the
// same worker, by chaddr.
TEST_F(ServerTest, OwnerOfFollowsReservationsThenChaddr) {
  const auto owner = [&](const Msg& m, uint32_t n) {
    const Bytes b = encode(m);
    Request r;
    Malformed why{};
    EXPECT_TRUE(parse(b, r, why));
    return owner_of(cfg_, r, Ingress{0, kPortIp, true}, n);
  };
  const auto host = [&](HostKey k) -> const HostConf& {
    for (const HostConf& h : cfg_.hosts)
      if (h.key == k) return h;
    ADD_FAILURE() << "no host of that kind";
    return cfg_.hosts[0];
  };
  for (uint32_t n : {2u, 3u, 5u, 8u}) {
    Msg printer = dhclient(MessageType::kDiscover, mac_n(0x50));
    EXPECT_EQ(owner(printer, n), owner_of(cfg_, host(HostKey::kMac), n)) << n;
    for (uint8_t i = 1; i < 20; ++i) {
      Msg byid;
      byid.mac = mac_n(i);
      byid.opt(opt::kClientId, {0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04});
      EXPECT_EQ(owner(byid, n), owner_of(cfg_, host(HostKey::kClientId), n)) << n;
      Msg cpe;
      cpe.mac = mac_n(i);
      cpe.giaddr = kRelay;
      Bytes ri{opt::kCircuitId, 8};
      const Bytes id = str("olt7/1/1");
      ri.insert(ri.end(), id.begin(), id.end());
      cpe.opt(opt::kRelayAgent, ri);
      EXPECT_EQ(owner(cpe, n), owner_of(cfg_, host(HostKey::kCircuitId), n)) << n;
    }
    std::set<uint32_t> seen;
    for (uint8_t i = 100; i < 164; ++i) {
      const uint32_t d = owner(dhclient(MessageType::kDiscover, mac_n(i)), n);
      Msg renew = dhclient(MessageType::kRequest, mac_n(i));
      renew.ciaddr = ip4(192, 0, 2, 160);
      EXPECT_EQ(owner(renew, n), d);
      EXPECT_LT(d, n);
      seen.insert(d);
    }
    EXPECT_EQ(seen.size(), n) << "64 clients should reach every one of " << n << " workers";
  }
}

}  // namespace
}  // namespace dhcp

namespace dhcp {
namespace {

TEST(RequestLimiter, CountsPerKeyPerWindow) {
  RequestLimiter l(64);
  const uint64_t w = 10 * kSec;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l.allow(42, 3, w, kNow + i));
  EXPECT_FALSE(l.allow(42, 3, w, kNow + 5));
  EXPECT_TRUE(l.allow(43, 3, w, kNow + 5)) << "another key has its own count";
  EXPECT_FALSE(l.allow(42, 3, w, kNow + w - 1));
  EXPECT_TRUE(l.allow(42, 3, w, kNow + w)) << "a new window";
  EXPECT_TRUE(l.allow(42, 0, w, kNow + w)) << "limit 0: no limit";
}

// A flood of distinct keys fills the table: newcomers are let through (untracked), and keys
// already tracked keep their counts.
TEST(RequestLimiter, AFloodNeverBlocksTheInnocentNorGrows) {
  RequestLimiter l(64);
  const uint64_t w = 10 * kSec;
  EXPECT_TRUE(l.allow(7, 1, w, kNow));
  for (uint64_t k = 1000; k < 11000; ++k)
    EXPECT_TRUE(l.allow(k * 0x9e3779b97f4a7c15ull, 1, w, kNow));
  EXPECT_GT(l.untracked(), 9000u);
  EXPECT_FALSE(l.allow(7, 1, w, kNow + 1)) << "the tracked key is still limited";
}

TEST_F(ServerTest, RequestsPerMacAndPerCircuitAreLimited) {
  cfg_.limits.window_ns = 10 * kSec;
  cfg_.limits.per_mac = 2;
  cfg_.limits.per_circuit = 3;
  RequestLimiter lim;
  server_.set_limiter(&lim);
  Msg d = dhclient(MessageType::kDiscover, mac_n(9));
  EXPECT_EQ(send(d).sent, MessageType::kOffer);
  EXPECT_EQ(send(d).sent, MessageType::kOffer);
  EXPECT_EQ(send(d).sent, MessageType::kNone);
  EXPECT_EQ(count(Reason::kRateLimited), 1u);
  EXPECT_EQ(send(dhclient(MessageType::kDiscover, mac_n(10))).sent, MessageType::kOffer)
      << "another MAC is not affected";
  EXPECT_EQ(send(d, 0, kNow + 10 * kSec).sent, MessageType::kOffer) << "next window";
  // Three clients behind one circuit: the fourth request from that circuit is refused.
  Bytes ri{opt::kCircuitId, 4, 'p', 'o', 'n', '1'};
  for (uint8_t i = 0; i < 4; ++i) {
    Msg r = dhclient(MessageType::kDiscover, mac_n(static_cast<uint8_t>(20 + i)));
    r.giaddr = kRelay;
    r.opt(opt::kRelayAgent, ri);
    EXPECT_EQ(send(r).sent, i < 3 ? MessageType::kOffer : MessageType::kNone) << int(i);
  }
  EXPECT_EQ(count(Reason::kRateLimited), 2u);
  // RELEASE and INFORM are never limited.
  Msg rel = dhclient(MessageType::kRelease, mac_n(9));
  send(rel);
  EXPECT_EQ(count(Reason::kRateLimited), 2u);
}

}  // namespace
}  // namespace dhcp

namespace dhcp {
namespace {

TEST(CircuitCounts, CountsAddAndRemoveAndReusesOnlyEmptySlots) {
  CircuitCounts c(4);
  const uint32_t a = c.add(11), b = c.add(11), x = c.add(22);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, x);
  EXPECT_EQ(c.count(11), 2u);
  c.remove(a);
  c.remove(b);
  EXPECT_EQ(c.count(11), 0u);
  EXPECT_EQ(c.count(22), 1u);
  for (uint64_t k = 100; k < 103; ++k) EXPECT_NE(c.add(k), 0u);  // reuses 11's slot
  EXPECT_EQ(c.add(999), 0u) << "full: not counted";
  EXPECT_EQ(c.count(22), 1u);
}

// Behind one circuit at most 2 addresses: a third client gets nothing until one is released;
// clients of another circuit, and the two holders renewing, are not affected.
TEST_F(ServerTest, LeasesPerCircuitBoundWhatOneCircuitHolds) {
  cfg_.limits.leases_per_circuit = 2;
  CircuitCounts counts;
  server_.set_circuit_counts(&counts);
  const auto behind = [](MessageType t, uint8_t n, const std::string& circuit) {
    Msg m = dhclient(t, mac_n(n));
    m.giaddr = kRelay;
    Bytes ri{opt::kCircuitId, static_cast<uint8_t>(circuit.size())};
    ri.insert(ri.end(), circuit.begin(), circuit.end());
    m.opt(opt::kRelayAgent, ri);
    return m;
  };
  std::vector<uint32_t> ips;
  for (uint8_t n = 1; n <= 2; ++n) {
    ASSERT_EQ(send(behind(MessageType::kDiscover, n, "pon1")).sent, MessageType::kOffer);
    ips.push_back(reply_.yiaddr);
    Msg r = behind(MessageType::kRequest, n, "pon1");
    r.opt(opt::kRequestedIp, be32(ips.back())).opt(opt::kServerId, be32(kRelayedSid));
    ASSERT_EQ(send(r).sent, MessageType::kAck);
  }
  EXPECT_EQ(send(behind(MessageType::kDiscover, 3, "pon1")).sent, MessageType::kNone);
  EXPECT_EQ(count(Reason::kCircuitFull), 1u);
  EXPECT_EQ(send(behind(MessageType::kDiscover, 4, "pon2")).sent, MessageType::kOffer);
  EXPECT_EQ(send(behind(MessageType::kDiscover, 1, "pon1")).sent, MessageType::kOffer)
      << "a holder is offered its own address again";
  Msg rel = behind(MessageType::kRelease, 1, "pon1");
  rel.ciaddr = ips[0];
  rel.opt(opt::kServerId, be32(kRelayedSid));
  send(rel);
  EXPECT_EQ(send(behind(MessageType::kDiscover, 3, "pon1")).sent, MessageType::kOffer)
      << "a released address frees room on the circuit";
}

}  // namespace
}  // namespace dhcp
