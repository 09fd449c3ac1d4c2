#include "shared_array.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <system_error>

namespace shmq::bench::detail {

void* map_shared(std::size_t bytes) {
  // MAP_POPULATE: page faults happen here, not inside a timed loop.
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (base == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap of shared results");
  return base;
}

void unmap_shared(void* base, std::size_t bytes) noexcept { ::munmap(base, bytes); }

}  // namespace shmq::bench::detail
