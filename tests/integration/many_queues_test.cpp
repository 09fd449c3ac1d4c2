// Many queues in one daemon: its reaper serves them all with a few threads,
// which end with the queues, and still wakes for each queue's deadlines.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "segment.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using ManyQueues = DaemonTest;

// 300 queues span three futex waits of 127 (the reaper's unit).
constexpr int kQueues = 300;
// Threads a daemon may add for any number of queues: one reaper thread per
// 127 queues and a few of its own. Far below one per queue.
constexpr std::size_t kSpareThreads = 12;

std::size_t threads_of(pid_t pid) {
  std::size_t n = 0;
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!dir) return 0;
  while (const dirent* entry = ::readdir(dir)) n += entry->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

std::string name_of_queue(int i) { return "q" + std::to_string(i); }

TEST_F(ManyQueues, TheReaperUsesAFewThreadsForManyQueuesAndNoneAfterTheyAreDeleted) {
  // A queue created and deleted first: threads that a runtime starts with
  // the process's second thread (TSan's) count as idle ones.
  client_.create_queue("first", {}, kSmallQueue);
  client_.delete_queue("first");
  std::this_thread::sleep_for(300ms);
  const std::size_t idle = threads_of(daemon_.pid());
  for (int i = 0; i < kQueues; ++i) client_.create_queue(name_of_queue(i), {}, kSmallQueue);
  EXPECT_LE(threads_of(daemon_.pid()), idle + kSpareThreads) << "threads grow with the number of queues";

  for (int i = 0; i < kQueues; ++i) client_.delete_queue(name_of_queue(i));
  EXPECT_TRUE(eventually([&] { return threads_of(daemon_.pid()) <= idle; }))
      << threads_of(daemon_.pid()) << " threads after deleting every queue, " << idle << " before any";
}

TEST_F(ManyQueues, TheReaperReturnsExpiredMessagesAndEndsDelaysOnEveryQueue) {
  std::vector<Queue> queues;
  for (int i = 0; i < kQueues; ++i) {
    queues.push_back(make_queue(name_of_queue(i), {{"VisibilityTimeout", "1"}}));
  }
  // In flight on the first queue of each reaper thread and the last, and
  // delayed on others: only the daemon's reaper acts on them (nobody receives).
  const std::vector<int> in_flight{0, 126, 127, 254, kQueues - 1};
  const std::vector<int> delayed{1, 128, kQueues - 2};
  for (const int i : in_flight) {
    send_ok(queues[i], "x");
    ASSERT_EQ(receive_now(queues[i]).size(), 1u);
  }
  for (const int i : delayed) {
    SendOptions options;
    options.delay_seconds = 1;
    send_ok(queues[i], "later", options);
  }
  for (const int i : in_flight) {
    EXPECT_TRUE(eventually([&] { return attribute(name_of_queue(i), "ApproximateNumberOfMessages") == "1"; }))
        << "the expired message of queue " << i << " never became visible again";
  }
  for (const int i : delayed) {
    EXPECT_TRUE(eventually([&] { return attribute(name_of_queue(i), "ApproximateNumberOfMessages") == "1"; }))
        << "the delay of queue " << i << "'s message never ended";
  }
}

TEST_F(ManyQueues, AQueueCreatedAfterOthersWereDeletedIsServedByTheReaper) {
  for (int i = 0; i < 130; ++i) client_.create_queue(name_of_queue(i), {}, kSmallQueue);
  for (int i = 0; i < 130; ++i) client_.delete_queue(name_of_queue(i));
  Queue q = make_queue("after", {{"VisibilityTimeout", "1"}});
  send_ok(q, "x");
  ASSERT_EQ(receive_now(q).size(), 1u);
  EXPECT_TRUE(eventually([&] { return attribute("after", "ApproximateNumberOfMessages") == "1"; }))
      << "the expired message never became visible again";
}

// One reaper thread serves many queues: a queue whose lock stays held (its
// holder stopped inside a critical section, by SIGSTOP or a debugger) must
// cost that queue its turns, not its neighbours theirs, and must not stop
// the deletion of a neighbour.
TEST_F(ManyQueues, AQueueWhoseLockStaysHeldDelaysNeitherItsNeighboursNorTheirDeletion) {
  (void)make_queue("stuck");
  Queue neighbour = make_queue("neighbour", {{"VisibilityTimeout", "1"}});
  client_.create_queue("doomed", {}, kSmallQueue);
  detail::Segment segment;
  ASSERT_FALSE(detail::Segment::open(detail::Segment::shm_name(daemon_.ns(), "stuck"), segment));
  const pid_t holder = fork_child([&] {
    if (pthread_mutex_lock(&segment.header().mutex) != 0) return 1;
    ::raise(SIGSTOP);
    return 0;
  });
  int status = 0;
  ASSERT_EQ(::waitpid(holder, &status, WUNTRACED), holder);
  ASSERT_TRUE(WIFSTOPPED(status)) << "the lock holder did not stop";
  // An attribute change wakes the reaper for the stuck queue: its turn
  // there finds the lock held.
  client_.set_queue_attributes("stuck", {{"VisibilityTimeout", "5"}});
  send_ok(neighbour, "x");
  ASSERT_EQ(receive_now(neighbour).size(), 1u);
  EXPECT_TRUE(eventually([&] { return attribute("neighbour", "ApproximateNumberOfMessages") == "1"; }))
      << "the neighbour's expired message never became visible again";
  const ProcessResult deleted =
      run_process({"/usr/bin/timeout", "10", shmqctl_path(), "--namespace", daemon_.ns(), "delete-queue", "doomed"});
  EXPECT_EQ(deleted.exit_code, 0) << "delete-queue of a neighbour: " << deleted.err;
  // The holder dies: the next locker recovers the queue (EOWNERDEAD).
  ::kill(holder, SIGKILL);
  ::waitpid(holder, &status, 0);
}

}  // namespace
}  // namespace shmq::test
