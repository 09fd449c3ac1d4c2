#include "worker_processes.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "shared_array.hpp"

namespace shmq::bench {
namespace {

// A failed worker's message, written by the worker, read by the parent.
struct ErrorText {
  char text[512];
};

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw std::system_error(errno, std::generic_category(), "--pin: cannot run on CPU " + std::to_string(cpu));
  }
}

[[noreturn]] void run_child(std::string_view label, WorkerSpec& worker, const StartGate& gate, ErrorText& error) {
  int code = 0;
  try {
    if (worker.cpu) pin_to_cpu(*worker.cpu);
    worker.body(gate);
  } catch (const std::exception& e) {
    std::snprintf(error.text, sizeof(error.text), "%s", e.what());
    code = 1;
  } catch (...) {
    std::snprintf(error.text, sizeof(error.text), "unknown exception");
    code = 1;
  }
  if (code != 0) {
    std::fprintf(stderr, "shmq-bench: %.*s: %s: %s\n", static_cast<int>(label.size()), label.data(),
                 worker.name.c_str(), error.text);
  }
  // _exit: the parent's objects (its transport, a daemon handle) were
  // copied by fork and must not be torn down here.
  ::_exit(code);
}

std::string describe_failure(const WorkerSpec& worker, int status, const ErrorText& error) {
  if (WIFSIGNALED(status)) {
    return worker.name + ": killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  }
  if (error.text[0] != '\0') return worker.name + ": " + error.text;
  return worker.name + ": exited with status " + std::to_string(WEXITSTATUS(status));
}

struct Child {
  pid_t pid = -1;
  int pidfd = -1;
  bool running = false;
};

void kill_running(std::vector<Child>& children) {
  for (Child& c : children) {
    if (c.running) ::kill(c.pid, SIGKILL);
  }
}

void reap(Child& c, int& status) {
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(c.pidfd);
  c.running = false;
}

}  // namespace

void StartGate::arrive_and_wait() const noexcept {
  // release/acquire: the parent and the other workers see this worker's set-up done.
  words_->ready.fetch_add(1, std::memory_order_release);
  while (words_->open.load(std::memory_order_acquire) == 0) ::sched_yield();
}

void run_workers(std::string_view label, std::vector<WorkerSpec>& workers) {
  SharedArray<GateWords> gate(1);
  SharedArray<ErrorText> errors(workers.size());
  std::fflush(stdout);  // else a child's copy of the buffer is flushed twice
  std::fflush(stderr);

  std::vector<Child> children;
  std::string failure;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) run_child(label, workers[i], StartGate(gate[0]), errors[i]);
    if (pid < 0) {
      failure = "fork: " + std::string(std::strerror(errno));
      break;
    }
    // A pidfd per child: the parent sleeps in poll() until one exits.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      failure = "pidfd_open: " + std::string(std::strerror(errno));
      break;
    }
    children.push_back({pid, pidfd, true});
  }
  if (!failure.empty()) kill_running(children);

  std::size_t running = children.size();
  while (running > 0) {
    // relaxed on `open`: only this process stores it. acquire on `ready`:
    // pairs with each worker's release.
    if (failure.empty() && gate[0].open.load(std::memory_order_relaxed) == 0 &&
        gate[0].ready.load(std::memory_order_acquire) == workers.size()) {
      gate[0].open.store(1, std::memory_order_release);  // the workers' set-up happened before
    }
    std::vector<pollfd> fds;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (!children[i].running) continue;
      fds.push_back({children[i].pidfd, POLLIN, 0});
      which.push_back(i);
    }
    // Until the gate opens, look at the ready count every millisecond; then
    // sleep until a worker exits, so the parent takes no CPU from them.
    const int timeout_ms = gate[0].open.load(std::memory_order_relaxed) != 0 || !failure.empty() ? -1 : 1;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "poll on worker processes");
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      const std::size_t i = which[k];
      int status = 0;
      reap(children[i], status);
      --running;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && failure.empty()) {
        failure = describe_failure(workers[i], status, errors[i]);
        kill_running(children);  // the others may wait forever for this one
      }
    }
  }
  if (!failure.empty()) throw std::runtime_error(failure);
}

}  // namespace shmq::bench
