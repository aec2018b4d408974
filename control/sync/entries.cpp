#include "control/sync/entries.h"

#include "control/sync/bytes.h"

namespace ctl::sync {

std::vector<uint8_t> encode_lease(const dhcp::Lease& l) {
  std::vector<uint8_t> w;
  put32(w, l.ip);
  put32(w, l.pool);
  put8(w, static_cast<uint8_t>(l.state));
  put8(w, l.client.len);
  put_bytes(w, l.client.bytes.data(), l.client.len);
  put_bytes(w, l.mac.data(), 6);
  put64(w, l.expires_ns);
  put64(w, l.updated_ns);
  put64(w, l.generation);
  return w;
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
  r.copy(l.client.bytes.data(), l.client.len);
  r.copy(l.mac.data(), 6);
  l.expires_ns = r.u64();
  l.updated_ns = r.u64();
  l.generation = r.u64();
  if (!r.done()) return std::nullopt;
  return l;
}

std::vector<uint8_t> encode_conn(const dp::ConnSync& c) {
  std::vector<uint8_t> w;
  put8(w, c.proto);
  put8(w, c.state);
  put8(w, c.fwd_mode);
  put32(w, c.client_ip);
  put16(w, c.client_port);
  put32(w, c.vip);
  put16(w, c.vport);
  put32(w, c.rs_ip);
  put16(w, c.rs_port);
  put32(w, c.generation);
  return w;
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
  std::vector<uint8_t> w;
  put64(w, m.id);
  if (end) {
    put64(w, m.leases);
    put64(w, m.connections);
  }
  return w;
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
  std::vector<uint8_t> w;
  put64(w, c.push_id);
  put32(w, c.total);
  put32(w, c.offset);
  put_str(w, c.name);
  put_str(w, c.data);
  return w;
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
  std::vector<uint8_t> w;
  put64(w, res.push_id);
  put8(w, res.ok ? 1 : 0);
  put_str(w, res.message);
  return w;
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

std::string digest_hex(const std::array<uint8_t, 8>& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

std::vector<uint8_t> encode_status(const Status& s) {
  std::vector<uint8_t> w;
  put8(w, Status::kVersion);
  put8(w, s.resynced ? 1 : 0);
  put_bytes(w, s.config_digest.data(), s.config_digest.size());
  put_str(w, s.node.substr(0, 64));
  const size_t n = s.vrrp.size() < 64 ? s.vrrp.size() : 64;
  put8(w, static_cast<uint8_t>(n));
  for (size_t i = 0; i < n; ++i) {
    put8(w, s.vrrp[i].vrid);
    put8(w, s.vrrp[i].state);
  }
  return w;
}

std::optional<Status> decode_status(std::span<const uint8_t> b) {
  Reader r(b);
  Status s;
  if (r.u8() != Status::kVersion) return std::nullopt;
  s.resynced = r.u8() != 0;
  r.copy(s.config_digest.data(), s.config_digest.size());
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
