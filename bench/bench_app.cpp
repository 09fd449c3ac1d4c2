#include "bench_app.hpp"

#include <unistd.h>

#include <exception>
#include <memory>
#include <ostream>

#include "svg_plot.hpp"
#include "transport_registry.hpp"

namespace shmq::bench {

TransportResult run_transport(const std::string& name, const BenchOptions& options) {
  TransportResult result{name, RunStatus::ok, {}, {}, {}};
  const bool pingpong = options.workload == Workload::pingpong;
  std::unique_ptr<Transport> transport;
  try {
    transport = make_transport(name, options.settings);
    const std::size_t producers = pingpong ? 1 : options.producers;
    const std::size_t consumers = pingpong ? 1 : options.consumers;
    const Transport::Features features = transport->features();
    if (auto why = transport->unsupported(options.channel, producers, consumers)) {
      result.status = RunStatus::skipped;
      result.reason = *why;
    } else if (options.channel.fifo_groups > 0 && !features.message_groups) {
      result.status = RunStatus::skipped;
      result.reason = "no message groups (--fifo-groups)";
    } else if (!pingpong && options.backlog > 0 && !features.backlog) {
      result.status = RunStatus::skipped;
      result.reason = "no backlog of any size (--backlog)";
    } else if (!pingpong && options.send_batch > 1 && !features.batch_send) {
      result.status = RunStatus::skipped;
      result.reason = "no batch sends (--send-batch)";
    } else if (!pingpong && options.settings.buffered_sender && !features.buffered_send) {
      result.status = RunStatus::skipped;
      result.reason = "no buffered sender (--buffered-sender)";
    } else if (pingpong) {
      result.latency = run_pingpong(*transport, {options.channel, options.iterations, options.warmup, options.pin});
    } else {
      result.stream =
          run_stream(*transport, {options.channel, options.messages, options.producers, options.consumers,
                                  options.batch, options.pin, options.backlog, options.send_batch, options.sequential});
    }
  } catch (const std::exception& e) {
    result.status = RunStatus::failed;
    result.reason = e.what();
  }
  if (transport) {
    try {
      transport->destroy_channels();
    } catch (const std::exception& e) {
      // The figures stand; what was left behind is worth saying.
      if (result.status == RunStatus::ok) result.reason = std::string("cleaning up: ") + e.what();
    }
  }
  return result;
}

int run_bench(const BenchOptions& options, std::ostream& out, std::ostream& err, bool progress) {
  BenchReport report{probe_machine(), options, {}};
  // Names of queues, segments and endpoints carry the pid: runs side by side do not collide.
  report.options.settings.run_id = "shmqbench" + std::to_string(::getpid());
  int status = 0;
  for (const std::string& name : options.transports) {
    if (progress) err << "shmq-bench: " << name << " ..." << std::endl;
    report.results.push_back(run_transport(name, report.options));
    if (report.results.back().status == RunStatus::failed) status = 1;
  }
  if (options.json) {
    print_json(report, out);
  } else {
    print_table(report, out);
  }
  if (!options.plot_path.empty()) {
    try {
      write_svg(report, options.plot_path);
    } catch (const std::exception& e) {
      err << "shmq-bench: " << e.what() << "\n";
      status = 1;
    }
  }
  return status;
}

}  // namespace shmq::bench
