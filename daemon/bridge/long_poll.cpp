#include "long_poll.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace shmq::bridge {

using Clock = std::chrono::steady_clock;

LongPollHub::LongPollHub(SqsService& service) : service_(service), thread_([this] { serve(); }) {}

LongPollHub::~LongPollHub() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  interrupt_.notify();
  thread_.join();
}

void LongPollHub::add(PendingReceive pending, Complete done) {
  {
    std::lock_guard lock(mutex_);
    added_.push_back(Waiter{std::move(pending), std::move(done)});
  }
  interrupt_.notify();
}

std::size_t LongPollHub::waiting_queues() const {
  std::lock_guard lock(mutex_);
  return waiting_count_;
}

void LongPollHub::serve_queue(QueueWaiters& q) {
  // A busy queue is tried again after this; one that looks receivable while
  // receives find nothing (it stays so until a delete or a visibility
  // change, which wake no one), after kStalledRetry.
  constexpr auto kBusyRetry = std::chrono::milliseconds(5);
  constexpr auto kStalledRetry = std::chrono::milliseconds(20);
  std::deque<Waiter> still;
  bool busy = false;
  for (Waiter& w : q.waiters) {
    const bool last = Clock::now() >= w.pending.deadline;
    std::optional<nlohmann::json> result;
    std::exception_ptr error;
    try {
      result = service_.receive_now(w.pending, last);
    } catch (...) {
      error = std::current_exception();  // e.g. QueueDoesNotExist: deleted meanwhile
    }
    if (!result && !error) {
      busy = busy || w.pending.busy;
      still.push_back(std::move(w));
      continue;
    }
    // Once, outside the try: a second answer would be a second write on the
    // connection. Complete renders any error itself and does not throw.
    w.done(result ? std::move(*result) : nlohmann::json{}, error);
  }
  q.waiters.swap(still);
  q.poll_at = {};
  if (q.waiters.empty()) return;
  if (busy) {
    q.poll_at = Clock::now() + kBusyRetry;
    return;
  }
  // Twice: the first may have raced with a send that came just after it.
  if (!q.waiters.back().pending.queue.might_have_messages()) {
    q.empty_while_receivable = 0;
  } else if (++q.empty_while_receivable >= 2) {
    q.poll_at = Clock::now() + kStalledRetry;
  } else {
    q.try_now = true;
  }
}

void LongPollHub::serve() {
  // With more queues than one wait takes, each turn waits on the next
  // kMaxWaitQueues and polls the rest once a slice.
  constexpr auto kSlice = std::chrono::milliseconds(50);
  std::vector<Queue> wait_set;
  std::vector<QueueWaiters*> wait_owner;
  std::vector<QueueWaiters*> waitable;
  std::vector<std::size_t> ready;
  std::size_t rotation = 0;
  for (;;) {
    std::deque<Waiter> added;
    std::uint32_t seen;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      added.swap(added_);
      // Read after taking added_: a waiter added later notifies after this.
      seen = interrupt_.value();
    }
    for (Waiter& w : added) {
      QueueWaiters& q = queues_[w.pending.queue_name];
      q.waiters.push_back(std::move(w));
      q.try_now = true;  // it may have missed a message sent since its first try
    }
    const auto now = Clock::now();
    auto earliest = Clock::time_point::max();
    for (auto it = queues_.begin(); it != queues_.end();) {
      QueueWaiters& q = it->second;
      const bool expired =
          std::any_of(q.waiters.begin(), q.waiters.end(), [&](const Waiter& w) { return now >= w.pending.deadline; });
      const bool polled = q.poll_at != Clock::time_point{} && now >= q.poll_at;
      if (q.try_now || expired || polled) {
        q.try_now = false;
        serve_queue(q);
      }
      if (q.waiters.empty()) {
        it = queues_.erase(it);  // nothing of a queue stays without waiters
        continue;
      }
      for (const Waiter& w : q.waiters) earliest = std::min(earliest, w.pending.deadline);
      if (q.poll_at != Clock::time_point{}) earliest = std::min(earliest, q.poll_at);
      if (q.try_now) earliest = now;  // served again at the next turn
      ++it;
    }
    {
      std::lock_guard lock(mutex_);
      waiting_count_ = queues_.size();
    }
    // The queues to sleep on this turn: all that are not polled, or the
    // next kMaxWaitQueues of them.
    waitable.clear();
    for (auto& [name, q] : queues_) {
      if (q.poll_at == Clock::time_point{}) waitable.push_back(&q);
    }
    wait_set.clear();
    wait_owner.clear();
    const std::size_t n = waitable.size();
    const bool sliced = n > Queue::kMaxWaitQueues;
    rotation = n == 0 ? 0 : rotation % n;
    for (std::size_t i = 0; i < std::min(n, Queue::kMaxWaitQueues); ++i) {
      QueueWaiters* q = waitable[(rotation + i) % n];
      // The newest waiter's handle: an older one may be of a deleted queue
      // of the same name, answered at its next try.
      wait_set.push_back(q->waiters.back().pending.queue);
      wait_owner.push_back(q);
    }
    if (sliced) rotation += Queue::kMaxWaitQueues;
    auto timeout = std::chrono::milliseconds::max();
    if (earliest != Clock::time_point::max()) {
      timeout =
          std::max(std::chrono::ceil<std::chrono::milliseconds>(earliest - Clock::now()), std::chrono::milliseconds(0));
    }
    if (sliced) timeout = std::min(timeout, std::chrono::milliseconds(kSlice));
    Queue::wait_for_any(wait_set, timeout, interrupt_, seen, ready);
    for (const std::size_t i : ready) wait_owner[i]->try_now = true;
    if (sliced) {
      // The ones not waited on are polled.
      for (QueueWaiters* q : waitable) q->try_now = true;
    }
  }
}

}  // namespace shmq::bridge
