#include "remote/http_transport.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>

#include "shmq/error.hpp"

namespace shmq::detail::remote {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;

namespace {

// SQS responses are at most a few MiB (ten messages of 256 KiB, or 1 MiB
// with extended payloads, in JSON); this only stops a runaway server.
constexpr std::uint64_t kBodyLimit = 64 * 1024 * 1024;
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
// How long closing a healthy TLS connection may take to send close_notify.
constexpr std::chrono::milliseconds kCloseNotifyTimeout{500};

[[noreturn]] void bad_url(std::string_view url, const std::string& what) {
  throw std::system_error(make_error_code(Errc::invalid_parameter_value),
                          "endpoint URL '" + std::string(url) + "': " + what);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Letters, digits, '-', '.' and '_' (names as DNS and /etc/hosts have them):
// nothing that could end the Host header or the request line.
bool valid_host_name(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// A failed step of a connection: which one, the error, and whether any of
// the response had arrived (then the request must not be sent again).
struct Failure {
  error_code ec;
  const char* step = "";
  std::string detail;
  bool response_started = false;
};

// A transport failure: the Asio, SSL or Beast error as code(), and a what()
// that names the endpoint and the step, plus OpenSSL's reason when the
// certificate did not verify (std::system_error would put the code's message
// last, after any detail).
class TransportError : public std::system_error {
 public:
  TransportError(const Url& url, const Failure& failure)
      : std::system_error(failure.ec),
        what_(std::make_shared<const std::string>((url.tls ? "https://" : "http://") + url.host_header + ": " +
                                                  failure.step + ": " + failure.ec.message() +
                                                  (failure.detail.empty() ? "" : " (" + failure.detail + ")"))) {}
  const char* what() const noexcept override { return what_->c_str(); }

 private:
  std::shared_ptr<const std::string> what_;  // shared: copying an exception must not throw
};

bool is_timeout(const error_code& ec) { return ec == beast::error::timeout; }

// What a server's close of an idle keep-alive connection looks like to the
// next request: the read finds the end of the stream, or a reset.
bool is_closed_by_peer(const error_code& ec) {
  return ec == net::error::eof || ec == http::error::end_of_stream || ec == net::error::connection_reset ||
         ec == net::error::connection_aborted || ec == net::error::broken_pipe || ec == ssl::error::stream_truncated;
}

// The error OpenSSL queued for a call that failed; invalid_argument if it queued none.
error_code last_ssl_error() {
  const unsigned long code = ::ERR_get_error();
  if (code == 0) return net::error::invalid_argument;
  return error_code(static_cast<int>(code), net::error::get_ssl_category());
}

}  // namespace

Url parse_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) bad_url(url, "no scheme (http:// or https://)");
  const std::string_view scheme = url.substr(0, scheme_end);
  Url result;
  if (iequals(scheme, "https")) {
    result.tls = true;
  } else if (!iequals(scheme, "http")) {
    bad_url(url, "scheme '" + std::string(scheme) + "' is not http or https");
  }
  const std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view path = rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) bad_url(url, "user information (user@) is not supported");
  if (path.find('?') != std::string_view::npos) bad_url(url, "a query (?) is not allowed");
  if (path.find('#') != std::string_view::npos) bad_url(url, "a fragment (#) is not allowed");
  if (std::any_of(path.begin(), path.end(), [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; }))
    bad_url(url, "the path has a space or a control character");

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  const bool bracketed = !authority.empty() && authority.front() == '[';
  if (bracketed) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "'[' without ']'");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, "unexpected '" + std::string(after) + "' after ']'");
      has_port = true;
      port = after.substr(1);
    }
    error_code ec;
    net::ip::make_address_v6(std::string(host), ec);
    if (ec) bad_url(url, "'" + std::string(host) + "' is not an IPv6 address");
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string_view::npos) bad_url(url, "an IPv6 address must be in brackets ([::1])");
    }
    if (!valid_host_name(host)) bad_url(url, "host '" + std::string(host) + "' has a character not allowed");
  }
  if (host.empty()) bad_url(url, "no host");

  const char* default_port = result.tls ? "443" : "80";
  if (has_port) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535)
      bad_url(url, "port '" + std::string(port) + "' is not a number in 1..65535");
    result.port = std::to_string(value);
  } else {
    result.port = default_port;
  }
  result.host = std::string(host);
  result.path = path.empty() ? "/" : std::string(path);
  result.host_header = bracketed ? "[" + result.host + "]" : result.host;
  if (result.port != default_port) result.host_header += ":" + result.port;
  return result;
}

struct HttpTransport::Tls {
  ssl::context context{ssl::context::tls_client};
};

// One TCP or TLS stream, used by one post() at a time. Beast's stream
// timeouts apply only to asynchronous operations, so each connection has an
// io_context of its own: a step starts its operations and runs the context
// until they have completed, the stream's expiry bounding them.
class Connection {
 public:
  Connection(const Url& url, ssl::context* tls) : url_(url) {
    if (tls)
      secure_.emplace(ioc_, *tls);
    else
      plain_.emplace(ioc_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Resolves, connects and, for https, shakes hands, all before `deadline`.
  std::optional<Failure> connect(Clock::time_point deadline, bool verify_tls) {
    error_code ec;
    tcp::resolver::results_type endpoints;
    const net::ip::address address = net::ip::make_address(url_.host, ec);
    const bool ip_literal = !ec;
    if (ip_literal) {
      endpoints = tcp::resolver::results_type::create(
          tcp::endpoint(address, static_cast<unsigned short>(std::stoul(url_.port))), url_.host, url_.port);
    } else {
      // The resolver has no expiry of its own: a timer cancels it.
      tcp::resolver resolver(ioc_);
      net::steady_timer timer(ioc_, deadline);
      bool timed_out = false;
      timer.async_wait([&](const error_code& wait_ec) {
        if (wait_ec) return;
        timed_out = true;
        resolver.cancel();
      });
      ec = run([&](auto handler) {
        resolver.async_resolve(
            url_.host, url_.port,
            [&endpoints, &timer, handler](const error_code& resolve_ec, tcp::resolver::results_type r) {
              endpoints = std::move(r);
              timer.cancel();
              handler(resolve_ec);
            });
      });
      if (ec && timed_out) ec = beast::error::timeout;
      if (ec) return Failure{ec, "resolve"};
    }

    tcp_stream().expires_at(deadline);
    ec = run([&](auto handler) { tcp_stream().async_connect(endpoints, handler); });
    if (ec) return Failure{ec, "connect"};
    if (!secure_) return std::nullopt;

    SSL* ssl_handle = secure_->native_handle();
    // Server Name Indication carries host names only, never IP addresses.
    if (!ip_literal && !SSL_set_tlsext_host_name(ssl_handle, url_.host.c_str()))
      return Failure{last_ssl_error(), "TLS setup"};
    if (verify_tls) {
      // OpenSSL checks the name during the handshake (DNS names in the
      // certificate's subjectAltName, or its IP addresses for an IP literal),
      // so that a mismatch fails it with a verify result of its own.
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      const int set = ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str())
                                 : X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size());
      if (set != 1) return Failure{last_ssl_error(), "TLS setup"};
    }
    ec = run([&](auto handler) { secure_->async_handshake(ssl::stream_base::client, handler); });
    if (ec) {
      Failure failure{ec, "TLS handshake"};
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify_tls && verify != X509_V_OK) failure.detail = X509_verify_cert_error_string(verify);
      return failure;
    }
    return std::nullopt;
  }

  // Writes the request and reads the whole response into `response`, both
  // before `deadline`. `keep_alive` tells whether the connection may carry
  // another request.
  std::optional<Failure> exchange(const Request& request, Clock::time_point deadline, HttpResponse& response,
                                  bool& keep_alive) {
    tcp_stream().expires_at(deadline);
    error_code ec = with_stream(
        [&](auto& stream) { return run([&](auto handler) { http::async_write(stream, request, handler); }); });
    if (ec) return Failure{ec, "write"};

    http::response_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    parser.header_limit(kHeaderLimit);
    ec = with_stream(
        [&](auto& stream) { return run([&](auto handler) { http::async_read(stream, buffer_, parser, handler); }); });
    // A TLS server may close the TCP connection without close_notify; for a
    // response whose body runs to the end of the stream that end is as good.
    if (ec == ssl::error::stream_truncated && parser.got_some() && !parser.is_done()) {
      error_code eof_ec;
      parser.put_eof(eof_ec);
      if (!eof_ec && parser.is_done()) ec = {};
    }
    if (ec) return Failure{ec, "read", "", parser.got_some() || buffer_.size() > 0};

    // Bytes after the response would be taken for the next one's.
    keep_alive = parser.keep_alive() && buffer_.size() == 0;
    auto& message = parser.get();
    response.status = message.result_int();
    response.headers.clear();
    for (const auto& field : message) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto [it, inserted] = response.headers.emplace(std::move(name), std::string(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second += field.value();
      }
    }
    response.body = std::move(message.body());
    return std::nullopt;
  }

  // Closes a healthy connection. TLS: sends close_notify without waiting for
  // the server's (as browsers and curl do); marking the server's as received
  // makes SSL_shutdown complete once ours is written. Errors do not matter.
  void close() noexcept {
    if (secure_) {
      SSL_set_shutdown(secure_->native_handle(), SSL_RECEIVED_SHUTDOWN);
      tcp_stream().expires_after(kCloseNotifyTimeout);
      run([&](auto handler) { secure_->async_shutdown(handler); });
    }
    error_code ignored;
    tcp_stream().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp_stream().close();
  }

  bool reused = false;  // carried a whole exchange before: it may have gone stale since

 private:
  // Starts an operation with a handler that records its error, and runs the
  // context until the operation and its expiry timer have completed.
  template <class Start>
  error_code run(Start&& start) {
    error_code result = net::error::would_block;
    start([&result](const error_code& ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  template <class Function>
  error_code with_stream(Function&& function) {
    return secure_ ? function(*secure_) : function(*plain_);
  }

  beast::tcp_stream& tcp_stream() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }

  const Url& url_;
  net::io_context ioc_{1};  // destroyed after the streams that use it
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;  // kept across responses, as Beast reads ahead
};

namespace {

// A new connection, connected (and, for https, TLS set up) within the
// options' connect timeout.
std::unique_ptr<Connection> open_connection(const Url& url, ssl::context* tls, const TransportOptions& options) {
  auto connection = std::make_unique<Connection>(url, tls);
  if (auto failure = connection->connect(Clock::now() + options.connect_timeout, options.verify_tls))
    throw TransportError(url, *failure);
  return connection;
}

}  // namespace

HttpTransport::HttpTransport(Url url, TransportOptions options) : url_(std::move(url)), options_(std::move(options)) {
  if (!url_.tls) return;
  tls_ = std::make_unique<Tls>();
  ssl::context& context = tls_->context;
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  context.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (!options_.verify_tls) {
    context.set_verify_mode(ssl::verify_none);
    return;
  }
  context.set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (options_.ca_file.empty()) {
    // A system without a store fails each handshake with a verify error,
    // which says more than failing here would.
    context.set_default_verify_paths(ec);
  } else {
    // OpenSSL's reason for a file it cannot open is a bare "system lib":
    // opening it here first says why.
    std::FILE* file = std::fopen(options_.ca_file.c_str(), "r");
    if (!file) {
      const int error = errno;
      throw std::system_error(make_error_code(Errc::invalid_parameter_value),
                              "CA file '" + options_.ca_file + "': " + std::strerror(error));
    }
    std::fclose(file);
    context.load_verify_file(options_.ca_file, ec);
    if (ec) {
      throw std::system_error(make_error_code(Errc::invalid_parameter_value),
                              "CA file '" + options_.ca_file + "': " + ec.message());
    }
  }
}

HttpTransport::~HttpTransport() {
  std::vector<std::unique_ptr<Connection>> idle;
  {
    std::lock_guard lock(mutex_);
    idle.swap(idle_);
  }
  for (auto& connection : idle) connection->close();
}

std::size_t HttpTransport::idle_connections() const {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

std::unique_ptr<Connection> HttpTransport::take() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      // The most recently used: the least likely to have been closed by the server.
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  return open_connection(url_, tls_ ? &tls_->context : nullptr, options_);
}

void HttpTransport::give_back(std::unique_ptr<Connection> connection) {
  connection->reused = true;
  {
    std::lock_guard lock(mutex_);
    if (idle_.size() < options_.max_idle) {
      idle_.push_back(std::move(connection));
      return;
    }
  }
  connection->close();
}

HttpResponse HttpTransport::post(const std::vector<std::pair<std::string, std::string>>& headers, std::string body,
                                 std::chrono::milliseconds timeout) {
  Request request{http::verb::post, url_.path, 11};
  for (const auto& [name, value] : headers) request.insert(name, value);
  request.set(http::field::host, url_.host_header);
  request.set(http::field::connection, "keep-alive");
  request.body() = std::move(body);
  request.prepare_payload();

  std::unique_ptr<Connection> connection = take();
  // The time left for the exchange; a retry gets what the stale attempt left.
  Clock::duration left = timeout;
  for (;;) {
    const Clock::time_point start = Clock::now();
    HttpResponse response;
    bool keep_alive = false;
    std::optional<Failure> failure = connection->exchange(request, start + left, response, keep_alive);
    if (!failure) {
      if (keep_alive)
        give_back(std::move(connection));
      else
        connection->close();
      return response;
    }
    left -= Clock::now() - start;
    // A connection the server closed while it was idle fails at once, before
    // any response: the server most likely never saw the request (it had
    // closed already), so it is sent again, once, on a new connection.
    const bool stale = connection->reused && !failure->response_started && !is_timeout(failure->ec) &&
                       (failure->step == std::string_view("write") || is_closed_by_peer(failure->ec));
    connection.reset();
    if (!stale || left <= Clock::duration::zero()) throw TransportError(url_, *failure);
    connection = open_connection(url_, tls_ ? &tls_->context : nullptr, options_);
  }
}

}  // namespace shmq::detail::remote
