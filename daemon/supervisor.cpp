#include "supervisor.hpp"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <thread>

#include "control_server.hpp"
#include "queue_registry.hpp"
#include "sqs_bridge.hpp"

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

  // The bridge is a client of this daemon: it connects to the control socket,
  // which answers only once server.run() polls, so it starts on its own thread.
  std::unique_ptr<bridge::SqsBridge> sqs;
  std::thread bridge_starter;
  if (config_.bridge) {
    bridge_starter = std::thread([&] {
      try {
        bridge::BridgeOptions options;
        options.ns = config_.ns;
        options.http.host = config_.bridge_host;
        options.http.port = config_.bridge_port;
        options.http.threads = config_.bridge_threads;
        options.http.idle_timeout = std::chrono::seconds(config_.bridge_idle_timeout_s);
        options.http.read_timeout = std::chrono::seconds(std::min(config_.bridge_idle_timeout_s, 30));
        options.sqs.account_id = config_.account_id;
        options.sqs.region = config_.region;
        options.sqs.advertise_url = config_.advertise_url;
        options.credentials = config_.auth;
        sqs = std::make_unique<bridge::SqsBridge>(std::move(options));
        sqs->start();
        if (!config_.bridge_port_file.empty()) std::ofstream(config_.bridge_port_file) << sqs->port() << "\n";
        spdlog::info("SQS bridge listening on http://{}:{} ({})", config_.bridge_host, sqs->port(),
                     config_.auth.empty() ? "signatures not checked: --auth KEY:SECRET to check them"
                                          : "AWS Signature V4 checked");
      } catch (const std::exception& e) {
        spdlog::critical("SQS bridge: {}", e.what());
        ::kill(::getpid(), SIGTERM);  // a daemon asked for a bridge and without one is not what was asked
      }
    });
  }
  server.run(stop_fd);
  server.close_connections();  // a bridge request waiting on the control socket fails now
  if (bridge_starter.joinable()) bridge_starter.join();
  if (sqs) sqs->stop();
  sqs.reset();
  spdlog::info("stopping: queues stay in shared memory for the next start");
  ::close(stop_fd);
  return 0;
}

}  // namespace shmq::daemon
