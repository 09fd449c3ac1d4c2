#include "receipt_handle.hpp"

#include <charconv>

namespace shmq::detail {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void put_hex(char* out, std::uint64_t value, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHex[value & 0xf];
    value >>= 4;
  }
}

template <class T>
bool get_hex(std::string_view text, std::size_t pos, int digits, T& value) {
  const char* first = text.data() + pos;
  const char* last = first + digits;
  for (const char* p = first; p != last; ++p) {
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;  // lower case only
  }
  return std::from_chars(first, last, value, 16).ptr == last;
}

}  // namespace

std::string ReceiptHandle::to_string() const {
  std::string text(kTextLength, '0');
  put_hex(text.data(), incarnation, 16);
  put_hex(text.data() + 16, index, 8);
  put_hex(text.data() + 24, generation, 8);
  put_hex(text.data() + 32, receive_count, 8);
  return text;
}

std::optional<ReceiptHandle> ReceiptHandle::parse(std::string_view text) noexcept {
  if (text.size() != kTextLength) return std::nullopt;
  ReceiptHandle h{};
  if (!get_hex(text, 0, 16, h.incarnation) || !get_hex(text, 16, 8, h.index) || !get_hex(text, 24, 8, h.generation) ||
      !get_hex(text, 32, 8, h.receive_count)) {
    return std::nullopt;
  }
  return h;
}

}  // namespace shmq::detail
