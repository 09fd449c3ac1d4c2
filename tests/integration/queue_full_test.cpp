// A queue's fixed capacity: message slots and payload space run out, sends
// are refused with queue_full and nothing already sent is lost.
#include <set>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using QueueFull = DaemonTest;

TEST_F(QueueFull, NoFreeSlotRefusesTheSend) {
  Queue q = make_queue("q", {}, QueueCapacity{16, 2ull << 20});
  for (int i = 0; i < 16; ++i) send_ok(q, "m" + std::to_string(i));
  SendResult sent;
  EXPECT_EQ(name_of(q.send("one too many", sent)), "queue_full");
  EXPECT_EQ(name_of(q.send("still full", sent, SendOptions{.delay_seconds = 5})), "queue_full");

  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(std::vector<SendEntry>{{"a", "x", {}}}, results)), "ok");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(name_of(results[0].error), "queue_full");

  // Nothing was lost, and the refused sends left nothing behind.
  std::set<std::string> bodies;
  std::vector<Message> all;
  for (;;) {
    auto got = receive_now(q);
    if (got.empty()) break;
    for (Message& m : got) {
      bodies.insert(m.body);
      all.push_back(std::move(m));
    }
  }
  ASSERT_EQ(bodies.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(bodies.count("m" + std::to_string(i))) << i;

  // In-flight messages hold their slots; a delete frees one.
  EXPECT_EQ(name_of(q.send("x", sent)), "queue_full");
  ASSERT_EQ(name_of(q.delete_message(all[0].receipt_handle)), "ok");
  EXPECT_EQ(name_of(q.send("fits again", sent)), "ok");
  EXPECT_EQ(name_of(q.send("x", sent)), "queue_full");
  for (std::size_t i = 1; i < all.size(); ++i) ASSERT_EQ(name_of(q.delete_message(all[i].receipt_handle)), "ok");
  for (int i = 0; i < 15; ++i) send_ok(q, "refill");
  EXPECT_EQ(q.counts().visible, 16u);
}

TEST_F(QueueFull, NoPayloadSpaceRefusesTheSend) {
  // 2 MiB of payload space (the smallest): two bodies just under 1 MiB, each
  // with its few bytes of system attributes, take a 1 MiB block each.
  Queue q = make_queue("q", {}, QueueCapacity{1024, 2ull << 20});
  const std::string half(1024 * 1024 - 256, 'h');
  send_ok(q, half);
  send_ok(q, half);
  SendResult sent;
  EXPECT_EQ(name_of(q.send("tiny", sent)), "queue_full") << "2 MiB of payload space holds two bodies of almost 1 MiB";
  EXPECT_EQ(q.counts().visible, 2u);

  auto got = receive_now(q, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, half);
  ASSERT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");

  // The freed space takes small bodies and, once merged, a big one.
  for (int i = 0; i < 8; ++i) send_ok(q, std::string(60000, 's'));
  EXPECT_EQ(name_of(q.send(half, sent)), "queue_full");
  auto smalls = receive_now(q, 10);
  ASSERT_EQ(smalls.size(), 9u);
  for (const Message& m : smalls) {
    if (m.body.size() == 60000) {
      ASSERT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
    }
  }
  EXPECT_EQ(name_of(q.send(half, sent)), "ok");
}

TEST_F(QueueFull, AFullQueueStillServesReceivers) {
  Queue q = make_queue("q", {}, QueueCapacity{16, 2ull << 20});
  for (int i = 0; i < 16; ++i) send_ok(q, "m");
  SendResult sent;
  ASSERT_EQ(name_of(q.send("x", sent)), "queue_full");
  // Another process (shmqctl) drains one message and sends one in its place.
  const ProcessResult drained = shmqctl(ns(), {"receive", "q", "--delete"});
  ASSERT_EQ(drained.exit_code, 0) << drained.err;
  const ProcessResult refilled = shmqctl(ns(), {"send", "q", "refill"});
  ASSERT_EQ(refilled.exit_code, 0) << refilled.err;
  const ProcessResult refused = shmqctl(ns(), {"send", "q", "overflow"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("queue_full"), std::string::npos) << refused.err;
  EXPECT_EQ(q.counts().visible, 16u);
}

}  // namespace
}  // namespace shmq::test
