// AddPermission and RemovePermission: edits of a queue's Policy attribute,
// an IAM policy document, one statement per label, as SQS writes it:
//   {"Version":"2012-10-17","Id":"<queue arn>/SQSDefaultPolicy","Statement":[
//     {"Sid":"<label>","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::<account>:root"]},
//      "Action":["SQS:SendMessage"],"Resource":"<queue arn>"}]}
// shmq stores the policy and enforces nothing of it: every client of a
// daemon is a local user that the daemon's socket already admits.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace shmq::daemon {

inline constexpr std::size_t kMaxPermissionActions = 7;  // SQS: seven actions per statement

// Returns `policy` (empty: none yet) with a statement for `label` added.
// Throws std::system_error: invalid_parameter_value for a bad or duplicate
// label, an account id that is not 12 digits, an action SQS does not know
// or a policy that is not a JSON object; missing_parameter if no account or
// no action is given; over_limit for more than 7 actions.
std::string add_permission(const std::string& policy, const std::string& queue_arn, const std::string& label,
                           const std::vector<std::string>& account_ids, const std::vector<std::string>& actions);

// Returns `policy` without the statement `label`; an empty string when no
// statement is left. Throws invalid_parameter_value if there is none.
std::string remove_permission(const std::string& policy, const std::string& label);

}  // namespace shmq::daemon
