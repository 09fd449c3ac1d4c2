// Long polls without a thread per request or per queue: a ReceiveMessage
// that finds nothing waits here. One thread serves every waiting receiver:
// it sleeps on the futexes of the queues that have any (Queue::wait_for_any,
// up to Queue::kMaxWaitQueues at once; beyond that in turns of a bounded
// slice) and, whenever messages may have arrived on a queue or a wait time
// ends, serves that queue's waiters in arrival order. A queue's state here
// lives only while it has waiters (see docs/reaper-and-long-polls.md).
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "shmq/queue.hpp"
#include "sqs_service.hpp"

namespace shmq::bridge {

class LongPollHub {
 public:
  // Called once, from the hub's thread: the result, or the exception it raised.
  using Complete = std::function<void(nlohmann::json result, std::exception_ptr error)>;

  explicit LongPollHub(SqsService& service);  // starts the hub's thread
  ~LongPollHub();                             // answers no one: the server is going away
  LongPollHub(const LongPollHub&) = delete;
  LongPollHub& operator=(const LongPollHub&) = delete;

  // Does not block: the hub answers through `done`.
  void add(PendingReceive pending, Complete done);

  // Queues that have waiting receivers now (for tests and stats).
  std::size_t waiting_queues() const;

 private:
  struct Waiter {
    PendingReceive pending;
    Complete done;
  };
  // The waiters of one queue (by name), oldest first. Only the hub's thread
  // touches these.
  struct QueueWaiters {
    std::deque<Waiter> waiters;
    bool try_now = true;  // a receive might find something: serve the waiters
    // Not waited on before this: its lock was held at the last try, or it
    // keeps looking receivable while receives find nothing (a FIFO queue at
    // its in-flight limit), either of which would make the wait return at
    // once, again and again. Polled at this time instead.
    std::chrono::steady_clock::time_point poll_at{};
    int empty_while_receivable = 0;  // tries in a row that found nothing though it looked receivable
  };
  void serve();
  // Answers those that got messages, failed or timed out; keeps the others.
  void serve_queue(QueueWaiters& q);

  SqsService& service_;
  mutable std::mutex mutex_;  // guards added_, stop_, waiting_count_
  std::deque<Waiter> added_;  // not yet taken by the hub's thread
  bool stop_ = false;
  std::size_t waiting_count_ = 0;               // queues_.size(), as last published by the thread
  WaitInterrupt interrupt_;                     // notified when added_ or stop_ change
  std::map<std::string, QueueWaiters> queues_;  // the hub's thread only
  std::thread thread_;
};

}  // namespace shmq::bridge
