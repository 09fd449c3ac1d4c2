#include "control_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
  const bool sent = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  buffer_.resize(kMaxControlPacket);
  ssize_t n;
  do {
    n = ::recv(fd_, buffer_.data(), buffer_.size(), sent ? 0 : MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  reply.assign(buffer_.data(), static_cast<std::size_t>(n));
  return true;
}

nlohmann::json ControlConnection::call(const nlohmann::json& request) {
  const std::string text = request.dump();
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
