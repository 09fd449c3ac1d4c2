// Recovery and reclaim: what rebuilds a queue's derived structures from the
// descriptor states (after a dead lock owner, a failed check, or at attach),
// what frees the slots of a dead sender, and the trim, which gives memory
// back once the queue is empty. The state machine itself is in
// transitions.cpp.
#include <pthread.h>
#include <signal.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "queue_core.hpp"
#include "queue_core_internal.hpp"
#include "queue_lock.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

// ---- Attach and rebuild ----

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
  std::uint32_t visible = 0, in_flight = 0, delayed = 0, writing = 0, redrive = 0, cached = 0;
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
    if (s != MessageState::kFree && s != MessageState::kWriting && s != MessageState::kCached &&
        s != MessageState::kPending && !committed(s)) {
      set_state(i, MessageState::kFree);  // not a state this version writes: treat the slot as lost
      s = MessageState::kFree;
    }
    if (s == MessageState::kFree) {
      store_hint(m.next, r.free_head);
      store_hint(r.free_head, i);
      continue;
    }
    allocated.emplace_back(m.block_offset, m.block_order);
    // A slot a send without the mutex holds (its owner may be writing it
    // now: only its state and flags are read) is on no list.
    if (s == MessageState::kCached || s == MessageState::kPending) {
      ++cached;
      continue;
    }
    if (s == MessageState::kWriting) {
      ++((atom(m.flags).load(std::memory_order_relaxed) & kFromCache) ? cached : writing);
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
  atom(c.cached).store(cached, std::memory_order_relaxed);
  atom(c.redrive).store(redrive, std::memory_order_relaxed);
  // A consumer of the submit ring killed between releasing a cell and
  // moving the head past it.
  ring_.repair();
  atom(h_->available).store(available, std::memory_order_relaxed);
  publish_deadline();
  // Someone may have been waiting for what the dead owner was doing.
  atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
}

// ---- Reclaim: a dead sender's WRITING, CACHED and PENDING slots ----

std::optional<std::uint32_t> QueueCore::free_writing_matching(bool (*match)(std::uint32_t pid, void* ctx), void* ctx,
                                                              std::uint64_t lock_wait_ns) noexcept {
  std::uint32_t freed = 0;
  std::uint32_t committed = 0;
  {
    Lock lock(*this, lock_wait_ns == kDefaultWait ? lock_wait() : lock_wait_ns);
    if (lock.busy()) return std::nullopt;
    guarded(lock, [&] {
      const std::uint32_t n = unused_from();
      for (std::uint32_t i = 0; i < n; ++i) {
        const MessageState s = state_of(d_[i]);
        if (s != MessageState::kWriting && s != MessageState::kCached && s != MessageState::kPending) continue;
        if (!match(d_[i].owner_pid, ctx)) continue;
        if (reclaim_dead_sender(i, s, committed)) ++freed;
      }
      // A message committed here never reached the submit ring, so no
      // sender woke anyone for it.
      if (committed > 0) {
        // seq_cst pairs with the waiter's waiters increment (see Queue::receive).
        atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
        publish_deadline();
      }
    });
  }
  if (committed > 0) wake_receivers(committed);
  return freed;
}

// Under the mutex: what a sender that is gone left in slot `index`, in
// state `s` (kWriting, kCached or kPending). A written message is committed
// (its send may have returned), and counted in `committed`; anything else
// is freed. True if freed.
bool QueueCore::reclaim_dead_sender(std::uint32_t index, MessageState s, std::uint32_t& committed) {
  MessageDescriptor& m = desc(index);
  switch (s) {
    case MessageState::kPending:
      if (commit_pending(index)) ++committed;
      return false;
    case MessageState::kCached:
      return take_back_cached(index, nullptr);
    case MessageState::kWriting:
      if (atom(m.flags).load(std::memory_order_relaxed) & kFromCache) {
        add_cached(-1);
      } else {
        count(MessageState::kWriting, -1);
      }
      free_slot(index);
      return true;
    default:
      return false;
  }
}

// ---- Backing for what is in use ----

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

// ---- The trim: giving memory back ----

// Under the mutex, before a trim: takes every process's cached slots back
// and commits what the submit ring holds. True if nothing is left in a
// cache or under way, so that the trim may go on.
bool QueueCore::take_back_caches() {
  drain_submitted();
  // A new epoch before any slot is taken: every process drops what its
  // cache lists (see claim_cached), so that entries do not outlive their
  // slots' take-back (where 24 bits of generation could wrap under them),
  // nor name slots a trim gives back. Even with no slot cached: an entry
  // put back while an earlier take-back ran may name a slot that one freed
  // (see commit_pending_locked). Relaxed: read lock-free as a hint; a claim
  // from an entry read before the bump fails on the generation.
  CacheState& c = h_->caches;
  // The refills this take-back covers, read first; marked seen only once
  // the scan is done, so that a taker killed midway leaves the next full
  // queue to take back what it did not reach (whose owners dropped their
  // entries at the new epoch).
  const std::uint64_t refills = atom(c.refills).load(std::memory_order_relaxed);
  atom(c.epoch).store(c.epoch + 1, std::memory_order_relaxed);
  atom(c.take_backs).store(c.take_backs + 1, std::memory_order_relaxed);
  if (h_->counts.cached == 0) {
    c.refills_seen = refills;
    return true;
  }
  const std::uint32_t n = unused_from();
  bool under_way = false;
  for (std::uint32_t i = 0; i < n; ++i) {
    switch (state_of(d_[i])) {
      case MessageState::kCached:
        // Lost only to its owner's claim: then that send is under way.
        if (!take_back_cached(i, nullptr)) under_way = true;
        break;
      case MessageState::kPending:
        // Not on the ring yet: its sender is about to put it there (or is
        // dead, and the daemon commits it). Committed here, it would leave
        // that entry to name whatever message the slot holds next, and
        // commit that one ahead of its sender's earlier messages.
        under_way = true;  // a message: nothing to trim
        break;
      case MessageState::kWriting:
        // A live sender's copy, or a dead one's that the daemon reclaims
        // once it sees the process gone.
        if (atom(d_[i].flags).load(std::memory_order_relaxed) & kFromCache) under_way = true;
        break;
      default:
        break;
    }
  }
  c.refills_seen = refills;
  return !under_way && h_->counts.cached == 0;
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
    // Slots in processes' caches are taken back first (their owners see
    // the trim count change, or fail their claim): an idle sender must not
    // keep a queue's memory.
    if (worth_trimming() && take_back_caches() && worth_trimming()) {
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

}  // namespace shmq::detail
