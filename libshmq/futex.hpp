// Shared (not private) futexes on words inside a segment: waiters and wakers
// may be in different processes that map the word at different addresses.
#pragma once

#include <cstdint>

namespace shmq::detail {

// Sleeps while *word == expected, at most timeout_ns (~0 = no limit).
// Returns on wake-up, timeout, signal or when the word already differs.
void futex_wait(std::uint32_t* word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept;

// Wakes up to `count` sleepers on word.
void futex_wake(std::uint32_t* word, int count) noexcept;

}  // namespace shmq::detail
