// A queue grows with its backlog up to its memory limit, and an emptied queue
// gives its memory back (QueueCore::trim_step): its /dev/shm file's blocks
// shrink, sends work as before, and no receipt handle from before the trim
// touches a message sent after it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "core_harness.hpp"

namespace shmq::test {
namespace {

using detail::QueueCore;

constexpr std::uint64_t kArena = 64ull << 20;

// Bytes of /dev/shm the segment file holds.
std::uint64_t resident(TestSegment& s) {
  struct stat st {};
  EXPECT_EQ(::fstat(s.segment().fd(), &st), 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// Sends `n` messages of 64 B; returns how many were accepted before the
// first refusal (and that refusal in `error`).
std::uint32_t send_many(CoreHarness& q, std::uint32_t n, std::error_code* error = nullptr) {
  const std::string body(64, 'b');
  for (std::uint32_t i = 0; i < n; ++i) {
    if (auto ec = q.send(body)) {
      if (error) *error = ec;
      return i;
    }
  }
  return n;
}

// Receives and deletes everything visible; returns how many.
std::uint32_t drain(CoreHarness& q) {
  std::uint32_t n = 0;
  for (;;) {
    const auto got = q.receive(10);
    if (got.empty()) return n;
    for (const auto& d : got) EXPECT_FALSE(q.core().remove(d.handle));
    n += static_cast<std::uint32_t>(got.size());
  }
}

void trim_all(CoreHarness& q) {
  for (int steps = 0; q.core().trim_step() != QueueCore::TrimProgress::kDone; ++steps) {
    ASSERT_LT(steps, 1000) << "a trim that never ends";
  }
}

TEST(QueueGrowth, HoldsFarMoreThanTheOldFixedSlotCount) {
  CoreHarness q(1u << 18, kArena, false, CoreHarness::Backed{});
  EXPECT_EQ(send_many(q, 200'000), 200'000u);
  EXPECT_EQ(drain(q), 200'000u);
}

TEST(QueueGrowth, MemoryLimitRefusesSendsPastItAndFreedSlotsAreReused) {
  // Room for the header, one 2 MiB arena block with its order-map bytes and
  // 16 chunks of 64 slots (1,024 messages of 64 B).
  constexpr std::uint64_t kChunk = 64 * (sizeof(detail::MessageDescriptor) + sizeof(std::uint32_t));
  const std::uint64_t limit =
      sizeof(detail::SegmentHeader) + detail::kMaxBlock + (detail::kMaxBlock >> detail::kMinOrder) + 16 * kChunk;
  CoreHarness q(1u << 16, kArena, false, CoreHarness::Backed{limit});
  std::error_code refused;
  EXPECT_EQ(send_many(q, 5000, &refused), 1024u);
  EXPECT_EQ(refused, Errc::queue_full);
  EXPECT_LE(q.core().stats().memory_in_use, limit);
  EXPECT_EQ(q.core().stats().memory_limit, limit);

  // Deleted messages leave their slots and blocks to the next sends.
  const auto got = q.receive(10);
  ASSERT_EQ(got.size(), 10u);
  for (const auto& d : got) ASSERT_FALSE(q.core().remove(d.handle));
  EXPECT_EQ(send_many(q, 100, &refused), 10u);
  EXPECT_EQ(refused, Errc::queue_full);
  EXPECT_EQ(drain(q), 1024u);
}

TEST(QueueGrowth, AnEmptiedQueueGivesItsMemoryBackAndKeepsWorking) {
  CoreHarness q(1u << 18, kArena, false, CoreHarness::Backed{});
  const std::uint64_t empty = resident(q.segment());
  ASSERT_EQ(send_many(q, 150'000), 150'000u);
  const std::uint64_t full = resident(q.segment());
  EXPECT_GT(full, empty + (16u << 20)) << "150,000 messages back their slots and blocks";
  EXPECT_EQ(drain(q), 150'000u);
  EXPECT_EQ(resident(q.segment()), full) << "nothing is given back while the trim has not run";

  trim_all(q);
  const std::uint64_t trimmed = resident(q.segment());
  EXPECT_LT(trimmed, empty + (1u << 20)) << "after the drain: " << trimmed << " bytes, empty: " << empty;
  const QueueCore::Stats stats = q.core().stats();
  EXPECT_EQ(stats.trims, 1u);
  EXPECT_EQ(stats.slots_ever_used, 0u);
  EXPECT_LT(stats.memory_in_use, 1u << 20);

  // It grows again from the start, and what it holds is what was sent.
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(q.send("again " + std::to_string(i)));
  std::vector<std::string> bodies;
  for (auto got = q.receive(10); !got.empty(); got = q.receive(10)) {
    for (const auto& d : got) {
      bodies.push_back(q.body(d));
      ASSERT_FALSE(q.core().remove(d.handle));
    }
  }
  ASSERT_EQ(bodies.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(bodies[i], "again " + std::to_string(i));
}

TEST(QueueGrowth, AFifoQueueGrowsAndGivesItsMemoryBackToo) {
  CoreHarness q(1u << 18, kArena, true, CoreHarness::Backed{});
  const std::uint64_t empty = resident(q.segment());
  constexpr int kMessages = 150'000;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_FALSE(q.send(std::to_string(i), 0, 1, "g" + std::to_string(i % 100))) << i;
  }
  EXPECT_GT(resident(q.segment()), empty + (16u << 20));
  // Each group's messages come back in send order.
  std::vector<int> last(100, -1);
  int received = 0;
  for (auto got = q.receive(10); !got.empty(); got = q.receive(10)) {
    for (const auto& d : got) {
      const int n = std::stoi(q.body(d));
      EXPECT_GT(n, last[n % 100]);
      last[n % 100] = n;
      ASSERT_FALSE(q.core().remove(d.handle));
      ++received;
    }
  }
  EXPECT_EQ(received, kMessages);
  trim_all(q);
  EXPECT_EQ(q.core().stats().trims, 1u);
  EXPECT_LT(resident(q.segment()), empty + (1u << 20));
  ASSERT_FALSE(q.send("after", 0, 1, "g0"));
  const auto got = q.receive(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(q.body(got[0]), "after");
}

TEST(QueueGrowth, AQueueWithAMessageLeftIsNotTrimmed) {
  CoreHarness q(1u << 18, kArena, false, CoreHarness::Backed{});
  ASSERT_EQ(send_many(q, 100'000), 100'000u);
  auto got = q.receive(10);
  // Leave one in flight, delete every other message.
  for (std::size_t i = 1; i < got.size(); ++i) ASSERT_FALSE(q.core().remove(got[i].handle));
  drain(q);
  const std::uint64_t before = resident(q.segment());
  EXPECT_EQ(q.core().trim_step(), QueueCore::TrimProgress::kDone);
  EXPECT_EQ(resident(q.segment()), before);
  EXPECT_EQ(q.core().stats().trims, 0u);
  ASSERT_FALSE(q.core().remove(got[0].handle));
  trim_all(q);
  EXPECT_EQ(q.core().stats().trims, 1u);
}

TEST(QueueGrowth, AReceiptHandleFromBeforeATrimDoesNotDeleteAMessageSentAfterIt) {
  CoreHarness q(1u << 18, kArena, false, CoreHarness::Backed{});
  ASSERT_EQ(send_many(q, 100'000), 100'000u);
  const auto first = q.receive(1);
  ASSERT_EQ(first.size(), 1u);
  const detail::ReceiptHandle old_handle = first[0].handle;
  ASSERT_FALSE(q.core().remove(old_handle));
  drain(q);
  trim_all(q);
  ASSERT_EQ(q.core().stats().trims, 1u);

  // The new message takes the same slot, received once as the old one was.
  ASSERT_FALSE(q.send("after the trim"));
  const auto again = q.receive(1);
  ASSERT_EQ(again.size(), 1u);
  ASSERT_EQ(again[0].index, old_handle.index);
  EXPECT_NE(again[0].handle.generation, old_handle.generation);
  EXPECT_TRUE(q.core().remove(old_handle)) << "a stale handle must not delete the new message";
  EXPECT_EQ(q.core().stats().counts.in_flight, 1u);
  EXPECT_FALSE(q.core().remove(again[0].handle));
}

TEST(QueueGrowth, AHandleNamingASlotGivenBackIsStaleAndTouchesNothing) {
  CoreHarness q(1u << 18, kArena, false, CoreHarness::Backed{});
  ASSERT_EQ(send_many(q, 100'000), 100'000u);
  detail::ReceiptHandle last{};
  for (auto got = q.receive(10); !got.empty(); got = q.receive(10)) {
    for (const auto& d : got) {
      ASSERT_FALSE(q.core().remove(d.handle));
      last = d.handle;
    }
  }
  ASSERT_GT(last.index, 90'000u);
  trim_all(q);
  const std::uint64_t trimmed = resident(q.segment());
  // A delete or a visibility change retried with the old handle: refused,
  // and the page its slot was on stays given back.
  EXPECT_EQ(q.core().remove(last), Errc::stale_receipt_handle);
  EXPECT_EQ(q.core().change_visibility(last, 0, q.now()), Errc::stale_receipt_handle);
  EXPECT_EQ(resident(q.segment()), trimmed);
}

TEST(QueueGrowth, AReceiveAttemptRetriedAfterATrimReadsNoSlotGivenBack) {
  CoreHarness q(1u << 18, kArena, true, CoreHarness::Backed{});
  for (int i = 0; i < 100'000; ++i) ASSERT_FALSE(q.send(std::to_string(i), 0, 1, "g" + std::to_string(i % 10)));
  // Everything but the last ten, then those with an attempt id.
  for (int received = 0; received < 99'990;) {
    const auto got = q.receive(10);
    ASSERT_FALSE(got.empty());
    for (const auto& d : got) ASSERT_FALSE(q.core().remove(d.handle));
    received += static_cast<int>(got.size());
  }
  const detail::DedupKey attempt = detail::dedup_key(false, {}, "retried");
  auto last = q.receive(10, 30, &attempt);
  ASSERT_FALSE(last.empty());
  EXPECT_GT(last[0].index, 90'000u);
  for (const auto& d : last) ASSERT_FALSE(q.core().remove(d.handle));
  drain(q);
  trim_all(q);
  const std::uint64_t trimmed = resident(q.segment());
  EXPECT_TRUE(q.receive(10, 30, &attempt).empty());
  EXPECT_EQ(resident(q.segment()), trimmed);
}

TEST(QueueGrowth, ARebuildAfterATrimDiedMidwayLeavesNoGroupRecordPastTheSlots) {
  CoreHarness q(1u << 18, kArena, true, CoreHarness::Backed{});
  for (int i = 0; i < 100'000; ++i) ASSERT_FALSE(q.send("m", 0, 1, "g" + std::to_string(i)));
  drain(q);
  // What a trim killed after it lowered the slots' watermark but not the
  // group records' would leave (the order trim_step no longer writes them
  // in): the next locker rebuilds.
  const std::uint32_t records = q.header().roots.group_unused_from;
  ASSERT_GT(records, 90'000u);
  q.header().roots.unused_from = 0;
  q.core().rebuild();
  EXPECT_EQ(q.header().roots.group_unused_from, 0u);
  trim_all(q);
  ASSERT_FALSE(q.send("after", 0, 1, "g1"));
  const auto got = q.receive(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(q.body(got[0]), "after");
}

TEST(QueueGrowth, NoSlotEverHasGenerationZero) {
  CoreHarness q(1024, 2 << 20, false, CoreHarness::Backed{});
  ASSERT_FALSE(q.send("first"));
  const auto got = q.receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].handle.generation, 0u) << "a page given back reads as generation 0";
}

}  // namespace
}  // namespace shmq::test
