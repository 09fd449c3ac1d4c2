// Creating, mapping and validating a queue's shared-memory object.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "queue_core.hpp"

namespace shmq::detail {

class Segment {
 public:
  Segment() = default;
  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // "/shmq.<namespace>.<queue>": the POSIX shm name of a queue.
  static std::string shm_name(std::string_view ns, std::string_view queue);

  // Creates, sizes and formats a new segment with `mode` permissions.
  // Throws std::system_error: queue_name_exists if it exists already, or the
  // errno of the failing call.
  static Segment create(const std::string& name, const FormatParams& params, mode_t mode);

  // Maps an existing segment after checking it is a complete queue of this
  // layout major version: queue_does_not_exist, incompatible_layout or
  // segment_corrupt otherwise.
  static std::error_code open(const std::string& name, Segment& out) noexcept;

  // Removes the name; processes that mapped it keep their mapping.
  static void unlink(const std::string& name) noexcept;

  bool mapped() const noexcept { return base_ != nullptr; }
  void* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  SegmentHeader& header() const noexcept { return *static_cast<SegmentHeader*>(base_); }

 private:
  Segment(void* base, std::size_t size) noexcept : base_(base), size_(size) {}
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace shmq::detail
