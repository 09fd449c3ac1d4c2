#include "queue_core.hpp"

#include <signal.h>
#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include "cpu_relax.hpp"
#include "descriptor_list.hpp"
#include "futex.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

namespace {

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

MessageState state_of(MessageDescriptor& m) noexcept {
  // Relaxed under the mutex; lock-free readers only compare generations.
  return static_cast<MessageState>(atom(m.state).load(std::memory_order_relaxed));
}

std::uint64_t seconds_ns(std::uint32_t seconds) { return std::uint64_t{seconds} * kNsPerSecond; }

bool committed(MessageState s) {
  return s == MessageState::kReady || s == MessageState::kInFlight || s == MessageState::kDelayed ||
         s == MessageState::kRedrive;
}

}  // namespace

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

// glibc's robust mutexes never spin: a locker that finds the mutex held
// sleeps in the kernel at once, and the owner must make a FUTEX_WAKE system
// call to unlock. Critical sections here are a few hundred nanoseconds, and
// a receiver that sees a message arrive tries to lock while the sender is
// still unlocking; so spin a little first, reading the lock word (glibc's
// __lock: 0 when free) and trying only when it is free.
int lock_sleeping(pthread_mutex_t& mutex) noexcept;

int lock_robust(pthread_mutex_t& mutex) noexcept {
  constexpr int kSpins = 200;  // about 1-10 us, depending on the cost of pause
  static_assert(sizeof(mutex.__data.__lock) == sizeof(int));
  for (int i = 0; i < kSpins; ++i) {
    // Relaxed: only a hint; trylock does the synchronising.
    if (std::atomic_ref<int>(mutex.__data.__lock).load(std::memory_order_relaxed) == 0) {
      const int rc = pthread_mutex_trylock(&mutex);
      if (rc != EBUSY) return rc;
    }
    cpu_relax();
  }
  return lock_sleeping(mutex);
}

// After a long wait, a look at the lock word: a lock that names a thread
// that does not exist was written by another process (an owner that dies
// has the kernel hand the lock on). True if nobody will ever unlock it. A
// live holder, even a stopped one, is not such a lock.
bool lock_abandoned(pthread_mutex_t& mutex) noexcept {
  // The futex word: the owner's thread id, and flags (glibc's robust
  // mutexes, as the kernel reads them). Relaxed: only a diagnosis.
  const auto word =
      static_cast<std::uint32_t>(std::atomic_ref<int>(mutex.__data.__lock).load(std::memory_order_relaxed));
  constexpr std::uint32_t kTidMask = 0x3fffffff;    // FUTEX_TID_MASK
  constexpr std::uint32_t kOwnerDied = 0x40000000;  // FUTEX_OWNER_DIED: the next try recovers it
  const auto owner = static_cast<pid_t>(word & kTidMask);
  if (word == 0 || (word & kOwnerDied) != 0) return false;
  // Held by nobody, by a thread that does not exist, or by this very
  // thread (which never holds two queue locks, nor one twice).
  return owner == 0 || owner == ::gettid() || (::kill(owner, 0) != 0 && errno == ESRCH);
}

int lock_robust_within(pthread_mutex_t& mutex, std::uint64_t wait_ns) noexcept;

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

// lock_robust without the sleep: EBUSY if the lock stays held while it spins.
int try_lock_robust(pthread_mutex_t& mutex) noexcept {
  constexpr int kSpins = 200;
  for (int i = 0; i < kSpins; ++i) {
    // Relaxed: only a hint; trylock does the synchronising.
    if (std::atomic_ref<int>(mutex.__data.__lock).load(std::memory_order_relaxed) == 0) {
      const int rc = pthread_mutex_trylock(&mutex);
      if (rc != EBUSY) return rc;
    }
    cpu_relax();
  }
  return EBUSY;
}

// lock_robust that waits at most `wait_ns` (QueueCore::kWaitForever: no
// limit); EBUSY if the lock stays held that long. Past the spin it polls,
// sleeping 10 us doubling to 1 ms between tries, rather than calling
// pthread_mutex_timedlock: a bounded wait is for callers that would rather
// fail than wait, on a lock already held longer than a critical section
// lasts, where a millisecond's lateness costs nothing; and ThreadSanitizer
// does not see the lock taken when timedlock returns EOWNERDEAD (it then
// reports the recovery's unlock as one of an unlocked mutex).
int lock_robust_within(pthread_mutex_t& mutex, std::uint64_t wait_ns) noexcept {
  if (wait_ns == QueueCore::kWaitForever) return lock_robust(mutex);
  int rc = try_lock_robust(mutex);
  if (rc != EBUSY || wait_ns == 0) return rc;
  const std::uint64_t start = monotonic_ns();
  const std::uint64_t until = start + std::min<std::uint64_t>(wait_ns, ~0ull - start);
  for (std::uint64_t pause_ns = 10'000;; pause_ns = std::min<std::uint64_t>(2 * pause_ns, 1'000'000)) {
    const std::uint64_t t = monotonic_ns();
    // A bounded wait ends busy, unless the lock is one nobody will release:
    // then the segment is refused, as after an unbounded one.
    if (t >= until) return lock_abandoned(mutex) ? ENOTRECOVERABLE : EBUSY;
    const std::uint64_t ns = std::min(pause_ns, until - t);
    const timespec pause{static_cast<time_t>(ns / kNsPerSecond), static_cast<long>(ns % kNsPerSecond)};
    ::nanosleep(&pause, nullptr);
    rc = pthread_mutex_trylock(&mutex);
    if (rc != EBUSY) return rc;
  }
}

}  // namespace

// Holds the queue mutex. On EOWNERDEAD the previous owner died inside a
// critical section: rebuild the derived structures, then mark it consistent.
//
// A lock word another process overwrote must not crash or hang the locker:
// glibc trusts the mutex's kind word (another kind with a made-up owner makes
// a lock call assert and abort), so it is compared with the one seen at
// attach before every lock call; and a lock whose owner thread does not exist
// is never handed on by the kernel, so a locker that waits long checks the
// owner. Either refuses the segment; the Lock then does not own the mutex.
class QueueCore::Lock {
 public:
  explicit Lock(QueueCore& q) noexcept : Lock(q, q.sound_lock() ? lock_robust(q.h_->mutex) : EINVAL) {}
  // Only if the lock comes free while it spins; see owns().
  Lock(QueueCore& q, std::try_to_lock_t) noexcept : Lock(q, q.sound_lock() ? try_lock_robust(q.h_->mutex) : EINVAL) {}
  // Within `wait_ns` (QueueCore::lock_wait); see owns() and busy().
  Lock(QueueCore& q, std::uint64_t wait_ns) noexcept
      : Lock(q, q.sound_lock() ? lock_robust_within(q.h_->mutex, wait_ns) : EINVAL) {}
  ~Lock() {
    if (owns_) pthread_mutex_unlock(&q_.h_->mutex);
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  bool owns() const noexcept { return owns_; }
  // Not owned because the lock stayed held past the wait (not refused).
  bool busy() const noexcept { return !owns_ && !q_.refused(); }

 private:
  Lock(QueueCore& q, int rc) noexcept : q_(q), owns_(rc == 0 || rc == EOWNERDEAD) {
    if (rc != 0) [[unlikely]] {
      not_taken(q, rc);
    }
  }

  [[gnu::noinline]] static void not_taken(QueueCore& q, int rc) noexcept {
    if (rc == EOWNERDEAD) {
      // The dead owner may have been anywhere in a critical section; and the
      // tables are checked before they are rebuilt from (rebuild refuses the
      // segment if they fail).
      q.rebuild();
      atom(q.h_->counts.recoveries).fetch_add(1, std::memory_order_relaxed);
      pthread_mutex_consistent(&q.h_->mutex);
    } else if (rc != 0 && rc != EBUSY && !q.refused()) {
      // ENOTRECOVERABLE needs an owner that unlocked without making the mutex
      // consistent, which this code never does: the segment is not ours.
      q.refuse(SegmentCheck::kLock, std::string("its lock is unusable: ") + std::strerror(rc));
    }
  }

  QueueCore& q_;
  bool owns_;
};

std::error_code QueueCore::attach_check(std::uint64_t max_wait_ns, std::string* why) noexcept {
  timespec deadline{};
  ::clock_gettime(CLOCK_REALTIME, &deadline);  // pthread_mutex_timedlock's clock
  const std::uint64_t end_ns = std::uint64_t(deadline.tv_sec) * kNsPerSecond + deadline.tv_nsec + max_wait_ns;
  deadline.tv_sec = static_cast<time_t>(end_ns / kNsPerSecond);
  deadline.tv_nsec = static_cast<long>(end_ns % kNsPerSecond);
  // A corrupt lock word may name a thread that never unlocks (one that does
  // not exist, so the kernel never hands the lock on): a bounded wait.
  const int rc = pthread_mutex_timedlock(&h_->mutex, &deadline);
  if (rc != 0 && rc != EOWNERDEAD) {
    const auto owner = static_cast<unsigned>(h_->mutex.__data.__owner & 0x3fffffff);  // FUTEX_TID_MASK
    if (why) {
      *why = rc == ETIMEDOUT
                 ? "its lock is held by thread " + std::to_string(owner) +
                       (::kill(static_cast<pid_t>(owner), 0) != 0 && errno == ESRCH ? ", which does not exist"
                                                                                    : ", which did not release it")
                 : std::string("its lock is unusable: ") + std::strerror(rc);
    }
    return Errc::segment_corrupt;
  }
  // What is authoritative (descriptor states and fields, group and dedup
  // identities) is checked; everything derived from it (lists, heap, arena
  // free lists, counts) is then rebuilt rather than trusted, as after a
  // dead owner.
  std::error_code ec = check_tables(*h_, bounds_, why);
  // rebuild() clears the FIFO hash tables: their pages must have backing
  // first (a segment from before backing was reserved may lack it).
  if (!ec && !reserve_fifo_tables()) {
    ec = Errc::over_limit;
    if (why) *why = "/dev/shm has no room for its hash tables";
  }
  if (!ec) {
    rebuild();
    if (refused()) {
      ec = Errc::segment_corrupt;
      if (why) *why = refusal();
    } else if (rc == EOWNERDEAD) {
      atom(h_->counts.recoveries).fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (rc == EOWNERDEAD) pthread_mutex_consistent(&h_->mutex);
  pthread_mutex_unlock(&h_->mutex);
  return ec;
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

  // Release: a process that acquire-loads the version sees everything above.
  atom(h->layout_version).store(kLayoutVersion, std::memory_order_release);
}

void QueueCore::set_state(std::uint32_t index, MessageState s) noexcept {
  // Release: a lock-free reader that sees the new state sees the fields
  // written before it.
  atom(d_[index].state).store(static_cast<std::uint32_t>(s), std::memory_order_release);
}

void QueueCore::count(MessageState s, int delta) noexcept {
  std::uint32_t* field = nullptr;
  switch (s) {
    case MessageState::kReady:
      field = &h_->counts.visible;
      if (!fifo()) set_available(delta);
      break;
    case MessageState::kInFlight:
      field = &h_->counts.in_flight;
      break;
    case MessageState::kDelayed:
      field = &h_->counts.delayed;
      break;
    case MessageState::kWriting:
      field = &h_->counts.writing;
      break;
    case MessageState::kRedrive:
      field = &h_->counts.redrive;
      break;
    case MessageState::kFree:
      return;
  }
  // Relaxed: written only under the mutex; lock-free readers want an estimate.
  atom(*field).store(*field + static_cast<std::uint32_t>(delta), std::memory_order_relaxed);
}

void QueueCore::set_available(int delta) noexcept {
  std::uint32_t& a = h_->available;
  atom(a).store(a + static_cast<std::uint32_t>(delta), std::memory_order_relaxed);  // see count()
}

// ---- Checks at each use (see refused()) ----

MessageDescriptor& QueueCore::desc_in(std::uint32_t index, MessageState s) const {
  MessageDescriptor& m = desc(index);
  if (state_of(m) != s) [[unlikely]] {
    segment_fault(SegmentCheck::kDescriptorState);
  }
  return m;
}

std::uint32_t QueueCore::unused_from() const {
  const std::uint32_t n = h_->roots.unused_from;
  if (n > bounds_.capacity) [[unlikely]] {
    segment_fault(SegmentCheck::kWatermark);
  }
  return n;
}

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

bool QueueCore::tables_sound(std::string* why) const noexcept {
  const SegmentHeader& h = *h_;
  const SegmentGeometry& g = bounds_.geometry;
  // The identity and sizes as they were at attach: else check_tables would
  // read one geometry while this process addresses another.
  if (h.magic != kMagic || h.capacity != bounds_.capacity || h.arena_bytes != bounds_.arena_bytes ||
      h.dedup_capacity != bounds_.dedup_capacity || (h.fifo != 0) != bounds_.fifo ||
      h.descriptors_offset != g.descriptors_offset || h.groups_offset != g.groups_offset ||
      h.attempts_offset != g.attempts_offset || h.segment_bytes != g.total_bytes) {
    if (why) *why = "its header's sizes changed while attached";
    return false;
  }
  return !check_tables(h, bounds_, why);
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

template <class Body>
bool QueueCore::guarded(const Lock& lock, Body&& body) noexcept {
  if (!lock.owns() || refused()) return false;
  try {
    body();
    return true;
  } catch (const SegmentFault&) {
    if (!repair()) return false;
  }
  // Once more, on rebuilt structures: a second failure means the tables are
  // being changed while this process works on them.
  try {
    body();
    return true;
  } catch (const SegmentFault& f) {
    refuse(f.check);
    return false;
  }
}

// ---- Lists ----

std::uint64_t QueueCore::retention_deadline() const {
  const std::uint32_t oldest = h_->roots.all_head;
  if (oldest == kNil) return ~0ull;
  return desc(oldest).sent_ns + seconds_ns(atom(h_->retention_s).load(std::memory_order_relaxed));
}

void QueueCore::publish_deadline() {
  // Stored only when it changes: receivers poll this line.
  const std::uint64_t deadline = std::min(timers_.earliest(), retention_deadline());
  if (h_->next_deadline_ns != deadline) atom(h_->next_deadline_ns).store(deadline, std::memory_order_relaxed);
}

bool QueueCore::reaper_needs_wake(std::uint64_t deadline_ns) const noexcept {
  return atom(h_->reaper_waiting).load(std::memory_order_relaxed) != 0 && deadline_ns < h_->reaper_deadline_ns;
}

void QueueCore::ready_push_back(std::uint32_t index) {
  ReadyList(d_, bounds_.capacity, h_->roots.ready_head, h_->roots.ready_tail).push_back(index);
}

void QueueCore::ready_push_front(std::uint32_t index) {
  ReadyList(d_, bounds_.capacity, h_->roots.ready_head, h_->roots.ready_tail).push_front(index);
}

void QueueCore::ready_insert_after(std::uint32_t after, std::uint32_t index) {
  ReadyList(d_, bounds_.capacity, h_->roots.ready_head, h_->roots.ready_tail).insert_after(after, index);
}

void QueueCore::ready_unlink(std::uint32_t index) {
  ReadyList(d_, bounds_.capacity, h_->roots.ready_head, h_->roots.ready_tail).unlink(index);
}

void QueueCore::all_push_back(std::uint32_t index) {
  RetentionList(d_, bounds_.capacity, h_->roots.all_head, h_->roots.all_tail).push_back(index);
}

void QueueCore::all_unlink(std::uint32_t index) {
  RetentionList(d_, bounds_.capacity, h_->roots.all_head, h_->roots.all_tail).unlink(index);
}

// READY -> REDRIVE: a receive found a message already received
// maxReceiveCount times (the count was lowered since); it waits for the
// daemon to move it to the dead-letter queue. Its other lists are the
// caller's to leave.
void QueueCore::redrive_instead(std::uint32_t index) {
  count(MessageState::kReady, -1);
  set_state(index, MessageState::kRedrive);
  count(MessageState::kRedrive, +1);
  redrive_push(index);
}

void QueueCore::redrive_push(std::uint32_t index) {
  IndexRoots& r = h_->roots;
  MessageDescriptor& m = desc(index);
  const std::uint32_t head = r.redrive_head;
  if (head != kNil) desc(head).prev = index;
  m.prev = kNil;
  store_hint(m.next, head);
  r.redrive_head = index;
}

void QueueCore::redrive_unlink(std::uint32_t index) {
  MessageDescriptor& m = desc(index);
  const std::uint32_t prev = m.prev;
  const std::uint32_t next = m.next;
  if (prev != kNil) {
    store_hint(desc(prev).next, next);
  } else {
    h_->roots.redrive_head = next;
  }
  if (next != kNil) desc(next).prev = prev;
  store_hint(m.next, kNil);
  m.prev = kNil;
}

void QueueCore::free_slot(std::uint32_t index) {
  MessageDescriptor& m = desc(index);
  // Checked before the commit point: a block out of range leaves the message
  // as it was, for a repair to judge.
  const std::uint64_t offset = m.block_offset;
  const unsigned order = m.block_order;
  arena_.check_block(offset, order);
  // Release: a reader validating a copy (still_valid) must not see the old
  // generation once the block can be handed to another sender.
  const std::uint32_t generation = m.generation + 1;
  atom(m.generation).store(generation, std::memory_order_release);
  if (generation > h_->roots.max_generation) h_->roots.max_generation = generation;
  // The commit point comes before the block is released: the allocator
  // writes its free-list links into the block it frees, and a process killed
  // between the two must not leave a live message with those bytes in its
  // body. Once the state says free, recovery frees the block from the states.
  set_state(index, MessageState::kFree);
  arena_.release(offset, order);
  store_hint(m.next, h_->roots.free_head);
  store_hint(h_->roots.free_head, index);
}

// Takes a committed message out of every index its state puts it in, and
// out of its group and the retention list; the caller frees the slot. A
// FIFO message leaving the head of its group's list may open the group.
void QueueCore::detach(std::uint32_t index, MessageState state) {
  MessageDescriptor& m = desc(index);
  const std::uint32_t group = m.group;
  switch (state) {
    case MessageState::kReady:
      if (!fifo()) ready_unlink(index);
      break;
    case MessageState::kInFlight:
    case MessageState::kDelayed:
      timers_.remove(index);
      break;
    case MessageState::kRedrive:
      redrive_unlink(index);
      break;
    default:
      segment_fault(SegmentCheck::kDescriptorState);  // on a list of committed messages, not committed
  }
  if (fifo() && state != MessageState::kDelayed) groups_.list_unlink(group, index);
  count(state, -1);
  all_unlink(index);
  if (group != kNil) {
    if (fifo()) set_available(groups_.update_ring(group));
    groups_.drop_message(group);
  }
}

std::uint32_t QueueCore::reserve(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                                 std::span<std::error_code> errors) noexcept {
  Lock lock(*this, lock_wait());
  if (lock.busy()) {
    busy(out, errors);
    return atom(h_->daemon_epoch).load(std::memory_order_relaxed);
  }
  std::size_t next = 0;
  if (!guarded(lock, [&] { reserve_locked(sizes, pid, out, errors, next); })) {
    for (std::size_t i = next; i < sizes.size(); ++i) {
      out[i] = Reservation{};
      errors[i] = Errc::segment_corrupt;
    }
  }
  return atom(h_->daemon_epoch).load(std::memory_order_relaxed);
}

void QueueCore::busy(std::span<Reservation> out, std::span<std::error_code> errors) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = Reservation{};
    if (!errors[i]) errors[i] = Errc::queue_busy;
  }
}

// From entry `next` on, advancing it past each entry done: a repair (see
// guarded) resumes with the entry that failed. Until a slot's state says
// kWriting it is free, and a rebuild returns it to the free list.
void QueueCore::reserve_locked(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                               std::span<std::error_code> errors, std::size_t& next) {
  IndexRoots& r = h_->roots;
  for (; next < sizes.size(); ++next) {
    const std::size_t i = next;
    out[i] = Reservation{};
    if (errors[i]) continue;
    std::uint32_t index = r.free_head;
    if (index != kNil) {
      store_hint(r.free_head, desc_in(index, MessageState::kFree).next);
    } else if (const std::uint32_t from = unused_from(); from < bounds_.capacity) {
      // Descriptors past the watermark get backing store a chunk at a time,
      // before anything touches them.
      if (from % kReserveChunk == 0 && !reserve_descriptors(from, kReserveChunk)) {
        errors[i] = Errc::queue_full;  // /dev/shm is full
        continue;
      }
      index = from;
      // Its generation may be one a receipt handle from before the last
      // trim names (or zero, punched out): start above all of those.
      atom(d_[index].generation).store(h_->trim.generation_base, std::memory_order_release);
      store_hint(r.unused_from, index + 1);
    } else {
      errors[i] = Errc::queue_full;
      continue;
    }
    const unsigned order = Arena::order_for(sizes[i]);
    const std::uint64_t offset = arena_.allocate(order);
    MessageDescriptor& m = d_[index];
    if (offset == kNilOffset) {
      store_hint(m.next, r.free_head);  // still kFree: hand the slot back
      store_hint(r.free_head, index);
      errors[i] = Errc::queue_full;
      continue;
    }
    m.block_offset = offset;
    m.block_order = static_cast<std::uint8_t>(order);
    m.body_bytes = sizes[i];
    m.attr_bytes = 0;
    m.owner_pid = pid;
    atom(m.receive_count).store(0, std::memory_order_relaxed);
    m.first_receive_ms = 0;
    m.heap_pos = kNil;
    store_hint(m.next, kNil);
    m.prev = kNil;
    m.all_next = m.all_prev = kNil;
    m.group = kNil;
    m.flags = 0;
    set_state(index, MessageState::kWriting);
    count(MessageState::kWriting, +1);
    out[i] = Reservation{index, m.generation, pid, arena_base_ + offset};
  }
}

// Under the lock. A reclaimed slot has a new generation (free_slot bumps
// it), and may be kWriting again for another sender.
bool QueueCore::holds(const Reservation& slot) const {
  const MessageDescriptor& m = desc(slot.index);
  return state_of(const_cast<MessageDescriptor&>(m)) == MessageState::kWriting && m.generation == slot.generation &&
         m.owner_pid == slot.owner_pid;
}

namespace {

std::uint64_t round_up_slots(std::uint64_t n, std::uint64_t limit) noexcept {
  return std::min(limit, (std::min(n, limit) + kReserveChunk - 1) / kReserveChunk * kReserveChunk);
}

// Bytes a descriptor slot takes with its timer-heap entry and, in a FIFO
// queue, its group record: what each chunk of slots reserves together.
std::uint64_t slot_bytes(bool fifo) noexcept {
  return sizeof(MessageDescriptor) + sizeof(std::uint32_t) + (fifo ? sizeof(GroupRecord) : 0);
}

}  // namespace

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

bool QueueCore::reserve_in_use() noexcept {
  Lock lock(*this);
  if (!lock.owns()) return false;
  const IndexRoots& r = h_->roots;
  const SegmentGeometry& g = bounds_.geometry;
  // Watermarks clamped to the tables: reserving past them would grow the file.
  const std::uint32_t used =
      std::min(bounds_.capacity,
               (std::min(r.unused_from, bounds_.capacity) + kReserveChunk - 1) / kReserveChunk * kReserveChunk);
  const std::uint64_t untouched = std::min(r.arena_untouched, bounds_.arena_bytes);
  auto* base = reinterpret_cast<std::uint8_t*>(h_);
  const bool fifo_tables =
      reserve_fifo_tables() &&
      (!fifo() ||
       backing_.reserve(base + g.dedup_offset,
                        std::size_t{std::min(bounds_.dedup_capacity,
                                             std::min(r.dedup_unused_from, bounds_.dedup_capacity) + kReserveChunk)} *
                            sizeof(DedupEntry)));
  // The metadata copies as far as they were written (store_metadata
  // reserves as it writes); the receive attempts of a FIFO queue.
  const auto metadata_copy = [&](std::uint32_t copy) {
    const std::size_t bytes =
        std::min<std::size_t>(atom(h_->metadata_bytes[copy]).load(std::memory_order_relaxed), kMetadataBytes);
    return backing_.reserve(base + g.metadata_offset + copy * kMetadataBytes, bytes);
  };
  const auto slots = slot_regions(0, used);
  const bool slots_backed = std::all_of(slots.begin(), slots.end(), [&](const Backing::Region& region) {
    return backing_.reserve(region.p, region.bytes);
  });
  return backing_.reserve(base, g.descriptors_offset) && slots_backed && metadata_copy(0) && metadata_copy(1) &&
         backing_.reserve(order_map_, untouched >> kMinOrder) && backing_.reserve(arena_base_, untouched) &&
         fifo_tables;
}

void QueueCore::unreserve(std::span<Reservation> slots) noexcept {
  if (std::all_of(slots.begin(), slots.end(), [](const Reservation& r) { return r.index == kNil; })) return;
  Lock lock(*this);
  std::size_t next = 0;
  const bool done = guarded(lock, [&] {
    for (; next < slots.size(); ++next) {
      Reservation& slot = slots[next];
      if (slot.index == kNil) continue;
      if (holds(slot)) {
        count(MessageState::kWriting, -1);
        free_slot(slot.index);
      }
      slot = Reservation{};
    }
  });
  if (!done) {
    for (Reservation& slot : slots) slot = Reservation{};  // the segment is refused: nothing to give back
  }
}

std::uint32_t QueueCore::commit(std::span<Reservation> slots, std::span<const std::uint32_t> bodies,
                                std::span<const CommitRequest> requests, std::span<CommitResult> results,
                                Now now) noexcept {
  std::uint32_t receivable = 0;
  bool wake_reaper = false;
  {
    Lock lock(*this);
    std::size_t next = 0;
    if (!guarded(lock,
                 [&] { receivable += commit_locked(slots, bodies, requests, results, now, wake_reaper, next); })) {
      for (std::size_t i = next; i < slots.size(); ++i) {
        if (slots[i].index != kNil) results[i].error = Errc::segment_corrupt;
        slots[i] = Reservation{};
      }
    }
  }
  if (wake_reaper) reaper_wake();
  return receivable;
}

// Prefetching before taking the lock: the cache lines a critical section
// will write are usually modified in another core's cache (the last
// locker's), and a miss inside the section holds every other process up.
// The reads here are racy hints: relaxed atomic loads of fields that the
// mutex guards and that every writer stores with store_hint, so that they
// are not data races; a stale value only wastes a prefetch. Prefetching an
// address never faults, but no address is formed from a hint before it is
// compared with this process's bounds: a corrupt hint costs nothing.
namespace {
void prefetch_for_write(const void* p) noexcept { __builtin_prefetch(p, 1, 3); }

// A total under the mutex, stored atomically: stats() reads it without the
// lock when the lock stays held. Relaxed: a count, ordering nothing.
void add_total(std::uint64_t& total, std::uint64_t n) noexcept {
  atom(total).store(total + n, std::memory_order_relaxed);
}

template <class T>
T load_hint(const T& field) noexcept {
  // Relaxed: a hint (see above); the critical section reads it again.
  return atom(const_cast<T&>(field)).load(std::memory_order_relaxed);
}
}  // namespace

void QueueCore::prefetch_for_send(std::span<const std::uint32_t> sizes) const noexcept {
  const IndexRoots& r = h_->roots;
  std::uint32_t index = load_hint(r.free_head);
  if (index >= bounds_.capacity) index = load_hint(r.unused_from);
  if (index < bounds_.capacity) {
    prefetch_for_write(&d_[index]);
    prefetch_for_write(reinterpret_cast<const std::uint8_t*>(&d_[index]) + kCacheLine);
  }
  const unsigned order = Arena::order_for(sizes.empty() ? 0 : sizes[0]);
  if (order > kMaxOrder) return;
  const std::uint64_t block = load_hint(r.arena_free_head[order - kMinOrder]);
  if (block < bounds_.arena_bytes) prefetch_for_write(arena_base_ + block);
}

// Only the head: following its links would load from descriptors outside
// the lock, and a stale hint may name one that a trim has given back (a load
// there would back the page again, or fault if /dev/shm is full). A
// prefetch never faults.
void QueueCore::prefetch_for_receive(std::size_t) const noexcept {
  const std::uint32_t index = load_hint(h_->roots.ready_head);
  if (index < bounds_.capacity) prefetch_for_write(&d_[index]);
}

void QueueCore::prefetch_for_remove(std::span<const ReceiptHandle> handles) const noexcept {
  for (const ReceiptHandle& handle : handles) {
    if (handle.index < bounds_.capacity) prefetch_for_write(&d_[handle.index]);
  }
}

std::uint32_t QueueCore::send_in_one_lock(std::uint32_t epoch, std::span<const std::uint32_t> sizes, std::uint32_t pid,
                                          std::span<Reservation> slots, std::span<std::error_code> errors,
                                          const Fill& fill, std::span<const std::uint32_t> bodies,
                                          std::span<const CommitRequest> requests, std::span<CommitResult> results,
                                          Now now, std::uint32_t& seen_epoch) noexcept {
  std::uint32_t receivable = 0;
  bool wake_reaper = false;
  prefetch_for_send(sizes);
  {
    Lock lock(*this, lock_wait());
    if (lock.busy()) {
      busy(slots, errors);
      seen_epoch = epoch;
      return 0;
    }
    if (epoch != kAnyEpoch && lock.owns()) {
      seen_epoch = atom(h_->daemon_epoch).load(std::memory_order_relaxed);
      if (seen_epoch != epoch) return 0;
    }
    // Progress kept across a repair (see guarded): reserved, filled, committed.
    std::size_t reserved = 0;
    bool filled = false;
    std::size_t committed = 0;
    const bool done = guarded(lock, [&] {
      reserve_locked(sizes, pid, slots, errors, reserved);
      if (!filled) {
        // A kill during the copy leaves kWriting slots, as a kill between
        // reserve() and commit() does: the daemon reclaims them.
        for (std::size_t i = 0; i < slots.size(); ++i) {
          if (slots[i].index != kNil) fill.write(fill.context, i, slots[i].payload);
        }
        filled = true;
      }
      receivable += commit_locked(slots, bodies, requests, results, now, wake_reaper, committed);
    });
    if (!done) {
      for (std::size_t i = 0; i < slots.size(); ++i) {
        if (i >= committed && !errors[i]) errors[i] = Errc::segment_corrupt;
        if (i >= committed) slots[i] = Reservation{};
      }
    }
  }
  if (wake_reaper) reaper_wake();
  return receivable;
}

// From entry `next` on, as reserve_locked. An entry whose commit a repair
// interrupted after its commit point (its state written) is found sent when
// resumed: holds() fails, but the slot is this sender's message.
std::uint32_t QueueCore::commit_locked(std::span<Reservation> slots, std::span<const std::uint32_t> bodies,
                                       std::span<const CommitRequest> requests, std::span<CommitResult> results,
                                       Now now, bool& wake_reaper, std::size_t& next) {
  std::uint32_t receivable = 0;
  if (fifo() && next == 0) dedup_.expire(now.mono_ns);
  for (; next < slots.size(); ++next) {
    const std::size_t i = next;
    const std::uint32_t index = slots[i].index;
    if (index == kNil) continue;
    const CommitRequest& req = requests[i];
    CommitResult& res = results[i];
    MessageDescriptor& m = desc(index);
    if (!holds(slots[i])) {
      const MessageState s = state_of(m);
      if (committed(s) && m.generation == slots[i].generation &&
          std::memcmp(m.message_id, req.message_id.data(), sizeof(m.message_id)) == 0) {
        res.seq = m.seq;  // sent: a repair interrupted the rest of its commit
        res.message_id = req.message_id;
      } else {
        // Freed under this sender (it was taken for dead): the slot and its
        // block may be another message's now, so touch neither.
        res.error = Errc::internal;
      }
      slots[i] = Reservation{};
      continue;
    }
    if (req.dedup) {
      const DedupEntry* seen = dedup_.find(req.dedup_key);
      // An entry with this message's own id was inserted by this commit
      // before a repair interrupted it: not a duplicate.
      const bool own = seen && std::memcmp(seen->message_id, req.message_id.data(), 16) == 0;
      if (seen && !own) {
        res.duplicate = true;
        std::memcpy(res.message_id.data(), seen->message_id, 16);
        res.seq = seen->seq;
        count(MessageState::kWriting, -1);
        free_slot(index);
        slots[i] = Reservation{};
        continue;
      }
      std::uint8_t id[16];
      std::memcpy(id, req.message_id.data(), 16);
      if (!own && !dedup_.insert(req.dedup_key, now.mono_ns + kDedupWindowNs, id, h_->roots.next_seq)) {
        res.error = Errc::queue_full;  // the window is full of live ids: refuse, never forget one
        count(MessageState::kWriting, -1);
        free_slot(index);
        slots[i] = Reservation{};
        continue;
      }
    }
    // At most one group per message slot, so the table is never full here;
    // an id too long for a record never passed the sender's checks.
    const std::uint32_t group = fifo() ? groups_.find_or_create(req.group_id) : kNil;
    if (fifo() && group == kNil) {
      res.error = Errc::invalid_parameter_value;
      count(MessageState::kWriting, -1);
      free_slot(index);
      slots[i] = Reservation{};
      continue;
    }
    std::memcpy(m.message_id, req.message_id.data(), sizeof(m.message_id));
    m.attr_bytes = m.body_bytes - bodies[i];
    m.body_bytes = bodies[i];
    m.seq = h_->roots.next_seq++;
    m.sent_ms = req.sent_ms != 0 ? req.sent_ms : now.wall_ms;
    m.sent_ns = now.mono_ns;  // retention counts from arrival in this queue
    m.group = group;
    m.flags = req.sender_uid ? kHasSenderUid : 0;
    m.sender_uid = req.sender_uid.value_or(0);
    res.seq = m.seq;
    res.message_id = req.message_id;
    count(MessageState::kWriting, -1);
    if (req.delay_s > 0) {
      m.deadline_ns = now.mono_ns + seconds_ns(req.delay_s);
      set_state(index, MessageState::kDelayed);
      timers_.push(index);
      count(MessageState::kDelayed, +1);
      wake_reaper |= reaper_needs_wake(m.deadline_ns);
    } else {
      set_state(index, MessageState::kReady);
      count(MessageState::kReady, +1);
      if (group != kNil) {
        groups_.list_insert(group, index);
        const int added = groups_.update_ring(group);
        set_available(added);
        receivable += static_cast<std::uint32_t>(added);
      } else {
        ready_push_back(index);
        ++receivable;
      }
    }
    if (group != kNil) ++groups_[group].messages;
    all_push_back(index);
    add_total(h_->counts.sent_total, 1);
  }
  // seq_cst pairs with the waiter's waiters increment (see Queue::receive).
  if (receivable > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
  publish_deadline();
  return receivable;
}

// A message becomes visible: an in-flight one whose timeout expired
// (`returned`), or a delayed one whose delay ended.
void QueueCore::make_ready(std::uint32_t index, bool returned, std::uint32_t& last_returned) {
  MessageDescriptor& m = desc(index);
  set_state(index, MessageState::kReady);
  count(MessageState::kReady, +1);
  if (fifo()) {
    // A returned message kept its place in its group's list (send order):
    // at the head it opens the group again, elsewhere it waits behind the
    // group's earlier in-flight message. A delayed one joins the list.
    if (!returned) groups_.list_insert(m.group, index);
    set_available(groups_.update_ring(m.group));
  } else if (returned) {
    // Returned messages go out first again, in the order they expired.
    if (last_returned == kNil) {
      ready_push_front(index);
    } else {
      ready_insert_after(last_returned, index);
    }
    last_returned = index;
  } else {
    ready_push_back(index);
  }
}

std::uint32_t QueueCore::expire_locked(Now now, bool& redrive) {
  std::uint32_t moved = 0;
  std::uint32_t last_returned = kNil;
  const std::uint32_t max_receives = atom(h_->max_receive_count).load(std::memory_order_relaxed);
  // Each turn takes one entry off the heap (at most capacity of them), and
  // then each retention turn frees one message: more turns is a cycle.
  std::uint32_t turns = 0;
  const auto count_turn = [&] {
    if (++turns > bounds_.capacity) [[unlikely]] {
      segment_fault(SegmentCheck::kListCycle);
    }
  };
  while (!timers_.empty() && d_[timers_.top()].deadline_ns <= now.mono_ns) {
    count_turn();
    const std::uint32_t index = timers_.top();
    const MessageState was = state_of(d_[index]);
    if (was != MessageState::kInFlight && was != MessageState::kDelayed) [[unlikely]] {
      segment_fault(SegmentCheck::kDescriptorState);
    }
    timers_.remove(index);
    count(was, -1);
    if (was == MessageState::kInFlight && max_receives > 0 && d_[index].receive_count >= max_receives) {
      // Received maxReceiveCount times and not deleted: to the dead-letter
      // queue. A FIFO message keeps its place in its group's list, holding
      // the group's later messages until it has moved.
      set_state(index, MessageState::kRedrive);
      count(MessageState::kRedrive, +1);
      redrive_push(index);
      if (fifo()) set_available(groups_.update_ring(d_[index].group));
      redrive = true;
      continue;
    }
    make_ready(index, was == MessageState::kInFlight, last_returned);
    ++moved;
  }
  // Retention: the oldest messages go, whatever their state. One at the
  // head of a FIFO group's list lets the group's next messages go: each
  // group opened counts as a message made receivable.
  turns = 0;
  for (std::uint64_t deadline = retention_deadline(); deadline <= now.mono_ns; deadline = retention_deadline()) {
    count_turn();
    // Read again, and so checked again: another process may have changed it.
    const std::uint32_t index = checked_index(h_->roots.all_head, bounds_.capacity, SegmentCheck::kDescriptorIndex);
    const MessageState s = state_of(d_[index]);
    if (!committed(s)) [[unlikely]] {
      segment_fault(SegmentCheck::kDescriptorState);
    }
    const std::uint32_t before = h_->available;
    detach(index, s);
    free_slot(index);
    if (fifo() && h_->available > before) moved += h_->available - before;
  }
  if (moved > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
  publish_deadline();
  return moved;
}

std::uint32_t QueueCore::expire_due(Now now) noexcept {
  std::uint32_t moved = 0;
  bool redrive = false;
  {
    Lock lock(*this);
    guarded(lock, [&] { moved += expire_locked(now, redrive); });
  }
  if (moved > 0) wake_receivers(moved);
  if (redrive) reaper_wake();
  return moved;
}

void QueueCore::take(std::uint32_t index, std::uint64_t deadline, Now now, Delivery& out) {
  MessageDescriptor& m = d_[index];  // checked by the caller
  describe(index, out);              // checks the payload block before the commit point
  const std::uint32_t receives = m.receive_count + 1;
  atom(m.receive_count).store(receives, std::memory_order_relaxed);
  if (m.first_receive_ms == 0) m.first_receive_ms = now.wall_ms;
  m.deadline_ns = deadline;
  set_state(index, MessageState::kInFlight);
  timers_.push(index);
  count(MessageState::kReady, -1);
  count(MessageState::kInFlight, +1);
  out.handle.receive_count = receives;
  out.first_receive_ms = m.first_receive_ms;
}

// What a receiver copies outside the lock: the block and the lengths checked
// here, so that the copy reads only the arena whatever is written meanwhile.
void QueueCore::describe(std::uint32_t index, Delivery& out) const {
  const MessageDescriptor& m = d_[index];
  const std::uint64_t offset = m.block_offset;
  const unsigned order = m.block_order;
  const std::uint32_t body = m.body_bytes;
  const std::uint32_t attrs = m.attr_bytes;
  arena_.check_block(offset, order);
  if (std::uint64_t{body} + attrs > (1ull << order)) [[unlikely]] {
    segment_fault(SegmentCheck::kPayloadBlock);
  }
  out.index = index;
  out.handle = ReceiptHandle{h_->incarnation, index, m.generation, m.receive_count};
  out.body_bytes = body;
  out.attr_bytes = attrs;
  out.block_offset = offset;
  out.sent_ms = m.sent_ms;
  out.first_receive_ms = m.first_receive_ms;
  out.seq = m.seq;
  std::memcpy(out.message_id, m.message_id, sizeof(m.message_id));
  out.sender_uid = (m.flags & kHasSenderUid) != 0 ? std::optional<std::uint32_t>(m.sender_uid) : std::nullopt;
}

std::uint32_t QueueCore::receive_again(const ReceiveAttempt& a, std::span<Delivery> out, std::uint64_t deadline) {
  const std::uint32_t n = a.count;
  if (n > std::size(a.messages)) [[unlikely]] {
    segment_fault(SegmentCheck::kReceiveAttempt);
  }
  if (n > out.size()) return 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto& e = a.messages[i];
    // An attempt from before a trim names slots past the watermark: gone,
    // and not to be read (see locate).
    if (checked_index(e.index, bounds_.capacity, SegmentCheck::kReceiveAttempt) >= h_->roots.unused_from) return 0;
    MessageDescriptor& m = d_[e.index];
    if (state_of(m) != MessageState::kInFlight || m.generation != e.generation || m.receive_count != e.receive_count) {
      return 0;  // deleted, expired or received since: a fresh receive instead
    }
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t index = checked_index(a.messages[i].index, bounds_.capacity, SegmentCheck::kReceiveAttempt);
    MessageDescriptor& m = d_[index];
    m.deadline_ns = deadline;  // a retry resets the visibility timeout
    timers_.rekeyed(index);
    describe(index, out[i]);
  }
  return n;
}

void QueueCore::remember_attempt(const DedupKey& key, std::span<const Delivery> taken, Now now) noexcept {
  ReceiveAttempt& a = attempts_[key.key[0] % kAttemptSlots];
  a.key[0] = key.key[0];
  a.key[1] = key.key[1];
  a.expires_ns = now.mono_ns + kDedupWindowNs;
  a.count = static_cast<std::uint32_t>(taken.size());
  for (std::size_t i = 0; i < taken.size(); ++i) {
    a.messages[i] = {taken[i].index, taken[i].handle.generation, taken[i].handle.receive_count, 0};
  }
}

std::uint32_t QueueCore::receive(std::span<Delivery> out, std::uint32_t visibility_s, Now now, const DedupKey* attempt,
                                 std::error_code& error, std::uint64_t lock_wait_ns) noexcept {
  std::uint32_t taken = 0;
  std::uint32_t moved = 0;
  bool wake_reaper = false;
  bool redrive = false;
  if (!fifo()) prefetch_for_receive(out.size());
  {
    Lock lock(*this, lock_wait_ns == kDefaultWait ? lock_wait() : lock_wait_ns);
    if (lock.busy()) {
      error = Errc::queue_busy;
      return 0;
    }
    // Deliveries taken before a repair stay taken (in flight, handles valid):
    // the second run adds to them.
    bool looked_up = false;  // the attempt's earlier answer
    bool again = false;      // ... which is this receive's answer
    const bool done = guarded(lock, [&] {
      moved += expire_locked(now, redrive);
      const std::uint64_t deadline = now.mono_ns + seconds_ns(visibility_s);
      if (attempt && !looked_up) {
        looked_up = true;
        const ReceiveAttempt& a = attempts_[attempt->key[0] % kAttemptSlots];
        if (a.key[0] == attempt->key[0] && a.key[1] == attempt->key[1] && a.expires_ns > now.mono_ns) {
          taken = receive_again(a, out, deadline);
          again = taken > 0;
        }
      }
      const std::uint32_t limit = atom(h_->in_flight_limit).load(std::memory_order_relaxed);
      const std::uint32_t max_receives = atom(h_->max_receive_count).load(std::memory_order_relaxed);
      auto room = [&] { return taken < out.size() && h_->counts.in_flight < limit; };
      // Each turn takes a message or a group off a list: more turns than
      // the table has entries is a cycle.
      std::uint32_t turns = 0;
      const auto count_turn = [&] {
        if (++turns > bounds_.capacity) [[unlikely]] {
          segment_fault(SegmentCheck::kListCycle);
        }
      };
      if (again) {
        // The attempt's earlier answer, again.
      } else if (!fifo()) {
        IndexRoots& r = h_->roots;
        while (room() && r.ready_head != kNil) {
          count_turn();
          const std::uint32_t index = r.ready_head;
          MessageDescriptor& m = desc_in(index, MessageState::kReady);
          ready_unlink(index);
          if (max_receives > 0 && m.receive_count >= max_receives) {
            // maxReceiveCount was lowered below this message's count.
            redrive_instead(index);
            redrive = true;
            continue;
          }
          take(index, deadline, now, out[taken]);
          ++taken;
        }
      } else {
        IndexRoots& r = h_->roots;
        const std::uint32_t before = taken;
        while (room() && r.ring_head != kNil) {
          count_turn();
          const std::uint32_t group = r.ring_head;
          // As many of one group as fit, in order, from the ready messages at
          // the head of its list: they stay in place, in flight, and the
          // first message that is not ready ends the run (the group's later
          // messages wait behind it). Then the next group.
          for (std::uint32_t index = groups_[group].head; room() && index != kNil;) {
            MessageDescriptor& m = desc(index);
            if (state_of(m) != MessageState::kReady) break;
            const std::uint32_t next = m.group_next;
            if (max_receives > 0 && m.receive_count >= max_receives) {
              // maxReceiveCount was lowered below this message's count: it
              // moves to the dead-letter queue, and holds the group meanwhile.
              redrive_instead(index);
              redrive = true;
              break;
            }
            take(index, deadline, now, out[taken]);
            ++taken;
            index = next;
          }
          set_available(groups_.update_ring(group));
        }
        if (attempt && taken > before) remember_attempt(*attempt, out.first(taken), now);
      }
      if (taken == 0 && h_->counts.in_flight >= limit && !fifo()) error = Errc::too_many_in_flight;
      if (taken > 0) {
        wake_reaper = reaper_needs_wake(deadline);
        publish_deadline();
      }
    });
    if (taken > 0) add_total(h_->counts.received_total, taken);
    if (!done && taken == 0) error = Errc::segment_corrupt;
  }
  if (moved > taken) wake_receivers(moved - taken);
  if (wake_reaper || redrive) reaper_wake();
  return taken;
}

bool QueueCore::still_valid(const Delivery& delivery) const noexcept {
  // Seqlock-style: the payload reads above must not move below this check.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (delivery.index >= bounds_.capacity) return false;
  return atom(d_[delivery.index].generation).load(std::memory_order_relaxed) == delivery.handle.generation;
}

std::error_code QueueCore::locate(const ReceiptHandle& handle, MessageState& state) const noexcept {
  if (handle.incarnation != h_->incarnation || handle.index >= bounds_.capacity) return Errc::invalid_receipt_handle;
  // Past the watermark before anything is read there: a trim may have given
  // those pages back, and a read would back them again (or fault).
  if (handle.index >= h_->roots.unused_from) return Errc::stale_receipt_handle;
  MessageDescriptor& m = d_[handle.index];
  state = state_of(m);
  if (m.generation != handle.generation || m.receive_count != handle.receive_count ||
      (state != MessageState::kInFlight && state != MessageState::kReady)) {
    return Errc::stale_receipt_handle;
  }
  return {};
}

std::error_code QueueCore::remove(const ReceiptHandle& handle) noexcept {
  std::error_code ec;
  remove(std::span(&handle, 1), std::span(&ec, 1));
  return ec;
}

void QueueCore::remove(std::span<const ReceiptHandle> handles, std::span<std::error_code> errors) noexcept {
  std::uint32_t unlocked = 0;
  bool emptied = false;  // the queue is empty and can give memory back: tell the reaper
  prefetch_for_remove(handles);
  {
    Lock lock(*this, lock_wait());
    if (lock.busy()) {
      std::fill(errors.begin(), errors.end(), make_error_code(Errc::queue_busy));
      return;
    }
    std::size_t next = 0;
    bool freeing = false;  // handles[next] was being removed when a check failed
    const bool done = guarded(lock, [&] {
      for (; next < handles.size(); ++next) {
        const std::size_t i = next;
        MessageState state;
        errors[i] = locate(handles[i], state);
        if (errors[i]) {
          // Its removal was under way when a repair interrupted it: the slot
          // was freed (a new generation) by this call.
          if (freeing && d_[handles[i].index].generation != handles[i].generation) errors[i] = {};
          freeing = false;
          continue;
        }
        const std::uint32_t before = h_->available;
        freeing = true;
        detach(handles[i].index, state);
        free_slot(handles[i].index);
        freeing = false;
        add_total(h_->counts.deleted_total, 1);
        // Deleting the message at the head of a FIFO group's list may open
        // the group.
        if (h_->available > before) unlocked += h_->available - before;
      }
      if (unlocked > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
      publish_deadline();
      emptied = worth_trimming();
    });
    if (!done) {
      for (std::size_t i = next; i < handles.size(); ++i) errors[i] = Errc::segment_corrupt;
    }
  }
  if (unlocked > 0) wake_receivers(unlocked);
  if (emptied) reaper_wake();
}

std::error_code QueueCore::change_visibility(const ReceiptHandle& handle, std::uint32_t visibility_s,
                                             Now now) noexcept {
  std::uint32_t moved = 0;
  bool wake_reaper = false;
  std::error_code ec;
  {
    Lock lock(*this, lock_wait());
    if (lock.busy()) return Errc::queue_busy;
    const bool done = guarded(lock, [&] {
      MessageState state;
      if ((ec = locate(handle, state))) return;
      if (state != MessageState::kInFlight) {
        ec = Errc::message_not_in_flight;
        return;
      }
      MessageDescriptor& m = d_[handle.index];
      const std::uint64_t deadline = now.mono_ns + seconds_ns(visibility_s);
      m.deadline_ns = deadline;
      timers_.rekeyed(handle.index);
      bool redrive = false;
      moved += expire_locked(now, redrive);  // a timeout of 0 makes it visible at once
      publish_deadline();
      wake_reaper = redrive || (moved == 0 && reaper_needs_wake(deadline));
    });
    if (!done) ec = Errc::segment_corrupt;
  }
  if (moved > 0) wake_receivers(moved);
  if (wake_reaper) reaper_wake();
  return ec;
}

bool QueueCore::next_redrive(Delivery& out) noexcept {
  Lock lock(*this, lock_wait());  // busy: nothing to move now
  bool found = false;
  guarded(lock, [&] {
    std::uint32_t index = h_->roots.redrive_head;
    if (index == kNil) return;
    // The oldest waiting; at most capacity links.
    for (std::uint32_t steps = 0; desc_in(index, MessageState::kRedrive).next != kNil; ++steps) {
      if (steps >= bounds_.capacity) [[unlikely]] {
        segment_fault(SegmentCheck::kListCycle);
      }
      index = d_[index].next;
    }
    describe(index, out);
    found = true;
  });
  return found;
}

void QueueCore::finish_redrive(const Delivery& moved) noexcept {
  std::uint32_t opened = 0;
  {
    // Busy: the message stays here too, and moves again later (at least once).
    Lock lock(*this, lock_wait());
    guarded(lock, [&] {
      if (moved.index >= h_->roots.unused_from) return;  // purged, and the queue trimmed, meanwhile
      MessageDescriptor& m = desc(moved.index);
      if (state_of(m) != MessageState::kRedrive || m.generation != moved.handle.generation) return;  // purged meanwhile
      const std::uint32_t before = h_->available;
      detach(moved.index, MessageState::kRedrive);
      free_slot(moved.index);
      // A FIFO message that moved from the head of its group's list lets the
      // group's next messages go.
      if (h_->available > before) {
        opened = h_->available - before;
        atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
      }
      publish_deadline();
    });
  }
  if (opened > 0) wake_receivers(opened);
}

std::uint32_t QueueCore::return_redrives() noexcept {
  std::uint32_t returned = 0;
  {
    Lock lock(*this, lock_wait());  // busy: none returned now
    guarded(lock, [&] {
      for (std::uint32_t turns = 0; h_->roots.redrive_head != kNil; ++turns) {
        if (turns >= bounds_.capacity) [[unlikely]] {
          segment_fault(SegmentCheck::kListCycle);
        }
        const std::uint32_t index = h_->roots.redrive_head;
        MessageDescriptor& m = desc_in(index, MessageState::kRedrive);
        redrive_unlink(index);
        count(MessageState::kRedrive, -1);
        set_state(index, MessageState::kReady);
        count(MessageState::kReady, +1);
        if (fifo()) {
          set_available(groups_.update_ring(m.group));  // it kept its place in its group's list
        } else {
          ready_push_front(index);
        }
        ++returned;
      }
      if (returned > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
    });
  }
  if (returned > 0) wake_receivers(returned);
  return returned;
}

std::optional<std::uint32_t> QueueCore::purge() noexcept {
  std::uint32_t purged = 0;
  bool emptied = false;
  {
    Lock lock(*this, lock_wait());
    if (lock.busy()) return std::nullopt;
    guarded(lock, [&] {
      std::uint32_t turns = 0;
      for (std::uint32_t index = h_->roots.all_head; index != kNil;) {
        if (++turns > bounds_.capacity) [[unlikely]] {
          segment_fault(SegmentCheck::kListCycle);
        }
        MessageDescriptor& m = desc(index);
        const MessageState s = state_of(m);
        if (!committed(s)) [[unlikely]] {
          segment_fault(SegmentCheck::kDescriptorState);
        }
        const std::uint32_t next = m.all_next;
        detach(index, s);
        free_slot(index);
        ++purged;
        index = next;
      }
      publish_deadline();
      emptied = worth_trimming();
    });
  }
  if (emptied) reaper_wake();
  return purged;
}

std::uint32_t QueueCore::messages_held() const noexcept {
  const Counts& c = h_->counts;
  return c.visible + c.in_flight + c.delayed + c.writing + c.redrive;
}

bool QueueCore::worth_trimming() const noexcept {
  if (messages_held() != 0 || h_->counts.groups != 0) return false;
  const IndexRoots& r = h_->roots;
  const std::uint64_t grown = round_up_slots(r.unused_from, bounds_.capacity) * slot_bytes(fifo()) +
                              std::min(r.arena_untouched, bounds_.arena_bytes);
  return grown > kTrimAboveBytes;
}

bool QueueCore::trim_pending() const noexcept {
  const TrimState& t = h_->trim;
  return t.descriptors_backed > round_up_slots(h_->roots.unused_from, bounds_.capacity) ||
         t.arena_backed > std::min(h_->roots.arena_untouched, bounds_.arena_bytes);
}

QueueCore::TrimProgress QueueCore::trim_step() noexcept {
  Lock lock(*this, std::try_to_lock);
  if (!lock.owns()) return refused() ? TrimProgress::kDone : TrimProgress::kBusy;
  bool more = false;
  guarded(lock, [&] {
    IndexRoots& r = h_->roots;
    TrimState& t = h_->trim;
    const std::uint32_t slots_used = static_cast<std::uint32_t>(round_up_slots(unused_from(), bounds_.capacity));
    const std::uint64_t untouched = std::min(r.arena_untouched, bounds_.arena_bytes);
    if (worth_trimming()) {
      // Every slot is free and every arena block with it. What is backed
      // above the new watermarks is remembered first, then the watermarks
      // drop: a kill in between leaves memory to punch, nothing else.
      t.descriptors_backed = std::max(t.descriptors_backed, slots_used);
      t.arena_backed = std::max(t.arena_backed, untouched);
      // A receipt handle from before names a generation at most
      // max_generation: a slot handed out again starts above it.
      if (r.max_generation >= kGenerationRotateAt) {
        // Generations would wrap, and an old handle could match a new slot:
        // a new incarnation refuses every handle from before instead (none
        // names a message: the queue is empty).
        h_->incarnation = h_->incarnation * 0x9e3779b97f4a7c15ull + 1;
        t.generation_base = 1;
        r.max_generation = 1;
      } else {
        t.generation_base = std::max(t.generation_base, r.max_generation + 1);
      }
      // The tables' own watermarks first and the descriptors' last: a kill
      // in between leaves slots in use (a rebuild frees them) over group
      // records and blocks that are all free, never a free list that reaches
      // past the watermark into what the slices punch.
      if (fifo()) {
        r.group_free_head = kNil;  // no group in use: every record is free
        r.group_unused_from = 0;
      }
      arena_.forget_all();
      store_hint(r.free_head, kNil);
      store_hint(r.unused_from, 0u);
      atom(t.trims).store(t.trims + 1, std::memory_order_relaxed);  // relaxed: a count stats reads lock-free
      // Relaxed: read lock-free by stats, as a count.
      atom(t.memory_in_use).store(memory_by_watermarks(bounds_, r), std::memory_order_relaxed);
    }
    // One slice, from the top down, of what is backed above the watermarks.
    std::uint64_t budget = kTrimSliceBytes;
    const std::uint32_t slots_low = static_cast<std::uint32_t>(round_up_slots(r.unused_from, bounds_.capacity));
    const std::uint32_t slots_top = std::min(t.descriptors_backed, bounds_.capacity);
    if (slots_top > slots_low) {
      const std::uint64_t fit = std::max<std::uint64_t>(budget / slot_bytes(fifo()), kReserveChunk);
      const std::uint32_t from =
          slots_top - static_cast<std::uint32_t>(std::min<std::uint64_t>(fit, slots_top - slots_low));
      for (const Backing::Region& region : slot_regions(from, slots_top - from)) {
        backing_.release(region.p, region.bytes);
      }
      t.descriptors_backed = from;
      budget -= std::min(budget, std::uint64_t{slots_top - from} * slot_bytes(fifo()));
    } else {
      t.descriptors_backed = slots_low;
    }
    const std::uint64_t arena_low = std::min(r.arena_untouched, bounds_.arena_bytes);
    const std::uint64_t arena_top = std::min(t.arena_backed, bounds_.arena_bytes);
    if (arena_top > arena_low && budget > 0) {
      const std::uint64_t bytes =
          std::min(arena_top - arena_low, std::max<std::uint64_t>(budget / kMaxBlock, 1) * kMaxBlock);
      const std::uint64_t from = arena_top - bytes;
      backing_.release(arena_base_ + from, bytes);
      backing_.release(order_map_ + (from >> kMinOrder), bytes >> kMinOrder);
      t.arena_backed = from;
    } else if (arena_top <= arena_low) {
      t.arena_backed = arena_low;
    }
    more = trim_pending();
  });
  return more ? TrimProgress::kMore : TrimProgress::kDone;
}

std::optional<std::uint32_t> QueueCore::free_writing_matching(bool (*match)(std::uint32_t pid, void* ctx), void* ctx,
                                                              std::uint64_t lock_wait_ns) noexcept {
  Lock lock(*this, lock_wait_ns == kDefaultWait ? lock_wait() : lock_wait_ns);
  if (lock.busy()) return std::nullopt;
  std::uint32_t freed = 0;
  guarded(lock, [&] {
    const std::uint32_t n = unused_from();
    for (std::uint32_t i = 0; i < n; ++i) {
      if (state_of(d_[i]) == MessageState::kWriting && match(d_[i].owner_pid, ctx)) {
        count(MessageState::kWriting, -1);
        free_slot(i);
        ++freed;
      }
    }
  });
  return freed;
}

void QueueCore::rebuild() noexcept {
  std::string why;
  if (!tables_sound(&why)) {
    refuse(SegmentCheck::kTables, why);
    return;
  }
  try {
    rebuild_locked();
  } catch (const SegmentFault& f) {
    refuse(f.check);
  }
}

void QueueCore::rebuild_locked() {
  IndexRoots& r = h_->roots;
  Counts& c = h_->counts;
  const std::uint32_t used = unused_from();
  // A group needs a message: no more records were ever in use at once than
  // slots (a trim that died midway may have left the records' watermark
  // above the slots'; the records past it are given back).
  if (r.group_unused_from > used) r.group_unused_from = used;
  store_hint(r.free_head, kNil);
  store_hint(r.ready_head, kNil);
  r.ready_tail = kNil;
  r.all_head = r.all_tail = r.redrive_head = kNil;
  r.heap_size = 0;
  groups_.reset_for_rebuild();
  if (fifo()) dedup_.rebuild();
  std::uint32_t visible = 0, in_flight = 0, delayed = 0, writing = 0, redrive = 0;
  std::uint64_t max_seq = 0;
  std::vector<std::uint32_t> ready;   // standard
  std::vector<std::uint32_t> listed;  // FIFO: on their group's list (ready, in flight, kRedrive)
  std::vector<std::uint32_t> live;
  std::vector<std::pair<std::uint64_t, unsigned>> allocated;
  // Backwards, so that the free list hands out low indexes first.
  std::uint32_t max_generation = h_->trim.generation_base;
  for (std::uint32_t i = used; i-- > 0;) {
    MessageDescriptor& m = d_[i];
    max_generation = std::max(max_generation, m.generation);
    m.heap_pos = kNil;
    store_hint(m.next, kNil);
    m.prev = kNil;
    m.all_next = m.all_prev = kNil;
    store_hint(m.group_next, kNil);
    m.group_prev = kNil;
    MessageState s = state_of(m);
    if (s != MessageState::kFree && s != MessageState::kWriting && !committed(s)) {
      set_state(i, MessageState::kFree);  // not a state this version writes: treat the slot as lost
      s = MessageState::kFree;
    }
    if (s == MessageState::kFree) {
      store_hint(m.next, r.free_head);
      store_hint(r.free_head, i);
      continue;
    }
    allocated.emplace_back(m.block_offset, m.block_order);
    if (s == MessageState::kWriting) {
      ++writing;
      continue;
    }
    max_seq = std::max(max_seq, m.seq);
    live.push_back(i);
    if (fifo()) {
      ++groups_[m.group].messages;
      if (s != MessageState::kDelayed) listed.push_back(i);
    } else if (m.group != kNil) [[unlikely]] {
      segment_fault(SegmentCheck::kGroupIndex);  // a standard queue's group tables have no backing
    }
    switch (s) {
      case MessageState::kReady:
        if (!fifo()) ready.push_back(i);
        ++visible;
        break;
      case MessageState::kInFlight:
        timers_.push(i);
        ++in_flight;
        break;
      case MessageState::kDelayed:
        timers_.push(i);
        ++delayed;
        break;
      case MessageState::kRedrive:
        redrive_push(i);
        ++redrive;
        break;
      default:
        break;
    }
  }
  auto by_seq = [&](std::uint32_t a, std::uint32_t b) { return d_[a].seq < d_[b].seq; };
  std::sort(live.begin(), live.end(), by_seq);
  for (std::uint32_t index : live) all_push_back(index);
  std::sort(ready.begin(), ready.end(), by_seq);
  for (std::uint32_t index : ready) ready_push_back(index);
  std::uint32_t available = visible;
  if (fifo()) {
    // Each group's list in send order, from the states alone: a message's
    // place in it is its seq.
    std::sort(listed.begin(), listed.end(), by_seq);
    for (std::uint32_t index : listed) groups_.list_insert(d_[index].group, index);
    // Ring order: the group whose oldest listed message is oldest first.
    available = 0;
    for (std::uint32_t index : listed) available += groups_.update_ring(d_[index].group) > 0 ? 1 : 0;
  }
  groups_.finish_rebuild();
  r.next_seq = std::max(r.next_seq, max_seq + 1);
  r.max_generation = max_generation;
  arena_.rebuild(allocated);
  // Relaxed: read lock-free by stats, as a count.
  atom(h_->trim.memory_in_use).store(memory_by_watermarks(bounds_, r), std::memory_order_relaxed);
  atom(c.visible).store(visible, std::memory_order_relaxed);
  atom(c.in_flight).store(in_flight, std::memory_order_relaxed);
  atom(c.delayed).store(delayed, std::memory_order_relaxed);
  atom(c.writing).store(writing, std::memory_order_relaxed);
  atom(c.redrive).store(redrive, std::memory_order_relaxed);
  atom(h_->available).store(available, std::memory_order_relaxed);
  publish_deadline();
  // Someone may have been waiting for what the dead owner was doing.
  atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
}

namespace {

// This process's slot, claimed if it has none; nullptr if all are taken by
// other processes (its receivers then count in waiters only).
SegmentHeader::WaiterSlot* waiter_slot(SegmentHeader& h, std::uint32_t pid) noexcept {
  for (auto& slot : h.waiter_slots) {
    if (atom(slot.pid).load(std::memory_order_relaxed) == pid) return &slot;
  }
  for (auto& slot : h.waiter_slots) {
    std::uint32_t expected = 0;
    if (atom(slot.pid).compare_exchange_strong(expected, pid, std::memory_order_relaxed)) return &slot;
  }
  return nullptr;
}

}  // namespace

void QueueCore::add_waiter(std::uint32_t pid) noexcept {
  // seq_cst on waiters: pairs with the sender's check in wake_receivers.
  atom(h_->waiters).fetch_add(1, std::memory_order_seq_cst);
  // Relaxed: only the daemon reads slots, after this process died.
  if (auto* slot = waiter_slot(*h_, pid)) atom(slot->count).fetch_add(1, std::memory_order_relaxed);
}

void QueueCore::remove_waiter(std::uint32_t pid) noexcept {
  if (auto* slot = waiter_slot(*h_, pid)) atom(slot->count).fetch_sub(1, std::memory_order_relaxed);
  atom(h_->waiters).fetch_sub(1, std::memory_order_seq_cst);
}

void QueueCore::forget_waiters(std::uint32_t pid) noexcept {
  for (auto& slot : h_->waiter_slots) {
    if (atom(slot.pid).load(std::memory_order_relaxed) != pid) continue;
    const std::uint32_t count = atom(slot.count).exchange(0, std::memory_order_relaxed);
    atom(h_->waiters).fetch_sub(count, std::memory_order_seq_cst);
    atom(slot.pid).store(0, std::memory_order_relaxed);
  }
}

std::vector<std::uint32_t> QueueCore::waiter_pids() const {
  std::vector<std::uint32_t> pids;
  for (auto& slot : h_->waiter_slots) {
    if (const std::uint32_t pid = atom(slot.pid).load(std::memory_order_relaxed)) pids.push_back(pid);
  }
  return pids;
}

std::uint32_t QueueCore::sleeping_receivers() const noexcept {
  return atom(h_->waiters).load(std::memory_order_relaxed);
}

void QueueCore::wake_receivers(std::uint32_t count) noexcept {
  // seq_cst: pairs with the receiver's waiters increment, so that either the
  // receiver sees the new ready_seq or this load sees the waiter.
  if (atom(h_->waiters).load(std::memory_order_seq_cst) == 0) return;
  futex_wake(&h_->ready_seq, count > INT_MAX ? INT_MAX : static_cast<int>(count));
}

QueueCore::ReaperTurn QueueCore::reaper_turn() noexcept {
  ReaperTurn turn{};
  {
    // The reaper serves many queues from one thread: a lock held for long
    // (its holder stopped, or a corrupt lock word) must cost this queue a
    // late turn, never the others theirs.
    Lock lock(*this, std::try_to_lock);
    if (!lock.owns() && !refused()) {
      turn.busy = true;
      turn.seq = atom(h_->reaper_seq).load(std::memory_order_seq_cst);
      turn.deadline_ns = monotonic_ns() + kBusyRetryNs;
      return turn;
    }
    bool redrive = false;
    const Now t = now();
    const bool done = guarded(lock, [&] {
      turn.moved += expire_locked(t, redrive);
      turn.redrive = h_->roots.redrive_head != kNil;
      turn.deadline_ns = std::min(timers_.earliest(), retention_deadline());
      turn.trim = worth_trimming() || trim_pending();
    });
    if (!done) {
      turn = ReaperTurn{};
      turn.corrupt = true;
      turn.deadline_ns = ~0ull;
      turn.seq = atom(h_->reaper_seq).load(std::memory_order_seq_cst);
      return turn;
    }
    if (h_->roots.all_head == kNil) {
      // No message to expire: but one sent later expires a retention period
      // after it arrives, so waking a period from now is early enough, and
      // senders never have to wake the reaper for retention.
      turn.deadline_ns =
          std::min(turn.deadline_ns, t.mono_ns + seconds_ns(atom(h_->retention_s).load(std::memory_order_relaxed)));
    }
    // Under the mutex, as clients check it (reaper_needs_wake): one that sets
    // an earlier deadline after this section bumps reaper_seq, so the
    // reaper's futex wait on `seq` returns at once.
    h_->reaper_deadline_ns = turn.deadline_ns;
    atom(h_->reaper_waiting).store(1, std::memory_order_relaxed);
    turn.seq = atom(h_->reaper_seq).load(std::memory_order_seq_cst);
  }
  if (turn.moved > 0) wake_receivers(turn.moved);
  return turn;
}

void QueueCore::reaper_wake() noexcept {
  atom(h_->reaper_seq).fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&h_->reaper_seq, 1);
}

QueueCore::Stats QueueCore::stats() noexcept {
  Lock lock(*this, lock_wait());
  if (lock.owns()) {
    return Stats{h_->counts,
                 h_->roots.unused_from,
                 h_->roots.arena_free_bytes,
                 h_->trim.memory_in_use,
                 h_->memory_limit,
                 h_->trim.trims,
                 true};
  }
  // The lock stays held: the counts and totals as their lock-free readers
  // see them (relaxed, each on its own; they are written with atomic_ref for
  // that), the table use as a hint, the arena's free bytes unknown (0).
  constexpr auto relaxed = std::memory_order_relaxed;
  Counts& c = h_->counts;
  Stats s{};
  s.counts.visible = atom(c.visible).load(relaxed);
  s.counts.in_flight = atom(c.in_flight).load(relaxed);
  s.counts.delayed = atom(c.delayed).load(relaxed);
  s.counts.writing = atom(c.writing).load(relaxed);
  s.counts.redrive = atom(c.redrive).load(relaxed);
  s.counts.sent_total = atom(c.sent_total).load(relaxed);
  s.counts.received_total = atom(c.received_total).load(relaxed);
  s.counts.deleted_total = atom(c.deleted_total).load(relaxed);
  s.counts.recoveries = atom(c.recoveries).load(relaxed);
  s.slots_ever_used = load_hint(h_->roots.unused_from);
  s.memory_in_use = atom(h_->trim.memory_in_use).load(relaxed);
  s.memory_limit = atom(h_->memory_limit).load(relaxed);
  s.trims = atom(h_->trim.trims).load(relaxed);
  return s;
}

std::uint32_t QueueCore::available_count() const noexcept {
  return atom(h_->available).load(std::memory_order_relaxed);
}

std::uint64_t QueueCore::next_deadline_ns() const noexcept {
  return atom(h_->next_deadline_ns).load(std::memory_order_relaxed);
}

}  // namespace shmq::detail
