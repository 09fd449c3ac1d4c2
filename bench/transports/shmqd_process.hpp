// A shmqd that shmq-bench starts for one run, in a namespace of its own:
// forked beside the bench with its stdout silenced, waited for until it
// answers, stopped with SIGTERM, its namespace's segments then removed.
// Shared by the shmq and shmq-remote transports.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace shmq::bench {

// shmqd beside the running executable (falls back to "shmqd" on PATH).
std::string default_shmqd_path();

// Removes /dev/shm/shmq.<ns>.*, what a daemon of that namespace left.
void remove_segments(const std::string& ns);

class ShmqdProcess {
 public:
  ShmqdProcess() = default;
  ~ShmqdProcess() { stop(); }
  ShmqdProcess(const ShmqdProcess&) = delete;
  ShmqdProcess& operator=(const ShmqdProcess&) = delete;

  // Starts `path` with --namespace `ns`, --log-level warn and `args`, then
  // calls `ready` every 10 ms until it returns true. Throws
  // std::runtime_error if there is no such program, if the daemon exits
  // first (its messages are on stderr) or if 10 s pass.
  void start(const std::string& path, const std::string& ns, const std::vector<std::string>& args,
             const std::function<bool()>& ready);

  // SIGTERM, wait, remove the segments. Does nothing if none runs.
  void stop() noexcept;

 private:
  pid_t pid_ = -1;
  std::string ns_;
};

}  // namespace shmq::bench
