// /dev/shm running out of space: a send that needs pages tmpfs cannot give
// fails with queue_full; no process dies of SIGBUS, the daemon keeps serving
// and restarts, and nothing acknowledged is lost. Runs in a mount namespace
// of its own with a small tmpfs on /dev/shm.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace shmq::test {
namespace {

constexpr int kSkip = 77;
constexpr const char* kBigFile = "/dev/shm/big";
constexpr const char* kFiller = "/dev/shm/filler";

// Writes a file of `bytes` (or until the file system has no room).
bool write_file(const char* path, std::size_t bytes) {
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  const std::string chunk(64 * 1024, 'f');
  for (std::size_t written = 0; written<bytes&& ::write(fd, chunk.data(), chunk.size())> 0;) {
    written += chunk.size();
  }
  ::close(fd);
  return true;
}

// Everything runs in this child, in its own mount namespace: the daemon it
// starts sees the same small /dev/shm. Returns 0 if all went as it should,
// kSkip if the namespace could not be made, else the step that failed.
int run_with_full_dev_shm() {
  if (::unshare(CLONE_NEWNS) != 0) return kSkip;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return kSkip;
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=8m,mode=1777") != 0) return kSkip;
  // A big file takes half of it; removing it later makes room again.
  if (!write_file(kBigFile, 4u << 20)) return 12;
  DaemonProcess daemon(unique_namespace());
  Client client(Client::Options{daemon.ns()});
  // Far more payload space than the file system has: the segment is sparse.
  client.create_queue("q", {}, QueueCapacity{1024, 64ull << 20});
  Queue q = client.open_queue("q");
  // Bodies that take a 256 KiB block each: once /dev/shm is full, no free
  // block is left over for the next one.
  const std::string body(200 * 1024, 'm');
  std::size_t acknowledged = 0;
  std::error_code ec;
  for (int i = 0; i < 256; ++i) {
    SendResult sent;
    ec = q.send(body, sent);
    if (ec) break;
    ++acknowledged;
  }
  if (name_of(ec) != "queue_full") {
    std::fprintf(stderr, "send after %zu: %s\n", acknowledged, name_of(ec).c_str());
    return 1;
  }
  if (!write_file(kFiller, ~std::size_t{0})) return 2;  // the last free pages
  SendResult sent;
  if (name_of(q.send(body, sent)) != "queue_full") return 3;
  // A new queue's segment cannot be backed: a clear refusal.
  if (thrown_by([&] { client.create_queue("more", {}, QueueCapacity{1024, 4ull << 20}); }) != "over_limit") return 4;
  if (client.list_queues() != std::vector<std::string>{"q"}) return 5;  // the daemon still serves

  // A restart with /dev/shm full comes up and serves.
  daemon.stop();
  daemon.start();
  Client after(Client::Options{daemon.ns()});
  Queue q2 = after.open_queue("q");
  if (name_of(q2.send(body, sent)) != "queue_full") return 6;

  // Space again: sends work again, and every acknowledged message is there.
  ::unlink(kBigFile);
  if (name_of(q2.send(body, sent)) != "ok") return 7;
  ++acknowledged;
  std::size_t received = 0;
  for (;;) {
    std::vector<Message> got;
    ReceiveOptions options;
    options.max_messages = 10;
    options.wait_time = std::chrono::milliseconds(0);
    if (q2.receive(got, options)) return 8;
    if (got.empty()) break;
    for (const Message& m : got) {
      if (m.body != body) return 9;
      if (q2.delete_message(m.receipt_handle)) return 10;
      ++received;
    }
  }
  if (received != acknowledged) {
    std::fprintf(stderr, "acknowledged %zu, received %zu\n", acknowledged, received);
    return 11;
  }
  ::unlink(kFiller);
  return 0;
}

// A queue of the default size on a /dev/shm far smaller than it may grow
// (a container's 64 MiB, here 16): the daemon says so when it starts, and
// large sends fill it up to queue_full, never a bus error.
int run_default_queue_on_small_dev_shm(const std::string& log_path) {
  if (::unshare(CLONE_NEWNS) != 0) return kSkip;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return kSkip;
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=16m,mode=1777") != 0) return kSkip;
  // The daemon's log (it inherits this process's stderr).
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log < 0 || ::dup2(log, 2) < 0) return 20;
  DaemonProcess daemon(unique_namespace());
  Client client(Client::Options{daemon.ns()});
  client.create_queue("q");
  Queue q = client.open_queue("q");
  const std::string body(670 * 1000, 'm');
  std::size_t acknowledged = 0;
  std::error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) {
    SendResult sent;
    ec = q.send(body, sent);
    if (!ec) ++acknowledged;
  }
  if (name_of(ec) != "queue_full") return 21;
  if (acknowledged < 4) return 22;  // 16 MiB holds several 1 MiB blocks
  if (client.list_queues() != std::vector<std::string>{"q"}) return 23;

  // A deleted message leaves its block to the next send.
  std::vector<Message> got;
  if (q.receive(got, ReceiveOptions{.max_messages = 1, .wait_time = std::chrono::milliseconds(0)}) || got.size() != 1) {
    return 24;
  }
  if (q.delete_message(got[0].receipt_handle)) return 25;
  SendResult sent;
  if (name_of(q.send(body, sent)) != "ok") return 26;
  std::size_t received = 0;
  for (;;) {
    got.clear();
    if (q.receive(got, ReceiveOptions{.max_messages = 10, .wait_time = std::chrono::milliseconds(0)})) return 27;
    if (got.empty()) break;
    for (const Message& m : got) {
      if (m.body != body || q.delete_message(m.receipt_handle)) return 28;
      ++received;
    }
  }
  if (received != acknowledged) return 29;
  daemon.stop();
  std::ifstream in(log_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("/dev/shm holds 16 MiB") == std::string::npos) {
    std::fprintf(stdout, "daemon log without the warning:\n%s\n", text.c_str());
    return 30;
  }
  return 0;
}

TEST(FullDevShm, ADefaultQueueFillsASmallDevShmAndTheDaemonWarnsAtStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs on /dev/shm";
  const std::string log_path = "/tmp/shmq-small-dev-shm-" + std::to_string(::getpid()) + ".log";
  const pid_t child = fork_child([&] {
    try {
      return run_default_queue_on_small_dev_shm(log_path);
    } catch (const std::exception& e) {
      std::fprintf(stdout, "%s\n", e.what());
      return 96;
    }
  });
  const int result = wait_child(child);
  ::unlink(log_path.c_str());
  if (result == kSkip) GTEST_SKIP() << "unshare -m / mount tmpfs not permitted here";
  EXPECT_EQ(result, 0) << "failed step (96: threw; 128 + n: killed by signal n)";
}

TEST(FullDevShm, SendsFailWithQueueFullAndNothingDies) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs on /dev/shm";
  const pid_t child = fork_child([] {
    try {
      return run_with_full_dev_shm();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 96;
    }
  });
  const int result = wait_child(child);
  if (result == kSkip) GTEST_SKIP() << "unshare -m / mount tmpfs not permitted here";
  EXPECT_EQ(result, 0) << "failed step (96: threw; 128 + n: killed by signal n)";
}

}  // namespace
}  // namespace shmq::test
