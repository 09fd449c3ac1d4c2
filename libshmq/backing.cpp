#include "backing.hpp"

#include <fcntl.h>

#include <cerrno>

namespace shmq::detail {

namespace {
constexpr std::uint64_t kPage = 4096;
}  // namespace

bool Backing::reserve(const void* p, std::size_t bytes) const noexcept {
  if (fd_ < 0 || bytes == 0) return true;
  const auto offset = static_cast<off_t>(static_cast<const std::uint8_t*>(p) - base_);
  // Pages already backed cost nothing: tmpfs skips them, even when full.
  for (;;) {
    if (::fallocate(fd_, 0, offset, static_cast<off_t>(bytes)) == 0) return true;
    if (errno == EINTR) continue;
    // A file system without fallocate backs pages as written (not tmpfs):
    // nothing to reserve ahead.
    return errno == EOPNOTSUPP;
  }
}

bool Backing::grow(std::initializer_list<Region> regions) const noexcept {
  std::uint64_t bytes = 0;
  for (const Region& r : regions) bytes += r.bytes;
  if (header_ != nullptr) {
    const TrimState& t = header_->trim;
    // Relaxed: a setting the daemon writes; the mutex orders the count.
    const std::uint64_t limit = atom(header_->memory_limit).load(std::memory_order_relaxed);
    if (limit != 0 && (t.memory_in_use > limit || bytes > limit - t.memory_in_use)) return false;
  }
  // A region reserved before a later one fails stays reserved, uncounted:
  // its watermark did not move, so the next grow over it reserves nothing.
  for (const Region& r : regions) {
    if (!reserve(r.p, r.bytes)) return false;
  }
  if (header_ != nullptr) {
    TrimState& t = header_->trim;
    // Relaxed: read lock-free by stats, as a count; writers hold the mutex.
    atom(t.memory_in_use).store(t.memory_in_use + bytes, std::memory_order_relaxed);
  }
  return true;
}

void Backing::release(const void* p, std::size_t bytes) const noexcept {
  if (fd_ < 0 || bytes == 0) return;
  const auto from = static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(p) - base_);
  const std::uint64_t first = (from + kPage - 1) / kPage * kPage;
  const std::uint64_t end = (from + bytes) / kPage * kPage;
  if (end <= first) return;
  // A failure leaves the pages backed: memory not given back, nothing lost.
  while (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(first),
                     static_cast<off_t>(end - first)) != 0 &&
         errno == EINTR) {
  }
}

}  // namespace shmq::detail
