#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

namespace shmq::bench {
namespace {

const char* workload_name(Workload w) { return w == Workload::pingpong ? "pingpong" : "stream"; }
const char* wait_name(WaitMode w) { return w == WaitMode::spin ? "spin" : "block"; }
const char* status_name(RunStatus s) {
  switch (s) {
    case RunStatus::ok:
      return "ok";
    case RunStatus::skipped:
      return "skipped";
    case RunStatus::failed:
      break;
  }
  return "failed";
}

// 1234567 -> "1,234,567".
std::string grouped(double value) {
  const std::string digits = std::to_string(std::llround(std::max(value, 0.0)));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string printf_string(const char* format, auto... args) {
  char line[512];
  std::snprintf(line, sizeof(line), format, args...);
  return line;
}

const TransportResult* shmq_result(const BenchReport& report) {
  for (const TransportResult& r : report.results) {
    if (r.transport == "shmq" && r.status == RunStatus::ok) return &r;
  }
  return nullptr;
}

std::string pin_list(const std::vector<int>& pin) {
  std::string text;
  for (int cpu : pin) {
    if (!text.empty()) text += ',';
    text += std::to_string(cpu);
  }
  return text;
}

}  // namespace

std::optional<double> relative_to_shmq(const BenchReport& report, const TransportResult& result) {
  const TransportResult* shmq = shmq_result(report);
  if (shmq == nullptr || result.status != RunStatus::ok) return std::nullopt;
  if (report.options.workload == Workload::pingpong) {
    if (shmq->latency.p50_ns <= 0) return std::nullopt;
    return result.latency.p50_ns / shmq->latency.p50_ns;
  }
  if (shmq->stream.messages_per_s <= 0) return std::nullopt;
  return result.stream.messages_per_s / shmq->stream.messages_per_s;
}

std::string format_bytes(std::size_t bytes) {
  if (bytes >= 1048576 && bytes % 1048576 == 0) return std::to_string(bytes / 1048576) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " B";
}

std::string describe_run(const BenchOptions& o) {
  std::string text = std::string(workload_name(o.workload)) + ", " + format_bytes(o.channel.message_bytes) +
                     " messages, wait " + wait_name(o.channel.wait);
  if (o.channel.wait == WaitMode::block && o.channel.block_spin.count() > 0) {
    text += " after " + std::to_string(o.channel.block_spin.count()) + " us of polling";
  }
  if (o.channel.fifo_groups > 0) text += ", FIFO over " + std::to_string(o.channel.fifo_groups) + " groups";
  return text;
}

void print_table(const BenchReport& report, std::ostream& out) {
  const BenchOptions& o = report.options;
  const bool pingpong = o.workload == Workload::pingpong;
  // The transport column: 10 wide, wider for a longer name (shmq-remote).
  int width = 10;
  for (const TransportResult& r : report.results) width = std::max(width, static_cast<int>(r.transport.size()));
  out << "shmq-bench " << describe_run(o) << "\n";
  if (pingpong) {
    out << grouped(static_cast<double>(o.iterations)) << " round trips after " << grouped(static_cast<double>(o.warmup))
        << " unmeasured";
  } else {
    out << grouped(static_cast<double>(o.messages)) << " messages, " << o.producers
        << (o.producers == 1 ? " producer, " : " producers, ") << o.consumers
        << (o.consumers == 1 ? " consumer" : " consumers") << ", receive batch " << o.batch;
    if (o.backlog > 0) out << ", backlog " << grouped(static_cast<double>(o.backlog));
    if (o.send_batch > 1) out << ", send batch " << o.send_batch;
    if (o.settings.buffered_sender) out << ", sends through shmq::BufferedSender";
    if (o.sequential) out << ", sequential";
  }
  out << ", channel capacity " << o.channel.capacity;
  if (!o.pin.empty()) out << ", pinned to CPUs " << pin_list(o.pin);
  out << "\nmachine: " << describe(report.machine) << "\n";
  if (pingpong) {
    out << "round-trip latency in ns; x shmq = p50 / shmq's p50 (below 1: faster than shmq)\n\n";
    out << printf_string("%-*s %9s %9s %9s %9s %9s %9s %14s %7s\n", width, "transport", "p50", "p90", "p99", "p99.9",
                         "max", "mean", "round trips/s", "x shmq");
  } else if (o.sequential) {
    out << "all sends, then all receives (each deleted), each side timed alone; messages/s = messages / (send\n"
           "time + receive time); MB = 10^6 bytes; x shmq = messages/s / shmq's (above 1: faster than shmq)\n\n";
    out << printf_string("%-*s %12s %12s %14s %10s %7s\n", width, "transport", "sends/s", "receives/s", "messages/s",
                         "MB/s", "x shmq");
  } else {
    out << "from the first send to the last message consumed; MB = 10^6 bytes;\n"
           "x shmq = messages/s / shmq's messages/s (above 1: faster than shmq)\n\n";
    out << printf_string("%-*s %14s %10s %7s\n", width, "transport", "messages/s", "MB/s", "x shmq");
  }
  for (const TransportResult& r : report.results) {
    if (r.status != RunStatus::ok) {
      out << printf_string("%-*s %s: %s\n", width, r.transport.c_str(), status_name(r.status), r.reason.c_str());
      continue;
    }
    const auto relative = relative_to_shmq(report, r);
    const std::string ratio = relative ? printf_string("%.2f", *relative) : "-";
    if (pingpong) {
      const LatencySummary& l = r.latency;
      out << printf_string("%-*s %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %14s %7s\n", width, r.transport.c_str(), l.p50_ns,
                           l.p90_ns, l.p99_ns, l.p999_ns, l.max_ns, l.mean_ns, grouped(l.round_trips_per_s).c_str(),
                           ratio.c_str());
    } else if (o.sequential) {
      out << printf_string("%-*s %12s %12s %14s %10.1f %7s\n", width, r.transport.c_str(),
                           grouped(r.stream.sends_per_s).c_str(), grouped(r.stream.receives_per_s).c_str(),
                           grouped(r.stream.messages_per_s).c_str(), r.stream.mb_per_s, ratio.c_str());
    } else {
      out << printf_string("%-*s %14s %10.1f %7s\n", width, r.transport.c_str(),
                           grouped(r.stream.messages_per_s).c_str(), r.stream.mb_per_s, ratio.c_str());
    }
  }
}

void print_json(const BenchReport& report, std::ostream& out) {
  const BenchOptions& o = report.options;
  nlohmann::ordered_json j;
  j["machine"] = {
      {"cpu", report.machine.cpu_model}, {"cores", report.machine.cores}, {"kernel", report.machine.kernel}};
  j["workload"] = workload_name(o.workload);
  j["size"] = o.channel.message_bytes;
  j["wait"] = wait_name(o.channel.wait);
  j["block_spin_us"] = o.channel.block_spin.count();
  j["capacity"] = o.channel.capacity;
  if (o.workload == Workload::pingpong) {
    j["iterations"] = o.iterations;
    j["warmup"] = o.warmup;
  } else {
    j["messages"] = o.messages;
    j["producers"] = o.producers;
    j["consumers"] = o.consumers;
    j["batch"] = o.batch;
    j["backlog"] = o.backlog;
    j["send_batch"] = o.send_batch;
    j["sequential"] = o.sequential;
    j["buffered_sender"] = o.settings.buffered_sender;
  }
  j["fifo_groups"] = o.channel.fifo_groups;
  if (!o.settings.endpoint.empty()) j["endpoint"] = o.settings.endpoint;
  j["pin"] = o.pin;
  j["results"] = nlohmann::ordered_json::array();
  for (const TransportResult& r : report.results) {
    nlohmann::ordered_json e{{"transport", r.transport}, {"status", status_name(r.status)}, {"reason", r.reason}};
    if (r.status == RunStatus::ok && o.workload == Workload::pingpong) {
      e["samples"] = r.latency.samples;
      e["p50_ns"] = r.latency.p50_ns;
      e["p90_ns"] = r.latency.p90_ns;
      e["p99_ns"] = r.latency.p99_ns;
      e["p999_ns"] = r.latency.p999_ns;
      e["max_ns"] = r.latency.max_ns;
      e["mean_ns"] = r.latency.mean_ns;
      e["round_trips_per_s"] = r.latency.round_trips_per_s;
    } else if (r.status == RunStatus::ok) {
      e["messages"] = r.stream.messages;
      e["seconds"] = r.stream.seconds;
      e["messages_per_s"] = r.stream.messages_per_s;
      e["mb_per_s"] = r.stream.mb_per_s;
      e["send_seconds"] = r.stream.send_seconds;
      e["sends_per_s"] = r.stream.sends_per_s;
      e["receive_seconds"] = r.stream.receive_seconds;
      e["receives_per_s"] = r.stream.receives_per_s;
    }
    if (const auto relative = relative_to_shmq(report, r)) e["x_shmq"] = *relative;
    j["results"].push_back(std::move(e));
  }
  out << j.dump(2) << "\n";
}

}  // namespace shmq::bench
