// shmq-bench as a library: runs a workload over each chosen transport in
// turn and reports the results side by side.
#pragma once

#include <iosfwd>
#include <string>

#include "bench_options.hpp"
#include "report.hpp"

namespace shmq::bench {

// Runs the workload over one transport: makes it, asks whether it supports
// the options, measures, and removes its channels. Blocks for the run. Does
// not throw: a transport that cannot start or whose process fails comes back
// as failed, with the message.
TransportResult run_transport(const std::string& name, const BenchOptions& options);

// Runs every chosen transport, prints the table (or JSON) on `out` and
// writes the plot if asked; `progress` names each transport on `err` as it
// starts. Returns the exit status: 0 if every transport ran or was skipped,
// 1 if one failed or the plot could not be written.
int run_bench(const BenchOptions& options, std::ostream& out, std::ostream& err, bool progress);

}  // namespace shmq::bench
