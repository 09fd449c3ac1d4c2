// The SIGBUS guard: a registered mapping whose file shrinks reads zeros and
// is marked faulted; any other SIGBUS still does what it did without the guard
// (the handler installed before, or death by SIGBUS). Each case runs in a
// forked child, which installs the guard (the test process never does) and
// whose wait status is the verdict.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "fault_guard.hpp"
#include "queue_core.hpp"
#include "test_segment.hpp"

namespace shmq {
namespace {

using detail::FaultGuard;

// AddressSanitizer and ThreadSanitizer install a SIGBUS handler of their
// own (handle_sigbus=1): a fault that is not the guard's ends in their report
// and their exit, not in death by SIGBUS.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitizer = true;
#else
constexpr bool kSanitizer = false;
#endif
#else
constexpr bool kSanitizer = false;
#endif

const std::size_t kPage = static_cast<std::size_t>(::getpagesize());

// Runs `body` in a child; returns its wait status. The child's exit code is
// what body returns (0: every check held).
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

bool exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
bool died_of(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

// A file of `pages` pages, each filled with its number + 1, mapped shared.
struct MappedFile {
  explicit MappedFile(std::size_t pages) : bytes(pages * kPage) {
    fd = ::memfd_create("fault-guard-test", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return;
    base = static_cast<volatile std::uint8_t*>(p);
    for (std::size_t i = 0; i < pages; ++i) std::memset(const_cast<std::uint8_t*>(base) + i * kPage, int(i + 1), kPage);
  }
  bool ok() const { return base != nullptr; }
  bool shrink_to(std::size_t pages) const { return ::ftruncate(fd, static_cast<off_t>(pages * kPage)) == 0; }
  volatile std::uint8_t* base = nullptr;
  std::size_t bytes;
  int fd = -1;
};

TEST(FaultGuard, TruncatedRegisteredMappingReadsZerosAndIsMarkedFaulted) {
  const int status = in_child([] {
    if (!FaultGuard::install()) return 10;
    MappedFile f(4);
    if (!f.ok()) return 11;
    FaultGuard::Mapping* m = FaultGuard::add(const_cast<std::uint8_t*>(f.base), f.bytes);
    if (m == nullptr || FaultGuard::faulted(m) || FaultGuard::faults() != 0) return 12;
    if (!f.shrink_to(2)) return 13;
    if (f.base[2 * kPage + 7] != 0) return 1;  // a missing page: zeros, not SIGBUS
    if (!FaultGuard::faulted(m) || FaultGuard::faults() != 1) return 2;
    if (f.base[3 * kPage] != 0 || f.base[kPage] != 2) return 3;  // zeros from the fault on; before it, the file
    f.base[3 * kPage] = 9;                                       // writable, privately
    if (f.base[3 * kPage] != 9 || f.base[0] != 1) return 4;
    if (FaultGuard::faults() != 1) return 5;
    FaultGuard::remove(m);
    return 0;
  });
  EXPECT_TRUE(exited_with(status, 0)) << "child status " << status;
}

TEST(FaultGuard, TruncatedSegmentReadsZerosAndIsFaulted) {
  const int status = in_child([] {
    if (!FaultGuard::install()) return 10;
    test::TestSegment t(64, 2 << 20);
    detail::Segment& s = t.segment();
    if (s.faulted()) return 11;
    if (::ftruncate(s.fd(), 4096) != 0) return 12;  // the header alone
    const auto* tail = static_cast<const volatile std::uint8_t*>(s.base()) + s.size() - 1;
    if (*tail != 0) return 1;
    if (!s.faulted() || s.intact()) return 2;
    return 0;
  });
  EXPECT_TRUE(exited_with(status, 0)) << "child status " << status;
}

TEST(FaultGuard, FaultOutsideAnyRegisteredMappingStillKills) {
  const int status = in_child([] {
    if (!FaultGuard::install()) return 10;
    MappedFile registered(2);
    MappedFile other(2);
    if (!registered.ok() || !other.ok()) return 11;
    FaultGuard::Mapping* m = FaultGuard::add(const_cast<std::uint8_t*>(registered.base), registered.bytes);
    if (m == nullptr || !other.shrink_to(0)) return 12;
    return int{other.base[kPage]};  // SIGBUS, not ours
  });
  if (kSanitizer) {
    // The sanitizer's handler (installed before the guard) gets it, reports
    // and ends the process its way.
    EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) <= 12) << "child status " << status;
  } else {
    EXPECT_TRUE(died_of(status, SIGBUS)) << "child status " << status;
  }
}

TEST(FaultGuard, SigbusSentByAProcessIsNotAbsorbed) {
  const int status = in_child([] {
    if (!FaultGuard::install()) return 10;
    MappedFile f(2);
    if (!f.ok() || FaultGuard::add(const_cast<std::uint8_t*>(f.base), f.bytes) == nullptr) return 11;
    ::kill(::getpid(), SIGBUS);
    return 0;
  });
  if (kSanitizer) {
    EXPECT_FALSE(exited_with(status, 0)) << "child status " << status;
  } else {
    EXPECT_TRUE(died_of(status, SIGBUS)) << "child status " << status;
  }
}

TEST(FaultGuard, HandlerInstalledBeforeGetsFaultsNotOurs) {
  const int status = in_child([] {
    struct sigaction act {};
    act.sa_handler = [](int) { ::_exit(42); };
    sigemptyset(&act.sa_mask);
    if (::sigaction(SIGBUS, &act, nullptr) != 0 || !FaultGuard::install()) return 10;
    MappedFile f(2);
    if (!f.ok() || !f.shrink_to(0)) return 11;
    return int{f.base[kPage]};  // not registered: the earlier handler's
  });
  EXPECT_TRUE(exited_with(status, 42)) << "child status " << status;
}

TEST(FaultGuard, FaultsAreFoundWhileOtherThreadsRegisterAndRemove) {
  const int status = in_child([] {
    if (!FaultGuard::install()) return 10;
    // More mappings than one chunk of the registry holds.
    std::vector<MappedFile> files;
    files.reserve(200);
    for (int i = 0; i < 200; ++i) files.emplace_back(2);
    std::vector<FaultGuard::Mapping*> slots;
    for (auto& f : files) {
      if (!f.ok()) return 11;
      slots.push_back(FaultGuard::add(const_cast<std::uint8_t*>(f.base), f.bytes));
    }
    std::atomic<bool> stop{false};
    std::thread churn([&] {
      // Registers and removes a range nobody touches, again and again.
      std::vector<std::uint8_t> scratch(kPage);
      while (!stop.load()) FaultGuard::remove(FaultGuard::add(scratch.data(), scratch.size()));
    });
    int failures = 0;
    for (std::size_t i = 0; i < files.size(); i += 7) {
      if (!files[i].shrink_to(1)) return 12;
      if (files[i].base[kPage + 1] != 0 || !FaultGuard::faulted(slots[i])) ++failures;
    }
    stop = true;
    churn.join();
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (FaultGuard::faulted(slots[i]) != (i % 7 == 0)) ++failures;
    }
    return failures == 0 ? 0 : 1;
  });
  EXPECT_TRUE(exited_with(status, 0)) << "child status " << status;
}

TEST(FaultGuard, LibraryDoesNotInstallIt) {
  const int status = in_child([] {
    test::TestSegment t;  // maps and registers a segment
    struct sigaction now {};
    if (::sigaction(SIGBUS, nullptr, &now) != 0) return 10;
    // Under a sanitizer its own handler is there; the guard is not.
    return !FaultGuard::installed() && (kSanitizer || now.sa_handler == SIG_DFL) ? 0 : 1;
  });
  EXPECT_TRUE(exited_with(status, 0)) << "child status " << status;
}

}  // namespace
}  // namespace shmq
