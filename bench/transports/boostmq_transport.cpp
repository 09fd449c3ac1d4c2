// boostmq: boost::interprocess::message_queue, a bounded priority queue in a
// POSIX shared-memory object guarded by one process-shared pthread mutex with
// two condition variables (not full, not empty). Every send and receive takes
// the mutex and copies the message in or out of the segment.
//
// spin: try_send/try_receive in a loop (each takes the mutex); block: send()/
// receive() sleep on the condition variable, i.e. on a futex. A batch is one
// receive plus try_receive for the rest. Any number of producers and
// consumers. Limits: the segment holds every slot up front, so the capacity is
// cut to keep capacity * message size within kMaxQueueBytes.
#include <unistd.h>

#include <boost/interprocess/ipc/message_queue.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "transport_support.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

namespace bip = boost::interprocess;

constexpr std::size_t kMaxQueueBytes = std::size_t{256} << 20;

std::string queue_name(const std::string& run_id, const std::string& channel) {
  std::string name = "shmq-bench-" + run_id + "-" + channel;
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

class BoostmqSender final : public Sender {
 public:
  BoostmqSender(const std::string& name, WaitMode wait) : queue_(bip::open_only, name.c_str()), wait_(wait) {}

  void send(std::span<const std::byte> message) override {
    if (wait_ == WaitMode::block) {
      queue_.send(message.data(), message.size(), 0);
      return;
    }
    while (!queue_.try_send(message.data(), message.size(), 0)) {
    }
  }

 private:
  bip::message_queue queue_;
  WaitMode wait_;
};

class BoostmqReceiver final : public Receiver {
 public:
  BoostmqReceiver(const std::string& name, const ChannelOptions& options)
      : queue_(bip::open_only, name.c_str()), options_(options), slot_bytes_(queue_.get_max_msg_size()) {}

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    out.clear();
    if (max == 0) max = 1;
    if (buffer_.size() < max * slot_bytes_) buffer_.resize(max * slot_bytes_);
    std::size_t received_bytes = 0;
    unsigned int priority = 0;
    auto try_take = [&] { return queue_.try_receive(slot(0), slot_bytes_, received_bytes, priority); };
    if (options_.wait == WaitMode::spin) {
      while (!try_take()) {
      }
    } else if (!poll_for(options_.block_spin, try_take)) {
      queue_.receive(slot(0), slot_bytes_, received_bytes, priority);
    }
    out.emplace_back(static_cast<const std::byte*>(slot(0)), received_bytes);
    while (out.size() < max && queue_.try_receive(slot(out.size()), slot_bytes_, received_bytes, priority)) {
      out.emplace_back(static_cast<const std::byte*>(slot(out.size())), received_bytes);
    }
    return out.size();
  }

 private:
  void* slot(std::size_t i) { return buffer_.data() + i * slot_bytes_; }

  bip::message_queue queue_;
  ChannelOptions options_;
  std::size_t slot_bytes_;
  std::vector<std::byte> buffer_;
};

class BoostmqTransport final : public Transport {
 public:
  explicit BoostmqTransport(const TransportSettings& settings) : run_id_(settings.run_id) {}

  ~BoostmqTransport() override {
    // Only the process that created the queues removes them, and only if the
    // harness did not (e.g. it failed before destroy_channels).
    if (creator_pid_ == ::getpid()) destroy_channels();
  }

  [[nodiscard]] std::string_view name() const override { return "boostmq"; }

  [[nodiscard]] std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t,
                                                       std::size_t) const override {
    if (options.message_bytes == 0) return "empty messages";
    if (options.message_bytes > kMaxQueueBytes) return "a message larger than the 256 MiB queue cap";
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    if (auto why = unsupported(options, 1, 1)) throw std::runtime_error("boostmq: " + *why);
    const std::string name = queue_name(run_id_, channel);
    const std::size_t max_messages =
        std::max<std::size_t>(1, std::min(options.capacity, kMaxQueueBytes / options.message_bytes));
    if (max_messages != options.capacity) {
      std::fprintf(stderr, "boostmq: channel %s buffers %zu messages, not %zu (%zu MiB cap on one queue)\n",
                   channel.c_str(), max_messages, options.capacity, kMaxQueueBytes >> 20);
    }
    bip::message_queue::remove(name.c_str());
    try {
      bip::message_queue queue(bip::create_only, name.c_str(), max_messages, options.message_bytes);
    } catch (const bip::interprocess_exception& e) {
      throw std::runtime_error("boostmq: cannot create message queue " + name + ": " + e.what());
    }
    channels_.set(channel, options);
    creator_pid_ = ::getpid();
  }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    return std::make_unique<BoostmqSender>(queue_name(run_id_, channel), channels_.at(channel).wait);
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<BoostmqReceiver>(queue_name(run_id_, channel), channels_.at(channel));
  }

  void destroy_channels() override {
    for (const auto& [channel, options] : channels_) bip::message_queue::remove(queue_name(run_id_, channel).c_str());
    channels_.clear();
  }

 private:
  std::string run_id_;
  ChannelTable<ChannelOptions> channels_{"boostmq"};  // inherited by forked processes
  pid_t creator_pid_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_boostmq_transport(const TransportSettings& settings) {
  return std::make_unique<BoostmqTransport>(settings);
}

}  // namespace shmq::bench
