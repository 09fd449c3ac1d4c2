// Message ids: random (version 4) UUIDs, as SQS issues them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace shmq::detail {

inline constexpr std::size_t kMessageIdLength = 36;  // 8-4-4-4-12 hex digits

std::array<std::uint8_t, 16> new_message_id() noexcept;
std::string format_message_id(const std::uint8_t (&bytes)[16]);
// The same text into `out`, reusing its storage.
void format_message_id(const std::uint8_t (&bytes)[16], std::string& out);
// The same text into out[0, kMessageIdLength); returns its end.
char* format_message_id(const std::uint8_t (&bytes)[16], char* out) noexcept;

}  // namespace shmq::detail
