// SHA-256 as deduplication ids and content-based deduplication use it: the
// standard's test vectors, whole or in parts, and from several threads at
// once (each thread keeps its own context).
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "digest.hpp"

namespace shmq::detail {
namespace {

std::string hex(const Sha256& d) { return to_hex(d.data(), d.size()); }

TEST(Sha256, StandardVectors) {
  EXPECT_EQ(hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256({"abc"})), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256({"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"})),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // A million 'a's: many blocks, as a content-based deduplication hashes a
  // large body.
  EXPECT_EQ(hex(sha256({std::string(1'000'000, 'a')})),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // ... and in parts that cut across block boundaries.
  EXPECT_EQ(hex(sha256({std::string(63, 'a'), std::string(1, 'a'), std::string(999'936, 'a')})),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PartsHashAsTheirConcatenation) {
  EXPECT_EQ(sha256({"ab", "", "c"}), sha256({"abc"}));
  EXPECT_EQ(sha256({"g", "group", std::string_view("\0", 1), "id"}), sha256({std::string("ggroup\0id", 9)}));
  EXPECT_NE(sha256({"abc"}), sha256({"abd"}));
}

TEST(Sha256, ThreadsHashAtOnceWithoutMixingUp) {
  const Sha256 abc = sha256({"abc"});
  const Sha256 empty = sha256({});
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (sha256({"a", "b", "c"}) != abc || sha256({""}) != empty) ++wrong[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace shmq::detail
