#include "segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

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

 private:
  int fd_;
};

std::error_code validate(const SegmentHeader& h, std::size_t file_bytes) {
  if (h.magic != kMagic) return Errc::segment_corrupt;
  // Acquire: pairs with the creator's release store, written after the rest.
  const std::uint32_t version = atom(const_cast<std::uint32_t&>(h.layout_version)).load(std::memory_order_acquire);
  if (version == 0) return Errc::segment_corrupt;  // its creator died while formatting it
  if ((version >> 16) != kLayoutMajor) return Errc::incompatible_layout;
  if (h.header_bytes != sizeof(SegmentHeader) || h.segment_bytes != file_bytes || h.capacity == 0 ||
      h.arena_bytes == 0 || h.arena_bytes % kMaxBlock != 0) {
    return Errc::segment_corrupt;
  }
  const SegmentGeometry g = SegmentGeometry::compute(h.capacity, h.arena_bytes, h.dedup_capacity);
  if (g.descriptors_offset != h.descriptors_offset || g.heap_offset != h.heap_offset ||
      g.groups_offset != h.groups_offset || g.group_buckets_offset != h.group_buckets_offset ||
      g.group_bucket_count != h.group_bucket_count || g.dedup_offset != h.dedup_offset ||
      g.dedup_capacity != h.dedup_capacity || g.dedup_buckets_offset != h.dedup_buckets_offset ||
      g.dedup_bucket_count != h.dedup_bucket_count || g.attempts_offset != h.attempts_offset ||
      g.metadata_offset != h.metadata_offset || g.order_map_offset != h.order_map_offset ||
      g.arena_offset != h.arena_offset || g.total_bytes != h.segment_bytes) {
    return Errc::segment_corrupt;
  }
  return {};
}

}  // namespace

Segment::Segment(Segment&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    if (base_) ::munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Segment::~Segment() {
  if (base_) ::munmap(base_, size_);
}

std::string Segment::shm_name(std::string_view ns, std::string_view queue) {
  std::string name = "/shmq.";
  name.append(ns).append(".").append(queue);
  return name;
}

Segment Segment::create(const std::string& name, const FormatParams& params, mode_t mode) {
  if (params.capacity == 0 || params.arena_bytes == 0 || params.arena_bytes % kMaxBlock != 0) {
    throw std::system_error(Errc::invalid_parameter_value, "capacity: slots > 0, payload space in 2 MiB blocks");
  }
  const SegmentGeometry g = SegmentGeometry::compute(
      params.capacity, params.arena_bytes, SegmentGeometry::default_dedup_capacity(params.capacity, params.fifo));
  Fd fd(::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, mode));
  if (fd.get() < 0) {
    if (errno == EEXIST) throw std::system_error(Errc::queue_name_exists, name);
    throw std::system_error(errno, std::generic_category(), "shm_open " + name);
  }
  auto fail = [&](const char* what) {
    const int err = errno;
    ::shm_unlink(name.c_str());
    throw std::system_error(err, std::generic_category(), std::string(what) + " " + name);
  };
  if (::fchmod(fd.get(), mode) != 0) fail("fchmod");  // umask must not narrow the configured mode
  if (::ftruncate(fd.get(), static_cast<off_t>(g.total_bytes)) != 0) fail("ftruncate");
  void* base = ::mmap(nullptr, g.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) fail("mmap");
  QueueCore::format(base, params);
  return Segment(base, g.total_bytes);
}

std::error_code Segment::open(const std::string& name, Segment& out) noexcept {
  Fd fd(::shm_open(name.c_str(), O_RDWR, 0));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Errc::queue_does_not_exist;
    if (errno == EACCES) return Errc::permission_denied;
    return {errno, std::generic_category()};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return {errno, std::generic_category()};
  const auto bytes = static_cast<std::size_t>(st.st_size);
  if (bytes < sizeof(SegmentHeader)) return Errc::segment_corrupt;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return {errno, std::generic_category()};
  Segment segment(base, bytes);
  if (auto ec = validate(segment.header(), bytes)) return ec;
  out = std::move(segment);
  return {};
}

void Segment::unlink(const std::string& name) noexcept { ::shm_unlink(name.c_str()); }

}  // namespace shmq::detail
