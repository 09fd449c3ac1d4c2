#include "receipt_handle.hpp"

#include <cstring>

#include "hex.hpp"

namespace shmq::detail {

std::string ReceiptHandle::to_string() const {
  std::string text;
  write(text);
  return text;
}

void ReceiptHandle::write(std::string& out) const {
  out.resize(kTextLength);  // within the string's capacity once it held a handle
  write(out.data());
}

char* ReceiptHandle::write(char* out) const noexcept {
  // The four fields big-endian side by side, then their 40 digits at once.
  std::uint8_t bytes[20];
  const std::uint64_t words[] = {__builtin_bswap64(incarnation),
                                 __builtin_bswap64(std::uint64_t{index} << 32 | generation)};
  const std::uint32_t last = __builtin_bswap32(receive_count);
  std::memcpy(bytes, words, 16);
  std::memcpy(bytes + 16, &last, 4);
  return put_hex_bytes(out, bytes, sizeof(bytes));
}

std::optional<ReceiptHandle> ReceiptHandle::parse(std::string_view text) noexcept {
  if (text.size() != kTextLength) return std::nullopt;
  ReceiptHandle h{};
  const char* p = text.data();
  std::uint64_t index_and_generation;
  if (!get_hex64(p, h.incarnation) || !get_hex64(p + 16, index_and_generation) || !get_hex32(p + 32, h.receive_count)) {
    return std::nullopt;
  }
  h.index = static_cast<std::uint32_t>(index_and_generation >> 32);
  h.generation = static_cast<std::uint32_t>(index_and_generation);
  return h;
}

}  // namespace shmq::detail
