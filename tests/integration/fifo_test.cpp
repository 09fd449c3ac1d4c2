// FIFO queues through the public API, with a real shmqd: creation rules,
// required parameters, deduplication, sequence numbers, receive attempts,
// group locking per message (a group is blocked at its first in-flight
// message), and strict order per group with several consumer processes.
#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using Fifo = DaemonTest;

SendOptions in_group(const std::string& group, const std::string& dedup = {}) {
  SendOptions o;
  o.group_id = group;
  o.deduplication_id = dedup;
  return o;
}

std::vector<std::string> bodies(const std::vector<Message>& ms) {
  std::vector<std::string> out;
  for (const Message& m : ms) out.push_back(m.body);
  return out;
}

using Strings = std::vector<std::string>;

TEST_F(Fifo, NameAndFifoQueueAttributeGoTogether) {
  EXPECT_EQ(thrown_by([&] { client_.create_queue("jobs.fifo"); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("jobs", {{"FifoQueue", "true"}}); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("jobs.fifo", {{"FifoQueue", "yes"}}); }), "invalid_attribute_value");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("jobs", {{"ContentBasedDeduplication", "true"}});
            }),
            "invalid_attribute_name")
      << "FIFO-only attribute on a standard queue";
  EXPECT_EQ(thrown_by([&] { client_.create_queue("a.fifo.fifo", {{"FifoQueue", "true"}}); }), "invalid_queue_name");
  EXPECT_EQ(thrown_by([&] { client_.create_queue(std::string(75, 'x') + ".fifo", {{"FifoQueue", "true"}}); }), "ok");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue(std::string(76, 'x') + ".fifo", {{"FifoQueue", "true"}});
            }),
            "invalid_queue_name")
      << "80 characters with the suffix";

  client_.create_queue("jobs.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  const Attributes a = client_.get_queue_attributes("jobs.fifo");
  EXPECT_EQ(a.at("FifoQueue"), "true");
  EXPECT_EQ(a.at("ContentBasedDeduplication"), "true");
  EXPECT_EQ(a.at("DeduplicationScope"), "queue");
  EXPECT_EQ(a.at("FifoThroughputLimit"), "perQueue");
  // As Amazon SQS answers: the queue type cannot change; FifoQueue is no
  // attribute of a standard queue at all, false included.
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("jobs.fifo", {{"FifoQueue", "false"}});
            }),
            "invalid_attribute_value")
      << "FifoQueue is fixed at creation";
  EXPECT_EQ(thrown_by([&] { client_.set_queue_attributes("jobs.fifo", {{"FifoQueue", "True"}}); }), "ok");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("jobs.fifo", {{"FifoQueue", "true"}}); }), "ok") << "exists";
  EXPECT_EQ(thrown_by([&] { client_.create_queue("plain", {{"FifoQueue", "false"}}); }), "invalid_attribute_name");
  client_.create_queue("plain");
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("plain", {{"FifoQueue", "false"}});
            }),
            "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("jobs.fifo", {{"FifoThroughputLimit", "perMessageGroupId"}});
            }),
            "invalid_attribute_value")
      << "per-group throughput needs per-group deduplication";
  client_.set_queue_attributes("jobs.fifo",
                               {{"DeduplicationScope", "messageGroup"}, {"FifoThroughputLimit", "perMessageGroupId"}});
  EXPECT_EQ(attribute("jobs.fifo", "FifoThroughputLimit"), "perMessageGroupId");
  client_.create_queue("plain");
  EXPECT_EQ(client_.get_queue_attributes("plain").count("FifoQueue"), 0u)
      << "SQS shows FIFO attributes only on FIFO queues";
}

TEST_F(Fifo, SendNeedsAGroupAndADeduplicationId) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}});
  SendResult sent;
  EXPECT_EQ(name_of(q.send("m", sent, in_group("", "d"))), "missing_parameter");
  EXPECT_EQ(name_of(q.send("m", sent, in_group("g"))), "invalid_parameter_value")
      << "no dedup id and no ContentBasedDeduplication: SQS answers InvalidParameterValue";
  SendOptions delayed = in_group("g", "d");
  delayed.delay_seconds = 5;
  EXPECT_EQ(name_of(q.send("m", sent, delayed)), "invalid_parameter_value") << "no per-message delay on FIFO";
  EXPECT_EQ(name_of(q.send("m", sent, in_group(std::string(129, 'g'), "d"))), "invalid_parameter_value");
  EXPECT_EQ(name_of(q.send("m", sent, in_group("g", "has space"))), "invalid_parameter_value");
  EXPECT_TRUE(receive_now(q).empty());

  Queue standard = make_queue("plain");
  EXPECT_EQ(name_of(standard.send("m", sent, in_group("g", "d"))), "invalid_parameter_value")
      << "deduplication ids are for FIFO queues";
}

TEST_F(Fifo, ADuplicateIsAcknowledgedWithTheOriginalButDeliveredOnce) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}});
  SendResult first, again;
  ASSERT_EQ(name_of(q.send("order 17", first, in_group("g", "order-17"))), "ok");
  ASSERT_EQ(name_of(q.send("order 17, resent", again, in_group("g", "order-17"))), "ok");
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(duplicate_reported(again.duplicate));
  EXPECT_EQ(again.message_id, first.message_id);
  EXPECT_EQ(again.sequence_number, first.sequence_number);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "order 17");
  EXPECT_EQ(got[0].deduplication_id, "order-17");
  EXPECT_EQ(got[0].group_id, "g");
  EXPECT_EQ(got[0].sequence_number, first.sequence_number);
}

TEST_F(Fifo, ContentBasedDeduplicationUsesTheBody) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  SendResult a, b, c;
  ASSERT_EQ(name_of(q.send("same body", a, in_group("g"))), "ok");
  ASSERT_EQ(name_of(q.send("same body", b, in_group("g"))), "ok");
  ASSERT_EQ(name_of(q.send("other body", c, in_group("g"))), "ok");
  EXPECT_TRUE(duplicate_reported(b.duplicate));
  EXPECT_EQ(b.message_id, a.message_id);
  EXPECT_FALSE(c.duplicate);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].deduplication_id.size(), 64u) << "the SHA-256 of the body, in hex";
}

TEST_F(Fifo, SequenceNumbersAreTwentyDigitsAndIncrease) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  std::string previous;
  for (int i = 0; i < 5; ++i) {
    SendResult sent;
    ASSERT_EQ(name_of(q.send("m" + std::to_string(i), sent, in_group(i % 2 ? "a" : "b"))), "ok");
    EXPECT_EQ(sent.sequence_number.size(), 20u);
    EXPECT_TRUE(std::all_of(sent.sequence_number.begin(), sent.sequence_number.end(), ::isdigit));
    EXPECT_GT(sent.sequence_number, previous);
    previous = sent.sequence_number;
  }
  std::vector<BatchEntryResult> results;
  std::vector<SendEntry> batch{{"x", "bx", in_group("a")}, {"y", "by", in_group("a")}};
  ASSERT_EQ(name_of(q.send_batch(batch, results)), "ok");
  EXPECT_GT(results[0].sequence_number, previous);
  EXPECT_GT(results[1].sequence_number, results[0].sequence_number);
}

TEST_F(Fifo, ARetriedReceiveAttemptReturnsTheSameMessagesAndHandles) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  for (const char* b : {"one", "two"}) send_ok(q, b, in_group("g"));
  ReceiveOptions options;
  options.max_messages = 10;
  options.wait_time = 0ms;
  options.receive_request_attempt_id = "attempt-42";
  std::vector<Message> first, retry;
  ASSERT_EQ(name_of(q.receive(first, options)), "ok");
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(name_of(q.receive(retry, options)), "ok");
  ASSERT_EQ(retry.size(), 2u) << "a lost reply can be asked for again";
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(retry[i].receipt_handle, first[i].receipt_handle);
    EXPECT_EQ(retry[i].body, first[i].body);
  }
  options.receive_request_attempt_id = "another";
  ASSERT_EQ(name_of(q.receive(retry, options)), "ok");
  EXPECT_TRUE(retry.empty()) << "another attempt finds the group locked";
  options.receive_request_attempt_id = "bad id with spaces";
  EXPECT_EQ(name_of(q.receive(retry, options)), "invalid_parameter_value");
}

// Several consumer processes, many groups: each group's messages must be
// received in send order, and never two of one group at once.
TEST_F(Fifo, StrictOrderPerGroupWithConcurrentConsumerProcesses) {
  constexpr int kGroups = 6;
  constexpr int kPerGroup = 40;
  constexpr int kConsumers = 4;
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  for (int i = 0; i < kPerGroup; ++i) {
    for (int g = 0; g < kGroups; ++g)
      send_ok(q, std::to_string(g) + ":" + std::to_string(i), in_group("g" + std::to_string(g)));
  }
  const std::string dir = ::testing::TempDir();
  std::vector<pid_t> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    const std::string log = dir + "/fifo-consumer-" + ns() + "-" + std::to_string(c);
    consumers.push_back(fork_child([&, log] {
      Client client(Client::Options{ns()});
      Queue mine = client.open_queue("q.fifo");
      std::ofstream out(log);
      std::vector<Message> got;
      for (;;) {
        if (mine.receive(got, {.max_messages = 3, .wait_time = 300ms})) return 3;
        if (got.empty()) return 0;
        for (const Message& m : got) {
          // Received (and held) in this order; the group is ours until deleted.
          out << m.body << " " << m.sequence_number << "\n";
          out.flush();
          if (mine.delete_message(m.receipt_handle)) return 4;
        }
      }
    }));
  }
  for (pid_t pid : consumers) EXPECT_EQ(wait_child(pid), 0);

  // Every message once; per group, the sequence numbers in each consumer's
  // log rise, and merged across consumers by sequence number they give the
  // group's messages in send order without gaps.
  std::map<int, std::vector<std::pair<std::string, int>>> by_group;  // group -> (seq, index)
  int total = 0;
  for (int c = 0; c < kConsumers; ++c) {
    std::ifstream in(dir + "/fifo-consumer-" + ns() + "-" + std::to_string(c));
    std::string body, seq;
    while (in >> body >> seq) {
      const auto colon = body.find(':');
      by_group[std::stoi(body.substr(0, colon))].push_back({seq, std::stoi(body.substr(colon + 1))});
      ++total;
    }
  }
  EXPECT_EQ(total, kGroups * kPerGroup) << "each message exactly once";
  for (auto& [group, entries] : by_group) {
    std::sort(entries.begin(), entries.end());
    for (int i = 0; i < static_cast<int>(entries.size()); ++i) {
      ASSERT_EQ(entries[i].second, i) << "group " << group << ": out of order at position " << i;
    }
  }
}

// Order with consumers that hold a message while another consumer tries
// the same group: it must get nothing of that group until the delete.
TEST_F(Fifo, AGroupIsExclusiveAcrossProcesses) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  send_ok(q, "first", in_group("g"));
  send_ok(q, "second", in_group("g"));
  auto held = receive_now(q, 1);
  ASSERT_EQ(held.size(), 1u);
  const pid_t other = fork_child([&] {
    Client client(Client::Options{ns()});
    Queue mine = client.open_queue("q.fifo");
    std::vector<Message> got;
    if (mine.receive(got, {.max_messages = 10, .wait_time = 500ms})) return 3;
    return got.empty() ? 0 : 1;
  });
  EXPECT_EQ(wait_child(other), 0) << "another process got a message of a locked group";
  ASSERT_EQ(name_of(q.delete_message(held[0].receipt_handle)), "ok");
  auto next = receive_now(q);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].body, "second");
}

TEST_F(Fifo, ADeleteWakesAReceiverWaitingForTheGroup) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  send_ok(q, "first", in_group("g"));
  send_ok(q, "second", in_group("g"));
  auto held = receive_now(q, 1);
  const pid_t waiter = fork_child([&] {
    Client client(Client::Options{ns()});
    Queue mine = client.open_queue("q.fifo");
    std::vector<Message> got;
    const auto start = std::chrono::steady_clock::now();
    if (mine.receive(got, {.max_messages = 1, .wait_time = 10s})) return 3;
    if (got.size() != 1 || got[0].body != "second") return 1;
    return std::chrono::steady_clock::now() - start < 8s ? 0 : 2;
  });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(name_of(q.delete_message(held[0].receipt_handle)), "ok");
  EXPECT_EQ(wait_child(waiter), 0) << "the long poll was not woken by the group opening";
}

// As SQS: a group is blocked after its first in-flight message, not as a
// whole. With m1 and m2 in flight, m1 made visible again is received again
// while m2 stays in flight, and nothing after m2 is delivered.
TEST_F(Fifo, AMessageMadeVisibleAgainIsReceivedAgainWhileTheNextStaysInFlight) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  for (const char* b : {"m1", "m2", "m3"}) send_ok(q, b, in_group("g1"));
  auto both = receive_now(q, 2);
  ASSERT_EQ(bodies(both), (Strings{"m1", "m2"}));
  ASSERT_EQ(name_of(q.change_visibility(both[0].receipt_handle, 0)), "ok");
  auto again = receive_now(q);
  ASSERT_EQ(bodies(again), (Strings{"m1"})) << "not m2 (in flight) nor m3 (behind it)";
  EXPECT_EQ(again[0].receive_count, 2u);
  EXPECT_EQ(again[0].sequence_number, both[0].sequence_number);
  EXPECT_TRUE(receive_now(q).empty());
  ASSERT_EQ(name_of(q.delete_message(both[1].receipt_handle)), "ok") << "m2's handle still deletes m2";
  EXPECT_TRUE(receive_now(q).empty()) << "m3 waits behind m1, in flight again";
  ASSERT_EQ(name_of(q.delete_message(again[0].receipt_handle)), "ok");
  auto last = receive_now(q);
  ASSERT_EQ(bodies(last), (Strings{"m3"}));
  EXPECT_EQ(last[0].receive_count, 1u);
}

TEST_F(Fifo, AnExpiredHeadIsReceivedAgainWhileTheNextStaysInFlight) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  for (const char* b : {"m1", "m2", "m3"}) send_ok(q, b, in_group("g1"));
  auto both = receive_now(q, 2, 600);
  ASSERT_EQ(bodies(both), (Strings{"m1", "m2"}));
  ASSERT_EQ(name_of(q.change_visibility(both[0].receipt_handle, 1)), "ok");  // m1's timeout ends in 1 s
  std::vector<Message> again;
  ASSERT_EQ(name_of(q.receive(again, {.max_messages = 10, .wait_time = 10s})), "ok");
  ASSERT_EQ(bodies(again), (Strings{"m1"})) << "m1 came back when its timeout ended; m2 holds m3";
  EXPECT_EQ(again[0].receive_count, 2u);
  ASSERT_EQ(name_of(q.delete_message(again[0].receipt_handle)), "ok");
  EXPECT_TRUE(receive_now(q).empty());
  ASSERT_EQ(name_of(q.change_visibility(both[1].receipt_handle, 0)), "ok");
  EXPECT_EQ(bodies(receive_now(q)), (Strings{"m2", "m3"}));
}

TEST_F(Fifo, DeletingTheHeadWakesALongPollForTheReadyMessageBehindIt) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  send_ok(q, "first", in_group("g"));
  send_ok(q, "second", in_group("g"));
  auto both = receive_now(q, 2);
  ASSERT_EQ(bodies(both), (Strings{"first", "second"}));
  ASSERT_EQ(name_of(q.change_visibility(both[1].receipt_handle, 0)), "ok");  // ready, behind "first"
  const pid_t waiter = fork_child([&] {
    Client client(Client::Options{ns()});
    Queue mine = client.open_queue("q.fifo");
    std::vector<Message> got;
    const auto start = std::chrono::steady_clock::now();
    if (mine.receive(got, {.max_messages = 10, .wait_time = 20s})) return 3;
    if (got.size() != 1 || got[0].body != "second" || got[0].receive_count != 2) return 1;
    return std::chrono::steady_clock::now() - start < 15s ? 0 : 2;
  });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(name_of(q.delete_message(both[0].receipt_handle)), "ok");
  EXPECT_EQ(wait_child(waiter), 0) << "the long poll did not get the message the delete let go";
}

TEST_F(Fifo, AMessageMovedToTheDeadLetterQueueLeavesTheRestOfItsGroupInOrder) {
  Queue dlq = make_queue("dlq.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  Queue src = make_queue("src.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  client_.set_queue_attributes(
      "src.fifo", {{"RedrivePolicy",
                    R"({"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq.fifo","maxReceiveCount":1})"}});
  for (const char* b : {"m1", "m2", "m3"}) send_ok(src, b, in_group("g1"));
  auto both = receive_now(src, 2);
  ASSERT_EQ(bodies(both), (Strings{"m1", "m2"}));
  ASSERT_EQ(name_of(src.change_visibility(both[0].receipt_handle, 0)), "ok");  // received once: m1 moves
  ASSERT_TRUE(eventually([&] { return dlq.counts().visible == 1; })) << "m1 not moved to the dead-letter queue";
  EXPECT_TRUE(receive_now(src).empty()) << "m2 is in flight: m3 waits";
  ASSERT_EQ(name_of(src.delete_message(both[1].receipt_handle)), "ok");
  EXPECT_EQ(bodies(receive_now(src)), (Strings{"m3"}));
  EXPECT_EQ(bodies(receive_now(dlq)), (Strings{"m1"}));
}

}  // namespace
}  // namespace shmq::test
