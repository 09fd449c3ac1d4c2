#include "segment_check.hpp"

#include <pthread.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "queue_core.hpp"
#include "segment_fault.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

namespace {

// Sets *why (if wanted) and returns `ec`.
std::error_code refuse(std::error_code ec, std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return ec;
}

bool index_ok(std::uint32_t index, std::uint32_t limit) { return index == kNil || index < limit; }

// The roots the creator formats and every locker keeps in range; a value out
// of range is corruption that would send an operation outside the tables.
const char* bad_root(const SegmentHeader& h) {
  const IndexRoots& r = h.roots;
  if (r.unused_from > h.capacity) return "unused_from";
  if (r.heap_size > r.unused_from) return "heap_size";
  if (!index_ok(r.free_head, r.unused_from)) return "free_head";
  if (!index_ok(r.ready_head, r.unused_from) || !index_ok(r.ready_tail, r.unused_from)) return "ready list";
  if (!index_ok(r.all_head, r.unused_from) || !index_ok(r.all_tail, r.unused_from)) return "retention list";
  if (!index_ok(r.redrive_head, r.unused_from)) return "redrive_head";
  if (r.arena_untouched > h.arena_bytes || r.arena_untouched % kMaxBlock != 0) return "arena_untouched";
  if (r.arena_free_bytes > h.arena_bytes) return "arena_free_bytes";
  for (unsigned order = kMinOrder; order <= kMaxOrder; ++order) {
    const std::uint64_t head = r.arena_free_head[order - kMinOrder];
    if (head != kNilOffset && (head >= r.arena_untouched || head % (1ull << order) != 0)) return "arena free list";
  }
  if (r.group_unused_from > h.capacity) return "group_unused_from";
  if (!index_ok(r.group_free_head, r.group_unused_from)) return "group_free_head";
  if (!index_ok(r.ring_head, r.group_unused_from) || !index_ok(r.ring_tail, r.group_unused_from)) return "group ring";
  if (r.dedup_unused_from > h.dedup_capacity) return "dedup_unused_from";
  if (!index_ok(r.dedup_free_head, r.dedup_unused_from) || !index_ok(r.dedup_oldest, r.dedup_unused_from) ||
      !index_ok(r.dedup_newest, r.dedup_unused_from)) {
    return "dedup lists";
  }
  if (h.metadata_active > 1 || h.metadata_bytes[0] > kMetadataBytes || h.metadata_bytes[1] > kMetadataBytes) {
    return "metadata";
  }
  return nullptr;
}

// The kind word of the mutex QueueCore::format initialises (robust,
// process-shared). glibc trusts that word: another kind (priority
// inheritance, say) with a made-up owner makes pthread_mutex_lock assert and
// abort the process, so the word is checked before any lock call.
int expected_mutex_kind() noexcept {
  static const int kind = [] {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_t m;
    pthread_mutex_init(&m, &attr);
    pthread_mutexattr_destroy(&attr);
    const int k = m.__data.__kind;
    pthread_mutex_destroy(&m);
    return k;
  }();
  return kind;
}

}  // namespace

std::error_code validate_segment(const SegmentHeader& h, std::size_t file_bytes, std::string* why) noexcept {
  if (h.magic != kMagic) return refuse(Errc::segment_corrupt, why, "no queue segment magic");
  // Acquire: pairs with the creator's release store, written after the rest.
  const std::uint32_t version = atom(const_cast<std::uint32_t&>(h.layout_version)).load(std::memory_order_acquire);
  if (version == 0) return refuse(Errc::segment_corrupt, why, "its creator died while formatting it");
  if ((version >> 16) != kLayoutMajor) {
    return refuse(Errc::incompatible_layout, why,
                  "it has segment layout " + std::to_string(version >> 16) + ", and this version reads layout " +
                      std::to_string(kLayoutMajor) +
                      " only (no migration: drain it with the shmqd that made it, or "
                      "delete it)");
  }
  // Bounded before the geometry is computed from them: no overflow there.
  if (h.header_bytes != sizeof(SegmentHeader) || h.segment_bytes != file_bytes || h.capacity == 0 ||
      h.capacity > kMaxCapacity || h.arena_bytes == 0 || h.arena_bytes > (1ull << 40) ||
      h.arena_bytes % kMaxBlock != 0 || h.dedup_capacity > kDedupEntriesMax) {
    return refuse(Errc::segment_corrupt, why,
                  "its sizes do not match the file (" + std::to_string(file_bytes) + " bytes)");
  }
  const SegmentGeometry g = SegmentGeometry::compute(h.capacity, h.arena_bytes, h.dedup_capacity, h.fifo != 0);
  if (g.descriptors_offset != h.descriptors_offset || g.heap_offset != h.heap_offset ||
      g.groups_offset != h.groups_offset || g.group_buckets_offset != h.group_buckets_offset ||
      g.group_bucket_count != h.group_bucket_count || g.dedup_offset != h.dedup_offset ||
      g.dedup_capacity != h.dedup_capacity || g.dedup_buckets_offset != h.dedup_buckets_offset ||
      g.dedup_bucket_count != h.dedup_bucket_count || g.attempts_offset != h.attempts_offset ||
      g.metadata_offset != h.metadata_offset || g.order_map_offset != h.order_map_offset ||
      g.arena_offset != h.arena_offset || g.total_bytes != h.segment_bytes) {
    return refuse(Errc::segment_corrupt, why, "its table offsets do not match its sizes");
  }
  if (atom(const_cast<int&>(h.mutex.__data.__kind)).load(std::memory_order_relaxed) != expected_mutex_kind()) {
    return refuse(Errc::segment_corrupt, why, "its lock is not a robust process-shared mutex");
  }
  if (const char* root = bad_root(h)) {
    return refuse(Errc::segment_corrupt, why, std::string("index root out of range: ") + root);
  }
  if (const auto corrupt = atom(const_cast<std::uint32_t&>(h.corrupt)).load(std::memory_order_relaxed)) {
    return refuse(Errc::segment_corrupt, why,
                  std::string("a process found it corrupt while attached: ") + segment_corrupt_reason(corrupt));
  }
  return {};
}

namespace {

template <class T>
const T* table(const SegmentHeader& h, std::uint64_t offset) {
  return reinterpret_cast<const T*>(reinterpret_cast<const std::uint8_t*>(&h) + offset);
}

std::string at_index(const char* what, std::uint64_t index) { return std::string(what) + " " + std::to_string(index); }

// Read once: another process may change any of it meanwhile.
struct Watermarks {
  std::uint32_t unused_from;
  std::uint64_t arena_untouched;
  std::uint32_t group_unused_from;
};

template <class T>
T once(const T& field) {
  return atom(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

const char* bad_descriptor(const SegmentBounds& b, const Watermarks& w, const GroupRecord* groups,
                           const MessageDescriptor& m) {
  const std::uint32_t word = once(m.state);
  const std::uint32_t state = word & kStateMask;
  if (state > static_cast<std::uint32_t>(MessageState::kPending)) return "state";
  if (word != state && state != static_cast<std::uint32_t>(MessageState::kCached)) return "state";  // see cached_word
  if (state == static_cast<std::uint32_t>(MessageState::kFree)) return nullptr;
  const unsigned order = once(m.block_order);
  if (order < kMinOrder || order > kMaxOrder) return "block order";
  const std::uint64_t block = 1ull << order;
  const std::uint64_t offset = once(m.block_offset);
  if (offset % block != 0 || offset >= w.arena_untouched || w.arena_untouched - offset < block) {
    return "payload block";
  }
  if (std::uint64_t{once(m.body_bytes)} + once(m.attr_bytes) > block) return "payload size";
  const std::uint32_t group = once(m.group);
  if (b.fifo && state != static_cast<std::uint32_t>(MessageState::kWriting)) {
    if (group >= w.group_unused_from || once(groups[group].in_use) == 0) return "group";
  } else if (group != kNil) {
    return "group";
  }
  return nullptr;
}

}  // namespace

std::error_code check_tables(const SegmentHeader& h, std::string* why) noexcept {
  return check_tables(h, SegmentBounds::of(h), why);
}

std::error_code check_tables(const SegmentHeader& h, const SegmentBounds& b, std::string* why) noexcept try {
  const IndexRoots& r = h.roots;
  const SegmentGeometry& geo = b.geometry;
  const Watermarks w{once(r.unused_from), once(r.arena_untouched), once(r.group_unused_from)};
  if (w.unused_from > b.capacity || w.arena_untouched > b.arena_bytes || w.arena_untouched % kMaxBlock != 0 ||
      w.group_unused_from > b.capacity || once(r.dedup_unused_from) > b.dedup_capacity) {
    return refuse(Errc::segment_corrupt, why, "a watermark out of range");
  }
  const auto* d = table<MessageDescriptor>(h, geo.descriptors_offset);
  const auto* groups = table<GroupRecord>(h, geo.groups_offset);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks;
  for (std::uint32_t i = 0; i < w.unused_from; ++i) {
    if (const char* what = bad_descriptor(b, w, groups, d[i])) {
      return refuse(Errc::segment_corrupt, why, at_index("descriptor", i) + ": " + what + " out of range");
    }
    if (once(d[i].state) != 0) {
      const std::uint64_t offset = once(d[i].block_offset);
      blocks.emplace_back(offset, offset + (1ull << std::min<unsigned>(once(d[i].block_order), kMaxOrder)));
    }
  }
  // Two messages' payload blocks must not overlap: freeing one would put
  // allocator links into the other's bytes.
  std::sort(blocks.begin(), blocks.end());
  for (std::size_t i = 1; i < blocks.size(); ++i) {
    if (blocks[i].first < blocks[i - 1].second) {
      return refuse(Errc::segment_corrupt, why, "two messages share payload bytes");
    }
  }
  if (b.fifo) {
    for (std::uint32_t i = 0; i < w.group_unused_from; ++i) {
      if (once(groups[i].id_bytes) > kMaxGroupId)
        return refuse(Errc::segment_corrupt, why, at_index("group record", i));
    }
  }
  // Receive attempts are used (and backed) by FIFO queues alone.
  const auto* attempts = table<ReceiveAttempt>(h, geo.attempts_offset);
  for (std::uint32_t i = 0; b.fifo && i < kAttemptSlots; ++i) {
    const std::uint32_t count = once(attempts[i].count);
    if (count > std::size(attempts[i].messages)) {
      return refuse(Errc::segment_corrupt, why, at_index("receive attempt", i));
    }
    for (std::uint32_t k = 0; k < count; ++k) {
      if (once(attempts[i].messages[k].index) >= b.capacity) {
        return refuse(Errc::segment_corrupt, why, at_index("receive attempt", i));
      }
    }
  }
  return {};
} catch (...) {
  return Errc::internal;  // only the strings can throw (bad_alloc)
}

}  // namespace shmq::detail
