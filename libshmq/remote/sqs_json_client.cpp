#include "remote/sqs_json_client.hpp"

#include <array>
#include <cctype>
#include <cstdlib>
#include <thread>

#include "shmq/error.hpp"
#include "shmq/version.hpp"
#include "sigv4_signature.hpp"

namespace shmq::detail::remote {

using nlohmann::json;

namespace {

struct ShapeCode {
  std::string_view shape;
  Errc code;
};

// SQS's error shapes (the JSON protocol's __type, and the Query protocol's
// codes some services still send) to shmq's codes: the bridge's table
// (daemon/bridge/sqs_errors.cpp) read the other way. OverLimit and
// InvalidParameterValue cover several of shmq's codes: see errc_for_shape.
constexpr std::array kShapes{
    ShapeCode{"QueueDoesNotExist", Errc::queue_does_not_exist},
    ShapeCode{"AWS.SimpleQueueService.NonExistentQueue", Errc::queue_does_not_exist},
    ShapeCode{"QueueNameExists", Errc::queue_name_exists},
    ShapeCode{"QueueAlreadyExists", Errc::queue_name_exists},
    ShapeCode{"QueueDeletedRecently", Errc::queue_name_exists},
    ShapeCode{"ReceiptHandleIsInvalid", Errc::invalid_receipt_handle},
    ShapeCode{"MessageNotInflight", Errc::message_not_in_flight},
    ShapeCode{"InvalidMessageContents", Errc::invalid_message_contents},
    ShapeCode{"OverLimit", Errc::over_limit},
    ShapeCode{"InvalidAttributeName", Errc::invalid_attribute_name},
    ShapeCode{"InvalidAttributeValue", Errc::invalid_attribute_value},
    ShapeCode{"EmptyBatchRequest", Errc::empty_batch_request},
    ShapeCode{"TooManyEntriesInBatchRequest", Errc::too_many_entries_in_batch},
    ShapeCode{"BatchEntryIdsNotDistinct", Errc::batch_entry_ids_not_distinct},
    ShapeCode{"InvalidBatchEntryId", Errc::invalid_batch_entry_id},
    ShapeCode{"BatchRequestTooLong", Errc::batch_request_too_long},
    ShapeCode{"UnsupportedOperation", Errc::unsupported_operation},
    ShapeCode{"PurgeQueueInProgress", Errc::over_limit},
    ShapeCode{"InvalidIdFormat", Errc::invalid_receipt_handle},
    ShapeCode{"ResourceNotFoundException", Errc::resource_not_found},
    ShapeCode{"InvalidAddress", Errc::invalid_parameter_value},
    ShapeCode{"InvalidParameterValue", Errc::invalid_parameter_value},
    ShapeCode{"InvalidParameterValueException", Errc::invalid_parameter_value},
    ShapeCode{"InvalidParameterCombination", Errc::invalid_parameter_value},
    ShapeCode{"ValidationError", Errc::invalid_parameter_value},
    ShapeCode{"MissingParameter", Errc::missing_parameter},
    ShapeCode{"MissingRequiredParameterException", Errc::missing_parameter},
    ShapeCode{"InvalidAction", Errc::unsupported_operation},
    ShapeCode{"UnknownOperationException", Errc::unsupported_operation},
    ShapeCode{"AccessDenied", Errc::permission_denied},
    ShapeCode{"AccessDeniedException", Errc::permission_denied},
    ShapeCode{"InvalidSecurity", Errc::permission_denied},
    ShapeCode{"InvalidClientTokenId", Errc::permission_denied},
    ShapeCode{"UnrecognizedClientException", Errc::permission_denied},
    ShapeCode{"SignatureDoesNotMatch", Errc::permission_denied},
    ShapeCode{"IncompleteSignature", Errc::permission_denied},
    ShapeCode{"MissingAuthenticationToken", Errc::permission_denied},
    ShapeCode{"RequestExpired", Errc::permission_denied},
    ShapeCode{"ExpiredToken", Errc::permission_denied},
    ShapeCode{"KmsAccessDenied", Errc::permission_denied},
    ShapeCode{"RequestThrottled", Errc::throttled},
    ShapeCode{"ThrottlingException", Errc::throttled},
    ShapeCode{"Throttling", Errc::throttled},
    ShapeCode{"TooManyRequestsException", Errc::throttled},
    ShapeCode{"RequestLimitExceeded", Errc::throttled},
    ShapeCode{"KmsThrottled", Errc::throttled},
    ShapeCode{"SlowDown", Errc::throttled},
    ShapeCode{"HTTP 429", Errc::throttled},
    ShapeCode{"InternalError", Errc::daemon_unavailable},
    ShapeCode{"InternalFailure", Errc::daemon_unavailable},
    ShapeCode{"ServiceUnavailable", Errc::daemon_unavailable},
};

constexpr std::array<std::string_view, 7> kThrottling{
    "RequestThrottled",     "ThrottlingException", "Throttling", "TooManyRequestsException",
    "RequestLimitExceeded", "KmsThrottled",        "SlowDown",
};

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist"; AWS also
// sends "aws.protocols#..." and plain names.
std::string_view shape_of(std::string_view type) {
  const std::size_t hash = type.rfind('#');
  if (hash != std::string_view::npos) type.remove_prefix(hash + 1);
  const std::size_t colon = type.find(':');  // "Name:http://internal.amazon.com/..." in old answers
  return type.substr(0, colon);
}

std::uint32_t environment_attempts() {
  if (const char* v = std::getenv("AWS_MAX_ATTEMPTS"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const unsigned long n = std::strtoul(v, &end, 10);
    if (*end == '\0' && n >= 1 && n <= 100) return static_cast<std::uint32_t>(n);
  }
  return 3;
}

std::string environment_ca_bundle() {
  const char* v = std::getenv("AWS_CA_BUNDLE");
  return v == nullptr ? std::string() : std::string(v);
}

// Whether a failed exchange failed in TLS: the handshake (a certificate
// that does not verify, no protocol in common) rather than the network.
// ("asio.ssl.stream", a stream cut short, is the network's.)
bool tls_failure(const std::system_error& e) { return std::string_view(e.code().category().name()) == "asio.ssl"; }

}  // namespace

const json& Outcome::value() const {
  if (error) {
    throw std::system_error(error, shape.empty() ? message : message.empty() ? shape : shape + ": " + message);
  }
  return body;
}

std::error_code errc_for_shape(std::string_view shape, std::string_view action, std::string_view message) {
  // One shape, several meanings: tell them apart as SQS words them.
  if (shape == "OverLimit") {
    if (action == "SendMessage" || action == "SendMessageBatch") return Errc::queue_full;
    if (action == "ReceiveMessage") return Errc::too_many_in_flight;
  }
  if (shape == "InvalidParameterValue" || shape == "InvalidParameterValueException") {
    if (contains(message, "Message must be shorter than") || contains(message, "must be shorter than")) {
      return Errc::message_too_large;
    }
    if (contains(message, "message attribute") || contains(message, "Message attribute") ||
        contains(message, "MessageAttribute")) {
      return Errc::invalid_message_attribute;
    }
    if (contains(message, "receipt handle has expired")) return Errc::receipt_handle_expired;
    // The move tasks' refusals, which SQS words as bad parameters.
    if (contains(message, "There is already a task running")) return Errc::unsupported_operation;
    if (action == "CancelMessageMoveTask" && contains(message, "TaskHandle")) return Errc::resource_not_found;
    if (contains(message, "Can only include alphanumeric characters, hyphens, or underscores")) {
      return Errc::invalid_queue_name;
    }
  }
  for (const ShapeCode& row : kShapes) {
    if (row.shape == shape) return row.code;
  }
  return Errc::internal;
}

bool retryable(unsigned status, std::string_view shape) noexcept {
  if (status >= 500 || status == 429) return true;
  for (std::string_view t : kThrottling) {
    if (t == shape) return true;
  }
  return false;
}

SqsJsonClient::SqsJsonClient(const Endpoint& endpoint)
    : url_text_(endpoint.url),
      request_timeout_(endpoint.request_timeout),
      retry_base_(endpoint.retry_base),
      max_attempts_(endpoint.max_attempts != 0 ? endpoint.max_attempts : environment_attempts()),
      random_(std::random_device{}()) {
  Url url = parse_url(endpoint.url);
  // SigV4 signs the path URI-encoded; a path of plain characters is its own
  // encoding, and any other would be signed as something else.
  for (const char c : url.path) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~')) {
      throw std::system_error(Errc::invalid_parameter_value,
                              "endpoint URL '" + endpoint.url +
                                  "': a path of letters, digits and / - . _ ~ only (SigV4 signs it as it is)");
    }
  }
  const Environment env = process_environment();
  region_ = resolve_region(endpoint.region, url.host, endpoint.profile, env);
  if (!endpoint.access_key_id.empty() || !endpoint.secret_access_key.empty()) {
    if (endpoint.access_key_id.empty() || endpoint.secret_access_key.empty()) {
      throw std::system_error(Errc::invalid_parameter_value,
                              "Endpoint: access_key_id and secret_access_key go together");
    }
    credentials_ = Credentials{endpoint.access_key_id, endpoint.secret_access_key, endpoint.session_token, "Endpoint"};
  } else {
    credentials_ = resolve_credentials(endpoint.profile, env);
  }
  TransportOptions options;
  options.connect_timeout = endpoint.connect_timeout;
  options.verify_tls = endpoint.verify_tls;
  options.ca_file = endpoint.ca_file.empty() ? environment_ca_bundle() : endpoint.ca_file;
  transport_ = std::make_unique<HttpTransport>(std::move(url), std::move(options));
}

std::chrono::milliseconds SqsJsonClient::backoff(std::uint32_t attempt, bool throttled) {
  // Full jitter, as AWS SDKs' standard retry mode: a delay drawn from
  // [0, min(20 s, base x 2^attempt)), with a longer base for throttling.
  const std::chrono::milliseconds base = throttled ? retry_base_ * 5 : retry_base_;
  const std::int64_t cap = std::min<std::int64_t>(20'000, base.count() << std::min<std::uint32_t>(attempt, 16));
  if (cap <= 0) return std::chrono::milliseconds{0};
  std::lock_guard lock(random_mutex_);
  return std::chrono::milliseconds{std::uniform_int_distribution<std::int64_t>(0, cap - 1)(random_)};
}

Outcome SqsJsonClient::attempt(std::string_view action, const std::string& body, std::chrono::milliseconds timeout,
                               bool& transient) {
  transient = false;
  const std::string target = "AmazonSQS." + std::string(action);
  const std::string amz_date = sigv4::amz_date_now();
  std::vector<std::pair<std::string, std::string>> headers{
      {"content-type", "application/x-amz-json-1.0"},
      {"host", transport_->url().host_header},
      {"x-amz-date", amz_date},
  };
  if (credentials_ && !credentials_->session_token.empty()) {
    headers.emplace_back("x-amz-security-token", credentials_->session_token);
  }
  headers.emplace_back("x-amz-target", target);
  std::vector<std::pair<std::string, std::string>> sent;
  if (credentials_) {
    const std::string payload_hash = sigv4::sha256_hex(body);
    const std::string canonical = sigv4::canonical_request("POST", transport_->url().path, "", headers, payload_hash);
    std::string names;
    for (const auto& h : headers) names += (names.empty() ? "" : ";") + h.first;
    sent.emplace_back("authorization",
                      "AWS4-HMAC-SHA256 Credential=" + credentials_->access_key_id + "/" +
                          sigv4::scope(amz_date, region_, "sqs") + ", SignedHeaders=" + names + ", Signature=" +
                          sigv4::signature(credentials_->secret_access_key, amz_date, region_, "sqs", canonical));
  }
  for (auto& h : headers) {
    if (h.first != "host") sent.push_back(std::move(h));
  }
  sent.emplace_back("user-agent", "libshmq/" + std::string(kVersion));
  // SQS's JSON protocol answers query-compatible error codes when asked.
  sent.emplace_back("x-amzn-query-mode", "true");

  HttpResponse response;
  Outcome out;
  try {
    response = transport_->post(sent, body, timeout);
  } catch (const std::system_error& e) {
    // A certificate that does not verify will not verify on the next try
    // either; a refused or lost connection may pass.
    transient = !tls_failure(e);
    out.error = Errc::daemon_unavailable;
    out.message = e.what();
    return out;
  }
  json parsed = json::parse(response.body, nullptr, false);
  if (response.status == 200) {
    if (parsed.is_discarded() || !parsed.is_object()) {
      // Some actions answer an empty body; anything else is not SQS.
      if (!response.body.empty()) {
        out.error = Errc::internal;
        out.message = url_text_ + " answered " + std::string(action) + " with a body that is not a JSON object";
        return out;
      }
      parsed = json::object();
    }
    out.body = std::move(parsed);
    return out;
  }
  std::string type;
  std::string message;
  if (parsed.is_object()) {
    if (auto t = parsed.find("__type"); t != parsed.end() && t->is_string()) type = t->get<std::string>();
    for (const char* key : {"message", "Message"}) {
      if (auto m = parsed.find(key); m != parsed.end() && m->is_string()) message = m->get<std::string>();
    }
  }
  if (type.empty()) {
    if (auto h = response.headers.find("x-amzn-errortype"); h != response.headers.end()) type = h->second;
  }
  out.shape = std::string(shape_of(type));
  if (out.shape.empty()) out.shape = "HTTP " + std::to_string(response.status);
  out.message = message;
  transient = retryable(response.status, out.shape);
  out.error = errc_for_shape(out.shape, action, message);
  if (out.error == Errc::internal && transient) out.error = Errc::daemon_unavailable;
  if (out.error == Errc::internal) {
    out.message = url_text_ + " answered " + std::string(action) + " with HTTP " + std::to_string(response.status) +
                  (out.shape.empty() ? "" : " " + out.shape) + (message.empty() ? "" : ": " + message);
  }
  return out;
}

Outcome SqsJsonClient::call(std::string_view action, const json& request, std::chrono::milliseconds wait) {
  Outcome out;
  std::string body;
  try {
    body = request.dump();
  } catch (const json::type_error&) {
    // A body or attribute that is not UTF-8 cannot go on the wire as JSON
    // text; nor could SQS store it.
    out.error = Errc::invalid_message_contents;
    out.message = std::string(action) + ": a string of the request is not valid UTF-8";
    return out;
  }
  for (std::uint32_t attempt_no = 0;; ++attempt_no) {
    bool transient = false;
    out = attempt(action, body, request_timeout_ + wait, transient);
    if (!out.error || !transient || attempt_no + 1 >= max_attempts_) break;
    const bool throttled = out.error == Errc::throttled;
    std::this_thread::sleep_for(backoff(attempt_no, throttled));
  }
  if (out.error == Errc::permission_denied && !credentials_) {
    out.message +=
        " (no credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in "
        "~/.aws/credentials)";
  }
  return out;
}

}  // namespace shmq::detail::remote
