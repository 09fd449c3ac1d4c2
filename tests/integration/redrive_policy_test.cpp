// RedrivePolicy and RedriveAllowPolicy as SQS validates them, what setting
// and removing a RedrivePolicy does to message flow, and
// ListDeadLetterSourceQueues.
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;
using RedrivePolicies = DaemonTest;

const std::string kArn = "arn:aws:sqs:us-east-1:000000000000:";

std::string redrive(const std::string& target, const json& max_receive_count) {
  return json{{"deadLetterTargetArn", kArn + target}, {"maxReceiveCount", max_receive_count}}.dump();
}

std::string allow_by_queue(const std::vector<std::string>& sources) {
  json arns = json::array();
  for (const auto& s : sources) arns.push_back(kArn + s);
  return json{{"redrivePermission", "byQueue"}, {"sourceQueueArns", arns}}.dump();
}

TEST_F(RedrivePolicies, ValidPoliciesAreReturnedInCanonicalForm) {
  client_.create_queue("dlq", {}, kSmallQueue);
  client_.create_queue("src", {}, kSmallQueue);
  client_.set_queue_attributes("src", {{"RedrivePolicy", redrive("dlq", "1000")}});  // a string, as SQS accepts
  EXPECT_EQ(attribute("src", "RedrivePolicy"), redrive("dlq", 1000));
  client_.set_queue_attributes(
      "src", {{"RedrivePolicy", " {\"maxReceiveCount\": 1, \"deadLetterTargetArn\": \"" + kArn + "dlq\"}"}});
  EXPECT_EQ(attribute("src", "RedrivePolicy"), redrive("dlq", 1));

  // Created with one, as well.
  client_.create_queue("src2", {{"RedrivePolicy", redrive("dlq", 5)}}, kSmallQueue);
  EXPECT_EQ(attribute("src2", "RedrivePolicy"), redrive("dlq", 5));
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("src2", {{"RedrivePolicy", redrive("dlq", 5)}}, kSmallQueue);
            }),
            "ok");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("src2", {{"RedrivePolicy", redrive("dlq", 6)}}, kSmallQueue);
            }),
            "queue_name_exists");
}

TEST_F(RedrivePolicies, InvalidRedrivePoliciesAreRefused) {
  client_.create_queue("dlq", {}, kSmallQueue);
  client_.create_queue("dlq.fifo", {{"FifoQueue", "true"}}, kSmallQueue);
  client_.create_queue("src", {}, kSmallQueue);
  client_.create_queue("src.fifo", {{"FifoQueue", "true"}}, kSmallQueue);
  const std::vector<std::pair<std::string, std::string>> bad{
      {"src", "not json"},
      {"src", "[]"},
      {"src", json{{"deadLetterTargetArn", kArn + "dlq"}}.dump()},  // no maxReceiveCount
      {"src", json{{"maxReceiveCount", 3}}.dump()},                 // no target
      {"src", redrive("dlq", 0)},
      {"src", redrive("dlq", 1001)},
      {"src", redrive("dlq", -1)},
      {"src", redrive("dlq", 2.5)},
      {"src", redrive("dlq", "ten")},
      {"src", redrive("missing", 3)},                                                // the target must exist
      {"src", json{{"deadLetterTargetArn", "dlq"}, {"maxReceiveCount", 3}}.dump()},  // not an ARN
      {"src", json{{"deadLetterTargetArn", "arn:aws:sqs:eu-west-1:000000000000:dlq"}, {"maxReceiveCount", 3}}.dump()},
      {"src", json{{"deadLetterTargetArn", kArn + "dlq"}, {"maxReceiveCount", 3}, {"extra", 1}}.dump()},
      {"src", redrive("dlq.fifo", 3)},  // a standard queue's DLQ is standard
      {"src.fifo", redrive("dlq", 3)},  // a FIFO queue's DLQ is FIFO
  };
  for (const auto& [queue, policy] : bad) {
    EXPECT_EQ(thrown_by([&] {
                client_.set_queue_attributes(queue, {{"RedrivePolicy", policy}});
              }),
              "invalid_attribute_value")
        << queue << ": " << policy;
    const std::string fresh = queue == "src" ? "fresh" : "fresh.fifo";
    Attributes attributes{{"RedrivePolicy", policy}};
    if (queue != "src") attributes["FifoQueue"] = "true";
    EXPECT_EQ(thrown_by([&] { client_.create_queue(fresh, attributes, kSmallQueue); }), "invalid_attribute_value")
        << fresh << ": " << policy;
    EXPECT_FALSE(client_.get_queue_attributes(queue).count("RedrivePolicy"));
  }
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"dlq", "dlq.fifo", "src", "src.fifo"}));
  // The matching types are accepted.
  client_.set_queue_attributes("src.fifo", {{"RedrivePolicy", redrive("dlq.fifo", 3)}});
  client_.set_queue_attributes("src", {{"RedrivePolicy", redrive("dlq", 3)}});
}

TEST_F(RedrivePolicies, RedriveAllowPolicyDecidesWhoMayUseTheQueue) {
  client_.create_queue("dlq", {{"RedriveAllowPolicy", R"({"redrivePermission":"denyAll"})"}}, kSmallQueue);
  client_.create_queue("a", {}, kSmallQueue);
  client_.create_queue("b", {}, kSmallQueue);
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("a", {{"RedrivePolicy", redrive("dlq", 2)}});
            }),
            "invalid_attribute_value");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("c", {{"RedrivePolicy", redrive("dlq", 2)}}, kSmallQueue);
            }),
            "invalid_attribute_value");

  client_.set_queue_attributes("dlq", {{"RedriveAllowPolicy", allow_by_queue({"a"})}});
  EXPECT_EQ(attribute("dlq", "RedriveAllowPolicy"), allow_by_queue({"a"}));
  client_.set_queue_attributes("a", {{"RedrivePolicy", redrive("dlq", 2)}});
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("b", {{"RedrivePolicy", redrive("dlq", 2)}});
            }),
            "invalid_attribute_value");
  EXPECT_FALSE(client_.get_queue_attributes("b").count("RedrivePolicy"));

  client_.set_queue_attributes("dlq", {{"RedriveAllowPolicy", R"({"redrivePermission":"allowAll"})"}});
  client_.set_queue_attributes("b", {{"RedrivePolicy", redrive("dlq", 2)}});
  // "" removes it: everyone may use the queue again.
  client_.set_queue_attributes("dlq", {{"RedriveAllowPolicy", R"({"redrivePermission":"denyAll"})"}});
  client_.set_queue_attributes("dlq", {{"RedriveAllowPolicy", ""}});
  EXPECT_FALSE(client_.get_queue_attributes("dlq").count("RedriveAllowPolicy"));
  client_.create_queue("c", {{"RedrivePolicy", redrive("dlq", 2)}}, kSmallQueue);
}

TEST_F(RedrivePolicies, InvalidRedriveAllowPoliciesAreRefused) {
  client_.create_queue("q", {}, kSmallQueue);
  std::vector<std::string> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back("s" + std::to_string(i));
  std::vector<std::string> ten(eleven.begin(), eleven.end() - 1);
  const std::vector<std::string> bad{
      "not json",
      R"({})",
      R"({"redrivePermission":"someQueues"})",
      R"({"redrivePermission":"byQueue"})",
      R"({"redrivePermission":"byQueue","sourceQueueArns":[]})",
      allow_by_queue(eleven),
      R"({"redrivePermission":"allowAll","sourceQueueArns":[")" + kArn + R"(a"]})",
      R"({"redrivePermission":"denyAll","sourceQueueArns":[")" + kArn + R"(a"]})",
      R"({"redrivePermission":"byQueue","sourceQueueArns":["not-an-arn"]})",
      R"({"redrivePermission":"byQueue","sourceQueueArns":")" + kArn + R"(a"})",
      R"({"redrivePermission":"allowAll","other":1})",
  };
  for (const std::string& policy : bad) {
    EXPECT_EQ(thrown_by([&] {
                client_.set_queue_attributes("q", {{"RedriveAllowPolicy", policy}});
              }),
              "invalid_attribute_value")
        << policy;
  }
  EXPECT_FALSE(client_.get_queue_attributes("q").count("RedriveAllowPolicy"));
  client_.set_queue_attributes("q", {{"RedriveAllowPolicy", allow_by_queue(ten)}});
  EXPECT_EQ(attribute("q", "RedriveAllowPolicy"), allow_by_queue(ten));
}

TEST_F(RedrivePolicies, SettingAndRemovingThePolicyStartsAndStopsDeadLettering) {
  Queue dlq = make_queue("dlq");
  Queue src = make_queue("src");
  // A visibility timeout of 0 makes the message due at once. With a
  // policy, the reaper may move it before the receive has copied it out:
  // then the receive returns nothing, and the message is in the DLQ anyway.
  const auto receive_and_drop = [&] {
    std::vector<Message> got;
    EXPECT_EQ(name_of(src.receive(got, {.max_messages = 1, .visibility_timeout = 0, .wait_time = 0ms})), "ok");
    return got.size();
  };
  send_ok(src, "one");
  client_.set_queue_attributes("src", {{"RedrivePolicy", redrive("dlq", 1)}});
  (void)receive_and_drop();
  ASSERT_TRUE(eventually([&] { return dlq.counts().visible == 1; })) << "not moved to the dead-letter queue";
  EXPECT_EQ(src.counts().visible + src.counts().in_flight, 0u);

  client_.set_queue_attributes("src", {{"RedrivePolicy", ""}});
  EXPECT_FALSE(client_.get_queue_attributes("src").count("RedrivePolicy"));
  send_ok(src, "two");
  EXPECT_EQ(receive_and_drop(), 1u);
  // Due again at once; the reaper makes it visible and it is received a
  // second time: without a policy it stays.
  std::vector<Message> again;
  ASSERT_TRUE(eventually([&] {
    return !src.receive(again, {.max_messages = 1, .visibility_timeout = 0, .wait_time = 0ms}) && again.size() == 1;
  }));
  EXPECT_EQ(again[0].receive_count, 2u);
  ASSERT_TRUE(eventually([&] { return src.counts().visible == 1; }));
  EXPECT_EQ(dlq.counts().visible, 1u);
}

TEST_F(RedrivePolicies, ListDeadLetterSourceQueues) {
  client_.create_queue("dlq", {}, kSmallQueue);
  client_.create_queue("other-dlq", {}, kSmallQueue);
  EXPECT_TRUE(client_.list_dead_letter_source_queues("dlq").empty());
  client_.create_queue("b-src", {{"RedrivePolicy", redrive("dlq", 3)}}, kSmallQueue);
  client_.create_queue("a-src", {}, kSmallQueue);
  client_.set_queue_attributes("a-src", {{"RedrivePolicy", redrive("dlq", 3)}});
  client_.create_queue("c-src", {{"RedrivePolicy", redrive("other-dlq", 3)}}, kSmallQueue);
  client_.create_queue("plain", {}, kSmallQueue);
  EXPECT_EQ(client_.list_dead_letter_source_queues("dlq"), (std::vector<std::string>{"a-src", "b-src"}));
  EXPECT_EQ(client_.list_dead_letter_source_queues("other-dlq"), (std::vector<std::string>{"c-src"}));

  // Pointing a source elsewhere, removing its policy or deleting it drops it.
  client_.set_queue_attributes("b-src", {{"RedrivePolicy", redrive("other-dlq", 3)}});
  EXPECT_EQ(client_.list_dead_letter_source_queues("dlq"), (std::vector<std::string>{"a-src"}));
  EXPECT_EQ(client_.list_dead_letter_source_queues("other-dlq"), (std::vector<std::string>{"b-src", "c-src"}));
  client_.set_queue_attributes("a-src", {{"RedrivePolicy", ""}});
  client_.delete_queue("c-src");
  EXPECT_TRUE(client_.list_dead_letter_source_queues("dlq").empty());
  EXPECT_EQ(client_.list_dead_letter_source_queues("other-dlq"), (std::vector<std::string>{"b-src"}));
  EXPECT_EQ(thrown_by([&] { client_.list_dead_letter_source_queues("missing"); }), "queue_does_not_exist");
}

}  // namespace
}  // namespace shmq::test
