// Message attributes and system attributes through the public API.
#include <unistd.h>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using Attributes_ = DaemonTest;
using V = MessageAttributeValue;

TEST_F(Attributes_, EveryTypeRoundTrips) {
  Queue q = make_queue("q");
  SendOptions o;
  o.attributes = {{"city", V{"String", "Zürich", ""}},
                  {"count", V{"Number", "-1.5E+10", ""}},
                  {"blob", V{"Binary", "", std::string("\0\x01\xff", 3)}},
                  {"shape", V{"String.json", "{\"a\":1}", ""}},
                  {"id", V{"Number.int", "42", ""}},
                  {"raw", V{"Binary.png", "", "\x89PNG"}}};
  o.trace_header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
  send_ok(q, "body", o);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attributes, o.attributes);
  EXPECT_EQ(got[0].trace_header, o.trace_header);
  EXPECT_EQ(got[0].sender_id, std::to_string(::getuid())) << "SenderId defaults to the sender's uid";
}

TEST_F(Attributes_, StandardQueuesAcceptAGroupAndReturnIt) {
  Queue q = make_queue("q");
  SendOptions o;
  o.group_id = "tenant-7";
  o.sender_id = "AIDAEXAMPLE";
  send_ok(q, "body", o);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].group_id, "tenant-7");
  EXPECT_EQ(got[0].sender_id, "AIDAEXAMPLE");
  EXPECT_TRUE(got[0].sequence_number.empty()) << "sequence numbers are for FIFO queues";
}

TEST_F(Attributes_, AttributesCountTowardTheSizeLimit) {
  Queue q = make_queue("q", {{"MaximumMessageSize", "1024"}});
  SendOptions o;
  o.attributes = {{"name", V{"String", std::string(100, 'v'), ""}}};  // 4 + 6 + 100 bytes
  SendResult sent;
  EXPECT_EQ(name_of(q.send(std::string(1024 - 110, 'b'), sent, o)), "ok");
  EXPECT_EQ(name_of(q.send(std::string(1024 - 109, 'b'), sent, o)), "message_too_large");
}

TEST_F(Attributes_, BadAttributesAreRefusedAndNothingIsSent) {
  Queue q = make_queue("q");
  SendResult sent;
  SendOptions eleven;
  for (int i = 0; i < 11; ++i) eleven.attributes["a" + std::to_string(i)] = V{"String", "v", ""};
  EXPECT_EQ(name_of(q.send("m", sent, eleven)), "invalid_message_attribute");
  SendOptions reserved;
  reserved.attributes = {{"AWS.Trace", V{"String", "v", ""}}};
  EXPECT_EQ(name_of(q.send("m", sent, reserved)), "invalid_message_attribute");
  SendOptions not_a_number;
  not_a_number.attributes = {{"n", V{"Number", "twelve", ""}}};
  EXPECT_EQ(name_of(q.send("m", sent, not_a_number)), "invalid_message_attribute");
  SendOptions bad_text;
  bad_text.attributes = {{"s", V{"String", std::string("a\x02", 2), ""}}};
  EXPECT_EQ(name_of(q.send("m", sent, bad_text)), "invalid_message_attribute") << "SQS: InvalidParameterValue";
  EXPECT_TRUE(receive_now(q).empty());
}

TEST_F(Attributes_, BatchEntriesCarryTheirOwnAttributes) {
  Queue q = make_queue("q");
  std::vector<SendEntry> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].id = "e" + std::to_string(i);
    batch[i].body = "b" + std::to_string(i);
    batch[i].options.attributes = {{"i", V{"Number", std::to_string(i), ""}}};
  }
  batch[1].options.attributes["bad name"] = V{"String", "v", ""};
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(batch, results)), "ok");
  EXPECT_EQ(name_of(results[0].error), "ok");
  EXPECT_EQ(name_of(results[1].error), "invalid_message_attribute");
  EXPECT_EQ(name_of(results[2].error), "ok");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 2u);
  for (const Message& m : got) EXPECT_EQ(m.attributes.at("i").string_value, m.body.substr(1));
}

}  // namespace
}  // namespace shmq::test
