#pragma once
// The control API: a Unix stream socket speaking one JSON request per line
//   {"argv": ["neighbors", "resolve", "192.0.2.10"]}
// answered by one JSON line {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
// Non-blocking, driven by the control thread's poll loop; a slow client never stalls it.

#include <poll.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace ctl {

// Thrown by handlers; its message reaches the user verbatim.
struct ApiError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ApiServer {
 public:
  using Handler = std::function<nlohmann::json(const std::vector<std::string>& argv)>;

  explicit ApiServer(Handler h) : handler_(std::move(h)) {}
  ~ApiServer() { close(); }
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Control thread. Creates the parent directory, refuses to start if another daemon answers on
  // `path`, removes a stale socket file. Returns "" or what went wrong.
  std::string open(const std::string& path);
  void close();

  // Control thread: the descriptors to poll, then the poll results for them.
  void append_pollfds(std::vector<pollfd>& fds) const;
  void on_ready(const pollfd* fds, size_t n);

 private:
  struct Client {
    int fd;
    std::string in, out;
    bool done;
  };
  void accept_clients();
  void on_client(Client& c, short revents);
  std::string respond(const std::string& line);

  Handler handler_;
  std::string path_;
  int listen_fd_ = -1;
  std::vector<Client> clients_;
};

}  // namespace ctl
