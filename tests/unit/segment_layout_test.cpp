#include <gtest/gtest.h>

#include <cstring>

#include "segment_layout.hpp"
#include "shmq/error.hpp"
#include "test_segment.hpp"

namespace shmq {
namespace {

using detail::Segment;
using detail::SegmentGeometry;

TEST(SegmentGeometry, TablesArePageAlignedAndDoNotOverlap) {
  const auto g = SegmentGeometry::compute(1000, 8 << 20, SegmentGeometry::default_dedup_capacity(1000, true), true);
  EXPECT_EQ(g.descriptors_offset, 4096u);
  EXPECT_GE(g.heap_offset, g.descriptors_offset + 1000 * sizeof(detail::MessageDescriptor));
  EXPECT_GE(g.groups_offset, g.heap_offset + 1000 * 4);
  EXPECT_GE(g.group_buckets_offset, g.groups_offset + 1000 * sizeof(detail::GroupRecord));
  EXPECT_GE(g.group_bucket_count, 1000u);
  EXPECT_EQ(g.group_bucket_count & (g.group_bucket_count - 1), 0u) << "a power of two";
  EXPECT_GE(g.dedup_offset, g.group_buckets_offset + g.group_bucket_count * 4u);
  EXPECT_GE(g.dedup_capacity, 1000u);
  EXPECT_GE(g.dedup_buckets_offset, g.dedup_offset + g.dedup_capacity * sizeof(detail::DedupEntry));
  EXPECT_GE(g.attempts_offset, g.dedup_buckets_offset + g.dedup_bucket_count * 4u);
  EXPECT_GE(g.metadata_offset, g.attempts_offset + detail::kAttemptSlots * sizeof(detail::ReceiveAttempt));
  EXPECT_GE(g.order_map_offset, g.metadata_offset + 2 * detail::kMetadataBytes);
  EXPECT_EQ(SegmentGeometry::default_dedup_capacity(1000, false), 0u) << "standard queues keep no dedup window";
  EXPECT_GE(g.arena_offset, g.order_map_offset + ((8u << 20) >> detail::kMinOrder));
  EXPECT_EQ(g.arena_offset % 4096, 0u);
  EXPECT_EQ(g.total_bytes, g.arena_offset + (8u << 20));
}

TEST(Segment, OpensWhatWasCreated) {
  test::TestSegment t(32, 2 << 20);
  Segment opened;
  ASSERT_FALSE(Segment::open(t.name(), opened));
  EXPECT_EQ(opened.header().capacity, 32u);
  EXPECT_EQ(opened.header().arena_bytes, 2u << 20);
  EXPECT_STREQ(opened.header().name, "q");
  EXPECT_EQ(opened.header().layout_version, detail::kLayoutVersion);
}

TEST(Segment, MissingSegmentIsQueueDoesNotExist) {
  Segment s;
  EXPECT_EQ(Segment::open("/shmq.unit-none.nothing", s), Errc::queue_does_not_exist);
}

TEST(Segment, RefusesBadMagic) {
  test::TestSegment t;
  t.segment().header().magic ^= 1;
  Segment s;
  EXPECT_EQ(Segment::open(t.name(), s), Errc::segment_corrupt);
}

TEST(Segment, RefusesOtherMajorVersion) {
  test::TestSegment t;
  t.segment().header().layout_version = (detail::kLayoutMajor + 1) << 16;
  Segment s;
  EXPECT_EQ(Segment::open(t.name(), s), Errc::incompatible_layout);
}

TEST(Segment, RefusesHalfFormattedSegment) {
  test::TestSegment t;
  t.segment().header().layout_version = 0;  // as if its creator died while formatting
  Segment s;
  EXPECT_EQ(Segment::open(t.name(), s), Errc::segment_corrupt);
}

TEST(Segment, RefusesInconsistentGeometry) {
  test::TestSegment t;
  t.segment().header().capacity += 1;
  Segment s;
  EXPECT_EQ(Segment::open(t.name(), s), Errc::segment_corrupt);
}

TEST(Segment, CreateRefusesExistingName) {
  test::TestSegment t;
  detail::FormatParams p;
  p.capacity = 16;
  p.arena_bytes = 2 << 20;
  try {
    Segment::create(t.name(), p, 0600);
    FAIL() << "created twice";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), Errc::queue_name_exists);
  }
}

}  // namespace
}  // namespace shmq
