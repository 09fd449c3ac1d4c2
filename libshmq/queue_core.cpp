#include "queue_core.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "futex.hpp"
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

}  // namespace

SegmentGeometry SegmentGeometry::compute(std::uint32_t capacity, std::uint64_t arena_bytes) noexcept {
  SegmentGeometry g{};
  g.descriptors_offset = sizeof(SegmentHeader);
  g.heap_offset = align_up(g.descriptors_offset + std::uint64_t{capacity} * sizeof(MessageDescriptor), 4096);
  g.order_map_offset = align_up(g.heap_offset + std::uint64_t{capacity} * sizeof(std::uint32_t), 4096);
  g.arena_offset = align_up(g.order_map_offset + (arena_bytes >> kMinOrder), 4096);
  g.total_bytes = g.arena_offset + arena_bytes;
  return g;
}

// Holds the queue mutex. On EOWNERDEAD the previous owner died inside a
// critical section: rebuild the derived structures, then mark it consistent.
class QueueCore::Lock {
 public:
  explicit Lock(QueueCore& q) noexcept : q_(q) {
    const int rc = pthread_mutex_lock(&q.h_->mutex);
    if (rc == EOWNERDEAD) {
      q.rebuild();
      atom(q.h_->counts.recoveries).fetch_add(1, std::memory_order_relaxed);
      pthread_mutex_consistent(&q.h_->mutex);
    } else if (rc != 0) {
      // ENOTRECOVERABLE needs an owner that unlocked without making the mutex
      // consistent, which this code never does: the segment is not ours.
      std::fprintf(stderr, "shmq: queue mutex unusable (%s); segment corrupt\n", std::strerror(rc));
      std::abort();
    }
  }
  ~Lock() { pthread_mutex_unlock(&q_.h_->mutex); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  QueueCore& q_;
};

QueueCore::QueueCore(void* base) noexcept
    : h_(static_cast<SegmentHeader*>(base)),
      d_(reinterpret_cast<MessageDescriptor*>(static_cast<std::uint8_t*>(base) + h_->descriptors_offset)),
      heap_slots_(reinterpret_cast<std::uint32_t*>(static_cast<std::uint8_t*>(base) + h_->heap_offset)),
      order_map_(static_cast<std::uint8_t*>(base) + h_->order_map_offset),
      arena_base_(static_cast<std::uint8_t*>(base) + h_->arena_offset),
      arena_(h_->roots, order_map_, arena_base_, h_->arena_bytes),
      timers_(heap_slots_, h_->roots.heap_size, d_) {}

void QueueCore::format(void* base, const FormatParams& p) {
  const SegmentGeometry g = SegmentGeometry::compute(p.capacity, p.arena_bytes);
  auto* h = static_cast<SegmentHeader*>(base);  // zero-filled by ftruncate
  h->magic = kMagic;
  h->header_bytes = sizeof(SegmentHeader);
  h->incarnation = p.incarnation;
  h->segment_bytes = g.total_bytes;
  h->capacity = p.capacity;
  h->descriptors_offset = g.descriptors_offset;
  h->heap_offset = g.heap_offset;
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

  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&h->mutex, &attr);
  pthread_mutexattr_destroy(&attr);

  IndexRoots& r = h->roots;
  r.free_head = r.ready_head = r.ready_tail = kNil;
  r.next_seq = 1;
  r.arena_free_bytes = p.arena_bytes;
  for (auto& head : r.arena_free_head) head = kNilOffset;
  h->counts.next_deadline_ns = ~0ull;
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
    case MessageState::kFree:
      return;
  }
  // Relaxed: written only under the mutex; lock-free readers want an estimate.
  atom(*field).store(*field + static_cast<std::uint32_t>(delta), std::memory_order_relaxed);
}

void QueueCore::publish_deadline() noexcept {
  atom(h_->counts.next_deadline_ns).store(timers_.earliest(), std::memory_order_relaxed);
}

bool QueueCore::reaper_needs_wake(std::uint64_t deadline_ns) const noexcept {
  return atom(h_->reaper_waiting).load(std::memory_order_relaxed) != 0 && deadline_ns < h_->reaper_deadline_ns;
}

void QueueCore::ready_push_back(std::uint32_t index) noexcept {
  IndexRoots& r = h_->roots;
  d_[index].next = kNil;
  d_[index].prev = r.ready_tail;
  if (r.ready_tail != kNil) {
    d_[r.ready_tail].next = index;
  } else {
    r.ready_head = index;
  }
  r.ready_tail = index;
}

void QueueCore::ready_push_front(std::uint32_t index) noexcept {
  IndexRoots& r = h_->roots;
  d_[index].prev = kNil;
  d_[index].next = r.ready_head;
  if (r.ready_head != kNil) {
    d_[r.ready_head].prev = index;
  } else {
    r.ready_tail = index;
  }
  r.ready_head = index;
}

void QueueCore::ready_insert_after(std::uint32_t after, std::uint32_t index) noexcept {
  MessageDescriptor& m = d_[index];
  m.prev = after;
  m.next = d_[after].next;
  if (m.next != kNil) {
    d_[m.next].prev = index;
  } else {
    h_->roots.ready_tail = index;
  }
  d_[after].next = index;
}

void QueueCore::ready_unlink(std::uint32_t index) noexcept {
  IndexRoots& r = h_->roots;
  MessageDescriptor& m = d_[index];
  if (m.prev != kNil) {
    d_[m.prev].next = m.next;
  } else {
    r.ready_head = m.next;
  }
  if (m.next != kNil) {
    d_[m.next].prev = m.prev;
  } else {
    r.ready_tail = m.prev;
  }
  m.next = m.prev = kNil;
}

void QueueCore::free_slot(std::uint32_t index) noexcept {
  MessageDescriptor& m = d_[index];
  arena_.release(m.block_offset, m.block_order);
  // Release: a reader validating a copy (still_valid) must not see the old
  // generation once the block can be handed to another sender.
  atom(m.generation).store(m.generation + 1, std::memory_order_release);
  set_state(index, MessageState::kFree);
  m.next = h_->roots.free_head;
  h_->roots.free_head = index;
}

std::uint32_t QueueCore::reserve(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                                 std::span<std::error_code> errors) noexcept {
  Lock lock(*this);
  IndexRoots& r = h_->roots;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    out[i] = Reservation{};
    if (errors[i]) continue;
    std::uint32_t index = r.free_head;
    if (index != kNil) {
      r.free_head = d_[index].next;
    } else if (r.unused_from < h_->capacity) {
      index = r.unused_from++;
    } else {
      errors[i] = Errc::queue_full;
      continue;
    }
    const unsigned order = Arena::order_for(sizes[i]);
    const std::uint64_t offset = arena_.allocate(order);
    if (offset == kNilOffset) {
      d_[index].next = r.free_head;  // still kFree: hand the slot back
      r.free_head = index;
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
    m.next = m.prev = kNil;
    set_state(index, MessageState::kWriting);
    count(MessageState::kWriting, +1);
    out[i] = Reservation{index, m.generation, arena_base_ + offset};
  }
  return atom(h_->daemon_epoch).load(std::memory_order_relaxed);
}

void QueueCore::unreserve(std::span<Reservation> slots) noexcept {
  Lock lock(*this);
  for (Reservation& slot : slots) {
    if (slot.index == kNil) continue;
    count(MessageState::kWriting, -1);
    free_slot(slot.index);
    slot = Reservation{};
  }
}

std::uint32_t QueueCore::commit(std::span<const Reservation> slots, std::span<const std::uint32_t> delay_s,
                                std::span<const std::array<std::uint8_t, 16>> message_ids, Now now) noexcept {
  std::uint32_t visible = 0;
  bool wake_reaper = false;
  {
    Lock lock(*this);
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const std::uint32_t index = slots[i].index;
      if (index == kNil) continue;
      MessageDescriptor& m = d_[index];
      std::memcpy(m.message_id, message_ids[i].data(), sizeof(m.message_id));
      m.seq = h_->roots.next_seq++;
      m.sent_ms = now.wall_ms;
      count(MessageState::kWriting, -1);
      if (delay_s[i] > 0) {
        m.deadline_ns = now.mono_ns + seconds_ns(delay_s[i]);
        set_state(index, MessageState::kDelayed);
        timers_.push(index);
        count(MessageState::kDelayed, +1);
        wake_reaper |= reaper_needs_wake(m.deadline_ns);
      } else {
        set_state(index, MessageState::kReady);
        ready_push_back(index);
        count(MessageState::kReady, +1);
        ++visible;
      }
      ++h_->counts.sent_total;
    }
    // seq_cst pairs with the waiter's waiters increment (see Queue::receive).
    if (visible > 0) atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
    publish_deadline();
  }
  if (wake_reaper) reaper_wake();
  return visible;
}

std::uint32_t QueueCore::expire_locked(Now now) noexcept {
  std::uint32_t moved = 0;
  std::uint32_t last_returned = kNil;
  while (!timers_.empty() && d_[timers_.top()].deadline_ns <= now.mono_ns) {
    const std::uint32_t index = timers_.top();
    timers_.remove(index);
    const MessageState was = state_of(d_[index]);
    set_state(index, MessageState::kReady);
    if (was == MessageState::kInFlight) {
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
    count(was, -1);
    count(MessageState::kReady, +1);
    ++moved;
  }
  if (moved > 0) {
    atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
    publish_deadline();
  }
  return moved;
}

std::uint32_t QueueCore::expire_due(Now now) noexcept {
  std::uint32_t moved;
  {
    Lock lock(*this);
    moved = expire_locked(now);
  }
  if (moved > 0) wake_receivers(moved);
  return moved;
}

std::uint32_t QueueCore::receive(std::span<Delivery> out, std::uint32_t visibility_s, Now now) noexcept {
  std::uint32_t taken = 0;
  std::uint32_t moved = 0;
  bool wake_reaper = false;
  {
    Lock lock(*this);
    moved = expire_locked(now);
    IndexRoots& r = h_->roots;
    const std::uint64_t deadline = now.mono_ns + seconds_ns(visibility_s);
    while (taken < out.size() && r.ready_head != kNil) {
      const std::uint32_t index = r.ready_head;
      ready_unlink(index);
      MessageDescriptor& m = d_[index];
      const std::uint32_t receives = m.receive_count + 1;
      atom(m.receive_count).store(receives, std::memory_order_relaxed);
      if (m.first_receive_ms == 0) m.first_receive_ms = now.wall_ms;
      m.deadline_ns = deadline;
      set_state(index, MessageState::kInFlight);
      timers_.push(index);
      count(MessageState::kReady, -1);
      count(MessageState::kInFlight, +1);
      Delivery& out_m = out[taken++];
      out_m.index = index;
      out_m.handle = ReceiptHandle{h_->incarnation, index, m.generation, receives};
      out_m.body_bytes = m.body_bytes;
      out_m.block_offset = m.block_offset;
      out_m.sent_ms = m.sent_ms;
      out_m.first_receive_ms = m.first_receive_ms;
      std::memcpy(out_m.message_id, m.message_id, sizeof(m.message_id));
    }
    if (taken > 0) {
      wake_reaper = reaper_needs_wake(deadline);
      h_->counts.received_total += taken;
      publish_deadline();
    }
  }
  if (moved > taken) wake_receivers(moved - taken);
  if (wake_reaper) reaper_wake();
  return taken;
}

bool QueueCore::still_valid(const Delivery& delivery) const noexcept {
  // Seqlock-style: the payload reads above must not move below this check.
  std::atomic_thread_fence(std::memory_order_acquire);
  return atom(d_[delivery.index].generation).load(std::memory_order_relaxed) == delivery.handle.generation;
}

std::error_code QueueCore::locate(const ReceiptHandle& handle, MessageState& state) const noexcept {
  if (handle.incarnation != h_->incarnation || handle.index >= h_->capacity) return Errc::invalid_receipt_handle;
  MessageDescriptor& m = d_[handle.index];
  state = state_of(m);
  if (handle.index >= h_->roots.unused_from || m.generation != handle.generation ||
      m.receive_count != handle.receive_count || (state != MessageState::kInFlight && state != MessageState::kReady)) {
    return Errc::stale_receipt_handle;
  }
  return {};
}

std::error_code QueueCore::remove(const ReceiptHandle& handle) noexcept {
  Lock lock(*this);
  MessageState state;
  if (auto ec = locate(handle, state)) return ec;
  if (state == MessageState::kInFlight) {
    timers_.remove(handle.index);
    publish_deadline();
  } else {
    ready_unlink(handle.index);  // its visibility expired, nobody received it since
  }
  count(state, -1);
  free_slot(handle.index);
  ++h_->counts.deleted_total;
  return {};
}

std::error_code QueueCore::change_visibility(const ReceiptHandle& handle, std::uint32_t visibility_s,
                                             Now now) noexcept {
  std::uint32_t moved = 0;
  bool wake_reaper = false;
  {
    Lock lock(*this);
    MessageState state;
    if (auto ec = locate(handle, state)) return ec;
    if (state != MessageState::kInFlight) return Errc::message_not_in_flight;
    MessageDescriptor& m = d_[handle.index];
    m.deadline_ns = now.mono_ns + seconds_ns(visibility_s);
    timers_.rekeyed(handle.index);
    moved = expire_locked(now);  // a timeout of 0 makes it visible at once
    publish_deadline();
    wake_reaper = moved == 0 && reaper_needs_wake(m.deadline_ns);
  }
  if (moved > 0) wake_receivers(moved);
  if (wake_reaper) reaper_wake();
  return {};
}

std::uint32_t QueueCore::purge() noexcept {
  Lock lock(*this);
  std::uint32_t purged = 0;
  for (std::uint32_t i = 0; i < h_->roots.unused_from; ++i) {
    const MessageState s = state_of(d_[i]);
    if (s == MessageState::kReady || s == MessageState::kInFlight || s == MessageState::kDelayed) {
      d_[i].heap_pos = kNil;
      free_slot(i);
      ++purged;
    }
  }
  h_->roots.ready_head = h_->roots.ready_tail = kNil;
  h_->roots.heap_size = 0;
  atom(h_->counts.visible).store(0, std::memory_order_relaxed);
  atom(h_->counts.in_flight).store(0, std::memory_order_relaxed);
  atom(h_->counts.delayed).store(0, std::memory_order_relaxed);
  publish_deadline();
  return purged;
}

std::uint32_t QueueCore::free_writing_matching(bool (*match)(std::uint32_t pid, void* ctx), void* ctx) noexcept {
  Lock lock(*this);
  std::uint32_t freed = 0;
  for (std::uint32_t i = 0; i < h_->roots.unused_from; ++i) {
    if (state_of(d_[i]) == MessageState::kWriting && match(d_[i].owner_pid, ctx)) {
      count(MessageState::kWriting, -1);
      free_slot(i);
      ++freed;
    }
  }
  return freed;
}

void QueueCore::rebuild() noexcept {
  IndexRoots& r = h_->roots;
  Counts& c = h_->counts;
  r.free_head = r.ready_head = r.ready_tail = kNil;
  r.heap_size = 0;
  std::uint32_t visible = 0, in_flight = 0, delayed = 0, writing = 0;
  std::uint64_t max_seq = 0;
  std::vector<std::uint32_t> ready;
  std::vector<std::pair<std::uint64_t, unsigned>> allocated;
  // Backwards, so that the free list hands out low indexes first.
  for (std::uint32_t i = r.unused_from; i-- > 0;) {
    MessageDescriptor& m = d_[i];
    m.heap_pos = kNil;
    m.next = m.prev = kNil;
    MessageState s = state_of(m);
    if (s != MessageState::kFree) {
      allocated.emplace_back(m.block_offset, m.block_order);
      max_seq = std::max(max_seq, m.seq);
    }
    switch (s) {
      case MessageState::kWriting:
        ++writing;
        break;
      case MessageState::kReady:
        ready.push_back(i);
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
      case MessageState::kFree:
        m.next = r.free_head;
        r.free_head = i;
        break;
      default:  // not a state this version writes: treat the slot as lost
        allocated.pop_back();
        set_state(i, MessageState::kFree);
        m.next = r.free_head;
        r.free_head = i;
    }
  }
  std::sort(ready.begin(), ready.end(), [&](std::uint32_t a, std::uint32_t b) { return d_[a].seq < d_[b].seq; });
  for (std::uint32_t index : ready) ready_push_back(index);
  r.next_seq = std::max(r.next_seq, max_seq + 1);
  arena_.rebuild(allocated);
  atom(c.visible).store(visible, std::memory_order_relaxed);
  atom(c.in_flight).store(in_flight, std::memory_order_relaxed);
  atom(c.delayed).store(delayed, std::memory_order_relaxed);
  atom(c.writing).store(writing, std::memory_order_relaxed);
  publish_deadline();
  // Someone may have been waiting for what the dead owner was doing.
  atom(h_->ready_seq).fetch_add(1, std::memory_order_seq_cst);
}

void QueueCore::wake_receivers(std::uint32_t count) noexcept {
  // seq_cst: pairs with the receiver's waiters increment, so that either the
  // receiver sees the new ready_seq or this load sees the waiter.
  if (atom(h_->waiters).load(std::memory_order_seq_cst) == 0) return;
  futex_wake(&h_->ready_seq, count > INT_MAX ? INT_MAX : static_cast<int>(count));
}

std::uint32_t QueueCore::reaper_wait(std::uint64_t max_sleep_ns, const std::atomic<bool>& stop) noexcept {
  std::uint32_t seq;
  std::uint64_t deadline;
  std::uint32_t moved;
  {
    Lock lock(*this);
    moved = expire_locked(now());
    deadline = timers_.earliest();
    h_->reaper_deadline_ns = deadline;
    atom(h_->reaper_waiting).store(1, std::memory_order_relaxed);
    // seq_cst, and stop read after it: whoever sets stop and then calls
    // reaper_wake() either changes seq after this read (the futex_wait below
    // returns at once) or is seen here through stop.
    seq = atom(h_->reaper_seq).load(std::memory_order_seq_cst);
  }
  if (moved > 0) wake_receivers(moved);
  const std::uint64_t t = monotonic_ns();
  if (deadline > t && !stop.load(std::memory_order_seq_cst)) {
    const std::uint64_t sleep = std::min(deadline - t, max_sleep_ns);
    futex_wait(&h_->reaper_seq, seq, sleep);
  }
  atom(h_->reaper_waiting).store(0, std::memory_order_relaxed);
  return moved;
}

void QueueCore::reaper_wake() noexcept {
  atom(h_->reaper_seq).fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&h_->reaper_seq, 1);
}

std::uint32_t QueueCore::visible_count() const noexcept {
  return atom(h_->counts.visible).load(std::memory_order_relaxed);
}

std::uint64_t QueueCore::next_deadline_ns() const noexcept {
  return atom(h_->counts.next_deadline_ns).load(std::memory_order_relaxed);
}

}  // namespace shmq::detail
