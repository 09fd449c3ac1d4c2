// Many queues in one daemon: its reaper serves them all with a few threads,
// which end with the queues, and still wakes for each queue's deadlines.
#include <dirent.h>

#include <string>
#include <vector>

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

}  // namespace
}  // namespace shmq::test
