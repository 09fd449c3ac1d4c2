#include "digest.hpp"

#include <openssl/evp.h>

#include "hex.hpp"

namespace shmq::detail {

namespace {

// Given EVP_sha256(), OpenSSL 3 looks the implementation up in its provider
// store on every EVP_DigestInit_ex, taking that store's read-write lock; a
// FIFO send hashes its deduplication id, so every FIFO send paid for it.
// Fetched once, the digest is used as it is. (Never freed: it lives as long
// as the process, reachable from here.)
const EVP_MD* sha256_md() noexcept {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

// A context a thread, reset by each init: no allocation a hash.
struct Context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Sha256 sha256(std::initializer_list<std::string_view> parts) noexcept {
  thread_local Context context;
  Sha256 out{};
  EVP_MD_CTX* ctx = context.ctx;
  EVP_DigestInit_ex(ctx, sha256_md(), nullptr);
  for (std::string_view p : parts) EVP_DigestUpdate(ctx, p.data(), p.size());
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &n);
  return out;
}

std::string to_hex(const std::uint8_t* bytes, std::size_t n) {
  std::string s(2 * n, '0');
  put_hex_bytes(s.data(), bytes, n);
  return s;
}

}  // namespace shmq::detail
