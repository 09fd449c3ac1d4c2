// The FIFO deduplication window: ids seen in the last 5 minutes, found by a
// hash index, expiring in insertion order (the window is the same length for
// every entry). A full table refuses new ids rather than forget live ones.
// Not thread-safe: callers hold the queue mutex.
#pragma once

#include <cstdint>
#include <string_view>

#include "backing.hpp"
#include "segment_layout.hpp"

namespace shmq::detail {

struct DedupKey {
  std::uint64_t key[2];
};

// The key of a deduplication id within its scope (the queue, or one group).
DedupKey dedup_key(bool per_group, std::string_view group_id, std::string_view deduplication_id) noexcept;

class DedupTable {
 public:
  DedupTable(SegmentHeader& h, DedupEntry* entries, std::uint32_t* buckets, Backing backing = {}) noexcept
      : h_(h), e_(entries), buckets_(buckets), backing_(backing) {}

  void expire(std::uint64_t now_ns) noexcept;
  const DedupEntry* find(const DedupKey& key) const noexcept;
  // False if the table is full of live entries, or /dev/shm has no room for
  // more of them.
  bool insert(const DedupKey& key, std::uint64_t expires_ns, const std::uint8_t (&message_id)[16],
              std::uint64_t seq) noexcept;
  // Re-derives the index and the expiry order from the entries in use.
  void rebuild();

 private:
  std::uint32_t& bucket(const DedupKey& k) const noexcept { return buckets_[k.key[0] & (h_.dedup_bucket_count - 1)]; }

  SegmentHeader& h_;
  DedupEntry* e_;
  std::uint32_t* buckets_;  // index + 1; 0 is empty
  Backing backing_;
};

}  // namespace shmq::detail
