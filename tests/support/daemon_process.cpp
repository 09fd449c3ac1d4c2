#include "daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "shmq/client.hpp"

namespace shmq::test {

std::string shmqd_path() { return SHMQ_TEST_SHMQD; }
std::string shmqctl_path() { return SHMQ_TEST_SHMQCTL; }

std::string unique_namespace() {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "x" + std::to_string(counter++);
}

DaemonProcess::DaemonProcess(std::string ns, std::vector<std::string> extra_args)
    : ns_(std::move(ns)), extra_args_(std::move(extra_args)) {
  start();
}

DaemonProcess::~DaemonProcess() {
  if (running()) stop();
  remove_segments(ns_);
}

void DaemonProcess::start() {
  std::vector<std::string> args{shmqd_path(), "--namespace", ns_, "--log-level", "warn"};
  // Tests run daemons side by side: no bridge on the fixed port unless asked.
  if (std::find(extra_args_.begin(), extra_args_.end(), "--bridge-listen") == extra_args_.end()) {
    args.insert(args.end(), {"--bridge-listen", "off"});
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // Ready once a client can say hello.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    try {
      Client client(Client::Options{ns_});
      return;
    } catch (const std::system_error&) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("shmqd exited at start");
      }
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("shmqd did not come up");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

int DaemonProcess::stop() {
  int status = 0;
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void DaemonProcess::kill_hard() {
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void DaemonProcess::remove_segments(const std::string& ns) {
  std::error_code ec;
  const std::string prefix = "shmq." + ns + ".";
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(entry.path(), ec);
  }
}

ProcessResult run_process(const std::vector<std::string>& args, const std::string& input) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (!input.empty()) (void)!::write(in_pipe[1], input.data(), input.size());
  ::close(in_pipe[1]);
  auto drain = [](int fd, std::string& into) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) into.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
  };
  ProcessResult result{};
  std::thread err_reader([&] { drain(err_pipe[0], result.err); });
  drain(out_pipe[0], result.out);
  err_reader.join();
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace shmq::test
