#include "sigv4_signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>

#include "digest.hpp"

namespace shmq::detail::sigv4 {

namespace {

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  const Sha256 digest = sha256({data});
  return to_hex(digest.data(), digest.size());
}

std::string canonical_header_value(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string canonical_request(std::string_view method, std::string_view path, std::string_view canonical_query,
                              const std::vector<std::pair<std::string, std::string>>& signed_headers,
                              std::string_view payload_hash) {
  std::string out;
  out.append(method).append("\n").append(path).append("\n").append(canonical_query).append("\n");
  std::string names;
  for (const auto& [name, value] : signed_headers) {
    out.append(name).append(":").append(canonical_header_value(value)).append("\n");
    if (!names.empty()) names.push_back(';');
    names += name;
  }
  out.append("\n").append(names).append("\n").append(payload_hash);
  return out;
}

std::string scope(std::string_view amz_date, std::string_view region, std::string_view service) {
  std::string out(amz_date.substr(0, 8));
  out.append("/").append(region).append("/").append(service).append("/aws4_request");
  return out;
}

std::string signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view canonical) {
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope(amz_date, region, service) +
                              "\n" + sha256_hex(canonical);
  std::string k = hmac("AWS4" + std::string(secret), amz_date.substr(0, 8));
  k = hmac(k, region);
  k = hmac(k, service);
  k = hmac(k, "aws4_request");
  const std::string mac = hmac(k, to_sign);
  return to_hex(reinterpret_cast<const std::uint8_t*>(mac.data()), mac.size());
}

std::string amz_date_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[17];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
  return text;
}

}  // namespace shmq::detail::sigv4
