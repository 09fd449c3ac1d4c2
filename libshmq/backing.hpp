// Backing store for the pages of a segment: where a queue's memory comes
// from. Today that is a tmpfs file under /dev/shm, which gives a page only
// when it is first touched, and a page it cannot give is a SIGBUS in whoever
// touched it. So every region is reserved (fallocate) before its first use,
// and a full /dev/shm is a queue_full answer to one sender instead; regions
// no longer used are given back (punched out). A file-backed mode on a real
// file system would implement the same three calls.
//
// The memory a queue uses is counted where its tables grow (grow(), against
// SegmentHeader::memory_limit) and set back where they shrink
// (QueueCore::trim_step); see docs/data-plane.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "segment_layout.hpp"

namespace shmq::detail {

// Slots (descriptors, dedup entries) past a watermark are reserved this many
// at a time: one fallocate per 8 KiB of descriptors, not one per send.
inline constexpr std::uint32_t kReserveChunk = 64;

class Backing {
 public:
  Backing() = default;  // no file: every reservation succeeds (memory that is not a tmpfs file)
  Backing(const void* base, int fd) noexcept : base_(static_cast<const std::uint8_t*>(base)), fd_(fd) {}

  // The same backing, counting what grow() reserves in `h`'s memory_in_use
  // against its memory_limit. Callers hold the queue's mutex.
  Backing counted(SegmentHeader& h) const noexcept {
    Backing b = *this;
    b.header_ = &h;
    return b;
  }

  // Makes sure the pages of [p, p + bytes) within the segment have backing
  // store. False if the file system has no room for them (nothing changes).
  bool reserve(const void* p, std::size_t bytes) const noexcept;

  struct Region {
    const void* p;
    std::size_t bytes;
  };
  // reserve() for the regions a watermark just moved over: their bytes
  // count against the queue's memory limit. False, counting nothing, if
  // they would pass it or the file system has no room.
  bool grow(std::initializer_list<Region> regions) const noexcept;

  // Gives the whole pages inside [p, p + bytes) back to the file system;
  // they read as zeros afterwards. Partial pages at either end are kept.
  void release(const void* p, std::size_t bytes) const noexcept;

 private:
  const std::uint8_t* base_ = nullptr;
  int fd_ = -1;
  SegmentHeader* header_ = nullptr;  // where grow() counts, if counted()
};

}  // namespace shmq::detail
