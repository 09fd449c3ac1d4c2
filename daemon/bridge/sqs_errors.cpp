#include "sqs_errors.hpp"

#include <array>
#include <string_view>

#include "shmq/error.hpp"
#include "shmq/types.hpp"
#include "utf8.hpp"

namespace shmq::bridge {

namespace {

struct Row {
  std::string_view shape;
  std::string_view query_code;
  int status;
  std::string_view json_type = {};  // when the JSON protocol's name is not the shape's
};

// Every error shape of the SQS API model, with its awsQueryError code and
// status (the shapes up to ResourceNotFoundException, KMS's among them), then
// the errors AWS returns without a shape of the model: on the JSON protocol
// AWS names InvalidParameterValue and MissingParameter differently.
constexpr std::array kShapes{
    Row{"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400},
    Row{"QueueNameExists", "QueueAlreadyExists", 400},
    Row{"QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently", 400},
    Row{"ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404},
    Row{"MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", 400},
    Row{"InvalidMessageContents", "InvalidMessageContents", 400},
    Row{"OverLimit", "OverLimit", 403},
    Row{"InvalidAttributeName", "InvalidAttributeName", 400},
    Row{"InvalidAttributeValue", "InvalidAttributeValue", 400},
    Row{"EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400},
    Row{"TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400},
    Row{"BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400},
    Row{"InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400},
    Row{"BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", 400},
    Row{"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400},
    Row{"PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403},
    Row{"InvalidIdFormat", "InvalidIdFormat", 400},
    Row{"ResourceNotFoundException", "ResourceNotFoundException", 404},
    Row{"InvalidAddress", "InvalidAddress", 404},
    Row{"InvalidSecurity", "InvalidSecurity", 403},
    Row{"RequestThrottled", "RequestThrottled", 403},
    Row{"KmsAccessDenied", "KMS.AccessDeniedException", 400},
    Row{"KmsDisabled", "KMS.DisabledException", 400},
    Row{"KmsInvalidKeyUsage", "KMS.InvalidKeyUsageException", 400},
    Row{"KmsInvalidState", "KMS.InvalidStateException", 400},
    Row{"KmsNotFound", "KMS.NotFoundException", 400},
    Row{"KmsOptInRequired", "KMS.OptInRequired", 403},
    Row{"KmsThrottled", "KMS.ThrottlingException", 400},
    Row{"InvalidParameterValue", "InvalidParameterValue", 400, "InvalidParameterValueException"},
    Row{"MissingParameter", "MissingParameter", 400, "MissingRequiredParameterException"},
    Row{"InvalidAction", "InvalidAction", 400},
    Row{"UnknownOperationException", "UnknownOperationException", 404},
    Row{"InvalidQueryParameter", "InvalidQueryParameter", 400},
    Row{"MalformedQueryString", "MalformedQueryString", 400},
    Row{"AccessDenied", "AccessDenied", 403},
    Row{"InvalidClientTokenId", "InvalidClientTokenId", 403},
    Row{"SignatureDoesNotMatch", "SignatureDoesNotMatch", 403},
    Row{"IncompleteSignature", "IncompleteSignature", 400},
    Row{"MissingAuthenticationToken", "MissingAuthenticationToken", 403},
    Row{"RequestExpired", "RequestExpired", 400},
    Row{"InternalError", "InternalError", 500},
    Row{"ServiceUnavailable", "ServiceUnavailable", 503},
};

std::string_view shape_for(const std::error_code& ec) {
  if (ec.category() != error_category()) return "InternalError";
  switch (static_cast<Errc>(ec.value())) {
    case Errc::queue_full:
      return "OverLimit";
    case Errc::too_many_in_flight:
      return "OverLimit";
    case Errc::message_too_large:
      return "InvalidParameterValue";
    case Errc::invalid_message_contents:
      return "InvalidMessageContents";
    case Errc::invalid_message_attribute:
      return "InvalidParameterValue";
    case Errc::missing_parameter:
      return "MissingParameter";
    case Errc::invalid_receipt_handle:
      return "ReceiptHandleIsInvalid";
    case Errc::stale_receipt_handle:
      return "ReceiptHandleIsInvalid";
    case Errc::receipt_handle_expired:
      return "InvalidParameterValue";
    case Errc::message_not_in_flight:
      return "MessageNotInflight";
    case Errc::queue_does_not_exist:
      return "QueueDoesNotExist";
    case Errc::queue_name_exists:
      return "QueueNameExists";
    case Errc::invalid_queue_name:
      return "InvalidParameterValue";
    case Errc::invalid_attribute_name:
      return "InvalidAttributeName";
    case Errc::invalid_attribute_value:
      return "InvalidAttributeValue";
    case Errc::invalid_parameter_value:
      return "InvalidParameterValue";
    case Errc::empty_batch_request:
      return "EmptyBatchRequest";
    case Errc::too_many_entries_in_batch:
      return "TooManyEntriesInBatchRequest";
    case Errc::batch_entry_ids_not_distinct:
      return "BatchEntryIdsNotDistinct";
    case Errc::invalid_batch_entry_id:
      return "InvalidBatchEntryId";
    case Errc::batch_request_too_long:
      return "BatchRequestTooLong";
    case Errc::permission_denied:
      return "AccessDenied";
    case Errc::daemon_unavailable:
      return "ServiceUnavailable";
    case Errc::queue_busy:
      return "ServiceUnavailable";
    case Errc::segment_corrupt:
      return "QueueDoesNotExist";  // no longer served: to an SQS client, gone (the message says why)
    default:
      break;
  }
  // Codes added for daemon features (tags, move tasks) map by their names.
  const std::string name = errc_name(ec);
  if (name == "resource_not_found") return "ResourceNotFoundException";
  if (name == "unsupported_operation") return "UnsupportedOperation";
  if (name == "over_limit") return "OverLimit";
  return "InternalError";
}

// Concatenates strings, string_views and C strings.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(parts), ...);
  return out;
}

// Amazon SQS's message for a queue that does not exist: the JSON protocol's,
// and the Query protocol's.
constexpr std::string_view kNoSuchQueue = "The specified queue does not exist.";
constexpr std::string_view kNoSuchQueueQuery = "The specified queue does not exist for this wsdl version.";

SqsError invalid(const std::string& message) { return sqs_error("InvalidParameterValue", message); }

// "Value for parameter P<rest>"
SqsError value_for(std::string_view parameter, std::string_view rest) {
  return invalid(cat("Value for parameter ", parameter, rest));
}

SqsError malformed_key(std::string_view key, std::string_view what, std::size_t shown_bytes = 256) {
  return sqs_error("MalformedQueryString", cat("The query parameter ", quoted_input(key, shown_bytes), " ", what));
}

SqsError signature(const std::string& message) { return sqs_error("SignatureDoesNotMatch", message); }

}  // namespace

SqsError sqs_error(const std::string& shape, const std::string& message) {
  for (const Row& row : kShapes) {
    if (row.shape == shape) {
      return SqsError{row.status,
                      std::string(row.shape),
                      std::string(row.json_type.empty() ? row.shape : row.json_type),
                      std::string(row.query_code),
                      message,
                      row.status < 500};
    }
  }
  return SqsError{500, "InternalError", "InternalError", "InternalError", message, false};
}

SqsError to_sqs_error(const std::error_code& ec, const std::string& detail) {
  if (detail.empty() && ec == Errc::queue_does_not_exist) return errors::no_such_queue();
  return sqs_error(std::string(shape_for(ec)), detail.empty() ? ec.message() : detail);
}

SqsError in_query_words(const SqsError& error) {
  if (error.shape != "QueueDoesNotExist" || error.message != kNoSuchQueue) return error;
  SqsError worded = error;
  worded.message = kNoSuchQueueQuery;
  return worded;
}

namespace errors {

// --- Parameters ------------------------------------------------------------

SqsError missing_parameter(std::string_view name) {
  return sqs_error("MissingParameter", cat("The request must contain the parameter ", name, "."));
}

SqsError invalid_value(std::string_view value, std::string_view parameter, std::string_view reason) {
  return invalid(cat("Value ", value, " for parameter ", parameter, " is invalid. Reason: ", reason));
}

SqsError invalid_parameter(std::string_view parameter, std::string_view reason) {
  return value_for(parameter, reason.empty() ? std::string(" is invalid.") : cat(" is invalid. Reason: ", reason));
}

SqsError out_of_range(std::string_view shown, std::string_view parameter, std::int64_t min, std::int64_t max) {
  if (parameter == "MaxNumberOfMessages")
    return invalid_value(shown, parameter, "Must be between 1 and 10, if provided.");
  if (parameter == "WaitTimeSeconds") return invalid_value(shown, parameter, "Must be >= 0 and <= 20, if provided.");
  return invalid_value(shown, parameter,
                       cat("must be between ", std::to_string(min), " and ", std::to_string(max), "."));
}

SqsError not_for_queue_type(std::string_view value, std::string_view parameter) {
  return invalid_value(value, parameter, "The request include parameter that is not valid for this queue type.");
}

SqsError empty_parameter(std::string_view parameter) { return invalid_parameter(parameter, "it must not be empty."); }

SqsError not_utf8(std::string_view parameter) { return value_for(parameter, " is not valid UTF-8."); }
SqsError not_a_string(std::string_view parameter) { return value_for(parameter, " must be a string."); }
SqsError not_a_list(std::string_view parameter) { return invalid(cat(parameter, " must be a list.")); }
SqsError not_a_list_of_strings(std::string_view parameter) {
  return invalid(cat(parameter, " must be a list of strings."));
}
SqsError not_a_map(std::string_view parameter) { return invalid(cat(parameter, " must be a map.")); }
SqsError map_values_not_strings(std::string_view parameter) {
  return invalid(cat(parameter, " values must be strings."));
}
SqsError not_base64() { return invalid("a binary value is not valid base64"); }

// --- Queues ----------------------------------------------------------------

SqsError no_such_queue() { return sqs_error("QueueDoesNotExist", std::string(kNoSuchQueue)); }
SqsError queue_url_without_queue() { return invalid("QueueUrl does not name a queue."); }
SqsError bad_queue_name() {
  return invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length");
}
SqsError unknown_attribute(std::string_view name) {
  return sqs_error("InvalidAttributeName", cat("Unknown Attribute ", name, "."));
}
SqsError invalid_attribute_value(std::string_view name) {
  return sqs_error("InvalidAttributeValue", cat("Invalid value for the parameter ", name, "."));
}
SqsError policy_too_large() { return sqs_error("OverLimit", kPolicyTooLarge); }
SqsError purge_in_progress(std::string_view queue) {
  return sqs_error("PurgeQueueInProgress",
                   cat("Only one PurgeQueue operation on ", queue, " is allowed every 60 seconds."));
}

// --- Messages --------------------------------------------------------------

SqsError message_too_long(std::size_t max_bytes) {
  return invalid(cat("One or more parameters are invalid. Reason: Message must be shorter than ",
                     std::to_string(max_bytes), " bytes."));
}
SqsError missing_deduplication_id() {
  return invalid(
      "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided "
      "explicitly");
}
SqsError attribute_without_value(std::string_view name) {
  return invalid(cat("The message attribute '", name, "' must have a value."));
}
SqsError attribute_without_type(std::string_view name) {
  return invalid(cat("The message attribute '", name, "' must contain a non-empty message attribute type."));
}
SqsError attribute_list_values() {
  return sqs_error("UnsupportedOperation", "Message attribute list values are not supported.");
}
SqsError unsupported_system_attribute(std::string_view name) {
  return invalid(cat("Message system attribute '", name, "' is not supported; AWSTraceHeader (String) is."));
}
SqsError invalid_message_attributes(std::string_view why) { return invalid(std::string(why)); }

// --- Receipt handles -------------------------------------------------------

SqsError invalid_receipt_handle() {
  return sqs_error("ReceiptHandleIsInvalid", "The input receipt handle is invalid.");
}
SqsError invalid_entry_receipt_handle(std::string_view handle) {
  return sqs_error("ReceiptHandleIsInvalid",
                   cat("The input receipt handle \"", handle, "\" is not a valid receipt handle."));
}
SqsError receipt_handle_expired(std::string_view handle) {
  return invalid_value(handle, "ReceiptHandle", "The receipt handle has expired.");
}
SqsError entry_receipt_handle_expired() {
  return sqs_error("ReceiptHandleIsInvalid", "The receipt handle has expired");
}
SqsError not_available_for_visibility(std::string_view handle) {
  return invalid_value(handle, "ReceiptHandle",
                       "Message does not exist or is not available for visibility timeout change.");
}

// --- Batches ---------------------------------------------------------------

SqsError empty_batch(std::string_view entry_shape) {
  return sqs_error("EmptyBatchRequest", cat("There should be at least one ", entry_shape, " in the request."));
}
SqsError too_many_entries(std::size_t max, std::string_view sent) {
  return sqs_error("TooManyEntriesInBatchRequest",
                   cat("Maximum number of entries per request are ", std::to_string(max), ". You have sent ",
                       quoted_input(sent, 24), "."));
}
SqsError bad_entry_id() {
  return sqs_error("InvalidBatchEntryId",
                   "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at "
                   "most 80 letters long.");
}
SqsError entry_id_repeated(std::string_view id) {
  return sqs_error("BatchEntryIdsNotDistinct", cat("Id ", quoted_input(id), " repeated."));
}
SqsError batch_too_long(std::size_t max, std::size_t sent) {
  return sqs_error("BatchRequestTooLong", cat("Batch requests cannot be longer than ", std::to_string(max),
                                              " bytes. You have sent ", std::to_string(sent), " bytes."));
}

// --- Message move tasks ----------------------------------------------------

SqsError move_task_running() {
  return invalid(
      "There is already a task running. Only one active task is allowed for a source queue arn at a given time.");
}
SqsError unknown_task_handle() { return invalid_parameter("TaskHandle"); }

// --- Requests --------------------------------------------------------------

SqsError bad_method() { return sqs_error("InvalidAction", "SQS takes POST and GET requests."); }
SqsError unknown_target(std::string_view target) {
  return sqs_error("InvalidAction", cat("Unknown X-Amz-Target ", quoted_input(target), "."));
}
SqsError invalid_action(std::string_view action) {
  return sqs_error("InvalidAction", cat("The action ", quoted_input(action), " is not valid for this endpoint."));
}
SqsError unknown_operation() { return sqs_error("UnknownOperationException", ""); }

SqsError bad_percent_encoding() { return sqs_error("MalformedQueryString", "bad percent-encoding"); }
SqsError too_many_query_parameters(std::size_t max) {
  return sqs_error("MalformedQueryString",
                   cat("The request has more than ", std::to_string(max), " query parameters."));
}
SqsError query_key_not_utf8(std::string_view key) { return malformed_key(key, "is not UTF-8."); }
SqsError query_key_too_deep(std::string_view key, std::size_t max_segments) {
  return malformed_key(key, cat("is nested deeper than ", std::to_string(max_segments), " levels."), 64);
}
SqsError bad_query_key(std::string_view key) { return malformed_key(key, "is not valid."); }
SqsError list_index_zero(std::string_view key) { return malformed_key(key, "is not valid: lists count from 1."); }
SqsError value_and_structure(std::string_view key) {
  return malformed_key(key, "is given both as a value and as a structure or list.");
}
SqsError too_many_items(std::string_view items, std::string_view index, std::size_t max) {
  return invalid(cat("Number of ", items, " [", quoted_input(index, 24), "] exceeds the allowed maximum [",
                     std::to_string(max), "]."));
}

SqsError json_too_deep(std::size_t max_depth) {
  return invalid(cat("The request body is nested deeper than ", std::to_string(max_depth), " levels."));
}
SqsError not_a_json_object() { return invalid("The request body is not a JSON object."); }

// --- Signatures ------------------------------------------------------------

SqsError missing_signature() {
  return sqs_error("MissingAuthenticationToken",
                   "Request is missing Authentication Token (an AWS Signature Version 4).");
}
SqsError incomplete_authorization() {
  return sqs_error("MissingAuthenticationToken", "The Authorization header is not a complete AWS Signature Version 4.");
}
SqsError missing_date() {
  return sqs_error("MissingAuthenticationToken", "The request needs an X-Amz-Date header (yyyymmddThhmmssZ).");
}
SqsError host_not_signed() {
  return sqs_error("IncompleteSignature", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
}
SqsError header_not_signed(std::string_view header) {
  return sqs_error("IncompleteSignature", cat("'", header, "' must be a 'SignedHeader' in the AWS Authorization."));
}
SqsError unknown_access_key() {
  return sqs_error("InvalidClientTokenId", "The security token included in the request is invalid.");
}
SqsError scope_date_mismatch(std::string_view scope_date, std::string_view amz_date) {
  return signature(cat("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '",
                       quoted_input(scope_date, 32), "' != '", amz_date.substr(0, 8), "', from '", amz_date, "'."));
}
SqsError scope_region_mismatch(std::string_view region) {
  return signature(cat("Credential should be scoped to a valid region, not '", quoted_input(region, 64), "'. "));
}
SqsError scope_service_mismatch() { return signature("Credential should be scoped to correct service: 'sqs'. "); }
SqsError scope_terminator_mismatch(std::string_view terminator) {
  return signature(cat("Credential should be scoped with a valid terminator: 'aws4_request', not '",
                       quoted_input(terminator, 64), "'. "));
}
SqsError payload_hash_mismatch() {
  return signature("The provided 'x-amz-content-sha256' header does not match what was computed.");
}
SqsError signature_mismatch() {
  return signature(
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
      "Key and signing method.");
}
SqsError signature_expired(std::string_view amz_date) {
  return sqs_error("RequestExpired",
                   cat("Signature expired: ", amz_date, " is more than 15 minutes from the server's time."));
}

// --- The bridge itself -----------------------------------------------------

SqsError host_not_allowed(std::string_view host, std::string_view name) {
  return sqs_error("AccessDenied", cat("Host '", host,
                                       "' is not allowed: this bridge listens on loopback and takes loopback "
                                       "addresses, localhost, its listen address and the --advertise-url host "
                                       "(start shmqd with --allow-host ",
                                       name, " to allow it)."));
}
SqsError origin_not_allowed(std::string_view origin) {
  return sqs_error("AccessDenied", cat("Origin '", origin,
                                       "' is not allowed: requests from web pages are refused unless shmqd "
                                       "runs with --cors-allow-origin ",
                                       origin, "."));
}
SqsError over_memory_budget() {
  return sqs_error("ServiceUnavailable",
                   "The bridge is reading as many request bodies as its memory budget allows "
                   "(--bridge-max-buffered-mib); try again later.");
}
SqsError internal_error(std::string_view what) { return sqs_error("InternalError", std::string(what)); }
SqsError unknown_exception() { return internal_error("unknown exception"); }

}  // namespace errors

}  // namespace shmq::bridge
