#include "receipt_handle.hpp"

#include "hex.hpp"

namespace shmq::detail {

std::string ReceiptHandle::to_string() const {
  std::string text;
  write(text);
  return text;
}

void ReceiptHandle::write(std::string& out) const {
  out.resize(kTextLength);
  char* p = put_hex_value(out.data(), incarnation, 8);
  p = put_hex_value(p, index, 4);
  p = put_hex_value(p, generation, 4);
  put_hex_value(p, receive_count, 4);
}

std::optional<ReceiptHandle> ReceiptHandle::parse(std::string_view text) noexcept {
  if (text.size() != kTextLength) return std::nullopt;
  ReceiptHandle h{};
  const char* p = text.data();
  if (!get_hex_value(p, 16, h.incarnation) || !get_hex_value(p + 16, 8, h.index) ||
      !get_hex_value(p + 24, 8, h.generation) || !get_hex_value(p + 32, 8, h.receive_count)) {
    return std::nullopt;
  }
  return h;
}

}  // namespace shmq::detail
