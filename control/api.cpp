#include "control/api.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace ctl {
namespace {

constexpr size_t kMaxRequest = 64 * 1024;
constexpr size_t kMaxClients = 64;

bool fill_addr(const std::string& path, sockaddr_un& a) {
  std::memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) return false;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

std::string ApiServer::open(const std::string& path) {
  sockaddr_un addr;
  if (!fill_addr(path, addr)) return "control socket path too long: " + path;
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return "cannot create " + parent.string() + ": " + ec.message();

  // Another daemon on the same socket would have its API stolen: refuse instead.
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    bool alive = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(probe);
    if (alive) return "another process is already serving " + path;
  }
  ::unlink(path.c_str());

  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string err = "bind " + path + ": " + std::strerror(errno);
    close();
    return err;
  }
  ::chmod(path.c_str(), 0660);
  if (::listen(listen_fd_, 16) != 0) {
    std::string err = "listen " + path + ": " + std::strerror(errno);
    close();
    return err;
  }
  path_ = path;
  return "";
}

void ApiServer::close() {
  for (auto& c : clients_) ::close(c.fd);
  clients_.clear();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  path_.clear();
}

void ApiServer::append_pollfds(std::vector<pollfd>& fds) const {
  if (listen_fd_ >= 0) fds.push_back({listen_fd_, POLLIN, 0});
  for (const auto& c : clients_)
    fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
}

void ApiServer::on_ready(const pollfd* fds, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    if (fds[i].fd == listen_fd_) {
      accept_clients();
      continue;
    }
    for (auto& c : clients_)
      if (c.fd == fds[i].fd) on_client(c, fds[i].revents);
  }
  std::erase_if(clients_, [](const Client& c) {
    if (c.done) ::close(c.fd);
    return c.done;
  });
}

void ApiServer::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (clients_.size() >= kMaxClients) {
      ::close(fd);
      continue;
    }
    clients_.push_back({fd, {}, {}, false});
  }
}

void ApiServer::on_client(Client& c, short revents) {
  if (revents & (POLLERR | POLLNVAL)) {
    c.done = true;
    return;
  }
  if (c.out.empty()) {
    char buf[4096];
    ssize_t r = ::read(c.fd, buf, sizeof(buf));
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
      c.done = true;
      return;
    }
    if (r > 0) c.in.append(buf, static_cast<size_t>(r));
    auto nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > kMaxRequest) {
        c.out = nlohmann::json{{"ok", false}, {"error", "request too large"}}.dump() + "\n";
        c.in.clear();
      }
      return;
    }
    c.out = respond(c.in.substr(0, nl)) + "\n";
    c.in.clear();
  }
  ssize_t w = ::write(c.fd, c.out.data(), c.out.size());
  if (w > 0) c.out.erase(0, static_cast<size_t>(w));
  if (c.out.empty() || (w < 0 && errno != EAGAIN && errno != EINTR)) c.done = true;
}

std::string ApiServer::respond(const std::string& line) {
  nlohmann::json reply;
  try {
    auto req = nlohmann::json::parse(line);
    auto argv = req.at("argv").get<std::vector<std::string>>();
    if (argv.empty()) throw ApiError("empty command");
    reply = {{"ok", true}, {"result", handler_(argv)}};
  } catch (const ApiError& e) {
    reply = {{"ok", false}, {"error", e.what()}};
  } catch (const nlohmann::json::exception& e) {
    reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
  } catch (const std::exception& e) {
    reply = {{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
  }
  return reply.dump();
}

}  // namespace ctl
