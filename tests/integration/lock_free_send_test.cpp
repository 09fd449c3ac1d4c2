// Sends without the queue's mutex (small messages to a standard queue of
// at least QueueCore::kCacheMinSlots slots, as every default-sized queue
// is), with a real daemon: a sender's messages arrive in its order, and a
// sender killed at any step of such a send has what it left delivered or
// freed by the daemon, which learns of the death from the kernel.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control_connection.hpp"
#include "message_id.hpp"
#include "queue_core.hpp"
#include "segment.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using LockFreeSends = DaemonTest;

constexpr std::uint64_t kArena = kSmallQueue.arena_bytes;

// Receives and deletes everything visible; returns the bodies in order.
std::vector<std::string> receive_all(Queue& q) {
  std::vector<std::string> bodies;
  std::vector<Message> got;
  while (!q.receive(got, {.max_messages = 10, .wait_time = 0ms}) && !got.empty()) {
    for (const Message& m : got) {
      bodies.push_back(m.body);
      EXPECT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
    }
  }
  return bodies;
}

// In a forked child, as a client that links libshmq does: connects to the
// daemon (which then watches this pid), maps `queue` and sends `body`
// without the mutex, through the library's internals, so that the copy can
// stop part-way: after `stop_after` bytes the child raises `signal`.
int send_and_stop(const std::string& ns, const std::string& queue, std::string_view body, std::size_t stop_after,
                  int signal) {
  detail::ControlConnection connection(ns);
  detail::Segment segment;
  if (detail::Segment::open(detail::Segment::shm_name(ns, queue), segment)) return 1;
  detail::QueueCore core(segment.base());
  struct Copy {
    std::string_view body;
    std::size_t stop_after;
    int signal;
  } copy{body, stop_after, signal};
  const detail::QueueCore::Fill fill{[](void* context, std::size_t, std::uint8_t* payload) noexcept {
                                       const auto& c = *static_cast<const Copy*>(context);
                                       std::memcpy(payload, c.body.data(), std::min(c.body.size(), c.stop_after));
                                       ::raise(c.signal);
                                     },
                                     &copy};
  detail::CommitRequest req;
  req.message_id = detail::new_message_id();
  detail::CommitResult res;
  const auto size = static_cast<std::uint32_t>(body.size());
  if (!core.send_lock_free(detail::QueueCore::kAnyEpoch, size, static_cast<std::uint32_t>(::getpid()), fill, size, req,
                           res, detail::now())) {
    return 2;  // not sent without the mutex: the test proves nothing
  }
  return 3;  // the signal did not end the child
}

TEST_F(LockFreeSends, OneSendersMessagesArriveInItsOrderWhateverPathEachTakes) {
  Queue q = make_queue("q");
  // Small ones go without the mutex; 2 KiB is copied under it, 64 KiB
  // between a reserve and a commit.
  const std::vector<std::string> bodies{"a", "b", std::string(2048, 'c'), "d", std::string(65536, 'e'), "f", "g"};
  for (const std::string& body : bodies) send_ok(q, body);
  EXPECT_EQ(receive_all(q), bodies);
}

// GetQueueAttributes counts what senders handed over without the mutex and
// nobody has committed yet: ApproximateNumberOfMessages is what was sent.
TEST_F(LockFreeSends, TheApproximateCountsIncludeMessagesNotCommittedYet) {
  Queue q = make_queue("q");
  for (int i = 0; i < 5; ++i) send_ok(q, "m" + std::to_string(i));
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessages"), "5");
  EXPECT_EQ(receive_all(q).size(), 5u);
  EXPECT_EQ(attribute("q", "ApproximateNumberOfMessages"), "0");
}

// The same within one batch: an entry that must take the locked path keeps
// the entries after it behind it.
TEST_F(LockFreeSends, ABatchArrivesInItsOrderWhateverPathEachEntryTakes) {
  Queue q = make_queue("q");
  const std::vector<std::string> bodies{"a", std::string(2048, 'b'), "c", "d", std::string(65536, 'e'), "f"};
  std::vector<SendEntry> entries;
  for (std::size_t i = 0; i < bodies.size(); ++i) entries.push_back({std::to_string(i), bodies[i], {}});
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(entries, results)), "ok");
  ASSERT_EQ(results.size(), bodies.size());
  for (const BatchEntryResult& r : results) EXPECT_EQ(name_of(r.error), "ok") << r.id;
  EXPECT_EQ(receive_all(q), bodies);
}

TEST_F(LockFreeSends, ASenderKilledAfterASendHasItsMessageDeliveredAndItsCachedSlotsFreed) {
  Queue q = make_queue("q");
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] {
    Client client(Client::Options{queue_ns});
    Queue mine = client.open_queue("q");
    SendResult sent;
    if (mine.send("from the dead", sent)) return 1;
    ::raise(SIGKILL);  // the queue is never closed: its slot cache stays as it was
    return 2;
  });
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  EXPECT_EQ(receive_all(q), (std::vector<std::string>{"from the dead"}));
  EXPECT_TRUE(eventually([&] { return client_.stats("q").arena_free_bytes == kArena; }, 5s))
      << "the dead sender's cached slots still hold payload space";
  // Every slot is usable again.
  for (std::uint32_t i = 0; i < kSmallQueue.max_messages; ++i) {
    SendResult sent;
    ASSERT_EQ(name_of(q.send("m", sent)), "ok") << "message " << i;
  }
  SendResult sent;
  EXPECT_EQ(name_of(q.send("one too many", sent)), "queue_full");
}

TEST_F(LockFreeSends, ASenderKilledMidCopyLeavesNothingBehind) {
  std::optional<Queue> q = make_queue("q");
  send_ok(*q, "kept");
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] { return send_and_stop(queue_ns, "q", std::string(600, 'h'), 300, SIGKILL); });
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  EXPECT_EQ(receive_all(*q), (std::vector<std::string>{"kept"})) << "a half-written message was delivered";
  q.reset();  // closed: this process's cache goes back too
  EXPECT_TRUE(eventually([&] { return client_.stats("q").arena_free_bytes == kArena; }, 5s))
      << "the dead sender's slots still hold payload space";
  EXPECT_EQ(client_.stats("q").counts.writing, 0u);
}

// A sender that dies past the commit point of its send, before the
// message reached the submit ring: the daemon's reclaim commits it, and a
// receiver asleep in a long poll gets it then, not at the end of its wait.
TEST_F(LockFreeSends, AReceiverInALongPollGetsADeadSendersLastMessageWhenTheDaemonCommitsIt) {
  Queue q = make_queue("q");
  const std::string queue_ns = ns();
  const std::string body = "committed by the daemon";
  const pid_t child = fork_child([&] { return send_and_stop(queue_ns, "q", body, body.size(), SIGSTOP); });
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status)) << "the child ended before its copy";
  // Stopped with its copy done; as if it went past its commit point and
  // died there, its state is moved on by hand.
  detail::Segment segment;
  ASSERT_FALSE(detail::Segment::open(detail::Segment::shm_name(ns(), "q"), segment));
  detail::QueueCore view(segment.base());
  std::uint32_t moved = 0;
  for (std::uint32_t i = 0; i < view.header().roots.unused_from; ++i) {
    detail::MessageDescriptor& m = view.descriptor(i);
    if (m.owner_pid == static_cast<std::uint32_t>(child) &&
        detail::atom(m.state).load() == static_cast<std::uint32_t>(detail::MessageState::kWriting)) {
      detail::atom(m.state).store(static_cast<std::uint32_t>(detail::MessageState::kPending));
      ++moved;
    }
  }
  ASSERT_EQ(moved, 1u);

  auto receiver = std::async(std::launch::async, [&] {
    std::vector<Message> got;
    const auto start = std::chrono::steady_clock::now();
    const std::error_code ec = q.receive(got, {.max_messages = 1, .wait_time = 20s, .spin = 0us});
    return std::make_tuple(ec, got, seconds_since(start));
  });
  ASSERT_TRUE(eventually([&] { return client_.stats("q").sleeping_receivers == 1; }))
      << "the receiver should be asleep in its long poll";
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  const auto [ec, got, waited] = receiver.get();
  EXPECT_EQ(name_of(ec), "ok");
  ASSERT_EQ(got.size(), 1u) << "the message past its commit point was lost";
  EXPECT_EQ(got[0].body, body);
  EXPECT_LT(waited, 10.0) << "the receiver slept through the daemon's commit";
}

}  // namespace
}  // namespace shmq::test
