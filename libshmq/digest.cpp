#include "digest.hpp"

#include <openssl/evp.h>

#include "hex.hpp"

namespace shmq::detail {

Sha256 sha256(std::initializer_list<std::string_view> parts) noexcept {
  Sha256 out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::string_view p : parts) EVP_DigestUpdate(ctx, p.data(), p.size());
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &n);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::string to_hex(const std::uint8_t* bytes, std::size_t n) {
  std::string s(2 * n, '0');
  put_hex_bytes(s.data(), bytes, n);
  return s;
}

}  // namespace shmq::detail
