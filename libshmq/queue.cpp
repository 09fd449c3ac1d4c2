#include "shmq/queue.hpp"

#include <array>
#include <cstring>
#include <set>

#include "futex.hpp"
#include "message_id.hpp"
#include "queue_attributes.hpp"
#include "queue_state.hpp"
#include "shmq/error.hpp"

namespace shmq {

using detail::atom;

namespace {

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

bool deleted(const detail::QueueState& q) noexcept {
  return atom(q.core.header().deleted).load(std::memory_order_acquire) != 0;
}

bool valid_entry_id(std::string_view id) noexcept {
  return detail::valid_queue_name(id);  // same alphabet and length as SQS batch ids
}

// The batch-level checks every batch action shares.
template <class Entry>
std::error_code check_batch(std::span<const Entry> entries) {
  if (entries.empty()) return Errc::empty_batch_request;
  if (entries.size() > detail::kMaxBatchEntries) return Errc::too_many_entries_in_batch;
  std::set<std::string_view> seen;
  for (const Entry& e : entries) {
    if (!valid_entry_id(e.id)) return Errc::invalid_batch_entry_id;
    if (!seen.insert(e.id).second) return Errc::batch_entry_ids_not_distinct;
  }
  return {};
}

}  // namespace

const std::string& Queue::name() const noexcept { return state_->name; }

QueueCounts Queue::counts() const noexcept {
  auto& c = state_->core.header().counts;
  constexpr auto relaxed = std::memory_order_relaxed;  // an estimate, as SQS's are
  return QueueCounts{atom(c.visible).load(relaxed), atom(c.in_flight).load(relaxed), atom(c.delayed).load(relaxed),
                     atom(c.writing).load(relaxed)};
}

namespace {

struct Outgoing {
  std::string_view body;
  const SendOptions* options;
  std::error_code error;
  std::array<std::uint8_t, 16> id;
};

// Sends 1..10 messages with one reserve and one commit critical section.
void send_all(detail::QueueState& q, std::span<Outgoing> out) {
  const detail::QueueSettings settings = detail::read_settings(q.core.header());
  const std::size_t n = out.size();
  std::array<std::uint32_t, detail::kMaxBatchEntries> sizes{};
  std::array<std::uint32_t, detail::kMaxBatchEntries> delays{};
  std::array<std::error_code, detail::kMaxBatchEntries> errors{};
  std::array<detail::Reservation, detail::kMaxBatchEntries> slots{};
  std::array<std::array<std::uint8_t, 16>, detail::kMaxBatchEntries> ids{};
  for (std::size_t i = 0; i < n; ++i) {
    sizes[i] = static_cast<std::uint32_t>(out[i].body.size());
    delays[i] = out[i].options->delay_seconds.value_or(settings.delay_s);
    if (out[i].body.size() > settings.maximum_message_size) {
      errors[i] = Errc::message_too_large;
    } else if (delays[i] > detail::kMaxDelaySeconds) {
      errors[i] = Errc::invalid_parameter_value;
    }
  }
  const auto original_errors = errors;
  const std::uint32_t epoch =
      q.core.reserve(std::span(sizes.data(), n), q.pid, std::span(slots.data(), n), std::span(errors.data(), n));
  if (epoch != q.connected_epoch.load(std::memory_order_relaxed) && q.connection) {
    // A daemon restarted since this process connected, and it will reclaim
    // slots only of processes it knows. Make it know this one before holding
    // a slot across the copy: undo, reconnect, reserve again.
    q.core.unreserve(std::span(slots.data(), n));
    q.connection->reconnect();
    q.connected_epoch.store(epoch, std::memory_order_relaxed);
    errors = original_errors;
    q.core.reserve(std::span(sizes.data(), n), q.pid, std::span(slots.data(), n), std::span(errors.data(), n));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (slots[i].index == detail::kNil) continue;
    std::memcpy(slots[i].payload, out[i].body.data(), out[i].body.size());  // outside the lock
    ids[i] = detail::new_message_id();
  }
  const std::uint32_t visible =
      q.core.commit(std::span(slots.data(), n), std::span(delays.data(), n), std::span(ids.data(), n), detail::now());
  if (visible > 0) q.core.wake_receivers(visible);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].error = errors[i];
    out[i].id = ids[i];
  }
}

std::string format_id(const std::array<std::uint8_t, 16>& id) {
  std::uint8_t raw[16];
  std::memcpy(raw, id.data(), sizeof(raw));
  return detail::format_message_id(raw);
}

}  // namespace

std::error_code Queue::send(std::string_view body, SendResult& result, const SendOptions& options) {
  if (deleted(*state_)) return Errc::queue_does_not_exist;
  Outgoing one{body, &options, {}, {}};
  send_all(*state_, std::span(&one, 1));
  if (one.error) return one.error;
  result.message_id = format_id(one.id);
  return {};
}

std::error_code Queue::send_batch(std::span<const SendEntry> entries, std::vector<BatchEntryResult>& results) {
  if (auto ec = check_batch(entries)) return ec;
  if (deleted(*state_)) return Errc::queue_does_not_exist;
  std::uint64_t total = 0;
  for (const SendEntry& e : entries) total += e.body.size();
  if (total > detail::kMaxMessageBytes) return Errc::batch_request_too_long;
  std::array<Outgoing, detail::kMaxBatchEntries> out;
  for (std::size_t i = 0; i < entries.size(); ++i) out[i] = Outgoing{entries[i].body, &entries[i].options, {}, {}};
  send_all(*state_, std::span(out.data(), entries.size()));
  results.clear();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    results.push_back({entries[i].id, out[i].error, out[i].error ? std::string{} : format_id(out[i].id)});
  }
  return {};
}

std::error_code Queue::receive(std::vector<Message>& messages, const ReceiveOptions& options) {
  detail::QueueState& q = *state_;
  detail::QueueCore& core = q.core;
  detail::SegmentHeader& h = core.header();
  messages.clear();
  if (options.max_messages < 1 || options.max_messages > detail::kMaxBatchEntries) {
    return Errc::invalid_parameter_value;
  }
  const detail::QueueSettings settings = detail::read_settings(h);
  const std::uint32_t visibility = options.visibility_timeout.value_or(settings.visibility_timeout_s);
  const auto wait = options.wait_time.value_or(std::chrono::seconds(settings.receive_wait_s));
  if (visibility > detail::kMaxVisibilityTimeout || wait < std::chrono::milliseconds(0) ||
      wait > std::chrono::seconds(detail::kMaxWaitSeconds)) {
    return Errc::invalid_parameter_value;
  }
  const std::uint64_t start = detail::monotonic_ns();
  const std::uint64_t deadline = start + static_cast<std::uint64_t>(wait.count()) * 1'000'000ull;
  const std::uint64_t spin_until = start + static_cast<std::uint64_t>(options.spin.count()) * 1'000ull;

  std::array<detail::Delivery, detail::kMaxBatchEntries> taken;
  for (;;) {
    if (deleted(q)) return Errc::queue_does_not_exist;
    const std::uint64_t t = detail::monotonic_ns();
    if (core.visible_count() > 0 || core.next_deadline_ns() <= t) {
      const std::uint32_t n =
          core.receive(std::span(taken.data(), options.max_messages), visibility, detail::Now{t, detail::wall_ms()});
      for (std::uint32_t i = 0; i < n; ++i) {
        const detail::Delivery& d = taken[i];
        Message m;
        m.body.assign(reinterpret_cast<const char*>(core.payload(d.block_offset)), d.body_bytes);  // outside the lock
        // If the slot was freed meanwhile (possible only once the visibility
        // timeout passed and another receiver deleted it), the copy may be torn:
        // drop it; that receiver has the message.
        if (!core.still_valid(d)) continue;
        m.message_id = detail::format_message_id(d.message_id);
        m.receipt_handle = d.handle.to_string();
        m.receive_count = d.handle.receive_count;
        m.sent_timestamp_ms = d.sent_ms;
        m.first_receive_timestamp_ms = d.first_receive_ms;
        messages.push_back(std::move(m));
      }
      if (!messages.empty()) return {};
    }
    const std::uint64_t t2 = detail::monotonic_ns();
    if (t2 >= deadline) return {};
    if (t2 < spin_until) {
      cpu_relax();
      continue;
    }
    // Sleep. seq_cst on waiters and ready_seq: either the sender's wake_receivers
    // sees this waiter, or this load sees the sender's ready_seq bump.
    atom(h.waiters).fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seq = atom(h.ready_seq).load(std::memory_order_seq_cst);
    if (core.visible_count() == 0 && !deleted(q)) {
      const std::uint64_t until = std::min(deadline, core.next_deadline_ns());
      if (until > t2) detail::futex_wait(&h.ready_seq, seq, until - t2);
    }
    atom(h.waiters).fetch_sub(1, std::memory_order_seq_cst);
  }
}

std::error_code Queue::delete_message(std::string_view receipt_handle) {
  detail::QueueState& q = *state_;
  if (deleted(q)) return Errc::queue_does_not_exist;
  const auto handle = detail::ReceiptHandle::parse(receipt_handle);
  if (!handle) return Errc::invalid_receipt_handle;
  return q.core.remove(*handle);
}

std::error_code Queue::change_visibility(std::string_view receipt_handle, std::uint32_t seconds) {
  detail::QueueState& q = *state_;
  if (deleted(q)) return Errc::queue_does_not_exist;
  if (seconds > detail::kMaxVisibilityTimeout) return Errc::invalid_parameter_value;
  const auto handle = detail::ReceiptHandle::parse(receipt_handle);
  if (!handle) return Errc::invalid_receipt_handle;
  return q.core.change_visibility(*handle, seconds, detail::now());
}

std::error_code Queue::delete_batch(std::span<const HandleEntry> entries, std::vector<BatchEntryResult>& results) {
  if (auto ec = check_batch(entries)) return ec;
  if (deleted(*state_)) return Errc::queue_does_not_exist;
  results.clear();
  for (const HandleEntry& e : entries) results.push_back({e.id, delete_message(e.receipt_handle), {}});
  return {};
}

std::error_code Queue::change_visibility_batch(std::span<const HandleEntry> entries,
                                               std::vector<BatchEntryResult>& results) {
  if (auto ec = check_batch(entries)) return ec;
  if (deleted(*state_)) return Errc::queue_does_not_exist;
  results.clear();
  for (const HandleEntry& e : entries) {
    results.push_back({e.id, change_visibility(e.receipt_handle, e.visibility_timeout), {}});
  }
  return {};
}

}  // namespace shmq
