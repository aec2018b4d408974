#pragma once
// Translation of the validated `dhcp` configuration into the worker snapshot the DHCP server
// reads (dhcp::ServerConfig) and into the contents of each worker's LeaseStore. Pure (no EAL, no
// threads): unit-tested.

#include <cstdint>
#include <string>

#include "config/model.h"
#include "dhcp/leases.h"
#include "dhcp/server.h"

namespace ctl {

// Control thread, at start and on reload; allocates. Port indexes are positions in `c.ports`
// (the order ports are started in), pool ids are positions in ServerConfig::pools (subnets in
// file order, their pools in file order), class bits are positions in `c.dhcp.classes`.
// Throws std::length_error when there are more than dhcp::ServerConfig::kMaxClasses classes
// (the parser accepts any number; class masks are 64-bit).
dhcp::ServerConfig make_dhcp_config(const cfg::Config& c);

// LeaseStore sizing for one worker: offer and decline holds from the configuration, capacity the
// addresses the worker owns (at least 1). Control thread.
dhcp::LeaseStore::Params lease_params(const cfg::Config& c, const dhcp::ServerConfig& sc,
                                      uint32_t worker);

// Control thread, at start: adds to `store` the pool ranges worker `worker` owns and the
// reservations of hosts whose address lies in them (keyed by dhcp::host_client_key()).
//
// Slicing (share-nothing workers): with n = dataplane.worker_cores workers, worker w owns the
// w-th of n contiguous parts of every pool; a reserved address belongs to the worker that owns
// its client (dhcp::owner_of, the same mapping requests are dispatched by), wherever it lies.
// Returns false with `error` set when the store refuses a range or a reservation (capacity,
// overlap: cannot happen for a validated configuration).
bool fill_lease_store(const cfg::Config& c, const dhcp::ServerConfig& sc, uint32_t worker,
                      dhcp::LeaseStore& store, std::string* error);

}  // namespace ctl
