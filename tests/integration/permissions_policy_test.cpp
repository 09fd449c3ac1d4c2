// AddPermission and RemovePermission: statements in the queue's Policy
// attribute, written as SQS writes them, and SQS's checks of labels,
// accounts and actions.
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using nlohmann::json;
using QueuePermissions = DaemonTest;

const std::string kQueueArn = "arn:aws:sqs:us-east-1:000000000000:q";

json policy_of(Client& client, const std::string& queue) {
  const Attributes got = client.get_queue_attributes(queue, {"Policy"});
  if (!got.count("Policy")) return nullptr;
  json doc = json::parse(got.at("Policy"), nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << got.at("Policy");
  return doc;
}

TEST_F(QueuePermissions, AddPermissionWritesAStatement) {
  client_.create_queue("q", {}, kSmallQueue);
  client_.add_permission("q", "AliceSends", {"111122223333", "444455556666"}, {"SendMessage", "ReceiveMessage"});
  const json policy = policy_of(client_, "q");
  ASSERT_TRUE(policy.is_object());
  EXPECT_EQ(policy.at("Version"), "2008-10-17") << "as Amazon SQS writes it";
  EXPECT_EQ(policy.at("Id"), kQueueArn + "/SQSDefaultPolicy");
  ASSERT_EQ(policy.at("Statement").size(), 1u);
  const json& s = policy.at("Statement")[0];
  EXPECT_EQ(s.at("Sid"), "AliceSends");
  EXPECT_EQ(s.at("Effect"), "Allow");
  EXPECT_EQ(s.at("Principal").at("AWS"), (json{"arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root"}));
  EXPECT_EQ(s.at("Action"), (json{"SQS:SendMessage", "SQS:ReceiveMessage"}));
  EXPECT_EQ(s.at("Resource"), kQueueArn);

  client_.add_permission("q", "all_of_it", {"111122223333"}, {"*"});
  const json two = policy_of(client_, "q");
  ASSERT_EQ(two.at("Statement").size(), 2u);
  EXPECT_EQ(two.at("Statement")[0], s);
  EXPECT_EQ(two.at("Statement")[1].at("Sid"), "all_of_it");
  // One principal and one action: strings, as Amazon SQS writes them.
  EXPECT_EQ(two.at("Statement")[1].at("Action"), "SQS:*");
  EXPECT_EQ(two.at("Statement")[1].at("Principal").at("AWS"), "arn:aws:iam::111122223333:root");
}

TEST_F(QueuePermissions, RemovePermissionRemovesTheStatement) {
  client_.create_queue("q", {}, kSmallQueue);
  client_.add_permission("q", "one", {"111122223333"}, {"SendMessage"});
  client_.add_permission("q", "two", {"111122223333"}, {"DeleteMessage"});
  client_.remove_permission("q", "one");
  const json policy = policy_of(client_, "q");
  ASSERT_EQ(policy.at("Statement").size(), 1u);
  EXPECT_EQ(policy.at("Statement")[0].at("Sid"), "two");
  EXPECT_EQ(thrown_by([&] { client_.remove_permission("q", "one"); }), "invalid_parameter_value");
  client_.remove_permission("q", "two");
  EXPECT_TRUE(policy_of(client_, "q").is_null()) << "the last statement went; so does the Policy";
  EXPECT_EQ(thrown_by([&] { client_.remove_permission("q", "two"); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.remove_permission("missing", "two"); }), "queue_does_not_exist");
}

TEST_F(QueuePermissions, LabelsAreCheckedAndUnique) {
  client_.create_queue("q", {}, kSmallQueue);
  client_.add_permission("q", std::string(80, 'L'), {"111122223333"}, {"SendMessage"});
  client_.add_permission("q", "Az09-_", {"111122223333"}, {"SendMessage"});
  for (const std::string& bad : {std::string(), std::string(81, 'L'), std::string("has space"), std::string("a.b")}) {
    EXPECT_EQ(thrown_by([&] { client_.add_permission("q", bad, {"111122223333"}, {"SendMessage"}); }),
              "invalid_parameter_value")
        << "'" << bad << "'";
  }
  const json before = policy_of(client_, "q");
  EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "Az09-_", {"444455556666"}, {"ReceiveMessage"}); }),
            "invalid_parameter_value");
  EXPECT_EQ(policy_of(client_, "q"), before) << "a refused AddPermission changed the policy";
}

TEST_F(QueuePermissions, AccountsAndActionsAreChecked) {
  client_.create_queue("q", {}, kSmallQueue);
  const std::vector<std::string> account{"111122223333"};
  for (const char* action : {"CreateQueue", "DeleteQueue", "SetQueueAttributes", "sqs:SendMessage", "Bogus", ""}) {
    EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "L", account, {action}); }), "invalid_parameter_value")
        << action;
  }
  for (const char* bad : {"1234", "1111222233334", "11112222333x"}) {
    EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "L", {bad}, {"SendMessage"}); }), "invalid_parameter_value")
        << bad;
  }
  EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "L", {}, {"SendMessage"}); }), "missing_parameter");
  EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "L", account, {}); }), "missing_parameter");
  const std::vector<std::string> seven{
      "SendMessage",        "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility",
      "GetQueueAttributes", "GetQueueUrl",    "PurgeQueue"};
  std::vector<std::string> eight = seven;
  eight.push_back("ListDeadLetterSourceQueues");
  EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "L", account, eight); }), "over_limit");
  EXPECT_TRUE(policy_of(client_, "q").is_null());
  client_.add_permission("q", "L", account, seven);
  EXPECT_EQ(policy_of(client_, "q").at("Statement")[0].at("Action").size(), 7u);
  EXPECT_EQ(thrown_by([&] { client_.add_permission("missing", "L", account, {"SendMessage"}); }),
            "queue_does_not_exist");
}

TEST_F(QueuePermissions, EditsAPolicyTheUserSet) {
  client_.create_queue("q", {}, kSmallQueue);
  // IAM allows a single statement object; other fields stay as they were.
  const json mine{{"Version", "2012-10-17"},
                  {"Id", "mine"},
                  {"Statement", {{"Sid", "Theirs"}, {"Effect", "Deny"}, {"Principal", "*"}, {"Action", "SQS:*"}}}};
  client_.set_queue_attributes("q", {{"Policy", mine.dump()}});
  client_.add_permission("q", "Mine", {"111122223333"}, {"GetQueueUrl"});
  const json policy = policy_of(client_, "q");
  EXPECT_EQ(policy.at("Id"), "mine");
  ASSERT_EQ(policy.at("Statement").size(), 2u);
  EXPECT_EQ(policy.at("Statement")[0], mine.at("Statement"));
  EXPECT_EQ(policy.at("Statement")[1].at("Sid"), "Mine");
  EXPECT_EQ(thrown_by([&] { client_.add_permission("q", "Theirs", {"111122223333"}, {"GetQueueUrl"}); }),
            "invalid_parameter_value");
  client_.remove_permission("q", "Theirs");
  EXPECT_EQ(policy_of(client_, "q").at("Statement").size(), 1u);
}

}  // namespace
}  // namespace shmq::test
