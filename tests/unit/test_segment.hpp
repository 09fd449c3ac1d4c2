// A queue segment made directly, without a daemon, for tests of the core.
#pragma once

#include <unistd.h>

#include <atomic>
#include <string>

#include "queue_core.hpp"
#include "segment.hpp"

namespace shmq::test {

class TestSegment {
 public:
  explicit TestSegment(std::uint32_t capacity = 64, std::uint64_t arena_bytes = 4 << 20,
                       std::uint32_t visibility_timeout_s = 30, bool fifo = false, std::uint64_t memory_limit = 0) {
    static std::atomic<int> counter{0};
    name_ = "/shmq.unit" + std::to_string(::getpid()) + "x" + std::to_string(counter++) + ".q";
    detail::FormatParams p;
    p.name = "q";
    p.capacity = capacity;
    p.arena_bytes = arena_bytes;
    p.incarnation = 0x1234abcd5678ef00ull + static_cast<std::uint64_t>(counter.load());
    p.created_ms = 1;
    p.visibility_timeout_s = visibility_timeout_s;
    p.fifo = fifo;
    p.memory_limit = memory_limit;
    segment_ = detail::Segment::create(name_, p, 0600);
  }
  ~TestSegment() { detail::Segment::unlink(name_); }

  const std::string& name() const { return name_; }
  detail::Segment& segment() { return segment_; }
  void* base() { return segment_.base(); }

 private:
  std::string name_;
  detail::Segment segment_;
};

}  // namespace shmq::test
