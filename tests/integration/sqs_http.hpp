// One request to a shmqd's SQS bridge over loopback, for integration tests
// that check what a remote SQS client sees.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace shmq::test {

struct HttpReply {
  int status = 0;
  std::string body;
};

// Sends a whole HTTP/1.1 request (with "Connection: close") to the bridge
// over loopback and reads the answer to its end. Status 0 if there was no
// answer within `timeout_s`.
inline HttpReply loopback_exchange(int port, const std::string& request, int timeout_s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const timeval timeout{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  HttpReply reply;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return reply;
  }
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  char buffer[65536];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  if (response.rfind("HTTP/1.1 ", 0) == 0) reply.status = std::atoi(response.c_str() + 9);
  if (const auto end = response.find("\r\n\r\n"); end != std::string::npos) reply.body = response.substr(end + 4);
  return reply;
}

// One request to the bridge over loopback in the AWS JSON 1.0 protocol.
// Status 0 if there was no answer within `timeout_s`.
inline HttpReply sqs_call(int port, const std::string& action, const nlohmann::json& params, int timeout_s = 30) {
  const std::string body = params.dump();
  return loopback_exchange(port,
                           "POST / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                               "\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS." + action +
                               "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                               body,
                           timeout_s);
}

// One GET of `path` from the bridge over loopback (e.g. /metrics).
inline HttpReply http_get(int port, const std::string& path, int timeout_s = 10) {
  return loopback_exchange(
      port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n\r\n",
      timeout_s);
}

// A test with its own shmqd whose bridge listens on a free loopback port.
class BridgeTest : public ::testing::Test {
 protected:
  explicit BridgeTest(std::vector<std::string> extra_args = {})
      : port_file_(std::filesystem::temp_directory_path() / (unique_namespace() + ".port")),
        daemon_(unique_namespace(), with_bridge(port_file_, std::move(extra_args))) {}
  ~BridgeTest() override { std::filesystem::remove(port_file_); }

  // The bridge's port, once it listens (0 if it never does).
  int port() {
    int port = 0;
    EXPECT_TRUE(eventually([&] {
      std::ifstream(port_file_) >> port;
      return port > 0;
    })) << "the bridge did not start";
    return port;
  }
  std::string url(const std::string& queue) {
    return "http://127.0.0.1:" + std::to_string(port()) + "/000000000000/" + queue;
  }

  std::filesystem::path port_file_;
  DaemonProcess daemon_;

 private:
  static std::vector<std::string> with_bridge(const std::filesystem::path& port_file, std::vector<std::string> args) {
    args.insert(args.begin(), {"--bridge-listen", "127.0.0.1:0", "--bridge-port-file", port_file.string()});
    return args;
  }
};

}  // namespace shmq::test
