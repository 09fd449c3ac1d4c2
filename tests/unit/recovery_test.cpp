// A process killed while it holds a queue's lock: the next locker must find
// the queue whole, with nothing lost, and carry on.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_harness.hpp"

namespace shmq {
namespace {

using Strings = std::vector<std::string>;
using test::die_holding_lock;

TEST(Recovery, KilledLockHolderMidUpdateLosesNothing) {
  test::CoreHarness q(32);
  for (int i = 0; i < 6; ++i) ASSERT_FALSE(q.send("m" + std::to_string(i)));
  const auto held = q.receive(2, 1);  // m0, m1 in flight
  auto& r = q.header().roots;
  die_holding_lock(q.header(), [&] {
    // Half of a receive: unlinked the head of the ready list, nothing else.
    r.ready_head = q.core().descriptor(r.ready_head).next;
    r.heap_size = 0;
    r.free_head = 0;
  });
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m2", "m3", "m4", "m5"}));
  EXPECT_EQ(q.header().counts.recoveries, 1u);
  q.advance_ms(1000);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m0", "m1"})) << "in-flight messages must come back";
  EXPECT_FALSE(q.send("after"));
}

// A FIFO group with ready and in-flight messages interleaved, and a lock
// holder killed halfway through deleting one of them: the rebuild puts each
// message back in its place in the group, from the states alone.
TEST(Recovery, KilledLockHolderMidDeleteKeepsEachFifoMessageInItsPlace) {
  test::CoreHarness q(32, 2 << 20, true);
  for (int i = 1; i <= 4; ++i) {
    const std::string body = "m" + std::to_string(i);
    ASSERT_FALSE(q.send(body, 0, 1, "G", body));
  }
  const auto held = q.receive(3);  // m1, m2, m3 in flight
  ASSERT_EQ(q.bodies(held), (Strings{"m1", "m2", "m3"}));
  ASSERT_FALSE(q.core().change_visibility(held[0].handle, 0, q.now()));  // m1 ready, at the head
  auto& r = q.header().roots;
  const std::uint32_t m1 = held[0].index, m3 = held[2].index;
  die_holding_lock(q.header(), [&] {
    // Half of a delete of m2: out of its group's list, the group off the
    // ring; m2 itself still in flight.
    q.core().descriptor(m1).group_next = m3;
    q.core().descriptor(m3).group_prev = m1;
    r.ring_head = r.ring_tail = detail::kNil;
  });
  const auto again = q.receive(10);
  EXPECT_EQ(q.header().counts.recoveries, 1u);
  ASSERT_EQ(q.bodies(again), (Strings{"m1"})) << "m1 heads the group; m2 in flight holds m3 and m4";
  EXPECT_EQ(again[0].handle.receive_count, 2u);
  ASSERT_FALSE(q.core().remove(held[1].handle)) << "m2 is still in flight, under its handle";
  ASSERT_FALSE(q.core().remove(again[0].handle));
  EXPECT_TRUE(q.receive(10).empty()) << "m3 is still in flight, ahead of m4";
  ASSERT_FALSE(q.core().remove(held[2].handle));
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m4"}));
}

TEST(Recovery, KilledSenderBetweenReserveAndCommitIsReclaimable) {
  test::CoreHarness q(8);
  ASSERT_FALSE(q.send("kept"));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    q.reserve_only(1000, static_cast<std::uint32_t>(::getpid()));
    ::raise(SIGKILL);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(q.header().counts.writing, 1u);
  EXPECT_EQ(q.core().reclaim_writing([&](std::uint32_t pid) { return pid == static_cast<std::uint32_t>(child); }), 1u);
  EXPECT_EQ(q.header().counts.writing, 0u);
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"kept"}));
}

TEST(Recovery, RepeatedDeathsDuringRecoveryStillConverge) {
  test::CoreHarness q(16);
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(q.send("m" + std::to_string(i)));
  for (int round = 0; round < 3; ++round) {
    die_holding_lock(q.header(), [&] {
      q.header().roots.ready_head = detail::kNil;
      q.header().roots.ready_tail = detail::kNil;
    });
  }
  EXPECT_EQ(q.bodies(q.receive(10)), (Strings{"m0", "m1", "m2", "m3"}));
  EXPECT_EQ(q.header().counts.recoveries, 1u) << "the next proper locker recovers once, however many died before";
}

}  // namespace
}  // namespace shmq
