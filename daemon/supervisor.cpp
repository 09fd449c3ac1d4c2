#include "supervisor.hpp"

#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "control_server.hpp"
#include "fault_guard.hpp"
#include "queue_registry.hpp"
#include "shmq/error.hpp"
#include "sqs_bridge.hpp"

namespace shmq::daemon {

namespace {

// Every bridge connection and control client holds a descriptor; the soft
// limit (often 1024) is a default, the hard one what the system allows.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  spdlog::debug("open files limit raised from {} to {}", soft, limit.rlim_max);
}

// Who can reach the bridge, said loudly where it is open to more than the
// daemon's own user.
void log_bridge_access(const DaemonConfig& config, const bridge::SqsBridge& sqs) {
  if (!config.bridge_unix_path.empty()) {
    spdlog::info("SQS bridge listening on unix:{} (mode {:04o}; {})", config.bridge_unix_path,
                 config.bridge_socket_mode,
                 config.auth.empty() ? "signatures not checked" : "AWS Signature V4 checked");
    return;
  }
  spdlog::info(
      "SQS bridge listening on http://{}:{} ({}; at most {} connections)", config.bridge_host, sqs.port(),
      config.auth.empty() ? "signatures not checked: --auth KEY:SECRET to check them" : "AWS Signature V4 checked",
      sqs.server().max_connections());
  if (!config.auth.empty()) return;
  if (sqs.checks_host()) {
    spdlog::warn(
        "SQS bridge without --auth: EVERY LOCAL USER can read, send and delete messages of every queue "
        "through it; use --auth KEY:SECRET, or --bridge-listen unix:PATH to admit only the users the socket's "
        "permissions let in");
  } else {
    spdlog::warn(
        "SQS bridge without --auth on a non-loopback address: EVERY LOCAL USER AND EVERY HOST that can reach "
        "{}:{} can read, send and delete messages of every queue; use --auth KEY:SECRET",
        config.bridge_host, sqs.port());
  }
}

// Queues grow with their backlog, into /dev/shm. Say at the start if it is
// smaller than one queue may grow: a container's default is 64 MiB.
void warn_if_dev_shm_small(const DaemonConfig& config) {
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) != 0) {
    spdlog::warn("cannot examine /dev/shm ({}): queues live there", std::strerror(errno));
    return;
  }
  const std::uint64_t size = std::uint64_t{fs.f_blocks} * fs.f_frsize;
  const std::uint64_t free = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  if (config.queue_memory_bytes != 0 && size >= config.queue_memory_bytes) return;
  spdlog::warn(
      "/dev/shm holds {} MiB ({} MiB free), less than one queue may use ({}): once it is full, sends get OverLimit "
      "until messages are deleted; give /dev/shm more room (e.g. docker run --shm-size) or lower --queue-memory-mib",
      size >> 20, free >> 20,
      config.queue_memory_bytes == 0 ? std::string("no limit")
                                     : std::to_string(config.queue_memory_bytes >> 20) + " MiB, --queue-memory-mib");
}

}  // namespace

namespace {

// Tells a service manager (systemd's Type=notify) that the daemon serves:
// its queues are attached, their reapers run, the control socket and the
// bridge (if any) accept. Nothing happens without NOTIFY_SOCKET.
void notify_ready(const DaemonConfig& config) {
  const std::string state = "READY=1\nSTATUS=serving namespace " + config.ns;
  const int sent = ::sd_notify(0, state.c_str());
  if (sent < 0) spdlog::warn("could not tell the service manager that shmqd is ready: {}", std::strerror(-sent));
}

// The message of a log record as a JSON string (quoted, escaped; bytes
// that are not UTF-8 replaced): for --log-format json.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string text = nlohmann::json(std::string(msg.payload.data(), msg.payload.size()))
                                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

// text: "2026-12-01T10:00:00.123 info message"; json: one object a line,
// {"time":"2026-12-01T10:00:00.123+00:00","level":"info","message":"..."}.
void use_log_format(const std::string& format) {
  if (format != "json") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    return;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonMessageFlag>('*').set_pattern(
      R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","pid":%P,"message":%*})");
  spdlog::set_formatter(std::move(formatter));
}

// The queues of the config file: created, or, if they exist, checked. One
// that exists with other attributes is reported and left as it is. A
// dead-letter queue is made before the queues that name it. Throws
// std::runtime_error for a queue that cannot be made as declared.
void make_declared_queues(const DaemonConfig& config, QueueRegistry& registry) {
  std::vector<const DeclaredQueue*> pending;
  for (const DeclaredQueue& q : config.queues) pending.push_back(&q);
  const auto declared_later = [&](const std::string& name) {
    return std::any_of(pending.begin(), pending.end(), [&](const DeclaredQueue* p) { return p->name == name; });
  };
  while (!pending.empty()) {
    // The first whose dead-letter queue is made already (or not declared
    // here: it must exist); a cycle of declared queues falls through to
    // the first, whose redrive target then does not exist yet.
    auto next = std::find_if(pending.begin(), pending.end(), [&](const DeclaredQueue* q) {
      return q->dead_letter_queue.empty() || q->dead_letter_queue == q->name || !declared_later(q->dead_letter_queue);
    });
    if (next == pending.end()) next = pending.begin();
    const DeclaredQueue& q = **next;
    pending.erase(next);
    Attributes attributes = q.attributes;
    if (q.name.ends_with(".fifo")) attributes.try_emplace("FifoQueue", "true");
    if (!q.dead_letter_queue.empty()) {
      attributes["RedrivePolicy"] = nlohmann::json{{"deadLetterTargetArn", registry.arn(q.dead_letter_queue)},
                                                   {"maxReceiveCount", std::to_string(q.max_receive_count)}}
                                        .dump();
    }
    try {
      registry.create(q.name, attributes, std::nullopt, q.tags);
      spdlog::info("queue {} (config file): ready", q.name);
    } catch (const std::system_error& e) {
      if (e.code() != Errc::queue_name_exists) {
        throw std::runtime_error("config file, [queue." + q.name + "]: " + e.what());
      }
      spdlog::warn("queue {} exists with attributes other than the config file's; left as it is ({})", q.name,
                   e.what());
    }
  }
}

}  // namespace

int Supervisor::run() {
  raise_fd_limit();
  auto logger = spdlog::stderr_color_mt("shmqd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
  use_log_format(config_.log_format);

  // Block the stop signals in every thread (threads inherit the mask) and
  // take them through a signalfd in the control loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int stop_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);

  // Before any segment is mapped: a segment file that another process
  // truncates then fails its own queue, never the daemon (see FaultGuard).
  if (!detail::FaultGuard::install()) {
    spdlog::warn("SIGBUS guard not installed ({}): a segment truncated while attached can still kill the daemon",
                 detail::FaultGuard::why_inactive());
  }

  warn_if_dev_shm_small(config_);
  QueueRegistry registry(config_);
  ControlServer server(config_, registry);  // fails if another daemon has the namespace
  for (pid_t pid : registry.attach_existing()) server.watch_process(pid);
  make_declared_queues(config_, registry);
  spdlog::info("shmqd serving namespace '{}' (pid {})", config_.ns, ::getpid());

  // The bridge is a client of this daemon: it connects to the control socket,
  // which answers only once server.run() polls, so it starts on its own thread.
  std::unique_ptr<bridge::SqsBridge> sqs;
  std::atomic<bool> bridge_failed{false};
  std::thread bridge_starter;
  if (config_.bridge) {
    bridge_starter = std::thread([&] {
      try {
        bridge::BridgeOptions options;
        options.ns = config_.ns;
        options.http.host = config_.bridge_host;
        options.http.port = config_.bridge_port;
        options.http.unix_path = config_.bridge_unix_path;
        options.http.unix_mode = config_.bridge_socket_mode;
        options.http.max_connections = config_.bridge_max_connections;
        options.http.max_buffered_bytes = config_.bridge_max_buffered_mib << 20;
        options.http.threads = config_.bridge_threads;
        options.http.idle_timeout = std::chrono::seconds(config_.bridge_idle_timeout_s);
        options.http.read_timeout = std::chrono::seconds(std::min(config_.bridge_idle_timeout_s, 30));
        options.sqs.account_id = config_.account_id;
        options.sqs.region = config_.region;
        options.sqs.advertise_url = config_.advertise_url;
        options.sqs.access_log = config_.access_log;
        options.dashboard = !config_.no_dashboard;
        options.credentials = config_.auth;
        options.admission.allowed_origins = config_.cors_allow_origins;
        options.admission.allowed_hosts = config_.allow_hosts;
        sqs = std::make_unique<bridge::SqsBridge>(std::move(options));
        sqs->start();
        if (!config_.bridge_port_file.empty()) std::ofstream(config_.bridge_port_file) << sqs->port() << "\n";
        log_bridge_access(config_, *sqs);
        notify_ready(config_);
      } catch (const std::exception& e) {
        spdlog::critical("SQS bridge: {}", e.what());
        // A daemon asked for a bridge and without one is not what was asked:
        // stop, and say so in the exit status.
        bridge_failed = true;
        ::kill(::getpid(), SIGTERM);
      }
    });
  }
  if (!config_.bridge) notify_ready(config_);
  server.run(stop_fd);
  ::sd_notify(0, "STOPPING=1");
  server.close_connections();  // a bridge request waiting on the control socket fails now
  if (bridge_starter.joinable()) bridge_starter.join();
  if (sqs) sqs->stop();
  sqs.reset();
  ::close(stop_fd);
  if (bridge_failed) {
    spdlog::critical("stopping: the SQS bridge could not start");
    return 1;
  }
  spdlog::info("stopping: queues stay in shared memory for the next start");
  return 0;
}

}  // namespace shmq::daemon
