#include "dedup_table.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "digest.hpp"

namespace shmq::detail {

DedupKey dedup_key(bool per_group, std::string_view group_id, std::string_view deduplication_id) noexcept {
  // A NUL separates the parts: group ids and dedup ids cannot contain one.
  const Sha256 digest = per_group ? sha256({"g", group_id, std::string_view("\0", 1), deduplication_id})
                                  : sha256({"q", deduplication_id});
  DedupKey k;
  std::memcpy(k.key, digest.data(), sizeof(k.key));
  return k;
}

std::uint32_t DedupTable::unused_from() const {
  const std::uint32_t n = h_.roots.dedup_unused_from;
  if (n > capacity_) [[unlikely]] {
    segment_fault(SegmentCheck::kWatermark);
  }
  return n;
}

void DedupTable::expire(std::uint64_t now_ns) {
  IndexRoots& r = h_.roots;
  // Each entry expires once: more turns than entries is a cycle.
  for (std::uint32_t turns = 0; r.dedup_oldest != kNil && entry(r.dedup_oldest).expires_ns <= now_ns; ++turns) {
    if (turns >= capacity_) [[unlikely]] {
      segment_fault(SegmentCheck::kListCycle);
    }
    const std::uint32_t index = r.dedup_oldest;
    DedupEntry& e = e_[index];
    r.dedup_oldest = e.list_next;
    if (r.dedup_oldest == kNil) r.dedup_newest = kNil;
    std::uint32_t* link = &bucket(e.key[0]);
    for (std::uint32_t steps = 0; *link != 0 && *link != index + 1; link = &entry(*link - 1).bucket_next) {
      if (++steps > capacity_) [[unlikely]] {
        segment_fault(SegmentCheck::kListCycle);
      }
    }
    if (*link == index + 1) store_hint(*link, e.bucket_next);  // a bucket, perhaps: read by prefetch()
    atom(e.in_use).store(0, std::memory_order_relaxed);
    e.list_next = r.dedup_free_head;
    r.dedup_free_head = index;
    --h_.counts.dedup_entries;
  }
}

const DedupEntry* DedupTable::find(const DedupKey& k) const {
  std::uint32_t steps = 0;
  for (std::uint32_t i = bucket(k.key[0]); i != 0;) {
    const DedupEntry& e = entry(i - 1);
    if (e.key[0] == k.key[0] && e.key[1] == k.key[1]) return &e;
    if (++steps > capacity_) [[unlikely]] {
      segment_fault(SegmentCheck::kListCycle);
    }
    i = e.bucket_next;
  }
  return nullptr;
}

bool DedupTable::insert(const DedupKey& k, std::uint64_t expires_ns, const std::uint8_t (&message_id)[16],
                        std::uint64_t seq) {
  IndexRoots& r = h_.roots;
  std::uint32_t index = r.dedup_free_head;
  if (index != kNil) {
    r.dedup_free_head = entry(index).list_next;
  } else if (const std::uint32_t from = unused_from(); from < capacity_) {
    if (from % kReserveChunk == 0) {
      const std::uint32_t n = std::min(kReserveChunk, capacity_ - from);
      if (!backing_.grow({{&e_[from], std::size_t{n} * sizeof(DedupEntry)}})) return false;
    }
    index = from;
    r.dedup_unused_from = from + 1;
  } else {
    return false;
  }
  DedupEntry& e = e_[index];
  e.key[0] = k.key[0];
  e.key[1] = k.key[1];
  e.expires_ns = expires_ns;
  e.seq = seq;
  std::memcpy(e.message_id, message_id, sizeof(e.message_id));
  e.list_next = kNil;
  e.bucket_next = bucket(k.key[0]);
  store_hint(bucket(k.key[0]), index + 1);
  if (r.dedup_newest != kNil) {
    entry(r.dedup_newest).list_next = index;
  } else {
    r.dedup_oldest = index;
  }
  r.dedup_newest = index;
  atom(e.in_use).store(1, std::memory_order_relaxed);  // written last
  ++h_.counts.dedup_entries;
  return true;
}

void DedupTable::clear() {
  for (std::uint32_t i = unused_from(); i-- > 0;) atom(e_[i].in_use).store(0, std::memory_order_relaxed);
  rebuild();
}

void DedupTable::rebuild() {
  IndexRoots& r = h_.roots;
  for (std::uint64_t b = 0; b <= bucket_mask_; ++b) store_hint(buckets_[b], 0u);  // read by prefetch()
  r.dedup_free_head = r.dedup_oldest = r.dedup_newest = kNil;
  h_.counts.dedup_entries = 0;
  std::vector<std::uint32_t> live;
  for (std::uint32_t i = unused_from(); i-- > 0;) {
    if (atom(e_[i].in_use).load(std::memory_order_relaxed)) {
      live.push_back(i);
    } else {
      e_[i].list_next = r.dedup_free_head;
      r.dedup_free_head = i;
    }
  }
  std::sort(live.begin(), live.end(),
            [&](std::uint32_t a, std::uint32_t b) { return e_[a].expires_ns < e_[b].expires_ns; });
  for (std::uint32_t index : live) {
    DedupEntry& e = e_[index];
    e.list_next = kNil;
    e.bucket_next = bucket(e.key[0]);
    store_hint(bucket(e.key[0]), index + 1);
    if (r.dedup_newest != kNil) {
      entry(r.dedup_newest).list_next = index;
    } else {
      r.dedup_oldest = index;
    }
    r.dedup_newest = index;
    ++h_.counts.dedup_entries;
  }
}

}  // namespace shmq::detail
