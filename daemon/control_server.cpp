#include "control_server.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "control_protocol.hpp"
#include "shmq/error.hpp"
#include "shmq/version.hpp"

namespace shmq::daemon {

using nlohmann::json;

namespace {

json error_reply(const std::error_code& ec, const std::string& detail) {
  std::string name = errc_name(ec);
  if (name.empty()) name = "internal";
  return {{"ok", false}, {"error", name}, {"message", detail}};
}

// Requests carry any bytes a client sent, and replies echo some of them
// (an unknown op's name): invalid UTF-8 is replaced, never a throw.
std::string to_text(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// A pidfd polls readable once its process has exited.
bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// How long accepting pauses when the process is out of descriptors: the
// pending connection stays in the backlog and the listen socket stays
// readable, so polling it again at once would spin.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// Connections accepted per wake-up, so that a connection storm cannot starve
// the clients already connected.
constexpr int kAcceptsPerWake = 64;
// Any socket carries a reply this small (an error reply).
constexpr std::size_t kSmallReply = 4096;
// How often processes without a pidfd are checked with kill(pid, 0).
constexpr int kUnwatchedCheckMs = 1000;

// A warning whose rate an outsider decides (connections turned away, running
// out of descriptors): the log gets the first, then a count at most every 10 s.
class ThrottledWarning {
 public:
  explicit ThrottledWarning(const char* what) : what_(what) {}
  void note(const std::string& detail) {
    const auto now = std::chrono::steady_clock::now();
    if (last_ != std::chrono::steady_clock::time_point{} && now - last_ < std::chrono::seconds(10)) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0) spdlog::warn("{}: {} more times", what_, suppressed_);
    spdlog::warn("{}: {}", what_, detail);
    suppressed_ = 0;
    last_ = now;
  }

 private:
  const char* what_;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t suppressed_ = 0;
};
ThrottledWarning turned_away("control connection turned away");
ThrottledWarning cannot_accept("control socket cannot accept");

}  // namespace

ControlServer::ControlServer(const DaemonConfig& config, QueueRegistry& registry)
    : config_(config), registry_(registry), self_(::getpid()) {
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
  for (auto& [fd, connection] : clients_) ::close(fd);
  for (auto& [fd, pid] : pidfds_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool ControlServer::allowed(uid_t uid, gid_t gid) const {
  return uid == 0 || uid == ::geteuid() || (config_.allow_gid && gid == *config_.allow_gid);
}

// Returns false if `pid` is gone already. This process is never watched: the
// bridge is a client inside it, and its sends are alive while it runs.
bool ControlServer::watch(pid_t pid) {
  if (pid == self_ || watched_.count(pid) || unwatched_.count(pid)) return true;
  const int fd = pidfd_open(pid);
  if (fd >= 0) {
    pidfds_[fd] = pid;
    watched_[pid] = fd;
    return true;
  }
  if (errno == ESRCH) return false;
  // Out of descriptors (or no pidfd in this kernel): ask kill(pid, 0) instead.
  unwatched_.insert(pid);
  return true;
}

void ControlServer::watch_process(pid_t pid) {
  if (!watch(pid)) registry_.reclaim(pid);  // gone already
}

void ControlServer::process_exited(pid_t pid) {
  if (const auto it = watched_.find(pid); it != watched_.end()) {
    ::close(it->second);
    pidfds_.erase(it->second);
    watched_.erase(it);
  }
  unwatched_.erase(pid);
  // A process with that pid still connected is another one (the pid was
  // reused): its last close checks again.
  if (connections_.count(pid)) return;
  // The kernel says it exited: anything it reserved and did not commit will
  // never be committed.
  registry_.reclaim(pid);
  spdlog::debug("client pid {} gone", pid);
}

// A process can close its connection and open another (a client library
// reconnecting after an error) without dying: only the kernel's word that it
// exited counts.
void ControlServer::last_connection_closed(pid_t pid) {
  if (pid == self_) return;
  if (!watch(pid)) {
    process_exited(pid);
  } else if (const auto it = watched_.find(pid); it != watched_.end()) {
    if (readable_now(it->second)) process_exited(pid);
  } else if (unwatched_.count(pid) && process_gone(pid)) {
    process_exited(pid);
  }
}

void ControlServer::check_unwatched() {
  std::vector<pid_t> gone;
  for (const pid_t pid : unwatched_) {
    if (process_gone(pid)) gone.push_back(pid);
  }
  for (const pid_t pid : gone) process_exited(pid);
}

void ControlServer::accept_clients() {
  for (int i = 0; i < kAcceptsPerWake; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        cannot_accept.note(std::string(std::strerror(errno)) + "; accepting again in " +
                           std::to_string(kAcceptBackoff.count()) + " ms");
        accept_paused_until_ = std::chrono::steady_clock::now() + kAcceptBackoff;
      }
      return;  // EAGAIN: none left; anything else concerns that one connection
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || !allowed(cred.uid, cred.gid)) {
      turn_away(fd, Errc::permission_denied, "uid " + std::to_string(cred.uid) + " may not use this daemon");
      continue;
    }
    if (clients_.size() >= config_.control_max_connections) {
      turn_away(fd, Errc::over_limit,
                "shmqd has " + std::to_string(clients_.size()) +
                    " control connections open, its limit (--control-max-connections)");
      continue;
    }
    const auto of_uid = connections_of_.find(cred.uid);
    if (of_uid != connections_of_.end() &&
        static_cast<std::size_t>(of_uid->second) >= config_.control_max_connections_per_uid) {
      turn_away(fd, Errc::over_limit,
                "uid " + std::to_string(cred.uid) + " has " + std::to_string(of_uid->second) +
                    " control connections open, its limit (--control-max-connections-per-uid)");
      continue;
    }
    // Replies up to kMaxControlPacket in one packet: a SOCK_SEQPACKET packet
    // must fit the sender's buffer. FORCE works for root; others get what
    // net.core.wmem_max allows, and a reply above it an error (see reply()).
    const int sndbuf = static_cast<int>(detail::kMaxControlPacket) * 2;
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    clients_[fd] = Connection{cred.pid, cred.uid, {}, 0};
    ++connections_[cred.pid];
    ++connections_of_[cred.uid];
    (void)watch(cred.pid);  // if it is gone already, its last close says so
    spdlog::debug("client pid {} uid {} connected", cred.pid, cred.uid);
  }
}

// Answers at once and closes: a connection the daemon will not serve holds
// no descriptor. The client's hello, if it came already, is read first:
// closing a socket with unread packets resets the peer, whose next read then
// fails before it reaches the reply (a client that sends its hello after the
// close reads the reply when its send fails).
void ControlServer::turn_away(int fd, const std::error_code& ec, const std::string& why) {
  turned_away.note(why);
  char request[64];
  for (int i = 0; i < 4 && ::recv(fd, request, sizeof(request), MSG_DONTWAIT) > 0; ++i) {
  }
  const std::string text = to_text(error_reply(ec, why));
  (void)::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::close(fd);
}

void ControlServer::disconnect(int fd) {
  const auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  const pid_t pid = it->second.pid;
  const uid_t uid = it->second.uid;
  pending_output_ -= it->second.output_bytes;
  clients_.erase(it);
  ::close(fd);
  if (--connections_of_[uid] == 0) connections_of_.erase(uid);
  if (--connections_[pid] == 0) {
    connections_.erase(pid);
    last_connection_closed(pid);
  }
}

void ControlServer::serve(int fd) {
  buffer_.resize(detail::kMaxControlPacket);
  // MSG_TRUNC: the packet's real length, so that a larger one is refused
  // rather than parsed cut short.
  const ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), MSG_DONTWAIT | MSG_TRUNC);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    disconnect(fd);
    return;
  }
  if (n < 0) return;
  if (static_cast<std::size_t>(n) > buffer_.size()) {
    reply(fd, to_text(error_reply(Errc::invalid_parameter_value,
                                  "request too large (" + std::to_string(n) + " bytes; at most " +
                                      std::to_string(detail::kMaxControlRequest) + ")")));
    return;
  }
  reply(fd, answer(std::string_view(buffer_.data(), static_cast<std::size_t>(n))));
}

void ControlServer::reply(int fd, std::string text) {
  if (text.size() > detail::kMaxControlPacket) {
    text = to_text(error_reply(Errc::over_limit, "the reply (" + std::to_string(text.size()) + " bytes) is above " +
                                                     std::to_string(detail::kMaxControlPacket) + " bytes"));
  }
  Connection& c = clients_.at(fd);
  if (c.output.empty()) {
    const ssize_t sent = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return;
    if (errno == EMSGSIZE && text.size() > kSmallReply) {
      // Larger than this socket carries (net.core.wmem_max): say so, rather
      // than drop the connection and leave the client guessing.
      text = to_text(error_reply(Errc::over_limit, "the reply (" + std::to_string(text.size()) +
                                                       " bytes) is larger than the control socket carries"));
      reply(fd, std::move(text));
      return;
    }
    if (errno != EAGAIN && errno != EINTR) {
      disconnect(fd);
      return;
    }
  }
  if (c.output_bytes + text.size() > kMaxPendingOutput || pending_output_ + text.size() > kMaxPendingOutputTotal) {
    spdlog::warn("client pid {} does not read its replies ({} bytes waiting, {} for all clients): disconnected", c.pid,
                 c.output_bytes, pending_output_);
    disconnect(fd);
    return;
  }
  c.output_bytes += text.size();
  pending_output_ += text.size();
  c.output.push_back(std::move(text));
}

void ControlServer::flush(int fd) {
  Connection& c = clients_.at(fd);
  while (!c.output.empty()) {
    const std::string& text = c.output.front();
    const ssize_t sent = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == EMSGSIZE && text.size() > kSmallReply) {
        c.output_bytes -= text.size();
        pending_output_ -= text.size();
        c.output.front() =
            to_text(error_reply(Errc::over_limit, "the reply is larger than the control socket carries"));
        c.output_bytes += c.output.front().size();
        pending_output_ += c.output.front().size();
        continue;
      }
      disconnect(fd);
      return;
    }
    c.output_bytes -= text.size();
    pending_output_ -= text.size();
    c.output.pop_front();
  }
}

std::string ControlServer::answer(std::string_view packet) {
  try {
    const json request = json::parse(packet.begin(), packet.end(), nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
      return to_text(error_reply(Errc::invalid_parameter_value, "request is not a JSON object"));
    }
    return to_text(handle(request));
  } catch (const std::exception& e) {
    // handle() maps the errors it expects; anything else is a bug, and one
    // request's bug must not end the daemon.
    spdlog::error("control request failed: {}", e.what());
    return to_text(error_reply(Errc::internal, e.what()));
  }
}

// The control operations: name, handler, and whether the op is on an
// existing queue (then the request's "name" is looked up first, and a
// missing queue is queue_does_not_exist before anything else is read).
const ControlServer::Op ControlServer::kOps[] = {
    {"hello", &ControlServer::hello, false},
    {"health", &ControlServer::health, false},
    {"list_queues", &ControlServer::list_queues, false},
    {"create_queue", &ControlServer::create_queue, false},
    {"start_message_move_task", &ControlServer::start_message_move_task, false},
    {"cancel_message_move_task", &ControlServer::cancel_message_move_task, false},
    {"list_message_move_tasks", &ControlServer::list_message_move_tasks, false},
    {"delete_queue", &ControlServer::delete_queue, false},
    {"open_queue", &ControlServer::open_queue, true},
    {"get_queue_attributes", &ControlServer::get_queue_attributes, true},
    {"set_queue_attributes", &ControlServer::set_queue_attributes, true},
    {"tag_queue", &ControlServer::tag_queue, true},
    {"untag_queue", &ControlServer::untag_queue, true},
    {"list_queue_tags", &ControlServer::list_queue_tags, true},
    {"add_permission", &ControlServer::add_permission, true},
    {"remove_permission", &ControlServer::remove_permission, true},
    {"list_dead_letter_source_queues", &ControlServer::list_dead_letter_source_queues, true},
    {"purge_queue", &ControlServer::purge_queue, true},
    {"stats", &ControlServer::stats, true},
};

json ControlServer::handle(const json& request) {
  try {
    const std::string op = request.value("op", "");
    const auto row = std::find_if(std::begin(kOps), std::end(kOps), [&](const Op& o) { return o.name == op; });
    if (row == std::end(kOps)) return error_reply(Errc::invalid_parameter_value, "unknown op '" + op + "'");
    Request r{request, nullptr};
    if (row->on_queue) r.queue = registry_.get(r.name());
    return (this->*row->handler)(r);
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

json ControlServer::hello(const Request&) { return {{"ok", true}, {"namespace", config_.ns}}; }

// Answered only once the queues are attached and their reapers run (the
// control loop starts after both); a stopping daemon answers nothing.
json ControlServer::health(const Request&) {
  const QueueRegistry::Health h = registry_.health();
  const auto uptime = std::chrono::steady_clock::now() - started_;
  return {{"ok", true},
          {"status", stopping_ ? "stopping" : "serving"},
          {"version", std::string(kVersion)},
          {"namespace", config_.ns},
          {"pid", ::getpid()},
          {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(uptime).count()},
          {"queues", h.queues},
          {"refused_queues", h.refused},
          {"reaper_threads", h.reaper_threads}};
}

json ControlServer::list_queues(const Request& r) {
  return {{"ok", true}, {"queues", registry_.names(r.body.value("prefix", ""))}};
}

json ControlServer::create_queue(const Request& r) {
  std::optional<QueueCapacity> capacity;
  if (r.body.contains("max_messages")) {
    capacity =
        QueueCapacity{r.body.at("max_messages").get<std::uint32_t>(), r.body.at("arena_bytes").get<std::uint64_t>(),
                      r.body.value("memory_bytes", std::uint64_t{0})};
  }
  const auto q =
      registry_.create(r.name(), r.body.value("attributes", Attributes{}), capacity, r.body.value("tags", Tags{}));
  return {{"ok", true}, {"shm_name", q->shm_name()}};
}

json ControlServer::start_message_move_task(const Request& r) {
  std::optional<std::uint32_t> rate;
  if (r.body.contains("max_per_second")) rate = r.body.at("max_per_second").get<std::uint32_t>();
  const std::string handle =
      move_tasks_.start(r.body.at("source_arn").get<std::string>(), r.body.value("destination_arn", ""), rate);
  return {{"ok", true}, {"task_handle", handle}};
}

json ControlServer::cancel_message_move_task(const Request& r) {
  return {{"ok", true}, {"moved", move_tasks_.cancel(r.body.at("task_handle").get<std::string>())}};
}

json ControlServer::list_message_move_tasks(const Request& r) {
  json tasks = json::array();
  for (const MoveTaskInfo& t :
       move_tasks_.list(r.body.at("source_arn").get<std::string>(), r.body.value("max_results", std::uint32_t{1}))) {
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

json ControlServer::delete_queue(const Request& r) {
  registry_.remove(r.name());
  return {{"ok", true}};
}

json ControlServer::open_queue(const Request& r) { return {{"ok", true}, {"shm_name", r.queue->shm_name()}}; }

json ControlServer::get_queue_attributes(const Request& r) {
  const auto names = r.body.value("names", std::vector<std::string>{"All"});
  return {{"ok", true}, {"attributes", registry_.attributes(r.name(), names)}};
}

json ControlServer::set_queue_attributes(const Request& r) {
  registry_.set_attributes(r.name(), r.body.value("attributes", Attributes{}));
  return {{"ok", true}};
}

json ControlServer::tag_queue(const Request& r) {
  registry_.tag(r.name(), r.body.value("tags", Tags{}));
  return {{"ok", true}};
}

json ControlServer::untag_queue(const Request& r) {
  registry_.untag(r.name(), r.body.value("keys", std::vector<std::string>{}));
  return {{"ok", true}};
}

json ControlServer::list_queue_tags(const Request& r) { return {{"ok", true}, {"tags", registry_.tags(r.name())}}; }

json ControlServer::add_permission(const Request& r) {
  registry_.add_permission(r.name(), r.body.value("label", ""), r.body.value("account_ids", std::vector<std::string>{}),
                           r.body.value("actions", std::vector<std::string>{}));
  return {{"ok", true}};
}

json ControlServer::remove_permission(const Request& r) {
  registry_.remove_permission(r.name(), r.body.value("label", ""));
  return {{"ok", true}};
}

json ControlServer::list_dead_letter_source_queues(const Request& r) {
  return {{"ok", true}, {"queues", registry_.dead_letter_sources(r.name())}};
}

json ControlServer::purge_queue(const Request& r) {
  const std::optional<std::uint32_t> done = r.queue->core().purge();
  if (!done) throw std::system_error(Errc::queue_busy, "the queue's lock is held by a process that does not let go");
  // Refused while purging (or before): not purged, whatever it counted.
  if (r.queue->check_sound()) throw std::system_error(Errc::segment_corrupt, r.queue->failure());
  const std::uint32_t purged = *done;
  spdlog::info("purged queue {}: {} messages", r.name(), purged);
  return {{"ok", true}, {"purged", purged}};
}

json ControlServer::stats(const Request& r) {
  ManagedQueue& q = *r.queue;
  const detail::SegmentHeader& h = q.header();
  const detail::QueueCore::Stats stats = q.core().stats();
  const detail::Counts& c = stats.counts;
  // The oldest message not deleted, in flight or not (SQS's
  // ApproximateAgeOfOldestMessage): the first in send order.
  std::array<detail::QueueCore::Peeked, 1> oldest{};
  std::error_code busy;
  const std::uint64_t oldest_sent_ms = q.core().peek(oldest, busy) == 1 ? oldest[0].delivery.sent_ms : 0;
  return {{"ok", true},
          {"stats",
           {{"name", r.name()},
            {"shm_name", q.shm_name()},
            {"segment_bytes", h.segment_bytes},
            {"max_messages", h.capacity},
            {"slots_ever_used", stats.slots_ever_used},
            {"arena_bytes", h.arena_bytes},
            {"arena_free_bytes", stats.arena_free_bytes},
            {"memory_bytes", stats.memory_in_use},
            {"memory_limit_bytes", stats.memory_limit},
            {"trims", stats.trims},
            {"visible", c.visible},
            {"in_flight", c.in_flight},
            {"delayed", c.delayed},
            {"writing", c.writing},
            {"sent_total", c.sent_total},
            {"received_total", c.received_total},
            {"deleted_total", c.deleted_total},
            {"recoveries", c.recoveries},
            {"expired_total", stats.totals.expired_total},
            {"dead_lettered_total", stats.totals.dead_lettered_total},
            {"sleeping_receivers", q.core().sleeping_receivers()},
            {"oldest_sent_ms", oldest_sent_ms},
            // False: the lock stayed held, and these are the lock-free counts
            // (arena_free_bytes then unknown, 0).
            {"locked", stats.locked}}}};
}

void ControlServer::close_connections() noexcept {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  for (auto& [fd, connection] : clients_) ::shutdown(fd, SHUT_RDWR);
}

void ControlServer::run(int stop_fd) {
  spdlog::info("control socket for namespace '{}' ready", config_.ns);
  std::vector<pollfd> fds;
  std::optional<std::chrono::steady_clock::time_point> drain_until;  // set by the first stop signal under --stop-drain
  for (;;) {
    fds.clear();
    fds.push_back({stop_fd, POLLIN, 0});
    const auto now = std::chrono::steady_clock::now();
    const bool accepting = now >= accept_paused_until_;
    // A negative fd is ignored by poll: the listen socket while paused.
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    for (auto& [fd, connection] : clients_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (connection.output.empty() ? 0 : POLLOUT)), 0});
    }
    for (auto& [fd, pid] : pidfds_) fds.push_back({fd, POLLIN, 0});
    int timeout_ms = unwatched_.empty() ? -1 : kUnwatchedCheckMs;
    const auto wake_by = [&](std::chrono::steady_clock::time_point when) {
      const auto wait = std::max<long>(0, std::chrono::ceil<std::chrono::milliseconds>(when - now).count());
      timeout_ms = timeout_ms < 0 ? static_cast<int>(wait) : std::min(timeout_ms, static_cast<int>(wait));
    };
    if (!accepting) wake_by(accept_paused_until_);
    if (drain_until) wake_by(*drain_until);
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[0].revents) {
      // No drain, or a second signal during one: stop now.
      if (config_.stop_drain_s == 0 || drain_until) return;
      signalfd_siginfo taken{};  // the signal is taken, so that the next one can be seen
      if (::read(stop_fd, &taken, sizeof taken) < 0) return;
      stopping_ = true;
      drain_until = std::chrono::steady_clock::now() + std::chrono::seconds(config_.stop_drain_s);
      spdlog::info(
          "stopping in {} s (--stop-drain); health answers \"stopping\" meanwhile, a second signal stops at once",
          config_.stop_drain_s);
    }
    if (drain_until && std::chrono::steady_clock::now() >= *drain_until) return;
    if (fds[1].revents & POLLIN) accept_clients();
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      const int fd = fds[i].fd;
      if (const auto it = pidfds_.find(fd); it != pidfds_.end()) {
        // Checked again: handling an earlier entry may have closed this
        // pidfd and opened another under the same number.
        if (readable_now(fd)) process_exited(it->second);
      } else if (clients_.count(fd)) {
        if (fds[i].revents & POLLOUT) flush(fd);
        if (clients_.count(fd) && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) serve(fd);
      }
    }
    if (!unwatched_.empty()) check_unwatched();
  }
}

}  // namespace shmq::daemon
