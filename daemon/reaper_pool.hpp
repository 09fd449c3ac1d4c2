// The namespace's reaper: returns expired in-flight messages, ends delays,
// drops messages past their retention period and moves messages to
// dead-letter queues, for every queue, with few threads. Each thread serves
// up to kQueuesPerThread queues: it sleeps with one futex_waitv on their
// reaper words and its own wake word, until the earliest of their deadlines
// (see docs/reaper-and-long-polls.md). A thread ends when its last queue
// goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace shmq::daemon {

class ManagedQueue;

class ReaperPool {
 public:
  // futex_waitv takes 128 words: the queues' and the thread's own.
  static constexpr std::size_t kQueuesPerThread = 127;

  ReaperPool() = default;
  ~ReaperPool();  // stop()
  ReaperPool(const ReaperPool&) = delete;
  ReaperPool& operator=(const ReaperPool&) = delete;

  // Serves the queue from now on (its first turn comes at once). A queue
  // that needs a new thread when none can be started is not taken: throws
  // std::system_error over_limit saying why.
  void add(std::shared_ptr<ManagedQueue> queue);
  // Takes the queue from its thread, which lets go of it when it next wakes
  // (at once, unless it is in a turn of another queue; it never waits for
  // one), or, if it was the thread's last queue, ends and is joined. Does
  // nothing for a queue it does not serve.
  void remove(const ManagedQueue& queue);
  // Ends every thread; the queues stay as they are. Idempotent.
  void stop();

  std::size_t thread_count() const;

 private:
  struct Group {
    std::vector<std::shared_ptr<ManagedQueue>> members;  // guarded by ReaperPool::mutex_
    std::uint64_t version = 0;                           // bumped on every change of members; guarded by mutex_
    bool stop = false;                                   // guarded by mutex_
    std::uint32_t wake = 0;  // futex word (atomic_ref): bumped to cut the thread's sleep short
    std::thread thread;
  };
  void serve(Group& group);
  static void interrupt(Group& group) noexcept;

  mutable std::mutex mutex_;  // guards groups_ and what Group says
  std::list<Group> groups_;   // a list: threads hold references to their group
};

}  // namespace shmq::daemon
