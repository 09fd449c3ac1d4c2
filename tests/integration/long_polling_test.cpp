// Long polling: receivers sleep until a message arrives from any process, or
// their wait time runs out.
#include <fcntl.h>
#include <unistd.h>

#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using LongPolling = DaemonTest;

TEST_F(LongPolling, ASendFromAnotherProcessWakesTheReceiver) {
  Queue q = make_queue("q");
  auto sender = std::async(std::launch::async, [ns = ns()] {
    std::this_thread::sleep_for(300ms);
    return shmqctl(ns, {"send", "q", "wake up"});
  });

  const auto start = std::chrono::steady_clock::now();
  std::vector<Message> got;
  const std::error_code ec = q.receive(got, {.max_messages = 10, .wait_time = 10s});
  const double waited = seconds_since(start);
  const ProcessResult sent = sender.get();
  ASSERT_EQ(sent.exit_code, 0) << sent.err;

  EXPECT_EQ(name_of(ec), "ok");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "wake up");
  EXPECT_LT(waited, 8.0) << "the receiver slept through the send";
}

TEST_F(LongPolling, AnEmptyLongPollWaitsItsWaitTime) {
  Queue q = make_queue("q");
  const auto start = std::chrono::steady_clock::now();
  std::vector<Message> got;
  EXPECT_EQ(name_of(q.receive(got, {.max_messages = 10, .wait_time = 1s})), "ok");
  EXPECT_TRUE(got.empty());
  EXPECT_GE(seconds_since(start), 0.9);
}

TEST_F(LongPolling, ReceiveMessageWaitTimeSecondsIsTheDefaultWait) {
  Queue q = make_queue("q", {{"ReceiveMessageWaitTimeSeconds", "1"}});
  EXPECT_EQ(q.receive_wait_time(), 1s);
  auto start = std::chrono::steady_clock::now();
  std::vector<Message> got;
  EXPECT_EQ(name_of(q.receive(got)), "ok");
  EXPECT_TRUE(got.empty());
  EXPECT_GE(seconds_since(start), 0.9) << "the queue's wait time was not used";

  // The queue's default is a long poll that a send ends.
  client_.set_queue_attributes("q", {{"ReceiveMessageWaitTimeSeconds", "20"}});
  // A remote Queue keeps what open_queue read; its receives still wait as
  // the queue says, since the service applies the attribute.
  if (!remote_backend()) {
    EXPECT_EQ(q.receive_wait_time(), 20s) << "an open queue sees the change";
  }
  auto sender = std::async(std::launch::async, [ns = ns()] {
    std::this_thread::sleep_for(300ms);
    return shmqctl(ns, {"send", "q", "default wait"});
  });
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(name_of(q.receive(got)), "ok");
  const double waited = seconds_since(start);
  EXPECT_EQ(sender.get().exit_code, 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "default wait");
  EXPECT_LT(waited, 15.0);

  // An explicit wait of zero overrides the queue's default.
  got.clear();
  EXPECT_EQ(name_of(q.receive(got, {.max_messages = 1, .wait_time = 0ms})), "ok");
  EXPECT_TRUE(got.empty());
}

// Several processes long-poll one queue; each message goes to exactly one.
TEST_F(LongPolling, ConcurrentReceiversGetDistinctMessages) {
  constexpr int kReceivers = 3;
  constexpr int kMessages = 40;
  Queue q = make_queue("q", {{"VisibilityTimeout", "120"}});

  struct Child {
    pid_t pid;
    int read_fd;
  };
  std::vector<Child> children;
  for (int i = 0; i < kReceivers; ++i) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const std::string queue_ns = ns();
    const pid_t pid = fork_child([&] {
      ::close(fds[0]);
      Client client(Client::Options{queue_ns});
      Queue mine = client.open_queue("q");
      std::vector<Message> got;
      // Long-poll until the queue stays empty for two seconds.
      for (;;) {
        if (mine.receive(got, {.max_messages = 3, .wait_time = 2s})) return 1;
        if (got.empty()) return 0;
        for (const Message& m : got) {
          const std::string line = m.body + "\n";
          if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 2;
        }
      }
    });
    ASSERT_GT(pid, 0);
    ::close(fds[1]);
    children.push_back({pid, fds[0]});
  }

  // Give the children time to start waiting, then send from this process.
  std::this_thread::sleep_for(200ms);
  for (int i = 0; i < kMessages; ++i) {
    send_ok(q, "m" + std::to_string(i));
    if (i % 8 == 0) std::this_thread::sleep_for(20ms);
  }

  std::multiset<std::string> received;
  for (const Child& child : children) {
    std::string text;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(child.read_fd, buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<std::size_t>(n));
    ::close(child.read_fd);
    EXPECT_EQ(wait_child(child.pid), 0);
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) received.insert(line);
  }

  std::set<std::string> distinct(received.begin(), received.end());
  EXPECT_EQ(distinct.size(), received.size()) << "a message was delivered to two receivers";
  EXPECT_EQ(received.size(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(q.counts().in_flight, static_cast<std::uint64_t>(kMessages));
}

}  // namespace
}  // namespace shmq::test
