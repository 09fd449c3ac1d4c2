#include "metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "shmq/error.hpp"
#include "shmq/version.hpp"

namespace shmq::bridge {

// ---- TextExposition ----

void TextExposition::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void TextExposition::labels(Labels labels) {
  if (labels.size() == 0) return;
  out_ += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_.append(key);
    out_ += "=\"";
    for (const char c : value) {
      // The format's three escapes; nothing else is special in a label value.
      if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '"') {
        out_ += "\\\"";
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }
  out_ += '}';
}

void TextExposition::sample(std::string_view name, Labels labels, double value) {
  out_.append(name);
  this->labels(labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void TextExposition::sample(std::string_view name, Labels labels, std::uint64_t value) {
  out_.append(name);
  this->labels(labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

// ---- RequestMetrics ----

void RequestMetrics::observe(std::string_view action, unsigned code,
                             std::chrono::steady_clock::duration took) noexcept {
  const double seconds = std::chrono::duration<double>(took).count();
  const auto bucket = static_cast<std::size_t>(std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) -
                                               kBuckets.begin());  // kBuckets.size(): +Inf only
  try {
    const std::lock_guard lock(mutex_);
    auto counted = requests_.find(action);
    if (counted == requests_.end())
      counted = requests_.emplace(std::string(action), std::map<unsigned, std::uint64_t>{}).first;
    ++counted->second[code];
    auto latency = latency_.find(action);
    if (latency == latency_.end()) latency = latency_.emplace(std::string(action), Latency{}).first;
    if (bucket < kBuckets.size()) ++latency->second.buckets[bucket];
    ++latency->second.count;
    latency->second.sum_seconds += seconds;
  } catch (...) {
    // Out of memory for a new series: this request goes uncounted.
  }
}

void RequestMetrics::write(TextExposition& out) const {
  const std::lock_guard lock(mutex_);
  out.family("shmq_bridge_requests_total", "counter",
             "SQS API requests the bridge answered, by action and HTTP status code.");
  for (const auto& [action, codes] : requests_) {
    for (const auto& [code, n] : codes) {
      const std::string code_text = std::to_string(code);
      out.sample("shmq_bridge_requests_total", {{"action", action}, {"code", code_text}}, n);
    }
  }
  out.family("shmq_bridge_request_duration_seconds", "histogram",
             "Time from a request's arrival to its answer, by action (long polls included).");
  for (const auto& [action, latency] : latency_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += latency.buckets[i];
      const std::string le = fmt::format("{}", kBuckets[i]);
      out.sample("shmq_bridge_request_duration_seconds_bucket", {{"action", action}, {"le", le}}, cumulative);
    }
    out.sample("shmq_bridge_request_duration_seconds_bucket", {{"action", action}, {"le", "+Inf"}}, latency.count);
    out.sample("shmq_bridge_request_duration_seconds_sum", {{"action", action}}, latency.sum_seconds);
    out.sample("shmq_bridge_request_duration_seconds_count", {{"action", action}}, latency.count);
  }
}

namespace {

struct QueueFigures {
  std::string name;
  QueueStats stats;
};

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

void write_queues(TextExposition& out, const std::vector<QueueFigures>& queues, std::uint64_t refused) {
  out.family("shmq_queues", "gauge", "Queues the daemon serves.");
  out.sample("shmq_queues", {}, static_cast<std::uint64_t>(queues.size()));
  out.family("shmq_refused_queues", "gauge", "Queue segments the daemon refused to attach (see shmqctl health).");
  out.sample("shmq_refused_queues", {}, refused);

  out.family("shmq_queue_messages", "gauge",
             "Messages in the queue by state: visible (receivable), in_flight (received, not deleted), delayed.");
  for (const auto& q : queues) {
    out.sample("shmq_queue_messages", {{"queue", q.name}, {"state", "visible"}}, q.stats.counts.visible);
    out.sample("shmq_queue_messages", {{"queue", q.name}, {"state", "in_flight"}}, q.stats.counts.in_flight);
    out.sample("shmq_queue_messages", {{"queue", q.name}, {"state", "delayed"}}, q.stats.counts.delayed);
  }
  const std::uint64_t now = now_ms();
  out.family("shmq_queue_oldest_message_age_seconds", "gauge",
             "Age of the oldest message not deleted (ApproximateAgeOfOldestMessage); 0 when the queue is empty.");
  for (const auto& q : queues) {
    const std::uint64_t sent = q.stats.oldest_sent_timestamp_ms;
    const double age = sent == 0 || sent > now ? 0.0 : static_cast<double>(now - sent) / 1000.0;
    out.sample("shmq_queue_oldest_message_age_seconds", {{"queue", q.name}}, age);
  }
  struct Total {
    std::string_view name;
    std::string_view help;
    std::uint64_t QueueStats::*field;
  };
  static constexpr std::array<Total, 5> kTotals{{
      {"shmq_queue_messages_sent_total", "Messages sent to the queue.", &QueueStats::sent_total},
      {"shmq_queue_messages_received_total",
       "Receives of the queue's messages (a message received twice counts twice).", &QueueStats::received_total},
      {"shmq_queue_messages_deleted_total", "Messages deleted from the queue.", &QueueStats::deleted_total},
      {"shmq_queue_messages_expired_total", "Messages dropped at the end of the queue's retention period.",
       &QueueStats::expired_total},
      {"shmq_queue_messages_dead_lettered_total", "Messages moved from the queue to its dead-letter queue.",
       &QueueStats::dead_lettered_total},
  }};
  for (const Total& t : kTotals) {
    out.family(t.name, "counter", t.help);
    for (const auto& q : queues) out.sample(t.name, {{"queue", q.name}}, q.stats.*t.field);
  }
  out.family("shmq_queue_memory_bytes", "gauge",
             "Shared memory the queue holds now (grows and shrinks with its backlog).");
  for (const auto& q : queues) out.sample("shmq_queue_memory_bytes", {{"queue", q.name}}, q.stats.memory_bytes);
  out.family("shmq_queue_memory_limit_bytes", "gauge",
             "Shared memory the queue may hold; sends are refused past it. Absent for a queue without a limit.");
  for (const auto& q : queues) {
    if (q.stats.memory_limit_bytes != 0) {
      out.sample("shmq_queue_memory_limit_bytes", {{"queue", q.name}}, q.stats.memory_limit_bytes);
    }
  }
}

// The process collector's figures, as Prometheus's client libraries name
// them, from /proc/self (the bridge runs inside shmqd).
void write_process(TextExposition& out) {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
  // f[0] is field 3 (state): field n is f[n - 3].
  if (f.size() < 22) return;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double cpu = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
  const double started_after_boot = std::stod(f[22 - 3]) / ticks;
  const std::uint64_t virtual_bytes = std::stoull(f[23 - 3]);
  const std::uint64_t resident_bytes = std::stoull(f[24 - 3]) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));

  double boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string line; std::getline(proc_stat, line);) {
    if (line.starts_with("btime ")) boot_time = std::stod(line.substr(6));
  }
  std::uint64_t open_fds = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
    ++open_fds;
  }
  rlimit fd_limit{};
  ::getrlimit(RLIMIT_NOFILE, &fd_limit);

  out.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  out.sample("process_cpu_seconds_total", {}, cpu);
  out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out.sample("process_resident_memory_bytes", {}, resident_bytes);
  out.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  out.sample("process_virtual_memory_bytes", {}, virtual_bytes);
  out.family("process_open_fds", "gauge", "Number of open file descriptors.");
  out.sample("process_open_fds", {}, open_fds);
  out.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  out.sample("process_max_fds", {}, static_cast<std::uint64_t>(fd_limit.rlim_cur));
  out.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  out.sample("process_start_time_seconds", {}, boot_time + started_after_boot);
}

}  // namespace

std::string render_metrics(Client& client, const RequestMetrics& requests) {
  const DaemonHealth health = client.health();
  std::vector<QueueFigures> queues;
  for (std::string& name : client.list_queues()) {
    try {
      QueueStats stats = client.stats(name);
      queues.push_back({std::move(name), stats});
    } catch (const std::system_error& e) {
      if (e.code() != Errc::queue_does_not_exist) throw;  // deleted since it was listed
    }
  }
  TextExposition out;
  out.family("shmq_build_info", "gauge", "The running shmqd's version; always 1.");
  out.sample("shmq_build_info", {{"version", SHMQ_VERSION}}, std::uint64_t{1});
  write_queues(out, queues, health.refused_queues);
  requests.write(out);
  write_process(out);
  return out.text();
}

}  // namespace shmq::bridge
