// BufferedSender: single sends grouped into batches, each caller answered
// on its own. Runs on both backends (shared memory, and the remote runs).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "shmq/buffered_sender.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

class BufferedSenders : public DaemonTest {
 protected:
  // Receives and deletes until `expected` distinct bodies came (or 10 s).
  static std::set<std::string> drain(Queue& q, std::size_t expected) {
    std::set<std::string> bodies;
    eventually([&] {
      for (const Message& m : receive_now(q)) {
        bodies.insert(m.body);
        EXPECT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
      }
      return bodies.size() >= expected;
    });
    return bodies;
  }
};

TEST_F(BufferedSenders, SendsArriveInBatchesAndEachCallerGetsItsMessageId) {
  Queue q = make_queue("q");
  std::vector<std::future<SendOutcome>> futures;
  std::set<std::string> ids;
  {
    BufferedSender sender(q, {.max_batch_open = std::chrono::milliseconds(200)});
    for (int i = 0; i < 30; ++i) futures.push_back(sender.send("m" + std::to_string(i)));
    for (auto& f : futures) {
      const SendOutcome out = f.get();
      EXPECT_EQ(name_of(out.error), "ok");
      EXPECT_TRUE(uuid_shaped(out.result.message_id)) << out.result.message_id;
      ids.insert(out.result.message_id);
    }
    const BufferedSender::Stats stats = sender.stats();
    EXPECT_EQ(stats.messages, 30u);
    EXPECT_LE(stats.batches, 6u) << "30 sends within one window should take about 3 batches";
    EXPECT_GE(stats.batches, 3u) << "a batch holds at most 10";
  }
  EXPECT_EQ(ids.size(), 30u) << "every message its own id";
  const std::set<std::string> bodies = drain(q, 30);
  EXPECT_EQ(bodies.size(), 30u);
}

TEST_F(BufferedSenders, OneBadMessageFailsAloneAndTheRestOfItsBatchIsSent) {
  Queue q = make_queue("q");
  BufferedSender sender(q, {.max_batch_open = std::chrono::milliseconds(200)});
  auto good1 = sender.send("fine");
  SendOptions bad;
  bad.attributes = {{"AWS.reserved", MessageAttributeValue{"String", "x", ""}}};
  auto wrong = sender.send("bad attribute", bad);
  auto good2 = sender.send("fine too");
  sender.flush();
  EXPECT_EQ(name_of(good1.get().error), "ok");
  const std::string refused = name_of(wrong.get().error);
  EXPECT_TRUE(refused == "invalid_message_attribute" || refused == "invalid_parameter_value") << refused;
  EXPECT_EQ(name_of(good2.get().error), "ok");
  EXPECT_EQ(sender.stats().batches, 1u);
  EXPECT_EQ(drain(q, 2), (std::set<std::string>{"fine", "fine too"}));
}

TEST_F(BufferedSenders, ALoneSendGoesOutWhenItsWindowEnds) {
  Queue q = make_queue("q");
  BufferedSender sender(q, {.max_batch_open = std::chrono::milliseconds(50)});
  const auto start = std::chrono::steady_clock::now();
  auto one = sender.send("alone");
  ASSERT_EQ(one.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(name_of(one.get().error), "ok");
  EXPECT_GE(seconds_since(start), 0.045) << "it did not wait for others";
  EXPECT_EQ(drain(q, 1), std::set<std::string>{"alone"});
}

TEST_F(BufferedSenders, TheDestructorSendsWhatIsBuffered) {
  Queue q = make_queue("q");
  std::vector<std::future<SendOutcome>> futures;
  {
    BufferedSender sender(q, {.max_batch_open = std::chrono::seconds(30)});
    for (int i = 0; i < 3; ++i) futures.push_back(sender.send("last " + std::to_string(i)));
  }
  for (auto& f : futures) EXPECT_EQ(name_of(f.get().error), "ok");
  EXPECT_EQ(drain(q, 3).size(), 3u);
}

TEST_F(BufferedSenders, ABatchLevelErrorReachesEveryCallerOfTheBatch) {
  Queue q = make_queue("q");
  client_.delete_queue("q");
  BufferedSender sender(q, {.max_batch_open = std::chrono::milliseconds(100)});
  auto a = sender.send("a");
  auto b = sender.send("b");
  EXPECT_EQ(name_of(a.get().error), "queue_does_not_exist");
  EXPECT_EQ(name_of(b.get().error), "queue_does_not_exist");
}

TEST_F(BufferedSenders, AFifoQueuesBatchesArriveInTheOrderSent) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  std::vector<std::future<SendOutcome>> futures;
  {
    // Batches of two, eight senders: they still must not overtake.
    BufferedSender sender(q,
                          {.max_batch_open = std::chrono::microseconds(0), .max_in_flight_batches = 8, .max_batch = 2});
    for (int i = 0; i < 60; ++i) futures.push_back(sender.send("m" + std::to_string(i), SendOptions{.group_id = "g"}));
  }
  for (auto& f : futures) ASSERT_EQ(name_of(f.get().error), "ok");
  std::vector<std::string> order;
  ASSERT_TRUE(eventually([&] {
    for (const Message& m : receive_now(q)) {
      order.push_back(m.body);
      EXPECT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
    }
    return order.size() >= 60;
  }));
  for (int i = 0; i < 60; ++i) EXPECT_EQ(order[i], "m" + std::to_string(i)) << "at " << i;
}

TEST_F(BufferedSenders, FlushWaitsForWhatCameBeforeItNotForWhatComesAfter) {
  Queue q = make_queue("q");
  BufferedSender sender(q, {.max_batch_open = std::chrono::milliseconds(5)});
  std::atomic<bool> stop{false};
  // Another thread sends without pause: flush must still return.
  std::thread busy([&] {
    while (!stop) (void)sender.send("later");
  });
  auto mine = sender.send("before the flush");
  sender.flush();
  EXPECT_EQ(mine.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "flush returned first";
  stop = true;
  busy.join();
}

TEST_F(BufferedSenders, OptionsOutOfRangeAreRefused) {
  Queue q = make_queue("q");
  EXPECT_EQ(thrown_by([&] { BufferedSender s(q, {.max_batch = 11}); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { BufferedSender s(q, {.max_in_flight_batches = 0}); }), "invalid_parameter_value");
}

}  // namespace
}  // namespace shmq::test
