// shmq-http-floor: the HTTP floor of the bridge benchmark. It is shmqd's own
// HTTP layer (shmq::bridge::HttpServer: the same Beast parser, keep-alive
// sessions, one io_context run by --threads threads, strand per connection,
// the same timeouts) with a handler that answers every request at once with a
// fixed 200 shaped like a SendMessage answer. Whatever the bridge costs beyond
// this server is the SQS work: parsing, the queue operation, the answer.
//
//   shmq-http-floor [--listen 127.0.0.1:0] [--threads 2] [--port-file FILE]
//
// Runs until SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

#include "http_server.hpp"

namespace {

namespace http = boost::beast::http;
namespace po = boost::program_options;
using shmq::bridge::HttpResponse;
using shmq::bridge::HttpServer;

// The size and headers of a SendMessage answer on the JSON protocol, so
// that the floor writes as many bytes per request as the bridge does.
constexpr const char* kBody = R"({"MD5OfMessageBody":"d41d8cd98f00b204e9800998ecf8427e",)"
                              R"("MessageId":"00000000-0000-4000-8000-000000000000"})";
constexpr const char* kRequestId = "00000000-0000-4000-8000-000000000000";

struct FloorOptions {
  HttpServer::Options http;
  std::string port_file;
};

// Returns nothing when --help was asked; throws on a bad option.
std::optional<FloorOptions> parse_command_line(int argc, char** argv) {
  FloorOptions o;
  std::string listen = "127.0.0.1:0";
  po::options_description cli("shmq-http-floor options");
  auto add = cli.add_options();
  add("help,h", "print this help and exit");
  add("listen", po::value(&listen)->default_value(listen), "HOST:PORT to listen on (port 0: any free port)");
  add("threads", po::value(&o.http.threads)->default_value(o.http.threads),
      "threads running the io_context (as shmqd --bridge-threads)");
  add("port-file", po::value(&o.port_file), "write the port to this file once listening");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, cli), vm);
  if (vm.count("help")) {
    std::cout << "usage: shmq-http-floor [options]\n\n" << cli << "\n";
    return std::nullopt;
  }
  po::notify(vm);
  const auto colon = listen.rfind(':');
  const std::string port = colon == std::string::npos ? std::string() : listen.substr(colon + 1);
  if (colon == 0 || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw std::runtime_error("--listen: HOST:PORT, e.g. 127.0.0.1:0");
  }
  o.http.host = listen.substr(0, colon);
  o.http.port = static_cast<unsigned short>(std::stoul(port));
  if (o.http.threads < 1 || o.http.threads > 64) throw std::runtime_error("--threads: 1 to 64");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto options = parse_command_line(argc, argv);
    if (!options) return 0;

    // Blocked before the pool starts, so that its threads inherit the mask
    // and the signals reach sigwait below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // Answers on the calling thread, as the bridge does for an action that
    // does not wait (the reply is posted to the connection's strand).
    HttpServer server(options->http, [](shmq::bridge::HttpRequest&&, HttpServer::Reply reply) {
      HttpResponse response{http::status::ok, 11};
      response.set("x-amzn-RequestId", kRequestId);
      response.set(http::field::content_type, "application/x-amz-json-1.0");
      response.body() = kBody;
      reply(std::move(response));
    });
    server.start();
    if (!options->port_file.empty()) std::ofstream(options->port_file) << server.port() << "\n";

    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.stop();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-http-floor: %s\n", e.what());
    return 2;
  }
}
