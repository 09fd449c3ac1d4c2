// An intrusive doubly-linked list of message descriptors, linked through a
// pair of index fields: the ready list, the retention list and each FIFO
// group's ready list are all one of these. Not thread-safe: callers hold the
// queue mutex. Heads and next links are stored with store_hint: the ready
// list's are prefetched without the mutex.
#pragma once

#include <cstdint>

#include "segment_layout.hpp"

namespace shmq::detail {

template <std::uint32_t MessageDescriptor::*Next, std::uint32_t MessageDescriptor::*Prev>
class DescriptorList {
 public:
  DescriptorList(MessageDescriptor* d, std::uint32_t& head, std::uint32_t& tail) noexcept
      : d_(d), head_(head), tail_(tail) {}

  void push_back(std::uint32_t index) noexcept { insert_after(tail_, index); }
  void push_front(std::uint32_t index) noexcept { insert_after(kNil, index); }

  // Inserts after `after`, or at the front if `after` is kNil.
  void insert_after(std::uint32_t after, std::uint32_t index) noexcept {
    MessageDescriptor& m = d_[index];
    m.*Prev = after;
    store_hint(m.*Next, after == kNil ? head_ : d_[after].*Next);
    if (m.*Next != kNil) {
      d_[m.*Next].*Prev = index;
    } else {
      tail_ = index;
    }
    if (after != kNil) {
      store_hint(d_[after].*Next, index);
    } else {
      store_hint(head_, index);
    }
  }

  void unlink(std::uint32_t index) noexcept {
    MessageDescriptor& m = d_[index];
    if (m.*Prev != kNil) {
      store_hint(d_[m.*Prev].*Next, m.*Next);
    } else {
      store_hint(head_, m.*Next);
    }
    if (m.*Next != kNil) {
      d_[m.*Next].*Prev = m.*Prev;
    } else {
      tail_ = m.*Prev;
    }
    store_hint(m.*Next, kNil);
    m.*Prev = kNil;
  }

 private:
  MessageDescriptor* d_;
  std::uint32_t& head_;
  std::uint32_t& tail_;
};

using ReadyList = DescriptorList<&MessageDescriptor::next, &MessageDescriptor::prev>;
using RetentionList = DescriptorList<&MessageDescriptor::all_next, &MessageDescriptor::all_prev>;

}  // namespace shmq::detail
