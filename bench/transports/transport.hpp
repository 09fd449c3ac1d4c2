// What shmq-bench measures: a one-way channel between processes, the same
// shape over every transport, so one workload runs over all of them.
//
// Life of a run: the parent process makes a Transport and creates the
// channels (queues, files, the iceoryx daemon) before any fork; each process
// forked afterwards calls attach_process() once, then opens the ends it uses;
// the parent destroys the channels after every child has exited.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shmq::bench {

enum class WaitMode {
  spin,   // receive polls without sleeping (try_receive in a loop)
  block,  // receive sleeps in the kernel until a sender wakes it
};

// One channel's shape; the same for every transport in a run.
struct ChannelOptions {
  std::size_t message_bytes = 64;  // every message has exactly this size
  std::size_t capacity = 1024;     // messages the channel buffers before a sender must wait
  WaitMode wait = WaitMode::spin;
  // block mode only: how long a receive busy-polls before it sleeps (0: sleep at once).
  std::chrono::microseconds block_spin{0};
  // Above 0: the channel is a FIFO queue and senders spread their messages
  // round-robin over this many message groups (transports with
  // Features::message_groups only).
  std::size_t fifo_groups = 0;
  // Messages sent on the channel in the whole run, by every sender together
  // (0: not known). A FIFO queue's deduplication window must hold an id for
  // each: ids outlive the messages by 5 minutes.
  std::size_t sends = 0;
};

// The sending end of a channel, in one process.
class Sender {
 public:
  virtual ~Sender() = default;
  // Sends one message of ChannelOptions::message_bytes bytes. While the
  // channel is full it retries (spinning or sleeping per the wait mode).
  // Throws std::runtime_error on any other failure.
  virtual void send(std::span<const std::byte> message) = 0;
  // Sends these messages (at most 10) with one call, on transports with
  // Features::batch_send; the others send them one by one. Throws as send()
  // does, also if the channel refuses any of them.
  virtual void send_batch(std::span<const std::span<const std::byte>> messages) {
    for (const std::span<const std::byte> message : messages) send(message);
  }
  // Returns once every message sent so far is in the channel, for senders
  // that hold messages back (Features::buffered_send); throws if one of
  // them failed. Does nothing for the others.
  virtual void flush() {}
};

// The receiving end of a channel, in one process.
class Receiver {
 public:
  virtual ~Receiver() = default;
  // Waits (per the wait mode, without a deadline) for at least one message,
  // then takes up to `max` that are ready; for each, `out` holds a view of
  // its bytes, valid until the next call. Messages are acknowledged (deleted,
  // on transports that have acknowledgement) before this returns, so a
  // message is counted once it is gone from the channel. Returns how many,
  // at least 1. Throws std::runtime_error on failure.
  virtual std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) = 0;
};

class Transport {
 public:
  // What a transport can do beyond a plain channel; a run that needs more is
  // skipped for it, with the reason.
  struct Features {
    bool message_groups = false;  // ChannelOptions::fifo_groups
    bool backlog = false;         // holds a backlog of any size up to its capacity (stream --backlog)
    bool batch_send = false;      // Sender::send_batch is one call (stream --send-batch)
    bool buffered_send = false;   // its senders can group single sends themselves (stream --buffered-sender)
  };

  virtual ~Transport() = default;
  virtual std::string_view name() const = 0;
  virtual Features features() const { return {}; }

  // Why this transport cannot run these options (e.g. spsc has no block
  // mode, a message over POSIX mqueue's msgsize_max), or nullopt if it can.
  virtual std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t producers,
                                                 std::size_t consumers) const = 0;

  // Parent, before any fork: creates a channel by name. Throws with a
  // message that says what to do (e.g. "raise fs.mqueue.msgsize_max").
  virtual void create_channel(const std::string& channel, const ChannelOptions& options) = 0;

  // Each forked process, once, before it opens ends (iceoryx registers the
  // process with RouDi here; shmq connects to its daemon).
  virtual void attach_process(const std::string& process_name) { static_cast<void>(process_name); }

  virtual std::unique_ptr<Sender> open_sender(const std::string& channel) = 0;
  virtual std::unique_ptr<Receiver> open_receiver(const std::string& channel) = 0;

  // Parent, after every child has exited: removes what create_channel made.
  virtual void destroy_channels() = 0;
};

}  // namespace shmq::bench
