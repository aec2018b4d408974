#include "control/sync/entries.h"

#include <cstring>

namespace ctl::sync {
namespace {

class Writer {
 public:
  void u8(uint8_t v) { b_.push_back(v); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void bytes(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
  }
  // u16 length + bytes (cut at 65535)
  void str(const std::string& s) {
    const size_t n = s.size() < 65535 ? s.size() : 65535;
    u16(static_cast<uint16_t>(n));
    bytes(s.data(), n);
  }
  std::vector<uint8_t> take() { return std::move(b_); }

 private:
  std::vector<uint8_t> b_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == b_.size(); }
  uint8_t u8() {
    if (!need(1)) return 0;
    return b_[pos_++];
  }
  uint16_t u16() {
    const uint16_t hi = u8();
    return static_cast<uint16_t>(hi << 8 | u8());
  }
  uint32_t u32() {
    const uint32_t hi = u16();
    return hi << 16 | u16();
  }
  uint64_t u64() {
    const uint64_t hi = u32();
    return hi << 32 | u32();
  }
  bool bytes(void* out, size_t n) {
    if (!need(n)) return false;
    std::memcpy(out, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  std::string str() {
    const uint16_t n = u16();
    if (!need(n)) return {};
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  bool need(size_t n) {
    if (!ok_ || b_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::vector<uint8_t> encode_lease(const dhcp::Lease& l) {
  Writer w;
  w.u32(l.ip);
  w.u32(l.pool);
  w.u8(static_cast<uint8_t>(l.state));
  w.u8(l.client.len);
  w.bytes(l.client.bytes.data(), l.client.len);
  w.bytes(l.mac.data(), 6);
  w.u64(l.expires_ns);
  w.u64(l.updated_ns);
  w.u64(l.generation);
  return w.take();
}

std::optional<dhcp::Lease> decode_lease(std::span<const uint8_t> b) {
  Reader r(b);
  dhcp::Lease l;
  l.ip = r.u32();
  l.pool = r.u32();
  const uint8_t state = r.u8();
  l.client.len = r.u8();
  if (!r.ok() || state > static_cast<uint8_t>(dhcp::LeaseState::kDeclined) ||
      l.client.len > dhcp::ClientKey::kMax)
    return std::nullopt;
  l.state = static_cast<dhcp::LeaseState>(state);
  r.bytes(l.client.bytes.data(), l.client.len);
  r.bytes(l.mac.data(), 6);
  l.expires_ns = r.u64();
  l.updated_ns = r.u64();
  l.generation = r.u64();
  if (!r.done()) return std::nullopt;
  return l;
}

std::vector<uint8_t> encode_conn(const dp::ConnSync& c) {
  Writer w;
  w.u8(c.proto);
  w.u8(c.state);
  w.u8(c.fwd_mode);
  w.u32(c.client_ip);
  w.u16(c.client_port);
  w.u32(c.vip);
  w.u16(c.vport);
  w.u32(c.rs_ip);
  w.u16(c.rs_port);
  w.u32(c.generation);
  return w.take();
}

std::optional<dp::ConnSync> decode_conn(std::span<const uint8_t> b) {
  Reader r(b);
  dp::ConnSync c;
  c.proto = r.u8();
  c.state = r.u8();
  c.fwd_mode = r.u8();
  c.client_ip = r.u32();
  c.client_port = r.u16();
  c.vip = r.u32();
  c.vport = r.u16();
  c.rs_ip = r.u32();
  c.rs_port = r.u16();
  c.generation = r.u32();
  if (!r.done() || c.state >= lb::kTcpStateCount || c.fwd_mode > 2) return std::nullopt;
  return c;
}

std::vector<uint8_t> encode_bulk(const BulkMarker& m, bool end) {
  Writer w;
  w.u64(m.id);
  if (end) {
    w.u64(m.leases);
    w.u64(m.connections);
  }
  return w.take();
}

std::optional<BulkMarker> decode_bulk(std::span<const uint8_t> b, bool end) {
  Reader r(b);
  BulkMarker m;
  m.id = r.u64();
  if (end) {
    m.leases = r.u64();
    m.connections = r.u64();
  }
  if (!r.done()) return std::nullopt;
  return m;
}

std::vector<uint8_t> encode_config_chunk(const ConfigChunk& c) {
  Writer w;
  w.u64(c.push_id);
  w.u32(c.total);
  w.u32(c.offset);
  w.str(c.name);
  w.str(c.data);
  return w.take();
}

std::optional<ConfigChunk> decode_config_chunk(std::span<const uint8_t> b) {
  Reader r(b);
  ConfigChunk c;
  c.push_id = r.u64();
  c.total = r.u32();
  c.offset = r.u32();
  c.name = r.str();
  c.data = r.str();
  if (!r.done() || c.offset > c.total || c.total - c.offset < c.data.size() ||
      c.name.find('/') != std::string::npos || c.name.empty() || c.name[0] == '.')
    return std::nullopt;
  return c;
}

std::vector<uint8_t> encode_config_result(const ConfigResult& res) {
  Writer w;
  w.u64(res.push_id);
  w.u8(res.ok ? 1 : 0);
  w.str(res.message);
  return w.take();
}

std::optional<ConfigResult> decode_config_result(std::span<const uint8_t> b) {
  Reader r(b);
  ConfigResult res;
  res.push_id = r.u64();
  res.ok = r.u8() != 0;
  res.message = r.str();
  if (!r.done()) return std::nullopt;
  return res;
}

std::vector<uint8_t> encode_status(const Status& s) {
  Writer w;
  w.u8(Status::kVersion);
  w.u8(s.resynced ? 1 : 0);
  w.bytes(s.config_digest.data(), s.config_digest.size());
  w.str(s.node.substr(0, 64));
  const size_t n = s.vrrp.size() < 64 ? s.vrrp.size() : 64;
  w.u8(static_cast<uint8_t>(n));
  for (size_t i = 0; i < n; ++i) {
    w.u8(s.vrrp[i].vrid);
    w.u8(s.vrrp[i].state);
  }
  return w.take();
}

std::optional<Status> decode_status(std::span<const uint8_t> b) {
  Reader r(b);
  Status s;
  if (r.u8() != Status::kVersion) return std::nullopt;
  s.resynced = r.u8() != 0;
  r.bytes(s.config_digest.data(), s.config_digest.size());
  s.node = r.str();
  const uint8_t n = r.u8();
  if (!r.ok() || n > 64) return std::nullopt;
  s.vrrp.resize(n);
  for (auto& v : s.vrrp) {
    v.vrid = r.u8();
    v.state = r.u8();
  }
  if (!r.done()) return std::nullopt;
  return s;
}

}  // namespace ctl::sync
