// A caller that keeps its Message, SendResult and result vectors from call
// to call (as a receive loop should, to allocate nothing) sees exactly what
// a fresh object would show: nothing of an earlier message stays behind.
#include <unistd.h>

#include <array>
#include <set>
#include <span>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using MessageReuse = DaemonTest;
using V = MessageAttributeValue;

// One message of each kind in turn: bodies from large to empty-ish and back,
// attributes from many to none and a name whose type changes, system
// attributes present and then absent.
std::vector<std::pair<std::string, SendOptions>> varied_messages() {
  std::vector<std::pair<std::string, SendOptions>> out;
  SendOptions many;
  many.attributes = {{"a", V{"String", std::string(300, 's'), ""}},
                     {"b", V{"Binary", "", std::string("\0\x01\xff", 3)}},
                     {"c", V{"Number", "42", ""}},
                     {"shared", V{"String", "text", ""}}};
  many.trace_header = "Root=1-5759e988-bd862e3fe1be46a994272793";
  many.sender_id = "AIDAEXAMPLE";
  many.group_id = "tenant-1";
  out.emplace_back(std::string(5000, 'x'), many);
  SendOptions one;
  one.attributes = {{"shared", V{"Binary", "", "bytes"}}};  // same name, now Binary
  out.emplace_back("short", one);
  out.emplace_back("y", SendOptions{});  // nothing at all
  SendOptions others;
  others.attributes = {{"z", V{"String.json", "{}", ""}}, {"a", V{"Number.int", "-7", ""}}};
  others.group_id = "g";
  out.emplace_back(std::string(70, 'm'), others);
  out.emplace_back(std::string(100000, 'L'), SendOptions{});
  return out;
}

void expect_is(const Message& got, const std::string& body, const SendOptions& sent, const std::string& id) {
  EXPECT_EQ(got.body, body);
  EXPECT_EQ(got.message_id, id);
  EXPECT_EQ(got.attributes, sent.attributes);
  EXPECT_EQ(got.trace_header, sent.trace_header);
  EXPECT_EQ(got.group_id, sent.group_id);
  // SenderId: the sending process's uid or what it gave; over SQS, the
  // caller's identity (the bridge names the access key).
  if (remote_backend()) {
    EXPECT_EQ(got.sender_id, kTestAccessKey);
  } else {
    EXPECT_EQ(got.sender_id, sent.sender_id.empty() ? std::to_string(::getuid()) : sent.sender_id);
  }
  EXPECT_TRUE(got.deduplication_id.empty());
  EXPECT_TRUE(got.sequence_number.empty());
  EXPECT_TRUE(got.dead_letter_source_arn.empty());
  EXPECT_EQ(got.receive_count, 1u);
  EXPECT_EQ(got.receipt_handle.size(), 40u);
}

TEST_F(MessageReuse, AReusedVectorOfMessagesShowsEachMessageAsSent) {
  Queue q = make_queue("q", {{"MaximumMessageSize", "1048576"}}, QueueCapacity{1024, 16ull << 20});
  std::vector<Message> got;
  SendResult sent;  // reused as well
  const ReceiveOptions now{.max_messages = 10, .wait_time = 0ms};
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [body, options] : varied_messages()) {
      ASSERT_EQ(name_of(q.send(body, sent, options)), "ok");
      ASSERT_EQ(name_of(q.receive(got, now)), "ok");
      ASSERT_EQ(got.size(), 1u);
      expect_is(got[0], body, options, sent.message_id);
      EXPECT_TRUE(sent.sequence_number.empty());
      ASSERT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");
    }
  }
}

TEST_F(MessageReuse, ReceiveIntoFillsCallerOwnedMessagesInPlace) {
  Queue q = make_queue("q", {{"MaximumMessageSize", "1048576"}}, QueueCapacity{1024, 16ull << 20});
  std::array<Message, 3> slots;
  const ReceiveOptions now{.max_messages = 10, .wait_time = 0ms};
  const auto kinds = varied_messages();
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t first = 0; first < kinds.size(); ++first) {
      // Two messages of different kinds at a time, so that each slot holds
      // every kind after every other.
      std::map<std::string, std::size_t> kind_of;  // message id -> kind
      SendResult sent;
      for (std::size_t k = 0; k < 2; ++k) {
        const auto& [body, options] = kinds[(first + k * (pass + 1)) % kinds.size()];
        ASSERT_EQ(name_of(q.send(body, sent, options)), "ok");
        kind_of[sent.message_id] = (first + k * (pass + 1)) % kinds.size();
      }
      std::size_t received = 0;
      std::size_t total = 0;
      while (total < 2) {
        ASSERT_EQ(name_of(q.receive_into(slots, received, now)), "ok");
        ASSERT_GT(received, 0u);
        for (std::size_t i = 0; i < received; ++i) {
          ASSERT_EQ(kind_of.count(slots[i].message_id), 1u) << slots[i].message_id;
          const auto& [body, options] = kinds[kind_of[slots[i].message_id]];
          expect_is(slots[i], body, options, slots[i].message_id);
          ASSERT_EQ(name_of(q.delete_message(slots[i].receipt_handle)), "ok");
        }
        total += received;
      }
      EXPECT_EQ(total, 2u);
    }
  }
}

TEST_F(MessageReuse, ReceiveIntoTakesNoMoreThanTheSpanHolds) {
  Queue q = make_queue("q");
  for (int i = 0; i < 5; ++i) send_ok(q, "m" + std::to_string(i));
  std::array<Message, 3> slots;
  slots[2].body = "untouched";
  std::size_t received = 99;
  const ReceiveOptions ten{.max_messages = 10, .wait_time = 0ms};
  ASSERT_EQ(name_of(q.receive_into(std::span(slots).first(2), received, ten)), "ok");
  EXPECT_EQ(received, 2u);
  EXPECT_EQ(slots[2].body, "untouched") << "past the span";
  const ReceiveOptions one{.max_messages = 1, .wait_time = 0ms};
  ASSERT_EQ(name_of(q.receive_into(slots, received, one)), "ok");
  EXPECT_EQ(received, 1u) << "nor more than max_messages";
  ASSERT_EQ(name_of(q.receive_into(slots, received, ten)), "ok");
  EXPECT_EQ(received, 2u) << "the rest";
  ASSERT_EQ(name_of(q.receive_into(slots, received, ten)), "ok");
  EXPECT_EQ(received, 0u) << "an empty queue after no wait is success";
}

TEST_F(MessageReuse, ReceiveIntoRefusesWhatReceiveRefuses) {
  Queue q = make_queue("q");
  send_ok(q, "m");
  std::size_t received = 99;
  EXPECT_EQ(name_of(q.receive_into(std::span<Message>(), received, {.wait_time = 0ms})), "invalid_parameter_value");
  EXPECT_EQ(received, 0u);
  std::array<Message, 1> slot;
  EXPECT_EQ(name_of(q.receive_into(slot, received, {.max_messages = 11, .wait_time = 0ms})), "invalid_parameter_value");
  EXPECT_EQ(name_of(q.receive_into(slot, received, {.max_messages = 0, .wait_time = 0ms})), "invalid_parameter_value");
  EXPECT_EQ(q.counts().visible, 1u) << "nothing was taken";
}

TEST_F(MessageReuse, AReusedFifoMessageGetsEachSequenceNumber) {
  Queue q = make_queue("q.fifo", {{"FifoQueue", "true"}});
  std::vector<Message> got;
  SendResult sent;
  std::string previous;
  for (int i = 0; i < 20; ++i) {
    SendOptions o;
    o.group_id = "g";
    o.deduplication_id = "d" + std::to_string(i);
    ASSERT_EQ(name_of(q.send("m", sent, o)), "ok");
    ASSERT_EQ(sent.sequence_number.size(), 20u);
    EXPECT_GT(sent.sequence_number, previous);
    previous = sent.sequence_number;
    ASSERT_EQ(name_of(q.receive(got, {.wait_time = 0ms})), "ok");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].sequence_number, sent.sequence_number);
    EXPECT_EQ(got[0].deduplication_id, o.deduplication_id);
    ASSERT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");
  }
}

TEST_F(MessageReuse, AReusedResultVectorShowsOnlyThisBatch) {
  Queue q = make_queue("q");
  std::vector<SendEntry> ten;
  for (int i = 0; i < 10; ++i) ten.push_back({"e" + std::to_string(i), "body", {}});
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(ten, results)), "ok");
  ASSERT_EQ(results.size(), 10u);
  for (const auto& r : results) EXPECT_TRUE(uuid_shaped(r.message_id)) << r.message_id;
  // Three entries, the middle one refused: its result must not keep the
  // message id the same position had in the last batch.
  std::vector<SendEntry> three{{"x", "fine", {}}, {"y", std::string("\x01", 1), {}}, {"z", "fine", {}}};
  ASSERT_EQ(name_of(q.send_batch(three, results)), "ok");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].id, "x");
  EXPECT_EQ(name_of(results[0].error), "ok");
  EXPECT_EQ(results[1].id, "y");
  EXPECT_EQ(name_of(results[1].error), "invalid_message_contents");
  EXPECT_TRUE(results[1].message_id.empty());
  EXPECT_TRUE(uuid_shaped(results[2].message_id));
  // Deletes: one good handle, one malformed; no message ids in the results.
  auto got = receive_now(q, 1);
  ASSERT_EQ(got.size(), 1u);
  const std::vector<HandleEntry> handles{{"good", got[0].receipt_handle, 0}, {"bad", "not-a-handle", 0}};
  ASSERT_EQ(name_of(q.delete_batch(handles, results)), "ok");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].id, "good");
  EXPECT_EQ(name_of(results[0].error), "ok");
  EXPECT_EQ(results[1].id, "bad");
  EXPECT_EQ(name_of(results[1].error), "invalid_receipt_handle");
  for (const auto& r : results) EXPECT_TRUE(r.message_id.empty());
  // Distinct ids are still told apart from repeated ones.
  const std::vector<SendEntry> repeated{{"a", "1", {}}, {"b", "2", {}}, {"a", "3", {}}};
  EXPECT_EQ(name_of(q.send_batch(repeated, results)), "batch_entry_ids_not_distinct");
}

// A child after fork() opens its own Client, as it must; the message ids it
// issues must still be its own, not the ones its parent issues next.
TEST_F(MessageReuse, AForkedChildIssuesMessageIdsOfItsOwn) {
  Queue q = make_queue("q");
  send_ok(q, "before fork");  // the parent's id generator is in use
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const std::string namespace_name = ns();
  const pid_t child = fork_child([&] {
    ::close(pipe_fds[0]);
    Client client(Client::Options{namespace_name});
    Queue mine = client.open_queue("q");
    SendResult sent;
    if (mine.send("from the child", sent)) return 1;
    const bool written =
        ::write(pipe_fds[1], sent.message_id.data(), sent.message_id.size()) == ssize_t(sent.message_id.size());
    return written ? 0 : 2;
  });
  ::close(pipe_fds[1]);
  std::string child_id(36, '\0');
  const ssize_t n = ::read(pipe_fds[0], child_id.data(), child_id.size());
  ::close(pipe_fds[0]);
  ASSERT_EQ(wait_child(child), 0);
  ASSERT_EQ(n, 36);
  const std::string parent_id = send_ok(q, "from the parent");
  EXPECT_NE(child_id, parent_id);
  std::set<std::string> ids;
  for (const Message& m : receive_now(q)) ids.insert(m.message_id);
  EXPECT_EQ(ids.size(), 3u) << "three messages, three ids";
}

}  // namespace
}  // namespace shmq::test
