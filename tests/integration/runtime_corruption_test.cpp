// A queue's segment corrupted while the daemon and clients have it attached,
// by a third process that maps the file and writes into it. The clients of
// that queue get segment_corrupt (or keep working after a repair), the daemon
// stays up and stops serving only that queue, every other queue keeps
// working throughout, and delete-queue frees the name.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "segment.hpp"
#include "segment_layout.hpp"
#include "sqs_http.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;

std::string segment_path(const std::string& ns, const std::string& queue) {
  return detail::Segment::path(detail::Segment::shm_name(ns, queue));
}

// In a process of its own, as another writer of the segment would be: maps
// the queue's file and lets `edit` change the header and descriptors.
void corrupt_in_another_process(const std::string& ns, const std::string& queue,
                                const std::function<void(detail::SegmentHeader&, detail::MessageDescriptor*)>& edit) {
  const std::string path = segment_path(ns, queue);
  const int rc = wait_child(fork_child([&] {
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) return 1;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return 2;
    void* base = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (base == MAP_FAILED) return 3;
    auto& h = *static_cast<detail::SegmentHeader*>(base);
    edit(h, reinterpret_cast<detail::MessageDescriptor*>(static_cast<std::uint8_t*>(base) + h.descriptors_offset));
    ::munmap(base, static_cast<std::size_t>(st.st_size));
    return 0;
  }));
  ASSERT_EQ(rc, 0) << "could not corrupt " << path;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool alive(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

// A client process that sends to and receives from `queue` until told to
// stop (its pipe closes); exits 0 if every send and receive worked and each
// message sent came back.
class Traffic {
 public:
  Traffic(const std::string& ns, const std::string& queue) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_ = fork_child([ns, queue, fd = fds[0], other = fds[1]] {
      ::close(other);
      Client client(Client::Options{ns});
      Queue q = client.open_queue(queue);
      int rounds = 0;
      for (;; ++rounds) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0 && rounds > 10) return 0;  // told to stop, and worked a while
        SendResult sent;
        if (q.send("round " + std::to_string(rounds), sent)) return 10;
        std::vector<Message> got;
        ReceiveOptions options;
        options.wait_time = std::chrono::seconds(5);
        if (q.receive(got, options) || got.size() != 1 || got[0].body != "round " + std::to_string(rounds)) return 11;
        if (q.delete_message(got[0].receipt_handle)) return 12;
      }
    });
    ::close(fds[0]);
    stop_fd_ = fds[1];
  }
  // Stops it; its exit code.
  int finish() {
    ::close(stop_fd_);
    return wait_child(pid_);
  }

 private:
  pid_t pid_ = -1;
  int stop_fd_ = -1;
};

class RuntimeCorruption : public DaemonTest {
 protected:
  // The queue the test corrupts ("a") with two messages, "b" with one, and
  // "c" for a client process's traffic.
  void make_queues() {
    a_.emplace(make_queue("a"));
    b_.emplace(make_queue("b"));
    make_queue("c");
    send_ok(*a_, "first in a");
    send_ok(*a_, "second in a");
    send_ok(*b_, "in b");
  }

  // The daemon stops serving "a" and says so; "b" and shmqctl keep working;
  // delete-queue frees the name for a new "a".
  void expect_failed_alone() {
    EXPECT_TRUE(eventually([&] { return !contains(client_.list_queues(), "a"); }))
        << "the corrupt queue is still listed";
    EXPECT_TRUE(alive(daemon_.pid())) << "the daemon died";
    EXPECT_EQ(shmqctl(ns(), {"list-queues"}).exit_code, 0);
    const ProcessResult stats = shmqctl(ns(), {"stats", "b"});
    EXPECT_EQ(stats.exit_code, 0) << stats.err;
    const ProcessResult over = shmqctl(ns(), {"create-queue", "a"});
    EXPECT_NE(over.exit_code, 0) << "created a over its refused segment";
    const ProcessResult deleted = shmqctl(ns(), {"delete-queue", "a"});
    EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
    Queue again = make_queue("a");
    send_ok(again, "fresh");
    const auto got = receive_now(again);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, "fresh");
    // b was served all along.
    const auto in_b = receive_now(*b_);
    ASSERT_EQ(in_b.size(), 1u);
    EXPECT_EQ(in_b[0].body, "in b");
  }

  std::optional<Queue> a_;
  std::optional<Queue> b_;
};

TEST_F(RuntimeCorruption, PayloadBlockOutOfRangeRefusesOnlyThatQueue) {
  make_queues();
  Traffic traffic(ns(), "c");
  corrupt_in_another_process(ns(), "a", [](detail::SegmentHeader&, detail::MessageDescriptor* d) {
    d[0].block_offset = 1ull << 40;  // authoritative: no repair can trust it
  });
  std::vector<Message> got;
  ReceiveOptions options;
  options.wait_time = std::chrono::milliseconds(0);
  EXPECT_EQ(name_of(a_->receive(got, options)), "segment_corrupt");
  EXPECT_TRUE(got.empty());
  SendResult sent;
  EXPECT_EQ(name_of(a_->send("after", sent)), "segment_corrupt");
  // Another process that opens it now is refused: by the segment's
  // validation, or by the daemon once it stopped serving the queue.
  const std::string opened = thrown_by([&] { Client(Client::Options{ns()}).open_queue("a"); });
  EXPECT_TRUE(opened == "segment_corrupt" || opened == "queue_does_not_exist") << opened;
  EXPECT_EQ(traffic.finish(), 0) << "queue c stopped working";
  expect_failed_alone();
}

// A send without the mutex writes into a slot its process's cache took
// under the mutex earlier (docs/data-plane.md, "Sends without the mutex").
// If the shared descriptor of such a slot is overwritten meanwhile to name
// another message's block, the send must not write there: the queue is
// refused, and "first in a" is never overwritten.
TEST_F(RuntimeCorruption, ACachedSlotWhoseBlockChangedIsNeverWritten) {
  make_queues();
  const QueueStats before = client_.stats("a");
  ASSERT_GT(before.slots_ever_used, 2u) << "no slot is cached: this test needs sends without the mutex";
  corrupt_in_another_process(ns(), "a", [](detail::SegmentHeader&, detail::MessageDescriptor* d) {
    d[2].block_offset = d[0].block_offset;  // in range, and "first in a"'s
  });
  SendResult sent;
  EXPECT_EQ(name_of(a_->send("third in a", sent)), "segment_corrupt");
  std::vector<Message> got;
  EXPECT_EQ(name_of(a_->receive(got, {.wait_time = std::chrono::milliseconds(0)})), "segment_corrupt");
  expect_failed_alone();
}

TEST_F(RuntimeCorruption, ReadyListCycleIsRepairedAndLosesNothing) {
  make_queues();
  Traffic traffic(ns(), "c");
  corrupt_in_another_process(ns(), "a", [](detail::SegmentHeader& h, detail::MessageDescriptor* d) {
    d[1].next = 0;  // second -> first -> second ...: a derived structure, rebuilt from the states
    h.roots.heap_size = 0x7ffffff0u;
  });
  std::vector<std::string> bodies;
  EXPECT_TRUE(eventually([&] {
    for (const Message& m : receive_now(*a_)) {
      bodies.push_back(m.body);
      EXPECT_EQ(name_of(a_->delete_message(m.receipt_handle)), "ok");
    }
    return bodies.size() >= 2;
  }));
  std::sort(bodies.begin(), bodies.end());
  EXPECT_EQ(bodies, (std::vector<std::string>{"first in a", "second in a"}));
  send_ok(*a_, "after the repair");
  const auto got = receive_now(*a_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "after the repair");
  EXPECT_EQ(traffic.finish(), 0) << "queue c stopped working";
  EXPECT_TRUE(alive(daemon_.pid()));
  EXPECT_TRUE(contains(client_.list_queues(), "a")) << "a repaired queue stays served";
}

TEST_F(RuntimeCorruption, DaemonFailsAQueueItsReaperFindsCorrupt) {
  a_.emplace(make_queue("a"));
  b_.emplace(make_queue("b"));
  SendOptions delayed;
  delayed.delay_seconds = 1;
  send_ok(*a_, "delayed in a", delayed);  // the reaper ends the delay: it touches the descriptor
  send_ok(*b_, "in b");
  corrupt_in_another_process(ns(), "a", [](detail::SegmentHeader&, detail::MessageDescriptor* d) {
    d[0].state = 9;  // no state this version writes, on the reaper's timer heap
  });
  // No client of a does anything: the daemon's own turn finds it.
  EXPECT_TRUE(eventually([&] { return !contains(client_.list_queues(), "a"); }, 20s))
      << "the reaper did not fail the corrupt queue";
  expect_failed_alone();
}

// A purge that ran into the corruption used to answer success with what it
// had counted before the check failed.
TEST_F(RuntimeCorruption, APurgeThatFindsTheQueueCorruptIsNoSuccess) {
  make_queues();
  corrupt_in_another_process(ns(), "a", [](detail::SegmentHeader&, detail::MessageDescriptor* d) {
    d[1].block_offset = 1ull << 40;  // the second message's, met as the purge walks the queue
  });
  const std::string purged = thrown_by([&] { client_.purge_queue("a"); });
  EXPECT_TRUE(purged == "segment_corrupt" || purged == "queue_does_not_exist") << purged;
  expect_failed_alone();
}

// --- Over the SQS bridge ------------------------------------------------

class BridgeRuntimeCorruption : public BridgeTest {
 protected:
  // The URL the bridge itself gives for a queue.
  std::string queue_url(int port, const std::string& queue) {
    const HttpReply r = sqs_call(port, "GetQueueUrl", {{"QueueName", queue}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("QueueUrl", "");
  }
};

TEST_F(BridgeRuntimeCorruption, SendAndReceiveToACorruptQueueAnswerAnSqsError) {
  const int p = port();
  for (const char* name : {"a", "b"}) {
    ASSERT_EQ(sqs_call(p, "CreateQueue", {{"QueueName", name}}).status, 200);
  }
  const std::string a = queue_url(p, "a");
  const std::string b = queue_url(p, "b");
  ASSERT_EQ(sqs_call(p, "SendMessage", {{"QueueUrl", a}, {"MessageBody", "in a"}}).status, 200);
  corrupt_in_another_process(
      daemon_.ns(), "a", [](detail::SegmentHeader&, detail::MessageDescriptor* d) { d[0].body_bytes = 0xffffff00u; });
  const HttpReply receive = sqs_call(p, "ReceiveMessage", {{"QueueUrl", a}, {"WaitTimeSeconds", 0}});
  EXPECT_EQ(receive.status, 400) << receive.body;
  EXPECT_NE(receive.body.find("QueueDoesNotExist"), std::string::npos) << receive.body;
  const HttpReply send = sqs_call(p, "SendMessage", {{"QueueUrl", a}, {"MessageBody", "after"}});
  EXPECT_EQ(send.status, 400) << send.body;
  EXPECT_NE(send.body.find("QueueDoesNotExist"), std::string::npos) << send.body;
  // The other queue is unaffected.
  ASSERT_EQ(sqs_call(p, "SendMessage", {{"QueueUrl", b}, {"MessageBody", "in b"}}).status, 200);
  const HttpReply got = sqs_call(p, "ReceiveMessage", {{"QueueUrl", b}, {"WaitTimeSeconds", 0}});
  EXPECT_EQ(got.status, 200);
  EXPECT_NE(got.body.find("in b"), std::string::npos) << got.body;
  EXPECT_TRUE(alive(daemon_.pid()));
  // Deleted and made again, "a" works over the bridge too.
  EXPECT_EQ(shmqctl(daemon_.ns(), {"delete-queue", "a"}).exit_code, 0);
  ASSERT_EQ(sqs_call(p, "CreateQueue", {{"QueueName", "a"}}).status, 200);
  EXPECT_EQ(sqs_call(p, "SendMessage", {{"QueueUrl", a}, {"MessageBody", "fresh"}}).status, 200);
  const HttpReply fresh = sqs_call(p, "ReceiveMessage", {{"QueueUrl", a}, {"WaitTimeSeconds", 0}});
  EXPECT_NE(fresh.body.find("fresh"), std::string::npos) << fresh.body;
}

}  // namespace
}  // namespace shmq::test
