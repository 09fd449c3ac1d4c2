// One SQS action over the AWS JSON 1.0 protocol: the request signed with
// SigV4, sent on a pooled connection, retried as AWS SDKs retry, and the
// answer or SQS's error turned into a shmq error code
// (docs/remote-endpoints.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "remote/aws_config.hpp"
#include "remote/http_transport.hpp"
#include "shmq/client.hpp"

namespace shmq::detail::remote {

// What an action answered: the response's JSON object, or an error with
// SQS's code (its error shape, "QueueDoesNotExist") and message.
struct Outcome {
  nlohmann::json body;
  std::error_code error;
  std::string shape;
  std::string message;

  explicit operator bool() const noexcept { return !error; }
  // Throws std::system_error(error, message) if the action failed.
  const nlohmann::json& value() const;
};

// The shmq code for an SQS error shape (as the JSON protocol's __type
// names it, without its namespace) and the action that got it.
std::error_code errc_for_shape(std::string_view shape, std::string_view action, std::string_view message);

// Whether an answer with this status and shape is worth another try:
// throttling, 5xx, and what AWS SDKs class as transient.
bool retryable(unsigned status, std::string_view shape) noexcept;

class SqsJsonClient {
 public:
  // Resolves the URL, region and credentials (see aws_config.hpp); throws
  // std::system_error(invalid_parameter_value) naming what is wrong.
  explicit SqsJsonClient(const Endpoint& endpoint);

  // Calls `action` (e.g. "SendMessage") with this request object. Blocks
  // for the answer; `wait` is added to the endpoint's request timeout (a
  // long poll's wait). Never throws for what the service or the network
  // answered: a connection that fails every attempt is daemon_unavailable,
  // throttling past the last attempt is throttled.
  Outcome call(std::string_view action, const nlohmann::json& request,
               std::chrono::milliseconds wait = std::chrono::milliseconds{0});

  const std::string& url() const noexcept { return url_text_; }
  const std::string& region() const noexcept { return region_; }
  std::uint32_t max_attempts() const noexcept { return max_attempts_; }

 private:
  Outcome attempt(std::string_view action, const std::string& body, std::chrono::milliseconds timeout, bool& transient);
  std::chrono::milliseconds backoff(std::uint32_t attempt, bool throttled);

  std::string url_text_;
  std::unique_ptr<HttpTransport> transport_;
  std::string region_;
  std::optional<Credentials> credentials_;
  std::chrono::milliseconds request_timeout_;
  std::chrono::milliseconds retry_base_;
  std::uint32_t max_attempts_;
  std::mutex random_mutex_;
  std::minstd_rand random_;
};

}  // namespace shmq::detail::remote
