#include "dhcp/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <numeric>

// Design notes (why, not what):
// - Fixed-size records: replay finds a torn tail by size alone, and a record never straddles
//   a batch, so rolling back a failed write is one ftruncate to the last batch boundary.
// - The in-memory table stores records already encoded (CRC included), so a compaction is a
//   sort by arrival order and memcpy; arrival order makes restore() rebuild the same free-list
//   (LRU) order the events would have.
// - fdatasync, not fsync, for the journal: appends change the size, which fdatasync flushes,
//   and skip the mtime update.

namespace dhcp {
namespace {

constexpr uint8_t kMagic[4] = {'T', 'D', 'M', 'J'};
constexpr uint8_t kKindJournal = 1;
constexpr uint8_t kKindSnapshot = 2;
constexpr size_t kHdr = Journal::kHeaderSize;
constexpr size_t kRec = Journal::kRecordSize;
constexpr size_t kRecCrcOff = 76;
constexpr size_t kHdrCrcOff = 44;
constexpr size_t kChunkRecords = 4096;  // replay/compaction I/O unit: 320 KiB
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kRetryNs = 1'000'000'000;

// ---------------------------------------------------------------------------------------------
// CRC32C, slicing-by-8 over tables built at compile time.

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables make_crc_tables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}
constexpr CrcTables kCrc = make_crc_tables();

// ---------------------------------------------------------------------------------------------
// Little-endian fields.

void put32(uint8_t* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
void put64(uint8_t* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

uint32_t crc_of(const uint8_t* p, size_t n) {
  return crc32c(std::span<const uint8_t>(p, n));
}

void encode(const LeaseEvent& e, uint8_t* out) {
  const Lease& l = e.lease;
  put32(out + 0, l.ip);
  put32(out + 4, l.pool);
  put64(out + 8, l.expires_ns);
  put64(out + 16, l.updated_ns);
  put64(out + 24, l.generation);
  std::memcpy(out + 32, l.mac.data(), 6);
  out[38] = static_cast<uint8_t>(e.kind);
  out[39] = static_cast<uint8_t>(l.state);
  out[40] = l.client.len;
  std::memcpy(out + 41, l.client.bytes.data(), ClientKey::kMax);
  out[73] = out[74] = out[75] = 0;
  put32(out + kRecCrcOff, crc_of(out, kRecCrcOff));
}

// False for a record that is not one we wrote (torn, corrupt or zero-filled).
bool valid(const uint8_t* in) {
  return get32(in + kRecCrcOff) == crc_of(in, kRecCrcOff) && in[38] <= LeaseEvent::kOfferExpired &&
         in[39] <= static_cast<uint8_t>(LeaseState::kDeclined) && in[40] <= ClientKey::kMax &&
         in[73] == 0 && in[74] == 0 && in[75] == 0;
}

Lease decode(const uint8_t* in) {
  Lease l;
  l.ip = get32(in + 0);
  l.pool = get32(in + 4);
  l.expires_ns = get64(in + 8);
  l.updated_ns = get64(in + 16);
  l.generation = get64(in + 24);
  std::memcpy(l.mac.data(), in + 32, 6);
  l.state = static_cast<LeaseState>(in[39]);
  l.client.len = in[40];
  std::memcpy(l.client.bytes.data(), in + 41, ClientKey::kMax);
  return l;
}

struct Header {
  uint8_t kind = 0;
  uint64_t epoch = 0;
  uint64_t count = 0;
};

std::array<uint8_t, kHdr> encode_header(const Header& h) {
  std::array<uint8_t, kHdr> b{};
  std::memcpy(b.data(), kMagic, 4);
  b[4] = static_cast<uint8_t>(Journal::kVersion);
  b[5] = static_cast<uint8_t>(Journal::kVersion >> 8);
  b[6] = h.kind;
  put32(b.data() + 8, kRec);
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  put64(b.data() + 16, uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec));
  put64(b.data() + 24, h.epoch);
  put64(b.data() + 32, h.count);
  put32(b.data() + kHdrCrcOff, crc_of(b.data(), kHdrCrcOff));
  return b;
}

// "" and *h, or why the header is not one of ours of `kind`.
std::string decode_header(const uint8_t* b, uint8_t kind, Header* h) {
  if (std::memcmp(b, kMagic, 4) != 0) return "bad magic (not a Tandem lease file)";
  if (get32(b + kHdrCrcOff) != crc_of(b, kHdrCrcOff)) return "header CRC mismatch";
  if (get16(b + 4) != Journal::kVersion) {
    return "unsupported version " + std::to_string(get16(b + 4));
  }
  if (b[6] != kind) {
    return "file kind " + std::to_string(b[6]) + ", expected " + std::to_string(kind);
  }
  if (get32(b + 8) != kRec) return "record size " + std::to_string(get32(b + 8));
  h->kind = b[6];
  h->epoch = get64(b + 24);
  h->count = get64(b + 32);
  return "";
}

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

std::string errstr(int e) {
  return std::strerror(e);
}

// 0 or errno.
int write_all(int fd, const uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return 0;
}

// Bytes read (short only at end of file), or -errno.
ssize_t read_all(int fd, uint8_t* p, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

int fsync_retry(int fd, bool data_only) {
  for (;;) {
    if ((data_only ? ::fdatasync(fd) : ::fsync(fd)) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

// mkdir -p with `mode` for the components it creates. 0 or errno.
int make_dirs(const std::string& dir, mode_t mode) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return errno;
  }
  return 0;
}

uint32_t hash_ip(uint32_t ip) {
  uint64_t h = uint64_t{ip} * 0x9e3779b97f4a7c15ull;
  return static_cast<uint32_t>(h >> 32);
}

}  // namespace

uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc) noexcept {
  const uint8_t* p = data.data();
  size_t n = data.size();
  crc = ~crc;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    const uint32_t lo = static_cast<uint32_t>(w) ^ crc;
    const uint32_t hi = static_cast<uint32_t>(w >> 32);
    crc = kCrc[7][lo & 0xff] ^ kCrc[6][(lo >> 8) & 0xff] ^ kCrc[5][(lo >> 16) & 0xff] ^
          kCrc[4][lo >> 24] ^ kCrc[3][hi & 0xff] ^ kCrc[2][(hi >> 8) & 0xff] ^
          kCrc[1][(hi >> 16) & 0xff] ^ kCrc[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = kCrc[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Journal::~Journal() {
  close();
}

bool Journal::fail(std::string msg) {
  error_ = std::move(msg);
  ++stats_.errors;
  return false;
}

const std::string& Journal::failed(std::string msg) {
  fail(std::move(msg));
  return error_;
}

std::string Journal::open(const JournalParams& p) {
  if (jfd_ >= 0) return failed("lease journal already open on " + params_.dir);
  if (p.dir.empty()) return failed("lease journal: no directory given");
  params_ = p;
  while (params_.dir.size() > 1 && params_.dir.back() == '/') params_.dir.pop_back();
  const std::string& dir = params_.dir;
  journal_path_ = dir + "/" + params_.journal_file;
  snap_path_ = dir + "/" + params_.snapshot_file;
  tmp_path_ = snap_path_ + ".tmp";
  lock_path_ = params_.journal_file == "leases.journal" ? dir + "/lock" : journal_path_ + ".lock";

  auto bail = [&](std::string msg) {
    fail(std::move(msg));
    close();
    return error_;
  };
  if (int e = make_dirs(dir, 0750); e != 0) {
    return bail("cannot create lease journal directory " + dir + ": " + errstr(e));
  }
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return bail("cannot open lease journal directory " + dir + ": " + errstr(errno));

  lock_fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd_ < 0) return bail("cannot open " + lock_path_ + ": " + errstr(errno));
  // flock locks belong to the open file description: a second open(), even in this process,
  // conflicts, and the kernel drops the lock when the owner dies, so a crash never leaves it.
  while (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const int e = errno;
    std::string who;
    if (e == EWOULDBLOCK) {
      char pid[32] = {};
      const ssize_t n = read_all(lock_fd_, reinterpret_cast<uint8_t*>(pid), sizeof pid - 1, 0);
      if (n > 0) who = " by pid " + std::string(pid, static_cast<size_t>(n));
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      return bail("lease journal directory " + dir + " is in use (" + lock_path_ + " locked" + who +
                  "): " + errstr(e));
    }
    return bail("cannot lock " + lock_path_ + ": " + errstr(e));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 ||
      write_all(lock_fd_, reinterpret_cast<const uint8_t*>(pid.data()), pid.size(), 0) != 0) {
    return bail("cannot write " + lock_path_ + ": " + errstr(errno));
  }

  // A compaction that crashed before its rename: never read, so never trusted.
  if (::unlink(tmp_path_.c_str()) != 0 && errno != ENOENT) {
    return bail("cannot remove " + tmp_path_ + ": " + errstr(errno));
  }
  jfd_ = ::open(journal_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (jfd_ < 0) return bail("cannot open " + journal_path_ + ": " + errstr(errno));
  // Makes the new files' directory entries durable (the journal header follows in replay()).
  if (int e = fsync_retry(dir_fd_, false); e != 0) {
    return bail("cannot fsync directory " + dir + ": " + errstr(e));
  }
  return "";
}

void Journal::close() {
  if (jfd_ >= 0 && replayed_ && params_.fsync != FsyncPolicy::kNever) {
    retry_ns_ = 0;  // a last attempt, whatever the back-off
    sync();
  }
  for (int* fd : {&jfd_, &lock_fd_, &dir_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  replayed_ = restart_pending_ = must_compact_ = blocked_ = dirty_ = have_clock_ = false;
  epoch_ = end_ = written_ = synced_ = seq_ = now_ns_ = retry_ns_ = last_compact_ns_ = 0;
  entries_.clear();
  index_.clear();
}

// ---------------------------------------------------------------------------------------------
// The table: address -> latest record.

void Journal::grow_index() {
  const size_t cap = std::max<size_t>(1024, index_.size() * 2);
  index_.assign(cap, 0);
  const size_t mask = cap - 1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    size_t s = hash_ip(get32(entries_[i].rec.data())) & mask;
    while (index_[s] != 0) s = (s + 1) & mask;
    index_[s] = static_cast<uint32_t>(i + 1);
  }
}

void Journal::apply(const uint8_t* rec) {
  if ((entries_.size() + 1) * 2 > index_.size()) grow_index();
  const uint32_t ip = get32(rec);
  const size_t mask = index_.size() - 1;
  size_t s = hash_ip(ip) & mask;
  for (; index_[s] != 0; s = (s + 1) & mask) {
    Entry& e = entries_[index_[s] - 1];
    if (get32(e.rec.data()) != ip) continue;
    // Newer generation wins; an equal one is a later report of the same state (replace).
    if (get64(rec + 24) >= get64(e.rec.data() + 24)) {
      e.seq = ++seq_;
      std::memcpy(e.rec.data(), rec, kRec);
    }
    return;
  }
  Entry e;
  e.seq = ++seq_;
  std::memcpy(e.rec.data(), rec, kRec);
  entries_.push_back(e);
  index_[s] = static_cast<uint32_t>(entries_.size());
}

// ---------------------------------------------------------------------------------------------
// Replay.

std::string Journal::replay(const std::function<void(const Lease&)>& f) {
  if (jfd_ < 0) return failed("lease journal: replay() before open()");
  if (replayed_) return failed("lease journal: replay() called twice");
  entries_.clear();
  index_.clear();
  seq_ = 0;
  uint64_t snap_epoch = 0;
  if (std::string err = replay_snapshot(&snap_epoch); !err.empty()) return failed(err);
  // The snapshot holds one record per address, in arrival order: exactly the table's order.
  for (const Entry& e : entries_) {
    f(decode(e.rec.data()));
    ++stats_.restored;
  }

  if (std::string err = replay_journal(snap_epoch, f); !err.empty()) return failed(err);
  replayed_ = true;
  return "";
}

std::string Journal::replay_snapshot(uint64_t* epoch) {
  const int fd = ::open(snap_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return "";  // never compacted: everything is in the journal
    return "cannot open " + snap_path_ + ": " + errstr(errno);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const std::string bad = "corrupt lease snapshot " + snap_path_ + ": ";
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "cannot stat " + snap_path_ + ": " + errstr(errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::array<uint8_t, kHdr> hb{};
  const ssize_t n = read_all(fd, hb.data(), kHdr, 0);
  if (n < 0) return "cannot read " + snap_path_ + ": " + errstr(static_cast<int>(-n));
  if (static_cast<size_t>(n) < kHdr) return bad + "only " + std::to_string(n) + " bytes";
  Header h;
  if (std::string why = decode_header(hb.data(), kKindSnapshot, &h); !why.empty()) {
    return bad + why;
  }
  if (h.count > (size - kHdr) / kRec || size != kHdr + h.count * kRec) {
    return bad + std::to_string(size) + " bytes, but the header announces " +
           std::to_string(h.count) + " records (" + std::to_string(kHdr + h.count * kRec) +
           " bytes)";
  }
  std::vector<uint8_t> buf(kChunkRecords * kRec);
  uint64_t done = 0;
  while (done < h.count) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunkRecords, h.count - done));
    const uint64_t off = kHdr + done * kRec;
    const ssize_t r = read_all(fd, buf.data(), want * kRec, off);
    if (r < 0) return "cannot read " + snap_path_ + ": " + errstr(static_cast<int>(-r));
    if (static_cast<size_t>(r) != want * kRec) return bad + "shorter than its size";
    for (size_t i = 0; i < want; ++i) {
      const uint8_t* rec = buf.data() + i * kRec;
      if (!valid(rec)) {
        return bad + "record " + std::to_string(done + i) + " at offset " +
               std::to_string(off + i * kRec) + " fails its CRC or field checks";
      }
      apply(rec);
    }
    done += want;
  }
  *epoch = h.epoch;
  return "";
}

std::string Journal::replay_journal(uint64_t snap_epoch,
                                    const std::function<void(const Lease&)>& f) {
  struct stat st {};
  if (::fstat(jfd_, &st) != 0) return "cannot stat " + journal_path_ + ": " + errstr(errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::array<uint8_t, kHdr> hb{};
  if (size >= kHdr) {
    const ssize_t n = read_all(jfd_, hb.data(), kHdr, 0);
    if (n < 0) return "cannot read " + journal_path_ + ": " + errstr(static_cast<int>(-n));
    if (static_cast<size_t>(n) < kHdr) return "cannot read " + journal_path_ + ": short read";
  }
  const bool zero_header = std::all_of(hb.begin(), hb.end(), [](uint8_t b) { return b == 0; });
  if (size < kHdr || (size == kHdr && zero_header)) {
    // No header yet: a new file, or a crash while one was being created or restarted (the
    // restart extends the file to header size with zeros before writing the header).
    stats_.torn_tail_bytes += size < kHdr ? size : 0;
    epoch_ = snap_epoch;
    restart_pending_ = true;
    return restart_journal();
  }
  Header h;
  if (std::string why = decode_header(hb.data(), kKindJournal, &h); !why.empty()) {
    return "corrupt lease journal " + journal_path_ + ": " + why;
  }
  if (h.epoch > snap_epoch) {
    return "lease journal " + journal_path_ + " continues snapshot epoch " +
           std::to_string(h.epoch) + " but " + snap_path_ +
           (snap_epoch == 0 ? std::string(" is missing")
                            : " is at epoch " + std::to_string(snap_epoch)) +
           ": refusing to restore a partial lease table";
  }
  if (h.epoch < snap_epoch) {
    // A compaction crashed after its rename, before restarting the journal: every record here
    // is in the snapshot already.
    epoch_ = snap_epoch;
    restart_pending_ = true;
    return restart_journal();
  }
  epoch_ = h.epoch;

  const uint64_t records = (size - kHdr) / kRec;
  uint64_t good = 0;  // complete, valid records in a row from the start
  std::vector<uint8_t> buf(kChunkRecords * kRec);
  bool stop = false;
  while (!stop && good < records) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunkRecords, records - good));
    const ssize_t r = read_all(jfd_, buf.data(), want * kRec, kHdr + good * kRec);
    if (r < 0) return "cannot read " + journal_path_ + ": " + errstr(static_cast<int>(-r));
    const size_t got = static_cast<size_t>(r) / kRec;
    for (size_t i = 0; i < got; ++i) {
      const uint8_t* rec = buf.data() + i * kRec;
      if (!valid(rec)) {
        stop = true;
        break;
      }
      apply(rec);
      f(decode(rec));
      ++stats_.restored;
      ++good;
    }
    if (got < want) break;  // the file shrank under us: treat what is missing as torn
  }
  end_ = kHdr + good * kRec;
  if (end_ < size) {
    // A torn write (or anything after a corrupt record, which can no longer be trusted to be
    // in order): cut it, so the next batch starts on a record boundary.
    stats_.torn_tail_bytes += size - end_;
    if (::ftruncate(jfd_, static_cast<off_t>(end_)) != 0) {
      return "cannot truncate the torn tail of " + journal_path_ + ": " + errstr(errno);
    }
    if (int e = fsync_retry(jfd_, true); e != 0) {
      return "cannot fdatasync " + journal_path_ + ": " + errstr(e);
    }
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Writing.

std::string Journal::restart_journal() {
  // Records first, header second: after the truncate the old header (old epoch) still stands,
  // so a crash leaves an empty stale journal; after the header write, an empty current one.
  // Never the new header over old records.
  if (::ftruncate(jfd_, static_cast<off_t>(kHdr)) != 0) {
    return "cannot truncate " + journal_path_ + ": " + errstr(errno);
  }
  if (int e = fsync_retry(jfd_, true); e != 0) {
    return "cannot fdatasync " + journal_path_ + ": " + errstr(e);
  }
  const auto hb = encode_header(Header{kKindJournal, epoch_, 0});
  if (int e = write_all(jfd_, hb.data(), kHdr, 0); e != 0) {
    return "cannot write the header of " + journal_path_ + ": " + errstr(e);
  }
  if (int e = fsync_retry(jfd_, true); e != 0) {
    return "cannot fdatasync " + journal_path_ + ": " + errstr(e);
  }
  end_ = kHdr;
  restart_pending_ = false;
  dirty_ = false;
  return "";
}

namespace {
bool due(uint64_t now, uint64_t since, uint64_t period) {
  return now >= since && now - since >= period;
}
}  // namespace

void Journal::see_clock(uint64_t now_ns) {
  if (!have_clock_) {
    have_clock_ = true;
    last_compact_ns_ = now_ns;
  }
  now_ns_ = now_ns;
}

bool Journal::append(std::span<const LeaseEvent> events, uint64_t now_ns, bool defer_sync) {
  if (!replayed_) return fail("lease journal: append() before replay()");
  see_clock(now_ns);
  if (events.empty()) return true;
  const size_t bytes = events.size() * kRec;
  buf_.resize(bytes);
  for (size_t i = 0; i < events.size(); ++i) {
    uint8_t* rec = buf_.data() + i * kRec;
    encode(events[i], rec);
    apply(rec);
  }
  if (blocked_) {
    return fail("lease journal " + journal_path_ + ": not appending until a compaction succeeds (" +
                snap_path_ + " may not be durable)");
  }
  if (restart_pending_) {
    if (std::string e = restart_journal(); !e.empty()) return fail(e);
  }
  if (int e = write_all(jfd_, buf_.data(), bytes, end_); e != 0) {
    std::string msg = "cannot write " + std::to_string(events.size()) + " records to " +
                      journal_path_ + ": " + errstr(e);
    // Back to the batch boundary, so a shorter next batch never leaves stale bytes after it.
    if (::ftruncate(jfd_, static_cast<off_t>(end_)) != 0) {
      must_compact_ = true;
      msg += "; rollback failed: " + errstr(errno);
    }
    return fail(msg);
  }
  end_ += bytes;
  written_ += events.size();
  stats_.records_written += events.size();
  stats_.bytes_written += bytes;
  ++stats_.batches;
  if (!dirty_) {
    dirty_ = true;
    first_unsynced_ns_ = now_ns;
  }
  switch (params_.fsync) {
    case FsyncPolicy::kNever:
      synced_ = written_;
      return true;
    case FsyncPolicy::kEveryBatch:
      if (!defer_sync) return sync();
      [[fallthrough]];  // as kInterval: tick() syncs it when due
    case FsyncPolicy::kInterval:
      if (due(now_ns, first_unsynced_ns_, params_.fsync_interval_ms * kMs)) return sync();
      return true;
  }
  return true;
}

bool Journal::fdatasync_journal() {
  const uint64_t t0 = mono_ns();
  const int e = fsync_retry(jfd_, true);
  const uint64_t dt = mono_ns() - t0;
  if (e != 0) {
    // The kernel may have dropped the dirty pages and cleared the error: a retried fdatasync
    // could succeed without them. Only a snapshot from the table is trustworthy now.
    must_compact_ = true;
    return fail("cannot fdatasync " + journal_path_ + ": " + errstr(e) +
                " (a compaction will rewrite the leases)");
  }
  ++stats_.fsyncs;
  stats_.last_fsync_ns = dt;
  stats_.max_fsync_ns = std::max(stats_.max_fsync_ns, dt);
  stats_.fsync_ns_sum += dt;
  size_t b = 0;
  while (b < JournalStats::kFsyncBucketsUs.size() &&
         dt > uint64_t{JournalStats::kFsyncBucketsUs[b]} * 1000) {
    ++b;
  }
  ++stats_.fsync_buckets[b];
  dirty_ = false;
  synced_ = written_;
  return true;
}

bool Journal::sync() {
  if (!replayed_) return fail("lease journal: sync() before replay()");
  if (must_compact_ || blocked_) return recover();
  if (!dirty_) return true;
  return fdatasync_journal();
}

bool Journal::recover() {
  // A failing disk usually keeps failing: one snapshot attempt a second, not one per batch.
  // last_error() keeps the cause meanwhile.
  if (now_ns_ < retry_ns_) return false;
  if (compact().empty()) {
    last_compact_ns_ = now_ns_;
    return true;
  }
  retry_ns_ = now_ns_ + kRetryNs;
  return false;
}

bool Journal::tick(uint64_t now_ns) {
  if (!replayed_) return fail("lease journal: tick() before replay()");
  see_clock(now_ns);
  if (must_compact_ || blocked_) return recover();
  bool ok = true;
  // kEveryBatch too: deferred appends wait here.
  if (params_.fsync != FsyncPolicy::kNever && dirty_ &&
      due(now_ns, first_unsynced_ns_, params_.fsync_interval_ms * kMs)) {
    ok = fdatasync_journal();
  }
  if (restart_pending_) {
    if (std::string e = restart_journal(); !e.empty()) ok = fail(e);
  }
  if (end_ > params_.compact_bytes ||
      (params_.compact_interval_ms != 0 && end_ > kHdr &&
       due(now_ns, last_compact_ns_, params_.compact_interval_ms * kMs))) {
    ok = recover() && ok;
  }
  return ok;
}

std::string Journal::compact() {
  if (!replayed_) return failed("lease journal: compact() before replay()");
  // Order, and what replay() finds after a crash at each point:
  //  1. Write leases.snap.tmp (epoch_ + 1, the whole table in arrival order) and fsync it.
  //     Crash: the old snapshot and journal, as before; open() removes the tmp file.
  //  2. rename() it over leases.snap: atomic, so the old snapshot, or the new one next to the
  //     old journal, whose lower epoch marks it stale: skipped, all its records are in the new
  //     snapshot.
  //  3. fsync the directory, making the rename durable. The journal must not change before
  //     this: restarted, it would leave the old snapshot (rename lost) beside an empty journal.
  //     If this fails, appends stop (blocked_) until a compaction gets through.
  //  4. Restart the journal (restart_journal(): truncate under the old header, then write the
  //     new one): a stale journal, skipped, or an empty current one.
  // From 3 on every lease is durable in the snapshot, so synced_upto() catches up there.
  std::vector<uint32_t> order(entries_.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [this](uint32_t a, uint32_t b) { return entries_[a].seq < entries_[b].seq; });
  const uint64_t next = epoch_ + 1;

  int fd = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return failed("cannot create " + tmp_path_ + ": " + errstr(errno));
  auto abandon = [&](const std::string& what, int e) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp_path_.c_str());
    fail(what + ": " + errstr(e));
    return error_;
  };
  const auto hb = encode_header(Header{kKindSnapshot, next, entries_.size()});
  if (int e = write_all(fd, hb.data(), kHdr, 0); e != 0) {
    return abandon("cannot write " + tmp_path_, e);
  }
  std::vector<uint8_t> out(kChunkRecords * kRec);
  uint64_t off = kHdr;
  for (size_t i = 0; i < order.size(); i += kChunkRecords) {
    const size_t n = std::min(kChunkRecords, order.size() - i);
    for (size_t k = 0; k < n; ++k) {
      std::memcpy(out.data() + k * kRec, entries_[order[i + k]].rec.data(), kRec);
    }
    if (int e = write_all(fd, out.data(), n * kRec, off); e != 0) {
      return abandon("cannot write " + tmp_path_, e);
    }
    off += n * kRec;
  }
  if (int e = fsync_retry(fd, false); e != 0) return abandon("cannot fsync " + tmp_path_, e);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return abandon("cannot close " + tmp_path_, errno);
  if (::rename(tmp_path_.c_str(), snap_path_.c_str()) != 0) {
    return abandon("cannot rename " + tmp_path_ + " to " + snap_path_, errno);
  }
  if (int e = fsync_retry(dir_fd_, false); e != 0) {
    blocked_ = true;
    return failed("cannot fsync directory " + params_.dir + " after renaming " + snap_path_ + ": " +
                  errstr(e));
  }
  blocked_ = false;
  must_compact_ = false;
  epoch_ = next;
  synced_ = written_;
  restart_pending_ = true;
  ++stats_.compactions;
  if (std::string e = restart_journal(); !e.empty()) return failed(e);
  return "";
}

}  // namespace dhcp
