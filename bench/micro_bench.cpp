// Single-operation costs in one process, through the public API against a
// real shmqd (started here in a namespace of its own): send, receive and
// delete, batches, receipt handle parsing, and receive with large
// populations (100,000 messages in flight or delayed, 10,000 FIFO groups)
// to show that no operation scans them.
//
//   build/bin/shmq-micro-bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "receipt_handle.hpp"
#include "shmq/shmq.hpp"

namespace {

using namespace std::chrono_literals;

// One daemon for the whole run, next to this binary.
class Daemon {
 public:
  Daemon() : ns_("bench" + std::to_string(::getpid())) {
    const std::string shmqd = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "shmqd").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(::open("/dev/null", O_WRONLY), 1);  // the bench's output stays the bench's
      ::execl(shmqd.c_str(), shmqd.c_str(), "--namespace", ns_.c_str(), "--log-level", "warn", "--bridge-listen", "off",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      try {
        client_.emplace(shmq::Client::Options{ns_});
        return;
      } catch (const std::system_error&) {
        std::this_thread::sleep_for(10ms);
      }
    }
    throw std::runtime_error("shmqd did not start");
  }
  ~Daemon() {
    for (const auto& name : client_->list_queues()) client_->delete_queue(name);
    client_.reset();
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  shmq::Queue fresh_queue(const std::string& name, const shmq::Attributes& attributes = {}) {
    const auto existing = client_->list_queues(name);
    if (std::find(existing.begin(), existing.end(), name) != existing.end()) client_->delete_queue(name);
    client_->create_queue(name, attributes, shmq::QueueCapacity{262144, 512ull << 20});
    return client_->open_queue(name);
  }

 private:
  std::string ns_;
  pid_t pid_ = -1;
  std::optional<shmq::Client> client_;
};

Daemon& daemon() {
  static Daemon d;
  return d;
}

const shmq::ReceiveOptions kNoWait{.max_messages = 1, .wait_time = 0ms, .spin = 0us};

void check(const std::error_code& ec, benchmark::State& state) {
  if (ec) state.SkipWithError(ec.message().c_str());
}

// One message through: send, receive, delete.
void BM_SendReceiveDelete(benchmark::State& state) {
  shmq::Queue q = daemon().fresh_queue("srd");
  const std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  shmq::SendResult sent;
  std::vector<shmq::Message> got;
  for (auto _ : state) {
    check(q.send(body, sent), state);
    check(q.receive(got, kNoWait), state);
    check(q.delete_message(got.at(0).receipt_handle), state);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SendReceiveDelete)->Arg(64)->Arg(1024)->Arg(64 * 1024)->Arg(1024 * 1024);

// Ten messages through with the batch forms.
void BM_BatchOfTen(benchmark::State& state) {
  shmq::Queue q = daemon().fresh_queue("batch");
  std::vector<shmq::SendEntry> entries;
  for (int i = 0; i < 10; ++i) entries.push_back({"e" + std::to_string(i), std::string(64, 'x'), {}});
  std::vector<shmq::BatchEntryResult> results;
  std::vector<shmq::Message> got;
  std::vector<shmq::HandleEntry> handles(10);
  const shmq::ReceiveOptions ten{.max_messages = 10, .wait_time = 0ms, .spin = 0us};
  for (auto _ : state) {
    check(q.send_batch(entries, results), state);
    check(q.receive(got, ten), state);
    for (std::size_t i = 0; i < got.size(); ++i) handles[i] = {"h" + std::to_string(i), got[i].receipt_handle, 0};
    check(q.delete_batch(std::span(handles.data(), got.size()), results), state);
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_BatchOfTen);

void BM_ReceiptHandleParse(benchmark::State& state) {
  const std::string text = shmq::detail::ReceiptHandle{0x1234567890abcdefull, 4242, 7, 3}.to_string();
  for (auto _ : state) benchmark::DoNotOptimize(shmq::detail::ReceiptHandle::parse(text));
}
BENCHMARK(BM_ReceiptHandleParse);

// Send, receive, delete while `range(0)` other messages sit in flight (or
// delayed): the cost must not grow with them.
void population(benchmark::State& state, bool delayed) {
  shmq::Queue q = daemon().fresh_queue(delayed ? "delayed" : "inflight");
  const auto n = state.range(0);
  std::vector<shmq::Message> got;
  shmq::SendResult sent;
  const shmq::SendOptions later{.delay_seconds = 900};
  for (std::int64_t i = 0; i < n; ++i) check(q.send("parked", sent, delayed ? later : shmq::SendOptions{}), state);
  const shmq::ReceiveOptions hold{.max_messages = 10, .visibility_timeout = 43200, .wait_time = 0ms};
  for (std::int64_t i = 0; !delayed && i < n; i += 10) check(q.receive(got, hold), state);
  for (auto _ : state) {
    check(q.send("x", sent), state);
    check(q.receive(got, kNoWait), state);
    check(q.delete_message(got.at(0).receipt_handle), state);
  }
  state.counters["parked"] = static_cast<double>(n);
  state.SetItemsProcessed(state.iterations());
}
void BM_WithMessagesInFlight(benchmark::State& state) { population(state, false); }
void BM_WithMessagesDelayed(benchmark::State& state) { population(state, true); }
BENCHMARK(BM_WithMessagesInFlight)->Arg(0)->Arg(1000)->Arg(100000);
BENCHMARK(BM_WithMessagesDelayed)->Arg(0)->Arg(1000)->Arg(100000);

// A FIFO receive among `range(0)` groups, each with a message waiting: take
// one, delete it, send the next of that group.
void BM_FifoWithGroups(benchmark::State& state) {
  shmq::Queue q = daemon().fresh_queue("groups.fifo", {{"FifoQueue", "true"}});
  const auto groups = state.range(0);
  shmq::SendResult sent;
  std::uint64_t dedup = 0;
  shmq::SendOptions o;
  for (std::int64_t g = 0; g < groups; ++g) {
    o.group_id = "g" + std::to_string(g);
    o.deduplication_id = std::to_string(dedup++);
    check(q.send("m", sent, o), state);
  }
  std::vector<shmq::Message> got;
  for (auto _ : state) {
    check(q.receive(got, kNoWait), state);
    if (got.empty()) {
      state.SkipWithError("nothing to receive");
      break;
    }
    o.group_id = got[0].group_id;
    check(q.delete_message(got[0].receipt_handle), state);
    o.deduplication_id = std::to_string(dedup++);
    check(q.send("m", sent, o), state);
  }
  state.counters["groups"] = static_cast<double>(groups);
  state.SetItemsProcessed(state.iterations());
}
// Each send has a fresh deduplication id, which the queue remembers for 5
// minutes: a fixed number of iterations stays within the window.
BENCHMARK(BM_FifoWithGroups)->Arg(1)->Arg(100)->Arg(10000)->Iterations(100000);

}  // namespace

BENCHMARK_MAIN();
