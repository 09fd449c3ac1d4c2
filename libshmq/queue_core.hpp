// The state machine of one queue, operating on a mapped segment. Every
// method that changes state takes the segment's robust mutex for a short
// critical section; payload copies happen outside it.
//
// Crash safety (see DESIGN.md, "Concurrency and crash safety"): the
// descriptor state word is the commit point of every transition, written last.
// All other structures (free list, ready list, timer heap, arena free lists,
// counts) are derived from the states. A locker that gets EOWNERDEAD, because
// the previous owner died inside a critical section, rebuilds them from the
// descriptors before pthread_mutex_consistent. So a kill at any instruction
// leaves either the old or the new state of each message, never a torn one:
//   - a sender killed before commit leaves a kWriting slot, returned to the
//     free list by the daemon when the sender's control connection closes
//     (the send was never reported as done, so nothing is lost);
//   - a receiver killed after taking messages leaves them kInFlight, and
//     they become visible again when their visibility timeout expires.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <system_error>

#include "arena.hpp"
#include "clock.hpp"
#include "receipt_handle.hpp"
#include "segment_layout.hpp"
#include "timer_heap.hpp"

namespace shmq::detail {

// What the creator writes into a fresh segment.
struct FormatParams {
  const char* name = "";
  std::uint32_t capacity = 0;
  std::uint64_t arena_bytes = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t created_ms = 0;
  std::uint32_t visibility_timeout_s = 30;
  std::uint32_t maximum_message_size = 1u << 20;
  std::uint32_t receive_wait_s = 0;
  std::uint32_t retention_s = 345600;
  std::uint32_t delay_s = 0;
};

// Offsets of the tables for a given capacity and arena size.
struct SegmentGeometry {
  std::uint64_t descriptors_offset;
  std::uint64_t heap_offset;
  std::uint64_t order_map_offset;
  std::uint64_t arena_offset;
  std::uint64_t total_bytes;

  static SegmentGeometry compute(std::uint32_t capacity, std::uint64_t arena_bytes) noexcept;
};

// A slot a sender reserved and now fills outside the lock.
struct Reservation {
  std::uint32_t index = kNil;
  std::uint32_t generation = 0;
  std::uint8_t* payload = nullptr;  // body_bytes writable bytes
};

// A message taken by a receive, to be copied out and validated.
struct Delivery {
  std::uint32_t index;
  ReceiptHandle handle;
  std::uint32_t body_bytes;
  std::uint64_t block_offset;
  std::uint64_t sent_ms;
  std::uint64_t first_receive_ms;
  std::uint8_t message_id[16];
};

class QueueCore {
 public:
  explicit QueueCore(void* base) noexcept;

  // Writes a complete empty queue into `base` (geometry.total_bytes, zeroed);
  // the layout version is stored last, with release.
  static void format(void* base, const FormatParams& params);

  SegmentHeader& header() const noexcept { return *h_; }
  MessageDescriptor& descriptor(std::uint32_t index) const noexcept { return d_[index]; }
  std::uint8_t* payload(std::uint64_t block_offset) const noexcept { return arena_base_ + block_offset; }

  // Reserves one slot per entry of `sizes` in one critical section. Entries
  // that find no room get queue_full in `errors`; the others get a slot.
  // Returns the daemon epoch read under the lock (see Queue's send path).
  std::uint32_t reserve(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                        std::span<std::error_code> errors) noexcept;

  // Frees reservations that will not be committed.
  void unreserve(std::span<Reservation> slots) noexcept;

  // Publishes filled reservations (skipping those with index kNil) with the
  // given delays. Returns how many became visible now (to wake receivers).
  std::uint32_t commit(std::span<const Reservation> slots, std::span<const std::uint32_t> delay_s,
                       std::span<const std::array<std::uint8_t, 16>> message_ids, Now now) noexcept;

  // Takes up to out.size() visible messages, making them in flight for
  // visibility_s. Expires due timers first. Returns the number taken.
  std::uint32_t receive(std::span<Delivery> out, std::uint32_t visibility_s, Now now) noexcept;

  // True if the message a delivery names still holds the same payload, i.e.
  // a copy taken since receive() is intact.
  bool still_valid(const Delivery& delivery) const noexcept;

  std::error_code remove(const ReceiptHandle& handle) noexcept;
  std::error_code change_visibility(const ReceiptHandle& handle, std::uint32_t visibility_s, Now now) noexcept;

  // Moves due in-flight and delayed messages to the ready list; returns the
  // number moved.
  std::uint32_t expire_due(Now now) noexcept;

  // Deletes every message that is not being written; returns the number.
  std::uint32_t purge() noexcept;

  // Frees slots left in kWriting by `pid` (kNil: by any pid for which
  // `is_dead(pid)` is true). Returns the number freed.
  template <class IsDead>
  std::uint32_t reclaim_writing(IsDead is_dead) noexcept;

  // Recomputes every derived structure from the descriptor states.
  void rebuild() noexcept;

  // Wakes receivers sleeping on ready_seq, if any (outside the lock).
  void wake_receivers(std::uint32_t count) noexcept;

  // For the daemon's reaper: expires due timers, then sleeps until the
  // earliest deadline (at most max_sleep_ns) or reaper_wake(), unless `stop`
  // is set. Returns the number of messages it made visible.
  std::uint32_t reaper_wait(std::uint64_t max_sleep_ns, const std::atomic<bool>& stop) noexcept;
  void reaper_wake() noexcept;

  // Lock-free reads.
  std::uint32_t visible_count() const noexcept;
  std::uint64_t next_deadline_ns() const noexcept;

 private:
  class Lock;
  friend class Lock;

  std::uint32_t expire_locked(Now now) noexcept;
  std::error_code locate(const ReceiptHandle& handle, MessageState& state) const noexcept;
  void free_slot(std::uint32_t index) noexcept;
  void ready_push_back(std::uint32_t index) noexcept;
  void ready_push_front(std::uint32_t index) noexcept;
  void ready_insert_after(std::uint32_t after, std::uint32_t index) noexcept;
  void ready_unlink(std::uint32_t index) noexcept;
  void set_state(std::uint32_t index, MessageState s) noexcept;
  void count(MessageState s, int delta) noexcept;
  void publish_deadline() noexcept;
  bool reaper_needs_wake(std::uint64_t deadline_ns) const noexcept;
  std::uint32_t free_writing_matching(bool (*match)(std::uint32_t pid, void* ctx), void* ctx) noexcept;

  SegmentHeader* h_;
  MessageDescriptor* d_;
  std::uint32_t* heap_slots_;
  std::uint8_t* order_map_;
  std::uint8_t* arena_base_;
  Arena arena_;
  TimerHeap timers_;
};

template <class IsDead>
std::uint32_t QueueCore::reclaim_writing(IsDead is_dead) noexcept {
  return free_writing_matching([](std::uint32_t pid, void* ctx) { return (*static_cast<IsDead*>(ctx))(pid); },
                               &is_dead);
}

}  // namespace shmq::detail
