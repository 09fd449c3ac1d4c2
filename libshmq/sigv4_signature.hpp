// AWS Signature Version 4: what signing (the remote backend) and verifying
// (the bridge's --auth) share, so that the two ends compute one thing.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shmq::detail::sigv4 {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// A header value as canonical headers carry it: trimmed, inner runs of
// spaces and tabs folded to one space.
std::string canonical_header_value(std::string_view value);

// The request's canonical form: METHOD, path, canonical query, the signed
// headers (lower-case names, in `signed_names`' order, which must be sorted),
// their list, and the payload's hash.
std::string canonical_request(std::string_view method, std::string_view path, std::string_view canonical_query,
                              const std::vector<std::pair<std::string, std::string>>& signed_headers,
                              std::string_view payload_hash);

// The signature, lower-case hex, of a canonical request signed at
// `amz_date` (yyyymmddThhmmssZ) for DATE/region/service/aws4_request, with
// the key derived from `secret`.
std::string signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view canonical);

// "DATE/region/service/aws4_request".
std::string scope(std::string_view amz_date, std::string_view region, std::string_view service);

// yyyymmddThhmmssZ of the system clock now.
std::string amz_date_now();

}  // namespace shmq::detail::sigv4
