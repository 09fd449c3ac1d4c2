// FIFO queues in the core, with a hand-driven clock: order per group, group
// locks per message (a group is blocked at its first in-flight message, not
// as a whole), fairness across groups, deduplication over the 5-minute
// window, receive attempts, dead-letter moves, and recovery of all of it.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

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
  void make_visible(const detail::Delivery& d) { ASSERT_FALSE(q.core().change_visibility(d.handle, 0, q.now())); }
};

std::vector<std::uint32_t> receive_counts(const std::vector<detail::Delivery>& ds) {
  std::vector<std::uint32_t> out;
  for (const auto& d : ds) out.push_back(d.handle.receive_count);
  return out;
}

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

TEST_F(Fifo, AMessageMadeVisibleAgainIsReceivedAgainWhileTheNextStaysInFlight) {
  for (const char* b : {"m1", "m2", "m3"}) send(b, "g1");
  auto both = q.receive(2);
  ASSERT_EQ(q.bodies(both), (Strings{"m1", "m2"}));
  make_visible(both[0]);
  EXPECT_EQ(q.core().available_count(), 1u) << "m1 heads its group again";
  auto again = q.receive(10);
  EXPECT_EQ(q.bodies(again), (Strings{"m1"})) << "not m2 (in flight), not m3 (behind m2)";
  EXPECT_EQ(receive_counts(again), (std::vector<std::uint32_t>{2}));
  EXPECT_TRUE(q.receive(10).empty());
  ASSERT_FALSE(q.core().remove(both[1].handle)) << "m2's handle still deletes m2";
  EXPECT_TRUE(q.receive(10).empty()) << "m3 waits behind m1, in flight again";
  ASSERT_FALSE(q.core().remove(again[0].handle));
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m3"}));
  EXPECT_EQ(q.header().counts.in_flight, 1u);
}

TEST_F(Fifo, AReadyMessageWaitsBehindAnInFlightOneOfItsGroup) {
  for (const char* b : {"m1", "m2", "m3"}) send(b, "g1");
  auto both = q.receive(2);
  ASSERT_EQ(q.bodies(both), (Strings{"m1", "m2"}));
  make_visible(both[1]);  // m2 ready again, behind m1 in flight
  EXPECT_EQ(q.header().counts.visible, 2u);
  EXPECT_EQ(q.core().available_count(), 0u);
  EXPECT_TRUE(q.receive(10).empty()) << "nothing after an in-flight message of a group is delivered";
  ASSERT_FALSE(q.core().remove(both[0].handle));
  auto rest = q.receive(10);
  EXPECT_EQ(q.bodies(rest), (Strings{"m2", "m3"}));
  EXPECT_EQ(receive_counts(rest), (std::vector<std::uint32_t>{2, 1}));
}

TEST_F(Fifo, AnExpiredFirstMessageIsReceivableWhileTheSecondStaysInFlight) {
  for (const char* b : {"m1", "m2", "m3"}) send(b, "g1");
  auto both = q.receive(2, 5);
  ASSERT_EQ(q.bodies(both), (Strings{"m1", "m2"}));
  ASSERT_FALSE(q.core().change_visibility(both[1].handle, 60, q.now()));
  q.advance_ms(5000);  // m1's timeout ends, m2's does not
  auto first = q.receive(10, 30);
  EXPECT_EQ(q.bodies(first), (Strings{"m1"}));
  ASSERT_FALSE(q.core().remove(first[0].handle));
  EXPECT_TRUE(q.receive(10).empty()) << "m2 is still in flight";
  q.advance_ms(55'000);  // m2's timeout ends
  auto rest = q.receive(10);
  EXPECT_EQ(q.bodies(rest), (Strings{"m2", "m3"}));
  EXPECT_EQ(receive_counts(rest), (std::vector<std::uint32_t>{2, 1}));
}

TEST_F(Fifo, DeletingTheOnlyInFlightMessageOpensItsGroupAtOnce) {
  for (const char* b : {"m1", "m2"}) send(b, "g1");
  auto first = q.receive(1);
  ASSERT_EQ(q.bodies(first), (Strings{"m1"}));
  EXPECT_EQ(q.core().available_count(), 0u);
  const std::uint32_t seq = q.header().ready_seq;
  ASSERT_FALSE(q.core().remove(first[0].handle));
  EXPECT_EQ(q.core().available_count(), 1u);
  EXPECT_NE(q.header().ready_seq, seq) << "receivers sleeping on the queue must be woken";
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m2"}));
}

TEST_F(Fifo, OtherGroupsAreNeverHeldUpByAPartlyInFlightGroup) {
  for (const char* b : {"a1", "a2", "a3"}) send(b, "A");
  for (const char* b : {"b1", "b2"}) send(b, "B");
  auto as = q.receive(2);
  ASSERT_EQ(q.bodies(as), (Strings{"a1", "a2"}));
  make_visible(as[1]);  // A: a1 in flight, a2 ready behind it, a3
  EXPECT_EQ(q.bodies(q.receive(1)), (Strings{"b1"}));
  make_visible(as[0]);  // A opens again, at the ring's tail
  ASSERT_FALSE(q.send("c1", 0, 1, "C", "c1"));
  // Turns: B was taken last and is now in flight; A, then C.
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"a1", "a2", "a3", "c1"}));
}

TEST_F(Fifo, AMessageWaitingToMoveToTheDeadLetterQueueHoldsItsGroup) {
  q.header().max_receive_count = 1;
  for (const char* b : {"m1", "m2", "m3"}) send(b, "g1");
  send("x1", "X");
  auto got = q.receive(2);
  ASSERT_EQ(q.bodies(got), (Strings{"m1", "m2"}));
  make_visible(got[1]);  // m2: received once, waits for the move; m1 still in flight
  EXPECT_EQ(q.header().counts.redrive, 1u);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"x1"}));
  ASSERT_FALSE(q.core().remove(got[0].handle));
  EXPECT_TRUE(q.receive(10).empty()) << "m3 waits while m2, before it, waits to move";
  detail::Delivery moving{};
  ASSERT_TRUE(q.core().next_redrive(moving));
  EXPECT_EQ(q.body(moving), "m2");
  q.core().finish_redrive(moving);
  EXPECT_EQ(q.core().available_count(), 1u) << "the move opens the group";
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m3"}));
}

TEST_F(Fifo, MessagesWaitingToMoveGoBackInPlaceWhenTheRedrivePolicyGoes) {
  q.header().max_receive_count = 1;
  for (const char* b : {"m1", "m2", "m3"}) send(b, "g1");
  auto got = q.receive(2);
  make_visible(got[0]);  // m1 waits to move, m2 in flight behind it
  EXPECT_EQ(q.header().counts.redrive, 1u);
  q.header().max_receive_count = 0;
  EXPECT_EQ(q.core().return_redrives(), 1u);
  auto again = q.receive(10);
  EXPECT_EQ(q.bodies(again), (Strings{"m1"})) << "m1 again, at the head; m2 still in flight";
  EXPECT_EQ(receive_counts(again), (std::vector<std::uint32_t>{2}));
}

TEST_F(Fifo, RetentionOfAnInFlightHeadOpensItsGroup) {
  q.header().retention_s = 60;
  send("m1", "g1");
  q.advance_ms(10'000);
  send("m2", "g1");
  auto first = q.receive(1, 300);
  ASSERT_EQ(q.bodies(first), (Strings{"m1"}));
  q.advance_ms(50'000);  // m1 is 60 s old, m2 50 s
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m2"}));
  EXPECT_EQ(q.core().remove(first[0].handle), Errc::stale_receipt_handle);
}

TEST_F(Fifo, PurgeEmptiesPartlyInFlightGroups) {
  for (const char* b : {"m1", "m2", "m3"}) send(b, "g1");
  auto got = q.receive(2);
  make_visible(got[0]);
  ASSERT_EQ(q.core().purge(), 3u);
  EXPECT_EQ(q.header().counts.groups, 0u);
  EXPECT_EQ(q.core().available_count(), 0u);
  send("after", "g1");
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"after"}));
}

TEST_F(Fifo, PurgeForgetsTheDeduplicationWindow) {
  detail::CommitResult first, again;
  ASSERT_FALSE(q.send("before", 0, 1, "A", "dup", &first));
  ASSERT_FALSE(q.send("kept", 0, 1, "A", "other"));
  ASSERT_EQ(q.core().purge(), 2u);
  EXPECT_EQ(q.header().counts.dedup_entries, 0u);
  ASSERT_FALSE(q.send("after", 0, 1, "A", "dup", &again));
  EXPECT_FALSE(again.duplicate) << "as on Amazon SQS, a purge ends the deduplication window";
  EXPECT_GT(again.seq, first.seq);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"after"}));
  detail::CommitResult dup;
  ASSERT_FALSE(q.send("after again", 0, 1, "A", "dup", &dup));
  EXPECT_TRUE(dup.duplicate) << "the ids sent after the purge are deduplicated";
}

TEST_F(Fifo, ADeleteWithAHandleWhoseTimeoutRanOutIsRefusedAndDeletesNothing) {
  send("m1", "g1");
  const auto first = q.receive(1, 1);
  ASSERT_EQ(q.bodies(first), (Strings{"m1"}));
  q.advance_ms(1000);
  ASSERT_EQ(q.core().expire_due(q.now()), 1u);  // visible again
  EXPECT_EQ(q.core().remove(first[0].handle), Errc::receipt_handle_expired) << "as Amazon SQS refuses it";
  const auto again = q.receive(1, 30);
  ASSERT_EQ(q.bodies(again), (Strings{"m1"})) << "the refused delete deleted it";
  EXPECT_EQ(q.core().remove(first[0].handle), Errc::receipt_handle_expired) << "received again since";
  EXPECT_FALSE(q.core().remove(again[0].handle));
  EXPECT_EQ(q.core().remove(again[0].handle), Errc::stale_receipt_handle) << "once deleted, a handle is stale";
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

// Runs the same steps on two queues, one of them rebuilt from its
// descriptor states (its group lists and ring scrambled first) after the
// setup: every later receive must give the same messages.
TEST(FifoRebuild, InterleavedInFlightAndReadyMessagesOfAGroupDeliverAsBefore) {
  test::CoreHarness plain{64, 4 << 20, true};
  test::CoreHarness rebuilt{64, 4 << 20, true};
  struct Run {
    test::CoreHarness& q;
    std::vector<detail::Delivery> held;
    int n = 0;
    void send(const std::string& body, const std::string& group) {
      ASSERT_FALSE(q.send(body, 0, 1, group, "d" + std::to_string(n++)));
    }
    Strings receive(std::uint32_t max, std::uint32_t visibility = 30) {
      auto got = q.receive(max, visibility);
      Strings out;
      for (const auto& d : got) {
        out.push_back(q.body(d) + "#" + std::to_string(d.handle.receive_count));
        held.push_back(d);
      }
      return out;
    }
    const detail::Delivery& find(const std::string& body) {
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        if (q.body(*it) == body) return *it;
      }
      throw std::runtime_error("not held: " + body);
    }
    void visible(const std::string& body) { ASSERT_FALSE(q.core().change_visibility(find(body).handle, 0, q.now())); }
    void remove(const std::string& body) { ASSERT_FALSE(q.core().remove(find(body).handle)); }
  };
  Run a{plain}, b{rebuilt};
  for (Run* r : {&a, &b}) {
    for (int i = 1; i <= 6; ++i) r->send("g" + std::to_string(i), "G");
    r->send("h1", "H");
    // G: g1 g2 g3 g4 in flight; then g2 and g4 made visible again, and g1
    // deleted; H's only message in flight.
    ASSERT_EQ(r->receive(4), (Strings{"g1#1", "g2#1", "g3#1", "g4#1"}));
    ASSERT_EQ(r->receive(1), (Strings{"h1#1"}));
    r->visible("g2");
    r->visible("g4");
    r->remove("g1");
  }
  // G is now: g2 ready, g3 in flight, g4 ready, g5, g6 ready.
  auto& roots = rebuilt.header().roots;
  roots.ring_head = roots.ring_tail = detail::kNil;
  for (std::uint32_t i = 0; i < 8; ++i) {
    rebuilt.core().descriptor(i).group_next = 0x00ffffffu;
    rebuilt.core().descriptor(i).group_prev = 3;
  }
  rebuilt.core().rebuild();
  EXPECT_EQ(rebuilt.header().counts.visible, plain.header().counts.visible);
  EXPECT_EQ(rebuilt.header().counts.in_flight, plain.header().counts.in_flight);
  EXPECT_EQ(rebuilt.core().available_count(), plain.core().available_count());
  for (Run* r : {&a, &b}) {
    SCOPED_TRACE(r == &a ? "not rebuilt" : "rebuilt");
    EXPECT_EQ(r->receive(10), (Strings{"g2#2"})) << "g4 waits behind g3";
    EXPECT_TRUE(r->receive(10).empty());
    r->remove("h1");
    r->remove("g3");
    EXPECT_TRUE(r->receive(10).empty()) << "g2 in flight again holds g4";
    r->visible("g2");
    EXPECT_EQ(r->receive(10), (Strings{"g2#3", "g4#2", "g5#1", "g6#1"})) << "with g3 gone, all of G, in order";
  }
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
