// A queue mapped into this process. Send, receive, delete and change
// visibility work directly in shared memory; the daemon is not on this path.
// A Queue may be used from several threads at once. Copies share the mapping.
// A Queue of a remote Client (Client(const Endpoint&)) makes the same calls
// as SQS actions over HTTP, each blocking for its answer; where it behaves
// otherwise, its comment says "Remote:" (docs/remote-endpoints.md).
// Do not use a Queue (or its Client) in a child after fork(): open a new one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "shmq/export.h"
#include "shmq/types.hpp"

namespace shmq {

namespace detail {
struct QueueState;
class RemoteQueue;
}  // namespace detail

// Cuts short, from another thread of this process, a Queue::wait_for_any
// that was given it (e.g. when an event loop has a new receiver to serve).
class SHMQ_API WaitInterrupt {
 public:
  // Read before deciding to wait, and pass it to wait_for_any: the wait
  // returns at once if notify() was called since. Does not block.
  std::uint32_t value() const noexcept { return word_.load(std::memory_order_seq_cst); }
  // Wakes the waits given this interrupt. Does not block.
  void notify() noexcept;

 private:
  friend class Queue;
  std::atomic<std::uint32_t> word_{0};
};

class SHMQ_API Queue {
 public:
  // Sends one message. Does not block. Fails with missing_parameter (an
  // empty body: SQS's bodies have at least one character), message_too_large,
  // invalid_parameter_value (delay over 900 s), queue_full or
  // queue_does_not_exist; nothing is enqueued on failure.
  [[nodiscard]] std::error_code send(std::string_view body, SendResult& result, const SendOptions& options = {});

  // Sends up to 10 messages with one lock round trip for all. Returns a
  // batch-level error (empty_batch_request, too_many_entries_in_batch,
  // batch_entry_ids_not_distinct, invalid_batch_entry_id,
  // batch_request_too_long: bodies together over 1 MiB, queue_does_not_exist) and sends nothing, or
  // success with one result per entry, in order.
  [[nodiscard]] std::error_code send_batch(std::span<const SendEntry> entries, std::vector<BatchEntryResult>& results);

  // Receives up to options.max_messages messages into `messages` (cleared
  // first), making them invisible for the visibility timeout. Blocks up to
  // the wait time: spins briefly, then sleeps until a send wakes it. An empty
  // result after the wait is success. Fails with invalid_parameter_value or
  // queue_does_not_exist.
  [[nodiscard]] std::error_code receive(std::vector<Message>& messages, const ReceiveOptions& options = {});

  // receive() into caller-owned Messages: up to options.max_messages and at
  // most messages.size() of them, into messages[0, received). Every field
  // of a filled Message is overwritten in its existing storage, so a loop
  // that keeps its Messages allocates nothing once they have held messages
  // as large. Those past `received` keep their storage, with contents
  // unspecified. Blocks and fails as receive() does (invalid_parameter_value
  // also for an empty span).
  [[nodiscard]] std::error_code receive_into(std::span<Message> messages, std::size_t& received,
                                             const ReceiveOptions& options = {});

  // Up to `max_messages` (1..100) of the queue's messages in send order,
  // whatever their state, into `messages`, without receiving them: no
  // receive is counted, no visibility changes, no receipt handle is given.
  // For looking at a queue (shmqctl peek); a message that is received and
  // deleted while it is copied is left out. Fails with
  // invalid_parameter_value, queue_busy or queue_does_not_exist.
  // Remote: unsupported_operation (SQS cannot look without receiving).
  [[nodiscard]] std::error_code peek(std::vector<PeekedMessage>& messages, std::size_t max_messages = 10) const;

  // Deletes the message this receipt handle names. Does not block. Fails
  // with invalid_receipt_handle (not from this queue), stale_receipt_handle
  // (deleted, or received again since) or queue_does_not_exist. Remote: SQS
  // takes a stale handle's delete as done, so stale_receipt_handle never
  // comes back.
  [[nodiscard]] std::error_code delete_message(std::string_view receipt_handle);

  // Makes an in-flight message visible again after `seconds` (0..43200).
  // Fails as delete_message does, or with message_not_in_flight.
  [[nodiscard]] std::error_code change_visibility(std::string_view receipt_handle, std::uint32_t seconds);

  // Batch forms: batch-level errors as in send_batch, else one result per entry.
  [[nodiscard]] std::error_code delete_batch(std::span<const HandleEntry> entries,
                                             std::vector<BatchEntryResult>& results);
  [[nodiscard]] std::error_code change_visibility_batch(std::span<const HandleEntry> entries,
                                                        std::vector<BatchEntryResult>& results);

  // Blocks until a receive might find a message (or the queue is deleted),
  // or `timeout` passes; no spinning. For event loops that serve many
  // receivers with one thread; a receive after it may still find nothing.
  // Remote: returns at once (only a receive can tell; long-poll instead).
  void wait_for_messages(std::chrono::milliseconds timeout) const noexcept;

  // The most queues one wait_for_any takes (the kernel's futex_waitv limit,
  // less one word for the interrupt).
  static constexpr std::size_t kMaxWaitQueues = 127;

  // wait_for_messages for several queues at once (at most kMaxWaitQueues;
  // more are ignored): blocks until a receive on one of them might find a
  // message (or one is deleted), `timeout` passes, or `interrupt` is
  // notified after `interrupt_seen` was read from it. Sets `ready` to the
  // indices of the queues a receive might find messages on now (or that
  // were deleted); perhaps none. No spinning.
  static void wait_for_any(std::span<const Queue> queues, std::chrono::milliseconds timeout,
                           const WaitInterrupt& interrupt, std::uint32_t interrupt_seen,
                           std::vector<std::size_t>& ready);

  // What wait_for_any checks before it sleeps: true if a receive might find
  // a message now (or the queue was deleted). It may still find none: a
  // FIFO queue at its in-flight limit, say. Lock-free; does not block.
  // Remote: always true, and wait_for_any counts remote queues as ready.
  bool might_have_messages() const noexcept;

  // The queue's ReceiveMessageWaitTimeSeconds: how long receive() waits when
  // ReceiveOptions::wait_time is not given. Read from shared memory; does
  // not block. Remote: as open_queue read it (the next three too).
  std::chrono::seconds receive_wait_time() const noexcept;

  // A FIFO queue's ContentBasedDeduplication: whether a send without a
  // deduplication id is deduplicated by its body (else refused). Read from
  // shared memory; does not block.
  bool content_based_deduplication() const noexcept;

  // The queue's MaximumMessageSize in bytes (body and attributes together).
  // Read from shared memory; does not block.
  std::uint32_t maximum_message_size() const noexcept;

  // Approximate counts, read without locking. Remote: a
  // GetQueueAttributes call (blocks); all zero if it fails.
  QueueCounts counts() const noexcept;

  // How long send, receive, delete and change visibility wait for the
  // queue's lock before they fail with queue_busy. By default, as long as
  // it takes: a holder is either running (the lock is held for
  // microseconds) or dead (its lock is recovered at once). A process that
  // serves many queues from a few threads sets a bound, so that a holder
  // that is stopped (SIGSTOP, a debugger) or starved holds up only the
  // callers of its own queue. Applies to every copy of this Queue.
  // Remote: no effect.
  void set_lock_wait(std::chrono::microseconds wait) noexcept;

  const std::string& name() const noexcept;
  // Whether this queue is reached over HTTP (a remote Client's).
  bool remote() const noexcept { return remote_ != nullptr; }

 private:
  friend class Client;
  explicit Queue(std::shared_ptr<detail::QueueState> state) noexcept : state_(std::move(state)) {}
  explicit Queue(std::shared_ptr<detail::RemoteQueue> remote) noexcept : remote_(std::move(remote)) {}
  std::shared_ptr<detail::QueueState> state_;    // local: the mapping
  std::shared_ptr<detail::RemoteQueue> remote_;  // remote: the endpoint and the queue's URL
};

}  // namespace shmq
