#include "message_move_tasks.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <span>
#include <thread>

#include "clock.hpp"
#include "message_blob.hpp"
#include "message_id.hpp"
#include "message_transfer.hpp"
#include "shmq/error.hpp"

namespace shmq::daemon {

namespace {

constexpr const char* kRunning = "RUNNING";
constexpr const char* kCompleted = "COMPLETED";
constexpr const char* kCancelling = "CANCELLING";
constexpr const char* kCancelled = "CANCELLED";
constexpr const char* kFailed = "FAILED";

// How long a task holds a message it took: long enough to move a batch at
// the slowest rate (10 messages at 1 per second), short enough that a killed
// daemon's leases end soon.
constexpr std::uint32_t kLeaseSeconds = 60;
constexpr std::uint32_t kBatch = 10;

// SQS's task handles are base64 of {"taskId":..,"sourceArn":..}; so are ours.
std::string make_handle(const std::string& source_arn) {
  const auto id = detail::new_message_id();
  std::uint8_t bytes[16];
  std::copy(id.begin(), id.end(), bytes);
  const std::string text =
      nlohmann::json{{"taskId", detail::format_message_id(bytes)}, {"sourceArn", source_arn}}.dump();
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int length =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

void release(detail::QueueCore& core, const detail::Delivery& d) {
  // Visible again at once; stale if it left the queue meanwhile: nothing to do.
  (void)core.change_visibility(d.handle, 0, detail::now());
}

std::uint64_t relaxed_load(std::uint64_t& field) {
  // Relaxed: a snapshot for reporting and for telling older messages from
  // newer ones; it is read without the queue lock, so it may be a moment old.
  return detail::atom(field).load(std::memory_order_relaxed);
}

}  // namespace

struct MessageMoveTasks::Task {
  // Fixed at start.
  std::string handle;
  std::string source_arn;
  std::string destination_arn;
  std::optional<std::uint32_t> max_per_second;
  std::uint64_t to_move = 0;
  std::uint64_t started_ms = 0;
  std::uint64_t start_seq = 0;  // messages with a lower sequence number were there at start
  // Guarded by MessageMoveTasks::mutex_.
  std::string status = kRunning;
  std::string failure_reason;
  bool cancel = false;
  std::condition_variable wake;  // a cancel ends a rate-limit sleep
  std::atomic<std::uint64_t> moved{0};
  std::thread thread;
};

MessageMoveTasks::~MessageMoveTasks() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (auto& [arn, tasks] : tasks_) {
      for (auto& task : tasks) {
        task->cancel = true;
        task->wake.notify_all();
        if (task->thread.joinable()) threads.push_back(std::move(task->thread));
      }
    }
  }
  for (std::thread& t : threads) t.join();
}

std::string MessageMoveTasks::start(const std::string& source_arn, const std::string& destination_arn,
                                    std::optional<std::uint32_t> max_per_second) {
  if (max_per_second && (*max_per_second < 1 || *max_per_second > kMaxMoveRate)) {
    throw std::system_error(Errc::invalid_parameter_value, "MaxNumberOfMessagesPerSecond: 1 to 500");
  }
  const std::string source_name = registry_.name_of_arn(source_arn);
  std::shared_ptr<ManagedQueue> source = source_name.empty() ? nullptr : registry_.find(source_name);
  if (!source) throw std::system_error(Errc::resource_not_found, "source queue " + source_arn + " does not exist");
  if (!destination_arn.empty()) {
    const std::string destination_name = registry_.name_of_arn(destination_arn);
    if (destination_name.empty() || !registry_.find(destination_name)) {
      throw std::system_error(Errc::resource_not_found, "destination queue " + destination_arn + " does not exist");
    }
    if (destination_name == source_name) {
      throw std::system_error(Errc::invalid_parameter_value, "the source and destination queues are the same");
    }
  }
  // Amazon SQS's words: the bridge passes them on as they are.
  if (registry_.dead_letter_sources(source_name).empty()) {
    throw std::system_error(Errc::invalid_parameter_value, "Source queue must be configured as a Dead Letter Queue.");
  }

  auto task = std::make_shared<Task>();
  task->handle = make_handle(source_arn);
  task->source_arn = source_arn;
  task->destination_arn = destination_arn;
  task->max_per_second = max_per_second;
  task->started_ms = detail::wall_ms();
  detail::SegmentHeader& h = source->header();
  // A message sent without the mutex gets its sequence number when it is
  // committed: what senders have handed over so far is committed first, so
  // that it counts as there at the start.
  source->core().commit_submitted();
  task->start_seq = relaxed_load(h.roots.next_seq);
  // Relaxed: an approximate count, as SQS reports it.
  task->to_move = detail::atom(h.counts.visible).load(std::memory_order_relaxed);

  std::vector<std::shared_ptr<Task>> dropped;
  {
    std::lock_guard lock(mutex_);
    auto& tasks = tasks_[source_arn];
    if (!tasks.empty() && (tasks.front()->status == kRunning || tasks.front()->status == kCancelling)) {
      throw std::system_error(Errc::unsupported_operation,
                              "a task is already running for " + source_arn + "; only one runs per source queue");
    }
    tasks.push_front(task);
    try {
      task->thread = std::thread([this, task, source] { run(task, source); });
    } catch (const std::system_error&) {
      tasks.pop_front();  // never ran: not listed as running forever
      throw;
    }
    while (tasks.size() > kMaxMoveTasksListed) {
      dropped.push_back(std::move(tasks.back()));  // finished: only the newest can run
      tasks.pop_back();
    }
  }
  for (auto& old : dropped) {
    if (old->thread.joinable()) old->thread.join();
  }
  spdlog::info("message move task started: {} -> {} ({} messages{})", source_arn,
               destination_arn.empty() ? "their source queues" : destination_arn, task->to_move,
               max_per_second ? fmt::format(", {} per second", *max_per_second) : "");
  return task->handle;
}

std::uint64_t MessageMoveTasks::cancel(const std::string& task_handle) {
  std::lock_guard lock(mutex_);
  for (auto& [arn, tasks] : tasks_) {
    for (auto& task : tasks) {
      if (task->handle != task_handle) continue;
      if (task->status != kRunning) {
        throw std::system_error(Errc::unsupported_operation, "the task is " + task->status + ", not RUNNING");
      }
      task->cancel = true;
      task->status = kCancelling;
      task->wake.notify_all();
      return task->moved.load();
    }
  }
  throw std::system_error(Errc::resource_not_found, "no message move task has this handle");
}

std::vector<MoveTaskInfo> MessageMoveTasks::list(const std::string& source_arn, std::uint32_t max_results) {
  if (max_results < 1 || max_results > kMaxMoveTasksListed) {
    throw std::system_error(Errc::invalid_parameter_value, "MaxResults: 1 to 10");
  }
  const std::string source_name = registry_.name_of_arn(source_arn);
  if (source_name.empty() || !registry_.find(source_name)) {
    throw std::system_error(Errc::resource_not_found, "source queue " + source_arn + " does not exist");
  }
  std::vector<MoveTaskInfo> out;
  std::lock_guard lock(mutex_);
  const auto it = tasks_.find(source_arn);
  if (it == tasks_.end()) return out;
  for (const auto& task : it->second) {
    if (out.size() == max_results) break;
    out.push_back(info(*task));
  }
  return out;
}

MoveTaskInfo MessageMoveTasks::info(const Task& task) const {
  MoveTaskInfo i;
  i.status = task.status;
  if (task.status == kRunning) i.task_handle = task.handle;
  i.source_arn = task.source_arn;
  i.destination_arn = task.destination_arn;
  i.max_per_second = task.max_per_second;
  i.moved = task.moved.load();
  i.to_move = task.to_move;
  i.failure_reason = task.failure_reason;
  i.started_ms = task.started_ms;
  return i;
}

bool MessageMoveTasks::pace(Task& task, std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mutex_);
  return !task.wake.wait_until(lock, until, [&] { return task.cancel; });
}

void MessageMoveTasks::finish(Task& task, const char* status, std::string reason) {
  std::lock_guard lock(mutex_);
  task.status = task.cancel ? kCancelled : status;
  task.failure_reason = task.cancel ? std::string{} : std::move(reason);
  spdlog::info("message move task of {}: {} after {} messages{}", task.source_arn, task.status, task.moved.load(),
               task.failure_reason.empty() ? "" : " (" + task.failure_reason + ")");
}

void MessageMoveTasks::run(const std::shared_ptr<Task>& task_ptr, const std::shared_ptr<ManagedQueue>& source) {
  Task& task = *task_ptr;
  detail::QueueCore& core = source->core();
  const auto cancelled = [&] {
    std::lock_guard lock(mutex_);
    return task.cancel;
  };
  // Moves one message; returns why the task must fail, or nothing.
  const auto move = [&](const detail::Delivery& d) -> std::string {
    std::string destination_arn = task.destination_arn;
    if (destination_arn.empty()) {
      Message m;
      const bool parsed = detail::blob_read(core.payload(d.block_offset) + d.body_bytes, d.attr_bytes, m);
      if (!core.still_valid(d)) return {};  // deleted or purged meanwhile: nothing to move
      if (!parsed) return "a message's attributes could not be read";
      if (m.dead_letter_source_arn.empty()) {
        return "message " + detail::format_message_id(d.message_id) +
               " has no DeadLetterQueueSourceArn: give a DestinationArn";
      }
      destination_arn = m.dead_letter_source_arn;
    }
    const std::string destination_name = registry_.name_of_arn(destination_arn);
    const std::shared_ptr<ManagedQueue> destination =
        destination_name.empty() ? nullptr : registry_.find(destination_name);
    if (!destination) return "destination queue " + destination_arn + " does not exist";
    if (!destination->check_intact()) return "destination queue " + destination_arn + " does not exist";
    // A queue whose lock stays held (a stopped holder?) is waited for, as a
    // sender would wait: a busy queue is no failure of the task.
    const auto unless_busy = [&](auto step) {
      std::error_code ec = step();
      while (ec == Errc::queue_busy && !cancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ec = step();
      }
      return ec;
    };
    const std::error_code ec = unless_busy([&] {
      return detail::copy_message(core, d, destination->core(), static_cast<std::uint32_t>(::getpid()), {},
                                  detail::now());
    });
    // A copy into (or from) a segment whose file shrank under it went to
    // zero pages (see FaultGuard), or to pages a reservation gave the file
    // back: it did not happen; the message is released. An fstat per message
    // moved: so that the destination's size is known before the message leaves.
    if (!destination->check_size()) return "destination queue " + destination_arn + " does not exist";
    if (!source->check_intact()) return "the source queue's segment file was truncated";
    if (ec == Errc::stale_receipt_handle) return {};  // gone from the source meanwhile
    if (ec) {
      return "cannot move message " + detail::format_message_id(d.message_id) + " to " + destination_arn + ": " +
             ec.message() + " (" + errc_name(ec) + ")";
    }
    // In the destination now. If the lease ended and someone else received
    // it meanwhile, this fails and the message is in both: at least once.
    (void)unless_busy([&] { return core.remove(d.handle); });
    task.moved.fetch_add(1);
    return {};
  };

  const std::uint32_t batch = task.max_per_second ? std::min(kBatch, *task.max_per_second) : kBatch;
  const auto interval = task.max_per_second ? std::chrono::nanoseconds(1'000'000'000 / *task.max_per_second)
                                            : std::chrono::nanoseconds(0);
  auto next = std::chrono::steady_clock::now();
  std::vector<detail::Delivery> set_aside;  // FIFO: groups whose next message is newer than the task
  std::array<detail::Delivery, kBatch> got{};
  std::string failure;
  bool done = false;
  while (!done && failure.empty() && !cancelled()) {
    // Acquire: pairs with the registry's release when it deletes the queue.
    if (detail::atom(source->header().deleted).load(std::memory_order_acquire) != 0) {
      failure = "the source queue was deleted";
      break;
    }
    if (!source->check_intact()) {
      failure = "the source queue's segment file was truncated";
      break;
    }
    std::error_code ec;
    const std::uint32_t n = core.receive(std::span(got.data(), batch), kLeaseSeconds, detail::now(), nullptr, ec);
    if (n == 0 && ec == Errc::queue_busy) {
      // Its lock stays held (a stopped holder?): the task waits, as a sender would.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (n == 0) {
      if (ec) failure = "cannot take messages from the source queue: " + ec.message();
      break;  // nothing left that is visible: done
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      const detail::Delivery& d = got[i];
      if (done || !failure.empty()) {
        release(core, d);
      } else if (d.seq >= task.start_seq) {
        // Sent to the dead-letter queue after the task started: not ours.
        if (core.fifo()) {
          set_aside.push_back(d);  // in flight, it keeps its group (all newer) away from us
        } else {
          release(core, d);
          done = true;  // a standard queue hands out older messages first
        }
      } else if (task.max_per_second && !pace(task, next)) {
        release(core, d);
        done = true;  // cancelled
      } else {
        // From now, not from the last deadline: a slow move is no credit for a burst.
        next = std::max(next, std::chrono::steady_clock::now()) + interval;
        failure = move(d);
        if (!failure.empty()) release(core, d);
      }
    }
  }
  for (const detail::Delivery& d : set_aside) release(core, d);
  if (failure.empty()) {
    finish(task, kCompleted);
  } else {
    finish(task, kFailed, failure);
  }
}

}  // namespace shmq::daemon
