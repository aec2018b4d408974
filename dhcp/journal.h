#pragma once
// The durable lease journal: an append-only log of LeaseEvents, compacted into a snapshot, and
// replayed at start. Pure file I/O (POSIX), no DPDK. Used by one thread, the journal thread, so
// its state holds no locks; nothing here may be called from a worker (every call may block on
// disk). A compaction's snapshot is written by a helper thread the Journal owns (the snapshot
// writer), so compacting never stops appends; see "Compaction" below.
//
// ## On-disk format (version 1)
//
// A directory (JournalParams::dir) holds:
//   lock                 flock(LOCK_EX) by the owner for as long as it runs; holds the owner's
//                        pid in decimal (for the error message a second daemon gets)
//   leases.snap          snapshot: the latest state of every address as of its epoch's start
//   leases.journal       journal: the changes since then, in the order they were appended
//   leases.journal.prev  the previous journal, kept while the snapshot that replaces it is being
//                        written (removed once it landed; a crash may leave it behind)
//   leases.journal.new   the next journal while a rotation prepares it; never read (removed at
//                        open)
//   leases.snap.tmp      a snapshot being written; never read (removed at open)
// (With other names than the defaults: JOURNAL.prev, JOURNAL.new, SNAPSHOT.tmp, JOURNAL.lock.)
// Every data file is one header followed by fixed-size records; .prev and .new are journals
// (kind 1). All integers little-endian.
//
// File header, 48 bytes:
//   off size field
//    0   4   magic       "TDMJ" (54 44 4D 4A)
//    4   2   version     1
//    6   1   kind        1 = journal, 2 = snapshot
//    7   1   reserved    0
//    8   4   record_size 80
//   12   4   reserved    0
//   16   8   created_ns  CLOCK_REALTIME when the file (or this journal generation) was started
//   24   8   epoch       compaction counter; see below
//   32   8   count       snapshot: number of records that follow; journal: 0
//   40   4   reserved    0
//   44   4   crc         CRC32C of bytes [0, 44)
//
// Record, 80 bytes (one Lease after a change, plus the kind of that change):
//   off size field
//    0   4   ip          Lease::ip (host-order value, stored little-endian)
//    4   4   pool        Lease::pool
//    8   8   expires_ns  Lease::expires_ns
//   16   8   updated_ns  Lease::updated_ns
//   24   8   generation  Lease::generation
//   32   6   mac         Lease::mac (wire order)
//   38   1   kind        LeaseEvent::Kind: 0 offer, 1 bind, 2 release, 3 decline, 4 expire,
//                        5 offer-expired (snapshot: the kind of the address's last event)
//   39   1   state       LeaseState: 0 free, 1 offered, 2 bound, 3 declined
//   40   1   client_len  ClientKey::len, 0..32
//   41  32   client      ClientKey::bytes, all 32 (bytes past client_len are stored as held)
//   73   3   reserved    0
//   76   4   crc         CRC32C of bytes [0, 76)
// CRC32C is the Castagnoli CRC (reflected polynomial 0x82F63B78, initial value and final xor
// 0xFFFFFFFF; "123456789" -> 0xE3069283), the one iSCSI/ext4/SSE4.2 use. An all-zero record
// (what a crash can leave past the end of a file) never passes it.
//
// Free leases (after kRelease/kExpire) are journaled and kept in the snapshot like any other:
// they carry the client for address affinity.
//
// Epochs tie a journal to the snapshot it continues: a snapshot with epoch N holds exactly the
// state after every journal of epoch < N, a journal with epoch N the changes after snapshot N.
//
// ## Compaction
// With the journal at epoch N (the snapshot at N, no .prev):
//   1. Rotate (journal thread, a few ms): fdatasync the journal; write leases.journal.new, a
//      header with epoch N+1, and fdatasync it; link leases.journal to leases.journal.prev;
//      rename .new over leases.journal (atomic: the name always holds a complete journal);
//      fsync the directory. The in-memory table as of this point is what snapshot N+1 holds:
//      it is copied in slices over the next appends and ticks, copy-on-write (an address
//      changed before its slice is copied keeps its old record in the copy).
//   2. Write (snapshot writer): sort the copy by arrival, write leases.snap.tmp with epoch N+1,
//      fsync it, rename it over leases.snap, fsync the directory. Starts only once 1's
//      directory fsync succeeded, so a snapshot N+1 on disk implies a durable journal N+1.
//   3. Land (journal thread, when it sees 2 done): unlink leases.journal.prev, unsynced (a
//      surviving .prev is older than the snapshot: stale).
// A failed write (2) keeps .prev and the copy and is retried with both at most once a second;
// no new rotation starts before it landed, so there is never more than one .prev.
// At replay (no snapshot = epoch 0; S = the snapshot's epoch):
//   .prev, if present:
//     the journal's own file (same inode)  crash between link and rename in 1: removed
//     epoch <  S      crash after 2's rename: stale (all in the snapshot), removed
//     epoch == S      crash before 2's rename: replayed after the snapshot, the journal must be
//                     at S+1 and is replayed after it; step 2 is redone from the table as of
//                     the end of .prev (in the background, from the first append()/tick())
//     epoch >  S      the snapshot it continues is gone: error
//   the journal, against S (or S+1 after a needed .prev):
//     equal           replayed
//     lower           stale (crash of a compaction written by an older version: the records
//                     are all in the snapshot): skipped and restarted; after a .prev: error
//     higher          the snapshot it continues is gone: error
//     no header       a crash while it was first created: restarted empty
// Journal replay stops at the first record that is incomplete or fails its CRC or field checks
// (a torn write); the journal is truncated there (a .prev is only read), the dropped bytes
// counted. A snapshot must be exactly header + count records, each valid, or replay fails.
// Crash points of a compaction and what replay sees (S snapshot, P .prev, J journal):
//   in 1 before the link (maybe a .new)   S N, J N                  S, J (.new removed)
//   in 1 between link and rename          S N, P = J (N)            P removed; S, J
//   in 1 after the rename, in 2 before    S N, P N, J N+1           S, P, J; 2 redone
//     its rename (maybe a .tmp)                                     (.tmp removed)
//   in 2 after the rename, in 3           S N+1, P N, J N+1         P removed; S, J
//   after 3                               S N+1, J N+1              S, J
// Until a directory fsync, a crash may also lose the latest links and renames (newest first, as
// journaling file systems order them); every state that leaves is one of the above.
//
// ## Durability
// append() issues one pwrite() per batch; durability comes from fdatasync() per FsyncPolicy.
// synced_upto() counts the records known durable, so a caller doing group commit tags each batch
// with written() after append() and releases the batch's replies once synced_upto() reaches it.
// After a failed fsync the kernel may have dropped the dirty pages, and after a failed write the
// batch never reached the file, so the journal can no longer vouch for what it holds: the next
// sync()/tick() starts a compaction instead (the in-memory table holds
// every lease, and a fresh snapshot makes them durable again). The records before its rotation
// count as durable once that snapshot landed, the journal's later ones by its own fdatasyncs.
// If the rotation's directory fsync fails, appends go on into the new journal but count as
// durable only once a directory fsync (retried once a second) succeeds: until then a crash may
// lose the new journal's name.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dhcp/leases.h"

namespace dhcp {

// Config: fsync = "never" | "interval" | "batch".
enum class FsyncPolicy : uint8_t {
  kNever,       // leave it to the kernel; synced_upto() == written()
  kInterval,    // fdatasync once the oldest unsynced record is fsync_interval_ms old
  kEveryBatch,  // fdatasync after every append() (group commit)
};

struct JournalParams {
  std::string dir;  // created if missing (mode 0750); holds leases.snap and leases.journal
  // File names inside `dir` (tandemd: the basenames of dhcp.leases.journal and .snapshot, which
  // must share a directory: the snapshot's rename is made durable by an fsync of it). Next to
  // them: JOURNAL.prev and JOURNAL.new (compaction), SNAPSHOT.tmp, and the lock file (JOURNAL.lock
  // with other names than the defaults).
  std::string journal_file = "leases.journal";
  std::string snapshot_file = "leases.snap";
  FsyncPolicy fsync = FsyncPolicy::kEveryBatch;
  uint32_t fsync_interval_ms = 1000;            // kInterval
  uint64_t compact_bytes = uint64_t{64} << 20;  // tick() compacts once the journal is this big
  uint64_t compact_interval_ms = 0;  // ... or this long after the last compaction (0 = never)
  // Tests only (empty in service): called on the snapshot writer before each attempt to write
  // snapshot `epoch`; a non-empty result fails that attempt with it, nothing written. Lets a
  // test hold a compaction in flight or make it fail.
  std::function<std::string(uint64_t epoch)> snapshot_test_hook;
  // Tests only (empty in service): called before each fsync the journal thread issues outside
  // replay, with what it syncs ("journal", "new journal", "directory"); a non-zero result fails
  // that fsync with it as the errno.
  std::function<int(const std::string& what)> fsync_test_hook;
};

struct JournalStats {
  // Upper bounds (µs) of the fsync latency buckets; one more bucket (+Inf) follows.
  static constexpr std::array<uint32_t, 12> kFsyncBucketsUs{
      100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

  uint64_t records_written = 0;  // records in successful append() writes
  uint64_t bytes_written = 0;    // their bytes
  uint64_t batches = 0;          // successful append() writes
  uint64_t fsyncs = 0;           // journal fdatasyncs (compaction's own fsyncs are not counted)
  uint64_t compactions = 0;      // completed compactions
  uint64_t restored = 0;         // records passed to replay()'s callback
  uint64_t torn_tail_bytes = 0;  // journal bytes dropped by replay (torn or corrupt tail)
  uint64_t errors = 0;           // failed system calls and refused calls (see last_error())
  uint64_t last_fsync_ns = 0;    // duration of the last journal fsync
  uint64_t max_fsync_ns = 0;     // longest journal fsync
  uint64_t fsync_ns_sum = 0;     // total time in journal fsyncs (Prometheus histogram _sum)
  // Journal fsyncs per latency bucket, NOT cumulative (prometheus-cpp's ObserveMultiple takes
  // exactly this); index i counts latencies <= kFsyncBucketsUs[i] and above the bound before,
  // the last one those above every bound. Their sum == fsyncs.
  std::array<uint64_t, kFsyncBucketsUs.size() + 1> fsync_buckets{};
};

// CRC32C (Castagnoli) of `data`, continuing from `crc` (0 to start). Software, slicing-by-8.
uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0) noexcept;

class Journal {
 public:
  static constexpr size_t kHeaderSize = 48;
  static constexpr size_t kRecordSize = 80;
  static constexpr uint16_t kVersion = 1;

  Journal();
  ~Journal();  // close()
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Journal thread, at start. Creates the directory and the journal file if missing, takes an
  // exclusive flock on dir/lock so two daemons never share the directory, removes a leftover
  // leases.snap.tmp and leases.journal.new. "" or an error naming the path and strerror. A few
  // syscalls.
  std::string open(const JournalParams& p);

  // Journal thread, once, after open() and before anything else. Reads the snapshot, then a
  // leases.journal.prev that is still needed, then the journal, calling f for every record in
  // file order (so the newest state of an address comes last; a consumer that keeps the highest
  // generation, like LeaseStore::restore, is exact). A torn or corrupt journal tail ends that
  // file's replay: a journal's is truncated away, and counted (stats().torn_tail_bytes), never
  // an error. A corrupt snapshot, an unreadable file or a journal whose snapshot is missing is
  // an error (returned; nothing should start then). Also rebuilds the in-memory table the
  // snapshots are written from; after a needed .prev, the compaction that crashed is resumed by
  // the first append()/tick(). O(file size).
  std::string replay(const std::function<void(const Lease&)>& f);

  // Journal thread, per batch of worker events. Encodes them into one buffer, writes it with one
  // pwrite() (looping on partial writes and EINTR), then fsyncs per policy (now_ns: the caller's
  // monotonic clock, for kInterval), then advances a compaction in flight by one step (a copy
  // slice, see tick()). False on an I/O error (stats().errors, last_error()); the file is then
  // rolled back to the previous batch boundary. kEveryBatch: also false while the batch is not
  // durable because an earlier failure is still being recovered from (sync()). The in-memory
  // table (address -> latest Lease by generation; same generation: the later one) takes the
  // events in any case: it mirrors the workers. A failed write is recovered like a failed fsync:
  // the next sync()/tick() starts a compaction, which makes the lost batch durable, and until it
  // has landed no later batch is reported durable either. Cost: well under 1 µs per event (encode,
  // CRC, table) plus the write, any fsync and any copy slice. defer_sync: under kEveryBatch, fsync
  // this batch as kInterval would (by tick() or the next synced append) — for records that are
  // durable elsewhere already (the peer's leases).
  bool append(std::span<const LeaseEvent> events, uint64_t now_ns, bool defer_sync = false);

  // Journal thread. fdatasync now, whatever the policy; a cheap no-op when nothing written is
  // unsynced. True when synced_upto() == written() afterwards. After an earlier fsync failure,
  // starts a compaction instead (see Durability above) and is false until it landed; never
  // waits for the snapshot writer.
  bool sync();

  // Journal thread, every few ms. kInterval: fsync when due. Starts a compaction when the
  // journal passed compact_bytes or compact_interval_ms elapsed since the last one started (or
  // to recover from an I/O error; after a failure, at most once a second): rotates the journal
  // (a few fsyncs). Then advances a compaction in flight by one step: copies one slice of the
  // table (kCopySlice addresses, ~1 ms with its page faults), hands a finished copy to the writer,
  // lands a written snapshot (an unlink) or retries a failed one (at most once a second). False
  // if any of that failed, or while an earlier failure is still being recovered from. Never
  // waits for the snapshot writer.
  bool tick(uint64_t now_ns);

  // Journal thread: compact now and wait. Completes a compaction in flight, then compacts the
  // whole table (rotation, copy, snapshot) and waits for it to land, so on "" every lease is in
  // leases.snap and the journal is empty. Blocks for the time to write and fsync 80 bytes per
  // address: for tests and tools; in service, tick() compacts without stopping appends.
  // "" or an error naming the path and strerror.
  std::string compact();

  // Journal thread, at shutdown (also the destructor). Completes a compaction in flight (waits
  // for its snapshot; one attempt), fsyncs unless kNever, stops the snapshot writer, releases
  // the lock.
  void close();

  uint64_t written() const { return written_; }         // records written by this process
  uint64_t synced_upto() const { return synced_; }      // ... of which known durable
  const JournalStats& stats() const { return stats_; }  // journal thread, or after join
  const std::string& last_error() const { return error_; }
  size_t leases() const { return entries_.size(); }           // addresses in the in-memory table
  uint64_t journal_bytes() const { return end_; }             // current journal file size
  uint64_t epoch() const { return epoch_; }                   // epoch of the current journal
  bool compacting() const { return phase_ != Phase::kNone; }  // a compaction is in flight

  // Addresses copied per step of a compaction in flight (88 bytes each: ~1.4 MB).
  static constexpr size_t kCopySlice = 16384;

 private:
  using Record = std::array<uint8_t, kRecordSize>;
  struct Entry {
    uint64_t seq;  // order in which this state arrived: the snapshot is written in this order
    Record rec;    // encoded, CRC included: compaction is a copy
  };
  // The snapshot writer thread and what the journal thread shares with it (journal.cpp).
  struct Writer;

  enum class Phase : uint8_t {
    kNone,     // no compaction in flight
    kCopying,  // rotated; the table's state at the rotation is being copied (copy_next_)
    kWriting,  // the copy is the snapshot writer's until it reports
    kFailed,   // the write failed: copy and .prev kept, retried after retry_ns_
  };

  bool fail(std::string msg);                  // sets error_, counts, returns false
  const std::string& failed(std::string msg);  // ... returns error_
  void apply(const uint8_t* rec);
  void preserve(size_t i);        // copy-on-write: entry i into the copy before it changes
  std::string restart_journal();  // "" or why not (uncounted)
  void see_clock(uint64_t now_ns);
  bool fdatasync_journal();
  int sync_fd(int fd, bool data_only, const char* what);  // 0 or errno (fsync_test_hook first)
  bool dir_sync_retry(bool now);  // blocked_: another directory fsync (once a second unless now)
  void update_synced();
  bool start_compaction();             // rotate and start the copy
  bool step_compaction(size_t slice);  // copy, hand over, land or retry
  bool poll_writer();                  // kWriting: land or note the failure if it reported
  void post_copy();                    // the finished copy to the snapshot writer
  std::string finish_compaction();     // the one in flight, waiting: "" once it landed
  void drop_copy();
  void grow_index();
  std::string replay_snapshot(uint64_t* epoch);
  std::string replay_prev(uint64_t snap_epoch, const std::function<void(const Lease&)>& f,
                          bool* needed);
  std::string replay_journal(uint64_t epoch, bool after_prev,
                             const std::function<void(const Lease&)>& f);
  std::string replay_records(int fd, const std::string& path, uint64_t size,
                             const std::function<void(const Lease&)>& f, uint64_t* good);

  JournalParams params_;
  std::string journal_path_, prev_path_, new_path_, snap_path_, tmp_path_, lock_path_;
  int dir_fd_ = -1, lock_fd_ = -1, jfd_ = -1;
  bool replayed_ = false;
  bool must_compact_ = false;  // an fsync or a rollback of this journal failed: only a snapshot
                               // is trustworthy for its records
  bool blocked_ = false;       // the last rotation's directory fsync failed: the new journal's name
                               // may not be durable; its records do not count as synced
  bool base_ok_ = true;        // every record before this journal (written_ < j_start_) is durable
  uint64_t epoch_ = 0;
  uint64_t end_ = 0;  // journal size: where the next batch goes
  uint64_t written_ = 0, synced_ = 0;
  uint64_t j_start_ = 0;            // written_ when this journal file started
  uint64_t j_synced_ = 0;           // written_ at its last good fdatasync (>= j_start_)
  bool dirty_ = false;              // bytes written since the last fdatasync
  uint64_t first_unsynced_ns_ = 0;  // now_ns of the first append since then
  bool have_clock_ = false;
  uint64_t last_compact_ns_ = 0;  // now_ns_ when the last compaction started
  uint64_t now_ns_ = 0;           // the caller's clock, as of the last append()/tick()
  uint64_t retry_ns_ = 0;         // no recovery attempt before this after a failure
  uint64_t seq_ = 0;
  std::vector<Entry> entries_;   // dense, one per address, never shrinks (free leases stay)
  std::vector<uint32_t> index_;  // open addressing: entry index + 1, 0 = empty; load <= 1/2
  std::vector<uint8_t> buf_;     // append()'s encode buffer, kept across batches
  // The compaction in flight. copy_ holds entries_[0, copy_n_) as they were at the rotation:
  // [0, copy_next_) copied by slices, the rest by preserve() where copy_bits_ says so. Journal
  // thread; while kWriting, copy_ is moved to the snapshot writer (freed by it once written,
  // handed back on failure).
  Phase phase_ = Phase::kNone;
  std::unique_ptr<Entry[]> copy_;
  size_t copy_n_ = 0, copy_next_ = 0;
  std::vector<uint64_t> copy_bits_;
  uint64_t copy_epoch_ = 0;         // the snapshot's epoch (the journal's since the rotation)
  std::unique_ptr<Writer> writer_;  // thread started by the first post_copy(), on its thread
  JournalStats stats_;
  std::string error_;
};

}  // namespace dhcp
