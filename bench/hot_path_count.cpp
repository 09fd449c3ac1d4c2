// What one message costs the client library apart from the queue's lock:
// heap allocations and clock reads per message, counted here, and
// instructions per message, counted by callgrind around hot_path_loop:
//
//   build/bin/shmq-hot-path-count [--iterations N] [--body-bytes B] [--batch | --varying [--into]]
//   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=hot_path_loop
//       build/bin/shmq-hot-path-count --iterations 20000
//
// A loop is send + receive + delete of one message (with --batch, a
// send_batch, a receive and a delete_batch of 10; with --varying, 1 to 10
// sends in turn, then receives of up to 10 until all are back, each deleted:
// receive() with a vector, or with --into receive_into() with an array),
// through the public API
// against a real shmqd started here in a namespace of its own, the same
// Message, SendResult and result vectors reused as a careful caller does.
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shmq/shmq.hpp"

namespace {

// Counted only while a loop runs, so that start-up and teardown do not count.
std::atomic<bool> counting{false};
std::atomic<std::uint64_t> allocations{0};
std::atomic<std::uint64_t> clock_reads{0};

void* counted_alloc(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

// Every clock read of the library (and of std::chrono) goes through here.
extern "C" int clock_gettime(clockid_t clock, timespec* ts) noexcept {
  using Real = int (*)(clockid_t, timespec*);
  static const Real real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "clock_gettime"));
  if (counting.load(std::memory_order_relaxed)) clock_reads.fetch_add(1, std::memory_order_relaxed);
  return real(clock, ts);
}

namespace {

using namespace std::chrono_literals;

void check(const std::error_code& ec, const char* what) {
  if (ec) throw std::runtime_error(std::string(what) + ": " + ec.message());
}

enum class Mode { single, batch, varying, varying_into };

struct Loop {
  shmq::Queue& queue;
  std::string body;
  Mode mode;
  shmq::SendResult sent;
  std::vector<shmq::Message> got;
  std::vector<shmq::SendEntry> entries;
  std::vector<shmq::HandleEntry> handles;
  std::vector<shmq::BatchEntryResult> results;
  std::array<shmq::Message, 10> slots;
  shmq::ReceiveOptions receive{.max_messages = 1, .wait_time = 0ms, .spin = 0us};
};

// Up to 10 a receive, until `n` are back; each deleted. Varying counts make
// receive() resize its vector; receive_into() keeps every Message.
void receive_all(Loop& loop, std::uint64_t n) {
  while (n > 0) {
    std::size_t received = 0;
    if (loop.mode == Mode::varying_into) {
      check(loop.queue.receive_into(loop.slots, received, loop.receive), "receive_into");
    } else {
      check(loop.queue.receive(loop.got, loop.receive), "receive");
      received = loop.got.size();
    }
    if (received == 0) throw std::runtime_error("receive: nothing");
    for (std::size_t k = 0; k < received; ++k) {
      const shmq::Message& m = loop.mode == Mode::varying_into ? loop.slots[k] : loop.got[k];
      check(loop.queue.delete_message(m.receipt_handle), "delete");
    }
    n -= std::min<std::uint64_t>(n, received);
  }
}

// Kept out of line and unmangled, so that callgrind can collect exactly it.
extern "C" [[gnu::noinline]] void hot_path_loop(Loop& loop, std::uint64_t iterations) {
  for (std::uint64_t i = 0; i < iterations; ++i) {
    if (loop.mode == Mode::varying || loop.mode == Mode::varying_into) {
      const std::uint64_t n = i % 10 + 1;
      for (std::uint64_t k = 0; k < n; ++k) check(loop.queue.send(loop.body, loop.sent), "send");
      receive_all(loop, n);
      continue;
    }
    if (loop.mode == Mode::single) {
      check(loop.queue.send(loop.body, loop.sent), "send");
      check(loop.queue.receive(loop.got, loop.receive), "receive");
      if (loop.got.size() != 1) throw std::runtime_error("receive: nothing");
      check(loop.queue.delete_message(loop.got[0].receipt_handle), "delete");
      continue;
    }
    check(loop.queue.send_batch(loop.entries, loop.results), "send batch");
    check(loop.queue.receive(loop.got, loop.receive), "receive");
    if (loop.got.size() != loop.entries.size()) throw std::runtime_error("receive: fewer than sent");
    for (std::size_t k = 0; k < loop.got.size(); ++k) loop.handles[k].receipt_handle = loop.got[k].receipt_handle;
    check(loop.queue.delete_batch(loop.handles, loop.results), "delete batch");
  }
}

class Daemon {
 public:
  Daemon() : ns_("hotpath" + std::to_string(::getpid())) {
    const std::string shmqd = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "shmqd").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(::open("/dev/null", O_WRONLY), 1);
      ::execl(shmqd.c_str(), shmqd.c_str(), "--namespace", ns_.c_str(), "--log-level", "warn", "--bridge-listen", "off",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1000 && !client_; ++i) {
      try {
        client_.emplace(shmq::Client::Options{ns_});
      } catch (const std::system_error&) {
        std::this_thread::sleep_for(10ms);
      }
    }
    if (!client_) throw std::runtime_error("shmqd did not start");
  }
  ~Daemon() {
    client_.reset();
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  shmq::Client& client() { return *client_; }

 private:
  std::string ns_;
  pid_t pid_ = -1;
  std::optional<shmq::Client> client_;
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t iterations = 100000;
  std::size_t body_bytes = 64;
  Mode mode = Mode::single;
  bool into = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--body-bytes" && i + 1 < argc) {
      body_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--batch") {
      mode = Mode::batch;
    } else if (arg == "--varying") {
      mode = Mode::varying;
    } else if (arg == "--into") {
      into = true;
    } else {
      std::fprintf(stderr, "usage: %s [--iterations N] [--body-bytes B] [--batch | --varying [--into]]\n", argv[0]);
      return 2;
    }
  }
  if (into && mode == Mode::varying) mode = Mode::varying_into;
  try {
    Daemon daemon;
    daemon.client().create_queue("hot", {{"VisibilityTimeout", "43200"}});
    shmq::Queue queue = daemon.client().open_queue("hot");
    Loop loop{queue, std::string(body_bytes, 'x'), mode};
    const bool batch = mode == Mode::batch;
    if (mode != Mode::single) loop.receive.max_messages = 10;
    if (batch) {
      for (int k = 0; k < 10; ++k) loop.entries.push_back({"e" + std::to_string(k), loop.body, {}});
      for (int k = 0; k < 10; ++k) loop.handles.push_back({"h" + std::to_string(k), {}, 0});
      loop.receive.max_messages = 10;
    }
    hot_path_loop(loop, 1000);  // warm: buffers reach their sizes, pages are touched
    std::uint64_t messages = iterations * (batch ? 10 : 1);
    if (mode == Mode::varying || mode == Mode::varying_into) {
      messages = iterations / 10 * 55;  // 1 + 2 + ... + 10 a round of ten
      for (std::uint64_t i = iterations / 10 * 10; i < iterations; ++i) messages += i % 10 + 1;
    }
    counting.store(true);
    const auto start = std::chrono::steady_clock::now();
    hot_path_loop(loop, iterations);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    counting.store(false);
    static constexpr const char* kModes[] = {"one at a time", "batches of 10", "1 to 10 at a time, receive",
                                             "1 to 10 at a time, receive_into"};
    std::printf("%s, %zu B bodies, %llu messages\n", kModes[static_cast<int>(mode)], body_bytes,
                static_cast<unsigned long long>(messages));
    std::printf("heap allocations per message: %.2f\n", static_cast<double>(allocations.load()) / messages);
    // Less the two of steady_clock::now() around the loop.
    std::printf("clock reads per message:      %.2f\n", static_cast<double>(clock_reads.load() - 2) / messages);
    std::printf("ns per message:               %.0f\n",
                std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(messages));
    daemon.client().delete_queue("hot");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
