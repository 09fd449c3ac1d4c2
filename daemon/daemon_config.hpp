// shmqd's configuration: command-line flags, optionally a config file.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shmq::daemon {

// A queue the config file declares ([queue.NAME] sections): created at
// start-up, or checked if it exists (see docs/declared-queues.md).
struct DeclaredQueue {
  std::string name;
  std::map<std::string, std::string> attributes;  // SQS attribute names, as CreateQueue takes them
  std::map<std::string, std::string> tags;
  std::string dead_letter_queue;  // a queue name; with max_receive_count, the RedrivePolicy
  std::uint32_t max_receive_count = 0;
};

struct DaemonConfig {
  std::string ns = "default";                        // --namespace
  std::string log_level = "info";                    // --log-level
  std::string log_format = "text";                   // --log-format: text or json (one object a line)
  bool access_log = false;                           // --access-log: a line for each bridge request
  bool no_dashboard = false;                         // --no-dashboard: the bridge serves no /ui
  std::uint32_t max_messages = 1u << 24;             // --max-messages: default slots per queue (address space)
  std::uint64_t arena_bytes = 4096ull << 20;         // --arena-mib: default payload space per queue (address space)
  std::uint64_t queue_memory_bytes = 4096ull << 20;  // --queue-memory-mib: memory one queue may back; 0: no limit
  mode_t shm_mode = 0600;                            // --shm-mode: permissions of queue segments
  std::optional<gid_t> allow_gid;                    // --allow-gid: a group whose members may connect
  std::string region = "us-east-1";                  // --region: in queue ARNs
  std::string account_id = "000000000000";           // --account-id: in queue ARNs and URLs

  // The control socket: connections open at once, all users together and per user.
  std::size_t control_max_connections = 4096;          // --control-max-connections
  std::size_t control_max_connections_per_uid = 1024;  // --control-max-connections-per-uid

  // The SQS HTTP bridge.
  bool bridge = true;                           // --bridge-listen off: no bridge
  std::string bridge_host = "127.0.0.1";        // --bridge-listen HOST:PORT (a name is resolved)
  unsigned short bridge_port = 9324;            //   (port 0: any free port)
  std::string bridge_unix_path;                 // --bridge-listen unix:PATH: a Unix socket instead
  mode_t bridge_socket_mode = 0600;             // --bridge-socket-mode: who may connect to it
  std::size_t bridge_max_connections = 4096;    // --bridge-max-connections: more are answered 503
  std::size_t bridge_max_buffered_mib = 256;    // --bridge-max-buffered-mib: request bodies and answers held
  int bridge_threads = 2;                       // --bridge-threads
  int stop_drain_s = 0;                         // --stop-drain: seconds of "stopping" health before a stop
  int bridge_idle_timeout_s = 60;               // --bridge-idle-timeout: silent connections are closed after it
  std::string advertise_url;                    // --advertise-url: base of queue URLs
  std::string bridge_port_file;                 // --bridge-port-file: where to write the port bound
  std::map<std::string, std::string> auth;      // --auth KEY:SECRET: verify SigV4 with these
  std::vector<std::string> cors_allow_origins;  // --cors-allow-origin: web origins served ("*": any)
  std::vector<std::string> allow_hosts;         // --allow-host: more Host names a loopback bridge takes
  std::vector<DeclaredQueue> queues;            // [queue.NAME] sections of the config file, in file order
};

// Parses argv (and --config FILE). Returns nullopt after printing --help or
// --version. Throws std::runtime_error with a message naming the bad option.
std::optional<DaemonConfig> parse_command_line(int argc, const char* const argv[]);

}  // namespace shmq::daemon
