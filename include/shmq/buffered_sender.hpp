// Single sends grouped into batches: a caller's send() is held for a short
// window, sent with up to nine others in one send_batch, and its own result
// or error comes back through its future, as the AWS SDK for Java's buffered
// client does. Worth it where a batch costs about what one send does: over
// HTTP to a remote endpoint, a batch of ten is about ten times the messages
// a second. Optional; nothing uses it unless a program makes one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "shmq/export.h"
#include "shmq/queue.hpp"
#include "shmq/types.hpp"

namespace shmq {

// What one buffered send came to: `error` empty and `result` filled, or the
// error this message got (its own, or its batch's).
struct SendOutcome {
  std::error_code error;
  SendResult result;
};

class SHMQ_API BufferedSender {
 public:
  struct Options {
    // How long the first message of a batch waits for others before the
    // batch goes out with what it has.
    std::chrono::microseconds max_batch_open{std::chrono::milliseconds(20)};
    // Batches on their way at once (each on a thread of its own); more
    // keep a remote endpoint's round trips overlapping. A FIFO queue's
    // batches go one at a time, so that they arrive in the order sent.
    std::size_t max_in_flight_batches = 4;
    // Stats and tests: the most messages a batch takes (1 to 10).
    std::size_t max_batch = 10;
  };

  struct Stats {
    std::uint64_t messages = 0;  // sends taken
    std::uint64_t batches = 0;   // send_batch calls made for them
  };

  // Starts the sending threads. The Queue is shared (copies share a mapping
  // or an endpoint). Throws invalid_parameter_value for options out of range.
  explicit BufferedSender(Queue queue);
  BufferedSender(Queue queue, const Options& options);
  // Sends what is buffered, waits for every batch, then stops.
  ~BufferedSender();
  BufferedSender(const BufferedSender&) = delete;
  BufferedSender& operator=(const BufferedSender&) = delete;

  // Buffers one message; does not block. The future is ready once its batch
  // was answered: with the result, or with the error of this message, or of
  // its batch (e.g. queue_does_not_exist). A message that could never go in
  // a batch (larger than a batch may be) is sent alone and gets its own
  // send's error.
  std::future<SendOutcome> send(std::string body, SendOptions options = {});

  // Sends what is buffered now without waiting out the window, and blocks
  // until every message buffered before the call was answered.
  void flush();

  Stats stats() const;

 private:
  struct Pending {
    SendEntry entry;
    std::promise<SendOutcome> promise;
    std::chrono::steady_clock::time_point since;
    std::uint64_t seq = 0;  // order of send() calls
  };
  void run();
  // Takes the next batch from pending_ (the lock held): up to max_batch
  // entries, at most a batch's bytes.
  std::vector<Pending> take_batch();
  void send_now(std::vector<Pending>& batch);  // answers every caller of the batch, whatever happens
  void send_batch_now(std::vector<Pending>& batch);

  Queue queue_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable idle_;
  std::deque<Pending> pending_;
  std::multiset<std::uint64_t> sending_;  // the first seq of each batch taken and not yet answered
  std::uint64_t next_seq_ = 0;
  std::uint64_t flush_requests_ = 0;
  bool fifo_ = false;
  bool stopping_ = false;
  Stats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace shmq
