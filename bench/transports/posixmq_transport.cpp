// posixmq: POSIX message queues (mq_open/mq_send/mq_receive), a bounded
// queue kept by the kernel. Every send and receive is a system call that
// copies the message into or out of kernel memory.
//
// spin: descriptors opened with O_NONBLOCK, retried on EAGAIN (each try is a
// system call); block: blocking mq_send/mq_receive, which sleep in the
// kernel. A receiver in block mode keeps a second, non-blocking descriptor
// for block_spin polling and for the rest of a batch. Any number of
// producers and consumers.
//
// Limits: mq_msgsize is capped by fs.mqueue.msgsize_max and mq_maxmsg by
// fs.mqueue.msg_max (8192 and 10 by default) unless the process has
// CAP_SYS_RESOURCE, and capacity * size by RLIMIT_MSGQUEUE per user.
// create_channel raises the rlimit when it may and otherwise shrinks the
// capacity to what the limits allow, saying so on stderr; a message size
// over the limit is unsupported, with the sysctl to raise.
#include <fcntl.h>
#include <mqueue.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "transport_support.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

constexpr std::size_t kMaxQueueBytes = std::size_t{256} << 20;  // same cap as boostmq
constexpr long kHardMsgMax = 65536;                             // HARD_MSGMAX in the kernel
constexpr long kHardMsgSizeMax = 16L << 20;                     // HARD_MSGSIZEMAX
constexpr long kKernelBytesPerMessage = 128;  // struct msg_msg and tree node, charged to RLIMIT_MSGQUEUE
constexpr int kCapSysResource = 24;

std::string queue_name(const std::string& run_id, const std::string& channel) {
  std::string name = "shmq-bench-" + run_id + "-" + channel;
  std::replace(name.begin(), name.end(), '/', '_');
  return "/" + name;
}

long read_sysctl(const char* path, long fallback) {
  std::ifstream in(path);
  long value = fallback;
  if (!(in >> value)) return fallback;
  return value;
}

long msg_max() { return read_sysctl("/proc/sys/fs/mqueue/msg_max", 10); }
long msgsize_max() { return read_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192); }

// CAP_SYS_RESOURCE lets a process exceed msg_max and msgsize_max (up to the
// hard limits) and raise its RLIMIT_MSGQUEUE.
bool has_cap_sys_resource() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> kCapSysResource) & 1;
  }
  return false;
}

[[noreturn]] void throw_error(int error, const std::string& what) {
  throw std::runtime_error("posixmq: " + what + ": " + std::strerror(error));
}

// Raises the soft RLIMIT_MSGQUEUE to the hard limit, or both to unlimited if
// the process may; true if the soft limit went up.
bool raise_msgqueue_rlimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_MSGQUEUE, &limit) != 0) return false;
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  if (limit.rlim_cur != RLIM_INFINITY && ::setrlimit(RLIMIT_MSGQUEUE, &unlimited) == 0) return true;
  if (limit.rlim_cur == limit.rlim_max) return false;
  limit.rlim_cur = limit.rlim_max;
  return ::setrlimit(RLIMIT_MSGQUEUE, &limit) == 0;
}

mqd_t open_queue(const std::string& name, int flags) {
  mqd_t queue = ::mq_open(name.c_str(), flags);
  if (queue == static_cast<mqd_t>(-1)) throw_error(errno, "mq_open " + name);
  return queue;
}

class PosixmqSender final : public Sender {
 public:
  PosixmqSender(const std::string& name, WaitMode wait)
      : queue_(open_queue(name, O_WRONLY | (wait == WaitMode::spin ? O_NONBLOCK : 0))) {}
  ~PosixmqSender() override { ::mq_close(queue_); }

  void send(std::span<const std::byte> message) override {
    while (::mq_send(queue_, reinterpret_cast<const char*>(message.data()), message.size(), 0) != 0) {
      if (errno != EAGAIN && errno != EINTR) throw_error(errno, "mq_send");
    }
  }

 private:
  mqd_t queue_;
};

class PosixmqReceiver final : public Receiver {
 public:
  PosixmqReceiver(const std::string& name, const ChannelOptions& options)
      : options_(options),
        polling_(open_queue(name, O_RDONLY | O_NONBLOCK)),
        blocking_(options.wait == WaitMode::block ? open_queue(name, O_RDONLY) : polling_) {
    mq_attr attr{};
    ::mq_getattr(polling_, &attr);
    slot_bytes_ = static_cast<std::size_t>(attr.mq_msgsize);
  }
  ~PosixmqReceiver() override {
    if (blocking_ != polling_) ::mq_close(blocking_);
    ::mq_close(polling_);
  }

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    out.clear();
    if (max == 0) max = 1;
    if (buffer_.size() < max * slot_bytes_) buffer_.resize(max * slot_bytes_);
    auto try_take = [&] { return take(polling_, out); };
    if (options_.wait == WaitMode::spin) {
      while (!try_take()) {
      }
    } else if (!poll_for(options_.block_spin, try_take)) {
      while (!take(blocking_, out)) {
      }
    }
    while (out.size() < max && take(polling_, out)) {
    }
    return out.size();
  }

 private:
  // Receives one message into slot out.size() and appends its view; false if
  // there was none (EAGAIN) or the call was interrupted.
  bool take(mqd_t queue, std::vector<std::span<const std::byte>>& out) {
    char* slot = reinterpret_cast<char*>(buffer_.data() + out.size() * slot_bytes_);
    ssize_t n = ::mq_receive(queue, slot, slot_bytes_, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return false;
      throw_error(errno, "mq_receive");
    }
    out.emplace_back(reinterpret_cast<const std::byte*>(slot), static_cast<std::size_t>(n));
    return true;
  }

  ChannelOptions options_;
  mqd_t polling_;
  mqd_t blocking_;
  std::size_t slot_bytes_ = 0;
  std::vector<std::byte> buffer_;  // max slots of mq_msgsize bytes each
};

class PosixmqTransport final : public Transport {
 public:
  explicit PosixmqTransport(const TransportSettings& settings) : run_id_(settings.run_id) {}

  ~PosixmqTransport() override {
    if (creator_pid_ == ::getpid()) destroy_channels();
  }

  [[nodiscard]] std::string_view name() const override { return "posixmq"; }

  [[nodiscard]] std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t,
                                                       std::size_t) const override {
    const long size = static_cast<long>(options.message_bytes);
    if (size == 0) return "empty messages";
    if (size > kHardMsgSizeMax) return "a message over the kernel's hard limit of 16 MiB (HARD_MSGSIZEMAX)";
    const bool privileged = has_cap_sys_resource();
    if (size > msgsize_max() && !privileged) {
      return "a message over fs.mqueue.msgsize_max (" + std::to_string(msgsize_max()) +
             " B): raise it with sysctl -w fs.mqueue.msgsize_max=" + std::to_string(size) +
             " or run with CAP_SYS_RESOURCE";
    }
    rlimit limit{};
    if (!privileged && ::getrlimit(RLIMIT_MSGQUEUE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY &&
        static_cast<rlim_t>(size + kKernelBytesPerMessage) > limit.rlim_max) {
      return "a message over RLIMIT_MSGQUEUE (" + std::to_string(limit.rlim_max) + " B): raise ulimit -q";
    }
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    if (auto why = unsupported(options, 1, 1)) throw std::runtime_error("posixmq: " + *why);
    const std::string name = queue_name(run_id_, channel);
    ::mq_unlink(name.c_str());

    mq_attr attr{};
    attr.mq_msgsize = static_cast<long>(options.message_bytes);
    attr.mq_maxmsg = static_cast<long>(std::max<std::size_t>(
        1, std::min({options.capacity, kMaxQueueBytes / options.message_bytes, std::size_t{kHardMsgMax}})));
    std::string reason = attr.mq_maxmsg < static_cast<long>(options.capacity) ? "a 256 MiB cap on one queue" : "";
    bool rlimit_raised = false;
    for (;;) {
      mqd_t queue = ::mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
      if (queue != static_cast<mqd_t>(-1)) {
        ::mq_close(queue);
        break;
      }
      const int error = errno;
      if (error == EINVAL && attr.mq_maxmsg > msg_max()) {
        attr.mq_maxmsg = msg_max();
        reason = "fs.mqueue.msg_max is " + std::to_string(msg_max()) +
                 "; raise it with sysctl -w fs.mqueue.msg_max=" + std::to_string(options.capacity) +
                 " or run with CAP_SYS_RESOURCE";
      } else if (error == EINVAL) {
        throw_error(error, "mq_open " + name + " with " + std::to_string(attr.mq_msgsize) + " B messages (raise " +
                               "fs.mqueue.msgsize_max to at least that, or run with CAP_SYS_RESOURCE)");
      } else if (error == EMFILE && !rlimit_raised) {
        rlimit_raised = true;
        raise_msgqueue_rlimit();
      } else if ((error == EMFILE || error == ENOMEM) && attr.mq_maxmsg > 1) {
        attr.mq_maxmsg = std::min(attr.mq_maxmsg - 1, attr.mq_maxmsg * 7 / 8);  // the largest that fits, near enough
        reason = error == EMFILE ? "RLIMIT_MSGQUEUE (ulimit -q) is too small for more" : "the kernel is out of memory";
      } else {
        throw_error(error, "mq_open " + name + " (" + std::to_string(attr.mq_maxmsg) + " messages of " +
                               std::to_string(attr.mq_msgsize) + " B)");
      }
    }
    if (attr.mq_maxmsg != static_cast<long>(options.capacity)) {
      std::fprintf(stderr, "posixmq: channel %s buffers %ld messages, not %zu (%s)\n", channel.c_str(), attr.mq_maxmsg,
                   options.capacity, reason.c_str());
    }
    channels_.set(channel, options);
    creator_pid_ = ::getpid();
  }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    return std::make_unique<PosixmqSender>(queue_name(run_id_, channel), channels_.at(channel).wait);
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<PosixmqReceiver>(queue_name(run_id_, channel), channels_.at(channel));
  }

  void destroy_channels() override {
    for (const auto& [channel, options] : channels_) ::mq_unlink(queue_name(run_id_, channel).c_str());
    channels_.clear();
  }

 private:
  std::string run_id_;
  ChannelTable<ChannelOptions> channels_{"posixmq"};  // inherited by forked processes
  pid_t creator_pid_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_posixmq_transport(const TransportSettings& settings) {
  return std::make_unique<PosixmqTransport>(settings);
}

}  // namespace shmq::bench
