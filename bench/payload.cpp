#include "payload.hpp"

#include <algorithm>

namespace shmq::bench {

void fill_payload(std::span<std::byte> message) noexcept {
  std::fill(message.begin(), message.end(), std::byte{'x'});
  stamp_sequence(message, 0);
}

void stamp_sequence(std::span<std::byte> message, std::uint64_t sequence) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  if (message.size() < kSequenceDigits) return;
  for (std::size_t i = kSequenceDigits; i-- > 0;) {
    message[i] = static_cast<std::byte>(kHex[sequence & 0xf]);
    sequence >>= 4;
  }
}

std::optional<std::uint64_t> read_sequence(std::span<const std::byte> message) noexcept {
  if (message.size() < kSequenceDigits) return std::nullopt;
  std::uint64_t sequence = 0;
  for (std::size_t i = 0; i < kSequenceDigits; ++i) {
    const char c = static_cast<char>(message[i]);
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    sequence = (sequence << 4) | digit;
  }
  return sequence;
}

}  // namespace shmq::bench
