#include "http_server.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <optional>
#include <stdexcept>

namespace shmq::bridge {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer& server) : stream_(std::move(socket)), server_(server) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_.options_.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.header_limit));
    stream_.expires_after(server_.options_.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return refuse(ec);
    stream_.expires_after(server_.options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_read(e); });
  }

  // A request over a limit gets a status that says so; anything else that
  // went wrong reading ends the connection.
  void refuse(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return write(plain(http::status::payload_too_large, "request body too large\n"), false);
    }
    if (ec == http::error::header_limit) {
      return write(plain(http::status::request_header_fields_too_large, "request headers too large\n"), false);
    }
    close(ec);
  }

  void on_read(beast::error_code ec) {
    if (ec) return refuse(ec);
    stream_.expires_never();  // the answer may take a long poll
    HttpRequest request = parser_->release();
    keep_alive_ = request.keep_alive();
    const unsigned version = request.version();
    server_.handler_(std::move(request), [self = shared_from_this(), version](HttpResponse&& response) {
      response.version(version);
      auto shared = std::make_shared<HttpResponse>(std::move(response));
      net::post(self->stream_.get_executor(), [self, shared] { self->write(std::move(*shared), self->keep_alive_); });
    });
  }

  HttpResponse plain(http::status status, const char* text) {
    HttpResponse r{status, 11};
    r.set(http::field::content_type, "text/plain");
    r.body() = text;
    return r;
  }

  void write(HttpResponse&& response, bool keep_alive) {
    response_ = std::move(response);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    stream_.expires_after(server_.options_.read_timeout);
    http::async_write(stream_, response_, [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
      if (ec) return self->close(ec);
      if (!keep_alive) return self->linger();
      self->read();
    });
  }

  // Closing with the client's unread request in our receive buffer would
  // send a reset, which can destroy the answer (a 413) before the client
  // reads it: stop sending, drain the rest for a while, then close.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(5));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->stream_.close();
      self->drain();
    });
  }

  void close(beast::error_code) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
  bool keep_alive_ = true;
  std::array<char, 16384> discard_;
};

HttpServer::HttpServer(Options options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)), acceptor_(io_) {
  beast::error_code ec;
  const auto address = net::ip::make_address(options_.host, ec);
  if (ec) throw std::runtime_error("bridge address '" + options_.host + "': " + ec.message());
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                             ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), *this)->start();
    accept();
  });
}

void HttpServer::start() {
  accept();
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void HttpServer::stop() {
  if (threads_.empty()) return;
  net::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace shmq::bridge
