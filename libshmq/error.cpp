#include "shmq/error.hpp"

#include <array>
#include <string_view>

namespace shmq {

namespace {

struct Entry {
  Errc code;
  std::string_view name;
  std::string_view message;
};

constexpr std::array kEntries{
    Entry{Errc::queue_full, "queue_full", "the queue has no free message slot or payload space"},
    Entry{Errc::message_too_large, "message_too_large",
          "the message body and attributes are larger than the queue's MaximumMessageSize"},
    Entry{Errc::invalid_message_contents, "invalid_message_contents",
          "the message contains characters outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF"},
    Entry{Errc::invalid_message_attribute, "invalid_message_attribute",
          "message attributes: at most 10, names of 1-256 letters, digits, '_', '-', '.' (not starting with "
          "'AWS.' or 'Amazon.'), types String, Number or Binary with an optional '.suffix', and a value of the "
          "characters a body may hold"},
    Entry{Errc::missing_parameter, "missing_parameter", "a required parameter is missing"},
    Entry{Errc::too_many_in_flight, "too_many_in_flight", "the queue has as many messages in flight as it allows"},
    Entry{Errc::invalid_receipt_handle, "invalid_receipt_handle", "the receipt handle is not valid for this queue"},
    Entry{Errc::stale_receipt_handle, "stale_receipt_handle",
          "the receipt handle has expired: the message was deleted or received again"},
    Entry{Errc::message_not_in_flight, "message_not_in_flight", "the message is not in flight"},
    Entry{Errc::queue_does_not_exist, "queue_does_not_exist", "the queue does not exist"},
    Entry{Errc::queue_name_exists, "queue_name_exists", "a queue with this name exists with other attributes"},
    Entry{Errc::invalid_queue_name, "invalid_queue_name",
          "queue names are 1 to 80 characters: letters, digits, '-' and '_'"},
    Entry{Errc::invalid_attribute_name, "invalid_attribute_name", "unknown or read-only queue attribute"},
    Entry{Errc::invalid_attribute_value, "invalid_attribute_value", "queue attribute value out of range"},
    Entry{Errc::invalid_parameter_value, "invalid_parameter_value", "a parameter is out of range"},
    Entry{Errc::empty_batch_request, "empty_batch_request", "the batch has no entries"},
    Entry{Errc::too_many_entries_in_batch, "too_many_entries_in_batch", "a batch holds at most 10 entries"},
    Entry{Errc::batch_entry_ids_not_distinct, "batch_entry_ids_not_distinct", "two batch entries share an id"},
    Entry{Errc::invalid_batch_entry_id, "invalid_batch_entry_id",
          "batch entry ids are 1 to 80 characters: letters, digits, '-' and '_'"},
    Entry{Errc::batch_request_too_long, "batch_request_too_long",
          "the batch's messages together exceed the queue's MaximumMessageSize"},
    Entry{Errc::daemon_unavailable, "daemon_unavailable",
          "shmqd is not running for this namespace, or a remote endpoint did not answer"},
    Entry{Errc::permission_denied, "permission_denied", "permission denied"},
    Entry{Errc::incompatible_layout, "incompatible_layout", "the queue segment has another layout version"},
    Entry{Errc::segment_corrupt, "segment_corrupt",
          "the queue segment failed validation or a check while in use; the queue is no longer served (delete-queue "
          "removes it)"},
    Entry{Errc::resource_not_found, "resource_not_found", "the message move task or its queue does not exist"},
    Entry{Errc::unsupported_operation, "unsupported_operation", "the operation is not supported in this state"},
    Entry{Errc::over_limit, "over_limit", "the request exceeds a limit"},
    Entry{Errc::internal, "internal", "internal error"},
    Entry{Errc::queue_busy, "queue_busy",
          "the queue's lock stayed held longer than this process waits (its holder was stopped or descheduled)"},
    Entry{Errc::receipt_handle_expired, "receipt_handle_expired",
          "the receipt handle has expired: its visibility timeout ran out, and a FIFO queue's message is deleted "
          "only with the handle of its current receive"},
    Entry{Errc::throttled, "throttled", "the endpoint throttled the request, and went on doing so through every retry"},
};

const Entry* find(int value) {
  for (const Entry& e : kEntries) {
    if (static_cast<int>(e.code) == value) return &e;
  }
  return nullptr;
}

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "shmq"; }
  std::string message(int value) const override {
    const Entry* e = find(value);
    return e ? std::string(e->message) : "unknown shmq error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

std::string errc_name(const std::error_code& ec) {
  if (ec.category() != error_category()) return {};
  const Entry* e = find(ec.value());
  return e ? std::string(e->name) : std::string{};
}

std::error_code errc_from_name(std::string_view name) noexcept {
  for (const Entry& e : kEntries) {
    if (e.name == name) return e.code;
  }
  return Errc::internal;
}

}  // namespace shmq
