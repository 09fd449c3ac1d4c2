#include "daemon_config.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "control_protocol.hpp"
#include "segment_layout.hpp"
#include "shmq/version.hpp"

namespace shmq::daemon {

namespace po = boost::program_options;

namespace {

constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

// An octal mode that gives the owner read and write, or nullopt.
std::optional<mode_t> owner_rw_mode(const std::string& text) {
  std::size_t used = 0;
  unsigned long mode = 0;
  try {
    mode = std::stoul(text, &used, 8);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != text.size() || mode > 0777 || (mode & 0600) != 0600) return std::nullopt;
  return static_cast<mode_t>(mode);
}

// The 1-based line of `path` that sets `option` (keys under a [section] are
// "section.key"; the second such line when `repeated`), else the first line that is neither blank, a comment, a
// section header nor KEY = VALUE; 0 when none is.
std::size_t config_line(const std::string& path, const std::string& option, bool repeated) {
  const auto trim = [](std::string text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos) return std::string{};
    return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
  };
  std::ifstream in(path);
  std::string line;
  std::string section;
  std::size_t malformed = 0;
  std::size_t found = 0;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2)) + ".";
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos || trim(line.substr(0, eq)).empty()) {
      if (malformed == 0) malformed = number;
      continue;
    }
    if (!option.empty() && section + trim(line.substr(0, eq)) == option) {
      if (!repeated || found != 0) return number;
      found = number;
    }
  }
  return found != 0 ? found : malformed;
}

std::size_t config_error_line(const std::string& path, const po::error& error) {
  std::string option;
  if (const auto* named = dynamic_cast<const po::error_with_option_name*>(&error)) {
    option = named->get_option_name();
    if (option.starts_with("--")) option.erase(0, 2);
  }
  // An option given twice: the second time is the mistake.
  return config_line(path, option, dynamic_cast<const po::multiple_occurrences*>(&error) != nullptr);
}

std::string at_line(const std::string& path, std::size_t line) {
  return path + (line ? ":" + std::to_string(line) : std::string{}) + ": ";
}

// A [queue.NAME] section's key ("queue.NAME.KEY", NAME perhaps ending in
// .fifo) into `queues`: SQS attribute names as they are; dead-letter-queue,
// max-receive-count and tags (KEY=VALUE,...) are shmq's. Throws
// std::runtime_error naming what is wrong.
void declare_queue_setting(std::vector<DeclaredQueue>& queues, const std::string& option, const std::string& value) {
  const std::string rest = option.substr(std::string_view("queue.").size());
  const std::size_t dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) {
    throw std::runtime_error("'" + option + "': queue settings go under [queue.NAME] as KEY = VALUE");
  }
  const std::string name = rest.substr(0, dot);
  const std::string key = rest.substr(dot + 1);
  auto q = std::find_if(queues.begin(), queues.end(), [&](const DeclaredQueue& d) { return d.name == name; });
  if (q == queues.end()) q = queues.insert(queues.end(), DeclaredQueue{name, {}, {}, {}, 0});
  if (key == "dead-letter-queue") {
    q->dead_letter_queue = value;
  } else if (key == "max-receive-count") {
    std::size_t used = 0;
    unsigned long n = 0;
    try {
      n = std::stoul(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != value.size() || n < 1 || n > 1000) {
      throw std::runtime_error("'" + option + " = " + value + "': from 1 to 1000");
    }
    q->max_receive_count = static_cast<std::uint32_t>(n);
  } else if (key == "tags") {
    std::size_t start = 0;
    while (start < value.size()) {
      const std::size_t end = std::min(value.find(',', start), value.size());
      const std::string pair = value.substr(start, end - start);
      const std::size_t eq = pair.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw std::runtime_error("'" + option + " = " + value + "': tags are KEY=VALUE,KEY=VALUE");
      }
      q->tags[pair.substr(0, eq)] = pair.substr(eq + 1);
      start = end + 1;
    }
  } else {
    q->attributes[key] = value;
  }
}

// The queues declared, checked for what needs no daemon: a dead-letter
// queue comes with its maxReceiveCount.
void check_declared_queues(const std::vector<DeclaredQueue>& queues) {
  for (const DeclaredQueue& q : queues) {
    if (q.dead_letter_queue.empty() != (q.max_receive_count == 0)) {
      throw std::runtime_error("[queue." + q.name + "]: dead-letter-queue and max-receive-count go together");
    }
    if (q.attributes.contains("RedrivePolicy") && !q.dead_letter_queue.empty()) {
      throw std::runtime_error("[queue." + q.name + "]: RedrivePolicy or dead-letter-queue, not both");
    }
  }
}

}  // namespace

std::optional<DaemonConfig> parse_command_line(int argc, const char* const argv[]) {
  DaemonConfig config;
  std::string config_file;
  std::string shm_mode = "0600";
  std::string bridge_listen = "127.0.0.1:9324";
  std::string socket_mode = "0600";
  std::vector<std::string> auth_pairs;
  std::uint64_t arena_mib = config.arena_bytes >> 20;
  std::uint64_t queue_memory_mib = config.queue_memory_bytes >> 20;
  long allow_gid = -1;

  po::options_description cli("shmqd options");
  cli.add_options()("help,h", "print this help and exit")("version", "print the version and exit")(
      "config,c", po::value(&config_file), "read options from this file (key = value lines)");
  po::options_description settings("settings (flags or config file)");
  settings.add_options()("namespace,n", po::value(&config.ns)->default_value(config.ns),
                         "isolates queue segments and the control socket: several daemons, one per namespace")(
      "log-level", po::value(&config.log_level)->default_value(config.log_level),
      "trace, debug, info, warn, error, critical or off")(
      "log-format", po::value(&config.log_format)->default_value(config.log_format),
      "text, or json: one JSON object a line (time, level, message)")(
      "access-log", po::bool_switch(&config.access_log),
      "log each bridge request (action, queue, status, duration) at info")(
      "no-dashboard", po::bool_switch(&config.no_dashboard),
      "do not serve the web dashboard on the bridge's /ui (GET /metrics, /health and /_aws/sqs/messages stay)")(
      "max-messages", po::value(&config.max_messages)->default_value(config.max_messages),
      "messages a new queue can hold at most, unless its creator says otherwise (address space: slots are backed "
      "as messages arrive)")("arena-mib", po::value(&arena_mib)->default_value(arena_mib),
                             "payload space of a new queue in MiB (address space, backed as messages need it)")(
      "queue-memory-mib", po::value(&queue_memory_mib)->default_value(queue_memory_mib),
      "shared memory in MiB that one queue may hold at once; past it, sends get OverLimit (0: no limit but what "
      "/dev/shm has). An emptied queue gives its memory back")(
      "shm-mode", po::value(&shm_mode)->default_value(shm_mode), "permissions of queue segments (octal)")(
      "allow-gid", po::value(&allow_gid), "also accept clients whose primary group is this gid")(
      "region", po::value(&config.region)->default_value(config.region), "region in queue ARNs")(
      "account-id", po::value(&config.account_id)->default_value(config.account_id),
      "account id in queue ARNs and URLs (12 digits)")(
      "control-max-connections",
      po::value(&config.control_max_connections)->default_value(config.control_max_connections),
      "control connections open at once, all users together; more are refused at once")(
      "control-max-connections-per-uid",
      po::value(&config.control_max_connections_per_uid)->default_value(config.control_max_connections_per_uid),
      "control connections one user may have open at once")(
      "bridge-listen", po::value(&bridge_listen)->default_value(bridge_listen),
      "where the SQS HTTP bridge listens: HOST:PORT (a name is resolved; port 0: any free port), "
      "unix:PATH (a Unix socket), or off")("bridge-socket-mode", po::value(&socket_mode)->default_value(socket_mode),
                                           "permissions of the bridge's Unix socket (octal): who may connect")(
      "bridge-max-connections", po::value(&config.bridge_max_connections)->default_value(config.bridge_max_connections),
      "open bridge connections at most (lowered to fit the fd limit); more are answered 503 and closed")(
      "bridge-max-buffered-mib",
      po::value(&config.bridge_max_buffered_mib)->default_value(config.bridge_max_buffered_mib),
      "MiB of request bodies and unsent answers the bridge holds, all connections together; a request whose "
      "body does not fit is answered 503 before it is read")(
      "cors-allow-origin", po::value(&config.cors_allow_origins)->composing(),
      "a web origin (e.g. http://localhost:3000) whose pages may call the bridge; \"*\" for any (repeatable; "
      "default: requests with an Origin header are refused)")(
      "allow-host", po::value(&config.allow_hosts)->composing(),
      "a name clients may use in Host on a loopback bridge, besides loopback addresses, localhost, the listen "
      "address and the --advertise-url host (repeatable)")(
      "bridge-threads", po::value(&config.bridge_threads)->default_value(config.bridge_threads),
      "threads serving the bridge (long polls do not hold them)")(
      "advertise-url", po::value(&config.advertise_url),
      "base of the queue URLs the bridge returns, e.g. http://sqs.local:9324 (default: the Host a client used)")(
      "bridge-port-file", po::value(&config.bridge_port_file), "write the bridge's port to this file once it listens")(
      "stop-drain", po::value(&config.stop_drain_s)->default_value(config.stop_drain_s),
      "on SIGTERM or SIGINT, serve this many seconds more with health answering \"stopping\" (503 on the "
      "bridge's /health, exit 1 from shmqctl health), so that load balancers and probes take the daemon out "
      "first; a second signal stops at once (0 to 300)")(
      "bridge-idle-timeout", po::value(&config.bridge_idle_timeout_s)->default_value(config.bridge_idle_timeout_s),
      "seconds a connection may stay silent, between requests or inside one, before the bridge closes it")(
      "auth", po::value(&auth_pairs)->composing(),
      "ACCESS_KEY:SECRET_KEY: verify AWS Signature V4 with these credentials (repeatable; default: no checks)");
  po::options_description all;
  all.add(cli).add(settings);

  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, all), vm);
  if (vm.count("help")) {
    std::cout << "usage: shmqd [options]\n\n" << all << "\n";
    return std::nullopt;
  }
  if (vm.count("version")) {
    std::cout << "shmqd " << kVersion << " (segment layout " << detail::kLayoutMajor << "." << detail::kLayoutMinor
              << ")\n";
    return std::nullopt;
  }
  if (vm.count("config")) {
    const std::string& path = vm["config"].as<std::string>();
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read config file " + path);
    try {
      // [queue.NAME] sections are not options: they declare queues. Any
      // other key no option has is an error, reported as Boost reports it.
      const po::parsed_options parsed = po::parse_config_file(in, settings, true);
      for (const po::option& o : parsed.options) {
        if (!o.unregistered) continue;
        if (!o.string_key.starts_with("queue.")) throw po::unknown_option(o.string_key);
        try {
          declare_queue_setting(config.queues, o.string_key, o.value.empty() ? std::string{} : o.value.front());
        } catch (const po::error&) {
          throw;
        } catch (const std::runtime_error& e) {
          throw std::runtime_error(at_line(path, config_line(path, o.string_key, false)) + e.what());
        }
      }
      try {
        check_declared_queues(config.queues);
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(path + ": " + e.what());
      }
      po::store(parsed, vm);
      po::notify(vm);
    } catch (const po::error& e) {
      // Boost names the option, not where it is: say the file and the line.
      throw std::runtime_error(at_line(path, config_error_line(path, e)) + e.what());
    }
  }
  po::notify(vm);

  if (!detail::valid_namespace(config.ns)) {
    throw std::runtime_error("--namespace: use 1 to 64 letters, digits, '-' or '_'");
  }
  config.queue_memory_bytes = queue_memory_mib << 20;
  if (queue_memory_mib > (1u << 20)) throw std::runtime_error("--queue-memory-mib: from 0 to 1048576");
  if (config.max_messages < 16 || config.max_messages > (1u << 24)) {
    throw std::runtime_error("--max-messages: from 16 to 16777216");
  }
  if (arena_mib < 1 || arena_mib > (1u << 20)) throw std::runtime_error("--arena-mib: from 1 to 1048576");
  config.arena_bytes = arena_mib << 20;
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), config.log_level) == std::end(kLogLevels)) {
    std::string levels;
    for (const char* level : kLogLevels) levels += std::string(levels.empty() ? "" : ", ") + level;
    throw std::runtime_error("--log-level '" + config.log_level + "': one of " + levels);
  }
  if (config.log_format != "text" && config.log_format != "json") {
    throw std::runtime_error("--log-format '" + config.log_format + "': text or json");
  }
  const auto mode = owner_rw_mode(shm_mode);
  if (!mode) {
    throw std::runtime_error("--shm-mode: an octal mode that gives the owner read and write, such as 0600 or 0660");
  }
  config.shm_mode = *mode;
  const auto bridge_socket_mode = owner_rw_mode(socket_mode);
  if (!bridge_socket_mode) {
    throw std::runtime_error(
        "--bridge-socket-mode: an octal mode that gives the owner read and write, such as 0600 or 0660");
  }
  config.bridge_socket_mode = *bridge_socket_mode;
  if (config.bridge_max_connections < 1 || config.bridge_max_connections > 1000000) {
    throw std::runtime_error("--bridge-max-connections: 1 to 1000000");
  }
  // At least one body of the largest size the bridge takes (4 MiB) must fit.
  if (config.bridge_max_buffered_mib < 4 || config.bridge_max_buffered_mib > 1048576) {
    throw std::runtime_error("--bridge-max-buffered-mib: 4 to 1048576");
  }
  if (allow_gid >= 0) config.allow_gid = static_cast<gid_t>(allow_gid);
  if (bridge_listen == "off") {
    config.bridge = false;
  } else if (bridge_listen.starts_with("unix:")) {
    config.bridge_unix_path = bridge_listen.substr(5);
    if (config.bridge_unix_path.empty()) throw std::runtime_error("--bridge-listen unix:PATH: a path is missing");
  } else {
    const auto colon = bridge_listen.rfind(':');
    unsigned long port = 0;
    std::size_t digits = 0;
    try {
      port = std::stoul(bridge_listen.substr(colon + 1), &digits);
    } catch (const std::exception&) {
      digits = 0;
    }
    if (colon == std::string::npos || colon == 0 || digits == 0 || digits != bridge_listen.size() - colon - 1 ||
        port > 65535) {
      throw std::runtime_error("--bridge-listen: HOST:PORT (e.g. 127.0.0.1:9324), unix:PATH or off");
    }
    config.bridge_host = bridge_listen.substr(0, colon);
    if (config.bridge_host.size() > 2 && config.bridge_host.front() == '[' && config.bridge_host.back() == ']') {
      config.bridge_host = config.bridge_host.substr(1, config.bridge_host.size() - 2);  // [::1]:9324
    }
    config.bridge_port = static_cast<unsigned short>(port);
  }
  if (config.bridge_threads < 1 || config.bridge_threads > 64) throw std::runtime_error("--bridge-threads: 1 to 64");
  if (config.stop_drain_s < 0 || config.stop_drain_s > 300) throw std::runtime_error("--stop-drain: 0 to 300 seconds");
  if (config.bridge_idle_timeout_s < 1 || config.bridge_idle_timeout_s > 3600) {
    throw std::runtime_error("--bridge-idle-timeout: 1 to 3600 seconds");
  }
  if (config.control_max_connections < 1 || config.control_max_connections > 1'000'000 ||
      config.control_max_connections_per_uid < 1 || config.control_max_connections_per_uid > 1'000'000) {
    throw std::runtime_error("--control-max-connections and --control-max-connections-per-uid: 1 to 1000000");
  }
  for (const std::string& pair : auth_pairs) {
    const auto colon = pair.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == pair.size()) {
      throw std::runtime_error("--auth: ACCESS_KEY:SECRET_KEY");
    }
    config.auth[pair.substr(0, colon)] = pair.substr(colon + 1);
  }
  if (config.account_id.size() != 12 || config.account_id.find_first_not_of("0123456789") != std::string::npos) {
    throw std::runtime_error("--account-id: 12 digits");
  }
  return config;
}

}  // namespace shmq::daemon
