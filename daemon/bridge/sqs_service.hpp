// The SQS actions, on the public libshmq API: the bridge is a client like
// any other program. Parameters and results are in the JSON protocol's
// shape (see wire_protocol.hpp); errors are thrown as SqsException.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shmq/shmq.hpp"

namespace shmq::bridge {

struct BridgeConfig {
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  std::string advertise_url;  // e.g. "http://sqs.local:9324"; empty: the Host the client used
  // The longest a ReceiveMessage waits, whatever it asks (up to SQS's 20 s):
  // shorter only where a caller cannot hold requests that long (a fuzzer).
  std::chrono::seconds max_wait{20};
  // A log line (info) for each request: action, queue, HTTP status, duration.
  bool access_log = false;
};

// Where a request came from and went to, for queue URLs.
struct RequestContext {
  std::string host;        // the Host header
  std::string path_queue;  // the queue of a /<account>/<queue> request path, if any
  std::string sender_id;   // the caller's access key when signatures are checked
  std::string trace_id;    // the X-Amzn-Trace-Id header: a sent message's AWSTraceHeader, unless it sets one
};

// What a ReceiveMessage returns besides messages.
struct ReceiveSelection {
  std::set<std::string> system_attributes;      // names, or "All"
  std::vector<std::string> message_attributes;  // names, "All", ".*" or "prefix.*"
};

// A ReceiveMessage that found nothing and waits for messages.
// How long a bridge request waits for a queue's lock (Queue::set_lock_wait)
// before it answers 503 ServiceUnavailable, in microseconds: longer than a
// descheduled holder takes to run again, short enough that a stopped one
// does not hold the bridge's threads.
inline constexpr std::int64_t kBridgeLockWait = 100'000;  // 100 ms

struct PendingReceive {
  std::string queue_name;
  Queue queue;
  ReceiveOptions options;
  ReceiveSelection selection;
  std::chrono::steady_clock::time_point deadline;
  bool busy = false;  // the last try found the queue's lock held (see receive_now)
};

struct ActionOutcome {
  nlohmann::json result = nlohmann::json::object();
  std::optional<PendingReceive> pending;  // set: answer later, via receive_now
};

class SqsService {
 public:
  SqsService(Client& client, BridgeConfig config);

  // Runs one action. May block briefly on the daemon's control socket, never
  // on a long poll: a ReceiveMessage that must wait comes back pending.
  ActionOutcome call(const std::string& action, const nlohmann::json& params, const RequestContext& context);

  // Receives for a pending ReceiveMessage without waiting; nullopt if there
  // was nothing and `last` is false. Throws SqsException.
  std::optional<nlohmann::json> receive_now(PendingReceive& pending, bool last);

  static bool known_action(const std::string& action);

  // A queue's messages without receiving them (Queue::peek), as a
  // ReceiveMessage answer shows them but without receipt handles: of its
  // first MaxNumberOfMessages (1..10, default 10) in send order, the visible
  // ones, and with ShowInvisible=true and ShowDelayed=true those in flight
  // (or waiting for the dead-letter queue) and delayed too. For
  // LocalStack's developer endpoint, GET /_aws/sqs/messages?QueueUrl=...
  nlohmann::json peek_messages(const nlohmann::json& params, const RequestContext& context);

 private:
  Queue open(const std::string& name);
  void forget(const std::string& name);
  std::string queue_name(const nlohmann::json& params, const RequestContext& context) const;
  std::string queue_url(const std::string& name, const RequestContext& context) const;
  std::string queue_arn(const std::string& name) const;

  nlohmann::json create_queue(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json list_queues(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json send_message(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json send_message_batch(const nlohmann::json& p, const RequestContext& c);
  ActionOutcome receive_message(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json delete_message_batch(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json change_visibility_batch(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json purge_queue(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json peek(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json list_dead_letter_sources(const nlohmann::json& p, const RequestContext& c);
  nlohmann::json render_messages(const std::vector<Message>& messages, const ReceiveSelection& selection,
                                 bool fifo) const;

  Client& client_;
  BridgeConfig config_;
  std::mutex mutex_;                     // guards queues_ and last_purge_
  std::map<std::string, Queue> queues_;  // opened queues, by name
  std::map<std::string, std::chrono::steady_clock::time_point> last_purge_;
};

}  // namespace shmq::bridge
