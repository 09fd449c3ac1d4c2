// The control socket of a namespace: accepts clients (checking their
// credentials with SO_PEERCRED), answers their requests, and notices through
// the kernel when a client dies: its last connection closes, or, for clients
// left over from before a daemon restart, its pidfd becomes readable.
#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon_config.hpp"
#include "message_move_tasks.hpp"
#include "queue_registry.hpp"

namespace shmq::daemon {

class ControlServer {
 public:
  // Binds the namespace's abstract socket. Throws std::runtime_error if
  // another daemon serves this namespace. Message move tasks started through
  // it run until it is destroyed (which cancels and joins them).
  ControlServer(const DaemonConfig& config, QueueRegistry& registry);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Watches `pid` until it exits, then reclaims what it reserved.
  void watch_process(pid_t pid);

  // Serves until `stop_fd` becomes readable (a signalfd).
  void run(int stop_fd);

  // After run(): refuses new connections and ends the open ones, so that a
  // client in this process waiting for an answer (the bridge) gets an error
  // instead of waiting forever.
  void close_connections() noexcept;

  // Answers one request from a peer with these credentials (public for tests).
  nlohmann::json handle(const nlohmann::json& request);

 private:
  struct Peer {
    pid_t pid;
    uid_t uid;
  };
  void accept_client();
  void serve(int fd);
  void refuse(int fd);
  void disconnect(int fd);
  bool allowed(uid_t uid, gid_t gid) const;

  const DaemonConfig& config_;
  QueueRegistry& registry_;
  MessageMoveTasks move_tasks_{registry_};
  int listen_fd_ = -1;
  std::map<int, Peer> clients_;       // fd -> peer
  std::map<pid_t, int> connections_;  // pid -> open connections
  std::map<int, pid_t> pidfds_;       // pidfd -> pid
  std::map<int, uid_t> refused_;      // fd -> uid, until its first request is answered
  std::vector<char> buffer_;          // requests
};

}  // namespace shmq::daemon
