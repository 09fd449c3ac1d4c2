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

// Forks a child that takes the queue lock, runs `scribble` (a half-done
// update) and is then killed with SIGKILL while still holding the lock.
template <class Scribble>
void die_holding_lock(detail::SegmentHeader& h, Scribble scribble) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pthread_mutex_lock(&h.mutex);
    scribble();
    char c = 1;
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

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
