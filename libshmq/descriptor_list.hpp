// An intrusive doubly-linked list of message descriptors, linked through a
// pair of index fields: the ready list, the retention list and each FIFO
// group's list are all one of these. Not thread-safe: callers hold the
// queue mutex. Heads and next links are stored with store_hint: the ready
// list's are prefetched without the mutex.
//
// Every link read from the segment is checked against `limit` (the capacity
// this process took at attach) before it addresses a descriptor: another
// process may have written any value there (SegmentFault).
#pragma once

#include <cstdint>

#include "segment_fault.hpp"
#include "segment_layout.hpp"

namespace shmq::detail {

template <std::uint32_t MessageDescriptor::*Next, std::uint32_t MessageDescriptor::*Prev>
class DescriptorList {
 public:
  DescriptorList(MessageDescriptor* d, std::uint32_t limit, std::uint32_t& head, std::uint32_t& tail) noexcept
      : d_(d), limit_(limit), head_(head), tail_(tail) {}

  void push_back(std::uint32_t index) { insert_after(tail_, index); }
  void push_front(std::uint32_t index) { insert_after(kNil, index); }

  // Inserts after `after`, or at the front if `after` is kNil.
  void insert_after(std::uint32_t after, std::uint32_t index) {
    MessageDescriptor& m = at(index);
    const std::uint32_t next = after == kNil ? head_ : at(after).*Next;
    if (next != kNil) at(next);  // checked before anything is written
    m.*Prev = after;
    store_hint(m.*Next, next);
    if (next != kNil) {
      d_[next].*Prev = index;
    } else {
      tail_ = index;
    }
    if (after != kNil) {
      store_hint(d_[after].*Next, index);
    } else {
      store_hint(head_, index);
    }
  }

  void unlink(std::uint32_t index) {
    MessageDescriptor& m = at(index);
    const std::uint32_t prev = m.*Prev;
    const std::uint32_t next = m.*Next;
    if (prev != kNil) {
      store_hint(at(prev).*Next, next);
    } else {
      store_hint(head_, next);
    }
    if (next != kNil) {
      at(next).*Prev = prev;
    } else {
      tail_ = prev;
    }
    store_hint(m.*Next, kNil);
    m.*Prev = kNil;
  }

 private:
  MessageDescriptor& at(std::uint32_t index) const {
    return d_[checked_index(index, limit_, SegmentCheck::kDescriptorIndex)];
  }

  MessageDescriptor* d_;
  std::uint32_t limit_;
  std::uint32_t& head_;
  std::uint32_t& tail_;
};

using ReadyList = DescriptorList<&MessageDescriptor::next, &MessageDescriptor::prev>;
using RetentionList = DescriptorList<&MessageDescriptor::all_next, &MessageDescriptor::all_prev>;

}  // namespace shmq::detail
