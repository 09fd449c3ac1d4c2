// A control request packet comes from any local process of an allowed user:
// answering it, whatever its bytes, must never crash the daemon, and the
// reply must be a JSON object that says whether it succeeded.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "control_server.hpp"
#include "daemon_config.hpp"
#include "queue_registry.hpp"

namespace {

using shmq::daemon::ControlServer;
using shmq::daemon::DaemonConfig;
using shmq::daemon::QueueRegistry;

// One daemon's control plane in a namespace of its own (no socket is
// served: requests go straight to ControlServer::answer).
struct Daemon {
  Daemon() {
    config.ns = "fuzz" + std::to_string(::getpid());
    config.max_messages = 16;
    config.arena_bytes = 2u << 20;
    registry = std::make_unique<QueueRegistry>(config);
    server = std::make_unique<ControlServer>(config, *registry);
  }

  // Queues a request created: gone before the next input.
  void clear() {
    for (const std::string& name : registry->names("")) {
      try {
        registry->remove(name);
      } catch (const std::exception&) {
      }
    }
  }

  static void remove_segments(const std::string& ns) {
    std::error_code ec;
    const std::string prefix = "shmq." + ns + ".";
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
      if (entry.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(entry.path(), ec);
    }
  }

  DaemonConfig config;
  std::unique_ptr<QueueRegistry> registry;
  std::unique_ptr<ControlServer> server;
};

Daemon* daemon_instance() {
  static Daemon* daemon = [] {
    spdlog::set_level(spdlog::level::off);
    auto* d = new Daemon;
    std::atexit([] { Daemon::remove_segments("fuzz" + std::to_string(::getpid())); });
    return d;
  }();
  return daemon;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Daemon& d = *daemon_instance();
  const std::string reply = d.server->answer(std::string_view(reinterpret_cast<const char*>(data), size));
  const auto parsed = nlohmann::json::parse(reply, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("ok") || !parsed["ok"].is_boolean()) {
    std::abort();  // a reply no client could read
  }
  d.clear();
  return 0;
}
