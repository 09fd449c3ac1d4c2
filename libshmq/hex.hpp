// Lower-case hexadecimal text for ids and receipt handles. These run on
// every send, receive and delete, so sixteen digits go at a time through an
// SSE2 register (every x86-64 has one), eight through a 64-bit word
// elsewhere: no table, no branch per digit.
#pragma once

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shmq::detail {

namespace hex_word {

inline constexpr std::uint64_t kOnes = 0x0101010101010101ull;
inline constexpr std::uint64_t kHigh = 0x8080808080808080ull;

// The eight digits of `v`, most significant first in memory.
inline std::uint64_t format8(std::uint32_t v) noexcept {
  // Nibble i of v into byte i of the word...
  std::uint64_t x = v;
  x = (x | (x << 16)) & 0x0000ffff0000ffffull;
  x = (x | (x << 8)) & 0x00ff00ff00ff00ffull;
  x = (x | (x << 4)) & 0x0f0f0f0f0f0f0f0full;
  // ...as '0'..'9' or 'a'..'f' (a byte of 10..15 plus 6 carries into bit 4)...
  const std::uint64_t letters = ((x + 6 * kOnes) >> 4) & kOnes;
  x += '0' * kOnes + letters * ('a' - '0' - 10);
  // ...and the most significant digit first.
  return __builtin_bswap64(x);
}

// The value of eight digits (the first most significant); false if any is not
// one of 0-9 a-f.
inline bool parse8(const char* text, std::uint32_t& value) noexcept {
  std::uint64_t x;
  std::memcpy(&x, text, 8);
  // Per byte b < 0x80, b + (0x80 - k) has its high bit set iff b >= k, and
  // carries into no other byte.
  const auto at_least = [x](std::uint8_t k) { return (x + (0x80 - k) * kOnes) & kHigh; };
  const std::uint64_t digit = at_least('0') & ~at_least('9' + 1);
  const std::uint64_t letter = at_least('a') & ~at_least('f' + 1);
  if ((x & kHigh) != 0 || (digit | letter) != kHigh) return false;
  // 0-9 are their low nibble, a-f theirs plus 9 (bit 6 marks a letter).
  std::uint64_t v = (x & 0x0f0f0f0f0f0f0f0full) + ((x >> 6) & kOnes) * 9;
  v = __builtin_bswap64(v);  // byte i: the digit of weight 16^i
  v = (v | (v >> 4)) & 0x00ff00ff00ff00ffull;
  v = (v | (v >> 8)) & 0x0000ffff0000ffffull;
  v = (v | (v >> 16)) & 0x00000000ffffffffull;
  value = static_cast<std::uint32_t>(v);
  return true;
}

inline std::uint32_t load_big_endian32(const std::uint8_t* bytes) noexcept {
  std::uint32_t v;
  std::memcpy(&v, bytes, 4);
  return __builtin_bswap32(v);
}

// The 32 digits of 16 bytes, in order; returns the end.
inline char* format16_bytes(char* out, const std::uint8_t* bytes) noexcept {
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
  const __m128i nibble = _mm_set1_epi8(0x0f);
  const __m128i high = _mm_and_si128(_mm_srli_epi16(v, 4), nibble);
  const __m128i low = _mm_and_si128(v, nibble);
  const auto ascii = [](__m128i n) {
    const __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(n, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10));
    return _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8('0')), letters);
  };
  // Each byte's high digit, then its low one.
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), ascii(_mm_unpacklo_epi8(high, low)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), ascii(_mm_unpackhi_epi8(high, low)));
  return out + 32;
#else
  for (int i = 0; i < 16; i += 4) {
    const std::uint64_t digits = format8(load_big_endian32(bytes + i));
    std::memcpy(out + 2 * i, &digits, 8);
  }
  return out + 32;
#endif
}

// The value of 16 digits (the first most significant); false if any is not
// one of 0-9 a-f.
inline bool parse16(const char* text, std::uint64_t& value) noexcept {
#if defined(__SSE2__)
  const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text));
  // Signed compares: a byte of 0x80 or more is below '0' and refused.
  const auto in = [c](char first, char last) {
    return _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8(static_cast<char>(first - 1))),
                         _mm_cmplt_epi8(c, _mm_set1_epi8(static_cast<char>(last + 1))));
  };
  const __m128i letter = in('a', 'f');
  if (_mm_movemask_epi8(_mm_or_si128(in('0', '9'), letter)) != 0xffff) return false;
  const __m128i n = _mm_add_epi8(_mm_and_si128(c, _mm_set1_epi8(0x0f)), _mm_and_si128(letter, _mm_set1_epi8(9)));
  // Each 16-bit lane holds two digits, the first in its low byte: that byte
  // becomes first << 4 | second; then the eight bytes side by side.
  const __m128i pairs = _mm_and_si128(_mm_or_si128(_mm_slli_epi16(n, 4), _mm_srli_epi16(n, 8)), _mm_set1_epi16(0xff));
  std::uint64_t big_endian;
  _mm_storel_epi64(reinterpret_cast<__m128i*>(&big_endian), _mm_packus_epi16(pairs, pairs));
  value = __builtin_bswap64(big_endian);
  return true;
#else
  std::uint32_t high;
  std::uint32_t low;
  if (!parse8(text, high) || !parse8(text + 8, low)) return false;
  value = std::uint64_t{high} << 32 | low;
  return true;
#endif
}

}  // namespace hex_word

// Writes `value` as exactly 8 digits, most significant first.
inline char* put_hex32(char* out, std::uint32_t value) noexcept {
  const std::uint64_t digits = hex_word::format8(value);
  std::memcpy(out, &digits, 8);
  return out + 8;
}

// Writes `value` as exactly 16 digits, most significant first.
inline char* put_hex64(char* out, std::uint64_t value) noexcept {
  out = put_hex32(out, static_cast<std::uint32_t>(value >> 32));
  return put_hex32(out, static_cast<std::uint32_t>(value));
}

// Writes the two digits of each of `n` bytes, in order.
inline char* put_hex_bytes(char* out, const std::uint8_t* bytes, std::size_t n) noexcept {
  for (; n >= 16; n -= 16, bytes += 16) out = hex_word::format16_bytes(out, bytes);
  for (; n >= 4; n -= 4, bytes += 4) out = put_hex32(out, hex_word::load_big_endian32(bytes));
  for (; n > 0; --n, ++bytes) {
    constexpr char kDigits[] = "0123456789abcdef";
    *out++ = kDigits[*bytes >> 4];
    *out++ = kDigits[*bytes & 0xf];
  }
  return out;
}

// Reads exactly 8 (16) lower-case hex digits; false on any other character.
inline bool get_hex32(const char* text, std::uint32_t& value) noexcept { return hex_word::parse8(text, value); }
inline bool get_hex64(const char* text, std::uint64_t& value) noexcept { return hex_word::parse16(text, value); }

}  // namespace shmq::detail
