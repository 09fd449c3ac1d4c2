// A process stopped (SIGSTOP, a debugger) while it holds a queue's lock.
// Nothing can make it let go, but it must hold up only the callers of its own
// queue: the daemon serves every queue from a few threads (control, reaper,
// bridge, long polls), and none of them may wait for that lock without end.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "queue_core.hpp"
#include "segment.hpp"
#include "segment_layout.hpp"
#include "sqs_http.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;

// A child that takes queue `queue`'s lock and stops itself with it held.
// Killed (SIGKILL) by the destructor: the next locker recovers the lock.
class StoppedLockHolder {
 public:
  StoppedLockHolder(const std::string& ns, const std::string& queue) {
    const std::string path = detail::Segment::path(detail::Segment::shm_name(ns, queue));
    pid_ = fork_child([&] {
      const int fd = ::open(path.c_str(), O_RDWR);
      if (fd < 0) return 1;
      struct stat st {};
      if (::fstat(fd, &st) != 0) return 2;
      void* base = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (base == MAP_FAILED) return 3;
      auto* h = static_cast<detail::SegmentHeader*>(base);
      const int rc = ::pthread_mutex_lock(&h->mutex);
      if (rc != 0 && rc != EOWNERDEAD) return 4;
      ::raise(SIGSTOP);
      for (;;) ::pause();
    });
    int status = 0;
    stopped_ = ::waitpid(pid_, &status, WUNTRACED) == pid_ && WIFSTOPPED(status);
  }
  ~StoppedLockHolder() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  StoppedLockHolder(const StoppedLockHolder&) = delete;
  StoppedLockHolder& operator=(const StoppedLockHolder&) = delete;

  bool stopped() const noexcept { return stopped_; }
  // Kills it: its lock is then recovered by the next locker.
  void kill() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
  bool stopped_ = false;
};

using StoppedLockHolderLibrary = DaemonTest;

TEST_F(StoppedLockHolderLibrary, CallsWithALockWaitGetQueueBusyAndTheQueueRecoversWhenTheHolderDies) {
  Queue held = make_queue("held");
  Queue other = make_queue("other");
  send_ok(held, "before");
  auto holder = std::make_unique<StoppedLockHolder>(ns(), "held");
  ASSERT_TRUE(holder->stopped());

  held.set_lock_wait(std::chrono::milliseconds(50));
  SendResult sent;
  // A small message goes without the lock, in a slot this process's cache
  // already holds (see "Sends without the mutex" in docs/data-plane.md): it
  // is accepted, and delivered once the lock is free again.
  EXPECT_EQ(name_of(held.send("during", sent)), "ok");
  // One too big for a cached slot needs the lock.
  const std::string big(4096, 'b');
  EXPECT_EQ(name_of(held.send(big, sent)), "queue_busy");
  std::vector<BatchEntryResult> results;
  const SendEntry entry{"e", big, {}};
  ASSERT_EQ(name_of(held.send_batch(std::span(&entry, 1), results)), "ok");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(name_of(results[0].error), "queue_busy");
  std::vector<Message> got;
  EXPECT_EQ(name_of(held.receive(got, {.wait_time = 0ms})), "queue_busy");
  // A receive that may wait keeps trying while its wait lasts.
  EXPECT_EQ(name_of(held.receive(got, {.wait_time = 300ms})), "queue_busy");
  EXPECT_TRUE(got.empty());
  // A per-receive lock wait of zero: tried once, not waited for.
  EXPECT_EQ(name_of(held.receive(got, {.wait_time = 0ms, .lock_wait = std::chrono::microseconds(0)})), "queue_busy");

  // Another queue of the same process is not held up.
  send_ok(other, "fine");
  EXPECT_EQ(receive_now(other).size(), 1u);
  // Nor is the daemon: its stats answer (without the lock: counts read
  // lock-free), and its other work goes on. "during" counts already.
  EXPECT_EQ(client_.stats("held").counts.visible, 2u);
  EXPECT_EQ(thrown_by([&] { client_.purge_queue("held"); }), "queue_busy");

  holder->kill();
  send_ok(held, "after");
  std::vector<Message> all;
  ASSERT_EQ(name_of(held.receive(all, {.max_messages = 10, .wait_time = 0ms})), "ok");
  std::set<std::string> bodies;
  for (const Message& m : all) bodies.insert(m.body);
  EXPECT_EQ(bodies, (std::set<std::string>{"before", "during", "after"}));
}

// A wait too long for nanoseconds is no wait at all by accident: it is
// waiting for as long as it takes.
TEST_F(StoppedLockHolderLibrary, ALockWaitOfMicrosecondsMaxWaitsUntilTheHolderGoes) {
  Queue held = make_queue("held");
  send_ok(held, "m");
  auto holder = std::make_unique<StoppedLockHolder>(ns(), "held");
  ASSERT_TRUE(holder->stopped());
  held.set_lock_wait(std::chrono::microseconds::max());
  auto received = std::make_shared<std::promise<std::string>>();
  std::thread([held, received]() mutable {
    std::vector<Message> got;
    const std::error_code ec = held.receive(got, {.wait_time = 0ms});
    received->set_value(name_of(ec) + ":" + std::to_string(got.size()));
  }).detach();
  auto answer = received->get_future();
  EXPECT_EQ(answer.wait_for(500ms), std::future_status::timeout) << "gave up: " << answer.get();
  holder->kill();
  ASSERT_EQ(answer.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(answer.get(), "ok:1");
}

// The daemon's reaper moves messages to a dead-letter queue in steps that
// take the source's lock (and the target's, to copy): each must give up on a
// held lock, as the reaper's own turn does, or one stopped process holds up
// every queue that reaper thread serves.
TEST_F(StoppedLockHolderLibrary, RedriveStepsGiveUpOnAHeldLock) {
  make_queue("held");
  const auto map = [&](const std::string& queue) {
    const std::string path = detail::Segment::path(detail::Segment::shm_name(ns(), queue));
    const int fd = ::open(path.c_str(), O_RDWR);
    struct stat st {};
    ::fstat(fd, &st);
    void* base = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    return base;
  };
  void* held_base = map("held");
  ASSERT_NE(held_base, MAP_FAILED);
  StoppedLockHolder holder(ns(), "held");
  ASSERT_TRUE(holder.stopped());
  // On a thread of its own, left behind if a step never returns.
  auto steps = std::make_shared<std::promise<std::string>>();
  std::thread([held_base, steps] {
    detail::QueueCore held(held_base);
    held.set_lock_wait(50'000'000);  // 50 ms
    detail::Delivery d{};
    std::string out = held.next_redrive(d) ? "next:found" : "next:none";
    out += " returned:" + std::to_string(held.return_redrives());
    held.finish_redrive(d);
    steps->set_value(out);
  }).detach();
  auto answer = steps->get_future();
  ASSERT_EQ(answer.wait_for(10s), std::future_status::ready) << "a redrive step waited for the held lock";
  EXPECT_EQ(answer.get(), "next:none returned:0");
}

// A client disconnecting makes the daemon free the slots it had reserved, on
// every queue: a scan that used to wait for each queue's lock, on the control
// thread, which then answered no one.
TEST_F(StoppedLockHolderLibrary, TheControlSocketAnswersWhileAQueuesLockHolderIsStopped) {
  make_queue("held");
  make_queue("other");
  StoppedLockHolder holder(ns(), "held");
  ASSERT_TRUE(holder.stopped());
  // A client that reserved a slot on "held"'s neighbour and died: its
  // disconnect starts the reclaim scan over every queue.
  const pid_t dying = fork_child([&] {
    Client c(Client::Options{ns()});
    Queue q = c.open_queue("other");
    SendResult r;
    return q.send("x", r) ? 1 : 0;
  });
  EXPECT_EQ(wait_child(dying), 0);
  // On a thread of its own, left behind if it never returns.
  auto listed = std::make_shared<std::promise<std::size_t>>();
  std::thread([listed, ns = ns()] {
    try {
      Client c(Client::Options{ns});
      listed->set_value(c.list_queues().size());
    } catch (...) {
      listed->set_exception(std::current_exception());
    }
  }).detach();
  auto answer = listed->get_future();
  ASSERT_EQ(answer.wait_for(20s), std::future_status::ready) << "the control socket stopped answering";
  EXPECT_EQ(answer.get(), 2u);
  const ProcessResult stats = shmqctl(ns(), {"stats", "held"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
}

class StoppedLockHolderBridge : public BridgeTest {
 protected:
  static void send_fifo(Queue& q, const std::string& body, const std::string& group) {
    SendOptions options;
    options.group_id = group;
    options.deduplication_id = body;
    SendResult sent;
    ASSERT_EQ(name_of(q.send(body, sent, options)), "ok");
  }

  Client client_{Client::Options{daemon_.ns()}};
};

TEST_F(StoppedLockHolderBridge, RequestsToTheHeldQueueGet503AndOtherQueuesAndLongPollsKeepWorking) {
  client_.create_queue("held", {}, kSmallQueue);
  client_.create_queue("other", {}, kSmallQueue);
  const int http = port();
  ASSERT_GT(http, 0);
  StoppedLockHolder holder(daemon_.ns(), "held");
  ASSERT_TRUE(holder.stopped());

  // A long poll on the held queue: the long-poll thread tries it too.
  auto held_poll = std::async(std::launch::async, [&] {
    return sqs_call(http, "ReceiveMessage", {{"QueueUrl", url("held")}, {"WaitTimeSeconds", 2}});
  });
  // Both bridge threads would be stuck if each request to the held queue took one.
  for (int i = 0; i < 3; ++i) {
    const HttpReply r = sqs_call(http, "SendMessage", {{"QueueUrl", url("held")}, {"MessageBody", "x"}});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.body.find("ServiceUnavailable"), std::string::npos) << r.body;
  }
  // A batch: its entries fail, the server's fault (SDKs retry those).
  const HttpReply batch = sqs_call(http, "SendMessageBatch",
                                   {{"QueueUrl", url("held")}, {"Entries", {{{"Id", "a"}, {"MessageBody", "x"}}}}});
  EXPECT_EQ(batch.status, 200) << batch.body;
  const json entries = json::parse(batch.body, nullptr, false);
  ASSERT_TRUE(entries.contains("Failed")) << batch.body;
  ASSERT_EQ(entries["Failed"].size(), 1u) << batch.body;
  EXPECT_EQ(entries["Failed"][0].value("Code", ""), "ServiceUnavailable") << batch.body;
  EXPECT_EQ(entries["Failed"][0].value("SenderFault", true), false) << batch.body;
  // A long poll on another queue is answered as soon as its message comes.
  auto other_poll = std::async(std::launch::async, [&] {
    return sqs_call(http, "ReceiveMessage", {{"QueueUrl", url("other")}, {"WaitTimeSeconds", 10}});
  });
  std::this_thread::sleep_for(200ms);
  const HttpReply sent = sqs_call(http, "SendMessage", {{"QueueUrl", url("other")}, {"MessageBody", "hello"}});
  EXPECT_EQ(sent.status, 200) << sent.body;
  ASSERT_EQ(other_poll.wait_for(8s), std::future_status::ready) << "the long poll was held up";
  const HttpReply got = other_poll.get();
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_NE(got.body.find("hello"), std::string::npos) << got.body;
  // The held queue's long poll ends on time, empty.
  ASSERT_EQ(held_poll.wait_for(20s), std::future_status::ready);
  const HttpReply empty = held_poll.get();
  EXPECT_EQ(empty.status, 200) << empty.body;
  EXPECT_EQ(empty.body.find("Messages"), std::string::npos) << empty.body;
  // Its attributes answer (the counts are read without the lock).
  const HttpReply attributes = sqs_call(
      http, "GetQueueAttributes", {{"QueueUrl", url("held")}, {"AttributeNames", {"ApproximateNumberOfMessages"}}});
  EXPECT_EQ(attributes.status, 200) << attributes.body;

  holder.kill();
  const HttpReply after = sqs_call(http, "SendMessage", {{"QueueUrl", url("held")}, {"MessageBody", "after"}});
  EXPECT_EQ(after.status, 200) << after.body;
}

// CPU seconds a process has used (user and system), from /proc.
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A FIFO queue at its in-flight limit still counts its groups as receivable,
// so the long-poll thread's wait returned at once, and it spun until the wait
// time ended. It must wait, and answer once the limit frees up.
TEST_F(StoppedLockHolderBridge, ALongPollOnAFifoQueueAtItsInFlightLimitWaitsWithoutSpinning) {
  client_.create_queue("limited.fifo", {{"FifoQueue", "true"}}, kSmallQueue);
  const int http = port();
  ASSERT_GT(http, 0);
  {
    // No attribute sets the limit (SQS's is 120,000): the segment's field.
    const std::string path = detail::Segment::path(detail::Segment::shm_name(daemon_.ns(), "limited.fifo"));
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    void* base = ::mmap(nullptr, sizeof(detail::SegmentHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(base, MAP_FAILED);
    detail::atom(static_cast<detail::SegmentHeader*>(base)->in_flight_limit).store(1);
    ::munmap(base, sizeof(detail::SegmentHeader));
    ::close(fd);
  }
  Queue q = client_.open_queue("limited.fifo");
  send_fifo(q, "a1", "a");
  send_fifo(q, "b1", "b");
  std::vector<Message> first;
  ASSERT_EQ(name_of(q.receive(first, {.wait_time = 0ms})), "ok");
  ASSERT_EQ(first.size(), 1u);  // group b is receivable, but the limit is reached

  const double cpu_before = cpu_seconds(daemon_.pid());
  auto poll = std::async(std::launch::async, [&] {
    return sqs_call(http, "ReceiveMessage", {{"QueueUrl", url("limited.fifo")}, {"WaitTimeSeconds", 3}});
  });
  ASSERT_EQ(poll.wait_for(2s), std::future_status::timeout) << "answered at the limit";
  const double cpu_used = cpu_seconds(daemon_.pid()) - cpu_before;
  // A spinning thread uses about a CPU-second a second (0.95 s seen here);
  // 20 ms polls use next to nothing.
  EXPECT_LT(cpu_used, 0.3) << "shmqd used " << cpu_used << " CPU-seconds in a 2 s long poll";
  ASSERT_EQ(name_of(q.delete_message(first[0].receipt_handle)), "ok");
  ASSERT_EQ(poll.wait_for(5s), std::future_status::ready);
  const HttpReply got = poll.get();
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_NE(got.body.find(first[0].body == "a1" ? "b1" : "a1"), std::string::npos)
      << "the other group's message, once the limit freed up: " << got.body;
}

}  // namespace
}  // namespace shmq::test
