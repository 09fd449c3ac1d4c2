#include "supervisor.hpp"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "control_server.hpp"
#include "queue_registry.hpp"

namespace shmq::daemon {

int Supervisor::run() {
  auto logger = spdlog::stderr_color_mt("shmqd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Block the stop signals in every thread (threads inherit the mask) and
  // take them through a signalfd in the control loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int stop_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);

  QueueRegistry registry(config_);
  ControlServer server(config_, registry);  // fails if another daemon has the namespace
  for (pid_t pid : registry.attach_existing()) server.watch_process(pid);
  spdlog::info("shmqd serving namespace '{}' (pid {})", config_.ns, ::getpid());
  server.run(stop_fd);
  spdlog::info("stopping: queues stay in shared memory for the next start");
  ::close(stop_fd);
  return 0;
}

}  // namespace shmq::daemon
