// The HTTP request path as the bridge sees it: raw bytes through Beast's
// request parser (with HttpServer's limits), then SqsRequestHandler (protocol,
// action, parameters, the SQS action) against a real daemon in this process
// (a Supervisor on its own thread, in a namespace of its own, bridge off).
// A request may be refused with any 4xx; a 5xx means a bug, so it aborts.
#include <unistd.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "daemon_config.hpp"
#include "http_server.hpp"
#include "shmq/shmq.hpp"
#include "sqs_request_handler.hpp"
#include "supervisor.hpp"

namespace {

namespace http = boost::beast::http;
using shmq::bridge::HttpResponse;

const std::string& fuzz_namespace() {
  static const std::string ns = "fuzz" + std::to_string(::getpid());
  return ns;
}

void remove_segments() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    if (entry.path().filename().string().starts_with("shmq." + fuzz_namespace() + ".")) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
}

// The daemon, started once; it runs until the process exits.
shmq::Client& daemon_client() {
  static shmq::Client* client = [] {
    shmq::daemon::DaemonConfig config;
    config.ns = fuzz_namespace();
    config.log_level = "off";
    config.bridge = false;
    config.max_messages = 1024;  // small queues: the fuzzer makes many
    config.arena_bytes = 4ull << 20;
    std::thread([config] { shmq::daemon::Supervisor(config).run(); }).detach();
    std::atexit(remove_segments);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      try {
        return new shmq::Client(shmq::Client::Options{fuzz_namespace()});
      } catch (const std::exception& e) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "bridge_request_fuzz: no daemon: %s\n", e.what());
          std::abort();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }();
  return *client;
}

shmq::bridge::SqsRequestHandler& handler() {
  static shmq::bridge::SqsRequestHandler* h = [] {
    shmq::bridge::BridgeConfig config;
    // Long polls are capped at 1 s (SQS allows 20) so that the fuzzer keeps
    // its pace; they still go through the long-poll path.
    config.max_wait = std::chrono::seconds(1);
    return new shmq::bridge::SqsRequestHandler(daemon_client(), config, {});
  }();
  return *h;
}

// The fuzzer makes queues at random: every so often, they all go.
void delete_queues() {
  try {
    for (const std::string& name : daemon_client().list_queues()) daemon_client().delete_queue(name);
  } catch (const std::exception&) {
  }
}

struct Answer {
  std::mutex mutex;
  std::condition_variable done;
  bool answered = false;
};

void check(const HttpResponse& response) {
  if (static_cast<unsigned>(response.result()) >= 500) {
    std::fprintf(stderr, "bridge_request_fuzz: %u answer:\n%s\n", static_cast<unsigned>(response.result()),
                 response.body().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::size_t runs = 0;
  if (++runs % 500 == 0) delete_queues();
  const shmq::bridge::HttpServer::Options limits;
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(limits.body_limit);
  parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;  // HttpServer answers these itself, without the bridge

  auto answer = std::make_shared<Answer>();
  handler().handle(parser.release(), [answer](HttpResponse&& response) {
    check(response);  // a long poll's answer is checked too, whenever it comes
    std::lock_guard lock(answer->mutex);
    answer->answered = true;
    answer->done.notify_all();
  });
  std::unique_lock lock(answer->mutex);
  // A long poll answers within its (capped) wait time; a request that never
  // answers is a bug as well.
  if (!answer->done.wait_for(lock, std::chrono::seconds(5), [&] { return answer->answered; })) {
    std::fprintf(stderr, "bridge_request_fuzz: no answer within 5 s\n");
    std::abort();
  }
  return 0;
}
