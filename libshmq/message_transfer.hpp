// Moving one message between queues, for dead-letter redrive and message
// move tasks: the body, message attributes, system attributes, message id
// and SentTimestamp go along; the receive count goes along into a
// dead-letter queue, and starts again at zero on a move task's way back.
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

#include "queue_core.hpp"

namespace shmq::detail {

// Copies the message `d` names from `from` into `to` and commits it there;
// the caller then removes it from `from`. Fails with the target's error
// (queue_full, message_too_large), or stale_receipt_handle if the message
// left `from` meanwhile. With a non-empty `dead_letter_source_arn` the copy
// carries it as DeadLetterQueueSourceArn.
std::error_code copy_message(QueueCore& from, const Delivery& d, QueueCore& to, std::uint32_t pid,
                             std::string_view dead_letter_source_arn, Now now);

}  // namespace shmq::detail
