#include "dhcp/journal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

// Design notes (why, not what):
// - Fixed-size records: replay finds a torn tail by size alone, and a record never straddles
//   a batch, so rolling back a failed write is one ftruncate to the last batch boundary.
// - The in-memory table stores records already encoded (CRC included), so a snapshot is a
//   sort by arrival order and memcpy; arrival order makes restore() rebuild the same free-list
//   (LRU) order the events would have.
// - fdatasync, not fsync, for the journal: appends change the size, which fdatasync flushes,
//   and skip the mtime update.
// - Compaction never stops appends: the journal thread only rotates (a few fsyncs) and copies
//   the table; the snapshot writer thread sorts, writes and fsyncs. The copy is exactly the
//   table at the rotation (a fuzzy one would make replay re-apply the new journal's records
//   over later states, and LeaseStore::restore ignores those: affinities would differ), taken
//   in slices with copy-on-write so no single call copies the whole table: a full copy of 1M
//   addresses (88 MB) costs ~15 ms into warm memory and ~70 ms into fresh pages, which is the
//   whole worker ring's slack at 1M changes/s.
// - The rotation links the journal to .prev and renames a complete new journal over it, so the
//   journal's name never points at a file without a header, and a crash between the two steps
//   leaves two names for one file (recognised by inode).
// - The snapshot writer owns the copy while it writes and frees it on success (an 88 MB munmap
//   is milliseconds, better spent on that thread); on failure it hands it back for the retry.

namespace dhcp {
namespace {

constexpr uint8_t kMagic[4] = {'T', 'D', 'M', 'J'};
constexpr uint8_t kKindJournal = 1;
constexpr uint8_t kKindSnapshot = 2;
constexpr size_t kHdr = Journal::kHeaderSize;
constexpr size_t kRec = Journal::kRecordSize;
constexpr size_t kRecCrcOff = 76;
constexpr size_t kHdrCrcOff = 44;
constexpr size_t kChunkRecords = 4096;                // replay/compaction I/O unit: 320 KiB
constexpr uint64_t kWriteBehind = uint64_t{4} << 20;  // snapshot writeback step
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

// strerror_r, as the GNU variant (returns the message) or the XSI one (fills buf): strerror
// is not thread-safe everywhere, and the snapshot writer reports errors too.
[[maybe_unused]] const char* strerror_result(const char* r, const char*) {
  return r;
}
[[maybe_unused]] const char* strerror_result(int, const char* buf) {
  return buf;
}

std::string errstr(int e) {
  char buf[128] = {};
  return strerror_result(strerror_r(e, buf, sizeof buf), buf);
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

// Reads and checks the header of `path` (open as `fd`) for `kind`: "" and *h, or why not —
// "cannot read PATH: …", or `bad` followed by what is wrong.
std::string read_header(int fd, const std::string& path, const std::string& bad, uint8_t kind,
                        Header* h) {
  std::array<uint8_t, kHdr> hb{};
  const ssize_t n = read_all(fd, hb.data(), kHdr, 0);
  if (n < 0) return "cannot read " + path + ": " + errstr(static_cast<int>(-n));
  if (static_cast<size_t>(n) < kHdr) return bad + "only " + std::to_string(n) + " bytes";
  if (std::string why = decode_header(hb.data(), kind, h); !why.empty()) return bad + why;
  return "";
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

// ---------------------------------------------------------------------------------------------
// The snapshot writer.

struct Journal::Writer {
  enum State : int { kIdle, kQueued, kDone, kFailed };

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // mu; close()
  // kIdle -> kQueued: the journal thread (job set, under mu); -> kDone / kFailed: the writer
  // (under mu, release); -> kIdle: the journal thread, after an acquire load saw the report.
  std::atomic<int> state{kIdle};
  // The job: the journal thread's except while kQueued. The writer frees recs on success.
  std::unique_ptr<Entry[]> recs;
  size_t n = 0;
  uint64_t epoch = 0;
  std::string tmp_path, snap_path, dir;
  int dir_fd = -1;
  std::function<std::string(uint64_t)> hook;  // JournalParams::snapshot_test_hook
  std::string error;                          // the writer's report with kFailed

  void run() {
    pthread_setname_np(pthread_self(), "lease-snapshot");
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [this] { return stop || state.load() == kQueued; });
      if (state.load() != kQueued) return;
      lk.unlock();
      std::string err = write();
      if (err.empty()) recs.reset();
      lk.lock();
      error = std::move(err);
      state.store(error.empty() ? kDone : kFailed, std::memory_order_release);
      cv.notify_all();
    }
  }

  // Waits until the writer reported the job queued (journal thread: compact(), close()).
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [this] { return state.load() != kQueued; });
  }

  // Snapshot `epoch` from recs[0, n), in arrival order: tmp file, fsync, rename, directory
  // fsync. "" or what failed (the tmp file removed).
  std::string write() const {
    if (hook) {
      if (std::string e = hook(epoch); !e.empty()) return e;
    }
    std::vector<std::pair<uint64_t, uint32_t>> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = {recs[i].seq, static_cast<uint32_t>(i)};
    std::sort(order.begin(), order.end());

    int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
      const int e = errno;
      return "cannot create " + tmp_path + ": " + errstr(e);
    }
    auto abandon = [&](const std::string& what, int e) {
      if (fd >= 0) ::close(fd);
      ::unlink(tmp_path.c_str());
      return what + ": " + errstr(e);
    };
    const auto hb = encode_header(Header{kKindSnapshot, epoch, n});
    if (int e = write_all(fd, hb.data(), kHdr, 0); e != 0) {
      return abandon("cannot write " + tmp_path, e);
    }
    std::vector<uint8_t> out(kChunkRecords * kRec);
    uint64_t off = kHdr;
    uint64_t kicked = 0, waited = 0;  // write-behind: [0, kicked) queued, [0, waited) written
    for (size_t i = 0; i < n; i += kChunkRecords) {
      const size_t k = std::min(kChunkRecords, n - i);
      for (size_t r = 0; r < k; ++r) {
        std::memcpy(out.data() + r * kRec, recs[order[i + r].second].rec.data(), kRec);
      }
      if (int e = write_all(fd, out.data(), k * kRec, off); e != 0) {
        return abandon("cannot write " + tmp_path, e);
      }
      off += k * kRec;
      // Never more than ~2 write-behind steps of dirty data: the journal's own fdatasyncs meanwhile
      // (an ext4 data=ordered commit also flushes this file's newly allocated blocks) and the
      // final fsync stay short. Advisory: errors show in the fsync.
      if (off - kicked >= kWriteBehind) {
        ::sync_file_range(fd, static_cast<off_t>(kicked), static_cast<off_t>(off - kicked),
                          SYNC_FILE_RANGE_WRITE);
        if (kicked > waited) {
          ::sync_file_range(
              fd, static_cast<off_t>(waited), static_cast<off_t>(kicked - waited),
              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
          waited = kicked;
        }
        kicked = off;
      }
    }
    if (int e = fsync_retry(fd, false); e != 0) return abandon("cannot fsync " + tmp_path, e);
    const int closed = ::close(fd) == 0 ? 0 : errno;
    fd = -1;
    if (closed != 0) return abandon("cannot close " + tmp_path, closed);
    if (::rename(tmp_path.c_str(), snap_path.c_str()) != 0) {
      const int e = errno;
      return abandon("cannot rename " + tmp_path + " to " + snap_path, e);
    }
    if (int e = fsync_retry(dir_fd, false); e != 0) {
      return "cannot fsync directory " + dir + " after renaming " + snap_path + ": " + errstr(e);
    }
    return "";
  }
};

// ---------------------------------------------------------------------------------------------

Journal::Journal() = default;

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
  prev_path_ = journal_path_ + ".prev";
  new_path_ = journal_path_ + ".new";
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

  // A snapshot that crashed before its rename, a rotation that crashed before its rename:
  // never read, so never trusted.
  for (const std::string* path : {&tmp_path_, &new_path_}) {
    if (::unlink(path->c_str()) != 0 && errno != ENOENT) {
      return bail("cannot remove " + *path + ": " + errstr(errno));
    }
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
  if (jfd_ >= 0 && replayed_) {
    retry_ns_ = 0;  // a last attempt, whatever the back-off
    if (phase_ != Phase::kNone) finish_compaction();
    if (params_.fsync != FsyncPolicy::kNever) {
      if (must_compact_ && phase_ == Phase::kNone) {
        compact();
      } else if (dirty_ && !must_compact_) {
        fdatasync_journal();
      }
    }
  }
  if (writer_ != nullptr && writer_->thread.joinable()) {
    {
      std::lock_guard<std::mutex> g(writer_->mu);
      writer_->stop = true;
    }
    writer_->cv.notify_all();
    writer_->thread.join();
  }
  writer_.reset();
  drop_copy();
  phase_ = Phase::kNone;
  for (int* fd : {&jfd_, &lock_fd_, &dir_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  replayed_ = must_compact_ = blocked_ = dirty_ = have_clock_ = false;
  base_ok_ = true;
  epoch_ = end_ = written_ = synced_ = j_start_ = j_synced_ = seq_ = now_ns_ = retry_ns_ =
      last_compact_ns_ = 0;
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
    const size_t i = index_[s] - 1;
    Entry& e = entries_[i];
    if (get32(e.rec.data()) != ip) continue;
    // Newer generation wins; an equal one is a later report of the same state (replace).
    if (get64(rec + 24) >= get64(e.rec.data() + 24)) {
      if (i >= copy_next_ && i < copy_n_) preserve(i);
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

void Journal::preserve(size_t i) {
  uint64_t& word = copy_bits_[i >> 6];
  const uint64_t bit = uint64_t{1} << (i & 63);
  if ((word & bit) != 0) return;  // copied already, as it was at the rotation
  copy_[i] = entries_[i];
  word |= bit;
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

  bool prev_needed = false;
  if (std::string err = replay_prev(snap_epoch, f, &prev_needed); !err.empty()) {
    return failed(err);
  }
  if (prev_needed) {
    // The compaction that rotated .prev out did not land: its snapshot is the table as of
    // here. Written from the first append()/tick() (the writer starts on the journal thread).
    const size_t n = entries_.size();
    copy_ = std::make_unique_for_overwrite<Entry[]>(n);
    if (n != 0) std::memcpy(copy_.get(), entries_.data(), n * sizeof(Entry));
    copy_n_ = copy_next_ = n;
    copy_bits_.clear();
    copy_epoch_ = snap_epoch + 1;
    phase_ = Phase::kCopying;
  }
  if (std::string err = replay_journal(prev_needed ? snap_epoch + 1 : snap_epoch, prev_needed, f);
      !err.empty()) {
    drop_copy();
    phase_ = Phase::kNone;
    return failed(err);
  }
  base_ok_ = true;  // what replay found is on disk; written_ counts from here
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
  Header h;
  if (std::string err = read_header(fd, snap_path_, bad, kKindSnapshot, &h); !err.empty())
    return err;
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

std::string Journal::replay_records(int fd, const std::string& path, uint64_t size,
                                    const std::function<void(const Lease&)>& f, uint64_t* good) {
  const uint64_t records = (size - kHdr) / kRec;
  *good = 0;  // complete, valid records in a row from the start
  std::vector<uint8_t> buf(kChunkRecords * kRec);
  bool stop = false;
  while (!stop && *good < records) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunkRecords, records - *good));
    const ssize_t r = read_all(fd, buf.data(), want * kRec, kHdr + *good * kRec);
    if (r < 0) return "cannot read " + path + ": " + errstr(static_cast<int>(-r));
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
      ++*good;
    }
    if (got < want) break;  // the file shrank under us: treat what is missing as torn
  }
  return "";
}

std::string Journal::replay_prev(uint64_t snap_epoch, const std::function<void(const Lease&)>& f,
                                 bool* needed) {
  const int fd = ::open(prev_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return "";  // no compaction was in flight
    return "cannot open " + prev_path_ + ": " + errstr(errno);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto remove = [this]() -> std::string {
    if (::unlink(prev_path_.c_str()) != 0 && errno != ENOENT) {
      return "cannot remove " + prev_path_ + ": " + errstr(errno);
    }
    return "";
  };
  struct stat st {
  }, jst{};
  if (::fstat(fd, &st) != 0) return "cannot stat " + prev_path_ + ": " + errstr(errno);
  if (::fstat(jfd_, &jst) != 0) return "cannot stat " + journal_path_ + ": " + errstr(errno);
  // The rotation linked the journal here but did not rename the new one over it: one file.
  if (st.st_dev == jst.st_dev && st.st_ino == jst.st_ino) return remove();

  const std::string bad = "corrupt lease journal " + prev_path_ + ": ";
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // Never headerless: only a journal with a header is ever rotated.
  Header h;
  if (std::string err = read_header(fd, prev_path_, bad, kKindJournal, &h); !err.empty())
    return err;
  if (h.epoch < snap_epoch) return remove();  // the snapshot that replaced it landed
  if (h.epoch > snap_epoch) {
    return "lease journal " + prev_path_ + " continues snapshot epoch " + std::to_string(h.epoch) +
           " but " + snap_path_ +
           (snap_epoch == 0 ? std::string(" is missing")
                            : " is at epoch " + std::to_string(snap_epoch)) +
           ": refusing to restore a partial lease table";
  }
  *needed = true;
  uint64_t good = 0;
  if (std::string err = replay_records(fd, prev_path_, size, f, &good); !err.empty()) return err;
  // Only read: the file goes once the snapshot that covers it landed.
  stats_.torn_tail_bytes += size - (kHdr + good * kRec);
  return "";
}

std::string Journal::replay_journal(uint64_t epoch, bool after_prev,
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
    epoch_ = epoch;
    return restart_journal();
  }
  Header h;
  if (std::string why = decode_header(hb.data(), kKindJournal, &h); !why.empty()) {
    return "corrupt lease journal " + journal_path_ + ": " + why;
  }
  if (after_prev && h.epoch != epoch) {
    return "lease journal " + journal_path_ + " is at epoch " + std::to_string(h.epoch) + " but " +
           prev_path_ + " it follows is at epoch " + std::to_string(epoch - 1) +
           ": refusing to restore a partial lease table";
  }
  if (h.epoch > epoch) {
    return "lease journal " + journal_path_ + " continues snapshot epoch " +
           std::to_string(h.epoch) + " but " + snap_path_ +
           (epoch == 0 ? std::string(" is missing") : " is at epoch " + std::to_string(epoch)) +
           ": refusing to restore a partial lease table";
  }
  if (h.epoch < epoch) {
    // A compaction (as an older version did it: snapshot first, then the journal restarted)
    // crashed after its rename, before restarting the journal: every record here is in the
    // snapshot already.
    epoch_ = epoch;
    return restart_journal();
  }
  epoch_ = h.epoch;

  uint64_t good = 0;
  if (std::string err = replay_records(jfd_, journal_path_, size, f, &good); !err.empty()) {
    return err;
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
  // Never the new header over old records. (Replay only: compaction rotates to a new file.)
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
  if (int e = write_all(jfd_, buf_.data(), bytes, end_); e != 0) {
    std::string msg = "cannot write " + std::to_string(events.size()) + " records to " +
                      journal_path_ + ": " + errstr(e);
    // Back to the batch boundary, so a shorter next batch never leaves stale bytes after it.
    if (::ftruncate(jfd_, static_cast<off_t>(end_)) != 0)
      msg += "; rollback failed: " + errstr(errno);
    // The batch is in the table only: nothing but a snapshot makes it durable, and until one
    // has landed sync() must not report later batches durable as if the lost one were too.
    must_compact_ = true;
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
  bool ok = true;
  switch (params_.fsync) {
    case FsyncPolicy::kNever:
      synced_ = written_;
      break;
    case FsyncPolicy::kEveryBatch:
      if (!defer_sync) {
        ok = sync();
        break;
      }
      [[fallthrough]];  // as kInterval: tick() syncs it when due
    case FsyncPolicy::kInterval:
      if (due(now_ns, first_unsynced_ns_, params_.fsync_interval_ms * kMs)) ok = sync();
      break;
  }
  return step_compaction(kCopySlice) && ok;
}

void Journal::update_synced() {
  // A prefix counter: nothing of this journal counts before everything ahead of it does.
  if (!base_ok_) return;
  synced_ = std::max(synced_, blocked_ ? j_start_ : j_synced_);
}

int Journal::sync_fd(int fd, bool data_only, const char* what) {
  if (params_.fsync_test_hook) {
    if (const int e = params_.fsync_test_hook(what); e != 0) return e;
  }
  return fsync_retry(fd, data_only);
}

bool Journal::fdatasync_journal() {
  const uint64_t t0 = mono_ns();
  const int e = sync_fd(jfd_, true, "journal");
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
  j_synced_ = written_;
  update_synced();
  return true;
}

bool Journal::dir_sync_retry(bool now) {
  if (!now && now_ns_ < retry_ns_) return false;
  if (int e = sync_fd(dir_fd_, false, "directory"); e != 0) {
    retry_ns_ = now_ns_ + kRetryNs;
    return fail("cannot fsync directory " + params_.dir + " after rotating " + journal_path_ +
                ": " + errstr(e) + " (its new records count as durable once that succeeds)");
  }
  blocked_ = false;
  update_synced();
  return true;
}

bool Journal::sync() {
  if (!replayed_) return fail("lease journal: sync() before replay()");
  bool ok = poll_writer();
  if (blocked_) ok = dir_sync_retry(false) && ok;
  if (must_compact_) {
    // Recovery: one attempt a second (a failing disk usually keeps failing); last_error()
    // keeps the cause meanwhile.
    if (phase_ == Phase::kNone && now_ns_ >= retry_ns_) ok = start_compaction() && ok;
  } else if (dirty_) {
    ok = fdatasync_journal() && ok;
  }
  update_synced();
  return ok && synced_ == written_;
}

bool Journal::tick(uint64_t now_ns) {
  if (!replayed_) return fail("lease journal: tick() before replay()");
  see_clock(now_ns);
  bool ok = poll_writer();
  if (blocked_) ok = dir_sync_retry(false) && ok;
  // kEveryBatch too: deferred appends wait here.
  if (!must_compact_ && params_.fsync != FsyncPolicy::kNever && dirty_ &&
      due(now_ns, first_unsynced_ns_, params_.fsync_interval_ms * kMs)) {
    ok = fdatasync_journal() && ok;
  }
  if (phase_ == Phase::kNone && now_ns >= retry_ns_ &&
      (must_compact_ || end_ > params_.compact_bytes ||
       (params_.compact_interval_ms != 0 && end_ > kHdr &&
        due(now_ns, last_compact_ns_, params_.compact_interval_ms * kMs)))) {
    ok = start_compaction() && ok;
  }
  ok = step_compaction(kCopySlice) && ok;
  update_synced();
  return ok && !must_compact_ && !blocked_ && phase_ != Phase::kFailed;
}

// ---------------------------------------------------------------------------------------------
// Compaction (the order and its crash points: journal.h).

bool Journal::start_compaction() {
  bool ok = true;
  // 1. The journal's records durable under its current name (they become .prev's). A failure
  //    does not stop the rotation: the snapshot copies the table, which holds them. After an
  //    earlier failure there is nothing to vouch for (a success now would not mean the pages
  //    dropped then are on disk): the snapshot alone makes them durable.
  if (dirty_ && !must_compact_) {
    if (int e = sync_fd(jfd_, true, "journal"); e != 0) {
      must_compact_ = true;
      ok = fail("cannot fdatasync " + journal_path_ + ": " + errstr(e) +
                " (the compaction will rewrite the leases)");
    } else {
      dirty_ = false;
      j_synced_ = written_;
      update_synced();
    }
  }
  const uint64_t next = epoch_ + 1;
  int nfd = -1;
  auto undo = [&](std::string msg, int e) {
    if (nfd >= 0) ::close(nfd);
    ::unlink(new_path_.c_str());
    retry_ns_ = now_ns_ + kRetryNs;
    return fail(msg + ": " + errstr(e));
  };
  // 2. A .prev left by a landed compaction whose unlink failed (no compaction is in flight).
  if (::unlink(prev_path_.c_str()) != 0 && errno != ENOENT) {
    const int e = errno;
    return undo("cannot remove the stale " + prev_path_, e);
  }
  // 3. The next journal, complete before it takes the name.
  nfd = ::open(new_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (nfd < 0) {
    const int e = errno;
    return undo("cannot create " + new_path_, e);
  }
  const auto hb = encode_header(Header{kKindJournal, next, 0});
  if (int e = write_all(nfd, hb.data(), kHdr, 0); e != 0) {
    return undo("cannot write the header of " + new_path_, e);
  }
  if (int e = sync_fd(nfd, true, "new journal"); e != 0) {
    return undo("cannot fdatasync " + new_path_, e);
  }
  // 4. Link, then rename over: the journal's name never misses a complete journal.
  if (::link(journal_path_.c_str(), prev_path_.c_str()) != 0) {
    const int e = errno;
    return undo("cannot link " + journal_path_ + " to " + prev_path_, e);
  }
  if (::rename(new_path_.c_str(), journal_path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(prev_path_.c_str());  // if this fails too: a second name of the journal, harmless
    return undo("cannot rename " + new_path_ + " to " + journal_path_, e);
  }
  // Rotated. Whatever .prev holds is in the table, so the copy covers a failed fsync of it.
  ::close(jfd_);
  jfd_ = nfd;
  base_ok_ = base_ok_ && !must_compact_;
  must_compact_ = false;
  epoch_ = next;
  end_ = kHdr;
  dirty_ = false;
  j_start_ = j_synced_ = written_;
  last_compact_ns_ = now_ns_;
  const size_t n = entries_.size();
  copy_ = std::make_unique_for_overwrite<Entry[]>(n);  // untouched: faults come slice by slice
  copy_n_ = n;
  copy_next_ = 0;
  copy_bits_.assign((n + 63) / 64, 0);
  copy_epoch_ = next;
  phase_ = Phase::kCopying;
  update_synced();
  // 5. The rename durable. Until it is, the new journal's records may vanish with its name:
  //    they do not count as synced, and the snapshot is not written (step_compaction()).
  if (int e = sync_fd(dir_fd_, false, "directory"); e != 0) {
    blocked_ = true;
    retry_ns_ = now_ns_ + kRetryNs;
    return fail("cannot fsync directory " + params_.dir + " after rotating " + journal_path_ +
                ": " + errstr(e) + " (its new records count as durable once that succeeds)");
  }
  return ok;
}

bool Journal::step_compaction(size_t slice) {
  bool ok = poll_writer();
  if (phase_ == Phase::kCopying) {
    size_t i = copy_next_;
    const size_t end = copy_next_ + std::min(slice, copy_n_ - copy_next_);
    while (i < end) {
      // 64 addresses per bitmap word: runs nobody changed yet are one memcpy.
      const size_t stop = std::min(end, (i | 63) + 1);
      const uint64_t word = copy_bits_[i >> 6];
      if (word == 0) {
        std::memcpy(&copy_[i], &entries_[i], (stop - i) * sizeof(Entry));
      } else {
        for (size_t k = i; k < stop; ++k) {
          if (((word >> (k & 63)) & 1) == 0) copy_[k] = entries_[k];
        }
      }
      i = stop;
    }
    copy_next_ = end;
    if (copy_next_ == copy_n_ && !blocked_) post_copy();
  } else if (phase_ == Phase::kFailed && !blocked_ && now_ns_ >= retry_ns_) {
    post_copy();
  }
  return ok;
}

void Journal::post_copy() {
  if (writer_ == nullptr) writer_ = std::make_unique<Writer>();
  Writer& w = *writer_;
  if (!w.thread.joinable()) {
    // Started here, on the journal thread, so it inherits that thread's CPU affinity.
    try {
      w.thread = std::thread([&w] { w.run(); });
    } catch (const std::system_error& e) {
      phase_ = Phase::kFailed;
      retry_ns_ = now_ns_ + kRetryNs;
      fail(std::string("cannot start the lease snapshot writer: ") + e.what());
      return;
    }
  }
  {
    std::lock_guard<std::mutex> g(w.mu);
    w.recs = std::move(copy_);
    w.n = copy_n_;
    w.epoch = copy_epoch_;
    w.tmp_path = tmp_path_;
    w.snap_path = snap_path_;
    w.dir = params_.dir;
    w.dir_fd = dir_fd_;
    w.hook = params_.snapshot_test_hook;
    w.state.store(Writer::kQueued);
  }
  w.cv.notify_all();
  phase_ = Phase::kWriting;
}

bool Journal::poll_writer() {
  if (phase_ != Phase::kWriting) return true;
  Writer& w = *writer_;
  const int st = w.state.load(std::memory_order_acquire);
  if (st == Writer::kQueued) return true;
  w.state.store(Writer::kIdle, std::memory_order_relaxed);
  if (st == Writer::kFailed) {
    // .prev stays (the snapshot on disk may be the old one); the same copy is written again.
    copy_ = std::move(w.recs);
    phase_ = Phase::kFailed;
    retry_ns_ = now_ns_ + kRetryNs;
    return fail(w.error + " (compaction retried; " + prev_path_ + " kept)");
  }
  // Landed: snapshot copy_epoch_ is durable, so is everything before this journal.
  drop_copy();
  phase_ = Phase::kNone;
  base_ok_ = true;
  ++stats_.compactions;
  update_synced();
  // Unsynced: if it comes back after a crash, its epoch is older than the snapshot's.
  if (::unlink(prev_path_.c_str()) != 0 && errno != ENOENT) {
    const int e = errno;
    return fail("cannot remove " + prev_path_ + ": " + errstr(e));
  }
  return true;
}

std::string Journal::finish_compaction() {
  if (phase_ == Phase::kNone) return "";
  if (blocked_ && !dir_sync_retry(true)) return error_;
  if (phase_ == Phase::kCopying) step_compaction(copy_n_);
  if (phase_ == Phase::kFailed) post_copy();
  if (phase_ == Phase::kWriting) {
    writer_->wait();
    poll_writer();
  }
  return phase_ == Phase::kNone ? "" : error_;
}

void Journal::drop_copy() {
  copy_.reset();
  copy_n_ = copy_next_ = 0;
  copy_bits_.clear();
}

std::string Journal::compact() {
  if (!replayed_) return failed("lease journal: compact() before replay()");
  if (std::string e = finish_compaction(); !e.empty()) return e;
  if (!start_compaction() && phase_ == Phase::kNone) return error_;
  return finish_compaction();
}

}  // namespace dhcp
