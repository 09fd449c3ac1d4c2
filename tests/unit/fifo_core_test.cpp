// FIFO queues in the core, with a hand-driven clock: order per group, group
// locks, fairness across groups, deduplication over the 5-minute window,
// receive attempts, and recovery of all of it.
#include <gtest/gtest.h>

#include <map>

#include "core_harness.hpp"

namespace shmq {
namespace {

using Strings = std::vector<std::string>;

class Fifo : public ::testing::Test {
 protected:
  test::CoreHarness q{64, 4 << 20, true};
  int counter_ = 0;

  // A FIFO send with a fresh dedup id.
  void send(const std::string& body, const std::string& group, std::uint32_t delay = 0) {
    ASSERT_FALSE(q.send(body, delay, 1, group, "d" + std::to_string(counter_++)));
  }
  void remove_all(const std::vector<detail::Delivery>& ds) {
    for (const auto& d : ds) ASSERT_FALSE(q.core().remove(d.handle));
  }
};

TEST_F(Fifo, OneGroupIsDeliveredInOrderAndLockedWhileInFlight) {
  for (const char* b : {"a1", "a2", "a3"}) send(b, "A");
  auto first = q.receive(1);
  EXPECT_EQ(q.bodies(first), (Strings{"a1"}));
  EXPECT_TRUE(q.receive(10).empty()) << "a2 must wait while a1 is in flight";
  remove_all(first);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"a2", "a3"})) << "several of one group in one receive, in order";
}

TEST_F(Fifo, OtherGroupsProceedWhileOneIsLocked) {
  send("a1", "A");
  send("a2", "A");
  send("b1", "B");
  auto got = q.receive(1);
  EXPECT_EQ(q.bodies(got), (Strings{"a1"}));
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"b1"})) << "B is not blocked by A";
  EXPECT_TRUE(q.receive(10).empty());
}

TEST_F(Fifo, AReceiveTakesOneGroupFirstThenFillsFromTheNext) {
  send("a1", "A");
  send("b1", "B");
  send("a2", "A");
  send("b2", "B");
  EXPECT_EQ(q.bodies(q.receive(3)), (Strings{"a1", "a2", "b1"}));
}

TEST_F(Fifo, AHotGroupDoesNotStarveTheOthers) {
  for (int i = 0; i < 40; ++i) send("hot" + std::to_string(i), "hot");
  send("x", "X");
  send("y", "Y");
  send("z", "Z");
  // One message per receive, deleted at once: the groups take turns.
  Strings order;
  for (int i = 0; i < 8; ++i) {
    auto got = q.receive(1);
    ASSERT_EQ(got.size(), 1u);
    order.push_back(q.body(got[0]));
    remove_all(got);
  }
  EXPECT_EQ(order, (Strings{"hot0", "x", "y", "z", "hot1", "hot2", "hot3", "hot4"}));
}

TEST_F(Fifo, AnExpiredMessageComesBackAtTheHeadOfItsGroup) {
  for (const char* b : {"a1", "a2", "a3"}) send(b, "A");
  auto first = q.receive(2, 5);
  EXPECT_EQ(q.bodies(first), (Strings{"a1", "a2"}));
  ASSERT_FALSE(q.core().remove(first[1].handle));  // a2 done, a1 still in flight
  EXPECT_TRUE(q.receive(10).empty()) << "the group stays locked while a1 is in flight";
  q.advance_ms(5000);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"a1", "a3"})) << "a1 again, before a3";
}

TEST_F(Fifo, DelayedMessagesDoNotBlockTheirGroup) {
  send("late", "A", 10);
  send("now", "A");
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"now"}));
}

TEST_F(Fifo, DuplicatesWithinFiveMinutesAreAcceptedButNotEnqueued) {
  detail::CommitResult first, again, later;
  ASSERT_FALSE(q.send("m", 0, 1, "A", "dup", &first));
  q.advance_ms(300'000 - 1);
  ASSERT_FALSE(q.send("m", 0, 1, "A", "dup", &again));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.message_id, first.message_id) << "a duplicate reports the original message";
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(q.header().counts.visible, 1u);
  q.advance_ms(1);  // the window ends five minutes after the first send
  ASSERT_FALSE(q.send("m", 0, 1, "A", "dup", &later));
  EXPECT_FALSE(later.duplicate);
  EXPECT_GT(later.seq, first.seq);
  EXPECT_EQ(q.header().counts.visible, 2u);
}

TEST_F(Fifo, DeduplicationScopeIsTheQueueOrTheGroup) {
  detail::CommitResult r;
  ASSERT_FALSE(q.send("a", 0, 1, "A", "same", &r));
  ASSERT_FALSE(q.send("b", 0, 1, "B", "same", &r));
  EXPECT_TRUE(r.duplicate) << "queue scope: the id is taken, whatever the group";
  ASSERT_FALSE(q.send("c", 0, 1, "C", "scoped", &r, true));
  ASSERT_FALSE(q.send("d", 0, 1, "D", "scoped", &r, true));
  EXPECT_FALSE(r.duplicate) << "group scope: the same id in another group is another message";
  ASSERT_FALSE(q.send("e", 0, 1, "D", "scoped", &r, true));
  EXPECT_TRUE(r.duplicate);
}

TEST_F(Fifo, SequenceNumbersIncrease) {
  detail::CommitResult a, b, c;
  ASSERT_FALSE(q.send("a", 0, 1, "A", "1", &a));
  ASSERT_FALSE(q.send("b", 0, 1, "B", "2", &b));
  ASSERT_FALSE(q.send("c", 0, 1, "A", "3", &c));
  EXPECT_LT(a.seq, b.seq);
  EXPECT_LT(b.seq, c.seq);
}

TEST_F(Fifo, ARetriedReceiveAttemptGetsTheSameMessagesAndHandles) {
  for (const char* b : {"a1", "a2"}) send(b, "A");
  const detail::DedupKey attempt = detail::dedup_key(false, {}, "attempt-1");
  auto first = q.receive(10, 30, &attempt);
  ASSERT_EQ(first.size(), 2u);
  q.advance_ms(20'000);
  auto retry = q.receive(10, 30, &attempt);
  ASSERT_EQ(retry.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(retry[i].handle.to_string(), first[i].handle.to_string());
  q.advance_ms(20'000);  // 40 s after the first receive: the retry reset the 30 s timeout
  EXPECT_TRUE(q.receive(10).empty());
  ASSERT_FALSE(q.core().remove(first[0].handle));
  EXPECT_TRUE(q.receive(10, 30, &attempt).empty())
      << "a message of the attempt is gone: no replay, and the group is locked";
}

TEST_F(Fifo, GroupsAreFreedWhenTheirLastMessageGoes) {
  send("a", "A");
  send("b", "B");
  EXPECT_EQ(q.header().counts.groups, 2u);
  remove_all(q.receive(10));
  EXPECT_EQ(q.header().counts.groups, 0u);
}

TEST_F(Fifo, RebuildKeepsGroupOrderAndLocks) {
  for (const char* b : {"a1", "a2", "a3"}) send(b, "A");
  send("b1", "B");
  send("b2", "B");
  auto held = q.receive(1);  // a1 in flight: A locked
  auto& r = q.header().roots;
  r.ring_head = r.ring_tail = detail::kNil;
  q.header().counts.groups = 77;
  q.core().rebuild();
  EXPECT_EQ(q.header().counts.groups, 2u);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"b1", "b2"})) << "A is still locked by a1";
  remove_all(held);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"a2", "a3"}));
}

TEST_F(Fifo, DedupWindowSurvivesRebuild) {
  detail::CommitResult r;
  ASSERT_FALSE(q.send("m", 0, 1, "A", "dup", &r));
  q.core().rebuild();
  ASSERT_FALSE(q.send("m", 0, 1, "A", "dup", &r));
  EXPECT_TRUE(r.duplicate);
}

}  // namespace
}  // namespace shmq
