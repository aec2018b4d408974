// Journal on a real temporary directory: round trip, generation rules, torn and corrupt tails,
// corrupt snapshots, compaction and every crash point of it, the directory lock, fsync policies
// on a fake clock, and a failing write (RLIMIT_FSIZE). A property test appends random batches,
// compacting and reopening at random, against a reference map written here.

#include "dhcp/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
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
  ASSERT_TRUE(j.tick(2));
  EXPECT_EQ(j.stats().compactions, 1u);
  EXPECT_EQ(j.journal_bytes(), kHdr);
  EXPECT_EQ(file_size(d.file("leases.snap")), kHdr + 5 * kRec);
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
  EXPECT_EQ(j.stats().compactions, 1u);
  ASSERT_TRUE(j.append(b, 80'000 * kMs));
  ASSERT_TRUE(j.tick(130'000 * kMs));
  EXPECT_EQ(j.stats().compactions, 1u);
  ASSERT_TRUE(j.tick(130'001 * kMs));
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
    std::vector<LeaseEvent> next = {ev(3, 1)};
    ASSERT_TRUE(j.append(next, 0));
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

}  // namespace
}  // namespace dhcp
