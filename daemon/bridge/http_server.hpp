// A small HTTP/1.1 server on Boost.Beast: keep-alive sessions, a fixed
// thread pool, limits on header size, body size and open connections, and
// timeouts so that a slow or silent client cannot hold a connection's
// resources forever. It listens on TCP (HOST:PORT, names resolved) or on a
// Unix socket whose file permissions say who may connect. A handler may
// answer later, from any thread (long polls): a session waits for its answer
// without holding a thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace shmq::bridge {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  // an address or a name to resolve
    unsigned short port = 9324;      // 0: any free port (see port())
    std::string unix_path;           // non-empty: listen on this Unix socket instead of host:port
    mode_t unix_mode = 0600;         // permissions of the Unix socket file: who may connect
    int threads = 2;
    // Connections past this (or past what the fd limit leaves) are answered
    // 503 and closed at once.
    std::size_t max_connections = 4096;
    std::size_t body_limit = 4 << 20;  // a 1 MiB batch, percent-encoded, fits
    std::size_t header_limit = 16 << 10;
    // Request bodies being read or served and answers not yet written, all
    // connections together: a request whose body would go past it is
    // answered 503 (Options' refusal) before its body is read, and closed.
    std::size_t max_buffered_bytes = 256u << 20;
    std::chrono::seconds idle_timeout{60};  // for the next request on a keep-alive connection
    std::chrono::seconds read_timeout{30};  // for a request once it has begun (then 408)
  };
  using Reply = std::function<void(HttpResponse&&)>;
  using Handler = std::function<void(HttpRequest&& request, Reply reply)>;
  // The answer (a 503) to a request refused for the buffer budget, from its
  // header alone; its body is never read. Called on a server thread; must
  // not throw.
  using Refusal = std::function<HttpResponse(const HttpRequest& header)>;

  // Resolves, binds and listens; throws std::runtime_error naming the
  // address if it cannot. Without `over_budget`, the refusal is plain text.
  HttpServer(Options options, Handler handler, Refusal over_budget = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  unsigned short port() const noexcept { return port_; }
  // The TCP address bound; nullopt on a Unix socket.
  std::optional<boost::asio::ip::address> address() const;
  // The connection limit in force: Options::max_connections, lowered to fit
  // the process's file descriptor limit.
  std::size_t max_connections() const noexcept { return max_connections_; }
  // Bytes held against Options::max_buffered_bytes now.
  std::size_t buffered_bytes() const noexcept { return buffered_bytes_.load(std::memory_order_relaxed); }
  void start();  // runs the thread pool; throws std::runtime_error if its threads cannot start
  void stop();   // closes the listener and every connection; joins the pool; removes the Unix socket file

 private:
  template <class Protocol>
  class Session;
  template <class Acceptor>
  void accept(Acceptor& acceptor);
  template <class Socket>
  void refuse_busy(Socket& socket);
  bool try_reserve(std::size_t bytes) noexcept;
  void listen_tcp();
  void listen_unix();

  Options options_;
  Handler handler_;
  Refusal over_budget_;
  std::size_t max_connections_ = 0;
  std::atomic<std::size_t> buffered_bytes_{0};  // held by sessions against options_.max_buffered_bytes
  std::atomic<std::size_t> connections_{0};     // open sessions; outlives io_, whose handlers hold sessions
  std::atomic<bool> accept_paused_{false};      // out of file descriptors: accepting again after a pause
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor tcp_acceptor_;
  boost::asio::local::stream_protocol::acceptor unix_acceptor_;
  boost::asio::steady_timer accept_pause_;  // used by the accept chain only
  unsigned short port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace shmq::bridge
