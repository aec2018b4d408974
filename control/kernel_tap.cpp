#include "control/kernel_tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/log.h"

namespace ctl {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// An fd closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

void copy_name(ifreq& ifr, const std::string& name) {
  std::memset(&ifr, 0, sizeof(ifr));
  std::memcpy(ifr.ifr_name, name.data(), name.size());  // caller checked the length
}

std::string dotted(uint32_t ip) {
  char buf[INET_ADDRSTRLEN];
  uint32_t n = htonl(ip);
  inet_ntop(AF_INET, &n, buf, sizeof(buf));
  return buf;
}

void add_attr(nlmsghdr* nh, size_t cap, uint16_t type, const void* data, size_t len) {
  size_t off = NLMSG_ALIGN(nh->nlmsg_len);
  size_t rta_len = RTA_LENGTH(len);
  if (off + RTA_ALIGN(rta_len) > cap) return;  // sized for our three attributes, cannot happen
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(nh) + off);
  rta->rta_type = type;
  rta->rta_len = static_cast<unsigned short>(rta_len);
  std::memcpy(RTA_DATA(rta), data, len);
  nh->nlmsg_len = static_cast<uint32_t>(off + RTA_ALIGN(rta_len));
}

// RTM_NEWADDR over rtnetlink: unlike SIOCSIFADDR, it adds any number of addresses without
// "name:N" alias labels. Returns 0 or a positive errno.
int add_address(int nl, unsigned ifindex, uint32_t ip, uint8_t len, uint32_t seq) {
  struct {
    nlmsghdr nh;
    ifaddrmsg ifa;
    char attrs[64];
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  req.nh.nlmsg_type = RTM_NEWADDR;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  req.nh.nlmsg_seq = seq;
  req.ifa.ifa_family = AF_INET;
  req.ifa.ifa_prefixlen = len;
  req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  req.ifa.ifa_index = ifindex;
  uint32_t addr = htonl(ip);
  add_attr(&req.nh, sizeof(req), IFA_LOCAL, &addr, sizeof(addr));
  add_attr(&req.nh, sizeof(req), IFA_ADDRESS, &addr, sizeof(addr));
  if (len < 31) {
    uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);
    uint32_t brd = htonl(ip | ~mask);
    add_attr(&req.nh, sizeof(req), IFA_BROADCAST, &brd, sizeof(brd));
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) <
      0)
    return errno;
  // The ack (an NLMSG_ERROR carrying 0 or -errno) arrives synchronously; SO_RCVTIMEO bounds it.
  alignas(nlmsghdr) char buf[4096];
  for (;;) {
    ssize_t n = recv(nl, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        return -e->error;
      }
    }
  }
}

// Without IPv6 the kernel stays quiet on the TAP: no router solicitations, MLD reports or DAD
// probes that the data plane would have to transmit. Best effort: absent when IPv6 is off.
void disable_ipv6(const std::string& name) {
  std::string path = "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6";
  int f = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (f < 0) return;
  if (::write(f, "1", 1) != 1)
    log_warning("tap " + name + ": cannot disable IPv6: " + errno_text(errno));
  ::close(f);
}

}  // namespace

KernelTap::~KernelTap() {
  close();
}

std::string KernelTap::open(const std::string& name, const std::array<uint8_t, 6>& mac,
                            const std::vector<std::pair<uint32_t, uint8_t>>& addrs, uint16_t mtu) {
  close();
  name_ = name;
  std::string what = "tap " + name + ": ";
  if (name.empty() || name.size() >= IFNAMSIZ)
    return what + "interface name must be 1.." + std::to_string(IFNAMSIZ - 1) + " characters";
  for (const auto& [ip, len] : addrs)
    if (len > 32) return what + "bad prefix length " + std::to_string(len) + " for " + dotted(ip);

  Fd tap(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (tap.fd < 0) return what + "open /dev/net/tun: " + errno_text(errno);
  ifreq ifr;
  copy_name(ifr, name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(tap.fd, TUNSETIFF, &ifr) < 0) return what + "TUNSETIFF: " + errno_text(errno);

  disable_ipv6(name);

  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.fd < 0) return what + "socket(AF_INET): " + errno_text(errno);

  copy_name(ifr, name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, mac.data(), mac.size());
  if (ioctl(sock.fd, SIOCSIFHWADDR, &ifr) < 0) return what + "SIOCSIFHWADDR: " + errno_text(errno);

  copy_name(ifr, name);
  ifr.ifr_mtu = mtu;
  if (ioctl(sock.fd, SIOCSIFMTU, &ifr) < 0)
    return what + "SIOCSIFMTU " + std::to_string(mtu) + ": " + errno_text(errno);

  copy_name(ifr, name);
  if (ioctl(sock.fd, SIOCGIFINDEX, &ifr) < 0) return what + "SIOCGIFINDEX: " + errno_text(errno);
  auto ifindex = static_cast<unsigned>(ifr.ifr_ifindex);

  if (!addrs.empty()) {
    Fd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (nl.fd < 0) return what + "socket(NETLINK_ROUTE): " + errno_text(errno);
    timeval tv{1, 0};
    setsockopt(nl.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(nl.fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0)
      return what + "bind(NETLINK_ROUTE): " + errno_text(errno);
    uint32_t seq = 1;
    for (const auto& [ip, len] : addrs) {
      int err = add_address(nl.fd, ifindex, ip, len, seq++);
      if (err != 0)
        return what + "RTM_NEWADDR " + dotted(ip) + "/" + std::to_string(len) + ": " +
               errno_text(err);
    }
  }

  copy_name(ifr, name);
  if (ioctl(sock.fd, SIOCGIFFLAGS, &ifr) < 0) return what + "SIOCGIFFLAGS: " + errno_text(errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(sock.fd, SIOCSIFFLAGS, &ifr) < 0) return what + "SIOCSIFFLAGS up: " + errno_text(errno);

  fd_ = tap.fd;
  tap.fd = -1;
  return "";
}

void KernelTap::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ssize_t KernelTap::read_frame(uint8_t* buf, size_t cap) {
  if (fd_ < 0) return 0;
  for (;;) {
    ssize_t n = ::read(fd_, buf, cap);
    if (n >= 0) {
      if (n > 0) ++rx_frames_;
      return n;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

bool KernelTap::write_frame(const uint8_t* data, size_t len) {
  if (fd_ >= 0) {
    ssize_t n;
    do {
      n = ::write(fd_, data, len);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(len)) {
      ++tx_frames_;
      return true;
    }
  }
  ++tx_errors_;
  return false;
}

}  // namespace ctl
