// Receipt handles: which deletes and visibility changes a handle allows.
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using ReceiptHandles = DaemonTest;

TEST_F(ReceiptHandles, GarbageHandlesAreInvalid) {
  Queue q = make_queue("q");
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  const std::string& good = got[0].receipt_handle;

  EXPECT_EQ(name_of(q.delete_message("")), "invalid_receipt_handle");
  EXPECT_EQ(name_of(q.delete_message("not a receipt handle")), "invalid_receipt_handle");
  EXPECT_EQ(name_of(q.delete_message(good + "0")), "invalid_receipt_handle");
  EXPECT_EQ(name_of(q.delete_message(std::string(good.size(), 'z'))), "invalid_receipt_handle");
  // Same shape, but not issued by this queue.
  std::string forged = good;
  forged[0] = forged[0] == '0' ? '1' : '0';
  EXPECT_EQ(name_of(q.delete_message(forged)), "invalid_receipt_handle");
  EXPECT_EQ(name_of(q.change_visibility("not a receipt handle", 0)), "invalid_receipt_handle");

  EXPECT_EQ(q.counts().in_flight, 1u) << "no refused handle may delete anything";
  EXPECT_EQ(name_of(q.delete_message(good)), "ok");
}

TEST_F(ReceiptHandles, AHandleFromAnotherQueueIsInvalid) {
  Queue a = make_queue("a");
  Queue b = make_queue("b");
  send_ok(a, "in a");
  send_ok(b, "in b");
  auto from_a = receive_now(a);
  auto from_b = receive_now(b);
  ASSERT_EQ(from_a.size(), 1u);
  ASSERT_EQ(from_b.size(), 1u);

  EXPECT_EQ(name_of(b.delete_message(from_a[0].receipt_handle)), "invalid_receipt_handle");
  EXPECT_EQ(name_of(b.change_visibility(from_a[0].receipt_handle, 0)), "invalid_receipt_handle");
  EXPECT_EQ(b.counts().in_flight, 1u);
  EXPECT_EQ(a.counts().in_flight, 1u);

  // Nor does a queue deleted and created again accept its predecessor's handles.
  client_.delete_queue("b");
  Queue b2 = make_queue("b");
  send_ok(b2, "new b");
  auto from_b2 = receive_now(b2);
  ASSERT_EQ(from_b2.size(), 1u);
  EXPECT_EQ(name_of(b2.delete_message(from_b[0].receipt_handle)), "invalid_receipt_handle");
  EXPECT_EQ(b2.counts().in_flight, 1u);
}

TEST_F(ReceiptHandles, AnEarlierReceivesHandleIsStaleAndDeletesNothing) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "1"}});
  send_ok(q, "x");
  auto first = receive_now(q);
  ASSERT_EQ(first.size(), 1u);

  // Wait out the visibility timeout, then receive again.
  std::vector<Message> second;
  ASSERT_TRUE(eventually([&] {
    second = receive_now(q, 1, 60);
    return !second.empty();
  }));
  EXPECT_EQ(second[0].message_id, first[0].message_id);
  EXPECT_EQ(second[0].receive_count, 2u);

  EXPECT_EQ(name_of(q.delete_message(first[0].receipt_handle)), stale_delete());
  EXPECT_EQ(name_of(q.change_visibility(first[0].receipt_handle, 0)), stale_change());
  EXPECT_EQ(q.counts().in_flight, 1u) << "the stale handle must not have deleted the message";
  EXPECT_EQ(q.counts().visible, 0u) << "the stale handle must not have made it visible";

  EXPECT_EQ(name_of(q.delete_message(second[0].receipt_handle)), "ok");
  EXPECT_EQ(q.counts().in_flight, 0u);
  EXPECT_TRUE(receive_now(q, 10, 0).empty());
}

TEST_F(ReceiptHandles, DeletingTwiceIsStale) {
  Queue q = make_queue("q");
  send_ok(q, "x");
  send_ok(q, "y");
  auto got = receive_now(q, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");
  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), stale_delete());
  EXPECT_EQ(name_of(q.change_visibility(got[0].receipt_handle, 5)), stale_change());

  // The freed slot is used by the next message; the old handle must not touch it.
  send_ok(q, "z");
  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), stale_delete());
  EXPECT_EQ(q.counts().visible, 2u);
}

TEST_F(ReceiptHandles, DeleteAfterExpiryButBeforeAnotherReceiveSucceeds) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "1"}});
  send_ok(q, "x");
  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);

  // The daemon returns the message to the queue; nobody receives it.
  ASSERT_TRUE(eventually([&] { return q.counts().visible == 1; }));
  EXPECT_EQ(name_of(q.delete_message(got[0].receipt_handle)), "ok");
  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.in_flight, 0u);
  EXPECT_TRUE(receive_now(q, 10, 0).empty());
}

}  // namespace
}  // namespace shmq::test
