#include "sqs_errors.hpp"

#include <array>
#include <string_view>

#include "shmq/error.hpp"

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
  // Amazon SQS's own text where a code has one and nothing more is said.
  std::string message = detail;
  if (message.empty() && ec == Errc::queue_does_not_exist) message = kNoSuchQueue;
  if (message.empty()) message = ec.message();
  return sqs_error(std::string(shape_for(ec)), message);
}

}  // namespace shmq::bridge
