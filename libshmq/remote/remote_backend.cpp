#include "remote/remote_backend.hpp"

#include <algorithm>
#include <charconv>

#include "base64.hpp"
#include "shmq/error.hpp"

namespace shmq::detail {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxBatch = 10;

// The last path segment of a queue URL: its name.
std::string name_of_url(std::string_view url) {
  const std::size_t slash = url.rfind('/');
  return std::string(slash == std::string_view::npos ? url : url.substr(slash + 1));
}

std::uint64_t to_u64(const json& attributes, const char* name) {
  const auto it = attributes.find(name);
  if (it == attributes.end() || !it->is_string()) return 0;
  const std::string& text = it->get_ref<const std::string&>();
  std::uint64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// A JSON number field as an unsigned count; 0 if absent or not one.
std::uint64_t count_at(const json& object, const char* name) {
  if (!object.is_object()) return 0;
  const auto it = object.find(name);
  return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string string_at(const json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json attributes_json(const MessageAttributes& attributes) {
  json out = json::object();
  for (const auto& [name, value] : attributes) {
    json v{{"DataType", value.data_type}};
    if (value.data_type.starts_with("Binary")) {
      v["BinaryValue"] = base64_encode(value.binary_value);
    } else {
      v["StringValue"] = value.string_value;
    }
    out[name] = std::move(v);
  }
  return out;
}

// A send's fields, for SendMessage and an entry of SendMessageBatch.
void put_send_fields(json& request, std::string_view body, const SendOptions& options) {
  request["MessageBody"] = body;
  if (options.delay_seconds) request["DelaySeconds"] = *options.delay_seconds;
  if (!options.group_id.empty()) request["MessageGroupId"] = options.group_id;
  if (!options.deduplication_id.empty()) request["MessageDeduplicationId"] = options.deduplication_id;
  if (!options.attributes.empty()) request["MessageAttributes"] = attributes_json(options.attributes);
  if (!options.trace_header.empty()) {
    request["MessageSystemAttributes"] = {
        {"AWSTraceHeader", {{"DataType", "String"}, {"StringValue", options.trace_header}}}};
  }
}

// One message of ReceiveMessage's answer into `m`, every field overwritten.
bool read_message(const json& j, Message& m) {
  if (!j.is_object()) return false;
  m.message_id = string_at(j, "MessageId");
  m.receipt_handle = string_at(j, "ReceiptHandle");
  m.body = string_at(j, "Body");
  const json empty = json::object();
  const auto a = j.find("Attributes");
  const json& attrs = a != j.end() && a->is_object() ? *a : empty;
  m.receive_count = static_cast<std::uint32_t>(to_u64(attrs, "ApproximateReceiveCount"));
  m.sent_timestamp_ms = to_u64(attrs, "SentTimestamp");
  m.first_receive_timestamp_ms = to_u64(attrs, "ApproximateFirstReceiveTimestamp");
  m.group_id = string_at(attrs, "MessageGroupId");
  m.deduplication_id = string_at(attrs, "MessageDeduplicationId");
  m.sequence_number = string_at(attrs, "SequenceNumber");
  m.trace_header = string_at(attrs, "AWSTraceHeader");
  m.sender_id = string_at(attrs, "SenderId");
  m.dead_letter_source_arn = string_at(attrs, "DeadLetterQueueSourceArn");
  m.attributes.clear();
  if (const auto ma = j.find("MessageAttributes"); ma != j.end() && ma->is_object()) {
    for (const auto& [name, v] : ma->items()) {
      if (!v.is_object()) continue;
      MessageAttributeValue value;
      value.data_type = string_at(v, "DataType");
      value.string_value = string_at(v, "StringValue");
      if (const std::string b = string_at(v, "BinaryValue"); !b.empty()) {
        std::optional<std::string> bytes = base64_decode(b);
        if (!bytes) return false;
        value.binary_value = std::move(*bytes);
      }
      m.attributes.emplace(name, std::move(value));
    }
  }
  return !m.receipt_handle.empty();
}

// SQS's Failed entries: {Id, Code, Message, SenderFault}.
std::error_code entry_error(const json& failed, std::string_view action) {
  return remote::errc_for_shape(string_at(failed, "Code"), action, string_at(failed, "Message"));
}

// Fills `results` (one per entry, in order) from a batch answer's
// Successful and Failed lists; `fill` reads a success's fields.
template <class Entries, class Fill>
std::error_code batch_results(const Entries& entries, const json& reply, std::string_view entry_action,
                              std::vector<BatchEntryResult>& results, Fill&& fill) {
  results.assign(entries.size(), BatchEntryResult{});
  std::vector<bool> answered(entries.size(), false);
  const auto index_of = [&](const std::string& id) -> std::size_t {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].id == id && !answered[i]) return i;
    }
    return entries.size();
  };
  for (std::size_t i = 0; i < entries.size(); ++i) results[i].id = entries[i].id;
  if (const auto ok = reply.find("Successful"); ok != reply.end() && ok->is_array()) {
    for (const json& s : *ok) {
      const std::size_t i = index_of(string_at(s, "Id"));
      if (i == entries.size()) continue;
      answered[i] = true;
      fill(s, results[i]);
    }
  }
  if (const auto bad = reply.find("Failed"); bad != reply.end() && bad->is_array()) {
    for (const json& f : *bad) {
      const std::size_t i = index_of(string_at(f, "Id"));
      if (i == entries.size()) continue;
      answered[i] = true;
      results[i].error = entry_error(f, entry_action);
    }
  }
  // An entry the service left out was not done: say so rather than succeed.
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!answered[i]) results[i].error = Errc::internal;
  }
  return {};
}

}  // namespace

// ---- RemoteClient ----

json RemoteClient::queue_call(std::string_view action, std::string_view name, json request) {
  request["QueueUrl"] = queue_url(name);
  remote::Outcome out = sqs_.call(action, request);
  if (out.error == Errc::queue_does_not_exist) forget(name);
  return out.value();
}

std::string RemoteClient::queue_url(std::string_view name) {
  {
    std::lock_guard lock(mutex_);
    if (const auto it = urls_.find(name); it != urls_.end()) return it->second;
  }
  const json reply = sqs_.call("GetQueueUrl", {{"QueueName", name}}).value();
  std::string url = string_at(reply, "QueueUrl");
  if (url.empty()) throw std::system_error(Errc::internal, sqs_.url() + " answered GetQueueUrl without a QueueUrl");
  std::lock_guard lock(mutex_);
  urls_.insert_or_assign(std::string(name), url);
  return url;
}

void RemoteClient::forget(std::string_view name) {
  std::lock_guard lock(mutex_);
  if (const auto it = urls_.find(name); it != urls_.end()) urls_.erase(it);
}

void RemoteClient::create_queue(std::string_view name, const Attributes& attributes, const Tags& tags) {
  json request{{"QueueName", name}};
  if (!attributes.empty()) request["Attributes"] = attributes;
  if (!tags.empty()) request["tags"] = tags;
  const json reply = sqs_.call("CreateQueue", request).value();
  if (std::string url = string_at(reply, "QueueUrl"); !url.empty()) {
    std::lock_guard lock(mutex_);
    urls_.insert_or_assign(std::string(name), std::move(url));
  }
}

void RemoteClient::delete_queue(std::string_view name) {
  queue_call("DeleteQueue", name, json::object());
  forget(name);
}

std::vector<std::string> RemoteClient::list_queues(std::string_view prefix) {
  std::vector<std::string> names;
  std::string token;
  do {
    json request{{"MaxResults", 1000}};
    if (!prefix.empty()) request["QueueNamePrefix"] = prefix;
    if (!token.empty()) request["NextToken"] = token;
    const json reply = sqs_.call("ListQueues", request).value();
    if (const auto urls = reply.find("QueueUrls"); urls != reply.end() && urls->is_array()) {
      for (const json& u : *urls) {
        if (u.is_string()) names.push_back(name_of_url(u.get_ref<const std::string&>()));
      }
    }
    token = string_at(reply, "NextToken");
  } while (!token.empty());
  return names;
}

Attributes RemoteClient::get_queue_attributes(std::string_view name, const std::vector<std::string>& names) {
  const json reply = queue_call("GetQueueAttributes", name, {{"AttributeNames", names}});
  Attributes out;
  if (const auto a = reply.find("Attributes"); a != reply.end() && a->is_object()) {
    for (const auto& [k, v] : a->items()) {
      if (v.is_string()) out.emplace(k, v.get<std::string>());
    }
  }
  return out;
}

void RemoteClient::set_queue_attributes(std::string_view name, const Attributes& attributes) {
  queue_call("SetQueueAttributes", name, {{"Attributes", attributes}});
}

std::uint64_t RemoteClient::purge_queue(std::string_view name) {
  // SQS does not say how many a purge deleted: count first, approximately.
  const Attributes before = get_queue_attributes(
      name,
      {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"});
  std::uint64_t total = 0;
  for (const auto& [k, v] : before) {
    std::uint64_t n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    total += n;
  }
  queue_call("PurgeQueue", name, json::object());
  return total;
}

void RemoteClient::tag_queue(std::string_view name, const Tags& tags) {
  queue_call("TagQueue", name, {{"Tags", tags}});
}

void RemoteClient::untag_queue(std::string_view name, const std::vector<std::string>& keys) {
  queue_call("UntagQueue", name, {{"TagKeys", keys}});
}

Tags RemoteClient::list_queue_tags(std::string_view name) {
  const json reply = queue_call("ListQueueTags", name, json::object());
  Tags out;
  if (const auto t = reply.find("Tags"); t != reply.end() && t->is_object()) {
    for (const auto& [k, v] : t->items()) {
      if (v.is_string()) out.emplace(k, v.get<std::string>());
    }
  }
  return out;
}

void RemoteClient::add_permission(std::string_view name, std::string_view label,
                                  const std::vector<std::string>& account_ids,
                                  const std::vector<std::string>& actions) {
  queue_call("AddPermission", name, {{"Label", label}, {"AWSAccountIds", account_ids}, {"Actions", actions}});
}

void RemoteClient::remove_permission(std::string_view name, std::string_view label) {
  queue_call("RemovePermission", name, {{"Label", label}});
}

std::vector<std::string> RemoteClient::list_dead_letter_source_queues(std::string_view name) {
  std::vector<std::string> names;
  std::string token;
  do {
    json request{{"MaxResults", 1000}};
    if (!token.empty()) request["NextToken"] = token;
    const json reply = queue_call("ListDeadLetterSourceQueues", name, request);
    if (const auto urls = reply.find("queueUrls"); urls != reply.end() && urls->is_array()) {
      for (const json& u : *urls) {
        if (u.is_string()) names.push_back(name_of_url(u.get_ref<const std::string&>()));
      }
    }
    token = string_at(reply, "NextToken");
  } while (!token.empty());
  return names;
}

std::string RemoteClient::start_message_move_task(std::string_view source_arn, std::string_view destination_arn,
                                                  std::optional<std::uint32_t> max_messages_per_second) {
  json request{{"SourceArn", source_arn}};
  if (!destination_arn.empty()) request["DestinationArn"] = destination_arn;
  if (max_messages_per_second) request["MaxNumberOfMessagesPerSecond"] = *max_messages_per_second;
  return string_at(sqs_.call("StartMessageMoveTask", request).value(), "TaskHandle");
}

std::uint64_t RemoteClient::cancel_message_move_task(std::string_view task_handle) {
  const json reply = sqs_.call("CancelMessageMoveTask", {{"TaskHandle", task_handle}}).value();
  return count_at(reply, "ApproximateNumberOfMessagesMoved");
}

std::vector<MessageMoveTask> RemoteClient::list_message_move_tasks(std::string_view source_arn,
                                                                   std::uint32_t max_results) {
  const json reply =
      sqs_.call("ListMessageMoveTasks", {{"SourceArn", source_arn}, {"MaxResults", max_results}}).value();
  std::vector<MessageMoveTask> out;
  if (const auto results = reply.find("Results"); results != reply.end() && results->is_array()) {
    for (const json& t : *results) {
      MessageMoveTask task;
      task.status = string_at(t, "Status");
      task.task_handle = string_at(t, "TaskHandle");
      task.source_arn = string_at(t, "SourceArn");
      task.destination_arn = string_at(t, "DestinationArn");
      if (const auto rate = t.find("MaxNumberOfMessagesPerSecond"); rate != t.end() && rate->is_number_unsigned()) {
        task.max_messages_per_second = rate->get<std::uint32_t>();
      }
      task.messages_moved = count_at(t, "ApproximateNumberOfMessagesMoved");
      task.messages_to_move = count_at(t, "ApproximateNumberOfMessagesToMove");
      task.failure_reason = string_at(t, "FailureReason");
      task.started_timestamp_ms = count_at(t, "StartedTimestamp");
      out.push_back(std::move(task));
    }
  }
  return out;
}

DaemonHealth RemoteClient::health() {
  const remote::Outcome out = sqs_.call("ListQueues", {{"MaxResults", 1}});
  if (out.error) {
    throw std::system_error(Errc::daemon_unavailable,
                            sqs_.url() + ": " + (out.shape.empty() ? out.message : out.shape + ": " + out.message));
  }
  DaemonHealth h;
  h.status = "serving";
  return h;
}

std::shared_ptr<RemoteQueue> RemoteClient::open_queue(const std::shared_ptr<RemoteClient>& self,
                                                      std::string_view name) {
  std::string url = queue_url(name);
  remote::Outcome out = sqs_.call("GetQueueAttributes", {{"QueueUrl", url}, {"AttributeNames", {"All"}}});
  if (out.error == Errc::queue_does_not_exist) forget(name);
  Attributes attributes;
  if (const auto a = out.value().find("Attributes"); a != out.body.end() && a->is_object()) {
    for (const auto& [k, v] : a->items()) {
      if (v.is_string()) attributes.emplace(k, v.get<std::string>());
    }
  }
  return std::make_shared<RemoteQueue>(self, std::string(name), std::move(url), attributes);
}

// ---- RemoteQueue ----

RemoteQueue::RemoteQueue(std::shared_ptr<RemoteClient> client, std::string name, std::string url,
                         const Attributes& attributes)
    : client_(std::move(client)), name_(std::move(name)), url_(std::move(url)) {
  const auto number = [&](const char* key, std::uint64_t fallback) {
    const auto it = attributes.find(key);
    if (it == attributes.end()) return fallback;
    std::uint64_t v = fallback;
    std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    return v;
  };
  const auto flag = [&](const char* key) {
    const auto it = attributes.find(key);
    return it != attributes.end() && it->second == "true";
  };
  fifo_ = flag("FifoQueue") || name_.ends_with(".fifo");
  content_based_ = flag("ContentBasedDeduplication");
  receive_wait_ = std::chrono::seconds(number("ReceiveMessageWaitTimeSeconds", 0));
  maximum_message_size_ = static_cast<std::uint32_t>(number("MaximumMessageSize", 262144));
}

std::error_code RemoteQueue::call(std::string_view action, json request, json& reply, std::chrono::milliseconds wait) {
  request["QueueUrl"] = url_;
  remote::Outcome out = client_->sqs().call(action, request, wait);
  if (out.error) {
    if (out.error == Errc::queue_does_not_exist) client_->forget(name_);
    return out.error;
  }
  reply = std::move(out.body);
  return {};
}

std::error_code RemoteQueue::send(std::string_view body, SendResult& result, const SendOptions& options) {
  json request = json::object();
  put_send_fields(request, body, options);
  json reply;
  if (auto ec = call("SendMessage", std::move(request), reply)) return ec;
  result.message_id = string_at(reply, "MessageId");
  result.sequence_number = string_at(reply, "SequenceNumber");
  result.duplicate = false;  // SQS answers a duplicate as it answered the original
  return {};
}

std::error_code RemoteQueue::send_batch(std::span<const SendEntry> entries, std::vector<BatchEntryResult>& results) {
  json list = json::array();
  for (const SendEntry& e : entries) {
    json entry{{"Id", e.id}};
    put_send_fields(entry, e.body, e.options);
    list.push_back(std::move(entry));
  }
  json reply;
  if (auto ec = call("SendMessageBatch", {{"Entries", std::move(list)}}, reply)) return ec;
  return batch_results(entries, reply, "SendMessage", results, [](const json& s, BatchEntryResult& r) {
    r.message_id = string_at(s, "MessageId");
    r.sequence_number = string_at(s, "SequenceNumber");
  });
}

std::error_code RemoteQueue::receive_into(std::span<Message> messages, std::size_t& received,
                                          const ReceiveOptions& options) {
  received = 0;
  if (messages.empty()) return Errc::invalid_parameter_value;
  json request{{"MaxNumberOfMessages", std::min<std::size_t>(options.max_messages, messages.size())},
               {"AttributeNames", {"All"}},
               {"MessageSystemAttributeNames", {"All"}},
               {"MessageAttributeNames", {"All"}}};
  if (options.max_messages < 1 || options.max_messages > kMaxBatch)
    request["MaxNumberOfMessages"] = options.max_messages;
  if (options.visibility_timeout) request["VisibilityTimeout"] = *options.visibility_timeout;
  // SQS waits in whole seconds: a wait of part of one is rounded up, so
  // that a message sent within the wait is still received. Past 20 s, or
  // below 0, is refused as the local path refuses it.
  std::chrono::milliseconds wait = receive_wait_;
  if (options.wait_time) {
    wait = *options.wait_time;
    if (wait.count() < 0 || wait > std::chrono::seconds(20)) return Errc::invalid_parameter_value;
    request["WaitTimeSeconds"] = (wait.count() + 999) / 1000;
  }
  if (!options.receive_request_attempt_id.empty())
    request["ReceiveRequestAttemptId"] = options.receive_request_attempt_id;
  json reply;
  if (auto ec = call("ReceiveMessage", std::move(request), reply, wait)) return ec;
  const auto list = reply.find("Messages");
  if (list == reply.end() || !list->is_array()) return {};
  // A message the answer garbled (no receipt handle, attributes that are
  // not base64) cannot be deleted by its caller: it is left out, and comes
  // back after its visibility timeout; the others are delivered.
  for (const json& m : *list) {
    if (received == messages.size()) break;
    if (read_message(m, messages[received])) ++received;
  }
  return {};
}

std::error_code RemoteQueue::delete_message(std::string_view receipt_handle) {
  json reply;
  return call("DeleteMessage", {{"ReceiptHandle", receipt_handle}}, reply);
}

std::error_code RemoteQueue::change_visibility(std::string_view receipt_handle, std::uint32_t seconds) {
  json reply;
  return call("ChangeMessageVisibility", {{"ReceiptHandle", receipt_handle}, {"VisibilityTimeout", seconds}}, reply);
}

std::error_code RemoteQueue::handle_batch(std::string_view action, std::span<const HandleEntry> entries,
                                          std::vector<BatchEntryResult>& results) {
  const bool visibility = action == "ChangeMessageVisibilityBatch";
  json list = json::array();
  for (const HandleEntry& e : entries) {
    json entry{{"Id", e.id}, {"ReceiptHandle", e.receipt_handle}};
    if (visibility) entry["VisibilityTimeout"] = e.visibility_timeout;
    list.push_back(std::move(entry));
  }
  json reply;
  if (auto ec = call(action, {{"Entries", std::move(list)}}, reply)) return ec;
  return batch_results(entries, reply, visibility ? "ChangeMessageVisibility" : "DeleteMessage", results,
                       [](const json&, BatchEntryResult&) {});
}

std::error_code RemoteQueue::delete_batch(std::span<const HandleEntry> entries,
                                          std::vector<BatchEntryResult>& results) {
  return handle_batch("DeleteMessageBatch", entries, results);
}

std::error_code RemoteQueue::change_visibility_batch(std::span<const HandleEntry> entries,
                                                     std::vector<BatchEntryResult>& results) {
  return handle_batch("ChangeMessageVisibilityBatch", entries, results);
}

QueueCounts RemoteQueue::counts() noexcept {
  try {
    json reply;
    if (call("GetQueueAttributes",
             {{"AttributeNames",
               {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"}}},
             reply)) {
      return {};
    }
    const json& a = reply.contains("Attributes") ? reply["Attributes"] : reply;
    return QueueCounts{to_u64(a, "ApproximateNumberOfMessages"), to_u64(a, "ApproximateNumberOfMessagesNotVisible"),
                       to_u64(a, "ApproximateNumberOfMessagesDelayed"), 0};
  } catch (...) {
    return {};
  }
}

}  // namespace shmq::detail
