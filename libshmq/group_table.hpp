// Message groups of a queue: records found by a hash of their id, and for
// FIFO queues each group's ready messages in send order plus the ring of
// groups a receive may take from (ready messages, none in flight). Taking
// from the ring's head and putting groups back at its tail is what keeps one
// busy group from starving the others. Not thread-safe: callers hold the
// queue mutex.
#pragma once

#include <cstdint>
#include <string_view>

#include "segment_layout.hpp"

namespace shmq::detail {

std::uint64_t group_hash(std::string_view id) noexcept;

class GroupTable {
 public:
  GroupTable(SegmentHeader& h, MessageDescriptor* d, GroupRecord* groups, std::uint32_t* buckets) noexcept
      : h_(h), d_(d), g_(groups), buckets_(buckets) {}

  GroupRecord& operator[](std::uint32_t index) const noexcept { return g_[index]; }

  // The group's index, creating the record if needed; kNil if the table is full.
  std::uint32_t find_or_create(std::string_view id) noexcept;
  std::uint32_t find(std::string_view id) const noexcept;

  // One message fewer names the group; frees the record at zero.
  void drop_message(std::uint32_t group) noexcept;

  // Group ready lists, kept in send (seq) order.
  void ready_insert(std::uint32_t group, std::uint32_t index) noexcept;  // in seq order
  void ready_unlink(std::uint32_t group, std::uint32_t index) noexcept;

  // Puts the group on or off the ring as its state requires; returns the
  // change in the number of groups on the ring (-1, 0, +1).
  int update_ring(std::uint32_t group) noexcept;

  // Forgets all lists and counts, keeps the identities of groups in use.
  void reset_for_rebuild() noexcept;
  // After reset_for_rebuild and re-adding messages: frees unused records.
  void finish_rebuild() noexcept;

 private:
  std::uint32_t& bucket(std::uint64_t hash) const noexcept { return buckets_[hash & (h_.group_bucket_count - 1)]; }
  void free_record(std::uint32_t group) noexcept;

  SegmentHeader& h_;
  MessageDescriptor* d_;
  GroupRecord* g_;
  std::uint32_t* buckets_;  // index + 1; 0 is empty, so fresh memory needs no init
};

}  // namespace shmq::detail
