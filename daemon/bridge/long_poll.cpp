#include "long_poll.hpp"

#include <algorithm>

namespace shmq::bridge {

using Clock = std::chrono::steady_clock;

LongPollHub::~LongPollHub() {
  std::lock_guard lock(mutex_);
  for (auto& [name, q] : queues_) {
    {
      std::lock_guard ql(q->mutex);
      q->stop = true;
    }
    q->added.notify_all();
  }
  for (auto& [name, q] : queues_) q->thread.join();
}

void LongPollHub::add(PendingReceive pending, Complete done) {
  QueueWaiters* q;
  {
    std::lock_guard lock(mutex_);
    auto& slot = queues_[pending.queue_name];
    if (!slot) {
      slot = std::make_unique<QueueWaiters>();
      slot->thread = std::thread([this, raw = slot.get()] { serve(*raw); });
    }
    q = slot.get();
  }
  {
    std::lock_guard lock(q->mutex);
    q->waiters.push_back(Waiter{std::move(pending), std::move(done)});
  }
  q->added.notify_one();
}

void LongPollHub::serve(QueueWaiters& q) {
  // A new waiter with an earlier deadline is noticed within this slice.
  constexpr auto kSlice = std::chrono::milliseconds(50);
  std::unique_lock lock(q.mutex);
  for (;;) {
    q.added.wait(lock, [&] { return q.stop || !q.waiters.empty(); });
    if (q.stop) return;
    // Serve in arrival order; the answer goes out outside the lock.
    std::deque<Waiter> waiting;
    waiting.swap(q.waiters);
    lock.unlock();
    std::deque<Waiter> still;
    auto earliest = Clock::time_point::max();
    std::optional<Queue> sample;
    for (Waiter& w : waiting) {
      const bool last = Clock::now() >= w.pending.deadline;
      try {
        if (auto result = service_.receive_now(w.pending, last)) {
          w.done(std::move(*result), nullptr);
          continue;
        }
      } catch (...) {
        w.done({}, std::current_exception());
        continue;
      }
      earliest = std::min(earliest, w.pending.deadline);
      sample = w.pending.queue;
      still.push_back(std::move(w));
    }
    if (!still.empty()) {
      const auto timeout = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(earliest - Clock::now()),
                                      std::chrono::milliseconds(0), kSlice);
      sample->wait_for_messages(timeout);  // woken by a send, or the slice ends
    }
    lock.lock();
    // Waiters that came meanwhile queue up behind those still waiting.
    for (auto it = still.rbegin(); it != still.rend(); ++it) q.waiters.push_front(std::move(*it));
  }
}

}  // namespace shmq::bridge
