// Threads of one process sharing a queue: every message sent is received
// once, and (built with -DSHMQ_SANITIZE=thread) the lock-free reads that
// prefetch for the critical sections are no data races.
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using ThreadsOfOneProcess = DaemonTest;

TEST_F(ThreadsOfOneProcess, SendersAndReceiversShareAQueueAndLoseNothing) {
  constexpr int kSenders = 2;
  constexpr int kPerSender = 2000;
  // Room for every message: the senders may run ahead of the receivers.
  Queue q = make_queue("shared", {}, QueueCapacity{2 * kSenders * kPerSender, 8ull << 20});
  std::atomic<int> received{0};
  std::vector<std::thread> threads;
  std::vector<std::set<std::string>> bodies(2);
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&q, s] {
      for (int i = 0; i < kPerSender; ++i) {
        SendResult sent;
        // Batches and single sends take different paths to the lock.
        if (i % 2 == 0) {
          EXPECT_EQ(name_of(q.send(std::to_string(s) + ":" + std::to_string(i), sent)), "ok");
        } else {
          const SendEntry entry{"e", std::to_string(s) + ":" + std::to_string(i), {}};
          std::vector<BatchEntryResult> results;
          EXPECT_EQ(name_of(q.send_batch(std::span(&entry, 1), results)), "ok");
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::vector<Message> got;
      const auto give_up = std::chrono::steady_clock::now() + 60s;
      while (received.load() < kSenders * kPerSender && std::chrono::steady_clock::now() < give_up) {
        ASSERT_EQ(name_of(q.receive(got, {.max_messages = 10, .wait_time = 100ms})), "ok");
        for (const Message& m : got) {
          bodies[r].insert(m.body);
          EXPECT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
        }
        received += static_cast<int>(got.size());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> all = bodies[0];
  all.insert(bodies[1].begin(), bodies[1].end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kSenders * kPerSender));
  EXPECT_EQ(bodies[0].size() + bodies[1].size(), all.size()) << "a message was received twice";
  EXPECT_EQ(q.counts().visible + q.counts().in_flight, 0u);
}

}  // namespace
}  // namespace shmq::test
