// Clients killed at awkward moments: the daemon learns of the death from the
// kernel and returns what the dead process held, so the queue keeps working.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "control_connection.hpp"
#include "queue_core.hpp"
#include "segment.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using DeadClients = DaemonTest;

constexpr QueueCapacity kSixteenSlots{16, 2ull << 20};

// A pipe both of whose ends close on exec, so that daemons started later do
// not hold them open.
struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void close_read() { ::close(std::exchange(fds[0], -1)); }
  void close_write() { ::close(std::exchange(fds[1], -1)); }
  bool signal() { return ::write(fds[1], "x", 1) == 1; }
  // False if the other end closed (the other process died) first.
  bool wait() {
    char c;
    return ::read(fds[0], &c, 1) == 1;
  }
  int fds[2] = {-1, -1};
};

// In a child: connects to the daemon as a client does, reserves one slot of
// `queue` through the library's internals as a send does, then tells the
// parent (`ready`) and waits for `go` before it dies with SIGKILL. The slot
// is never committed.
int reserve_then_die(const std::string& ns, const std::string& queue, Pipe& ready, Pipe& go) {
  ready.close_read();
  go.close_write();
  detail::ControlConnection connection(ns);  // the daemon now watches this pid
  detail::Segment segment;
  if (detail::Segment::open(detail::Segment::shm_name(ns, queue), segment)) return 1;
  detail::QueueCore core(segment.base());
  const std::uint32_t size = 100;
  detail::Reservation reservation;
  std::error_code error;
  (void)core.reserve(std::span(&size, 1), static_cast<std::uint32_t>(::getpid()), std::span(&reservation, 1),
                     std::span(&error, 1));
  if (error || reservation.index == detail::kNil) return 2;
  std::memset(reservation.payload, 'x', 50);  // half-way through the copy
  if (!ready.signal()) return 3;
  (void)go.wait();
  ::raise(SIGKILL);
  return 4;
}

// The queue holds exactly 16 messages again: nothing leaked.
void expect_all_sixteen_slots_usable(Queue& q) {
  for (int i = 0; i < 16; ++i) {
    SendResult sent;
    ASSERT_EQ(name_of(q.send("m" + std::to_string(i), sent)), "ok") << "slot " << i;
  }
  std::size_t received = 0;
  std::vector<Message> got;
  while (!q.receive(got, {.max_messages = 10, .wait_time = 0ms}) && !got.empty()) {
    for (const Message& m : got) {
      EXPECT_EQ(m.body[0], 'm') << "a half-written message was delivered";
      EXPECT_EQ(name_of(q.delete_message(m.receipt_handle)), "ok");
    }
    received += got.size();
  }
  EXPECT_EQ(received, 16u);
}

// Forks a child that reserves a slot in "q" and dies when `go` says so;
// returns its pid once the slot is reserved, or -1 if it failed before.
pid_t start_reserving_child(const std::string& ns, Pipe& ready, Pipe& go) {
  const pid_t child = fork_child([&] { return reserve_then_die(ns, "q", ready, go); });
  ready.close_write();
  go.close_read();
  if (ready.wait()) return child;
  wait_child(child);
  return -1;
}

TEST_F(DeadClients, ASenderKilledBeforeCommitLeavesNoReservedSlot) {
  Queue q = make_queue("q", {}, kSixteenSlots);
  Pipe ready, go;
  const pid_t child = start_reserving_child(ns(), ready, go);
  ASSERT_GT(child, 0) << "the child failed before reserving";
  EXPECT_EQ(client_.stats("q").counts.writing, 1u);
  EXPECT_EQ(q.counts().visible, 0u) << "an uncommitted message is visible";

  go.signal();
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  EXPECT_TRUE(eventually([&] { return client_.stats("q").counts.writing == 0; }, 5s))
      << "the daemon did not reclaim the dead sender's slot";
  EXPECT_EQ(q.counts().visible, 0u);
  expect_all_sixteen_slots_usable(q);
  EXPECT_EQ(client_.stats("q").arena_free_bytes, 2ull << 20) << "payload space leaked";
}

TEST_F(DeadClients, ASenderFromBeforeADaemonRestartIsWatchedToo) {
  Queue q = make_queue("q", {}, kSixteenSlots);
  Pipe ready, go;
  const pid_t child = start_reserving_child(ns(), ready, go);
  ASSERT_GT(child, 0) << "the child failed before reserving";
  EXPECT_EQ(client_.stats("q").counts.writing, 1u);

  // The daemon that knew the child's connection dies; a new one starts.
  daemon_.kill_hard();
  daemon_.start();
  EXPECT_EQ(client_.stats("q").counts.writing, 1u) << "the slot of a live sender was taken from it";

  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  EXPECT_TRUE(eventually([&] { return client_.stats("q").counts.writing == 0; }, 5s))
      << "the restarted daemon did not reclaim the dead sender's slot";
  expect_all_sixteen_slots_usable(q);
}

TEST_F(DeadClients, AProcessKilledHoldingTheQueueLockDoesNotBlockOthers) {
  Queue q = make_queue("q", {}, kSixteenSlots);
  send_ok(q, "before");
  Pipe ready, go;
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] {
    ready.close_read();
    go.close_write();
    detail::ControlConnection connection(queue_ns);
    detail::Segment segment;
    if (detail::Segment::open(detail::Segment::shm_name(queue_ns, "q"), segment)) return 1;
    if (pthread_mutex_lock(&segment.header().mutex) != 0) return 2;
    if (!ready.signal()) return 3;
    (void)go.wait();
    ::raise(SIGKILL);
    return 4;
  });
  ready.close_write();
  go.close_read();
  ASSERT_TRUE(ready.wait()) << "the child failed before locking (exit " << wait_child(child) << ")";
  go.signal();
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);

  send_ok(q, "after");
  std::vector<Message> got;
  ASSERT_EQ(name_of(q.receive(got, {.max_messages = 10, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].body, "before");
  EXPECT_EQ(got[1].body, "after");
  EXPECT_EQ(client_.stats("q").recoveries, 1u);
}

TEST_F(DeadClients, MessagesOfAKilledReceiverComeBack) {
  Queue q = make_queue("q", {{"VisibilityTimeout", "1"}}, kSixteenSlots);
  send_ok(q, "orphan");
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] {
    Client client(Client::Options{queue_ns});
    Queue mine = client.open_queue("q");
    std::vector<Message> got;
    if (mine.receive(got, {.max_messages = 1, .wait_time = 5s}) || got.size() != 1) return 1;
    ::raise(SIGKILL);
    return 2;
  });
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  EXPECT_EQ(q.counts().in_flight, 1u);

  std::vector<Message> got;
  ASSERT_EQ(name_of(q.receive(got, {.max_messages = 1, .wait_time = 10s})), "ok");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "orphan");
  EXPECT_EQ(got[0].receive_count, 2u);
}

TEST_F(DeadClients, AReceiverKilledAsleepNoLongerCountsAsWaiting) {
  Queue q = make_queue("q", {}, kSixteenSlots);
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] {
    Client client(Client::Options{queue_ns});
    Queue mine = client.open_queue("q");
    std::vector<Message> got;
    static_cast<void>(mine.receive(got, {.max_messages = 1, .wait_time = 20s, .spin = 0us}));
    return 1;  // only a message or the end of the wait gets here
  });
  ASSERT_TRUE(eventually([&] { return client_.stats("q").sleeping_receivers == 1; }))
      << "the child should be asleep in its receive";
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  // The daemon takes the dead receiver out of the count, so senders stop
  // paying for wake-ups nobody waits for.
  EXPECT_TRUE(eventually([&] { return client_.stats("q").sleeping_receivers == 0; }));
  send_ok(q, "after");
  EXPECT_EQ(receive_now(q, 1).size(), 1u);
}

}  // namespace
}  // namespace shmq::test
