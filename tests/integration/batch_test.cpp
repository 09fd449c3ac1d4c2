// Batch sends, deletes and visibility changes: batch-level errors send
// nothing; per-entry errors leave the other entries done.
#include <set>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using Batches = DaemonTest;

std::vector<SendEntry> entries(int count, const std::string& body = "body") {
  std::vector<SendEntry> out;
  for (int i = 0; i < count; ++i) out.push_back({"e" + std::to_string(i), body + std::to_string(i), {}});
  return out;
}

TEST_F(Batches, TenMessagesInOneBatch) {
  Queue q = make_queue("q");
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(entries(10), results)), "ok");
  ASSERT_EQ(results.size(), 10u);
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(results[i].id, "e" + std::to_string(i)) << "results are in entry order";
    EXPECT_EQ(name_of(results[i].error), "ok");
    EXPECT_TRUE(uuid_shaped(results[i].message_id)) << results[i].message_id;
    ids.insert(results[i].message_id);
  }
  EXPECT_EQ(ids.size(), 10u);

  auto got = receive_now(q, 10);
  ASSERT_EQ(got.size(), 10u);
  std::set<std::string> received_ids, bodies;
  for (const Message& m : got) {
    received_ids.insert(m.message_id);
    bodies.insert(m.body);
  }
  EXPECT_EQ(received_ids, ids);
  EXPECT_EQ(bodies.count("body0") + bodies.count("body9"), 2u);
}

TEST_F(Batches, BatchLevelErrorsSendNothing) {
  Queue q = make_queue("q");
  std::vector<BatchEntryResult> results;
  EXPECT_EQ(name_of(q.send_batch(entries(11), results)), "too_many_entries_in_batch");
  EXPECT_EQ(name_of(q.send_batch(std::vector<SendEntry>{}, results)), "empty_batch_request");

  auto duplicate = entries(3);
  duplicate[2].id = duplicate[0].id;
  EXPECT_EQ(name_of(q.send_batch(duplicate, results)), "batch_entry_ids_not_distinct");

  for (const std::string& bad_id :
       {std::string("has space"), std::string("bang!"), std::string(), std::string(81, 'i')}) {
    auto bad = entries(2);
    bad[1].id = bad_id;
    EXPECT_EQ(name_of(q.send_batch(bad, results)), "invalid_batch_entry_id") << "id '" << bad_id << "'";
  }

  // Together over 1 MiB, although each alone would fit.
  std::vector<SendEntry> big{{"a", std::string(600000, 'a'), {}}, {"b", std::string(600000, 'b'), {}}};
  EXPECT_EQ(name_of(q.send_batch(big, results)), "batch_request_too_long");

  const QueueCounts c = q.counts();
  EXPECT_EQ(c.visible + c.delayed + c.writing, 0u) << "a refused batch sent something";
}

TEST_F(Batches, OneEntryFailsTheOthersAreSent) {
  Queue q = make_queue("q", {{"MaximumMessageSize", "1024"}});
  auto batch = entries(4);
  batch[2].body = std::string(1025, 'x');
  batch[3].options.delay_seconds = 901;
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(batch, results)), "ok");
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(name_of(results[0].error), "ok");
  EXPECT_EQ(name_of(results[1].error), "ok");
  EXPECT_EQ(name_of(results[2].error), "message_too_large");
  EXPECT_EQ(name_of(results[3].error), "invalid_parameter_value");
  EXPECT_TRUE(results[2].message_id.empty());
  EXPECT_TRUE(uuid_shaped(results[0].message_id));

  auto got = receive_now(q);
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> bodies{got[0].body, got[1].body};
  EXPECT_EQ(bodies, (std::set<std::string>{"body0", "body1"}));
}

TEST_F(Batches, DeleteBatchWithOneBadHandle) {
  Queue q = make_queue("q");
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(entries(3), results)), "ok");
  auto got = receive_now(q, 3);
  ASSERT_EQ(got.size(), 3u);

  const std::vector<HandleEntry> batch{
      {"first", got[0].receipt_handle, 0}, {"bad", "garbage", 0}, {"second", got[1].receipt_handle, 0}};
  ASSERT_EQ(name_of(q.delete_batch(batch, results)), "ok");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].id, "first");
  EXPECT_EQ(name_of(results[0].error), "ok");
  EXPECT_EQ(results[1].id, "bad");
  EXPECT_EQ(name_of(results[1].error), "invalid_receipt_handle");
  EXPECT_EQ(name_of(results[2].error), "ok");
  EXPECT_EQ(q.counts().in_flight, 1u);

  // Deleting the same handles again: stale, per entry (SQS: done again).
  ASSERT_EQ(
      name_of(q.delete_batch(
          std::vector<HandleEntry>{{"again", got[0].receipt_handle, 0}, {"third", got[2].receipt_handle, 0}}, results)),
      "ok");
  EXPECT_EQ(name_of(results[0].error), stale_delete());
  EXPECT_EQ(name_of(results[1].error), "ok");
  EXPECT_EQ(q.counts().in_flight, 0u);

  EXPECT_EQ(name_of(q.delete_batch(std::vector<HandleEntry>{}, results)), "empty_batch_request");
  EXPECT_EQ(name_of(q.delete_batch(std::vector<HandleEntry>(11, HandleEntry{"x", "y", 0}), results)),
            "too_many_entries_in_batch");
}

TEST_F(Batches, ChangeVisibilityBatchWithOneBadHandle) {
  Queue q = make_queue("q");
  std::vector<BatchEntryResult> results;
  ASSERT_EQ(name_of(q.send_batch(entries(3), results)), "ok");
  auto got = receive_now(q, 3);
  ASSERT_EQ(got.size(), 3u);

  const std::vector<HandleEntry> batch{{"now", got[0].receipt_handle, 0},
                                       {"bad", std::string(40, 'f'), 0},
                                       {"later", got[1].receipt_handle, 600},
                                       {"toolong", got[2].receipt_handle, 43201}};
  ASSERT_EQ(name_of(q.change_visibility_batch(batch, results)), "ok");
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(name_of(results[0].error), "ok");
  EXPECT_EQ(name_of(results[1].error), "invalid_receipt_handle");
  EXPECT_EQ(name_of(results[2].error), "ok");
  EXPECT_EQ(name_of(results[3].error), "invalid_parameter_value");

  EXPECT_EQ(q.counts().visible, 1u);
  EXPECT_EQ(q.counts().in_flight, 2u);
  auto again = receive_now(q);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message_id, got[0].message_id);

  auto duplicate = batch;
  duplicate[1].id = "now";
  EXPECT_EQ(name_of(q.change_visibility_batch(duplicate, results)), "batch_entry_ids_not_distinct");
}

}  // namespace
}  // namespace shmq::test
