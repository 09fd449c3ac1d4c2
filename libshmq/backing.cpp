#include "backing.hpp"

#include <fcntl.h>

#include <cerrno>

namespace shmq::detail {

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

}  // namespace shmq::detail
