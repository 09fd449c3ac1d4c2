#include "sqs_checksums.hpp"

#include <openssl/evp.h>

#include <cstdint>

namespace shmq::bridge {

namespace {

void put_length_prefixed(std::string& out, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(s);
}

}  // namespace

std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_md5(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

std::string md5_of_attributes(const MessageAttributes& attributes) {
  std::string encoded;
  for (const auto& [name, value] : attributes) {  // std::map: sorted by name, as AWS requires
    put_length_prefixed(encoded, name);
    put_length_prefixed(encoded, value.data_type);
    const bool binary = value.data_type.starts_with("Binary");
    encoded.push_back(binary ? 2 : 1);
    put_length_prefixed(encoded, binary ? value.binary_value : value.string_value);
  }
  return md5_hex(encoded);
}

}  // namespace shmq::bridge
