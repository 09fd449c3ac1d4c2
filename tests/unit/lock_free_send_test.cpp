// Sends without the mutex (QueueCore::send_lock_free), as a receiver and
// the recovery code see them: what was sent arrives once, whole; cached
// slots never make a queue refuse what it has room for; and whatever a
// sender killed at any step left behind is delivered or freed, exactly
// counted, with nothing leaked.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core_harness.hpp"
#include "every_instruction.hpp"
#include "futex.hpp"
#include "lock_free_harness.hpp"
#include "segment_check.hpp"

namespace shmq {
namespace {

using detail::MessageState;
using detail::QueueCore;
using test::CoreHarness;
using test::die_holding_lock;
using Strings = std::vector<std::string>;
using test::kUid;
using test::kWhole;
using test::MessageId;
using test::send_lock_free;

// The smallest queue that sends without the mutex, and its payload space.
constexpr std::uint32_t kSlots = QueueCore::kCacheMinSlots;
constexpr std::uint64_t kArena = 2 << 20;

using test::this_pid;

bool send_lock_free(CoreHarness& q, std::string_view body, std::uint32_t pid = this_pid(),
                    const MessageId& id = detail::new_message_id()) {
  return send_lock_free(q.core(), q.now(), body, pid, id);
}

// As Queue::send does: without the mutex if it can, else with it.
std::error_code send_any(CoreHarness& q, const std::string& body, std::uint32_t pid = this_pid()) {
  if (send_lock_free(q, body, pid)) return {};
  return q.send(body, 0, pid);
}

// Receives and deletes everything visible; returns the bodies in order.
Strings receive_all(CoreHarness& q) {
  Strings out;
  for (;;) {
    const auto got = q.receive(10);
    if (got.empty()) return out;
    for (const auto& d : got) {
      out.push_back(q.body(d));
      EXPECT_FALSE(q.core().remove(d.handle));
    }
  }
}

// The slots below the watermark in state `s` whose owner is `pid`.
std::vector<std::uint32_t> slots_in(CoreHarness& q, MessageState s, std::uint32_t pid) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 0; i < q.header().roots.unused_from; ++i) {
    const detail::MessageDescriptor& m = q.core().descriptor(i);
    if ((detail::atom(const_cast<std::uint32_t&>(m.state)).load() & detail::kStateMask) ==
            static_cast<std::uint32_t>(s) &&
        m.owner_pid == pid) {
      out.push_back(i);
    }
  }
  return out;
}

MessageState state_of(CoreHarness& q, std::uint32_t index) {
  return static_cast<MessageState>(detail::atom(q.core().descriptor(index).state).load() & detail::kStateMask);
}

// Runs `body(pid)` in a forked child that dies with SIGKILL (raised by
// `body`, or after it); returns the child's pid once it is dead.
template <class Body>
std::uint32_t die_in_child(Body body) {
  const pid_t child = ::fork();
  if (child == 0) {
    body(this_pid());
    ::raise(SIGKILL);
    ::_exit(1);
  }
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child did not die as planned";
  return static_cast<std::uint32_t>(child);
}

// The daemon's reclaim when process `pid` is gone; returns what it freed.
std::uint32_t reclaim(CoreHarness& q, std::uint32_t pid) {
  return q.core().reclaim_writing([pid](std::uint32_t owner) { return owner == pid; }).value_or(~0u);
}

// The counts as they stand, and as a rebuild from the descriptor states
// alone finds them: recovery and the running queue must agree.
void expect_rebuild_agrees(CoreHarness& q) {
  std::string why;
  EXPECT_FALSE(detail::check_tables(q.header(), &why)) << why;
  const detail::Counts before = q.header().counts;
  const std::uint64_t free_before = q.header().roots.arena_free_bytes;
  q.core().rebuild();
  ASSERT_FALSE(q.core().refused()) << q.core().refusal();
  const detail::Counts& after = q.header().counts;
  EXPECT_EQ(after.visible, before.visible);
  EXPECT_EQ(after.in_flight, before.in_flight);
  EXPECT_EQ(after.delayed, before.delayed);
  EXPECT_EQ(after.writing, before.writing);
  EXPECT_EQ(after.cached, before.cached);
  EXPECT_EQ(q.header().roots.arena_free_bytes, free_before);
}

// Everything received and deleted, this process's cache given back: all
// the queue's payload space is free again and nothing is counted.
void expect_nothing_held(CoreHarness& q) {
  q.core().release_cache(this_pid());
  const QueueCore::Stats s = q.core().stats();
  EXPECT_EQ(s.arena_free_bytes, kArena) << "payload space leaked";
  EXPECT_EQ(s.counts.visible + s.counts.in_flight + s.counts.delayed, 0u);
  EXPECT_EQ(s.counts.writing, 0u);
  EXPECT_EQ(s.counts.cached, 0u);
}

TEST(LockFreeSend, AMessageSentWithoutTheMutexIsReceivedWithItsBodyAndId) {
  CoreHarness q(kSlots, kArena);
  const MessageId id = detail::new_message_id();
  ASSERT_TRUE(send_lock_free(q, "hello", this_pid(), id));
  const auto pending = slots_in(q, MessageState::kPending, this_pid());
  ASSERT_EQ(pending.size(), 1u) << "the send did not go without the mutex";
  EXPECT_EQ(q.header().counts.cached, QueueCore::kCacheRefill) << "the cache's slots and the pending one";
  EXPECT_EQ(q.core().available_count(), 1u) << "a receiver would not look";
  EXPECT_EQ(q.core().stats().counts.visible, 1u);

  const auto got = q.receive(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].index, pending[0]);
  EXPECT_EQ(q.body(got[0]), "hello");
  EXPECT_EQ(got[0].attr_bytes, 0u);
  EXPECT_EQ(std::memcmp(got[0].message_id, id.data(), id.size()), 0) << "the message id changed";
  EXPECT_EQ(got[0].sent_ms, q.now().wall_ms);
  EXPECT_EQ(got[0].sender_uid, std::optional<std::uint32_t>(kUid));
  EXPECT_EQ(got[0].handle.receive_count, 1u);
  EXPECT_EQ(q.header().counts.sent_total, 1u);
  EXPECT_EQ(q.header().counts.cached, QueueCore::kCacheRefill - 1);
  ASSERT_FALSE(q.core().remove(got[0].handle));

  // The next ones come from the same cache, without the mutex.
  ASSERT_TRUE(send_lock_free(q, "again"));
  EXPECT_EQ(q.header().counts.cached, QueueCore::kCacheRefill - 1) << "a send refilled a cache that had slots";
  EXPECT_EQ(receive_all(q), (Strings{"again"}));
  expect_nothing_held(q);
}

TEST(LockFreeSend, QueuesItDoesNotServeTakeTheLockedPath) {
  CoreHarness small(kSlots - 1, kArena);
  EXPECT_FALSE(send_lock_free(small, "m")) << "a queue below kCacheMinSlots";
  CoreHarness fifo(kSlots, kArena, true);
  EXPECT_FALSE(send_lock_free(fifo, "m")) << "a FIFO queue";
  CoreHarness q(kSlots, kArena);
  EXPECT_FALSE(send_lock_free(q, std::string(1025, 'b'))) << "a block above 1 KiB";
  EXPECT_EQ(q.header().counts.cached, 0u);
  EXPECT_TRUE(send_lock_free(q, std::string(1024, 'b')));
}

TEST(LockFreeSend, MessagesFromSeveralThreadsAllArriveOnceInEachSendersOrder) {
  constexpr int kThreads = 4;
  constexpr int kEach = 3000;
  CoreHarness q(2 * kSlots, kArena);
  std::atomic<int> sending{kThreads};
  std::atomic<int> lock_free{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Bodies of several sizes: several caches, and the mutex now and then.
        const std::string body = std::to_string(t) + ":" + std::to_string(i) + std::string(i % 7 * 90, '.');
        if (send_lock_free(q, body)) {
          ++lock_free;
          continue;
        }
        while (q.send(body, 0, this_pid()) == Errc::queue_full) std::this_thread::yield();
      }
      --sending;
    });
  }
  std::vector<int> seen(kThreads * kEach);  // times each message arrived
  std::map<int, int> next;                  // each sender's next message
  int received = 0;
  std::string out_of_order;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (received < kThreads * kEach && std::chrono::steady_clock::now() < deadline) {
    const auto got = q.receive(10);
    if (got.empty() && sending.load() == 0 && q.core().available_count() == 0) break;
    for (const auto& d : got) {
      const std::string body = q.body(d);
      const int t = std::stoi(body);
      const int i = std::stoi(body.substr(body.find(':') + 1));
      ++seen.at(t * kEach + i);
      if (i != next[t] && out_of_order.empty()) {
        out_of_order = "sender " + std::to_string(t) + ": " + std::to_string(i) + " where " + std::to_string(next[t]) +
                       " was next";
      }
      next[t] = i + 1;
      ++received;
      EXPECT_FALSE(q.core().remove(d.handle));
    }
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(received, kThreads * kEach);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), 0) << "messages lost";
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [](int n) { return n > 1; }), 0) << "messages delivered twice";
  EXPECT_EQ(out_of_order, "");
  EXPECT_GT(lock_free.load(), kThreads * kEach / 2) << "most sends should not need the mutex";
  EXPECT_TRUE(receive_all(q).empty()) << "a message arrived twice";
  // Each sender's cache goes back as its queue closes; here, one process.
  expect_nothing_held(q);
}

// Two processes fill a queue: the slots in one's cache come back when the
// other finds the queue full, so the other is refused only once the queue
// holds exactly its capacity.
TEST(LockFreeSend, ASenderIsRefusedOnlyOnceTheQueueHoldsItsCapacityThoughAnotherProcessCachesSlots) {
  CoreHarness q(kSlots, kArena);
  ASSERT_TRUE(send_lock_free(q, "parent")) << "the parent's cache now holds slots";
  int sent_by_child[2];
  ASSERT_EQ(::pipe(sent_by_child), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::uint32_t n = 0;
    while (!send_any(q, "child")) ++n;
    (void)!::write(sent_by_child[1], &n, sizeof(n));
    ::_exit(0);
  }
  std::uint32_t child_sent = 0;
  ASSERT_EQ(::read(sent_by_child[0], &child_sent, sizeof(child_sent)), static_cast<ssize_t>(sizeof(child_sent)));
  ::waitpid(child, nullptr, 0);
  ::close(sent_by_child[0]);
  ::close(sent_by_child[1]);
  EXPECT_EQ(child_sent, kSlots - 1) << "the child was refused while the parent's cache held free slots";
  EXPECT_EQ(send_any(q, "parent"), Errc::queue_full) << "the parent's cache still held slots: the queue was not full";
  const QueueCore::Stats s = q.core().stats();
  EXPECT_EQ(s.counts.visible, kSlots);
  EXPECT_EQ(s.counts.cached, 0u);
  EXPECT_EQ(receive_all(q).size(), kSlots);
  expect_nothing_held(q);
}

TEST(LockFreeSend, PurgeTakesEverythingBackIncludingCachedSlots) {
  CoreHarness q(kSlots, kArena);
  int sent = 0;
  for (const std::size_t size : {10, 100, 200, 400, 800}) {
    for (int i = 0; i < 4; ++i, ++sent) ASSERT_TRUE(send_lock_free(q, std::string(size, 'p')));
  }
  ASSERT_EQ(q.header().counts.visible, 0u) << "the test wants them still on the submit ring";
  EXPECT_EQ(q.core().purge(), std::optional<std::uint32_t>(sent));
  const QueueCore::Stats s = q.core().stats();
  EXPECT_EQ(s.arena_free_bytes, kArena) << "a purged queue must have all its payload space";
  EXPECT_EQ(s.counts.cached, 0u);
  EXPECT_EQ(s.counts.visible, 0u);
  EXPECT_TRUE(q.receive(10).empty()) << "a message sent before the purge survived it";
  // This process's cache was emptied under it; its sends go on.
  ASSERT_TRUE(send_lock_free(q, "after"));
  EXPECT_EQ(receive_all(q), (Strings{"after"}));
  expect_nothing_held(q);
}

// One sender's messages in its order when some go without the mutex and a
// later one cannot (its block is too large for a cache): the locked commit
// takes what waits on the submit ring first.
TEST(LockFreeSend, ASendersMessagesKeepTheirOrderWhenOneOfThemTakesTheLockedPath) {
  CoreHarness q(kSlots, kArena);
  const std::string big(2000, 'B');
  ASSERT_TRUE(send_lock_free(q, "a"));
  ASSERT_TRUE(send_lock_free(q, std::string(500, 'b')));
  ASSERT_FALSE(send_lock_free(q, big));
  ASSERT_FALSE(q.send(big, 0, this_pid()));
  ASSERT_TRUE(send_lock_free(q, "c"));
  EXPECT_EQ(receive_all(q), (Strings{"a", std::string(500, 'b'), big, "c"}));
  expect_nothing_held(q);
}

// A send between its commit point and its push onto the submit ring while
// the caches are taken back (by a purge here; a full queue takes them back
// too): the message is left to its sender, whose ring entry commits it. A
// message committed under it instead leaves that entry behind to name
// whatever message the slot holds next, and to commit it ahead of its
// sender's earlier messages.
TEST(LockFreeSend, ASendPausedBeforeItsRingPushKeepsLaterSendsInOrderWhenTheCachesAreTakenBack) {
  CoreHarness q(kSlots, kArena);
  detail::SegmentHeader& h = q.header();
  const std::string paused_body(40, 'p');
  // The paused sender: its copy done, its state moved past the commit point
  // by hand. It is not reclaimed: as far as the queue knows, it is alive.
  const std::uint32_t paused = die_in_child(
      [&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), paused_body, pid, {}, paused_body.size()); });
  const auto slot = slots_in(q, MessageState::kWriting, paused);
  ASSERT_EQ(slot.size(), 1u);
  detail::atom(q.core().descriptor(slot[0]).state).store(static_cast<std::uint32_t>(MessageState::kPending));

  ASSERT_TRUE(q.core().purge().has_value());
  // Two slots in front of whatever the purge freed last (free-list order),
  // so that another sender's second message lands in the freed slot.
  detail::Reservation first = q.reserve_only(10, this_pid());
  detail::Reservation second = q.reserve_only(10, this_pid());
  q.core().unreserve(std::span(&first, 1));
  q.core().unreserve(std::span(&second, 1));
  // The paused sender goes on: its index onto the ring, as send_lock_free
  // does after the commit point.
  detail::SubmitRing ring(h.submit_cells, h.submit_tail, h.roots.submit_head);
  ASSERT_TRUE(ring.push(slot[0]));

  QueueCore other(q.segment().base());  // another sender, with a cache of its own
  Strings sent;
  for (int i = 0; i < 8; ++i) {
    sent.push_back("o" + std::to_string(i));
    ASSERT_TRUE(send_lock_free(other, q.now(), sent.back(), this_pid()));
  }
  Strings got = receive_all(q);
  EXPECT_EQ(std::count(got.begin(), got.end(), paused_body), 1) << "the paused send was lost or doubled";
  got.erase(std::remove(got.begin(), got.end(), paused_body), got.end());
  EXPECT_EQ(got, sent) << "a stale ring entry committed a later message first";
  other.release_cache(this_pid());
  EXPECT_EQ(reclaim(q, paused), 0u) << "the purge took the paused sender's cache back";
  expect_nothing_held(q);
}

// A process whose cache still lists slots that were taken back (by a purge
// here; a full queue takes them back too) and are in another process's
// cache since: its sends must leave them alone, not claim them even for a
// moment. Meanwhile their owner would find them taken and drop them for
// good, or the daemon reclaiming that owner would free a slot that the
// claimer then marks cached again, on the free list.
TEST(LockFreeSend, AStaleCacheEntryNeverClaimsAnotherProcesssSlot) {
  constexpr std::uint32_t kFirst = 100, kSecond = 200;  // two processes' pids
  for (int round = 0; round < 20; ++round) {
    CoreHarness q(kSlots, kArena);
    QueueCore first(q.segment().base());
    QueueCore second(q.segment().base());
    ASSERT_TRUE(send_lock_free(first, q.now(), "1", kFirst));
    ASSERT_EQ(q.core().purge(), std::optional<std::uint32_t>(1)) << "takes the first one's cache back";
    ASSERT_TRUE(send_lock_free(second, q.now(), "2", kSecond));
    const auto held = slots_in(q, MessageState::kCached, kSecond);
    ASSERT_EQ(held.size(), QueueCore::kCacheRefill - 1);

    // The second one's cached slots, watched while the first one sends
    // from its stale cache.
    std::atomic<int> passes{0};
    std::atomic<bool> done{false};
    std::atomic<std::uint32_t> touched{detail::kNil};
    std::thread watcher([&] {
      while (!done.load()) {
        for (const std::uint32_t i : held) {
          if (state_of(q, i) != MessageState::kCached) touched = i;
        }
        ++passes;
      }
    });
    while (passes.load() < 100) std::this_thread::yield();
    ASSERT_TRUE(send_lock_free(first, q.now(), "3", kFirst));
    done = true;
    watcher.join();
    ASSERT_EQ(touched.load(), detail::kNil)
        << "round " << round << ": slot " << touched.load() << " of another process's cache was claimed";
    for (const std::uint32_t i : held) EXPECT_EQ(state_of(q, i), MessageState::kCached);
    EXPECT_EQ(receive_all(q), (Strings{"2", "3"}));
  }
}

// (a) A sender killed with slots in its cache, after a send: the send is
// delivered and the cached slots are freed.
TEST(LockFreeSend, ASenderKilledHoldingCachedSlotsLosesNothingAndLeaksNothing) {
  CoreHarness q(kSlots, kArena);
  const std::uint32_t child = die_in_child([&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), "sent", pid); });
  EXPECT_EQ(slots_in(q, MessageState::kCached, child).size(), QueueCore::kCacheRefill - 1);
  EXPECT_EQ(q.header().counts.cached, QueueCore::kCacheRefill);
  expect_rebuild_agrees(q);

  EXPECT_EQ(reclaim(q, child), QueueCore::kCacheRefill - 1);
  EXPECT_EQ(q.header().counts.cached, 0u);
  EXPECT_EQ(q.core().stats().counts.visible, 1u);
  expect_rebuild_agrees(q);
  EXPECT_EQ(receive_all(q), (Strings{"sent"}));
  expect_nothing_held(q);
}

// (b) A sender killed after its commit point (kPending) and before it put
// the index on the submit ring: only the reclaim knows of the message, and
// must deliver it (the send may have returned).
TEST(LockFreeSend, ASenderKilledAfterItsCommitPointBeforeTheRingHasItsMessageDelivered) {
  CoreHarness q(kSlots, kArena);
  const MessageId id = detail::new_message_id();
  const std::string body(300, 'w');
  // Killed at the end of the copy, then moved past the commit point by hand:
  // everything the send writes before kPending is written.
  const std::uint32_t child =
      die_in_child([&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), body, pid, id, body.size()); });
  const auto writing = slots_in(q, MessageState::kWriting, child);
  ASSERT_EQ(writing.size(), 1u);
  detail::atom(q.core().descriptor(writing[0]).state).store(static_cast<std::uint32_t>(MessageState::kPending));
  EXPECT_EQ(q.core().available_count(), 0u) << "the test wants the message off the ring";
  EXPECT_EQ(q.header().counts.cached, QueueCore::kCacheRefill);
  expect_rebuild_agrees(q);

  EXPECT_EQ(reclaim(q, child), QueueCore::kCacheRefill - 1) << "the cached slots, not the pending message";
  EXPECT_EQ(q.header().counts.cached, 0u);
  EXPECT_EQ(q.header().counts.visible, 1u);
  EXPECT_EQ(q.header().counts.sent_total, 1u);
  expect_rebuild_agrees(q);
  const auto got = q.receive(10);
  ASSERT_EQ(got.size(), 1u) << "a message past its commit point was lost";
  EXPECT_EQ(q.body(got[0]), body);
  EXPECT_EQ(std::memcmp(got[0].message_id, id.data(), id.size()), 0);
  ASSERT_FALSE(q.core().remove(got[0].handle));
  expect_nothing_held(q);
}

// (c) A sender killed in the middle of its copy: the message was never
// sent, so it is freed with the cached slots, and never delivered.
TEST(LockFreeSend, ASenderKilledMidCopyHasItsSlotFreedAndNothingDelivered) {
  CoreHarness q(kSlots, kArena);
  ASSERT_TRUE(send_lock_free(q, "kept"));
  const std::uint32_t child =
      die_in_child([&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), std::string(500, 'h'), pid, {}, 250); });
  const auto writing = slots_in(q, MessageState::kWriting, child);
  ASSERT_EQ(writing.size(), 1u);
  EXPECT_EQ(q.header().counts.writing, 0u) << "a cache's slot is counted as cached while written";
  EXPECT_EQ(q.header().counts.cached, 2 * QueueCore::kCacheRefill);
  expect_rebuild_agrees(q);

  EXPECT_EQ(reclaim(q, child), QueueCore::kCacheRefill);
  EXPECT_EQ(state_of(q, writing[0]), MessageState::kFree);
  EXPECT_EQ(q.header().counts.writing, 0u);
  EXPECT_EQ(q.header().counts.cached, QueueCore::kCacheRefill) << "this process's cache and its pending message";
  expect_rebuild_agrees(q);
  EXPECT_EQ(receive_all(q), (Strings{"kept"})) << "a half-written message was delivered";
  expect_nothing_held(q);
}

// The daemon's reclaim commits a dead sender's message that never reached
// the submit ring: no sender will wake a receiver for it, so the reclaim
// does, as a send would. (A receiver asleep in a long poll would otherwise
// get the message only at the end of its wait.)
TEST(LockFreeSend, AMessageTheReclaimCommitsWakesASleepingReceiver) {
  CoreHarness q(kSlots, kArena);
  detail::SegmentHeader& h = q.header();
  const std::uint32_t child =
      die_in_child([&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), "late", pid, {}, 4); });
  const auto slot = slots_in(q, MessageState::kWriting, child);
  ASSERT_EQ(slot.size(), 1u);
  detail::atom(q.core().descriptor(slot[0]).state).store(static_cast<std::uint32_t>(MessageState::kPending));

  // A receiver goes to sleep as Queue::receive does: a waiter, then a look,
  // then the futex.
  std::atomic<bool> asleep{false};
  std::atomic<bool> woken{false};
  std::thread receiver([&] {
    q.core().add_waiter(this_pid());
    const std::uint32_t seq = detail::atom(h.ready_seq).load();
    asleep = true;
    if (q.core().available_count() == 0) detail::futex_wait(&h.ready_seq, seq, 30'000'000'000ull);
    q.core().remove_waiter(this_pid());
    woken = true;
  });
  while (!asleep) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // into the futex
  ASSERT_FALSE(woken) << "the receiver did not sleep: the test proves nothing";

  EXPECT_EQ(reclaim(q, child), QueueCore::kCacheRefill - 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!woken && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(woken) << "the receiver slept on with a message ready";
  if (!woken) {
    detail::atom(h.ready_seq).fetch_add(1);  // let it go
    detail::futex_wake(&h.ready_seq, 1);
  }
  receiver.join();
  EXPECT_EQ(receive_all(q), (Strings{"late"}));
  expect_nothing_held(q);
}

// A lock owner dies while processes hold cached slots, pending messages
// (on the submit ring and off it) and a half-written one: the rebuild
// leaves every one of them as it was, counts them, and sends go on from the
// same caches.
TEST(LockFreeSend, ARebuildLeavesCachedAndPendingSlotsAloneAndCountsThem) {
  CoreHarness q(kSlots, kArena);
  ASSERT_TRUE(send_lock_free(q, "a"));
  ASSERT_TRUE(send_lock_free(q, std::string(100, 'b')));
  const std::uint32_t mid_copy =
      die_in_child([&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), std::string(40, 'x'), pid, {}, 20); });
  const std::string off_ring(40, 'o');
  const std::uint32_t past_commit =
      die_in_child([&](std::uint32_t pid) { send_lock_free(q.core(), q.now(), off_ring, pid, {}, off_ring.size()); });
  const auto past = slots_in(q, MessageState::kWriting, past_commit);
  ASSERT_EQ(past.size(), 1u);
  detail::atom(q.core().descriptor(past[0]).state).store(static_cast<std::uint32_t>(MessageState::kPending));
  constexpr std::uint32_t kHeld = 4 * QueueCore::kCacheRefill;  // two caches here, one in each child
  ASSERT_EQ(q.header().counts.cached, kHeld);
  std::map<std::uint32_t, MessageState> held;  // every slot a cache holds, and its state
  for (std::uint32_t i = 0; i < q.header().roots.unused_from; ++i) {
    if (state_of(q, i) != MessageState::kFree) held[i] = state_of(q, i);
  }
  ASSERT_EQ(held.size(), kHeld);

  const std::uint32_t some_cached = slots_in(q, MessageState::kCached, this_pid()).front();
  die_holding_lock(q.header(), [&] {
    // Derived structures half-changed: a cached slot on the free list, the
    // counts wrong.
    q.header().roots.free_head = some_cached;
    q.header().counts.cached = 999;
    q.header().counts.visible = 7;
  });
  EXPECT_EQ(reclaim(q, 0), 0u) << "the next locker rebuilds, and nobody's slots are reclaimed";
  EXPECT_EQ(q.header().counts.recoveries, 1u);
  EXPECT_EQ(q.header().counts.cached, kHeld);
  EXPECT_EQ(q.header().counts.visible, 0u);
  EXPECT_EQ(q.header().counts.writing, 0u);
  for (const auto& [index, state] : held) EXPECT_EQ(state_of(q, index), state) << "slot " << index;
  std::string why;
  EXPECT_FALSE(detail::check_tables(q.header(), &why)) << why;

  // The free list holds no cached slot: a locked reservation gets none.
  std::vector<detail::Reservation> reserved;
  for (int i = 0; i < 40; ++i) {
    reserved.push_back(q.reserve_only(10, this_pid()));
    EXPECT_EQ(held.count(reserved.back().index), 0u) << "slot " << reserved.back().index << " handed out twice";
  }
  q.core().unreserve(reserved);

  // This process's caches still serve it, without a refill.
  Strings sent{"a", std::string(100, 'b')};
  for (std::uint32_t i = 0; i + 1 < QueueCore::kCacheRefill; ++i) {
    sent.push_back("n" + std::to_string(i));
    ASSERT_TRUE(send_lock_free(q, sent.back()));
  }
  EXPECT_EQ(q.header().counts.cached, kHeld) << "a cache was refilled: the rebuild took its slots";

  EXPECT_EQ(reclaim(q, mid_copy), QueueCore::kCacheRefill);
  EXPECT_EQ(reclaim(q, past_commit), QueueCore::kCacheRefill - 1);
  sent.push_back(off_ring);  // committed by the reclaim
  const Strings got = receive_all(q);
  EXPECT_EQ(std::multiset<std::string>(got.begin(), got.end()), std::multiset<std::string>(sent.begin(), sent.end()));
  expect_rebuild_agrees(q);
  expect_nothing_held(q);
}

// A locker killed in the middle of taking an entry off the submit ring
// (its cell released for the next lap, the head not moved), while senders
// with full caches go on without the mutex for more than a lap: every
// message they sent is delivered once someone takes the mutex.
TEST(LockFreeSend, MessagesSentAfterALockerDiedMidDrainAreDelivered) {
  CoreHarness q(kSlots, kArena);
  // Four senders (each a QueueCore with a cache of its own, as four
  // processes have) with five warm caches each: 300 sends without a lock.
  const std::array<std::size_t, 5> sizes{10, 100, 200, 400, 800};
  std::vector<std::unique_ptr<QueueCore>> senders;
  for (int s = 0; s < 4; ++s) {
    senders.push_back(std::make_unique<QueueCore>(q.segment().base()));
    for (const std::size_t size : sizes) {
      ASSERT_TRUE(send_lock_free(*senders.back(), q.now(), std::string(size, 'w'), this_pid()));
    }
  }
  ASSERT_EQ(receive_all(q).size(), senders.size() * sizes.size());
  ASSERT_TRUE(send_lock_free(q, "first"));
  const std::uint32_t first = slots_in(q, MessageState::kPending, this_pid()).front();
  detail::SegmentHeader& h = q.header();
  die_holding_lock(h, [&] {
    // What drain_submitted does for the head entry, up to the middle of
    // pop(): the message committed (a rebuild finds it from its state),
    // the cell released, the head not moved.
    detail::MessageDescriptor& m = q.core().descriptor(first);
    m.seq = h.roots.next_seq++;
    detail::atom(m.state).store(static_cast<std::uint32_t>(MessageState::kReady));
    const std::uint32_t head = h.roots.submit_head;
    h.submit_cells[head % detail::kSubmitCells] = std::uint64_t{head + detail::kSubmitCells} << 32;
  });
  Strings sent{"first"};
  for (int round = 0; round < 15; ++round) {
    for (auto& core : senders) {
      for (const std::size_t size : sizes) {
        sent.push_back(std::to_string(sent.size()) + std::string(size, '.'));
        ASSERT_TRUE(send_lock_free(*core, q.now(), sent.back(), this_pid()));
      }
    }
  }
  ASSERT_GT(sent.size(), detail::kSubmitCells + 1) << "the senders must go round the ring";
  const Strings got = receive_all(q);
  EXPECT_EQ(q.header().counts.recoveries, 1u);
  EXPECT_EQ(got.size(), sent.size()) << "messages sent without the mutex were never delivered";
  EXPECT_EQ(std::multiset<std::string>(got.begin(), got.end()), std::multiset<std::string>(sent.begin(), sent.end()));
  for (auto& core : senders) core->release_cache(this_pid());
  expect_nothing_held(q);
}

// A send that finds the submit ring full commits under the mutex; with the
// lock held by a stopped process it must answer within its lock wait (the
// locked path then says queue_busy), never wait for the holder, and lose
// nothing: the slot goes back to its cache.
TEST(LockFreeSend, ASendThatFindsTheRingFullWhileTheLockIsHeldGivesUpAndLosesNothing) {
  CoreHarness q(4 * kSlots, kArena);
  q.core().set_lock_wait(50'000'000);  // 50 ms
  // One cache of 128-byte blocks (15 slots left in it), then 255 messages of
  // 64 bytes: 256 entries on the ring, which nobody has drained.
  ASSERT_TRUE(send_lock_free(q, std::string(100, 'b')));
  Strings sent{std::string(100, 'b')};
  for (int i = 0; i < 255; ++i) {
    sent.push_back("m" + std::to_string(i));
    ASSERT_TRUE(send_lock_free(q, sent.back())) << i;
  }
  const pid_t holder = test::hold_lock_in_child(q.header(), [] {});
  ASSERT_GT(holder, 0);

  // A 128-byte send: a cached slot, no refill, and a full ring.
  auto answer = std::async(std::launch::async, [&] { return send_lock_free(q, std::string(100, 'c')); });
  const bool answered = answer.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ASSERT_TRUE(answered) << "the send waited for the stopped lock holder";
  EXPECT_FALSE(answer.get()) << "sent with the lock held: the ring was not full?";

  // The holder is gone: everything sent arrives, in order, and the slot the
  // refused send held is back in its cache.
  EXPECT_EQ(receive_all(q), sent);
  EXPECT_EQ(slots_in(q, MessageState::kPending, this_pid()).size(), 0u);
  ASSERT_TRUE(send_lock_free(q, std::string(100, 'd')));
  EXPECT_EQ(receive_all(q), (Strings{std::string(100, 'd')}));
  expect_nothing_held(q);
}

// A check of the tables (every repair after a dead lock owner, a daemon
// attaching) reads a slot's body and attribute lengths while a send
// without the mutex may be storing them. A cached slot holds zero lengths,
// so that a reader seeing one old and one new length never finds them
// adding up past the block and refuses a sound queue as corrupt. (Before,
// a cached slot held the block's whole size as its body length.)
TEST(LockFreeSend, ACachedSlotHoldsNoLengthsForACheckToTearAcrossASend) {
  CoreHarness q(kSlots, kArena);
  ASSERT_TRUE(send_lock_free(q, "m"));
  const auto cached = slots_in(q, MessageState::kCached, this_pid());
  ASSERT_EQ(cached.size(), QueueCore::kCacheRefill - 1);
  for (const std::uint32_t i : cached) {
    const detail::MessageDescriptor& m = q.core().descriptor(i);
    EXPECT_EQ(m.body_bytes, 0u) << "slot " << i;
    EXPECT_EQ(m.attr_bytes, 0u) << "slot " << i;
  }
  EXPECT_EQ(receive_all(q), (Strings{"m"}));
  expect_nothing_held(q);
}

// A slot freed under a send without the mutex (its owner taken for dead:
// a reused pid, a daemon's reclaim) is not its sender's any more: the
// send's commit point must not overwrite whatever the slot is now, and the
// message goes the locked way instead.
TEST(LockFreeSend, ASendWhoseSlotWasFreedUnderItDoesNotMarkItPending) {
  CoreHarness q(kSlots, kArena);
  ASSERT_TRUE(send_lock_free(q, "warm"));  // a filled cache
  struct Context {
    CoreHarness* q;
    std::uint32_t freed = detail::kNil;
  } context{&q};
  const QueueCore::Fill fill{
      [](void* c, std::size_t, std::uint8_t*) noexcept {
        auto& ctx = *static_cast<Context*>(c);
        // As a reclaim would leave it: kFree (the test plays the reclaim).
        for (std::uint32_t i = 0; i < ctx.q->header().roots.unused_from; ++i) {
          auto& m = ctx.q->core().descriptor(i);
          if (detail::atom(m.state).load() == static_cast<std::uint32_t>(MessageState::kWriting)) {
            detail::atom(m.state).store(static_cast<std::uint32_t>(MessageState::kFree));
            ctx.freed = i;
          }
        }
      },
      &context};
  detail::CommitRequest req;
  req.message_id = detail::new_message_id();
  detail::CommitResult res;
  EXPECT_FALSE(q.core().send_lock_free(QueueCore::kAnyEpoch, 4, this_pid(), fill, 4, req, res, q.now()));
  ASSERT_NE(context.freed, detail::kNil) << "the send claimed no slot";
  EXPECT_EQ(state_of(q, context.freed), MessageState::kFree) << "the send's commit point overwrote a freed slot";
}

// A full queue whose caches hold only slots under way (a sender mid-copy,
// alive) answers each refused send at once: it takes the caches back once,
// and again only after some cache was filled since. (Before, every refused
// send scanned every slot under the mutex while the count of cached slots,
// which counts slots under way, stayed above zero.)
TEST(LockFreeSend, AFullQueueTakesTheCachesBackOnlyWhenACacheWasFilledSince) {
  constexpr std::uint32_t kOther = 300;  // a live sender, stopped in its copy
  CoreHarness q(kSlots, kArena);
  QueueCore other(q.segment().base());
  ASSERT_TRUE(send_lock_free(other, q.now(), "o", kOther));
  const auto cached = slots_in(q, MessageState::kCached, kOther);
  ASSERT_FALSE(cached.empty());
  // Its next send claimed a slot and is copying (the claim, as claim_cached makes it).
  std::uint32_t word = detail::atom(q.core().descriptor(cached[0]).state).load();
  ASSERT_TRUE(detail::atom(q.core().descriptor(cached[0]).state)
                  .compare_exchange_strong(word, static_cast<std::uint32_t>(MessageState::kWriting)));
  std::uint32_t accepted = 0;
  while (!q.send("f", 0, this_pid())) ++accepted;
  EXPECT_EQ(accepted, kSlots - 2) << "the message sent and the slot under way are the only ones not free";
  const std::uint64_t take_backs = q.core().stats().cache_take_backs;
  EXPECT_EQ(take_backs, 1u) << "the first refusal takes the caches back";
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.send("f", 0, this_pid()), Errc::queue_full);
  EXPECT_EQ(q.core().stats().cache_take_backs, take_backs) << "a refused send scanned every slot again";
  // Nor after sends that tried to fill a cache and found nothing to take.
  QueueCore empty_cache(q.segment().base());
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(send_lock_free(empty_cache, q.now(), "e", kOther + 1));
    EXPECT_EQ(q.send("f", 0, this_pid()), Errc::queue_full);
  }
  EXPECT_EQ(q.core().stats().cache_take_backs, take_backs) << "a refill that cached nothing counted as one";

  // A cache filled since (after a delete, by the other sender) is taken
  // back by the next refusal.
  const auto got = q.receive(QueueCore::kCacheRefill + 1);
  for (const auto& d : got) ASSERT_FALSE(q.core().remove(d.handle));
  ASSERT_TRUE(send_lock_free(q, "refill"));
  while (!q.send("f", 0, this_pid())) {
  }
  EXPECT_EQ(q.core().stats().cache_take_backs, take_backs + 1);
  EXPECT_EQ(slots_in(q, MessageState::kCached, this_pid()).size(), 0u);
}

// A process closing a queue after a trim (which took its cache back and
// gave the descriptors' pages away) reads none of its old entries' slots:
// a read there allocates the page again, and on a full /dev/shm raises
// SIGBUS. (Before, release_cache took back every entry it still listed.)
TEST(LockFreeSend, AProcessClosingAQueueAfterATrimTouchesNoPageTheTrimGaveBack) {
  constexpr std::uint32_t kOther = 300;
  CoreHarness q(1u << 17, 16ull << 20, false, CoreHarness::Backed{});
  QueueCore other(q.segment().base(), detail::Backing(q.segment().base(), q.segment().segment().fd()));
  ASSERT_TRUE(send_lock_free(other, q.now(), "idle", kOther));
  // Enough messages for a trim to be worth it (QueueCore::kTrimAboveBytes).
  const std::string body(64, 'g');
  for (int i = 0; i < 70'000; ++i) ASSERT_FALSE(q.send(body, 0, this_pid()));
  EXPECT_EQ(receive_all(q).size(), 70'001u);
  q.core().release_cache(this_pid());
  for (int steps = 0; q.core().trim_step() != QueueCore::TrimProgress::kDone; ++steps) ASSERT_LT(steps, 1000);
  ASSERT_EQ(q.core().stats().trims, 1u);
  const auto resident = [&] {
    struct stat st {};
    EXPECT_EQ(::fstat(q.segment().segment().fd(), &st), 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
  };
  const std::uint64_t trimmed = resident();
  other.release_cache(kOther);
  EXPECT_EQ(resident(), trimmed) << "closing the queue touched descriptors the trim had given back";
  // The other process's sends go on, from a cache filled anew.
  ASSERT_TRUE(send_lock_free(other, q.now(), "after", kOther));
  EXPECT_EQ(receive_all(q), (Strings{"after"}));
  other.release_cache(kOther);
}

// After a take-back, a process's cache lists nothing from before it, even
// where a slot's state word names the generation an entry names (24 bits
// of generation wrap after 2^24 reuses of a slot): its next send refills
// instead of claiming, for a moment, a slot that is another process's now.
TEST(LockFreeSend, ACacheFilledBeforeATakeBackNeverClaimsEvenWhereTheGenerationWrapped) {
  constexpr std::uint32_t kFirst = 100, kSecond = 200;
  CoreHarness q(kSlots, kArena);
  QueueCore first(q.segment().base());
  QueueCore second(q.segment().base());
  ASSERT_TRUE(send_lock_free(first, q.now(), "1", kFirst));
  const auto stale = slots_in(q, MessageState::kCached, kFirst);
  std::map<std::uint32_t, std::uint32_t> stale_words;
  for (const std::uint32_t i : stale) stale_words[i] = detail::atom(q.core().descriptor(i).state).load();
  ASSERT_EQ(q.core().purge(), std::optional<std::uint32_t>(1)) << "takes the first one's cache back";
  ASSERT_TRUE(send_lock_free(second, q.now(), "2", kSecond));
  // The second one's cache holds those slots now; their words as if each
  // generation had wrapped round to what the first one's entries name.
  std::vector<std::uint32_t> wrapped;
  for (const std::uint32_t i : slots_in(q, MessageState::kCached, kSecond)) {
    if (!stale_words.count(i)) continue;
    detail::atom(q.core().descriptor(i).state).store(stale_words[i]);
    wrapped.push_back(i);
  }
  ASSERT_FALSE(wrapped.empty());

  // The first one's sends, watched at every instruction: a claim of one of
  // those slots would last a few instructions before the owner check put it
  // back, too short for a watching thread to see.
  if (const char* why = test::why_not_traced()) GTEST_SKIP() << why;
  std::uint32_t touched = detail::kNil;
  test::at_every_instruction(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (!send_lock_free(first, q.now(), "3", kFirst)) ::_exit(3);
        }
      },
      [&](bool) {
        for (const std::uint32_t i : wrapped) {
          if (detail::atom(q.core().descriptor(i).state).load() != stale_words[i]) touched = i;
        }
      });
  EXPECT_EQ(touched, detail::kNil) << "slot " << touched << " of another process's cache was claimed";
  EXPECT_FALSE(q.core().refused()) << q.core().refusal();
  EXPECT_EQ(receive_all(q), (Strings{"2", "3", "3", "3", "3"}));
}

}  // namespace
}  // namespace shmq
