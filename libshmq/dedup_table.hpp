// The FIFO deduplication window: ids seen in the last 5 minutes, found by a
// hash index, expiring in insertion order (the window is the same length for
// every entry). A full table refuses new ids rather than forget live ones.
// Not thread-safe: callers hold the queue mutex.
//
// Entry indexes, list links and hash chains come from the segment: each is
// checked against the capacity and bucket count this process took at attach
// before it addresses an entry, and each walk is bounded by the capacity
// (SegmentFault, SegmentCheck::kDedupIndex).
#pragma once

#include <cstdint>
#include <string_view>

#include "backing.hpp"
#include "segment_fault.hpp"
#include "segment_layout.hpp"

namespace shmq::detail {

struct DedupKey {
  std::uint64_t key[2];
};

// The key of a deduplication id within its scope (the queue, or one group).
DedupKey dedup_key(bool per_group, std::string_view group_id, std::string_view deduplication_id) noexcept;

class DedupTable {
 public:
  // `capacity` entries and `bucket_count` buckets (a power of two), as
  // validated at attach.
  DedupTable(SegmentHeader& h, DedupEntry* entries, std::uint32_t* buckets, std::uint32_t capacity,
             std::uint32_t bucket_count, Backing backing = {}) noexcept
      : h_(h), e_(entries), buckets_(buckets), capacity_(capacity), bucket_mask_(bucket_count - 1), backing_(backing) {}

  void expire(std::uint64_t now_ns);
  const DedupEntry* find(const DedupKey& key) const;
  // Before the lock: the bucket `find` and `insert` will read and write for
  // `key`, and the first entry it names. The bucket array is backed whole at
  // creation, so the read of the bucket (a hint: every write of one is a
  // store_hint) never faults; the entry is only prefetched, which never
  // faults or backs a page, and only if its index is in bounds.
  void prefetch(const DedupKey& key) const noexcept {
    const std::uint32_t first = atom(bucket(key.key[0])).load(std::memory_order_relaxed);
    if (first != 0 && first <= capacity_) __builtin_prefetch(&e_[first - 1], 0, 3);
  }
  // Earlier still, as soon as the key is known: the bucket's line only (a
  // prefetch, which never faults), so that prefetch() finds it on its way.
  void prefetch_bucket(const DedupKey& key) const noexcept { __builtin_prefetch(&bucket(key.key[0]), 0, 3); }
  // False if the table is full of live entries, or /dev/shm has no room for
  // more of them.
  bool insert(const DedupKey& key, std::uint64_t expires_ns, const std::uint8_t (&message_id)[16], std::uint64_t seq);
  // Re-derives the index and the expiry order from the entries in use.
  void rebuild();
  // Forgets every id (a purge: Amazon SQS delivers a message sent again
  // after a purge with the deduplication id of one sent before it). Each
  // entry's in_use is its commit point: a kill midway leaves some ids
  // forgotten and the rest as they were, for a rebuild to index.
  void clear();

 private:
  std::uint32_t& bucket(std::uint64_t key0) const noexcept { return buckets_[key0 & bucket_mask_]; }
  DedupEntry& entry(std::uint32_t index) const {
    return e_[checked_index(index, capacity_, SegmentCheck::kDedupIndex)];
  }
  std::uint32_t unused_from() const;  // dedup_unused_from, checked

  SegmentHeader& h_;
  DedupEntry* e_;
  std::uint32_t* buckets_;  // index + 1; 0 is empty
  std::uint32_t capacity_;
  std::uint64_t bucket_mask_;
  Backing backing_;
};

}  // namespace shmq::detail
