// Message move tasks: StartMessageMoveTask, CancelMessageMoveTask and
// ListMessageMoveTasks, redriving a dead-letter queue's messages back to
// their source queues or to a destination, at a rate, cancelled, failing.
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;

const std::string kArn = "arn:aws:sqs:us-east-1:000000000000:";

class MoveTasks : public DaemonTest {
 protected:
  std::string arn(const std::string& queue) { return attribute(queue, "QueueArn"); }

  // A source queue whose messages go to `dlq` after one receive.
  Queue make_source(const std::string& name, const std::string& dlq) {
    return make_queue(name,
                      {{"VisibilityTimeout", "1"},
                       {"RedrivePolicy", json{{"deadLetterTargetArn", kArn + dlq}, {"maxReceiveCount", 1}}.dump()}});
  }

  // Sends `bodies` to `source`, receives each once and lets its visibility
  // timeout expire, so that the reaper moves them all to `dlq`.
  std::vector<std::string> dead_letter(Queue& source, Queue& dlq, const std::vector<std::string>& bodies) {
    std::vector<std::string> ids;
    const std::uint64_t before = dlq.counts().visible;
    for (const std::string& body : bodies) ids.push_back(send_ok(source, body));
    std::size_t received = 0;
    while (received < bodies.size()) {
      const auto got = receive_now(source, 10);
      if (got.empty()) break;
      received += got.size();
    }
    EXPECT_EQ(received, bodies.size());
    EXPECT_TRUE(eventually([&] { return dlq.counts().visible == before + bodies.size(); }))
        << "the dead-letter queue did not fill: " << dlq.counts().visible;
    return ids;
  }

  MessageMoveTask latest(const std::string& dlq) {
    const auto tasks = client_.list_message_move_tasks(arn(dlq));
    EXPECT_EQ(tasks.size(), 1u);
    return tasks.empty() ? MessageMoveTask{} : tasks[0];
  }

  bool finished(const std::string& dlq) {
    const std::string status = latest(dlq).status;
    return status != "RUNNING" && status != "CANCELLING";
  }

  // Every message of a queue, received now with a long visibility timeout.
  static std::vector<Message> drain(Queue& queue) {
    std::vector<Message> all;
    for (;;) {
      auto got = receive_now(queue, 10, 600);
      if (got.empty()) return all;
      all.insert(all.end(), got.begin(), got.end());
    }
  }
};

TEST_F(MoveTasks, MovesMessagesBackToTheQueuesTheyCameFrom) {
  Queue dlq = make_queue("dlq");
  Queue a = make_source("a", "dlq");
  Queue b = make_source("b", "dlq");
  const auto a_ids = dead_letter(a, dlq, {"a1", "a2"});
  const auto b_ids = dead_letter(b, dlq, {"b1"});

  const std::uint64_t before = epoch_ms();
  const std::string handle = client_.start_message_move_task(arn("dlq"));
  EXPECT_FALSE(handle.empty());
  ASSERT_TRUE(eventually([&] { return finished("dlq"); }));
  const MessageMoveTask task = latest("dlq");
  EXPECT_EQ(task.status, "COMPLETED") << task.failure_reason;
  EXPECT_EQ(task.messages_moved, 3u);
  EXPECT_EQ(task.messages_to_move, 3u);
  EXPECT_EQ(task.source_arn, kArn + "dlq");
  EXPECT_EQ(task.destination_arn, "");
  EXPECT_EQ(task.task_handle, "") << "a finished task has no handle";
  EXPECT_FALSE(task.max_messages_per_second);
  EXPECT_EQ(task.failure_reason, "");
  EXPECT_GE(task.started_timestamp_ms + 1000, before);
  EXPECT_LE(task.started_timestamp_ms, epoch_ms());

  EXPECT_EQ(dlq.counts().visible + dlq.counts().in_flight, 0u);
  const auto back_in_a = drain(a);
  const auto back_in_b = drain(b);
  std::set<std::string> a_bodies, a_got_ids;
  for (const Message& m : back_in_a) {
    a_bodies.insert(m.body);
    a_got_ids.insert(m.message_id);
  }
  EXPECT_EQ(a_bodies, (std::set<std::string>{"a1", "a2"}));
  EXPECT_EQ(a_got_ids, (std::set<std::string>(a_ids.begin(), a_ids.end()))) << "moved messages keep their ids";
  ASSERT_EQ(back_in_b.size(), 1u);
  EXPECT_EQ(back_in_b[0].body, "b1");
  EXPECT_EQ(back_in_b[0].message_id, b_ids[0]);
  EXPECT_EQ(back_in_b[0].receive_count, 1u) << "the receive count starts again";
}

TEST_F(MoveTasks, ToADestinationAndFailingOnAMessageWithoutASource) {
  Queue dlq = make_queue("dlq");
  Queue src = make_source("src", "dlq");
  Queue elsewhere = make_queue("elsewhere");
  dead_letter(src, dlq, {"x", "y"});
  client_.start_message_move_task(arn("dlq"), arn("elsewhere"));
  ASSERT_TRUE(eventually([&] { return finished("dlq"); }));
  MessageMoveTask task = latest("dlq");
  EXPECT_EQ(task.status, "COMPLETED") << task.failure_reason;
  EXPECT_EQ(task.destination_arn, kArn + "elsewhere");
  EXPECT_EQ(task.messages_moved, 2u);
  EXPECT_EQ(elsewhere.counts().visible, 2u);
  EXPECT_EQ(src.counts().visible, 0u);

  // A message sent to the dead-letter queue directly names no source queue:
  // without a destination the task fails, and the message stays.
  send_ok(dlq, "orphan");
  client_.start_message_move_task(arn("dlq"));
  ASSERT_TRUE(eventually([&] { return finished("dlq"); }));
  task = latest("dlq");
  EXPECT_EQ(task.status, "FAILED");
  EXPECT_NE(task.failure_reason.find("DeadLetterQueueSourceArn"), std::string::npos) << task.failure_reason;
  EXPECT_EQ(task.messages_moved, 0u);
  EXPECT_TRUE(eventually([&] { return dlq.counts().visible == 1; })) << "the task kept the message it could not move";
}

TEST_F(MoveTasks, RateLimitCancelAndHistory) {
  Queue dlq = make_queue("dlq");
  Queue src = make_source("src", "dlq");
  dead_letter(src, dlq, {"1", "2", "3", "4", "5", "6"});

  const std::string handle = client_.start_message_move_task(arn("dlq"), {}, 1);
  MessageMoveTask running = latest("dlq");
  EXPECT_EQ(running.status, "RUNNING");
  EXPECT_EQ(running.task_handle, handle);
  EXPECT_EQ(running.max_messages_per_second, 1u);
  EXPECT_EQ(running.messages_to_move, 6u);
  // One task per source at a time.
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(arn("dlq")); }), "unsupported_operation");

  ASSERT_TRUE(eventually([&] { return latest("dlq").messages_moved >= 1; }));
  const std::uint64_t moved = client_.cancel_message_move_task(handle);
  EXPECT_GE(moved, 1u);
  EXPECT_LT(moved, 6u) << "at 1 message per second, 6 take 5 seconds at least";
  const std::string status = latest("dlq").status;
  EXPECT_TRUE(status == "CANCELLING" || status == "CANCELLED") << status;
  ASSERT_TRUE(eventually([&] { return latest("dlq").status == "CANCELLED"; }));
  EXPECT_EQ(thrown_by([&] { client_.cancel_message_move_task(handle); }), "unsupported_operation");
  // Nothing lost: the messages are in one queue or the other, visible.
  const std::uint64_t moved_in_the_end = latest("dlq").messages_moved;
  EXPECT_TRUE(eventually([&] {
    return src.counts().visible == moved_in_the_end && dlq.counts().visible == 6 - moved_in_the_end;
  })) << src.counts().visible
      << " + " << dlq.counts().visible;

  // The rest at 4 per second: no faster than the rate allows.
  const auto start = std::chrono::steady_clock::now();
  const std::uint64_t rest = dlq.counts().visible;
  client_.start_message_move_task(arn("dlq"), {}, 4);
  ASSERT_TRUE(eventually([&] { return finished("dlq"); }));
  EXPECT_GE(seconds_since(start), (static_cast<double>(rest) - 1) / 4 - 0.05) << rest << " messages";
  EXPECT_EQ(src.counts().visible, 6u);

  // Newest first, at most MaxResults.
  const auto history = client_.list_message_move_tasks(arn("dlq"), 10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].status, "COMPLETED");
  EXPECT_EQ(history[0].max_messages_per_second, 4u);
  EXPECT_EQ(history[1].status, "CANCELLED");
  EXPECT_EQ(history[1].max_messages_per_second, 1u);
  EXPECT_EQ(client_.list_message_move_tasks(arn("dlq"), 1).size(), 1u);
  EXPECT_EQ(client_.list_message_move_tasks(arn("src"), 10).size(), 0u);
}

TEST_F(MoveTasks, OnlyMessagesThatWereThereAtTheStartMove) {
  Queue dlq = make_queue("dlq");
  Queue src = make_source("src", "dlq");
  dead_letter(src, dlq, {"old1", "old2", "old3"});
  client_.start_message_move_task(arn("dlq"), {}, 2);
  // Sent after the start, and naming no source queue: the task must not
  // touch them (it would fail on them).
  for (int i = 0; i < 3; ++i) send_ok(dlq, "new");
  ASSERT_TRUE(eventually([&] { return finished("dlq"); }));
  const MessageMoveTask task = latest("dlq");
  EXPECT_EQ(task.status, "COMPLETED") << task.failure_reason;
  EXPECT_EQ(task.messages_moved, 3u);
  EXPECT_TRUE(eventually([&] { return dlq.counts().visible == 3; })) << dlq.counts().visible;
  for (const Message& m : drain(dlq)) EXPECT_EQ(m.body, "new");
  EXPECT_EQ(src.counts().visible, 3u);
}

TEST_F(MoveTasks, FifoDeadLetterQueue) {
  const std::string policy = json{{"deadLetterTargetArn", kArn + "dlq.fifo"}, {"maxReceiveCount", 1}}.dump();
  Queue dlq = make_queue("dlq.fifo", {{"FifoQueue", "true"}});
  Queue src = make_queue("src.fifo", {{"FifoQueue", "true"}, {"VisibilityTimeout", "1"}, {"RedrivePolicy", policy}});
  SendOptions options;
  for (const char* group : {"g1", "g2"}) {
    for (int i = 0; i < 2; ++i) {
      options.group_id = group;
      options.deduplication_id = std::string(group) + "-" + std::to_string(i);
      send_ok(src, std::string(group) + "-" + std::to_string(i), options);
    }
  }
  // Receive until all four went through once (FIFO hands out a group at a time).
  ASSERT_TRUE(eventually([&] {
    (void)receive_now(src, 10);
    return dlq.counts().visible == 4;
  }));
  client_.start_message_move_task(arn("dlq.fifo"));
  // One group gets a newer message meanwhile: it stays behind.
  options.group_id = "g1";
  options.deduplication_id = "late";
  send_ok(dlq, "late", options);
  ASSERT_TRUE(eventually([&] { return finished("dlq.fifo"); }));
  const MessageMoveTask task = latest("dlq.fifo");
  EXPECT_EQ(task.status, "COMPLETED") << task.failure_reason;
  EXPECT_EQ(task.messages_moved, 4u);
  std::vector<std::string> bodies;
  for (const Message& m : drain(src)) bodies.push_back(m.body);
  EXPECT_EQ(bodies.size(), 4u);
  EXPECT_TRUE(eventually([&] { return dlq.counts().visible == 1; }));
}

TEST_F(MoveTasks, RequestsAreChecked) {
  Queue dlq = make_queue("dlq");
  make_queue("plain");
  make_source("src", "dlq");
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(arn("plain")); }), "invalid_parameter_value")
      << "only a dead-letter queue is a source";
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(kArn + "missing"); }), "resource_not_found");
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task("arn:aws:sqs:eu-west-1:000000000000:dlq"); }),
            "resource_not_found");
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(arn("dlq"), kArn + "missing"); }), "resource_not_found");
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(arn("dlq"), arn("dlq")); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(arn("dlq"), {}, 0); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.start_message_move_task(arn("dlq"), {}, 501); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.cancel_message_move_task("no-such-handle"); }), "resource_not_found");
  EXPECT_EQ(thrown_by([&] { client_.list_message_move_tasks(arn("dlq"), 0); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.list_message_move_tasks(arn("dlq"), 11); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.list_message_move_tasks(kArn + "missing"); }), "resource_not_found");
  EXPECT_TRUE(client_.list_message_move_tasks(arn("dlq"), 10).empty());

  // An empty dead-letter queue: the task completes at once, moving nothing.
  client_.start_message_move_task(arn("dlq"), {}, 500);
  ASSERT_TRUE(eventually([&] { return finished("dlq"); }));
  EXPECT_EQ(latest("dlq").status, "COMPLETED");
  EXPECT_EQ(latest("dlq").messages_to_move, 0u);
}

}  // namespace
}  // namespace shmq::test
