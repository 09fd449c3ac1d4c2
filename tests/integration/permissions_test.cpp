// Who may use a daemon: its own user (and root), not others.
#include <grp.h>
#include <unistd.h>

#include <string>

#include "test_util.hpp"

namespace shmq::test {
namespace {

using Permissions = DaemonTest;

constexpr uid_t kNobody = 65534;

// What a Client constructor threw in a child running as another user:
// 0 permission_denied, 1 no error, 2 daemon_unavailable, 3 another error,
// 4 the child could not change user.
int connect_as_nobody(const std::string& ns) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 4;
  const std::string error = thrown_by([&] { Client client(Client::Options{ns}); });
  if (error == "permission_denied") return 0;
  if (error == "ok") return 1;
  if (error == "daemon_unavailable") return 2;
  return 3;
}

TEST_F(Permissions, AnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  client_.create_queue("q", {}, kSmallQueue);
  // Several tries: the refusal must not depend on who is faster, the daemon
  // closing the connection or the client sending its hello.
  for (int i = 0; i < 20; ++i) {
    const std::string queue_ns = ns();
    const pid_t child = fork_child([&] { return connect_as_nobody(queue_ns); });
    const int result = wait_child(child);
    ASSERT_EQ(result, 0) << "try " << i << ": 1 = accepted, 2 = daemon_unavailable, 3 = other error, 4 = setuid failed";
  }
  // The daemon's own user is still served.
  EXPECT_EQ(client_.list_queues(), (std::vector<std::string>{"q"}));
}

TEST_F(Permissions, AnotherUserCannotMapTheSegments) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  client_.create_queue("q", {}, kSmallQueue);
  const std::string path = "/dev/shm/shmq." + ns() + ".q";
  const pid_t child = fork_child([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 4;
    return ::access(path.c_str(), R_OK) == 0 || ::access(path.c_str(), W_OK) == 0 ? 1 : 0;
  });
  EXPECT_EQ(wait_child(child), 0) << path << " is readable or writable by another user";
}

}  // namespace
}  // namespace shmq::test
