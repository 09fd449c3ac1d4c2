// shmq-bench's command line.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "transport.hpp"
#include "transports.hpp"
#include "workloads.hpp"

namespace shmq::bench {

// What to run, decided from the flags and their size-dependent defaults.
struct BenchOptions {
  Workload workload = Workload::pingpong;
  std::vector<std::string> transports{"shmq"};  // in the order to run them
  ChannelOptions channel;                       // message size, capacity, wait mode, block spin, FIFO groups
  std::size_t iterations = 0;                   // pingpong: round trips measured
  std::size_t warmup = 0;                       // pingpong: round trips before those
  std::size_t messages = 0;                     // stream: messages sent in all
  std::size_t producers = 1;                    // stream
  std::size_t consumers = 1;                    // stream
  std::size_t batch = kMaxBatch;                // stream: most messages per receive
  std::size_t backlog = 0;                      // stream: messages in the channel before and while timed
  std::size_t send_batch = 1;                   // stream: messages per send call (transports with batch sends)
  bool sequential = false;                      // stream: all sends, then all receives, each timed alone
  std::vector<int> pin;                         // CPUs of the worker processes, in order
  bool json = false;                            // JSON on stdout instead of the table
  std::string plot_path;                        // write an SVG chart here, if set
  TransportSettings settings;                   // run_id is left to the caller
};

// A flag that is unknown, malformed or out of range; what() says which and why.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses the command line. Returns nullopt after printing the help to
// `help_out` (for --help). Throws UsageError.
std::optional<BenchOptions> parse_options(int argc, const char* const argv[], std::ostream& help_out);

// "64", "4096", "1KiB", "64KiB", "1MiB" (also K, M, B) as bytes. Throws UsageError.
std::size_t parse_size(const std::string& text);

}  // namespace shmq::bench
