// What shmq-bench prints: a table for people, or one JSON object for
// programs, with the machine and the run's settings.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "bench_options.hpp"
#include "latency_summary.hpp"
#include "machine_info.hpp"
#include "workloads.hpp"

namespace shmq::bench {

enum class RunStatus {
  ok,       // measured
  skipped,  // the transport cannot run these options (Transport::unsupported)
  failed,   // it could not start, or a process failed
};

struct TransportResult {
  std::string transport;
  RunStatus status = RunStatus::ok;
  std::string reason;      // why skipped or failed
  LatencySummary latency;  // pingpong, when ok
  StreamSummary stream;    // stream, when ok
};

struct BenchReport {
  MachineInfo machine;
  BenchOptions options;
  std::vector<TransportResult> results;  // in the order they ran
};

// The result's headline figure relative to shmq's: p50 / shmq's p50 for
// pingpong (below 1: faster than shmq), messages/s / shmq's for stream
// (above 1: faster). nullopt unless both ran.
std::optional<double> relative_to_shmq(const BenchReport& report, const TransportResult& result);

// "64 B", "1 KiB", "1 MiB"; other sizes in bytes.
std::string format_bytes(std::size_t bytes);

// The run in one line: "pingpong, 64 B messages, wait spin".
std::string describe_run(const BenchOptions& options);

// The table: a header with the run and the machine, one row per transport.
void print_table(const BenchReport& report, std::ostream& out);

// One JSON object: "machine", "workload", "size", "wait", settings, "results".
void print_json(const BenchReport& report, std::ostream& out);

}  // namespace shmq::bench
