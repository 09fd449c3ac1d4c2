// The control socket of a namespace: accepts clients (checking their
// credentials with SO_PEERCRED), answers their requests, and notices through
// the kernel when a client dies. One thread polls everything; no socket call
// blocks it (see docs/control-socket.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemon_config.hpp"
#include "message_move_tasks.hpp"
#include "queue_registry.hpp"

namespace shmq::daemon {

class ControlServer {
 public:
  // Replies waiting for a client to read them, per connection: a client that
  // lets more pile up is not reading and is disconnected.
  static constexpr std::size_t kMaxPendingOutput = 4u << 20;
  // The same for all connections together: many connections of a user that
  // do not read hold no more memory than this.
  static constexpr std::size_t kMaxPendingOutputTotal = 64u << 20;

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

  // Answers one request packet, as received from a client: the reply's text.
  // Never throws for any input; a packet that is not a JSON object gets an
  // invalid_parameter_value reply.
  std::string answer(std::string_view packet);

  // Answers one decoded request (public for tests).
  nlohmann::json handle(const nlohmann::json& request);

 private:
  // One decoded request as its handler sees it.
  struct Request {
    const nlohmann::json& body;
    std::shared_ptr<ManagedQueue> queue;  // the queue it names, for ops on an existing queue
    // The queue it names ("name"), "" if none. Read only by the ops that use
    // it: a "name" that is not a string fails those alone.
    std::string name() const { return body.value("name", ""); }
  };
  struct Op {
    std::string_view name;
    nlohmann::json (ControlServer::*handler)(const Request& request);
    bool on_queue;  // the queue must exist: looked up before the handler runs
  };
  static const Op kOps[];
  nlohmann::json hello(const Request& r);
  nlohmann::json health(const Request& r);
  nlohmann::json list_queues(const Request& r);
  nlohmann::json create_queue(const Request& r);
  nlohmann::json start_message_move_task(const Request& r);
  nlohmann::json cancel_message_move_task(const Request& r);
  nlohmann::json list_message_move_tasks(const Request& r);
  nlohmann::json delete_queue(const Request& r);
  nlohmann::json open_queue(const Request& r);
  nlohmann::json get_queue_attributes(const Request& r);
  nlohmann::json set_queue_attributes(const Request& r);
  nlohmann::json tag_queue(const Request& r);
  nlohmann::json untag_queue(const Request& r);
  nlohmann::json list_queue_tags(const Request& r);
  nlohmann::json add_permission(const Request& r);
  nlohmann::json remove_permission(const Request& r);
  nlohmann::json list_dead_letter_source_queues(const Request& r);
  nlohmann::json purge_queue(const Request& r);
  nlohmann::json stats(const Request& r);

  struct Connection {
    pid_t pid;
    uid_t uid;
    std::deque<std::string> output;  // replies the socket did not take yet
    std::size_t output_bytes = 0;
  };
  void accept_clients();
  void turn_away(int fd, const std::error_code& ec, const std::string& why);
  void serve(int fd);
  void reply(int fd, std::string text);
  void flush(int fd);
  void disconnect(int fd);
  void last_connection_closed(pid_t pid);
  void process_exited(pid_t pid);
  void check_unwatched();
  bool watch(pid_t pid);
  bool allowed(uid_t uid, gid_t gid) const;

  const DaemonConfig& config_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool stopping_ = false;  // a stop signal came, and --stop-drain holds the stop back
  QueueRegistry& registry_;
  MessageMoveTasks move_tasks_{registry_};
  const pid_t self_;
  int listen_fd_ = -1;
  // Accepting resumes at this time after the process ran out of descriptors.
  std::chrono::steady_clock::time_point accept_paused_until_{};
  std::map<int, Connection> clients_;    // fd -> connection
  std::map<pid_t, int> connections_;     // pid -> open connections
  std::map<uid_t, int> connections_of_;  // uid -> open connections
  std::map<int, pid_t> pidfds_;          // pidfd -> pid it watches
  std::map<pid_t, int> watched_;         // pid -> its pidfd
  std::set<pid_t> unwatched_;            // no pidfd could be had: checked with kill(pid, 0)
  std::size_t pending_output_ = 0;       // output_bytes of all connections
  std::vector<char> buffer_;             // requests
};

}  // namespace shmq::daemon
