#include "queue_attributes.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>

#include "shmq/error.hpp"

namespace shmq::detail {

namespace {

struct Settable {
  std::string_view name;
  std::uint32_t QueueSettings::*field;
  std::uint32_t min;
  std::uint32_t max;
};

constexpr std::array kSettable{
    Settable{"VisibilityTimeout", &QueueSettings::visibility_timeout_s, 0, kMaxVisibilityTimeout},
    Settable{"MaximumMessageSize", &QueueSettings::maximum_message_size, 1024, 1048576},
    Settable{"ReceiveMessageWaitTimeSeconds", &QueueSettings::receive_wait_s, 0, kMaxWaitSeconds},
    Settable{"MessageRetentionPeriod", &QueueSettings::retention_s, 60, 1209600},
    Settable{"DelaySeconds", &QueueSettings::delay_s, 0, kMaxDelaySeconds},
};

std::uint32_t load(const std::uint32_t& field) {
  // Relaxed: each attribute is an independent value; no ordering with others.
  return atom(const_cast<std::uint32_t&>(field)).load(std::memory_order_relaxed);
}

}  // namespace

namespace {

bool plain_name(std::string_view name, std::size_t max) noexcept {
  if (name.empty() || name.size() > max) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

constexpr std::string_view kFifoSuffix = ".fifo";

// "true" or "false" in any case, as Amazon SQS reads them ("True" too).
bool same_ignoring_case(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x) == y;
         });
}

std::error_code parse_bool(const std::string& value, bool& out) {
  if (same_ignoring_case(value, "true")) {
    out = true;
  } else if (same_ignoring_case(value, "false")) {
    out = false;
  } else {
    return Errc::invalid_attribute_value;
  }
  return {};
}

}  // namespace

bool is_fifo_name(std::string_view name) noexcept { return name.ends_with(kFifoSuffix); }

bool valid_queue_name(std::string_view name) noexcept {
  if (name.size() > kMaxQueueName) return false;
  if (is_fifo_name(name)) name.remove_suffix(kFifoSuffix.size());
  return plain_name(name, kMaxQueueName);
}

bool valid_entry_id(std::string_view id) noexcept { return plain_name(id, 80); }

std::error_code apply_attributes(const Attributes& attributes, QueueSettings& settings, std::string& culprit,
                                 bool creating) {
  // FifoQueue first: the FIFO-only attributes depend on it.
  // As Amazon SQS answers: FifoQueue is no attribute of a standard queue
  // (FifoQueue=false included), and a FIFO queue's stays true.
  if (auto it = attributes.find("FifoQueue"); it != attributes.end()) {
    culprit = it->first;
    bool fifo = false;
    if (auto ec = parse_bool(it->second, fifo)) return ec;
    if (creating) {
      if (!fifo) return Errc::invalid_attribute_name;
      settings.fifo = true;
    } else if (!settings.fifo) {
      return Errc::invalid_attribute_name;
    } else if (!fifo) {
      return Errc::invalid_attribute_value;  // modifying the queue type
    }
  }
  for (const auto& [name, value] : attributes) {
    culprit = name;
    if (name == "FifoQueue") continue;
    if (name == "ContentBasedDeduplication" || name == "DeduplicationScope" || name == "FifoThroughputLimit") {
      if (!settings.fifo) return Errc::invalid_attribute_name;  // FIFO queues only
      if (name == "ContentBasedDeduplication") {
        if (auto ec = parse_bool(value, settings.content_dedup)) return ec;
      } else if (name == "DeduplicationScope") {
        if (value != "messageGroup" && value != "queue") return Errc::invalid_attribute_value;
        settings.dedup_per_group = value == "messageGroup";
      } else {
        if (value != "perMessageGroupId" && value != "perQueue") return Errc::invalid_attribute_value;
        settings.throughput_per_group = value == "perMessageGroupId";
      }
      continue;
    }
    const Settable* found = nullptr;
    for (const Settable& s : kSettable) {
      if (s.name == name) found = &s;
    }
    if (!found) return Errc::invalid_attribute_name;
    std::uint32_t parsed = 0;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
    if (value.empty() || ec != std::errc{} || ptr != end || parsed < found->min || parsed > found->max) {
      return Errc::invalid_attribute_value;
    }
    settings.*(found->field) = parsed;
  }
  // SQS: per-group throughput needs per-group deduplication.
  if (settings.throughput_per_group && !settings.dedup_per_group) {
    culprit = "FifoThroughputLimit";
    return Errc::invalid_attribute_value;
  }
  culprit.clear();
  return {};
}

QueueSettings read_settings(const SegmentHeader& h) noexcept {
  QueueSettings s;
  s.visibility_timeout_s = load(h.visibility_timeout_s);
  s.maximum_message_size = load(h.maximum_message_size);
  s.receive_wait_s = load(h.receive_wait_s);
  s.retention_s = load(h.retention_s);
  s.delay_s = load(h.delay_s);
  s.fifo = h.fifo != 0;
  s.content_dedup = load(h.content_dedup) != 0;
  s.dedup_per_group = load(h.dedup_per_group) != 0;
  s.throughput_per_group = load(h.throughput_per_group) != 0;
  return s;
}

void write_settings(SegmentHeader& h, const QueueSettings& s, std::uint64_t now_ms) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;  // independent values, see load()
  atom(h.visibility_timeout_s).store(s.visibility_timeout_s, relaxed);
  atom(h.maximum_message_size).store(s.maximum_message_size, relaxed);
  atom(h.receive_wait_s).store(s.receive_wait_s, relaxed);
  atom(h.retention_s).store(s.retention_s, relaxed);
  atom(h.delay_s).store(s.delay_s, relaxed);
  atom(h.content_dedup).store(s.content_dedup ? 1 : 0, relaxed);
  atom(h.dedup_per_group).store(s.dedup_per_group ? 1 : 0, relaxed);
  atom(h.throughput_per_group).store(s.throughput_per_group ? 1 : 0, relaxed);
  atom(h.last_modified_ms).store(now_ms, relaxed);
}

std::error_code render_attributes(const SegmentHeader& h, const std::vector<std::string>& names, Attributes& out,
                                  std::string& culprit) {
  auto& counts = const_cast<Counts&>(h.counts);
  const QueueSettings s = read_settings(h);
  Attributes all{
      {"VisibilityTimeout", std::to_string(s.visibility_timeout_s)},
      {"MaximumMessageSize", std::to_string(s.maximum_message_size)},
      {"ReceiveMessageWaitTimeSeconds", std::to_string(s.receive_wait_s)},
      {"MessageRetentionPeriod", std::to_string(s.retention_s)},
      {"DelaySeconds", std::to_string(s.delay_s)},
      {"CreatedTimestamp", std::to_string(h.created_ms / 1000)},
      {"LastModifiedTimestamp",
       std::to_string(atom(const_cast<std::uint64_t&>(h.last_modified_ms)).load(std::memory_order_relaxed) / 1000)},
      {"ApproximateNumberOfMessages", std::to_string(load(counts.visible))},
      {"ApproximateNumberOfMessagesNotVisible", std::to_string(load(counts.in_flight))},
      {"ApproximateNumberOfMessagesDelayed", std::to_string(load(counts.delayed))},
  };
  if (s.fifo) {
    all["FifoQueue"] = "true";
    all["ContentBasedDeduplication"] = s.content_dedup ? "true" : "false";
    all["DeduplicationScope"] = s.dedup_per_group ? "messageGroup" : "queue";
    all["FifoThroughputLimit"] = s.throughput_per_group ? "perMessageGroupId" : "perQueue";
  }
  for (const std::string& name : names) {
    if (name == "All") {
      out.insert(all.begin(), all.end());
      continue;
    }
    auto it = all.find(name);
    if (it == all.end()) {
      culprit = name;
      return Errc::invalid_attribute_name;
    }
    out.insert(*it);
  }
  return {};
}

}  // namespace shmq::detail
