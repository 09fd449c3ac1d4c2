#include "control_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "control_protocol.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

ControlConnection::ControlConnection(std::string ns) : ns_(std::move(ns)) {
  if (!valid_namespace(ns_)) {
    throw std::system_error(Errc::invalid_parameter_value,
                            "namespace '" + ns_ + "': use 1 to 64 letters, digits, '-' or '_'");
  }
  std::lock_guard lock(mutex_);
  connect();
}

ControlConnection::~ControlConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void ControlConnection::connect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  // A packet must fit the send buffer whole. The kernel doubles the value
  // (and caps it at twice net.core.wmem_max); the slack covers its overhead.
  const int sndbuf = static_cast<int>(kMaxControlRequest) + 4096;
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  socklen_t length = 0;
  const sockaddr_un addr = control_address(ns_, length);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(Errc::daemon_unavailable,
                            "no shmqd for namespace '" + ns_ + "' (start it with: shmqd --namespace " + ns_ + ")");
  }
  std::string reply;
  if (!exchange(R"({"op":"hello"})", reply)) {
    throw std::system_error(Errc::daemon_unavailable, "shmqd closed the connection");
  }
  const auto json = nlohmann::json::parse(reply, nullptr, false);
  if (json.is_discarded() || !json.value("ok", false)) {
    const std::string error = json.is_object() ? json.value("error", "") : "";
    throw std::system_error(errc_from_name(error), json.is_object() ? json.value("message", "") : "bad hello");
  }
}

void ControlConnection::reconnect() noexcept {
  std::lock_guard lock(mutex_);
  try {
    connect();
  } catch (const std::exception&) {
    // The daemon is down; a daemon that starts later finds this process's
    // reserved slots in its attach scan and watches the process.
  }
}

bool ControlConnection::exchange(const std::string& request, std::string& reply) {
  if (fd_ < 0) return false;
  // A failed send still reads: a daemon that refuses a client replies with
  // the reason and closes before the client's first request arrives.
  const ssize_t sent = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  if (sent < 0 && errno == EMSGSIZE) {
    // Too large for this socket's buffer. The connection is fine: say so, and
    // keep it (a reconnect would look to the daemon like this process leaving).
    throw std::system_error(Errc::invalid_parameter_value,
                            "request too large (" + std::to_string(request.size()) + " bytes)");
  }
  const bool delivered = sent == static_cast<ssize_t>(request.size());
  buffer_.resize(kMaxControlPacket);
  int flags = delivered ? 0 : MSG_DONTWAIT;
  bool reset_seen = false;
  ssize_t n;
  for (;;) {
    n = ::recv(fd_, buffer_.data(), buffer_.size(), flags);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    // A daemon that closed with this request unread (it turned the client
    // away) resets the connection; the reset is reported once, ahead of the
    // reply it sent before closing. Read once more for that reply.
    if (errno != ECONNRESET || reset_seen) break;
    reset_seen = true;
    flags = MSG_DONTWAIT;
  }
  if (n <= 0) return false;
  reply.assign(buffer_.data(), static_cast<std::size_t>(n));
  return true;
}

nlohmann::json ControlConnection::call(const nlohmann::json& request) {
  const std::string text = request.dump();
  if (text.size() > kMaxControlRequest) {
    // Refused here, on a connection that stays open: the daemon could not
    // take it in one packet.
    throw std::system_error(Errc::invalid_parameter_value, "request too large (" + std::to_string(text.size()) +
                                                               " bytes; at most " + std::to_string(kMaxControlRequest) +
                                                               ")");
  }
  std::string reply;
  std::lock_guard lock(mutex_);
  if (!exchange(text, reply)) {
    connect();  // the daemon restarted: one more try on a new connection
    if (!exchange(text, reply)) throw std::system_error(Errc::daemon_unavailable, "shmqd closed the connection");
  }
  auto json = nlohmann::json::parse(reply, nullptr, false);
  if (json.is_discarded() || !json.is_object()) throw std::system_error(Errc::internal, "unreadable reply from shmqd");
  if (!json.value("ok", false)) {
    const std::string message = json.value("message", "");
    const std::error_code ec = errc_from_name(json.value("error", ""));
    if (message.empty()) throw std::system_error(ec);
    throw std::system_error(ec, message);
  }
  return json;
}

}  // namespace shmq::detail
