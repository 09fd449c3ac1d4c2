// shmqd as a whole: re-attaches to the namespace's queues, serves the control
// socket, and stops cleanly on SIGTERM or SIGINT (segments stay, so a restart
// loses nothing).
#pragma once

#include "daemon_config.hpp"

namespace shmq::daemon {

class Supervisor {
 public:
  explicit Supervisor(DaemonConfig config) : config_(std::move(config)) {}
  // Runs until SIGTERM or SIGINT; returns the process exit code.
  int run();

 private:
  DaemonConfig config_;
};

}  // namespace shmq::daemon
