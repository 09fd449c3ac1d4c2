// Message groups of a queue: records found by a hash of their id, and for
// FIFO queues each group's list of ready, in-flight and kRedrive messages in
// send order plus the ring of groups a receive may take from (those whose
// list starts with a ready message: see docs/fifo-groups.md). Taking from
// the ring's head and putting groups back at its tail is what keeps one busy
// group from starving the others. Not thread-safe: callers hold the queue
// mutex.
//
// Group indexes, ring and free links, hash chains and the descriptors the
// group lists link come from the segment: each is checked against the
// capacity and bucket count this process took at attach before it addresses
// a record, and each chain walk is bounded by the table's size (SegmentFault).
#pragma once

#include <cstdint>
#include <string_view>

#include "segment_fault.hpp"
#include "segment_layout.hpp"

namespace shmq::detail {

std::uint64_t group_hash(std::string_view id) noexcept;

class GroupTable {
 public:
  // `capacity` records and descriptors, `bucket_count` buckets (a power of
  // two), `fifo`: as validated at attach.
  GroupTable(SegmentHeader& h, MessageDescriptor* d, GroupRecord* groups, std::uint32_t* buckets,
             std::uint32_t capacity, std::uint32_t bucket_count, bool fifo) noexcept
      : h_(h), d_(d), g_(groups), buckets_(buckets), capacity_(capacity), bucket_mask_(bucket_count - 1), fifo_(fifo) {}

  // The record of group `index`, checked.
  GroupRecord& operator[](std::uint32_t index) const {
    return g_[checked_index(index, capacity_, SegmentCheck::kGroupIndex)];
  }

  // The group's index, creating the record if needed; kNil if the table is full.
  std::uint32_t find_or_create(std::string_view id);
  std::uint32_t find(std::string_view id) const;

  // One message fewer names the group; frees the record at zero.
  void drop_message(std::uint32_t group);

  // The group's list, kept in send (seq) order. A message joins it when it
  // becomes ready after its send or its delay, and leaves it when it is
  // freed; in between (received, returned, waiting to move to the
  // dead-letter queue) it keeps its place and only its state changes.
  void list_insert(std::uint32_t group, std::uint32_t index);  // in seq order
  void list_unlink(std::uint32_t group, std::uint32_t index);

  // Puts the group on the ring if its list starts with a ready message, else
  // off it; returns the change in the number of groups on the ring (-1, 0,
  // +1). Called after every change to the list or to the state of a message
  // on it.
  int update_ring(std::uint32_t group);

  // Forgets all lists and counts, keeps the identities of groups in use.
  void reset_for_rebuild();
  // After reset_for_rebuild and re-adding messages: frees unused records.
  void finish_rebuild();

 private:
  std::uint32_t& bucket(std::uint64_t hash) const noexcept { return buckets_[hash & bucket_mask_]; }
  // A chain link (index + 1, 0 at the end) to a record, checked.
  GroupRecord& linked(std::uint32_t link) const {
    return g_[checked_index(link - 1, capacity_, SegmentCheck::kGroupChain)];
  }
  std::uint32_t unused_from() const;  // group_unused_from, checked
  MessageDescriptor& desc(std::uint32_t index) const {
    return d_[checked_index(index, capacity_, SegmentCheck::kDescriptorIndex)];
  }
  void free_record(std::uint32_t group);

  SegmentHeader& h_;
  MessageDescriptor* d_;
  GroupRecord* g_;
  std::uint32_t* buckets_;  // index + 1; 0 is empty, so fresh memory needs no init
  std::uint32_t capacity_;
  std::uint64_t bucket_mask_;
  bool fifo_;
};

}  // namespace shmq::detail
