#include "shmqd_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace shmq::bench {
namespace {

using namespace std::chrono_literals;

constexpr auto kStartTimeout = 10s;

}  // namespace

std::string default_shmqd_path() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("shmqd") : (self.parent_path() / "shmqd").string();
}

void remove_segments(const std::string& ns) {
  std::error_code ec;
  const std::string prefix = "shmq." + ns + ".";
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(entry.path(), ec);
  }
}

void ShmqdProcess::start(const std::string& path, const std::string& ns, const std::vector<std::string>& args,
                         const std::function<bool()>& ready) {
  if (::access(path.c_str(), X_OK) != 0) {
    throw std::runtime_error("no shmqd at " + path + ": build it, or pass --shmqd PATH");
  }
  stop();
  ns_ = ns;
  remove_segments(ns_);
  // The argument vector is built before fork(): the child only calls exec.
  std::vector<std::string> words{path, "--namespace", ns_, "--log-level", "warn"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork for shmqd");
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);  // the bench's stdout carries its report (or JSON) only
    ::execv(path.c_str(), argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (!ready()) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      remove_segments(ns_);
      const std::string how = WIFEXITED(status) ? "with status " + std::to_string(WEXITSTATUS(status))
                                                : "on signal " + std::to_string(WTERMSIG(status));
      throw std::runtime_error(path + " exited at start " + how + " (its messages are above)");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      throw std::runtime_error(path + " did not answer within 10 s");
    }
    std::this_thread::sleep_for(10ms);
  }
}

void ShmqdProcess::stop() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  remove_segments(ns_);
}

}  // namespace shmq::bench
