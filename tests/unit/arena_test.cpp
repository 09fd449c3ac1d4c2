#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "arena.hpp"

namespace shmq::detail {
namespace {

class ArenaTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kBytes = 8 << 20;

  ArenaTest()
      : memory_(kBytes), order_map_(kBytes >> kMinOrder, 0), arena_(roots_, order_map_.data(), memory_.data(), kBytes) {
    for (auto& head : roots_.arena_free_head) head = kNilOffset;
    roots_.arena_free_bytes = kBytes;
  }

  // No two live blocks overlap, and each lies inside the arena.
  void expect_disjoint() const {
    std::uint64_t end = 0;
    for (auto [offset, order] : live_) {
      ASSERT_GE(offset, end) << "overlap at " << offset;
      ASSERT_EQ(offset % (1ull << order), 0u) << "misaligned block";
      end = offset + (1ull << order);
      ASSERT_LE(end, kBytes);
    }
  }

  std::uint64_t live_bytes() const {
    std::uint64_t sum = 0;
    for (auto [offset, order] : live_) sum += 1ull << order;
    return sum;
  }

  IndexRoots roots_{};
  std::vector<std::uint8_t> memory_;
  std::vector<std::uint8_t> order_map_;
  Arena arena_;
  std::map<std::uint64_t, unsigned> live_;
};

TEST(ArenaOrder, SmallestBlockThatFits) {
  EXPECT_EQ(Arena::order_for(0), kMinOrder);
  EXPECT_EQ(Arena::order_for(64), 6u);
  EXPECT_EQ(Arena::order_for(65), 7u);
  EXPECT_EQ(Arena::order_for(1 << 20), 20u);
  EXPECT_EQ(Arena::order_for(2 << 20), 21u);
  EXPECT_GT(Arena::order_for((2 << 20) + 1), kMaxOrder);
}

TEST_F(ArenaTest, RandomAllocFreeNeverOverlapsAndCoalescesFully) {
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    if (live_.empty() || rng() % 3 != 0) {
      const unsigned order = kMinOrder + rng() % 12;
      const std::uint64_t offset = arena_.allocate(order);
      if (offset == kNilOffset) continue;
      ASSERT_TRUE(live_.emplace(offset, order).second) << "handed out twice";
    } else {
      auto it = live_.begin();
      std::advance(it, rng() % live_.size());
      arena_.release(it->first, it->second);
      live_.erase(it);
    }
    if (step % 1000 == 0) expect_disjoint();
    ASSERT_EQ(roots_.arena_free_bytes, kBytes - live_bytes());
  }
  expect_disjoint();
  for (auto [offset, order] : live_) arena_.release(offset, order);
  live_.clear();
  EXPECT_EQ(roots_.arena_free_bytes, kBytes);
  // Fully coalesced: every maximal block can be had again.
  for (std::uint64_t i = 0; i < kBytes / kMaxBlock; ++i) EXPECT_NE(arena_.allocate(kMaxOrder), kNilOffset);
  EXPECT_EQ(arena_.allocate(kMinOrder), kNilOffset);
}

TEST_F(ArenaTest, ASmallBlockFreedIsReusedWithoutSplittingAgain) {
  const std::uint64_t first = arena_.allocate(7);
  ASSERT_NE(first, kNilOffset);
  arena_.release(first, 7);
  const auto larger_lists = [&] {
    return std::vector<std::uint64_t>(std::begin(roots_.arena_free_head) + (8 - kMinOrder),
                                      std::end(roots_.arena_free_head));
  };
  const auto before = larger_lists();
  EXPECT_EQ(arena_.allocate(7), first) << "the block just freed comes back";
  EXPECT_EQ(larger_lists(), before) << "no larger block was split or merged";
}

TEST_F(ArenaTest, FreeSmallBlocksMergeWhenALargeBlockIsWanted) {
  // Fill the whole arena with 64 B blocks, free them all: only merging them
  // back can give a 2 MiB block.
  std::vector<std::uint64_t> small;
  for (std::uint64_t offset; (offset = arena_.allocate(kMinOrder)) != kNilOffset;) small.push_back(offset);
  ASSERT_EQ(small.size(), kBytes >> kMinOrder);
  for (const std::uint64_t offset : small) arena_.release(offset, kMinOrder);
  EXPECT_EQ(roots_.arena_free_bytes, kBytes);
  for (std::uint64_t i = 0; i < kBytes / kMaxBlock; ++i) EXPECT_NE(arena_.allocate(kMaxOrder), kNilOffset);
  EXPECT_EQ(arena_.allocate(kMinOrder), kNilOffset);
}

TEST_F(ArenaTest, ExhaustionIsReportedNotOverrun) {
  std::uint64_t got = 0;
  while (arena_.allocate(16) != kNilOffset) ++got;
  EXPECT_EQ(got, kBytes / (1 << 16));
  EXPECT_EQ(roots_.arena_free_bytes, 0u);
}

TEST_F(ArenaTest, RebuildFromLiveBlocksRestoresTheFreeSpace) {
  std::mt19937 rng(11);
  for (int i = 0; i < 3000; ++i) {
    const unsigned order = kMinOrder + rng() % 10;
    const std::uint64_t offset = arena_.allocate(order);
    if (offset != kNilOffset) live_.emplace(offset, order);
    if (i % 3 == 0 && !live_.empty()) {
      auto it = live_.begin();
      std::advance(it, rng() % live_.size());
      arena_.release(it->first, it->second);
      live_.erase(it);
    }
  }
  const std::uint64_t free_before = roots_.arena_free_bytes;
  // Scribble over the lists, as a process dying mid-operation might.
  for (auto& head : roots_.arena_free_head) head = 12345;
  std::vector<std::pair<std::uint64_t, unsigned>> allocated(live_.begin(), live_.end());
  arena_.rebuild(allocated);
  EXPECT_EQ(roots_.arena_free_bytes, free_before);
  // Everything free can be allocated again without touching a live block.
  for (;;) {
    const std::uint64_t offset = arena_.allocate(kMinOrder);
    if (offset == kNilOffset) break;
    ASSERT_TRUE(live_.emplace(offset, kMinOrder).second);
  }
  expect_disjoint();
  EXPECT_EQ(live_bytes(), kBytes);
}

}  // namespace
}  // namespace shmq::detail
