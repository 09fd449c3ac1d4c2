// GET /metrics: the daemon's figures in the Prometheus text exposition
// format (version 0.0.4), for a Prometheus server to scrape. Per queue: the
// messages by state, the age of the oldest, the sent, received, deleted,
// expired and dead-lettered totals, the shared memory held and its limit.
// The bridge's requests by action and status code, with a latency histogram
// by action. The process's figures under the names every Prometheus client
// library's process collector uses. Names and units: docs/metrics.md.
//
// Debian 12 packages no Prometheus client library for C++, so the text is
// written here (TextExposition); it is served by the bridge's HttpServer
// like any answer, and the tests read it back with the Prometheus project's
// own parser and linter.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "shmq/client.hpp"

namespace shmq::bridge {

// Writes metric families in the text format: a family's HELP and TYPE
// lines, then its samples. Label values are escaped as the format says.
class TextExposition {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, double value);
  void sample(std::string_view name, Labels labels, std::uint64_t value);
  const std::string& text() const noexcept { return out_; }

 private:
  void labels(Labels labels);
  std::string out_;
};

// The bridge's requests: a count by action and status code, and a latency
// histogram by action. Both label sets are bounded: an action is one of the
// SQS actions the bridge serves or "unknown", a code one of HTTP's.
class RequestMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (a long poll waits up to 20 s).
  static constexpr std::array<double, 16> kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    20};

  void observe(std::string_view action, unsigned code, std::chrono::steady_clock::duration took) noexcept;
  void write(TextExposition& out) const;

 private:
  struct Latency {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // not cumulative: the first bucket that holds it
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, std::map<unsigned, std::uint64_t>, std::less<>> requests_;  // action, code
  std::map<std::string, Latency, std::less<>> latency_;
};

// The whole page: the queues' figures (from the daemon, over its control
// socket), `requests`, and this process's. A queue deleted while the page
// is written is left out; a daemon that does not answer throws.
std::string render_metrics(Client& client, const RequestMetrics& requests);

}  // namespace shmq::bridge
