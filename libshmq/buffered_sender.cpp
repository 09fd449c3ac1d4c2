#include "shmq/buffered_sender.hpp"

#include "message_blob.hpp"
#include "queue_attributes.hpp"
#include "shmq/error.hpp"

namespace shmq {

namespace {

std::size_t entry_bytes(const SendEntry& e) { return e.body.size() + detail::attributes_size(e.options.attributes); }

}  // namespace

BufferedSender::BufferedSender(Queue queue) : BufferedSender(std::move(queue), Options{}) {}

BufferedSender::BufferedSender(Queue queue, const Options& options)
    : queue_(std::move(queue)), options_(options), fifo_(queue_.name().ends_with(".fifo")) {
  if (options_.max_batch < 1 || options_.max_batch > detail::kMaxBatchEntries || options_.max_in_flight_batches < 1 ||
      options_.max_in_flight_batches > 64 || options_.max_batch_open.count() < 0) {
    throw std::system_error(Errc::invalid_parameter_value,
                            "BufferedSender: max_batch 1 to 10, max_in_flight_batches 1 to 64, max_batch_open >= 0");
  }
  threads_.reserve(options_.max_in_flight_batches);
  for (std::size_t i = 0; i < options_.max_in_flight_batches; ++i) threads_.emplace_back([this] { run(); });
}

BufferedSender::~BufferedSender() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::future<SendOutcome> BufferedSender::send(std::string body, SendOptions options) {
  Pending p{SendEntry{{}, std::move(body), std::move(options)}, {}, std::chrono::steady_clock::now()};
  std::future<SendOutcome> result = p.promise.get_future();
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    p.seq = next_seq_++;
    pending_.push_back(std::move(p));
    ++stats_.messages;
    // A full batch goes at once; the first of a batch starts a sender's wait.
    wake = pending_.size() == 1 || pending_.size() >= options_.max_batch;
  }
  if (wake) work_.notify_all();
  return result;
}

void BufferedSender::flush() {
  std::unique_lock lock(mutex_);
  // Done once every message buffered before this call was answered, even
  // while other threads go on sending.
  const std::uint64_t before = next_seq_;
  ++flush_requests_;
  work_.notify_all();
  const auto done = [&] {
    const bool pending_before = !pending_.empty() && pending_.front().seq < before;
    const bool sending_before = !sending_.empty() && *sending_.begin() < before;
    return !pending_before && !sending_before;
  };
  while (!idle_.wait_for(lock, std::chrono::milliseconds(50), done)) {
  }
}

BufferedSender::Stats BufferedSender::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<BufferedSender::Pending> BufferedSender::take_batch() {
  std::vector<Pending> batch;
  std::size_t bytes = 0;
  while (!pending_.empty() && batch.size() < options_.max_batch) {
    const std::size_t next = entry_bytes(pending_.front().entry);
    if (!batch.empty() && bytes + next > detail::kMaxMessageBytes) break;
    bytes += next;
    batch.push_back(std::move(pending_.front()));
    pending_.pop_front();
    // One that fills a batch by itself goes alone.
    if (bytes > detail::kMaxMessageBytes) break;
  }
  return batch;
}

void BufferedSender::run() {
  std::unique_lock lock(mutex_);
  std::uint64_t flushes_seen = flush_requests_;
  // A FIFO queue's next batch waits for the one on its way.
  const auto may_send = [this] { return !fifo_ || sending_.empty(); };
  for (;;) {
    // Woken by every change that may let it go, and looking again every
    // 50 ms all the same: a missed wake-up costs 50 ms, never a hang.
    const auto ready = [&] { return (stopping_ || !pending_.empty()) && (pending_.empty() || may_send()); };
    while (!work_.wait_for(lock, std::chrono::milliseconds(50), ready)) {
    }
    if (pending_.empty()) return;  // stopping, and nothing left
    // Wait out the first message's window unless the batch is full, a
    // flush asks for it, or the sender stops.
    const auto deadline = pending_.front().since + options_.max_batch_open;
    work_.wait_until(lock, deadline, [&] {
      return stopping_ || pending_.empty() || pending_.size() >= options_.max_batch || flush_requests_ != flushes_seen;
    });
    flushes_seen = flush_requests_;
    if (!may_send()) continue;
    std::vector<Pending> batch = take_batch();
    if (batch.empty()) continue;
    const auto mine = sending_.insert(batch.front().seq);
    ++stats_.batches;
    // Others may have more to send meanwhile.
    if (!pending_.empty()) work_.notify_all();
    lock.unlock();
    send_now(batch);
    lock.lock();
    sending_.erase(mine);
    idle_.notify_all();
    // A FIFO queue's senders waited for this batch: to take the next, or,
    // stopping with nothing left, to end.
    if (fifo_) work_.notify_all();
  }
}

void BufferedSender::send_now(std::vector<Pending>& batch) {
  try {
    send_batch_now(batch);
  } catch (...) {
    // Out of memory, say: every caller of the batch not answered yet hears it.
    for (Pending& p : batch) {
      try {
        p.promise.set_value(SendOutcome{Errc::internal, {}});
      } catch (const std::future_error&) {
        // answered already
      }
    }
  }
}

void BufferedSender::send_batch_now(std::vector<Pending>& batch) {
  if (batch.size() == 1) {
    SendOutcome out;
    out.error = queue_.send(batch[0].entry.body, out.result, batch[0].entry.options);
    batch[0].promise.set_value(std::move(out));
    return;
  }
  std::vector<SendEntry> entries;
  entries.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    entries.push_back(std::move(batch[i].entry));
    entries.back().id = std::to_string(i);
  }
  std::vector<BatchEntryResult> results;
  const std::error_code ec = queue_.send_batch(entries, results);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    SendOutcome out;
    if (ec) {
      out.error = ec;
    } else if (i < results.size()) {
      out.error = results[i].error;
      out.result.message_id = std::move(results[i].message_id);
      out.result.sequence_number = std::move(results[i].sequence_number);
      out.result.duplicate = results[i].duplicate;
    } else {
      out.error = Errc::internal;
    }
    batch[i].promise.set_value(std::move(out));
  }
}

}  // namespace shmq
