// What the files of QueueCore share (queue_core.cpp, transitions.cpp,
// recovery.cpp, reaper.cpp): small helpers, guarded(), and the few members
// of the reaper and the trim that every send, receive or delete calls
// (reaper_needs_wake, worth_trimming). They are inline here so that the hot
// path in transitions.cpp inlines them, though they belong to other files.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "queue_core.hpp"
#include "queue_lock.hpp"
#include "segment_check.hpp"

namespace shmq::detail {

inline std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

inline MessageState state_of(MessageDescriptor& m) noexcept {
  // Relaxed under the mutex; lock-free readers only compare generations.
  return static_cast<MessageState>(atom(m.state).load(std::memory_order_relaxed) & kStateMask);
}

inline std::uint64_t seconds_ns(std::uint32_t seconds) { return std::uint64_t{seconds} * kNsPerSecond; }

inline bool committed(MessageState s) {
  return s == MessageState::kReady || s == MessageState::kInFlight || s == MessageState::kDelayed ||
         s == MessageState::kRedrive;
}

inline std::uint64_t round_up_slots(std::uint64_t n, std::uint64_t limit) noexcept {
  return std::min(limit, (std::min(n, limit) + kReserveChunk - 1) / kReserveChunk * kReserveChunk);
}

// Bytes a descriptor slot takes with its timer-heap entry and, in a FIFO
// queue, its group record: what each chunk of slots reserves together.
inline std::uint64_t slot_bytes(bool fifo) noexcept {
  return sizeof(MessageDescriptor) + sizeof(std::uint32_t) + (fifo ? sizeof(GroupRecord) : 0);
}

// A total under the mutex, stored atomically: stats() reads it without the
// lock when the lock stays held. Relaxed: a count, ordering nothing.
inline void add_total(std::uint64_t& total, std::uint64_t n) noexcept {
  atom(total).store(total + n, std::memory_order_relaxed);
}

template <class T>
inline T load_hint(const T& field) noexcept {
  // Relaxed: a hint (see the prefetching in transitions.cpp); the critical
  // section reads it again.
  return atom(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

template <class Body>
inline bool QueueCore::guarded(const Lock& lock, Body&& body) noexcept {
  if (!lock.owns() || refused()) return false;
  try {
    body();
    return true;
  } catch (const SegmentFault&) {
    if (!repair()) return false;
  }
  // Once more, on rebuilt structures: a second failure means the tables are
  // being changed while this process works on them.
  try {
    body();
    return true;
  } catch (const SegmentFault& f) {
    refuse(f.check);
    return false;
  }
}

// The reaper's (see reaper.cpp), but a receive asks it for every message it
// takes.
inline bool QueueCore::reaper_needs_wake(std::uint64_t deadline_ns) const noexcept {
  return atom(h_->reaper_waiting).load(std::memory_order_relaxed) != 0 && deadline_ns < h_->reaper_deadline_ns;
}

// The trim's (see recovery.cpp), but every delete asks it.
inline std::uint32_t QueueCore::messages_held() const noexcept {
  const Counts& c = h_->counts;
  return c.visible + c.in_flight + c.delayed + c.writing + c.redrive;
}

inline bool QueueCore::worth_trimming() const noexcept {
  if (messages_held() != 0 || h_->counts.groups != 0) return false;
  const IndexRoots& r = h_->roots;
  const std::uint64_t grown = round_up_slots(r.unused_from, bounds_.capacity) * slot_bytes(fifo()) +
                              std::min(r.arena_untouched, bounds_.arena_bytes);
  return grown > kTrimAboveBytes;
}

}  // namespace shmq::detail
