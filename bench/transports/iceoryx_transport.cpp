// iceoryx: zero-copy publish/subscribe in shared memory (iceoryx 2.0 C++ API,
// UntypedPublisher/UntypedSubscriber). The sender loans a chunk from RouDi's
// mempool, copies the message into it and publishes its offset into the
// subscriber's queue; the receiver reads the chunk in place and releases it at
// its next receive call. The RouDi daemon is started by create_channel if none
// runs, with a mempool sized for the run, and stopped by destroy_channels.
//
// spin: take() in a loop; block: a WaitSet on the subscriber's HAS_DATA
// state, which sleeps on a semaphore the publisher posts. Made into a lossless
// queue with BLOCK_PRODUCER/WAIT_FOR_CONSUMER and a sender that waits for its
// subscriber before its first message. Limits: pub/sub broadcasts, so one
// producer and one consumer only; the subscriber queue holds at most 256
// chunks (MAX_SUBSCRIBER_QUEUE_CAPACITY), so larger capacities are cut; a
// receive holds at most kMaxHeldChunks chunks, so it returns at most that
// many; a publisher whose subscriber's queue is full waits by yielding in a
// loop (iceoryx has no sleeping wait for it), whatever the wait mode. Only
// one RouDi runs per machine: a RouDi already running is used as it is.
#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_hoofs/platform/platform_settings.hpp"
#include "iceoryx_posh/iceoryx_posh_types.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "transport_support.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

constexpr std::size_t kMaxQueueBytes = std::size_t{256} << 20;  // same cap as the other queues
constexpr std::size_t kMaxHeldChunks = 32;                      // shmq-bench batches are at most 10
// Chunks a channel can have out at once besides its queue: those the receiver
// holds, those the publisher may loan, one in flight.
constexpr std::size_t kChunksBesidesQueue = kMaxHeldChunks + iox::MAX_CHUNKS_ALLOCATED_PER_PUBLISHER_SIMULTANEOUSLY + 1;
constexpr auto kRoudiStartTimeout = std::chrono::seconds(10);
constexpr auto kRoudiStopTimeout = std::chrono::seconds(10);
constexpr auto kSubscriberTimeout = std::chrono::seconds(60);
constexpr std::size_t kMaxRunIdInNames = 40;  // leaves room in 100-character iceoryx names

std::string roudi_lock_path() {
  return std::string(iox::platform::IOX_LOCK_FILE_PATH_PREFIX) + iox::roudi::ROUDI_LOCK_NAME + ".lock";
}

std::string roudi_socket_path() {
  return std::string(iox::platform::IOX_UDS_SOCKET_PATH_PREFIX) + iox::roudi::IPC_CHANNEL_ROUDI_NAME;
}

// A RouDi holds an exclusive flock on its lock file while it runs.
bool roudi_running() {
  int fd = ::open(roudi_lock_path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // drops our shared lock, if we got it
  return locked;
}

// True once RouDi's socket accepts datagrams, i.e. it serves registrations.
bool roudi_socket_ready() {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, roudi_socket_path().c_str(), sizeof(address.sun_path) - 1);
  const bool ready = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ready;
}

// Run ids and process names become parts of iceoryx names and socket files.
std::string sanitize(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return out;
}

std::string short_run_id(const std::string& run_id) {
  if (run_id.size() <= kMaxRunIdInNames) return sanitize(run_id);
  std::ostringstream hashed;
  hashed << std::hex << std::hash<std::string>{}(run_id);
  return hashed.str();
}

std::size_t queue_capacity(const ChannelOptions& options) {
  return std::max<std::size_t>(1, std::min({options.capacity, std::size_t{iox::MAX_SUBSCRIBER_QUEUE_CAPACITY},
                                            kMaxQueueBytes / options.message_bytes}));
}

// iceoryx mempools need chunk payload sizes in multiples of 8.
std::uint32_t pool_chunk_bytes(std::size_t message_bytes) {
  return static_cast<std::uint32_t>((message_bytes + 7) / 8 * 8);
}

iox::capro::ServiceDescription service_of(const std::string& run_id, const std::string& channel) {
  return {iox::capro::IdString_t(iox::cxx::TruncateToCapacity, "shmq-bench"),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, short_run_id(run_id)),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, sanitize(channel))};
}

class IceoryxSender final : public Sender {
 public:
  IceoryxSender(const iox::capro::ServiceDescription& service, std::string channel)
      : publisher_(service, publisher_options()), channel_(std::move(channel)) {}

  void send(std::span<const std::byte> message) override {
    if (!subscribed_) wait_for_subscriber();
    auto loaned = publisher_.loan(static_cast<std::uint32_t>(message.size()));
    if (loaned.has_error()) {
      throw std::runtime_error(std::string("iceoryx: cannot loan a chunk of ") + std::to_string(message.size()) +
                               " B on " + channel_ + ": " + iox::popo::asStringLiteral(loaned.get_error()) +
                               " (a RouDi that shmq-bench did not start may lack a mempool for this size)");
    }
    void* payload = loaned.value();
    std::memcpy(payload, message.data(), message.size());
    publisher_.publish(payload);
  }

 private:
  static iox::popo::PublisherOptions publisher_options() {
    iox::popo::PublisherOptions options;
    options.historyCapacity = 0;
    options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    return options;
  }

  // A chunk published before RouDi has connected the subscriber is lost, so
  // the first send waits for it.
  void wait_for_subscriber() {
    const auto deadline = std::chrono::steady_clock::now() + kSubscriberTimeout;
    while (!publisher_.hasSubscribers()) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("iceoryx: no subscriber on " + channel_ + " after 60 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    subscribed_ = true;
  }

  iox::popo::UntypedPublisher publisher_;
  std::string channel_;
  bool subscribed_ = false;
};

class IceoryxReceiver final : public Receiver {
 public:
  IceoryxReceiver(const iox::capro::ServiceDescription& service, const ChannelOptions& options)
      : subscriber_(service, subscriber_options(options)), options_(options) {
    if (options_.wait == WaitMode::block) {
      waitset_.emplace();
      if (waitset_->attachState(subscriber_, iox::popo::SubscriberState::HAS_DATA).has_error()) {
        throw std::runtime_error("iceoryx: cannot attach the subscriber to a WaitSet");
      }
    }
  }
  ~IceoryxReceiver() override {
    release();
    waitset_.reset();  // detaches before the subscriber goes
  }

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    out.clear();
    release();
    max = std::clamp<std::size_t>(max, 1, kMaxHeldChunks);
    auto try_take = [&] { return take(out); };
    if (options_.wait == WaitMode::spin) {
      while (!try_take()) {
      }
    } else if (!poll_for(options_.block_spin, try_take)) {
      while (!take(out)) waitset_->wait();
    }
    while (out.size() < max && take(out)) {
    }
    return out.size();
  }

 private:
  static iox::popo::SubscriberOptions subscriber_options(const ChannelOptions& options) {
    iox::popo::SubscriberOptions subscriber;
    subscriber.queueCapacity = queue_capacity(options);
    subscriber.historyRequest = 0;
    subscriber.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    return subscriber;
  }

  bool take(std::vector<std::span<const std::byte>>& out) {
    auto taken = subscriber_.take();
    if (taken.has_error()) {
      if (taken.get_error() == iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) return false;
      throw std::runtime_error(std::string("iceoryx: take: ") + iox::popo::asStringLiteral(taken.get_error()));
    }
    const void* payload = taken.value();
    held_.push_back(payload);
    out.emplace_back(static_cast<const std::byte*>(payload),
                     iox::mepoo::ChunkHeader::fromUserPayload(payload)->userPayloadSize());
    return true;
  }

  void release() {
    for (const void* payload : held_) subscriber_.release(payload);
    held_.clear();
  }

  iox::popo::UntypedSubscriber subscriber_;
  std::optional<iox::popo::WaitSet<>> waitset_;  // block mode only
  ChannelOptions options_;
  std::vector<const void*> held_;  // chunks behind the views handed out last
};

class IceoryxTransport final : public Transport {
 public:
  explicit IceoryxTransport(const TransportSettings& settings)
      : roudi_path_(settings.roudi_path), run_id_(settings.run_id) {}

  ~IceoryxTransport() override {
    if (creator_pid_ == ::getpid()) {
      try {
        destroy_channels();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
      }
    }
  }

  [[nodiscard]] std::string_view name() const override { return "iceoryx"; }

  [[nodiscard]] std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t producers,
                                                       std::size_t consumers) const override {
    if (producers > 1 || consumers > 1) {
      return "publish/subscribe broadcasts every message to every subscriber; it is not a shared queue, so one "
             "producer and one consumer only";
    }
    if (options.message_bytes == 0) return "empty messages";
    if (options.message_bytes > kMaxQueueBytes) return "a message larger than the 256 MiB queue cap";
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    if (auto why = unsupported(options, 1, 1)) throw std::runtime_error("iceoryx: " + *why);
    if (channels_.empty() && roudi_pid_ <= 0) {
      external_roudi_ = roudi_running();
      if (external_roudi_) {
        std::fprintf(stderr, "iceoryx: using the RouDi already running; its mempools must hold the run's chunks\n");
      }
    }
    if (queue_capacity(options) != options.capacity) {
      std::fprintf(stderr, "iceoryx: channel %s queues %zu messages, not %zu (subscriber queue cap %u, %zu MiB cap)\n",
                   channel.c_str(), queue_capacity(options), options.capacity, iox::MAX_SUBSCRIBER_QUEUE_CAPACITY,
                   kMaxQueueBytes >> 20);
    }
    channels_.set(channel, options);
    creator_pid_ = ::getpid();
    if (!external_roudi_) {
      // The mempool is fixed when RouDi starts, so each channel restarts it
      // with room for all channels so far (about 0.2 s, before any fork).
      stop_roudi();
      start_roudi();
    }
  }

  void attach_process(const std::string& process_name) override {
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                             iox::log::LogLevelOutput::kHideLogLevel);
    const std::string name = runtime_name_prefix() + std::to_string(::getpid()) + "-" + sanitize(process_name);
    iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name));
  }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    static_cast<void>(channels_.at(channel));  // an unknown channel throws
    return std::make_unique<IceoryxSender>(service_of(run_id_, channel), channel);
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<IceoryxReceiver>(service_of(run_id_, channel), channels_.at(channel));
  }

  void destroy_channels() override {
    // A process that ended without its runtime's destructor (e.g. with
    // _exit()) is still registered, and RouDi 2.0 aborts its shutdown on
    // such a process; it forgets one whose keep-alive messages have stopped
    // within PROCESS_KEEP_ALIVE_TIMEOUT, so wait that long first.
    const std::vector<std::filesystem::path> leftovers = runtime_files();
    if (roudi_pid_ > 0 && !leftovers.empty()) {
      const auto forget = iox::runtime::PROCESS_KEEP_ALIVE_TIMEOUT + iox::roudi::DISCOVERY_INTERVAL * 2U;
      std::this_thread::sleep_for(std::chrono::milliseconds(forget.toMilliseconds()));
    }
    stop_roudi();
    channels_.clear();
    external_roudi_ = false;
    std::error_code ec;
    if (!work_dir_.empty()) std::filesystem::remove_all(work_dir_, ec);
    work_dir_.clear();
    for (const auto& path : leftovers) std::filesystem::remove(path, ec);
  }

 private:
  [[nodiscard]] std::string runtime_name_prefix() const { return "shmq-bench-rt-" + short_run_id(run_id_) + "-"; }

  // The socket and lock files of this run's runtimes; a runtime removes its
  // own when its process exits normally.
  [[nodiscard]] std::vector<std::filesystem::path> runtime_files() const {
    const std::string prefix = runtime_name_prefix();
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(iox::platform::IOX_UDS_SOCKET_PATH_PREFIX, ec)) {
      if (entry.path().filename().string().rfind(prefix, 0) == 0) files.push_back(entry.path());
    }
    return files;
  }

  // A RouDi config with one mempool per message size, enough chunks for every
  // channel's queue plus what its ends can hold.
  [[nodiscard]] std::string roudi_config() const {
    std::map<std::uint32_t, std::size_t> pools;
    for (const auto& [channel, options] : channels_) {
      pools[pool_chunk_bytes(options.message_bytes)] += queue_capacity(options) + kChunksBesidesQueue;
    }
    std::ostringstream config;
    config << "[general]\nversion = 1\n\n[[segment]]\n";
    for (const auto& [bytes, count] : pools) {
      config << "\n[[segment.mempool]]\nsize = " << bytes << "\ncount = " << count << "\n";
    }
    return config.str();
  }

  void start_roudi() {
    if (roudi_running()) {
      throw std::runtime_error("iceoryx: a RouDi started while shmq-bench was configuring its own; stop it");
    }
    if (work_dir_.empty()) {
      std::string pattern = "/tmp/shmq-bench-roudi-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("iceoryx: mkdtemp failed");
      work_dir_ = pattern;
    }
    const std::string config_path = work_dir_ + "/roudi.toml";
    const std::string log_path = work_dir_ + "/roudi.log";
    std::ofstream(config_path) << roudi_config();

    // RouDi's output goes to a log file (it prints its shared-memory sizes at
    // any log level); it is shown if RouDi fails to start.
    const char* argv[] = {roudi_path_.c_str(), "-l", "warning", "-c", config_path.c_str(), nullptr};
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("iceoryx: fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // no RouDi outlives a crashed benchmark
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (log >= 0) {
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
      }
      ::execvp(argv[0], const_cast<char* const*>(argv));
      constexpr char kExecFailed[] = "exec failed: is iceoryx (iox-roudi) installed?\n";
      [[maybe_unused]] auto written = ::write(STDERR_FILENO, kExecFailed, sizeof kExecFailed - 1);
      ::_exit(127);
    }
    roudi_pid_ = pid;

    const auto deadline = std::chrono::steady_clock::now() + kRoudiStartTimeout;
    while (!(roudi_running() && roudi_socket_ready())) {
      int status = 0;
      if (::waitpid(roudi_pid_, &status, WNOHANG) == roudi_pid_) {
        roudi_pid_ = 0;
        throw std::runtime_error("iceoryx: " + roudi_path_ + " exited at start: " + read_file(log_path));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop_roudi();
        throw std::runtime_error("iceoryx: " + roudi_path_ + " not ready after 10 s: " + read_file(log_path));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  // Stops the RouDi this transport started. On SIGTERM it removes its shared
  // memory, socket and lock files, unless it fails to shut down: iceoryx 2.0
  // asserts when a process registered with it has ended without saying so
  // (e.g. with _exit()); then the files of this dead RouDi are removed here.
  void stop_roudi() {
    if (roudi_pid_ <= 0) return;
    ::kill(roudi_pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + kRoudiStopTimeout;
    int status = 0;
    while (::waitpid(roudi_pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(roudi_pid_, SIGKILL);
        ::waitpid(roudi_pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    roudi_pid_ = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "iceoryx: RouDi did not shut down cleanly (%s %d); removing its files\n",
                   WIFSIGNALED(status) ? "signal" : "status",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      remove_roudi_files();
    }
  }

  static void remove_roudi_files() {
    ::unlink(roudi_lock_path().c_str());
    ::unlink(roudi_socket_path().c_str());
    ::unlink((roudi_socket_path() + ".lock").c_str());
    ::shm_unlink((std::string("/") + iox::roudi::SHM_NAME).c_str());
    // The data segment is named for the writer group, by default the group RouDi ran as.
    if (const group* writers = ::getgrgid(::getegid())) ::shm_unlink((std::string("/") + writers->gr_name).c_str());
  }

  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string roudi_path_;
  std::string run_id_;
  ChannelTable<ChannelOptions> channels_{"iceoryx"};  // inherited by forked processes
  pid_t roudi_pid_ = 0;                               // the RouDi this transport started, if any
  bool external_roudi_ = false;
  std::string work_dir_;  // RouDi's config and log
  pid_t creator_pid_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_iceoryx_transport(const TransportSettings& settings) {
  return std::make_unique<IceoryxTransport>(settings);
}

}  // namespace shmq::bench
