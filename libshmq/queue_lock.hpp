// The queue's robust process-shared mutex: how it is taken (spinning
// first, then sleeping or polling within a bound) and QueueCore::Lock, which
// holds it and recovers from a dead owner. Internal to libshmq: included by
// the files that hold QueueCore's critical sections (queue_core.cpp,
// transitions.cpp, recovery.cpp, reaper.cpp). The spinning fast paths are
// inline, so that a send, receive or delete takes the lock without a call
// more than it needs; the sleeping wait is out of line, in queue_core.cpp.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "clock.hpp"
#include "cpu_relax.hpp"
#include "queue_core.hpp"
#include "segment_check.hpp"

namespace shmq::detail {

// The wait once spinning failed: out of line, in queue_core.cpp.
int lock_sleeping(pthread_mutex_t& mutex) noexcept;

// glibc's robust mutexes never spin: a locker that finds the mutex held
// sleeps in the kernel at once, and the owner must make a FUTEX_WAKE system
// call to unlock. Critical sections here are a few hundred nanoseconds, and
// a receiver that sees a message arrive tries to lock while the sender is
// still unlocking; so spin a little first, reading the lock word (glibc's
// __lock: 0 when free) and trying only when it is free.
inline int lock_robust(pthread_mutex_t& mutex) noexcept {
  constexpr int kSpins = 200;  // about 1-10 us, depending on the cost of pause
  static_assert(sizeof(mutex.__data.__lock) == sizeof(int));
  for (int i = 0; i < kSpins; ++i) {
    // Relaxed: only a hint; trylock does the synchronising.
    if (std::atomic_ref<int>(mutex.__data.__lock).load(std::memory_order_relaxed) == 0) {
      const int rc = pthread_mutex_trylock(&mutex);
      if (rc != EBUSY) return rc;
    }
    cpu_relax();
  }
  return lock_sleeping(mutex);
}

// After a long wait, a look at the lock word: a lock that names a thread
// that does not exist was written by another process (an owner that dies
// has the kernel hand the lock on). True if nobody will ever unlock it. A
// live holder, even a stopped one, is not such a lock.
inline bool lock_abandoned(pthread_mutex_t& mutex) noexcept {
  // The futex word: the owner's thread id, and flags (glibc's robust
  // mutexes, as the kernel reads them). Relaxed: only a diagnosis.
  const auto word =
      static_cast<std::uint32_t>(std::atomic_ref<int>(mutex.__data.__lock).load(std::memory_order_relaxed));
  constexpr std::uint32_t kTidMask = 0x3fffffff;    // FUTEX_TID_MASK
  constexpr std::uint32_t kOwnerDied = 0x40000000;  // FUTEX_OWNER_DIED: the next try recovers it
  const auto owner = static_cast<pid_t>(word & kTidMask);
  if (word == 0 || (word & kOwnerDied) != 0) return false;
  // Held by nobody, by a thread that does not exist, or by this very
  // thread (which never holds two queue locks, nor one twice).
  return owner == 0 || owner == ::gettid() || (::kill(owner, 0) != 0 && errno == ESRCH);
}

inline int lock_robust_within(pthread_mutex_t& mutex, std::uint64_t wait_ns) noexcept;

// lock_robust without the sleep: EBUSY if the lock stays held while it spins.
inline int try_lock_robust(pthread_mutex_t& mutex) noexcept {
  constexpr int kSpins = 200;
  for (int i = 0; i < kSpins; ++i) {
    // Relaxed: only a hint; trylock does the synchronising.
    if (std::atomic_ref<int>(mutex.__data.__lock).load(std::memory_order_relaxed) == 0) {
      const int rc = pthread_mutex_trylock(&mutex);
      if (rc != EBUSY) return rc;
    }
    cpu_relax();
  }
  return EBUSY;
}

// lock_robust that waits at most `wait_ns` (QueueCore::kWaitForever: no
// limit); EBUSY if the lock stays held that long. Past the spin it polls,
// sleeping 10 us doubling to 1 ms between tries, rather than calling
// pthread_mutex_timedlock: a bounded wait is for callers that would rather
// fail than wait, on a lock already held longer than a critical section
// lasts, where a millisecond's lateness costs nothing; and ThreadSanitizer
// does not see the lock taken when timedlock returns EOWNERDEAD (it then
// reports the recovery's unlock as one of an unlocked mutex).
inline int lock_robust_within(pthread_mutex_t& mutex, std::uint64_t wait_ns) noexcept {
  if (wait_ns == QueueCore::kWaitForever) return lock_robust(mutex);
  int rc = try_lock_robust(mutex);
  if (rc != EBUSY || wait_ns == 0) return rc;
  const std::uint64_t start = monotonic_ns();
  const std::uint64_t until = start + std::min<std::uint64_t>(wait_ns, ~0ull - start);
  for (std::uint64_t pause_ns = 10'000;; pause_ns = std::min<std::uint64_t>(2 * pause_ns, 1'000'000)) {
    const std::uint64_t t = monotonic_ns();
    // A bounded wait ends busy, unless the lock is one nobody will release:
    // then the segment is refused, as after an unbounded one.
    if (t >= until) return lock_abandoned(mutex) ? ENOTRECOVERABLE : EBUSY;
    const std::uint64_t ns = std::min(pause_ns, until - t);
    const timespec pause{static_cast<time_t>(ns / kNsPerSecond), static_cast<long>(ns % kNsPerSecond)};
    ::nanosleep(&pause, nullptr);
    rc = pthread_mutex_trylock(&mutex);
    if (rc != EBUSY) return rc;
  }
}

// Holds the queue mutex. On EOWNERDEAD the previous owner died inside a
// critical section: rebuild the derived structures, then mark it consistent.
//
// A lock word another process overwrote must not crash or hang the locker:
// glibc trusts the mutex's kind word (another kind with a made-up owner makes
// a lock call assert and abort), so it is compared with the one seen at
// attach before every lock call; and a lock whose owner thread does not exist
// is never handed on by the kernel, so a locker that waits long checks the
// owner. Either refuses the segment; the Lock then does not own the mutex.
class QueueCore::Lock {
 public:
  explicit Lock(QueueCore& q) noexcept : Lock(q, q.sound_lock() ? lock_robust(q.h_->mutex) : EINVAL) {}
  // Only if the lock comes free while it spins; see owns().
  Lock(QueueCore& q, std::try_to_lock_t) noexcept : Lock(q, q.sound_lock() ? try_lock_robust(q.h_->mutex) : EINVAL) {}
  // Within `wait_ns` (QueueCore::lock_wait); see owns() and busy().
  Lock(QueueCore& q, std::uint64_t wait_ns) noexcept
      : Lock(q, q.sound_lock() ? lock_robust_within(q.h_->mutex, wait_ns) : EINVAL) {}
  ~Lock() {
    if (owns_) pthread_mutex_unlock(&q_.h_->mutex);
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  bool owns() const noexcept { return owns_; }
  // Not owned because the lock stayed held past the wait (not refused).
  bool busy() const noexcept { return !owns_ && !q_.refused(); }

 private:
  Lock(QueueCore& q, int rc) noexcept : q_(q), owns_(rc == 0 || rc == EOWNERDEAD) {
    if (rc != 0) [[unlikely]] {
      not_taken(q, rc);
    }
  }

  [[gnu::noinline]] static void not_taken(QueueCore& q, int rc) noexcept {
    if (rc == EOWNERDEAD) {
      // The dead owner may have been anywhere in a critical section; and the
      // tables are checked before they are rebuilt from (rebuild refuses the
      // segment if they fail).
      q.rebuild();
      atom(q.h_->counts.recoveries).fetch_add(1, std::memory_order_relaxed);
      pthread_mutex_consistent(&q.h_->mutex);
    } else if (rc != 0 && rc != EBUSY && !q.refused()) {
      // ENOTRECOVERABLE needs an owner that unlocked without making the mutex
      // consistent, which this code never does: the segment is not ours.
      q.refuse(SegmentCheck::kLock, std::string("its lock is unusable: ") + std::strerror(rc));
    }
  }

  QueueCore& q_;
  bool owns_;
};

}  // namespace shmq::detail
