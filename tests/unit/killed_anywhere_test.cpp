// A process killed at any instruction of the operations that touch other
// processes' slots without the usual order (a send without the mutex, a
// take-back of the slot caches, a receive that commits what the submit ring
// holds) leaves a queue that recovers whole: every check of the tables
// passes, nothing a live process holds is lost to it, every message whose
// send returned is delivered once, and once everyone is gone every slot
// and every byte of payload space is free. Each instruction is tried (see
// every_instruction.hpp), not a sample of them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core_harness.hpp"
#include "every_instruction.hpp"
#include "lock_free_harness.hpp"
#include "segment_check.hpp"

namespace shmq {
namespace {

using detail::MessageState;
using detail::QueueCore;
using test::CoreHarness;
using test::SegmentCopy;
using test::send_lock_free;
using test::this_pid;

constexpr std::uint32_t kSlots = QueueCore::kCacheMinSlots;  // the smallest queue with slot caches
constexpr std::uint64_t kArena = 2 << 20;                    // one block of the arena
constexpr std::uint32_t kLiveOwner = 100;                    // a process with cached slots, alive and idle throughout
constexpr std::uint32_t kTester = 200;                       // the process that judges a recovered copy
constexpr std::uint32_t kVisibility = 30;

MessageState state_at(QueueCore& core, std::uint32_t index) {
  return static_cast<MessageState>(detail::atom(core.descriptor(index).state).load() & detail::kStateMask);
}

// Slots in state `s` that process `pid` holds.
std::uint32_t held_by(QueueCore& core, MessageState s, std::uint32_t pid) {
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < core.header().roots.unused_from; ++i) {
    if (state_at(core, i) == s && core.descriptor(i).owner_pid == pid) ++n;
  }
  return n;
}

// One message of 1 byte, "f", by the locked path (reserve, commit), as a
// process other than any here sends it; false once the queue is full.
bool send_locked(QueueCore& core, detail::Now now) {
  const std::uint32_t size = 1;
  detail::Reservation slot;
  std::error_code ec;
  core.reserve(std::span(&size, 1), kTester, std::span(&slot, 1), std::span(&ec, 1));
  if (ec) return false;
  *slot.payload = 'f';
  detail::CommitRequest req;
  req.message_id = detail::new_message_id();
  detail::CommitResult res;
  core.commit(std::span(&slot, 1), std::span(&size, 1), std::span(&req, 1), std::span(&res, 1), now);
  return !res.error;
}

// Everyone gone (the daemon reclaims each process), every message received
// (after any visibility timeout ran out) and deleted: the bodies, counted.
std::map<std::string, int> drain_after_everyone_left(QueueCore& core, detail::Now now) {
  EXPECT_TRUE(core.reclaim_writing([](std::uint32_t) { return true; }).has_value());
  now.mono_ns += (kVisibility + 1) * 1'000'000'000ull;
  now.wall_ms += (kVisibility + 1) * 1'000ull;
  std::map<std::string, int> got;
  for (int rounds = 0; rounds < 1000; ++rounds) {
    std::vector<detail::Delivery> out(10);
    std::error_code ec;
    out.resize(core.receive(std::span(out), kVisibility, now, nullptr, ec));
    EXPECT_FALSE(ec) << ec.message();
    if (out.empty()) break;
    for (const detail::Delivery& d : out) {
      ++got[std::string(reinterpret_cast<const char*>(core.payload(d.block_offset)), d.body_bytes)];
      EXPECT_FALSE(core.remove(d.handle));
    }
  }
  return got;
}

// With everyone gone and everything drained, nothing is held and all
// payload space is free.
void expect_nothing_held(QueueCore& core) {
  const QueueCore::Stats s = core.stats();
  EXPECT_EQ(s.arena_free_bytes, kArena) << "payload space leaked";
  EXPECT_EQ(s.counts.visible + s.counts.in_flight + s.counts.delayed + s.counts.writing + s.counts.cached, 0u);
}

// Runs `operation` in a child one instruction at a time; before each
// instruction that left shared memory changed, and once it returned,
// recovers a copy of the segment as the survivors of a SIGKILL there would
// and calls `judge(core, finished)` on it after checking its tables.
template <class Operation, class Judge, class Setup = test::NoStep, class Prepare = test::NoStep>
void at_every_instruction(CoreHarness& q, Operation operation, Judge judge, Setup setup = {}, Prepare prepare = {}) {
  SegmentCopy copy(q.header().capacity, kArena);
  std::size_t step = 0;
  const std::size_t steps = test::at_every_instruction(
      operation,
      [&](bool finished) {
        SCOPED_TRACE("killed before instruction " + std::to_string(step++) + (finished ? " (returned)" : ""));
        if (!copy.changed(q.segment().base()) && !finished) return;
        bool rebuilt = false;
        auto core = copy.take(q.segment().base(), rebuilt);
        std::string why;
        EXPECT_FALSE(detail::check_tables(core->header(), &why)) << why;
        EXPECT_FALSE(core->refused()) << core->refusal();
        judge(*core, finished);
        expect_nothing_held(*core);
      },
      setup, prepare);
  EXPECT_GT(steps, 100u) << "the operation did not run";
}

// A take-back of the slot caches (a purge here; a full queue and a trim
// take them back the same way) by a process killed anywhere in it: the live
// owner's cached slots are still its own to claim, or free, never claimed
// by the dead taker and left for no one to free while the owner lives.
TEST(KilledAnywhere, ATakeBackOfTheSlotCachesLeavesTheOwnersSlotsClaimableOrFree) {
  if (const char* why = test::why_not_traced()) GTEST_SKIP() << why;
  CoreHarness q(kSlots, kArena);
  QueueCore owner(q.segment().base());
  ASSERT_TRUE(send_lock_free(owner, q.now(), "sent", kLiveOwner));
  ASSERT_EQ(held_by(q.core(), MessageState::kCached, kLiveOwner), QueueCore::kCacheRefill - 1);
  at_every_instruction(
      q, [&] { (void)q.core().purge(); },
      [&](QueueCore& core, bool finished) {
        EXPECT_EQ(held_by(core, MessageState::kWriting, kLiveOwner), 0u)
            << "a cached slot of a live, idle process was claimed by the dead taker";
        // A full queue gets every slot back that no message holds, the ones
        // the dead taker did not reach too (their owner dropped its entries
        // for them if it saw the take-back begin).
        const std::uint32_t held = core.stats().counts.visible;
        std::uint32_t accepted = 0;
        while (send_locked(core, q.now()) && accepted <= kSlots) ++accepted;
        EXPECT_EQ(accepted + held, kSlots) << "cached slots left for no one";
        const auto got = drain_after_everyone_left(core, q.now());
        if (finished) {
          EXPECT_EQ(got.count("sent"), 0u) << "the purge returned: nothing sent before it is left";
        }
        EXPECT_EQ(got.count("f"), 1u);
        EXPECT_EQ(got.count("f") ? got.at("f") : 0, static_cast<int>(kSlots - held));
        EXPECT_LE(got.count("sent") ? got.at("sent") : 0, 1);
      });
}

// A send without the mutex by a process killed anywhere in it (the refill
// of its cache under the mutex, the claim, the copy, the commit point, the
// push onto the submit ring): the message is delivered once or not at all,
// and once the send returned, it is delivered.
TEST(KilledAnywhere, ASendWithoutTheMutexIsDeliveredOnceOrNotAtAll) {
  if (const char* why = test::why_not_traced()) GTEST_SKIP() << why;
  CoreHarness q(kSlots, kArena);
  QueueCore sender(q.segment().base());
  const std::string body(100, 's');
  at_every_instruction(
      q,
      [&] {
        if (!send_lock_free(sender, q.now(), body, this_pid())) ::_exit(3);
      },
      [&](QueueCore& core, bool finished) {
        const auto got = drain_after_everyone_left(core, q.now());
        for (const auto& [got_body, n] : got) EXPECT_EQ(got_body, body) << "a torn or foreign payload";
        const int delivered = got.count(body) ? got.at(body) : 0;
        EXPECT_LE(delivered, 1) << "delivered twice";
        if (finished) {
          EXPECT_EQ(delivered, 1) << "the send returned, and its message was lost";
        }
      });
}

// A receive that commits what the submit ring holds (messages of a live
// sender, sent without the mutex) by a process killed anywhere in it: each
// message comes back once, whether the dead receiver took it (in flight
// until its visibility timeout runs out), committed it, or never got to it.
TEST(KilledAnywhere, AReceiveCommittingTheSubmitRingLosesAndDoublesNothing) {
  if (const char* why = test::why_not_traced()) GTEST_SKIP() << why;
  CoreHarness q(kSlots, kArena);
  QueueCore sender(q.segment().base());
  const std::vector<std::string> bodies{"first", "second", "third"};
  for (const auto& b : bodies) ASSERT_TRUE(send_lock_free(sender, q.now(), b, kLiveOwner));
  at_every_instruction(
      q,
      [&] {
        std::vector<detail::Delivery> out(2);
        std::error_code ec;
        if (q.core().receive(std::span(out), kVisibility, q.now(), nullptr, ec) != 2) ::_exit(3);
      },
      [&](QueueCore& core, bool) {
        const auto got = drain_after_everyone_left(core, q.now());
        for (const auto& b : bodies) {
          EXPECT_EQ(got.count(b) ? got.at(b) : 0, 1) << "'" << b << "' lost or doubled";
        }
        EXPECT_EQ(got.size(), bodies.size());
      });
}

// A send that finds the submit ring full while a stopped process holds
// the lock takes its message back (the caller is answered queue_busy) and
// returns its slot to its cache, killed anywhere in it: the message is
// delivered whole or not at all (never with the lengths the take-back
// zeroes), and not at all once the send returned; the ring's messages
// arrive once each.
TEST(KilledAnywhere, ASendTakingItsMessageBackFromAFullRingDeliversItWholeOrNotAtAll) {
  if (const char* why = test::why_not_traced()) GTEST_SKIP() << why;
  CoreHarness q(4 * kSlots, kArena);
  QueueCore sender(q.segment().base());
  sender.set_lock_wait(1'000'000);  // 1 ms
  // The sender (the traced child) fills its cache of 128-byte blocks with
  // a first message; this process then sends 255 of 64 bytes: 256 entries
  // on the ring, which nobody drains, and a stopped process holds the lock.
  std::vector<std::string> ring{std::string(100, 'b')};
  for (int i = 0; i < 255; ++i) ring.push_back("m" + std::to_string(i));
  pid_t holder = -1;
  const std::string body(100, 'c');
  at_every_instruction(
      q,
      [&] {
        if (send_lock_free(sender, q.now(), body, this_pid())) ::_exit(3);  // answered busy, as it must
      },
      [&](QueueCore& core, bool finished) {
        const auto got = drain_after_everyone_left(core, q.now());
        for (const auto& b : ring) EXPECT_EQ(got.count(b) ? got.at(b) : 0, 1) << "'" << b << "' lost or doubled";
        const int delivered = got.count(body) ? got.at(body) : 0;
        EXPECT_EQ(got.size(), ring.size() + (delivered > 0 ? 1 : 0)) << "a torn or emptied message was delivered";
        EXPECT_LE(delivered, 1);
        if (finished) {
          EXPECT_EQ(delivered, 0) << "the send answered busy, and its message was delivered";
        }
      },
      [&] {
        if (!send_lock_free(sender, q.now(), ring[0], this_pid())) ::_exit(4);
      },
      [&] {
        for (std::size_t i = 1; i < ring.size(); ++i)
          ASSERT_TRUE(send_lock_free(q.core(), q.now(), ring[i], this_pid()));
        holder = test::hold_lock_in_child(q.header(), [] {});
        ASSERT_GT(holder, 0);
      });
  if (holder > 0) {
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
  }
}

}  // namespace
}  // namespace shmq
