// shmqd's lifecycle: clean stops, restarts after SIGTERM and SIGKILL that
// lose nothing, clients that keep working across them, one daemon per
// namespace, and segments it cannot use.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "queue_core.hpp"
#include "segment.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

TEST(DaemonLifecycle, SigtermStopsCleanly) {
  DaemonProcess daemon(unique_namespace());
  const int status = daemon.stop();
  EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(thrown_by([&] { Client client(Client::Options{daemon.ns()}); }), "daemon_unavailable");
}

// What a queue looks like from outside, to compare before and after a restart.
struct Snapshot {
  QueueCounts counts;
  Attributes settings;
};

Snapshot snapshot(Client& client, const std::string& queue) {
  Snapshot s;
  s.counts = client.stats(queue).counts;
  s.settings = client.get_queue_attributes(
      queue, {"VisibilityTimeout", "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds", "MessageRetentionPeriod",
              "DelaySeconds", "CreatedTimestamp", "LastModifiedTimestamp"});
  return s;
}

void expect_same(const Snapshot& before, const Snapshot& after) {
  EXPECT_EQ(after.counts.visible, before.counts.visible);
  EXPECT_EQ(after.counts.in_flight, before.counts.in_flight);
  EXPECT_EQ(after.counts.delayed, before.counts.delayed);
  EXPECT_EQ(after.settings, before.settings);
}

// Restarts after a stop (or a kill) must keep queues, messages in every
// state, attributes and receipt handles.
void check_restart_keeps_everything(bool hard) {
  DaemonProcess daemon(unique_namespace());
  const Attributes attributes{{"VisibilityTimeout", "600"},
                              {"DelaySeconds", "0"},
                              {"MaximumMessageSize", "4096"},
                              {"ReceiveMessageWaitTimeSeconds", "3"},
                              {"MessageRetentionPeriod", "7200"}};
  std::vector<Message> in_flight;
  Snapshot before;
  {
    Client client(Client::Options{daemon.ns()});
    client.create_queue("kept", attributes, kSmallQueue);
    client.create_queue("other", {}, kSmallQueue);
    Queue q = client.open_queue("kept");
    SendResult sent;
    for (int i = 0; i < 5; ++i) ASSERT_EQ(name_of(q.send("m" + std::to_string(i), sent)), "ok");
    ASSERT_EQ(name_of(q.send("delayed", sent, SendOptions{.delay_seconds = 600})), "ok");
    ASSERT_EQ(name_of(q.receive(in_flight, {.max_messages = 2, .wait_time = 0ms})), "ok");
    ASSERT_EQ(in_flight.size(), 2u);
    before = snapshot(client, "kept");
    ASSERT_EQ(before.counts.visible, 3u);
  }

  if (hard) {
    daemon.kill_hard();
  } else {
    ASSERT_EQ(daemon.stop(), 0);
  }
  daemon.start();

  Client client(Client::Options{daemon.ns()});
  EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"kept", "other"}));
  expect_same(before, snapshot(client, "kept"));
  for (const auto& [name, value] : attributes) EXPECT_EQ(client.get_queue_attributes("kept").at(name), value);

  Queue q = client.open_queue("kept");
  // Receipt handles from before the restart still work.
  EXPECT_EQ(name_of(q.delete_message(in_flight[0].receipt_handle)), "ok");
  EXPECT_EQ(name_of(q.change_visibility(in_flight[1].receipt_handle, 0)), "ok");
  std::set<std::string> bodies;
  std::vector<Message> got;
  ASSERT_EQ(name_of(q.receive(got, {.max_messages = 10, .wait_time = 0ms})), "ok");
  for (const Message& m : got) bodies.insert(m.body);
  EXPECT_EQ(bodies, (std::set<std::string>{"m1", "m2", "m3", "m4"}));
  EXPECT_EQ(q.counts().delayed, 1u);
}

TEST(DaemonLifecycle, RestartAfterSigtermKeepsQueuesAndMessages) { check_restart_keeps_everything(false); }

TEST(DaemonLifecycle, RestartAfterSigkillKeepsQueuesAndMessages) { check_restart_keeps_everything(true); }

TEST(DaemonLifecycle, SigkillUnderLoadLosesNothing) {
  DaemonProcess daemon(unique_namespace());
  Client client(Client::Options{daemon.ns()});
  // Short visibility: the daemon's reaper is busy returning messages when it dies.
  client.create_queue("q", {{"VisibilityTimeout", "1"}}, QueueCapacity{65536, 16ull << 20});
  Queue q = client.open_queue("q");

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0}, deleted{0}, send_failures{0}, receive_failures{0};
  std::thread sender([&] {
    SendResult result;
    while (!stop.load()) {
      if (q.send("payload", result)) {
        ++send_failures;
      } else {
        ++sent;
      }
      std::this_thread::sleep_for(100us);
    }
  });
  std::thread receiver([&] {
    std::vector<Message> got;
    std::uint64_t round = 0;
    while (!stop.load()) {
      if (q.receive(got, {.max_messages = 10, .wait_time = 100ms})) {
        ++receive_failures;
        continue;
      }
      // Delete every other batch; the rest stays in flight and expires.
      if (++round % 2 == 0) continue;
      for (const Message& m : got) {
        if (!q.delete_message(m.receipt_handle)) ++deleted;
      }
    }
  });

  std::this_thread::sleep_for(300ms);
  daemon.kill_hard();
  std::this_thread::sleep_for(200ms);  // the data path runs on without a daemon
  daemon.start();
  std::this_thread::sleep_for(300ms);
  stop.store(true);
  sender.join();
  receiver.join();

  EXPECT_EQ(send_failures.load(), 0u);
  EXPECT_EQ(receive_failures.load(), 0u);
  EXPECT_GT(sent.load(), 0u);
  const QueueStats s = client.stats("q");  // reconnects to the new daemon
  EXPECT_EQ(s.counts.writing, 0u);
  EXPECT_EQ(s.counts.visible + s.counts.in_flight + s.counts.delayed, sent.load() - deleted.load())
      << "sent " << sent.load() << ", deleted " << deleted.load();

  // Everything left is still receivable once in-flight messages return.
  std::uint64_t drained = 0;
  std::vector<Message> got;
  const std::uint64_t expected = sent.load() - deleted.load();
  const bool all = eventually(
      [&] {
        while (!q.receive(got, {.max_messages = 10, .visibility_timeout = 600, .wait_time = 0ms}) && !got.empty()) {
          drained += got.size();
        }
        return drained >= expected;
      },
      10s);
  EXPECT_TRUE(all);
  EXPECT_EQ(drained, expected);
}

TEST(DaemonLifecycle, AnOpenQueueWorksWhileTheDaemonIsDownAndAfter) {
  DaemonProcess daemon(unique_namespace());
  Client client(Client::Options{daemon.ns()});
  client.create_queue("q", {}, kSmallQueue);
  Queue q = client.open_queue("q");
  SendResult sent;
  ASSERT_EQ(name_of(q.send("before", sent)), "ok");

  daemon.kill_hard();
  EXPECT_EQ(name_of(q.send("while down", sent)), "ok");
  std::vector<Message> got;
  ASSERT_EQ(name_of(q.receive(got, {.max_messages = 10, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 2u);
  for (const Message& m : got) {
    if (m.body == "before") {
      EXPECT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
    } else {
      EXPECT_EQ(name_of(q.change_visibility(m.receipt_handle, 0)), "ok");
    }
  }
  // Admin calls need the daemon.
  EXPECT_EQ(thrown_by([&] { client.list_queues(); }), "daemon_unavailable");

  daemon.start();
  EXPECT_EQ(name_of(q.send("after", sent)), "ok");
  ASSERT_EQ(name_of(q.receive(got, {.max_messages = 10, .wait_time = 0ms})), "ok");
  std::set<std::string> bodies;
  for (const Message& m : got) bodies.insert(m.body);
  EXPECT_EQ(bodies, (std::set<std::string>{"while down", "after"}));
  // The same Client's admin calls work again: it reconnects.
  EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"q"}));
  EXPECT_EQ(client.stats("q").counts.in_flight, 2u);
}

TEST(DaemonLifecycle, AClientReconnectsAfterARestart) {
  DaemonProcess daemon(unique_namespace());
  Client client(Client::Options{daemon.ns()});
  client.create_queue("q", {}, kSmallQueue);
  ASSERT_EQ(daemon.stop(), 0);
  daemon.start();
  EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"q"}));
  client.set_queue_attributes("q", {{"DelaySeconds", "4"}});
  EXPECT_EQ(client.get_queue_attributes("q", {"DelaySeconds"}).at("DelaySeconds"), "4");
  daemon.kill_hard();
  daemon.start();
  EXPECT_EQ(client.get_queue_attributes("q", {"DelaySeconds"}).at("DelaySeconds"), "4");
}

// A shmqd started by hand, with its standard error in a file, for tests that
// read its log or expect it to exit.
class LoggedDaemon {
 public:
  explicit LoggedDaemon(const std::string& ns)
      : ns_(ns), log_path_("/tmp/shmq-it-" + ns + "-" + std::to_string(next_log_++) + ".log") {
    const std::string path = shmqd_path();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      ::execl(path.c_str(), path.c_str(), "--namespace", ns.c_str(), "--log-level", "warn", "--bridge-listen", "off",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~LoggedDaemon() {
    stop();
    std::filesystem::remove(log_path_);
  }
  LoggedDaemon(const LoggedDaemon&) = delete;
  LoggedDaemon& operator=(const LoggedDaemon&) = delete;

  // Whether a client can connect within a few seconds.
  bool up() const {
    return eventually([&] { return thrown_by([&] { Client client(Client::Options{ns_}); }) == "ok"; }, 5s);
  }
  // The exit code if it exits within `timeout`.
  std::optional<int> exit_code_within(std::chrono::milliseconds timeout) {
    int status = 0;
    if (!eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout)) return std::nullopt;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void terminate() { ::kill(pid_, SIGTERM); }
  void kill_hard() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // SIGTERM and wait; the raw wait status.
  int stop() {
    int status = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    return status;
  }
  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  static inline int next_log_ = 0;
  std::string ns_;
  std::string log_path_;
  pid_t pid_ = -1;
};

TEST(DaemonLifecycle, ASecondDaemonForTheNamespaceDoesNotStart) {
  DaemonProcess daemon(unique_namespace());
  {
    Client client(Client::Options{daemon.ns()});
    client.create_queue("q", {}, kSmallQueue);
  }
  LoggedDaemon second(daemon.ns());
  const std::optional<int> code = second.exit_code_within(10s);
  ASSERT_TRUE(code.has_value()) << "a second shmqd for the namespace kept running";
  EXPECT_NE(*code, 0);
  const std::string log = second.log();
  EXPECT_NE(log.find(daemon.ns()), std::string::npos) << "stderr: " << log;
  EXPECT_NE(log.find("another shmqd"), std::string::npos) << "stderr: " << log;

  // The first one is unharmed.
  Client client(Client::Options{daemon.ns()});
  EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"q"}));
  EXPECT_EQ(client.stats("q").counts.visible, 0u);
}

struct SegmentCleanup {
  std::string ns;
  ~SegmentCleanup() { DaemonProcess::remove_segments(ns); }
};

// Sets up a daemon whose reaper for queue "q" is busy when the test asks the
// daemon to stop it: this process holds the queue lock and wakes the reaper,
// which then waits for the lock. `while_busy` runs then (it asks the daemon
// to give up the queue), and the lock is released after it.
class BusyReaper {
 public:
  explicit BusyReaper(const std::string& ns) : ns_(ns), daemon_(ns) {}

  // Returns false (with a test failure) if the setup failed.
  bool hold() {
    if (!daemon_.up()) {
      ADD_FAILURE() << "shmqd did not start: " << daemon_.log();
      return false;
    }
    client_.emplace(Client::Options{ns_});
    client_->create_queue("q", {}, kSmallQueue);
    Queue q = client_->open_queue("q");
    SendResult sent;
    std::vector<Message> got;
    // A message in flight for twelve hours: the reaper sleeps until then.
    if (q.send("x", sent) || q.receive(got, {.max_messages = 1, .visibility_timeout = 43200, .wait_time = 0ms}) ||
        got.size() != 1) {
      ADD_FAILURE() << "send or receive failed";
      return false;
    }
    if (detail::Segment::open(detail::Segment::shm_name(ns_, "q"), segment_)) {
      ADD_FAILURE() << "cannot map the queue";
      return false;
    }
    if (pthread_mutex_lock(&segment_.header().mutex) != 0) {
      ADD_FAILURE() << "cannot lock the queue";
      return false;
    }
    locked_ = true;
    detail::QueueCore(segment_.base()).reaper_wake();
    std::this_thread::sleep_for(200ms);  // the reaper wakes up and blocks on the lock
    return true;
  }
  void release() {
    if (locked_) pthread_mutex_unlock(&segment_.header().mutex);
    locked_ = false;
  }
  ~BusyReaper() { release(); }

  LoggedDaemon& daemon() { return daemon_; }
  Client& client() { return *client_; }

 private:
  std::string ns_;
  SegmentCleanup cleanup_{ns_};
  LoggedDaemon daemon_;
  std::optional<Client> client_;
  detail::Segment segment_;
  bool locked_ = false;
};

TEST(DaemonLifecycle, SigtermStopsTheDaemonWhileItsReaperIsBusy) {
  BusyReaper busy(unique_namespace());
  ASSERT_TRUE(busy.hold());
  busy.daemon().terminate();
  std::this_thread::sleep_for(200ms);  // the daemon tells its reaper to stop
  busy.release();

  const std::optional<int> code = busy.daemon().exit_code_within(5s);
  EXPECT_TRUE(code.has_value()) << "shmqd did not stop on SIGTERM: its reaper missed the stop request";
  if (code) {
    EXPECT_EQ(*code, 0);
  }
  busy.daemon().kill_hard();
}

TEST(DaemonLifecycle, DeletingAQueueWhileItsReaperIsBusyDoesNotHangTheDaemon) {
  BusyReaper busy(unique_namespace());
  ASSERT_TRUE(busy.hold());
  auto deleting = std::async(std::launch::async, [&] { return thrown_by([&] { busy.client().delete_queue("q"); }); });
  std::this_thread::sleep_for(200ms);
  busy.release();

  const bool done = deleting.wait_for(5s) == std::future_status::ready;
  EXPECT_TRUE(done) << "delete_queue hung: shmqd waits for a reaper that missed the stop request";
  if (!done) busy.daemon().kill_hard();  // ends the call with daemon_unavailable
  const std::string result = deleting.get();
  if (done) {
    EXPECT_EQ(result, "ok");
    EXPECT_TRUE(busy.client().list_queues().empty());
  }
}

TEST(DaemonLifecycle, ASegmentWithABadMagicIsReportedAndLeftInPlace) {
  const std::string ns = unique_namespace();
  SegmentCleanup cleanup{ns};

  const std::string path = "/dev/shm/shmq." + ns + ".bogus";
  {
    std::ofstream out(path, std::ios::binary);
    const std::string junk(64 * 1024, 'J');
    out.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  ASSERT_TRUE(std::filesystem::exists(path));

  LoggedDaemon daemon(ns);
  ASSERT_TRUE(daemon.up()) << daemon.log();
  {
    Client client(Client::Options{ns});
    EXPECT_TRUE(client.list_queues().empty());
    EXPECT_EQ(thrown_by([&] { client.open_queue("bogus"); }), "queue_does_not_exist");
    // The daemon still serves everything else.
    client.create_queue("good", {}, kSmallQueue);
    EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"good"}));
  }
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_TRUE(std::filesystem::exists(path)) << "the daemon deleted a segment it could not validate";
  EXPECT_EQ(std::filesystem::file_size(path), 64u * 1024u) << "the daemon changed a segment it could not validate";
  const std::string log = daemon.log();
  EXPECT_NE(log.find("shmq." + ns + ".bogus"), std::string::npos) << "not reported; log:\n" << log;

  // A good queue next to it survives a restart; the bad one stays unlisted.
  LoggedDaemon again(ns);
  ASSERT_TRUE(again.up()) << again.log();
  Client client(Client::Options{ns});
  EXPECT_EQ(client.list_queues(), (std::vector<std::string>{"good"}));
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace shmq::test
