#include "reaper_pool.hpp"

#include <algorithm>
#include <atomic>
#include <system_error>

#include "clock.hpp"
#include "futex.hpp"
#include "queue_registry.hpp"
#include "segment_layout.hpp"
#include "shmq/error.hpp"

namespace shmq::daemon {

ReaperPool::~ReaperPool() { stop(); }

void ReaperPool::interrupt(Group& group) noexcept {
  // seq_cst: pairs with the thread's load before it sleeps (see serve).
  detail::atom(group.wake).fetch_add(1, std::memory_order_seq_cst);
  detail::futex_wake_private(&group.wake, 1);
}

void ReaperPool::add(std::shared_ptr<ManagedQueue> queue) {
  std::lock_guard lock(mutex_);
  auto group = std::find_if(groups_.begin(), groups_.end(),
                            [](const Group& g) { return !g.stop && g.members.size() < kQueuesPerThread; });
  if (group == groups_.end()) {
    Group& fresh = groups_.emplace_back();
    try {
      // The thread starts by taking the lock held here: it sees the member.
      fresh.thread = std::thread([this, &fresh] { serve(fresh); });
    } catch (const std::system_error& e) {
      // No group without its thread: a queue put in it would never be served.
      groups_.pop_back();
      throw std::system_error(Errc::over_limit,
                              "no thread could be started to serve the queue (" + e.code().message() +
                                  "): shmqd has reached its limit of threads (the cgroup's pids.max or RLIMIT_NPROC)");
    }
    group = std::prev(groups_.end());
  }
  group->members.push_back(std::move(queue));
  ++group->version;
  interrupt(*group);
}

void ReaperPool::remove(const ManagedQueue& queue) {
  std::shared_ptr<ManagedQueue> removed;  // released last, outside the lock: perhaps the last reference
  std::unique_lock lock(mutex_);
  const auto group = std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) {
    return std::any_of(g.members.begin(), g.members.end(), [&](const auto& q) { return q.get() == &queue; });
  });
  if (group == groups_.end()) return;
  auto& members = group->members;
  const auto it = std::find_if(members.begin(), members.end(), [&](const auto& q) { return q.get() == &queue; });
  removed = std::move(*it);
  members.erase(it);
  ++group->version;
  if (!members.empty()) {
    // No wait for the thread to take the change: it may be in a turn of
    // another queue (whose lock may be held for long), and the queue it drops
    // stays valid through its own reference until then.
    interrupt(*group);
    return;
  }
  // The thread's last queue: the thread ends with it. The group stays listed
  // (stopping: add() passes it by) until the thread, which uses it, is joined.
  group->stop = true;
  interrupt(*group);
  std::thread thread = std::move(group->thread);
  lock.unlock();
  if (thread.joinable()) thread.join();
  lock.lock();
  groups_.erase(group);
}

void ReaperPool::stop() {
  std::vector<std::list<Group>::iterator> stopped;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (auto group = groups_.begin(); group != groups_.end(); ++group) {
      if (group->stop) continue;  // being removed: remove() joins it
      group->stop = true;
      interrupt(*group);
      threads.push_back(std::move(group->thread));
      stopped.push_back(group);
    }
  }
  for (std::thread& thread : threads) {
    if (thread.joinable()) thread.join();
  }
  std::lock_guard lock(mutex_);
  for (const auto& group : stopped) groups_.erase(group);
}

std::size_t ReaperPool::thread_count() const {
  std::lock_guard lock(mutex_);
  return groups_.size();
}

void ReaperPool::serve(Group& group) {
  struct Served {
    std::shared_ptr<ManagedQueue> queue;
    std::uint32_t seq = 0;  // its reaper word when its last turn armed it
    std::uint64_t due = 0;  // its next turn, at the latest
  };
  std::vector<Served> served;
  std::vector<detail::FutexWord> words;
  std::uint64_t version = ~0ull;
  for (;;) {
    std::vector<Served> dropped;  // released outside the lock
    std::uint32_t wake_seq;
    {
      std::lock_guard lock(mutex_);
      if (group.stop) return;
      if (group.version != version) {
        std::vector<Served> next;
        for (const auto& queue : group.members) {
          const auto it = std::find_if(served.begin(), served.end(), [&](const Served& s) { return s.queue == queue; });
          next.push_back(it != served.end() ? std::move(*it) : Served{queue});
        }
        dropped.swap(served);
        served.swap(next);
        version = group.version;
      }
      // seq_cst, read after the members: a change made after this load
      // bumps the word, and the futex wait below returns at once.
      wake_seq = detail::atom(group.wake).load(std::memory_order_seq_cst);
    }
    dropped.clear();
    std::uint64_t earliest = ~0ull;
    bool failed = false;
    for (Served& s : served) {
      // A queue whose segment was truncated is failed and has no turns. A
      // load and a clock read, plus an fstat at most once a second.
      if (!s.queue->check_intact()) {
        failed = true;
        continue;
      }
      // Relaxed: a changed word only asks for a turn, which takes the lock.
      const bool woken = detail::atom(*s.queue->core().reaper_word()).load(std::memory_order_relaxed) != s.seq;
      if (woken || s.due <= detail::monotonic_ns()) s.due = s.queue->reap(s.seq);
      // A turn that ran into a truncation (absorbed by the fault guard) was
      // on zero pages: the queue is failed now, not at its next deadline.
      if (!s.queue->check_intact()) {
        failed = true;
        continue;
      }
      earliest = std::min(earliest, s.due);
    }
    if (failed) {
      // This thread alone drops them (the registry, which may be calling in
      // from this very thread for a redrive, must not wait for it).
      std::lock_guard lock(mutex_);
      std::erase_if(group.members, [](const auto& queue) { return queue->failed(); });
      ++group.version;
      continue;
    }
    words.clear();
    for (const Served& s : served) {
      if (!s.queue->failed()) words.push_back({s.queue->core().reaper_word(), s.seq, false});
    }
    words.push_back({&group.wake, wake_seq, true});
    detail::futex_wait_any(words, earliest);
  }
}

}  // namespace shmq::daemon
