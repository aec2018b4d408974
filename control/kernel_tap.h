#pragma once
// The kernel exception path of one DPDK port. The port belongs to DPDK, so the namespace's kernel
// has no address on it; a TAP interface with the port's MAC and interface addresses gives the
// control plane ordinary kernel sockets (health checks of real servers, an operator's ssh).
// Frames the kernel sends into the TAP are read here and transmitted on the DPDK port; frames the
// data plane punts to the kernel (TCP/UDP to the port's own address, ARP for it) are written
// into the TAP. Control thread only; nothing here is on the packet path.

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ctl {

class KernelTap {
 public:
  KernelTap() = default;
  ~KernelTap();  // close()
  KernelTap(const KernelTap&) = delete;
  KernelTap& operator=(const KernelTap&) = delete;

  // Control thread, at start-up or reload (a handful of syscalls). Creates (or attaches to) the
  // TAP `name` (≤ 15 characters; IFF_TAP|IFF_NO_PI, non-blocking, close-on-exec), disables IPv6
  // on it (no router solicitations or MLD reports leak to the wire), sets its MAC and MTU,
  // assigns every prefix (address, length; host order; existing ones are kept) and sets it UP.
  // Returns "" or what failed: the step, the interface and the errno text. On failure nothing
  // stays open and the interface is gone (unless it existed persistently before).
  std::string open(const std::string& name, const std::array<uint8_t, 6>& mac,
                   const std::vector<std::pair<uint32_t, uint8_t>>& addrs, uint16_t mtu);
  // Control thread. Closes the fd: the (non-persistent) interface and its addresses disappear.
  // Idempotent. Counters are kept.
  void close();

  // The TAP fd (-1 when closed), to add to the control thread's poll set (readable: frames from
  // the kernel are pending).
  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

  // Control thread, one read(2). One frame from the kernel into buf: its length, 0 when nothing
  // is pending (or closed), -1 on error. cap should be ≥ MTU + 14 (a longer frame is truncated).
  ssize_t read_frame(uint8_t* buf, size_t cap);
  // Control thread, one write(2). Hands one Ethernet frame to the kernel as if received on the
  // interface. false when the kernel refused it or the TAP is closed (counted in tx_errors).
  bool write_frame(const uint8_t* data, size_t len);

  // Frames read from the kernel (rx) and written into it (tx, tx_errors). Control thread.
  uint64_t rx_frames() const { return rx_frames_; }
  uint64_t tx_frames() const { return tx_frames_; }
  uint64_t tx_errors() const { return tx_errors_; }

 private:
  int fd_ = -1;
  std::string name_;
  uint64_t rx_frames_ = 0;
  uint64_t tx_frames_ = 0;
  uint64_t tx_errors_ = 0;
};

}  // namespace ctl
