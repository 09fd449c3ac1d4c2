// The data path against a daemon-created queue: send, receive, delete,
// bodies, message metadata and counts.
#include <set>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using DataPath = DaemonTest;

TEST_F(DataPath, SendReceiveDelete) {
  Queue q = make_queue("q");
  const std::string id = send_ok(q, "hello");

  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "hello");
  EXPECT_EQ(got[0].message_id, id);
  EXPECT_EQ(got[0].receive_count, 1u);
  EXPECT_FALSE(got[0].receipt_handle.empty());
  EXPECT_TRUE(receive_now(q).empty()) << "an in-flight message is not delivered again";

  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.in_flight + c.delayed + c.writing, 0u);
  EXPECT_TRUE(receive_now(q, 10, 0).empty());
}

// Bodies are text as SQS defines it: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
// #x10000-#x10FFFF, in UTF-8. Everything in those ranges comes back
// byte for byte; anything else is refused and nothing is enqueued.
TEST_F(DataPath, BodiesAreTextAsSqsDefinesIt) {
  Queue q = make_queue("q");
  std::string edges = "\t\n\r ~";
  edges += "\x7f";              // DEL is #x7F: allowed
  edges += "\xc2\x80";          // U+0080
  edges += "\xed\x9f\xbf";      // U+D7FF, just below the surrogates
  edges += "\xee\x80\x80";      // U+E000
  edges += "\xef\xbf\xbd";      // U+FFFD
  edges += "\xf0\x90\x80\x80";  // U+10000
  edges += "\xf4\x8f\xbf\xbf";  // U+10FFFF
  send_ok(q, edges);
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, edges);

  const std::vector<std::string> refused{
      std::string("a\0b", 3),  // NUL
      "\x01",
      "\x1f",              // other control characters
      "\xed\xa0\x80",      // U+D800, a surrogate
      "\xef\xbf\xbe",      // U+FFFE
      "\xc0\x80",          // overlong NUL
      "\xff",              // not UTF-8 at all
      "\xe2\x82",          // cut short
      "\xf4\x90\x80\x80",  // above U+10FFFF
  };
  for (const std::string& body : refused) {
    SendResult sent;
    EXPECT_EQ(name_of(q.send(body, sent)), "invalid_message_contents") << "body of " << body.size() << " bytes";
  }
  SendResult sent;
  EXPECT_EQ(name_of(q.send("", sent)), "missing_parameter") << "SQS refuses an empty body";
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(std::vector<SendEntry>{{"empty", "", {}}}, results)), "ok");
  EXPECT_EQ(name_of(results.at(0).error), "missing_parameter");
  EXPECT_TRUE(receive_now(q, 10, 0).empty()) << "a refused body must not have been enqueued";
}

TEST_F(DataPath, OneMebibyteIsTheLargestBody) {
  Queue q = make_queue("q");
  std::string body(1048576, ' ');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(0x20 + (i * 7919 >> 3) % 95);
  send_ok(q, body);

  SendResult sent;
  EXPECT_EQ(name_of(q.send(std::string(1048577, 'x'), sent)), "message_too_large");

  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body.size(), 1048576u);
  EXPECT_TRUE(got[0].body == body) << "the 1 MiB body came back changed";
  EXPECT_TRUE(receive_now(q, 10, 0).empty()) << "the refused body must not have been enqueued";
}

TEST_F(DataPath, MaximumMessageSizeLimitsBodies) {
  Queue q = make_queue("q", {{"MaximumMessageSize", "1024"}});
  SendResult sent;
  EXPECT_EQ(name_of(q.send(std::string(1025, 'x'), sent)), "message_too_large");
  EXPECT_EQ(q.counts().visible, 0u);
  EXPECT_EQ(name_of(q.send(std::string(1024, 'x'), sent)), "ok");
  EXPECT_EQ(q.counts().visible, 1u);

  // A change of the attribute applies to an open Queue at once.
  client_.set_queue_attributes("q", {{"MaximumMessageSize", "2048"}});
  EXPECT_EQ(name_of(q.send(std::string(2048, 'x'), sent)), "ok");
  EXPECT_EQ(name_of(q.send(std::string(2049, 'x'), sent)), "message_too_large");
}

TEST_F(DataPath, ReceiveReturnsAtMostMaxMessages) {
  Queue q = make_queue("q");
  for (int i = 0; i < 15; ++i) send_ok(q, "m" + std::to_string(i));
  EXPECT_EQ(receive_now(q, 1).size(), 1u);
  EXPECT_EQ(receive_now(q, 3).size(), 3u);
  EXPECT_EQ(receive_now(q, 10).size(), 10u);
  EXPECT_EQ(receive_now(q, 10).size(), 1u);
  EXPECT_EQ(q.counts().in_flight, 15u);
}

TEST_F(DataPath, MaxMessagesOutsideOneToTenIsRefused) {
  Queue q = make_queue("q");
  send_ok(q, "x");
  std::vector<Message> got;
  EXPECT_EQ(name_of(q.receive(got, {.max_messages = 0, .wait_time = 0ms})), "invalid_parameter_value");
  EXPECT_EQ(name_of(q.receive(got, {.max_messages = 11, .wait_time = 0ms})), "invalid_parameter_value");
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(q.counts().visible, 1u) << "a refused receive takes nothing";

  EXPECT_EQ(name_of(q.receive(got, {.max_messages = 1, .visibility_timeout = 43201, .wait_time = 0ms})),
            "invalid_parameter_value");
  EXPECT_EQ(name_of(q.receive(got, {.max_messages = 1, .wait_time = 21s})), "invalid_parameter_value");
  EXPECT_EQ(q.counts().visible, 1u);
}

TEST_F(DataPath, ReceiveCountAndTimestamps) {
  Queue q = make_queue("q");
  const std::uint64_t before = epoch_ms();
  const std::string id = send_ok(q, "again");
  const std::uint64_t after = epoch_ms();

  // A visibility timeout of 0 returns the message at once.
  auto first = receive_now(q, 1, 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].receive_count, 1u);
  EXPECT_GE(first[0].sent_timestamp_ms + 1000, before);
  EXPECT_LE(first[0].sent_timestamp_ms, after + 1000);
  EXPECT_GE(first[0].first_receive_timestamp_ms, first[0].sent_timestamp_ms);
  EXPECT_LE(first[0].first_receive_timestamp_ms, epoch_ms() + 1000);

  auto second = receive_now(q, 1, 0);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].message_id, id);
  EXPECT_EQ(second[0].receive_count, 2u);
  EXPECT_EQ(second[0].sent_timestamp_ms, first[0].sent_timestamp_ms);
  EXPECT_EQ(second[0].first_receive_timestamp_ms, first[0].first_receive_timestamp_ms);
  EXPECT_NE(second[0].receipt_handle, first[0].receipt_handle);

  auto third = receive_now(q, 1);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].receive_count, 3u);
}

TEST_F(DataPath, MessageIdsAreUniqueUuids) {
  Queue q = make_queue("q");
  std::set<std::string> sent_ids;
  for (int i = 0; i < 200; ++i) {
    const std::string id = send_ok(q, "m");
    EXPECT_TRUE(uuid_shaped(id)) << id;
    sent_ids.insert(id);
  }
  EXPECT_EQ(sent_ids.size(), 200u);

  std::set<std::string> received_ids;
  for (;;) {
    auto got = receive_now(q);
    if (got.empty()) break;
    for (const Message& m : got) received_ids.insert(m.message_id);
  }
  EXPECT_EQ(received_ids, sent_ids);
}

TEST_F(DataPath, CountsTrackVisibleInFlightAndDelayed) {
  Queue q = make_queue("q");
  for (int i = 0; i < 4; ++i) send_ok(q, "now");
  for (int i = 0; i < 2; ++i) send_ok(q, "later", SendOptions{.delay_seconds = 600});
  ASSERT_EQ(receive_now(q, 3).size(), 3u);

  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible, 1u);
  EXPECT_EQ(c.in_flight, 3u);
  EXPECT_EQ(c.delayed, 2u);
  EXPECT_EQ(c.writing, 0u);

  const Attributes a = client_.get_queue_attributes("q");
  EXPECT_EQ(a.at("ApproximateNumberOfMessages"), "1");
  EXPECT_EQ(a.at("ApproximateNumberOfMessagesNotVisible"), "3");
  EXPECT_EQ(a.at("ApproximateNumberOfMessagesDelayed"), "2");

  SHMQ_LOCAL_ONLY("stats are the daemon's figures of a segment");
  const QueueStats s = client_.stats("q");
  EXPECT_EQ(s.counts.visible, 1u);
  EXPECT_EQ(s.counts.in_flight, 3u);
  EXPECT_EQ(s.counts.delayed, 2u);
}

TEST_F(DataPath, TwoQueuesAreIndependent) {
  Queue a = make_queue("a");
  Queue b = make_queue("b");
  send_ok(a, "for a");
  EXPECT_TRUE(receive_now(b).empty());
  auto got = receive_now(a);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "for a");
}

TEST_F(DataPath, AnotherProcessReceivesWhatThisOneSent) {
  Queue q = make_queue("q");
  send_ok(q, "across processes");
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] {
    Client client(Client::Options{queue_ns});
    Queue mine = client.open_queue("q");
    std::vector<Message> got;
    if (mine.receive(got, {.max_messages = 10, .wait_time = 5s}) || got.size() != 1) return 1;
    if (got[0].body != "across processes") return 2;
    return mine.delete_message(got[0].receipt_handle) ? 3 : 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.in_flight, 0u);
}

}  // namespace
}  // namespace shmq::test
