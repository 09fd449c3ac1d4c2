// A process's handle on a namespace's shmqd: queue administration goes
// through the daemon's control socket; open_queue maps a queue for the data
// path. Admin calls block on the daemon's reply and throw std::system_error
// whose code() is a shmq::Errc.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmq/export.h"
#include "shmq/queue.hpp"
#include "shmq/types.hpp"

namespace shmq {

namespace detail {
class ControlConnection;
}

// Queue tags, key to value. SQS's limits: at most 50 per queue, keys of 1 to
// 128 characters, values of 0 to 256.
using Tags = std::map<std::string, std::string>;

// One message move task as ListMessageMoveTasks reports it.
struct MessageMoveTask {
  std::string status;       // RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED
  std::string task_handle;  // only while RUNNING
  std::string source_arn;
  std::string destination_arn;  // empty: each message went back to its DeadLetterQueueSourceArn
  std::optional<std::uint32_t> max_messages_per_second;  // empty: as fast as it can
  std::uint64_t messages_moved = 0;                      // ApproximateNumberOfMessagesMoved
  std::uint64_t messages_to_move = 0;                    // ApproximateNumberOfMessagesToMove (visible at start)
  std::string failure_reason;                            // FAILED tasks only
  std::uint64_t started_timestamp_ms = 0;                // StartedTimestamp, epoch ms
};

// An SQS endpoint to use instead of shared memory: Amazon SQS, another
// SQS-compatible service, or a shmqd bridge on another host. The same
// Client and Queue calls then go over HTTP (the AWS JSON 1.0 protocol,
// signed with SigV4); docs/remote-endpoints.md says what differs.
struct Endpoint {
  std::string url;  // "https://sqs.us-east-1.amazonaws.com", "http://otherhost:9324"
  // Empty: the region in an Amazon host name, else AWS_REGION,
  // AWS_DEFAULT_REGION, the profile's region, else us-east-1.
  std::string region;
  // Empty: AWS_PROFILE, else "default" (~/.aws/credentials and ~/.aws/config).
  std::string profile;
  // Empty: the credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
  // then the shared files). With none anywhere, requests go unsigned (a
  // shmqd bridge without --auth takes them).
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  // HTTPS: the PEM file of the authorities to trust (empty: AWS_CA_BUNDLE,
  // else the system's). Turning verification off is for tests only.
  std::string ca_file;
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{3000};   // TCP connect and TLS handshake
  std::chrono::milliseconds request_timeout{30000};  // one attempt, not counting a long poll's wait
  // Attempts per call, the first included (0: AWS_MAX_ATTEMPTS, else 3).
  // Failed connections, 5xx answers and throttling are tried again after a
  // jittered, exponentially growing delay of about retry_base, doubled at
  // each attempt (five times as long when throttled), at most 20 s.
  std::uint32_t max_attempts = 0;
  std::chrono::milliseconds retry_base{100};
};

namespace detail {
class RemoteClient;
}

class SHMQ_API Client {
 public:
  struct Options {
    std::string ns = "default";  // the daemon's --namespace
  };

  // With SHMQ_ENDPOINT set and not empty, the endpoint it names (see
  // Client(const Endpoint&)); else the daemon of namespace "default".
  // Throws daemon_unavailable if no daemon runs.
  Client();
  // Connects to the daemon of this namespace, whatever SHMQ_ENDPOINT says.
  // Throws daemon_unavailable if none runs.
  explicit Client(const Options& options);
  // Talks to an SQS endpoint; connects on the first call. Throws
  // invalid_parameter_value for a bad URL, a CA file that cannot be read or
  // a shared credentials file that cannot be parsed.
  explicit Client(const Endpoint& endpoint);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // Creates a queue with these attributes and tags, or does nothing if one
  // exists with the same attributes (queue_name_exists if they differ; its
  // tags stay as they are). `capacity` defaults to the daemon's. Besides the
  // header's attributes the daemon takes Policy, RedrivePolicy,
  // RedriveAllowPolicy, SqsManagedSseEnabled, KmsMasterKeyId and
  // KmsDataKeyReusePeriodSeconds; a bad value throws invalid_attribute_value.
  void create_queue(std::string_view name, const Attributes& attributes = {},
                    const std::optional<QueueCapacity>& capacity = std::nullopt, const Tags& tags = {});
  void delete_queue(std::string_view name);
  std::vector<std::string> list_queues(std::string_view prefix = {});
  // `names` as SQS takes them: {"All"} or attribute names.
  Attributes get_queue_attributes(std::string_view name, const std::vector<std::string>& names = {"All"});
  void set_queue_attributes(std::string_view name, const Attributes& attributes);
  // Deletes every message; returns how many.
  std::uint64_t purge_queue(std::string_view name);

  // Adds or replaces tags. Blocks on the daemon. Throws invalid_parameter_value
  // (a key or value too long, more than 50 tags), missing_parameter (none given).
  void tag_queue(std::string_view name, const Tags& tags);
  // Removes the tags with these keys; absent keys are ignored. Throws missing_parameter if none.
  void untag_queue(std::string_view name, const std::vector<std::string>& keys);
  // The queue's tags. Throws queue_does_not_exist.
  Tags list_queue_tags(std::string_view name);

  // Adds a statement `label` to the queue's Policy allowing these 12-digit
  // accounts these actions (SendMessage, ReceiveMessage, ... or "*"); stored,
  // not enforced. Throws invalid_parameter_value (bad or duplicate label,
  // account or action), missing_parameter, over_limit (more than 7 actions).
  void add_permission(std::string_view name, std::string_view label, const std::vector<std::string>& account_ids,
                      const std::vector<std::string>& actions);
  // Removes the Policy statement `label`. Throws invalid_parameter_value if there is none.
  void remove_permission(std::string_view name, std::string_view label);

  // The names of the queues whose RedrivePolicy names this queue. Throws queue_does_not_exist.
  std::vector<std::string> list_dead_letter_source_queues(std::string_view name);

  // Starts moving the messages of a dead-letter queue (by ARN, see the
  // QueueArn attribute) to `destination_arn`, or, if empty, back to the queue
  // each came from; at most `max_messages_per_second` (1..500) if given.
  // Returns the task handle at once; the daemon moves on its own thread.
  // Throws resource_not_found, invalid_parameter_value (not a dead-letter
  // queue, bad rate), unsupported_operation (a task of this source runs).
  std::string start_message_move_task(std::string_view source_arn, std::string_view destination_arn = {},
                                      std::optional<std::uint32_t> max_messages_per_second = std::nullopt);
  // Stops a running task; returns the messages it moved so far. Throws
  // resource_not_found (unknown handle), unsupported_operation (not running).
  std::uint64_t cancel_message_move_task(std::string_view task_handle);
  // The source queue's most recent tasks, newest first, at most `max_results`
  // (1..10). Tasks live in the daemon's memory: a restart forgets them.
  std::vector<MessageMoveTask> list_message_move_tasks(std::string_view source_arn, std::uint32_t max_results = 1);

  // The daemon's figures for a local queue. Remote: unsupported_operation
  // (SQS has no such call; see get_queue_attributes).
  QueueStats stats(std::string_view name);

  // The daemon's health: throws daemon_unavailable if it does not answer
  // (not running, starting, or stopping). Remote: a ListQueues call, whose
  // success is "serving" (version and figures empty), whose failure throws.
  DaemonHealth health();

  // Maps the queue. Throws queue_does_not_exist. Remote: looks up its URL
  // and attributes.
  Queue open_queue(std::string_view name);

  // The namespace; empty for a remote client.
  const std::string& ns() const noexcept;
  // The endpoint's URL; empty for a local client.
  const std::string& endpoint_url() const noexcept;
  bool remote() const noexcept { return remote_ != nullptr; }

 private:
  std::shared_ptr<detail::ControlConnection> connection_;
  std::shared_ptr<detail::RemoteClient> remote_;
};

}  // namespace shmq
