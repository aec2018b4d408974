// Journal on a real temporary directory: round trip, generation rules, torn and corrupt tails,
// corrupt snapshots, compaction and every crash point of it, the directory lock, fsync policies
// on a fake clock, and a failing write (RLIMIT_FSIZE). Background compaction: appends while the
// snapshot writer is held (JournalParams::snapshot_test_hook), copy-on-write of the rotation's
// state, a failed write retried, and replay of the files each crash point leaves. Property tests
// append random batches, compacting and reopening at random (and, in the background, copying
// the directory at random as a crash would leave it), against a reference map written here.

#include "dhcp/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace dhcp {
namespace {

namespace fs = std::filesystem;
using Kind = LeaseEvent::Kind;

constexpr uint64_t kMs = 1'000'000;
constexpr size_t kHdr = Journal::kHeaderSize;
constexpr size_t kRec = Journal::kRecordSize;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "tandem-journal-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) std::abort();
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Lease make_lease(uint32_t ip, uint64_t gen, LeaseState st = LeaseState::kBound) {
  Lease l;
  l.ip = ip;
  l.pool = 7 + (ip & 3);
  l.state = st;
  l.mac = {0x02, 0x00, uint8_t(ip >> 24), uint8_t(ip >> 16), uint8_t(ip >> 8), uint8_t(ip)};
  if (ip % 3 == 0) {
    // A long option 61 (hashed tail), so all 32 bytes matter.
    std::vector<uint8_t> id(40);
    for (size_t i = 0; i < id.size(); ++i) id[i] = uint8_t(ip * 31 + i);
    l.client = ClientKey::from_id(id);
  } else {
    l.client = ClientKey::from_mac(l.mac);
  }
  l.expires_ns = st == LeaseState::kFree ? 0 : 3600'000'000'000ull + gen;
  l.updated_ns = 1'000'000 * gen + ip;
  l.generation = gen;
  return l;
}

LeaseEvent ev(uint32_t ip, uint64_t gen, LeaseState st = LeaseState::kBound, Kind k = Kind::kBind) {
  return LeaseEvent{k, make_lease(ip, gen, st)};
}

bool same(const Lease& a, const Lease& b) {
  return a.ip == b.ip && a.pool == b.pool && a.state == b.state && a.client.len == b.client.len &&
         a.client.bytes == b.client.bytes && a.mac == b.mac && a.expires_ns == b.expires_ns &&
         a.updated_ns == b.updated_ns && a.generation == b.generation;
}

std::string show(const Lease& l) {
  return "{ip " + std::to_string(l.ip) + " gen " + std::to_string(l.generation) + " state " +
         std::to_string(int(l.state)) + "}";
}

void expect_same(const std::vector<Lease>& got, const std::vector<Lease>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(same(got[i], want[i]))
        << "at " << i << ": " << show(got[i]) << " vs " << show(want[i]);
  }
}

// The final state a generation-keeping consumer ends with (LeaseStore::restore's rule, with
// the journal's tie-break: same generation, the later one).
std::map<uint32_t, Lease> fold(const std::vector<Lease>& ls) {
  std::map<uint32_t, Lease> m;
  for (const Lease& l : ls) {
    auto it = m.find(l.ip);
    if (it == m.end() || l.generation >= it->second.generation) m[l.ip] = l;
  }
  return m;
}

void expect_state(const std::map<uint32_t, Lease>& got, const std::map<uint32_t, Lease>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [ip, l] : want) {
    auto it = got.find(ip);
    ASSERT_NE(it, got.end()) << "missing ip " << ip;
    EXPECT_TRUE(same(it->second, l)) << show(it->second) << " vs " << show(l);
  }
}

JournalParams params(const TempDir& d, FsyncPolicy p = FsyncPolicy::kNever) {
  JournalParams jp;
  jp.dir = d.path();
  jp.fsync = p;
  return jp;
}

// Opens and replays; the records replay delivered.
std::vector<Lease> reopen(Journal& j, const JournalParams& p, std::string* err = nullptr) {
  std::vector<Lease> out;
  std::string e = j.open(p);
  if (e.empty()) e = j.replay([&](const Lease& l) { out.push_back(l); });
  if (err != nullptr) {
    *err = e;
  } else {
    EXPECT_EQ(e, "");
  }
  return out;
}

uint64_t file_size(const std::string& path) {
  return fs::file_size(path);
}

void flip_byte(const std::string& path, uint64_t off) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(off));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(off));
  f.write(&c, 1);
}

std::vector<Lease> leases_of(const std::vector<LeaseEvent>& es) {
  std::vector<Lease> out;
  for (const auto& e : es) out.push_back(e.lease);
  return out;
}

// Ticks `j` at `now` until no compaction is in flight (the snapshot writer reports on its own
// thread; tick() lands what it wrote). False after a generous deadline.
bool settle(Journal& j, uint64_t now) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (j.compacting()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    j.tick(now);
    if (j.compacting()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// JournalParams::snapshot_test_hook that holds the snapshot writer until opened, counts its
// attempts and fails them with fail_with while that is set.
class Gate {
 public:
  std::function<std::string(uint64_t)> hook() {
    return [this](uint64_t epoch) {
      std::unique_lock<std::mutex> lk(mu_);
      ++calls_;
      epochs_.push_back(epoch);
      cv_.notify_all();
      cv_.wait(lk, [this] { return open_; });
      return fail_with_;
    };
  }
  void open() {
    std::lock_guard<std::mutex> g(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void shut() {
    std::lock_guard<std::mutex> g(mu_);
    open_ = false;
  }
  void fail_with(std::string why) {
    std::lock_guard<std::mutex> g(mu_);
    fail_with_ = std::move(why);
  }
  int calls() {
    std::lock_guard<std::mutex> g(mu_);
    return calls_;
  }
  std::vector<uint64_t> epochs() {
    std::lock_guard<std::mutex> g(mu_);
    return epochs_;
  }
  // Until the writer made n attempts (it may be held in the n-th); false after a deadline.
  bool wait_calls(int n) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(30), [&] { return calls_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int calls_ = 0;
  std::vector<uint64_t> epochs_;
  std::string fail_with_;
};

// A journal opened with `p` whose snapshot writer stops at `gate`. The gate is opened before the
// journal goes (the destructor's body runs before ~Journal, which waits for the snapshot writer),
// so it never waits on a shut gate, even after a failed ASSERT.
struct GatedJournal {
  GatedJournal(Gate& g, JournalParams p) : gate(g) {
    p.snapshot_test_hook = gate.hook();
    reopen(j, p);
  }
  ~GatedJournal() { gate.open(); }
  GatedJournal(const GatedJournal&) = delete;
  GatedJournal& operator=(const GatedJournal&) = delete;

  Gate& gate;
  Journal j;
};

// JournalParams::fsync_test_hook failing the fsyncs of what it is told (EIO), as often as told;
// counts every fsync by what it syncs. Journal thread only (the test's).
class FsyncFaults {
 public:
  std::function<int(const std::string&)> hook() {
    return [this](const std::string& what) {
      ++seen_[what];
      int& left = fail_[what];
      if (left == 0) return 0;
      --left;
      return EIO;
    };
  }
  void fail(const std::string& what, int times = 1) { fail_[what] = times; }
  int seen(const std::string& what) { return seen_[what]; }

 private:
  std::map<std::string, int> fail_, seen_;
};

// The data files of `from` as a crash at this moment leaves them (as far as the page cache
// shows: the tests check replay logic, not the disk), into `to`. Not the lock, and not a
// snapshot being written (never read; the writer may rename it away meanwhile).
void crash_copy(const std::string& from, const std::string& to) {
  for (const char* name : {"leases.snap", "leases.journal.prev", "leases.journal"}) {
    std::error_code ec;  // a missing one stays missing
    fs::copy_file(from + "/" + name, to + "/" + name, fs::copy_options::overwrite_existing, ec);
  }
}

uint64_t epoch_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(24);
  uint64_t e = 0;
  f.read(reinterpret_cast<char*>(&e), 8);  // little-endian host
  return e;
}

// Rewrites the epoch in a file's header, CRC included (a file from another compaction).
void set_epoch(const std::string& path, uint64_t epoch) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::vector<uint8_t> h(kHdr);
  f.read(reinterpret_cast<char*>(h.data()), kHdr);
  std::memcpy(h.data() + 24, &epoch, 8);
  const uint32_t c = crc32c(std::span<const uint8_t>(h).first(44));
  std::memcpy(h.data() + 44, &c, 4);
  f.seekp(0);
  f.write(reinterpret_cast<const char*>(h.data()), kHdr);
}

TEST(Crc32c, KnownVectors) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c({reinterpret_cast<const uint8_t*>(s.data()), s.size()}), 0xE3069283u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4
  std::vector<uint8_t> ones(32, 0xff);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  // Incremental == one shot, across the 8-byte stride.
  std::vector<uint8_t> v(77);
  for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t(i * 7 + 1);
  const uint32_t part = crc32c(std::span<const uint8_t>(v).first(13));
  EXPECT_EQ(crc32c(std::span<const uint8_t>(v).subspan(13), part), crc32c(v));
}

TEST(Journal, RoundTripGivesIdenticalLeases) {
  TempDir d;
  std::vector<LeaseEvent> all;
  {
    Journal j;
    ASSERT_EQ(j.open(params(d)), "");
    ASSERT_EQ(j.replay([](const Lease&) { FAIL() << "empty journal delivered a record"; }), "");
    std::vector<LeaseEvent> b1 = {ev(1, 1, LeaseState::kOffered, Kind::kOffer), ev(2, 1),
                                  ev(3, 1, LeaseState::kDeclined, Kind::kDecline)};
    std::vector<LeaseEvent> b2 = {ev(1, 2), ev(6, 4, LeaseState::kFree, Kind::kRelease)};
    b2[1].lease.client = ClientKey::from_mac({1, 2, 3, 4, 5, 6});  // free, keeps its client
    ASSERT_TRUE(j.append(b1, 0));
    ASSERT_TRUE(j.append(b2, 0));
    all = b1;
    all.insert(all.end(), b2.begin(), b2.end());
    EXPECT_EQ(j.written(), 5u);
    EXPECT_EQ(j.stats().records_written, 5u);
    EXPECT_EQ(j.stats().batches, 2u);
    EXPECT_EQ(j.stats().bytes_written, 5 * kRec);
    EXPECT_EQ(j.leases(), 4u);
    EXPECT_EQ(file_size(d.file("leases.journal")), kHdr + 5 * kRec);
  }
  Journal j;
  std::vector<Lease> got = reopen(j, params(d));
  expect_same(got, leases_of(all));
  EXPECT_EQ(j.stats().restored, 5u);
  EXPECT_EQ(j.stats().torn_tail_bytes, 0u);
  EXPECT_EQ(j.leases(), 4u);
  EXPECT_EQ(got[4].client, ClientKey::from_mac({1, 2, 3, 4, 5, 6}));
}

TEST(Journal, DirectoryCreatedWithMode0750) {
  TempDir d;
  JournalParams p;
  p.dir = d.path() + "/a/b/leases/";
  Journal j;
  ASSERT_EQ(j.open(p), "");
  struct stat st {};
  ASSERT_EQ(::stat((d.path() + "/a/b/leases").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0750u, 0u);  // umask may only take away
  EXPECT_TRUE(fs::exists(d.path() + "/a/b/leases/leases.journal"));
  EXPECT_TRUE(fs::exists(d.path() + "/a/b/leases/lock"));
}

TEST(Journal, OpenErrorNamesThePath) {
  TempDir d;
  { std::ofstream(d.file("plain")) << "x"; }
  JournalParams p;
  p.dir = d.file("plain") + "/sub";
  Journal j;
  const std::string e = j.open(p);
  EXPECT_NE(e.find(d.file("plain")), std::string::npos) << e;
  EXPECT_NE(e.find(std::strerror(ENOTDIR)), std::string::npos) << e;
  EXPECT_EQ(j.last_error(), e);
  EXPECT_EQ(Journal().open(JournalParams{}), "lease journal: no directory given");
}

TEST(Journal, CallsOutOfOrderAreRefused) {
  TempDir d;
  Journal j;
  std::vector<LeaseEvent> b = {ev(1, 1)};
  EXPECT_NE(j.replay([](const Lease&) {}), "");
  ASSERT_EQ(j.open(params(d)), "");
  EXPECT_FALSE(j.append(b, 0));
  EXPECT_NE(j.last_error().find("before replay"), std::string::npos);
  EXPECT_NE(j.compact(), "");
  ASSERT_EQ(j.replay([](const Lease&) {}), "");
  EXPECT_NE(j.replay([](const Lease&) {}), "");
  EXPECT_TRUE(j.append(b, 0));
}

TEST(Journal, NewerGenerationWinsSameGenerationLaterWins) {
  TempDir d;
  {
    Journal j;
    reopen(j, params(d));
    std::vector<LeaseEvent> b = {ev(10, 5), ev(10, 3, LeaseState::kFree, Kind::kExpire),
                                 ev(11, 2, LeaseState::kOffered, Kind::kOffer), ev(11, 2)};
    ASSERT_TRUE(j.append(b, 0));
    EXPECT_EQ(j.leases(), 2u);
    ASSERT_EQ(j.compact(), "");
  }
  Journal j;
  std::vector<Lease> got = reopen(j, params(d));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(same(got[0], make_lease(10, 5)));  // the stale generation 3 did not replace it
  EXPECT_TRUE(same(got[1], make_lease(11, 2, LeaseState::kBound)));
}

TEST(Journal, ReplayDeliversEveryRecordInOrder) {
  // Not deduplicated: the consumer sees the history (newest last) and keeps what it wants.
  TempDir d;
  std::vector<LeaseEvent> b = {ev(10, 5), ev(10, 3), ev(10, 6)};
  {
    Journal j;
    reopen(j, params(d));
    ASSERT_TRUE(j.append(b, 0));
  }
  Journal j;
  expect_same(reopen(j, params(d)), leases_of(b));
  EXPECT_EQ(j.leases(), 1u);
}

class TornTail : public ::testing::Test {
 protected:
  void SetUp() override {
    Journal j;
    reopen(j, params(d_));
    for (uint32_t i = 0; i < 10; ++i) events_.push_back(ev(100 + i, 1));
    ASSERT_TRUE(j.append(std::span(events_).first(4), 0));
    ASSERT_TRUE(j.append(std::span(events_).subspan(4), 0));
  }
  std::string journal() const { return d_.file("leases.journal"); }
  void expect_first(size_t n, uint64_t torn) {
    Journal j;
    std::vector<Lease> got = reopen(j, params(d_));
    expect_same(got, leases_of(std::vector<LeaseEvent>(events_.begin(), events_.begin() + n)));
    EXPECT_EQ(j.stats().torn_tail_bytes, torn);
    EXPECT_EQ(file_size(journal()), kHdr + n * kRec);
    // Appends continue on a record boundary and survive the next replay.
    std::vector<LeaseEvent> more = {ev(999, 1)};
    ASSERT_TRUE(j.append(more, 0));
    j.close();
    Journal k;
    got = reopen(k, params(d_));
    ASSERT_EQ(got.size(), n + 1);
    EXPECT_TRUE(same(got.back(), more[0].lease));
    EXPECT_EQ(k.stats().torn_tail_bytes, 0u);
  }
  TempDir d_;
  std::vector<LeaseEvent> events_;
};

TEST_F(TornTail, PartialLastRecordIsCut) {
  fs::resize_file(journal(), kHdr + 10 * kRec - 30);
  expect_first(9, kRec - 30);
}

TEST_F(TornTail, PartialRecordAfterFullOnes) {
  fs::resize_file(journal(), kHdr + 10 * kRec + 17);  // zeros past the end (delayed allocation)
  expect_first(10, 17);
}

TEST_F(TornTail, ZeroFilledRecordIsCut) {
  fs::resize_file(journal(), kHdr + 12 * kRec);  // two whole records of zeros
  expect_first(10, 2 * kRec);
}

TEST_F(TornTail, BadCrcInLastRecordIsCut) {
  flip_byte(journal(), kHdr + 9 * kRec + 20);
  expect_first(9, kRec);
}

TEST_F(TornTail, FlippedCrcByteIsCut) {
  flip_byte(journal(), kHdr + 10 * kRec - 1);
  expect_first(9, kRec);
}

TEST_F(TornTail, CorruptRecordEndsReplayThere) {
  flip_byte(journal(), kHdr + 6 * kRec + 2);
  expect_first(6, 4 * kRec);
}

TEST_F(TornTail, OutOfRangeFieldIsCorruptEvenWithAGoodCrc) {
  // A state byte of 9 with a matching CRC: not something we wrote.
  std::fstream f(journal(), std::ios::in | std::ios::out | std::ios::binary);
  std::vector<uint8_t> rec(kRec);
  f.seekg(kHdr + 8 * kRec);
  f.read(reinterpret_cast<char*>(rec.data()), kRec);
  rec[39] = 9;
  const uint32_t c = crc32c(std::span<const uint8_t>(rec).first(76));
  std::memcpy(rec.data() + 76, &c, 4);  // little-endian host
  f.seekp(kHdr + 8 * kRec);
  f.write(reinterpret_cast<const char*>(rec.data()), kRec);
  f.close();
  expect_first(8, 2 * kRec);
}

TEST(Journal, CorruptJournalHeaderIsAnError) {
  TempDir d;
  {
    Journal j;
    reopen(j, params(d));
    std::vector<LeaseEvent> b = {ev(1, 1)};
    ASSERT_TRUE(j.append(b, 0));
  }
  flip_byte(d.file("leases.journal"), 20);
  Journal j;
  std::string err;
  reopen(j, params(d), &err);
  EXPECT_NE(err.find("corrupt lease journal " + d.file("leases.journal")), std::string::npos)
      << err;
  EXPECT_NE(err.find("CRC"), std::string::npos) << err;
}

TEST(Journal, HeaderlessJournalStartsEmpty) {
  // A crash while the journal was being created: nothing in it, nothing lost.
  TempDir d;
  { std::ofstream(d.file("leases.journal")) << "TDM"; }
  Journal j;
  EXPECT_TRUE(reopen(j, params(d)).empty());
  EXPECT_EQ(j.stats().torn_tail_bytes, 3u);
  EXPECT_EQ(file_size(d.file("leases.journal")), kHdr);
}

class Snapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    Journal j;
    reopen(j, params(d_));
    for (uint32_t i = 0; i < 20; ++i) events_.push_back(ev(200 + i, 1 + i % 4));
    ASSERT_TRUE(j.append(events_, 0));
    ASSERT_EQ(j.compact(), "");
    EXPECT_EQ(file_size(snap()), kHdr + 20 * kRec);
    EXPECT_EQ(file_size(d_.file("leases.journal")), kHdr);
  }
  std::string snap() const { return d_.file("leases.snap"); }
  void expect_error(const std::string& what) {
    Journal j;
    std::string err;
    std::vector<Lease> got = reopen(j, params(d_), &err);
    EXPECT_NE(err.find("corrupt lease snapshot " + snap()), std::string::npos) << err;
    EXPECT_NE(err.find(what), std::string::npos) << err;
    EXPECT_TRUE(got.empty()) << "a corrupt snapshot delivered records";
    EXPECT_EQ(j.last_error(), err);
  }
  TempDir d_;
  std::vector<LeaseEvent> events_;
};

TEST_F(Snapshot, RoundTrip) {
  Journal j;
  expect_same(reopen(j, params(d_)), leases_of(events_));
  EXPECT_EQ(j.epoch(), 1u);
}

TEST_F(Snapshot, FlippedRecordByteIsAnError) {
  flip_byte(snap(), kHdr + 13 * kRec + 5);
  expect_error("record 13");
}

TEST_F(Snapshot, FlippedLastByteIsAnError) {
  flip_byte(snap(), kHdr + 20 * kRec - 1);
  expect_error("record 19");
}

TEST_F(Snapshot, TruncatedIsAnError) {
  fs::resize_file(snap(), kHdr + 19 * kRec);
  expect_error("announces 20 records");
}

TEST_F(Snapshot, TrailingBytesAreAnError) {
  fs::resize_file(snap(), kHdr + 20 * kRec + kRec);
  expect_error("announces 20 records");
}

TEST_F(Snapshot, BadHeaderIsAnError) {
  flip_byte(snap(), 1);
  expect_error("bad magic");
}

TEST_F(Snapshot, ShortHeaderIsAnError) {
  fs::resize_file(snap(), 10);
  expect_error("only 10 bytes");
}

TEST_F(Snapshot, JournalFileInItsPlaceIsAnError) {
  fs::copy_file(d_.file("leases.journal"), snap(), fs::copy_options::overwrite_existing);
  expect_error("file kind 1");
}

TEST_F(Snapshot, MissingSnapshotBehindAJournalIsAnError) {
  fs::remove(snap());
  Journal j;
  std::string err;
  reopen(j, params(d_), &err);
  EXPECT_NE(err.find(snap() + " is missing"), std::string::npos) << err;
}

TEST(Journal, CompactThenAppendThenReplayGivesTheState) {
  TempDir d;
  std::vector<Lease> history;
  {
    Journal j;
    reopen(j, params(d));
    std::vector<LeaseEvent> b1, b2, b3;
    for (uint32_t i = 0; i < 50; ++i) b1.push_back(ev(i, 1));
    for (uint32_t i = 0; i < 50; i += 2) b2.push_back(ev(i, 2, LeaseState::kFree, Kind::kExpire));
    for (uint32_t i = 40; i < 60; ++i) b3.push_back(ev(i, 3));
    ASSERT_TRUE(j.append(b1, 0));
    ASSERT_TRUE(j.append(b2, 0));
    ASSERT_EQ(j.compact(), "");
    EXPECT_EQ(j.stats().compactions, 1u);
    EXPECT_EQ(j.journal_bytes(), kHdr);
    ASSERT_TRUE(j.append(b3, 0));
    ASSERT_EQ(j.compact(), "");  // twice: epochs advance
    std::vector<LeaseEvent> b4 = {ev(1, 9, LeaseState::kDeclined, Kind::kDecline)};
    ASSERT_TRUE(j.append(b4, 0));
    EXPECT_EQ(j.epoch(), 2u);
    EXPECT_EQ(j.leases(), 60u);
    for (auto* b : {&b1, &b2, &b3, &b4}) {
      for (const auto& e : *b) history.push_back(e.lease);
    }
  }
  EXPECT_FALSE(fs::exists(d.file("leases.snap.tmp")));
  Journal j;
  std::vector<Lease> got = reopen(j, params(d));
  EXPECT_EQ(got.size(), 61u);  // 60 from the snapshot, 1 from the journal
  expect_state(fold(got), fold(history));
  EXPECT_EQ(j.leases(), 60u);
}

TEST(Journal, SnapshotKeepsArrivalOrder) {
  // restore() rebuilds free-list order from event order, so the snapshot must keep it.
  TempDir d;
  std::vector<uint32_t> want = {50, 7, 30, 2, 99, 7, 50};  // 7 and 50 move to the back
  {
    Journal j;
    reopen(j, params(d));
    uint64_t gen = 1;
    for (uint32_t ip : want) {
      std::vector<LeaseEvent> b = {ev(ip, gen++, LeaseState::kFree, Kind::kRelease)};
      ASSERT_TRUE(j.append(b, 0));
    }
    ASSERT_EQ(j.compact(), "");
  }
  Journal j;
  std::vector<Lease> got = reopen(j, params(d));
  std::vector<uint32_t> ips;
  for (const Lease& l : got) ips.push_back(l.ip);
  EXPECT_EQ(ips, (std::vector<uint32_t>{30, 2, 99, 7, 50}));
}

TEST(Journal, LeftoverSnapshotTmpIsIgnored) {
  TempDir d;
  std::vector<LeaseEvent> b = {ev(1, 1), ev(2, 1)};
  {
    Journal j;
    reopen(j, params(d));
    ASSERT_TRUE(j.append(b, 0));
    ASSERT_EQ(j.compact(), "");
    std::vector<LeaseEvent> b2 = {ev(3, 1)};
    ASSERT_TRUE(j.append(b2, 0));
    b.push_back(b2[0]);
  }
  // A compaction that crashed before its rename: a plausible but partial snapshot.
  fs::copy_file(d.file("leases.snap"), d.file("leases.snap.tmp"));
  fs::resize_file(d.file("leases.snap.tmp"), kHdr + kRec + 9);
  Journal j;
  expect_same(reopen(j, params(d)), leases_of(b));
  EXPECT_FALSE(fs::exists(d.file("leases.snap.tmp")));
}

TEST(Journal, CrashAfterSnapshotRenameBeforeJournalRestart) {
  // The journal still holds the records the new snapshot covers (older epoch): it must be
  // skipped (no stale records after the snapshot's), restarted, and usable.
  TempDir d;
  std::vector<LeaseEvent> b = {ev(1, 1), ev(2, 1), ev(1, 2, LeaseState::kFree, Kind::kRelease)};
  {
    Journal j;
    reopen(j, params(d));
    ASSERT_TRUE(j.append(b, 0));
    fs::copy_file(d.file("leases.journal"), d.file("journal.before"));
    ASSERT_EQ(j.compact(), "");
  }
  fs::copy_file(d.file("journal.before"), d.file("leases.journal"),
                fs::copy_options::overwrite_existing);
  {
    Journal j;
    std::vector<Lease> got = reopen(j, params(d));
    ASSERT_EQ(got.size(), 2u);  // the snapshot's two, not the journal's three again
    expect_state(fold(got), fold(leases_of(b)));
    EXPECT_EQ(j.epoch(), 1u);
    EXPECT_EQ(file_size(d.file("leases.journal")), kHdr);
    std::vector<LeaseEvent> b2 = {ev(2, 5)};
    ASSERT_TRUE(j.append(b2, 0));
  }
  Journal j;
  std::vector<Lease> got = reopen(j, params(d));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(same(got[2], make_lease(2, 5)));
}

TEST(Journal, CrashDuringJournalRestartLeavesZeroHeader) {
  // restart_journal() extends/cuts to header size before writing the header: zeros there.
  TempDir d;
  std::vector<LeaseEvent> b = {ev(1, 1)};
  {
    Journal j;
    reopen(j, params(d));
    ASSERT_TRUE(j.append(b, 0));
    ASSERT_EQ(j.compact(), "");
  }
  {
    std::ofstream f(d.file("leases.journal"), std::ios::binary | std::ios::trunc);
    const std::string zeros(kHdr, '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  Journal j;
  expect_same(reopen(j, params(d)), leases_of(b));
  EXPECT_EQ(j.epoch(), 1u);
}

TEST(Journal, SecondOpenOfTheDirectoryFails) {
  TempDir d;
  Journal a;
  ASSERT_EQ(a.open(params(d)), "");
  Journal b;
  const std::string e = b.open(params(d));
  EXPECT_NE(e.find("lease journal directory " + d.path() + " is in use"), std::string::npos) << e;
  EXPECT_NE(e.find(d.file("lock") + " locked by pid " + std::to_string(::getpid())),
            std::string::npos)
      << e;
  EXPECT_EQ(b.stats().errors, 1u);
  a.close();
  EXPECT_EQ(b.open(params(d)), "");  // the lock goes with its owner
}

TEST(Journal, FsyncNeverSyncsNothing) {
  TempDir d;
  Journal j;
  reopen(j, params(d, FsyncPolicy::kNever));
  std::vector<LeaseEvent> b = {ev(1, 1), ev(2, 1)};
  for (uint64_t t = 0; t < 10; ++t) {
    ASSERT_TRUE(j.append(b, t * 1000 * kMs));
    ASSERT_TRUE(j.tick(t * 1000 * kMs + 1));
  }
  EXPECT_EQ(j.stats().fsyncs, 0u);
  EXPECT_EQ(j.written(), 20u);
  EXPECT_EQ(j.synced_upto(), 20u);  // the policy does not wait for the disk
  // An explicit sync() still syncs, once.
  ASSERT_TRUE(j.sync());
  ASSERT_TRUE(j.sync());
  EXPECT_EQ(j.stats().fsyncs, 1u);
}

TEST(Journal, FsyncEveryBatchSyncsOncePerBatch) {
  TempDir d;
  Journal j;
  reopen(j, params(d, FsyncPolicy::kEveryBatch));
  EXPECT_EQ(j.stats().fsyncs, 0u);
  for (uint32_t i = 1; i <= 7; ++i) {
    std::vector<LeaseEvent> b(i, ev(i, 1));
    ASSERT_TRUE(j.append(b, 0));
    EXPECT_EQ(j.stats().fsyncs, i);
    EXPECT_EQ(j.synced_upto(), j.written());
  }
  EXPECT_EQ(j.stats().batches, 7u);
  ASSERT_TRUE(j.sync());  // nothing unsynced: no-op
  ASSERT_TRUE(j.tick(1'000'000 * kMs));
  EXPECT_EQ(j.stats().fsyncs, 7u);
  uint64_t in_buckets = 0;
  for (uint64_t c : j.stats().fsync_buckets) in_buckets += c;
  EXPECT_EQ(in_buckets, 7u);
  EXPECT_GT(j.stats().fsync_ns_sum, 0u);
  EXPECT_GE(j.stats().max_fsync_ns, j.stats().last_fsync_ns);
  EXPECT_GE(j.stats().fsync_ns_sum, j.stats().max_fsync_ns);
}

TEST(Journal, FsyncIntervalFollowsTheFakeClock) {
  TempDir d;
  JournalParams p = params(d, FsyncPolicy::kInterval);
  p.fsync_interval_ms = 1000;
  Journal j;
  reopen(j, p);
  std::vector<LeaseEvent> b = {ev(1, 1)};
  ASSERT_TRUE(j.append(b, 100 * kMs));  // oldest unsynced record: t = 100 ms
  ASSERT_TRUE(j.append(b, 600 * kMs));
  ASSERT_TRUE(j.tick(1099 * kMs));
  EXPECT_EQ(j.stats().fsyncs, 0u);
  EXPECT_EQ(j.synced_upto(), 0u);
  ASSERT_TRUE(j.tick(1100 * kMs));  // due from tick()
  EXPECT_EQ(j.stats().fsyncs, 1u);
  EXPECT_EQ(j.synced_upto(), 2u);
  ASSERT_TRUE(j.tick(5000 * kMs));  // nothing unsynced
  EXPECT_EQ(j.stats().fsyncs, 1u);

  ASSERT_TRUE(j.append(b, 6000 * kMs));
  ASSERT_TRUE(j.append(b, 6999 * kMs));
  EXPECT_EQ(j.stats().fsyncs, 1u);
  EXPECT_EQ(j.synced_upto(), 2u);
  ASSERT_TRUE(j.append(b, 7000 * kMs));  // due from append()
  EXPECT_EQ(j.stats().fsyncs, 2u);
  EXPECT_EQ(j.synced_upto(), 5u);
  ASSERT_TRUE(j.append(b, 7001 * kMs));
  ASSERT_TRUE(j.sync());  // explicit
  EXPECT_EQ(j.stats().fsyncs, 3u);
  EXPECT_EQ(j.synced_upto(), 6u);
}

// The peer's leases (durable on the peer already) are appended with defer_sync: under
// kEveryBatch they wait for the interval (tick) or the next synced batch, which covers them.
TEST(Journal, DeferredAppendWaitsForTheIntervalOrTheNextSyncedBatch) {
  TempDir d;
  JournalParams p = params(d, FsyncPolicy::kEveryBatch);
  p.fsync_interval_ms = 10;
  Journal j;
  reopen(j, p);
  std::vector<LeaseEvent> b = {ev(1, 1)};
  ASSERT_TRUE(j.append(b, 100 * kMs, true));
  ASSERT_TRUE(j.append(b, 105 * kMs, true));
  EXPECT_EQ(j.stats().fsyncs, 0u);
  EXPECT_EQ(j.synced_upto(), 0u);
  ASSERT_TRUE(j.tick(109 * kMs));
  EXPECT_EQ(j.synced_upto(), 0u);
  ASSERT_TRUE(j.tick(110 * kMs));  // 10 ms after the first deferred record
  EXPECT_EQ(j.stats().fsyncs, 1u);
  EXPECT_EQ(j.synced_upto(), 2u);

  ASSERT_TRUE(j.append(b, 200 * kMs, true));
  ASSERT_TRUE(j.append(b, 201 * kMs));  // an ordinary batch: synced, the deferred one with it
  EXPECT_EQ(j.stats().fsyncs, 2u);
  EXPECT_EQ(j.synced_upto(), 4u);
}

TEST(Journal, TickCompactsWhenTheJournalGrows) {
  TempDir d;
  JournalParams p = params(d);
  p.compact_bytes = kHdr + 10 * kRec;
  Journal j;
  reopen(j, p);
  std::vector<LeaseEvent> b;
  for (uint32_t i = 0; i < 5; ++i) b.push_back(ev(i, 1));
  ASSERT_TRUE(j.append(b, 0));
  ASSERT_TRUE(j.append(b, 0));  // exactly compact_bytes: not past it
  ASSERT_TRUE(j.tick(1));
  EXPECT_EQ(j.stats().compactions, 0u);
  ASSERT_TRUE(j.append(b, 0));
  ASSERT_TRUE(j.tick(2));  // rotates at once; the snapshot lands on a later tick
  EXPECT_EQ(j.journal_bytes(), kHdr);
  ASSERT_TRUE(settle(j, 2));
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_EQ(file_size(d.file("leases.snap")), kHdr + 5 * kRec);
  EXPECT_FALSE(fs::exists(d.file("leases.journal.prev")));
}

TEST(Journal, TickCompactsOnTheInterval) {
  TempDir d;
  JournalParams p = params(d);
  p.compact_interval_ms = 60'000;
  Journal j;
  reopen(j, p);
  ASSERT_TRUE(j.tick(1000 * kMs));  // the interval starts here
  ASSERT_TRUE(j.tick(70'000 * kMs));
  EXPECT_EQ(j.stats().compactions, 0u);  // nothing written: nothing to compact
  std::vector<LeaseEvent> b = {ev(1, 1)};
  ASSERT_TRUE(j.append(b, 70'000 * kMs));
  ASSERT_TRUE(j.tick(70'001 * kMs));
  ASSERT_TRUE(settle(j, 70'001 * kMs));
  EXPECT_EQ(j.stats().compactions, 1u);
  ASSERT_TRUE(j.append(b, 80'000 * kMs));
  ASSERT_TRUE(j.tick(130'000 * kMs));  // the interval counts from the start of the last one
  EXPECT_FALSE(j.compacting());
  ASSERT_TRUE(j.tick(130'001 * kMs));
  ASSERT_TRUE(settle(j, 130'001 * kMs));
  EXPECT_EQ(j.stats().compactions, 2u);
}

TEST(Journal, CompactionMakesEverythingDurable) {
  TempDir d;
  Journal j;
  reopen(j, params(d, FsyncPolicy::kInterval));
  std::vector<LeaseEvent> b = {ev(1, 1), ev(2, 1)};
  ASSERT_TRUE(j.append(b, 0));
  EXPECT_EQ(j.synced_upto(), 0u);
  ASSERT_EQ(j.compact(), "");
  EXPECT_EQ(j.synced_upto(), 2u);
  EXPECT_EQ(j.stats().fsyncs, 0u);  // compaction's fsyncs are its own
}

// Lowers RLIMIT_FSIZE for the scope (writes past it fail with EFBIG instead of SIGXFSZ).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit r = old_;
    r.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
};

TEST(Journal, FailedWriteRollsBackToTheBatchBoundary) {
  TempDir d;
  std::vector<LeaseEvent> ok = {ev(1, 1), ev(2, 1)};
  std::vector<LeaseEvent> big;
  for (uint32_t i = 10; i < 15; ++i) big.push_back(ev(i, 1));
  {
    Journal j;
    reopen(j, params(d, FsyncPolicy::kEveryBatch));
    ASSERT_TRUE(j.append(ok, 0));
    bool appended = true;
    {
      FileSizeLimit limit(kHdr + 3 * kRec + 10);  // one more record and a bit fit
      appended = j.append(big, 0);
    }
    EXPECT_FALSE(appended);
    EXPECT_EQ(j.stats().errors, 1u);
    EXPECT_NE(j.last_error().find("cannot write 5 records to " + d.file("leases.journal")),
              std::string::npos)
        << j.last_error();
    EXPECT_NE(j.last_error().find(std::strerror(EFBIG)), std::string::npos) << j.last_error();
    EXPECT_EQ(file_size(d.file("leases.journal")), kHdr + 2 * kRec);
    EXPECT_EQ(j.written(), 2u);
    EXPECT_EQ(j.synced_upto(), 2u);
    EXPECT_EQ(j.leases(), 7u);  // the table mirrors the workers regardless
    // The lost batch is only in the table: the next batch is written, but nothing is reported
    // durable until a snapshot (started by that sync) has landed with the lost batch in it.
    std::vector<LeaseEvent> next = {ev(3, 1)};
    EXPECT_FALSE(j.append(next, 0));
    EXPECT_EQ(j.written(), 3u);
    EXPECT_EQ(j.synced_upto(), 2u);
    ASSERT_TRUE(settle(j, 0));
    EXPECT_TRUE(j.sync());
    EXPECT_EQ(j.synced_upto(), 3u);
    ok.insert(ok.end(), big.begin(), big.end());
    ok.push_back(next[0]);
  }
  {
    Journal j;
    expect_same(reopen(j, params(d)), leases_of(ok));
    EXPECT_EQ(j.stats().torn_tail_bytes, 0u);
  }
}

TEST(Journal, CompactionAfterAFailedWriteSavesTheLostBatch) {
  TempDir d;
  std::vector<LeaseEvent> big;
  for (uint32_t i = 10; i < 15; ++i) big.push_back(ev(i, 1));
  {
    Journal j;
    reopen(j, params(d));
    bool appended = true;
    {
      FileSizeLimit limit(kHdr + 10);
      appended = j.append(big, 0);
    }
    ASSERT_FALSE(appended);
    ASSERT_EQ(j.compact(), "");
  }
  Journal j;
  expect_same(reopen(j, params(d)), leases_of(big));
}

TEST(Journal, FailedCompactionLeavesTheOldStateIntact) {
  TempDir d;
  std::vector<LeaseEvent> b;
  for (uint32_t i = 0; i < 20; ++i) b.push_back(ev(i, 1));
  {
    Journal j;
    reopen(j, params(d));
    ASSERT_TRUE(j.append(b, 0));
    std::string err;
    {
      FileSizeLimit limit(kHdr + 5 * kRec);  // the snapshot cannot fit
      err = j.compact();
    }
    EXPECT_NE(err.find("cannot write " + d.file("leases.snap.tmp")), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(d.file("leases.snap.tmp")));
    EXPECT_FALSE(fs::exists(d.file("leases.snap")));
    EXPECT_EQ(j.stats().compactions, 0u);
    std::vector<LeaseEvent> more = {ev(50, 1)};
    ASSERT_TRUE(j.append(more, 0));  // the journal carries on
    b.push_back(more[0]);
  }
  Journal j;
  expect_same(reopen(j, params(d)), leases_of(b));
}

// Property: random batches over a small address space, random compactions, reopens and torn
// tails after a reopen's last batch; the replayed state always equals the reference fold of
// what was appended (minus the torn batch).
TEST(Journal, RandomHistoryMatchesTheReference) {
  TempDir d;
  std::mt19937_64 rng(12345);
  std::map<uint32_t, uint64_t> gen;
  std::vector<Lease> history;
  auto j = std::make_unique<Journal>();
  reopen(*j, params(d));
  for (int step = 0; step < 400; ++step) {
    const int op = int(rng() % 20);
    if (op == 0) {
      ASSERT_EQ(j->compact(), "");
    } else if (op == 1) {
      j = std::make_unique<Journal>();
      std::vector<Lease> got = reopen(*j, params(d));
      expect_state(fold(got), fold(history));
      ASSERT_EQ(j->leases(), fold(history).size());
    } else {
      std::vector<LeaseEvent> b(1 + rng() % 40);
      for (auto& e : b) {
        const uint32_t ip = uint32_t(rng() % 300);
        // Mostly newer generations, sometimes a stale or a repeated one.
        uint64_t& g = gen[ip];
        const uint64_t r = rng() % 10;
        const uint64_t use = r == 0 && g > 1 ? g - 1 : r == 1 ? g : ++g;
        const auto st = static_cast<LeaseState>(rng() % 4);
        e = ev(ip, use, st, static_cast<Kind>(rng() % 6));
        history.push_back(e.lease);
      }
      ASSERT_TRUE(j->append(b, uint64_t(step) * kMs));
    }
  }
  j.reset();
  Journal k;
  expect_state(fold(reopen(k, params(d))), fold(history));
}

// ---------------------------------------------------------------------------------------------
// Background compaction.

// A large table: tick() rotates and copies one slice; the writer is then held before writing.
// Appends go on, into the new journal, and are durable (synced) by its own fdatasyncs while the
// snapshot is still being written. The snapshot holds the table as of the rotation even for the
// addresses changed before their slice was copied (copy-on-write).
TEST(BackgroundCompaction, AppendsGoOnWhileALargeSnapshotIsWritten) {
  constexpr uint32_t kLeases = 200'000;
  static_assert(kLeases > 4 * Journal::kCopySlice, "the copy must take several steps");
  TempDir d;
  Gate gate;
  JournalParams p = params(d, FsyncPolicy::kEveryBatch);
  p.compact_bytes = uint64_t{1} << 20;
  GatedJournal gated(gate, p);
  Journal& j = gated.j;
  std::vector<Lease> history;
  for (uint32_t base = 0; base < kLeases; base += 8192) {
    std::vector<LeaseEvent> b;
    for (uint32_t ip = base; ip < std::min(kLeases, base + 8192); ++ip) b.push_back(ev(ip, 1));
    ASSERT_TRUE(j.append(b, 0));
    for (const auto& e : b) history.push_back(e.lease);
  }
  const std::vector<Lease> at_rotation = history;

  ASSERT_TRUE(j.tick(1));  // past compact_bytes: rotate
  EXPECT_TRUE(j.compacting());
  EXPECT_EQ(j.epoch(), 1u);
  EXPECT_EQ(j.journal_bytes(), kHdr);
  EXPECT_EQ(epoch_of(d.file("leases.journal")), 1u);
  EXPECT_EQ(epoch_of(d.file("leases.journal.prev")), 0u);
  EXPECT_EQ(file_size(d.file("leases.journal.prev")), kHdr + kLeases * kRec);
  EXPECT_EQ(j.synced_upto(), j.written());

  // The last addresses, not copied yet: their rotation-time records must reach the snapshot.
  std::vector<LeaseEvent> b2;
  for (uint32_t ip = kLeases - 100; ip < kLeases; ++ip) {
    b2.push_back(ev(ip, 2, LeaseState::kFree, Kind::kRelease));
  }
  b2.push_back(ev(kLeases + 1, 1));  // a new address: not in this snapshot
  const uint64_t before = j.written();
  ASSERT_TRUE(j.append(b2, 2));
  EXPECT_EQ(j.written(), before + b2.size());
  EXPECT_EQ(j.synced_upto(), j.written());
  for (const auto& e : b2) history.push_back(e.lease);

  // Each tick copies a slice; once the copy is whole the writer takes it (and is held).
  for (size_t i = 0; i <= kLeases / Journal::kCopySlice; ++i) ASSERT_TRUE(j.tick(3));
  ASSERT_TRUE(gate.wait_calls(1));
  EXPECT_EQ(gate.epochs(), std::vector<uint64_t>{1});
  std::vector<LeaseEvent> b3 = {ev(5, 3), ev(kLeases + 2, 1)};
  ASSERT_TRUE(j.append(b3, 4));
  for (const auto& e : b3) history.push_back(e.lease);
  EXPECT_EQ(j.synced_upto(), j.written());
  EXPECT_TRUE(j.compacting());
  EXPECT_EQ(j.stats().compactions, 0u);
  EXPECT_FALSE(fs::exists(d.file("leases.snap")));

  gate.open();
  ASSERT_TRUE(settle(j, 5));
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_FALSE(fs::exists(d.file("leases.journal.prev")));
  EXPECT_EQ(epoch_of(d.file("leases.snap")), 1u);
  EXPECT_EQ(file_size(d.file("leases.snap")), kHdr + kLeases * kRec);
  EXPECT_EQ(file_size(d.file("leases.journal")), kHdr + (b2.size() + b3.size()) * kRec);

  {
    // The snapshot alone: exactly the table at the rotation.
    TempDir s;
    fs::copy_file(d.file("leases.snap"), s.file("leases.snap"));
    Journal k;
    std::vector<Lease> got = reopen(k, params(s));
    ASSERT_EQ(got.size(), size_t{kLeases});
    expect_state(fold(got), fold(at_rotation));
  }
  j.close();
  Journal k;
  expect_state(fold(reopen(k, params(d))), fold(history));
}

// compact() finishes the compaction in flight, then compacts everything and waits for it.
TEST(BackgroundCompaction, CompactWaitsForTheOneInFlightThenCompactsEverything) {
  TempDir d;
  Gate gate;
  JournalParams p = params(d);
  p.compact_bytes = kHdr + 4 * kRec;
  GatedJournal gated(gate, p);
  Journal& j = gated.j;
  std::vector<LeaseEvent> a, b;
  for (uint32_t i = 0; i < 10; ++i) a.push_back(ev(i, 1));
  for (uint32_t i = 5; i < 15; ++i) b.push_back(ev(i, 2));
  ASSERT_TRUE(j.append(a, 0));
  ASSERT_TRUE(j.tick(1));
  ASSERT_TRUE(gate.wait_calls(1));
  ASSERT_TRUE(j.append(b, 2));
  gate.open();
  ASSERT_EQ(j.compact(), "");
  EXPECT_FALSE(j.compacting());
  EXPECT_EQ(j.stats().compactions, 2u);
  EXPECT_EQ(gate.epochs(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(j.epoch(), 2u);
  EXPECT_EQ(j.journal_bytes(), kHdr);
  EXPECT_EQ(file_size(d.file("leases.snap")), kHdr + 15 * kRec);
  EXPECT_FALSE(fs::exists(d.file("leases.journal.prev")));
}

// The writer fails: .prev and the copy stay, the error is counted, appends go on into the new
// journal (no second rotation, so never a second .prev), and the write is retried once the
// back-off (1 s on the caller's clock) passed; then .prev goes.
TEST(BackgroundCompaction, FailedSnapshotWriteKeepsPrevAndIsRetried) {
  TempDir d;
  Gate gate;
  gate.fail_with("injected: no space left");
  gate.open();
  JournalParams p = params(d, FsyncPolicy::kEveryBatch);
  p.compact_bytes = kHdr + 6 * kRec;  // a's 10 records pass it, b's 5 do not
  GatedJournal gated(gate, p);
  Journal& j = gated.j;
  std::vector<LeaseEvent> a, b;
  for (uint32_t i = 0; i < 10; ++i) a.push_back(ev(i, 1));
  for (uint32_t i = 8; i < 13; ++i) b.push_back(ev(i, 2, LeaseState::kOffered, Kind::kOffer));
  std::vector<Lease> history = leases_of(a);
  for (const auto& e : b) history.push_back(e.lease);
  ASSERT_TRUE(j.append(a, 1000 * kMs));
  ASSERT_TRUE(j.tick(1000 * kMs));
  ASSERT_TRUE(gate.wait_calls(1));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (j.stats().errors == 0 && std::chrono::steady_clock::now() < deadline) {
    j.tick(1000 * kMs);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_EQ(j.stats().errors, 1u);
  EXPECT_NE(j.last_error().find("injected: no space left"), std::string::npos) << j.last_error();
  EXPECT_NE(j.last_error().find(d.file("leases.journal.prev") + " kept"), std::string::npos)
      << j.last_error();
  EXPECT_FALSE(j.tick(1000 * kMs));  // still recovering
  EXPECT_TRUE(j.compacting());
  EXPECT_EQ(j.stats().compactions, 0u);
  EXPECT_TRUE(fs::exists(d.file("leases.journal.prev")));
  EXPECT_FALSE(fs::exists(d.file("leases.snap")));

  ASSERT_TRUE(j.append(b, 1100 * kMs));
  EXPECT_EQ(j.synced_upto(), j.written());
  EXPECT_EQ(j.epoch(), 1u);
  j.tick(1500 * kMs);
  j.tick(1999 * kMs);
  {
    // A crash now: snapshot missing, .prev at 0 (a), journal at 1 (b).
    TempDir c;
    crash_copy(d.path(), c.path());
    Journal k;
    expect_state(fold(reopen(k, params(c))), fold(history));
  }
  gate.fail_with("");
  ASSERT_TRUE(settle(j, 2000 * kMs + 1));  // the retry lands
  EXPECT_EQ(gate.calls(), 2);              // none before the back-off ended
  EXPECT_EQ(j.stats().errors, 1u);
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_FALSE(fs::exists(d.file("leases.journal.prev")));
  EXPECT_EQ(epoch_of(d.file("leases.snap")), 1u);
  EXPECT_EQ(file_size(d.file("leases.snap")), kHdr + 10 * kRec);  // the copy of the rotation
  j.close();
  Journal k;
  expect_state(fold(reopen(k, params(d))), fold(history));
}

// Every crash point of a compaction, built from a real one: A is compacted into snapshot 1,
// B goes into journal 1, a compaction rotates (B now in .prev, journal 2) and its writer is
// held, C goes into journal 2. Copies of the directory at each point are replayed.
class RotationCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    Gate gate;
    gate.open();
    JournalParams p = params(live_);
    p.compact_bytes = kHdr + 30 * kRec;  // B's 40 records pass it, C's 20 do not
    GatedJournal gated(gate, p);
    Journal& j = gated.j;
    for (uint32_t i = 0; i < 50; ++i) {
      a_.push_back(ev(i, 1, i % 5 == 0 ? LeaseState::kFree : LeaseState::kBound,
                      i % 5 == 0 ? Kind::kRelease : Kind::kBind));
    }
    for (uint32_t i = 40; i < 80; ++i) b_.push_back(ev(i, 2));
    for (uint32_t i = 70; i < 90; ++i) c_.push_back(ev(i, 3, LeaseState::kOffered, Kind::kOffer));
    ASSERT_TRUE(j.append(a_, 0));
    ASSERT_EQ(j.compact(), "");  // snapshot 1, journal 1
    ASSERT_TRUE(j.append(b_, 0));
    gate.shut();
    ASSERT_TRUE(j.tick(1));  // rotates: .prev 1, journal 2
    ASSERT_TRUE(gate.wait_calls(2));
    ASSERT_TRUE(j.append(c_, 2));
    crash_copy(live_.path(), held_.path());  // snapshot 1, .prev 1, journal 2
    gate.open();
    ASSERT_TRUE(settle(j, 3));
    crash_copy(live_.path(), landed_.path());  // snapshot 2, journal 2
    fs::copy_file(held_.file("leases.journal.prev"), landed_.file("prev.saved"));
    EXPECT_EQ(epoch_of(held_.file("leases.snap")), 1u);
    EXPECT_EQ(epoch_of(held_.file("leases.journal.prev")), 1u);
    EXPECT_EQ(epoch_of(held_.file("leases.journal")), 2u);
    EXPECT_EQ(epoch_of(landed_.file("leases.snap")), 2u);
    EXPECT_FALSE(fs::exists(landed_.file("leases.journal.prev")));
  }
  std::map<uint32_t, Lease> state(bool with_c = true) const {
    std::vector<Lease> h = leases_of(a_);
    for (const auto& e : b_) h.push_back(e.lease);
    if (with_c) {
      for (const auto& e : c_) h.push_back(e.lease);
    }
    return fold(h);
  }
  // Replays `d`, expects the whole state, and again after a reopen (the compaction replay
  // resumed, if any, landed on the way: close() waits for it).
  void expect_restored(const TempDir& d, const std::map<uint32_t, Lease>& want) {
    {
      Journal j;
      std::vector<Lease> got = reopen(j, params(d));
      expect_state(fold(got), want);
      std::vector<LeaseEvent> more = {ev(500, 1)};
      ASSERT_TRUE(j.append(more, 10));
    }
    EXPECT_FALSE(fs::exists(d.file("leases.journal.prev")));
    EXPECT_FALSE(fs::exists(d.file("leases.snap.tmp")));
    EXPECT_FALSE(fs::exists(d.file("leases.journal.new")));
    std::map<uint32_t, Lease> with_more = want;
    with_more[500] = make_lease(500, 1);
    Journal j;
    expect_state(fold(reopen(j, params(d))), with_more);
    EXPECT_EQ(j.stats().errors, 0u);
  }
  // Replays the landed snapshot with a .prev left beside it: the snapshot's 80 and the
  // journal's records only (not .prev's again), no compaction started, .prev removed.
  void expect_prev_dropped() {
    Journal j;
    std::vector<Lease> got = reopen(j, params(landed_));
    EXPECT_EQ(got.size(), 80u + c_.size());
    expect_state(fold(got), state());
    EXPECT_FALSE(j.compacting());
    EXPECT_FALSE(fs::exists(landed_.file("leases.journal.prev")));
    j.close();
    expect_restored(landed_, state());
  }
  TempDir live_, held_, landed_;
  std::vector<LeaseEvent> a_, b_, c_;
};

// Crash before the snapshot's rename: snapshot 1, .prev 1, journal 2: all three replayed, in
// that order, and the compaction redone from the table as of the end of .prev.
TEST_F(RotationCrash, BeforeTheSnapshotLandedReplaysPrevThenJournal) {
  Journal j;
  std::vector<Lease> got = reopen(j, params(held_));
  ASSERT_EQ(got.size(), a_.size() + b_.size() + c_.size());
  expect_state(fold(got), state());
  EXPECT_EQ(j.epoch(), 2u);
  EXPECT_TRUE(j.compacting());  // resumed
  ASSERT_TRUE(settle(j, 1));
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_FALSE(fs::exists(held_.file("leases.journal.prev")));
  EXPECT_EQ(epoch_of(held_.file("leases.snap")), 2u);
  // That snapshot is S + .prev, not the journal's C: the journal continues it.
  EXPECT_EQ(file_size(held_.file("leases.snap")), kHdr + 80 * kRec);
  EXPECT_EQ(file_size(held_.file("leases.journal")), kHdr + c_.size() * kRec);
  j.close();
  expect_restored(held_, state());
}

TEST_F(RotationCrash, BeforeTheSnapshotLandedWithALeftoverTmp) {
  fs::copy_file(held_.file("leases.snap"), held_.file("leases.snap.tmp"));
  fs::resize_file(held_.file("leases.snap.tmp"), kHdr + 3 * kRec + 7);
  set_epoch(held_.file("leases.snap.tmp"), 2);
  expect_restored(held_, state());
}

// Crash after the rename, before .prev went (or its unlink was lost): .prev is stale.
TEST_F(RotationCrash, AfterTheSnapshotLandedPrevIsStale) {
  fs::copy_file(landed_.file("prev.saved"), landed_.file("leases.journal.prev"));
  expect_prev_dropped();
}

TEST_F(RotationCrash, AfterTheSnapshotLanded) {
  expect_restored(landed_, state());
}

// Crash in the rotation between link and rename: .prev is a second name of the journal.
TEST_F(RotationCrash, BetweenLinkAndRenamePrevIsTheJournal) {
  fs::create_hard_link(landed_.file("leases.journal"), landed_.file("leases.journal.prev"));
  expect_prev_dropped();
}

// Crash in the rotation before the rename: a complete or partial leases.journal.new.
TEST_F(RotationCrash, BeforeTheRenameTheNewJournalIsIgnored) {
  fs::copy_file(held_.file("leases.journal"), landed_.file("leases.journal.new"));
  set_epoch(landed_.file("leases.journal.new"), 3);
  expect_restored(landed_, state());
}

// No journal next to a needed .prev (not a state a rotation leaves; a lost file): the journal
// is restarted at .prev's epoch + 1, what .prev holds is restored.
TEST_F(RotationCrash, PrevWithoutAJournal) {
  fs::remove(held_.file("leases.journal"));
  Journal j;
  std::vector<Lease> got = reopen(j, params(held_));
  expect_state(fold(got), state(false));
  EXPECT_EQ(j.epoch(), 2u);
  EXPECT_EQ(file_size(held_.file("leases.journal")), kHdr);
  j.close();
  expect_restored(held_, state(false));
}

TEST_F(RotationCrash, PrevWithoutItsSnapshotIsAnError) {
  fs::remove(held_.file("leases.snap"));
  Journal j;
  std::string err;
  reopen(j, params(held_), &err);
  EXPECT_NE(err.find(held_.file("leases.journal.prev") + " continues snapshot epoch 1"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("is missing"), std::string::npos) << err;
}

TEST_F(RotationCrash, JournalThatDoesNotFollowPrevIsAnError) {
  set_epoch(held_.file("leases.journal"), 3);
  Journal j;
  std::string err;
  reopen(j, params(held_), &err);
  EXPECT_NE(err.find(held_.file("leases.journal") + " is at epoch 3"), std::string::npos) << err;
}

// A torn .prev (its fdatasync failed before a crash): replay takes what is valid, counts the
// rest, leaves the file alone (it goes when the resumed compaction lands) and goes on with the
// journal.
TEST_F(RotationCrash, TornPrevIsReadUpToTheTear) {
  fs::resize_file(held_.file("leases.journal.prev"), kHdr + 30 * kRec + 11);
  Journal j;
  std::vector<Lease> got = reopen(j, params(held_));
  EXPECT_EQ(got.size(), a_.size() + 30 + c_.size());
  EXPECT_EQ(j.stats().torn_tail_bytes, 11u);
  std::vector<Lease> h = leases_of(a_);
  for (size_t i = 0; i < 30; ++i) h.push_back(b_[i].lease);
  for (const auto& e : c_) h.push_back(e.lease);
  expect_state(fold(got), fold(h));
}

// Property: random batches over a table large enough for a copy of several slices, compacted
// in the background on a small compact_bytes, with random reopens and explicit compactions;
// at random moments the directory is copied as a crash would leave it and replayed: it must
// give exactly the state of everything appended so far. (kNever: nothing waits for the disk,
// the copies see what was written.)
TEST(BackgroundCompaction, RandomCrashCopiesMatchTheReference) {
  constexpr uint32_t kSpace = 3 * Journal::kCopySlice + 1000;
  TempDir d;
  std::mt19937_64 rng(777);
  std::map<uint32_t, uint64_t> gen;
  std::map<uint32_t, Lease> want;
  JournalParams p = params(d);
  p.compact_bytes = kHdr + 4000 * kRec;
  auto j = std::make_unique<Journal>();
  reopen(*j, p);
  auto add = [&](const LeaseEvent& e) {
    auto it = want.find(e.lease.ip);
    if (it == want.end() || e.lease.generation >= it->second.generation) want[e.lease.ip] = e.lease;
  };
  {
    std::vector<LeaseEvent> fill;
    for (uint32_t ip = 0; ip < kSpace; ++ip) {
      fill.push_back(ev(ip, ++gen[ip]));
      add(fill.back());
    }
    ASSERT_TRUE(j->append(fill, 0));
  }
  uint64_t now = 0;
  int crashes = 0, compactions = 0;
  for (int step = 0; step < 400; ++step) {
    now += kMs;
    const int op = int(rng() % 40);
    if (op == 0) {
      ASSERT_EQ(j->compact(), "");
    } else if (op == 1) {
      compactions += int(j->stats().compactions);
      j = std::make_unique<Journal>();
      std::vector<Lease> got = reopen(*j, p);
      expect_state(fold(got), want);
    } else if (op < 6) {
      TempDir c;
      crash_copy(d.path(), c.path());
      Journal k;
      expect_state(fold(reopen(k, params(c))), want);
      ++crashes;
    } else if (op < 14) {
      j->tick(now);
    } else {
      std::vector<LeaseEvent> b(1 + rng() % 300);
      for (auto& e : b) {
        // Half the time the table's upper part, which the copy reaches last.
        const uint32_t ip = uint32_t(rng() % 2 ? kSpace - 1 - rng() % 5000 : rng() % (kSpace + 50));
        uint64_t& g = gen[ip];
        const uint64_t r = rng() % 10;
        const uint64_t use = r == 0 && g > 1 ? g - 1 : r == 1 && g > 0 ? g : ++g;
        e = ev(ip, use, static_cast<LeaseState>(rng() % 4), static_cast<Kind>(rng() % 6));
        add(e);
      }
      ASSERT_TRUE(j->append(b, now));
    }
    if (HasFatalFailure() || HasFailure()) break;
  }
  compactions += int(j->stats().compactions);
  EXPECT_GT(compactions, 5);
  EXPECT_GT(crashes, 20);
  j.reset();
  Journal k;
  expect_state(fold(reopen(k, p)), want);
}

// ---------------------------------------------------------------------------------------------
// Failed fsyncs and what synced_upto() may claim (fsync_test_hook).

// After a failed fdatasync the journal cannot vouch for its records: the next batch starts a
// compaction instead of fdatasyncing again (a success would not bring back dropped pages), and
// synced_upto() stays put until the snapshot landed, although the new journal's batches are
// fdatasynced meanwhile; then it covers those too.
TEST(FsyncFailure, SyncedUptoWaitsForTheSnapshotAfterAFailedFsync) {
  TempDir d;
  Gate gate;
  FsyncFaults faults;
  JournalParams p = params(d, FsyncPolicy::kEveryBatch);
  p.fsync_test_hook = faults.hook();
  GatedJournal gated(gate, p);
  Journal& j = gated.j;
  std::vector<LeaseEvent> a = {ev(1, 1), ev(2, 1)}, b = {ev(3, 1)}, c = {ev(4, 1)}, e = {ev(5, 1)},
                          f = {ev(1, 2)};
  ASSERT_TRUE(j.append(a, 0));
  EXPECT_EQ(j.synced_upto(), 2u);
  faults.fail("journal");
  EXPECT_FALSE(j.append(b, 0));
  EXPECT_NE(j.last_error().find("cannot fdatasync " + d.file("leases.journal")), std::string::npos)
      << j.last_error();
  EXPECT_EQ(j.written(), 3u);
  EXPECT_EQ(j.synced_upto(), 2u);

  const int journal_syncs = faults.seen("journal");
  EXPECT_FALSE(j.append(c, 0));  // written to the old journal, then it is rotated out
  EXPECT_EQ(faults.seen("journal"), journal_syncs);
  EXPECT_TRUE(j.compacting());
  EXPECT_EQ(j.epoch(), 1u);
  EXPECT_EQ(j.synced_upto(), 2u);
  ASSERT_TRUE(gate.wait_calls(1));

  EXPECT_FALSE(j.append(e, 0));  // fdatasynced into the new journal, not yet claimable
  EXPECT_EQ(faults.seen("journal"), journal_syncs + 1);
  EXPECT_EQ(j.written(), 5u);
  EXPECT_EQ(j.synced_upto(), 2u);
  EXPECT_FALSE(j.sync());

  gate.open();
  ASSERT_TRUE(settle(j, 0));
  EXPECT_EQ(j.synced_upto(), 5u);  // b and c by the snapshot, e by its fdatasync
  EXPECT_TRUE(j.sync());
  EXPECT_TRUE(j.append(f, 0));
  EXPECT_EQ(j.synced_upto(), 6u);
  EXPECT_EQ(j.stats().compactions, 1u);
  j.close();
  std::vector<Lease> history;
  for (auto* batch : {&a, &b, &c, &e, &f}) {
    for (const auto& x : *batch) history.push_back(x.lease);
  }
  Journal k;
  expect_state(fold(reopen(k, params(d))), fold(history));
}

// The rotation's directory fsync fails: the new journal's name may not be durable, so its
// records are written and fdatasynced but not claimed, and the snapshot waits; a retry of the
// directory fsync (once a second) releases both.
TEST(FsyncFailure, FailedDirectoryFsyncAfterTheRotationHoldsTheNewJournal) {
  TempDir d;
  Gate gate;
  gate.open();
  FsyncFaults faults;
  JournalParams p = params(d, FsyncPolicy::kEveryBatch);
  p.compact_bytes = kHdr + 2 * kRec;
  p.fsync_test_hook = faults.hook();
  GatedJournal gated(gate, p);
  Journal& j = gated.j;
  std::vector<LeaseEvent> a = {ev(1, 1), ev(2, 1), ev(3, 1)}, b = {ev(4, 1)}, c = {ev(1, 2)};
  ASSERT_TRUE(j.append(a, 1000 * kMs));
  faults.fail("directory");
  EXPECT_FALSE(j.tick(1000 * kMs));
  EXPECT_NE(j.last_error().find("cannot fsync directory " + d.path() + " after rotating"),
            std::string::npos)
      << j.last_error();
  EXPECT_TRUE(j.compacting());
  EXPECT_EQ(j.epoch(), 1u);
  EXPECT_EQ(j.synced_upto(), 3u);  // durable before the rotation (in .prev, fdatasynced)

  EXPECT_FALSE(j.append(b, 1000 * kMs));
  EXPECT_EQ(j.written(), 4u);
  EXPECT_EQ(j.synced_upto(), 3u);
  EXPECT_FALSE(j.tick(1999 * kMs));  // no retry before a second passed
  EXPECT_EQ(faults.seen("directory"), 1);
  EXPECT_EQ(j.synced_upto(), 3u);
  EXPECT_EQ(gate.calls(), 0);  // the snapshot was not handed to the writer
  EXPECT_FALSE(fs::exists(d.file("leases.snap")));

  ASSERT_TRUE(settle(j, 2000 * kMs));
  EXPECT_EQ(faults.seen("directory"), 2);
  EXPECT_EQ(j.synced_upto(), 4u);
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_TRUE(j.append(c, 2000 * kMs));
  EXPECT_EQ(j.synced_upto(), 5u);
  j.close();
  std::vector<Lease> history = leases_of(a);
  history.push_back(b[0].lease);
  history.push_back(c[0].lease);
  Journal k;
  expect_state(fold(reopen(k, params(d))), fold(history));
}

// A rotation that fails before its rename changes nothing: no .prev, the journal goes on, the
// next attempt (a second later) rotates.
TEST(FsyncFailure, FailedRotationLeavesTheJournalInPlace) {
  TempDir d;
  FsyncFaults faults;
  JournalParams p = params(d, FsyncPolicy::kEveryBatch);
  p.compact_bytes = kHdr + 2 * kRec;
  p.fsync_test_hook = faults.hook();
  Journal j;
  reopen(j, p);
  std::vector<LeaseEvent> a = {ev(1, 1), ev(2, 1), ev(3, 1)}, b = {ev(4, 1)};
  ASSERT_TRUE(j.append(a, 1000 * kMs));
  faults.fail("new journal");
  EXPECT_FALSE(j.tick(1000 * kMs));
  EXPECT_NE(j.last_error().find("cannot fdatasync " + d.file("leases.journal.new")),
            std::string::npos)
      << j.last_error();
  EXPECT_FALSE(j.compacting());
  EXPECT_EQ(j.epoch(), 0u);
  EXPECT_FALSE(fs::exists(d.file("leases.journal.new")));
  EXPECT_FALSE(fs::exists(d.file("leases.journal.prev")));
  ASSERT_TRUE(j.append(b, 1500 * kMs));
  EXPECT_EQ(j.synced_upto(), 4u);
  EXPECT_TRUE(j.tick(1999 * kMs));  // journal past compact_bytes, but backing off
  EXPECT_FALSE(j.compacting());
  EXPECT_TRUE(j.tick(2000 * kMs));
  ASSERT_TRUE(settle(j, 2000 * kMs));
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_EQ(j.epoch(), 1u);
  j.close();
  std::vector<Lease> history = leases_of(a);
  history.push_back(b[0].lease);
  Journal k;
  expect_state(fold(reopen(k, params(d))), fold(history));
}

}  // namespace
}  // namespace dhcp
