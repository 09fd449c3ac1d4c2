#include <gtest/gtest.h>

#include "core_harness.hpp"

namespace shmq {
namespace {

using test::CoreHarness;
using Strings = std::vector<std::string>;

TEST(QueueCore, SendReceiveDelete) {
  CoreHarness q;
  ASSERT_FALSE(q.send("hello"));
  EXPECT_EQ(q.header().counts.visible, 1u);
  auto got = q.receive(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(q.body(got[0]), "hello");
  EXPECT_EQ(got[0].handle.receive_count, 1u);
  EXPECT_EQ(got[0].sent_ms, q.now().wall_ms);
  EXPECT_EQ(q.header().counts.visible, 0u);
  EXPECT_EQ(q.header().counts.in_flight, 1u);
  EXPECT_FALSE(q.core().remove(got[0].handle));
  EXPECT_EQ(q.header().counts.in_flight, 0u);
  EXPECT_TRUE(q.receive(10).empty());
}

TEST(QueueCore, DeliversInSendOrder) {
  CoreHarness q;
  for (const char* b : {"a", "b", "c", "d"}) ASSERT_FALSE(q.send(b));
  EXPECT_EQ(q.bodies(q.receive(3)), (Strings{"a", "b", "c"}));
  EXPECT_EQ(q.bodies(q.receive(3)), (Strings{"d"}));
}

TEST(QueueCore, ExpiredMessageComesBackWithNewHandleAndOldOneIsStale) {
  CoreHarness q;
  ASSERT_FALSE(q.send("m"));
  const auto first = q.receive(1, 5);
  ASSERT_EQ(first.size(), 1u);
  q.advance_ms(4999);
  EXPECT_TRUE(q.receive(1).empty()) << "visible before its timeout";
  q.advance_ms(1);
  const auto second = q.receive(1, 5);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].handle.receive_count, 2u);
  EXPECT_EQ(second[0].first_receive_ms, first[0].first_receive_ms);
  EXPECT_EQ(q.core().remove(first[0].handle), Errc::stale_receipt_handle);
  EXPECT_EQ(q.header().counts.in_flight, 1u) << "a stale delete must not delete";
  EXPECT_FALSE(q.core().remove(second[0].handle));
}

TEST(QueueCore, ExpiredMessagesReturnAheadOfNewOnesInTheirOrder) {
  CoreHarness q;
  for (const char* b : {"a", "b", "c"}) ASSERT_FALSE(q.send(b));
  ASSERT_EQ(q.receive(3, 1).size(), 3u);
  ASSERT_FALSE(q.send("d"));
  q.advance_ms(1000);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"a", "b", "c", "d"}));
}

TEST(QueueCore, DeleteAfterExpiryBeforeAnotherReceiveSucceeds) {
  CoreHarness q;
  ASSERT_FALSE(q.send("m"));
  const auto got = q.receive(1, 1);
  q.advance_ms(2000);
  EXPECT_EQ(q.core().expire_due(q.now()), 1u);
  EXPECT_EQ(q.header().counts.visible, 1u);
  EXPECT_FALSE(q.core().remove(got[0].handle));
  EXPECT_EQ(q.header().counts.visible, 0u);
  EXPECT_TRUE(q.receive(1).empty());
}

TEST(QueueCore, StaleHandleNeverTouchesTheSlotsNextMessage) {
  CoreHarness q(1);  // one slot: the next message reuses it
  ASSERT_FALSE(q.send("first"));
  const auto a = q.receive(1);
  ASSERT_FALSE(q.core().remove(a[0].handle));
  ASSERT_FALSE(q.send("second"));
  EXPECT_EQ(q.core().remove(a[0].handle), Errc::stale_receipt_handle);
  EXPECT_EQ(q.core().change_visibility(a[0].handle, 0, q.now()), Errc::stale_receipt_handle);
  const auto b = q.receive(1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].index, a[0].index);
  EXPECT_EQ(q.body(b[0]), "second");
}

TEST(QueueCore, HandleOfAnotherQueueIsInvalid) {
  CoreHarness q;
  ASSERT_FALSE(q.send("m"));
  auto got = q.receive(1);
  detail::ReceiptHandle other = got[0].handle;
  other.incarnation ^= 1;
  EXPECT_EQ(q.core().remove(other), Errc::invalid_receipt_handle);
  other = got[0].handle;
  other.index = 1u << 30;
  EXPECT_EQ(q.core().remove(other), Errc::invalid_receipt_handle);
}

TEST(QueueCore, ChangeVisibility) {
  CoreHarness q;
  ASSERT_FALSE(q.send("m"));
  auto got = q.receive(1, 1);
  ASSERT_FALSE(q.core().change_visibility(got[0].handle, 10, q.now()));
  q.advance_ms(5000);
  EXPECT_TRUE(q.receive(1).empty()) << "extended timeout ignored";
  ASSERT_FALSE(q.core().change_visibility(got[0].handle, 0, q.now()));
  EXPECT_EQ(q.header().counts.visible, 1u) << "timeout 0 makes it visible at once";
  // Its timeout ran out: as Amazon SQS answers, success, and nothing changes.
  EXPECT_FALSE(q.core().change_visibility(got[0].handle, 5, q.now()));
  EXPECT_EQ(q.header().counts.visible, 1u);
  EXPECT_EQ(q.bodies(q.receive(1)), (Strings{"m"}));
}

TEST(QueueCore, DelayedMessagesWaitTheirTurn) {
  CoreHarness q;
  ASSERT_FALSE(q.send("late", 2));
  ASSERT_FALSE(q.send("now"));
  EXPECT_EQ(q.header().counts.delayed, 1u);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"now"}));
  q.advance_ms(1999);
  EXPECT_TRUE(q.receive(10).empty());
  q.advance_ms(1);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"late"}));
  EXPECT_EQ(q.header().counts.delayed, 0u);
}

TEST(QueueCore, FullWhenSlotsRunOut) {
  CoreHarness q(4);
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(q.send("x"));
  EXPECT_EQ(q.send("x"), Errc::queue_full);
  EXPECT_EQ(q.header().counts.visible, 4u);
  auto got = q.receive(1);
  ASSERT_FALSE(q.core().remove(got[0].handle));
  EXPECT_FALSE(q.send("x"));
}

TEST(QueueCore, FullWhenPayloadSpaceRunsOut) {
  CoreHarness q(64, 2 << 20);
  const std::string big(700 * 1024, 'b');  // 1 MiB blocks: two fit in 2 MiB
  ASSERT_FALSE(q.send(big));
  ASSERT_FALSE(q.send(big));
  EXPECT_EQ(q.send(big), Errc::queue_full);
  EXPECT_EQ(q.header().counts.visible, 2u);
  EXPECT_EQ(q.header().counts.writing, 0u) << "a refused send must not hold a slot";
}

TEST(QueueCore, PurgeFreesEverythingButSendsInProgress) {
  CoreHarness q;
  ASSERT_FALSE(q.send("a"));
  ASSERT_FALSE(q.send("b", 60));
  ASSERT_FALSE(q.send("c"));
  ASSERT_EQ(q.receive(1).size(), 1u);
  q.reserve_only(10, 77);
  EXPECT_EQ(q.core().purge(), 3u);
  EXPECT_EQ(q.header().counts.visible + q.header().counts.in_flight + q.header().counts.delayed, 0u);
  EXPECT_EQ(q.header().counts.writing, 1u);
  q.advance_ms(120000);
  EXPECT_TRUE(q.receive(10).empty());
}

TEST(QueueCore, ReclaimFreesOnlyTheDeadSendersSlots) {
  CoreHarness q(4);
  q.reserve_only(10, 100);
  q.reserve_only(10, 200);
  q.reserve_only(10, 100);
  EXPECT_EQ(q.core().reclaim_writing([](std::uint32_t pid) { return pid == 100; }), 2u);
  EXPECT_EQ(q.header().counts.writing, 1u);
  // The two freed slots (and the never-used fourth) are usable again; the
  // live sender's is not touched.
  ASSERT_FALSE(q.send("x"));
  ASSERT_FALSE(q.send("y"));
  ASSERT_FALSE(q.send("z"));
  EXPECT_EQ(q.send("w"), Errc::queue_full);
  EXPECT_EQ(q.header().counts.writing, 1u);
}

// Commits one reservation as a send does (filled first unless it is stale: a
// write into a freed block would break the allocator's links, which no
// commit can undo); returns the entry's error.
std::error_code commit_one(CoreHarness& q, detail::Reservation slot, const std::string& body, bool fill = true) {
  if (fill) std::memcpy(slot.payload, body.data(), body.size());
  const auto size = static_cast<std::uint32_t>(body.size());
  detail::CommitRequest req;
  req.message_id = detail::new_message_id();
  detail::CommitResult res;
  q.core().commit(std::span(&slot, 1), std::span(&size, 1), std::span(&req, 1), std::span(&res, 1), q.now());
  return res.error;
}

TEST(QueueCore, CommitOfAReclaimedReservationFailsAndPublishesNothing) {
  CoreHarness q(4);
  const detail::Reservation slot = q.reserve_only(10, 100);
  EXPECT_EQ(q.core().reclaim_writing([](std::uint32_t pid) { return pid == 100; }), 1u);
  EXPECT_EQ(commit_one(q, slot, "late", false), Errc::internal);
  EXPECT_EQ(q.header().counts.writing, 0u);
  EXPECT_EQ(q.header().counts.visible, 0u);
  EXPECT_TRUE(q.receive(10).empty()) << "a freed slot was published";
  // All four slots are still usable: nothing was lost or linked twice.
  for (const char* body : {"a", "b", "c", "d"}) ASSERT_FALSE(q.send(body)) << body;
  EXPECT_EQ(q.send("e"), Errc::queue_full);
}

TEST(QueueCore, CommitOfAReclaimedReservationLeavesTheSlotsNewOwnerAlone) {
  CoreHarness q(1);
  detail::Reservation stale = q.reserve_only(10, 100);
  EXPECT_EQ(q.core().reclaim_writing([](std::uint32_t pid) { return pid == 100; }), 1u);
  const detail::Reservation fresh = q.reserve_only(10, 200);
  ASSERT_EQ(fresh.index, stale.index) << "the test needs the one slot reserved again";
  EXPECT_EQ(commit_one(q, stale, "stale", false), Errc::internal);
  q.core().unreserve(std::span(&stale, 1));  // as a send that gives up does
  EXPECT_EQ(q.header().counts.writing, 1u) << "the new owner's reservation was taken";
  EXPECT_EQ(commit_one(q, fresh, "fresh"), std::error_code{});
  EXPECT_EQ(q.bodies(q.receive(10)), std::vector<std::string>{"fresh"});
}

TEST(QueueCore, CopyIsInvalidOnceTheSlotIsFreed) {
  CoreHarness q;
  ASSERT_FALSE(q.send("m"));
  auto got = q.receive(1, 0);
  EXPECT_TRUE(q.core().still_valid(got[0]));
  auto again = q.receive(1);  // visibility 0: another receiver takes it...
  ASSERT_EQ(again.size(), 1u);
  ASSERT_FALSE(q.core().remove(again[0].handle));  // ...and deletes it
  EXPECT_FALSE(q.core().still_valid(got[0]));
}

TEST(QueueCore, RebuildRestoresEveryIndexFromDescriptorStates) {
  CoreHarness q(32);
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(q.send("m" + std::to_string(i)));
  ASSERT_FALSE(q.send("delayed", 5));
  const auto in_flight = q.receive(3, 10);                // m0..m2
  ASSERT_FALSE(q.core().remove(q.receive(1)[0].handle));  // m3 gone
  q.reserve_only(100, 9);
  const detail::Counts before = q.header().counts;

  // Scribble over every derived structure, as a process killed mid-update may.
  auto& r = q.header().roots;
  r.free_head = 5;
  r.ready_head = r.ready_tail = 3;
  r.heap_size = 0;
  for (auto& head : r.arena_free_head) head = 0;
  q.header().counts.visible = 999;
  q.core().rebuild();

  EXPECT_EQ(q.header().counts.visible, before.visible);
  EXPECT_EQ(q.header().counts.in_flight, before.in_flight);
  EXPECT_EQ(q.header().counts.delayed, before.delayed);
  EXPECT_EQ(q.header().counts.writing, before.writing);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m4", "m5", "m6", "m7", "m8", "m9"}));
  q.advance_ms(10000);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m0", "m1", "m2", "delayed"}));
  EXPECT_EQ(q.core().remove(in_flight[0].handle), Errc::stale_receipt_handle);
  // Free slots and payload space are all usable again, and no live payload is overwritten.
  int sent = 0;
  while (!q.send(std::string(100, 'f'))) ++sent;
  EXPECT_EQ(sent, 32 - 4 /* received, in flight */ - 1 /* writing */ - 6 /* m4..m9 in flight */);
}

}  // namespace
}  // namespace shmq
