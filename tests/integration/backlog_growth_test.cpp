// A queue of the default size holds a backlog far past the 131,072 messages
// of the first data plane, bounded by memory: it takes 2,000,000 messages
// (and a burst over the bridge), hands every one back, and once drained
// returns the shared memory it took. Past its memory limit sends get
// queue_full (OverLimit on the bridge) and the queue recovers as messages go.
#include <sys/stat.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sqs_http.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

// Bytes of /dev/shm the queue's segment file holds.
std::uint64_t resident(const std::string& ns, const std::string& queue) {
  struct stat st {};
  const std::string path = "/dev/shm/shmq." + ns + "." + queue;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// Waits up to 20 s for the daemon to give the drained queue's memory back.
bool trimmed(Client& client, const std::string& queue) {
  for (int i = 0; i < 200; ++i) {
    if (client.stats(queue).trims > 0) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

TEST(BacklogGrowth, ADefaultQueueTakesTwoMillionMessagesAndGivesItsMemoryBackOnceDrained) {
  constexpr int kMessages = 2'000'000;
  DaemonProcess daemon(unique_namespace());
  Client client(Client::Options{daemon.ns()});
  client.create_queue("backlog");  // the daemon's defaults
  Queue q = client.open_queue("backlog");
  const std::uint64_t empty = resident(daemon.ns(), "backlog");

  std::vector<SendEntry> batch(10);
  std::vector<BatchEntryResult> results;
  for (int i = 0; i < kMessages; i += 10) {
    for (int k = 0; k < 10; ++k) {
      batch[k].id = std::to_string(k);
      batch[k].body = std::to_string(i + k);
    }
    ASSERT_EQ(name_of(q.send_batch(batch, results)), "ok") << "at " << i;
    for (const auto& r : results) ASSERT_EQ(name_of(r.error), "ok") << "message " << i << " of " << kMessages;
  }
  EXPECT_EQ(q.counts().visible, static_cast<std::uint64_t>(kMessages));
  const QueueStats full = client.stats("backlog");
  EXPECT_GE(full.slots_ever_used, static_cast<std::uint64_t>(kMessages));
  EXPECT_GT(full.memory_bytes, 2'000'000ull * 128) << "each message backs at least its descriptor";
  EXPECT_LE(full.memory_bytes, full.memory_limit_bytes);

  // Every message comes back once, in send order (one receiver).
  std::vector<Message> got;
  std::vector<HandleEntry> handles;
  std::vector<BatchEntryResult> deleted;
  int next = 0;
  for (;;) {
    got.clear();
    ASSERT_EQ(name_of(q.receive(got, ReceiveOptions{.max_messages = 10, .wait_time = 0ms})), "ok");
    if (got.empty()) break;
    handles.clear();
    for (std::size_t k = 0; k < got.size(); ++k) {
      ASSERT_EQ(got[k].body, std::to_string(next)) << "messages come back in send order";
      ++next;
      handles.push_back(HandleEntry{std::to_string(k), got[k].receipt_handle});
    }
    ASSERT_EQ(name_of(q.delete_batch(handles, deleted)), "ok");
    for (const auto& r : deleted) ASSERT_EQ(name_of(r.error), "ok");
  }
  EXPECT_EQ(next, kMessages);
  const std::uint64_t drained = resident(daemon.ns(), "backlog");
  EXPECT_GT(drained, empty + (256u << 20)) << "the drained queue still held its pages before the trim";

  ASSERT_TRUE(trimmed(client, "backlog")) << "the daemon gives an emptied queue's memory back";
  const QueueStats after = client.stats("backlog");
  EXPECT_LT(after.memory_bytes, 1u << 20);
  // The trim punches a slice at a time: wait for the last.
  std::uint64_t now = resident(daemon.ns(), "backlog");
  for (int i = 0; i < 200 && now > empty + (4u << 20); ++i) {
    std::this_thread::sleep_for(100ms);
    now = resident(daemon.ns(), "backlog");
  }
  EXPECT_LT(now, empty + (4u << 20)) << "resident after the drain: " << now << " bytes, empty queue: " << empty;

  // And it works as before.
  SendResult sent;
  ASSERT_EQ(name_of(q.send("after", sent)), "ok");
  got.clear();
  ASSERT_EQ(name_of(q.receive(got, ReceiveOptions{.max_messages = 10, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "after");
}

TEST(BacklogGrowth, PastTheMemoryLimitSendsGetQueueFullAndTheQueueRecovers) {
  DaemonProcess daemon(unique_namespace(), {"--queue-memory-mib", "8"});
  Client client(Client::Options{daemon.ns()});
  client.create_queue("small");
  client.create_queue("other");
  Queue q = client.open_queue("small");
  const std::string body(1000, 'x');
  SendResult sent;
  std::error_code ec;
  int accepted = 0;
  while (!(ec = q.send(body, sent)) && accepted < 1'000'000) ++accepted;
  EXPECT_EQ(name_of(ec), "queue_full");
  EXPECT_GT(accepted, 2000) << "8 MiB holds thousands of 1 KB messages";
  const QueueStats stats = client.stats("small");
  EXPECT_EQ(stats.memory_limit_bytes, 8ull << 20);
  EXPECT_LE(stats.memory_bytes, 8ull << 20);
  EXPECT_EQ(q.counts().visible, static_cast<std::uint64_t>(accepted));

  // Another queue has a limit of its own.
  Queue other = client.open_queue("other");
  EXPECT_EQ(name_of(other.send(body, sent)), "ok");

  // A FIFO queue's empty tables (8 MiB of hash buckets and receive
  // attempts) do not fit such a limit: a clear refusal, nothing left behind.
  try {
    client.create_queue("q.fifo", {{"FifoQueue", "true"}});
    ADD_FAILURE() << "a FIFO queue was created under a limit it cannot use";
  } catch (const std::system_error& e) {
    EXPECT_EQ(name_of(e.code()), "invalid_parameter_value");
    EXPECT_NE(std::string(e.what()).find("--queue-memory-mib"), std::string::npos) << e.what();
  }
  EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"other", "small"}));

  // A deleted message makes room for one more.
  std::vector<Message> got;
  ASSERT_EQ(name_of(q.receive(got, ReceiveOptions{.max_messages = 1, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");
  EXPECT_EQ(name_of(q.send(body, sent)), "ok");
  EXPECT_EQ(name_of(q.send(body, sent)), "queue_full");
}

class BridgeBacklog : public BridgeTest {
 protected:
  BridgeBacklog() : BridgeTest({"--queue-memory-mib", "64"}) {}
};

TEST_F(BridgeBacklog, ABurstOfSendMessageBatchGoesPastTheOldCeilingAndComesBackWhole) {
  constexpr int kMessages = 150'000;  // past the 131,072 slots of the first data plane
  ASSERT_EQ(sqs_call(port(), "CreateQueue", {{"QueueName", "burst"}}).status, 200);
  const std::string queue = url("burst");
  for (int i = 0; i < kMessages; i += 10) {
    nlohmann::json entries = nlohmann::json::array();
    for (int k = 0; k < 10; ++k) entries.push_back({{"Id", std::to_string(k)}, {"MessageBody", std::to_string(i + k)}});
    const HttpReply reply = sqs_call(port(), "SendMessageBatch", {{"QueueUrl", queue}, {"Entries", entries}});
    ASSERT_EQ(reply.status, 200) << reply.body;
    ASSERT_EQ(nlohmann::json::parse(reply.body).at("Successful").size(), 10u) << "at " << i << ": " << reply.body;
  }
  std::set<int> seen;
  for (;;) {
    const HttpReply reply =
        sqs_call(port(), "ReceiveMessage", {{"QueueUrl", queue}, {"MaxNumberOfMessages", 10}, {"WaitTimeSeconds", 0}});
    ASSERT_EQ(reply.status, 200) << reply.body;
    const nlohmann::json answer = nlohmann::json::parse(reply.body);
    if (!answer.contains("Messages") || answer.at("Messages").empty()) break;
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& m : answer.at("Messages")) {
      EXPECT_TRUE(seen.insert(std::stoi(m.at("Body").get<std::string>())).second) << "delivered twice";
      entries.push_back({{"Id", std::to_string(entries.size())}, {"ReceiptHandle", m.at("ReceiptHandle")}});
    }
    const HttpReply removed = sqs_call(port(), "DeleteMessageBatch", {{"QueueUrl", queue}, {"Entries", entries}});
    ASSERT_EQ(removed.status, 200) << removed.body;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kMessages));
  if (!seen.empty()) {
    EXPECT_EQ(*seen.begin(), 0);
    EXPECT_EQ(*seen.rbegin(), kMessages - 1);
  }

  // Past the queue's memory limit (64 MiB here): OverLimit, as SQS names a
  // limit reached, and nothing else changes.
  const std::string body(200 * 1024, 'o');
  HttpReply refused;
  for (int i = 0; i < 1000; ++i) {
    refused = sqs_call(port(), "SendMessage", {{"QueueUrl", queue}, {"MessageBody", body}});
    if (refused.status != 200) break;
  }
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("OverLimit"), std::string::npos) << refused.body;
}

}  // namespace
}  // namespace shmq::test
