// Segments the daemon finds in /dev/shm are untrusted: corrupt, truncated or
// planted by another user. One bad segment takes down at most its own queue;
// the daemon keeps serving the others, reports it, and delete-queue frees its
// name.
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "segment.hpp"
#include "segment_layout.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

constexpr uid_t kNobody = 65534;

std::string segment_path(const std::string& ns, const std::string& queue) {
  return detail::Segment::path(detail::Segment::shm_name(ns, queue));
}

// Maps a queue's segment file as a raw file and lets `edit` change its header.
void edit_header(const std::string& ns, const std::string& queue,
                 const std::function<void(detail::SegmentHeader&)>& edit) {
  const std::string path = segment_path(ns, queue);
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  void* base = ::mmap(nullptr, sizeof(detail::SegmentHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(base, MAP_FAILED);
  edit(*static_cast<detail::SegmentHeader*>(base));
  ::munmap(base, sizeof(detail::SegmentHeader));
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class SegmentValidation : public ::testing::Test {
 protected:
  // Two queues with a message each: "good" and the one a test damages.
  void make_queues(const std::string& bad) {
    Client client(Client::Options{daemon_.ns()});
    for (const std::string& name : {std::string("good"), bad}) {
      client.create_queue(name, {}, kSmallQueue);
      Queue q = client.open_queue(name);
      SendResult sent;
      ASSERT_EQ(name_of(q.send("message in " + name, sent)), "ok");
    }
  }

  // The daemon serves "good" (its message comes back), does not list `bad`,
  // refuses to create it over the refused segment, and after delete-queue
  // creates it afresh.
  void expect_refused_alone(const std::string& bad) {
    Client client(Client::Options{daemon_.ns()});
    const std::vector<std::string> names = client.list_queues();
    EXPECT_TRUE(contains(names, "good"));
    EXPECT_FALSE(contains(names, bad)) << bad << " is still served";
    Queue good = client.open_queue("good");
    std::vector<Message> got;
    ReceiveOptions options;
    options.wait_time = std::chrono::milliseconds(0);
    ASSERT_EQ(name_of(good.receive(got, options)), "ok");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, "message in good");

    const ProcessResult refused = shmqctl(daemon_.ns(), {"create-queue", bad});
    EXPECT_NE(refused.exit_code, 0) << "created " << bad << " over its refused segment";
    const ProcessResult deleted = shmqctl(daemon_.ns(), {"delete-queue", bad});
    EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
    EXPECT_EQ(thrown_by([&] { client.create_queue(bad, {}, kSmallQueue); }), "ok");
    Queue again = client.open_queue(bad);
    SendResult sent;
    EXPECT_EQ(name_of(again.send("fresh", sent)), "ok");
  }

  DaemonProcess daemon_{unique_namespace()};
};

TEST_F(SegmentValidation, HugeUnusedFromIsRefusedAndOtherQueuesServed) {
  make_queues("bad");
  daemon_.stop();
  edit_header(daemon_.ns(), "bad", [](detail::SegmentHeader& h) { h.roots.unused_from = 0xfffffff0u; });
  daemon_.start();
  expect_refused_alone("bad");
}

TEST_F(SegmentValidation, HugeHeapSizeIsRefusedAndOtherQueuesServed) {
  make_queues("bad");
  daemon_.stop();
  edit_header(daemon_.ns(), "bad", [](detail::SegmentHeader& h) { h.roots.heap_size = 0x7ffffff0u; });
  daemon_.start();
  expect_refused_alone("bad");
}

TEST_F(SegmentValidation, FreeListHeadOutOfRangeIsRefused) {
  make_queues("bad");
  daemon_.stop();
  edit_header(daemon_.ns(), "bad", [](detail::SegmentHeader& h) { h.roots.free_head = 0x00abcdefu; });
  daemon_.start();
  expect_refused_alone("bad");
}

TEST_F(SegmentValidation, LockHeldByThreadThatDoesNotExistDoesNotHangStart) {
  make_queues("bad");
  daemon_.stop();
  // A lock word naming a thread id no process has (pid_max is at most 2^22).
  edit_header(daemon_.ns(), "bad", [](detail::SegmentHeader& h) {
    h.mutex.__data.__lock = 0x3ffffff0;
    h.mutex.__data.__owner = 0x3ffffff0;
  });
  daemon_.start();  // throws if the daemon does not answer within 10 s
  expect_refused_alone("bad");
}

TEST_F(SegmentValidation, SegmentTruncatedWhileAttachedFailsOnlyItsQueue) {
  make_queues("bad");
  ASSERT_EQ(::truncate(segment_path(daemon_.ns(), "bad").c_str(), 4096), 0);  // the header alone is left
  // A client process that exits makes the daemon scan every queue for slots
  // it left reserved: the truncated one must not take the daemon down.
  const std::string ns = daemon_.ns();
  ASSERT_EQ(wait_child(fork_child([&] {
              Client client(Client::Options{ns});
              return 0;
            })),
            0);
  Client client(Client::Options{daemon_.ns()});
  EXPECT_TRUE(eventually([&] { return !contains(client.list_queues(), "bad"); }))
      << "the truncated queue is still served";
  expect_refused_alone("bad");
  EXPECT_TRUE(daemon_.running());
}

TEST_F(SegmentValidation, FileOfAnotherUserIsNotAttached) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  make_queues("planted");
  daemon_.stop();
  // Another user replaces the segment by a copy of it that anyone may write.
  const std::string path = segment_path(daemon_.ns(), "planted");
  std::string bytes;
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    bytes.resize(static_cast<std::size_t>(st.st_size));
    ASSERT_EQ(::pread(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  ASSERT_EQ(::unlink(path.c_str()), 0);
  const pid_t child = fork_child([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 4;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd < 0) return 1;
    const bool written =
        ::fchmod(fd, 0666) == 0 && ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::close(fd);
    return written ? 0 : 2;
  });
  ASSERT_EQ(wait_child(child), 0);
  daemon_.start();
  expect_refused_alone("planted");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid()) << "the queue made after delete-queue is the daemon's";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SegmentValidation, SymbolicLinkUnderAQueueNameIsNotFollowed) {
  make_queues("target");
  daemon_.stop();
  // A link named as a queue, to a valid segment of another name's file.
  const std::string target = segment_path(daemon_.ns(), "target");
  const std::string moved = "/dev/shm/shmq-test-elsewhere." + daemon_.ns();
  ASSERT_EQ(::rename(target.c_str(), moved.c_str()), 0);
  ASSERT_EQ(::symlink(moved.c_str(), target.c_str()), 0);
  daemon_.start();
  expect_refused_alone("target");
  ::unlink(moved.c_str());
}

// --allow-gid with --shm-mode 0660: a member of the group uses the queues.
int send_and_receive_as_group_member(const std::string& ns, gid_t gid, std::string& error) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(kNobody) != 0) return 4;
  try {
    Client client(Client::Options{ns});
    Queue q = client.open_queue("shared");
    SendResult sent;
    if (q.send("from the group", sent)) return 2;
    std::vector<Message> got;
    ReceiveOptions options;
    options.wait_time = std::chrono::milliseconds(0);
    if (q.receive(got, options) || got.size() != 1 || got[0].body != "from the group") return 3;
    if (q.delete_message(got[0].receipt_handle)) return 5;
  } catch (const std::system_error& e) {
    error = e.what();
    return 1;
  }
  return 0;
}

// send_and_receive_as_group_member in a forked child (it changes the
// process's user and group): its exit status, and its error text in `error`.
int in_child_as_group_member(const std::string& ns, gid_t group, std::string& error) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  const pid_t child = fork_child([&] {
    ::close(pipe_fds[0]);
    std::string text;
    const int rc = send_and_receive_as_group_member(ns, group, text);
    (void)!::write(pipe_fds[1], text.data(), text.size());
    return rc;
  });
  ::close(pipe_fds[1]);
  error.assign(4096, '\0');
  const ssize_t n = ::read(pipe_fds[0], error.data(), error.size());
  error.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  ::close(pipe_fds[0]);
  return wait_child(child);
}

TEST(AllowedGroup, MemberCanSendAndReceive) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  constexpr gid_t kGroup = 4711;
  DaemonProcess daemon(unique_namespace(), {"--allow-gid", std::to_string(kGroup), "--shm-mode", "0660"});
  Client(Client::Options{daemon.ns()}).create_queue("shared", {}, kSmallQueue);
  struct stat st {};
  ASSERT_EQ(::stat(segment_path(daemon.ns(), "shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kGroup);
  const std::string ns = daemon.ns();
  std::string error;
  const int rc = in_child_as_group_member(ns, kGroup, error);
  EXPECT_EQ(rc, 0) << error;
}

TEST(AllowedGroup, RefusalNamesTheSegmentFileAndItsPermissions) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  constexpr gid_t kGroup = 4712;
  // The group may connect, but the segments stay owner-only (0600).
  DaemonProcess daemon(unique_namespace(), {"--allow-gid", std::to_string(kGroup)});
  Client(Client::Options{daemon.ns()}).create_queue("shared", {}, kSmallQueue);
  const std::string ns = daemon.ns();
  std::string error;
  const int rc = in_child_as_group_member(ns, kGroup, error);
  ASSERT_EQ(rc, 1) << "expected a refusal";
  EXPECT_NE(error.find(segment_path(ns, "shared")), std::string::npos) << error;
  EXPECT_NE(error.find("mode 0600"), std::string::npos) << error;
  EXPECT_EQ(error.find("shmqd"), std::string::npos) << error;
}

}  // namespace
}  // namespace shmq::test
