// The processes of one measurement. The parent forks one process per
// worker and never sends or receives itself; the workers start measuring
// together, released by a gate in shared memory, and a worker that fails
// leaves its error message there for the parent.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shmq::bench {

// The words of the start gate, in memory shared by the parent and workers.
struct GateWords {
  std::atomic<std::uint32_t> ready{0};  // workers waiting at the gate
  std::atomic<std::uint32_t> open{0};   // set by the parent once all are ready
};

// Where a worker waits until every worker has set up its ends.
class StartGate {
 public:
  explicit StartGate(GateWords& words) noexcept : words_(&words) {}
  // Marks this worker ready, then waits (yielding the CPU) until the parent
  // opens the gate. Does not fail.
  void arrive_and_wait() const noexcept;

 private:
  GateWords* words_;
};

struct WorkerSpec {
  std::string name;        // in error messages: "ping", "producer 2"
  std::optional<int> cpu;  // pinned to this CPU (sched_setaffinity) if set
  // Runs in the forked child: sets up, calls gate.arrive_and_wait() once,
  // measures. Throws on failure.
  std::function<void(const StartGate& gate)> body;
};

// Forks one process per worker, opens the gate once all are ready and
// blocks until every worker has exited. Throws std::runtime_error naming
// the first worker that failed, with its exception's message or the signal
// that ended it; the other workers are then killed. `label` prefixes the
// message a failing worker prints on stderr.
void run_workers(std::string_view label, std::vector<WorkerSpec>& workers);

}  // namespace shmq::bench
