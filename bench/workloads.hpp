// The two measurements shmq-bench makes over any Transport, each in forked
// processes that start together:
//   pingpong: process "ping" sends on channel "ping"; process "pong"
//             receives it and sends the same bytes back on "pong"; ping
//             times each round trip.
//   stream:   producers send N numbered messages on channel "stream" as fast
//             as it takes them; consumers receive in batches until each gets
//             a stop message; every number must arrive exactly once.
//             With a backlog of B, one process first fills the channel with
//             B messages (not timed); the consumers then stop once they have
//             consumed N between them, so the channel holds about B
//             throughout the timed part, and one process drains what is left
//             afterwards (not timed) before every number is checked.
//             Sequential (--sequential): the producers send all N before the
//             consumers start, so that sends and receives are each timed
//             alone; a process that sends the stops runs with the consumers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "latency_summary.hpp"
#include "transport.hpp"

namespace shmq::bench {

enum class Workload { pingpong, stream };

inline constexpr std::size_t kMaxBatch = 10;  // SQS's largest receive

struct PingpongConfig {
  ChannelOptions channel;
  std::size_t iterations = 100000;  // round trips measured
  std::size_t warmup = 10000;       // round trips before those, not measured
  std::vector<int> pin;             // CPUs of ping and pong, in that order (cycled); empty: not pinned
};

struct StreamConfig {
  ChannelOptions channel;
  std::size_t messages = 1000000;  // sent in all, shared out among the producers
  std::size_t producers = 1;
  std::size_t consumers = 1;
  std::size_t batch = kMaxBatch;  // most messages a consumer takes per receive
  std::vector<int> pin;           // CPUs of producers, then consumers (cycled); empty: not pinned
  // Messages in the channel before the clock starts, kept there while it runs.
  // 0, or at least consumers * batch: a consumer that finds the channel empty
  // waits for a send, and one must always come.
  std::size_t backlog = 0;
  // Messages a producer hands the transport per call (Sender::send_batch), 1..10.
  std::size_t send_batch = 1;
  // The producers send all N before the consumers start (no backlog then).
  bool sequential = false;
};

struct StreamSummary {
  std::uint64_t messages = 0;  // consumed while timed, each exactly once (with a backlog: N or a few more)
  double seconds = 0;  // from the first send to the last message consumed (with a backlog: first and last of either)
  double messages_per_s = 0;
  double mb_per_s = 0;  // 10^6 bytes of messages a second
  // Each side on its own clock: from the first send to the last send's
  // return, and from the consumers' start to the last message consumed.
  // Sequential runs time the sides apart, and their `seconds` is the sum.
  double send_seconds = 0;
  double sends_per_s = 0;
  double receive_seconds = 0;
  double receives_per_s = 0;  // messages received and deleted a second
};

// Creates channels "ping" and "pong" and measures round trips. Blocks until
// both processes are done. Throws std::runtime_error if a process fails
// (with its message) or a reply is not the message sent.
LatencySummary run_pingpong(Transport& transport, const PingpongConfig& config);

// Creates channel "stream" (with room for the backlog besides its capacity)
// and measures throughput. Blocks until all processes are done. Throws
// std::runtime_error if a process fails, or if a message is lost,
// duplicated or malformed.
StreamSummary run_stream(Transport& transport, const StreamConfig& config);

}  // namespace shmq::bench
