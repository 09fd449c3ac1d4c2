// The submit ring: how a send hands a written message to the queue without
// taking the queue's mutex (see docs/data-plane.md, "Sends without the
// mutex").
//
// A bounded ring of descriptor indices in shared memory, after Vyukov's
// MPMC ring, with one change that makes it safe against kill -9: a producer
// publishes its entry and the entry's sequence number together, in one
// compare-and-swap of a 64-bit cell (sequence in the high half, index in the
// low half), and only then advances the tail, which any producer helps do.
// So a producer killed at any instruction leaves the ring either without
// its entry or with it whole; there is no claimed-but-unwritten cell that
// would stall the consumer.
//
// The consumer side runs only under the queue's mutex, one consumer at a
// time, so it needs no atomic read-modify-write: it reads the cell at the
// head, commits the message it names, releases the cell for the next lap
// and advances the head. A consumer killed in between leaves a cell that
// repair() recognises.
//
// An entry is a hint, not a claim: the consumer commits a message only if
// its descriptor is still kPending (see QueueCore::commit_pending), so an
// entry whose message was already committed another way (by the sender
// itself when the ring was full, by a repair, by a stale entry naming a
// reused slot) is skipped.
//
// Positions are 32-bit and wrap; they are compared by signed difference,
// which is exact while the ring is smaller than 2^31.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "segment_layout.hpp"

namespace shmq::detail {

class SubmitRing {
 public:
  static constexpr std::uint32_t kMask = kSubmitCells - 1;
  static_assert((kSubmitCells & kMask) == 0, "a power of two");

  // `cells` holds kSubmitCells cells, `tail` is the producers' word and
  // `head` the consumer's (guarded by the queue's mutex).
  SubmitRing(std::uint64_t* cells, std::uint32_t& tail, std::uint32_t& head) noexcept
      : cells_(cells), tail_(tail), head_(head) {}

  // The cells of an empty ring at position 0 (a new segment).
  static void format(std::uint64_t* cells) noexcept {
    for (std::uint32_t c = 0; c < kSubmitCells; ++c) cells[c] = cell(c, 0);
  }

  // Lock-free. False if the ring is full (the caller commits under the
  // mutex instead), or if the ring's words make no sense after a bounded
  // number of tries (a corrupt segment must not hang a sender).
  bool push(std::uint32_t index) noexcept {
    std::uint32_t pos = atom(tail_).load(std::memory_order_relaxed);
    for (std::uint32_t tries = 0; tries < 4 * kSubmitCells; ++tries) {
      std::uint64_t* at = &cells_[pos & kMask];
      // Acquire: a cell released by the consumer, seen here, comes after the
      // consumer's reads of the entry it held.
      std::uint64_t seen = atom(*at).load(std::memory_order_acquire);
      const auto dif = static_cast<std::int32_t>(seq(seen) - pos);
      if (dif == 0) {
        // Release: the consumer that sees this entry sees the descriptor
        // written before it (its state is checked anyway).
        if (atom(*at).compare_exchange_strong(seen, cell(pos + 1, index), std::memory_order_acq_rel,
                                              std::memory_order_relaxed)) {
          help(pos);
          return true;
        }
        continue;  // another producer took this cell: look again
      }
      if (dif == 1) {
        help(pos);  // published, tail not yet advanced (that producer may be dead)
        pos += 1;
        continue;
      }
      if (dif < 0) return false;  // the previous lap's entry is not consumed yet: full
      // Behind: this position was published and its entry consumed since.
      // The tail is past it, or its producer died before moving it there;
      // then nobody else would, and every later push would stop here.
      help(pos);
      pos = atom(tail_).load(std::memory_order_relaxed);
    }
    return false;
  }

  // Under the mutex: the index at the head, if an entry is there.
  bool peek(std::uint32_t& index) const noexcept {
    const std::uint32_t h = head_;
    // Acquire: pairs with the producer's publishing compare-and-swap.
    const std::uint64_t c = atom(cells_[h & kMask]).load(std::memory_order_acquire);
    if (seq(c) != h + 1) return false;
    index = static_cast<std::uint32_t>(c);
    return true;
  }

  // Under the mutex, after peek() and the entry's commit: the cell is free
  // for the next lap, then the head moves on. A consumer killed between the
  // two leaves a released cell at the head, which repair() steps over.
  void pop() noexcept {
    const std::uint32_t h = head_;
    // Release: a producer that reuses the cell comes after this consumer's
    // reads of it.
    atom(cells_[h & kMask]).store(cell(h + kSubmitCells, 0), std::memory_order_release);
    store_hint(head_, h + 1);
  }

  // Lock-free: an entry waits at the head (for receivers deciding whether
  // taking the mutex could find anything). Relaxed: a hint; the consumer
  // checks again under the mutex.
  bool nonempty() const noexcept {
    const std::uint32_t h = atom(head_).load(std::memory_order_relaxed);
    return seq(atom(cells_[h & kMask]).load(std::memory_order_relaxed)) == h + 1;
  }

  // Lock-free: about how many entries wait (what a reader that cannot take
  // the mutex counts as sent). Relaxed: a hint, like nonempty().
  std::uint32_t waiting() const noexcept {
    const std::uint32_t h = atom(head_).load(std::memory_order_relaxed);
    const auto n = static_cast<std::int32_t>(atom(tail_).load(std::memory_order_relaxed) - h);
    return n <= 0 ? 0 : std::min<std::uint32_t>(static_cast<std::uint32_t>(n), kSubmitCells);
  }

  // Under the mutex, after a locker died: steps the head over cells that a
  // killed consumer released without advancing it. Returns how many.
  std::uint32_t repair() noexcept {
    std::uint32_t stepped = 0;
    while (stepped < kSubmitCells) {
      // Released for the next lap, or already holding that lap's entry:
      // producers take a released cell as free, and may fill the whole ring
      // before anyone takes the mutex and repairs it. That entry waits in
      // its cell for the head to come round.
      const std::uint32_t ahead = seq(atom(cells_[head_ & kMask]).load(std::memory_order_acquire)) - head_;
      if (ahead != kSubmitCells && ahead != kSubmitCells + 1) break;
      store_hint(head_, head_ + 1);
      ++stepped;
    }
    return stepped;
  }

 private:
  static std::uint64_t cell(std::uint32_t seq, std::uint32_t index) noexcept {
    return (std::uint64_t{seq} << 32) | index;
  }
  static std::uint32_t seq(std::uint64_t c) noexcept { return static_cast<std::uint32_t>(c >> 32); }

  // Moves the tail past `pos`, if nobody has yet. Relaxed: the tail is only
  // where producers start looking; the cells carry the synchronisation.
  void help(std::uint32_t pos) noexcept {
    atom(tail_).compare_exchange_strong(pos, pos + 1, std::memory_order_relaxed, std::memory_order_relaxed);
  }

  std::uint64_t* cells_;
  std::uint32_t& tail_;
  std::uint32_t& head_;
};

}  // namespace shmq::detail
