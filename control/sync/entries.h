#pragma once
// What the pair replicates, as entries of the sync link's stream (Channel::send/Events::entry):
// versioned binary encodings of leases, connections, bulk-resync markers and the configuration
// push, plus the status blob every heartbeat carries. Pure; big-endian; every decoder checks
// lengths and returns nullopt on anything malformed.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/forward.h"
#include "dhcp/leases.h"

namespace ctl::sync {

enum class EntryType : uint8_t {
  kLease = 1,         // a lease as it is now (any state, generation)
  kConn = 2,          // a load-balancer connection (dp::ConnSync)
  kBulkStart = 3,     // a bulk resync begins: u64 id
  kBulkEnd = 4,       // ... ends: u64 id | u64 leases | u64 connections
  kConfigPush = 5,    // a piece of the peer's shared configuration file (see ConfigChunk)
  kConfigResult = 6,  // the answer to a push: u64 push id | u8 ok | message
};

std::vector<uint8_t> encode_lease(const dhcp::Lease& l);
std::optional<dhcp::Lease> decode_lease(std::span<const uint8_t> b);

std::vector<uint8_t> encode_conn(const dp::ConnSync& c);
std::optional<dp::ConnSync> decode_conn(std::span<const uint8_t> b);

struct BulkMarker {
  uint64_t id = 0;
  uint64_t leases = 0, connections = 0;  // kBulkEnd: how many the bulk carried
};
std::vector<uint8_t> encode_bulk(const BulkMarker& m, bool end);
std::optional<BulkMarker> decode_bulk(std::span<const uint8_t> b, bool end);

// The configuration push, in pieces that fit a datagram.
struct ConfigChunk {
  uint64_t push_id = 0;
  uint32_t total = 0;   // bytes of the whole file
  uint32_t offset = 0;  // of this piece
  std::string name;     // the file's name (no directory)
  std::string data;
};
inline constexpr size_t kConfigChunkData = 1024;
std::vector<uint8_t> encode_config_chunk(const ConfigChunk& c);
std::optional<ConfigChunk> decode_config_chunk(std::span<const uint8_t> b);

struct ConfigResult {
  uint64_t push_id = 0;
  bool ok = false;
  std::string message;
};
std::vector<uint8_t> encode_config_result(const ConfigResult& r);
std::optional<ConfigResult> decode_config_result(std::span<const uint8_t> b);

// Carried by every heartbeat: what the peer needs to decide about takeovers and resyncs.
struct Status {
  static constexpr uint8_t kVersion = 1;
  bool resynced = false;   // the sender holds the receiver's whole state (a bulk completed)
  std::array<uint8_t, 8> config_digest{};  // of the replicated configuration (see daemon)
  std::string node;                        // its node name
  struct Vrrp {
    uint8_t vrid = 0;
    uint8_t state = 0;  // vrrp::State
  };
  std::vector<Vrrp> vrrp;  // at most 64
};
std::vector<uint8_t> encode_status(const Status& s);
std::string digest_hex(const std::array<uint8_t, 8>& d);  // as tandemctl sync shows it
std::optional<Status> decode_status(std::span<const uint8_t> b);

}  // namespace ctl::sync
