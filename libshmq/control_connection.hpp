// A client's connection to its namespace's shmqd. It tells the daemon which
// processes to watch: once the kernel says such a process exited (its
// pidfd), the daemon reclaims the slots it had reserved but not committed.
// Closing and reopening a connection is safe; the process is alive.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace shmq::detail {

class ControlConnection {
 public:
  // Connects and says hello. Throws std::system_error(daemon_unavailable).
  explicit ControlConnection(std::string ns);
  ~ControlConnection();
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  // Sends a request and waits for the reply. Reconnects once if the daemon
  // restarted. Throws std::system_error with the daemon's error code,
  // daemon_unavailable, or invalid_parameter_value for a request above
  // kMaxControlRequest (without reconnecting).
  nlohmann::json call(const nlohmann::json& request);

  // Replaces the connection with a new one, if the daemon answers; otherwise
  // leaves it closed for call() to retry. Does not throw.
  void reconnect() noexcept;

  const std::string& ns() const noexcept { return ns_; }

 private:
  void connect();
  bool exchange(const std::string& request, std::string& reply);

  std::string ns_;
  int fd_ = -1;
  std::vector<char> buffer_;  // replies; guarded by mutex_
  std::mutex mutex_;
};

}  // namespace shmq::detail
