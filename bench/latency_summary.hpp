// Round-trip latencies reduced to the figures the report prints.
#pragma once

#include <cstdint>
#include <vector>

namespace shmq::bench {

struct LatencySummary {
  std::uint64_t samples = 0;
  double p50_ns = 0;
  double p90_ns = 0;
  double p99_ns = 0;
  double p999_ns = 0;
  double max_ns = 0;
  double mean_ns = 0;
  double round_trips_per_s = 0;  // samples / the measured loop's wall time
};

// Percentiles by nearest rank over `samples_ns` (sorted in place). Throws
// std::invalid_argument if there are none or elapsed_ns is 0.
LatencySummary summarise_latency(std::vector<std::uint64_t>& samples_ns, std::uint64_t elapsed_ns);

}  // namespace shmq::bench
