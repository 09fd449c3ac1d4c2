#include "http_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace shmq::bridge {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using unix_socket = net::local::stream_protocol;

namespace {

// Descriptors kept out of the connection limit: the control socket, queue
// segments, log and spare. Past the fd limit accept fails and keeps failing.
constexpr rlim_t kReservedFds = 128;
// How long the acceptor waits when the process is out of descriptors: the
// pending connection stays in the backlog and accept would fail again at once.
constexpr std::chrono::milliseconds kAcceptPause{100};

bool out_of_descriptors(const beast::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

// Written raw, without a session: the connection that gets it is not served.
constexpr std::string_view kBusyAnswer =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 37\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "\r\n"
    "too many open connections; try later\n";

}  // namespace

template <class Protocol>
class HttpServer::Session : public std::enable_shared_from_this<Session<Protocol>> {
 public:
  Session(typename Protocol::socket socket, HttpServer& server)
      : stream_(std::move(socket)), deadline_(stream_.get_executor()), server_(server) {
    ++server_.connections_;
  }
  ~Session() {
    release();  // however the connection ended: timeout, reset, stop
    --server_.connections_;
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_.options_.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.header_limit));
    stream_.expires_never();  // reads have their own deadline, which can still answer 408
    arm(server_.options_.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->disarm();
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return refuse(ec);
    const HttpRequest& header = parser_->get();
    if (header.version() != 10 && header.version() != 11) {
      return bad_request("this server speaks HTTP/1.0 and HTTP/1.1");
    }
    // The body is held whole (string_body reserves its Content-Length when
    // it starts reading it): take its room from the budget first. A chunked
    // body may grow to the body limit.
    const std::size_t body = parser_->chunked() ? server_.options_.body_limit
                                                : static_cast<std::size_t>(parser_->content_length().value_or(0));
    if (!reserve(body)) return over_budget();
    // curl and others wait (a second, for curl) for this before a large body.
    // A body over the limit was refused above, before any 100.
    if (header.version() == 11 && beast::iequals(header[http::field::expect], "100-continue") && !parser_->is_done()) {
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(server_.options_.read_timeout);
      return http::async_write(stream_, *interim,
                               [self = this->shared_from_this(), interim](beast::error_code e, std::size_t) {
                                 if (e) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    stream_.expires_never();
    arm(server_.options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->disarm();
      self->on_read(ec);
    });
  }

  // A request the server cannot take gets a status that says why, then the
  // connection closes; a client that went away, or stayed silent between
  // requests, is just closed.
  void refuse(beast::error_code ec) {
    if (timed_out_) {
      if (!parser_->got_some() && buffer_.size() == 0) return close();
      return write(plain(http::status::request_timeout, "request not received in time\n"), false);
    }
    if (ec == http::error::body_limit) {
      return write(plain(http::status::payload_too_large, "request body too large\n"), false);
    }
    if (ec == http::error::header_limit) {
      return write(plain(http::status::request_header_fields_too_large, "request headers too large\n"), false);
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return close();
    // What is left of Beast's own errors are the parser's: bad line endings,
    // fields, versions, Content-Length or Transfer-Encoding, targets, methods.
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) return bad_request(ec.message());
    close();
  }

  // Refused before any of its body is read; lingering then drains the body
  // through a fixed buffer, and the connection closes.
  void over_budget() {
    const HttpRequest& header = parser_->get();
    HttpResponse answer;
    if (server_.over_budget_) {
      answer = server_.over_budget_(header);
    } else {
      answer = plain(http::status::service_unavailable, "the server is short of memory for requests; try later\n");
    }
    answer.set(http::field::retry_after, "1");
    write(std::move(answer), false);
  }

  // Takes `bytes` more from the server's budget; false (and nothing taken)
  // if they do not fit. On the session's strand, as release().
  bool reserve(std::size_t bytes) {
    if (!server_.try_reserve(bytes)) return false;
    reserved_ += bytes;
    return true;
  }
  // An answer is written whatever the budget says (refusing it would lose a
  // request already served): counted, so that new requests wait for it.
  void reserve_anyway(std::size_t bytes) {
    server_.buffered_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    reserved_ += bytes;
  }
  void release() {
    if (reserved_ == 0) return;
    server_.buffered_bytes_.fetch_sub(reserved_, std::memory_order_relaxed);
    reserved_ = 0;
  }

  void bad_request(const std::string& why) {
    write(plain(http::status::bad_request, ("malformed request: " + why + "\n").c_str()), false);
  }

  void on_read(beast::error_code ec) {
    if (ec) return refuse(ec);
    stream_.expires_never();  // the answer may take a long poll
    HttpRequest request = parser_->release();
    keep_alive_ = request.keep_alive();
    const unsigned version = request.version();
    server_.handler_(std::move(request), [self = this->shared_from_this(), version](HttpResponse&& response) {
      response.version(version);
      auto shared = std::make_shared<HttpResponse>(std::move(response));
      net::post(self->stream_.get_executor(), [self, shared] { self->write(std::move(*shared), self->keep_alive_); });
    });
  }

  static HttpResponse plain(http::status status, const char* text) {
    HttpResponse r{status, 11};
    r.set(http::field::content_type, "text/plain");
    r.body() = text;
    return r;
  }

  void write(HttpResponse&& response, bool keep_alive) {
    release();  // the request is done: its body is gone
    response_ = std::move(response);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    reserve_anyway(response_.body().size());
    stream_.expires_after(server_.options_.read_timeout);
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->release();
                        self->response_ = {};  // its body's room is given back: so is its memory
                        if (ec) return self->close();
                        if (!keep_alive) return self->linger();
                        self->read();
                      });
  }

  // A read's deadline: cancels the read, and refuse() then sees timed_out_.
  // A wait that completes after the read did finds the deadline moved on.
  void arm(std::chrono::seconds timeout) {
    timed_out_ = false;
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->deadline_.expiry() > std::chrono::steady_clock::now()) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }
  void disarm() { deadline_.expires_at(std::chrono::steady_clock::time_point::max()); }

  // Closing with the client's unread request in our receive buffer would
  // send a reset, which can destroy the answer (a 413) before the client
  // reads it: stop sending, drain the rest for a while, then close.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(5));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->stream_.close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ignored;
    deadline_.cancel();
    stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::basic_stream<Protocol> stream_;
  net::steady_timer deadline_;
  HttpServer& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
  bool keep_alive_ = true;
  bool timed_out_ = false;
  std::size_t reserved_ = 0;  // bytes of server_.buffered_bytes_ this session holds
  std::array<char, 16384> discard_;
};

HttpServer::HttpServer(Options options, Handler handler, Refusal over_budget)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      over_budget_(std::move(over_budget)),
      tcp_acceptor_(io_),
      unix_acceptor_(io_),
      accept_pause_(io_) {
  if (options_.unix_path.empty()) {
    listen_tcp();
  } else {
    listen_unix();
  }
  max_connections_ = std::max<std::size_t>(options_.max_connections, 1);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const rlim_t usable = limit.rlim_cur > 2 * kReservedFds ? limit.rlim_cur - kReservedFds : limit.rlim_cur / 2;
    max_connections_ = std::min<std::size_t>(max_connections_, std::max<rlim_t>(usable, 1));
  }
}

// Relaxed: the count is all the budget shares; no other memory is published
// through it.
bool HttpServer::try_reserve(std::size_t bytes) noexcept {
  std::size_t held = buffered_bytes_.load(std::memory_order_relaxed);
  do {
    if (bytes > options_.max_buffered_bytes || held > options_.max_buffered_bytes - bytes) return false;
  } while (!buffered_bytes_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  return true;
}

void HttpServer::listen_tcp() {
  beast::error_code ec;
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  tcp::resolver resolver(io_);
  const auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) throw std::runtime_error("bridge address '" + options_.host + "': " + ec.message());
  // IPv4 first: "localhost" then means 127.0.0.1, which every client tries.
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  std::stable_partition(endpoints.begin(), endpoints.end(), [](const tcp::endpoint& e) { return e.address().is_v4(); });
  for (const tcp::endpoint& endpoint : endpoints) {
    ec = {};
    beast::error_code ignored;
    tcp_acceptor_.close(ignored);
    tcp_acceptor_.open(endpoint.protocol(), ec);
    if (!ec) tcp_acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) tcp_acceptor_.bind(endpoint, ec);
    if (!ec) tcp_acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) break;
  }
  if (endpoints.empty()) ec = net::error::host_not_found;
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  port_ = tcp_acceptor_.local_endpoint().port();
}

void HttpServer::listen_unix() {
  const std::string& path = options_.unix_path;
  const std::string what = "cannot listen on unix:" + path + ": ";
  if (path.size() >= sizeof(sockaddr_un::sun_path)) throw std::runtime_error(what + "path too long");
  const unix_socket::endpoint endpoint(path);
  // A socket file left by a daemon that died is replaced; one that answers,
  // or a file that is not a socket, is not ours to remove.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(what + "the file exists and is not a socket");
    unix_socket::socket probe(io_);
    beast::error_code ec;
    probe.connect(endpoint, ec);
    if (!ec) throw std::runtime_error(what + "another process listens there");
    ::unlink(path.c_str());
  }
  beast::error_code ec;
  unix_acceptor_.open(endpoint.protocol(), ec);
  if (!ec) unix_acceptor_.bind(endpoint, ec);
  // Permissions before listen: until then nobody can connect, whatever the umask gave the file.
  if (!ec && ::chmod(path.c_str(), options_.unix_mode) != 0) ec.assign(errno, boost::system::generic_category());
  if (!ec) unix_acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    if (unix_acceptor_.is_open()) {
      unix_acceptor_.close(ignored);
      ::unlink(path.c_str());
    }
    throw std::runtime_error(what + ec.message());
  }
}

HttpServer::~HttpServer() { stop(); }

std::optional<net::ip::address> HttpServer::address() const {
  if (!tcp_acceptor_.is_open()) return std::nullopt;
  beast::error_code ec;
  const tcp::endpoint endpoint = tcp_acceptor_.local_endpoint(ec);
  if (ec) return std::nullopt;
  return endpoint.address();
}

// Answers a connection past the limit without taking it on. What the client
// has sent already is read first: closing with unread data would reset the
// connection, which can destroy the answer before the client reads it.
template <class Socket>
void HttpServer::refuse_busy(Socket& socket) {
  beast::error_code ec;
  socket.non_blocking(true, ec);  // a fresh socket's send buffer takes this; never wait for it
  socket.write_some(net::buffer(kBusyAnswer.data(), kBusyAnswer.size()), ec);
  std::array<char, 4096> unread;
  for (int i = 0; i < 16 && !ec; ++i) socket.read_some(net::buffer(unread), ec);
  socket.shutdown(Socket::shutdown_both, ec);
  socket.close(ec);
}

template <class Acceptor>
void HttpServer::accept(Acceptor& acceptor) {
  using Protocol = typename Acceptor::protocol_type;
  acceptor.async_accept(net::make_strand(io_), [this, &acceptor](beast::error_code ec, typename Protocol::socket s) {
    if (ec == net::error::operation_aborted) return;
    if (out_of_descriptors(ec)) {
      if (!accept_paused_.exchange(true)) {
        spdlog::warn("SQS bridge: cannot accept connections ({}); {} open; retrying every {} ms", ec.message(),
                     connections_.load(), kAcceptPause.count());
      }
      accept_pause_.expires_after(kAcceptPause);
      accept_pause_.async_wait([this, &acceptor](beast::error_code e) {
        if (!e) accept(acceptor);
      });
      return;
    }
    if (!ec) {
      accept_paused_ = false;
      if (connections_.load() >= max_connections_) {
        refuse_busy(s);
      } else {
        std::make_shared<Session<Protocol>>(std::move(s), *this)->start();
      }
    }
    accept(acceptor);
  });
}

void HttpServer::start() {
  if (tcp_acceptor_.is_open()) accept(tcp_acceptor_);
  if (unix_acceptor_.is_open()) accept(unix_acceptor_);
  try {
    for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_.run(); });
  } catch (const std::system_error& e) {
    stop();  // joins those that started
    throw std::runtime_error("cannot start the bridge's " + std::to_string(options_.threads) +
                             " threads: " + e.code().message() + " (the limit of threads: pids.max, RLIMIT_NPROC)");
  }
}

void HttpServer::stop() {
  if (!threads_.empty()) {
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  // No thread runs the io_context now: the acceptors are ours alone.
  beast::error_code ignored;
  tcp_acceptor_.close(ignored);
  if (unix_acceptor_.is_open()) {
    unix_acceptor_.close(ignored);
    ::unlink(options_.unix_path.c_str());
  }
}

}  // namespace shmq::bridge
