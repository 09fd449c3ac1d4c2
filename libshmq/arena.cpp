#include "arena.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <vector>

namespace shmq::detail {

namespace {
constexpr std::uint64_t size_of(unsigned order) { return 1ull << order; }
constexpr std::uint64_t slot_of(std::uint64_t offset) { return offset >> kMinOrder; }
}  // namespace

unsigned Arena::order_for(std::uint64_t bytes) noexcept {
  if (bytes <= size_of(kMinOrder)) return kMinOrder;
  return static_cast<unsigned>(std::bit_width(bytes - 1));
}

FreeBlock& Arena::block(std::uint64_t offset) const {
  // Every block starts on a minimum block boundary; a link elsewhere, or past
  // the arena, was not written by an allocator.
  if (offset >= bytes_ || offset % size_of(kMinOrder) != 0) [[unlikely]] {
    segment_fault(SegmentCheck::kArenaFreeList);
  }
  return *reinterpret_cast<FreeBlock*>(base_ + offset);
}

std::uint64_t Arena::untouched() const {
  const std::uint64_t at = roots_.arena_untouched;
  if (at > bytes_ || at % kMaxBlock != 0) [[unlikely]] {
    segment_fault(SegmentCheck::kWatermark);
  }
  return at;
}

// `offset` is a checked block of `order`; the old head is checked only as a
// link to store: a bad one is found when the list is next walked.
void Arena::push(std::uint64_t offset, unsigned order) noexcept {
  std::uint64_t& head = roots_.arena_free_head[order - kMinOrder];
  auto& b = *reinterpret_cast<FreeBlock*>(base_ + offset);
  const std::uint64_t old = head;
  b.next = old;
  b.prev = kNilOffset;
  if (old < bytes_ && old % size_of(kMinOrder) == 0) reinterpret_cast<FreeBlock*>(base_ + old)->prev = offset;
  store_hint(head, offset);  // prefetched by senders without the mutex
  if (order >= kEagerMergeOrder) order_map_[slot_of(offset)] = static_cast<std::uint8_t>(order + 1);
  roots_.arena_free_bytes += size_of(order);
}

void Arena::unlink(std::uint64_t offset, unsigned order) {
  FreeBlock& b = block(offset);
  const std::uint64_t prev = b.prev;
  const std::uint64_t next = b.next;
  if (prev != kNilOffset) {
    block(prev).next = next;
  } else {
    store_hint(roots_.arena_free_head[order - kMinOrder], next);
  }
  if (next != kNilOffset) block(next).prev = prev;
  if (order >= kEagerMergeOrder) order_map_[slot_of(offset)] = 0;
  roots_.arena_free_bytes -= size_of(order);
}

std::uint64_t Arena::allocate(unsigned order) {
  if (order < kMinOrder || order > kMaxOrder) return kNilOffset;
  std::uint64_t offset = take(order);
  // Merging walks every free small block: only worth it if one was freed
  // since the last time (else a full queue's every send would pay for it).
  if (offset == kNilOffset && roots_.arena_small_freed != 0 && coalesce()) offset = take(order);
  return offset;
}

std::uint64_t Arena::take(unsigned order) {
  unsigned found = order;
  while (found <= kMaxOrder && roots_.arena_free_head[found - kMinOrder] == kNilOffset) ++found;
  std::uint64_t offset;
  if (found <= kMaxOrder) {
    offset = roots_.arena_free_head[found - kMinOrder];
    unlink(offset, found);
  } else if (untouched() < bytes_) {
    offset = untouched();  // carve a maximal block from the never-used tail
    if (!backing_.grow({{base_ + offset, kMaxBlock}, {order_map_ + slot_of(offset), kMaxBlock >> kMinOrder}})) {
      return kNilOffset;  // the memory limit, or /dev/shm is full: this send fails, not the process
    }
    // Order-map bytes left from before a trim (forget_all) would name free
    // blocks that are not: a carved block starts with none.
    std::memset(order_map_ + slot_of(offset), 0, kMaxBlock >> kMinOrder);
    roots_.arena_untouched += kMaxBlock;
    roots_.arena_free_bytes -= kMaxBlock;
    found = kMaxOrder;
  } else {
    return kNilOffset;
  }
  // Split down, keeping the lower half and freeing the upper buddies.
  while (found > order) {
    --found;
    push(offset + size_of(found), found);
  }
  return offset;
}

void Arena::release(std::uint64_t offset, unsigned order) {
  check_block(offset, order);
  // Small blocks go back to their list as they are, for the next send of
  // that size; coalesce() merges them when a larger block is wanted.
  if (order < kEagerMergeOrder) {
    push(offset, order);
    roots_.arena_small_freed = 1;
    return;
  }
  merge_up(offset, order);
}

void Arena::merge_up(std::uint64_t offset, unsigned order) {
  while (order < kMaxOrder) {
    const std::uint64_t buddy = offset ^ size_of(order);
    if (order_map_[slot_of(buddy)] != order + 1) break;
    unlink(buddy, order);
    offset &= ~size_of(order);
    ++order;
  }
  push(offset, order);
}

bool Arena::coalesce() try {
  // Small free blocks are not marked in order_map (see push): mark one
  // order's blocks, merge the pairs, and unmark those left, before the next
  // order, so that outside this function a mark always means "free".
  bool merged = false;
  roots_.arena_small_freed = 0;
  std::vector<std::uint64_t> listed;  // a merge overwrites the links a walk would follow
  for (unsigned order = kMinOrder; order < kEagerMergeOrder; ++order) {
    const auto list = [&] {
      listed.clear();
      // No list holds more blocks than the arena has of this order: a longer
      // walk is a cycle.
      const std::uint64_t most = bytes_ >> order;
      for (std::uint64_t at = roots_.arena_free_head[order - kMinOrder]; at != kNilOffset; at = block(at).next) {
        if (listed.size() >= most) [[unlikely]] {
          segment_fault(SegmentCheck::kListCycle);
        }
        if (at % size_of(order) != 0) [[unlikely]] {
          segment_fault(SegmentCheck::kArenaFreeList);
        }
        listed.push_back(at);
      }
    };
    const auto mark = static_cast<std::uint8_t>(order + 1);
    list();
    for (const std::uint64_t offset : listed) order_map_[slot_of(offset)] = mark;
    for (const std::uint64_t offset : listed) {
      const std::uint64_t buddy = offset ^ size_of(order);
      // Skip a block already merged as the buddy of an earlier one.
      if (order_map_[slot_of(offset)] != mark || order_map_[slot_of(buddy)] != mark) continue;
      order_map_[slot_of(offset)] = order_map_[slot_of(buddy)] = 0;
      unlink(offset, order);
      unlink(buddy, order);
      merge_up(std::min(offset, buddy), order + 1);  // on up while it can, from the eager orders
      merged = true;
    }
    list();
    for (const std::uint64_t offset : listed) order_map_[slot_of(offset)] = 0;
  }
  return merged;
} catch (const std::bad_alloc&) {
  return false;  // the allocation fails as if the arena were full
}

void Arena::forget_all() noexcept {
  for (auto& head : roots_.arena_free_head) store_hint(head, kNilOffset);
  roots_.arena_small_freed = 0;
  roots_.arena_free_bytes = bytes_;
  roots_.arena_untouched = 0;
}

void Arena::rebuild(std::span<const std::pair<std::uint64_t, unsigned>> allocated) {
  for (auto& head : roots_.arena_free_head) store_hint(head, kNilOffset);
  roots_.arena_small_freed = 0;  // everything below is merged as far as it goes
  const std::uint64_t used_bytes = untouched();
  roots_.arena_free_bytes = bytes_ - used_bytes;
  const std::uint64_t slots = used_bytes >> kMinOrder;
  std::memset(order_map_, 0, slots);

  // used_before[i]: allocated minimum blocks among the first i, so that
  // "is this region entirely free" is one subtraction.
  std::vector<std::uint32_t> used_before(slots + 1, 0);
  {
    std::vector<std::uint8_t> used(slots, 0);
    for (auto [offset, order] : allocated) {
      check_block(offset, order);
      for (std::uint64_t s = slot_of(offset); s < slot_of(offset + size_of(order)); ++s) used[s] = 1;
    }
    for (std::uint64_t s = 0; s < slots; ++s) used_before[s + 1] = used_before[s] + used[s];
  }
  auto free_region = [&](auto& self, std::uint64_t offset, unsigned order) -> void {
    const std::uint64_t first = slot_of(offset);
    const std::uint64_t last = slot_of(offset + size_of(order));
    const std::uint32_t used = used_before[last] - used_before[first];
    if (used == 0) {
      push(offset, order);
    } else if (used != last - first && order > kMinOrder) {
      self(self, offset, order - 1);
      self(self, offset + size_of(order - 1), order - 1);
    }
  };
  for (std::uint64_t offset = 0; offset < used_bytes; offset += kMaxBlock) {
    free_region(free_region, offset, kMaxOrder);
  }
}

}  // namespace shmq::detail
