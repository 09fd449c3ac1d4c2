#include "queue_permissions.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>

#include "shmq/error.hpp"

namespace shmq::daemon {

using nlohmann::json;

namespace {

// The actions SQS lets a queue's owner share with other accounts ("*": all
// of them). A batch form comes with its single form, as in SQS.
constexpr std::array<std::string_view, 9> kShareableActions{
    "*",           "ChangeMessageVisibility",    "DeleteMessage", "GetQueueAttributes",
    "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue",    "ReceiveMessage",
    "SendMessage",
};

constexpr std::size_t kMaxLabel = 80;

[[noreturn]] void invalid(const std::string& parameter, const std::string& value, const std::string& reason) {
  throw std::system_error(Errc::invalid_parameter_value,
                          "Value " + value + " for parameter " + parameter + " is invalid. Reason: " + reason + ".");
}

bool valid_label(const std::string& label) {
  return !label.empty() && label.size() <= kMaxLabel && std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// The policy as an object whose Statement is an array (a single statement
// object is allowed by IAM; it becomes a one-element array).
json policy_document(const std::string& policy, const std::string& queue_arn) {
  if (policy.empty()) {
    // As AddPermission writes it on Amazon SQS.
    return {{"Version", "2008-10-17"}, {"Id", queue_arn + "/SQSDefaultPolicy"}, {"Statement", json::array()}};
  }
  json doc = json::parse(policy, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) invalid("Policy", policy, "the queue's policy is not a JSON object");
  json& statements = doc["Statement"];
  if (statements.is_null()) statements = json::array();
  if (statements.is_object()) statements = json::array({statements});
  if (!statements.is_array()) invalid("Policy", policy, "the queue's policy has no Statement array");
  return doc;
}

bool has_sid(const json& statement, const std::string& label) {
  return statement.is_object() && statement.value("Sid", json()).is_string() &&
         statement.at("Sid").get_ref<const std::string&>() == label;
}

}  // namespace

std::string add_permission(const std::string& policy, const std::string& queue_arn, const std::string& label,
                           const std::vector<std::string>& account_ids, const std::vector<std::string>& actions) {
  if (!valid_label(label)) invalid("Label", label, "1 to 80 letters, digits, '-' and '_'");
  if (account_ids.empty()) throw std::system_error(Errc::missing_parameter, "AWSAccountIds: give at least one");
  if (actions.empty()) throw std::system_error(Errc::missing_parameter, "Actions: give at least one");
  if (actions.size() > kMaxPermissionActions) {
    throw std::system_error(Errc::over_limit, "a permission has at most 7 actions");
  }
  json principals = json::array();
  for (const std::string& account : account_ids) {
    if (account.size() != 12 || account.find_first_not_of("0123456789") != std::string::npos) {
      invalid("AWSAccountIds", account, "an account id is 12 digits");
    }
    principals.push_back("arn:aws:iam::" + account + ":root");
  }
  json action_names = json::array();
  for (const std::string& action : actions) {
    if (std::find(kShareableActions.begin(), kShareableActions.end(), action) == kShareableActions.end()) {
      invalid("Actions", action,
              "not an action that can be shared: *, ChangeMessageVisibility, DeleteMessage, GetQueueAttributes, "
              "GetQueueUrl, ListDeadLetterSourceQueues, PurgeQueue, ReceiveMessage or SendMessage");
    }
    action_names.push_back("SQS:" + action);
  }
  json doc = policy_document(policy, queue_arn);
  json& statements = doc["Statement"];
  for (const json& statement : statements) {
    if (has_sid(statement, label)) invalid("Label", label, "Already exists");
  }
  // One principal or action is a string, several a list, as Amazon SQS writes them.
  const auto one_or_list = [](json list) { return list.size() == 1 ? json(list[0]) : list; };
  statements.push_back({{"Sid", label},
                        {"Effect", "Allow"},
                        {"Principal", {{"AWS", one_or_list(principals)}}},
                        {"Action", one_or_list(action_names)},
                        {"Resource", queue_arn}});
  return doc.dump();
}

std::string remove_permission(const std::string& policy, const std::string& label) {
  if (policy.empty()) invalid("Label", label, "can't find label");
  json doc = policy_document(policy, "");
  json& statements = doc["Statement"];
  const auto it = std::find_if(statements.begin(), statements.end(),
                               [&](const json& statement) { return has_sid(statement, label); });
  if (it == statements.end()) invalid("Label", label, "can't find label");
  statements.erase(it);
  return statements.empty() ? std::string{} : doc.dump();
}

}  // namespace shmq::daemon
