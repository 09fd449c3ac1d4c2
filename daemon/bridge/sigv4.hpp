// AWS Signature Version 4 verification for the bridge's optional --auth.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "http_server.hpp"

namespace shmq::bridge {

class SigV4Verifier {
 public:
  // access key id -> secret access key
  explicit SigV4Verifier(std::map<std::string, std::string> credentials) : credentials_(std::move(credentials)) {}

  // Checks the request's Authorization header (or presigned query). Returns
  // the access key id; throws SqsException: MissingAuthenticationToken,
  // InvalidClientTokenId, SignatureDoesNotMatch or RequestExpired.
  std::string verify(const HttpRequest& request, std::chrono::system_clock::time_point now) const;

 private:
  std::map<std::string, std::string> credentials_;
};

}  // namespace shmq::bridge
