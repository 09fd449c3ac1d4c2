// shmq-backlog: fills a queue with a backlog of messages, or drains it, as
// fast as one process can through the public API (batches of ten); prints
// one JSON object with what it did. bench/memory_report.py uses it for the
// burst-and-drain figures.
//
//   shmq-backlog --namespace NS --queue Q --fill 10000000 [--size 64]
//   shmq-backlog --namespace NS --queue Q --drain
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "shmq/shmq.hpp"

namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int fill(shmq::Queue& q, std::uint64_t n, std::size_t size) {
  std::vector<shmq::SendEntry> batch(10);
  for (std::size_t k = 0; k < batch.size(); ++k) {
    batch[k].id = std::to_string(k);
    batch[k].body.assign(size, 'b');
  }
  std::vector<shmq::BatchEntryResult> results;
  const auto start = Clock::now();
  std::uint64_t sent = 0;
  std::string refusal;
  while (sent < n && refusal.empty()) {
    const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(10, n - sent));
    if (auto ec = q.send_batch(std::span(batch.data(), count), results)) {
      refusal = ec.message();
      break;
    }
    for (const auto& r : results) {
      if (r.error) {
        refusal = r.error.message();
        break;
      }
      ++sent;
    }
  }
  std::printf("{\"sent\": %llu, \"seconds\": %.3f, \"refused\": \"%s\"}\n", static_cast<unsigned long long>(sent),
              seconds_since(start), refusal.c_str());
  return refusal.empty() ? 0 : 1;
}

int drain(shmq::Queue& q) {
  std::vector<shmq::Message> got;
  std::vector<shmq::HandleEntry> handles;
  std::vector<shmq::BatchEntryResult> results;
  const auto start = Clock::now();
  std::uint64_t received = 0;
  for (;;) {
    got.clear();
    shmq::ReceiveOptions options;
    options.max_messages = 10;
    options.wait_time = std::chrono::milliseconds(0);
    if (auto ec = q.receive(got, options)) {
      std::fprintf(stderr, "shmq-backlog: receive: %s\n", ec.message().c_str());
      return 1;
    }
    if (got.empty()) break;
    handles.clear();
    for (std::size_t k = 0; k < got.size(); ++k) handles.push_back({std::to_string(k), got[k].receipt_handle, 0});
    if (auto ec = q.delete_batch(handles, results)) {
      std::fprintf(stderr, "shmq-backlog: delete: %s\n", ec.message().c_str());
      return 1;
    }
    received += got.size();
  }
  std::printf("{\"received\": %llu, \"seconds\": %.3f}\n", static_cast<unsigned long long>(received),
              seconds_since(start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string ns = "default";
  std::string queue;
  std::uint64_t fill_count = 0;
  std::size_t size = 64;
  po::options_description options("shmq-backlog options");
  options.add_options()("help,h", "print this help")("namespace", po::value(&ns)->default_value(ns), "shmqd namespace")(
      "queue", po::value(&queue)->required(), "the queue (it must exist)")(
      "fill", po::value(&fill_count), "send this many messages")("size", po::value(&size)->default_value(size),
                                                                  "body bytes of each message sent")(
      "drain", "receive and delete every visible message");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, options), vm);
  if (vm.count("help")) {
    std::cout << options << "\n";
    return 0;
  }
  po::notify(vm);
  if (vm.count("fill") == vm.count("drain")) throw std::runtime_error("give --fill N or --drain");
  if (size < 1 || size > 256 * 1024) throw std::runtime_error("--size: 1 to 262144 bytes");
  shmq::Client client(shmq::Client::Options{ns});
  shmq::Queue q = client.open_queue(queue);
  return vm.count("fill") ? fill(q, fill_count, size) : drain(q);
} catch (const std::exception& e) {
  std::fprintf(stderr, "shmq-backlog: %s\n", e.what());
  return 2;
}
