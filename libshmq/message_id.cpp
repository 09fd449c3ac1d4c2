#include "message_id.hpp"

#include <cstring>
#include <random>

#include "hex.hpp"

namespace shmq::detail {

std::array<std::uint8_t, 16> new_message_id() noexcept {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::array<std::uint8_t, 16> id;
  const std::uint64_t hi = rng();
  const std::uint64_t lo = rng();
  std::memcpy(id.data(), &hi, 8);
  std::memcpy(id.data() + 8, &lo, 8);
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

std::string format_message_id(const std::uint8_t (&bytes)[16]) {
  std::string text;
  format_message_id(bytes, text);
  return text;
}

void format_message_id(const std::uint8_t (&bytes)[16], std::string& out) {
  out.resize(36);
  char* p = put_hex_bytes(out.data(), bytes, 4);
  *p++ = '-';
  p = put_hex_bytes(p, bytes + 4, 2);
  *p++ = '-';
  p = put_hex_bytes(p, bytes + 6, 2);
  *p++ = '-';
  p = put_hex_bytes(p, bytes + 8, 2);
  *p++ = '-';
  put_hex_bytes(p, bytes + 10, 6);
}

}  // namespace shmq::detail
