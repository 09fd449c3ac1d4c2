// Base64 (RFC 4648, with padding) as SQS carries binary message attributes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace shmq::detail {

std::string base64_encode(std::string_view bytes);
// Empty optional for text that is not base64 (a length not a multiple of 4,
// a character outside the alphabet, misplaced padding).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace shmq::detail
