// Visibility timeouts and delays: when a message may be received, with the
// daemon's reaper returning messages that nobody is receiving.
#include <string>
#include <thread>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using Visibility = DaemonTest;
using Delays = DaemonTest;

TEST_F(Visibility, TheDaemonReturnsExpiredMessagesWithoutAnyReceive) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "1"}});
  send_ok(q, "x");
  ASSERT_EQ(receive_now(q).size(), 1u);
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessages"), "0");
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessagesNotVisible"), "1");

  // Only the daemon runs now: nobody calls receive.
  EXPECT_TRUE(eventually([&] { return attribute("q", "ApproximateNumberOfMessages") == "1"; }))
      << "the expired message never became visible again";
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessagesNotVisible"), "0");

  auto again = receive_now(q);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].receive_count, 2u);
}

TEST_F(Visibility, ChangeToZeroMakesTheMessageVisibleAtOnce) {
  Queue q = make_queue("q");  // VisibilityTimeout 30 s
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(receive_now(q).empty());

  ASSERT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 0)), "ok");
  EXPECT_EQ(q.counts().visible, 1u);
  EXPECT_EQ(q.counts().in_flight, 0u);
  auto again = receive_now(q);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message_id, got[0].message_id);
  EXPECT_EQ(again[0].receive_count, 2u);
}

TEST_F(Visibility, ChangeExtendsTheTimeout) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "1"}});
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 60)), "ok");

  // Let the original one-second timeout pass with room to spare.
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(receive_now(q).empty()) << "the message came back after its original timeout";
  EXPECT_EQ(q.counts().in_flight, 1u);
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessages"), "0");
  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok") << "the handle stays valid";
}

TEST_F(Visibility, ChangeOfAMessageWhoseTimeoutRanOutSucceedsAndLeavesItVisible) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "1"}});
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(eventually([&] { return q.counts().visible == 1; })) << "the message never returned";

  // As Amazon SQS answers a standard queue's expired handle.
  EXPECT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 30)), "ok");
  EXPECT_EQ(q.counts().visible, 1u);
  EXPECT_EQ(receive_now(q).size(), 1u);
}

TEST_F(Visibility, TimeoutsAboveTwelveHoursAreRefused) {
  Queue q = make_queue("q");
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 43201)), "invalid_parameter_value");
  EXPECT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 43200)), "ok");
  EXPECT_EQ(q.counts().in_flight, 1u);
}

TEST_F(Visibility, ReceiveCanOverrideTheQueuesTimeout) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "43200"}});
  send_ok(q, "x");
  ASSERT_EQ(receive_now(q, 1, 1).size(), 1u);
  EXPECT_TRUE(eventually([&] { return q.counts().visible == 1; })) << "a one-second receive timeout was not honoured";
}

TEST_F(Delays, QueueDelaySecondsHoldsMessagesBack) {
  Queue q = make_queue("q", {{"DelaySeconds", "1"}});
  send_ok(q, "late");
  EXPECT_EQ(q.counts().delayed, 1u);
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessagesDelayed"), "1");
  EXPECT_TRUE(receive_now(q).empty()) << "a delayed message was receivable at once";

  // The daemon makes it visible when the delay ends.
  EXPECT_TRUE(eventually([&] { return q.counts().visible == 1; }));
  EXPECT_EQ(q.counts().delayed, 0u);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "late");
}

TEST_F(Delays, PerMessageDelayOverridesTheQueues) {
  Queue q = make_queue("q");
  send_ok(q, "late", SendOptions{.delay_seconds = 1});
  send_ok(q, "now");
  EXPECT_EQ(q.counts().delayed, 1u);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "now");

  // A long poll wakes up for the message when its delay ends.
  std::vector<Message> later;
  ASSERT_EQ(name_of(q.receive(later, {.max_messages = 10, .wait_time = 10s})), "ok");
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].body, "late");

  // And a delay of 0 sends at once on a queue whose DelaySeconds is long.
  client_.set_queue_attributes("q", {{"DelaySeconds", "600"}});
  send_ok(q, "held");
  send_ok(q, "not held", SendOptions{.delay_seconds = 0});
  got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "not held");
  EXPECT_EQ(q.counts().delayed, 1u);
}

TEST_F(Delays, DelaysOverFifteenMinutesAreRefused) {
  Queue q = make_queue("q");
  SendResult sent;
  EXPECT_EQ(name_of(q.send("x", sent, SendOptions{.delay_seconds = 901})), "invalid_parameter_value");
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.delayed + c.writing, 0u) << "nothing is enqueued on failure";
  EXPECT_EQ(name_of(q.send("x", sent, SendOptions{.delay_seconds = 900})), "ok");
  EXPECT_EQ(q.counts().delayed, 1u);
}

}  // namespace
}  // namespace shmq::test
