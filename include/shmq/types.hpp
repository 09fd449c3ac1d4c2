// Value types of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <system_error>

namespace shmq {

// Queue attributes by their SQS names ("VisibilityTimeout", ...), values as
// SQS writes them (decimal strings).
using Attributes = std::map<std::string, std::string>;

// Per-message options of a send.
struct SendOptions {
  // Overrides the queue's DelaySeconds (0..900).
  std::optional<std::uint32_t> delay_seconds;
};

struct SendResult {
  std::string message_id;  // UUID, as SQS formats it
};

// One entry of a batch send; `id` is the caller's entry id (SQS Id).
struct SendEntry {
  std::string id;
  std::string body;
  SendOptions options;
};

// Outcome of one entry of a batch call: `error` is empty on success.
struct BatchEntryResult {
  std::string id;
  std::error_code error;
  std::string message_id;  // send batches only
};

struct ReceiveOptions {
  std::uint32_t max_messages = 1;                      // 1..10
  std::optional<std::uint32_t> visibility_timeout;     // seconds; default: the queue's
  std::optional<std::chrono::milliseconds> wait_time;  // default: ReceiveMessageWaitTimeSeconds
  // How long an empty receive busy-polls before it sleeps on the futex.
  std::chrono::microseconds spin{50};
};

struct Message {
  std::string message_id;
  std::string receipt_handle;
  std::string body;
  std::uint32_t receive_count = 0;               // ApproximateReceiveCount
  std::uint64_t sent_timestamp_ms = 0;           // SentTimestamp (epoch ms)
  std::uint64_t first_receive_timestamp_ms = 0;  // ApproximateFirstReceiveTimestamp
};

// One entry of a batch delete or change-visibility call.
struct HandleEntry {
  std::string id;
  std::string receipt_handle;
  std::uint32_t visibility_timeout = 0;  // change-visibility batches only
};

// Approximate counts, read without taking the queue lock.
struct QueueCounts {
  std::uint64_t visible = 0;    // ApproximateNumberOfMessages
  std::uint64_t in_flight = 0;  // ApproximateNumberOfMessagesNotVisible
  std::uint64_t delayed = 0;    // ApproximateNumberOfMessagesDelayed
  std::uint64_t writing = 0;    // slots reserved by senders that have not committed
};

// What the daemon knows of a queue's segment, for operators.
struct QueueStats {
  std::uint64_t segment_bytes = 0;    // shared memory mapped (touched only as used)
  std::uint64_t max_messages = 0;     // message slots
  std::uint64_t slots_ever_used = 0;  // slots touched since creation
  std::uint64_t arena_bytes = 0;      // payload space
  std::uint64_t arena_free_bytes = 0;
  QueueCounts counts;
  std::uint64_t sent_total = 0;
  std::uint64_t received_total = 0;
  std::uint64_t deleted_total = 0;
  std::uint64_t recoveries = 0;  // times a process died holding the queue lock
};

// Sizing of a queue's segment, fixed at creation (not an SQS attribute).
struct QueueCapacity {
  std::uint32_t max_messages = 131072;               // message slots
  std::uint64_t arena_bytes = 256ull * 1024 * 1024;  // payload space, multiple of 1 MiB
};

}  // namespace shmq
