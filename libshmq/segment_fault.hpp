// A failed check of a value read from a mapped segment while it is attached.
// Any process that can write the segment can change any field at any moment,
// so every index, offset and size read from it is checked against bounds this
// process took at attach (QueueCore's copies) before it addresses memory; a
// value out of range throws SegmentFault. The critical section it was thrown
// from is abandoned, and QueueCore repairs the segment (rebuild) or refuses it
// (see docs/segment-validation.md, "While attached: checked at each use").
#pragma once

#include <cstdint>

namespace shmq::detail {

// What failed; stored in SegmentHeader::corrupt (+1) when the segment is refused.
enum class SegmentCheck : std::uint32_t {
  kDescriptorIndex,  // a descriptor link, head or handle index past the capacity
  kDescriptorState,  // a descriptor on a list its state does not belong to
  kTimerHeap,        // heap_size, a heap slot or a heap_pos out of range
  kPayloadBlock,     // block_offset, block_order or body_bytes outside the arena
  kArenaFreeList,    // an arena free-list head or FreeBlock link out of range
  kGroupIndex,       // a group index, ring link or free link out of range
  kGroupChain,       // a group hash chain out of range or longer than the table
  kDedupIndex,       // a dedup index, list link or chain out of range
  kReceiveAttempt,   // a remembered receive attempt out of range
  kListCycle,        // a list longer than the table it links
  kWatermark,        // unused_from, arena_untouched or another watermark out of range
  kLock,             // the mutex's kind word changed, or it names a thread that does not exist
  kTables,           // the authoritative tables failed check_tables: not repairable
};

// A sentence fragment naming the check ("a descriptor index out of range").
const char* segment_check_name(SegmentCheck check) noexcept;
// The same for a SegmentHeader::corrupt value (0: none).
const char* segment_corrupt_reason(std::uint32_t corrupt) noexcept;

struct SegmentFault {
  SegmentCheck check;
};

// Out of line and cold, so that a check costs a compare and a branch that is
// never taken.
[[noreturn, gnu::cold, gnu::noinline]] void segment_fault(SegmentCheck check);

// `index` if it is below `limit`; else throws SegmentFault.
inline std::uint32_t checked_index(std::uint32_t index, std::uint32_t limit, SegmentCheck check) {
  if (index >= limit) [[unlikely]] {
    segment_fault(check);
  }
  return index;
}

}  // namespace shmq::detail
