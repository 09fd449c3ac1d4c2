// Message ids: random (version 4) UUIDs, as SQS issues them.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace shmq::detail {

std::array<std::uint8_t, 16> new_message_id() noexcept;
std::string format_message_id(const std::uint8_t (&bytes)[16]);
// The same text into `out`, reusing its storage.
void format_message_id(const std::uint8_t (&bytes)[16], std::string& out);

}  // namespace shmq::detail
