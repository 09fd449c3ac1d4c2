// shmqctl as a user runs it: every command of its usage text against a real
// daemon, its --json output, its exit codes and messages.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;

using Shmqctl = ShmqctlTest;

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

// The commands the usage text lists, read from `shmqctl --help`.
std::set<std::string> usage_commands(const std::string& usage) {
  std::set<std::string> commands;
  std::istringstream lines(usage.substr(usage.find("commands:")));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    if (line.size() > 2 && line.rfind("  ", 0) == 0 && line[2] != ' ') {
      commands.insert(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return commands;
}

TEST_F(Shmqctl, UsageListsTheCommandsTheseTestsCover) {
  const ProcessResult help = run_process({shmqctl_path(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: shmqctl"), std::string::npos) << help.out;
  // If this fails, a command was added or renamed: cover it in this file.
  EXPECT_EQ(
      usage_commands(help.out),
      (std::set<std::string>{"create-queue", "delete-queue", "list-queues", "get-attributes", "set-attributes", "purge",
                             "send", "receive", "peek", "delete", "change-visibility", "stats", "top",
                             // covered in shmqctl_issue3_test.cpp
                             "tag-queue", "untag-queue", "list-tags", "add-permission", "remove-permission",
                             "list-dead-letter-source-queues", "start-move-task", "cancel-move-task", "list-move-tasks",
                             // covered in tests/clients/python/test_health.py
                             "health"}));
}

TEST_F(Shmqctl, QueueAdministration) {
  EXPECT_EQ(ok_json({"create-queue", "jobs", "-a", "VisibilityTimeout=5", "-a", "DelaySeconds=2"}),
            (json{{"created", "jobs"}}));
  ok({"create-queue", "jobs-dlq"});
  ok({"create-queue", "other"});
  EXPECT_EQ(client_.get_queue_attributes("jobs", {"VisibilityTimeout"}).at("VisibilityTimeout"), "5");

  EXPECT_EQ(ok({"list-queues"}), "jobs\njobs-dlq\nother\n");
  EXPECT_EQ(ok_json({"list-queues", "--prefix", "jobs"}), (json{{"queues", {"jobs", "jobs-dlq"}}}));
  EXPECT_EQ(ok_json({"list-queues", "--prefix", "none"}), (json{{"queues", json::array()}}));

  const std::string text = ok({"get-attributes", "jobs"});
  EXPECT_NE(text.find("VisibilityTimeout: 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("DelaySeconds: 2\n"), std::string::npos) << text;
  const json all = ok_json({"get-attributes", "jobs"});
  EXPECT_EQ(all.at("MaximumMessageSize"), "1048576");
  EXPECT_TRUE(all.contains("CreatedTimestamp"));
  EXPECT_TRUE(all.contains("ApproximateNumberOfMessages"));
  EXPECT_EQ(ok_json({"get-attributes", "jobs", "--names", "VisibilityTimeout", "--names", "DelaySeconds"}),
            (json{{"DelaySeconds", "2"}, {"VisibilityTimeout", "5"}}));

  EXPECT_EQ(ok_json({"set-attributes", "jobs", "-a", "VisibilityTimeout=9", "-a", "MaximumMessageSize=2048"}),
            (json{{"updated", "jobs"}}));
  EXPECT_EQ(client_.get_queue_attributes("jobs", {"VisibilityTimeout"}).at("VisibilityTimeout"), "9");
  EXPECT_EQ(client_.get_queue_attributes("jobs", {"MaximumMessageSize"}).at("MaximumMessageSize"), "2048");

  EXPECT_EQ(ok_json({"delete-queue", "jobs-dlq"}), (json{{"deleted", "jobs-dlq"}}));
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"jobs", "other"}));
}

TEST_F(Shmqctl, SendReceiveDeleteAndChangeVisibility) {
  Queue q = make_queue("q");
  const json sent = ok_json({"send", "q", "hello world"});
  ASSERT_TRUE(sent.contains("MessageId")) << sent.dump();
  EXPECT_TRUE(uuid_shaped(sent.at("MessageId").get<std::string>())) << sent.dump();

  const std::uint64_t before = epoch_ms();
  const json received = ok_json({"receive", "q", "--visibility", "600"});
  ASSERT_TRUE(received.contains("Messages")) << received.dump();
  ASSERT_EQ(received.at("Messages").size(), 1u) << received.dump();
  const json& m = received.at("Messages")[0];
  EXPECT_EQ(keys_of(m), (std::set<std::string>{"MessageId", "ReceiptHandle", "Body", "ApproximateReceiveCount",
                                               "SentTimestamp", "ApproximateFirstReceiveTimestamp"}));
  EXPECT_EQ(m.at("MessageId"), sent.at("MessageId"));
  EXPECT_EQ(m.at("Body"), "hello world");
  EXPECT_EQ(m.at("ApproximateReceiveCount"), 1);
  EXPECT_LE(m.at("SentTimestamp").get<std::uint64_t>(), before + 1000);
  EXPECT_GE(m.at("SentTimestamp").get<std::uint64_t>() + 60'000, before);
  EXPECT_GE(m.at("ApproximateFirstReceiveTimestamp").get<std::uint64_t>(), m.at("SentTimestamp").get<std::uint64_t>());
  EXPECT_EQ(q.counts().in_flight, 1u);

  // change-visibility 0 returns it; a second receive counts 2.
  const std::string handle = m.at("ReceiptHandle");
  EXPECT_EQ(ok_json({"change-visibility", "q", handle, "0"}), (json{{"changed", true}}));
  EXPECT_EQ(q.counts().visible, 1u);
  const json again = ok_json({"receive", "q", "--max", "10"});
  ASSERT_EQ(again.at("Messages").size(), 1u);
  EXPECT_EQ(again.at("Messages")[0].at("ApproximateReceiveCount"), 2);

  // The first handle is stale now; the second deletes.
  const ProcessResult stale = shmqctl(ns(), {"delete", "q", handle});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_NE(stale.err.find("stale_receipt_handle"), std::string::npos) << stale.err;
  const std::string second_handle = again.at("Messages")[0].at("ReceiptHandle");
  EXPECT_EQ(ok_json({"delete", "q", second_handle}), (json{{"deleted", true}}));
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.in_flight, 0u);
}

// A look at a queue must not change it: before peek, `receive --visibility
// 0` was the only way to see a message, and it counted a receive, which
// could send the message to its dead-letter queue.
TEST_F(Shmqctl, PeekShowsMessagesWithoutReceivingThem) {
  make_queue("dlq");
  Queue q = make_queue(
      "q",
      {{"RedrivePolicy", R"({"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"1"})"}});
  const std::string long_body = "first " + std::string(200, 'x');
  ok_json({"send", "q", long_body, "--message-attribute", "kind=String:report"});
  ok_json({"send", "q", "second"});
  ok_json({"send", "q", "later", "--delay", "600"});
  const json received = ok_json({"receive", "q", "--visibility", "600"});
  ASSERT_EQ(received.at("Messages").size(), 1u) << received.dump();

  for (int i = 0; i < 3; ++i) {
    const json peeked = ok_json({"peek", "q"}).at("Messages");
    ASSERT_EQ(peeked.size(), 3u) << peeked.dump();
    EXPECT_EQ(peeked[0].at("Body"), long_body) << "--json shows the whole body";
    EXPECT_EQ(peeked[0].at("State"), "in_flight");
    EXPECT_EQ(peeked[0].at("ApproximateReceiveCount"), 1);
    EXPECT_GT(peeked[0].at("VisibleAt").get<std::uint64_t>(), epoch_ms() + 500'000);
    EXPECT_EQ(peeked[0].at("MessageAttributes"), (json{{"kind", {{"DataType", "String"}, {"StringValue", "report"}}}}));
    EXPECT_FALSE(peeked[0].contains("ReceiptHandle")) << "a peek receives nothing";
    EXPECT_EQ(peeked[1].at("Body"), "second");
    EXPECT_EQ(peeked[1].at("State"), "visible");
    EXPECT_EQ(peeked[1].at("ApproximateReceiveCount"), 0);
    EXPECT_EQ(peeked[2].at("State"), "delayed");
  }
  const QueueCounts c = q.counts();
  EXPECT_EQ((std::array{c.visible, c.in_flight, c.delayed}), (std::array<std::uint64_t, 3>{1, 1, 1}));
  // Received after all those peeks, "second" is on its first receive: it
  // stays in the queue (maxReceiveCount 1), and the dead-letter queue is empty.
  const json second = ok_json({"receive", "q"}).at("Messages");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].at("Body"), "second");
  EXPECT_EQ(second[0].at("ApproximateReceiveCount"), 1);
  EXPECT_EQ(ok_json({"peek", "dlq"}).at("Messages"), json::array());

  // Text: the start of each body; --max bounds the list.
  const std::string text = ok({"peek", "q", "--max", "1"});
  EXPECT_NE(text.find("Body: first " + std::string(74, 'x') + "...\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("second"), std::string::npos) << text;
  // A FIFO queue's messages, with their group and sequence number.
  make_queue("f.fifo", {{"FifoQueue", "true"}});
  const json sent = ok_json({"send", "f.fifo", "in order", "--group", "g1", "--dedup-id", "d1"});
  const json fifo = ok_json({"peek", "f.fifo"}).at("Messages");
  ASSERT_EQ(fifo.size(), 1u) << fifo.dump();
  EXPECT_EQ(fifo[0].at("MessageGroupId"), "g1");
  EXPECT_EQ(fifo[0].at("SequenceNumber"), sent.at("SequenceNumber"));
  EXPECT_EQ(fifo[0].at("State"), "visible");

  const ProcessResult too_many = shmqctl(ns(), {"peek", "q", "--max", "101"});
  EXPECT_EQ(too_many.exit_code, 1);
  EXPECT_NE(too_many.err.find("peek shows 1 to 100 messages"), std::string::npos) << too_many.err;
}

TEST_F(Shmqctl, SendReadsTheBodyFromStandardInput) {
  Queue q = make_queue("q");
  const std::string body = "line one\nline two\n\ttabbed \"quoted\"\n";
  ok({"send", "q"}, body);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, body);
}

TEST_F(Shmqctl, SendWithADelay) {
  Queue q = make_queue("q");
  ok({"send", "q", "later", "--delay", "600"});
  EXPECT_EQ(q.counts().delayed, 1u);
  EXPECT_TRUE(receive_now(q).empty());
}

TEST_F(Shmqctl, ReceiveManyAndDelete) {
  Queue q = make_queue("q");
  for (int i = 0; i < 5; ++i) send_ok(q, "m" + std::to_string(i));

  const json got = ok_json({"receive", "q", "--max", "3", "--delete"});
  ASSERT_EQ(got.at("Messages").size(), 3u);
  EXPECT_EQ(q.counts().in_flight, 0u) << "receive --delete left messages in flight";
  EXPECT_EQ(q.counts().visible, 2u);

  // Text output shows bodies too.
  const std::string text = ok({"receive", "q", "--max", "10", "--delete"});
  EXPECT_NE(text.find("Body: m3"), std::string::npos) << text;
  EXPECT_NE(text.find("Body: m4"), std::string::npos) << text;
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.in_flight, 0u);

  // An empty queue: an empty list after the wait.
  EXPECT_EQ(ok_json({"receive", "q", "--wait", "1"}), (json{{"Messages", json::array()}}));
}

TEST_F(Shmqctl, PurgeAndStats) {
  Queue q = make_queue("q", {}, QueueCapacity{32, 1ull << 20});  // rounded up to one 2 MiB block
  for (int i = 0; i < 3; ++i) send_ok(q, "m");
  ASSERT_EQ(receive_now(q, 1).size(), 1u);

  const json stats = ok_json({"stats", "q"});
  EXPECT_EQ(keys_of(stats),
            (std::set<std::string>{"segment_bytes", "max_messages", "slots_ever_used", "arena_bytes",
                                   "arena_free_bytes", "memory_bytes", "memory_limit_bytes", "trims", "visible",
                                   "in_flight", "delayed", "writing", "sent_total", "received_total", "deleted_total",
                                   "recoveries", "sleeping_receivers", "oldest_sent_timestamp_ms"}));
  EXPECT_EQ(stats.at("max_messages"), 32);
  // The header page, the first chunk of slots (here all 32, with a 128 B
  // descriptor and a 4 B heap entry each) and the 2 MiB block with its
  // order-map bytes.
  EXPECT_EQ(stats.at("memory_bytes"), 4096 + 32 * 132 + (2 << 20) + (2 << 20) / 64);
  EXPECT_EQ(stats.at("memory_limit_bytes"), 4096ull << 20);  // the daemon's default, --queue-memory-mib
  EXPECT_EQ(stats.at("trims"), 0);
  EXPECT_EQ(stats.at("arena_bytes"), 2 << 20);
  EXPECT_EQ(stats.at("visible"), 2);
  EXPECT_EQ(stats.at("in_flight"), 1);
  EXPECT_EQ(stats.at("sent_total"), 3);
  const std::string text = ok({"stats", "q"});
  EXPECT_NE(text.find("visible: 2\n"), std::string::npos) << text;

  EXPECT_EQ(ok_json({"purge", "q"}), (json{{"purged", 3}}));
  EXPECT_EQ(ok_json({"stats", "q"}).at("visible"), 0);
  EXPECT_EQ(q.counts().in_flight, 0u);
}

TEST_F(Shmqctl, StatsWithoutAQueueIsATableOfEveryQueue) {
  Queue busy = make_queue("busy");
  make_queue("a-much-longer-queue-name");
  const std::uint64_t before = epoch_ms();
  for (int i = 0; i < 3; ++i) send_ok(busy, "m");
  ASSERT_EQ(receive_now(busy, 1).size(), 1u);

  const json all = ok_json({"stats"}).at("Queues");
  ASSERT_EQ(all.size(), 2u) << all.dump();
  EXPECT_EQ(all[0].at("name"), "a-much-longer-queue-name");
  EXPECT_EQ(all[0].at("oldest_sent_timestamp_ms"), 0) << "an empty queue has no oldest message";
  EXPECT_EQ(all[1].at("name"), "busy");
  EXPECT_EQ((std::array{all[1].at("visible"), all[1].at("in_flight")}), (std::array<json, 2>{2, 1}));
  const std::uint64_t oldest = all[1].at("oldest_sent_timestamp_ms");
  EXPECT_GE(oldest + 1000, before) << "the first message sent, in flight or not";
  EXPECT_LE(oldest, epoch_ms());

  const std::string text = ok({"stats"});
  std::istringstream lines(text);
  std::string header, first, second;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(header.rfind("QUEUE ", 0), 0u) << text;
  for (const char* column : {"VISIBLE", "IN_FLIGHT", "DELAYED", "OLDEST", "SENT", "RECEIVED", "DELETED", "MEMORY"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column << "\n" << text;
  }
  std::istringstream row(second);
  std::string name, visible, in_flight, delayed;
  row >> name >> visible >> in_flight >> delayed;
  EXPECT_EQ((std::array{name, visible, in_flight, delayed}), (std::array<std::string, 4>{"busy", "2", "1", "0"}))
      << text;
  EXPECT_NE(first.find("a-much-longer-queue-name"), std::string::npos) << text;
}

// shmqctl top: the table again and again, with the rates between two
// refreshes; --json gives one object a refresh.
TEST_F(Shmqctl, TopShowsTheRatesBetweenRefreshes) {
  Queue q = make_queue("q");
  std::atomic<bool> done{false};
  std::thread sender([&] {
    while (!done) {
      send_ok(q, "m");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const ProcessResult top = shmqctl(ns(), {"top", "--interval", "0.5", "--count", "3", "--json"});
  done = true;
  sender.join();
  ASSERT_EQ(top.exit_code, 0) << top.err;
  std::istringstream lines(top.out);
  std::vector<json> refreshes;
  for (std::string line; std::getline(lines, line);) refreshes.push_back(json::parse(line));
  ASSERT_EQ(refreshes.size(), 3u) << top.out;
  EXPECT_FALSE(refreshes[0].at("Queues")[0].contains("sent_per_second")) << "no rate before a second sample";
  double sent_rate = 0;
  for (std::size_t i = 1; i < refreshes.size(); ++i) {
    const json& row = refreshes[i].at("Queues")[0];
    EXPECT_EQ(row.at("name"), "q");
    sent_rate = std::max(sent_rate, row.at("sent_per_second").get<double>());
    EXPECT_EQ(row.at("received_per_second"), 0.0);
  }
  EXPECT_GT(sent_rate, 0.0) << top.out;

  const ProcessResult text = shmqctl(ns(), {"top", "--interval", "0.1", "--count", "2"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("SENT/S"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("\x1b["), std::string::npos) << "no terminal codes when not on a terminal";
  EXPECT_EQ(shmqctl(ns(), {"top", "--interval", "0"}).exit_code, 2);
}

TEST_F(Shmqctl, FailuresExitOneNamingTheError) {
  make_queue("q", {{"MaximumMessageSize", "1024"}});
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases{
      {{"send", "missing", "x"}, "queue_does_not_exist"},
      {{"receive", "missing"}, "queue_does_not_exist"},
      {{"delete-queue", "missing"}, "queue_does_not_exist"},
      {{"get-attributes", "missing"}, "queue_does_not_exist"},
      {{"set-attributes", "missing", "-a", "DelaySeconds=1"}, "queue_does_not_exist"},
      {{"purge", "missing"}, "queue_does_not_exist"},
      {{"stats", "missing"}, "queue_does_not_exist"},
      {{"delete", "missing", std::string(40, '0')}, "queue_does_not_exist"},
      {{"create-queue", "bad name"}, "invalid_queue_name"},
      {{"create-queue", "q", "-a", "DelaySeconds=5"}, "queue_name_exists"},
      {{"set-attributes", "q", "-a", "Bogus=1"}, "invalid_attribute_name"},
      {{"set-attributes", "q", "-a", "DelaySeconds=901"}, "invalid_attribute_value"},
      {{"get-attributes", "q", "--names", "Bogus"}, "invalid_attribute_name"},
      {{"send", "q", std::string(1025, 'x')}, "message_too_large"},
      {{"send", "q", "x", "--delay", "901"}, "invalid_parameter_value"},
      {{"receive", "q", "--max", "11"}, "invalid_parameter_value"},
      {{"delete", "q", "garbage"}, "invalid_receipt_handle"},
      {{"change-visibility", "q", "garbage", "5"}, "invalid_receipt_handle"},
  };
  for (const Case& c : cases) {
    const ProcessResult r = shmqctl(ns(), c.args);
    EXPECT_EQ(r.exit_code, 1) << join(c.args) << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << join(c.args) << "\nstderr: " << r.err;
    EXPECT_EQ(r.err.find("usage:"), std::string::npos) << "a failure is not a usage error: " << r.err;
  }
}

TEST_F(Shmqctl, AValueOutOfRangeNamesItsParameterAndTheRange) {
  make_queue("q");
  const std::string handle(40, '0');
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"receive", "q", "--max", "11"}, "--max 11: MaxNumberOfMessages must be between 1 and 10"},
      {{"receive", "q", "--max", "0"}, "--max 0: MaxNumberOfMessages must be between 1 and 10"},
      {{"receive", "q", "--wait", "21"}, "--wait 21: WaitTimeSeconds must be between 0 and 20"},
      {{"receive", "q", "--visibility", "43201"}, "--visibility 43201: VisibilityTimeout must be between 0 and 43200"},
      {{"send", "q", "x", "--delay", "901"}, "--delay 901: DelaySeconds must be between 0 and 900"},
      {{"change-visibility", "q", handle, "43201"}, "SECONDS 43201: VisibilityTimeout must be between 0 and 43200"},
      {{"list-move-tasks", "q", "--max", "11"}, "--max 11: MaxResults must be between 1 and 10"},
      {{"start-move-task", "q", "--rate", "501"}, "--rate 501: MaxNumberOfMessagesPerSecond must be between 1 and 500"},
  };
  for (const auto& [args, text] : cases) {
    const ProcessResult r = shmqctl(ns(), args);
    EXPECT_EQ(r.exit_code, 1) << join(args) << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(text), std::string::npos) << join(args) << "\nstderr: " << r.err;
  }
  const ProcessResult received = shmqctl(ns(), {"receive", "q", "--max", "10", "--wait", "0"});
  EXPECT_EQ(received.exit_code, 0) << "the bounds themselves are accepted: " << received.err;
}

TEST(ShmqctlNoDaemon, NoDaemonExitsOne) {
  const std::string ns = unique_namespace();
  const ProcessResult r = shmqctl(ns, {"list-queues"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("daemon_unavailable"), std::string::npos) << r.err;
}

TEST_F(Shmqctl, BadUsageExitsTwoWithTheUsage) {
  make_queue("q");
  const std::vector<std::vector<std::string>> cases{
      {"frobnicate"},
      {"frobnicate", "q"},
      {"create-queue"},
      {"create-queue", "a", "b"},
      {"delete-queue"},
      {"list-queues", "extra"},
      {"get-attributes"},
      {"set-attributes", "q"},
      {"set-attributes", "q", "-a", "NoEqualsSign"},
      {"purge"},
      {"stats", "q", "extra"},
      {"send"},
      {"send", "q", "body", "extra"},
      {"receive", "q", "extra"},
      {"receive", "q", "--max", "lots"},
      {"delete", "q"},
      {"change-visibility", "q", std::string(40, '0')},
      {"change-visibility", "q", std::string(40, '0'), "soon"},
      {"list-queues", "--no-such-option"},
  };
  for (const auto& args : cases) {
    const ProcessResult r = shmqctl(ns(), args);
    EXPECT_EQ(r.exit_code, 2) << join(args) << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find("usage: shmqctl"), std::string::npos) << join(args) << "\nstderr: " << r.err;
  }
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"})) << "a usage error changed something";

  const ProcessResult bare = run_process({shmqctl_path()});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_NE((bare.out + bare.err).find("usage: shmqctl"), std::string::npos);
}

// A usage error is the caller's mistake whatever the queue or daemon: exit
// code 2 and the usage, not a failure of the operation.
TEST_F(Shmqctl, BadUsageIsReportedBeforeTheQueueIsLookedUp) {
  const std::vector<std::vector<std::string>> cases{
      {"frobnicate", "missing"},
      {"send", "missing", "body", "extra"},
      {"delete", "missing"},
      {"change-visibility", "missing", std::string(40, '0'), "soon"},
  };
  for (const auto& args : cases) {
    const ProcessResult r = shmqctl(ns(), args);
    EXPECT_EQ(r.exit_code, 2) << join(args) << "\nstderr: " << r.err;
  }
  const std::string no_daemon = unique_namespace();
  const ProcessResult r = shmqctl(no_daemon, {"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << "shmqctl --namespace " << no_daemon << " frobnicate\nstderr: " << r.err;
}

}  // namespace
}  // namespace shmq::test
