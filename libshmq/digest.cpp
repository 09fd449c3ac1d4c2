#include "digest.hpp"

// OpenSSL 3 marks its low-level SHA256_* functions deprecated in favour of
// EVP. They are kept here on purpose: an EVP digest allocates and frees its
// provider context at every init (EVP_DigestInit_ex2 with the same digest
// too), and every FIFO send hashes its deduplication id. Measured on the
// 2-core AMD EPYC VM, a 23-byte id: EVP (digest fetched once, context kept
// per thread) 100 ns a hash, SHA256_Init/Update/Final on the stack 54 ns,
// with no allocation. Same digest, same OpenSSL implementation underneath.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "hex.hpp"

namespace shmq::detail {

Sha256 sha256(std::initializer_list<std::string_view> parts) noexcept {
  static_assert(std::tuple_size_v<Sha256> == SHA256_DIGEST_LENGTH);
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  for (std::string_view p : parts) SHA256_Update(&ctx, p.data(), p.size());
  Sha256 out{};
  SHA256_Final(out.data(), &ctx);
  return out;
}

std::string to_hex(const std::uint8_t* bytes, std::size_t n) {
  std::string s(2 * n, '0');
  put_hex_bytes(s.data(), bytes, n);
  return s;
}

}  // namespace shmq::detail
