// zeromq: libzmq PUSH/PULL sockets over an ipc:// endpoint, i.e. a Unix-domain
// stream socket through the kernel, with each process's zmq I/O thread doing
// the socket work and handing messages to the application through lock-free
// pipes and an eventfd. Sends copy the message into a zmq message; receives
// hand out views of zmq messages, closed at the next receive call.
//
// spin: zmq_send/zmq_msg_recv with ZMQ_DONTWAIT in a loop; block: blocking
// calls, which sleep in poll() on the socket's eventfd. One consumer with any
// number of producers (the PULL binds), or one producer with several
// consumers (the PUSH binds and deals round-robin, skipping a consumer whose
// pipe is full); not both. Which side binds is decided from the shape last
// passed to unsupported(), so call it before create_channel. Capacity is
// approximate: half of it is the PUSH's send high-water mark, half the PULL's
// receive high-water mark (zmq counts them per connection), and the kernel's
// socket buffers hold more. A send returns once zmq has queued the message:
// messages of different producers are not ordered, and a destroyed sender
// waits (with one consumer) until the consumer has taken all it sent.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <thread>

#include "transport_support.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

constexpr int kLingerMs = 60'000;         // how long a closing end may take to deliver what it holds
constexpr int kReconnectIntervalMs = 10;  // a connect that comes before the bind retries this often
constexpr std::uint32_t kMaxSenders = 256;

enum class BindSide { pull, push };

// One page per channel, mapped before the fork, through which a closing
// sender learns that the consumer has taken everything it sent: zmq's linger
// does not guarantee that (libzmq issues #1264, #1922), and a sender that
// exits with messages still in its socket would lose them.
struct ChannelShared {
  std::atomic<std::uint32_t> next_sender{0};
  std::atomic<std::uint32_t> receivers_closed{0};
  std::atomic<std::uint32_t> drained[kMaxSenders] = {};  // set when sender i's end marker is taken
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "shared between processes");
static_assert(sizeof(ChannelShared) <= 4096, "one page");

struct ChannelPlan {
  ChannelOptions options;
  BindSide bind_side = BindSide::pull;
  std::string path;                 // the socket file of the ipc:// endpoint
  ChannelShared* shared = nullptr;  // mapped MAP_SHARED by create_channel
};

[[noreturn]] void throw_zmq(const std::string& what) {
  throw std::runtime_error("zeromq: " + what + ": " + zmq_strerror(zmq_errno()));
}

std::string endpoint_dir() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  struct stat st {};
  if (runtime_dir != nullptr && *runtime_dir != '\0' && ::stat(runtime_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    return runtime_dir;
  }
  return "/tmp";
}

// One zmq context per process; a forked child never uses its parent's.
class Context {
 public:
  Context() : context_(zmq_ctx_new()), owner_pid_(::getpid()) {
    if (context_ == nullptr) throw_zmq("zmq_ctx_new");
  }
  ~Context() {
    if (owner_pid_ == ::getpid()) zmq_ctx_term(context_);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] void* get() const { return context_; }
  [[nodiscard]] bool owned_here() const { return owner_pid_ == ::getpid(); }

 private:
  void* context_;
  pid_t owner_pid_;
};

void set_int_option(void* socket, int option, int value) {
  if (zmq_setsockopt(socket, option, &value, sizeof value) != 0) throw_zmq("zmq_setsockopt");
}

// Opens a socket of `type` and binds or connects it to the channel's endpoint.
// The binding end claims the channel first, so a second binder fails loudly
// instead of silently taking the endpoint over.
void* open_socket(const Context& context, int type, const ChannelPlan& plan, bool bind) {
  void* socket = zmq_socket(context.get(), type);
  if (socket == nullptr) throw_zmq("zmq_socket");
  try {
    const int high_water_mark = static_cast<int>(std::max<std::size_t>(1, plan.options.capacity / 2));
    set_int_option(socket, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, high_water_mark);
    set_int_option(socket, ZMQ_LINGER, kLingerMs);  // also keeps a closing peer's messages readable
    set_int_option(socket, ZMQ_RECONNECT_IVL, kReconnectIntervalMs);
    const std::string endpoint = "ipc://" + plan.path;
    if (bind) {
      const std::string claim = plan.path + ".claim";
      int fd = ::open(claim.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
      if (fd < 0) {
        throw std::runtime_error("zeromq: a second " + std::string(type == ZMQ_PULL ? "consumer" : "producer") +
                                 " on " + endpoint + ", which was created for one; call unsupported() with the " +
                                 "run's producers and consumers before create_channel");
      }
      ::close(fd);
      if (zmq_bind(socket, endpoint.c_str()) != 0) throw_zmq("zmq_bind " + endpoint);
    } else if (zmq_connect(socket, endpoint.c_str()) != 0) {
      throw_zmq("zmq_connect " + endpoint);
    }
  } catch (...) {
    zmq_close(socket);
    throw;
  }
  return socket;
}

class ZeromqSender final : public Sender {
 public:
  ZeromqSender(std::shared_ptr<Context> context, const ChannelPlan& plan)
      : context_(std::move(context)),
        socket_(open_socket(*context_, ZMQ_PUSH, plan, plan.bind_side == BindSide::push)),
        flags_(plan.options.wait == WaitMode::spin ? ZMQ_DONTWAIT : 0),
        shared_(plan.shared),
        // relaxed: only the slot's uniqueness matters.
        slot_(plan.bind_side == BindSide::pull ? shared_->next_sender.fetch_add(1, std::memory_order_relaxed)
                                               : kMaxSenders) {}
  ~ZeromqSender() override {
    if (sent_ && slot_ < kMaxSenders) drain();
    zmq_close(socket_);
  }

  void send(std::span<const std::byte> message) override {
    while (zmq_send(socket_, message.data(), message.size(), flags_) < 0) {
      if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) throw_zmq("zmq_send");
    }
    sent_ = true;
  }

 private:
  // Sends an end marker (a two-part message, unlike any data message) behind
  // the data and waits until the consumer has taken it, or has closed, or
  // kLingerMs has passed. With several consumers (the PUSH binds) a marker
  // would reach only one of them, so there the sender relies on zmq's linger.
  void drain() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLingerMs);
    auto gave_up = [&] {
      // acquire: pairs with the receiver's release; nothing else depends on it.
      return shared_->receivers_closed.load(std::memory_order_acquire) > 0 ||
             std::chrono::steady_clock::now() > deadline;
    };
    const std::uint32_t slot = slot_;
    auto send_part = [&](const void* data, std::size_t size, int more) {
      while (zmq_send(socket_, data, size, ZMQ_DONTWAIT | more) < 0) {
        if ((zmq_errno() != EAGAIN && zmq_errno() != EINTR) || gave_up()) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      return true;
    };
    if (!send_part(nullptr, 0, ZMQ_SNDMORE) || !send_part(&slot, sizeof slot, 0)) return;
    // acquire: pairs with the receiver's release; nothing else depends on it.
    while (shared_->drained[slot].load(std::memory_order_acquire) == 0 && !gave_up()) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::shared_ptr<Context> context_;  // outlives the socket: zmq_ctx_term waits for it
  void* socket_;
  int flags_;
  ChannelShared* shared_;
  std::uint32_t slot_;  // kMaxSenders: no end marker
  bool sent_ = false;
};

class ZeromqReceiver final : public Receiver {
 public:
  ZeromqReceiver(std::shared_ptr<Context> context, const ChannelPlan& plan)
      : context_(std::move(context)),
        socket_(open_socket(*context_, ZMQ_PULL, plan, plan.bind_side == BindSide::pull)),
        options_(plan.options),
        shared_(plan.shared) {}
  ~ZeromqReceiver() override {
    release();
    zmq_close(socket_);
    // release: pairs with a draining sender's acquire, which stops waiting.
    shared_->receivers_closed.fetch_add(1, std::memory_order_release);
  }

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    out.clear();
    release();
    if (max == 0) max = 1;
    if (slots_ < max) {
      // zmq keeps small messages inside zmq_msg_t, so the array is only
      // replaced while it holds none.
      messages_ = std::make_unique<zmq_msg_t[]>(max);
      slots_ = max;
    }
    auto try_take = [&] { return take(ZMQ_DONTWAIT, out); };
    if (options_.wait == WaitMode::spin) {
      while (!try_take()) {
      }
    } else if (!poll_for(options_.block_spin, try_take)) {
      while (!take(0, out)) {
      }
    }
    while (out.size() < max && take(ZMQ_DONTWAIT, out)) {
    }
    return out.size();
  }

 private:
  // Receives one data message into the next slot and appends its view;
  // false if none is there (with ZMQ_DONTWAIT). End markers are consumed here.
  bool take(int flags, std::vector<std::span<const std::byte>>& out) {
    for (;;) {
      zmq_msg_t* message = &messages_[held_];
      zmq_msg_init(message);
      if (zmq_msg_recv(message, socket_, flags) < 0) {
        zmq_msg_close(message);
        if (zmq_errno() == EAGAIN || zmq_errno() == EINTR) return false;
        throw_zmq("zmq_msg_recv");
      }
      if (zmq_msg_more(message) == 0) {
        ++held_;
        out.emplace_back(static_cast<const std::byte*>(zmq_msg_data(message)), zmq_msg_size(message));
        return true;
      }
      zmq_msg_close(message);
      take_end_marker();
    }
  }

  // The second part of an end marker (zmq delivers a message's parts
  // together) holds the sender's slot.
  void take_end_marker() {
    std::uint32_t slot = kMaxSenders;
    if (zmq_recv(socket_, &slot, sizeof slot, 0) == static_cast<int>(sizeof slot) && slot < kMaxSenders) {
      // release: the sender may close once it sees this.
      shared_->drained[slot].store(1, std::memory_order_release);
    }
  }

  void release() {
    for (std::size_t i = 0; i < held_; ++i) zmq_msg_close(&messages_[i]);
    held_ = 0;
  }

  std::shared_ptr<Context> context_;
  void* socket_;
  ChannelOptions options_;
  std::unique_ptr<zmq_msg_t[]> messages_;
  std::size_t slots_ = 0;
  std::size_t held_ = 0;  // messages_[0, held_) back the views handed out last
  ChannelShared* shared_;
};

class ZeromqTransport final : public Transport {
 public:
  explicit ZeromqTransport(const TransportSettings& settings) : run_id_(settings.run_id) {}

  ~ZeromqTransport() override {
    if (creator_pid_ == ::getpid()) destroy_channels();
  }

  [[nodiscard]] std::string_view name() const override { return "zeromq"; }

  [[nodiscard]] std::optional<std::string> unsupported(const ChannelOptions&, std::size_t producers,
                                                       std::size_t consumers) const override {
    if (producers > 1 && consumers > 1) {
      return "PUSH/PULL needs one bound end: several producers and several consumers would need a broker";
    }
    bind_side_ = consumers > 1 ? BindSide::push : BindSide::pull;
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    std::string file = "shmq-bench-" + run_id_ + "-" + channel;
    std::replace(file.begin(), file.end(), '/', '_');
    ChannelPlan plan{options, bind_side_, endpoint_dir() + "/" + file};
    if (plan.path.size() >= sizeof(sockaddr_un::sun_path)) {
      throw std::runtime_error("zeromq: socket path " + plan.path + " is too long for a Unix socket; use a shorter " +
                               "run id or XDG_RUNTIME_DIR");
    }
    remove_files(plan);
    void* page = ::mmap(nullptr, sizeof(ChannelShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw std::runtime_error("zeromq: mmap: " + std::string(std::strerror(errno)));
    plan.shared = new (page) ChannelShared;
    if (const ChannelPlan* old = channels_.find(channel)) ::munmap(old->shared, sizeof(ChannelShared));
    channels_.set(channel, plan);
    creator_pid_ = ::getpid();
  }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    return std::make_unique<ZeromqSender>(context(), channels_.at(channel));
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<ZeromqReceiver>(context(), channels_.at(channel));
  }

  void destroy_channels() override {
    for (const auto& [channel, plan] : channels_) {
      remove_files(plan);
      ::munmap(plan.shared, sizeof(ChannelShared));
    }
    channels_.clear();
  }

 private:
  static void remove_files(const ChannelPlan& plan) {
    ::unlink(plan.path.c_str());
    ::unlink((plan.path + ".claim").c_str());
  }

  // The ends own the context, so it is terminated (flushing what senders
  // queued) when the last end in the process is destroyed.
  std::shared_ptr<Context> context() {
    std::shared_ptr<Context> context = context_.lock();
    if (!context || !context->owned_here()) {
      context = std::make_shared<Context>();
      context_ = context;
    }
    return context;
  }

  std::string run_id_;
  mutable BindSide bind_side_ = BindSide::pull;   // from the last unsupported() call
  ChannelTable<ChannelPlan> channels_{"zeromq"};  // inherited by forked processes
  std::weak_ptr<Context> context_;
  pid_t creator_pid_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_zeromq_transport(const TransportSettings& settings) {
  return std::make_unique<ZeromqTransport>(settings);
}

}  // namespace shmq::bench
