// Hashes from OpenSSL's libcrypto.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace shmq::detail {

using Sha256 = std::array<std::uint8_t, 32>;

// SHA-256 of the concatenated parts.
Sha256 sha256(std::initializer_list<std::string_view> parts) noexcept;
std::string to_hex(const std::uint8_t* bytes, std::size_t n);

}  // namespace shmq::detail
