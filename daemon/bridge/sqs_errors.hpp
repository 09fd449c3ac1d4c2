// SQS errors as the bridge returns them: every error it can answer, with its
// code and its text, is made here.
//
// sqs_errors.cpp holds the table `kShapes` (each error shape of the SQS
// model with its Query code, HTTP status and JSON type), the mapping from
// shmq::Errc to those shapes, and the texts of the functions of `errors`
// below: AWS's words wherever they are known, else shmq's. Code that
// refuses a request names what went wrong,
// `raise(errors::missing_parameter("QueueUrl"))`, and writes no message of
// its own. Texts from elsewhere pass through as they are: the library's own
// text for a code (to_sqs_error), and the daemon's answers already in AWS's
// words (kPolicyTooLarge and describe_invalid_attributes, which the daemon
// shares, are in shmq/types.hpp). The limits of the Query protocol's lists,
// with the nouns their errors count in, are the table kListRules in
// wire_protocol.cpp, next to the decoder that checks them. Answers that are
// not SQS errors (plain HTTP refusals of malformed or oversized requests)
// are HttpServer's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace shmq::bridge {

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
// (when empty: AWS's text for a missing queue, else the code's own text).
SqsError to_sqs_error(const std::error_code& ec, const std::string& detail = {});

// The error of `shape` (a row of kShapes) with `message`; an unknown shape
// is an InternalError. The functions of `errors` below are built on it.
SqsError sqs_error(const std::string& shape, const std::string& message);

// `error` as the Query protocol words it: AWS's Query endpoint says more
// for a missing queue.
SqsError in_query_words(const SqsError& error);

[[noreturn]] inline void raise(SqsError error) { throw SqsException(std::move(error)); }
[[noreturn]] inline void raise(const std::error_code& ec, const std::string& detail = {}) {
  raise(to_sqs_error(ec, detail));
}

// One function per situation, named for what went wrong. Client input that
// a text echoes is cut and made valid UTF-8 (quoted_input) where the
// function says "quoted".
namespace errors {

// --- Parameters ------------------------------------------------------------

// MissingParameter.
SqsError missing_parameter(std::string_view name);
// InvalidParameterValue, all of the form "Value V for parameter P is
// invalid. Reason: R" (`reason` a sentence with its full stop).
SqsError invalid_value(std::string_view value, std::string_view parameter, std::string_view reason);
// ... without the value, and without the reason when `reason` is empty.
SqsError invalid_parameter(std::string_view parameter, std::string_view reason = {});
// An integer outside [min, max], `shown` as the client wrote it; AWS's own
// reason for MaxNumberOfMessages and WaitTimeSeconds.
SqsError out_of_range(std::string_view shown, std::string_view parameter, std::int64_t min, std::int64_t max);
// A parameter the queue's type (standard or FIFO) does not take.
SqsError not_for_queue_type(std::string_view value, std::string_view parameter);
SqsError empty_parameter(std::string_view parameter);
// InvalidParameterValue: a value of the wrong JSON type, or text that is
// not UTF-8 or not base64.
SqsError not_utf8(std::string_view parameter);
SqsError not_a_string(std::string_view parameter);
SqsError not_a_list(std::string_view parameter);
SqsError not_a_list_of_strings(std::string_view parameter);
SqsError not_a_map(std::string_view parameter);
SqsError map_values_not_strings(std::string_view parameter);
SqsError not_base64();

// --- Queues ----------------------------------------------------------------

// QueueDoesNotExist (see in_query_words).
SqsError no_such_queue();
// InvalidParameterValue: a QueueUrl with no queue in it, a bad queue name.
SqsError queue_url_without_queue();
SqsError bad_queue_name();
// InvalidAttributeName: `name` is the daemon's.
SqsError unknown_attribute(std::string_view name);
// InvalidAttributeValue: a value out of range, `name` the attribute.
SqsError invalid_attribute_value(std::string_view name);
// OverLimit: a Policy over kMaxPolicyBytes, in the daemon's words (kPolicyTooLarge).
SqsError policy_too_large();
// PurgeQueueInProgress: a second purge of `queue` within 60 seconds.
SqsError purge_in_progress(std::string_view queue);

// --- Messages --------------------------------------------------------------

// InvalidParameterValue: a body or its attributes over the queue's
// MaximumMessageSize, `max_bytes`.
SqsError message_too_long(std::size_t max_bytes);
// InvalidParameterValue: a FIFO send with no MessageDeduplicationId to a
// queue without ContentBasedDeduplication.
SqsError missing_deduplication_id();
// InvalidParameterValue: message attribute `name` without a value or type.
SqsError attribute_without_value(std::string_view name);
SqsError attribute_without_type(std::string_view name);
// UnsupportedOperation (by SQS as well): StringListValues, BinaryListValues.
SqsError attribute_list_values();
// InvalidParameterValue: a message system attribute other than AWSTraceHeader.
SqsError unsupported_system_attribute(std::string_view name);
// InvalidParameterValue: attributes SQS would refuse, `why` in
// describe_invalid_attributes's words.
SqsError invalid_message_attributes(std::string_view why);

// --- Receipt handles -------------------------------------------------------

// ReceiptHandleIsInvalid: a handle that is no handle of the queue. A single
// action's text does not name the handle; a batch entry's does.
SqsError invalid_receipt_handle();
SqsError invalid_entry_receipt_handle(std::string_view handle);
// A FIFO queue's handle past its visibility timeout: InvalidParameterValue
// for a single action, ReceiptHandleIsInvalid for a batch entry.
SqsError receipt_handle_expired(std::string_view handle);
SqsError entry_receipt_handle_expired();
// InvalidParameterValue: ChangeMessageVisibility with a handle of a message
// that is gone or no longer in flight.
SqsError not_available_for_visibility(std::string_view handle);

// --- Batches ---------------------------------------------------------------

// EmptyBatchRequest; `entry_shape` e.g. "SendMessageBatchRequestEntry".
SqsError empty_batch(std::string_view entry_shape);
// TooManyEntriesInBatchRequest: `sent` entries (quoted) over `max`.
SqsError too_many_entries(std::size_t max, std::string_view sent);
// InvalidBatchEntryId, BatchEntryIdsNotDistinct (`id` quoted).
SqsError bad_entry_id();
SqsError entry_id_repeated(std::string_view id);
// BatchRequestTooLong: `sent` bytes over `max`.
SqsError batch_too_long(std::size_t max, std::size_t sent);

// --- Message move tasks ----------------------------------------------------

// InvalidParameterValue: a second task for a source queue, an unknown handle.
SqsError move_task_running();
SqsError unknown_task_handle();

// --- Requests --------------------------------------------------------------

// InvalidAction: an HTTP method other than POST and GET, an X-Amz-Target
// (quoted) not of SQS, an action (quoted) SQS does not have here.
SqsError bad_method();
SqsError unknown_target(std::string_view target);
SqsError invalid_action(std::string_view action);
// UnknownOperationException: a GET with no Action (AWS's 404, no text).
SqsError unknown_operation();
// MalformedQueryString, for the Query protocol's form; `key` quoted.
SqsError bad_percent_encoding();
SqsError too_many_query_parameters(std::size_t max);
SqsError query_key_not_utf8(std::string_view key);
SqsError query_key_too_deep(std::string_view key, std::size_t max_segments);
SqsError bad_query_key(std::string_view key);
SqsError list_index_zero(std::string_view key);
SqsError value_and_structure(std::string_view key);
// InvalidParameterValue: item `index` (quoted) of a list of at most `max`
// `items` ("message attributes"; a batch's entries: too_many_entries).
SqsError too_many_items(std::string_view items, std::string_view index, std::size_t max);
// InvalidParameterValue, for the JSON protocol's body.
SqsError json_too_deep(std::size_t max_depth);
SqsError not_a_json_object();

// --- Signatures (SigV4, with --auth) ---------------------------------------

// MissingAuthenticationToken: no AWS4-HMAC-SHA256 Authorization, one with
// parts missing, or no valid X-Amz-Date.
SqsError missing_signature();
SqsError incomplete_authorization();
SqsError missing_date();
// IncompleteSignature: Host, or `header` (as HTTP writes it, e.g.
// "X-Amz-Target"), not among the SignedHeaders.
SqsError host_not_signed();
SqsError header_not_signed(std::string_view header);
// InvalidClientTokenId: an access key id the bridge was not given.
SqsError unknown_access_key();
// SignatureDoesNotMatch: a credential scope other than
// <date of X-Amz-Date>/<region>/sqs/aws4_request (parts quoted), a body
// whose hash is not x-amz-content-sha256's, or another signature.
SqsError scope_date_mismatch(std::string_view scope_date, std::string_view amz_date);
SqsError scope_region_mismatch(std::string_view region);
SqsError scope_service_mismatch();
SqsError scope_terminator_mismatch(std::string_view terminator);
SqsError payload_hash_mismatch();
SqsError signature_mismatch();
// RequestExpired: X-Amz-Date more than 15 minutes from the server's time.
SqsError signature_expired(std::string_view amz_date);

// --- The bridge itself -----------------------------------------------------

// AccessDenied: a Host header not allowed on a loopback listener (`name`:
// the host without its port), an Origin not allowed.
SqsError host_not_allowed(std::string_view host, std::string_view name);
SqsError origin_not_allowed(std::string_view origin);
// ServiceUnavailable: no room in the memory budget for a request's body.
SqsError over_memory_budget();
// InternalError: a bug, `what` the exception's text; one that is no
// std::exception.
SqsError internal_error(std::string_view what);
SqsError unknown_exception();

}  // namespace errors

}  // namespace shmq::bridge
