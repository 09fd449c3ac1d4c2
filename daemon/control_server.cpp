#include "control_server.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "control_protocol.hpp"
#include "shmq/error.hpp"

namespace shmq::daemon {

using nlohmann::json;

namespace {

json error_reply(const std::error_code& ec, const std::string& detail) {
  std::string name = errc_name(ec);
  if (name.empty()) name = "internal";
  return {{"ok", false}, {"error", name}, {"message", detail}};
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

ControlServer::ControlServer(const DaemonConfig& config, QueueRegistry& registry)
    : config_(config), registry_(registry) {
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  socklen_t length = 0;
  const sockaddr_un addr = detail::control_address(config.ns, length);
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    if (err == EADDRINUSE) throw std::runtime_error("another shmqd serves namespace '" + config.ns + "'");
    throw std::runtime_error(std::string("bind: ") + std::strerror(err));
  }
  if (::listen(listen_fd_, 128) != 0) throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
}

ControlServer::~ControlServer() {
  for (auto& [fd, peer] : clients_) ::close(fd);
  for (auto& [fd, pid] : pidfds_) ::close(fd);
  for (auto& [fd, uid] : refused_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool ControlServer::allowed(uid_t uid, gid_t gid) const {
  return uid == 0 || uid == ::geteuid() || (config_.allow_gid && gid == *config_.allow_gid);
}

void ControlServer::watch_process(pid_t pid) {
  const int fd = pidfd_open(pid);
  if (fd < 0) {
    if (errno == ESRCH) registry_.reclaim(pid);  // gone already
    return;
  }
  pidfds_[fd] = pid;
}

void ControlServer::accept_client() {
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || !allowed(cred.uid, cred.gid)) {
    // Answer the first request with the reason, then close: closing now, with
    // the client's hello unread, would reset the connection and lose the reply.
    spdlog::warn("refused control connection from uid {} pid {}", cred.uid, cred.pid);
    refused_[fd] = cred.uid;
    return;
  }
  const int sndbuf = static_cast<int>(detail::kMaxControlPacket) * 2;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  clients_[fd] = Peer{cred.pid, cred.uid};
  ++connections_[cred.pid];
  spdlog::debug("client pid {} uid {} connected", cred.pid, cred.uid);
}

void ControlServer::disconnect(int fd) {
  const Peer peer = clients_.at(fd);
  clients_.erase(fd);
  ::close(fd);
  if (--connections_[peer.pid] == 0) {
    connections_.erase(peer.pid);
    // The kernel closed the process's last connection: it exited or died.
    // Anything it reserved and did not commit will never be committed.
    registry_.reclaim(peer.pid);
    spdlog::debug("client pid {} gone", peer.pid);
  }
}

void ControlServer::refuse(int fd) {
  char request[64];
  (void)::recv(fd, request, sizeof(request), MSG_DONTWAIT);
  const std::string reply =
      error_reply(Errc::permission_denied, "uid " + std::to_string(refused_.at(fd)) + " may not use this daemon")
          .dump();
  ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  ::close(fd);
  refused_.erase(fd);
}

void ControlServer::serve(int fd) {
  buffer_.resize(detail::kMaxControlPacket);
  std::vector<char>& buffer = buffer_;
  const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    disconnect(fd);
    return;
  }
  if (n < 0) return;
  const json request = json::parse(buffer.data(), buffer.data() + n, nullptr, false);
  json reply;
  if (request.is_discarded() || !request.is_object()) {
    reply = error_reply(Errc::invalid_parameter_value, "request is not a JSON object");
  } else {
    reply = handle(request);
  }
  const std::string text = reply.dump();
  if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) < 0) disconnect(fd);
}

json ControlServer::handle(const json& request) {
  try {
    const std::string op = request.value("op", "");
    if (op == "hello") return {{"ok", true}, {"namespace", config_.ns}};
    if (op == "list_queues") return {{"ok", true}, {"queues", registry_.names(request.value("prefix", ""))}};

    const std::string name = request.value("name", "");
    if (op == "create_queue") {
      std::optional<QueueCapacity> capacity;
      if (request.contains("max_messages")) {
        capacity = QueueCapacity{request.at("max_messages").get<std::uint32_t>(),
                                 request.at("arena_bytes").get<std::uint64_t>()};
      }
      const auto q =
          registry_.create(name, request.value("attributes", Attributes{}), capacity, request.value("tags", Tags{}));
      return {{"ok", true}, {"shm_name", q->shm_name()}};
    }
    if (op == "start_message_move_task") {
      std::optional<std::uint32_t> rate;
      if (request.contains("max_per_second")) rate = request.at("max_per_second").get<std::uint32_t>();
      const std::string handle =
          move_tasks_.start(request.at("source_arn").get<std::string>(), request.value("destination_arn", ""), rate);
      return {{"ok", true}, {"task_handle", handle}};
    }
    if (op == "cancel_message_move_task") {
      return {{"ok", true}, {"moved", move_tasks_.cancel(request.at("task_handle").get<std::string>())}};
    }
    if (op == "list_message_move_tasks") {
      json tasks = json::array();
      for (const MoveTaskInfo& t : move_tasks_.list(request.at("source_arn").get<std::string>(),
                                                    request.value("max_results", std::uint32_t{1}))) {
        json task{{"status", t.status},
                  {"source_arn", t.source_arn},
                  {"moved", t.moved},
                  {"to_move", t.to_move},
                  {"started_ms", t.started_ms}};
        if (!t.task_handle.empty()) task["task_handle"] = t.task_handle;
        if (!t.destination_arn.empty()) task["destination_arn"] = t.destination_arn;
        if (t.max_per_second) task["max_per_second"] = *t.max_per_second;
        if (!t.failure_reason.empty()) task["failure_reason"] = t.failure_reason;
        tasks.push_back(std::move(task));
      }
      return {{"ok", true}, {"tasks", tasks}};
    }
    if (op == "delete_queue") {
      registry_.remove(name);
      return {{"ok", true}};
    }
    const std::shared_ptr<ManagedQueue> queue = registry_.get(name);
    ManagedQueue& q = *queue;
    if (op == "open_queue") return {{"ok", true}, {"shm_name", q.shm_name()}};
    if (op == "get_queue_attributes") {
      const auto names = request.value("names", std::vector<std::string>{"All"});
      return {{"ok", true}, {"attributes", registry_.attributes(name, names)}};
    }
    if (op == "set_queue_attributes") {
      registry_.set_attributes(name, request.value("attributes", Attributes{}));
      return {{"ok", true}};
    }
    if (op == "tag_queue") {
      registry_.tag(name, request.value("tags", Tags{}));
      return {{"ok", true}};
    }
    if (op == "untag_queue") {
      registry_.untag(name, request.value("keys", std::vector<std::string>{}));
      return {{"ok", true}};
    }
    if (op == "list_queue_tags") return {{"ok", true}, {"tags", registry_.tags(name)}};
    if (op == "add_permission") {
      registry_.add_permission(name, request.value("label", ""),
                               request.value("account_ids", std::vector<std::string>{}),
                               request.value("actions", std::vector<std::string>{}));
      return {{"ok", true}};
    }
    if (op == "remove_permission") {
      registry_.remove_permission(name, request.value("label", ""));
      return {{"ok", true}};
    }
    if (op == "list_dead_letter_source_queues") {
      return {{"ok", true}, {"queues", registry_.dead_letter_sources(name)}};
    }
    if (op == "purge_queue") {
      const std::uint32_t purged = q.core().purge();
      spdlog::info("purged queue {}: {} messages", name, purged);
      return {{"ok", true}, {"purged", purged}};
    }
    if (op == "stats") {
      const detail::SegmentHeader& h = q.header();
      const detail::QueueCore::Stats stats = q.core().stats();
      const detail::Counts& c = stats.counts;
      return {{"ok", true},
              {"stats",
               {{"name", name},
                {"shm_name", q.shm_name()},
                {"segment_bytes", h.segment_bytes},
                {"max_messages", h.capacity},
                {"slots_ever_used", stats.slots_ever_used},
                {"arena_bytes", h.arena_bytes},
                {"arena_free_bytes", stats.arena_free_bytes},
                {"visible", c.visible},
                {"in_flight", c.in_flight},
                {"delayed", c.delayed},
                {"writing", c.writing},
                {"sent_total", c.sent_total},
                {"received_total", c.received_total},
                {"deleted_total", c.deleted_total},
                {"recoveries", c.recoveries},
                {"sleeping_receivers", q.core().sleeping_receivers()}}}};
    }
    return error_reply(Errc::invalid_parameter_value, "unknown op '" + op + "'");
  } catch (const std::system_error& e) {
    // what() is "<detail>: <code message>"; the client adds the code message again.
    std::string what = e.what();
    const std::string suffix = ": " + e.code().message();
    if (what.ends_with(suffix)) what.resize(what.size() - suffix.size());
    return error_reply(e.code(), what == e.code().message() ? std::string{} : what);
  } catch (const json::exception& e) {
    return error_reply(Errc::invalid_parameter_value, e.what());
  }
}

void ControlServer::close_connections() noexcept {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  for (auto& [fd, peer] : clients_) ::shutdown(fd, SHUT_RDWR);
}

void ControlServer::run(int stop_fd) {
  spdlog::info("control socket for namespace '{}' ready", config_.ns);
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({stop_fd, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& [fd, peer] : clients_) fds.push_back({fd, POLLIN, 0});
    for (auto& [fd, pid] : pidfds_) fds.push_back({fd, POLLIN, 0});
    for (auto& [fd, uid] : refused_) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) accept_client();
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      const int fd = fds[i].fd;
      if (auto it = pidfds_.find(fd); it != pidfds_.end()) {
        const pid_t pid = it->second;
        ::close(fd);
        pidfds_.erase(it);
        if (!connections_.count(pid)) registry_.reclaim(pid);
      } else if (clients_.count(fd)) {
        serve(fd);
      } else if (refused_.count(fd)) {
        refuse(fd);
      }
    }
  }
}

}  // namespace shmq::daemon
