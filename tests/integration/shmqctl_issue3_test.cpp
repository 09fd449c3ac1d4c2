// shmqctl's commands for tags, permissions, dead-letter queues and message
// move tasks, and its send/receive options for FIFO queues, message
// attributes and trace headers: text and --json output, exit codes, and
// usage errors found before the daemon is asked anything.
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;

const std::string kArn = "arn:aws:sqs:us-east-1:000000000000:";

class ShmqctlAdmin : public ShmqctlTest {
 protected:
  void make_dead_letter_pair() {
    make_queue("dlq");
    make_queue("src", {{"RedrivePolicy", json{{"deadLetterTargetArn", kArn + "dlq"}, {"maxReceiveCount", 3}}.dump()}});
  }
};

TEST_F(ShmqctlAdmin, Tags) {
  EXPECT_EQ(ok_json({"create-queue", "q", "-t", "team=a", "-t", "env="}), (json{{"created", "q"}}));
  EXPECT_EQ(ok_json({"list-tags", "q"}), (json{{"Tags", {{"env", ""}, {"team", "a"}}}}));
  EXPECT_EQ(ok_json({"tag-queue", "q", "-t", "team=b", "--tag", "cost=12=34"}), (json{{"tagged", "q"}}));
  EXPECT_EQ(client_.list_queue_tags("q"), (Tags{{"cost", "12=34"}, {"env", ""}, {"team", "b"}}));
  EXPECT_EQ(ok({"list-tags", "q"}), "cost: 12=34\nenv: \nteam: b\n");
  EXPECT_EQ(ok_json({"untag-queue", "q", "-k", "env", "--key", "cost"}), (json{{"untagged", "q"}}));
  EXPECT_EQ(client_.list_queue_tags("q"), (Tags{{"team", "b"}}));
  EXPECT_EQ(ok({"untag-queue", "q", "-k", "team"}), "untagged: q\n");
  EXPECT_EQ(ok_json({"list-tags", "q"}), (json{{"Tags", json::object()}}));
  fails({"list-tags", "missing"}, "queue_does_not_exist");
  fails({"tag-queue", "q", "-t", std::string(129, 'k') + "=v"}, "invalid_parameter_value");
}

TEST_F(ShmqctlAdmin, Permissions) {
  make_queue("q");
  EXPECT_EQ(ok_json({"add-permission", "q", "Share", "--account", "111122223333", "--account", "444455556666",
                     "--action", "SendMessage", "--action", "ReceiveMessage"}),
            (json{{"added", "Share"}}));
  const json policy = json::parse(attribute("q", "Policy"));
  const json& s = policy.at("Statement").at(0);
  EXPECT_EQ(s.at("Sid"), "Share");
  EXPECT_EQ(s.at("Principal").at("AWS").size(), 2u);
  EXPECT_EQ(s.at("Action"), (json{"SQS:SendMessage", "SQS:ReceiveMessage"}));
  fails({"add-permission", "q", "Share", "--account", "111122223333", "--action", "SendMessage"},
        "invalid_parameter_value");
  fails({"add-permission", "q", "Other", "--account", "111122223333", "--action", "DeleteQueue"},
        "invalid_parameter_value");
  EXPECT_EQ(ok({"remove-permission", "q", "Share"}), "removed: Share\n");
  EXPECT_FALSE(client_.get_queue_attributes("q").count("Policy"));
  fails({"remove-permission", "q", "Share"}, "invalid_parameter_value");
}

TEST_F(ShmqctlAdmin, DeadLetterSourceQueuesAndAttributes) {
  make_dead_letter_pair();
  EXPECT_EQ(ok_json({"list-dead-letter-source-queues", "dlq"}), (json{{"queues", {"src"}}}));
  EXPECT_EQ(ok({"list-dead-letter-source-queues", "dlq"}), "src\n");
  EXPECT_EQ(ok_json({"list-dead-letter-source-queues", "src"}), (json{{"queues", json::array()}}));
  fails({"list-dead-letter-source-queues", "missing"}, "queue_does_not_exist");
  // The daemon's attributes through get-attributes and set-attributes.
  const json attributes = ok_json({"get-attributes", "src", "--names", "QueueArn", "--names", "RedrivePolicy"});
  EXPECT_EQ(attributes.at("QueueArn"), kArn + "src");
  EXPECT_EQ(attributes.at("RedrivePolicy"),
            json({{"deadLetterTargetArn", kArn + "dlq"}, {"maxReceiveCount", 3}}).dump());
  ok({"set-attributes", "src", "-a", "RedrivePolicy="});
  EXPECT_EQ(ok({"list-dead-letter-source-queues", "dlq"}), "");
  fails({"set-attributes", "src", "-a",
         "RedrivePolicy={\"deadLetterTargetArn\":\"" + kArn + "missing\",\"maxReceiveCount\":3}"},
        "invalid_attribute_value");
}

TEST_F(ShmqctlAdmin, MoveTasks) {
  make_dead_letter_pair();
  Queue dlq = client_.open_queue("dlq");
  make_queue("elsewhere");
  for (int i = 0; i < 2; ++i) send_ok(dlq, "m" + std::to_string(i));
  const json started = ok_json({"start-move-task", "dlq", "--destination", "elsewhere"});
  ASSERT_TRUE(started.contains("TaskHandle")) << started.dump();
  ASSERT_TRUE(eventually([&] { return client_.list_message_move_tasks(kArn + "dlq").at(0).status == "COMPLETED"; }));
  const json listed = ok_json({"list-move-tasks", "dlq"});
  ASSERT_EQ(listed.at("Results").size(), 1u) << listed.dump();
  const json& task = listed.at("Results")[0];
  EXPECT_EQ(task.at("Status"), "COMPLETED");
  EXPECT_EQ(task.at("SourceArn"), kArn + "dlq");
  EXPECT_EQ(task.at("DestinationArn"), kArn + "elsewhere");
  EXPECT_EQ(task.at("ApproximateNumberOfMessagesMoved"), 2);
  EXPECT_EQ(task.at("ApproximateNumberOfMessagesToMove"), 2);
  EXPECT_TRUE(task.contains("StartedTimestamp"));
  EXPECT_FALSE(task.contains("TaskHandle"));
  EXPECT_EQ(client_.open_queue("elsewhere").counts().visible, 2u);

  // A slow one, cancelled.
  for (int i = 0; i < 4; ++i) send_ok(dlq, "n" + std::to_string(i));
  const std::string handle =
      ok_json({"start-move-task", "dlq", "--destination", "elsewhere", "--rate", "1"}).at("TaskHandle");
  const std::string text = ok({"list-move-tasks", "dlq", "--max", "2"});
  EXPECT_NE(text.find("Status: RUNNING\n"), std::string::npos) << text;
  EXPECT_NE(text.find("TaskHandle: " + handle + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("MaxNumberOfMessagesPerSecond: 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Status: COMPLETED\n"), std::string::npos) << text;
  fails({"start-move-task", "dlq"}, "unsupported_operation");
  const json cancelled = ok_json({"cancel-move-task", handle});
  EXPECT_LT(cancelled.at("ApproximateNumberOfMessagesMoved").get<int>(), 4) << cancelled.dump();
  fails({"cancel-move-task", handle}, "unsupported_operation");
  fails({"cancel-move-task", "nonsense"}, "resource_not_found");
  fails({"start-move-task", "src"}, "invalid_parameter_value");
  fails({"start-move-task", "missing"}, "queue_does_not_exist");
  fails({"start-move-task", "dlq", "--rate", "501"}, "invalid_parameter_value");
  fails({"list-move-tasks", "dlq", "--max", "11"}, "invalid_parameter_value");
}

TEST_F(ShmqctlAdmin, FifoSendAndReceive) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}});
  const json sent = ok_json({"send", "q.fifo", "hello", "--group", "g1", "--dedup-id", "d1", "--trace-header",
                             "Root=1-5759e988-bd862e3fe1be46a994272793", "--message-attribute", "color=String:red",
                             "--message-attribute", "n=Number.int:42", "--message-attribute", "b=Binary:AAEC/w=="});
  ASSERT_TRUE(sent.contains("SequenceNumber")) << sent.dump();
  EXPECT_EQ(sent.at("SequenceNumber").get<std::string>().size(), 20u);
  // A duplicate within the window is accepted and names the original.
  EXPECT_EQ(ok_json({"send", "q.fifo", "hello again", "--group", "g1", "--dedup-id", "d1"}).at("MessageId"),
            sent.at("MessageId"));

  const json first = ok_json({"receive", "q.fifo", "--attempt-id", "try-1", "--visibility", "600"});
  ASSERT_EQ(first.at("Messages").size(), 1u) << first.dump();
  const json& m = first.at("Messages")[0];
  EXPECT_EQ(m.at("Body"), "hello");
  EXPECT_EQ(m.at("MessageGroupId"), "g1");
  EXPECT_EQ(m.at("MessageDeduplicationId"), "d1");
  EXPECT_EQ(m.at("SequenceNumber"), sent.at("SequenceNumber"));
  EXPECT_EQ(m.at("AWSTraceHeader"), "Root=1-5759e988-bd862e3fe1be46a994272793");
  EXPECT_EQ(m.at("MessageAttributes"), (json{{"b", {{"DataType", "Binary"}, {"BinaryValue", "AAEC/w=="}}},
                                             {"color", {{"DataType", "String"}, {"StringValue", "red"}}},
                                             {"n", {{"DataType", "Number.int"}, {"StringValue", "42"}}}}));
  // The same attempt id again returns the same receive.
  const json retry = ok_json({"receive", "q.fifo", "--attempt-id", "try-1"});
  ASSERT_EQ(retry.at("Messages").size(), 1u) << retry.dump();
  EXPECT_EQ(retry.at("Messages")[0].at("ReceiptHandle"), m.at("ReceiptHandle"));

  // Text output: one line per message attribute, as send takes them.
  const std::string handle = m.at("ReceiptHandle");
  ok({"change-visibility", "q.fifo", handle, "0"});
  const std::string text = ok({"receive", "q.fifo"});
  for (const char* line :
       {"MessageGroupId: g1\n", "MessageDeduplicationId: d1\n", "MessageAttribute.color: String:red\n",
        "MessageAttribute.n: Number.int:42\n", "MessageAttribute.b: Binary:AAEC/w==\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "in:\n" << text;
  }
  EXPECT_EQ(q.counts().in_flight, 1u);

  fails({"send", "q.fifo", "no group"}, "missing_parameter");
  fails({"send", "q.fifo", "x", "--group", "g", "--dedup-id", "d2", "--message-attribute", "x=Text:1"},
        "invalid_message_attribute");
}

TEST_F(ShmqctlAdmin, StandardSendWithAttributesReceivedByTheLibrary) {
  Queue q = make_queue("q");
  ok({"send", "q", "body", "--message-attribute", "bin=Binary:aGk=", "--message-attribute", "s=String:a:b=c"});
  const auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attributes.at("bin").binary_value, "hi");
  EXPECT_EQ(got[0].attributes.at("s").string_value, "a:b=c");
}

TEST_F(ShmqctlAdmin, BadUsageExitsTwoBeforeAskingTheDaemon) {
  Queue q = make_queue("q");
  const std::vector<std::vector<std::string>> cases{
      {"tag-queue", "q"},
      {"tag-queue", "q", "-t", "novalue"},
      {"tag-queue", "q", "-t", "=v"},
      {"tag-queue"},
      {"untag-queue", "q"},
      {"list-tags"},
      {"list-tags", "q", "extra"},
      {"add-permission", "q"},
      {"add-permission", "q", "L"},
      {"add-permission", "q", "L", "--account", "111122223333"},
      {"add-permission", "q", "L", "--action", "SendMessage"},
      {"remove-permission", "q"},
      {"remove-permission", "q", "L", "extra"},
      {"list-dead-letter-source-queues"},
      {"start-move-task"},
      {"start-move-task", "a", "b"},
      {"start-move-task", "q", "--rate", "fast"},
      {"cancel-move-task"},
      {"list-move-tasks"},
      {"list-move-tasks", "q", "--max", "many"},
      {"send", "q", "x", "--message-attribute", "noequals"},
      {"send", "q", "x", "--message-attribute", "a=String"},
      {"send", "q", "x", "--message-attribute", "=String:v"},
      {"send", "q", "x", "--message-attribute", "a=:v"},
      {"send", "q", "x", "--message-attribute", "a=Binary:not base64!"},
      {"send", "q", "x", "--message-attribute", "a=Binary:abc"},
      {"send", "q", "x", "--group"},
      {"receive", "q", "--attempt-id"},
  };
  for (const auto& args : cases) {
    const ProcessResult r = shmqctl(ns(), args);
    EXPECT_EQ(r.exit_code, 2) << join(args) << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find("usage: shmqctl"), std::string::npos) << join(args) << "\nstderr: " << r.err;
    // With no daemon at all, the same.
    const ProcessResult no_daemon = shmqctl(unique_namespace(), args);
    EXPECT_EQ(no_daemon.exit_code, 2) << join(args) << " without a daemon\nstderr: " << no_daemon.err;
  }
  EXPECT_TRUE(client_.list_queue_tags("q").empty());
  EXPECT_TRUE(receive_now(q).empty()) << "a usage error sent something";
}

}  // namespace
}  // namespace shmq::test
