#include "segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "backing.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::error_code refuse(std::error_code ec, std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return ec;
}

}  // namespace

Segment::Segment(Segment&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      guard_(std::exchange(other.guard_, nullptr)) {}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
    guard_ = std::exchange(other.guard_, nullptr);
  }
  return *this;
}

Segment::~Segment() { release(); }

void Segment::release() noexcept {
  // A mapping that faulted is never unmapped: a thread that held the queue's
  // lock when the zero pages replaced it unlocked a mutex whose kind read as
  // 0 and so left it on its robust list, which glibc writes through at every
  // later robust lock of that thread. Leaked, the range stays writable and is
  // never handed out again. (Out of the guard's registry first, else: once
  // unmapped, the range may be mapped again for something the handler must
  // not cover with zero pages.)
  const bool faulted = this->faulted();
  FaultGuard::remove(std::exchange(guard_, nullptr));
  if (base_ && !faulted) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

std::string Segment::shm_name(std::string_view ns, std::string_view queue) {
  std::string name = "/shmq.";
  name.append(ns).append(".").append(queue);
  return name;
}

std::string Segment::path(std::string_view shm_name) {
  // glibc's shm_open keeps POSIX shared memory in /dev/shm.
  return "/dev/shm/" + std::string(shm_name.substr(shm_name.starts_with('/') ? 1 : 0));
}

Segment Segment::create(const std::string& name, const FormatParams& params, mode_t mode, std::optional<gid_t> group) {
  if (params.capacity == 0 || params.arena_bytes == 0 || params.arena_bytes % kMaxBlock != 0) {
    throw std::system_error(Errc::invalid_parameter_value, "capacity: slots > 0, payload space in 2 MiB blocks");
  }
  const SegmentGeometry g = SegmentGeometry::compute(
      params.capacity, params.arena_bytes, SegmentGeometry::default_dedup_capacity(params.capacity, params.fifo),
      params.fifo);
  Fd fd(::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    if (errno == EEXIST) throw std::system_error(Errc::queue_name_exists, name);
    throw std::system_error(errno, std::generic_category(), "shm_open " + name);
  }
  auto fail = [&](const char* what) {
    const int err = errno;
    ::shm_unlink(name.c_str());
    throw std::system_error(err, std::generic_category(), std::string(what) + " " + name);
  };
  if (group && ::fchown(fd.get(), static_cast<uid_t>(-1), *group) != 0) fail("fchown");
  if (::fchmod(fd.get(), mode) != 0) fail("fchmod");  // umask must not narrow the configured mode
  if (::ftruncate(fd.get(), static_cast<off_t>(g.total_bytes)) != 0) fail("ftruncate");
  void* base = ::mmap(nullptr, g.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) fail("mmap");
  Segment segment(base, g.total_bytes, fd.release());
  // The pages reached by hash (or written by formatting) rather than through
  // a watermark that reserves as it advances (see QueueCore::reserve_locked).
  const Backing backing(base, segment.fd());
  auto* bytes = static_cast<std::uint8_t*>(base);
  const bool fifo = SegmentGeometry::default_dedup_capacity(params.capacity, params.fifo) > 0;
  // The metadata area is reserved as it is written (store_metadata), the
  // receive attempts only where they are used (FIFO queues): a standard
  // queue costs its header page until messages come.
  const bool reserved =
      backing.reserve(bytes, sizeof(SegmentHeader)) &&
      (!fifo || (backing.reserve(bytes + g.attempts_offset, g.metadata_offset - g.attempts_offset) &&
                 backing.reserve(bytes + g.group_buckets_offset, std::uint64_t{g.group_bucket_count} * 4) &&
                 backing.reserve(bytes + g.dedup_buckets_offset, std::uint64_t{g.dedup_bucket_count} * 4)));
  if (!reserved) {
    ::shm_unlink(name.c_str());
    throw std::system_error(Errc::over_limit, "/dev/shm has no room for the segment of " + name);
  }
  QueueCore::format(base, params);
  return segment;
}

std::error_code Segment::open(const std::string& name, Segment& out, const SegmentOwner* owner,
                              std::string* why) noexcept try {
  const std::string file = path(name);
  // O_NOFOLLOW: a link planted under a queue's name must not lead elsewhere.
  Fd fd(::open(file.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return refuse(Errc::queue_does_not_exist, why, file + " does not exist");
    if (err == EACCES || err == EPERM) {
      return refuse(Errc::permission_denied, why, "this user may not open " + describe_file(name));
    }
    if (err == ELOOP) return refuse(Errc::permission_denied, why, file + " is a symbolic link");
    return refuse({err, std::generic_category()}, why, "open " + file + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return {errno, std::generic_category()};
  if (!S_ISREG(st.st_mode)) return refuse(Errc::permission_denied, why, file + " is not a regular file");
  if (owner && (st.st_uid != owner->uid || (st.st_mode & 07777 & ~owner->mode) != 0)) {
    char expected[64];
    std::snprintf(expected, sizeof(expected), "owner uid %u, mode at most %04o", static_cast<unsigned>(owner->uid),
                  static_cast<unsigned>(owner->mode));
    return refuse(Errc::permission_denied, why,
                  describe_file(name) + " is not a file this daemon made (" + expected + ")");
  }
  const auto bytes = static_cast<std::size_t>(st.st_size);
  if (bytes < sizeof(SegmentHeader)) return refuse(Errc::segment_corrupt, why, file + " is shorter than a header");
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return {errno, std::generic_category()};
  Segment segment(base, bytes, fd.release());
  if (auto ec = validate_segment(segment.header(), bytes, why)) return ec;
  out = std::move(segment);
  return {};
} catch (const std::bad_alloc&) {
  return std::make_error_code(std::errc::not_enough_memory);
}

std::string Segment::describe_file(const std::string& name) {
  const std::string file = path(name);
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return file + " (" + std::strerror(errno) + ")";
  char text[96];
  std::snprintf(text, sizeof(text), " (owner uid %u, group %u, mode %04o)", static_cast<unsigned>(st.st_uid),
                static_cast<unsigned>(st.st_gid), static_cast<unsigned>(st.st_mode & 07777));
  return file + text;
}

void Segment::unlink(const std::string& name) noexcept { ::shm_unlink(name.c_str()); }

bool Segment::intact() const noexcept {
  struct stat st {};
  return fd_ < 0 || (::fstat(fd_, &st) == 0 && static_cast<std::size_t>(st.st_size) >= size_);
}

bool Segment::restore_size() const noexcept { return fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) == 0; }

}  // namespace shmq::detail
