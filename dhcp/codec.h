#pragma once
// DHCPv4 messages (RFC 2131, options RFC 2132, RFC 3396 long options, RFC 3046 relay agent
// information, RFC 6842 client identifier echo): parsing of a received BOOTP/DHCP payload into a
// view with an option index, and building of replies. Pure, allocation-free, over bytes: workers
// call it per packet, unit tests without EAL.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace dhcp {

inline constexpr uint16_t kServerPort = 67;
inline constexpr uint16_t kClientPort = 68;
inline constexpr size_t kFixedLen = 236;  // op .. file
inline constexpr size_t kMinLen = 240;    // fixed part + magic cookie
// RFC 2131 §3. Not named kMagic: Malformed::kMagic shadows it under -Wshadow.
inline constexpr uint32_t kMagicCookie = 0x63825363;
inline constexpr size_t kMinReplyLen = 300;   // BOOTP minimum; replies are padded to it
inline constexpr size_t kMaxReplyLen = 1472;  // fits 1500-byte MTU with IP+UDP

enum class MessageType : uint8_t {
  kNone = 0,
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kDecline = 4,
  kAck = 5,
  kNak = 6,
  kRelease = 7,
  kInform = 8,
};

namespace opt {
inline constexpr uint8_t kPad = 0, kSubnetMask = 1, kRouter = 3, kDns = 6, kHostName = 12,
                         kDomainName = 15, kMtu = 26, kBroadcast = 28, kNtp = 42, kRequestedIp = 50,
                         kLeaseTime = 51, kOverload = 52, kMessageType = 53, kServerId = 54,
                         kParamRequest = 55, kMessage = 56, kMaxSize = 57, kT1 = 58, kT2 = 59,
                         kVendorClass = 60, kClientId = 61, kRelayAgent = 82,
                         kClasslessRoutes = 121, kEnd = 255;
// Relay agent information sub-options (RFC 3046).
inline constexpr uint8_t kCircuitId = 1, kRemoteId = 2;
}  // namespace opt

// Why a received message was refused. Names are the `reason` label of
// tandem_dhcp_drops_total.
enum class Malformed : uint8_t {
  kTruncated,      // shorter than 240 bytes
  kOp,             // op is not BOOTREQUEST (1) on the server port
  kHtype,          // htype/hlen not Ethernet (1/6) — hlen > 16 is refused here too
  kMagic,          // bad magic cookie
  kOptionOverrun,  // an option's length runs past the end of its area (or a payload > 65535
                   // bytes, which no UDP datagram carries and 16-bit Span offsets cannot index)
  kNoEnd,          // never returned: areas without END are tolerated (see parse()); kept so the
                   // label set of the drop counter is stable
  kOverload,       // bad option 52 value, or overload inside sname/file (loops)
  kNoMessageType,  // no option 53, or a value outside 1..8 (BOOTP is not served)
  // A known option with an impossible length (53 ≠ 1, 50/51/54 ≠ 4, 57 ≠ 2 or < 576), measured
  // over all its instances (RFC 3396).
  kBadOption,
  kCount
};
inline constexpr std::array<const char*, static_cast<size_t>(Malformed::kCount)> kMalformedNames{
    "truncated", "op",       "htype",           "magic",     "option_overrun",
    "no_end",    "overload", "no_message_type", "bad_option"};

// A parsed request: pointers into the caller's buffer, valid while it is.
struct Request {
  const uint8_t* data = nullptr;  // the BOOTP payload
  size_t len = 0;
  MessageType type = MessageType::kNone;
  uint32_t xid = 0;
  uint16_t secs = 0;
  uint16_t flags = 0;  // bit 15: broadcast
  uint8_t hops = 0;
  uint32_t ciaddr = 0, yiaddr = 0, siaddr = 0, giaddr = 0;  // host order
  std::array<uint8_t, 6> chaddr{};

  // Option index: where each option's value starts in `data` and how long it is. Options split
  // into several instances (RFC 3396) are reported by `first`/`count`; use copy_option() to get
  // them concatenated. Codes not present have count 0.
  struct Span {
    uint16_t first = 0;  // offset of the first instance's value in data
    uint16_t len = 0;    // total value length over all instances
    uint8_t count = 0;   // instances, saturating at 255 (a 1500-byte packet holds 750)
  };
  std::array<Span, 256> options{};
  // The codes present, in order of first appearance: parse() resets only these entries of
  // `options` instead of clearing all 256 (a Request is meant to be reused per worker).
  std::array<uint8_t, 256> present{};
  uint16_t n_present = 0;

  bool broadcast() const noexcept { return (flags & 0x8000) != 0; }
  bool has(uint8_t code) const noexcept { return options[code].count != 0; }
  // The 4-byte option value as host-order address (50, 54), or 0. Worker; O(1) unless split.
  uint32_t option_ip(uint8_t code) const noexcept;
  // Copies the (concatenated) value of `code` into `out`; returns its length (0 if absent or if it
  // does not fit). Worker; a memcpy for one instance, a re-walk of the options for several.
  size_t copy_option(uint8_t code, std::span<uint8_t> out) const noexcept;
  // The value of `code`: in place in `data` when it is one instance (no copy), else
  // concatenated into `scratch` as copy_option() does. Empty if absent or if it does not fit.
  std::span<const uint8_t> value(uint8_t code, std::span<uint8_t> scratch) const noexcept;
  // Option 57, or 576 when absent/invalid. Worker; O(1) unless split.
  uint16_t max_message_size() const noexcept;
};

// Parses `payload` (the UDP payload). Handles pad, end, RFC 3396 concatenation and option
// overload (52: options continue in `file`, then `sname`, each parsed once — no loops).
// Returns false with `why` on refusal; never reads outside the span. Checks in this order:
// truncated, op, htype, magic, then the option walk (overrun, overload), then message type and
// the lengths of known options. A missing END is tolerated in every area (real clients omit it).
// On refusal `out` is partly filled and must not be used (it may still be passed to the next
// parse()). Worker; O(payload): only the options the previous parse() found are cleared.
bool parse(std::span<const uint8_t> payload, Request& out, Malformed& why) noexcept;

// What a worker needs to warm its lease store before it handles a burst: the client's identity
// (option 61, else chaddr) and the address it names (ciaddr, else option 50). A quick look at
// the fixed part and the options field only — no overload areas, no split options, no checks
// beyond bounds — so it is a hint, never an answer: parse() decides. False when the payload is
// shorter than the fixed part and cookie. Worker; reads nothing outside `payload`.
struct Peek {
  std::span<const uint8_t> client_id;  // option 61's value (one instance), or empty
  const uint8_t* chaddr = nullptr;     // 6 bytes
  uint32_t addr = 0;                   // host order; 0 when the request names none
};
bool peek(std::span<const uint8_t> payload, Peek& out) noexcept;

// Builds a reply into `out` (capacity ≥ kMaxReplyLen): op 2, htype/hlen/xid/flags/giaddr/chaddr
// copied from the request, ciaddr copied for DHCPACK only and yiaddr forced to 0 for DHCPNAK
// (RFC 2131 §4.3.1 table 3), siaddr/secs/hops 0, option 53 first, options written by the caller
// through the Writer, then END and padding to kMinReplyLen. `out` must not overlap the request's
// bytes (echo() reads them). A buffer shorter than kMinReplyLen gives a writer that writes nothing:
// every add fails and finish() returns 0. Worker; no allocation.
class Writer {
 public:
  Writer(std::span<uint8_t> out, const Request& req, MessageType type, uint32_t yiaddr) noexcept;
  // Appends an option; long values are split into 255-byte instances (RFC 3396). Returns false
  // (and writes nothing) if it would exceed the size limit (see limit()), always keeping a byte
  // for END, or for codes the writer owns or cannot honour (0, 52, 53, 255).
  bool add(uint8_t code, std::span<const uint8_t> value) noexcept;
  bool add_u32(uint8_t code, uint32_t v) noexcept;  // network order on the wire
  bool add_u16(uint8_t code, uint16_t v) noexcept;
  bool add_u8(uint8_t code, uint8_t v) noexcept;
  // Copies option `code` from the request verbatim (61, 82): its concatenated value, re-split at
  // 255 bytes. False if absent or no room. RFC 3046 §2.2: echo 82 last, and when it does not fit
  // send the reply without it and count that.
  bool echo(uint8_t code) noexcept;
  // Size limit in bytes of the whole payload. Default: min(capacity, kMaxReplyLen, option 57 −
  // 28) — option 57 counts the IP and UDP headers (RFC 2132 §9.10), and is taken as at least 576.
  // This overrides it, clamped to [max(kMinReplyLen, bytes written + END), capacity].
  void limit(size_t max_payload) noexcept;
  // Writes END and pads; returns the payload length. Later adds fail; a second call returns the
  // same length.
  size_t finish() noexcept;

 private:
  std::span<uint8_t> out_;
  const Request& req_;
  size_t pos_ = 0;
  size_t limit_ = 0;
};

}  // namespace dhcp
