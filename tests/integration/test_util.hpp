// Shared helpers of the integration tests: a fixture with a real shmqd in a
// namespace of its own, error-code names for readable assertions, polling
// for an expected state, and forked child processes.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon_process.hpp"
#include "shmq/shmq.hpp"

namespace shmq::test {

using namespace std::chrono_literals;

// "ok" for success, the shmq name ("queue_full") for shmq codes, else
// "<category>:<value>": what assertions compare, so failures read well.
inline std::string name_of(const std::error_code& ec) {
  if (!ec) return "ok";
  const std::string name = errc_name(ec);
  if (!name.empty()) return name;
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}

// The name of the std::system_error code `f` threw, "ok" if it threw none.
template <class F>
std::string thrown_by(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return name_of(e.code());
  }
  return "ok";
}

// Polls `pred` until it holds or `timeout` passes; returns whether it held.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline std::uint64_t epoch_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

inline bool uuid_shaped(const std::string& id) {
  static const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  return std::regex_match(id, kUuid);
}

// Runs `body` in a forked child, which exits with body's return value (97 if
// it threw). The child must not use GoogleTest assertions, nor any Client or
// Queue of the parent: it opens its own.
template <class F>
pid_t fork_child(F&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 97;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return pid;
}

// Waits for a child; its exit code, or 128 + signal if a signal ended it.
inline int wait_child(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs shmqctl against a namespace: shmqctl --namespace NS ARGS...
inline ProcessResult shmqctl(const std::string& ns, std::vector<std::string> args, const std::string& input = {}) {
  std::vector<std::string> argv{shmqctl_path(), "--namespace", ns};
  argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  return run_process(argv, input);
}

// Small queues keep segments small and make limits reachable.
inline constexpr QueueCapacity kSmallQueue{1024, 4ull << 20};

// The backend DaemonTest's client uses. The library's tests run twice from
// one list (tests/integration/CMakeLists.txt): through shared memory, and
// with SHMQ_TEST_BACKEND=remote through the test daemon's SQS bridge, over
// HTTP with SigV4 verified (--auth), as a program on another host would.
inline bool remote_backend() {
  const char* backend = std::getenv("SHMQ_TEST_BACKEND");
  return backend != nullptr && std::string_view(backend) == "remote";
}

// The credentials the remote runs' daemons verify.
inline constexpr const char* kTestAccessKey = "AKIDSHMQTEST";
inline constexpr const char* kTestSecretKey = "shmq-test-secret";

// Skips the rest of a test in the remote runs: what it checks is only the
// local path's (a zero-copy view, a segment, a stale handle's refusal).
#define SHMQ_LOCAL_ONLY(why)                                                   \
  do {                                                                         \
    if (::shmq::test::remote_backend()) GTEST_SKIP() << "local only: " << why; \
  } while (0)

// Where the two backends answer differently, as docs/remote-endpoints.md
// says: Amazon SQS takes a stale handle's delete as done, and does not tell
// a FIFO sender that its message was a duplicate.
inline std::string stale_delete() { return remote_backend() ? "ok" : "stale_receipt_handle"; }
// SQS refuses a stale handle's visibility change as a bad parameter.
inline std::string stale_change() { return remote_backend() ? "invalid_parameter_value" : "stale_receipt_handle"; }
inline bool duplicate_reported(bool duplicate) { return remote_backend() ? !duplicate : duplicate; }

// A test with its own shmqd and a Client connected to it.
class DaemonTest : public ::testing::Test {
 protected:
  const std::string& ns() const { return daemon_.ns(); }

  Queue make_queue(const std::string& name, const Attributes& attributes = {},
                   const QueueCapacity& capacity = kSmallQueue) {
    client_.create_queue(name, attributes, capacity);
    return client_.open_queue(name);
  }

  // Receives what is visible now, without waiting.
  static std::vector<Message> receive_now(Queue& queue, std::uint32_t max_messages = 10,
                                          std::optional<std::uint32_t> visibility = std::nullopt) {
    std::vector<Message> got;
    ReceiveOptions options;
    options.max_messages = max_messages;
    options.visibility_timeout = visibility;
    options.wait_time = 0ms;
    const std::error_code ec = queue.receive(got, options);
    EXPECT_EQ(name_of(ec), "ok") << "receive on " << queue.name();
    return got;
  }

  // Sends and expects success; returns the message id.
  static std::string send_ok(Queue& queue, std::string_view body, const SendOptions& options = {}) {
    SendResult sent;
    const std::error_code ec = queue.send(body, sent, options);
    EXPECT_EQ(name_of(ec), "ok") << "send to " << queue.name();
    return sent.message_id;
  }

  std::string attribute(const std::string& queue, const std::string& name) {
    return client_.get_queue_attributes(queue, {name}).at(name);
  }

  // The bridge's URL in the remote runs ("http://127.0.0.1:PORT").
  std::string endpoint_url() const {
    int port = 0;
    const bool up = eventually([&] {
      std::ifstream(port_file_) >> port;
      return port > 0;
    });
    if (!up) throw std::runtime_error("the test daemon's bridge did not start");
    return "http://127.0.0.1:" + std::to_string(port);
  }
  // An endpoint for the test daemon's bridge with its credentials.
  Endpoint endpoint() const {
    Endpoint e;
    e.url = endpoint_url();
    e.access_key_id = kTestAccessKey;
    e.secret_access_key = kTestSecretKey;
    e.region = "us-east-1";
    return e;
  }

 private:
  static std::vector<std::string> backend_args(const std::string& port_file) {
    if (!remote_backend()) return {};
    return {"--bridge-listen", "127.0.0.1:0", "--bridge-port-file",
            port_file,         "--auth",      std::string(kTestAccessKey) + ":" + kTestSecretKey};
  }
  Client make_client() { return remote_backend() ? Client(endpoint()) : Client(Client::Options{daemon_.ns()}); }

  std::string port_file_ = "/tmp/shmq-test-" + std::to_string(::getpid()) + "-" + unique_namespace() + ".port";

 protected:
  DaemonProcess daemon_{unique_namespace(), backend_args(port_file_)};
  Client client_{make_client()};

 public:
  ~DaemonTest() override { ::unlink(port_file_.c_str()); }
};

// A test that drives shmqctl against its own daemon.
class ShmqctlTest : public DaemonTest {
 protected:
  // Runs shmqctl against this test's daemon and expects success.
  std::string ok(std::vector<std::string> args, const std::string& input = {}) {
    const ProcessResult r = shmqctl(ns(), args, input);
    EXPECT_EQ(r.exit_code, 0) << join(args) << "\nstderr: " << r.err;
    return r.out;
  }
  // Runs shmqctl --json against this test's daemon and parses what it printed.
  nlohmann::json ok_json(std::vector<std::string> args, const std::string& input = {}) {
    args.insert(args.begin(), "--json");
    const std::string out = ok(args, input);
    nlohmann::json parsed = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << join(args) << " printed no JSON: " << out;
    return parsed;
  }
  // Expects exit code 1 with `error` named on stderr.
  void fails(const std::vector<std::string>& args, const std::string& error) {
    const ProcessResult r = shmqctl(ns(), args);
    EXPECT_EQ(r.exit_code, 1) << join(args) << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(error), std::string::npos) << join(args) << "\nstderr: " << r.err;
  }
  static std::string join(const std::vector<std::string>& args) {
    std::string text = "shmqctl";
    for (const std::string& a : args) text += " " + a;
    return text;
  }
};

}  // namespace shmq::test
