// DHCPv4 message parsing and reply building (see codec.h). Runs per packet on workers: no
// allocation, no exceptions, every read bounds-checked against the caller's span.

#include "dhcp/codec.h"

#include <algorithm>
#include <cstring>

#include "dataplane/proto.h"

namespace dhcp {
namespace {

using dp::load_be16;
using dp::load_be32;
using dp::store_be16;
using dp::store_be32;

// Fixed part of a BOOTP/DHCP message (RFC 2131 §2, figure 1).
constexpr size_t kOffOp = 0, kOffHtype = 1, kOffHlen = 2, kOffHops = 3, kOffXid = 4, kOffSecs = 8,
                 kOffFlags = 10, kOffCiaddr = 12, kOffYiaddr = 16, kOffSiaddr = 20, kOffGiaddr = 24,
                 kOffChaddr = 28, kOffSname = 44, kOffFile = 108, kOffMagic = 236,
                 kOffOptions = 240;
constexpr size_t kSnameLen = 64, kFileLen = 128;
constexpr uint8_t kBootRequest = 1, kBootReply = 2;
constexpr uint8_t kHtypeEthernet = 1, kHlenEthernet = 6;
constexpr uint8_t kOverloadFile = 1, kOverloadSname = 2;
constexpr size_t kIpUdpHdrLen = 28;        // option 57 counts them (RFC 2132 §9.10)
constexpr uint16_t kMinMessageSize = 576;  // smallest legal option 57, and the default
constexpr size_t kMaxInstance = 255;       // value bytes per option instance
constexpr size_t kMaxPayload = 65535;      // Span offsets and lengths are 16-bit

// Walks one option area [at, end), calling fn(code, value_offset, value_len) for each option.
// Only the options field (`main_area`) may carry option 52, once: file/sname saying "more options
// elsewhere" could make the walk revisit an area. An area without END is accepted when its last
// option ends exactly at the area's end: real clients omit END, and nothing is lost by it.
template <class Fn>
bool walk_area(const uint8_t* d, size_t at, size_t end, bool main_area, uint8_t& overload,
               Malformed& why, Fn& fn) noexcept {
  while (at < end) {
    const uint8_t code = d[at];
    if (code == opt::kPad) {
      ++at;
      continue;
    }
    if (code == opt::kEnd) return true;
    if (end - at < 2 || end - at - 2 < d[at + 1]) {
      why = Malformed::kOptionOverrun;
      return false;
    }
    const size_t value = at + 2;
    const size_t n = d[at + 1];
    if (code == opt::kOverload) {
      const uint8_t v = n == 1 ? d[value] : 0;
      if (!main_area || overload != 0 || v < 1 || v > 3) {
        why = Malformed::kOverload;
        return false;
      }
      overload = v;
    }
    fn(code, value, n);
    at = value + n;
  }
  return true;
}

// Visits every option instance of the aggregate option buffer in order: the options field, then
// `file`, then `sname` (RFC 2131 §4.1, RFC 3396 §5). `len` must be at least kMinLen.
template <class Fn>
bool walk(const uint8_t* d, size_t len, Malformed& why, Fn&& fn) noexcept {
  uint8_t overload = 0;
  if (!walk_area(d, kOffOptions, len, true, overload, why, fn)) return false;
  if ((overload & kOverloadFile) != 0 &&
      !walk_area(d, kOffFile, kOffFile + kFileLen, false, overload, why, fn)) {
    return false;
  }
  if ((overload & kOverloadSname) != 0 &&
      !walk_area(d, kOffSname, kOffSname + kSnameLen, false, overload, why, fn)) {
    return false;
  }
  return true;
}

bool fail(Malformed& why, Malformed reason) noexcept {
  why = reason;
  return false;
}

// Bytes a value of `len` bytes takes on the wire once split into 255-byte instances; a zero-length
// value is still one instance.
size_t wire_len(size_t len) noexcept {
  const size_t instances = len == 0 ? 1 : (len + kMaxInstance - 1) / kMaxInstance;
  return len + 2 * instances;
}

// Codes a caller may not add: pad and end are not options, 53 is written by the constructor (a
// second one would concatenate into a 2-byte type), and 52 would promise options in sname/file.
bool writable(uint8_t code) noexcept {
  return code != opt::kPad && code != opt::kEnd && code != opt::kOverload &&
         code != opt::kMessageType;
}

// Streams a value of `total` bytes into consecutive instances of `code` starting at `out`: each
// 255-byte chunk gets its own header. The caller checked that wire_len(total) bytes fit.
class Splitter {
 public:
  Splitter(uint8_t* out, uint8_t code, size_t total) noexcept
      : out_(out), code_(code), total_(total) {
    if (total_ == 0) header();
  }
  // Appends value bytes; bytes beyond `total` are ignored.
  void put(const uint8_t* p, size_t n) noexcept {
    n = std::min(n, total_ - done_);
    while (n != 0) {
      if (done_ % kMaxInstance == 0) header();
      const size_t k = std::min(n, kMaxInstance - done_ % kMaxInstance);
      std::memcpy(out_ + pos_, p, k);
      pos_ += k;
      done_ += k;
      p += k;
      n -= k;
    }
  }
  size_t written() const noexcept { return pos_; }
  size_t done() const noexcept { return done_; }

 private:
  void header() noexcept {
    out_[pos_] = code_;
    out_[pos_ + 1] = static_cast<uint8_t>(std::min(total_ - done_, kMaxInstance));
    pos_ += 2;
  }
  uint8_t* out_;
  uint8_t code_;
  size_t total_;
  size_t pos_ = 0;
  size_t done_ = 0;
};

}  // namespace

bool parse(std::span<const uint8_t> payload, Request& out, Malformed& why) noexcept {
  const uint8_t* d = payload.data();
  const size_t len = payload.size();
  if (len < kMinLen) return fail(why, Malformed::kTruncated);
  if (d[kOffOp] != kBootRequest) return fail(why, Malformed::kOp);
  // hlen > 16 would overrun chaddr; anything but Ethernet's 6 is refused with it.
  if (d[kOffHtype] != kHtypeEthernet || d[kOffHlen] != kHlenEthernet) {
    return fail(why, Malformed::kHtype);
  }
  if (load_be32(d + kOffMagic) != kMagicCookie) return fail(why, Malformed::kMagic);
  if (len > kMaxPayload) return fail(why, Malformed::kOptionOverrun);

  for (uint16_t i = 0; i < out.n_present; ++i) out.options[out.present[i]] = Request::Span{};
  out.n_present = 0;
  const bool ok = walk(d, len, why, [&out](uint8_t code, size_t value, size_t n) {
    Request::Span& s = out.options[code];
    if (s.count == 0) {
      s.first = static_cast<uint16_t>(value);
      out.present[out.n_present++] = code;  // ≤ 256 distinct codes
    }
    // Instances occupy disjoint bytes of a payload ≤ 65535 bytes, so the sum cannot wrap.
    s.len = static_cast<uint16_t>(s.len + n);
    if (s.count != UINT8_MAX) ++s.count;
  });
  if (!ok) return false;

  out.data = d;
  out.len = len;
  out.hops = d[kOffHops];
  out.xid = load_be32(d + kOffXid);
  out.secs = load_be16(d + kOffSecs);
  out.flags = load_be16(d + kOffFlags);
  out.ciaddr = load_be32(d + kOffCiaddr);
  out.yiaddr = load_be32(d + kOffYiaddr);
  out.siaddr = load_be32(d + kOffSiaddr);
  out.giaddr = load_be32(d + kOffGiaddr);
  std::memcpy(out.chaddr.data(), d + kOffChaddr, out.chaddr.size());

  // Lengths are judged over the concatenation of all instances (RFC 3396): that is the value.
  const Request::Span& mt = out.options[opt::kMessageType];
  if (mt.count == 0) return fail(why, Malformed::kNoMessageType);
  if (mt.len != 1) return fail(why, Malformed::kBadOption);
  uint8_t type = 0;
  out.copy_option(opt::kMessageType, std::span<uint8_t>(&type, 1));
  if (type < static_cast<uint8_t>(MessageType::kDiscover) ||
      type > static_cast<uint8_t>(MessageType::kInform)) {
    return fail(why, Malformed::kNoMessageType);
  }
  out.type = static_cast<MessageType>(type);

  const auto bad_len = [&out](uint8_t code, uint16_t want) {
    return out.options[code].count != 0 && out.options[code].len != want;
  };
  if (bad_len(opt::kRequestedIp, 4) || bad_len(opt::kServerId, 4) || bad_len(opt::kLeaseTime, 4) ||
      bad_len(opt::kMaxSize, 2)) {
    return fail(why, Malformed::kBadOption);
  }
  if (out.has(opt::kMaxSize)) {
    uint8_t v[2] = {};
    out.copy_option(opt::kMaxSize, v);
    if (load_be16(v) < kMinMessageSize) return fail(why, Malformed::kBadOption);
  }
  return true;
}

bool peek(std::span<const uint8_t> payload, Peek& out) noexcept {
  const uint8_t* d = payload.data();
  const size_t len = payload.size();
  if (len < kMinLen || load_be32(d + kOffMagic) != kMagicCookie) return false;
  out = Peek{};
  out.chaddr = d + kOffChaddr;
  out.addr = load_be32(d + kOffCiaddr);
  uint8_t overload = 0;
  Malformed why{};
  auto fn = [&](uint8_t code, size_t value, size_t n) {
    if (code == opt::kClientId && out.client_id.empty()) out.client_id = {d + value, n};
    if (code == opt::kRequestedIp && n == 4 && out.addr == 0) out.addr = load_be32(d + value);
  };
  walk_area(d, kOffOptions, std::min(len, kMaxPayload), true, overload, why, fn);
  return true;
}

uint32_t Request::option_ip(uint8_t code) const noexcept {
  uint8_t buf[4];
  const std::span<const uint8_t> v = value(code, buf);
  return v.size() == sizeof buf ? load_be32(v.data()) : 0;
}

size_t Request::copy_option(uint8_t code, std::span<uint8_t> out) const noexcept {
  const Span& s = options[code];
  if (s.count == 0 || data == nullptr || s.len > out.size()) return 0;
  if (s.count == 1) {
    // The common case. The bound check only matters for a Request not filled by parse().
    if (size_t{s.first} + s.len > len) return 0;
    if (s.len != 0) std::memcpy(out.data(), data + s.first, s.len);
    return s.len;
  }
  if (len < kMinLen || len > kMaxPayload) return 0;
  size_t got = 0;
  Malformed why{};
  const bool ok = walk(data, len, why, [&](uint8_t c, size_t value, size_t n) {
    if (c != code || n == 0) return;
    n = std::min(n, out.size() - got);
    std::memcpy(out.data() + got, data + value, n);
    got += n;
  });
  return ok && got == s.len ? got : 0;
}

std::span<const uint8_t> Request::value(uint8_t code, std::span<uint8_t> scratch) const noexcept {
  const Span& s = options[code];
  if (s.count == 1 && data != nullptr && size_t{s.first} + s.len <= len)
    return {data + s.first, s.len};
  return {scratch.data(), copy_option(code, scratch)};
}

uint16_t Request::max_message_size() const noexcept {
  uint8_t buf[2];
  const std::span<const uint8_t> v = value(opt::kMaxSize, buf);
  return v.size() == sizeof buf ? std::max(load_be16(v.data()), kMinMessageSize) : kMinMessageSize;
}

Writer::Writer(std::span<uint8_t> out, const Request& req, MessageType type,
               uint32_t yiaddr) noexcept
    : out_(out), req_(req) {
  // Too small for a padded reply: stay inert (limit_ 0) rather than write a partial message.
  if (out_.size() < kMinReplyLen) return;
  uint8_t* p = out_.data();
  std::memset(p, 0, kOffOptions);  // hops, secs, siaddr, sname and file stay zero
  p[kOffOp] = kBootReply;
  p[kOffHtype] = kHtypeEthernet;
  p[kOffHlen] = kHlenEthernet;
  store_be32(p + kOffXid, req.xid);
  store_be16(p + kOffFlags, req.flags);
  // RFC 2131 §4.3.1 table 3: only a DHCPACK carries the client's ciaddr; a DHCPNAK has no yiaddr.
  if (type == MessageType::kAck) store_be32(p + kOffCiaddr, req.ciaddr);
  if (type != MessageType::kNak) store_be32(p + kOffYiaddr, yiaddr);
  store_be32(p + kOffGiaddr, req.giaddr);
  std::memcpy(p + kOffChaddr, req.chaddr.data(), req.chaddr.size());
  store_be32(p + kOffMagic, kMagicCookie);
  p[kOffOptions] = opt::kMessageType;
  p[kOffOptions + 1] = 1;
  p[kOffOptions + 2] = static_cast<uint8_t>(type);
  pos_ = kOffOptions + 3;
  // Without option 57 a client need only accept 576-byte datagrams (RFC 2131 §2): 548 of payload.
  const size_t client_max = size_t{std::max(req.max_message_size(), kMinMessageSize)};
  limit_ = std::min({out_.size(), kMaxReplyLen, client_max - kIpUdpHdrLen});
}

bool Writer::add(uint8_t code, std::span<const uint8_t> value) noexcept {
  const size_t n = value.size();
  if (n <= kMaxInstance) {  // one instance: every option real servers send
    if (!writable(code) || pos_ + n + 3 > limit_) return false;
    uint8_t* p = out_.data() + pos_;
    p[0] = code;
    p[1] = static_cast<uint8_t>(n);
    if (n != 0) std::memcpy(p + 2, value.data(), n);
    pos_ += n + 2;
    return true;
  }
  if (!writable(code) || pos_ + wire_len(n) + 1 > limit_) return false;
  Splitter s(out_.data() + pos_, code, value.size());
  s.put(value.data(), value.size());
  pos_ += s.written();
  return true;
}

bool Writer::add_u32(uint8_t code, uint32_t v) noexcept {
  uint8_t b[4];
  store_be32(b, v);
  return add(code, b);
}

bool Writer::add_u16(uint8_t code, uint16_t v) noexcept {
  uint8_t b[2];
  store_be16(b, v);
  return add(code, b);
}

bool Writer::add_u8(uint8_t code, uint8_t v) noexcept {
  return add(code, std::span<const uint8_t>(&v, 1));
}

bool Writer::echo(uint8_t code) noexcept {
  const Request::Span& s = req_.options[code];
  if (s.count == 0 || req_.data == nullptr) return false;
  if (s.count == 1) {
    if (size_t{s.first} + s.len > req_.len) return false;
    return add(code, std::span<const uint8_t>(req_.data + s.first, s.len));
  }
  // Several instances: stream them straight into the reply, no staging buffer. Where the client
  // split the value carries no meaning (RFC 3396), so re-splitting at 255 keeps it unchanged.
  if (!writable(code) || pos_ + wire_len(s.len) + 1 > limit_) return false;
  if (req_.len < kMinLen || req_.len > kMaxPayload) return false;
  Splitter sp(out_.data() + pos_, code, s.len);
  Malformed why{};
  const bool ok = walk(req_.data, req_.len, why, [&](uint8_t c, size_t value, size_t n) {
    if (c == code) sp.put(req_.data + value, n);
  });
  // A Request whose index disagrees with its bytes: leave pos_ alone, the bytes are overwritten.
  if (!ok || sp.done() != s.len) return false;
  pos_ += sp.written();
  return true;
}

void Writer::limit(size_t max_payload) noexcept {
  if (limit_ == 0) return;  // inert or finished
  limit_ = std::clamp(max_payload, std::max(kMinReplyLen, pos_ + 1), out_.size());
}

size_t Writer::finish() noexcept {
  if (limit_ == 0) return pos_;  // inert (0) or already finished (same length)
  out_[pos_++] = opt::kEnd;
  if (pos_ < kMinReplyLen) {
    std::memset(out_.data() + pos_, 0, kMinReplyLen - pos_);
    pos_ = kMinReplyLen;
  }
  limit_ = 0;  // later adds fail instead of writing after END
  return pos_;
}

}  // namespace dhcp
