// Long polls without a thread per request: a ReceiveMessage that finds
// nothing waits here. One thread per queue with waiting receivers sleeps on
// the queue's futex (Queue::wait_for_messages) and, whenever messages may
// have arrived or a wait time ends, serves its waiters in arrival order.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "sqs_service.hpp"

namespace shmq::bridge {

class LongPollHub {
 public:
  // Called once, from a hub thread: the result, or the exception it raised.
  using Complete = std::function<void(nlohmann::json result, std::exception_ptr error)>;

  explicit LongPollHub(SqsService& service) : service_(service) {}
  ~LongPollHub();  // answers no one: the server is going away
  LongPollHub(const LongPollHub&) = delete;
  LongPollHub& operator=(const LongPollHub&) = delete;

  void add(PendingReceive pending, Complete done);

 private:
  struct Waiter {
    PendingReceive pending;
    Complete done;
  };
  struct QueueWaiters {
    std::mutex mutex;
    std::condition_variable added;
    std::deque<Waiter> waiters;
    bool stop = false;
    std::thread thread;
  };
  void serve(QueueWaiters& q);

  SqsService& service_;
  std::mutex mutex_;  // guards queues_
  std::map<std::string, std::unique_ptr<QueueWaiters>> queues_;
};

}  // namespace shmq::bridge
