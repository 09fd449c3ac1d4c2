// Queue tags: TagQueue, UntagQueue, ListQueueTags and tags given to
// CreateQueue, within SQS's limits (50 tags, keys of 1..128 characters,
// values of 0..256).
#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using QueueTags = DaemonTest;

// `count` characters of two bytes each in UTF-8.
std::string two_byte_characters(std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += "\xc3\xa9";  // é
  return out;
}

TEST_F(QueueTags, TagUntagAndList) {
  client_.create_queue("q", {}, kSmallQueue, {{"team", "a"}});
  EXPECT_EQ(client_.list_queue_tags("q"), (Tags{{"team", "a"}}));
  client_.tag_queue("q", {{"team", "b"}, {"env", ""}, {"Team", "case matters"}});
  EXPECT_EQ(client_.list_queue_tags("q"), (Tags{{"Team", "case matters"}, {"env", ""}, {"team", "b"}}));
  client_.untag_queue("q", {"team", "not-there"});
  EXPECT_EQ(client_.list_queue_tags("q"), (Tags{{"Team", "case matters"}, {"env", ""}}));
  client_.untag_queue("q", {"Team", "env"});
  EXPECT_TRUE(client_.list_queue_tags("q").empty());

  EXPECT_EQ(thrown_by([&] { client_.tag_queue("q", {}); }), "missing_parameter");
  EXPECT_EQ(thrown_by([&] { client_.untag_queue("q", {}); }), "missing_parameter");
  EXPECT_EQ(thrown_by([&] { client_.tag_queue("missing", {{"a", "b"}}); }), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.untag_queue("missing", {"a"}); }), "queue_does_not_exist");
  EXPECT_EQ(thrown_by([&] { client_.list_queue_tags("missing"); }), "queue_does_not_exist");
}

TEST_F(QueueTags, KeyAndValueLengths) {
  client_.create_queue("q", {}, kSmallQueue);
  const std::vector<Tags> good{
      {{std::string(128, 'k'), "v"}},
      {{"k", std::string(256, 'v')}},
      {{two_byte_characters(128), two_byte_characters(256)}},  // characters, not bytes
  };
  for (const Tags& tags : good) {
    EXPECT_EQ(thrown_by([&] { client_.tag_queue("q", tags); }), "ok") << tags.begin()->first.size();
  }
  const std::vector<Tags> bad{
      {{"", "v"}},
      {{std::string(129, 'k'), "v"}},
      {{"k", std::string(257, 'v')}},
      {{two_byte_characters(129), "v"}},
      {{"fine", "ok"}, {"k2", std::string(257, 'v')}},  // one bad tag: none is added
  };
  for (const Tags& tags : bad) {
    EXPECT_EQ(thrown_by([&] { client_.tag_queue("q", tags); }), "invalid_parameter_value");
  }
  EXPECT_EQ(client_.list_queue_tags("q").size(), 3u);
  EXPECT_FALSE(client_.list_queue_tags("q").count("fine"));
}

TEST_F(QueueTags, AtMostFiftyTags) {
  Tags fifty;
  for (int i = 0; i < 50; ++i) fifty["k" + std::to_string(i)] = "v";
  client_.create_queue("q", {}, kSmallQueue, fifty);
  EXPECT_EQ(client_.list_queue_tags("q").size(), 50u);
  // Replacing a value is no new tag; a 51st is refused, with the others of its call.
  client_.tag_queue("q", {{"k0", "new"}});
  EXPECT_EQ(thrown_by([&] { client_.tag_queue("q", {{"k1", "changed"}, {"k50", "v"}}); }), "invalid_parameter_value");
  const Tags now = client_.list_queue_tags("q");
  EXPECT_EQ(now.size(), 50u);
  EXPECT_EQ(now.at("k0"), "new");
  EXPECT_EQ(now.at("k1"), "v");
  client_.untag_queue("q", {"k49"});
  client_.tag_queue("q", {{"k50", "v"}});
  EXPECT_EQ(client_.list_queue_tags("q").size(), 50u);

  // A create with too many tags, or a bad one, creates nothing.
  Tags fifty_one = fifty;
  fifty_one["k50"] = "v";
  EXPECT_EQ(thrown_by([&] { client_.create_queue("r", {}, kSmallQueue, fifty_one); }), "invalid_parameter_value");
  EXPECT_EQ(thrown_by([&] { client_.create_queue("r", {}, kSmallQueue, {{"", "v"}}); }), "invalid_parameter_value");
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
}

}  // namespace
}  // namespace shmq::test
