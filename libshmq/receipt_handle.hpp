// A receipt handle names one receive of one message: the queue incarnation,
// the descriptor index, the descriptor generation (bumped when the slot is
// freed) and the receive count. A handle from an earlier receive, or for a
// message since deleted, no longer matches and is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shmq::detail {

struct ReceiptHandle {
  std::uint64_t incarnation;
  std::uint32_t index;
  std::uint32_t generation;
  std::uint32_t receive_count;

  static constexpr std::size_t kTextLength = 40;  // 16 + 3 * 8 hex digits

  std::string to_string() const;
  // The same text into `out`, reusing its storage.
  void write(std::string& out) const;
  // The same text into out[0, kTextLength); returns its end.
  char* write(char* out) const noexcept;
  // nullopt unless `text` is exactly what to_string() produces.
  static std::optional<ReceiptHandle> parse(std::string_view text) noexcept;
};

}  // namespace shmq::detail
