// Drives a QueueCore directly, with a clock the test moves by hand.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "message_id.hpp"
#include "shmq/error.hpp"
#include "test_segment.hpp"

namespace shmq::test {

class CoreHarness {
 public:
  explicit CoreHarness(std::uint32_t capacity = 16, std::uint64_t arena = 2 << 20, bool fifo = false)
      : seg_(capacity, arena, 30, fifo), core_(seg_.base()) {}

  // A queue whose pages are reserved in its /dev/shm file as it grows and
  // counted against `memory_limit` (0: none), as the daemon and clients map
  // it.
  struct Backed {
    std::uint64_t memory_limit = 0;
  };
  CoreHarness(std::uint32_t capacity, std::uint64_t arena, bool fifo, Backed backed)
      : seg_(capacity, arena, 30, fifo, backed.memory_limit),
        core_(seg_.base(), detail::Backing(seg_.base(), seg_.segment().fd())) {}
  TestSegment& segment() { return seg_; }

  detail::QueueCore& core() { return core_; }
  detail::SegmentHeader& header() { return core_.header(); }
  detail::Now now() const { return now_; }
  void advance_ms(std::uint64_t ms) {
    now_.mono_ns += ms * 1'000'000ull;
    now_.wall_ms += ms;
  }

  // Sends one message; returns the error (empty on success). A FIFO
  // message needs a group; a dedup id makes the commit check the window.
  std::error_code send(const std::string& body, std::uint32_t delay_s = 0, std::uint32_t pid = 1,
                       const std::string& group = {}, const std::string& dedup = {},
                       detail::CommitResult* result = nullptr, bool dedup_per_group = false) {
    const std::uint32_t size = static_cast<std::uint32_t>(body.size());
    detail::Reservation slot;
    std::error_code ec;
    core_.reserve(std::span(&size, 1), pid, std::span(&slot, 1), std::span(&ec, 1));
    if (ec) return ec;
    std::memcpy(slot.payload, body.data(), body.size());
    detail::CommitRequest req;
    req.delay_s = delay_s;
    req.message_id = detail::new_message_id();
    req.group_id = group;
    if (!dedup.empty()) {
      req.dedup = true;
      req.dedup_key = detail::dedup_key(dedup_per_group, group, dedup);
    }
    detail::CommitResult res;
    core_.commit(std::span(&slot, 1), std::span(&size, 1), std::span(&req, 1), std::span(&res, 1), now_);
    if (result) *result = res;
    return res.error;
  }

  // Reserves without committing, as a sender killed mid-copy leaves it.
  detail::Reservation reserve_only(std::uint32_t size, std::uint32_t pid) {
    detail::Reservation slot;
    std::error_code ec;
    core_.reserve(std::span(&size, 1), pid, std::span(&slot, 1), std::span(&ec, 1));
    EXPECT_FALSE(ec);
    return slot;
  }

  std::vector<detail::Delivery> receive(std::uint32_t max, std::uint32_t visibility_s = 30,
                                        const detail::DedupKey* attempt = nullptr, std::error_code* error = nullptr) {
    std::vector<detail::Delivery> out(max);
    std::error_code ec;
    out.resize(core_.receive(std::span(out), visibility_s, now_, attempt, ec));
    if (error) *error = ec;
    return out;
  }

  std::string body(const detail::Delivery& d) {
    return std::string(reinterpret_cast<const char*>(core_.payload(d.block_offset)), d.body_bytes);
  }

  std::vector<std::string> bodies(const std::vector<detail::Delivery>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(body(d));
    return out;
  }

 private:
  TestSegment seg_;
  detail::QueueCore core_;
  detail::Now now_{1'000'000'000'000ull, 1'700'000'000'000ull};
};

// Forks a child that takes the queue lock, runs `scribble` (a half-done
// update) and then holds the lock until it is killed; returns its pid once
// it holds the lock (-1 if it could not be started).
template <class Scribble>
pid_t hold_lock_in_child(detail::SegmentHeader& h, Scribble scribble) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t child = ::fork();
  if (child == 0) {
    pthread_mutex_lock(&h.mutex);
    scribble();
    char c = 1;
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  const bool holding = child > 0 && ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  ::close(ready[1]);
  return holding ? child : -1;
}

// As hold_lock_in_child, and the child is then killed with SIGKILL while
// still holding the lock.
template <class Scribble>
void die_holding_lock(detail::SegmentHeader& h, Scribble scribble) {
  const pid_t child = hold_lock_in_child(h, scribble);
  ASSERT_GT(child, 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

}  // namespace shmq::test
