// shmqd: the shmq supervisor daemon. Parse options, run the supervisor.
// Exit status: 0 after a clean stop, 1 when it could not start, 2 on bad usage.
#include <cstdio>
#include <exception>
#include <optional>

#include "daemon_config.hpp"
#include "supervisor.hpp"

int main(int argc, char** argv) {
  std::optional<shmq::daemon::DaemonConfig> config;
  try {
    config = shmq::daemon::parse_command_line(argc, argv);
    if (!config) return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmqd: %s\n", e.what());
    return 2;
  }
  try {
    return shmq::daemon::Supervisor(std::move(*config)).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmqd: %s\n", e.what());
    return 1;
  }
}
