// Error codes of libshmq. The data path returns them as std::error_code and
// never throws for expected outcomes; admin calls throw std::system_error
// carrying the same codes.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "shmq/export.h"

namespace shmq {

enum class Errc {
  // Sending
  queue_full = 1,             // no free message slot or payload space (SQS OverLimit)
  message_too_large,          // body and attributes larger than the queue's MaximumMessageSize
  invalid_message_contents,   // a character SQS does not allow in a body
  invalid_message_attribute,  // bad name, type or value, or more than 10
  missing_parameter,          // e.g. MessageGroupId on a FIFO queue
  too_many_in_flight,         // the queue's in-flight limit is reached (SQS OverLimit)
  // Receipt handles
  invalid_receipt_handle,  // not a handle this queue issued
  stale_receipt_handle,    // the message was deleted or received again since
  message_not_in_flight,   // change visibility of a message nobody holds
  // Queues
  queue_does_not_exist,  // no such queue, or it was deleted (SQS QueueDoesNotExist)
  queue_name_exists,     // create with other attributes than the existing queue
  invalid_queue_name,
  invalid_attribute_name,
  invalid_attribute_value,
  invalid_parameter_value,  // e.g. MaxNumberOfMessages outside 1..10
  // Batches
  empty_batch_request,
  too_many_entries_in_batch,  // more than 10 entries
  batch_entry_ids_not_distinct,
  invalid_batch_entry_id,
  batch_request_too_long,  // entries together above MaximumMessageSize
  // Environment
  daemon_unavailable,   // shmqd is not running for this namespace (or went away); a remote endpoint did not answer
  permission_denied,    // the daemon refused this user, or the segment file's permissions did; an endpoint refused the
                        // credentials
  incompatible_layout,  // the segment was written by another major layout version
  segment_corrupt,      // the segment failed validation or could not be recovered
  // Administration
  resource_not_found,     // no such message move task, or its queue is gone (SQS ResourceNotFoundException)
  unsupported_operation,  // e.g. a second move task for one queue (SQS UnsupportedOperation)
  over_limit,             // a request above a limit, e.g. 8 actions in one permission (SQS OverLimit)
  internal,
  queue_busy,  // the queue's lock stayed held past the wait this process allows (Queue::set_lock_wait)
  // Receipt handles, again (numbered after the rest: names and numbers stay as they were)
  receipt_handle_expired,  // FIFO: a delete with a handle whose visibility timeout ran out (SQS refuses it)
  // Remote endpoints
  throttled,  // the endpoint still throttled the request after the last retry (SQS RequestThrottled)
};

SHMQ_API const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), error_category()}; }

// The stable, machine-readable name of a code ("queue_full"); empty for
// codes of other categories.
SHMQ_API std::string errc_name(const std::error_code& ec);

// The code errc_name() names; Errc::internal for an unknown name.
SHMQ_API std::error_code errc_from_name(std::string_view name) noexcept;

}  // namespace shmq

template <>
struct std::is_error_code_enum<shmq::Errc> : std::true_type {};
