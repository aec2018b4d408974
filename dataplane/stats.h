#pragma once
// Per-lcore counters. Each block has exactly one writer (its worker, or the control thread for
// its own block); the metrics collector and the API read them at scrape time with relaxed loads.
// Increments are plain load+store on x86 (no lock prefix): single writer, so nothing is lost.

#include <array>
#include <cstdint>
#include <string_view>

#include "dataplane/counter.h"

namespace dp {

// Why a packet was dropped. Names are the `reason` label of tandem_drops_total.
enum class Drop : uint8_t {
  kTooShort,       // shorter than its headers claim, or than Ethernet
  kVlanTagged,     // 802.1Q frames (no VLAN support yet)
  kEtherType,      // not IPv4 or ARP
  kNotOurMac,      // unicast to another MAC
  kArpMalformed,   // wrong htype/ptype/hlen/plen/op
  kArpNotOurs,     // request for an address this port does not own
  kIpv4Malformed,  // version, IHL, total length
  kIpv4Checksum,   // bad header checksum
  kIpv4Fragment,   // fragments (not reassembled)
  kIpv4Options,    // IP options on a packet for us
  kIpv4NotLocal,   // not addressed to us and no forwarding configured
  kIpv4Martian,    // impossible source (0/8, 127/8, multicast, 240/4): never answered
  kIcmpMalformed,  // truncated
  kIcmpChecksum,   // bad checksum
  kIcmpUnhandled,  // ICMP types we do not answer
  kUdpMalformed,   // UDP length field impossible
  kUdpChecksum,    // bad UDP checksum (a zero checksum means none and is accepted)
  kL4Unhandled,    // TCP/UDP to us without a service
  kTxFull,         // TX queue refused the packet
  kPuntRingFull,   // control thread's event ring was full
  kNoRoute,        // forwarding: no route to the destination (ICMP net unreachable sent)
  kNoNeighbor,     // forwarding: next hop not resolved yet (resolution started)
  kTtlExceeded,    // forwarding: TTL ran out (ICMP time exceeded sent)
  kMtuExceeded,    // forwarding: larger than the outgoing MTU (ICMP fragmentation needed if DF)
  kLbNoConn,       // load balancer: a TCP segment other than SYN for an unknown connection
  kLbNoDest,       // load balancer: no real server available for a new connection
  kLbConnFull,     // load balancer: connection table full (or the embryonic share of it)
  kHandoffFull,    // the owning worker's hand-off ring was full
  kCount
};

inline constexpr std::array<std::string_view, static_cast<size_t>(Drop::kCount)> kDropNames{
    "too_short",      "vlan_tagged",    "ether_type",     "not_our_mac",   "arp_malformed",
    "arp_not_ours",   "ipv4_malformed", "ipv4_checksum",  "ipv4_fragment", "ipv4_options",
    "ipv4_not_local", "ipv4_martian",   "icmp_malformed", "icmp_checksum", "icmp_unhandled",
    "udp_malformed",  "udp_checksum",   "l4_unhandled",   "tx_full",       "punt_ring_full",
    "no_route",       "no_neighbor",    "ttl_exceeded",   "mtu_exceeded",  "lb_no_conn",
    "lb_no_dest",     "lb_conn_full",   "handoff_full",
};

struct alignas(64) WorkerStats {
  Counter rx_packets, rx_bytes, tx_packets, tx_bytes;
  Counter loops, busy_loops;         // iterations, and those that found packets
  Counter busy_cycles, idle_cycles;  // TSC cycles spent handling packets vs polling empty/sleeping
  Counter sleeps;                    // adaptive-mode sleeps taken
  Counter arp_requests_in, arp_replies_out, arp_replies_in, arp_other_in;
  Counter icmp_echo_in, icmp_echo_out;
  Counter neighbor_events;  // sender addresses handed to the control thread
  Counter punted;           // frames handed to the control thread (VRRP)
  std::array<Counter, static_cast<size_t>(Drop::kCount)> drops;

  void drop(Drop d, uint64_t n = 1) noexcept { drops[static_cast<size_t>(d)].add(n); }
};

}  // namespace dp
