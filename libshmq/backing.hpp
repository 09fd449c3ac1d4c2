// Backing store for the pages of a segment: tmpfs gives a page only when it is
// first touched, and a page it cannot give is a SIGBUS in whoever touched it.
// Regions are reserved (fallocate) before their first use, so that a full
// /dev/shm is a queue_full answer to one sender instead.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmq::detail {

// Slots (descriptors, dedup entries) past a watermark are reserved this many
// at a time: one fallocate per 8 KiB of descriptors, not one per send.
inline constexpr std::uint32_t kReserveChunk = 64;

class Backing {
 public:
  Backing() = default;  // no file: every reservation succeeds (memory that is not a tmpfs file)
  Backing(const void* base, int fd) noexcept : base_(static_cast<const std::uint8_t*>(base)), fd_(fd) {}

  // Makes sure the pages of [p, p + bytes) within the segment have backing
  // store. False if the file system has no room for them (nothing changes).
  bool reserve(const void* p, std::size_t bytes) const noexcept;

 private:
  const std::uint8_t* base_ = nullptr;
  int fd_ = -1;
};

}  // namespace shmq::detail
