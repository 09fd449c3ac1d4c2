#include "queue_registry.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <filesystem>
#include <random>

#include "clock.hpp"
#include "queue_attributes.hpp"
#include "shmq/error.hpp"

namespace shmq::daemon {

namespace {

bool process_gone(std::uint32_t pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

}  // namespace

ManagedQueue::ManagedQueue(std::string name, std::string shm_name, detail::Segment segment)
    : name_(std::move(name)),
      shm_name_(std::move(shm_name)),
      segment_(std::move(segment)),
      core_(segment_.base()),
      reaper_([this] { reap(); }) {
  // Before any reclaim scan: a sender that reserves after this sees the new
  // epoch under the lock and reconnects (see Queue's send path).
  detail::atom(segment_.header().daemon_epoch).fetch_add(1, std::memory_order_seq_cst);
}

ManagedQueue::~ManagedQueue() {
  stop_.store(true);
  core_.reaper_wake();
  reaper_.join();
}

void ManagedQueue::reap() {
  while (!stop_.load()) {
    if (const std::uint32_t moved = core_.reaper_wait(~0ull, stop_)) {
      spdlog::trace("queue {}: {} messages visible again", name_, moved);
    }
  }
}

std::set<pid_t> QueueRegistry::attach_existing() {
  std::set<pid_t> live_writers;
  const std::string prefix = "shmq." + config_.ns + ".";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string name = file.substr(prefix.size());
    const std::string shm_name = "/" + file;
    detail::Segment segment;
    if (auto err = detail::Segment::open(shm_name, segment)) {
      spdlog::error("queue segment {} not attached: {} (left in place; remove it with shmqctl or rm /dev/shm/{})",
                    shm_name, err.message(), file);
      continue;
    }
    if (name != segment.header().name || !detail::valid_queue_name(name)) {
      spdlog::error("queue segment {} names queue '{}': not attached", shm_name, segment.header().name);
      continue;
    }
    auto queue = std::make_unique<ManagedQueue>(name, shm_name, std::move(segment));
    const std::uint32_t freed = queue->core().reclaim_writing([&](std::uint32_t pid) {
      if (process_gone(pid)) return true;
      live_writers.insert(static_cast<pid_t>(pid));
      return false;
    });
    const auto counts = queue->header().counts;
    spdlog::info("attached queue {}: {} visible, {} in flight, {} delayed{}", name, counts.visible, counts.in_flight,
                 counts.delayed, freed ? fmt::format(", {} unfinished sends of dead clients freed", freed) : "");
    queues_.emplace(name, std::move(queue));
  }
  return live_writers;
}

ManagedQueue& QueueRegistry::create(const std::string& name, const Attributes& attributes,
                                    const std::optional<QueueCapacity>& capacity) {
  if (!detail::valid_queue_name(name)) throw std::system_error(Errc::invalid_queue_name, name);
  detail::QueueSettings settings;
  std::string culprit;
  if (auto ec = detail::apply_attributes(attributes, settings, culprit)) throw std::system_error(ec, culprit);

  if (auto it = queues_.find(name); it != queues_.end()) {
    // Idempotent for the attributes given; any that differ is a conflict.
    detail::QueueSettings existing = detail::read_settings(it->second->header());
    detail::QueueSettings merged = existing;
    (void)detail::apply_attributes(attributes, merged, culprit);
    if (!(merged == existing)) throw std::system_error(Errc::queue_name_exists, name);
    return *it->second;
  }

  QueueCapacity cap = capacity.value_or(QueueCapacity{config_.max_messages, config_.arena_bytes});
  if (cap.max_messages < 1 || cap.max_messages > (1u << 24) || cap.arena_bytes < detail::kMaxBlock ||
      cap.arena_bytes % detail::kMaxBlock != 0 || cap.arena_bytes > (1ull << 40)) {
    throw std::system_error(Errc::invalid_parameter_value,
                            "capacity: 1 to 16777216 messages and a whole number of MiB of payload space");
  }
  detail::FormatParams params;
  params.name = name.c_str();
  params.capacity = cap.max_messages;
  params.arena_bytes = cap.arena_bytes;
  params.incarnation = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  params.created_ms = detail::wall_ms();
  params.visibility_timeout_s = settings.visibility_timeout_s;
  params.maximum_message_size = settings.maximum_message_size;
  params.receive_wait_s = settings.receive_wait_s;
  params.retention_s = settings.retention_s;
  params.delay_s = settings.delay_s;
  const std::string shm_name = detail::Segment::shm_name(config_.ns, name);
  detail::Segment segment = detail::Segment::create(shm_name, params, config_.shm_mode);
  spdlog::info("created queue {} ({} slots, {} MiB payload space)", name, cap.max_messages, cap.arena_bytes >> 20);
  auto queue = std::make_unique<ManagedQueue>(name, shm_name, std::move(segment));
  return *queues_.emplace(name, std::move(queue)).first->second;
}

void QueueRegistry::remove(const std::string& name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) throw std::system_error(Errc::queue_does_not_exist, name);
  ManagedQueue& q = *it->second;
  detail::Segment::unlink(q.shm_name());
  // Release: a client that sees deleted stops using the queue.
  detail::atom(q.header().deleted).store(1, std::memory_order_release);
  detail::atom(q.header().ready_seq).fetch_add(1, std::memory_order_seq_cst);
  q.core().wake_receivers(~0u);
  queues_.erase(it);
  spdlog::info("deleted queue {}", name);
}

ManagedQueue& QueueRegistry::get(const std::string& name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) throw std::system_error(Errc::queue_does_not_exist, name);
  return *it->second;
}

std::vector<std::string> QueueRegistry::names(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = queues_.lower_bound(prefix); it != queues_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    out.push_back(it->first);
  }
  return out;
}

std::uint64_t QueueRegistry::reclaim(pid_t pid) {
  std::uint64_t freed = 0;
  for (auto& [name, queue] : queues_) {
    const std::uint32_t n =
        queue->core().reclaim_writing([pid](std::uint32_t owner) { return owner == static_cast<std::uint32_t>(pid); });
    if (n > 0) spdlog::info("queue {}: freed {} slots that dead client {} had reserved", name, n, pid);
    freed += n;
  }
  return freed;
}

}  // namespace shmq::daemon
