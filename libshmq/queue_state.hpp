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
