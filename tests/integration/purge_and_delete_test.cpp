// Purging a queue and deleting it while processes use it.
#include <future>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using PurgeAndDelete = DaemonTest;

TEST_F(PurgeAndDelete, PurgeRemovesVisibleInFlightAndDelayedMessages) {
  Queue q = make_queue("q");
  for (int i = 0; i < 3; ++i) send_ok(q, "visible");
  for (int i = 0; i < 2; ++i) send_ok(q, "delayed", SendOptions{.delay_seconds = 600});
  auto in_flight = receive_now(q, 1);
  ASSERT_EQ(in_flight.size(), 1u);

  EXPECT_EQ(client_.purge_queue("q"), 5u);
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible, 0u);
  EXPECT_EQ(c.in_flight, 0u);
  EXPECT_EQ(c.delayed, 0u);
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessages"), "0");
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessagesNotVisible"), "0");
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessagesDelayed"), "0");
  EXPECT_TRUE(receive_now(q, 10, 0).empty());
  EXPECT_EQ(name_of(q.delete_message(in_flight[0].receipt_handle)), stale_delete());
  if (remote_backend()) {
    // SQS takes one purge of a queue a minute.
    EXPECT_EQ(thrown_by([&] { client_.purge_queue("q"); }), "over_limit");
  } else {
    EXPECT_EQ(client_.purge_queue("q"), 0u);
    // The queue works normally afterwards, with all its space.
    const QueueStats s = client_.stats("q");
    EXPECT_EQ(s.arena_free_bytes, s.arena_bytes);
  }
  send_ok(q, "after purge");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "after purge");
}

TEST_F(PurgeAndDelete, DeletingAQueueEndsALongPollAtOnce) {
  Queue q = make_queue("q");
  auto receiver = std::async(std::launch::async, [&q] {
    std::vector<Message> got;
    const auto start = std::chrono::steady_clock::now();
    const std::error_code ec = q.receive(got, {.max_messages = 1, .wait_time = 20s});
    return std::make_pair(ec, seconds_since(start));
  });
  std::this_thread::sleep_for(300ms);
  // Another process deletes the queue.
  const ProcessResult deleted = shmqctl(ns(), {"delete-queue", "q"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;

  ASSERT_EQ(receiver.wait_for(15s), std::future_status::ready) << "the long poll did not end";
  const auto [ec, waited] = receiver.get();
  EXPECT_EQ(name_of(ec), "queue_does_not_exist");
  EXPECT_LT(waited, 10.0);
}

TEST_F(PurgeAndDelete, AnOpenQueueFailsAfterDeletion) {
  Queue q = make_queue("q");
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  client_.delete_queue("q");

  SendResult sent;
  EXPECT_EQ(name_of(q.send("x", sent)), "queue_does_not_exist");
  std::vector<BatchEntryResult> results;
  EXPECT_EQ(name_of(q.send_batch(std::vector<SendEntry>{{"a", "x", {}}}, results)), "queue_does_not_exist");
  std::vector<Message> messages;
  EXPECT_EQ(name_of(q.receive(messages, {.max_messages = 1, .wait_time = 0ms})), "queue_does_not_exist");
  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "queue_does_not_exist");
  EXPECT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 0)), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.open_queue("q"); }), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.purge_queue("q"); }), "queue_does_not_exist");

  // A queue created under the same name is a new queue: the old handle does
  // not see it. (Over SQS a queue is its URL, which the new queue has too.)
  SHMQ_LOCAL_ONLY("a remote Queue is its URL, and the new queue has the same");
  Queue fresh = make_queue("q");
  send_ok(fresh, "new");
  EXPECT_EQ(name_of(q.send("x", sent)), "queue_does_not_exist");
  EXPECT_EQ(fresh.counts().visible, 1u);
}

TEST_F(PurgeAndDelete, DeletionRemovesTheSegment) {
  make_queue("q");
  const std::string path = "/dev/shm/shmq." + ns() + ".q";
  EXPECT_EQ(::access(path.c_str(), F_OK), 0) << path;
  client_.delete_queue("q");
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << path << " is still there";
}

}  // namespace
}  // namespace shmq::test
