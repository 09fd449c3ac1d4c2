// The state machine of a queue's messages: every edge of the diagram in
// docs/data-plane.md ("States, and who moves a message between them"), in
// its order, and the bookkeeping the edges share (lists, counts, deadlines,
// the prefetches before the lock). Recovery and reclaim live in
// recovery.cpp, the reaper and the waiters in reaper.cpp, the rest of
// QueueCore (construction, refusal, memory, stats) in queue_core.cpp.
//
//   FREE -> WRITING               reserve, reserve_locked (send_in_one_lock)
//   WRITING -> READY / DELAYED    commit, commit_locked (send_in_one_lock)
//   FREE -> CACHED                refill_cache (a process's slot cache)
//   CACHED -> WRITING -> PENDING  send_lock_free -> claim_cached (no mutex)
//   PENDING -> READY              drain_submitted -> commit_pending
//   CACHED -> FREE                take_back_cached (take_back_caches in recovery.cpp)
//   WRITING -> FREE               unreserve; reclaim_writing (recovery.cpp) -> free_slot
//   READY -> IN_FLIGHT            receive -> take (receive_again: a FIFO retry)
//   READY -> REDRIVE              receive -> redrive_instead (maxReceiveCount lowered)
//   IN_FLIGHT -> READY            expire_locked -> make_ready; change_visibility
//   DELAYED -> READY              expire_locked -> make_ready
//   IN_FLIGHT -> REDRIVE          expire_locked -> redrive_push
//   REDRIVE -> FREE               next_redrive, finish_redrive
//   REDRIVE -> READY              return_redrives (the dead-letter queue is gone)
//   IN_FLIGHT / READY -> FREE     remove -> locate, detach, free_slot
//   any committed -> FREE         purge; retention in expire_locked -> detach, free_slot
//
// The hot path (send_lock_free, send_in_one_lock, receive, remove) and every helper it
// calls are in this one file, or inline in queue_core_internal.hpp, so that
// the compiler inlines them into each other.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include "descriptor_list.hpp"
#include "futex.hpp"
#include "queue_core.hpp"
#include "queue_core_internal.hpp"
#include "queue_lock.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

// ---- FREE -> WRITING: a sender reserves a slot and an arena block ----

std::uint32_t QueueCore::reserve(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                                 std::span<std::error_code> errors) noexcept {
  Lock lock(*this, lock_wait());
  if (lock.busy()) {
    busy(out, errors);
    return atom(h_->daemon_epoch).load(std::memory_order_relaxed);
  }
  std::size_t next = 0;
  if (!guarded(lock, [&] { reserve_locked(sizes, pid, out, errors, next, true); })) {
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
// kWriting it is free, and a rebuild returns it to the free list. A queue
// with no slot or block left takes back what processes' slot caches hold
// and tries again (unless this is a refill of a cache: `take_back` false),
// so that cached slots never make a queue full that holds fewer messages
// than it may.
void QueueCore::reserve_locked(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                               std::span<std::error_code> errors, std::size_t& next, bool take_back) {
  for (; next < sizes.size(); ++next) {
    const std::size_t i = next;
    out[i] = Reservation{};
    if (errors[i]) continue;
    const unsigned order = Arena::order_for(sizes[i]);
    std::uint32_t index = kNil;
    std::uint64_t offset = kNilOffset;
    // Once a call, and only if a cache was filled since the last take-back:
    // a full queue whose caches hold nothing new (what they hold is under
    // way) answers at once instead of scanning every slot each send.
    if (!take_slot(order, index, offset) && take_back && h_->counts.cached > 0 &&
        atom(h_->caches.refills).load(std::memory_order_relaxed) != h_->caches.refills_seen) {
      take_back_caches();
      take_back = false;
      (void)take_slot(order, index, offset);
    }
    if (index == kNil) {
      errors[i] = Errc::queue_full;
      continue;
    }
    MessageDescriptor& m = d_[index];
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

// Under the mutex: a free slot and an arena block of `order`, both still
// kFree (nothing but the free list and the arena changed). False if the
// queue has no slot or no block left, or /dev/shm cannot back another
// chunk of descriptors.
bool QueueCore::take_slot(unsigned order, std::uint32_t& index, std::uint64_t& offset) {
  IndexRoots& r = h_->roots;
  index = r.free_head;
  if (index != kNil) {
    store_hint(r.free_head, desc_in(index, MessageState::kFree).next);
  } else if (const std::uint32_t from = unused_from(); from < bounds_.capacity) {
    // Descriptors past the watermark get backing store a chunk at a time,
    // before anything touches them.
    if (from % kReserveChunk == 0 && !reserve_descriptors(from, kReserveChunk)) return false;  // /dev/shm is full
    index = from;
    // Its generation may be one a receipt handle from before the last
    // trim names (or zero, punched out): start above all of those.
    atom(d_[index].generation).store(h_->trim.generation_base, std::memory_order_release);
    store_hint(r.unused_from, index + 1);
  } else {
    return false;
  }
  offset = arena_.allocate(order);
  if (offset == kNilOffset) {
    store_hint(d_[index].next, r.free_head);  // still kFree: hand the slot back
    store_hint(r.free_head, index);
    index = kNil;
    return false;
  }
  return true;
}

// ---- WRITING -> READY / DELAYED: the sender commits what it wrote ----

// Under the lock. A reclaimed slot has a new generation (free_slot bumps
// it), and may be kWriting again for another sender.
bool QueueCore::holds(const Reservation& slot) const {
  const MessageDescriptor& m = desc(slot.index);
  return state_of(const_cast<MessageDescriptor&>(m)) == MessageState::kWriting && m.generation == slot.generation &&
         m.owner_pid == slot.owner_pid;
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

// From entry `next` on, as reserve_locked. An entry whose commit a repair
// interrupted after its commit point (its state written) is found sent when
// resumed: holds() fails, but the slot is this sender's message.
std::uint32_t QueueCore::commit_locked(std::span<Reservation> slots, std::span<const std::uint32_t> bodies,
                                       std::span<const CommitRequest> requests, std::span<CommitResult> results,
                                       Now now, bool& wake_reaper, std::size_t& next) {
  std::uint32_t receivable = 0;
  if (fifo() && next == 0) dedup_.expire(now.mono_ns);
  // What waits on the submit ring goes first: this sender's own earlier
  // messages may be there (sent without the mutex before one that could
  // not be: a larger block, a full cache), and must stay ahead of this one.
  if (!fifo() && next == 0) receivable += drain_submitted();
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
    atom(m.receive_count).store(req.receive_count, std::memory_order_relaxed);
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

std::uint32_t QueueCore::send_in_one_lock(std::uint32_t epoch, std::span<const std::uint32_t> sizes, std::uint32_t pid,
                                          std::span<Reservation> slots, std::span<std::error_code> errors,
                                          const Fill& fill, std::span<const std::uint32_t> bodies,
                                          std::span<const CommitRequest> requests, std::span<CommitResult> results,
                                          Now now, std::uint32_t& seen_epoch) noexcept {
  std::uint32_t receivable = 0;
  bool wake_reaper = false;
  prefetch_for_send(sizes);
  // A FIFO send's deduplication lookup is a hash bucket nowhere near the
  // last locker's lines: its miss is taken here rather than under the mutex.
  if (fifo()) {
    for (const CommitRequest& req : requests) {
      if (req.dedup) dedup_.prefetch(req.dedup_key);
    }
  }
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
      reserve_locked(sizes, pid, slots, errors, reserved, true);
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

// ---- FREE -> CACHED -> WRITING -> PENDING -> READY: sends without the mutex ----
//
// Sends without the mutex (standard queues; docs/data-plane.md, "Sends
// without the mutex"):
//
//   FREE --refill_cache--> CACHED --send_lock_free--> WRITING --> PENDING
//        (under the mutex)        (CAS, no mutex)          (store)  | on the submit ring
//                                                                   v
//                                             READY <--commit_pending-- (any locker)
//
// A slot and its block are taken from the free list under the mutex a
// batch at a time, into this process's cache; a send claims one with a
// compare-and-swap, writes it, marks it kPending and puts its index on the
// submit ring. Whoever next holds the mutex commits what the ring holds.

bool QueueCore::send_lock_free(std::uint32_t epoch, std::uint32_t size, std::uint32_t pid, const Fill& fill,
                               std::uint32_t body, const CommitRequest& req, CommitResult& res, Now now) noexcept {
  if (fifo() || req.delay_s > 0 || req.sent_ms != 0 || bounds_.capacity < kCacheMinSlots || refused()) return false;
  const unsigned order = Arena::order_for(size);
  if (order >= kMinOrder + kCacheOrders) return false;
  // A daemon that restarted since this process connected reclaims slots
  // only of processes it knows: the locked path reconnects first.
  // Relaxed: the daemon writes it once at attach; a stale read costs one
  // send on the locked path.
  if (epoch != kAnyEpoch && atom(h_->daemon_epoch).load(std::memory_order_relaxed) != epoch) return false;
  CacheEntry e{};
  {
    std::lock_guard guard(cache_mutex_);
    if (!claim_cached(order - kMinOrder, epoch, pid, e)) return false;
  }
  const std::uint32_t index = e.index;
  MessageDescriptor& m = d_[index];
  // The block this process was given is written, never the one the shared
  // descriptor names now: a descriptor overwritten since (a stray write, a
  // bad process) refuses the queue instead of sending a write elsewhere.
  if (m.block_offset != e.block_offset || m.block_order != order) [[unlikely]] {
    refuse(SegmentCheck::kPayloadBlock, "a cached slot's arena block changed under its owner");
    return false;
  }
  std::memcpy(m.message_id, req.message_id.data(), sizeof(m.message_id));
  // Atomic: a check of the tables (a repair, a daemon attaching) reads them
  // meanwhile. A cached slot holds zero lengths (see refill_cache), so a
  // reader that sees one old and one new length never sees them add up past
  // the block.
  atom(m.body_bytes).store(body, std::memory_order_relaxed);
  atom(m.attr_bytes).store(size - body, std::memory_order_relaxed);
  m.sent_ms = now.wall_ms;
  m.sent_ns = now.mono_ns;  // retention counts from arrival in this queue
  m.sender_uid = req.sender_uid.value_or(0);
  // Relaxed: a rebuild reads the flags of every slot, this one included.
  atom(m.flags).store(static_cast<std::uint8_t>(kFromCache | (req.sender_uid ? kHasSenderUid : 0)),
                      std::memory_order_relaxed);
  fill.write(fill.context, 0, arena_base_ + e.block_offset);
  // The commit point of the send: a locker that sees kPending sees the
  // message whole. A compare-and-swap, not a store: a slot freed under this
  // send (its owner taken for dead) is left as whoever has it now left it,
  // and the locked path sends the message instead.
  std::uint32_t writing = static_cast<std::uint32_t>(MessageState::kWriting);
  if (!atom(m.state).compare_exchange_strong(writing, static_cast<std::uint32_t>(MessageState::kPending),
                                             std::memory_order_release, std::memory_order_relaxed)) [[unlikely]] {
    return false;
  }
  res.message_id = req.message_id;
  res.seq = 0;  // a standard queue's messages have no sequence number
  if (!ring_.push(index)) return commit_pending_locked(e, order - kMinOrder);
  // seq_cst: pairs with a receiver's waiters increment before it looks at
  // the ring (available_count) and sleeps on ready_seq: either it sees this
  // entry, or this load sees it waiting and the bump wakes it.
  if (atom(h_->waiters).load(std::memory_order_seq_cst) != 0) {
    atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&h_->ready_seq, 1);
  }
  return true;
}

// The ring is full (nobody has taken the mutex for a while): commits what
// it holds, and this send's message (kPending, in slot e.index, on no
// ring), under the mutex, waiting for it no longer than lock_wait(). If the
// lock stays busy (a stopped holder), the message is taken back: the slot
// returns to the cache, and false sends the caller down the locked path,
// which answers as a busy queue answers. Only its sender moves a kPending
// slot that is on no ring while the sender lives, so the take-back is safe.
bool QueueCore::commit_pending_locked(const CacheEntry& e, unsigned k) noexcept {
  std::uint32_t receivable = 0;
  bool committed = false;
  {
    Lock lock(*this, lock_wait());
    if (lock.owns()) {
      guarded(lock, [&] {
        receivable += drain_submitted();
        if (commit_pending(e.index)) ++receivable;
        committed = state_of(d_[e.index]) != MessageState::kPending;
        // seq_cst pairs with the waiter's waiters increment (see Queue::receive).
        if (receivable > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
        publish_deadline();
      });
    }
  }
  wake_receivers(receivable);
  if (committed) return true;
  // Back before the commit point first (kPending -> kWriting): a sender
  // killed from here on leaves a slot its reclaim frees, never a message
  // with the lengths below zeroed that the reclaim would deliver empty.
  MessageDescriptor& m = d_[e.index];
  std::uint32_t word = static_cast<std::uint32_t>(MessageState::kPending);
  if (!atom(m.state).compare_exchange_strong(word, static_cast<std::uint32_t>(MessageState::kWriting),
                                             std::memory_order_relaxed, std::memory_order_relaxed)) {
    return true;  // committed meanwhile after all (the reclaim of a sender taken for dead)
  }
  // As the refill leaves a cached slot: no lengths (see refill_cache).
  atom(m.body_bytes).store(0, std::memory_order_relaxed);
  atom(m.attr_bytes).store(0, std::memory_order_relaxed);
  // Release: the next claim of the slot sees it as the refill left it.
  word = static_cast<std::uint32_t>(MessageState::kWriting);
  if (!atom(m.state).compare_exchange_strong(word, cached_word(e.generation), std::memory_order_release,
                                             std::memory_order_relaxed)) {
    return false;  // freed under this sender (taken for dead): not its slot any more
  }
  std::lock_guard guard(cache_mutex_);
  // Listed under the epoch this process last saw. A take-back that scans
  // the slot from now on frees it: the entry's claim then fails on the
  // generation (the free bumped it), and the watermark check keeps that
  // claim off a page a trim gave back since.
  if (cache_.count[k] < kCacheRefill) {
    CacheEntry listed = e;
    listed.put_back = true;
    cache_.entries[k][cache_.count[k]++] = listed;
  } else {
    // A refill by another thread filled the cache since: the slot stays
    // cached, unlisted, until a take-back, which a full queue now runs.
    atom(h_->caches.refills).fetch_add(1, std::memory_order_relaxed);
  }
  return false;
}

// Under cache_mutex_. Takes a slot from the cache for blocks of order
// kMinOrder + k, refilling it first if it is empty, and claims it
// (kCached -> kWriting). False if no slot could be had this way.
bool QueueCore::claim_cached(unsigned k, std::uint32_t epoch, std::uint32_t pid, CacheEntry& out) noexcept {
  // Relaxed: a take-back bumps it under the mutex before it takes any slot;
  // an entry read before the bump is seen fails its claim below anyway.
  const std::uint32_t cache_epoch = atom(h_->caches.epoch).load(std::memory_order_relaxed);
  if (cache_.epoch != cache_epoch || cache_.pid != pid) {
    // The cached slots were taken back (a full queue, a purge, a trim), or
    // this is a child of the process that filled the cache (fork): the
    // entries are not ours.
    drop_cache(cache_epoch);
    cache_.pid = pid;
  }
  for (int refills = 0; refills < 2;) {
    if (cache_.count[k] == 0) {
      ++refills;
      if (!refill_cache(k, epoch, pid)) return false;
      continue;
    }
    const CacheEntry e = cache_.entries[k][--cache_.count[k]];
    // An entry put back while a take-back scanned (see commit_pending_locked)
    // may name a slot that take-back freed and a trim then gave back: never
    // touched past the watermark. Only those are checked: the watermark
    // shares a line with next_seq, which every commit writes, and a refill's
    // entries are dropped at the epoch a take-back starts, which every trim
    // runs first (a claimer preempted across a whole trim is the residual
    // docs/data-plane.md names). Relaxed: a stale read only errs the way a
    // failed claim does.
    if (e.put_back && e.index >= atom(h_->roots.unused_from).load(std::memory_order_relaxed)) continue;
    MessageDescriptor& m = d_[e.index];
    // A slot taken back since the refill (a full queue, a purge) has a new
    // generation (freeing bumped it), and may be in another process's cache
    // now. The state word names the generation too (cached_word), so the
    // claim succeeds only on the slot as this cache's refill left it, and
    // never takes one from another cache, even for a moment.
    std::uint32_t expected = cached_word(e.generation);
    // Acquire: the fields the refill wrote (block, owner) are seen.
    if (!atom(m.state).compare_exchange_strong(expected, static_cast<std::uint32_t>(MessageState::kWriting),
                                               std::memory_order_acquire, std::memory_order_relaxed)) {
      continue;  // taken back (a trim, or the daemon took this process for dead)
    }
    if (m.owner_pid != pid) [[unlikely]] {
      // Another process's, with a generation equal in its low 24 bits: this
      // entry outlived 2^24 reuses of its slot, which the epoch should have
      // made impossible. The word goes back as it was, unless the daemon
      // reclaimed that process's slots meanwhile.
      std::uint32_t writing = static_cast<std::uint32_t>(MessageState::kWriting);
      atom(m.state).compare_exchange_strong(writing, expected, std::memory_order_release, std::memory_order_relaxed);
      continue;
    }
    out = e;
    return true;
  }
  return false;
}

// Takes kCacheRefill slots with blocks of order kMinOrder + k into the
// cache, under the mutex. False if none could be had (the queue is full,
// the lock is busy, or a daemon restarted since this process connected):
// the locked path then answers.
bool QueueCore::refill_cache(unsigned k, std::uint32_t epoch, std::uint32_t pid) noexcept {
  Lock lock(*this, lock_wait());
  if (!lock.owns()) return false;
  if (epoch != kAnyEpoch && h_->daemon_epoch != epoch) return false;
  std::array<std::uint32_t, kCacheRefill> sizes;
  sizes.fill(1u << (kMinOrder + k));
  std::array<Reservation, kCacheRefill> slots{};
  std::array<std::error_code, kCacheRefill> errors{};
  std::size_t reserved = 0;
  std::size_t cached = 0;
  bool cached_any = false;
  guarded(lock, [&] {
    // Entries of an earlier epoch name slots taken back since: never listed
    // beside the new ones.
    const std::uint32_t cache_epoch = atom(h_->caches.epoch).load(std::memory_order_relaxed);
    if (cache_.epoch != cache_epoch) drop_cache(cache_epoch);
    reserve_locked(sizes, pid, slots, errors, reserved, false);
    for (; cached < slots.size(); ++cached) {
      const Reservation& r = slots[cached];
      if (r.index == kNil || !holds(r)) continue;
      MessageDescriptor& m = d_[r.index];
      atom(m.flags).store(kFromCache, std::memory_order_relaxed);
      // No payload yet: a check of the tables meanwhile (a repair, a daemon
      // attaching) must never see the sender's body and attributes add up
      // past the block while it stores the two.
      atom(m.body_bytes).store(0, std::memory_order_relaxed);
      atom(m.attr_bytes).store(0, std::memory_order_relaxed);
      count(MessageState::kWriting, -1);
      add_cached(+1);
      // Release, as set_state: a claim that sees the word sees the fields.
      atom(m.state).store(cached_word(r.generation), std::memory_order_release);
      // The block as the allocator gave it (the reservation's), not as the
      // shared descriptor says it: another process can rewrite that.
      const auto offset = static_cast<std::uint64_t>(r.payload - arena_base_);
      cache_.entries[k][cache_.count[k]++] = CacheEntry{r.index, r.generation, offset};
      cached_any = true;
    }
  });
  // Counted only if it took a slot: a refill that found the queue full must
  // not make the next refused send scan for what it did not cache.
  if (cached_any) atom(h_->caches.refills).fetch_add(1, std::memory_order_relaxed);
  // Taken from the back: the lowest slot first, as the locked path would.
  std::reverse(cache_.entries[k], cache_.entries[k] + cache_.count[k]);
  return cache_.count[k] > 0;
}

// Under the mutex. Commits a message a send without the mutex wrote, if its
// slot still says kPending (an entry of the submit ring is a hint: the slot
// may have been committed another way since, and even reused). kPending ->
// kReady, counted as sent; true if committed.
bool QueueCore::commit_pending(std::uint32_t index) {
  // A slot past the watermark was given back by a trim: never read there.
  if (index >= unused_from()) return false;
  MessageDescriptor& m = d_[index];
  if (state_of(m) != MessageState::kPending) return false;
  m.seq = h_->roots.next_seq++;
  atom(m.flags).store(static_cast<std::uint8_t>(m.flags & ~kFromCache), std::memory_order_relaxed);
  add_cached(-1);
  set_state(index, MessageState::kReady);
  count(MessageState::kReady, +1);
  ready_push_back(index);
  all_push_back(index);
  // Each as it is committed: a locker killed midway leaves no committed
  // message uncounted.
  add_total(h_->counts.sent_total, 1);
  return true;
}

// Under the mutex: commits what the submit ring holds. Returns the number
// of messages made visible.
std::uint32_t QueueCore::drain_submitted() {
  if (fifo()) return 0;
  std::uint32_t committed = 0;
  std::uint32_t index = kNil;
  for (std::uint32_t i = 0; i < kSubmitCells && ring_.peek(index); ++i) {
    if (commit_pending(index)) ++committed;
    ring_.pop();
  }
  return committed;
}

void QueueCore::commit_submitted() noexcept {
  if (fifo() || !ring_.nonempty()) return;
  Lock lock(*this, lock_wait());
  if (!lock.owns()) return;
  guarded(lock, [&] {
    drain_submitted();
    publish_deadline();
  });
}

// Under the mutex: the count of slot caches' slots.
void QueueCore::add_cached(int delta) noexcept { count(MessageState::kCached, delta); }

// Under cache_mutex_: forgets every entry (their slots were taken back).
void QueueCore::drop_cache(std::uint32_t epoch) noexcept {
  for (auto& n : cache_.count) n = 0;
  cache_.epoch = epoch;
}

// Gives this process's cached slots back (closing the queue).
void QueueCore::release_cache(std::uint32_t pid) noexcept {
  std::lock_guard guard(cache_mutex_);
  bool any = false;
  for (auto n : cache_.count) any |= n > 0;
  if (!any || cache_.pid != pid || refused()) return;
  Lock lock(*this, lock_wait());
  if (!lock.owns()) return;  // the daemon frees them when this process is gone
  guarded(lock, [&] {
    // Taken back already (by a trim, perhaps, whose descriptors past the
    // watermark have no pages now: never read there).
    if (cache_.epoch != h_->caches.epoch) {
      drop_cache(h_->caches.epoch);
      return;
    }
    for (unsigned k = 0; k < kCacheOrders; ++k) {
      while (cache_.count[k] > 0) {
        const CacheEntry e = cache_.entries[k][--cache_.count[k]];
        take_back_cached(e.index, &e.generation);
      }
    }
  });
}

// Under the mutex: frees a kCached slot (of generation `*generation`, if
// given). False if it is not one (claimed by its owner meanwhile).
//
// One compare-and-swap takes the slot from kCached straight to kFree, the
// rival of the owner's claim: only one of the two wins, and a taker killed
// at any instruction leaves the slot either still its owner's to claim or
// free. (A taker that claimed it as kWriting first, as a send does, and died
// before freeing it would leave a slot no one frees while its owner lives.)
// The generation is bumped before, so that a slot freed this way is never
// handed out again under the generation its owner's cache names; a kill in
// between leaves the owner's entry valid (the state word, not the
// descriptor's generation, names the generation a cache holds).
bool QueueCore::take_back_cached(std::uint32_t index, const std::uint32_t* generation) {
  // Past the watermark after a trim: no page there, nothing cached.
  if (index >= unused_from()) return false;
  MessageDescriptor& m = desc(index);
  std::uint32_t word = atom(m.state).load(std::memory_order_relaxed);
  if ((word & kStateMask) != static_cast<std::uint32_t>(MessageState::kCached)) return false;
  if (generation && word != cached_word(*generation)) return false;
  const std::uint64_t offset = m.block_offset;
  const unsigned order = m.block_order;
  arena_.check_block(offset, order);
  bump_generation(m);
  // Release, as set_state: the generation is seen before the slot is free.
  if (!atom(m.state).compare_exchange_strong(word, static_cast<std::uint32_t>(MessageState::kFree),
                                             std::memory_order_release, std::memory_order_relaxed)) {
    return false;  // claimed by its owner: the bumped generation is one it never reads
  }
  add_cached(-1);
  release_slot(index, offset, order);
  return true;
}

// ---- WRITING -> FREE: a reservation given back ----

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

// ---- READY -> IN_FLIGHT: a receive ----

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
      drain_submitted();
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

// ---- no edge: a peek ----

std::uint32_t QueueCore::peek(std::span<Peeked> out, std::error_code& error) noexcept {
  std::uint32_t found = 0;
  Lock lock(*this, lock_wait());
  if (lock.busy()) {
    error = Errc::queue_busy;
    return 0;
  }
  const bool done = guarded(lock, [&] {
    found = 0;  // a repair runs this again from the start
    // Committed first, so that what was sent before the peek is in it.
    drain_submitted();
    std::uint32_t turns = 0;
    for (std::uint32_t index = h_->roots.all_head; found < out.size() && index != kNil;) {
      if (++turns > bounds_.capacity) [[unlikely]] {
        segment_fault(SegmentCheck::kListCycle);
      }
      MessageDescriptor& m = desc(index);
      const MessageState state = state_of(m);
      if (!committed(state)) [[unlikely]] {
        segment_fault(SegmentCheck::kDescriptorState);
      }
      Peeked& p = out[found++];
      describe(index, p.delivery);
      p.state = state;
      p.due_ns = m.deadline_ns;
      index = m.all_next;
    }
  });
  if (!done && found == 0) error = Errc::segment_corrupt;
  return found;
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

// ---- READY -> REDRIVE: a receive finds a message past maxReceiveCount ----

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

// ---- IN_FLIGHT -> READY, DELAYED -> READY, IN_FLIGHT -> REDRIVE: timers ----

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
    add_total(h_->totals.expired_total, 1);
    if (fifo() && h_->available > before) moved += h_->available - before;
  }
  if (moved > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
  publish_deadline();
  return moved;
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
      // A standard queue's message whose visibility timeout ran out: Amazon
      // SQS answers success and leaves it visible.
      if (state == MessageState::kReady && !fifo()) return;
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

// ---- REDRIVE -> FREE, REDRIVE -> READY: the daemon's dead-letter moves ----

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
      add_total(h_->totals.dead_lettered_total, 1);
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

// ---- IN_FLIGHT / READY -> FREE: a delete ----

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

// Under the mutex, after locate(): the handle names its message, but the
// message is no longer in flight under it (its visibility timeout ran out:
// visible again, or received again since). Amazon SQS deletes it then from
// a standard queue, and refuses the delete on a FIFO queue.
bool QueueCore::expired(const ReceiptHandle& handle, const std::error_code& located, MessageState state) const {
  if (!located) return state == MessageState::kReady;
  if (located != Errc::stale_receipt_handle || handle.index >= h_->roots.unused_from) return false;
  const MessageDescriptor& m = desc(handle.index);
  return m.generation == handle.generation && committed(state_of(const_cast<MessageDescriptor&>(m)));
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
        if (fifo() && expired(handles[i], errors[i], state)) errors[i] = Errc::receipt_handle_expired;
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

void QueueCore::free_slot(std::uint32_t index) {
  MessageDescriptor& m = desc(index);
  // Checked before the commit point: a block out of range leaves the message
  // as it was, for a repair to judge.
  const std::uint64_t offset = m.block_offset;
  const unsigned order = m.block_order;
  arena_.check_block(offset, order);
  bump_generation(m);
  // The commit point comes before the block is released: the allocator
  // writes its free-list links into the block it frees, and a process killed
  // between the two must not leave a live message with those bytes in its
  // body. Once the state says free, recovery frees the block from the states.
  set_state(index, MessageState::kFree);
  release_slot(index, offset, order);
}

// Under the mutex, before a slot's state says kFree.
void QueueCore::bump_generation(MessageDescriptor& m) noexcept {
  // Release: a reader validating a copy (still_valid) must not see the old
  // generation once the block can be handed to another sender.
  const std::uint32_t generation = m.generation + 1;
  atom(m.generation).store(generation, std::memory_order_release);
  if (generation > h_->roots.max_generation) h_->roots.max_generation = generation;
}

// Under the mutex, once slot `index` says kFree: its block (checked) and
// the slot go back to their free lists.
void QueueCore::release_slot(std::uint32_t index, std::uint64_t offset, unsigned order) {
  arena_.release(offset, order);
  store_hint(d_[index].next, h_->roots.free_head);
  store_hint(h_->roots.free_head, index);
}

// ---- any committed -> FREE: purge (and retention, in expire_locked) ----

std::optional<std::uint32_t> QueueCore::purge() noexcept {
  std::uint32_t purged = 0;
  bool emptied = false;
  {
    Lock lock(*this, lock_wait());
    if (lock.busy()) return std::nullopt;
    guarded(lock, [&] {
      // Sent before the purge: purged with the rest. The slots in processes'
      // caches come back too, so that a purged queue has all its space.
      take_back_caches();
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
      // The deduplication window goes too, as on Amazon SQS.
      if (fifo()) dedup_.clear();
      publish_deadline();
      emptied = worth_trimming();
    });
  }
  if (emptied) reaper_wake();
  return purged;
}

// ---- The bookkeeping every edge shares: states and counts ----

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
    case MessageState::kCached:
    case MessageState::kPending:
      field = &h_->counts.cached;  // a slot cache's, until committed
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

// ---- Lists and deadlines ----

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

// ---- Prefetching before the lock ----

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

}  // namespace shmq::detail
