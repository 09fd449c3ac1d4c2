#include "shmq/client.hpp"

#include "control_connection.hpp"
#include "queue_state.hpp"
#include "shmq/error.hpp"

namespace shmq {

using nlohmann::json;

Client::Client() : Client(Options{}) {}

Client::Client(const Options& options) : connection_(std::make_shared<detail::ControlConnection>(options.ns)) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const std::string& Client::ns() const noexcept { return connection_->ns(); }

void Client::create_queue(std::string_view name, const Attributes& attributes,
                          const std::optional<QueueCapacity>& capacity) {
  json request{{"op", "create_queue"}, {"name", name}, {"attributes", attributes}};
  if (capacity) {
    request["max_messages"] = capacity->max_messages;
    request["arena_bytes"] = capacity->arena_bytes;
  }
  connection_->call(request);
}

void Client::delete_queue(std::string_view name) { connection_->call({{"op", "delete_queue"}, {"name", name}}); }

std::vector<std::string> Client::list_queues(std::string_view prefix) {
  return connection_->call({{"op", "list_queues"}, {"prefix", prefix}}).at("queues").get<std::vector<std::string>>();
}

Attributes Client::get_queue_attributes(std::string_view name, const std::vector<std::string>& names) {
  return connection_->call({{"op", "get_queue_attributes"}, {"name", name}, {"names", names}})
      .at("attributes")
      .get<Attributes>();
}

void Client::set_queue_attributes(std::string_view name, const Attributes& attributes) {
  connection_->call({{"op", "set_queue_attributes"}, {"name", name}, {"attributes", attributes}});
}

std::uint64_t Client::purge_queue(std::string_view name) {
  return connection_->call({{"op", "purge_queue"}, {"name", name}}).at("purged").get<std::uint64_t>();
}

QueueStats Client::stats(std::string_view name) {
  const json s = connection_->call({{"op", "stats"}, {"name", name}}).at("stats");
  QueueStats out;
  out.segment_bytes = s.at("segment_bytes");
  out.max_messages = s.at("max_messages");
  out.slots_ever_used = s.at("slots_ever_used");
  out.arena_bytes = s.at("arena_bytes");
  out.arena_free_bytes = s.at("arena_free_bytes");
  out.counts = QueueCounts{s.at("visible"), s.at("in_flight"), s.at("delayed"), s.at("writing")};
  out.sent_total = s.at("sent_total");
  out.received_total = s.at("received_total");
  out.deleted_total = s.at("deleted_total");
  out.recoveries = s.at("recoveries");
  return out;
}

Queue Client::open_queue(std::string_view name) {
  const json reply = connection_->call({{"op", "open_queue"}, {"name", name}});
  detail::Segment segment;
  if (auto ec = detail::Segment::open(reply.at("shm_name").get<std::string>(), segment)) {
    throw std::system_error(ec, "open queue " + std::string(name));
  }
  return Queue(std::make_shared<detail::QueueState>(std::move(segment), std::string(name), connection_));
}

}  // namespace shmq
