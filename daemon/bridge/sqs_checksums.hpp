// The MD5 digests SQS returns so clients can check what arrived:
// MD5OfMessageBody, MD5OfMessageAttributes and MD5OfMessageSystemAttributes.
#pragma once

#include <string>
#include <string_view>

#include "shmq/types.hpp"

namespace shmq::bridge {

std::string md5_hex(std::string_view data);

// AWS's encoding: for each attribute in name order, the name, the data type
// (each as a 4-byte big-endian length and its bytes), one transport byte
// (1 string or number, 2 binary), and the value (length and bytes).
std::string md5_of_attributes(const MessageAttributes& attributes);

}  // namespace shmq::bridge
