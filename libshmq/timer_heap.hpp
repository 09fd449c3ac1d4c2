// Binary min-heap of descriptor indices keyed by (deadline_ns, seq), holding
// every in-flight and delayed message; equal deadlines come out in send order. Each descriptor records its
// heap position, so removal and re-keying are O(log n). Not thread-safe:
// callers hold the queue mutex.
//
// The size, the slots and the positions live in the segment, where another
// process may write any value: each is checked against the capacity this
// process took at attach before it addresses a slot or a descriptor
// (SegmentFault, SegmentCheck::kTimerHeap).
#pragma once

#include <cstdint>

#include "segment_fault.hpp"
#include "segment_layout.hpp"

namespace shmq::detail {

class TimerHeap {
 public:
  TimerHeap(std::uint32_t* slots, std::uint32_t& size, MessageDescriptor* descriptors, std::uint32_t capacity) noexcept
      : slots_(slots), size_(size), d_(descriptors), capacity_(capacity) {}

  bool empty() const noexcept { return size_ == 0; }
  std::uint32_t top() const { return slot(0, size()); }
  std::uint64_t earliest() const { return empty() ? ~0ull : d_[top()].deadline_ns; }

  void push(std::uint32_t index) {
    const std::uint32_t n = checked_index(size_, capacity_, SegmentCheck::kTimerHeap);  // room for one more
    checked_index(index, capacity_, SegmentCheck::kTimerHeap);
    slots_[n] = index;
    d_[index].heap_pos = n;
    size_ = n + 1;
    sift_up(n, n + 1);
  }

  void remove(std::uint32_t index) {
    const std::uint32_t n = size();
    const std::uint32_t pos = checked_index(d_[checked_index(index, capacity_, SegmentCheck::kTimerHeap)].heap_pos, n,
                                            SegmentCheck::kTimerHeap);
    const std::uint32_t last = slot(n - 1, n);
    d_[index].heap_pos = kNil;
    size_ = n - 1;
    if (pos == n - 1) return;
    place(pos, last);
    rekeyed(last);
  }

  // Restores heap order after d_[index].deadline_ns changed.
  void rekeyed(std::uint32_t index) {
    const std::uint32_t n = size();
    const std::uint32_t pos = checked_index(d_[checked_index(index, capacity_, SegmentCheck::kTimerHeap)].heap_pos, n,
                                            SegmentCheck::kTimerHeap);
    if (pos > 0 && before(index, slot((pos - 1) / 2, n))) {
      sift_up(pos, n);
    } else {
      sift_down(pos, n);
    }
  }

 private:
  // size_ read once per operation and checked: the sift loops then run on a
  // process-local bound.
  std::uint32_t size() const {
    const std::uint32_t n = size_;
    if (n > capacity_) [[unlikely]] {
      segment_fault(SegmentCheck::kTimerHeap);
    }
    return n;
  }
  // The descriptor index in slot `pos` (< n <= capacity_), checked.
  std::uint32_t slot(std::uint32_t pos, std::uint32_t n) const {
    return checked_index(slots_[checked_index(pos, n, SegmentCheck::kTimerHeap)], capacity_, SegmentCheck::kTimerHeap);
  }
  bool before(std::uint32_t a, std::uint32_t b) const noexcept {
    return d_[a].deadline_ns < d_[b].deadline_ns || (d_[a].deadline_ns == d_[b].deadline_ns && d_[a].seq < d_[b].seq);
  }
  void place(std::uint32_t pos, std::uint32_t index) noexcept {
    slots_[pos] = index;
    d_[index].heap_pos = pos;
  }
  // pos < n and every slot index checked as it is read: the loops only
  // move pos towards the root or the leaves, so they end.
  void sift_up(std::uint32_t pos, std::uint32_t n) {
    const std::uint32_t index = slot(pos, n);
    while (pos > 0) {
      const std::uint32_t parent = (pos - 1) / 2;
      const std::uint32_t above = slot(parent, n);
      if (!before(index, above)) break;
      place(pos, above);
      pos = parent;
    }
    place(pos, index);
  }
  void sift_down(std::uint32_t pos, std::uint32_t n) {
    const std::uint32_t index = slot(pos, n);
    for (;;) {
      std::uint32_t child = 2 * pos + 1;
      if (child >= n) break;
      std::uint32_t below = slot(child, n);
      if (child + 1 < n) {
        const std::uint32_t right = slot(child + 1, n);
        if (before(right, below)) {
          ++child;
          below = right;
        }
      }
      if (!before(below, index)) break;
      place(pos, below);
      pos = child;
    }
    place(pos, index);
  }

  std::uint32_t* slots_;
  std::uint32_t& size_;
  MessageDescriptor* d_;
  std::uint32_t capacity_;
};

}  // namespace shmq::detail
