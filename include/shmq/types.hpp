// Value types of the public API.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <system_error>

#include "shmq/export.h"

namespace shmq {

// Queue attributes by their SQS names ("VisibilityTimeout", ...), values as
// SQS writes them (decimal strings).
using Attributes = std::map<std::string, std::string>;

// A queue's Policy is at most this many bytes, SQS's quota; a longer one is
// refused with over_limit (SQS's OverLimit) and SQS's message.
inline constexpr std::size_t kMaxPolicyBytes = 8192;
inline constexpr const char* kPolicyTooLarge = "Submitted policy is over max allowed size.";

// A message attribute as SQS has it: DataType "String", "Number" or
// "Binary", optionally with a custom suffix ("String.json", "Number.int").
// String and Number values are in string_value, Binary in binary_value.
struct MessageAttributeValue {
  std::string data_type;
  std::string string_value;
  std::string binary_value;

  bool operator==(const MessageAttributeValue&) const = default;
};

// At most 10 per message; names, types and values count toward the
// queue's MaximumMessageSize together with the body.
using MessageAttributes = std::map<std::string, MessageAttributeValue>;

// Why a send would refuse `attributes` (Errc::invalid_message_attribute),
// in Amazon SQS's words, naming the first attribute at fault; empty when
// they keep SQS's rules.
SHMQ_API std::string describe_invalid_attributes(const MessageAttributes& attributes);

// Per-message options of a send.
struct SendOptions {
  // Overrides the queue's DelaySeconds (0..900). Standard queues only.
  std::optional<std::uint32_t> delay_seconds;
  // FIFO queues: required; order and exclusive delivery hold per group.
  // Standard queues: accepted and returned (fair queues).
  std::string group_id;
  // FIFO queues: required unless the queue has ContentBasedDeduplication
  // (else invalid_parameter_value, as SQS answers).
  std::string deduplication_id;
  MessageAttributes attributes;
  std::string trace_header;  // the AWSTraceHeader system attribute
  std::string sender_id;     // SenderId; default: the sending process's uid
};

struct SendResult {
  std::string message_id;       // UUID, as SQS formats it
  std::string sequence_number;  // FIFO queues: 20 decimal digits, increasing per queue
  bool duplicate = false;       // FIFO: deduplicated; message_id is the original's
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
  std::string message_id;       // send batches only
  std::string sequence_number;  // FIFO send batches only
  bool duplicate = false;       // FIFO send batches only
};

struct ReceiveOptions {
  std::uint32_t max_messages = 1;                      // 1..10
  std::optional<std::uint32_t> visibility_timeout;     // seconds; default: the queue's
  std::optional<std::chrono::milliseconds> wait_time;  // default: ReceiveMessageWaitTimeSeconds
  // FIFO queues: a retry with the same id within 5 minutes returns the same
  // messages and receipt handles, while they are still in flight.
  std::string receive_request_attempt_id;
  // How long an empty receive busy-polls before it sleeps on the futex.
  std::chrono::microseconds spin{50};
  // How long each try waits for the queue's lock before it counts as busy
  // (default: Queue::set_lock_wait's). A receive that finds the queue busy
  // tries again until its wait time ends, then fails with queue_busy.
  std::optional<std::chrono::microseconds> lock_wait;
};

struct Message {
  std::string message_id;
  std::string receipt_handle;
  std::string body;
  std::uint32_t receive_count = 0;               // ApproximateReceiveCount
  std::uint64_t sent_timestamp_ms = 0;           // SentTimestamp (epoch ms)
  std::uint64_t first_receive_timestamp_ms = 0;  // ApproximateFirstReceiveTimestamp
  std::string group_id;                          // MessageGroupId, if sent with one
  std::string deduplication_id;                  // MessageDeduplicationId (FIFO)
  std::string sequence_number;                   // SequenceNumber (FIFO)
  std::string trace_header;                      // AWSTraceHeader, if sent with one
  std::string sender_id;                         // SenderId
  std::string dead_letter_source_arn;            // DeadLetterQueueSourceArn, if moved to a DLQ
  MessageAttributes attributes;
};

// A message as Queue::peek shows it: looked at, not received. Its
// receipt_handle is empty and its receive_count is what receives counted.
struct PeekedMessage {
  enum class State {
    visible,               // a receive would take it
    in_flight,             // received; visible again at visible_at_ms
    delayed,               // sent with a delay; visible at visible_at_ms
    to_dead_letter_queue,  // past maxReceiveCount: the daemon moves it to the dead-letter queue
  };
  Message message;
  State state = State::visible;
  std::uint64_t visible_at_ms = 0;  // in_flight, delayed: epoch ms
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
  std::uint64_t memory_bytes = 0;        // shared memory the queue holds now (grows and shrinks with its backlog)
  std::uint64_t memory_limit_bytes = 0;  // sends get queue_full past it; 0: no limit but /dev/shm
  std::uint64_t trims = 0;               // times the queue, emptied, gave memory back
  QueueCounts counts;
  std::uint64_t sent_total = 0;
  std::uint64_t received_total = 0;
  std::uint64_t deleted_total = 0;
  std::uint64_t expired_total = 0;             // dropped at the end of the retention period
  std::uint64_t dead_lettered_total = 0;       // moved to the dead-letter queue
  std::uint64_t recoveries = 0;                // times a process died holding the queue lock
  std::uint64_t sleeping_receivers = 0;        // receives asleep waiting for messages now
  std::uint64_t oldest_sent_timestamp_ms = 0;  // the oldest message not deleted (epoch ms); 0: none
};

// A daemon's answer to a health check (Client::health): it answers once its
// queues are attached and their reapers run, and not while it stops.
struct DaemonHealth {
  std::string status;  // "serving"
  std::string version;
  std::uint64_t pid = 0;
  std::uint64_t uptime_seconds = 0;
  std::uint64_t queues = 0;          // served
  std::uint64_t refused_queues = 0;  // segments refused at attach (see shmqctl delete-queue)
  std::uint64_t reaper_threads = 0;
};

// Sizing of a queue's segment, fixed at creation (not an SQS attribute).
// The slots and payload space are address space, backed only as messages
// need them and given back once the queue is empty; memory_bytes is what
// the queue may back at once.
struct QueueCapacity {
  std::uint32_t max_messages = 1u << 24;                  // message slots, 1 to 16,777,216
  std::uint64_t arena_bytes = 4ull * 1024 * 1024 * 1024;  // payload space; rounded up to 2 MiB blocks
  std::uint64_t memory_bytes = 0;                         // memory limit; 0: the daemon's --queue-memory-mib
};

}  // namespace shmq
