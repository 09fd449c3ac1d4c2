// The remote backend's HTTP/1.1 client against servers in this process:
// URL parsing, a round trip, the keep-alive pool, concurrent posts, the retry
// of a connection the server closed while idle (and no retry otherwise),
// timeouts, connection errors, and TLS with certificates made for the test.
#include "remote/http_transport.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shmq/error.hpp"

namespace shmq::detail::remote {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A request as the server read it.
struct Seen {
  std::size_t connection = 0;  // which connection, in the order accepted from 0
  std::size_t request = 0;     // which request on that connection, from 0
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// What the server does with a request: writes `bytes` as they are, then, if
// `close`, shuts the connection down (a FIN; under TLS without close_notify).
// No bytes and no close: no answer, the server waits for the next request.
struct Reply {
  std::string bytes;
  bool close = false;
};

std::string ok(std::string_view body, std::string_view extra_headers = "") {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n" + std::string(body);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// An HTTP/1.1 server on 127.0.0.1, port chosen by the system: a thread
// accepts, a thread per connection reads requests and answers them as the
// handler says, so that a held answer does not hold other connections.
class TestServer {
 public:
  using Handler = std::function<Reply(const Seen&)>;

  explicit TestServer(Handler handler, ssl::context* tls = nullptr) : handler_(std::move(handler)), tls_(tls) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), 0));
    acceptor_.listen();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~TestServer() {
    stopping_ = true;
    // A connection of its own wakes the accept; shutting the sockets down
    // wakes the connections' reads.
    tcp::socket waker(ioc_);
    boost::system::error_code ec;
    waker.connect(acceptor_.local_endpoint(), ec);
    accept_thread_.join();
    for (const auto& socket : sockets_) ::shutdown(socket->native_handle(), SHUT_RDWR);
    for (auto& thread : threads_) thread.join();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::string url(std::string_view path = "/") const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port()) + std::string(path);
  }

  std::size_t accepted() const {
    std::lock_guard lock(mutex_);
    return sockets_.size();
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::vector<std::string> server_names() const {
    std::lock_guard lock(mutex_);
    return server_names_;
  }
  // Waits until `count` connections have ended: closed by the client, or
  // shut down by the server.
  bool wait_closed(std::size_t count, std::chrono::milliseconds timeout = 2s) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return closed_ >= count; });
  }

 private:
  void accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (stopping_ || ec) return;
      std::lock_guard lock(mutex_);
      const std::size_t index = sockets_.size();
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket, index] { serve(*socket, index); });
    }
  }

  void serve(tcp::socket& socket, std::size_t index) {
    if (tls_) {
      ssl::stream<tcp::socket&> stream(socket, *tls_);
      boost::system::error_code ec;
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) {
        if (const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) {
          std::lock_guard lock(mutex_);
          server_names_.emplace_back(name);
        }
        exchange(stream, socket, index);
      }
    } else {
      exchange(socket, socket, index);
    }
    {
      std::lock_guard lock(mutex_);
      ++closed_;
    }
    changed_.notify_all();
  }

  template <class Stream>
  void exchange(Stream& stream, tcp::socket& socket, std::size_t index) {
    beast::flat_buffer buffer;
    for (std::size_t n = 0;; ++n) {
      http::request<http::string_body> request;
      boost::system::error_code ec;
      http::read(stream, buffer, request, ec);
      if (ec) return;
      Seen seen{index, n, std::string(request.method_string()), std::string(request.target()), {}, request.body()};
      for (const auto& field : request) seen.headers[lower(std::string(field.name_string()))] = field.value();
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(seen);
      }
      const Reply reply = handler_(seen);
      if (!reply.bytes.empty()) net::write(stream, net::buffer(reply.bytes), ec);
      if (ec) return;
      if (reply.close) {
        socket.shutdown(tcp::socket::shutdown_both, ec);
        return;
      }
    }
  }

  Handler handler_;
  ssl::context* tls_;
  net::io_context ioc_;  // never run: the server's I/O is synchronous
  tcp::acceptor acceptor_{ioc_};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;  // open until the server is destroyed
  std::vector<std::thread> threads_;
  std::vector<Seen> seen_;
  std::vector<std::string> server_names_;  // SNI of each TLS connection that sent one
  std::size_t closed_ = 0;
};

// What a call threw: the code and what() (a copy of the exception as
// std::system_error would lose the transport's what()).
struct Thrown {
  bool thrown = false;
  std::error_code code;
  std::string what;
};

template <class Function>
Thrown thrown(Function&& function) {
  try {
    function();
  } catch (const std::system_error& e) {
    return {true, e.code(), e.what()};
  }
  return {};
}

std::error_code std_code(boost::system::error_code ec) { return ec; }

const std::vector<std::pair<std::string, std::string>> kNoHeaders;

TEST(ParseUrl, TakesSchemeHostPortAndPath) {
  Url url = parse_url("http://example.com");
  EXPECT_FALSE(url.tls);
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, "80");
  EXPECT_EQ(url.path, "/");
  EXPECT_EQ(url.host_header, "example.com");

  url = parse_url("HTTPS://sqs.us-east-1.amazonaws.com/");
  EXPECT_TRUE(url.tls);
  EXPECT_EQ(url.host, "sqs.us-east-1.amazonaws.com");
  EXPECT_EQ(url.port, "443");
  EXPECT_EQ(url.path, "/");
  EXPECT_EQ(url.host_header, "sqs.us-east-1.amazonaws.com");

  url = parse_url("http://127.0.0.1:9324/prefix/sqs");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, "9324");
  EXPECT_EQ(url.path, "/prefix/sqs");
  EXPECT_EQ(url.host_header, "127.0.0.1:9324");
}

TEST(ParseUrl, HostHeaderHasThePortOnlyWhenNotTheSchemesDefault) {
  EXPECT_EQ(parse_url("http://h:80").host_header, "h");
  EXPECT_EQ(parse_url("https://h:443/").host_header, "h");
  EXPECT_EQ(parse_url("http://h:443").host_header, "h:443");
  EXPECT_EQ(parse_url("https://h:80").host_header, "h:80");
  EXPECT_EQ(parse_url("http://h:00080").port, "80");
}

TEST(ParseUrl, Ipv6InBrackets) {
  Url url = parse_url("http://[::1]:9324/q");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, "9324");
  EXPECT_EQ(url.path, "/q");
  EXPECT_EQ(url.host_header, "[::1]:9324");

  url = parse_url("https://[2001:db8::1]");
  EXPECT_EQ(url.host, "2001:db8::1");
  EXPECT_EQ(url.port, "443");
  EXPECT_EQ(url.host_header, "[2001:db8::1]");
}

TEST(ParseUrl, RejectsWhatItCannotUse) {
  const std::pair<const char*, const char*> cases[] = {
      {"ftp://example.com", "scheme"},
      {"example.com:80", "scheme"},
      {"http://", "no host"},
      {"http:///path", "no host"},
      {"http://:9324", "no host"},
      {"http://[]:9324", "IPv6"},
      {"http://h:0", "port"},
      {"http://h:65536", "port"},
      {"http://h:-1", "port"},
      {"http://h:x", "port"},
      {"http://h:", "port"},
      {"http://user@h", "user"},
      {"http://user:secret@h/", "user"},
      {"http://h/?Action=ListQueues", "query"},
      {"http://h?x", "query"},
      {"http://h/#top", "fragment"},
      {"http://::1/", "brackets"},
      {"http://[::1/", "]"},
      {"http://[::1]x/", "after"},
      {"http://[not-v6]/", "IPv6"},
      {"http://h h/", "character"},
      {"http://h/a b", "path"},
  };
  for (const auto& [text, word] : cases) {
    const Thrown e = thrown([url = text] { parse_url(url); });
    ASSERT_TRUE(e.thrown) << text;
    EXPECT_EQ(e.code, make_error_code(Errc::invalid_parameter_value)) << text;
    EXPECT_EQ(e.what.rfind("endpoint URL '" + std::string(text) + "': ", 0), 0u) << e.what;
    EXPECT_NE(e.what.find(word), std::string::npos) << text << ": " << e.what;
  }
}

TEST(HttpTransport, PostRoundTrip) {
  TestServer server([](const Seen&) {
    return Reply{ok(R"({"MessageId":"m"})", "X-Amzn-RequestId: r-1\r\nX-Multi: a\r\nx-multi: b\r\n")};
  });
  HttpTransport transport(parse_url(server.url("/prefix")), {});
  const std::string body = R"({"QueueUrl":"q","MessageBody":"hi"})";
  const HttpResponse response = transport.post(
      {{"Content-Type", "application/x-amz-json-1.0"}, {"X-Amz-Target", "AmazonSQS.SendMessage"}}, body, 2s);

  const std::vector<Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/prefix");
  EXPECT_EQ(seen[0].headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(seen[0].headers.at("content-length"), std::to_string(body.size()));
  EXPECT_EQ(seen[0].headers.at("content-type"), "application/x-amz-json-1.0");
  EXPECT_EQ(seen[0].headers.at("x-amz-target"), "AmazonSQS.SendMessage");
  EXPECT_EQ(seen[0].headers.at("connection"), "keep-alive");
  EXPECT_EQ(seen[0].body, body);

  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.headers.at("x-amzn-requestid"), "r-1");
  EXPECT_EQ(response.headers.at("x-multi"), "a, b");
  EXPECT_EQ(response.headers.at("content-type"), "application/x-amz-json-1.0");
  EXPECT_EQ(response.body, R"({"MessageId":"m"})");
}

TEST(HttpTransport, AnErrorStatusIsAResponse) {
  const std::string body = R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist"})";
  TestServer server([&](const Seen&) {
    return Reply{"HTTP/1.1 400 Bad Request\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body};
  });
  HttpTransport transport(parse_url(server.url()), {});
  const HttpResponse response = transport.post(kNoHeaders, "{}", 2s);
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body, body);
  EXPECT_EQ(transport.idle_connections(), 1u);
}

TEST(HttpTransport, KeepAliveReusesOneConnection) {
  TestServer server([](const Seen& seen) { return Reply{ok("r" + std::to_string(seen.request))}; });
  HttpTransport transport(parse_url(server.url()), {});
  EXPECT_EQ(transport.idle_connections(), 0u);
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "r0");
  EXPECT_EQ(transport.idle_connections(), 1u);
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "r1");
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(transport.idle_connections(), 1u);
}

TEST(HttpTransport, ConnectionCloseIsNotPooled) {
  TestServer server([](const Seen&) { return Reply{ok("bye", "Connection: close\r\n"), true}; });
  HttpTransport transport(parse_url(server.url()), {});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "bye");
  EXPECT_EQ(transport.idle_connections(), 0u);
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "bye");
  EXPECT_EQ(server.accepted(), 2u);
}

TEST(HttpTransport, BodyUntilTheEndOfTheStream) {
  TestServer server([](const Seen&) { return Reply{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", true}; });
  HttpTransport transport(parse_url(server.url()), {});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "to the end");
  EXPECT_EQ(transport.idle_connections(), 0u);
}

// Holds the answer to requests that carry "X-Hold: 1" until released, and
// tells when the first of them has arrived.
class Hold {
 public:
  Reply operator()(const Seen& seen) {
    if (seen.headers.count("x-hold")) {
      arrived_.set_value();
      release_.wait_for(5s);
      return Reply{ok("held")};
    }
    return Reply{ok("prompt")};
  }
  bool wait_arrived() { return arrived_future_.wait_for(2s) == std::future_status::ready; }
  void release() { release_promise_.set_value(); }

 private:
  std::promise<void> arrived_;
  std::future<void> arrived_future_ = arrived_.get_future();
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
};

// Starts a held post on another thread, then a prompt one on this thread;
// expects the prompt one to finish while the held one is still waiting.
void overlap_two_posts(HttpTransport& transport, Hold& hold) {
  auto held = std::async(std::launch::async, [&] { return transport.post({{"X-Hold", "1"}}, "{}", 5s).body; });
  ASSERT_TRUE(hold.wait_arrived());
  const Clock::time_point start = Clock::now();
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 5s).body, "prompt");
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(held.wait_for(0s), std::future_status::timeout);
  hold.release();
  EXPECT_EQ(held.get(), "held");
}

TEST(HttpTransport, ConcurrentPostsUseSeparateConnections) {
  Hold hold;
  TestServer server(std::ref(hold));
  HttpTransport transport(parse_url(server.url()), {});
  overlap_two_posts(transport, hold);
  EXPECT_EQ(server.accepted(), 2u);
  EXPECT_EQ(transport.idle_connections(), 2u);
}

TEST(HttpTransport, PoolKeepsAtMostMaxIdle) {
  Hold hold;
  TestServer server(std::ref(hold));
  HttpTransport transport(parse_url(server.url()), {.max_idle = 1});
  overlap_two_posts(transport, hold);
  EXPECT_EQ(server.accepted(), 2u);
  EXPECT_EQ(transport.idle_connections(), 1u);
  EXPECT_TRUE(server.wait_closed(1));
}

TEST(HttpTransport, RetriesAConnectionTheServerClosedWhileIdle) {
  // The first connection's answer is keep-alive, then the server closes it.
  TestServer server([](const Seen& seen) {
    return Reply{ok("on " + std::to_string(seen.connection)), seen.connection == 0};
  });
  HttpTransport transport(parse_url(server.url()), {});
  EXPECT_EQ(transport.post(kNoHeaders, "first", 2s).body, "on 0");
  EXPECT_EQ(transport.idle_connections(), 1u);
  ASSERT_TRUE(server.wait_closed(1));
  EXPECT_EQ(transport.post(kNoHeaders, "second", 2s).body, "on 1");

  const std::vector<Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].connection, 0u);
  EXPECT_EQ(seen[0].body, "first");
  EXPECT_EQ(seen[1].connection, 1u);
  EXPECT_EQ(seen[1].body, "second");
  EXPECT_EQ(server.accepted(), 2u);
  EXPECT_EQ(transport.idle_connections(), 1u);
}

TEST(HttpTransport, NoRetryAfterPartOfTheResponse) {
  // The second request on the connection gets half a header, then a close.
  TestServer server([](const Seen& seen) {
    return seen.request == 0 ? Reply{ok("whole")} : Reply{"HTTP/1.1 200 OK\r\nContent-Le", true};
  });
  HttpTransport transport(parse_url(server.url()), {});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "whole");
  const Thrown e = thrown([&] { transport.post(kNoHeaders, "{}", 2s); });
  ASSERT_TRUE(e.thrown);
  EXPECT_NE(e.what.find(": read: "), std::string::npos) << e.what;
  EXPECT_EQ(server.seen().size(), 2u);
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(transport.idle_connections(), 0u);
}

TEST(HttpTransport, NoRetryOnANewConnection) {
  TestServer server([](const Seen&) { return Reply{"", true}; });
  HttpTransport transport(parse_url(server.url()), {});
  const Thrown e = thrown([&] { transport.post(kNoHeaders, "{}", 2s); });
  ASSERT_TRUE(e.thrown);
  EXPECT_EQ(e.code, std_code(http::error::end_of_stream));
  EXPECT_NE(e.what.find(": read: "), std::string::npos) << e.what;
  EXPECT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.accepted(), 1u);
}

TEST(HttpTransport, TimeoutClosesTheConnection) {
  TestServer server([](const Seen&) { return Reply{}; });
  HttpTransport transport(parse_url(server.url()), {});
  const Clock::time_point start = Clock::now();
  const Thrown e = thrown([&] { transport.post(kNoHeaders, "{}", 300ms); });
  const Clock::duration took = Clock::now() - start;
  ASSERT_TRUE(e.thrown);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(e.code, std_code(beast::error::timeout));
  EXPECT_EQ(e.what.rfind(server.url("") + ": read: ", 0), 0u) << e.what;
  EXPECT_EQ(transport.idle_connections(), 0u);
  EXPECT_TRUE(server.wait_closed(1));
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST(HttpTransport, ConnectionRefusedNamesTheStepAndTheEndpoint) {
  unsigned short port = 0;
  {
    net::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(port);
  HttpTransport transport(parse_url(endpoint + "/"), {});
  const Thrown e = thrown([&] { transport.post(kNoHeaders, "{}", 2s); });
  ASSERT_TRUE(e.thrown);
  EXPECT_EQ(e.code, std::errc::connection_refused);
  EXPECT_EQ(e.what.rfind(endpoint + ": connect: ", 0), 0u) << e.what;
  EXPECT_EQ(transport.idle_connections(), 0u);
}

TEST(HttpTransport, ConnectTimeoutCoversTheTlsHandshake) {
  // A listening socket nobody accepts on: the kernel completes the TCP
  // handshake, nothing answers the TLS one.
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), 0));
  const std::string endpoint = "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  HttpTransport transport(parse_url(endpoint), {.connect_timeout = 300ms, .verify_tls = false});
  const Clock::time_point start = Clock::now();
  const Thrown e = thrown([&] { transport.post(kNoHeaders, "{}", 5s); });
  const Clock::duration took = Clock::now() - start;
  ASSERT_TRUE(e.thrown);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(e.code, std_code(beast::error::timeout));
  EXPECT_EQ(e.what.rfind(endpoint + ": TLS handshake: ", 0), 0u) << e.what;
}

TEST(HttpTransport, DestructorClosesIdleConnections) {
  TestServer server([](const Seen&) { return Reply{ok("{}")}; });
  {
    HttpTransport transport(parse_url(server.url()), {});
    transport.post(kNoHeaders, "{}", 2s);
    EXPECT_EQ(transport.idle_connections(), 1u);
  }
  EXPECT_TRUE(server.wait_closed(1));
}

TEST(HttpTransport, UnreadableCaFileIsAnInvalidParameter) {
  const std::string missing = "/nonexistent/shmq-test-ca.pem";
  Thrown e = thrown([&] { HttpTransport transport(parse_url("https://127.0.0.1/"), {.ca_file = missing}); });
  ASSERT_TRUE(e.thrown);
  EXPECT_EQ(e.code, make_error_code(Errc::invalid_parameter_value));
  EXPECT_EQ(e.what.rfind("CA file '" + missing + "': No such file or directory", 0), 0u) << e.what;

  // A file that holds no certificate.
  std::string not_pem = (std::filesystem::temp_directory_path() / "shmq-http-ca-XXXXXX").string();
  const int fd = ::mkstemp(not_pem.data());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "not a certificate\n", 18), 18);
  ::close(fd);
  e = thrown([&] { HttpTransport transport(parse_url("https://127.0.0.1/"), {.ca_file = not_pem}); });
  std::filesystem::remove(not_pem);
  ASSERT_TRUE(e.thrown);
  EXPECT_EQ(e.code, make_error_code(Errc::invalid_parameter_value));
  EXPECT_EQ(e.what.rfind("CA file '" + not_pem + "': ", 0), 0u) << e.what;
}

// TLS against certificates signed by a CA made for the test: one for the IP
// address 127.0.0.1, one for the name localhost (subjectAltName both).
class HttpTransportTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("openssl version >/dev/null 2>&1") != 0) return;
    std::string pattern = (std::filesystem::temp_directory_path() / "shmq-http-tls-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    const auto run = [](const std::string& command) {
      return std::system(("cd '" + dir_ + "' && " + command + " >/dev/null 2>&1").c_str()) == 0;
    };
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    made_ = run("openssl req -x509 " + key + " -keyout ca.key -out ca.pem -days 2 -subj '/CN=shmq test CA'" +
                " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
    int serial = 1;
    for (const auto& [name, san] : {std::pair{"ip", "IP:127.0.0.1"}, std::pair{"localhost", "DNS:localhost"}}) {
      std::ofstream(dir_ + "/" + name + ".ext")
          << "subjectAltName=" << san << "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
      made_ = made_ && run("openssl req " + key + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name);
      made_ = made_ && run("openssl x509 -req -in " + std::string(name) + ".csr -CA ca.pem -CAkey ca.key -set_serial " +
                           std::to_string(++serial) + " -days 2 -out " + name + ".pem -extfile " + name + ".ext");
    }
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    dir_.clear();
  }
  void SetUp() override {
    if (dir_.empty()) GTEST_SKIP() << "no openssl command to make certificates with";
    ASSERT_TRUE(made_) << "openssl could not make the test certificates in " << dir_;
  }

  // A server context with the certificate `name` ("ip" or "localhost").
  static std::unique_ptr<ssl::context> server_context(const std::string& name) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    context->use_certificate_chain_file(dir_ + "/" + name + ".pem");
    context->use_private_key_file(dir_ + "/" + name + ".key", ssl::context::pem);
    return context;
  }
  static std::string ca_file() { return dir_ + "/ca.pem"; }
  static std::string url(const char* host, const TestServer& server) {
    return "https://" + std::string(host) + ":" + std::to_string(server.port()) + "/";
  }

  static inline std::string dir_;
  static inline bool made_ = false;
};

TEST_F(HttpTransportTls, VerifiesAnIpAddressWithTheCaFile) {
  const auto context = server_context("ip");
  TestServer server([](const Seen&) { return Reply{ok("secure")}; }, context.get());
  HttpTransport transport(parse_url(url("127.0.0.1", server)), {.ca_file = ca_file()});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "secure");
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "secure");
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(transport.idle_connections(), 1u);
  EXPECT_TRUE(server.server_names().empty());  // no SNI for an IP address
}

TEST_F(HttpTransportTls, VerifiesAHostNameAndSendsIt) {
  const auto context = server_context("localhost");
  TestServer server([](const Seen&) { return Reply{ok("secure")}; }, context.get());
  HttpTransport transport(parse_url(url("localhost", server)), {.ca_file = ca_file()});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "secure");
  EXPECT_EQ(server.server_names(), std::vector<std::string>{"localhost"});
  EXPECT_EQ(server.seen().at(0).headers.at("host"), "localhost:" + std::to_string(server.port()));
}

TEST_F(HttpTransportTls, SystemStoreDoesNotTrustTheTestCa) {
  const auto context = server_context("ip");
  TestServer server([](const Seen&) { return Reply{ok("secure")}; }, context.get());
  HttpTransport transport(parse_url(url("127.0.0.1", server)), {});
  const Thrown e = thrown([&] { transport.post(kNoHeaders, "{}", 2s); });
  ASSERT_TRUE(e.thrown);
  const std::string endpoint = "https://127.0.0.1:" + std::to_string(server.port());
  EXPECT_EQ(e.what.rfind(endpoint + ": TLS handshake: certificate verify failed (", 0), 0u) << e.what;
  EXPECT_TRUE(server.seen().empty());
}

TEST_F(HttpTransportTls, WithoutVerificationAnyCertificateDoes) {
  const auto context = server_context("localhost");
  TestServer server([](const Seen&) { return Reply{ok("secure")}; }, context.get());
  HttpTransport transport(parse_url(url("127.0.0.1", server)), {.verify_tls = false});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "secure");
}

TEST_F(HttpTransportTls, ACertificateForAnotherHostFails) {
  const auto localhost = server_context("localhost");
  TestServer localhost_server([](const Seen&) { return Reply{ok("secure")}; }, localhost.get());
  HttpTransport by_ip(parse_url(url("127.0.0.1", localhost_server)), {.ca_file = ca_file()});
  Thrown e = thrown([&] { by_ip.post(kNoHeaders, "{}", 2s); });
  ASSERT_TRUE(e.thrown);
  EXPECT_NE(e.what.find(": TLS handshake: certificate verify failed (IP address mismatch)"), std::string::npos)
      << e.what;

  const auto ip = server_context("ip");
  TestServer ip_server([](const Seen&) { return Reply{ok("secure")}; }, ip.get());
  HttpTransport by_name(parse_url(url("localhost", ip_server)), {.ca_file = ca_file()});
  e = thrown([&] { by_name.post(kNoHeaders, "{}", 2s); });
  ASSERT_TRUE(e.thrown);
  EXPECT_NE(e.what.find(": TLS handshake: certificate verify failed (hostname mismatch)"), std::string::npos) << e.what;
  EXPECT_TRUE(localhost_server.seen().empty());
  EXPECT_TRUE(ip_server.seen().empty());
}

TEST_F(HttpTransportTls, BodyUntilACloseWithoutCloseNotify) {
  const auto context = server_context("ip");
  TestServer server(
      [](const Seen&) {
        return Reply{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", true};
      },
      context.get());
  HttpTransport transport(parse_url(url("127.0.0.1", server)), {.ca_file = ca_file()});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "to the end");
  EXPECT_EQ(transport.idle_connections(), 0u);
}

TEST_F(HttpTransportTls, RetriesAConnectionTheServerClosedWhileIdle) {
  const auto context = server_context("ip");
  TestServer server(
      [](const Seen& seen) {
        return Reply{ok("on " + std::to_string(seen.connection)), seen.connection == 0};
      },
      context.get());
  HttpTransport transport(parse_url(url("127.0.0.1", server)), {.ca_file = ca_file()});
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "on 0");
  ASSERT_TRUE(server.wait_closed(1));
  EXPECT_EQ(transport.post(kNoHeaders, "{}", 2s).body, "on 1");
  EXPECT_EQ(server.seen().size(), 2u);
  EXPECT_EQ(server.accepted(), 2u);
}

}  // namespace
}  // namespace shmq::detail::remote
