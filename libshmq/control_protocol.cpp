#include "control_protocol.hpp"

#include <cstring>

namespace shmq::detail {

bool valid_namespace(std::string_view ns) noexcept {
  if (ns.empty() || ns.size() > 64) return false;
  for (char c : ns) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

sockaddr_un control_address(std::string_view ns, socklen_t& length) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "shmq.";
  name.append(ns).append(".ctl");
  // sun_path[0] stays '\0': an abstract address, named by the bytes after it.
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

}  // namespace shmq::detail
