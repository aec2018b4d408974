#include "control/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace ctl {

ProcessRunner::~ProcessRunner() {
  for (const Child& c : children_) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
  }
}

std::string ProcessRunner::spawn(const std::vector<std::string>& argv, uint64_t tag,
                                 uint64_t timeout_ns, uint64_t now_ns) {
  if (argv.empty()) return "empty command";
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Children must not inherit tandemd's blocked signal mask: a script killed by SIGTERM must die.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // own process group: a timeout kills the whole script
  pid_t pid = 0;
  int rc = argv[0].find('/') == std::string::npos
               ? posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ)
               : posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return argv[0] + ": " + std::strerror(rc);
  children_.push_back({pid, tag, timeout_ns ? now_ns + timeout_ns : 0, false});
  return "";
}

void ProcessRunner::poll(uint64_t now_ns, std::vector<Finished>& out) {
  for (size_t i = 0; i < children_.size();) {
    Child& c = children_[i];
    int status = 0;
    pid_t r = waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid || (r < 0 && errno == ECHILD)) {
      bool ok = !c.killed && r == c.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
      out.push_back({c.tag, ok, c.killed, status});
      children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    if (!c.killed && c.deadline_ns != 0 && now_ns >= c.deadline_ns) {
      kill(-c.pid, SIGKILL);
      c.killed = true;
    }
    ++i;
  }
}

bool ProcessRunner::busy(uint64_t tag) const {
  for (const Child& c : children_)
    if (c.tag == tag) return true;
  return false;
}

}  // namespace ctl
