// QueueCore outside its state machine: the segment's geometry and format,
// construction, refusing a corrupt segment, the memory its watermarks
// cover, stats and the lock-free reads. The transitions are in
// transitions.cpp, recovery and reclaim in recovery.cpp, the reaper and the
// waiters in reaper.cpp.
#include "queue_core.hpp"

#include <pthread.h>
#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <ctime>
#include <string>

#include "futex.hpp"
#include "queue_core_internal.hpp"
#include "queue_lock.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

// Sleep in slices of a second, and after each look at the lock word.
[[gnu::noinline]] int lock_sleeping(pthread_mutex_t& mutex) noexcept {
  for (;;) {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer does not see the lock taken when timedlock returns
    // EOWNERDEAD, and reports the recovery's unlock as one of an unlocked
    // mutex: under it, the bounded wait's polling, which ends the same way.
    const int polled = lock_robust_within(mutex, kNsPerSecond);
    if (polled != EBUSY) return polled;
    continue;
#endif
    timespec until{};
    ::clock_gettime(CLOCK_REALTIME, &until);  // pthread_mutex_timedlock's clock
    until.tv_sec += 1;
    const int rc = pthread_mutex_timedlock(&mutex, &until);
    if (rc != ETIMEDOUT) return rc;
    if (lock_abandoned(mutex)) return ENOTRECOVERABLE;
  }
}

std::uint32_t SegmentGeometry::default_dedup_capacity(std::uint32_t capacity, bool fifo) noexcept {
  // The 5-minute window outlives the messages: a queue sending distinct ids
  // at R per second needs 300 R entries. 1,048,576 entries (64 B each,
  // touched only as used) is 3,500 sends a second sustained, above SQS's FIFO
  // limit without high throughput; a small queue gets eight per slot.
  return fifo ? static_cast<std::uint32_t>(std::min<std::uint64_t>(8ull * capacity, kDedupEntriesMax)) : 0;
}

SegmentGeometry SegmentGeometry::compute(std::uint32_t capacity, std::uint64_t arena_bytes,
                                         std::uint32_t dedup_capacity, bool fifo) noexcept {
  SegmentGeometry g{};
  const std::uint64_t n = capacity;
  // A group needs a message, so a FIFO queue has as many group records as
  // slots (address space; touched as used). Its hash buckets are reserved
  // whole at creation, so they stop growing at 2^20: chains get longer only
  // past a million groups at once. A standard queue has neither.
  const std::uint64_t groups = fifo ? n : 0;
  g.group_bucket_count =
      fifo ? static_cast<std::uint32_t>(std::bit_ceil(std::clamp<std::uint64_t>(n, 16, kGroupBucketsMax))) : 1;
  g.dedup_capacity = dedup_capacity;
  g.dedup_bucket_count =
      dedup_capacity > 0 ? static_cast<std::uint32_t>(std::bit_ceil(std::uint64_t{dedup_capacity})) : 1;
  g.descriptors_offset = sizeof(SegmentHeader);
  g.heap_offset = align_up(g.descriptors_offset + n * sizeof(MessageDescriptor), 4096);
  g.groups_offset = align_up(g.heap_offset + n * sizeof(std::uint32_t), 4096);
  g.group_buckets_offset = align_up(g.groups_offset + groups * sizeof(GroupRecord), 4096);
  g.dedup_offset = align_up(g.group_buckets_offset + std::uint64_t{g.group_bucket_count} * 4, 4096);
  g.dedup_buckets_offset = align_up(g.dedup_offset + std::uint64_t{g.dedup_capacity} * sizeof(DedupEntry), 4096);
  g.attempts_offset = align_up(g.dedup_buckets_offset + std::uint64_t{g.dedup_bucket_count} * 4, 4096);
  g.metadata_offset = align_up(g.attempts_offset + kAttemptSlots * sizeof(ReceiveAttempt), 4096);
  g.order_map_offset = align_up(g.metadata_offset + 2 * kMetadataBytes, 4096);
  g.arena_offset = align_up(g.order_map_offset + (arena_bytes >> kMinOrder), 4096);
  g.total_bytes = g.arena_offset + arena_bytes;
  return g;
}

namespace {
template <class T>
T* at(void* base, std::uint64_t offset) {
  return reinterpret_cast<T*>(static_cast<std::uint8_t*>(base) + offset);
}
}  // namespace

SegmentBounds SegmentBounds::of(const SegmentHeader& h) noexcept {
  SegmentBounds b;
  b.capacity = h.capacity;
  b.arena_bytes = h.arena_bytes;
  b.dedup_capacity = h.dedup_capacity;
  b.fifo = h.fifo != 0;
  b.geometry = SegmentGeometry::compute(b.capacity, b.arena_bytes, b.dedup_capacity, b.fifo);
  return b;
}

// The tables are addressed through the geometry computed from the sizes (as
// validate_segment checked the header's offsets against it), never through
// offsets read again later.
QueueCore::QueueCore(void* base, Backing backing) noexcept
    : bounds_(SegmentBounds::of(*static_cast<SegmentHeader*>(base))),
      h_(static_cast<SegmentHeader*>(base)),
      backing_(backing.counted(*static_cast<SegmentHeader*>(base))),
      d_(at<MessageDescriptor>(base, bounds_.geometry.descriptors_offset)),
      heap_slots_(at<std::uint32_t>(base, bounds_.geometry.heap_offset)),
      order_map_(at<std::uint8_t>(base, bounds_.geometry.order_map_offset)),
      arena_base_(at<std::uint8_t>(base, bounds_.geometry.arena_offset)),
      attempts_(at<ReceiveAttempt>(base, bounds_.geometry.attempts_offset)),
      arena_(h_->roots, order_map_, arena_base_, bounds_.arena_bytes, backing_),
      timers_(heap_slots_, h_->roots.heap_size, d_, bounds_.capacity),
      groups_(*h_, d_, at<GroupRecord>(base, bounds_.geometry.groups_offset),
              at<std::uint32_t>(base, bounds_.geometry.group_buckets_offset), bounds_.capacity,
              bounds_.geometry.group_bucket_count, bounds_.fifo),
      dedup_(*h_, at<DedupEntry>(base, bounds_.geometry.dedup_offset),
             at<std::uint32_t>(base, bounds_.geometry.dedup_buckets_offset), bounds_.dedup_capacity,
             bounds_.geometry.dedup_bucket_count, backing_),
      ring_(h_->submit_cells, h_->submit_tail, h_->roots.submit_head),
      mutex_kind_(atom(h_->mutex.__data.__kind).load(std::memory_order_relaxed)) {}

void QueueCore::format(void* base, const FormatParams& p) {
  const SegmentGeometry g = SegmentGeometry::compute(
      p.capacity, p.arena_bytes, SegmentGeometry::default_dedup_capacity(p.capacity, p.fifo), p.fifo);
  auto* h = static_cast<SegmentHeader*>(base);  // zero-filled by ftruncate
  h->magic = kMagic;
  h->header_bytes = sizeof(SegmentHeader);
  h->incarnation = p.incarnation;
  h->segment_bytes = g.total_bytes;
  h->capacity = p.capacity;
  h->descriptors_offset = g.descriptors_offset;
  h->heap_offset = g.heap_offset;
  h->groups_offset = g.groups_offset;
  h->group_buckets_offset = g.group_buckets_offset;
  h->group_bucket_count = g.group_bucket_count;
  h->dedup_offset = g.dedup_offset;
  h->dedup_buckets_offset = g.dedup_buckets_offset;
  h->dedup_capacity = g.dedup_capacity;
  h->dedup_bucket_count = g.dedup_bucket_count;
  h->attempts_offset = g.attempts_offset;
  h->metadata_offset = g.metadata_offset;
  h->order_map_offset = g.order_map_offset;
  h->arena_offset = g.arena_offset;
  h->arena_bytes = p.arena_bytes;
  std::snprintf(h->name, sizeof(h->name), "%s", p.name);
  h->created_ms = p.created_ms;
  h->last_modified_ms = p.created_ms;
  h->visibility_timeout_s = p.visibility_timeout_s;
  h->maximum_message_size = p.maximum_message_size;
  h->receive_wait_s = p.receive_wait_s;
  h->retention_s = p.retention_s;
  h->delay_s = p.delay_s;
  h->fifo = p.fifo ? 1 : 0;
  h->content_dedup = p.content_dedup ? 1 : 0;
  h->dedup_per_group = p.dedup_per_group ? 1 : 0;
  h->throughput_per_group = p.throughput_per_group ? 1 : 0;
  h->max_receive_count = p.max_receive_count;
  h->in_flight_limit = p.in_flight_limit;
  h->memory_limit = p.memory_limit;

  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&h->mutex, &attr);
  pthread_mutexattr_destroy(&attr);

  IndexRoots& r = h->roots;
  r.free_head = r.ready_head = r.ready_tail = kNil;
  r.all_head = r.all_tail = r.redrive_head = kNil;
  r.ring_head = r.ring_tail = kNil;
  r.group_free_head = r.dedup_free_head = r.dedup_oldest = r.dedup_newest = kNil;
  r.next_seq = 1;
  r.arena_free_bytes = p.arena_bytes;
  for (auto& head : r.arena_free_head) head = kNilOffset;
  h->trim.memory_in_use = memory_by_watermarks(SegmentBounds::of(*h), r);
  // A slot's first generation: never 0, which is what a page given back
  // reads as, so that a copy validated against a punched slot fails.
  h->trim.generation_base = 1;
  h->next_deadline_ns = ~0ull;
  h->reaper_deadline_ns = ~0ull;
  SubmitRing::format(h->submit_cells);

  // Release: a process that acquire-loads the version sees everything above.
  atom(h->layout_version).store(kLayoutVersion, std::memory_order_release);
}

// ---- Refusing a segment (see refused()) ----

void QueueCore::refuse_lock() noexcept {
  refuse(SegmentCheck::kLock, "its lock is no longer a robust process-shared mutex");
}

std::error_code QueueCore::fault() const noexcept {
  return refused() ? std::error_code(Errc::segment_corrupt) : std::error_code{};
}

std::string QueueCore::refusal() const {
  // Acquire: pairs with refuse()'s release, after why_ was written.
  const std::uint32_t mine = poisoned_.load(std::memory_order_acquire);
  if (mine != 0) return why_[0] != '\0' ? std::string(why_) : segment_corrupt_reason(mine);
  const std::uint32_t theirs = atom(h_->corrupt).load(std::memory_order_relaxed);
  if (theirs == 0) return {};
  // Which table failed, if that was it: check_tables reads with bounds of
  // this process only, so it is safe without the lock (racy, but a report).
  std::string why;
  if (theirs - 1 == static_cast<std::uint32_t>(SegmentCheck::kTables) && check_tables(*h_, bounds_, &why)) {
    return "a process found " + why;
  }
  return std::string("a process found ") + segment_corrupt_reason(theirs);
}

void QueueCore::refuse(SegmentCheck check, const std::string& why) noexcept {
  // One writer of why_, even when two threads refuse at once (one may not
  // hold the lock: a lock found unusable is refused before any lock call).
  // Relaxed: the claim orders nothing; poisoned_ publishes why_.
  if (refusing_.exchange(true, std::memory_order_relaxed)) return;
  std::snprintf(why_, sizeof(why_), "%s", why.empty() ? segment_check_name(check) : why.c_str());
  const auto code = static_cast<std::uint32_t>(check) + 1;
  // Release: refusal() reads why_ after an acquire load of this.
  poisoned_.store(code, std::memory_order_release);
  // Relaxed: the flag orders nothing; every process reads it before it locks.
  std::uint32_t none = 0;
  atom(h_->corrupt).compare_exchange_strong(none, code, std::memory_order_relaxed);
  // Sleeping receivers wake to find it refused; the daemon's reaper too, and
  // its turn fails the queue at once.
  atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&h_->ready_seq, INT_MAX);
  reaper_wake();
}

bool QueueCore::repair() noexcept {
  std::string why;
  if (!tables_sound(&why)) {
    refuse(SegmentCheck::kTables, why);
    return false;
  }
  try {
    rebuild_locked();
  } catch (const SegmentFault& f) {
    refuse(f.check);  // the tables changed under the rebuild
    return false;
  }
  atom(h_->counts.recoveries).fetch_add(1, std::memory_order_relaxed);
  futex_wake(&h_->ready_seq, INT_MAX);  // wake-ups the abandoned section owed; spares are harmless
  return true;
}

// ---- Memory ----

std::uint64_t QueueCore::memory_by_watermarks(const SegmentBounds& b, const IndexRoots& r) noexcept {
  const SegmentGeometry& g = b.geometry;
  // What every queue has (the header) and a FIFO queue's tables reserved
  // whole at creation; the metadata copies are left out (a few KiB, bounded
  // by the policy quotas).
  std::uint64_t bytes = g.descriptors_offset;
  if (b.fifo) {
    bytes += std::uint64_t{g.group_bucket_count} * 4 + std::uint64_t{g.dedup_bucket_count} * 4 +
             (g.metadata_offset - g.attempts_offset);
  }
  bytes += round_up_slots(r.unused_from, b.capacity) * slot_bytes(b.fifo);
  bytes += round_up_slots(r.dedup_unused_from, b.dedup_capacity) * sizeof(DedupEntry);
  const std::uint64_t untouched = std::min(r.arena_untouched, b.arena_bytes);
  return bytes + untouched + (untouched >> kMinOrder);
}

std::uint64_t QueueCore::first_message_memory(const FormatParams& p) noexcept {
  SegmentBounds b;
  b.capacity = p.capacity;
  b.arena_bytes = p.arena_bytes;
  b.dedup_capacity = SegmentGeometry::default_dedup_capacity(p.capacity, p.fifo);
  b.fifo = p.fifo;
  b.geometry = SegmentGeometry::compute(b.capacity, b.arena_bytes, b.dedup_capacity, b.fifo);
  IndexRoots r{};
  r.unused_from = 1;
  r.dedup_unused_from = b.fifo ? 1 : 0;
  r.arena_untouched = kMaxBlock;
  return memory_by_watermarks(b, r);
}

std::array<Backing::Region, 3> QueueCore::slot_regions(std::uint32_t first, std::uint32_t count) const noexcept {
  const std::uint32_t n = std::min(count, bounds_.capacity - first);
  // The timer heap and the group records never hold more entries than
  // descriptors were ever used (a group needs a message).
  return {{{&d_[first], std::size_t{n} * sizeof(MessageDescriptor)},
           {&heap_slots_[first], std::size_t{n} * sizeof(std::uint32_t)},
           {at<GroupRecord>(h_, bounds_.geometry.groups_offset) + first,
            fifo() ? std::size_t{n} * sizeof(GroupRecord) : 0}}};
}

bool QueueCore::reserve_descriptors(std::uint32_t first, std::uint32_t count) noexcept {
  const auto regions = slot_regions(first, count);
  return backing_.grow({regions[0], regions[1], regions[2]});
}

bool QueueCore::reserve_fifo_tables() noexcept {
  auto* base = reinterpret_cast<std::uint8_t*>(h_);
  const SegmentGeometry& g = bounds_.geometry;
  return !fifo() || (backing_.reserve(base + g.group_buckets_offset, std::size_t{g.group_bucket_count} * 4) &&
                     backing_.reserve(base + g.dedup_buckets_offset, std::size_t{g.dedup_bucket_count} * 4) &&
                     backing_.reserve(base + g.attempts_offset, g.metadata_offset - g.attempts_offset));
}

// ---- Stats and lock-free reads ----

QueueCore::Stats QueueCore::stats() noexcept {
  Lock lock(*this, lock_wait());
  if (lock.owns()) {
    // Messages sent without the mutex count once they are committed.
    guarded(lock, [&] {
      drain_submitted();
      publish_deadline();
    });
    return Stats{.counts = h_->counts,
                 .totals = h_->totals,
                 .slots_ever_used = h_->roots.unused_from,
                 .arena_free_bytes = h_->roots.arena_free_bytes,
                 .memory_in_use = h_->trim.memory_in_use,
                 .memory_limit = h_->memory_limit,
                 .trims = h_->trim.trims,
                 .cache_take_backs = h_->caches.take_backs,
                 .locked = true};
  }
  // The lock stays held: the counts and totals as their lock-free readers
  // see them (relaxed, each on its own; they are written with atomic_ref for
  // that), the table use as a hint, the arena's free bytes unknown (0).
  // Messages sent without the mutex and not committed yet count as sent and
  // visible, as they will be.
  constexpr auto relaxed = std::memory_order_relaxed;
  Counts& c = h_->counts;
  Stats s{};
  const std::uint32_t submitted = fifo() ? 0 : ring_.waiting();
  s.counts.visible = atom(c.visible).load(relaxed) + submitted;
  s.counts.in_flight = atom(c.in_flight).load(relaxed);
  s.counts.delayed = atom(c.delayed).load(relaxed);
  s.counts.writing = atom(c.writing).load(relaxed);
  s.counts.redrive = atom(c.redrive).load(relaxed);
  s.counts.sent_total = atom(c.sent_total).load(relaxed) + submitted;
  s.counts.received_total = atom(c.received_total).load(relaxed);
  s.counts.deleted_total = atom(c.deleted_total).load(relaxed);
  s.counts.recoveries = atom(c.recoveries).load(relaxed);
  s.totals.expired_total = atom(h_->totals.expired_total).load(relaxed);
  s.totals.dead_lettered_total = atom(h_->totals.dead_lettered_total).load(relaxed);
  s.slots_ever_used = load_hint(h_->roots.unused_from);
  s.memory_in_use = atom(h_->trim.memory_in_use).load(relaxed);
  s.memory_limit = atom(h_->memory_limit).load(relaxed);
  s.trims = atom(h_->trim.trims).load(relaxed);
  s.cache_take_backs = atom(h_->caches.take_backs).load(relaxed);
  return s;
}

bool QueueCore::still_valid(const Delivery& delivery) const noexcept {
  // Seqlock-style: the payload reads above must not move below this check.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (delivery.index >= bounds_.capacity) return false;
  return atom(d_[delivery.index].generation).load(std::memory_order_relaxed) == delivery.handle.generation;
}

std::uint32_t QueueCore::available_count() const noexcept {
  // Messages on the submit ring are not counted yet, but a receive would
  // commit and take them.
  return atom(h_->available).load(std::memory_order_relaxed) + (!fifo() && ring_.nonempty() ? 1 : 0);
}

std::uint64_t QueueCore::next_deadline_ns() const noexcept {
  return atom(h_->next_deadline_ns).load(std::memory_order_relaxed);
}

}  // namespace shmq::detail
