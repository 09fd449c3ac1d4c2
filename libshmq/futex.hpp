// Shared (not private) futexes on words inside a segment: waiters and wakers
// may be in different processes that map the word at different addresses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace shmq::detail {

// Sleeps while *word == expected, at most timeout_ns (~0 = no limit).
// Returns on wake-up, timeout, signal or when the word already differs.
void futex_wait(std::uint32_t* word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept;

// Wakes up to `count` sleepers on word.
void futex_wake(std::uint32_t* word, int count) noexcept;

// The same for a word that only this process uses (faster in the kernel).
void futex_wake_private(std::uint32_t* word, int count) noexcept;

// One word of a futex_wait_any.
struct FutexWord {
  std::uint32_t* word;
  std::uint32_t expected;
  bool is_private;  // the word is in this process's private memory
};

// The kernel's limit on the words of one wait (futex_waitv).
inline constexpr std::size_t kMaxFutexWords = 128;

// Sleeps while every word equals its expected value, until a wake-up on any
// of them, a signal, or CLOCK_MONOTONIC reaching deadline_ns (~0 = no
// limit). At most kMaxFutexWords words (more are ignored). Uses futex_waitv
// (Linux 5.16); on older kernels it sleeps on the first word only, in slices
// of at most 50 ms, so that the others are still noticed, late.
void futex_wait_any(std::span<const FutexWord> words, std::uint64_t deadline_ns) noexcept;

}  // namespace shmq::detail
