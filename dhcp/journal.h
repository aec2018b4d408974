#pragma once
// The durable lease journal: an append-only log of LeaseEvents, compacted into a snapshot, and
// replayed at start. Pure file I/O (POSIX), no DPDK. Used by one thread, the journal thread, so
// it holds no locks; nothing here may be called from a worker (every call may block on disk).
//
// ## On-disk format (version 1)
//
// A directory (JournalParams::dir) holds:
//   lock            flock(LOCK_EX) by the owner for as long as it runs; holds the owner's pid in
//                   decimal (for the error message a second daemon gets)
//   leases.snap     snapshot: the latest state of every address the journal has seen
//   leases.journal  journal: the changes since that snapshot, in the order they were appended
//   leases.snap.tmp a snapshot being written; never read (a crash leaves it behind; removed at
//                   open)
// Both data files are one header followed by fixed-size records. All integers little-endian.
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
// Epochs tie a journal to the snapshot it continues. A snapshot with epoch N holds everything
// of journal epochs < N; compaction writes snapshot N+1, then restarts the journal with epoch
// N+1. At replay (no snapshot = epoch 0):
//   journal epoch == snapshot epoch  replay the snapshot, then the journal
//   journal epoch <  snapshot epoch  the crash came between the two steps: the journal's records
//                                    are all in the snapshot; it is skipped and restarted
//   journal epoch >  snapshot epoch  the snapshot it continues is gone: error
// Journal replay stops at the first record that is incomplete or fails its CRC or field checks
// (a torn write); the file is truncated there and the dropped bytes counted. A snapshot must be
// exactly header + count records, each valid, or replay fails.
//
// ## Durability
// append() issues one pwrite() per batch; durability comes from fdatasync() per FsyncPolicy.
// synced_upto() counts the records known durable, so a caller doing group commit tags each batch
// with written() after append() and releases the batch's replies once synced_upto() reaches it.
// After a failed fsync the kernel may have dropped the dirty pages, so the journal can no longer
// vouch for them: the next sync()/tick() compacts instead (the in-memory table holds every
// lease, and a fresh snapshot makes them durable again).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
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
  // must share a directory: the snapshot's rename is made durable by an fsync of it). With other
  // names than the defaults the lock file is JOURNAL.lock, the temporary file SNAPSHOT.tmp.
  std::string journal_file = "leases.journal";
  std::string snapshot_file = "leases.snap";
  FsyncPolicy fsync = FsyncPolicy::kEveryBatch;
  uint32_t fsync_interval_ms = 1000;            // kInterval
  uint64_t compact_bytes = uint64_t{64} << 20;  // tick() compacts once the journal is this big
  uint64_t compact_interval_ms = 0;  // ... or this long after the last compaction (0 = never)
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

  Journal() = default;
  ~Journal();  // close()
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Journal thread, at start. Creates the directory and the journal file if missing, takes an
  // exclusive flock on dir/lock so two daemons never share the directory, removes a leftover
  // leases.snap.tmp. "" or an error naming the path and strerror. A few syscalls.
  std::string open(const JournalParams& p);

  // Journal thread, once, after open() and before anything else. Reads the snapshot, then the
  // journal, calling f for every record in file order (so the newest state of an address comes
  // last; a consumer that keeps the highest generation, like LeaseStore::restore, is exact).
  // A torn or corrupt journal tail ends the replay: it is truncated away and counted
  // (stats().torn_tail_bytes), never an error. A corrupt snapshot, an unreadable file or a
  // journal whose snapshot is missing is an error (returned; nothing should start then). Also
  // rebuilds the in-memory table compact() writes. O(file size).
  std::string replay(const std::function<void(const Lease&)>& f);

  // Journal thread, per batch of worker events. Encodes them into one buffer, writes it with one
  // pwrite() (looping on partial writes and EINTR), then fsyncs per policy (now_ns: the caller's
  // monotonic clock, for kInterval). False on an I/O error (stats().errors, last_error()); the
  // file is then rolled back to the previous batch boundary. The in-memory table (address ->
  // latest Lease by generation; same generation: the later one) takes the events in any case:
  // it mirrors the workers, and the next compaction makes a lost batch durable after all.
  // Cost: well under 1 µs per event (encode, CRC, table) plus the write and any fsync.
  // defer_sync: under kEveryBatch, fsync this batch as kInterval would (by tick() or the next
  // synced append) — for records that are durable elsewhere already (the peer's leases).
  bool append(std::span<const LeaseEvent> events, uint64_t now_ns, bool defer_sync = false);

  // Journal thread. fdatasync now, whatever the policy; a cheap no-op when nothing written is
  // unsynced. After an earlier fsync failure, compacts instead (see Durability above).
  bool sync();

  // Journal thread, every few ms. kInterval: fsync when due. Compacts when the journal passed
  // compact_bytes or compact_interval_ms elapsed (or to recover from an I/O error; retried at
  // most once a second). False if either failed. Usually nothing; a compaction costs a snapshot.
  bool tick(uint64_t now_ns);

  // Journal thread. Writes every lease of the table to leases.snap as a new epoch and restarts
  // the journal (see journal.cpp for the order and why any crash point is safe). Blocks the
  // journal thread for about the time to write and fsync 80 bytes per address.
  // "" or an error naming the path and strerror.
  std::string compact();

  // Journal thread, at shutdown (also the destructor). fsyncs unless kNever, releases the lock.
  void close();

  uint64_t written() const { return written_; }         // records written by this process
  uint64_t synced_upto() const { return synced_; }      // ... of which known durable
  const JournalStats& stats() const { return stats_; }  // journal thread, or after join
  const std::string& last_error() const { return error_; }
  size_t leases() const { return entries_.size(); }  // addresses in the in-memory table
  uint64_t journal_bytes() const { return end_; }    // current journal file size
  uint64_t epoch() const { return epoch_; }          // epoch of the current journal

 private:
  using Record = std::array<uint8_t, kRecordSize>;
  struct Entry {
    uint64_t seq;  // order in which this state arrived: the snapshot is written in this order
    Record rec;    // encoded, CRC included: compaction is a copy
  };

  bool fail(std::string msg);                  // sets error_, counts, returns false
  const std::string& failed(std::string msg);  // ... returns error_
  void apply(const uint8_t* rec);
  std::string restart_journal();  // "" or why not (uncounted)
  bool recover();                 // compaction after an I/O error, at most once a second
  void see_clock(uint64_t now_ns);
  bool fdatasync_journal();
  void grow_index();
  std::string replay_snapshot(uint64_t* epoch);
  std::string replay_journal(uint64_t snap_epoch, const std::function<void(const Lease&)>& f);

  JournalParams params_;
  std::string journal_path_, snap_path_, tmp_path_, lock_path_;
  int dir_fd_ = -1, lock_fd_ = -1, jfd_ = -1;
  bool replayed_ = false;
  bool restart_pending_ = false;  // a new snapshot is in place; the journal still has to restart
  bool must_compact_ = false;     // an fsync or a rollback failed: only a snapshot is trustworthy
  bool blocked_ = false;          // the snapshot's rename may not be durable: no appends
  uint64_t epoch_ = 0;
  uint64_t end_ = 0;  // journal size: where the next batch goes
  uint64_t written_ = 0, synced_ = 0;
  bool dirty_ = false;              // bytes written since the last fdatasync
  uint64_t first_unsynced_ns_ = 0;  // now_ns of the first append since then
  bool have_clock_ = false;
  uint64_t last_compact_ns_ = 0;
  uint64_t now_ns_ = 0;    // the caller's clock, as of the last append()/tick()
  uint64_t retry_ns_ = 0;  // tick(): no compaction retry before this after a failure
  uint64_t seq_ = 0;
  std::vector<Entry> entries_;   // dense, one per address, never shrinks (free leases stay)
  std::vector<uint32_t> index_;  // open addressing: entry index + 1, 0 = empty; load <= 1/2
  std::vector<uint8_t> buf_;     // append()'s encode buffer, kept across batches
  JournalStats stats_;
  std::string error_;
};

}  // namespace dhcp
