#include "latency_summary.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace shmq::bench {
namespace {

// The smallest sample with at least q of all samples at or below it.
double nearest_rank(const std::vector<std::uint64_t>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]);
}

}  // namespace

LatencySummary summarise_latency(std::vector<std::uint64_t>& samples_ns, std::uint64_t elapsed_ns) {
  if (samples_ns.empty() || elapsed_ns == 0) throw std::invalid_argument("no latency samples");
  std::sort(samples_ns.begin(), samples_ns.end());
  const double total = std::accumulate(samples_ns.begin(), samples_ns.end(), 0.0);
  LatencySummary s;
  s.samples = samples_ns.size();
  s.p50_ns = nearest_rank(samples_ns, 0.50);
  s.p90_ns = nearest_rank(samples_ns, 0.90);
  s.p99_ns = nearest_rank(samples_ns, 0.99);
  s.p999_ns = nearest_rank(samples_ns, 0.999);
  s.max_ns = static_cast<double>(samples_ns.back());
  s.mean_ns = total / static_cast<double>(samples_ns.size());
  s.round_trips_per_s = static_cast<double>(samples_ns.size()) * 1e9 / static_cast<double>(elapsed_ns);
  return s;
}

}  // namespace shmq::bench
