#include "sigv4.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <vector>

#include "sigv4_signature.hpp"
#include "sqs_errors.hpp"

namespace shmq::bridge {

namespace {

std::string uri_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A '%' not followed by two hex digits stays as it is: the signature then
// does not match, which is the answer for such a query.
std::string uri_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Key=value pairs sorted by key, each part encoded as SigV4 requires.
std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string key = uri_decode(pair.substr(0, eq));
    if (key == "X-Amz-Signature") continue;
    pairs.emplace_back(uri_encode(key),
                       uri_encode(eq == std::string_view::npos ? "" : uri_decode(pair.substr(eq + 1))));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += k + "=" + v;
  }
  return out;
}

std::string field(std::string_view header, std::string_view name) {
  const std::size_t at = header.find(name);
  if (at == std::string_view::npos) return {};
  std::size_t start = at + name.size();
  std::size_t end = header.find(',', start);
  return detail::sigv4::canonical_header_value(
      header.substr(start, end == std::string_view::npos ? header.size() - start : end - start));
}

// SignedHeaders: lower-case names separated by ';'.
std::vector<std::string> header_names(std::string_view list) {
  std::vector<std::string> names;
  for (std::size_t pos = 0; pos <= list.size();) {
    const std::size_t semi = list.find(';', pos);
    names.emplace_back(list.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  return names;
}

}  // namespace

std::string SigV4Verifier::verify(const HttpRequest& req, std::chrono::system_clock::time_point now) const {
  const std::string authorization(req[boost::beast::http::field::authorization]);
  if (!authorization.starts_with("AWS4-HMAC-SHA256")) raise(errors::missing_signature());
  const std::string credential = field(authorization, "Credential=");
  const std::string signed_headers = field(authorization, "SignedHeaders=");
  const std::string signature = field(authorization, "Signature=");
  // Credential: AKID/yyyymmdd/region/service/aws4_request
  std::vector<std::string> scope;
  for (std::size_t pos = 0; pos <= credential.size();) {
    const std::size_t slash = credential.find('/', pos);
    scope.push_back(credential.substr(pos, slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  if (scope.size() != 5 || signed_headers.empty() || signature.empty()) raise(errors::incomplete_authorization());
  // The headers whose change changes what the request does must be signed.
  const std::vector<std::string> signed_names = header_names(signed_headers);
  const auto is_signed = [&](std::string_view name) {
    return std::find(signed_names.begin(), signed_names.end(), name) != signed_names.end();
  };
  if (!is_signed("host")) raise(errors::host_not_signed());
  for (const auto& [field_name, shown] :
       {std::pair{"x-amz-target", "X-Amz-Target"}, std::pair{"content-type", "Content-Type"}}) {
    if (req.find(field_name) != req.end() && !is_signed(field_name)) raise(errors::header_not_signed(shown));
  }
  const auto key = credentials_.find(scope[0]);
  if (key == credentials_.end()) raise(errors::unknown_access_key());
  const std::string amz_date(req["X-Amz-Date"]);
  std::tm tm{};
  if (amz_date.size() != 16 || !strptime(amz_date.c_str(), "%Y%m%dT%H%M%SZ", &tm)) raise(errors::missing_date());
  if (scope[1] != amz_date.substr(0, 8)) raise(errors::scope_date_mismatch(scope[1], amz_date));
  if (scope[2] != region_) raise(errors::scope_region_mismatch(scope[2]));
  if (scope[3] != "sqs") raise(errors::scope_service_mismatch());
  if (scope[4] != "aws4_request") raise(errors::scope_terminator_mismatch(scope[4]));
  const auto signed_at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (now - signed_at > std::chrono::minutes(15) || signed_at - now > std::chrono::minutes(15)) {
    raise(errors::signature_expired(amz_date));
  }

  const std::string_view target = req.target();
  const std::size_t q = target.find('?');
  std::vector<std::pair<std::string, std::string>> headers;
  for (const std::string& name : signed_names) headers.emplace_back(name, std::string(req[name]));
  // The body's hash is ours to compute: a client's x-amz-content-sha256 is a
  // claim, which must match, never a substitute for the body.
  const std::string payload_hash = detail::sigv4::sha256_hex(req.body());
  if (const auto claimed = req.find("x-amz-content-sha256"); claimed != req.end() && claimed->value() != payload_hash) {
    raise(errors::payload_hash_mismatch());
  }
  // SignedHeaders as the client listed them: a list out of order signs
  // another canonical request, and then the signature does not match.
  std::string canonical = detail::sigv4::canonical_request(
      req.method_string(), target.substr(0, q),
      q == std::string_view::npos ? std::string() : canonical_query(target.substr(q + 1)), headers, payload_hash);
  const std::string expected_hex = detail::sigv4::signature(key->second, amz_date, scope[2], scope[3], canonical);
  if (expected_hex.size() != signature.size() ||
      CRYPTO_memcmp(expected_hex.data(), signature.data(), signature.size()) != 0) {
    raise(errors::signature_mismatch());
  }
  return scope[0];
}

}  // namespace shmq::bridge
