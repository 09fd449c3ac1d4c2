#include "futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "clock.hpp"

namespace shmq::detail {

void futex_wait(std::uint32_t* word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns != ~0ull) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000ull);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000ull);
    tsp = &ts;
  }
  // FUTEX_WAIT (not _PRIVATE): the word is shared between processes.
  syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, nullptr, 0);
}

void futex_wake(std::uint32_t* word, int count) noexcept {
  syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

void futex_wake_private(std::uint32_t* word, int count) noexcept {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

namespace {

// Relaxed: set once, and a stale false only costs one more ENOSYS.
std::atomic<bool> waitv_missing{false};

void wait_first_in_slices(std::span<const FutexWord> words, std::uint64_t deadline_ns) noexcept {
  constexpr std::uint64_t kSliceNs = 50'000'000ull;
  const std::uint64_t now = monotonic_ns();
  if (deadline_ns <= now) return;
  const std::uint64_t timeout = std::min<std::uint64_t>(deadline_ns - now, words.size() > 1 ? kSliceNs : ~0ull);
  if (words.empty()) {
    const timespec ts{static_cast<time_t>(timeout / kNsPerSecond), static_cast<long>(timeout % kNsPerSecond)};
    nanosleep(&ts, nullptr);
    return;
  }
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout != ~0ull) {
    ts = {static_cast<time_t>(timeout / kNsPerSecond), static_cast<long>(timeout % kNsPerSecond)};
    tsp = &ts;
  }
  syscall(SYS_futex, words[0].word, words[0].is_private ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT, words[0].expected, tsp,
          nullptr, 0);
}

}  // namespace

void futex_wait_any(std::span<const FutexWord> words, std::uint64_t deadline_ns) noexcept {
  if (words.size() > kMaxFutexWords) words = words.first(kMaxFutexWords);
  if (waitv_missing.load(std::memory_order_relaxed)) return wait_first_in_slices(words, deadline_ns);
  futex_waitv waiters[kMaxFutexWords]{};
  for (std::size_t i = 0; i < words.size(); ++i) {
    waiters[i].val = words[i].expected;
    waiters[i].uaddr = reinterpret_cast<std::uintptr_t>(words[i].word);
    waiters[i].flags = FUTEX_32 | (words[i].is_private ? FUTEX_PRIVATE_FLAG : 0);
  }
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline_ns != ~0ull) {
    ts = {static_cast<time_t>(deadline_ns / kNsPerSecond), static_cast<long>(deadline_ns % kNsPerSecond)};
    tsp = &ts;
  }
  // The timeout is absolute on the clock given: CLOCK_MONOTONIC, as every
  // deadline in a segment.
  if (words.empty()) {
    // futex_waitv refuses an empty list: nothing can wake this but the clock.
    if (tsp) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, tsp, nullptr);
    return;
  }
  if (syscall(SYS_futex_waitv, waiters, static_cast<unsigned>(words.size()), 0u, tsp, CLOCK_MONOTONIC) == -1 &&
      errno == ENOSYS) {
    waitv_missing.store(true, std::memory_order_relaxed);
    wait_first_in_slices(words, deadline_ns);
  }
}

}  // namespace shmq::detail
