// A queue's segment file truncated by another process while the daemon runs,
// met by the daemon's own paths that write into a queue: a message move task
// and a redrive. The daemon survives (the same process), the message is not
// lost, and the other queues are served.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;
const std::string kArn = "arn:aws:sqs:us-east-1:000000000000:";

std::string segment_path(const std::string& ns, const std::string& queue) {
  return "/dev/shm/shmq." + ns + "." + queue;
}

// Running, not a zombie: the daemon is this process's child, so a dead one
// lingers until waited for.
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  return static_cast<bool>(stat >> pid_field >> comm >> state) && state != "Z";
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Another process truncates the file, as any user allowed to open it can.
void truncate_from_another_process(const std::string& path, off_t size) {
  ASSERT_EQ(wait_child(fork_child([&] { return ::truncate(path.c_str(), size) == 0 ? 0 : 1; })), 0);
}

class TruncatedSegmentTest : public DaemonTest {
 protected:
  std::string arn(const std::string& queue) { return attribute(queue, "QueueArn"); }

  // Sends and takes back a few messages, so that the pages a send writes are
  // reserved already: a later send reuses them without growing the file.
  void warm(Queue& queue) {
    for (int i = 0; i < 3; ++i) send_ok(queue, "warm-up");
    for (const Message& m : receive_now(queue, 10)) ASSERT_EQ(name_of(queue.delete_message(m.receipt_handle)), "ok");
  }

  // A message in `dlq` that came from `src` by redrive.
  void dead_letter(Queue& src, Queue& dlq, const std::string& body) {
    send_ok(src, body);
    // Visible again at once: past maxReceiveCount. The reaper may move it
    // before this receive has copied it out; it is in the DLQ either way.
    (void)receive_now(src, 1, 0);
    ASSERT_TRUE(eventually([&] { return dlq.counts().visible == 1; })) << "not dead-lettered";
  }

  void expect_other_queue_served() {
    Queue other = make_queue("other");
    send_ok(other, "still served");
    const auto got = receive_now(other, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, "still served");
  }
};

TEST_F(TruncatedSegmentTest, MoveTaskIntoATruncatedDestinationFailsAndKeepsTheMessage) {
  const pid_t pid = daemon_.pid();
  Queue dlq = make_queue("dlq");
  Queue src = make_queue(
      "src", {{"RedrivePolicy", json{{"deadLetterTargetArn", kArn + "dlq"}, {"maxReceiveCount", 1}}.dump()}});
  Queue dest = make_queue("dest");
  warm(dest);
  dead_letter(src, dlq, "precious");

  truncate_from_another_process(segment_path(ns(), "dest"), 4096);  // the header alone is left
  client_.start_message_move_task(arn("dlq"), kArn + "dest");
  ASSERT_TRUE(eventually([&] {
    const auto tasks = client_.list_message_move_tasks(arn("dlq"));
    return !tasks.empty() && tasks[0].status != "RUNNING";
  }));
  const MessageMoveTask task = client_.list_message_move_tasks(arn("dlq")).at(0);
  EXPECT_EQ(task.status, "FAILED");
  EXPECT_EQ(task.messages_moved, 0u);
  EXPECT_TRUE(alive(pid));

  // The message is back in the dead-letter queue, the destination refused.
  std::vector<Message> got;
  ASSERT_TRUE(eventually([&] { return (got = receive_now(dlq, 10)).size() == 1; })) << "the message was lost";
  EXPECT_EQ(got[0].body, "precious");
  EXPECT_FALSE(contains(client_.list_queues(), "dest"));
  EXPECT_EQ(thrown_by([&] { client_.get_queue_attributes("dest"); }), "queue_does_not_exist");
  expect_other_queue_served();
  EXPECT_TRUE(alive(pid));
}

TEST_F(TruncatedSegmentTest, RedriveIntoATruncatedDeadLetterQueueKeepsTheMessage) {
  const pid_t pid = daemon_.pid();
  // src before dlq: the reaper serves src's turn, with its redrive into
  // dlq, before it looks at dlq.
  Queue src = make_queue("src");
  Queue dlq = make_queue("dlq");
  warm(dlq);
  client_.set_queue_attributes(
      "src", {{"RedrivePolicy", json{{"deadLetterTargetArn", kArn + "dlq"}, {"maxReceiveCount", 1}}.dump()}});
  send_ok(src, "precious");
  ASSERT_EQ(receive_now(src, 1, 2).size(), 1u);  // past maxReceiveCount in 2 s
  std::this_thread::sleep_for(200ms);            // the reaper armed for it and sleeps
  truncate_from_another_process(segment_path(ns(), "dlq"), 4096);

  ASSERT_TRUE(eventually([&] { return !contains(client_.list_queues(), "dlq"); })) << "the truncated queue is served";
  EXPECT_TRUE(alive(pid));
  // The message waits in src for its dead-letter queue: a new one gets it.
  client_.delete_queue("dlq");
  Queue fresh = make_queue("dlq");
  std::vector<Message> got;
  ASSERT_TRUE(eventually([&] { return (got = receive_now(fresh, 10)).size() == 1; }, 20s)) << "the message was lost";
  EXPECT_EQ(got[0].body, "precious");
  expect_other_queue_served();
  EXPECT_TRUE(alive(pid));
}

}  // namespace
}  // namespace shmq::test
