// shmqd: the shmq supervisor daemon. Parse options, run the supervisor.
#include <cstdio>
#include <exception>

#include "daemon_config.hpp"
#include "supervisor.hpp"

int main(int argc, char** argv) {
  try {
    auto config = shmq::daemon::parse_command_line(argc, argv);
    if (!config) return 0;
    return shmq::daemon::Supervisor(std::move(*config)).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmqd: %s\n", e.what());
    return 2;
  }
}
