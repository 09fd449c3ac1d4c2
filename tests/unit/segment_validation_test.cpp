// What Segment::open, validate_segment and QueueCore::attach_check refuse, and
// what they repair: a segment is untrusted input.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "core_harness.hpp"
#include "segment.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"
#include "test_segment.hpp"

namespace shmq {
namespace {

using detail::Segment;

TEST(SegmentValidation, IndexRootsOutOfRangeAreCorrupt) {
  test::TestSegment t(32, 2 << 20);
  auto& h = t.segment().header();
  const auto roots = h.roots;
  for (auto corrupt :
       {+[](detail::IndexRoots& r) { r.unused_from = 33; }, +[](detail::IndexRoots& r) { r.heap_size = 1; },
        +[](detail::IndexRoots& r) { r.ready_head = 0; },  // no descriptor was ever used
        +[](detail::IndexRoots& r) { r.arena_untouched = 3 << 20; },
        +[](detail::IndexRoots& r) { r.arena_free_head[0] = 0; }}) {
    h.roots = roots;
    corrupt(h.roots);
    std::string why;
    EXPECT_EQ(detail::validate_segment(h, t.segment().size(), &why), Errc::segment_corrupt);
    EXPECT_NE(why.find("index root out of range"), std::string::npos) << why;
  }
  h.roots = roots;
  EXPECT_FALSE(detail::validate_segment(h, t.segment().size()));
}

TEST(SegmentValidation, MutexOfAnotherKindIsCorrupt) {
  test::TestSegment t;
  auto& h = t.segment().header();
  h.mutex.__data.__kind |= 32;  // glibc's priority-inheritance bit: its lock calls would trust a made-up owner
  std::string why;
  EXPECT_EQ(detail::validate_segment(h, t.segment().size(), &why), Errc::segment_corrupt);
  EXPECT_NE(why.find("lock"), std::string::npos) << why;
}

TEST(SegmentValidation, OwnerCheckRefusesPermissionsBeyondTheMode) {
  test::TestSegment t;
  const detail::SegmentOwner owner{::geteuid(), 0600};
  Segment s;
  EXPECT_FALSE(Segment::open(t.name(), s, &owner));
  ASSERT_EQ(::chmod(Segment::path(t.name()).c_str(), 0666), 0);
  std::string why;
  EXPECT_EQ(Segment::open(t.name(), s, &owner, &why), Errc::permission_denied);
  EXPECT_NE(why.find("mode 0666"), std::string::npos) << why;
  EXPECT_FALSE(Segment::open(t.name(), s)) << "a client does not check the owner";
}

TEST(SegmentValidation, OpenDoesNotFollowASymbolicLink) {
  test::TestSegment t;
  const std::string link = t.name() + "-link";
  ASSERT_EQ(::symlink(Segment::path(t.name()).c_str(), Segment::path(link).c_str()), 0);
  Segment s;
  EXPECT_EQ(Segment::open(link, s), Errc::permission_denied);
  ::unlink(Segment::path(link).c_str());
}

TEST(SegmentValidation, PayloadBlockOutsideTheArenaIsCorrupt) {
  test::CoreHarness q;
  ASSERT_FALSE(q.send("hello"));
  q.core().descriptor(0).block_offset = 1ull << 40;
  std::string why;
  EXPECT_EQ(q.core().attach_check(0, &why), Errc::segment_corrupt);
  EXPECT_NE(why.find("descriptor 0"), std::string::npos) << why;
}

// Only a cached slot's state word carries bits above the state (its
// generation, see cached_word); any other state with them is corrupt.
TEST(SegmentValidation, AStateWordWithGenerationBitsIsCorruptUnlessCached) {
  test::CoreHarness q;
  ASSERT_FALSE(q.send("hello"));
  auto& state = q.core().descriptor(0).state;
  state = static_cast<std::uint32_t>(detail::MessageState::kReady) | (5u << 8);
  std::string why;
  EXPECT_EQ(q.core().attach_check(0, &why), Errc::segment_corrupt);
  EXPECT_NE(why.find("descriptor 0"), std::string::npos) << why;
}

TEST(SegmentValidation, OverlappingPayloadBlocksAreCorrupt) {
  test::CoreHarness q;
  ASSERT_FALSE(q.send("one"));
  ASSERT_FALSE(q.send("two"));
  q.core().descriptor(1).block_offset = q.core().descriptor(0).block_offset;
  EXPECT_EQ(q.core().attach_check(0, nullptr), Errc::segment_corrupt);
}

TEST(SegmentValidation, AttachRebuildsBrokenLinksFromTheStates) {
  test::CoreHarness q;
  ASSERT_FALSE(q.send("one"));
  ASSERT_FALSE(q.send("two"));
  q.core().descriptor(0).next = 0x00fedcbau;  // a ready-list link far outside the table
  q.header().roots.free_head = 0;             // in range, but a live message
  ASSERT_FALSE(q.core().attach_check(0, nullptr));
  EXPECT_EQ(q.bodies(q.receive(10)), (std::vector<std::string>{"one", "two"}));
  ASSERT_FALSE(q.send("three")) << "the free list is whole again";
}

}  // namespace
}  // namespace shmq
