// shmqd's configuration: command-line flags, optionally a config file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace shmq::daemon {

struct DaemonConfig {
  std::string ns = "default";                // --namespace
  std::string log_level = "info";            // --log-level
  std::uint32_t max_messages = 131072;       // --max-messages: default slots per queue
  std::uint64_t arena_bytes = 256ull << 20;  // --arena-mib: default payload space per queue
  mode_t shm_mode = 0600;                    // --shm-mode: permissions of queue segments
  std::optional<gid_t> allow_gid;            // --allow-gid: a group whose members may connect
  std::string region = "us-east-1";          // --region: in queue ARNs
  std::string account_id = "000000000000";   // --account-id: in queue ARNs and URLs
};

// Parses argv (and --config FILE). Returns nullopt after printing --help or
// --version. Throws std::runtime_error with a message naming the bad option.
std::optional<DaemonConfig> parse_command_line(int argc, const char* const argv[]);

}  // namespace shmq::daemon
