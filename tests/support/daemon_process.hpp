// Test support: a real shmqd process in a namespace of its own, so tests
// never collide with each other or with a daemon the user runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace shmq::test {

// A namespace no other test (or test run) uses: "t<pid>x<counter>".
std::string unique_namespace();

class DaemonProcess {
 public:
  // Starts shmqd --namespace ns (plus extra args) and waits until it answers.
  explicit DaemonProcess(std::string ns, std::vector<std::string> extra_args = {});
  // SIGTERM, wait, and remove the namespace's segments.
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  const std::string& ns() const noexcept { return ns_; }
  pid_t pid() const noexcept { return pid_; }

  void start();
  // Sends SIGTERM and waits; returns the exit status (as from waitpid).
  int stop();
  // SIGKILL, then wait.
  void kill_hard();
  bool running() const noexcept { return pid_ > 0; }

  // Removes /dev/shm/shmq.<ns>.* (what a test leaves behind).
  static void remove_segments(const std::string& ns);

 private:
  std::string ns_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
};

// Runs a program, returns its exit code and what it printed.
struct ProcessResult {
  int exit_code;
  std::string out;
  std::string err;
};
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {});

// Paths of the built binaries.
std::string shmqd_path();
std::string shmqctl_path();

}  // namespace shmq::test
