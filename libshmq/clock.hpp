// Time as the queue sees it: CLOCK_MONOTONIC for deadlines (shared by every
// process on the host) and the wall clock for the timestamps SQS reports.
// Queue operations take a Now, so tests can drive time by hand.
#pragma once

#include <time.h>

#include <cstdint>

namespace shmq::detail {

struct Now {
  std::uint64_t mono_ns;  // CLOCK_MONOTONIC
  std::uint64_t wall_ms;  // CLOCK_REALTIME, epoch milliseconds
};

inline std::uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t wall_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000ull + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000ull;
}

inline Now now() noexcept { return {monotonic_ns(), wall_ms()}; }

inline constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

}  // namespace shmq::detail
