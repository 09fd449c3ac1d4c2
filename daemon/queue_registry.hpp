// The queues of one namespace as the daemon owns them: their segments, and
// the reaper (reaper_pool.hpp) that returns expired in-flight messages and
// ends delays, waking on each queue's earliest deadline.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon_config.hpp"
#include "queue_core.hpp"
#include "queue_metadata.hpp"
#include "reaper_pool.hpp"
#include "segment.hpp"
#include "shmq/types.hpp"

namespace shmq::daemon {

class ManagedQueue {
 public:
  // Moves the queue's messages that wait for the dead-letter queue; false if
  // it could not (no dead-letter queue, or it is full): then retried later.
  using Redrive = std::function<bool(ManagedQueue&)>;

  ManagedQueue(std::string name, std::string shm_name, detail::Segment segment, Redrive redrive);
  ~ManagedQueue() = default;  // unmaps; the segment stays
  ManagedQueue(const ManagedQueue&) = delete;
  ManagedQueue& operator=(const ManagedQueue&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& shm_name() const noexcept { return shm_name_; }
  detail::QueueCore& core() noexcept { return core_; }
  detail::SegmentHeader& header() noexcept { return segment_.header(); }

  // True once the segment file was found truncated (see check_intact), or
  // its segment refused as corrupt by any process (its reaper turn finds
  // that, see reap): the queue then serves nobody and its reaper has stopped.
  bool failed() const noexcept { return failed_.load(); }
  // Why it failed, for the log and for create-queue's answer.
  std::string failure() const;
  // Fails the queue if its segment was refused as corrupt (by this process
  // or another); true if it was.
  bool check_sound();
  // Whether the segment is still the file it was mapped from, cheaply enough
  // for every reaper wake: the daemon's mapping has not faulted (FaultGuard),
  // and the file's size (fstat) is checked at most once a second, and at once
  // after a fault absorbed anywhere in the process (perhaps the bridge's
  // mapping of this file). If not, gives the file its size back (so no
  // client process faults on the missing pages), marks the queue deleted for
  // its clients and failed here; returns false.
  bool check_intact();
  // The same, with the fstat now: for admin requests, where it is cheap.
  bool check_size();

  // The dead-letter queue's name (from the RedrivePolicy), empty if none.
  std::string dead_letter_target() const;
  void set_dead_letter_target(std::string name);

  // The queue's metadata document (tags, daemon-held attributes) as last
  // stored; read from the segment when the queue is attached.
  QueueMetadata metadata() const;
  // Stores it in the segment, crash-safe (see store_metadata), and keeps it.
  // Throws invalid_parameter_value if it exceeds 64 KiB; nothing changes then.
  void set_metadata(QueueMetadata metadata);

  // One reaper turn (see ReaperPool): expires what is due and moves messages
  // to the dead-letter queue. Returns when (CLOCK_MONOTONIC ns) the next turn
  // is due at the latest; sets `seq` to the reaper word's value that, once
  // changed, asks for one sooner. Called by one reaper thread at a time.
  std::uint64_t reap(std::uint32_t& seq);

  // Slots `pid` left in kWriting, to free at the next reaper turn that gets
  // the lock: the reclaim scan found the queue's lock held (see
  // kDaemonLockWaitNs) and does not wait for it.
  void defer_reclaim(pid_t pid);

 private:
  // Frees what defer_reclaim listed, if the lock is free now.
  void reclaim_deferred();
  bool reclaim_pending();

  // Giving memory back waits until the queue has stayed empty, with no
  // receive, for kTrimGraceNs: a reader may still be copying a message
  // it received just before the last delete, from pages a trim gives back.
  // The reaper thread's alone (reap).
  static constexpr std::uint64_t kTrimGraceNs = 1'000'000'000ull;
  std::uint64_t trim_seen_ns_ = 0;        // when the queue was last found empty with a new receive total
  std::uint64_t trim_seen_received_ = 0;  // that receive total
  bool trim_started_ = false;             // trim_step runs: more to give back
  std::uint64_t trim_turn(bool wanted);   // the next deadline trimming needs, ~0 if none

  std::string name_;
  std::string shm_name_;
  detail::Segment segment_;
  detail::QueueCore core_;
  Redrive redrive_;
  mutable std::mutex mutex_;  // guards dead_letter_target_
  std::string dead_letter_target_;
  mutable std::mutex metadata_mutex_;  // guards metadata_ and the segment's metadata area
  QueueMetadata metadata_;
  std::atomic<bool> failed_{false};
  std::mutex deferred_mutex_;  // guards deferred_
  std::vector<std::uint32_t> deferred_;
  // check_intact's bookkeeping; a race between two callers costs one fstat more.
  std::atomic<std::uint64_t> faults_seen_{0};         // FaultGuard::faults() at the last fstat
  std::atomic<std::uint64_t> next_size_check_ns_{0};  // CLOCK_MONOTONIC
  std::string corruption_;                            // guarded by mutex_: what check_sound found
};

// How long the daemon waits for a queue's lock (QueueCore::set_lock_wait)
// on its control thread, reapers and bridge: a process stopped while holding
// one queue's lock must cost that queue's requests an error, not every
// queue's requests their answers.
inline constexpr std::uint64_t kDaemonLockWaitNs = 100'000'000;  // 100 ms

// The namespace's queues. Used by the control thread, and by the reaper's
// threads looking up a dead-letter queue: the map is guarded by a mutex and queues
// are shared, so a queue deleted meanwhile stays valid for whoever holds it.
class QueueRegistry {
 public:
  explicit QueueRegistry(const DaemonConfig& config) : config_(config) {}
  ~QueueRegistry();

  // Re-attaches to this namespace's segments in /dev/shm: only files owned by
  // the daemon's user with no permission beyond --shm-mode, whose header and
  // tables pass validation (see docs/segment-validation.md). A segment that
  // fails is logged, left in place and remembered as refused: its name is
  // taken until remove() (delete-queue) unlinks it. Frees slots that dead senders
  // left in kWriting; returns the pids of live processes that still hold
  // some, for the caller to watch.
  std::set<pid_t> attach_existing();

  // Creates a queue with these attributes (the header's and the daemon's,
  // see daemon_attributes.hpp) and tags, or accepts an existing one whose
  // attributes match those given (its tags are left as they are). Throws
  // std::system_error with a shmq::Errc.
  std::shared_ptr<ManagedQueue> create(const std::string& name, const Attributes& attributes,
                                       const std::optional<QueueCapacity>& capacity, const Tags& tags = {});
  // SetQueueAttributes: all of them or, on any error, none. A RedrivePolicy
  // must name an existing queue of the same type (FIFO or standard) whose
  // RedriveAllowPolicy admits this one: else invalid_attribute_value, as for
  // any other bad value.
  void set_attributes(const std::string& name, const Attributes& attributes);
  // GetQueueAttributes: `names` as SQS takes them ("All" or names). Throws
  // invalid_attribute_name for an unknown name.
  Attributes attributes(const std::string& name, const std::vector<std::string>& names);

  // TagQueue, UntagQueue, ListQueueTags (limits in queue_tags.hpp).
  void tag(const std::string& name, const Tags& tags);
  void untag(const std::string& name, const std::vector<std::string>& keys);
  Tags tags(const std::string& name);

  // AddPermission and RemovePermission: edit the Policy attribute (see
  // queue_permissions.hpp).
  void add_permission(const std::string& name, const std::string& label, const std::vector<std::string>& account_ids,
                      const std::vector<std::string>& actions);
  void remove_permission(const std::string& name, const std::string& label);

  // ListDeadLetterSourceQueues: the queues whose RedrivePolicy names this
  // one, sorted. Throws queue_does_not_exist.
  std::vector<std::string> dead_letter_sources(const std::string& name);
  // Marks the queue deleted (clients see queue_does_not_exist), wakes its
  // sleepers and unlinks the segment; for a refused segment, only unlinks it.
  // Throws queue_does_not_exist.
  void remove(const std::string& name);
  // Throws queue_does_not_exist.
  std::shared_ptr<ManagedQueue> get(const std::string& name);
  // nullptr if there is no such queue.
  std::shared_ptr<ManagedQueue> find(const std::string& name);
  std::vector<std::string> names(const std::string& prefix) const;

  // What a health check reports: the queues served, those whose segments
  // were refused, and the reaper threads that serve them.
  struct Health {
    std::size_t queues = 0;
    std::size_t refused = 0;
    std::size_t reaper_threads = 0;
  };
  Health health() const;

  // "arn:aws:sqs:<region>:<account>:<name>", as SQS names queues.
  std::string arn(const std::string& name) const;
  // The queue name an ARN of this daemon's names; empty if it names none.
  std::string name_of_arn(const std::string& arn) const;

  // Frees what `pid` had reserved in every queue; returns the slot count.
  // A queue whose segment was truncated is failed (refused) instead.
  std::uint64_t reclaim(pid_t pid);

 private:
  std::shared_ptr<ManagedQueue> make_queue(const std::string& name, const std::string& shm_name,
                                           detail::Segment segment);
  bool redrive(ManagedQueue& source);
  // Stops serving a queue whose segment failed a check while attached; its
  // name becomes a refused segment. Returns the queue for the caller to
  // release outside mutex_ (its destructor joins the reaper).
  std::shared_ptr<ManagedQueue> fail_locked(const std::string& name, const std::string& reason);
  std::vector<std::shared_ptr<ManagedQueue>> all() const;
  // Validates the daemon-held attributes `given` for queue `name` and merges
  // them into `metadata`. Throws invalid_attribute_value.
  void apply_daemon_attributes(const std::string& name, bool fifo, const Attributes& given, QueueMetadata& metadata);
  // Points the queue's dead-letter moves where its metadata's RedrivePolicy
  // says (the header's max_receive_count and the target's name).
  void wire_redrive(ManagedQueue& queue) const;

  const DaemonConfig& config_;
  // Serializes changes of queues' metadata: each reads, validates (perhaps
  // against another queue's metadata) and writes. Taken before mutex_.
  std::mutex admin_mutex_;
  mutable std::mutex mutex_;  // guards queues_
  std::map<std::string, std::shared_ptr<ManagedQueue>> queues_;
  ReaperPool reapers_;                          // serves every queue in queues_
  std::map<std::string, std::string> refused_;  // guarded by mutex_: queue name -> why its segment was refused
};

}  // namespace shmq::daemon
