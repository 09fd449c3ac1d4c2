// shmq's remote backend as a transport: the same Queue calls as the shmq
// transport, made by shmq::Client(Endpoint) as SQS actions over HTTP (AWS
// JSON 1.0, signed with SigV4). A channel is a standard queue of the
// endpoint. Unless --endpoint names one, the transport starts its own
// shmqd, in a fresh namespace, with its SQS bridge on 127.0.0.1 (a free
// port) checking signatures with credentials made up for the run.
//
// Every send, receive and delete is one HTTP request, answered before the
// call returns. A receive asks for up to 10 messages; in spin mode it is a
// short poll (WaitTimeSeconds 0) repeated until one comes, in block mode a
// long poll of a second, repeated likewise. A channel has no capacity here:
// senders never wait for room.
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>  // mkdtemp
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "shmq/buffered_sender.hpp"
#include "shmq/client.hpp"
#include "shmq/error.hpp"
#include "shmq/queue.hpp"
#include "shmqd_process.hpp"
#include "transport_support.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxBatch = 10;                  // SQS's largest send, receive and delete batches
constexpr std::size_t kMaxMessageBytes = 262144;       // SQS's default MaximumMessageSize
constexpr auto kLongPoll = 1s;                         // block mode's WaitTimeSeconds
constexpr const char* kLocalRegion = "us-east-1";      // what the local daemon's endpoint signs for
constexpr const char* kLocalAccessKey = "shmq-bench";  // the local daemon's --auth key id

// Attributes of every channel: a visibility timeout so long that nothing
// received during a run is delivered again.
Attributes channel_attributes() { return Attributes{{"VisibilityTimeout", "43200"}}; }

// 32 random hex digits: the local daemon's secret key for this run.
std::string random_secret() {
  std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string secret;
  for (int i = 0; i < 32; ++i) secret += kHex[device() & 0xf];
  return secret;
}

// A directory of its own under the temporary directory, for the port file.
std::filesystem::path make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "shmq-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  return pattern;
}

// The port a server wrote to `path`, once the whole line is there.
std::optional<int> read_port_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string text;
  if (!std::getline(in, text) || in.eof()) return std::nullopt;  // no line, or not finished with '\n'
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void throw_on_entry_errors(const char* action, const std::vector<BatchEntryResult>& results) {
  for (const BatchEntryResult& r : results) {
    if (r.error) throw std::runtime_error(std::string(action) + ": entry " + r.id + ": " + r.error.message());
  }
}

class RemoteSender final : public Sender {
 public:
  explicit RemoteSender(Queue queue) : queue_(std::move(queue)) {
    for (std::size_t i = 0; i < entries_.size(); ++i) entries_[i].id = std::to_string(i);
  }

  void send(std::span<const std::byte> message) override {
    const std::string_view body(reinterpret_cast<const char*>(message.data()), message.size());
    if (const std::error_code ec = queue_.send(body, result_)) throw std::runtime_error("SendMessage: " + ec.message());
  }

  void send_batch(std::span<const std::span<const std::byte>> messages) override {
    if (messages.size() > entries_.size()) throw std::invalid_argument("SendMessageBatch: at most 10 messages");
    for (std::size_t i = 0; i < messages.size(); ++i) {
      entries_[i].body.assign(reinterpret_cast<const char*>(messages[i].data()), messages[i].size());
    }
    if (const std::error_code ec = queue_.send_batch(std::span(entries_.data(), messages.size()), results_)) {
      throw std::runtime_error("SendMessageBatch: " + ec.message());
    }
    throw_on_entry_errors("SendMessageBatch", results_);
  }

 private:
  Queue queue_;
  SendResult result_;
  std::array<SendEntry, kMaxBatch> entries_;  // reused: their strings keep their buffers
  std::vector<BatchEntryResult> results_;
};

// Each message handed to a shmq::BufferedSender, which sends them in
// batches of up to 10 (after its window, 20 ms, or once 10 are waiting),
// several batches on their way at once. send() returns before the message
// is in the channel; the answers are collected as they come and by flush().
class BufferedRemoteSender final : public Sender {
 public:
  explicit BufferedRemoteSender(Queue queue) : sender_(std::move(queue)) {}

  void send(std::span<const std::byte> message) override {
    outcomes_.push_back(sender_.send(std::string(reinterpret_cast<const char*>(message.data()), message.size())));
    while (!outcomes_.empty() && outcomes_.front().wait_for(0s) == std::future_status::ready) take_front();
  }

  void flush() override {
    sender_.flush();
    while (!outcomes_.empty()) take_front();
  }

 private:
  void take_front() {
    const SendOutcome outcome = outcomes_.front().get();
    outcomes_.pop_front();
    if (outcome.error) throw std::runtime_error("BufferedSender: " + outcome.error.message());
  }

  BufferedSender sender_;
  std::deque<std::future<SendOutcome>> outcomes_;  // in send order; each answered in its batch
};

class RemoteReceiver final : public Receiver {
 public:
  RemoteReceiver(Queue queue, const ChannelOptions& options) : queue_(std::move(queue)) {
    receive_options_.wait_time = options.wait == WaitMode::spin ? 0ms : std::chrono::milliseconds(kLongPoll);
    for (std::size_t i = 0; i < handles_.size(); ++i) handles_[i].id = std::to_string(i);
  }

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    receive_options_.max_messages = static_cast<std::uint32_t>(std::clamp<std::size_t>(max, 1, messages_.size()));
    do {
      if (const std::error_code ec = queue_.receive_into(messages_, received_, receive_options_)) {
        throw std::runtime_error("ReceiveMessage: " + ec.message());
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
  // Deletes what was received, as an SQS consumer does: DeleteMessage for
  // one, DeleteMessageBatch for more.
  void acknowledge() {
    if (received_ == 1) {
      if (const std::error_code ec = queue_.delete_message(messages_[0].receipt_handle)) {
        throw std::runtime_error("DeleteMessage: " + ec.message());
      }
      return;
    }
    for (std::size_t i = 0; i < received_; ++i) handles_[i].receipt_handle = messages_[i].receipt_handle;
    if (const std::error_code ec = queue_.delete_batch(std::span(handles_.data(), received_), results_)) {
      throw std::runtime_error("DeleteMessageBatch: " + ec.message());
    }
    throw_on_entry_errors("DeleteMessageBatch", results_);
  }

  Queue queue_;
  ReceiveOptions receive_options_;
  std::array<Message, kMaxBatch> messages_;  // reused across calls, as in the shmq transport
  std::size_t received_ = 0;
  std::array<HandleEntry, kMaxBatch> handles_;
  std::vector<BatchEntryResult> results_;
};

class RemoteTransport final : public Transport {
 public:
  explicit RemoteTransport(const TransportSettings& settings)
      : run_id_(settings.run_id), buffered_(settings.buffered_sender) {
    try {
      if (!settings.endpoint.empty()) {
        // Credentials, and the region unless given, from the library's chain.
        endpoint_.url = settings.endpoint;
        endpoint_.region = settings.region;
      } else {
        start_daemon(settings);
      }
      // Fails now, saying why, rather than in every worker.
      Client(endpoint_).health();
    } catch (const std::exception& e) {
      stop_daemon();
      throw std::runtime_error(std::string("shmq-remote: ") + e.what());
    }
  }

  ~RemoteTransport() override { stop_daemon(); }
  RemoteTransport(const RemoteTransport&) = delete;
  RemoteTransport& operator=(const RemoteTransport&) = delete;

  std::string_view name() const override { return "shmq-remote"; }
  Features features() const override { return {.batch_send = true, .buffered_send = true}; }

  std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t, std::size_t) const override {
    if (options.message_bytes > kMaxMessageBytes) return "messages of at most 256 KiB (SQS's MaximumMessageSize)";
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    // A Client only for this call: the parent holds none across fork().
    Client client(endpoint_);
    client.create_queue(queue_name(channel), channel_attributes());
    channels_.set(channel, options);
  }

  void attach_process(const std::string&) override { client_ = std::make_unique<Client>(endpoint_); }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    if (buffered_) return std::make_unique<BufferedRemoteSender>(open(channel));
    return std::make_unique<RemoteSender>(open(channel));
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<RemoteReceiver>(open(channel), channels_.at(channel));
  }

  void destroy_channels() override {
    if (!channels_.empty()) {
      Client client(endpoint_);
      for (const auto& [channel, options] : channels_) client.delete_queue(queue_name(channel));
      channels_.clear();
    }
    stop_daemon();
  }

 private:
  std::string queue_name(const std::string& channel) const { return run_id_ + "-" + channel; }

  Queue open(const std::string& channel) {
    if (!client_) throw std::logic_error("shmq-remote: attach_process first");
    channels_.at(channel);  // throws if it was not created
    return client_->open_queue(queue_name(channel));
  }

  void start_daemon(const TransportSettings& settings) {
    const std::string secret = random_secret();
    endpoint_.region = settings.region.empty() ? kLocalRegion : settings.region;
    endpoint_.access_key_id = kLocalAccessKey;
    endpoint_.secret_access_key = secret;
    temp_dir_ = make_temp_dir();
    const std::filesystem::path port_file = temp_dir_ / "port";
    int port = 0;
    const std::string ns = settings.run_id + "-remote";
    daemon_.start(settings.shmqd_path.empty() ? default_shmqd_path() : settings.shmqd_path, ns,
                  {"--bridge-listen", "127.0.0.1:0", "--bridge-port-file", port_file.string(), "--auth",
                   std::string(kLocalAccessKey) + ":" + secret, "--region", endpoint_.region},
                  [&] {
                    const auto p = read_port_file(port_file);
                    if (p) port = *p;
                    return p.has_value();
                  });
    endpoint_.url = "http://127.0.0.1:" + std::to_string(port);
  }

  void stop_daemon() noexcept {
    daemon_.stop();
    if (!temp_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(temp_dir_, ec);
      temp_dir_.clear();
    }
  }

  std::string run_id_;
  bool buffered_;  // senders go through a BufferedSender
  Endpoint endpoint_;
  ShmqdProcess daemon_;             // our own shmqd, unless --endpoint was given
  std::filesystem::path temp_dir_;  // its port file's directory
  ChannelTable<ChannelOptions> channels_{"shmq-remote"};
  std::unique_ptr<Client> client_;  // in a worker, after attach_process
};

}  // namespace

std::unique_ptr<Transport> make_shmq_remote_transport(const TransportSettings& settings) {
  return std::make_unique<RemoteTransport>(settings);
}

}  // namespace shmq::bench
