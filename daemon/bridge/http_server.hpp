// A small HTTP/1.1 server on Boost.Beast: keep-alive sessions, a fixed
// thread pool, limits on header and body size, and timeouts so that a slow or
// silent client cannot hold a connection's resources forever. A handler may
// answer later, from any thread (long polls): a session waits for its answer
// without holding a thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace shmq::bridge {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    unsigned short port = 9324;  // 0: any free port (see port())
    int threads = 2;
    std::size_t body_limit = 4 << 20;  // a 1 MiB batch, percent-encoded, fits
    std::size_t header_limit = 16 << 10;
    std::chrono::seconds idle_timeout{60};  // for the next request on a keep-alive connection
    std::chrono::seconds read_timeout{30};  // for a request once it has begun
  };
  using Reply = std::function<void(HttpResponse&&)>;
  using Handler = std::function<void(HttpRequest&& request, Reply reply)>;

  // Binds and listens; throws std::runtime_error naming the address if it cannot.
  HttpServer(Options options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  unsigned short port() const noexcept { return port_; }
  void start();  // runs the thread pool
  void stop();   // closes the listener and every connection; joins the pool

 private:
  class Session;
  void accept();

  Options options_;
  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace shmq::bridge
