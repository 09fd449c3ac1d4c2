// Buddy allocator for the payload arena. Blocks are 2^kMinOrder..2^kMaxOrder
// bytes; free blocks sit on one doubly-linked list per order, linked through
// their own first bytes, and order_map marks the head of each free block so
// that a buddy's state is known without trusting payload bytes. Allocation and
// release are O(kOrderCount). Not thread-safe: callers hold the queue mutex.
#pragma once

#include <cstdint>
#include <span>
#include <utility>

#include "segment_layout.hpp"

namespace shmq::detail {

class Arena {
 public:
  Arena(IndexRoots& roots, std::uint8_t* order_map, std::uint8_t* base, std::uint64_t bytes) noexcept
      : roots_(roots), order_map_(order_map), base_(base), bytes_(bytes) {}

  // The smallest order whose block holds `bytes`; > kMaxOrder if none does.
  static unsigned order_for(std::uint64_t bytes) noexcept;

  // Returns the arena-relative offset of a block of 2^order bytes, or
  // kNilOffset when no block is free.
  std::uint64_t allocate(unsigned order) noexcept;
  void release(std::uint64_t offset, unsigned order) noexcept;

  // Forgets every list and frees everything below arena_untouched but the
  // `allocated` (offset, order) pairs: the crash-recovery path.
  void rebuild(std::span<const std::pair<std::uint64_t, unsigned>> allocated);

  std::uint8_t* data(std::uint64_t offset) const noexcept { return base_ + offset; }
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  FreeBlock& block(std::uint64_t offset) const noexcept;
  void push(std::uint64_t offset, unsigned order) noexcept;
  void unlink(std::uint64_t offset, unsigned order) noexcept;

  IndexRoots& roots_;
  std::uint8_t* order_map_;
  std::uint8_t* base_;
  std::uint64_t bytes_;
};

}  // namespace shmq::detail
