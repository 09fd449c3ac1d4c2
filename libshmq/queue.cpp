#include "shmq/queue.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <numeric>
#include <optional>

#include "cpu_relax.hpp"
#include "digest.hpp"
#include "futex.hpp"
#include "hex.hpp"
#include "message_blob.hpp"
#include "message_id.hpp"
#include "queue_attributes.hpp"
#include "queue_state.hpp"
#include "remote/remote_backend.hpp"
#include "shmq/error.hpp"

namespace shmq {

using detail::atom;

namespace {

// A segment whose file shrank under the mapping (its missing pages now zero
// pages, see FaultGuard) is no queue any more, deleted or not.
bool deleted(const detail::QueueState& q) noexcept {
  return atom(q.core.header().deleted).load(std::memory_order_acquire) != 0 || q.segment.faulted();
}

// What an operation that touched such a segment did is void: its result too.
std::error_code unless_faulted(const detail::QueueState& q, std::error_code ec) noexcept {
  return q.segment.faulted() ? make_error_code(Errc::queue_does_not_exist) : ec;
}

// Why the queue can no longer be used, if it cannot: its segment was found
// corrupt (by any process; see QueueCore::refused), or it was deleted.
std::error_code unusable(const detail::QueueState& q) noexcept {
  if (q.core.refused()) return Errc::segment_corrupt;
  if (deleted(q)) return Errc::queue_does_not_exist;
  return {};
}

// Nothing to wait for on a queue that cannot be used: a waiter returns.
bool gone(const detail::QueueState& q) noexcept { return deleted(q) || q.core.refused(); }

// FNV-1a of an entry id: ids that differ almost always differ in it.
std::uint64_t id_fingerprint(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : id) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

// The batch-level checks every batch action shares. At most ten ids: each
// compared with those before it by fingerprint, and in full only when the
// fingerprints match; nothing is allocated.
template <class Entry>
std::error_code check_batch(std::span<const Entry> entries) {
  if (entries.empty()) return Errc::empty_batch_request;
  if (entries.size() > detail::kMaxBatchEntries) return Errc::too_many_entries_in_batch;
  std::array<std::uint64_t, detail::kMaxBatchEntries> fingerprints;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!detail::valid_entry_id(entries[i].id)) return Errc::invalid_batch_entry_id;
    fingerprints[i] = id_fingerprint(entries[i].id);
    for (std::size_t j = 0; j < i; ++j) {
      if (fingerprints[j] == fingerprints[i] && entries[j].id == entries[i].id) {
        return Errc::batch_entry_ids_not_distinct;
      }
    }
  }
  return {};
}

// `results` with one element per entry, their strings' storage kept from
// the last call.
void size_results(std::vector<BatchEntryResult>& results, std::size_t n) {
  results.resize(n);
  for (BatchEntryResult& r : results) {
    r.error.clear();
    r.message_id.clear();
    r.sequence_number.clear();
    r.duplicate = false;
  }
}

}  // namespace

const std::string& Queue::name() const noexcept { return remote_ ? remote_->name() : state_->name; }

namespace {

// A lock wait in QueueCore's terms: none below zero, no limit past what
// nanoseconds hold.
std::uint64_t lock_wait_ns(std::chrono::microseconds wait) noexcept {
  if (wait.count() <= 0) return 0;
  constexpr auto kMaxUs = static_cast<std::int64_t>((detail::QueueCore::kDefaultWait - 1) / 1'000);
  if (wait.count() >= kMaxUs) return detail::QueueCore::kWaitForever;
  return static_cast<std::uint64_t>(wait.count()) * 1'000ull;
}

}  // namespace

void Queue::set_lock_wait(std::chrono::microseconds wait) noexcept {
  if (!remote_) state_->core.set_lock_wait(lock_wait_ns(wait));
}

std::chrono::seconds Queue::receive_wait_time() const noexcept {
  if (remote_) return remote_->receive_wait_time();
  return std::chrono::seconds(detail::read_settings(state_->core.header()).receive_wait_s);
}

bool Queue::content_based_deduplication() const noexcept {
  if (remote_) return remote_->content_based_deduplication();
  const detail::SegmentHeader& h = state_->core.header();
  return detail::atom(const_cast<std::uint32_t&>(h.content_dedup)).load(std::memory_order_relaxed) != 0;
}

std::uint32_t Queue::maximum_message_size() const noexcept {
  if (remote_) return remote_->maximum_message_size();
  return detail::read_settings(state_->core.header()).maximum_message_size;
}

QueueCounts Queue::counts() const noexcept {
  if (remote_) return remote_->counts();
  state_->core.commit_submitted();  // messages sent without the mutex count once committed
  auto& c = state_->core.header().counts;
  constexpr auto relaxed = std::memory_order_relaxed;  // an estimate, as SQS's are
  return QueueCounts{atom(c.visible).load(relaxed), atom(c.in_flight).load(relaxed), atom(c.delayed).load(relaxed),
                     atom(c.writing).load(relaxed)};
}

namespace {

// 1 to 128 characters: letters, digits and ASCII punctuation (SQS's rule for
// MessageGroupId, MessageDeduplicationId and ReceiveRequestAttemptId).
bool valid_fifo_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > detail::kMaxGroupId) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// Empties the fields a message may lack, keeping the strings' storage. The
// body, message id and receipt handle are overwritten for every message,
// and blob_read replaces the attributes (reusing their nodes).
void clear_optional_fields(Message& m) noexcept {
  for (std::string* text : {&m.group_id, &m.deduplication_id, &m.sequence_number, &m.trace_header, &m.sender_id,
                            &m.dead_letter_source_arn}) {
    text->clear();
  }
}

// 20 decimal digits, into `out`'s storage.
void format_sequence_number(std::uint64_t seq, std::string& out) {
  constexpr std::size_t kDigits = 20;  // the most a uint64 has
  out.assign(kDigits, '0');
  char* const end = out.data() + kDigits;
  for (char* p = end; seq != 0; seq /= 10) *--p = static_cast<char>('0' + seq % 10);
}

std::uint32_t process_uid() {
  static const std::uint32_t uid = ::getuid();  // a system call: once
  return uid;
}

struct Outgoing {
  std::string_view body;
  const SendOptions* options;
  // Filled by send_all:
  std::error_code error;
  detail::CommitResult result;
};

// The SHA-256 of a body in hex: the deduplication id of a queue with
// ContentBasedDeduplication.
using ContentDedupId = std::array<char, 2 * sizeof(detail::Sha256)>;

// Checks one message against the queue's rules; fills what the commit needs.
std::error_code prepare(const detail::QueueState& q, const detail::QueueSettings& settings, const Outgoing& o,
                        detail::CommitRequest& req, ContentDedupId& content_dedup_id, bool& content_dedup) {
  const SendOptions& opt = *o.options;
  if (o.body.empty()) return Errc::missing_parameter;  // SQS: a body of at least one character
  if (!detail::valid_message_characters(o.body)) return Errc::invalid_message_contents;
  if (auto ec = detail::validate_attributes(opt.attributes)) return ec;
  if (o.body.size() + detail::attributes_size(opt.attributes) > settings.maximum_message_size) {
    return Errc::message_too_large;
  }
  if (!opt.group_id.empty() && !valid_fifo_id(opt.group_id)) return Errc::invalid_parameter_value;
  if (!opt.trace_header.empty() && !detail::valid_message_characters(opt.trace_header)) {
    return Errc::invalid_parameter_value;
  }
  const detail::SegmentHeader& h = q.core.header();
  if (q.core.fifo()) {
    if (opt.group_id.empty()) return Errc::missing_parameter;
    if (opt.delay_seconds) return Errc::invalid_parameter_value;  // FIFO delays are per queue only
    std::string_view dedup_id = opt.deduplication_id;
    if (dedup_id.empty()) {
      if (!detail::atom(const_cast<std::uint32_t&>(h.content_dedup)).load(std::memory_order_relaxed)) {
        return Errc::invalid_parameter_value;  // as SQS answers: dedup id or ContentBasedDeduplication
      }
      const detail::Sha256 digest = detail::sha256({o.body});
      detail::put_hex_bytes(content_dedup_id.data(), digest.data(), digest.size());
      content_dedup = true;
      dedup_id = std::string_view(content_dedup_id.data(), content_dedup_id.size());
    } else if (!valid_fifo_id(dedup_id)) {
      return Errc::invalid_parameter_value;
    }
    const bool per_group =
        detail::atom(const_cast<std::uint32_t&>(h.dedup_per_group)).load(std::memory_order_relaxed) != 0;
    req.dedup = true;
    req.dedup_key = detail::dedup_key(per_group, opt.group_id, dedup_id);
    q.core.prefetch_dedup(req.dedup_key);  // its miss overlaps the rest of the send's preparation
    req.group_id = opt.group_id;
    req.delay_s = settings.delay_s;
  } else {
    if (!opt.deduplication_id.empty()) return Errc::invalid_parameter_value;  // FIFO queues only
    req.delay_s = opt.delay_seconds.value_or(settings.delay_s);
    if (req.delay_s > detail::kMaxDelaySeconds) return Errc::invalid_parameter_value;
  }
  return {};
}

// A message's payload block: the body, then the blob of attributes.
void write_payload(const Outgoing& o, const detail::BlobFields& blob, std::uint8_t* payload) noexcept {
  std::memcpy(payload, o.body.data(), o.body.size());
  detail::blob_write(blob, payload + o.body.size());
}

// Payloads up to this size (a batch's together) are copied inside the one
// critical section of a send; larger ones between a reserve and a commit, so
// that a long copy never holds the lock.
constexpr std::uint64_t kCopyUnderLockBytes = 4096;

// Sends 1..kMax messages: in one critical section if they are small, else
// with one reserve and one commit critical section. kMax sizes the arrays of
// per-message state, which a single send should not initialize ten of.
template <std::size_t kMax>
void send_all(detail::QueueState& q, std::span<Outgoing> out) {
  const detail::QueueSettings settings = detail::read_settings(q.core.header());
  const std::size_t n = std::min(out.size(), kMax);
  std::array<std::uint32_t, kMax> sizes{};
  std::array<std::uint32_t, kMax> bodies{};
  std::array<std::error_code, kMax> errors{};
  std::array<detail::Reservation, kMax> slots{};
  std::array<detail::CommitRequest, kMax> requests{};
  std::array<detail::CommitResult, kMax> results{};
  std::array<ContentDedupId, kMax> dedup_ids;  // filled where content_dedup
  std::array<bool, kMax> content_dedup{};
  std::array<detail::BlobFields, kMax> blobs{};
  for (std::size_t i = 0; i < n; ++i) {
    errors[i] = prepare(q, settings, out[i], requests[i], dedup_ids[i], content_dedup[i]);
    const SendOptions& opt = *out[i].options;
    blobs[i] = detail::BlobFields{opt.group_id,
                                  content_dedup[i] ? std::string_view(dedup_ids[i].data(), dedup_ids[i].size())
                                                   : std::string_view(opt.deduplication_id),
                                  opt.trace_header,
                                  opt.sender_id,  // the default, this process's uid, goes in the descriptor
                                  {},
                                  &opt.attributes};
    if (opt.sender_id.empty()) requests[i].sender_uid = process_uid();
    bodies[i] = static_cast<std::uint32_t>(out[i].body.size());
    sizes[i] = static_cast<std::uint32_t>(out[i].body.size() + detail::blob_size(blobs[i]));
  }
  for (std::size_t i = 0; i < n; ++i) requests[i].message_id = detail::new_message_id();
  // Sends without the mutex first (small messages to a standard queue, see
  // QueueCore::send_lock_free). Those it sends the locked path skips, as it
  // skips a message with an error.
  std::array<bool, kMax> sent{};
  std::size_t unsent = n;
  if (!q.core.fifo()) {
    const std::uint32_t epoch =
        q.connection ? q.connected_epoch.load(std::memory_order_relaxed) : detail::QueueCore::kAnyEpoch;
    const detail::Now now = detail::now();
    for (std::size_t i = 0; i < n; ++i) {
      if (errors[i]) continue;
      struct Source {
        const Outgoing* out;
        const detail::BlobFields* blob;
      } source{&out[i], &blobs[i]};
      const detail::QueueCore::Fill fill{[](void* context, std::size_t, std::uint8_t* payload) noexcept {
                                           const auto& src = *static_cast<const Source*>(context);
                                           write_payload(*src.out, *src.blob, payload);
                                         },
                                         &source};
      // The first message it declines ends the pass: the rest go on the
      // locked path, after it, so that the batch keeps its order.
      if (!q.core.send_lock_free(epoch, sizes[i], q.pid, fill, bodies[i], requests[i], results[i], now)) break;
      sent[i] = true;
      errors[i] = Errc::internal;  // not for the locked path; replaced below
      --unsent;
    }
  }
  const auto original_errors = errors;
  const auto sizes_n = std::span(sizes.data(), n);
  const auto slots_n = std::span(slots.data(), n);
  const auto errors_n = std::span(errors.data(), n);
  std::uint32_t receivable = 0;
  std::uint64_t unsent_bytes = 0;
  for (std::size_t i = 0; i < n; ++i) unsent_bytes += sent[i] ? 0 : sizes[i];
  if (unsent == 0) {
    // All sent without the mutex.
  } else if (unsent_bytes <= kCopyUnderLockBytes) {
    struct Sources {
      std::span<Outgoing> out;
      const detail::BlobFields* blobs;
    } sources{out, blobs.data()};
    const detail::QueueCore::Fill fill{[](void* context, std::size_t i, std::uint8_t* payload) noexcept {
                                         const auto& src = *static_cast<const Sources*>(context);
                                         write_payload(src.out[i], src.blobs[i], payload);
                                       },
                                       &sources};
    for (;;) {
      const std::uint32_t epoch =
          q.connection ? q.connected_epoch.load(std::memory_order_relaxed) : detail::QueueCore::kAnyEpoch;
      std::uint32_t seen_epoch = epoch;
      receivable = q.core.send_in_one_lock(epoch, sizes_n, q.pid, slots_n, errors_n, fill, std::span(bodies.data(), n),
                                           std::span(requests.data(), n), std::span(results.data(), n), detail::now(),
                                           seen_epoch);
      if (seen_epoch == epoch) break;
      // A daemon restarted since this process connected (see below). Store
      // the epoch seen under the lock, not a later one: if yet another daemon
      // starts meanwhile, the next send reconnects again.
      q.connection->reconnect();
      q.connected_epoch.store(seen_epoch, std::memory_order_relaxed);
      errors = original_errors;
    }
  } else {
    const std::uint32_t epoch = q.core.reserve(sizes_n, q.pid, slots_n, errors_n);
    if (epoch != q.connected_epoch.load(std::memory_order_relaxed) && q.connection) {
      // A daemon restarted since this process connected, and it will reclaim
      // slots only of processes it knows. Make it know this one before holding
      // a slot across the copy: undo, reconnect, reserve again.
      q.core.unreserve(slots_n);
      q.connection->reconnect();
      q.connected_epoch.store(epoch, std::memory_order_relaxed);
      errors = original_errors;
      q.core.reserve(sizes_n, q.pid, slots_n, errors_n);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (slots[i].index == detail::kNil) continue;
      write_payload(out[i], blobs[i], slots[i].payload);  // outside the lock
    }
    receivable = q.core.commit(slots_n, std::span(bodies.data(), n), std::span(requests.data(), n),
                               std::span(results.data(), n), detail::now());
  }
  if (receivable > 0) q.core.wake_receivers(receivable);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].error = sent[i] ? std::error_code{} : errors[i] ? errors[i] : results[i].error;
    out[i].result = results[i];
  }
}

// Into `out`, reusing its storage (a send loop then allocates nothing).
void format_id(const std::array<std::uint8_t, 16>& id, std::string& out) {
  std::uint8_t raw[16];
  std::memcpy(raw, id.data(), sizeof(raw));
  detail::format_message_id(raw, out);
}

}  // namespace

std::error_code Queue::send(std::string_view body, SendResult& result, const SendOptions& options) {
  if (remote_) [[unlikely]]
    return remote_->send(body, result, options);
  if (auto ec = unusable(*state_)) return ec;
  Outgoing one{body, &options, {}, {}};
  send_all<1>(*state_, std::span(&one, 1));
  if (auto ec = unless_faulted(*state_, one.error)) return ec;
  format_id(one.result.message_id, result.message_id);
  if (state_->core.fifo()) {
    format_sequence_number(one.result.seq, result.sequence_number);
  } else {
    result.sequence_number.clear();
  }
  result.duplicate = one.result.duplicate;
  return {};
}

std::error_code Queue::send_batch(std::span<const SendEntry> entries, std::vector<BatchEntryResult>& results) {
  if (remote_) [[unlikely]]
    return remote_->send_batch(entries, results);
  if (auto ec = check_batch(entries)) return ec;
  if (auto ec = unusable(*state_)) return ec;
  std::uint64_t total = 0;
  for (const SendEntry& e : entries) total += e.body.size() + detail::attributes_size(e.options.attributes);
  if (total > detail::kMaxMessageBytes) return Errc::batch_request_too_long;
  std::array<Outgoing, detail::kMaxBatchEntries> out;
  for (std::size_t i = 0; i < entries.size(); ++i) out[i] = Outgoing{entries[i].body, &entries[i].options, {}, {}};
  send_all<detail::kMaxBatchEntries>(*state_, std::span(out.data(), entries.size()));
  if (auto ec = unless_faulted(*state_, {})) return ec;
  size_results(results, entries.size());
  const bool fifo = state_->core.fifo();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    BatchEntryResult& r = results[i];
    r.id = entries[i].id;
    r.error = out[i].error;
    if (!out[i].error) {
      format_id(out[i].result.message_id, r.message_id);
      if (fifo) format_sequence_number(out[i].result.seq, r.sequence_number);
      r.duplicate = out[i].result.duplicate;
    }
  }
  return {};
}

namespace {

// Both forms of receive: up to `max_messages` (at most options.max_messages)
// into the Messages `slot(i)` gives, reusing their strings' storage; sets
// `filled` to how many hold a message. `slot` is called in order, once per
// message that is copied out.
template <class Slot>
std::error_code receive_messages(detail::QueueState& q, const ReceiveOptions& options, std::size_t max_messages,
                                 Slot&& slot, std::size_t& filled) {
  detail::QueueCore& core = q.core;
  detail::SegmentHeader& h = core.header();
  filled = 0;
  const auto done = [&](std::error_code ec) { return unless_faulted(q, ec); };
  if (options.max_messages < 1 || options.max_messages > detail::kMaxBatchEntries || max_messages < 1) {
    return done(Errc::invalid_parameter_value);
  }
  max_messages = std::min<std::size_t>(max_messages, options.max_messages);
  const detail::QueueSettings settings = detail::read_settings(h);
  const std::uint32_t visibility = options.visibility_timeout.value_or(settings.visibility_timeout_s);
  const auto wait = options.wait_time.value_or(std::chrono::seconds(settings.receive_wait_s));
  if (visibility > detail::kMaxVisibilityTimeout || wait < std::chrono::milliseconds(0) ||
      wait > std::chrono::seconds(detail::kMaxWaitSeconds)) {
    return done(Errc::invalid_parameter_value);
  }
  std::optional<detail::DedupKey> attempt;
  if (!options.receive_request_attempt_id.empty()) {
    if (!valid_fifo_id(options.receive_request_attempt_id)) return done(Errc::invalid_parameter_value);
    if (core.fifo()) attempt = detail::dedup_key(false, {}, options.receive_request_attempt_id);
  }
  const std::uint64_t lock_wait =
      options.lock_wait ? lock_wait_ns(*options.lock_wait) : detail::QueueCore::kDefaultWait;
  constexpr std::uint64_t kBusyRetryNs = 1'000'000;  // 1 ms
  constexpr std::uint32_t kPassesPerYield = 64;      // empty polls between yields while spinning
  const std::uint64_t start = detail::monotonic_ns();
  const std::uint64_t deadline = start + static_cast<std::uint64_t>(wait.count()) * 1'000'000ull;
  const std::uint64_t spin_until = start + static_cast<std::uint64_t>(options.spin.count()) * 1'000ull;

  std::array<detail::Delivery, detail::kMaxBatchEntries> taken;
  bool retry_attempt = attempt.has_value();  // a retry must reach the lock even when nothing is available
  // Clock reads cost ~20-25 ns each on a VM, in a loop that polls: read it
  // once per pass, and not at all after a zero-wait pass.
  std::uint64_t t = start;
  std::uint32_t idle_passes = 0;
  for (;; t = detail::monotonic_ns()) {
    if (auto ec = unusable(q)) return done(ec);
    if (core.available_count() > 0 || core.next_deadline_ns() <= t || retry_attempt) {
      retry_attempt = false;
      std::error_code limited;
      // The wall clock from the same read (see clock.hpp).
      const std::uint32_t n =
          core.receive(std::span(taken.data(), max_messages), visibility, detail::Now{t, detail::wall_ms_at(t)},
                       attempt ? &*attempt : nullptr, limited, lock_wait);
      for (std::uint32_t i = 0; i < n; ++i) {
        const detail::Delivery& d = taken[i];
        Message& m = slot(filled);
        clear_optional_fields(m);
        const auto* payload = core.payload(d.block_offset);
        m.body.assign(reinterpret_cast<const char*>(payload), d.body_bytes);  // outside the lock
        const bool parsed = detail::read_message_fields(payload + d.body_bytes, d.attr_bytes, d.sender_uid, m);
        // If the slot was freed meanwhile (possible only once the visibility
        // timeout passed and another receiver deleted it), the copy may be
        // torn: drop it; that receiver has the message.
        if (!core.still_valid(d) || !parsed) continue;
        detail::format_message_id(d.message_id, m.message_id);
        d.handle.write(m.receipt_handle);
        m.receive_count = d.handle.receive_count;
        m.sent_timestamp_ms = d.sent_ms;
        m.first_receive_timestamp_ms = d.first_receive_ms;
        if (core.fifo()) format_sequence_number(d.seq, m.sequence_number);
        ++filled;
      }
      if (filled > 0) return done({});
      if (limited == Errc::queue_busy) {
        // The lock stays held (its holder stopped?): try again a little
        // later while the wait lasts, without spinning on it.
        const std::uint64_t t2 = detail::monotonic_ns();
        if (t2 >= deadline) return done(limited);
        retry_attempt = attempt.has_value();
        const std::uint32_t seq = atom(h.ready_seq).load(std::memory_order_relaxed);
        detail::futex_wait(&h.ready_seq, seq, std::min<std::uint64_t>(deadline - t2, kBusyRetryNs));
        continue;
      }
      if (limited) return done(limited);
    }
    if (deadline == start) return done({});  // no wait
    // This pass's clock read, from before its look at the queue: nothing was
    // there at t, so the wait is over if t is past its end.
    if (t >= deadline) return done({});
    if (t < spin_until) {
      // Every so often the core goes to whoever else wants it: a spinning
      // receiver on a machine with more runnable processes than cores (four
      // senders and four receivers on two) would otherwise hold its core for
      // its whole time slice while the senders it waits for queue behind it.
      // With a core to itself, the yield returns at once.
      if (++idle_passes % kPassesPerYield == 0) ::sched_yield();
      detail::cpu_relax();
      continue;
    }
    const std::uint64_t t2 = detail::monotonic_ns();
    if (t2 >= deadline) return done({});
    // Sleep. seq_cst on waiters and ready_seq: either the sender's wake_receivers
    // sees this waiter, or this load sees the sender's ready_seq bump.
    core.add_waiter(q.pid);
    const std::uint32_t seq = atom(h.ready_seq).load(std::memory_order_seq_cst);
    if (core.available_count() == 0 && !gone(q)) {
      const std::uint64_t until = std::min(deadline, core.next_deadline_ns());
      if (until > t2) detail::futex_wait(&h.ready_seq, seq, until - t2);
    }
    core.remove_waiter(q.pid);
  }
}

}  // namespace

std::error_code Queue::receive(std::vector<Message>& messages, const ReceiveOptions& options) {
  if (remote_) [[unlikely]] {
    std::array<Message, detail::kMaxBatchEntries> got;
    std::size_t n = 0;
    const std::error_code ec = remote_->receive_into(std::span(got), n, options);
    messages.resize(n);
    for (std::size_t i = 0; i < n; ++i) messages[i] = std::move(got[i]);
    return ec;
  }
  // The Messages already in `messages` are reused, so that a receive loop
  // keeps their strings' storage instead of allocating each time.
  std::size_t filled = 0;
  const auto slot = [&messages](std::size_t i) -> Message& {
    if (i == messages.size()) messages.emplace_back();
    return messages[i];
  };
  const std::error_code ec = receive_messages(*state_, options, detail::kMaxBatchEntries, slot, filled);
  messages.resize(ec == Errc::queue_does_not_exist ? 0 : filled);
  return ec;
}

std::error_code Queue::receive_into(std::span<Message> messages, std::size_t& received, const ReceiveOptions& options) {
  if (remote_) [[unlikely]]
    return remote_->receive_into(messages, received, options);
  const auto slot = [messages](std::size_t i) -> Message& { return messages[i]; };
  const std::error_code ec = receive_messages(*state_, options, messages.size(), slot, received);
  if (ec == Errc::queue_does_not_exist) received = 0;
  return ec;
}

std::error_code Queue::peek(std::vector<PeekedMessage>& messages, std::size_t max_messages) const {
  if (remote_) {
    messages.clear();
    return Errc::unsupported_operation;
  }
  constexpr std::size_t kMaxPeek = 100;
  detail::QueueState& q = *state_;
  detail::QueueCore& core = q.core;
  messages.clear();
  const auto done = [&](std::error_code ec) { return unless_faulted(q, ec); };
  if (max_messages < 1 || max_messages > kMaxPeek) return done(Errc::invalid_parameter_value);
  if (auto ec = unusable(q)) return done(ec);
  std::vector<detail::QueueCore::Peeked> found(max_messages);
  std::error_code error;
  found.resize(core.peek(found, error));
  if (error) return done(error);
  const std::uint64_t mono = detail::monotonic_ns();
  const std::uint64_t wall = detail::wall_ms_at(mono);
  for (const detail::QueueCore::Peeked& p : found) {
    const detail::Delivery& d = p.delivery;
    PeekedMessage& out = messages.emplace_back();
    Message& m = out.message;
    const auto* payload = core.payload(d.block_offset);
    m.body.assign(reinterpret_cast<const char*>(payload), d.body_bytes);  // outside the lock
    const bool parsed = detail::read_message_fields(payload + d.body_bytes, d.attr_bytes, d.sender_uid, m);
    // Received and deleted since, its slot perhaps reused: the copy may be torn.
    if (!core.still_valid(d) || !parsed) {
      messages.pop_back();
      continue;
    }
    detail::format_message_id(d.message_id, m.message_id);
    m.receive_count = d.handle.receive_count;
    m.sent_timestamp_ms = d.sent_ms;
    m.first_receive_timestamp_ms = d.first_receive_ms;
    if (core.fifo()) format_sequence_number(d.seq, m.sequence_number);
    using State = PeekedMessage::State;
    const bool timed = p.state == detail::MessageState::kInFlight || p.state == detail::MessageState::kDelayed;
    if (timed && p.due_ns > mono) {
      out.state = p.state == detail::MessageState::kInFlight ? State::in_flight : State::delayed;
      out.visible_at_ms = wall + (p.due_ns - mono) / 1'000'000;
    } else if (p.state == detail::MessageState::kRedrive) {
      out.state = State::to_dead_letter_queue;
    } else {
      out.state = State::visible;  // ready, or its timer is due: the next receive takes it
    }
  }
  return done({});
}

void Queue::wait_for_messages(std::chrono::milliseconds timeout) const noexcept {
  if (remote_) return;
  detail::QueueState& q = *state_;
  detail::SegmentHeader& h = q.core.header();
  const std::uint64_t t = detail::monotonic_ns();
  const std::uint64_t until = std::min<std::uint64_t>(t + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ull,
                                                      q.core.next_deadline_ns());
  // As in receive: seq_cst pairs with the sender's wake-up check.
  q.core.add_waiter(q.pid);
  const std::uint32_t seq = atom(h.ready_seq).load(std::memory_order_seq_cst);
  if (q.core.available_count() == 0 && !gone(q) && until > t) detail::futex_wait(&h.ready_seq, seq, until - t);
  q.core.remove_waiter(q.pid);
}

bool Queue::might_have_messages() const noexcept {
  if (remote_) return true;
  const detail::QueueState& q = *state_;
  return q.core.available_count() > 0 || deleted(q) || q.core.next_deadline_ns() <= detail::monotonic_ns();
}

void WaitInterrupt::notify() noexcept {
  // seq_cst: pairs with value() read by the waiter before it decides to sleep.
  word_.fetch_add(1, std::memory_order_seq_cst);
  static_assert(sizeof(word_) == sizeof(std::uint32_t) && std::atomic<std::uint32_t>::is_always_lock_free);
  detail::futex_wake_private(reinterpret_cast<std::uint32_t*>(&word_), INT_MAX);
}

void Queue::wait_for_any(std::span<const Queue> queues, std::chrono::milliseconds timeout,
                         const WaitInterrupt& interrupt, std::uint32_t interrupt_seen,
                         std::vector<std::size_t>& ready) {
  if (queues.size() > kMaxWaitQueues) queues = queues.first(kMaxWaitQueues);
  ready.clear();
  // A remote queue is always ready (only a receive can tell): no sleep.
  if (std::any_of(queues.begin(), queues.end(), [](const Queue& q) { return q.remote(); })) {
    for (std::size_t i = 0; i < queues.size(); ++i) {
      if (queues[i].might_have_messages()) ready.push_back(i);
    }
    return;
  }
  const std::uint64_t t = detail::monotonic_ns();
  // Past a year, no limit: and no overflow for milliseconds::max().
  constexpr std::int64_t kNoLimitMs = 365ll * 24 * 3600 * 1000;
  const std::int64_t ms = std::max<std::int64_t>(timeout.count(), 0);
  std::uint64_t until = ms >= kNoLimitMs ? ~0ull : t + static_cast<std::uint64_t>(ms) * 1'000'000ull;
  std::array<detail::FutexWord, kMaxWaitQueues + 1> words{};
  std::array<std::uint32_t, kMaxWaitQueues> seen{};
  // As in receive: seq_cst on waiters and ready_seq pairs with the sender's
  // wake-up check, queue by queue.
  for (std::size_t i = 0; i < queues.size(); ++i) {
    detail::QueueState& q = *queues[i].state_;
    q.core.add_waiter(q.pid);
    seen[i] = atom(q.core.header().ready_seq).load(std::memory_order_seq_cst);
    words[i] = {&q.core.header().ready_seq, seen[i], false};
    if (q.core.available_count() > 0 || gone(q)) until = t;  // no sleep
    until = std::min(until, q.core.next_deadline_ns());
  }
  words[queues.size()] = {reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&interrupt.word_)),
                          interrupt_seen, true};
  if (until > t) detail::futex_wait_any(std::span(words.data(), queues.size() + 1), until);
  const std::uint64_t after = detail::monotonic_ns();
  for (std::size_t i = 0; i < queues.size(); ++i) {
    detail::QueueState& q = *queues[i].state_;
    q.core.remove_waiter(q.pid);
    // A bumped ready_seq or a passed deadline (a delay or visibility timeout
    // that a receive would expire) may let a receive find something.
    if (q.core.available_count() > 0 || gone(q) ||
        atom(q.core.header().ready_seq).load(std::memory_order_relaxed) != seen[i] ||
        q.core.next_deadline_ns() <= after) {
      ready.push_back(i);
    }
  }
}

std::error_code Queue::delete_message(std::string_view receipt_handle) {
  if (remote_) [[unlikely]]
    return remote_->delete_message(receipt_handle);
  detail::QueueState& q = *state_;
  if (auto ec = unusable(q)) return ec;
  const auto handle = detail::ReceiptHandle::parse(receipt_handle);
  if (!handle) return Errc::invalid_receipt_handle;
  return unless_faulted(q, q.core.remove(*handle));
}

std::error_code Queue::change_visibility(std::string_view receipt_handle, std::uint32_t seconds) {
  if (remote_) [[unlikely]]
    return remote_->change_visibility(receipt_handle, seconds);
  detail::QueueState& q = *state_;
  if (auto ec = unusable(q)) return ec;
  if (seconds > detail::kMaxVisibilityTimeout) return Errc::invalid_parameter_value;
  const auto handle = detail::ReceiptHandle::parse(receipt_handle);
  if (!handle) return Errc::invalid_receipt_handle;
  return unless_faulted(q, q.core.change_visibility(*handle, seconds, detail::now()));
}

std::error_code Queue::delete_batch(std::span<const HandleEntry> entries, std::vector<BatchEntryResult>& results) {
  if (remote_) [[unlikely]]
    return remote_->delete_batch(entries, results);
  if (auto ec = check_batch(entries)) return ec;
  if (auto ec = unusable(*state_)) return ec;
  // One critical section for the handles that parse.
  std::array<detail::ReceiptHandle, detail::kMaxBatchEntries> handles{};
  std::array<std::error_code, detail::kMaxBatchEntries> errors{};
  std::array<std::size_t, detail::kMaxBatchEntries> entry_of{};
  std::size_t parsed = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (const auto handle = detail::ReceiptHandle::parse(entries[i].receipt_handle)) {
      handles[parsed] = *handle;
      entry_of[parsed++] = i;
    } else {
      errors[i] = Errc::invalid_receipt_handle;
    }
  }
  std::array<std::error_code, detail::kMaxBatchEntries> removed{};
  state_->core.remove(std::span(handles.data(), parsed), std::span(removed.data(), parsed));
  if (auto ec = unless_faulted(*state_, {})) return ec;
  for (std::size_t k = 0; k < parsed; ++k) errors[entry_of[k]] = removed[k];
  size_results(results, entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    results[i].id = entries[i].id;
    results[i].error = errors[i];
  }
  return {};
}

std::error_code Queue::change_visibility_batch(std::span<const HandleEntry> entries,
                                               std::vector<BatchEntryResult>& results) {
  if (remote_) [[unlikely]]
    return remote_->change_visibility_batch(entries, results);
  if (auto ec = check_batch(entries)) return ec;
  if (auto ec = unusable(*state_)) return ec;
  size_results(results, entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    results[i].id = entries[i].id;
    results[i].error = change_visibility(entries[i].receipt_handle, entries[i].visibility_timeout);
  }
  return unless_faulted(*state_, {});
}

}  // namespace shmq
