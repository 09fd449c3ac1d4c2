// Queue administration through the daemon: create, list, delete, attributes,
// and the errors an administrator sees.
#include <string>
#include <thread>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using QueueAdmin = DaemonTest;

TEST_F(QueueAdmin, CreateListAndDelete) {
  EXPECT_TRUE(client_.list_queues().empty());
  client_.create_queue("orders", {}, kSmallQueue);
  client_.create_queue("orders-dlq", {}, kSmallQueue);
  client_.create_queue("billing", {}, kSmallQueue);

  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"billing", "orders", "orders-dlq"}));
  EXPECT_EQ(client_.list_queues("orders"), (std::vector<std::string>{"orders", "orders-dlq"}));
  EXPECT_EQ(client_.list_queues("orders-"), (std::vector<std::string>{"orders-dlq"}));
  EXPECT_TRUE(client_.list_queues("x").empty());

  client_.delete_queue("orders");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"billing", "orders-dlq"}));
  EXPECT_EQ(thrown_by([&] { client_.open_queue("orders"); }), "queue_does_not_exist");

  // The name can be used again, for a queue that starts empty.
  Queue orders = make_queue("orders");
  EXPECT_EQ(orders.counts().visible, 0u);
}

TEST_F(QueueAdmin, CreateIsIdempotentForTheSameAttributes) {
  client_.create_queue("q", {{"VisibilityTimeout", "5"}}, kSmallQueue);
  Queue q = client_.open_queue("q");
  send_ok(q, "kept");

  EXPECT_EQ(thrown_by([&] { client_.create_queue("q", {{"VisibilityTimeout", "5"}}, kSmallQueue); }), "ok");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
  EXPECT_EQ(q.counts().visible, 1u) << "creating an existing queue again must not reset it";

  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("q", {{"VisibilityTimeout", "6"}}, kSmallQueue);
            }),
            "queue_name_exists");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("q", {{"DelaySeconds", "3"}}, kSmallQueue); }), "queue_name_exists");
  EXPECT_EQ(attribute("q", "VisibilityTimeout"), "5");
  EXPECT_EQ(attribute("q", "DelaySeconds"), "0");
}

TEST_F(QueueAdmin, InvalidQueueNamesAreRefused) {
  EXPECT_EQ(thrown_by([&] { client_.create_queue(""); }), "invalid_queue_name");
  EXPECT_EQ(thrown_by([&] { client_.create_queue(std::string(81, 'a')); }), "invalid_queue_name");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("has space"); }), "invalid_queue_name");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("a/b"); }), "invalid_queue_name");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("dots.are.not.allowed"); }), "invalid_queue_name");
  EXPECT_TRUE(client_.list_queues().empty());

  const std::string longest(80, 'z');
  EXPECT_EQ(thrown_by([&] { client_.create_queue(longest, {}, kSmallQueue); }), "ok");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("Az09-_", {}, kSmallQueue); }), "ok");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"Az09-_", longest}));
}

TEST_F(QueueAdmin, AttributesRoundTrip) {
  client_.create_queue("q", {}, kSmallQueue);
  const Attributes defaults = client_.get_queue_attributes("q");
  EXPECT_EQ(defaults.at("VisibilityTimeout"), "30");
  EXPECT_EQ(defaults.at("MaximumMessageSize"), "1048576");
  EXPECT_EQ(defaults.at("ReceiveMessageWaitTimeSeconds"), "0");
  EXPECT_EQ(defaults.at("MessageRetentionPeriod"), "345600");
  EXPECT_EQ(defaults.at("DelaySeconds"), "0");

  const Attributes wanted{{"VisibilityTimeout", "43200"},
                          {"MaximumMessageSize", "1024"},
                          {"ReceiveMessageWaitTimeSeconds", "20"},
                          {"MessageRetentionPeriod", "60"},
                          {"DelaySeconds", "900"}};
  client_.set_queue_attributes("q", wanted);
  Attributes got = client_.get_queue_attributes("q");
  for (const auto& [name, value] : wanted) EXPECT_EQ(got.at(name), value) << name;

  // The lower ends of the ranges, one attribute at a time.
  const Attributes lows{{"VisibilityTimeout", "0"},
                        {"MaximumMessageSize", "1048576"},
                        {"ReceiveMessageWaitTimeSeconds", "0"},
                        {"MessageRetentionPeriod", "1209600"},
                        {"DelaySeconds", "0"}};
  for (const auto& [name, value] : lows) {
    client_.set_queue_attributes("q", {{name, value}});
    EXPECT_EQ(attribute("q", name), value) << name;
  }

  // Attributes given at creation are kept.
  client_.create_queue("q2", {{"VisibilityTimeout", "7"}, {"DelaySeconds", "2"}}, kSmallQueue);
  EXPECT_EQ(attribute("q2", "VisibilityTimeout"), "7");
  EXPECT_EQ(attribute("q2", "DelaySeconds"), "2");
}

TEST_F(QueueAdmin, OutOfRangeAttributeValuesAreRefused) {
  client_.create_queue("q", {{"VisibilityTimeout", "11"}}, kSmallQueue);
  const std::vector<std::pair<std::string, std::string>> bad{
      {"VisibilityTimeout", "43201"},    {"VisibilityTimeout", "-1"},
      {"VisibilityTimeout", "abc"},      {"VisibilityTimeout", ""},
      {"VisibilityTimeout", "10s"},      {"MaximumMessageSize", "1023"},
      {"MaximumMessageSize", "1048577"}, {"ReceiveMessageWaitTimeSeconds", "21"},
      {"MessageRetentionPeriod", "59"},  {"MessageRetentionPeriod", "1209601"},
      {"DelaySeconds", "901"},
  };
  for (const auto& [name, value] : bad) {
    EXPECT_EQ(thrown_by([&] {
                client_.set_queue_attributes("q", {{name, value}});
              }),
              "invalid_attribute_value")
        << name << "=" << value;
    EXPECT_EQ(thrown_by([&] {
                client_.create_queue("fresh", {{name, value}}, kSmallQueue);
              }),
              "invalid_attribute_value")
        << name << "=" << value;
  }
  // A refused set changes nothing, not even the attributes that were valid.
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"VisibilityTimeout", "12"}, {"DelaySeconds", "901"}});
            }),
            "invalid_attribute_value");
  EXPECT_EQ(attribute("q", "VisibilityTimeout"), "11");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
}

TEST_F(QueueAdmin, UnknownAttributeNamesAreRefused) {
  client_.create_queue("q", {}, kSmallQueue);
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"NoSuchAttribute", "1"}});
            }),
            "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"visibilitytimeout", "1"}});
            }),
            "invalid_attribute_name");
  // Read-only attributes cannot be set.
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"CreatedTimestamp", "1"}});
            }),
            "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("q", {{"ApproximateNumberOfMessages", "1"}});
            }),
            "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] {
              client_.create_queue("other", {{"NoSuchAttribute", "1"}}, kSmallQueue);
            }),
            "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] { client_.get_queue_attributes("q", {"NoSuchAttribute"}); }), "invalid_attribute_name");
  EXPECT_EQ(thrown_by([&] {
              client_.get_queue_attributes("q", {"DelaySeconds", "NoSuchAttribute"});
            }),
            "invalid_attribute_name");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
}

TEST_F(QueueAdmin, GetReturnsTheNamedAttributesOnly) {
  client_.create_queue("q", {}, kSmallQueue);
  const Attributes got = client_.get_queue_attributes("q", {"DelaySeconds", "VisibilityTimeout"});
  EXPECT_EQ(got, (Attributes{{"DelaySeconds", "0"}, {"VisibilityTimeout", "30"}}));

  const Attributes all = client_.get_queue_attributes("q");
  for (const char* name :
       {"VisibilityTimeout", "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds", "MessageRetentionPeriod",
        "DelaySeconds", "CreatedTimestamp", "LastModifiedTimestamp", "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}) {
    EXPECT_TRUE(all.count(name)) << name << " missing from All";
  }
}

TEST_F(QueueAdmin, TimestampsAreEpochSecondsAndSetUpdatesLastModified) {
  const std::uint64_t before_s = epoch_ms() / 1000;
  client_.create_queue("q", {}, kSmallQueue);
  const std::uint64_t after_s = epoch_ms() / 1000;

  const Attributes created = client_.get_queue_attributes("q", {"CreatedTimestamp", "LastModifiedTimestamp"});
  const std::uint64_t created_s = std::stoull(created.at("CreatedTimestamp"));
  const std::uint64_t modified_s = std::stoull(created.at("LastModifiedTimestamp"));
  EXPECT_GE(created_s + 1, before_s);
  EXPECT_LE(created_s, after_s + 1);
  EXPECT_GE(modified_s, created_s);

  // The timestamps count whole seconds: let the second change, then set.
  ASSERT_TRUE(eventually([&] { return epoch_ms() / 1000 > modified_s; }, 3s));
  client_.set_queue_attributes("q", {{"VisibilityTimeout", "9"}});
  const Attributes updated = client_.get_queue_attributes("q", {"CreatedTimestamp", "LastModifiedTimestamp"});
  EXPECT_EQ(updated.at("CreatedTimestamp"), created.at("CreatedTimestamp"));
  EXPECT_GT(std::stoull(updated.at("LastModifiedTimestamp")), modified_s);
  EXPECT_LE(std::stoull(updated.at("LastModifiedTimestamp")), epoch_ms() / 1000 + 1);
}

TEST_F(QueueAdmin, OperationsOnAMissingQueueFail) {
  EXPECT_EQ(thrown_by([&] { client_.delete_queue("missing"); }), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.get_queue_attributes("missing"); }), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] {
              client_.set_queue_attributes("missing", {{"DelaySeconds", "1"}});
            }),
            "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.purge_queue("missing"); }), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.stats("missing"); }),
            remote_backend() ? "unsupported_operation" : "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.open_queue("missing"); }), "queue_does_not_exist");
}

TEST(QueueAdminNoDaemon, ClientWithoutADaemonGetsDaemonUnavailable) {
  const std::string ns = unique_namespace();
  EXPECT_EQ(thrown_by([&] { Client client(Client::Options{ns}); }), "daemon_unavailable");
}

TEST_F(QueueAdmin, StatsDescribeTheSegment) {
  SHMQ_LOCAL_ONLY("stats are the daemon's figures of a segment");
  Queue q = make_queue("q", {}, QueueCapacity{64, 2ull << 20});
  send_ok(q, "one");
  send_ok(q, "two");
  auto got = receive_now(q, 1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");

  const QueueStats s = client_.stats("q");
  EXPECT_EQ(s.max_messages, 64u);
  EXPECT_EQ(s.arena_bytes, 2ull << 20);
  EXPECT_LT(s.arena_free_bytes, s.arena_bytes);
  EXPECT_GE(s.segment_bytes, s.arena_bytes);
  EXPECT_EQ(s.counts.visible, 1u);
  EXPECT_EQ(s.counts.in_flight, 0u);
  EXPECT_EQ(s.counts.writing, 0u);
  EXPECT_EQ(s.sent_total, 2u);
  EXPECT_EQ(s.received_total, 1u);
  EXPECT_EQ(s.deleted_total, 1u);
  EXPECT_EQ(s.slots_ever_used, 2u);
}

}  // namespace
}  // namespace shmq::test
