// AWS Signature Version 4 verification for the bridge's optional --auth.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "http_server.hpp"

namespace shmq::bridge {

class SigV4Verifier {
 public:
  // access key id -> secret access key; `region`: the only region a
  // credential scope may name.
  SigV4Verifier(std::map<std::string, std::string> credentials, std::string region)
      : credentials_(std::move(credentials)), region_(std::move(region)) {}

  // Checks the request's Authorization header. The body's hash is computed
  // here (an x-amz-content-sha256 header must equal it); host, and
  // x-amz-target and content-type when present, must be signed; the scope
  // must be <date of X-Amz-Date>/<region>/sqs/aws4_request. Returns the
  // access key id; throws SqsException: MissingAuthenticationToken,
  // IncompleteSignature, InvalidClientTokenId, SignatureDoesNotMatch or
  // RequestExpired.
  std::string verify(const HttpRequest& request, std::chrono::system_clock::time_point now) const;

 private:
  std::map<std::string, std::string> credentials_;
  std::string region_;
};

}  // namespace shmq::bridge
