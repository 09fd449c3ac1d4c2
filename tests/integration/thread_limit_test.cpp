// A daemon that cannot start more threads (its cgroup's pids.max reached):
// each queue it creates is served by a reaper thread, a queue that would
// need a thread it cannot start is refused and leaves nothing behind, and
// the daemon keeps serving and stops cleanly. Run for real, in a pids
// cgroup the test makes (cgroup v2, or v1's pids hierarchy); skipped only
// where neither is writable.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

bool write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text << std::flush;
  return static_cast<bool>(out);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A pids cgroup of its own, removed (once empty) when it goes.
class PidsCgroup {
 public:
  // Makes one, or returns nullopt with the reason in `why`.
  static std::optional<PidsCgroup> make(std::string& why) {
    const std::string name = "shmq-test-" + std::to_string(::getpid());
    std::vector<fs::path> parents;
    if (read_file("/sys/fs/cgroup/cgroup.controllers").find("pids") != std::string::npos) {
      (void)write_file("/sys/fs/cgroup/cgroup.subtree_control", "+pids");  // children get the controller
      parents.push_back("/sys/fs/cgroup");
    }
    parents.push_back("/sys/fs/cgroup/pids");  // cgroup v1
    for (const fs::path& parent : parents) {
      const fs::path dir = parent / name;
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        why += dir.string() + ": " + std::strerror(errno) + "; ";
        continue;
      }
      if (fs::exists(dir / "pids.max")) return PidsCgroup(dir);
      why += dir.string() + " has no pids.max; ";
      ::rmdir(dir.c_str());
    }
    if (why.empty()) why = "no pids controller";
    return std::nullopt;
  }
  PidsCgroup(PidsCgroup&& other) noexcept : dir_(std::exchange(other.dir_, {})) {}
  PidsCgroup& operator=(PidsCgroup&&) = delete;
  ~PidsCgroup() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }

  void enter(pid_t pid) const { ASSERT_TRUE(write_file(dir_ / "cgroup.procs", std::to_string(pid))); }
  long current() const { return std::stol(read_file(dir_ / "pids.current")); }
  void limit(long max) const { ASSERT_TRUE(write_file(dir_ / "pids.max", std::to_string(max))); }

  // Runs shmqd (with a bridge) in the cgroup, without a limit, until it
  // serves; returns the most tasks the cgroup had meanwhile (5 where the
  // kernel keeps no pids.peak: shmqd's own threads).
  long peak_of_a_start() const {
    if (!fs::exists(dir_ / "pids.peak")) return 5;
    EXPECT_TRUE(write_file(dir_ / "pids.max", "max"));
    const fs::path port_file = dir_.filename().string() + ".port";  // in the working directory
    const std::string ns = unique_namespace();
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (!write_file(dir_ / "cgroup.procs", std::to_string(::getpid()))) ::_exit(127);
      const std::string shmqd = shmqd_path(), port = port_file.string();
      ::execl(shmqd.c_str(), shmqd.c_str(), "--namespace", ns.c_str(), "--log-level", "warn", "--bridge-listen",
              "127.0.0.1:0", "--bridge-port-file", port.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    EXPECT_TRUE(eventually([&] { return !read_file(port_file).empty(); }, 15s)) << "shmqd did not start";
    const long peak = std::stol(read_file(dir_ / "pids.peak"));
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    fs::remove(port_file);
    DaemonProcess::remove_segments(ns);
    return peak;
  }

 private:
  explicit PidsCgroup(fs::path dir) : dir_(std::move(dir)) {}
  fs::path dir_;

 public:
  const fs::path& dir() const { return dir_; }
};

std::size_t segments_of(const std::string& ns) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    if (entry.path().filename().string().starts_with("shmq." + ns + ".")) ++n;
  }
  return n;
}

// The queue's reaper works: a message received once, with a visibility
// timeout of 1 s and a RedrivePolicy of maxReceiveCount 1, is moved to the
// dead-letter queue when it expires. Only the reaper moves it (a receive
// could return an expired message itself).
void expect_reaper_serves(Client& client, const std::string& source, const std::string& dead_letter) {
  client.set_queue_attributes(
      source,
      {{"RedrivePolicy", nlohmann::json{{"deadLetterTargetArn", "arn:aws:sqs:us-east-1:000000000000:" + dead_letter},
                                        {"maxReceiveCount", 1}}
                             .dump()}});
  Queue queue = client.open_queue(source);
  Queue dlq = client.open_queue(dead_letter);
  const std::uint32_t before = dlq.counts().visible;
  SendResult sent;
  ASSERT_EQ(name_of(queue.send("m", sent)), "ok") << source;
  std::vector<Message> got;
  ASSERT_EQ(name_of(queue.receive(got, {.max_messages = 1, .visibility_timeout = 1, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 1u) << source;
  EXPECT_TRUE(eventually([&] { return dlq.counts().visible == before + 1; }))
      << "queue " << source << ": its expired message was never moved to " << dead_letter << " (no reaper serves it)";
  client.set_queue_attributes(source, {{"RedrivePolicy", ""}});
}

TEST(ThreadLimit, QueuesPastTheThreadLimitAreRefusedAndTheOthersServed) {
#if defined(__SANITIZE_THREAD__)
  // Its runtime starts a thread of its own in the daemon when it needs one,
  // which takes the one thread of room this test leaves.
  GTEST_SKIP() << "ThreadSanitizer's own threads count against the pids limit";
#endif
  std::string why;
  const std::optional<PidsCgroup> cgroup = PidsCgroup::make(why);
  if (!cgroup) GTEST_SKIP() << "needs a writable pids cgroup (cgroup v2 or v1's pids hierarchy): " << why;
  DaemonProcess daemon(unique_namespace());
  cgroup->enter(daemon.pid());
  // Room for one thread more: one reaper thread, which serves 127 queues.
  cgroup->limit(cgroup->current() + 1);

  Client client(Client::Options{daemon.ns()});
  std::vector<std::string> created;
  int refused = 0;
  for (int i = 0; i < 160; ++i) {
    const std::string name = "q" + std::to_string(1000 + i);
    try {
      client.create_queue(name, {}, kSmallQueue);
      created.push_back(name);
    } catch (const std::system_error& e) {
      EXPECT_EQ(name_of(e.code()), "over_limit") << e.what();
      EXPECT_NE(std::string(e.what()).find("no thread could be started"), std::string::npos) << e.what();
      ++refused;
    }
  }
  ASSERT_GT(refused, 0) << "the thread limit was never reached";
  ASSERT_FALSE(created.empty());
  // The daemon has what it said it created, and nothing of the rest.
  std::vector<std::string> listed = client.list_queues();
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, created);
  EXPECT_EQ(segments_of(daemon.ns()), created.size());

  // Every queue created has a working reaper: the first and the last.
  expect_reaper_serves(client, created.front(), created.back());
  expect_reaper_serves(client, created.back(), created.front());

  // With room again, a new queue is created and served.
  cgroup->limit(cgroup->current() + 1);
  client.create_queue("late", {}, kSmallQueue);
  expect_reaper_serves(client, "late", created.front());

  const int status = daemon.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "shmqd's status on SIGTERM: " << status;
}

// A daemon that cannot start the threads it needs at start-up (the bridge's,
// the long-poll hub's) says so and exits 1; it does not half start.
TEST(ThreadLimit, DaemonThatCannotStartItsThreadsExitsWithTheReason) {
  std::string why;
  const std::optional<PidsCgroup> cgroup = PidsCgroup::make(why);
  if (!cgroup) GTEST_SKIP() << "needs a writable pids cgroup (cgroup v2 or v1's pids hierarchy): " << why;
  // How many threads shmqd has at most while it starts, bridge included
  // (main, the bridge's start-up thread, the long-poll hub, 2 server
  // threads, and any a sanitizer's runtime adds): the cgroup's pids.peak
  // with no limit. With one to three fewer allowed, the last it starts (its
  // own, not a runtime's, which start first) cannot start.
  const long threads = cgroup->peak_of_a_start();
  ASSERT_GE(threads, 5);
  for (long limit = threads - 1; limit >= threads - 3; --limit) {
    cgroup->limit(limit);
    const std::string ns = unique_namespace();
    // The shell puts itself in the cgroup and becomes shmqd; `timeout` stays out.
    const ProcessResult r =
        run_process({"/usr/bin/timeout", "30", "/bin/sh", "-c",
                     "echo $$ > " + (cgroup->dir() / "cgroup.procs").string() + " && exec \"$0\" \"$@\"", shmqd_path(),
                     "--namespace", ns, "--log-level", "warn", "--bridge-listen", "127.0.0.1:0"});
    DaemonProcess::remove_segments(ns);
    EXPECT_EQ(r.exit_code, 1) << "with pids.max " << limit << ": " << r.err;
    EXPECT_NE(r.err.find("Resource temporarily unavailable"), std::string::npos)
        << "with pids.max " << limit << ", no reason given: " << r.err;
  }
}

}  // namespace
}  // namespace shmq::test
