// Buddy allocator for the payload arena. Blocks are 2^kMinOrder..2^kMaxOrder
// bytes; free blocks sit on one doubly-linked list per order, linked through
// their own first bytes, and order_map marks the head of each free block of
// kEagerMergeOrder or more so that a buddy's state is known without trusting
// payload bytes (smaller ones are marked only while coalesce() runs, so that
// a send and a delete of a small message write one line fewer). Allocation and
// release are O(kOrderCount), but for the occasional merge of small free
// blocks (see kEagerMergeOrder). Not thread-safe: callers hold the queue mutex.
//
// The free-list heads and links, the untouched watermark and the blocks a
// caller releases come from the segment, where another process may write any
// value: each is checked against the arena size this process took at attach
// before it addresses memory, and every walk of a list is bounded by the
// number of blocks the arena holds (SegmentFault).
#pragma once

#include <cstdint>
#include <span>
#include <utility>

#include "backing.hpp"
#include "segment_fault.hpp"
#include "segment_layout.hpp"

namespace shmq::detail {

class Arena {
 public:
  // `backing` reserves each maximal block (and its order_map bytes) when it
  // is first carved from the untouched tail.
  Arena(IndexRoots& roots, std::uint8_t* order_map, std::uint8_t* base, std::uint64_t bytes,
        Backing backing = {}) noexcept
      : roots_(roots), order_map_(order_map), base_(base), bytes_(bytes), backing_(backing) {}

  // The smallest order whose block holds `bytes`; > kMaxOrder if none does.
  static unsigned order_for(std::uint64_t bytes) noexcept;

  // Blocks below this order are not merged with their buddies when freed:
  // a queue that sends and deletes small messages would otherwise split a
  // 2 MiB block down on every send and merge it up on every delete, writing
  // a free-list link into a dozen blocks each time. They are merged when an
  // allocation finds nothing free.
  static constexpr unsigned kEagerMergeOrder = 16;  // 64 KiB

  // Returns the arena-relative offset of a block of 2^order bytes, or
  // kNilOffset when no block is free even after merging free small blocks,
  // or /dev/shm has no room for a fresh one.
  std::uint64_t allocate(unsigned order);
  void release(std::uint64_t offset, unsigned order);

  // Throws SegmentFault unless [offset, offset + 2^order) is an aligned block
  // of a valid order inside the arena's used part. Inline: every send,
  // receive and delete checks a block.
  void check_block(std::uint64_t offset, unsigned order) const {
    if (order < kMinOrder || order > kMaxOrder || offset % (1ull << order) != 0 || offset >= bytes_ ||
        bytes_ - offset < (1ull << order) || offset >= roots_.arena_untouched) [[unlikely]] {
      segment_fault(SegmentCheck::kPayloadBlock);
    }
  }

  // Forgets every list and frees everything below arena_untouched but the
  // `allocated` (offset, order) pairs: the crash-recovery path.
  void rebuild(std::span<const std::pair<std::uint64_t, unsigned>> allocated);

  // Every block is free (the queue holds no message): forgets the lists and
  // the untouched watermark, so that blocks are carved from offset 0 again.
  // The caller gives back what was backed (QueueCore::trim_step).
  void forget_all() noexcept;

  std::uint8_t* data(std::uint64_t offset) const noexcept { return base_ + offset; }
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  FreeBlock& block(std::uint64_t offset) const;  // a free-list link, checked
  std::uint64_t untouched() const;               // arena_untouched, checked
  void push(std::uint64_t offset, unsigned order) noexcept;
  void unlink(std::uint64_t offset, unsigned order);
  std::uint64_t take(unsigned order);                   // from the lists or the untouched tail
  void merge_up(std::uint64_t offset, unsigned order);  // frees, merging with free buddies
  bool coalesce();                                      // merges free small blocks; true if any

  IndexRoots& roots_;
  std::uint8_t* order_map_;
  std::uint8_t* base_;
  std::uint64_t bytes_;
  Backing backing_;
};

}  // namespace shmq::detail
