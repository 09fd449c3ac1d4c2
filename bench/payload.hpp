// What every transport carries: printable ASCII that shmq accepts as an SQS
// body. The first 16 bytes are the message's sequence number in zero-padded
// hex, the rest is 'x'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace shmq::bench {

inline constexpr std::size_t kSequenceDigits = 16;                 // also the smallest message size
inline constexpr std::uint64_t kStopSequence = ~std::uint64_t{0};  // tells a stream consumer to stop

// Fills a message: sequence 0, then 'x' to the end. Does not allocate.
void fill_payload(std::span<std::byte> message) noexcept;

// Overwrites the sequence number of a filled message.
void stamp_sequence(std::span<std::byte> message, std::uint64_t sequence) noexcept;

// The sequence number a message carries; nullopt if it is shorter than 16
// bytes or its first 16 bytes are not lower-case hex.
std::optional<std::uint64_t> read_sequence(std::span<const std::byte> message) noexcept;

}  // namespace shmq::bench
