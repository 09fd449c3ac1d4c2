// Kill -9 at every instruction, without killing anything: an operation runs
// in a forked child one machine instruction at a time (ptrace
// single-stepping), and before each instruction the test looks at the
// shared memory as it stands. That is exactly what SIGKILL of the child at
// that instruction would leave to the processes that survive it (a killed
// process changes no memory; the robust mutex's owner-died handling is what
// the test models on a copy). The copy of the segment is then recovered as
// the survivors would recover it and judged, while the original goes on to
// the next instruction.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "queue_core.hpp"
#include "segment_layout.hpp"
#include "test_segment.hpp"

namespace shmq::test {

struct NoStep {
  void operator()() const {}
};

// The vDSO's text, [first, last): where a clock read runs (see below).
inline std::pair<std::uintptr_t, std::uintptr_t> vdso_text() {
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return {0, 0};
  char line[512];
  std::pair<std::uintptr_t, std::uintptr_t> range{0, 0};
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long first = 0, last = 0;
    char perms[8] = {};
    if (std::strstr(line, "[vdso]") && std::sscanf(line, "%lx-%lx %7s", &first, &last, perms) == 3 && perms[2] == 'x') {
      range = {first, last};
      break;
    }
  }
  std::fclose(maps);
  return range;
}

// A stopped child that has just entered the vDSO (its first instruction
// there, right after the call) is run to the return address instead of
// stepped through: a clock read changes no shared memory, so nothing is
// left to observe in it, and on some hypervisors a clock read that traps
// after every instruction sees the clock's version change each time and
// retries for a million instructions. A breakpoint on the return address,
// in the child's copy of the text page, then the original byte back and
// the instruction pointer on it. False if that could not be done; true
// where there is no vDSO to leave.
inline bool run_out_of_vdso(pid_t child, std::pair<std::uintptr_t, std::uintptr_t> vdso) {
#if defined(__x86_64__)
  if (vdso.first == 0) return true;  // no vDSO: clock reads are system calls, stepped over
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, child, nullptr, &regs) != 0) return false;
  if (regs.rip < vdso.first || regs.rip >= vdso.second) return true;  // not in it
  errno = 0;
  const auto ret = static_cast<std::uintptr_t>(::ptrace(PTRACE_PEEKDATA, child, regs.rsp, nullptr));
  const long text = ::ptrace(PTRACE_PEEKTEXT, child, ret, nullptr);
  if (errno != 0 || (ret >= vdso.first && ret < vdso.second)) return false;
  const long trap = (text & ~0xffL) | 0xcc;  // int3
  if (::ptrace(PTRACE_POKETEXT, child, ret, trap) != 0) return false;
  int status = 0;
  const bool stopped = ::ptrace(PTRACE_CONT, child, nullptr, nullptr) == 0 && ::waitpid(child, &status, 0) == child &&
                       WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP;
  if (!stopped) return false;
  if (::ptrace(PTRACE_POKETEXT, child, ret, text) != 0 || ::ptrace(PTRACE_GETREGS, child, nullptr, &regs) != 0) {
    return false;
  }
  if (regs.rip != ret + 1) return false;  // stopped somewhere else
  regs.rip = ret;
  return ::ptrace(PTRACE_SETREGS, child, nullptr, &regs) == 0;
#else
  (void)child;
  (void)vdso;
  return true;  // stepped through
#endif
}

// Runs `operation()` in a forked child under ptrace and calls
// `at(finished)` in this process before each of its instructions
// (finished false), and once after it returned (finished true). The child
// runs `setup()` first, untraced; this process runs `prepare()` once the
// setup is done, before the first instruction. Returns the number of
// instructions, or 0 if tracing is not possible here.
template <class Operation, class At, class Setup = NoStep, class Prepare = NoStep>
std::size_t at_every_instruction(Operation operation, At at, Setup setup = {}, Prepare prepare = {},
                                 std::size_t max_steps = 2'000'000) {
  const pid_t child = ::fork();
  if (child < 0) return 0;
  if (child == 0) {
    if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(2);
    setup();
    ::raise(SIGSTOP);
    operation();
    ::_exit(0);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) return 0;
  prepare();
  const auto vdso = vdso_text();
  std::size_t steps = 0;
  for (;;) {
    if (!run_out_of_vdso(child, vdso)) {
      ADD_FAILURE() << "could not run the traced child out of a clock read";
      break;
    }
    at(false);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure() || steps == max_steps) break;
    if (::ptrace(PTRACE_SINGLESTEP, child, nullptr, nullptr) != 0) break;
    if (::waitpid(child, &status, 0) != child) break;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the traced operation failed";
      at(true);
      return steps + 1;
    }
    ++steps;
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_LT(steps, max_steps) << "the operation did not finish within " << max_steps << " instructions";
  return steps + 1;
}

// Why operations cannot be traced here, or nullptr if they can. Under
// ThreadSanitizer every atomic is a call into its runtime: ten times the
// instructions, and nothing for it to find in a single-threaded child.
inline const char* why_not_traced() {
#if defined(__SANITIZE_THREAD__)
  return "not under ThreadSanitizer";
#else
  static const bool works = at_every_instruction([] {}, [](bool) {}) > 0;
  return works ? nullptr : "this process may not trace its children (ptrace)";
#endif
}

// A second segment of the same geometry, into which a queue's segment is
// copied as it stands, to be recovered as survivors would recover it.
class SegmentCopy {
 public:
  SegmentCopy(std::uint32_t capacity, std::uint64_t arena_bytes) : seg_(capacity, arena_bytes) {}

  // Whether `from`'s segment differs from what the last call saw: most
  // instructions change no shared memory, and a state already judged need
  // not be judged again. Compares what a standard queue's operations write:
  // the header, the descriptors and timer heap in use, and the arena and
  // its order map as far as they were ever handed out.
  bool changed(void* from) {
    const auto& h = *static_cast<const detail::SegmentHeader*>(from);
    const auto* base = static_cast<const std::uint8_t*>(from);
    const std::uint64_t used = std::min(h.roots.unused_from, h.capacity);
    const std::uint64_t arena = std::min(h.roots.arena_untouched, h.arena_bytes);
    const std::pair<std::uint64_t, std::uint64_t> regions[] = {
        {0, h.descriptors_offset + used * sizeof(detail::MessageDescriptor)},
        {h.heap_offset, std::uint64_t{std::min(h.roots.heap_size, h.capacity)} * sizeof(std::uint32_t)},
        {h.order_map_offset, arena >> detail::kMinOrder},
        {h.arena_offset, arena},
    };
    // Compared in place (no copy while nothing changed: the arena alone is
    // a 2 MiB block once handed out).
    std::uint64_t total = 0;
    for (const auto& [offset, bytes] : regions) total += bytes;
    bool same = seen_.size() == total;
    for (std::uint64_t at = 0; const auto& [offset, bytes] : regions) {
      if (!same) break;
      same = std::memcmp(seen_.data() + at, base + offset, bytes) == 0;
      at += bytes;
    }
    if (same) return false;
    seen_.resize(total);
    for (std::uint64_t at = 0; const auto& [offset, bytes] : regions) {
      std::memcpy(seen_.data() + at, base + offset, bytes);
      at += bytes;
    }
    return true;
  }

  // The copy of `from`'s segment, its lock as a dead owner leaves it: the
  // next locker finds it owner-dead and rebuilds (true in `rebuilt`). The
  // returned core is this copy's, with no cache of any process.
  std::unique_ptr<detail::QueueCore> take(void* from, bool& rebuilt) {
    auto& h = *static_cast<detail::SegmentHeader*>(from);
    std::memcpy(seg_.base(), from, h.segment_bytes);
    auto& copy = *static_cast<detail::SegmentHeader*>(seg_.base());
    rebuilt = (copy.mutex.__data.__lock & 0x3fffffff) != 0;  // FUTEX_TID_MASK: someone holds it
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&copy.mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    auto core = std::make_unique<detail::QueueCore>(seg_.base());
    if (rebuilt) core->rebuild();
    return core;
  }

 private:
  TestSegment seg_;
  std::vector<std::uint8_t> seen_;
};

}  // namespace shmq::test
