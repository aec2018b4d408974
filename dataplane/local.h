#pragma once
// The "local" feature: frames addressed to the node itself — ARP for its addresses and ICMP echo.
// Pure over bytes (no EAL): the worker calls it per packet, unit tests call it directly.

#include <cstdint>

#include "dataplane/proto.h"
#include "dataplane/stats.h"

namespace dp {

inline constexpr uint32_t kMaxPortAddrs = 16;

// What a worker knows about one port. Immutable once published in a Snapshot.
struct PortView {
  Mac mac{};
  uint32_t n_addrs = 0;
  uint32_t addrs[kMaxPortAddrs] = {};      // host order: interface addresses, then owned VIPs
  uint8_t prefix_len[kMaxPortAddrs] = {};  // connected prefix of each address
  // The MAC each address is answered with: 0 = the port's MAC, k = vmacs[k - 1] (a VRRP virtual
  // MAC). Frames to any of vmacs[] are ours too.
  uint8_t addr_mac[kMaxPortAddrs] = {};
  uint32_t n_vmacs = 0;
  Mac vmacs[kMaxPortAddrs] = {};
  bool dhcp = false;  // DHCP is served on this port: UDP/67 to us or to 255.255.255.255 is kDhcp
  // Forwarding (routing or load balancing) is on: valid IPv4 datagrams to our MAC that are not for
  // us, and TCP/UDP/ICMP-errors to our addresses that nothing local handles, are kForward.
  bool forward = false;
  uint32_t n_iface = 0;  // addrs[0, n_iface) are interface addresses (the rest: held VIPs)
  uint16_t mtu = 1500;
  bool tap = false;  // a kernel TAP takes what nothing else handles for the interface addresses

  // Index of `ip` in addrs[], or -1. Worker, per packet: at most kMaxPortAddrs compares.
  int find(uint32_t ip) const noexcept;
  const Mac& mac_of(int i) const noexcept {
    const uint32_t k = addr_mac[i];
    return k != 0 && k <= kMaxPortAddrs ? vmacs[k - 1] : mac;
  }

  // Worker, per packet: linear scan of at most kMaxPortAddrs entries.
  bool owns(uint32_t ip) const noexcept;
  // True when `ip` lies inside one of the port's connected prefixes (and is not 0 or broadcast).
  bool on_link(uint32_t ip) const noexcept;
};

// The sender of an ARP packet, handed to the control thread's neighbour table.
struct NeighborHint {
  uint32_t ip = 0;  // host order
  Mac mac{};
  bool targeted = false;  // it named one of our addresses as target (not a gratuitous ARP)
};

enum class Verdict : uint8_t {
  kDrop,      // free it and count `reason`
  kTransmit,  // rewritten in place into a reply of the same length: send on the receiving port
  kConsumed,  // fully handled (e.g. an ARP reply that only taught us a neighbour): free, no drop
  kPunt,      // for the control thread (VRRP): hand the frame over the punt ring
  kDhcp,      // a DHCP request (UDP to port 67): its payload is at [l4_off, l4_off + l4_len)
  kForward,   // port.forward: a valid IPv4 datagram for the forwarding path (dataplane/forward.h):
              // its L4 header at l4_off (IP header before it), l4_len bytes of IP payload;
              // `local` tells whether it was addressed to one of our addresses
};

struct LocalResult {
  Verdict verdict = Verdict::kDrop;
  Drop reason = Drop::kEtherType;  // meaningful only for kDrop
  bool learned = false;            // `hint` is valid: pass it to the control thread
  NeighborHint hint;
  uint16_t l4_off = 0, l4_len = 0;  // kDhcp: UDP payload within the frame; kForward: IP payload
  bool local = false;                // kForward: addressed to one of the port's addresses
};

// Worker, per packet, O(addresses). Handles one whole Ethernet frame (without FCS) received on
// a port described by `port`; increments the ARP/ICMP counters of `stats` (drops are counted by
// the caller from the returned reason). Never reads past `len`.
//  - dst MAC must be ours, broadcast (ARP) or else kNotOurMac.
//  - ARP request for an owned address: rewritten into the reply (eth dst = requester, src = us).
//    ARP reply whose target we own: kConsumed and learned. Any ARP from an on-link sender sets
//    `learned` (targeted = whether it named one of our addresses). Gratuitous ARP (spa == tpa)
//    is learned untargeted. Non-owned requests: kArpNotOurs.
//  - ARP with a group (multicast/broadcast) sender MAC is malformed: it is never answered.
//  - VRRP (IP protocol 112) to 224.0.0.18 (MAC 01:00:5e:00:00:12) or to one of our addresses is
//    kPunt: the control thread validates it (TTL, checksum, ...) and counts what it refuses.
//  - DHCP (port.dhcp): UDP to port 67, addressed to one of our addresses or to 255.255.255.255
//    (Ethernet broadcast accepted for it), any source (clients send from 0.0.0.0), UDP length
//    and non-zero checksum verified, fragments refused: kDhcp with the payload's place.
//  - Replies leave with the MAC of the address they answer for (a VRRP virtual MAC when set).
//  - port.forward: IPv4 not addressed to us (to our MAC, not broadcast) and TCP/UDP or ICMP other
//    than echo to our addresses are kForward once the header is valid (fragments and options
//    included: the forwarding path decides). Without it they are dropped as before.
//  - IPv4: header validated (version, IHL ≥ 5, total length within the frame, checksum); packets
//    not for us, fragments, options and martian sources are dropped with their reason; any TTL
//    is accepted for local delivery (RFC 1122 3.2.1.7); ICMP echo request to an owned address
//    becomes an echo reply (addresses swapped, TTL 64, both checksums recomputed, payload kept).
LocalResult handle_local(uint8_t* frame, uint32_t len, const PortView& port,
                         WorkerStats& stats) noexcept;

}  // namespace dp
