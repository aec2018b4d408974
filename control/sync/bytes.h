#pragma once
// Big-endian encoding for the sync link's datagrams and entries: appends to a byte vector, and a
// bounds-checked reader whose first read past the end fails every later read (check ok() once).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace ctl::sync {

inline void put8(std::vector<uint8_t>& d, uint8_t v) {
  d.push_back(v);
}
inline void put16(std::vector<uint8_t>& d, uint16_t v) {
  d.push_back(static_cast<uint8_t>(v >> 8));
  d.push_back(static_cast<uint8_t>(v));
}
inline void put32(std::vector<uint8_t>& d, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) d.push_back(static_cast<uint8_t>(v >> s));
}
inline void put64(std::vector<uint8_t>& d, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) d.push_back(static_cast<uint8_t>(v >> s));
}
inline void put_bytes(std::vector<uint8_t>& d, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  d.insert(d.end(), c, c + n);
}
// u16 length, then the bytes (cut at 65535).
inline void put_str(std::vector<uint8_t>& d, const std::string& s) {
  const size_t n = s.size() < 65535 ? s.size() : 65535;
  put16(d, static_cast<uint16_t>(n));
  put_bytes(d, s.data(), n);
}

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == b_.size(); }  // everything read, nothing left over
  size_t left() const { return ok_ ? b_.size() - pos_ : 0; }
  uint8_t u8() { return need(1) ? b_[pos_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(be(2)); }
  uint32_t u32() { return static_cast<uint32_t>(be(4)); }
  uint64_t u64() { return be(8); }
  std::span<const uint8_t> bytes(size_t n) {
    if (!need(n)) return {};
    pos_ += n;
    return b_.subspan(pos_ - n, n);
  }
  bool copy(void* out, size_t n) {
    const auto s = bytes(n);
    if (s.size() != n) return false;
    if (n != 0) std::memcpy(out, s.data(), n);
    return true;
  }
  std::string str() {  // as put_str wrote it
    const auto s = bytes(u16());
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }

 private:
  uint64_t be(size_t n) {
    if (!need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v << 8 | b_[pos_ + i];
    pos_ += n;
    return v;
  }
  bool need(size_t n) {
    if (ok_ && b_.size() - pos_ >= n) return true;
    ok_ = false;
    return false;
  }
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace ctl::sync
