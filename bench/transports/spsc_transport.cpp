// The floor: a single-producer single-consumer ring in POSIX shared memory,
// in the manner of rigtorp/SPSCQueue. Fixed-size slots, one counter per side
// on its own cache line, acquire/release and busy waiting; no system call,
// no lock, no acknowledgement. Each message is copied in by the sender and
// out by the receiver, once each, as shmq copies it.
//
// The segment (/shmq-bench.<run_id>.<channel>):
//
//   0     +--------------------------------------------------+
//         | RingHeader: magic, version (written last),        |
//         | message_bytes, slot_stride, capacity              |
//   64    +--------------------------------------------------+
//         | head: messages written; only the sender stores    |
//   128   +--------------------------------------------------+
//         | tail: messages read; only the receiver stores     |
//   192   +--------------------------------------------------+
//         | slot 0, slot 1, ... slot capacity-1               |
//         | (message_bytes each, slot_stride apart)           |
//         +--------------------------------------------------+
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <set>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "cpu_relax.hpp"
#include "transports.hpp"

namespace shmq::bench {
namespace {

constexpr std::size_t kCacheLine = 64;
constexpr std::uint64_t kMagic = 0x636d6d2d63737073;  // "spsc-mmc"
constexpr std::uint32_t kVersion = 1;                 // changes with any change of this layout

struct alignas(kCacheLine) RingHeader {
  std::uint64_t magic;
  std::uint64_t message_bytes;
  std::uint64_t slot_stride;           // message_bytes rounded up to a cache line
  std::uint64_t capacity;              // slots
  std::atomic<std::uint32_t> version;  // stored last, with release, once the fields above are set
};

struct alignas(kCacheLine) Counter {
  std::atomic<std::uint64_t> value;  // counts from 0 and never wraps in practice (2^64 messages)
};

struct RingLayout {
  RingHeader header;
  Counter head;
  Counter tail;
};

static_assert(std::is_standard_layout_v<RingLayout>, "a file format: fields at fixed offsets");
static_assert(sizeof(RingHeader) == kCacheLine && sizeof(Counter) == kCacheLine, "one cache line each");
static_assert(offsetof(RingLayout, head) == 64 && offsetof(RingLayout, tail) == 128, "as drawn above");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "a lock would not work across processes");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "a lock would not work across processes");

constexpr std::size_t kSlotsOffset = sizeof(RingLayout);

std::system_error os_error(const std::string& what) { return {errno, std::generic_category(), what}; }

// One process's mapping of a ring, checked against the layout.
class RingMapping {
 public:
  explicit RingMapping(const std::string& shm_name) {
    const int fd = ::shm_open(shm_name.c_str(), O_RDWR, 0);
    if (fd < 0) throw os_error("spsc: shm_open " + shm_name);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw os_error("spsc: fstat " + shm_name);
    }
    bytes_ = static_cast<std::size_t>(st.st_size);
    // MAP_POPULATE: no page faults inside a measurement.
    void* base = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    ::close(fd);
    if (base == MAP_FAILED) throw os_error("spsc: mmap " + shm_name);
    base_ = static_cast<std::byte*>(base);
    // acquire: the header's fields were written before the version.
    if (bytes_ < kSlotsOffset || layout().header.magic != kMagic || layout().header.capacity == 0 ||
        layout().header.version.load(std::memory_order_acquire) != kVersion ||
        bytes_ < kSlotsOffset + layout().header.capacity * layout().header.slot_stride) {
      ::munmap(base_, bytes_);
      throw std::runtime_error("spsc: " + shm_name + " is not a ring of this version");
    }
  }
  ~RingMapping() { ::munmap(base_, bytes_); }
  RingMapping(const RingMapping&) = delete;
  RingMapping& operator=(const RingMapping&) = delete;

  RingLayout& layout() const noexcept { return *reinterpret_cast<RingLayout*>(base_); }
  std::byte* slot(std::uint64_t index) const noexcept {
    return base_ + kSlotsOffset + index * layout().header.slot_stride;
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0;
};

class SpscSender final : public Sender {
 public:
  explicit SpscSender(const std::string& shm_name)
      : ring_(shm_name),
        capacity_(ring_.layout().header.capacity),
        message_bytes_(ring_.layout().header.message_bytes),
        // relaxed: only this process stores head.
        head_(ring_.layout().head.value.load(std::memory_order_relaxed)),
        slot_(head_ % capacity_) {}

  void send(std::span<const std::byte> message) override {
    if (message.size() != message_bytes_) throw std::runtime_error("spsc: a message of another size than the slots");
    while (head_ - tail_seen_ >= capacity_) {
      // acquire: the receiver has finished copying out of the slots it released.
      tail_seen_ = ring_.layout().tail.value.load(std::memory_order_acquire);
      if (head_ - tail_seen_ >= capacity_) detail::cpu_relax();
    }
    std::memcpy(ring_.slot(slot_), message.data(), message.size());
    if (++slot_ == capacity_) slot_ = 0;  // no division on the hot path
    // release: the receiver sees the bytes before the count that includes them.
    ring_.layout().head.value.store(++head_, std::memory_order_release);
  }

 private:
  RingMapping ring_;
  std::uint64_t capacity_;
  std::uint64_t message_bytes_;
  std::uint64_t head_;           // messages written, this process's copy
  std::uint64_t slot_;           // head_ % capacity_
  std::uint64_t tail_seen_ = 0;  // the receiver's tail when last read: a lower bound
};

class SpscReceiver final : public Receiver {
 public:
  explicit SpscReceiver(const std::string& shm_name)
      : ring_(shm_name),
        capacity_(ring_.layout().header.capacity),
        message_bytes_(ring_.layout().header.message_bytes),
        // relaxed: only this process stores tail.
        tail_(ring_.layout().tail.value.load(std::memory_order_relaxed)),
        slot_(tail_ % capacity_) {}

  std::size_t receive(std::size_t max, std::vector<std::span<const std::byte>>& out) override {
    while (head_seen_ == tail_) {
      // acquire: pairs with the sender's release of head; the slots' bytes are visible.
      head_seen_ = ring_.layout().head.value.load(std::memory_order_acquire);
      if (head_seen_ == tail_) detail::cpu_relax();
    }
    const std::size_t n = std::min<std::uint64_t>(std::max<std::size_t>(max, 1), head_seen_ - tail_);
    if (buffer_.size() < n * message_bytes_) buffer_.resize(n * message_bytes_);
    out.clear();
    for (std::size_t i = 0; i < n; ++i) {
      std::byte* to = buffer_.data() + i * message_bytes_;
      std::memcpy(to, ring_.slot(slot_), message_bytes_);
      if (++slot_ == capacity_) slot_ = 0;
      out.emplace_back(to, message_bytes_);
    }
    tail_ += n;
    // release: the copies above are done before the sender may reuse the slots.
    ring_.layout().tail.value.store(tail_, std::memory_order_release);
    return n;
  }

 private:
  RingMapping ring_;
  std::uint64_t capacity_;
  std::uint64_t message_bytes_;
  std::uint64_t tail_;             // messages read, this process's copy
  std::uint64_t slot_;             // tail_ % capacity_
  std::uint64_t head_seen_ = 0;    // the sender's head when last read: a lower bound
  std::vector<std::byte> buffer_;  // the messages handed out by the last call
};

class SpscTransport final : public Transport {
 public:
  explicit SpscTransport(const TransportSettings& settings) : run_id_(settings.run_id) {}
  ~SpscTransport() override { unlink_all(); }
  SpscTransport(const SpscTransport&) = delete;
  SpscTransport& operator=(const SpscTransport&) = delete;

  std::string_view name() const override { return "spsc"; }

  std::optional<std::string> unsupported(const ChannelOptions& options, std::size_t producers,
                                         std::size_t consumers) const override {
    if (options.wait == WaitMode::block) return "no sleeping receive: it only busy-waits";
    if (producers > 1 || consumers > 1) return "one producer and one consumer only";
    return std::nullopt;
  }

  void create_channel(const std::string& channel, const ChannelOptions& options) override {
    const std::string name = shm_name(channel);
    const std::uint64_t stride = (options.message_bytes + kCacheLine - 1) / kCacheLine * kCacheLine;
    const std::uint64_t bytes = kSlotsOffset + options.capacity * stride;
    ::shm_unlink(name.c_str());  // a ring a killed run left behind
    const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) throw os_error("spsc: shm_open " + name);
    created_.insert(name);
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      ::close(fd);
      throw os_error("spsc: ftruncate " + name + " to " + std::to_string(bytes) + " bytes");
    }
    void* base = ::mmap(nullptr, kSlotsOffset, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (base == MAP_FAILED) throw os_error("spsc: mmap " + name);
    auto* layout = new (base) RingLayout{};
    layout->header.magic = kMagic;
    layout->header.message_bytes = options.message_bytes;
    layout->header.slot_stride = stride;
    layout->header.capacity = options.capacity;
    layout->head.value.store(0, std::memory_order_relaxed);  // published by the version's release
    layout->tail.value.store(0, std::memory_order_relaxed);
    layout->header.version.store(kVersion, std::memory_order_release);
    ::munmap(base, kSlotsOffset);
  }

  std::unique_ptr<Sender> open_sender(const std::string& channel) override {
    return std::make_unique<SpscSender>(shm_name(channel));
  }

  std::unique_ptr<Receiver> open_receiver(const std::string& channel) override {
    return std::make_unique<SpscReceiver>(shm_name(channel));
  }

  void destroy_channels() override { unlink_all(); }

 private:
  std::string shm_name(const std::string& channel) const { return "/shmq-bench." + run_id_ + "." + channel; }

  void unlink_all() noexcept {
    for (const std::string& name : created_) ::shm_unlink(name.c_str());
    created_.clear();
  }

  std::string run_id_;
  std::set<std::string> created_;
};

}  // namespace

std::unique_ptr<Transport> make_spsc_transport(const TransportSettings& settings) {
  return std::make_unique<SpscTransport>(settings);
}

}  // namespace shmq::bench
