// The daemon's reaper (one turn: expiry, the wake-up it arms) and the
// receivers asleep on a queue (who is waiting, and waking them).
#include <algorithm>
#include <atomic>
#include <climits>
#include <vector>

#include "futex.hpp"
#include "queue_core.hpp"
#include "queue_core_internal.hpp"
#include "queue_lock.hpp"

namespace shmq::detail {

// ---- The reaper ----

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
      drain_submitted();
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

// ---- Sleeping receivers ----

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

}  // namespace shmq::detail
