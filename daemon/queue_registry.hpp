// The queues of one namespace as the daemon owns them: their segments, and
// one reaper thread per queue that returns expired in-flight messages and
// ends delays, sleeping until the queue's earliest deadline.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon_config.hpp"
#include "queue_core.hpp"
#include "segment.hpp"
#include "shmq/types.hpp"

namespace shmq::daemon {

class ManagedQueue {
 public:
  ManagedQueue(std::string name, std::string shm_name, detail::Segment segment);
  ~ManagedQueue();  // stops and joins the reaper; the segment stays
  ManagedQueue(const ManagedQueue&) = delete;
  ManagedQueue& operator=(const ManagedQueue&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& shm_name() const noexcept { return shm_name_; }
  detail::QueueCore& core() noexcept { return core_; }
  detail::SegmentHeader& header() noexcept { return segment_.header(); }

 private:
  void reap();

  std::string name_;
  std::string shm_name_;
  detail::Segment segment_;
  detail::QueueCore core_;
  std::atomic<bool> stop_{false};
  std::thread reaper_;
};

class QueueRegistry {
 public:
  explicit QueueRegistry(const DaemonConfig& config) : config_(config) {}

  // Re-attaches to this namespace's segments in /dev/shm. A segment that fails
  // validation is logged and left in place. Frees slots that dead senders
  // left in kWriting; returns the pids of live processes that still hold
  // some, for the caller to watch.
  std::set<pid_t> attach_existing();

  // Creates a queue, or accepts an existing one whose attributes match those
  // given. Throws std::system_error with a shmq::Errc.
  ManagedQueue& create(const std::string& name, const Attributes& attributes,
                       const std::optional<QueueCapacity>& capacity);
  // Marks the queue deleted (clients see queue_does_not_exist), wakes its
  // sleepers and unlinks the segment. Throws queue_does_not_exist.
  void remove(const std::string& name);
  // Throws queue_does_not_exist.
  ManagedQueue& get(const std::string& name);
  std::vector<std::string> names(const std::string& prefix) const;

  // Frees what `pid` had reserved in every queue; returns the slot count.
  std::uint64_t reclaim(pid_t pid);

 private:
  const DaemonConfig& config_;
  std::map<std::string, std::unique_ptr<ManagedQueue>> queues_;
};

}  // namespace shmq::daemon
