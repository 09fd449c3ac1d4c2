// The daemon's per-queue metadata: the attributes it keeps itself (Policy,
// RedrivePolicy, RedriveAllowPolicy, encryption settings, QueueArn) and
// tags, kept in the segment's metadata area so that a daemon killed with
// SIGKILL and restarted has them all, and still acts on them.
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "segment.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;
using QueueMetadata = DaemonTest;

constexpr const char* kArnPrefix = "arn:aws:sqs:us-east-1:000000000000:";

std::string redrive_policy(const std::string& target, int max_receive_count) {
  return json{{"deadLetterTargetArn", kArnPrefix + target}, {"maxReceiveCount", max_receive_count}}.dump();
}

// Receives one message with a visibility timeout of 0, so that it is due at
// once: past maxReceiveCount, the reaper moves it to the dead-letter queue
// (perhaps before this receive copied it out: then it returns nothing).
void receive_and_drop(Queue& queue) {
  std::vector<Message> got;
  ASSERT_EQ(name_of(queue.receive(got, {.max_messages = 1, .visibility_timeout = 0, .wait_time = 0ms})), "ok");
}

TEST(QueueMetadataRestart, EverythingSurvivesSigkillAndStaysInEffect) {
  DaemonProcess daemon(unique_namespace());
  const std::string allow =
      json{{"redrivePermission", "byQueue"}, {"sourceQueueArns", {kArnPrefix + std::string("src")}}}.dump();
  const std::string policy = R"({"Version": "2012-10-17", "Statement": []})";
  const Tags tags{{"team", "payments"}, {"env", ""}};
  Attributes before;
  {
    Client client(Client::Options{daemon.ns()});
    client.create_queue("dlq", {{"RedriveAllowPolicy", allow}}, kSmallQueue);
    client.create_queue("src",
                        {{"RedrivePolicy", redrive_policy("dlq", 1)},
                         {"Policy", policy},
                         {"KmsMasterKeyId", "alias/aws/sqs"},
                         {"KmsDataKeyReusePeriodSeconds", "600"}},
                        kSmallQueue, tags);
    client.add_permission("src", "Share", {"111122223333"}, {"SendMessage"});
    before = client.get_queue_attributes("src");
    EXPECT_EQ(before.at("KmsMasterKeyId"), "alias/aws/sqs");
  }
  daemon.kill_hard();
  daemon.start();

  Client client(Client::Options{daemon.ns()});
  const Attributes after = client.get_queue_attributes("src");
  for (const char* name : {"RedrivePolicy", "Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
                           "SqsManagedSseEnabled", "QueueArn"}) {
    ASSERT_TRUE(after.count(name)) << name << " lost in the restart";
    EXPECT_EQ(after.at(name), before.at(name)) << name;
  }
  EXPECT_EQ(client.list_queue_tags("src"), tags);
  EXPECT_EQ(client.get_queue_attributes("dlq", {"RedriveAllowPolicy"}).at("RedriveAllowPolicy"), allow);
  EXPECT_EQ(client.list_dead_letter_source_queues("dlq"), (std::vector<std::string>{"src"}));

  // The redrive policy acts: a message received once and dropped moves.
  Queue src = client.open_queue("src");
  Queue dlq = client.open_queue("dlq");
  SendResult sent;
  ASSERT_EQ(name_of(src.send("to the dlq", sent)), "ok");
  receive_and_drop(src);
  ASSERT_TRUE(eventually([&] { return dlq.counts().visible == 1; })) << "the restarted daemon forgot the RedrivePolicy";
  std::vector<Message> got;
  ASSERT_EQ(name_of(dlq.receive(got, {.max_messages = 1, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message_id, sent.message_id);
  EXPECT_EQ(got[0].dead_letter_source_arn, kArnPrefix + std::string("src"));

  // And the dead-letter queue's RedriveAllowPolicy still refuses others.
  client.create_queue("other", {}, kSmallQueue);
  EXPECT_EQ(thrown_by([&] {
              client.set_queue_attributes("other", {{"RedrivePolicy", redrive_policy("dlq", 3)}});
            }),
            "invalid_attribute_value");
}

// The metadata area as a daemon killed in the middle of a write leaves it:
// the inactive copy written (perhaps partly), the active index not flipped.
TEST(QueueMetadataRestart, AWriteCutShortLeavesTheOldDocument) {
  DaemonProcess daemon(unique_namespace());
  {
    Client client(Client::Options{daemon.ns()});
    client.create_queue("q", {}, kSmallQueue, {{"kept", "yes"}});
  }
  daemon.kill_hard();
  {
    detail::Segment segment;
    ASSERT_EQ(name_of(detail::Segment::open(detail::Segment::shm_name(daemon.ns(), "q"), segment)), "ok");
    detail::SegmentHeader& h = segment.header();
    const std::uint32_t inactive = detail::atom(h.metadata_active).load() ^ 1u;
    const std::string torn = R"({"attributes":{},"tags":{"torn")";
    char* area = reinterpret_cast<char*>(&h) + h.metadata_offset + inactive * detail::kMetadataBytes;
    std::memcpy(area, torn.data(), torn.size());
    detail::atom(h.metadata_bytes[inactive]).store(static_cast<std::uint32_t>(torn.size()));
  }
  daemon.start();
  {
    Client client(Client::Options{daemon.ns()});
    EXPECT_EQ(client.list_queue_tags("q"), (Tags{{"kept", "yes"}}));
  }
  // A write that got as far as the flip is the new document.
  daemon.kill_hard();
  {
    detail::Segment segment;
    ASSERT_EQ(name_of(detail::Segment::open(detail::Segment::shm_name(daemon.ns(), "q"), segment)), "ok");
    detail::SegmentHeader& h = segment.header();
    const std::uint32_t inactive = detail::atom(h.metadata_active).load() ^ 1u;
    const std::string whole = R"({"attributes":{},"tags":{"flipped":"1"}})";
    char* area = reinterpret_cast<char*>(&h) + h.metadata_offset + inactive * detail::kMetadataBytes;
    std::memcpy(area, whole.data(), whole.size());
    detail::atom(h.metadata_bytes[inactive]).store(static_cast<std::uint32_t>(whole.size()));
    detail::atom(h.metadata_active).store(inactive);
  }
  daemon.start();
  Client client(Client::Options{daemon.ns()});
  EXPECT_EQ(client.list_queue_tags("q"), (Tags{{"flipped", "1"}}));
  // The daemon writes on from there, into the other copy.
  client.tag_queue("q", {{"after", "2"}});
  EXPECT_EQ(client.list_queue_tags("q"), (Tags{{"after", "2"}, {"flipped", "1"}}));
}

TEST(QueueMetadataArn, QueueArnFollowsTheDaemonsRegionAndAccount) {
  DaemonProcess daemon(unique_namespace(), {"--region", "eu-west-1", "--account-id", "123456789012"});
  Client client(Client::Options{daemon.ns()});
  client.create_queue("q", {}, kSmallQueue);
  EXPECT_EQ(client.get_queue_attributes("q", {"QueueArn"}).at("QueueArn"), "arn:aws:sqs:eu-west-1:123456789012:q");
  // A RedrivePolicy names queues by this daemon's ARNs only.
  client.create_queue("dlq", {}, kSmallQueue);
  EXPECT_EQ(thrown_by([&] {
              client.set_queue_attributes("q", {{"RedrivePolicy", redrive_policy("dlq", 2)}});
            }),
            "invalid_attribute_value");
  client.set_queue_attributes(
      "q",
      {{"RedrivePolicy", R"({"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:123456789012:dlq","maxReceiveCount":2})"}});
  EXPECT_EQ(client.list_dead_letter_source_queues("dlq"), (std::vector<std::string>{"q"}));
}

TEST_F(QueueMetadata, QueueArnIsReadOnlyAndInAll) {
  client_.create_queue("q", {}, kSmallQueue);
  const Attributes all = client_.get_queue_attributes("q");
  EXPECT_EQ(all.at("QueueArn"), kArnPrefix + std::string("q"));
  EXPECT_EQ(all.at("SqsManagedSseEnabled"), "true") << "on by default, as on SQS since 2022";
  for (const char* unset :
       {"Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"}) {
    EXPECT_FALSE(all.count(unset)) << unset << " is returned but was never set";
  }
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"QueueArn", "arn:aws:sqs:x:1:q"}});
            }),
            "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("q2", {{"QueueArn", "arn:aws:sqs:x:1:q2"}}, kSmallQueue);
            }),
            "invalid_attribute_name");
  // Asked for by name, an unset attribute is left out, as SQS leaves it out.
  EXPECT_EQ(client_.get_queue_attributes("q", {"Policy", "DelaySeconds"}), (Attributes{{"DelaySeconds", "0"}}));
}

TEST_F(QueueMetadata, PolicyIsStoredAsGiven) {
  client_.create_queue("q", {}, kSmallQueue);
  const std::string policy = "{ \"Version\" : \"2012-10-17\",\n  \"Statement\": [] }";
  client_.set_queue_attributes("q", {{"Policy", policy}});
  EXPECT_EQ(attribute("q", "Policy"), policy);
  for (const char* bad : {"not json", "[1, 2]", "{\"unterminated\": "}) {
    EXPECT_EQ(thrown_by([&] {
                client_.set_queue_attributes("q", {{"Policy", bad}});
              }),
              "invalid_attribute_value")
        << bad;
  }
  EXPECT_EQ(attribute("q", "Policy"), policy);
  client_.set_queue_attributes("q", {{"Policy", ""}});
  EXPECT_FALSE(client_.get_queue_attributes("q").count("Policy"));
}

TEST_F(QueueMetadata, EncryptionSettingsAreStoredAndReturned) {
  client_.create_queue("q", {}, kSmallQueue);
  client_.set_queue_attributes("q", {{"SqsManagedSseEnabled", "true"}});
  EXPECT_EQ(attribute("q", "SqsManagedSseEnabled"), "true");

  // A KMS key replaces SQS-managed encryption; its reuse period defaults to 300.
  client_.set_queue_attributes("q", {{"KmsMasterKeyId", "alias/mine"}});
  Attributes got = client_.get_queue_attributes("q");
  EXPECT_EQ(got.at("KmsMasterKeyId"), "alias/mine");
  EXPECT_EQ(got.at("SqsManagedSseEnabled"), "false");
  EXPECT_EQ(got.at("KmsDataKeyReusePeriodSeconds"), "300");
  for (const char* ok : {"60", "86400"}) {
    client_.set_queue_attributes("q", {{"KmsDataKeyReusePeriodSeconds", ok}});
    EXPECT_EQ(attribute("q", "KmsDataKeyReusePeriodSeconds"), ok);
  }
  const std::vector<std::pair<std::string, std::string>> bad{
      {"KmsDataKeyReusePeriodSeconds", "59"},
      {"KmsDataKeyReusePeriodSeconds", "86401"},
      {"KmsDataKeyReusePeriodSeconds", "5m"},
      {"SqsManagedSseEnabled", "yes"},
  };
  for (const auto& [name, value] : bad) {
    EXPECT_EQ(thrown_by([&] {
                client_.set_queue_attributes("q", {{name, value}});
              }),
              "invalid_attribute_value")
        << name << "=" << value;
  }
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"SqsManagedSseEnabled", "true"}, {"KmsMasterKeyId", "alias/x"}});
            }),
            "invalid_attribute_value");
  // Back to SQS-managed encryption: the key goes.
  client_.set_queue_attributes("q", {{"SqsManagedSseEnabled", "True"}});  // booleans in any case
  got = client_.get_queue_attributes("q");
  EXPECT_EQ(got.at("SqsManagedSseEnabled"), "true");
  EXPECT_FALSE(got.count("KmsMasterKeyId"));
  // A key cleared takes its reuse period with it.
  client_.set_queue_attributes("q", {{"KmsMasterKeyId", "alias/mine"}, {"KmsDataKeyReusePeriodSeconds", "600"}});
  client_.set_queue_attributes("q", {{"KmsMasterKeyId", ""}});
  got = client_.get_queue_attributes("q");
  EXPECT_FALSE(got.count("KmsMasterKeyId"));
  EXPECT_FALSE(got.count("KmsDataKeyReusePeriodSeconds"));
}

TEST_F(QueueMetadata, ARefusedSetChangesNothing) {
  client_.create_queue("q", {{"VisibilityTimeout", "11"}}, kSmallQueue);
  client_.set_queue_attributes("q", {{"Policy", "{}"}});
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"VisibilityTimeout", "12"},
                                                 {"Policy", "{\"a\":1}"},
                                                 {"RedrivePolicy", redrive_policy("missing", 1)}});
            }),
            "invalid_attribute_value");
  EXPECT_EQ(attribute("q", "VisibilityTimeout"), "11");
  EXPECT_EQ(attribute("q", "Policy"), "{}");
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"Policy", "{\"a\":2}"}, {"DelaySeconds", "901"}});
            }),
            "invalid_attribute_value");
  EXPECT_EQ(attribute("q", "Policy"), "{}");
  // A refused create leaves no queue behind.
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("fresh", {{"Policy", "nope"}}, kSmallQueue);
            }),
            "invalid_attribute_value");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
}

TEST_F(QueueMetadata, MetadataLargerThanItsAreaIsRefused) {
  // A Policy cannot fill the area (8 KiB at most); a KMS key id, any text, can.
  client_.create_queue("q", {}, kSmallQueue);
  client_.set_queue_attributes("q", {{"KmsMasterKeyId", "k"}});
  const std::string huge(70 * 1024, 'x');
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"KmsMasterKeyId", huge}});
            }),
            "invalid_attribute_value");
  EXPECT_EQ(attribute("q", "KmsMasterKeyId"), "k");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("big", {{"KmsMasterKeyId", huge}}, kSmallQueue);
            }),
            "invalid_attribute_value");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
  // Just under the limit fits.
  const std::string large(60 * 1024, 'x');
  client_.set_queue_attributes("q", {{"KmsMasterKeyId", large}});
  EXPECT_EQ(attribute("q", "KmsMasterKeyId"), large);
}

// SQS's quota: a Policy of 8,192 bytes at most, refused past it with
// OverLimit; the same from the control socket as from the bridge.
TEST_F(QueueMetadata, PolicyOverItsQuotaIsRefusedAsOverLimit) {
  const auto policy_of_size = [](std::size_t size) {
    const std::string head = R"({"Version":"2012-10-17","Id":")", tail = R"(","Statement":[]})";
    return head + std::string(size - head.size() - tail.size(), 'p') + tail;
  };
  client_.create_queue("q", {}, kSmallQueue);
  const std::string at_limit = policy_of_size(kMaxPolicyBytes);
  client_.set_queue_attributes("q", {{"Policy", at_limit}});
  EXPECT_EQ(attribute("q", "Policy"), at_limit);
  try {
    client_.set_queue_attributes("q", {{"Policy", policy_of_size(kMaxPolicyBytes + 1)}});
    ADD_FAILURE() << "a Policy over the quota was taken";
  } catch (const std::system_error& e) {
    EXPECT_EQ(name_of(e.code()), "over_limit");
    EXPECT_NE(std::string(e.what()).find(kPolicyTooLarge), std::string::npos) << e.what();
  }
  EXPECT_EQ(attribute("q", "Policy"), at_limit);
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("big", {{"Policy", policy_of_size(kMaxPolicyBytes + 1)}}, kSmallQueue);
            }),
            "over_limit");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
}

TEST_F(QueueMetadata, CreateIsIdempotentForDaemonAttributesToo) {
  const Attributes attributes{{"Policy", "{}"}, {"SqsManagedSseEnabled", "true"}};
  client_.create_queue("q", attributes, kSmallQueue, {{"a", "1"}});
  EXPECT_EQ(thrown_by([&] { client_.create_queue("q", attributes, kSmallQueue, {{"b", "2"}}); }), "ok");
  EXPECT_EQ(client_.list_queue_tags("q"), (Tags{{"a", "1"}})) << "an existing queue's tags changed";
  EXPECT_EQ(thrown_by([&] { client_.create_queue("q", {{"Policy", "{\"x\":1}"}}, kSmallQueue); }), "queue_name_exists");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("q", {{"SqsManagedSseEnabled", "false"}}, kSmallQueue);
            }),
            "queue_name_exists");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("q", {{"KmsMasterKeyId", "k"}}, kSmallQueue); }), "queue_name_exists");
}

}  // namespace
}  // namespace shmq::test
