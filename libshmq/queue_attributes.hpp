// Queue names and the SQS queue attributes a segment stores: validation on
// create and set, rendering for get.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "segment_layout.hpp"
#include "shmq/types.hpp"

namespace shmq::detail {

// The settable attributes, with SQS's defaults.
struct QueueSettings {
  std::uint32_t visibility_timeout_s = 30;       // VisibilityTimeout, 0..43200
  std::uint32_t maximum_message_size = 1048576;  // MaximumMessageSize, 1024..1048576
  std::uint32_t receive_wait_s = 0;              // ReceiveMessageWaitTimeSeconds, 0..20
  std::uint32_t retention_s = 345600;            // MessageRetentionPeriod, 60..1209600
  std::uint32_t delay_s = 0;                     // DelaySeconds, 0..900
  // FIFO queues only.
  bool fifo = false;                  // FifoQueue: fixed at creation
  bool content_dedup = false;         // ContentBasedDeduplication
  bool dedup_per_group = false;       // DeduplicationScope = messageGroup (else queue)
  bool throughput_per_group = false;  // FifoThroughputLimit = perMessageGroupId (else perQueue)

  bool operator==(const QueueSettings&) const = default;
};

inline constexpr std::uint32_t kMaxVisibilityTimeout = 43200;
inline constexpr std::uint32_t kMaxWaitSeconds = 20;
inline constexpr std::uint32_t kMaxDelaySeconds = 900;
inline constexpr std::uint32_t kMaxBatchEntries = 10;
inline constexpr std::uint32_t kMaxMessageBytes = 1048576;  // one message, and one batch's bodies together

// 1 to 80 characters: letters, digits, '-' and '_', and for FIFO queues
// the suffix ".fifo" (counted in the 80).
bool valid_queue_name(std::string_view name) noexcept;
bool is_fifo_name(std::string_view name) noexcept;

// Batch entry ids: 1 to 80 letters, digits, '-' and '_'.
bool valid_entry_id(std::string_view id) noexcept;

// Applies `attributes` to `settings`: at creation (`creating`, where
// FifoQueue may be given) or later. On failure returns
// invalid_attribute_name or invalid_attribute_value and names the culprit in
// `culprit`; `settings` may then be partly changed.
std::error_code apply_attributes(const Attributes& attributes, QueueSettings& settings, std::string& culprit,
                                 bool creating = false);

QueueSettings read_settings(const SegmentHeader& header) noexcept;
void write_settings(SegmentHeader& header, const QueueSettings& settings, std::uint64_t now_ms) noexcept;

// The attributes `names` asks for ("All" for all); an unknown name gives
// invalid_attribute_name and is put in `culprit`.
std::error_code render_attributes(const SegmentHeader& header, const std::vector<std::string>& names, Attributes& out,
                                  std::string& culprit);

}  // namespace shmq::detail
