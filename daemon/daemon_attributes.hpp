// The SQS queue attributes that the daemon keeps in a queue's metadata
// document rather than in the segment header, where clients read theirs:
//   Policy                         an IAM policy (a JSON object), stored as given, not enforced
//   RedrivePolicy                  the dead-letter queue and maxReceiveCount (see redrive_policy.hpp)
//   RedriveAllowPolicy             which queues may use this one as their dead-letter queue
//   SqsManagedSseEnabled           "true"/"false", default "false"
//   KmsMasterKeyId                 any text
//   KmsDataKeyReusePeriodSeconds   60..86400
//   QueueArn                       read-only
// The encryption settings are stored and returned only: messages live in
// shared memory on one host and are never encrypted. Setting one to ""
// removes it (as SQS removes a policy).
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "shmq/types.hpp"

namespace shmq::daemon {

// Splits `all` into the attributes detail::apply_attributes handles and the
// settable daemon attributes. QueueArn stays with the former, which refuse
// it as read-only.
void split_attributes(const Attributes& all, Attributes& header_attributes, Attributes& daemon_attributes);

// Splits requested names as split_attributes does; "All" goes to both.
void split_names(const std::vector<std::string>& all, std::vector<std::string>& header_names,
                 std::vector<std::string>& daemon_names);

// Validates `given` and merges it into `stored` in canonical form (a
// RedrivePolicy's target is checked by the registry, not here). On failure
// returns invalid_attribute_value with the culprit's name in `culprit` and
// the reason in `reason`, or over_limit for a Policy over kMaxPolicyBytes
// with kPolicyTooLarge in `reason`; `stored` may then be partly changed.
std::error_code apply_daemon_attributes(const Attributes& given, Attributes& stored, std::string& culprit,
                                        std::string& reason);

// Adds to `out` the daemon attributes `names` asks for that are set, plus
// their defaults and QueueArn.
void render_daemon_attributes(const Attributes& stored, const std::string& queue_arn,
                              const std::vector<std::string>& names, Attributes& out);

}  // namespace shmq::daemon
