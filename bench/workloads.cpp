#include "workloads.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>

#include "payload.hpp"
#include "shared_array.hpp"
#include "worker_processes.hpp"

namespace shmq::bench {
namespace {

// steady_clock is CLOCK_MONOTONIC: comparable across processes; a read
// costs about 20 ns through the vDSO, inside every round trip measured.
std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

std::optional<int> cpu_for(const std::vector<int>& pin, std::size_t worker) {
  if (pin.empty()) return std::nullopt;
  return pin[worker % pin.size()];
}

std::size_t receive_some(Receiver& receiver, std::size_t max, std::vector<std::span<const std::byte>>& got) {
  const std::size_t n = receiver.receive(max, got);
  if (n == 0 || n > max || got.size() != n) {
    throw std::runtime_error("the transport's receive returned " + std::to_string(n) + " messages (asked for 1 to " +
                             std::to_string(max) + ")");
  }
  return n;
}

void check_reply(std::span<const std::byte> reply, std::size_t message_bytes, std::uint64_t expected) {
  if (reply.size() != message_bytes) {
    throw std::runtime_error("reply " + std::to_string(expected) + " has " + std::to_string(reply.size()) +
                             " bytes, sent " + std::to_string(message_bytes));
  }
  const auto sequence = read_sequence(reply);
  if (!sequence || *sequence != expected) {
    throw std::runtime_error("reply to message " + std::to_string(expected) + " carries " +
                             (sequence ? "message " + std::to_string(*sequence) : std::string("no sequence number")));
  }
}

// Results of a stream run, written by the workers into shared memory.
struct StreamCounters {
  std::atomic<std::uint32_t> producers_done{0};
  std::atomic<std::uint32_t> stops_taken{0};  // stop messages consumed so far
  std::atomic<std::uint64_t> consumed{0};     // data messages consumed so far, all consumers
};
struct ProducerTally {
  std::uint64_t first_send_ns = std::numeric_limits<std::uint64_t>::max();  // unset if it had nothing to send
  std::uint64_t last_send_ns = 0;                                           // when its last send returned
};
struct ConsumerTally {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t first_receive_ns = std::numeric_limits<std::uint64_t>::max();  // when it began to receive
  std::uint64_t last_consumed_ns = 0;  // when its last data message was consumed
};

// Numbers sent in a stream: the producers' N, then the backlog's.
std::uint64_t stream_numbers(const StreamConfig& config) noexcept { return config.messages + config.backlog; }

// Counts one received batch into `mine` and `counted`; true if it held a stop message.
bool count_batch(const StreamConfig& config, std::span<const std::span<const std::byte>> batch,
                 std::vector<std::uint8_t>& mine, ConsumerTally& counted, std::uint64_t& data) {
  bool stop = false;
  data = 0;
  for (const std::span<const std::byte> message : batch) {
    const auto seq = read_sequence(message);
    if (seq == kStopSequence) {
      stop = true;
    } else if (!seq || *seq >= mine.size() || message.size() != config.channel.message_bytes) {
      ++counted.malformed;
    } else {
      ++mine[*seq];
      ++counted.received;
      ++data;
    }
  }
  return stop;
}

// Adds a process's counts to the shared `seen`.
void publish_seen(const std::vector<std::uint8_t>& mine, std::span<std::uint8_t> seen) noexcept {
  // relaxed: the parent reads `seen` after waitpid(), which orders it.
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (mine[i] != 0) std::atomic_ref<std::uint8_t>(seen[i]).fetch_add(mine[i], std::memory_order_relaxed);
  }
}

// Process "ping": sends, waits for the reply, times the round trip.
void ping(Transport& transport, const PingpongConfig& config, const StartGate& gate, std::span<std::uint64_t> samples,
          std::uint64_t& elapsed_ns) {
  transport.attach_process("ping");
  auto sender = transport.open_sender("ping");
  auto receiver = transport.open_receiver("pong");
  std::vector<std::byte> message(config.channel.message_bytes);
  fill_payload(message);
  std::vector<std::span<const std::byte>> got;
  got.reserve(kMaxBatch);
  gate.arrive_and_wait();
  std::uint64_t begin = 0;
  for (std::size_t i = 0; i < config.warmup + config.iterations; ++i) {
    stamp_sequence(message, i);
    const std::uint64_t t0 = now_ns();
    sender->send(message);
    receive_some(*receiver, 1, got);
    const std::uint64_t t1 = now_ns();
    check_reply(got[0], message.size(), i);
    if (i == config.warmup) begin = t0;
    if (i >= config.warmup) samples[i - config.warmup] = t1 - t0;
  }
  elapsed_ns = now_ns() - begin;
}

// Process "pong": sends back each message it receives, as it is.
void pong(Transport& transport, const PingpongConfig& config, const StartGate& gate) {
  transport.attach_process("pong");
  auto receiver = transport.open_receiver("ping");
  auto sender = transport.open_sender("pong");
  std::vector<std::span<const std::byte>> got;
  got.reserve(kMaxBatch);
  gate.arrive_and_wait();
  for (std::size_t i = 0; i < config.warmup + config.iterations; ++i) {
    receive_some(*receiver, 1, got);
    sender->send(got[0]);
  }
}

// Sends one stop message per consumer, once every message is consumed (or
// none has been for a while: then the count check reports what is missing
// instead of hanging). Between checks it yields the CPU, or with a `pause`
// sleeps that long.
void send_stops(Sender& sender, const StreamConfig& config, StreamCounters& counters, std::vector<std::byte>& message,
                std::chrono::microseconds pause) {
  auto idle = [pause] {
    if (pause.count() > 0) {
      std::this_thread::sleep_for(pause);
    } else {
      ::sched_yield();
    }
  };
  // A stop must not overtake another producer's messages still on their way
  // (ZeroMQ orders nothing across senders): wait until all are consumed.
  constexpr auto kNoProgress = std::chrono::seconds(10);
  std::uint64_t seen_consumed = 0;
  auto progress_at = std::chrono::steady_clock::now();
  for (;;) {
    // acquire: pairs with the consumers' release; only a count.
    const std::uint64_t c = counters.consumed.load(std::memory_order_acquire);
    if (c >= config.messages) break;
    const auto now = std::chrono::steady_clock::now();
    if (c != seen_consumed) {
      seen_consumed = c;
      progress_at = now;
    } else if (now - progress_at > kNoProgress) {
      break;
    }
    idle();
  }
  // One stop in the channel at a time, so that no consumer takes two in one batch.
  stamp_sequence(message, kStopSequence);
  for (std::uint32_t c = 0; c < config.consumers; ++c) {
    sender.send(message);
    sender.flush();
    // acquire: pairs with the consumer's release; nothing else depends on it.
    while (counters.stops_taken.load(std::memory_order_acquire) < c + 1) idle();
  }
}

// Sends the numbers [first, last) in calls of config.send_batch messages.
void send_numbers(Sender& sender, const StreamConfig& config, std::vector<std::byte>& message, std::uint64_t first,
                  std::uint64_t last) {
  if (config.send_batch <= 1) {
    for (std::uint64_t seq = first; seq < last; ++seq) {
      stamp_sequence(message, seq);
      sender.send(message);
    }
    return;
  }
  std::vector<std::vector<std::byte>> batch(config.send_batch, message);
  std::vector<std::span<const std::byte>> views;
  views.reserve(batch.size());
  for (std::uint64_t seq = first; seq < last;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(batch.size(), last - seq));
    views.clear();
    for (std::size_t i = 0; i < n; ++i) {
      stamp_sequence(batch[i], seq + i);
      views.emplace_back(batch[i]);
    }
    sender.send_batch(views);
    seq += n;
  }
}

// A stream producer: sends its share of the numbers; the last producer to
// finish then sends one stop message per consumer (not with a backlog, nor
// in a sequential run).
void produce(Transport& transport, const StreamConfig& config, std::size_t index, const StartGate& gate,
             StreamCounters& counters, ProducerTally& tally) {
  const std::uint64_t first = config.messages * index / config.producers;
  const std::uint64_t last = config.messages * (index + 1) / config.producers;
  transport.attach_process("producer-" + std::to_string(index));
  auto sender = transport.open_sender("stream");
  std::vector<std::byte> message(config.channel.message_bytes);
  fill_payload(message);
  gate.arrive_and_wait();
  if (first < last) tally.first_send_ns = now_ns();
  send_numbers(*sender, config, message, first, last);
  sender->flush();  // the send clock stops once every message is in the channel
  tally.last_send_ns = now_ns();
  // With a backlog the consumers stop by count: a stop would wait behind the backlog.
  if (config.backlog > 0 || config.sequential) return;
  // acq_rel: the last producer sends the stops after every producer's last send.
  if (counters.producers_done.fetch_add(1, std::memory_order_acq_rel) + 1 != config.producers) return;
  send_stops(*sender, config, counters, message, std::chrono::microseconds(0));
}

// A sequential run's stopper, beside the consumers: sends the stops once
// they have consumed everything. It sleeps between checks, so as not to
// take CPU from the consumers it waits for.
void stop_consumers(Transport& transport, const StreamConfig& config, const StartGate& gate, StreamCounters& counters) {
  transport.attach_process("stopper");
  auto sender = transport.open_sender("stream");
  std::vector<std::byte> message(config.channel.message_bytes);
  fill_payload(message);
  gate.arrive_and_wait();
  send_stops(*sender, config, counters, message, std::chrono::microseconds(1000));
}

// A stream consumer: receives in batches until a stop message (with a
// backlog: until the consumers have consumed N between them), counting each
// number it gets; adds its counts to `seen` once the clock has stopped.
void consume(Transport& transport, const StreamConfig& config, std::size_t index, const StartGate& gate,
             StreamCounters& counters, ConsumerTally& tally, std::span<std::uint8_t> seen) {
  transport.attach_process("consumer-" + std::to_string(index));
  auto receiver = transport.open_receiver("stream");
  std::vector<std::uint8_t> mine(stream_numbers(config));
  std::vector<std::span<const std::byte>> got;
  got.reserve(kMaxBatch);
  ConsumerTally counted;
  // acquire: pairs with the other consumers' release; only a count.
  auto more = [&] {
    return config.backlog == 0 || counters.consumed.load(std::memory_order_acquire) < config.messages;
  };
  gate.arrive_and_wait();
  counted.first_receive_ns = now_ns();
  for (bool stop = false; !stop && more();) {
    const std::size_t n = receive_some(*receiver, config.batch, got);
    std::uint64_t data = 0;
    stop = count_batch(config, std::span(got.data(), n), mine, counted, data);
    if (data > 0) {
      counted.last_consumed_ns = now_ns();
      counters.consumed.fetch_add(data, std::memory_order_release);  // pairs with the last producer's acquire
    }
  }
  tally = counted;
  counters.stops_taken.fetch_add(1, std::memory_order_release);  // pairs with send_stops's acquire
  publish_seen(mine, seen);
}

// Before the clock: sends the backlog's numbers, N to N + backlog - 1.
void fill_backlog(Transport& transport, const StreamConfig& config, const StartGate& gate) {
  transport.attach_process("backlog");
  auto sender = transport.open_sender("stream");
  std::vector<std::byte> message(config.channel.message_bytes);
  fill_payload(message);
  gate.arrive_and_wait();
  for (std::uint64_t seq = config.messages; seq < stream_numbers(config); ++seq) {
    stamp_sequence(message, seq);
    sender->send(message);
  }
  sender->flush();
}

// After the clock: receives the `remaining` numbers the consumers left.
void drain(Transport& transport, const StreamConfig& config, std::uint64_t remaining, const StartGate& gate,
           ConsumerTally& tally, std::span<std::uint8_t> seen) {
  transport.attach_process("drain");
  auto receiver = transport.open_receiver("stream");
  std::vector<std::uint8_t> mine(stream_numbers(config));
  std::vector<std::span<const std::byte>> got;
  got.reserve(kMaxBatch);
  ConsumerTally counted;
  gate.arrive_and_wait();
  while (counted.received + counted.malformed < remaining) {
    const std::size_t n = receive_some(*receiver, kMaxBatch, got);
    std::uint64_t data = 0;
    count_batch(config, std::span(got.data(), n), mine, counted, data);
  }
  tally = counted;
  publish_seen(mine, seen);
}

}  // namespace

LatencySummary run_pingpong(Transport& transport, const PingpongConfig& config) {
  if (config.iterations == 0) throw std::invalid_argument("pingpong needs at least one round trip");
  ChannelOptions channel = config.channel;
  channel.sends = config.warmup + config.iterations;
  transport.create_channel("ping", channel);
  transport.create_channel("pong", channel);
  SharedArray<std::uint64_t> samples(config.iterations);
  SharedArray<std::uint64_t> elapsed(1);
  std::vector<WorkerSpec> workers;
  workers.push_back({"ping", cpu_for(config.pin, 0), [&](const StartGate& gate) {
                       ping(transport, config, gate, std::span(samples.data(), samples.size()), elapsed[0]);
                     }});
  workers.push_back({"pong", cpu_for(config.pin, 1), [&](const StartGate& gate) { pong(transport, config, gate); }});
  run_workers(transport.name(), workers);

  std::vector<std::uint64_t> measured(samples.data(), samples.data() + samples.size());
  return summarise_latency(measured, elapsed[0]);
}

StreamSummary run_stream(Transport& transport, const StreamConfig& config) {
  if (config.messages == 0 || config.producers == 0 || config.consumers == 0 || config.batch == 0 ||
      config.batch > kMaxBatch) {
    throw std::invalid_argument("stream: messages, producers, consumers and batch (up to 10) must be positive");
  }
  if (config.backlog > 0 && config.backlog < config.consumers * config.batch) {
    throw std::invalid_argument("stream: a backlog must be at least consumers * batch messages");
  }
  if (config.send_batch == 0 || config.send_batch > kMaxBatch) {
    throw std::invalid_argument("stream: a send batch is 1 to 10 messages");
  }
  if (config.sequential && config.backlog > 0) throw std::invalid_argument("stream: sequential runs have no backlog");
  const std::uint64_t numbers = stream_numbers(config);
  ChannelOptions channel = config.channel;
  channel.capacity += config.backlog;  // the backlog, and room beside it as without one
  // Sequential: every message, and the stops, wait in the channel at once.
  if (config.sequential) channel.capacity = std::max<std::size_t>(channel.capacity, numbers + config.consumers);
  channel.sends = numbers + config.consumers;
  transport.create_channel("stream", channel);
  SharedArray<StreamCounters> counters(1);
  SharedArray<ProducerTally> producer_tallies(config.producers);
  SharedArray<ConsumerTally> consumer_tallies(config.consumers + 1);  // the last: the drain's
  SharedArray<std::uint8_t> seen(numbers);                            // deliveries of each number, over all consumers
  if (config.backlog > 0) {
    std::vector<WorkerSpec> filler{
        {"backlog", cpu_for(config.pin, 0), [&](const StartGate& gate) { fill_backlog(transport, config, gate); }}};
    run_workers(transport.name(), filler);
  }
  std::vector<WorkerSpec> workers;
  for (std::size_t p = 0; p < config.producers; ++p) {
    workers.push_back({"producer-" + std::to_string(p), cpu_for(config.pin, p), [&, p](const StartGate& gate) {
                         produce(transport, config, p, gate, counters[0], producer_tallies[p]);
                       }});
  }
  if (config.sequential) {
    run_workers(transport.name(), workers);
    workers.clear();
    workers.push_back({"stopper", cpu_for(config.pin, config.producers + config.consumers),
                       [&](const StartGate& gate) { stop_consumers(transport, config, gate, counters[0]); }});
  }
  for (std::size_t c = 0; c < config.consumers; ++c) {
    workers.push_back(
        {"consumer-" + std::to_string(c), cpu_for(config.pin, config.producers + c), [&, c](const StartGate& gate) {
           consume(transport, config, c, gate, counters[0], consumer_tallies[c], std::span(seen.data(), seen.size()));
         }});
  }
  run_workers(transport.name(), workers);

  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t end = 0;
  std::uint64_t start = std::numeric_limits<std::uint64_t>::max();
  // Each side's own clock.
  std::uint64_t send_start = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t send_end = 0;
  std::uint64_t receive_start = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t c = 0; c < config.consumers; ++c) {
    received += consumer_tallies[c].received;
    malformed += consumer_tallies[c].malformed;
    end = std::max(end, consumer_tallies[c].last_consumed_ns);
    receive_start = std::min(receive_start, consumer_tallies[c].first_receive_ns);
    // With a backlog the consumers have work before the first send.
    if (config.backlog > 0) start = std::min(start, consumer_tallies[c].first_receive_ns);
  }
  const std::uint64_t receive_end = end;
  for (std::size_t p = 0; p < config.producers; ++p) {
    start = std::min(start, producer_tallies[p].first_send_ns);
    send_start = std::min(send_start, producer_tallies[p].first_send_ns);
    // Only a producer that had something to send ends the send clock.
    if (producer_tallies[p].first_send_ns != std::numeric_limits<std::uint64_t>::max()) {
      send_end = std::max(send_end, producer_tallies[p].last_send_ns);
    }
    // With a backlog the consumers may finish before the producers: the
    // clock runs until both sides have done all their work.
    if (config.backlog > 0) end = std::max(end, producer_tallies[p].last_send_ns);
  }
  const std::uint64_t timed = received;
  if (config.backlog > 0 && received + malformed < numbers) {
    ConsumerTally& drained = consumer_tallies[config.consumers];
    std::vector<WorkerSpec> drainer{{"drain", cpu_for(config.pin, 0), [&](const StartGate& gate) {
                                       drain(transport, config, numbers - received - malformed, gate, drained,
                                             std::span(seen.data(), seen.size()));
                                     }}};
    run_workers(transport.name(), drainer);
    received += drained.received;
    malformed += drained.malformed;
  }
  const auto missing = static_cast<std::uint64_t>(std::count(seen.data(), seen.data() + seen.size(), 0));
  const auto duplicated = static_cast<std::uint64_t>(
      std::count_if(seen.data(), seen.data() + seen.size(), [](std::uint8_t n) { return n > 1; }));
  if (received != numbers || missing != 0 || duplicated != 0 || malformed != 0) {
    throw std::runtime_error("stream: sent " + std::to_string(numbers) + " messages, received " +
                             std::to_string(received) + ": " + std::to_string(missing) + " missing, " +
                             std::to_string(duplicated) + " more than once, " + std::to_string(malformed) +
                             " malformed");
  }
  if (end <= start || send_end <= send_start || receive_end <= receive_start) {
    throw std::runtime_error("stream: the clock did not advance");
  }
  StreamSummary s;
  s.messages = timed;
  s.send_seconds = static_cast<double>(send_end - send_start) / 1e9;
  s.sends_per_s = static_cast<double>(config.messages) / s.send_seconds;
  s.receive_seconds = static_cast<double>(receive_end - receive_start) / 1e9;
  s.receives_per_s = static_cast<double>(timed) / s.receive_seconds;
  // Sequential: the sides ran one after the other, each timed alone.
  s.seconds = config.sequential ? s.send_seconds + s.receive_seconds : static_cast<double>(end - start) / 1e9;
  s.messages_per_s = static_cast<double>(timed) / s.seconds;
  s.mb_per_s = s.messages_per_s * static_cast<double>(config.channel.message_bytes) / 1e6;
  return s;
}

}  // namespace shmq::bench
