#include "redrive_policy.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace shmq::daemon {

using nlohmann::json;

namespace {

std::optional<json> parse_object(std::string_view text, std::string& reason) {
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    reason = "not a JSON object";
    return std::nullopt;
  }
  return doc;
}

// A count as SQS takes it: a JSON integer or a string of decimal digits.
std::optional<std::uint64_t> count_of(const json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (!value.is_string()) return std::nullopt;
  const std::string& s = value.get_ref<const std::string&>();
  std::uint64_t parsed = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return parsed;
}

}  // namespace

bool looks_like_queue_arn(std::string_view arn) {
  std::vector<std::string_view> parts;
  for (std::size_t from = 0;;) {
    const std::size_t colon = arn.find(':', from);
    parts.push_back(arn.substr(from, colon == std::string_view::npos ? std::string_view::npos : colon - from));
    if (colon == std::string_view::npos) break;
    from = colon + 1;
  }
  return parts.size() == 6 && parts[0] == "arn" && parts[2] == "sqs" &&
         std::none_of(parts.begin(), parts.end(), [](std::string_view p) { return p.empty(); });
}

std::string RedrivePolicy::render() const {
  return json{{"deadLetterTargetArn", dead_letter_target_arn}, {"maxReceiveCount", max_receive_count}}.dump();
}

std::optional<RedrivePolicy> parse_redrive_policy(std::string_view text, std::string& reason) {
  const std::optional<json> doc = parse_object(text, reason);
  if (!doc) return std::nullopt;
  RedrivePolicy policy;
  for (const auto& [key, value] : doc->items()) {
    if (key == "deadLetterTargetArn") {
      if (!value.is_string() || !looks_like_queue_arn(value.get_ref<const std::string&>())) {
        reason = "deadLetterTargetArn must be a queue ARN";
        return std::nullopt;
      }
      policy.dead_letter_target_arn = value.get<std::string>();
    } else if (key == "maxReceiveCount") {
      const std::optional<std::uint64_t> count = count_of(value);
      if (!count || *count < 1 || *count > kMaxMaxReceiveCount) {
        reason = "maxReceiveCount must be an integer from 1 to 1000";
        return std::nullopt;
      }
      policy.max_receive_count = static_cast<std::uint32_t>(*count);
    } else {
      reason = "unknown key '" + key + "'";
      return std::nullopt;
    }
  }
  if (policy.dead_letter_target_arn.empty() || policy.max_receive_count == 0) {
    reason = "deadLetterTargetArn and maxReceiveCount are required";
    return std::nullopt;
  }
  return policy;
}

bool RedriveAllowPolicy::allows(std::string_view source_arn) const {
  switch (permission) {
    case Permission::allow_all:
      return true;
    case Permission::deny_all:
      return false;
    case Permission::by_queue:
      return std::find(source_queue_arns.begin(), source_queue_arns.end(), source_arn) != source_queue_arns.end();
  }
  return false;
}

std::string RedriveAllowPolicy::render() const {
  switch (permission) {
    case Permission::allow_all:
      return json{{"redrivePermission", "allowAll"}}.dump();
    case Permission::deny_all:
      return json{{"redrivePermission", "denyAll"}}.dump();
    case Permission::by_queue:
      break;
  }
  return json{{"redrivePermission", "byQueue"}, {"sourceQueueArns", source_queue_arns}}.dump();
}

std::optional<RedriveAllowPolicy> parse_redrive_allow_policy(std::string_view text, std::string& reason) {
  const std::optional<json> doc = parse_object(text, reason);
  if (!doc) return std::nullopt;
  RedriveAllowPolicy policy;
  bool has_permission = false;
  bool has_sources = false;
  for (const auto& [key, value] : doc->items()) {
    if (key == "redrivePermission") {
      const std::string permission = value.is_string() ? value.get<std::string>() : std::string{};
      if (permission == "allowAll") {
        policy.permission = RedriveAllowPolicy::Permission::allow_all;
      } else if (permission == "denyAll") {
        policy.permission = RedriveAllowPolicy::Permission::deny_all;
      } else if (permission == "byQueue") {
        policy.permission = RedriveAllowPolicy::Permission::by_queue;
      } else {
        reason = "redrivePermission must be allowAll, denyAll or byQueue";
        return std::nullopt;
      }
      has_permission = true;
    } else if (key == "sourceQueueArns") {
      if (!value.is_array()) {
        reason = "sourceQueueArns must be an array of queue ARNs";
        return std::nullopt;
      }
      for (const json& arn : value) {
        if (!arn.is_string() || !looks_like_queue_arn(arn.get_ref<const std::string&>())) {
          reason = "sourceQueueArns must be an array of queue ARNs";
          return std::nullopt;
        }
        policy.source_queue_arns.push_back(arn.get<std::string>());
      }
      has_sources = true;
    } else {
      reason = "unknown key '" + key + "'";
      return std::nullopt;
    }
  }
  if (!has_permission) {
    reason = "redrivePermission is required";
    return std::nullopt;
  }
  if (policy.permission == RedriveAllowPolicy::Permission::by_queue) {
    if (policy.source_queue_arns.empty() || policy.source_queue_arns.size() > kMaxRedriveSourceArns) {
      reason = "byQueue needs 1 to 10 sourceQueueArns (for more, use allowAll)";
      return std::nullopt;
    }
  } else if (has_sources) {
    reason = "sourceQueueArns is only for redrivePermission byQueue";
    return std::nullopt;
  }
  return policy;
}

}  // namespace shmq::daemon
