// The report as a chart: a self-contained SVG file, text written directly.
// pingpong: latency percentiles (p50 .. max) per transport as grouped bars
// on a log scale; stream: messages per second per transport.
#pragma once

#include <string>

#include "report.hpp"

namespace shmq::bench {

// The chart as SVG text, with title, machine, labelled axes and legend;
// transports that did not run are named below it with the reason.
std::string render_svg(const BenchReport& report);

// Writes render_svg(report) to `path`. Throws std::runtime_error if the file
// cannot be written.
void write_svg(const BenchReport& report, const std::string& path);

}  // namespace shmq::bench
