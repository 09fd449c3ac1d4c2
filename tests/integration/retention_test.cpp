// MessageRetentionPeriod enforced by the daemon's reaper, with a real clock:
// a message nobody receives is gone once its retention period has passed.
// (The core's retention rules, with a hand-driven clock, are unit tests.)
#include <chrono>
#include <thread>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using Retention = DaemonTest;

TEST_F(Retention, AMessageInAQueueNobodyReadsExpiresAfterTheRetentionPeriod) {
  // 60 s is SQS's shortest period. The queue is empty when the reaper first
  // sleeps, and no receive or delete ever wakes it: only its own deadline can.
  Queue q = make_queue("q", {{"MessageRetentionPeriod", "60"}});
  std::this_thread::sleep_for(1s);
  send_ok(q, "short-lived");
  const auto sent = std::chrono::steady_clock::now();
  EXPECT_EQ(q.counts().visible, 1u);
  ASSERT_TRUE(eventually([&] { return q.counts().visible == 0; }, 75s)) << "still there after 75 s";
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 59s) << "removed before its period";
  EXPECT_TRUE(receive_now(q, 10).empty());
  SHMQ_LOCAL_ONLY("stats are the daemon's figures of a segment");
  const QueueStats stats = client_.stats("q");
  EXPECT_EQ(stats.expired_total, 1u) << "the daemon counts what retention removed";
  EXPECT_EQ(stats.deleted_total, 0u);
}

}  // namespace
}  // namespace shmq::test
