#include <gtest/gtest.h>

#include "receipt_handle.hpp"

namespace shmq::detail {
namespace {

TEST(ReceiptHandle, RoundTrips) {
  const ReceiptHandle h{0xfedcba9876543210ull, 7, 0xffffffffu, 42};
  const std::string text = h.to_string();
  EXPECT_EQ(text.size(), ReceiptHandle::kTextLength);
  const auto back = ReceiptHandle::parse(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->incarnation, h.incarnation);
  EXPECT_EQ(back->index, h.index);
  EXPECT_EQ(back->generation, h.generation);
  EXPECT_EQ(back->receive_count, h.receive_count);
}

TEST(ReceiptHandle, RejectsAnythingElse) {
  const std::string good = ReceiptHandle{1, 2, 3, 4}.to_string();
  EXPECT_FALSE(ReceiptHandle::parse(""));
  EXPECT_FALSE(ReceiptHandle::parse(good.substr(1)));
  EXPECT_FALSE(ReceiptHandle::parse(good + "0"));
  std::string upper = good;
  upper[0] = 'A';
  EXPECT_FALSE(ReceiptHandle::parse(upper));
  std::string junk = good;
  junk[20] = 'g';
  EXPECT_FALSE(ReceiptHandle::parse(junk));
  std::string sign = good;
  sign[16] = '-';
  EXPECT_FALSE(ReceiptHandle::parse(sign));
}

}  // namespace
}  // namespace shmq::detail
