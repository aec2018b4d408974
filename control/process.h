#pragma once
// Child processes for the control thread: notify hooks and track scripts. Spawned with
// posix_spawn (never blocks the control loop), reaped with waitpid(WNOHANG), killed when they
// outlive their timeout. Control thread only.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ctl {

class ProcessRunner {
 public:
  struct Finished {
    uint64_t tag;    // what the caller passed to spawn()
    bool ok;         // exited with status 0 before its timeout
    bool timed_out;  // killed after the timeout
    int status;      // raw wait status (when not timed out)
  };

  ProcessRunner() = default;
  ~ProcessRunner();  // kills what is still running
  ProcessRunner(const ProcessRunner&) = delete;
  ProcessRunner& operator=(const ProcessRunner&) = delete;

  // Starts `argv` (argv[0] is the program path, looked up in PATH if it has no '/') with stdin
  // on /dev/null. timeout_ns = 0: no limit. Returns "" or why it could not start.
  std::string spawn(const std::vector<std::string>& argv, uint64_t tag, uint64_t timeout_ns,
                    uint64_t now_ns);
  // Reaps finished children and kills timed-out ones; appends their results to `out`.
  void poll(uint64_t now_ns, std::vector<Finished>& out);
  size_t running() const { return children_.size(); }
  // Running children with this tag (to avoid overlapping runs of one script).
  bool busy(uint64_t tag) const;

 private:
  struct Child {
    pid_t pid;
    uint64_t tag;
    uint64_t deadline_ns;  // 0: none
    bool killed;
  };
  std::vector<Child> children_;
};

}  // namespace ctl
