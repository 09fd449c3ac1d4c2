// The word-at-a-time hex of ids and receipt handles against the obvious
// digit-at-a-time definition: every value of every digit position, and every
// byte that is not a lower-case hex digit refused wherever it stands.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "hex.hpp"
#include "message_id.hpp"
#include "receipt_handle.hpp"

namespace shmq::detail {
namespace {

std::string reference_hex(std::uint64_t value, int digits) {
  std::string text(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, value >>= 4)
    text[static_cast<std::size_t>(i)] = "0123456789abcdef"[value & 0xf];
  return text;
}

bool is_lower_hex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

TEST(Hex, FormatsEveryDigitOfEveryPosition) {
  for (int position = 0; position < 16; ++position) {
    for (std::uint64_t digit = 0; digit < 16; ++digit) {
      const std::uint64_t value = (0x0123456789abcdefull & ~(0xfull << (4 * position))) | digit << (4 * position);
      char text[16];
      put_hex64(text, value);
      EXPECT_EQ(std::string(text, 16), reference_hex(value, 16));
      char text32[8];
      put_hex32(text32, static_cast<std::uint32_t>(value));
      EXPECT_EQ(std::string(text32, 8), reference_hex(value & 0xffffffffu, 8));
    }
  }
}

TEST(Hex, FormatsBytesInOrder) {
  std::mt19937_64 rng(1);
  for (int round = 0; round < 1000; ++round) {
    std::uint8_t bytes[37];
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    for (std::size_t n : {0, 1, 3, 4, 15, 16, 17, 20, 32, 37}) {
      std::string text(2 * n, '?');
      EXPECT_EQ(put_hex_bytes(text.data(), bytes, n), text.data() + 2 * n);
      std::string expected;
      for (std::size_t i = 0; i < n; ++i) expected += reference_hex(bytes[i], 2);
      EXPECT_EQ(text, expected) << n << " bytes";
    }
  }
}

TEST(Hex, ParsesWhatItFormats) {
  std::mt19937_64 rng(2);
  for (int round = 0; round < 10000; ++round) {
    const std::uint64_t value = rng();
    const std::string text = reference_hex(value, 16);
    std::uint64_t back64 = 0;
    ASSERT_TRUE(get_hex64(text.data(), back64)) << text;
    EXPECT_EQ(back64, value);
    std::uint32_t back32 = 0;
    ASSERT_TRUE(get_hex32(text.data() + 8, back32)) << text;
    EXPECT_EQ(back32, static_cast<std::uint32_t>(value));
  }
}

TEST(Hex, RefusesEveryOtherByteInEveryPosition) {
  const std::string good = "0123456789abcdef";
  for (std::size_t position = 0; position < good.size(); ++position) {
    for (int c = 0; c < 256; ++c) {
      std::string text = good;
      text[position] = static_cast<char>(c);
      std::uint64_t v64 = 0;
      EXPECT_EQ(get_hex64(text.data(), v64), is_lower_hex(static_cast<unsigned char>(c)))
          << "byte " << c << " at " << position;
      std::uint32_t v32 = 0;
      EXPECT_EQ(get_hex32(text.data() + (position & 8), v32), is_lower_hex(static_cast<unsigned char>(c)))
          << "byte " << c << " at " << position;
    }
  }
}

TEST(Hex, MessageIdIsTheUuidOfItsBytes) {
  const std::uint8_t bytes[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                  0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
  EXPECT_EQ(format_message_id(bytes), "01234567-89ab-cdef-fedc-ba9876543210");
}

TEST(Hex, ReceiptHandleTextIsItsFieldsInHex) {
  const ReceiptHandle h{0x0123456789abcdefull, 0xfedcba98u, 7, 0x80000001u};
  EXPECT_EQ(h.to_string(),
            "0123456789abcdef"
            "fedcba98"
            "00000007"
            "80000001");
  std::mt19937_64 rng(3);
  for (int round = 0; round < 10000; ++round) {
    const ReceiptHandle r{rng(), static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng()),
                          static_cast<std::uint32_t>(rng())};
    const std::string text = r.to_string();
    ASSERT_EQ(text, reference_hex(r.incarnation, 16) + reference_hex(r.index, 8) + reference_hex(r.generation, 8) +
                        reference_hex(r.receive_count, 8));
    const auto back = ReceiptHandle::parse(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->incarnation, r.incarnation);
    EXPECT_EQ(back->index, r.index);
    EXPECT_EQ(back->generation, r.generation);
    EXPECT_EQ(back->receive_count, r.receive_count);
  }
}

}  // namespace
}  // namespace shmq::detail
