#include "daemon_attributes.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "redrive_policy.hpp"
#include "shmq/error.hpp"

namespace shmq::daemon {

namespace {

constexpr std::string_view kPolicy = "Policy";
constexpr std::string_view kRedrivePolicy = "RedrivePolicy";
constexpr std::string_view kRedriveAllowPolicy = "RedriveAllowPolicy";
constexpr std::string_view kSse = "SqsManagedSseEnabled";
constexpr std::string_view kKmsKey = "KmsMasterKeyId";
constexpr std::string_view kKmsReuse = "KmsDataKeyReusePeriodSeconds";
constexpr std::string_view kQueueArn = "QueueArn";

constexpr std::array kSettable{kPolicy, kRedrivePolicy, kRedriveAllowPolicy, kSse, kKmsKey, kKmsReuse};

constexpr std::uint32_t kMinKmsReuse = 60;
constexpr std::uint32_t kMaxKmsReuse = 86400;
constexpr std::string_view kDefaultKmsReuse = "300";  // SQS's default

bool settable(std::string_view name) { return std::find(kSettable.begin(), kSettable.end(), name) != kSettable.end(); }

// Canonical form of one attribute's value, or the reason it is invalid.
std::optional<std::string> canonical(std::string_view name, const std::string& value, std::string& reason) {
  if (name == kPolicy) {
    const auto doc = nlohmann::json::parse(value, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      reason = "the policy must be a JSON object";
      return std::nullopt;
    }
    return value;  // stored and returned as given
  }
  if (name == kRedrivePolicy) {
    const auto policy = parse_redrive_policy(value, reason);
    return policy ? std::optional(policy->render()) : std::nullopt;
  }
  if (name == kRedriveAllowPolicy) {
    const auto policy = parse_redrive_allow_policy(value, reason);
    return policy ? std::optional(policy->render()) : std::nullopt;
  }
  if (name == kSse) {
    // Any case, as SQS reads booleans.
    std::string lower = value;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "true" || lower == "false") return lower;
    reason = "true or false";
    return std::nullopt;
  }
  if (name == kKmsReuse) {
    std::uint32_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size() || seconds < kMinKmsReuse || seconds > kMaxKmsReuse) {
      reason = "seconds from 60 to 86400";
      return std::nullopt;
    }
    return std::to_string(seconds);
  }
  return value;  // KmsMasterKeyId: any alias or key id
}

}  // namespace

void split_attributes(const Attributes& all, Attributes& header_attributes, Attributes& daemon_attributes) {
  for (const auto& [name, value] : all) (settable(name) ? daemon_attributes : header_attributes).emplace(name, value);
}

void split_names(const std::vector<std::string>& all, std::vector<std::string>& header_names,
                 std::vector<std::string>& daemon_names) {
  for (const std::string& name : all) {
    if (name == "All") {
      header_names.push_back(name);
      daemon_names.push_back(name);
    } else if (settable(name) || name == kQueueArn) {
      daemon_names.push_back(name);
    } else {
      header_names.push_back(name);
    }
  }
}

std::error_code apply_daemon_attributes(const Attributes& given, Attributes& stored, std::string& culprit,
                                        std::string& reason) {
  for (const auto& [name, value] : given) {
    culprit = name;
    if (value.empty()) {
      stored.erase(name);
      // No key, no key reuse period (SQS leaves it out of the answer).
      if (name == kKmsKey) stored.erase(std::string(kKmsReuse));
      continue;
    }
    if (name == kPolicy && value.size() > kMaxPolicyBytes) {
      reason = kPolicyTooLarge;
      return Errc::over_limit;
    }
    const std::optional<std::string> value_ok = canonical(name, value, reason);
    if (!value_ok) return Errc::invalid_attribute_value;
    stored[name] = *value_ok;
  }
  // SQS-managed encryption and a KMS key exclude each other: the one given
  // now wins; both at once is a contradiction.
  const bool sse_given =
      given.count(std::string(kSse)) && stored.count(std::string(kSse)) && stored.at(std::string(kSse)) == "true";
  const bool key_given = given.count(std::string(kKmsKey)) && !given.at(std::string(kKmsKey)).empty();
  if (sse_given && key_given) {
    culprit = kSse;
    reason = "SqsManagedSseEnabled=true and a KmsMasterKeyId exclude each other";
    return Errc::invalid_attribute_value;
  }
  if (sse_given) stored.erase(std::string(kKmsKey));
  if (key_given) stored[std::string(kSse)] = "false";
  culprit.clear();
  reason.clear();
  return {};
}

void render_daemon_attributes(const Attributes& stored, const std::string& queue_arn,
                              const std::vector<std::string>& names, Attributes& out) {
  Attributes all = stored;
  // SQS-managed encryption is on by default (as on SQS since 2022), unless a KMS key replaced it.
  all.emplace(kSse, all.count(std::string(kKmsKey)) ? "false" : "true");
  if (all.count(std::string(kKmsKey))) all.emplace(kKmsReuse, kDefaultKmsReuse);
  all.emplace(kQueueArn, queue_arn);
  for (const std::string& name : names) {
    if (name == "All") {
      out.insert(all.begin(), all.end());
    } else if (auto it = all.find(name); it != all.end()) {
      out.insert(*it);
    }
  }
}

}  // namespace shmq::daemon
