// What a Queue handle holds: the mapping, the core over it, and the control
// connection that must outlive every send in progress (see ControlConnection).
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "control_connection.hpp"
#include "queue_core.hpp"
#include "segment.hpp"

namespace shmq::detail {

struct QueueState {
  QueueState(Segment seg, std::string queue_name, std::shared_ptr<ControlConnection> conn)
      : segment(std::move(seg)),
        core(segment.base(), Backing(segment.base(), segment.fd())),
        name(std::move(queue_name)),
        connection(std::move(conn)),
        pid(static_cast<std::uint32_t>(::getpid())),
        connected_epoch(atom(segment.header().daemon_epoch).load(std::memory_order_relaxed)) {}
  // The slots this process cached for sends without the mutex go back to
  // the queue (a forked child leaves its parent's alone).
  ~QueueState() {
    if (static_cast<std::uint32_t>(::getpid()) == pid) core.release_cache(pid);
  }
  QueueState(const QueueState&) = delete;
  QueueState& operator=(const QueueState&) = delete;

  Segment segment;
  QueueCore core;
  std::string name;
  std::shared_ptr<ControlConnection> connection;  // may be null (tests that run without a daemon)
  std::uint32_t pid;
  // The daemon epoch this process's connection is known to. A daemon that
  // attached since does not know this process until it reconnects.
  std::atomic<std::uint32_t> connected_epoch;
};

}  // namespace shmq::detail
