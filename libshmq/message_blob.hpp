// What a payload block holds after the body: the message's system
// attributes and message attributes, as tagged fields
//   u8 tag, u32 length (little endian), bytes
// Tags: group id, deduplication id, AWSTraceHeader, SenderId,
// DeadLetterQueueSourceArn, and one field per message attribute whose bytes
// are  u16 name length, name, u16 type length, type, value.
// The blob is written before the message is committed and read by receivers
// outside the lock (their copy is validated like the body's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

#include "shmq/types.hpp"

namespace shmq::detail {

struct BlobFields {
  std::string_view group_id;
  std::string_view deduplication_id;
  std::string_view trace_header;
  std::string_view sender_id;
  std::string_view dead_letter_source_arn;
  const MessageAttributes* attributes = nullptr;
};

std::size_t blob_size(const BlobFields& fields) noexcept;
void blob_write(const BlobFields& fields, std::uint8_t* out) noexcept;
// Fills the system-attribute fields of `message` and replaces its
// attributes (reusing the map's nodes); false if the bytes are not a
// well-formed blob.
bool blob_read(const std::uint8_t* data, std::size_t bytes, Message& message);
// blob_read, then the SenderId from the descriptor if the blob has none.
bool read_message_fields(const std::uint8_t* blob, std::size_t bytes, std::optional<std::uint32_t> sender_uid,
                         Message& message);

// The bytes SQS counts toward MaximumMessageSize: names, types and values.
std::size_t attributes_size(const MessageAttributes& attributes) noexcept;

// SQS's rules for message attributes (see Errc::invalid_message_attribute).
std::error_code validate_attributes(const MessageAttributes& attributes) noexcept;

// The first rule `attributes` break, and which attribute (a view into
// `attributes`) and base type ("String", "Number", "Binary") break it: what
// the bridge says in Amazon SQS's words.
struct AttributeProblem {
  enum class Kind { none, too_many, bad_name, bad_type, empty_value, bad_characters, bad_number };
  Kind kind = Kind::none;
  std::string_view name;
  std::string_view base_type;
};
AttributeProblem find_attribute_problem(const MessageAttributes& attributes) noexcept;

// True if every character is one SQS allows in a body or string value:
// #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF, in valid UTF-8.
bool valid_message_characters(std::string_view text) noexcept;

}  // namespace shmq::detail
