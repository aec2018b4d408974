#pragma once
// The sync link's transport: one authenticated, reliable, ordered stream of application entries
// in each direction between the two nodes of a pair, carried in UDP datagrams. Pure logic over
// byte spans and a caller-supplied clock (ns): the caller owns the socket (it feeds received
// datagrams to on_datagram() and sends what poll() returns). Control threads only; unit-tested
// without sockets.
//
// Wire (all integers big-endian), one datagram:
//   header   magic "TDSY" | version u8 (kVersion) | type u8 (DgramType) | flags u16 |
//            sender boot id u64 | receiver boot id u64 (0 until known) | packet number u64 |
//            cumulative ack u64 (entries of the peer's stream received in order) |
//            sack count u8 + up to kMaxSack (first u64, last u64) ranges received beyond it
//   body     by type (see DgramType)
//   trailer  HMAC-SHA256 (32 bytes) over everything before it, keyed with the shared key
// Entries (kData): count u16, then per entry: seq u64 | type u8 | length u16 | bytes.
//
// Security: a datagram whose HMAC does not verify is dropped and counted (auth_failures).
// Replay: packet numbers increase per sender boot id; the receiver keeps a sliding window of
// kReplayWindow numbers and drops anything older or already seen (replays). A peer's boot id is
// only learnt through the HELLO handshake, which echoes a fresh random nonce of ours, so a
// recorded HELLO cannot be replayed to reset the session.
//
// Sessions: HELLO (boot id, nonce, echo of the peer's nonce) both ways establishes a session;
// each side's stream then starts at entry seq 1. When the peer's boot id changes (it restarted)
// or the peer is silent for dead_ns, the session ends: unacknowledged entries are discarded
// (the application resends its state with a bulk resync once the next session is up, see
// Events). Heartbeats carry an application status blob (set_status) every heartbeat_ns.
//
// Reliability: entries are kept until acknowledged; an entry is retransmitted when a SACK shows
// a later entry arrived without it (fast retransmit, at most once per RTT) or when rto_ns passes
// without an ack; the receiver delivers in order, buffers up to window_entries beyond a gap and
// drops duplicates. Acks are sent by poll() after any data arrived (one per poll), and with
// every datagram.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ctl::sync {

inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kMaxSack = 4;
inline constexpr uint64_t kReplayWindow = 4096;
inline constexpr size_t kHmacLen = 32;

enum class DgramType : uint8_t {
  kHello = 1,      // body: nonce u64 | echo u64 (the peer's last nonce, 0 if none) | hb status
  kHeartbeat = 2,  // body: status length u16 | status bytes
  kData = 3,       // body: entries
  kAck = 4,        // body: empty (the header's ack/sack fields)
};

struct ChannelParams {
  std::vector<uint8_t> key;         // HMAC key (non-empty)
  uint64_t boot_id = 0;             // ours: random, non-zero, new on every start
  size_t max_datagram = 1400;       // bytes on the wire (fits the sync link's MTU)
  uint64_t heartbeat_ns = 100'000'000;
  uint64_t dead_ns = 500'000'000;   // peer silent this long: session down
  uint64_t hello_ns = 200'000'000;  // HELLO retry interval while down
  uint64_t rto_ns = 20'000'000;     // retransmission timeout (fixed; the link is local)
  size_t window_entries = 65536;    // unacknowledged entries in flight / buffered beyond a gap
  size_t max_queued_entries = 4'000'000;  // entries waiting to be sent; beyond: send() refuses
};

struct ChannelStats {
  uint64_t dgrams_sent = 0, dgrams_received = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t entries_sent = 0;         // first transmissions
  uint64_t entries_retransmitted = 0;
  uint64_t entries_delivered = 0;    // in order, to the application
  uint64_t duplicates = 0;           // entries received twice (dropped)
  uint64_t auth_failures = 0;        // HMAC did not verify
  uint64_t replays = 0;              // packet number replayed or too old, or stale boot id/nonce
  uint64_t malformed = 0;            // truncated, bad magic/version/type, lengths off
  uint64_t sessions = 0;             // sessions established
  uint64_t peer_restarts = 0;        // sessions ended because the peer's boot id changed
  uint64_t timeouts = 0;             // sessions ended because the peer went silent
  uint64_t refused = 0;              // send() refused (queue full)
};

enum class ChannelState : uint8_t { kDown, kUp };

class Channel {
 public:
  // What on_datagram()/poll() report to the application, in order.
  struct Events {
    // An entry of the peer's stream, in order, exactly once per session.
    std::function<void(uint64_t seq, uint8_t type, std::span<const uint8_t> body)> entry;
    // A session came up (both sides' streams start empty: send the bulk resync now).
    std::function<void()> up;
    // The session ended (peer restart or silence): what was unacknowledged is dropped.
    std::function<void()> down;
  };

  Channel(ChannelParams p, Events ev);

  // Queues one entry (body ≤ max_datagram - headers) for the peer. Returns its sequence number
  // (> 0) in this session's stream, or 0 when refused: session down, body too long, or
  // max_queued_entries reached (counted). O(1) amortised; copies the body.
  uint64_t send(uint8_t type, std::span<const uint8_t> body);
  // Highest seq of our stream the peer acknowledged, cumulatively (0: none in this session).
  uint64_t acked() const;
  // Our stream: entries sent and not yet acknowledged (queued included).
  size_t unacked() const;
  // Status blob carried by our heartbeats and HELLOs (≤ 512 bytes); the peer's last one.
  void set_status(std::span<const uint8_t> s);
  const std::vector<uint8_t>& peer_status() const;
  // Time (ns, caller's clock) a valid datagram was last received from the peer; 0 if never.
  uint64_t last_heard() const;

  // A datagram received from the peer's address. Verifies, then acts; invalid ones are counted.
  void on_datagram(std::span<const uint8_t> dgram, uint64_t now);
  // Datagrams to send now (HELLO, data, retransmissions, acks, heartbeats), each complete with
  // its HMAC, appended to `out`. Sends at most `budget` datagrams (pacing; the rest next call).
  void poll(uint64_t now, std::vector<std::vector<uint8_t>>& out, size_t budget = 256);
  // When poll() next has something to do (a timer) if nothing arrives; UINT64_MAX if nothing.
  uint64_t next_deadline() const;

  ChannelState state() const;
  uint64_t peer_boot_id() const;  // 0 when down
  const ChannelStats& stats() const;

  // (private members are the implementation's choice)

 private:
  // Closed, disjoint, non-adjacent ranges of sequence numbers (SACK state on both sides).
  class RangeSet {
   public:
    // Adds [first, last] and calls on_new(a, b) for every part [a, b] that was not in the set.
    template <class F>
    void add(uint64_t first, uint64_t last, F&& on_new);
    void erase_below(uint64_t seq);  // forgets everything < seq
    void clear() { ranges_.clear(); }
    const std::map<uint64_t, uint64_t>& ranges() const { return ranges_; }  // first -> last

   private:
    std::map<uint64_t, uint64_t> ranges_;
  };

  // Packet numbers seen from one sender boot id: the highest and the kReplayWindow before it.
  class ReplayWindow {
   public:
    explicit ReplayWindow(uint64_t boot = 0) : boot_(boot) {}
    uint64_t boot() const { return boot_; }
    bool seen(uint64_t pn) const;  // already accepted, or too old to tell
    void mark(uint64_t pn);
    void mark_through(uint64_t pn);  // everything <= pn counts as seen from now on

   private:
    uint64_t boot_ = 0;
    uint64_t top_ = 0;
    std::array<uint64_t, kReplayWindow / 64> bits_{};
  };

  struct TxEntry {
    std::vector<uint8_t> body;
    uint64_t last_pkt = 0;  // packet number of its latest transmission; 0: not sent yet
    uint64_t sent_at = 0;   // time of its latest transmission
    uint8_t type = 0;
    bool sacked = false;  // the peer holds it beyond a gap (receivers never renege)
    bool resent = false;  // its ack no longer tells which transmission arrived (Karn)
  };
  // One transmission of one entry, in sending order (for rto_ns). Lazily pruned: a record is
  // stale once its entry is acknowledged, sacked or carried again by a later packet.
  struct Sent {
    uint64_t pkt, seq, at;
  };
  // An entry held beyond a gap. Slots are reused (seq modulo the ring's size), so small bodies
  // cost no allocation once the ring is warm.
  struct RxSlot {
    std::vector<uint8_t> body;
    uint8_t type = 0;
    bool present = false;
  };
  struct Header;
  struct Mac;  // the keyed OpenSSL HMAC context (channel.cpp)
  struct MacFree {
    void operator()(Mac* m) const;
  };

  void on_hello(const Header& h, std::span<const uint8_t> body, uint64_t now);
  void establish(uint64_t boot, uint64_t peer_nonce, uint64_t our_nonce, uint64_t pkt, bool peer_up,
                 std::span<const uint8_t> status, uint64_t now);
  void teardown(bool restart);
  void reset_streams();
  void apply_ack(const Header& h, uint64_t now);
  uint64_t lost_at(const TxEntry& e) const;
  void receive_entries(std::span<const uint8_t> body);
  void deliver(uint64_t seq, uint8_t type, std::span<const uint8_t> body);
  const Sent* first_live() const;
  bool can_send_new() const;
  void prune_sent();
  uint64_t fresh_nonce();
  // Datagram construction: the header (with our ack/SACK when with_ack), then seal() appends the
  // HMAC and moves it to `out`.
  void put_header(std::vector<uint8_t>& d, DgramType t, uint16_t flags, uint64_t rboot,
                  bool with_ack);
  void put_hello(std::vector<std::vector<uint8_t>>& out, bool session_reply);
  bool seal(std::vector<uint8_t>& d, std::vector<std::vector<uint8_t>>& out);
  size_t poll_data(uint64_t now, uint64_t first_pkt, std::vector<std::vector<uint8_t>>& out,
                   size_t budget);

  ChannelParams p_;
  Events ev_;
  std::unique_ptr<Mac, MacFree> mac_;
  ChannelStats stats_;
  ChannelState state_ = ChannelState::kDown;
  size_t max_body_ = 0;    // longest entry body that fits a datagram with a full SACK
  size_t max_status_ = 0;  // longest status blob that fits a HELLO
  std::vector<uint8_t> status_, peer_status_;
  uint64_t next_pkt_ = 1;  // per boot id, never reused
  uint64_t now_ = 0;       // latest time the caller gave us
  uint64_t last_heard_ = 0;
  uint64_t nonce_counter_ = 0;  // fallback entropy if RAND_bytes ever fails

  // Handshake. nonce_ is ours in HELLOs to cand_boot_: the handshake's while down, a fresh
  // probe while up and a new boot id claims to be our peer.
  uint64_t nonce_ = 0;
  uint64_t cand_boot_ = 0, cand_nonce_ = 0;
  uint64_t next_hello_ = 0;
  bool hello_due_ = false;  // HELLO to the candidate at the next poll
  bool reply_due_ = false;  // up: our peer is still down in this session, tell it we are up
  ReplayWindow peer_win_, cand_win_;

  // Session.
  uint64_t peer_boot_ = 0, peer_nonce_ = 0, sess_nonce_ = 0;
  uint64_t last_rx_ = 0;  // last valid datagram from this session's peer
  uint64_t next_hb_ = 0;

  // Our stream: tx_[i] is seq snd_una_ + i; [snd_una_, snd_nxt_) in flight, the rest queued.
  std::deque<TxEntry> tx_;
  uint64_t snd_una_ = 1, snd_nxt_ = 1, next_seq_ = 1;
  std::deque<Sent> sent_;
  RangeSet sacked_;
  uint64_t rack_pkt_ = 0;  // highest packet number known to have carried an entry that arrived
  // The newest ack (by packet number) describes [its cumulative ack, sack_high_] completely:
  // every seq in there it does not cover was missing when the peer sent it.
  uint64_t ack_pkt_ = 0, sack_high_ = 0;
  uint64_t srtt_ = 0;           // smoothed round trip, from entries sent once (0: no sample yet)
  std::vector<uint64_t> lost_;  // scratch for poll(): holes to send again

  // The peer's stream.
  uint64_t rcv_cum_ = 0;
  std::vector<RxSlot> rx_ring_;  // beyond a gap; a power of two >= window_entries, sized lazily
  RangeSet rx_ranges_;           // the seqs held there, as SACK ranges
  bool ack_due_ = false;
};

}  // namespace ctl::sync
