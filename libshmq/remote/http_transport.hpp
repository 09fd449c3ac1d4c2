// HTTP/1.1 over TCP or TLS for the remote backend: keep-alive connections
// kept in a pool, so that calls from several threads (a long poll among
// them) run at once, each on a connection of its own (docs/remote-endpoints.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace shmq::detail::remote {

// An endpoint URL taken apart: scheme http or https, a host (name, IPv4, or
// [IPv6]), an optional port, an optional path (kept, e.g. "/" or "/prefix").
struct Url {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  std::string port;  // "80"/"443" when the URL had none
  std::string path;  // "/" when the URL had none
  // What the Host header carries: host, with :port only when not the
  // scheme's default, brackets kept for IPv6.
  std::string host_header;
};

// Throws std::system_error(Errc::invalid_parameter_value) naming what is
// wrong: another scheme, no host, a bad port, userinfo, a query or fragment.
Url parse_url(std::string_view url);

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{3000};  // TCP connect and TLS handshake together
  bool verify_tls = true;                            // verify the server's certificate chain and host name
  std::string ca_file;                               // PEM bundle to verify with; empty: the system's store
  std::size_t max_idle = 32;                         // idle connections kept for reuse; more are closed
};

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

class Connection;  // one TCP or TLS stream (http_transport.cpp)

class HttpTransport {
 public:
  // Connects lazily: nothing happens until the first post().
  // Throws std::system_error(Errc::invalid_parameter_value) if `ca_file`
  // cannot be loaded.
  HttpTransport(Url url, TransportOptions options);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  const Url& url() const noexcept { return url_; }

  // POSTs `body` to url().path with these headers (Host, Content-Length and
  // Connection are added here; the caller must not pass them), on an idle
  // connection of the pool, or a new one. Blocks until the whole response
  // has been read or `timeout` (the whole exchange, after connecting) has
  // passed. Thread-safe: concurrent posts use different connections.
  // A reused connection that turns out closed by the server before any byte
  // of the response arrived is retried once on a new connection (servers
  // close idle keep-alive connections). Throws std::system_error with the
  // Asio, SSL or beast error (connection refused, timed out, certificate
  // verify failed, ...) when no response was read; its what() names the
  // endpoint and the step (resolve, connect, TLS handshake, write, read).
  HttpResponse post(const std::vector<std::pair<std::string, std::string>>& headers, std::string body,
                    std::chrono::milliseconds timeout);

  // Connections open now (idle ones), for tests.
  std::size_t idle_connections() const;

 private:
  std::unique_ptr<Connection> take();
  void give_back(std::unique_ptr<Connection> connection);

  Url url_;
  TransportOptions options_;
  struct Tls;                  // the SSL context (http_transport.cpp)
  std::unique_ptr<Tls> tls_;   // null for http
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace shmq::detail::remote
