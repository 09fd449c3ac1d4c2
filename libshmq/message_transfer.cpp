#include "message_transfer.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "message_blob.hpp"
#include "queue_attributes.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

std::error_code copy_message(QueueCore& from, const Delivery& d, QueueCore& to, std::uint32_t pid,
                             std::string_view dead_letter_source_arn, Now now) {
  const std::uint8_t* src = from.payload(d.block_offset);
  std::string body(reinterpret_cast<const char*>(src), d.body_bytes);
  Message m;
  const bool parsed = read_message_fields(src + d.body_bytes, d.attr_bytes, d.sender_uid, m);
  if (!from.still_valid(d)) return Errc::stale_receipt_handle;
  if (!parsed) return Errc::segment_corrupt;
  if (!dead_letter_source_arn.empty()) m.dead_letter_source_arn = dead_letter_source_arn;
  if (to.fifo() && m.group_id.empty()) return Errc::missing_parameter;  // a FIFO queue needs groups
  if (body.size() + attributes_size(m.attributes) > read_settings(to.header()).maximum_message_size) {
    return Errc::message_too_large;
  }
  const BlobFields fields{m.group_id,  m.deduplication_id,       m.trace_header,
                          m.sender_id, m.dead_letter_source_arn, &m.attributes};
  const std::uint32_t size = static_cast<std::uint32_t>(body.size() + blob_size(fields));
  const std::uint32_t body_bytes = static_cast<std::uint32_t>(body.size());
  CommitRequest req;
  std::memcpy(req.message_id.data(), d.message_id, 16);  // the message keeps its id
  req.group_id = m.group_id;
  req.sent_ms = d.sent_ms;  // and its SentTimestamp
  // Moved to a dead-letter queue, it goes on counting its receives there,
  // as on Amazon SQS (a move task back to a source starts again at zero).
  if (!dead_letter_source_arn.empty()) req.receive_count = d.handle.receive_count;
  // One critical section, copy included: the daemon moves messages, and no
  // wait of its own may be unbounded (a reserve and a commit would make the
  // commit wait for a holder that stopped in between; see QueueCore::set_lock_wait).
  struct Source {
    const std::string& body;
    const BlobFields& fields;
  } source{body, fields};
  const QueueCore::Fill fill{[](void* context, std::size_t, std::uint8_t* payload) noexcept {
                               const auto& from_message = *static_cast<const Source*>(context);
                               std::memcpy(payload, from_message.body.data(), from_message.body.size());
                               blob_write(from_message.fields, payload + from_message.body.size());
                             },
                             &source};
  Reservation slot;
  std::error_code error;
  CommitResult result;
  std::uint32_t seen_epoch = QueueCore::kAnyEpoch;
  const std::uint32_t receivable =
      to.send_in_one_lock(QueueCore::kAnyEpoch, std::span(&size, 1), pid, std::span(&slot, 1), std::span(&error, 1),
                          fill, std::span(&body_bytes, 1), std::span(&req, 1), std::span(&result, 1), now, seen_epoch);
  if (receivable > 0) to.wake_receivers(receivable);
  if (error) return error;
  return result.error;
}

}  // namespace shmq::detail
