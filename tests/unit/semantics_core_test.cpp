// Retention, the in-flight limit and dead-letter redrive in the core, with
// a hand-driven clock.
#include <gtest/gtest.h>

#include "core_harness.hpp"
#include "message_blob.hpp"
#include "message_transfer.hpp"

namespace shmq {
namespace {

using Strings = std::vector<std::string>;

TEST(Retention, MessagesOlderThanTheRetentionPeriodAreRemovedWhateverTheirState) {
  test::CoreHarness q;
  q.header().retention_s = 60;
  ASSERT_FALSE(q.send("in flight"));
  ASSERT_FALSE(q.send("visible"));
  q.advance_ms(30'000);
  ASSERT_FALSE(q.send("younger"));
  auto held = q.receive(1, 600);
  ASSERT_EQ(q.bodies(held), (Strings{"in flight"}));
  q.advance_ms(30'000);  // the first two are 60 s old now
  EXPECT_EQ(q.core().expire_due(q.now()), 0u);
  EXPECT_EQ(q.header().counts.in_flight, 0u);
  EXPECT_EQ(q.header().counts.visible, 1u);
  EXPECT_EQ(q.core().remove(held[0].handle), Errc::stale_receipt_handle);
  EXPECT_EQ(q.core().stats().totals.expired_total, 2u) << "both count as expired";
  EXPECT_EQ(q.core().stats().counts.deleted_total, 0u) << "and not as deleted";
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"younger"}));
}

TEST(Retention, TheNextDeadlineIncludesTheOldestMessage) {
  test::CoreHarness q;
  q.header().retention_s = 60;
  ASSERT_FALSE(q.send("m"));
  EXPECT_EQ(q.core().next_deadline_ns(), q.now().mono_ns + 60'000'000'000ull) << "the reaper must wake for it";
}

TEST(InFlightLimit, ReceivesStopAtTheLimit) {
  test::CoreHarness q;
  q.header().in_flight_limit = 2;
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(q.send("m" + std::to_string(i)));
  EXPECT_EQ(q.receive(10).size(), 2u);
  std::error_code ec;
  EXPECT_TRUE(q.receive(10, 30, nullptr, &ec).empty());
  EXPECT_EQ(ec, Errc::too_many_in_flight);
  EXPECT_EQ(q.header().counts.visible, 2u) << "refused messages stay visible";
}

TEST(Redrive, PastMaxReceiveCountAMessageWaitsForTheDeadLetterQueue) {
  test::CoreHarness source;
  test::CoreHarness dlq;
  source.header().max_receive_count = 2;
  ASSERT_FALSE(source.send("poison"));
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(source.receive(1, 1).size(), 1u);
    source.advance_ms(1000);
  }
  EXPECT_TRUE(source.receive(10).empty()) << "received twice: not a third time";
  EXPECT_EQ(source.header().counts.redrive, 1u);
  EXPECT_TRUE(source.core().redrive_pending());

  detail::Delivery d{};
  ASSERT_TRUE(source.core().next_redrive(d));
  ASSERT_FALSE(
      detail::copy_message(source.core(), d, dlq.core(), 1, "arn:aws:sqs:us-east-1:000000000000:src", dlq.now()));
  EXPECT_EQ(source.core().stats().totals.dead_lettered_total, 0u) << "not moved yet";
  source.core().finish_redrive(d);
  EXPECT_FALSE(source.core().redrive_pending());
  EXPECT_EQ(source.core().stats().totals.dead_lettered_total, 1u);
  EXPECT_EQ(source.header().counts.visible + source.header().counts.in_flight, 0u);

  auto moved = dlq.receive(1);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(dlq.body(moved[0]), "poison");
  EXPECT_EQ(std::memcmp(moved[0].message_id, d.message_id, 16), 0) << "the message keeps its id";
  EXPECT_EQ(moved[0].handle.receive_count, 3u) << "as on Amazon SQS, the count goes on in the dead-letter queue";
  Message m;
  ASSERT_TRUE(
      detail::blob_read(dlq.core().payload(moved[0].block_offset) + moved[0].body_bytes, moved[0].attr_bytes, m));
  EXPECT_EQ(m.dead_letter_source_arn, "arn:aws:sqs:us-east-1:000000000000:src");
}

TEST(Redrive, LoweringMaxReceiveCountRedrivesAtTheNextReceive) {
  test::CoreHarness q;
  ASSERT_FALSE(q.send("m"));
  ASSERT_EQ(q.receive(1, 1).size(), 1u);
  q.advance_ms(1000);
  q.header().max_receive_count = 1;
  EXPECT_TRUE(q.receive(10).empty());
  EXPECT_EQ(q.header().counts.redrive, 1u);
}

TEST(Redrive, WaitingMessagesSurviveRebuild) {
  test::CoreHarness q;
  q.header().max_receive_count = 1;
  ASSERT_FALSE(q.send("m"));
  ASSERT_EQ(q.receive(1, 1).size(), 1u);
  q.advance_ms(1000);
  EXPECT_EQ(q.core().expire_due(q.now()), 0u);
  q.header().roots.redrive_head = detail::kNil;
  q.core().rebuild();
  detail::Delivery d{};
  EXPECT_TRUE(q.core().next_redrive(d));
  EXPECT_EQ(q.header().counts.redrive, 1u);
}

TEST(MessageBlob, RoundTripsEveryField) {
  MessageAttributes attrs{{"s", {"String", "text", ""}},
                          {"n", {"Number.int", "-12.5e3", ""}},
                          {"b", {"Binary", "", std::string("\0\xff", 2)}}};
  const detail::BlobFields f{"group", "dedup", "Root=1-abc", "sender", "arn:x", &attrs};
  std::vector<std::uint8_t> buf(detail::blob_size(f));
  detail::blob_write(f, buf.data());
  Message m;
  ASSERT_TRUE(detail::blob_read(buf.data(), buf.size(), m));
  EXPECT_EQ(m.group_id, "group");
  EXPECT_EQ(m.deduplication_id, "dedup");
  EXPECT_EQ(m.trace_header, "Root=1-abc");
  EXPECT_EQ(m.sender_id, "sender");
  EXPECT_EQ(m.dead_letter_source_arn, "arn:x");
  EXPECT_EQ(m.attributes, attrs);
  Message torn;
  EXPECT_FALSE(detail::blob_read(buf.data(), buf.size() - 1, torn)) << "a cut blob is detected";
}

TEST(MessageAttributes, SqsRules) {
  using V = MessageAttributeValue;
  EXPECT_FALSE(detail::validate_attributes({{"ok.name-1_x", V{"String.custom", "v", ""}}}));
  MessageAttributes eleven;
  for (int i = 0; i < 11; ++i) eleven["a" + std::to_string(i)] = V{"String", "v", ""};
  EXPECT_EQ(detail::validate_attributes(eleven), Errc::invalid_message_attribute);
  for (const char* bad : {"", ".a", "a.", "a..b", "AWS.x", "amazon.x", "sp ace"}) {
    EXPECT_EQ(detail::validate_attributes({{bad, V{"String", "v", ""}}}), Errc::invalid_message_attribute) << bad;
  }
  EXPECT_EQ(detail::validate_attributes({{"a", V{"Text", "v", ""}}}), Errc::invalid_message_attribute);
  EXPECT_EQ(detail::validate_attributes({{"a", V{"String.", "v", ""}}}), Errc::invalid_message_attribute);
  EXPECT_EQ(detail::validate_attributes({{"a", V{"String", "", ""}}}), Errc::invalid_message_attribute);
  EXPECT_EQ(detail::validate_attributes({{"a", V{"Number", "12a", ""}}}), Errc::invalid_message_attribute);
  EXPECT_EQ(detail::validate_attributes({{"a", V{"Binary", "", ""}}}), Errc::invalid_message_attribute);
  EXPECT_EQ(detail::validate_attributes({{"a", V{"String", std::string("\0", 1), ""}}}),
            Errc::invalid_message_attribute)
      << "an attribute's value, not a body: SQS answers InvalidParameterValue";
  EXPECT_FALSE(detail::validate_attributes({{"attr.1\xc3\xb8\xc3\x9f\xc3\xa4", V{"String", "v", ""}}}))
      << "non-ASCII letters in a name, as SQS accepts them";
}

TEST(MessageAttributes, WhyTheyAreRefusedInSqsWords) {
  using V = MessageAttributeValue;
  EXPECT_EQ(describe_invalid_attributes({{"ok", V{"Number", "12", ""}}}), "");
  EXPECT_EQ(describe_invalid_attributes({{"ok", V{"String", "v", ""}}, {"sp ace", V{"String", "v", ""}}}),
            "The message attribute name 'sp ace' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore "
            "(_), hyphen (-), and period (.) characters.");
  EXPECT_EQ(describe_invalid_attributes({{"t", V{"Integer", "1", ""}}}),
            "The message attribute 't' has an invalid message attribute type, the set of supported type prefixes is "
            "Binary, Number, and String.");
  EXPECT_EQ(describe_invalid_attributes({{"e", V{"String.x", "", ""}}}),
            "Message (user) attribute 'e' must contain a non-empty value of type 'String'.");
  EXPECT_EQ(describe_invalid_attributes({{"b", V{"Binary", "", ""}}}),
            "Message (user) attribute 'b' must contain a non-empty value of type 'Binary'.");
  EXPECT_EQ(describe_invalid_attributes({{"n", V{"Number", "12a", ""}}}),
            "Could not cast message attribute 'n' value to number.");
  MessageAttributes eleven;
  for (int i = 0; i < 11; ++i) eleven["a" + std::to_string(i)] = V{"String", "v", ""};
  EXPECT_EQ(describe_invalid_attributes(eleven), "Number of message attributes [11] exceeds the allowed maximum [10].");
  // Whatever it says, it says it exactly when a send would refuse them.
  for (const MessageAttributes& a : {MessageAttributes{{"c", V{"String", std::string("\0", 1), ""}}}, eleven,
                                     MessageAttributes{{"x", V{"String", "v", ""}}}}) {
    EXPECT_EQ(describe_invalid_attributes(a).empty(), !detail::validate_attributes(a));
  }
}

}  // namespace
}  // namespace shmq

namespace shmq {
namespace {

// The validator takes printable ASCII eight bytes at a time: a bad byte at
// any position, inside or after such runs, must still be found.
TEST(BodyCharacters, ABadByteIsFoundAtEveryPosition) {
  const std::string good(40, 'a');
  EXPECT_TRUE(detail::valid_message_characters(good));
  for (const char bad : {'\0', '\x01', '\x1f', '\x7f' /* allowed */, '\x80'}) {
    for (std::size_t i = 0; i < good.size(); ++i) {
      std::string s = good;
      s[i] = bad;
      EXPECT_EQ(detail::valid_message_characters(s), bad == '\x7f') << "byte " << int(bad) << " at " << i;
    }
  }
  std::string mixed = std::string(13, 'x') + "\xc3\xa9" + std::string(9, 'y') + "\t\n\r" + std::string(8, 'z');
  EXPECT_TRUE(detail::valid_message_characters(mixed));
}

}  // namespace
}  // namespace shmq

namespace shmq {
namespace {

TEST(Redrive, WithoutADeadLetterQueueWaitingMessagesComeBack) {
  test::CoreHarness q;
  q.header().max_receive_count = 1;
  ASSERT_FALSE(q.send("m"));
  ASSERT_EQ(q.receive(1, 1).size(), 1u);
  q.advance_ms(1000);
  EXPECT_TRUE(q.receive(1).empty());
  EXPECT_EQ(q.header().counts.redrive, 1u);
  q.header().max_receive_count = 0;  // the RedrivePolicy was removed
  EXPECT_EQ(q.core().return_redrives(), 1u);
  auto got = q.receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(q.body(got[0]), "m");
  EXPECT_EQ(got[0].handle.receive_count, 2u);
}

}  // namespace
}  // namespace shmq
