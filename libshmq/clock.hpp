// Time as the queue sees it: CLOCK_MONOTONIC for deadlines (shared by every
// process on the host) and the wall clock for the timestamps SQS reports.
// Queue operations take a Now, so tests can drive time by hand.
//
// A send or a receive needs both clocks but reads one: the wall clock is the
// monotonic one plus an offset that each process measures once a second
// (both clocks are slewed alike by NTP, so the offset moves only when the
// wall clock is set; a step shows within a second). Every clock read costs
// 20-25 ns on a VM, on a path that costs a few hundred.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

namespace shmq::detail {

struct Now {
  std::uint64_t mono_ns;  // CLOCK_MONOTONIC
  std::uint64_t wall_ms;  // CLOCK_REALTIME, epoch milliseconds
};

inline constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

inline std::uint64_t read_clock_ns(clockid_t clock) noexcept {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * kNsPerSecond + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t monotonic_ns() noexcept { return read_clock_ns(CLOCK_MONOTONIC); }

inline std::uint64_t wall_ms() noexcept { return read_clock_ns(CLOCK_REALTIME) / 1'000'000ull; }

namespace wall_offset {

inline constexpr std::uint64_t kRefreshNs = kNsPerSecond;

// CLOCK_REALTIME - CLOCK_MONOTONIC in ns, and when (monotonic) it was taken.
// Relaxed: each is a value on its own; a reader that pairs a new offset
// with an old time only refreshes once more.
inline std::atomic<std::uint64_t> offset_ns{0};
inline std::atomic<std::uint64_t> taken_ns{0};

// Measured between two monotonic reads, so that its error is at most half
// their gap (tens of ns), far below the milliseconds it is used in.
[[gnu::cold]] inline std::uint64_t refresh() noexcept {
  const std::uint64_t before = monotonic_ns();
  const std::uint64_t wall = read_clock_ns(CLOCK_REALTIME);
  const std::uint64_t after = monotonic_ns();
  const std::uint64_t offset = wall - (before + (after - before) / 2);
  offset_ns.store(offset, std::memory_order_relaxed);
  taken_ns.store(after, std::memory_order_relaxed);
  return offset;
}

}  // namespace wall_offset

// The wall-clock milliseconds at monotonic time `mono`, one of this process's
// recent reads (no clock read of its own but once a second).
inline std::uint64_t wall_ms_at(std::uint64_t mono) noexcept {
  const std::uint64_t taken = wall_offset::taken_ns.load(std::memory_order_relaxed);
  std::uint64_t offset = wall_offset::offset_ns.load(std::memory_order_relaxed);
  // A read older than the last refresh (another thread's) uses its offset.
  if (taken == 0 || mono > taken + wall_offset::kRefreshNs) offset = wall_offset::refresh();
  return (mono + offset) / 1'000'000ull;
}

// Both clocks for one operation, from one clock read.
inline Now now() noexcept {
  const std::uint64_t mono = monotonic_ns();
  return {mono, wall_ms_at(mono)};
}

}  // namespace shmq::detail
