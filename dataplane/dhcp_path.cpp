#include "dataplane/dhcp_path.h"

#include <cstring>
#include <span>

#include "dataplane/proto.h"

namespace dp {

uint32_t dhcp_warm(const DhcpEngine& e, const uint8_t* frame, uint32_t l4_off,
                   uint32_t l4_len) noexcept {
  dhcp::Peek p;
  if (!dhcp::peek({frame + l4_off, l4_len}, p)) return 0;
  if (p.addr != 0) e.store->warm_addr(p.addr);
  if (!p.client_id.empty()) return e.store->warm_client(dhcp::ClientKey::from_id(p.client_id));
  std::array<uint8_t, 6> mac;
  std::memcpy(mac.data(), p.chaddr, mac.size());
  return e.store->warm_client(dhcp::ClientKey::from_mac(mac));
}

DhcpResult dhcp_handle(DhcpEngine& e, const Snapshot& s, uint32_t port, uint8_t* frame,
                       uint32_t len, uint32_t cap, uint32_t l4_off, uint32_t l4_len,
                       uint64_t now_ns, uint32_t hops) noexcept {
  DhcpResult res;
  if (s.dhcp == nullptr || port >= s.n_ports || l4_off > len || l4_len > len - l4_off) return res;
  const dhcp::ServerConfig& cfg = *s.dhcp;
  dhcp::Request& req = e.req;
  dhcp::Malformed why{};
  if (!dhcp::parse({frame + l4_off, l4_len}, req, why)) {
    e.stats.malformed[static_cast<size_t>(why)].add();
    return res;
  }
  const PortView& pv = s.ports[port];
  dhcp::Ingress in;
  in.port = port;
  in.port_ip = pv.n_addrs != 0 ? pv.addrs[0] : 0;
  in.to_broadcast = load_be32(frame + kEthHdrLen + ipv4::kOffDst) == 0xffffffffu;
  in.owned = {s.owned, s.n_owned < std::size(s.owned) ? s.n_owned : std::size(s.owned)};
  if (e.n_workers > 1 && hops == 0) {
    const uint32_t owner = dhcp::owner_of(cfg, req, in, e.n_workers);
    if (owner != e.worker) {
      res.action = DhcpAction::kHandOff;
      res.owner = owner;
      return res;
    }
  }
  e.stats.received[static_cast<size_t>(req.type)].add();

  // Borrowing: a DISCOVER our share cannot serve goes on to the next worker, lock-free over its
  // hand-off ring, until every worker was asked (not with per-circuit dispatch: the circuit's
  // owner must see all of its requests).
  in.may_lend = e.n_workers > 1 && hops + 1 < e.n_workers && !cfg.dispatch_by_circuit &&
                req.type == dhcp::MessageType::kDiscover;
  const dhcp::Outcome o = e.server.handle(req, in, now_ns, e.out, &e.events);
  if (in.may_lend && o.reason == dhcp::Reason::kPoolExhausted) {
    e.stats.lent.add();
    res.action = DhcpAction::kHandOff;
    res.owner = (e.worker + 1) % e.n_workers;
    res.hops = hops + 1;
    return res;
  }
  if (o.sent == dhcp::MessageType::kNone || o.len == 0) return res;
  if (kUdpFrameHdrLen + o.len > cap) return res;  // cannot happen: cap ≥ 2 KB mbufs

  // The request's bytes are dead from here on: the reply overwrites the frame.
  const Mac l2_src = EthView::src(frame);
  Mac dst_mac = kBroadcastMac;
  switch (o.dst.l2) {
    case dhcp::Addressing::L2::kBroadcast:
      break;
    case dhcp::Addressing::L2::kChaddr:
      // An off-link ciaddr (a relayed client renewing by unicast) is reached through the router
      // its request came from, not by its own MAC.
      if (!pv.on_link(o.dst.ip) && !is_multicast(l2_src)) {
        dst_mac = l2_src;
        break;
      }
      std::memcpy(dst_mac.data(), req.chaddr.data(), 6);
      break;
    case dhcp::Addressing::L2::kRoute:
      // A relay (giaddr): the reply goes back the way the request came, to the MAC that sent it
      // (the relay itself, or the router in front of it). A single-homed server has no other
      // route to a relay; multicast/broadcast senders cannot be answered that way.
      if (is_multicast(l2_src)) {
        e.stats.no_route.add();
        return res;
      }
      dst_mac = l2_src;
      break;
  }
  // The source MAC is the one the server identifier is answered with (a VRRP virtual MAC).
  const int sid = pv.find(o.dst.src_ip);
  const Mac& src_mac = sid >= 0 ? pv.mac_of(sid) : pv.mac;
  res.len =
      static_cast<uint32_t>(write_udp_frame(frame, dst_mac, src_mac, o.dst.src_ip, o.dst.ip,
                                            dhcp::kServerPort, o.dst.port, e.out.data(), o.len));
  res.action = DhcpAction::kTransmit;
  return res;
}

}  // namespace dp
