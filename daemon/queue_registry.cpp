#include "queue_registry.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "clock.hpp"
#include "daemon_attributes.hpp"
#include "fault_guard.hpp"
#include "message_transfer.hpp"
#include "queue_attributes.hpp"
#include "queue_permissions.hpp"
#include "queue_tags.hpp"
#include "redrive_policy.hpp"
#include "shmq/error.hpp"

namespace shmq::daemon {

namespace {

bool process_gone(std::uint32_t pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

constexpr const char* kRedrivePolicy = "RedrivePolicy";
constexpr const char* kRedriveAllowPolicy = "RedriveAllowPolicy";
constexpr const char* kPolicy = "Policy";

[[noreturn]] void invalid_value(const std::string& attribute, const std::string& value, const std::string& reason) {
  // SQS's wording, so that a message reads the same from both.
  throw std::system_error(Errc::invalid_attribute_value,
                          "Value " + value + " for parameter " + attribute + " is invalid. Reason: " + reason + ".");
}

void touch(detail::SegmentHeader& header) {
  // Relaxed: an independent value, as write_settings stores it.
  detail::atom(header.last_modified_ms).store(detail::wall_ms(), std::memory_order_relaxed);
}

std::optional<RedrivePolicy> redrive_policy_of(const QueueMetadata& metadata) {
  const auto it = metadata.attributes.find(kRedrivePolicy);
  if (it == metadata.attributes.end()) return std::nullopt;
  std::string reason;
  return parse_redrive_policy(it->second, reason);
}

}  // namespace

ManagedQueue::ManagedQueue(std::string name, std::string shm_name, detail::Segment segment, Redrive redrive)
    : name_(std::move(name)),
      shm_name_(std::move(shm_name)),
      segment_(std::move(segment)),
      core_(segment_.base(), detail::Backing(segment_.base(), segment_.fd())),
      redrive_(std::move(redrive)) {
  core_.set_lock_wait(kDaemonLockWaitNs);
  // Before any reclaim scan: a sender that reserves after this sees the new
  // epoch under the lock and reconnects (see Queue's send path).
  detail::atom(segment_.header().daemon_epoch).fetch_add(1, std::memory_order_seq_cst);
  if (!load_metadata(segment_.header(), metadata_)) {
    spdlog::error("queue {}: its metadata (tags, policies) does not parse; the queue has none now", name_);
  }
}

bool ManagedQueue::check_intact() {
  // A truncation is found by the fault it causes (the guard absorbs it), or
  // by this periodic fstat before anything touched the missing pages.
  constexpr std::uint64_t kSizeCheckNs = 1'000'000'000ull;
  if (failed_.load()) return false;
  const std::uint64_t faults = detail::FaultGuard::faults();
  const std::uint64_t now = detail::monotonic_ns();
  // Without the guard (a process that did not install it) a touch of a
  // missing page is fatal: then the fstat comes before every touch.
  // Relaxed: hints for when to fstat; the fault flag itself is read acquire.
  if (detail::FaultGuard::installed() && !segment_.faulted() &&
      faults == faults_seen_.load(std::memory_order_relaxed) &&
      now < next_size_check_ns_.load(std::memory_order_relaxed)) {
    return true;
  }
  faults_seen_.store(faults, std::memory_order_relaxed);
  next_size_check_ns_.store(now + kSizeCheckNs, std::memory_order_relaxed);
  return check_size();
}

bool ManagedQueue::check_size() {
  if (failed_.load()) return false;
  const bool faulted = segment_.faulted();
  if (!faulted && segment_.intact()) return true;
  spdlog::error("queue {}: segment {} was truncated while attached ({}); the queue is failed", name_, shm_name_,
                faulted ? "a touch of a missing page was absorbed" : "found by its size");
  if (!segment_.restore_size()) {
    spdlog::critical("queue {}: segment {} was truncated and cannot be restored", name_, shm_name_);
    failed_.store(true);
    return false;
  }
  // Release: a client that sees deleted stops using the queue (the zeros
  // where the missing pages were are no queue).
  detail::atom(segment_.header().deleted).store(1, std::memory_order_release);
  detail::atom(segment_.header().ready_seq).fetch_add(1, std::memory_order_seq_cst);
  core_.wake_receivers(~0u);
  failed_.store(true);
  return false;
}

void ManagedQueue::defer_reclaim(pid_t pid) {
  {
    std::lock_guard lock(deferred_mutex_);
    deferred_.push_back(static_cast<std::uint32_t>(pid));
  }
  core_.reaper_wake();
}

bool ManagedQueue::reclaim_pending() {
  std::lock_guard lock(deferred_mutex_);
  return !deferred_.empty();
}

void ManagedQueue::reclaim_deferred() {
  std::vector<std::uint32_t> pids;
  {
    std::lock_guard lock(deferred_mutex_);
    if (deferred_.empty()) return;
    pids.swap(deferred_);
  }
  // Without waiting: the reaper thread serves other queues too.
  const std::optional<std::uint32_t> freed = core_.reclaim_writing(
      [&](std::uint32_t owner) { return std::find(pids.begin(), pids.end(), owner) != pids.end(); }, 0);
  if (!freed) {
    std::lock_guard lock(deferred_mutex_);
    deferred_.insert(deferred_.end(), pids.begin(), pids.end());
    return;
  }
  if (*freed > 0) spdlog::info("queue {}: freed {} slots that dead clients had reserved", name_, *freed);
}

bool ManagedQueue::check_sound() {
  if (!core_.refused()) return false;
  {
    std::lock_guard lock(mutex_);
    if (corruption_.empty()) corruption_ = core_.refusal();
  }
  failed_.store(true);
  return true;
}

std::string ManagedQueue::failure() const {
  std::lock_guard lock(mutex_);
  if (!corruption_.empty()) return "its segment failed a check while attached (" + corruption_ + ")";
  return "its segment file was truncated while attached";
}

std::uint64_t ManagedQueue::reap(std::uint32_t& seq) {
  // While messages wait for a dead-letter queue that cannot take them, retry
  // once a second instead of spinning.
  constexpr std::uint64_t kRetryNs = 1'000'000'000ull;
  constexpr std::uint64_t kDeferredRetryNs = 10'000'000ull;  // 10 ms
  reclaim_deferred();
  for (;;) {
    const detail::QueueCore::ReaperTurn turn = core_.reaper_turn();
    seq = turn.seq;
    // Refused, by this turn or by a client that woke the reaper to say so:
    // failed, it is dropped from the reaper at the next pass, now.
    if (turn.corrupt && check_sound()) {
      spdlog::error("queue {}: {}; it is no longer served", name_, failure());
      return detail::monotonic_ns();
    }
    if (turn.moved > 0) spdlog::trace("queue {}: {} messages visible again", name_, turn.moved);
    // Slots of dead clients still to free: another turn soon, whatever the
    // queue's own deadlines say.
    std::uint64_t deadline =
        reclaim_pending() ? std::min(turn.deadline_ns, detail::monotonic_ns() + kDeferredRetryNs) : turn.deadline_ns;
    // A busy turn saw nothing: the trim's progress stands.
    if (!turn.busy) deadline = std::min(deadline, trim_turn(turn.trim));
    // The list, read under the lock, not the count: a count another process
    // left wrong must not keep this loop going.
    if (!turn.redrive) return deadline;
    if (!redrive_(*this)) return std::min(deadline, detail::monotonic_ns() + kRetryNs);
  }
}

std::uint64_t ManagedQueue::trim_turn(bool wanted) {
  constexpr std::uint64_t kSliceGapNs = 1'000'000;  // 1 ms between slices: other queues get their turns
  if (!wanted) {
    trim_seen_ns_ = 0;
    trim_started_ = false;
    return ~0ull;
  }
  const std::uint64_t now = detail::monotonic_ns();
  if (!trim_started_) {
    const std::uint64_t received = core_.stats().counts.received_total;
    if (trim_seen_ns_ == 0 || received != trim_seen_received_) {
      trim_seen_ns_ = now;
      trim_seen_received_ = received;
      return now + kTrimGraceNs;
    }
    if (now - trim_seen_ns_ < kTrimGraceNs) return trim_seen_ns_ + kTrimGraceNs;
    trim_started_ = true;
    spdlog::debug("queue {}: empty, giving back {} MiB of shared memory", name_, core_.stats().memory_in_use >> 20);
  }
  switch (core_.trim_step()) {
    case detail::QueueCore::TrimProgress::kMore:
      return now + kSliceGapNs;
    case detail::QueueCore::TrimProgress::kBusy:
      return now + detail::QueueCore::kBusyRetryNs;  // the lock was held: try again, the trim still under way
    case detail::QueueCore::TrimProgress::kDone:
      break;
  }
  trim_started_ = false;
  trim_seen_ns_ = 0;
  return ~0ull;
}

std::string ManagedQueue::dead_letter_target() const {
  std::lock_guard lock(mutex_);
  return dead_letter_target_;
}

void ManagedQueue::set_dead_letter_target(std::string name) {
  {
    std::lock_guard lock(mutex_);
    dead_letter_target_ = std::move(name);
  }
  core_.reaper_wake();  // messages may have been waiting for it
}

QueueMetadata ManagedQueue::metadata() const {
  std::lock_guard lock(metadata_mutex_);
  return metadata_;
}

void ManagedQueue::set_metadata(QueueMetadata metadata) {
  std::lock_guard lock(metadata_mutex_);
  store_metadata(segment_.header(), detail::Backing(segment_.base(), segment_.fd()), metadata);
  metadata_ = std::move(metadata);
}

QueueRegistry::~QueueRegistry() {
  // Stop the reaper before any queue goes: it may be moving messages into
  // another queue.
  reapers_.stop();
  std::map<std::string, std::shared_ptr<ManagedQueue>> queues;
  {
    std::lock_guard lock(mutex_);
    queues.swap(queues_);
  }
}

std::shared_ptr<ManagedQueue> QueueRegistry::make_queue(const std::string& name, const std::string& shm_name,
                                                        detail::Segment segment) {
  return std::make_shared<ManagedQueue>(name, shm_name, std::move(segment),
                                        [this](ManagedQueue& source) { return redrive(source); });
}

std::vector<std::shared_ptr<ManagedQueue>> QueueRegistry::all() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<ManagedQueue>> out;
  for (const auto& [name, q] : queues_) out.push_back(q);
  return out;
}

std::string QueueRegistry::arn(const std::string& name) const {
  return "arn:aws:sqs:" + config_.region + ":" + config_.account_id + ":" + name;
}

std::string QueueRegistry::name_of_arn(const std::string& queue_arn) const {
  const std::string prefix = arn("");
  if (!queue_arn.starts_with(prefix)) return {};
  return queue_arn.substr(prefix.size());
}

bool QueueRegistry::redrive(ManagedQueue& source) {
  const std::string target_name = source.dead_letter_target();
  if (target_name.empty()) {
    // The RedrivePolicy was removed while messages waited for its queue:
    // they stay in this queue, as they would have without one.
    if (detail::atom(source.header().max_receive_count).load(std::memory_order_relaxed) != 0) return false;
    if (const std::uint32_t n = source.core().return_redrives()) {
      spdlog::info("queue {}: {} messages no longer wait for a dead-letter queue", source.name(), n);
    }
    return true;
  }
  const std::shared_ptr<ManagedQueue> target = find(target_name);
  if (!target) {
    spdlog::warn("queue {}: dead-letter queue {} does not exist; messages wait", source.name(), target_name);
    return false;
  }
  const std::string source_arn = arn(source.name());
  detail::Delivery d{};
  std::uint64_t moved = 0;
  while (source.core().next_redrive(d)) {
    if (!target->check_intact()) return false;  // refused from now on: messages wait
    const std::error_code ec = detail::copy_message(source.core(), d, target->core(),
                                                    static_cast<std::uint32_t>(::getpid()), source_arn, detail::now());
    // A copy into (or from) a segment whose file shrank under it went to
    // zero pages (see FaultGuard), or to pages a reservation gave the file
    // back: it did not happen, the message stays here. An fstat per message
    // moved: so that the target's size is known before the message leaves.
    if (!target->check_size() || !source.check_intact()) {
      spdlog::warn("queue {}: cannot move a message to dead-letter queue {}: a segment file was truncated",
                   source.name(), target_name);
      return false;
    }
    if (ec && ec != Errc::stale_receipt_handle) {
      spdlog::warn("queue {}: cannot move a message to dead-letter queue {}: {}", source.name(), target_name,
                   ec.message());
      return false;
    }
    // In the dead-letter queue now (or purged meanwhile): remove it here.
    // A crash between the two leaves it in both: at least once.
    source.core().finish_redrive(d);
    ++moved;
  }
  if (moved > 0) spdlog::debug("queue {}: moved {} messages to {}", source.name(), moved, target_name);
  return true;
}

std::set<pid_t> QueueRegistry::attach_existing() {
  std::set<pid_t> live_writers;
  const std::string prefix = "shmq." + config_.ns + ".";
  // What this daemon creates: its own user's files, no permission beyond
  // --shm-mode (a file another user planted, or made writable for others,
  // could be read or changed behind the daemon's back).
  const detail::SegmentOwner owner{::geteuid(), config_.shm_mode};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string name = file.substr(prefix.size());
    const std::string shm_name = "/" + file;
    auto refuse = [&](const std::string& why) {
      spdlog::error("queue segment {} not attached: {}; it is left in place (shmqctl delete-queue {} removes it)",
                    shm_name, why, name);
      std::lock_guard lock(mutex_);
      refused_[name] = why;
    };
    detail::Segment segment;
    std::string why;
    if (auto err = detail::Segment::open(shm_name, segment, &owner, &why)) {
      refuse(why.empty() ? err.message() : why);
      continue;
    }
    const char* named = segment.header().name;
    const std::string_view header_name(named, ::strnlen(named, sizeof(segment.header().name)));
    if (name != header_name || !detail::valid_queue_name(name)) {
      refuse(fmt::format("it names queue '{}'", header_name));
      continue;
    }
    {
      // Bounded: a lock word naming a thread that does not exist must not
      // hold up the start (nor the other queues).
      constexpr std::uint64_t kLockWaitNs = 2'000'000'000ull;
      detail::QueueCore check(segment.base());
      if (auto err = check.attach_check(kLockWaitNs, &why)) {
        refuse(why.empty() ? err.message() : why);
        continue;
      }
      if (!detail::QueueCore(segment.base(), detail::Backing(segment.base(), segment.fd())).reserve_in_use()) {
        spdlog::warn("queue {}: /dev/shm has no room to back all of its segment; its sends may fail until it has",
                     name);
      }
    }
    auto queue = make_queue(name, shm_name, std::move(segment));
    // A RedrivePolicy set before the restart is in force again.
    wire_redrive(*queue);
    // attach_check took the lock a moment ago: wait for it as long as that did.
    const std::uint32_t freed = queue->core()
                                    .reclaim_writing(
                                        [&](std::uint32_t pid) {
                                          if (process_gone(pid)) return true;
                                          live_writers.insert(static_cast<pid_t>(pid));
                                          return false;
                                        },
                                        detail::QueueCore::kWaitForever)
                                    .value_or(0);
    // Receivers asleep since before the restart: forget the dead ones, watch
    // the live ones (they never reconnect, so the daemon would not hear of
    // their death otherwise).
    for (const std::uint32_t pid : queue->core().waiter_pids()) {
      if (process_gone(pid)) {
        queue->core().forget_waiters(pid);
      } else {
        live_writers.insert(static_cast<pid_t>(pid));
      }
    }
    // Relaxed atomic loads, not a copy of the struct: clients in other
    // processes (and the queue's reaper) update the counts meanwhile.
    detail::Counts& counts = queue->header().counts;
    const auto count = [](std::uint32_t& field) { return detail::atom(field).load(std::memory_order_relaxed); };
    spdlog::info("attached queue {}: {} visible, {} in flight, {} delayed{}", name, count(counts.visible),
                 count(counts.in_flight), count(counts.delayed),
                 freed ? fmt::format(", {} unfinished sends of dead clients freed", freed) : "");
    reapers_.add(queue);
    std::lock_guard lock(mutex_);
    queues_.emplace(name, std::move(queue));
  }
  return live_writers;
}

std::shared_ptr<ManagedQueue> QueueRegistry::create(const std::string& name, const Attributes& attributes,
                                                    const std::optional<QueueCapacity>& capacity, const Tags& tags) {
  std::lock_guard admin(admin_mutex_);
  if (!detail::valid_queue_name(name)) throw std::system_error(Errc::invalid_queue_name, name);
  Attributes header_attributes;
  Attributes daemon_attributes;
  split_attributes(attributes, header_attributes, daemon_attributes);
  detail::QueueSettings settings;
  std::string culprit;
  if (auto ec = detail::apply_attributes(header_attributes, settings, culprit, true)) {
    throw std::system_error(ec, culprit);
  }
  if (settings.fifo != detail::is_fifo_name(name)) {
    throw std::system_error(Errc::invalid_parameter_value,
                            "a FIFO queue's name ends in .fifo and it is created with FifoQueue=true; no other");
  }
  QueueMetadata metadata;
  apply_daemon_attributes(name, settings.fifo, daemon_attributes, metadata);
  if (!tags.empty()) add_tags(metadata.tags, tags, name);
  if (!metadata_fits(metadata)) {
    // Checked before the segment exists: a refused create leaves nothing.
    throw std::system_error(Errc::invalid_parameter_value, "the queue's tags and policies exceed 64 KiB as JSON");
  }

  {
    std::lock_guard lock(mutex_);
    if (const auto it = refused_.find(name); it != refused_.end()) {
      throw std::system_error(Errc::queue_name_exists,
                              "its segment was refused (" + it->second + "); delete-queue " + name + " removes it");
    }
  }
  if (auto existing_queue = find(name)) {
    // Idempotent for the attributes given; any that differ is a conflict.
    detail::QueueSettings existing = detail::read_settings(existing_queue->header());
    detail::QueueSettings merged = existing;
    (void)detail::apply_attributes(header_attributes, merged, culprit, true);
    const QueueMetadata existing_metadata = existing_queue->metadata();
    QueueMetadata merged_metadata = existing_metadata;
    apply_daemon_attributes(name, settings.fifo, daemon_attributes, merged_metadata);
    if (!(merged == existing) || merged_metadata.attributes != existing_metadata.attributes) {
      throw std::system_error(Errc::queue_name_exists, name);
    }
    return existing_queue;
  }

  QueueCapacity cap = capacity.value_or(QueueCapacity{config_.max_messages, config_.arena_bytes, 0});
  if (cap.memory_bytes == 0) cap.memory_bytes = config_.queue_memory_bytes;
  // Payload space comes in maximal blocks (2 MiB): round up.
  cap.arena_bytes = (cap.arena_bytes + detail::kMaxBlock - 1) / detail::kMaxBlock * detail::kMaxBlock;
  if (cap.max_messages < 1 || cap.max_messages > (1u << 24) || cap.arena_bytes < detail::kMaxBlock ||
      cap.arena_bytes > (1ull << 40)) {
    throw std::system_error(Errc::invalid_parameter_value,
                            "capacity: 1 to 16777216 messages and 1 byte to 1 TiB of payload space");
  }
  detail::FormatParams params;
  params.name = name.c_str();
  params.capacity = cap.max_messages;
  params.arena_bytes = cap.arena_bytes;
  params.memory_limit = cap.memory_bytes;
  params.incarnation = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  params.created_ms = detail::wall_ms();
  params.visibility_timeout_s = settings.visibility_timeout_s;
  params.maximum_message_size = settings.maximum_message_size;
  params.receive_wait_s = settings.receive_wait_s;
  params.retention_s = settings.retention_s;
  params.delay_s = settings.delay_s;
  params.fifo = settings.fifo;
  params.content_dedup = settings.content_dedup;
  params.dedup_per_group = settings.dedup_per_group;
  params.throughput_per_group = settings.throughput_per_group;
  if (const std::uint64_t needed = detail::QueueCore::first_message_memory(params);
      params.memory_limit != 0 && params.memory_limit < needed) {
    throw std::system_error(Errc::invalid_parameter_value,
                            fmt::format("a memory limit of {} KiB is less than this queue needs for its first message "
                                        "({} KiB){}",
                                        params.memory_limit >> 10, (needed + 1023) >> 10,
                                        capacity && capacity->memory_bytes != 0 ? "" : " (--queue-memory-mib)"));
  }
  const std::string shm_name = detail::Segment::shm_name(config_.ns, name);
  // With --allow-gid, the group's members must be able to map it.
  detail::Segment segment = detail::Segment::create(shm_name, params, config_.shm_mode, config_.allow_gid);
  spdlog::info("created queue {} (up to {} messages, {} MiB payload space, {} of memory)", name, cap.max_messages,
               cap.arena_bytes >> 20,
               cap.memory_bytes == 0 ? std::string("no limit") : fmt::format("{} MiB", cap.memory_bytes >> 20));
  auto queue = make_queue(name, shm_name, std::move(segment));
  // Before the queue is listed: a client that finds it finds it complete.
  // A full /dev/shm fails the create here, and leaves nothing behind.
  try {
    queue->set_metadata(std::move(metadata));
  } catch (...) {
    detail::Segment::unlink(shm_name);
    throw;
  }
  wire_redrive(*queue);
  try {
    reapers_.add(queue);  // no thread to serve it: no queue
  } catch (...) {
    detail::Segment::unlink(shm_name);
    throw;
  }
  std::lock_guard lock(mutex_);
  queues_.emplace(name, queue);
  return queue;
}

void QueueRegistry::apply_daemon_attributes(const std::string& name, bool fifo, const Attributes& given,
                                            QueueMetadata& metadata) {
  std::string culprit;
  std::string reason;
  if (const std::error_code ec = daemon::apply_daemon_attributes(given, metadata.attributes, culprit, reason)) {
    if (ec != Errc::invalid_attribute_value) throw std::system_error(ec, reason);
    invalid_value(culprit, given.at(culprit), reason);
  }
  if (!given.empty() && !metadata_fits(metadata)) {
    throw std::system_error(Errc::invalid_attribute_value,
                            "the queue's policies and tags together would exceed 64 KiB as JSON");
  }
  const auto it = given.find(kRedrivePolicy);
  if (it == given.end() || it->second.empty()) return;
  const std::optional<RedrivePolicy> policy = redrive_policy_of(metadata);
  const std::string target_name = name_of_arn(policy->dead_letter_target_arn);
  const std::shared_ptr<ManagedQueue> target = target_name.empty() ? nullptr : find(target_name);
  if (!target) invalid_value(kRedrivePolicy, it->second, "Dead letter target does not exist");
  if (target->core().fifo() != fifo) {
    invalid_value(kRedrivePolicy, it->second,
                  "Dead-letter queue must be same type of queue as the source (FIFO or standard)");
  }
  // The target queue's metadata is read as is: admin_mutex_ keeps it still.
  const QueueMetadata target_metadata = target_name == name ? metadata : target->metadata();
  const auto allow = target_metadata.attributes.find(kRedriveAllowPolicy);
  if (allow != target_metadata.attributes.end()) {
    std::string ignored;
    const std::optional<RedriveAllowPolicy> allow_policy = parse_redrive_allow_policy(allow->second, ignored);
    if (allow_policy && !allow_policy->allows(arn(name))) {
      invalid_value(kRedrivePolicy, it->second,
                    "Queue " + arn(name) + " is not allowed to use " + policy->dead_letter_target_arn +
                        " as its dead-letter queue (its RedriveAllowPolicy)");
    }
  }
}

void QueueRegistry::wire_redrive(ManagedQueue& queue) const {
  const std::optional<RedrivePolicy> policy = redrive_policy_of(queue.metadata());
  std::string target;
  if (policy) {
    target = name_of_arn(policy->dead_letter_target_arn);
    if (target.empty()) {
      spdlog::error(
          "queue {}: RedrivePolicy names {}, not a queue of this daemon's region and account; "
          "messages past maxReceiveCount wait",
          queue.name(), policy->dead_letter_target_arn);
    }
  }
  const std::uint32_t max_receive_count = policy ? policy->max_receive_count : 0;
  // Relaxed: clients read it relaxed too (an independent attribute). The
  // target is named before receive counts start to count, and forgotten
  // after they stop, so that no message waits for a target never set.
  if (max_receive_count > 0) queue.set_dead_letter_target(target);
  detail::atom(queue.header().max_receive_count).store(max_receive_count, std::memory_order_relaxed);
  if (max_receive_count == 0) queue.set_dead_letter_target({});
}

void QueueRegistry::set_attributes(const std::string& name, const Attributes& attributes) {
  std::lock_guard admin(admin_mutex_);
  const std::shared_ptr<ManagedQueue> queue = get(name);
  Attributes header_attributes;
  Attributes daemon_attributes;
  split_attributes(attributes, header_attributes, daemon_attributes);
  detail::QueueSettings settings = detail::read_settings(queue->header());
  std::string culprit;
  if (auto ec = detail::apply_attributes(header_attributes, settings, culprit)) {
    if (ec == Errc::invalid_attribute_value && culprit == "FifoQueue") {
      invalid_value(culprit, header_attributes.at(culprit), "Modifying queue type is not supported");
    }
    throw std::system_error(ec, culprit);
  }
  QueueMetadata metadata = queue->metadata();
  apply_daemon_attributes(name, settings.fifo, daemon_attributes, metadata);
  // Everything is valid: now change. The metadata first, as it alone can
  // still fail (too large), and then nothing has changed.
  if (!daemon_attributes.empty()) queue->set_metadata(std::move(metadata));
  detail::write_settings(queue->header(), settings, detail::wall_ms());
  // A shorter MessageRetentionPeriod (or maxReceiveCount) may make the
  // reaper's next deadline earlier than the one it sleeps until.
  queue->core().reaper_wake();
  if (daemon_attributes.count(kRedrivePolicy)) wire_redrive(*queue);
}

Attributes QueueRegistry::attributes(const std::string& name, const std::vector<std::string>& names) {
  const std::shared_ptr<ManagedQueue> queue = get(name);
  std::vector<std::string> header_names;
  std::vector<std::string> daemon_names;
  split_names(names, header_names, daemon_names);
  Attributes out;
  std::string culprit;
  // Messages sent without the mutex count once committed: what senders
  // handed over so far is committed first (unless the lock stays busy).
  queue->core().commit_submitted();
  if (auto ec = detail::render_attributes(queue->header(), header_names, out, culprit)) {
    throw std::system_error(ec, culprit);
  }
  render_daemon_attributes(queue->metadata().attributes, arn(name), daemon_names, out);
  return out;
}

void QueueRegistry::tag(const std::string& name, const Tags& tags) {
  std::lock_guard admin(admin_mutex_);
  const std::shared_ptr<ManagedQueue> queue = get(name);
  QueueMetadata metadata = queue->metadata();
  add_tags(metadata.tags, tags, name);
  queue->set_metadata(std::move(metadata));
}

void QueueRegistry::untag(const std::string& name, const std::vector<std::string>& keys) {
  std::lock_guard admin(admin_mutex_);
  const std::shared_ptr<ManagedQueue> queue = get(name);
  QueueMetadata metadata = queue->metadata();
  remove_tags(metadata.tags, keys);
  queue->set_metadata(std::move(metadata));
}

Tags QueueRegistry::tags(const std::string& name) { return get(name)->metadata().tags; }

void QueueRegistry::add_permission(const std::string& name, const std::string& label,
                                   const std::vector<std::string>& account_ids,
                                   const std::vector<std::string>& actions) {
  std::lock_guard admin(admin_mutex_);
  const std::shared_ptr<ManagedQueue> queue = get(name);
  QueueMetadata metadata = queue->metadata();
  std::string& policy = metadata.attributes[kPolicy];
  policy = daemon::add_permission(policy, arn(name), label, account_ids, actions);
  if (policy.size() > kMaxPolicyBytes) throw std::system_error(Errc::over_limit, kPolicyTooLarge);
  queue->set_metadata(std::move(metadata));
  touch(queue->header());
}

void QueueRegistry::remove_permission(const std::string& name, const std::string& label) {
  std::lock_guard admin(admin_mutex_);
  const std::shared_ptr<ManagedQueue> queue = get(name);
  QueueMetadata metadata = queue->metadata();
  const auto it = metadata.attributes.find(kPolicy);
  const std::string policy = daemon::remove_permission(it == metadata.attributes.end() ? "" : it->second, label);
  if (policy.empty()) {
    metadata.attributes.erase(kPolicy);
  } else {
    metadata.attributes[kPolicy] = policy;
  }
  queue->set_metadata(std::move(metadata));
  touch(queue->header());
}

std::vector<std::string> QueueRegistry::dead_letter_sources(const std::string& name) {
  (void)get(name);
  std::vector<std::string> sources;
  for (const auto& queue : all()) {
    if (queue->dead_letter_target() == name) sources.push_back(queue->name());
  }
  return sources;
}

void QueueRegistry::remove(const std::string& name) {
  std::shared_ptr<ManagedQueue> removed;
  bool refused = false;
  {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(name);
    if (it == queues_.end() || it->second->failed()) {
      refused = true;
      const auto entry = refused_.find(name);
      if (entry == refused_.end() && it == queues_.end()) throw std::system_error(Errc::queue_does_not_exist, name);
      // Never attached (or failed): nobody serves it; unlinking frees the name.
      detail::Segment::unlink(detail::Segment::shm_name(config_.ns, name));
      if (entry != refused_.end()) refused_.erase(entry);
      if (it != queues_.end()) {
        removed = std::move(it->second);
        queues_.erase(it);
      }
      spdlog::info("deleted the refused segment of queue {}", name);
    }
  }
  if (refused) return;  // `removed` is released here, outside mutex_: its destructor joins the reaper
  {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(name);
    if (it == queues_.end()) throw std::system_error(Errc::queue_does_not_exist, name);
    removed = std::move(it->second);
    queues_.erase(it);
  }
  reapers_.remove(*removed);
  ManagedQueue& q = *removed;
  detail::Segment::unlink(q.shm_name());
  // Release: a client that sees deleted stops using the queue.
  detail::atom(q.header().deleted).store(1, std::memory_order_release);
  detail::atom(q.header().ready_seq).fetch_add(1, std::memory_order_seq_cst);
  q.core().wake_receivers(~0u);
  spdlog::info("deleted queue {}", name);
}

std::shared_ptr<ManagedQueue> QueueRegistry::get(const std::string& name) {
  auto q = find(name);
  // Admin requests: an fstat is cheap next to the request, and a truncated
  // queue is then refused before the request touches it.
  if (q && !q->check_size()) q = find(name);  // fails it
  if (!q) throw std::system_error(Errc::queue_does_not_exist, name);
  return q;
}

std::shared_ptr<ManagedQueue> QueueRegistry::find(const std::string& name) {
  std::shared_ptr<ManagedQueue> failed;  // released after the lock: its destructor joins the reaper
  std::lock_guard lock(mutex_);
  auto it = queues_.find(name);
  if (it == queues_.end()) return nullptr;
  if (it->second->failed()) {
    failed = fail_locked(name, it->second->failure());
    return nullptr;
  }
  return it->second;
}

std::shared_ptr<ManagedQueue> QueueRegistry::fail_locked(const std::string& name, const std::string& reason) {
  auto it = queues_.find(name);
  if (it == queues_.end()) return nullptr;
  std::shared_ptr<ManagedQueue> queue = std::move(it->second);
  queues_.erase(it);
  refused_[name] = reason;
  spdlog::error("queue {} no longer served: {}; its segment is left in place (shmqctl delete-queue {} removes it)",
                name, reason, name);
  return queue;
}

std::vector<std::string> QueueRegistry::names(const std::string& prefix) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (auto it = queues_.lower_bound(prefix); it != queues_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    if (!it->second->failed()) out.push_back(it->first);  // failed, not yet refused: no longer served
  }
  return out;
}

QueueRegistry::Health QueueRegistry::health() const {
  Health h;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, queue] : queues_) h.queues += queue->failed() ? 0 : 1;
    h.refused = refused_.size();
  }
  h.reaper_threads = reapers_.thread_count();
  return h;
}

std::uint64_t QueueRegistry::reclaim(pid_t pid) {
  std::uint64_t freed = 0;
  for (const auto& queue : all()) {
    const std::string& name = queue->name();
    const auto fail = [&] {
      std::shared_ptr<ManagedQueue> failed;  // released after the lock
      std::lock_guard lock(mutex_);
      failed = fail_locked(name, queue->failure());
    };
    // The scan touches every descriptor in use. A truncation found before
    // it spares the scan; one it runs into is absorbed by the guard, and
    // found after it: what the scan did on zero pages is void.
    if (!queue->check_intact()) {
      fail();
      continue;
    }
    const std::optional<std::uint32_t> reclaimed =
        queue->core().reclaim_writing([pid](std::uint32_t owner) { return owner == static_cast<std::uint32_t>(pid); });
    // The scan found it corrupt (or some process had), or ran into a truncation.
    if (queue->check_sound() || !queue->check_intact()) {
      fail();
      continue;
    }
    queue->core().forget_waiters(static_cast<std::uint32_t>(pid));
    if (!reclaimed) {
      // Its lock stays held (a stopped holder?): the reaper frees them once
      // it is not, and this thread serves the others meanwhile.
      spdlog::warn("queue {}: lock held; slots of dead client {} are freed once it is released", name, pid);
      queue->defer_reclaim(pid);
      continue;
    }
    const std::uint32_t n = *reclaimed;
    if (n > 0) spdlog::info("queue {}: freed {} slots that dead client {} had reserved", name, n, pid);
    freed += n;
  }
  return freed;
}

}  // namespace shmq::daemon
