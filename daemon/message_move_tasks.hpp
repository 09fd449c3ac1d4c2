// Message move tasks (SQS StartMessageMoveTask and friends): redrive the
// messages of a dead-letter queue back to the queues they came from, or to
// one destination, at an optional rate, on a thread of their own so that the
// control socket stays responsive.
//
// A task takes visible messages with QueueCore::receive (its visibility
// timeout is the task's lease on them), copies each one to its destination
// (id, body, attributes and SentTimestamp kept) and then removes it from the
// source: a crash between the two leaves it in both, so at least once. It
// moves the messages that were in the source when it started; a standard
// queue's task stops at the first message sent after that, a FIFO queue's
// task sets aside each group whose next message is newer and ends when no
// group has an older one.
//
// Tasks live in the daemon's memory: a restarted daemon has no task and
// lists none; messages a killed task had leased come back when the lease
// ends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "queue_registry.hpp"

namespace shmq::daemon {

inline constexpr std::uint32_t kMaxMoveRate = 500;        // MaxNumberOfMessagesPerSecond
inline constexpr std::uint32_t kMaxMoveTasksListed = 10;  // per source queue

// What ListMessageMoveTasks reports of one task.
struct MoveTaskInfo {
  std::string status;       // RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED
  std::string task_handle;  // RUNNING tasks only
  std::string source_arn;
  std::string destination_arn;  // empty: each message's DeadLetterQueueSourceArn
  std::optional<std::uint32_t> max_per_second;
  std::uint64_t moved = 0;
  std::uint64_t to_move = 0;
  std::string failure_reason;  // FAILED tasks only
  std::uint64_t started_ms = 0;
};

class MessageMoveTasks {
 public:
  explicit MessageMoveTasks(QueueRegistry& registry) : registry_(registry) {}
  // Cancels the running tasks and waits for their threads.
  ~MessageMoveTasks();
  MessageMoveTasks(const MessageMoveTasks&) = delete;
  MessageMoveTasks& operator=(const MessageMoveTasks&) = delete;

  // Starts a task and returns its handle; does not wait for it. Throws
  // std::system_error: resource_not_found (no such queue), invalid_parameter_value
  // (the source is no queue's dead-letter queue, the destination is the
  // source, or the rate is outside 1..500), unsupported_operation (a task of
  // this source is still running).
  std::string start(const std::string& source_arn, const std::string& destination_arn,
                    std::optional<std::uint32_t> max_per_second);

  // Asks a running task to stop and returns how many messages it moved so
  // far; it is CANCELLING until its thread stops, then CANCELLED. Throws
  // resource_not_found for an unknown handle, unsupported_operation if the
  // task is no longer running.
  std::uint64_t cancel(const std::string& task_handle);

  // The most recent tasks of a source queue, newest first, at most
  // `max_results` (1..10). Throws resource_not_found, invalid_parameter_value.
  std::vector<MoveTaskInfo> list(const std::string& source_arn, std::uint32_t max_results);

 private:
  struct Task;
  void run(const std::shared_ptr<Task>& task, const std::shared_ptr<ManagedQueue>& source);
  // Sleeps until `until` or a cancel; false if cancelled.
  bool pace(Task& task, std::chrono::steady_clock::time_point until);
  void finish(Task& task, const char* status, std::string reason = {});
  MoveTaskInfo info(const Task& task) const;

  QueueRegistry& registry_;
  mutable std::mutex mutex_;                                        // guards tasks_ and every task's status fields
  std::map<std::string, std::deque<std::shared_ptr<Task>>> tasks_;  // by source ARN, newest first
};

}  // namespace shmq::daemon
