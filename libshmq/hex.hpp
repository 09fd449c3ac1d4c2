// Lower-case hexadecimal text for ids and receipt handles, a byte at a time
// through tables: these run on every send and receive.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shmq::detail {

namespace hex_tables {

constexpr std::array<char, 512> make_pairs() {
  constexpr char kDigits[] = "0123456789abcdef";
  std::array<char, 512> pairs{};
  for (std::size_t b = 0; b < 256; ++b) {
    pairs[2 * b] = kDigits[b >> 4];
    pairs[2 * b + 1] = kDigits[b & 0xf];
  }
  return pairs;
}

constexpr std::array<std::uint8_t, 256> make_values() {
  std::array<std::uint8_t, 256> values{};
  for (auto& v : values) v = 0xff;
  for (int c = '0'; c <= '9'; ++c) values[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) values[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c - 'a' + 10);
  return values;
}

inline constexpr std::array<char, 512> kPairs = make_pairs();            // byte b -> its two digits at 2b
inline constexpr std::array<std::uint8_t, 256> kValues = make_values();  // digit -> 0..15, else 0xff

}  // namespace hex_tables

// Writes the two digits of each of `n` bytes.
inline char* put_hex_bytes(char* out, const std::uint8_t* bytes, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i, out += 2) std::memcpy(out, &hex_tables::kPairs[2 * bytes[i]], 2);
  return out;
}

// Writes `value` as exactly 2 * bytes digits, most significant first.
inline char* put_hex_value(char* out, std::uint64_t value, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i, out += 2) {
    std::memcpy(out, &hex_tables::kPairs[2 * ((value >> (8 * i)) & 0xff)], 2);
  }
  return out;
}

// Reads exactly `digits` lower-case hex digits; false on any other character.
template <class T>
bool get_hex_value(const char* text, int digits, T& value) noexcept {
  std::uint64_t v = 0;
  std::uint8_t bad = 0;
  for (int i = 0; i < digits; ++i) {
    const std::uint8_t d = hex_tables::kValues[static_cast<unsigned char>(text[i])];
    bad |= d & 0xf0;
    v = (v << 4) | (d & 0x0f);
  }
  value = static_cast<T>(v);
  return bad == 0;
}

}  // namespace shmq::detail
