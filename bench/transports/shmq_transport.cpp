// shmq as a transport: a channel is a standard queue (a FIFO queue with
// --fifo-groups), received and deleted the way an SQS consumer does it.
// Unless a namespace is given, the transport runs its own shmqd in a fresh
// namespace for the run.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "cpu_relax.hpp"
#include "shmq/client.hpp"
#include "shmq/error.hpp"
#include "shmq/queue.hpp"
#include "shmqd_process.hpp"
#include "transport_support.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxMessageBytes = 1048576;  // MaximumMessageSize can be at most 1 MiB
constexpr std::uint32_t kMaxSlots = 1u << 24;      // the daemon's limit on a queue's message slots
// A payload block holds the body and its attribute blob (here only SenderId,
// a few bytes) and comes in powers of two; allow this much for the blob.
constexpr std::size_t kBlobAllowance = 64;
constexpr std::uint64_t kMinArenaBytes = 4ull << 20;
constexpr std::uint64_t kDedupIdsPerSlot = 8;  // a FIFO queue's deduplication window: 8 ids a slot
constexpr auto kLongPoll = 20s;                // SQS's longest wait; an empty receive is repeated
constexpr auto kFullBackoff = 20us;            // block mode: a sender's pause while the queue is full

// Attributes of every channel: the largest messages, and a visibility timeout
// so long that nothing received during a run is delivered again. A FIFO
// channel's senders give each message its own deduplication id.
Attributes channel_attributes(const ChannelOptions& options) {
  Attributes attributes{{"MaximumMessageSize", std::to_string(kMaxMessageBytes)}, {"VisibilityTimeout", "43200"}};
  if (options.fifo_groups > 0) attributes["FifoQueue"] = "true";
  return attributes;
}

// Slots for `capacity` messages, and payload space for as many blocks. A
// FIFO queue's deduplication window holds 8 ids a slot for 5 minutes, so it
// gets slots enough for an id per message sent in the run; senders still
// wait while `capacity` messages are in it.
QueueCapacity capacity_for(const ChannelOptions& options) {
  const std::uint64_t block = std::bit_ceil(options.message_bytes + kBlobAllowance);
  std::uint64_t slots = options.capacity;
  if (options.fifo_groups > 0) slots = std::max<std::uint64_t>(slots, options.sends / kDedupIdsPerSlot + 1);
  return QueueCapacity{static_cast<std::uint32_t>(std::min<std::uint64_t>(slots, kMaxSlots)),
                       std::max<std::uint64_t>(kMinArenaBytes, options.capacity * block)};
}

// What a FIFO channel's sender adds to each message: its group, round-robin,
// and a deduplication id no other message of the run has.
class FifoStamp {
 public:
  explicit FifoStamp(std::size_t groups) {
    for (std::size_t g = 0; g < groups; ++g) groups_.push_back("g" + std::to_string(g));
    prefix_ = "p" + std::to_string(::getpid()) + "-";
  }

  // Sets the group and deduplication id of the next message. Does not
  // allocate once the strings have grown to their longest.
  void next(SendOptions& options) {
    options.group_id.assign(groups_[sent_ % groups_.size()]);
    char digits[20];
    const auto end = std::to_chars(digits, digits + sizeof(digits), sent_).ptr;
    options.deduplication_id.assign(prefix_).append(digits, end);
    ++sent_;
  }

 private:
  std::vector<std::string> groups_;
  std::string prefix_;  // the process id: senders in different processes never share an id
  std::uint64_t sent_ = 0;
};

class ShmqSender final : public Sender {
 public:
  ShmqSender(Queue queue, const ChannelOptions& options)
      : queue_(std::move(queue)), wait_(options.wait), capacity_(options.capacity) {
    if (options.fifo_groups > 0) fifo_.emplace(options.fifo_groups);
  }

  void send(std::span<const std::byte> message) override {
    const std::string_view body(reinterpret_cast<const char*>(message.data()), message.size());
    if (fifo_) fifo_->next(send_options_);
    for (;;) {
      const std::error_code ec = queue_.send(body, result_, send_options_);
      if (!ec) return;
      if (ec != Errc::queue_full) throw std::runtime_error("send: " + ec.message());
      wait_for_room();
    }
  }

 private:
  // A send to a full queue takes the queue's lock only to fail, so retrying
  // at once would fight the receiver for it. Spin mode watches the
  // lock-free counts until a slot is free; block mode sleeps a little.
  void wait_for_room() const {
    if (wait_ == WaitMode::block) {
      std::this_thread::sleep_for(kFullBackoff);
      return;
    }
    for (;;) {
      const QueueCounts c = queue_.counts();
      if (c.visible + c.in_flight + c.delayed + c.writing < capacity_) return;
      detail::cpu_relax();
    }
  }

  Queue queue_;
  WaitMode wait_;
  std::size_t capacity_;
  SendResult result_;  // reused: its strings keep their buffers
  SendOptions send_options_;
  std::optional<FifoStamp> fifo_;  // FIFO channels only
};

class ShmqReceiver final : public Receiver {
 public:
  ShmqReceiver(Queue queue, const ChannelOptions& options) : queue_(std::move(queue)) {
    if (options.wait == WaitMode::spin) {
      // The library's own busy wait: a receive that polls for its whole wait
      // and never sleeps (cheaper per poll than calling receive() again).
      receive_options_.wait_time = kLongPoll;
      receive_options_.spin = kLongPoll;
    } else {
      receive_options_.wait_time = kLongPoll;
      receive_options_.spin = options.block_spin;
    }
    for (std::size_t i = 0; i < handles_.size(); ++i) handles_[i].id = std::to_string(i);
  }

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    receive_options_.max_messages = static_cast<std::uint32_t>(std::clamp<std::size_t>(max, 1, handles_.size()));
    do {
      if (const std::error_code ec = queue_.receive_into(messages_, received_, receive_options_)) {
        throw std::runtime_error("receive: " + ec.message());
      }
    } while (received_ == 0);
    acknowledge();
    out.clear();
    for (const Message& m : std::span(messages_).first(received_)) {
      out.push_back(std::as_bytes(std::span(m.body.data(), m.body.size())));
    }
    return received_;
  }

 private:
  // Deletes what was received, as an SQS consumer does: one by one, or as a batch.
  void acknowledge() {
    if (received_ == 1) {
      if (const std::error_code ec = queue_.delete_message(messages_[0].receipt_handle)) {
        throw std::runtime_error("delete: " + ec.message());
      }
      return;
    }
    // Copied, not moved: both strings keep their buffers for the next call.
    for (std::size_t i = 0; i < received_; ++i) handles_[i].receipt_handle = messages_[i].receipt_handle;
    if (const std::error_code ec = queue_.delete_batch(std::span(handles_.data(), received_), results_)) {
      throw std::runtime_error("delete batch: " + ec.message());
    }
    for (const BatchEntryResult& r : results_) {
      if (r.error) throw std::runtime_error("delete batch: " + r.error.message());
    }
  }

  Queue queue_;
  ReceiveOptions receive_options_;
  // Reused across calls (receive_into fills them in place, so that a
  // receive allocates nothing); `out` views the bodies of the first received_.
  std::array<Message, 10> messages_;
  std::size_t received_ = 0;
  std::array<HandleEntry, 10> handles_;
  std::vector<BatchEntryResult> results_;
};

class ShmqTransport final : public Transport {
 public:
  explicit ShmqTransport(const TransportSettings& settings) : run_id_(settings.run_id) {
    if (!settings.shmq_namespace.empty()) {
      ns_ = settings.shmq_namespace;
      Client probe(Client::Options{ns_});  // throws daemon_unavailable now rather than in every worker
      return;
    }
    ns_ = settings.run_id;
    daemon_.start(settings.shmqd_path.empty() ? default_shmqd_path() : settings.shmqd_path, ns_,
                  {"--bridge-listen", "off"}, [this] {
                    try {
                      Client probe(Client::Options{ns_});
                      return true;
                    } catch (const std::system_error&) {
                      return false;
                    }
                  });
  }

  ~ShmqTransport() override = default;
  ShmqTransport(const ShmqTransport&) = delete;
  ShmqTransport& operator=(const ShmqTransport&) = delete;

  std::string_view name() const override { return "shmq"; }
  Features features() const override { return {.message_groups = true, .backlog = true}; }

  std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t, std::size_t) const override {
    if (options.message_bytes > kMaxMessageBytes) return "messages of at most 1 MiB (MaximumMessageSize)";
    if (options.capacity > kMaxSlots) return "at most 16777216 messages in a queue";
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    // A Client only for this call: the parent holds none across fork().
    Client client(Client::Options{ns_});
    client.create_queue(queue_name(channel, options), channel_attributes(options), capacity_for(options));
    channels_.set(channel, options);
  }

  void attach_process(const std::string&) override { client_ = std::make_unique<Client>(Client::Options{ns_}); }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    return std::make_unique<ShmqSender>(open(channel), channels_.at(channel));
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<ShmqReceiver>(open(channel), channels_.at(channel));
  }

  void destroy_channels() override {
    if (!channels_.empty()) {
      Client client(Client::Options{ns_});
      for (const auto& [channel, options] : channels_) client.delete_queue(queue_name(channel, options));
      channels_.clear();
    }
    daemon_.stop();
  }

 private:
  std::string queue_name(const std::string& channel, const ChannelOptions& options) const {
    return run_id_ + "-" + channel + (options.fifo_groups > 0 ? ".fifo" : "");
  }

  Queue open(const std::string& channel) {
    if (!client_) throw std::logic_error("shmq: attach_process first");
    return client_->open_queue(queue_name(channel, channels_.at(channel)));
  }

  std::string run_id_;
  std::string ns_;
  ShmqdProcess daemon_;  // our own shmqd, if we started one
  ChannelTable<ChannelOptions> channels_{"shmq"};
  std::unique_ptr<Client> client_;  // in a worker, after attach_process
};

}  // namespace

std::unique_ptr<Transport> make_shmq_transport(const TransportSettings& settings) {
  return std::make_unique<ShmqTransport>(settings);
}

}  // namespace shmq::bench
