// SQS errors as the bridge returns them: the one table from shmq::Errc to
// SQS's error shapes, codes and HTTP statuses.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace shmq::bridge {

// Amazon SQS's message for a queue that does not exist (the JSON
// protocol's; the Query protocol's adds " for this wsdl version").
inline constexpr const char* kNoSuchQueue = "The specified queue does not exist.";

struct SqsError {
  int status = 400;
  std::string shape;       // the model's error shape, e.g. "QueueDoesNotExist"
  std::string json_type;   // the JSON protocol's "__type" after '#': the shape's, or AWS's own name
  std::string query_code;  // the Query protocol's Code and x-amzn-query-error
  std::string message;
  bool sender_fault = true;
};

// An error an action raises; the protocol layer renders it.
class SqsException : public std::runtime_error {
 public:
  explicit SqsException(SqsError error) : std::runtime_error(error.message), error_(std::move(error)) {}
  const SqsError& error() const noexcept { return error_; }

 private:
  SqsError error_;
};

// The SQS error for a library error code, with `detail` as its message
// (the code's own text when empty).
SqsError to_sqs_error(const std::error_code& ec, const std::string& detail = {});

// Errors with no library code: InvalidParameterValue, MissingParameter,
// InvalidAction, InvalidQueryParameter, AccessDenied, ...
SqsError sqs_error(const std::string& shape, const std::string& message);

[[noreturn]] inline void raise(const std::error_code& ec, const std::string& detail = {}) {
  throw SqsException(to_sqs_error(ec, detail));
}
[[noreturn]] inline void raise(const std::string& shape, const std::string& message) {
  throw SqsException(sqs_error(shape, message));
}

}  // namespace shmq::bridge
