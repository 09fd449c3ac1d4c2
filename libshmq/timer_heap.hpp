// Binary min-heap of descriptor indices keyed by (deadline_ns, seq), holding
// every in-flight and delayed message; equal deadlines come out in send order. Each descriptor records its
// heap position, so removal and re-keying are O(log n). Not thread-safe:
// callers hold the queue mutex.
#pragma once

#include <cstdint>

#include "segment_layout.hpp"

namespace shmq::detail {

class TimerHeap {
 public:
  TimerHeap(std::uint32_t* slots, std::uint32_t& size, MessageDescriptor* descriptors) noexcept
      : slots_(slots), size_(size), d_(descriptors) {}

  bool empty() const noexcept { return size_ == 0; }
  std::uint32_t top() const noexcept { return slots_[0]; }
  std::uint64_t earliest() const noexcept { return empty() ? ~0ull : d_[slots_[0]].deadline_ns; }

  void push(std::uint32_t index) noexcept {
    slots_[size_] = index;
    d_[index].heap_pos = size_;
    sift_up(size_++);
  }

  void remove(std::uint32_t index) noexcept {
    const std::uint32_t pos = d_[index].heap_pos;
    d_[index].heap_pos = kNil;
    const std::uint32_t last = slots_[--size_];
    if (pos == size_) return;
    place(pos, last);
    rekeyed(last);
  }

  // Restores heap order after d_[index].deadline_ns changed.
  void rekeyed(std::uint32_t index) noexcept {
    const std::uint32_t pos = d_[index].heap_pos;
    if (pos > 0 && before(index, slots_[(pos - 1) / 2])) {
      sift_up(pos);
    } else {
      sift_down(pos);
    }
  }

 private:
  bool before(std::uint32_t a, std::uint32_t b) const noexcept {
    return d_[a].deadline_ns < d_[b].deadline_ns || (d_[a].deadline_ns == d_[b].deadline_ns && d_[a].seq < d_[b].seq);
  }
  void place(std::uint32_t pos, std::uint32_t index) noexcept {
    slots_[pos] = index;
    d_[index].heap_pos = pos;
  }
  void sift_up(std::uint32_t pos) noexcept {
    const std::uint32_t index = slots_[pos];
    while (pos > 0) {
      const std::uint32_t parent = (pos - 1) / 2;
      if (!before(index, slots_[parent])) break;
      place(pos, slots_[parent]);
      pos = parent;
    }
    place(pos, index);
  }
  void sift_down(std::uint32_t pos) noexcept {
    const std::uint32_t index = slots_[pos];
    for (;;) {
      std::uint32_t child = 2 * pos + 1;
      if (child >= size_) break;
      if (child + 1 < size_ && before(slots_[child + 1], slots_[child])) ++child;
      if (!before(slots_[child], index)) break;
      place(pos, slots_[child]);
      pos = child;
    }
    place(pos, index);
  }

  std::uint32_t* slots_;
  std::uint32_t& size_;
  MessageDescriptor* d_;
};

}  // namespace shmq::detail
