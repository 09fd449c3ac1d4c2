#include "shmq/client.hpp"

#include <cstdlib>

#include "control_connection.hpp"
#include "queue_state.hpp"
#include "remote/remote_backend.hpp"
#include "shmq/error.hpp"

namespace shmq {

using nlohmann::json;

namespace {

const std::string kEmpty;

}  // namespace

Client::Client() {
  if (const char* endpoint = std::getenv("SHMQ_ENDPOINT"); endpoint != nullptr && *endpoint != '\0') {
    remote_ = std::make_shared<detail::RemoteClient>(Endpoint{.url = endpoint});
  } else {
    connection_ = std::make_shared<detail::ControlConnection>(Options{}.ns);
  }
}

Client::Client(const Options& options) : connection_(std::make_shared<detail::ControlConnection>(options.ns)) {}

Client::Client(const Endpoint& endpoint) : remote_(std::make_shared<detail::RemoteClient>(endpoint)) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const std::string& Client::ns() const noexcept { return connection_ ? connection_->ns() : kEmpty; }

const std::string& Client::endpoint_url() const noexcept { return remote_ ? remote_->url() : kEmpty; }

void Client::create_queue(std::string_view name, const Attributes& attributes,
                          const std::optional<QueueCapacity>& capacity, const Tags& tags) {
  if (remote_) return remote_->create_queue(name, attributes, tags);
  json request{{"op", "create_queue"}, {"name", name}, {"attributes", attributes}};
  if (!tags.empty()) request["tags"] = tags;
  if (capacity) {
    request["max_messages"] = capacity->max_messages;
    request["arena_bytes"] = capacity->arena_bytes;
    if (capacity->memory_bytes != 0) request["memory_bytes"] = capacity->memory_bytes;
  }
  connection_->call(request);
}

void Client::delete_queue(std::string_view name) {
  if (remote_) return remote_->delete_queue(name);
  connection_->call({{"op", "delete_queue"}, {"name", name}});
}

std::vector<std::string> Client::list_queues(std::string_view prefix) {
  if (remote_) return remote_->list_queues(prefix);
  return connection_->call({{"op", "list_queues"}, {"prefix", prefix}}).at("queues").get<std::vector<std::string>>();
}

Attributes Client::get_queue_attributes(std::string_view name, const std::vector<std::string>& names) {
  if (remote_) return remote_->get_queue_attributes(name, names);
  return connection_->call({{"op", "get_queue_attributes"}, {"name", name}, {"names", names}})
      .at("attributes")
      .get<Attributes>();
}

void Client::set_queue_attributes(std::string_view name, const Attributes& attributes) {
  if (remote_) return remote_->set_queue_attributes(name, attributes);
  connection_->call({{"op", "set_queue_attributes"}, {"name", name}, {"attributes", attributes}});
}

std::uint64_t Client::purge_queue(std::string_view name) {
  if (remote_) return remote_->purge_queue(name);
  return connection_->call({{"op", "purge_queue"}, {"name", name}}).at("purged").get<std::uint64_t>();
}

void Client::tag_queue(std::string_view name, const Tags& tags) {
  if (remote_) return remote_->tag_queue(name, tags);
  connection_->call({{"op", "tag_queue"}, {"name", name}, {"tags", tags}});
}

void Client::untag_queue(std::string_view name, const std::vector<std::string>& keys) {
  if (remote_) return remote_->untag_queue(name, keys);
  connection_->call({{"op", "untag_queue"}, {"name", name}, {"keys", keys}});
}

Tags Client::list_queue_tags(std::string_view name) {
  if (remote_) return remote_->list_queue_tags(name);
  return connection_->call({{"op", "list_queue_tags"}, {"name", name}}).at("tags").get<Tags>();
}

void Client::add_permission(std::string_view name, std::string_view label, const std::vector<std::string>& account_ids,
                            const std::vector<std::string>& actions) {
  if (remote_) return remote_->add_permission(name, label, account_ids, actions);
  connection_->call(
      {{"op", "add_permission"}, {"name", name}, {"label", label}, {"account_ids", account_ids}, {"actions", actions}});
}

void Client::remove_permission(std::string_view name, std::string_view label) {
  if (remote_) return remote_->remove_permission(name, label);
  connection_->call({{"op", "remove_permission"}, {"name", name}, {"label", label}});
}

std::vector<std::string> Client::list_dead_letter_source_queues(std::string_view name) {
  if (remote_) return remote_->list_dead_letter_source_queues(name);
  return connection_->call({{"op", "list_dead_letter_source_queues"}, {"name", name}})
      .at("queues")
      .get<std::vector<std::string>>();
}

std::string Client::start_message_move_task(std::string_view source_arn, std::string_view destination_arn,
                                            std::optional<std::uint32_t> max_messages_per_second) {
  if (remote_) return remote_->start_message_move_task(source_arn, destination_arn, max_messages_per_second);
  json request{{"op", "start_message_move_task"}, {"source_arn", source_arn}};
  if (!destination_arn.empty()) request["destination_arn"] = destination_arn;
  if (max_messages_per_second) request["max_per_second"] = *max_messages_per_second;
  return connection_->call(request).at("task_handle").get<std::string>();
}

std::uint64_t Client::cancel_message_move_task(std::string_view task_handle) {
  if (remote_) return remote_->cancel_message_move_task(task_handle);
  return connection_->call({{"op", "cancel_message_move_task"}, {"task_handle", task_handle}})
      .at("moved")
      .get<std::uint64_t>();
}

std::vector<MessageMoveTask> Client::list_message_move_tasks(std::string_view source_arn, std::uint32_t max_results) {
  if (remote_) return remote_->list_message_move_tasks(source_arn, max_results);
  const json reply =
      connection_->call({{"op", "list_message_move_tasks"}, {"source_arn", source_arn}, {"max_results", max_results}});
  std::vector<MessageMoveTask> out;
  for (const json& t : reply.at("tasks")) {
    MessageMoveTask task;
    task.status = t.at("status");
    task.task_handle = t.value("task_handle", "");
    task.source_arn = t.at("source_arn");
    task.destination_arn = t.value("destination_arn", "");
    if (t.contains("max_per_second")) task.max_messages_per_second = t.at("max_per_second").get<std::uint32_t>();
    task.messages_moved = t.at("moved");
    task.messages_to_move = t.at("to_move");
    task.failure_reason = t.value("failure_reason", "");
    task.started_timestamp_ms = t.at("started_ms");
    out.push_back(std::move(task));
  }
  return out;
}

DaemonHealth Client::health() {
  if (remote_) return remote_->health();
  const json h = connection_->call({{"op", "health"}});
  DaemonHealth out;
  out.status = h.at("status");
  out.version = h.at("version");
  out.pid = h.at("pid");
  out.uptime_seconds = h.at("uptime_seconds");
  out.queues = h.at("queues");
  out.refused_queues = h.at("refused_queues");
  out.reaper_threads = h.at("reaper_threads");
  return out;
}

QueueStats Client::stats(std::string_view name) {
  if (remote_) {
    throw std::system_error(Errc::unsupported_operation, "stats of " + std::string(name) +
                                                             ": a remote endpoint has no segment figures; "
                                                             "see get_queue_attributes");
  }
  const json s = connection_->call({{"op", "stats"}, {"name", name}}).at("stats");
  QueueStats out;
  out.segment_bytes = s.at("segment_bytes");
  out.max_messages = s.at("max_messages");
  out.slots_ever_used = s.at("slots_ever_used");
  out.arena_bytes = s.at("arena_bytes");
  out.arena_free_bytes = s.at("arena_free_bytes");
  out.memory_bytes = s.at("memory_bytes");
  out.memory_limit_bytes = s.at("memory_limit_bytes");
  out.trims = s.at("trims");
  out.counts = QueueCounts{s.at("visible"), s.at("in_flight"), s.at("delayed"), s.at("writing")};
  out.sent_total = s.at("sent_total");
  out.received_total = s.at("received_total");
  out.deleted_total = s.at("deleted_total");
  out.recoveries = s.at("recoveries");
  out.expired_total = s.at("expired_total");
  out.dead_lettered_total = s.at("dead_lettered_total");
  out.oldest_sent_timestamp_ms = s.value("oldest_sent_ms", std::uint64_t{0});
  out.sleeping_receivers = s.at("sleeping_receivers");
  return out;
}

Queue Client::open_queue(std::string_view name) {
  if (remote_) return Queue(remote_->open_queue(remote_, name));
  const json reply = connection_->call({{"op", "open_queue"}, {"name", name}});
  detail::Segment segment;
  std::string why;
  if (auto ec = detail::Segment::open(reply.at("shm_name").get<std::string>(), segment, nullptr, &why)) {
    // Say what refused it: the daemon accepted this user, the file did not.
    throw std::system_error(ec, "open queue " + std::string(name) + (why.empty() ? "" : ": " + why));
  }
  return Queue(std::make_shared<detail::QueueState>(std::move(segment), std::string(name), connection_));
}

}  // namespace shmq
