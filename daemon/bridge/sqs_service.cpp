#include "sqs_service.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>

#include "sqs_checksums.hpp"
#include "sqs_errors.hpp"
#include "utf8.hpp"
#include "wire_protocol.hpp"

namespace shmq::bridge {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::array kActions{
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
};

// Strings that go to the daemon or into an answer must be UTF-8 (the
// Query protocol can carry any bytes); SQS's own check of message bodies and
// attribute values (InvalidMessageContents) is the library's.
const std::string& utf8(const std::string& text, std::string_view what) {
  if (!valid_utf8(text)) raise(errors::not_utf8(what));
  return text;
}

const std::string& required_string(const json& p, const char* name) {
  auto it = p.find(name);
  if (it == p.end() || it->is_null()) raise(errors::missing_parameter(name));
  if (!it->is_string()) raise(errors::not_a_string(name));
  return it->get_ref<const std::string&>();
}

// The text of a message body or attribute value: checked by the library.
std::string optional_content(const json& p, const char* name) {
  auto it = p.find(name);
  if (it == p.end() || it->is_null()) return {};
  if (!it->is_string()) raise(errors::not_a_string(name));
  return it->get<std::string>();
}

std::string optional_string(const json& p, const char* name) { return utf8(optional_content(p, name), name); }

const std::string& required_name(const json& p, const char* name) { return utf8(required_string(p, name), name); }

// An integer parameter: a JSON number (JSON protocol) or a decimal string
// (Query protocol), within [min, max].
std::optional<std::int64_t> optional_int(const json& p, const char* name, std::int64_t min, std::int64_t max) {
  auto it = p.find(name);
  if (it == p.end() || it->is_null()) return std::nullopt;
  std::int64_t v = 0;
  bool ok = false;
  if (it->is_number_integer()) {
    v = it->get<std::int64_t>();
    ok = it->is_number_unsigned() ? it->get<std::uint64_t>() <= static_cast<std::uint64_t>(max) : true;
  } else if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    ok = ec == std::errc{} && ptr == s.data() + s.size() && !s.empty();
  }
  if (!ok || v < min || v > max) {
    // The value as the client wrote it; a structure is not echoed.
    const std::string shown = it->is_structured()
                                  ? std::string(it->is_array() ? "(a list)" : "(a structure)")
                                  : quoted_input(it->is_string() ? it->get<std::string>() : dump_json(*it), 64);
    raise(errors::out_of_range(shown, name, min, max));
  }
  return v;
}

std::vector<std::string> string_list(const json& p, const char* name) {
  std::vector<std::string> out;
  auto it = p.find(name);
  if (it == p.end() || it->is_null()) return out;
  if (!it->is_array()) raise(errors::not_a_list(name));
  for (const json& v : *it) {
    if (!v.is_string()) raise(errors::not_a_list_of_strings(name));
    out.push_back(utf8(v.get<std::string>(), name));
  }
  return out;
}

Attributes string_map(const json& p, const char* name) {
  Attributes out;
  auto it = p.find(name);
  if (it == p.end() || it->is_null()) return out;
  if (!it->is_object()) raise(errors::not_a_map(name));
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) raise(errors::map_values_not_strings(name));
    out[utf8(k, name)] = utf8(v.get<std::string>(), name);
  }
  return out;
}

// A queue's attributes as CreateQueue and SetQueueAttributes give them. The
// daemon checks them all; a Policy over its limit is refused here as well,
// because one far over it would not fit a control request and would get
// that error instead of SQS's.
Attributes queue_attributes(const json& p) {
  Attributes out = string_map(p, "Attributes");
  if (const auto it = out.find("Policy"); it != out.end() && it->second.size() > kMaxPolicyBytes) {
    raise(errors::policy_too_large());
  }
  return out;
}

MessageAttributes message_attributes(const json& p, const char* name) {
  MessageAttributes out;
  auto it = p.find(name);
  if (it == p.end() || it->is_null()) return out;
  if (!it->is_object()) raise(errors::not_a_map(name));
  for (auto& [attr, v] : it->items()) {
    utf8(attr, name);
    if (!v.is_object()) raise(errors::attribute_without_value(attr));
    MessageAttributeValue value;
    value.data_type = optional_string(v, "DataType");
    if (value.data_type.empty()) raise(errors::attribute_without_type(attr));
    value.string_value = optional_content(v, "StringValue");
    if (const std::string b = optional_string(v, "BinaryValue"); !b.empty()) value.binary_value = base64_decode(b);
    if (v.contains("StringListValues") || v.contains("BinaryListValues")) raise(errors::attribute_list_values());
    out[attr] = std::move(value);
  }
  return out;
}

// A batch's failed entry: SenderFault false for what the server, not the
// request, is to blame for (a queue busy under a stopped lock holder).
json failed_entry(const std::string& id, const SqsError& e) {
  return {{"Id", id}, {"SenderFault", e.sender_fault}, {"Code", e.query_code}, {"Message", e.message}};
}

// A batch entry's library error, in the library's words.
SqsError entry_error(const std::error_code& ec) { return to_sqs_error(ec, ec.message()); }

// SendMessage and SendMessageBatch entries alike.
SendOptions send_options(const json& p, bool fifo, const RequestContext& context, std::string& body) {
  body = required_string(p, "MessageBody");
  if (body.empty()) raise(errors::missing_parameter("MessageBody"));  // as AWS
  SendOptions o;
  if (auto delay = optional_int(p, "DelaySeconds", 0, 900)) {
    // A FIFO queue's delay is the queue's: AWS accepts 0 per message (the
    // queue's DelaySeconds still applies) and refuses anything else.
    if (fifo && *delay != 0) raise(errors::not_for_queue_type(std::to_string(*delay), "DelaySeconds"));
    if (!fifo) o.delay_seconds = static_cast<std::uint32_t>(*delay);
  }
  o.group_id = optional_string(p, "MessageGroupId");
  if (!fifo && o.group_id.empty() && p.contains("MessageGroupId") && !p["MessageGroupId"].is_null()) {
    raise(errors::empty_parameter("MessageGroupId"));
  }
  o.deduplication_id = optional_string(p, "MessageDeduplicationId");
  if (!fifo && p.contains("MessageDeduplicationId") && !p["MessageDeduplicationId"].is_null()) {
    raise(errors::not_for_queue_type(o.deduplication_id, "MessageDeduplicationId"));
  }
  o.attributes = message_attributes(p, "MessageAttributes");
  // The library would refuse them too, without saying which or why.
  if (const std::string why = describe_invalid_attributes(o.attributes); !why.empty()) {
    raise(errors::invalid_message_attributes(why));
  }
  const MessageAttributes system = message_attributes(p, "MessageSystemAttributes");
  for (const auto& [name, value] : system) {
    if (name != "AWSTraceHeader" || value.data_type != "String") raise(errors::unsupported_system_attribute(name));
    o.trace_header = value.string_value;
  }
  // As on AWS: the request's X-Ray header, where the message names none.
  if (o.trace_header.empty()) o.trace_header = context.trace_id;
  o.sender_id = context.sender_id;
  return o;
}

void add_send_checksums(json& out, const std::string& body, const SendOptions& o) {
  out["MD5OfMessageBody"] = md5_hex(body);
  if (!o.attributes.empty()) out["MD5OfMessageAttributes"] = md5_of_attributes(o.attributes);
  if (!o.trace_header.empty()) {
    out["MD5OfMessageSystemAttributes"] = md5_of_attributes({{"AWSTraceHeader", {"String", o.trace_header, ""}}});
  }
}

// SQS's limits of a batch: its entries, and their messages' bytes together
// (whatever the queue's MaximumMessageSize).
constexpr std::size_t kMaxBatchEntries = 10;
constexpr std::size_t kMaxBatchBytes = 1048576;

// SQS batch entry ids: 1 to 80 letters, digits, '-' and '_'.
bool valid_entry_id(const std::string& id) {
  if (id.empty() || id.size() > 80) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
  });
}

// A refused send in AWS's words, where it has some; else with `detail` (see
// to_sqs_error).
SqsError send_error(const Queue& q, const std::error_code& ec, const std::string& detail = {}) {
  if (ec == Errc::message_too_large) return errors::message_too_long(q.maximum_message_size());
  return to_sqs_error(ec, detail);
}

// What a FIFO send must carry, with AWS's errors.
void check_fifo_ids(const Queue& q, const SendOptions& o) {
  if (o.group_id.empty()) raise(errors::missing_parameter("MessageGroupId"));
  if (o.deduplication_id.empty() && !q.content_based_deduplication()) raise(errors::missing_deduplication_id());
}

// A batch's size, with AWS's errors; `entry` names its entries' shape
// ("SendMessageBatchRequestEntry").
void check_batch(const json& entries, const char* entry) {
  if (!entries.is_array() || entries.empty()) raise(errors::empty_batch(entry));
  if (entries.size() > kMaxBatchEntries) {
    raise(errors::too_many_entries(kMaxBatchEntries, std::to_string(entries.size())));
  }
  std::set<std::string> ids;
  for (const json& e : entries) {
    const std::string id = optional_string(e, "Id");
    if (!valid_entry_id(id)) raise(errors::bad_entry_id());
    if (!ids.insert(id).second) raise(errors::entry_id_repeated(id));
  }
}

bool selected(const std::vector<std::string>& patterns, const std::string& name) {
  for (const std::string& p : patterns) {
    if (p == "All" || p == ".*" || p == name) return true;
    // "X.*": the names that start with X (AWS: "Hel.*" selects Hello and Help.Me).
    if (p == "*" || (p.ends_with(".*") && name.starts_with(p.substr(0, p.size() - 2)))) return true;
  }
  return false;
}

}  // namespace

bool SqsService::known_action(const std::string& action) {
  return std::find(kActions.begin(), kActions.end(), action) != kActions.end();
}

SqsService::SqsService(Client& client, BridgeConfig config) : client_(client), config_(std::move(config)) {}

Queue SqsService::open(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = queues_.find(name); it != queues_.end()) return it->second;
  }
  Queue q = client_.open_queue(name);
  // The bridge's few threads serve every queue: a process stopped while it
  // holds one queue's lock must cost that queue's requests a 503, not hold a
  // thread (see docs/reaper-and-long-polls.md).
  q.set_lock_wait(std::chrono::microseconds(kBridgeLockWait));
  std::lock_guard lock(mutex_);
  return queues_.insert_or_assign(name, q).first->second;
}

void SqsService::forget(const std::string& name) {
  std::lock_guard lock(mutex_);
  queues_.erase(name);
}

std::string SqsService::queue_name(const json& p, const RequestContext& context) const {
  std::string url = optional_string(p, "QueueUrl");
  if (url.empty()) {
    if (!context.path_queue.empty()) return utf8(context.path_queue, "QueueUrl");  // the request path
    raise(errors::missing_parameter("QueueUrl"));
  }
  // http://host:port/<account>/<queue>, or just /<account>/<queue>: the queue is the last segment.
  while (url.ends_with("/")) url.pop_back();
  const std::size_t slash = url.rfind('/');
  std::string name = slash == std::string::npos ? url : url.substr(slash + 1);
  if (name.empty()) raise(errors::queue_url_without_queue());
  return name;
}

std::string SqsService::queue_url(const std::string& name, const RequestContext& context) const {
  std::string base = config_.advertise_url;
  if (base.empty()) base = "http://" + (context.host.empty() ? std::string("127.0.0.1:9324") : context.host);
  while (base.ends_with("/")) base.pop_back();
  return base + "/" + config_.account_id + "/" + name;
}

std::string SqsService::queue_arn(const std::string& name) const {
  return "arn:aws:sqs:" + config_.region + ":" + config_.account_id + ":" + name;
}

// Not an SQS action (known_action refuses it): the developer endpoint's,
// through call() for its translation of the daemon's errors.
constexpr const char* kPeekAction = "shmq.PeekMessages";

ActionOutcome SqsService::call(const std::string& action, const json& p, const RequestContext& c) {
  try {
    if (action == "ReceiveMessage") return receive_message(p, c);
    ActionOutcome out;
    json& r = out.result;
    if (action == "CreateQueue") {
      r = create_queue(p, c);
    } else if (action == "GetQueueUrl") {
      const std::string& name = required_name(p, "QueueName");
      open(name);  // throws queue_does_not_exist
      r["QueueUrl"] = queue_url(name, c);
    } else if (action == "ListQueues") {
      r = list_queues(p, c);
    } else if (action == "DeleteQueue") {
      const std::string name = queue_name(p, c);
      client_.delete_queue(name);
      forget(name);
    } else if (action == "GetQueueAttributes") {
      const std::string name = queue_name(p, c);
      const std::vector<std::string> names = string_list(p, "AttributeNames");
      if (names.empty()) {
        open(name);  // no attributes asked for: still NonExistentQueue for a missing queue, as AWS answers
      } else {
        Attributes a = client_.get_queue_attributes(name, names);
        const bool all = std::find(names.begin(), names.end(), "All") != names.end();
        if (all || std::find(names.begin(), names.end(), "QueueArn") != names.end()) a["QueueArn"] = queue_arn(name);
        if (!a.empty()) r["Attributes"] = a;
      }
    } else if (action == "SetQueueAttributes") {
      client_.set_queue_attributes(queue_name(p, c), queue_attributes(p));
    } else if (action == "PurgeQueue") {
      r = purge_queue(p, c);
    } else if (action == "SendMessage") {
      r = send_message(p, c);
    } else if (action == "SendMessageBatch") {
      r = send_message_batch(p, c);
    } else if (action == "DeleteMessage") {
      Queue q = open(queue_name(p, c));
      const std::string& handle = required_name(p, "ReceiptHandle");
      const std::error_code ec = q.delete_message(handle);
      if (ec == Errc::receipt_handle_expired) raise(errors::receipt_handle_expired(handle));
      if (ec == Errc::invalid_receipt_handle) raise(errors::invalid_receipt_handle());
      // SQS: deleting with an older handle of a message succeeds (it may not delete).
      if (ec && ec != Errc::stale_receipt_handle) raise(ec);
    } else if (action == "DeleteMessageBatch") {
      r = delete_message_batch(p, c);
    } else if (action == "ChangeMessageVisibility") {
      Queue q = open(queue_name(p, c));
      const std::string& handle = required_name(p, "ReceiptHandle");
      const auto timeout = optional_int(p, "VisibilityTimeout", 0, 43200);
      if (!timeout) raise(errors::missing_parameter("VisibilityTimeout"));
      const std::error_code ec = q.change_visibility(handle, static_cast<std::uint32_t>(*timeout));
      if (ec == Errc::stale_receipt_handle) raise(errors::not_available_for_visibility(handle));
      if (ec == Errc::invalid_receipt_handle) raise(errors::invalid_receipt_handle());
      if (ec) raise(ec);
    } else if (action == "ChangeMessageVisibilityBatch") {
      r = change_visibility_batch(p, c);
    } else if (action == "TagQueue") {
      client_.tag_queue(queue_name(p, c), string_map(p, "Tags"));
    } else if (action == "UntagQueue") {
      client_.untag_queue(queue_name(p, c), string_list(p, "TagKeys"));
    } else if (action == "ListQueueTags") {
      const Tags tags = client_.list_queue_tags(queue_name(p, c));
      if (!tags.empty()) r["Tags"] = tags;
    } else if (action == "AddPermission") {
      client_.add_permission(queue_name(p, c), required_name(p, "Label"), string_list(p, "AWSAccountIds"),
                             string_list(p, "Actions"));
    } else if (action == "RemovePermission") {
      client_.remove_permission(queue_name(p, c), required_name(p, "Label"));
    } else if (action == "ListDeadLetterSourceQueues") {
      r = list_dead_letter_sources(p, c);
    } else if (action == "StartMessageMoveTask") {
      const auto rate = optional_int(p, "MaxNumberOfMessagesPerSecond", 1, 500);
      try {
        r["TaskHandle"] = client_.start_message_move_task(
            required_name(p, "SourceArn"), optional_string(p, "DestinationArn"),
            rate ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(*rate)) : std::nullopt);
      } catch (const std::system_error& e) {
        // The library's unsupported_operation, in AWS's words.
        if (e.code() != Errc::unsupported_operation) throw;
        raise(errors::move_task_running());
      }
    } else if (action == "CancelMessageMoveTask") {
      const std::string& handle = required_name(p, "TaskHandle");
      try {
        r["ApproximateNumberOfMessagesMoved"] = client_.cancel_message_move_task(handle);
      } catch (const std::system_error& e) {
        // An unknown handle: the library's resource_not_found, AWS's InvalidParameterValue.
        if (e.code() != Errc::resource_not_found) throw;
        raise(errors::unknown_task_handle());
      }
    } else if (action == "ListMessageMoveTasks") {
      const auto max = optional_int(p, "MaxResults", 1, 10).value_or(1);
      json results = json::array();
      for (const MessageMoveTask& t :
           client_.list_message_move_tasks(required_name(p, "SourceArn"), static_cast<std::uint32_t>(max))) {
        json j{{"Status", t.status},
               {"SourceArn", t.source_arn},
               {"ApproximateNumberOfMessagesMoved", t.messages_moved},
               {"ApproximateNumberOfMessagesToMove", t.messages_to_move},
               {"StartedTimestamp", t.started_timestamp_ms}};
        if (!t.task_handle.empty()) j["TaskHandle"] = t.task_handle;
        if (!t.destination_arn.empty()) j["DestinationArn"] = t.destination_arn;
        if (t.max_messages_per_second) j["MaxNumberOfMessagesPerSecond"] = *t.max_messages_per_second;
        if (!t.failure_reason.empty()) j["FailureReason"] = t.failure_reason;
        results.push_back(std::move(j));
      }
      r["Results"] = results;
    } else if (action == kPeekAction) {
      r = peek(p, c);
    } else {
      raise(errors::invalid_action(action));
    }
    return out;
  } catch (const SqsException& e) {
    // A queue whose segment was refused is not served any more; one made
    // again under its name has a new segment, to be opened afresh.
    if (e.error().shape == "QueueDoesNotExist" && (p.contains("QueueUrl") || !c.path_queue.empty())) {
      try {
        forget(queue_name(p, c));
      } catch (const SqsException&) {
      }
    }
    throw;
  } catch (const std::system_error& e) {
    if (e.code() == Errc::queue_does_not_exist) {
      if (p.contains("QueueUrl")) forget(queue_name(p, c));
      raise(errors::no_such_queue());
    }
    std::string what = e.what();
    const std::string suffix = ": " + e.code().message();
    if (what.ends_with(suffix)) what.resize(what.size() - suffix.size());
    // A policy that AddPermission grows past the limit: SQS's message as it is.
    if (e.code() == Errc::over_limit && what == kPolicyTooLarge) raise(errors::policy_too_large());
    if (e.code() == Errc::invalid_queue_name) raise(errors::bad_queue_name());
    // A queue attribute: the daemon names it, or says why in SQS's words.
    if (e.code() == Errc::invalid_attribute_name && what != e.code().message()) raise(errors::unknown_attribute(what));
    if (e.code() == Errc::invalid_attribute_value && what.starts_with("Value ")) raise(e.code(), what);
    // A value out of range, the daemon naming only the attribute: AWS's words.
    if (e.code() == Errc::invalid_attribute_value && !what.empty() &&
        std::all_of(what.begin(), what.end(), [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); })) {
      raise(errors::invalid_attribute_value(what));
    }
    // A daemon answer already in Amazon SQS's words (a sentence: capital
    // first, full stop last), as it is; else shmq's words, with the detail.
    if (!what.empty() && what.front() >= 'A' && what.front() <= 'Z' && what.ends_with('.')) raise(e.code(), what);
    raise(e.code(), what == e.code().message() ? std::string{} : e.code().message() + " (" + what + ")");
  }
}

json SqsService::create_queue(const json& p, const RequestContext& c) {
  const std::string& name = required_name(p, "QueueName");
  // The JSON protocol names CreateQueue's tags "tags"; the Query protocol, Tag.N.
  client_.create_queue(name, queue_attributes(p), std::nullopt,
                       p.contains("tags") ? string_map(p, "tags") : string_map(p, "Tags"));
  return json{{"QueueUrl", queue_url(name, c)}};
}

json SqsService::list_queues(const json& p, const RequestContext& c) {
  const std::string prefix = optional_string(p, "QueueNamePrefix");
  const auto max = optional_int(p, "MaxResults", 1, 1000);
  const std::string token = optional_string(p, "NextToken");
  std::vector<std::string> names = client_.list_queues(prefix);  // sorted by name
  auto first = names.begin();
  if (!token.empty()) {
    const std::string after = base64_decode(token);
    first = std::upper_bound(names.begin(), names.end(), after);
  }
  const std::size_t limit = max ? static_cast<std::size_t>(*max) : 1000;
  json out = json::object();
  json urls = json::array();
  for (auto it = first; it != names.end() && urls.size() < limit; ++it) urls.push_back(queue_url(*it, c));
  if (!urls.empty()) out["QueueUrls"] = urls;
  const auto shown = static_cast<std::size_t>(first - names.begin()) + urls.size();
  if (max && shown < names.size()) out["NextToken"] = base64_encode(names[shown - 1]);
  return out;
}

json SqsService::list_dead_letter_sources(const json& p, const RequestContext& c) {
  const std::string name = queue_name(p, c);
  const auto max = optional_int(p, "MaxResults", 1, 1000);
  const std::string token = optional_string(p, "NextToken");
  std::vector<std::string> names = client_.list_dead_letter_source_queues(name);
  std::sort(names.begin(), names.end());
  auto first = names.begin();
  if (!token.empty()) first = std::upper_bound(names.begin(), names.end(), base64_decode(token));
  const std::size_t limit = max ? static_cast<std::size_t>(*max) : 1000;
  json urls = json::array();
  for (auto it = first; it != names.end() && urls.size() < limit; ++it) urls.push_back(queue_url(*it, c));
  json out{{"queueUrls", urls}};  // lower case in SQS's model
  const auto shown = static_cast<std::size_t>(first - names.begin()) + urls.size();
  if (max && shown < names.size()) out["NextToken"] = base64_encode(names[shown - 1]);
  return out;
}

json SqsService::purge_queue(const json& p, const RequestContext& c) {
  const std::string name = queue_name(p, c);
  open(name);
  {
    // SQS allows one purge per queue every 60 seconds.
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    auto it = last_purge_.find(name);
    if (it != last_purge_.end() && now - it->second < std::chrono::seconds(60)) {
      raise(errors::purge_in_progress(name));
    }
    last_purge_[name] = now;
  }
  client_.purge_queue(name);
  return json::object();
}

json SqsService::send_message(const json& p, const RequestContext& c) {
  const std::string name = queue_name(p, c);
  Queue q = open(name);
  std::string body;
  const SendOptions o = send_options(p, name.ends_with(".fifo"), c, body);
  if (name.ends_with(".fifo")) check_fifo_ids(q, o);
  SendResult sent;
  if (auto ec = q.send(body, sent, o)) raise(send_error(q, ec));
  json out{{"MessageId", sent.message_id}};
  add_send_checksums(out, body, o);
  if (!sent.sequence_number.empty()) out["SequenceNumber"] = sent.sequence_number;
  return out;
}

json SqsService::send_message_batch(const json& p, const RequestContext& c) {
  const std::string name = queue_name(p, c);
  Queue q = open(name);
  const json entries = p.value("Entries", json::array());
  check_batch(entries, "SendMessageBatchRequestEntry");
  std::vector<SendEntry> good;
  json failed = json::array();
  for (const json& e : entries) {
    const std::string id = optional_string(e, "Id");
    try {
      SendEntry entry;
      entry.id = id;
      entry.options = send_options(e, name.ends_with(".fifo"), c, entry.body);
      good.push_back(std::move(entry));
    } catch (const SqsException& ex) {
      failed.push_back(failed_entry(id, ex.error()));
    }
  }
  // Batch-level rules (check_batch: ids too) cover every entry, good or not,
  // and fail the whole request before anything is sent.
  std::size_t total = 0;
  // The batch limit is 1 MiB whatever the queue's MaximumMessageSize (an
  // entry over that fails alone), counted as AWS counts a message: body,
  // and each attribute's name, type and value.
  for (const SendEntry& e : good) {
    total += e.body.size();
    for (const auto& [attr, v] : e.options.attributes) {
      total += attr.size() + v.data_type.size() + v.string_value.size() + v.binary_value.size();
    }
  }
  if (total > kMaxBatchBytes) raise(errors::batch_too_long(kMaxBatchBytes, total));
  // A FIFO entry without its group, or without the deduplication id its
  // queue needs, fails the whole request (nothing is sent), as AWS answers.
  if (name.ends_with(".fifo")) {
    for (const SendEntry& e : good) check_fifo_ids(q, e.options);
  }
  std::vector<BatchEntryResult> results;
  if (good.empty()) return json{{"Successful", json::array()}, {"Failed", failed}};
  if (auto ec = q.send_batch(good, results)) raise(ec);
  json successful = json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const BatchEntryResult& r = results[i];
    if (r.error) {
      failed.push_back(failed_entry(r.id, send_error(q, r.error, r.error.message())));
      continue;
    }
    json s{{"Id", r.id}, {"MessageId", r.message_id}};
    add_send_checksums(s, good[i].body, good[i].options);
    if (!r.sequence_number.empty()) s["SequenceNumber"] = r.sequence_number;
    successful.push_back(s);
  }
  json out = json::object();
  out["Successful"] = successful;
  out["Failed"] = failed;
  return out;
}

ActionOutcome SqsService::receive_message(const json& p, const RequestContext& c) {
  const std::string name = queue_name(p, c);
  PendingReceive pending{name, open(name), {}, {}, {}};
  ReceiveOptions& o = pending.options;
  // Reasons in AWS's words.
  o.max_messages = static_cast<std::uint32_t>(optional_int(p, "MaxNumberOfMessages", 1, 10).value_or(1));
  if (auto v = optional_int(p, "VisibilityTimeout", 0, 43200)) o.visibility_timeout = static_cast<std::uint32_t>(*v);
  std::optional<std::int64_t> wait = optional_int(p, "WaitTimeSeconds", 0, 20);
  if (!wait) wait = pending.queue.receive_wait_time().count();  // the queue's default, from its segment
  wait = std::min<std::int64_t>(*wait, config_.max_wait.count());
  o.wait_time = std::chrono::milliseconds(0);
  o.spin = std::chrono::microseconds(0);
  o.receive_request_attempt_id = optional_string(p, "ReceiveRequestAttemptId");
  for (const std::string& n : string_list(p, "AttributeNames")) pending.selection.system_attributes.insert(n);
  for (const std::string& n : string_list(p, "MessageSystemAttributeNames"))
    pending.selection.system_attributes.insert(n);
  pending.selection.message_attributes = string_list(p, "MessageAttributeNames");
  pending.deadline = Clock::now() + std::chrono::seconds(*wait);
  ActionOutcome out;
  if (auto result = receive_now(pending, *wait == 0)) {
    out.result = std::move(*result);
  } else {
    // The long-poll thread serves every queue's waiters: its tries never
    // wait for a lock (it retries a busy queue a little later instead).
    pending.options.lock_wait = std::chrono::microseconds(0);
    out.pending = std::move(pending);
  }
  return out;
}

std::optional<json> SqsService::receive_now(PendingReceive& pending, bool last) {
  std::vector<Message> messages;
  const std::error_code ec = pending.queue.receive(messages, pending.options);
  pending.busy = ec == Errc::queue_busy;
  if (pending.busy) {
    // A receive may come back empty while messages exist (short polls
    // sample, in SQS too): a stopped lock holder makes this one do so.
    if (!last) return std::nullopt;
    return render_messages(messages, pending.selection, pending.queue_name.ends_with(".fifo"));
  }
  if (ec == Errc::segment_corrupt) forget(pending.queue_name);  // a queue made again later has a new segment
  if (ec == Errc::queue_does_not_exist) {
    forget(pending.queue_name);
    raise(errors::no_such_queue());
  }
  if (ec) raise(ec);
  if (messages.empty() && !last) return std::nullopt;
  return render_messages(messages, pending.selection, pending.queue_name.ends_with(".fifo"));
}

json SqsService::peek_messages(const json& p, const RequestContext& c) { return call(kPeekAction, p, c).result; }

json SqsService::peek(const json& p, const RequestContext& c) {
  const std::string name = queue_name(p, c);
  Queue q = open(name);
  const auto shown = [&](const char* flag) {
    std::string v = optional_string(p, flag);
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
    return v == "true";
  };
  const bool invisible = shown("ShowInvisible");
  const bool delayed = shown("ShowDelayed");
  // At most what a ReceiveMessage answers (10 messages, 10 MiB at most): the
  // first of the queue in send order, of which those in the states asked for.
  const auto max = optional_int(p, "MaxNumberOfMessages", 1, 10).value_or(10);
  std::vector<PeekedMessage> peeked;
  if (auto ec = q.peek(peeked, static_cast<std::size_t>(max))) raise(ec);
  std::vector<Message> messages;
  for (PeekedMessage& m : peeked) {
    using State = PeekedMessage::State;
    const bool wanted = m.state == State::visible || (m.state == State::delayed ? delayed : invisible);
    if (wanted) messages.push_back(std::move(m.message));
  }
  json out = render_messages(messages, ReceiveSelection{{"All"}, {"All"}}, name.ends_with(".fifo"));
  if (out.contains("Messages")) {
    for (json& m : out["Messages"]) m.erase("ReceiptHandle");
  }
  return out;
}

json SqsService::render_messages(const std::vector<Message>& messages, const ReceiveSelection& selection,
                                 bool fifo) const {
  json out = json::object();
  if (messages.empty()) return out;
  const auto& want = selection.system_attributes;
  auto wanted = [&](const char* name) { return want.count("All") > 0 || want.count(name) > 0; };
  json list = json::array();
  for (const Message& m : messages) {
    json j{{"MessageId", m.message_id},
           {"ReceiptHandle", m.receipt_handle},
           {"MD5OfBody", md5_hex(m.body)},
           {"Body", m.body}};
    json a = json::object();
    if (wanted("SenderId")) a["SenderId"] = m.sender_id.empty() ? config_.account_id : m.sender_id;
    if (wanted("SentTimestamp")) a["SentTimestamp"] = std::to_string(m.sent_timestamp_ms);
    if (wanted("ApproximateReceiveCount")) a["ApproximateReceiveCount"] = std::to_string(m.receive_count);
    if (wanted("ApproximateFirstReceiveTimestamp")) {
      a["ApproximateFirstReceiveTimestamp"] = std::to_string(m.first_receive_timestamp_ms);
    }
    if (fifo && wanted("SequenceNumber")) a["SequenceNumber"] = m.sequence_number;
    if (fifo && wanted("MessageDeduplicationId")) a["MessageDeduplicationId"] = m.deduplication_id;
    if (!m.group_id.empty() && wanted("MessageGroupId")) a["MessageGroupId"] = m.group_id;
    if (!m.trace_header.empty() && wanted("AWSTraceHeader")) a["AWSTraceHeader"] = m.trace_header;
    if (!m.dead_letter_source_arn.empty() && wanted("DeadLetterQueueSourceArn")) {
      a["DeadLetterQueueSourceArn"] = m.dead_letter_source_arn;
    }
    if (!a.empty()) j["Attributes"] = a;
    MessageAttributes chosen;
    for (const auto& [name, value] : m.attributes) {
      if (selected(selection.message_attributes, name)) chosen[name] = value;
    }
    if (!chosen.empty()) {
      j["MD5OfMessageAttributes"] = md5_of_attributes(chosen);
      json attrs = json::object();
      for (const auto& [name, value] : chosen) {
        json v{{"DataType", value.data_type}};
        if (value.data_type.starts_with("Binary")) {
          v["BinaryValue"] = base64_encode(value.binary_value);
        } else {
          v["StringValue"] = value.string_value;
        }
        attrs[name] = v;
      }
      j["MessageAttributes"] = attrs;
    }
    list.push_back(std::move(j));
  }
  out["Messages"] = std::move(list);
  return out;
}

json SqsService::delete_message_batch(const json& p, const RequestContext& c) {
  Queue q = open(queue_name(p, c));
  check_batch(p.value("Entries", json::array()), "DeleteMessageBatchRequestEntry");
  std::vector<HandleEntry> entries;
  std::map<std::string, std::string> handles;  // by entry id, which check_batch made distinct
  for (const json& e : p.value("Entries", json::array())) {
    entries.push_back({optional_string(e, "Id"), optional_string(e, "ReceiptHandle"), 0});
    handles[entries.back().id] = entries.back().receipt_handle;
  }
  std::vector<BatchEntryResult> results;
  if (auto ec = q.delete_batch(entries, results)) raise(ec);
  json out{{"Successful", json::array()}, {"Failed", json::array()}};
  for (const BatchEntryResult& r : results) {
    if (!r.error || r.error == Errc::stale_receipt_handle) {
      out["Successful"].push_back({{"Id", r.id}});
    } else if (r.error == Errc::receipt_handle_expired) {
      out["Failed"].push_back(failed_entry(r.id, errors::entry_receipt_handle_expired()));  // as AWS answers FIFO's
    } else if (r.error == Errc::queue_busy) {
      out["Failed"].push_back(failed_entry(r.id, entry_error(r.error)));
    } else {
      // A handle that is not the queue's, in AWS's words, under the library's code.
      SqsError e = entry_error(r.error);
      e.message = errors::invalid_entry_receipt_handle(handles[r.id]).message;
      out["Failed"].push_back(failed_entry(r.id, e));
    }
  }
  return out;
}

json SqsService::change_visibility_batch(const json& p, const RequestContext& c) {
  Queue q = open(queue_name(p, c));
  check_batch(p.value("Entries", json::array()), "ChangeMessageVisibilityBatchRequestEntry");
  std::vector<HandleEntry> entries;
  std::map<std::string, std::string> handles;  // by entry id, which check_batch made distinct
  for (const json& e : p.value("Entries", json::array())) {
    HandleEntry h{optional_string(e, "Id"), optional_string(e, "ReceiptHandle"), 0};
    try {
      h.visibility_timeout = static_cast<std::uint32_t>(optional_int(e, "VisibilityTimeout", 0, 43200).value_or(0));
    } catch (const SqsException&) {
      // Passed on out of range: the library refuses this entry
      // (invalid_parameter_value) and still checks the batch's rules over all.
      h.visibility_timeout = std::numeric_limits<std::uint32_t>::max();
    }
    handles[h.id] = h.receipt_handle;
    entries.push_back(std::move(h));
  }
  std::vector<BatchEntryResult> results;
  if (auto ec = q.change_visibility_batch(entries, results)) raise(ec);
  json out{{"Successful", json::array()}, {"Failed", json::array()}};
  for (const BatchEntryResult& r : results) {
    if (!r.error) {
      out["Successful"].push_back({{"Id", r.id}});
    } else {
      const std::string& handle = handles[r.id];
      SqsError e = entry_error(r.error);
      if (r.error == Errc::invalid_receipt_handle) e = errors::invalid_entry_receipt_handle(handle);
      if (r.error == Errc::stale_receipt_handle) e = errors::not_available_for_visibility(handle);
      out["Failed"].push_back(failed_entry(r.id, e));
    }
  }
  return out;
}

}  // namespace shmq::bridge
