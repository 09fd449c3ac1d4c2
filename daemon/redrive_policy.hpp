// The two dead-letter attributes as SQS writes them, JSON in a string:
//   RedrivePolicy       {"deadLetterTargetArn":"arn:aws:sqs:...:dlq","maxReceiveCount":5}
//   RedriveAllowPolicy  {"redrivePermission":"byQueue","sourceQueueArns":["arn:aws:sqs:...:src"]}
// Parsing checks their shape and ranges; whether the target exists and lets
// the source in is the registry's business.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shmq::daemon {

inline constexpr std::uint32_t kMaxMaxReceiveCount = 1000;
inline constexpr std::size_t kMaxRedriveSourceArns = 10;

struct RedrivePolicy {
  std::string dead_letter_target_arn;
  std::uint32_t max_receive_count = 0;  // 1..1000

  // The canonical text GetQueueAttributes returns.
  std::string render() const;
};

// nullopt with the reason if `text` is not a valid RedrivePolicy.
// maxReceiveCount may be a number or a decimal string, as SQS accepts both.
std::optional<RedrivePolicy> parse_redrive_policy(std::string_view text, std::string& reason);

struct RedriveAllowPolicy {
  enum class Permission { allow_all, deny_all, by_queue };
  Permission permission = Permission::allow_all;
  std::vector<std::string> source_queue_arns;  // by_queue only: 1..10

  // Whether a queue with this ARN may use the queue as its dead-letter queue.
  bool allows(std::string_view source_arn) const;
  std::string render() const;
};

std::optional<RedriveAllowPolicy> parse_redrive_allow_policy(std::string_view text, std::string& reason);

// True for "arn:<partition>:sqs:<region>:<account>:<name>" with no part empty.
bool looks_like_queue_arn(std::string_view arn);

}  // namespace shmq::daemon
