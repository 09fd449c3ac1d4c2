// A queue's segment corrupted while it is attached: any process that can
// write it can change any field at any moment. Whatever one field is changed
// to, the operations that follow must neither crash nor hang, and either
// repair the queue (every message whose send succeeded is still received) or
// answer segment_corrupt from then on. Each case runs in a child process, so
// that a crash or a hang is reported as such instead of ending the suite.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core_harness.hpp"
#include "dedup_table.hpp"
#include "shmq/error.hpp"

namespace shmq {
namespace {

using detail::kNil;

// Runs `body` in a child process; returns what it returns (empty: passed),
// or says that it crashed or did not finish within 20 s.
std::string in_child(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const std::string result = body();
    const char* p = result.data();
    for (std::size_t left = result.size(); left > 0;) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char buf[512];
      const ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    ::close(fds[0]);
    return "hung: the operations did not finish within 20 s";
  }
  for (char buf[512];;) {
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (WIFSIGNALED(status)) return "crashed: signal " + std::to_string(WTERMSIG(status));
  return out;
}

std::uint32_t* heap_slots(test::CoreHarness& q) {
  return reinterpret_cast<std::uint32_t*>(reinterpret_cast<std::uint8_t*>(&q.header()) + q.header().heap_offset);
}
detail::GroupRecord* group_records(test::CoreHarness& q) {
  return reinterpret_cast<detail::GroupRecord*>(reinterpret_cast<std::uint8_t*>(&q.header()) +
                                                q.header().groups_offset);
}
std::uint32_t* group_buckets(test::CoreHarness& q) {
  return reinterpret_cast<std::uint32_t*>(reinterpret_cast<std::uint8_t*>(&q.header()) +
                                          q.header().group_buckets_offset);
}
std::uint32_t* dedup_buckets(test::CoreHarness& q) {
  return reinterpret_cast<std::uint32_t*>(reinterpret_cast<std::uint8_t*>(&q.header()) +
                                          q.header().dedup_buckets_offset);
}
detail::ReceiveAttempt* attempts(test::CoreHarness& q) {
  return reinterpret_cast<detail::ReceiveAttempt*>(reinterpret_cast<std::uint8_t*>(&q.header()) +
                                                   q.header().attempts_offset);
}
detail::FreeBlock* free_block(test::CoreHarness& q, std::uint64_t offset) {
  return reinterpret_cast<detail::FreeBlock*>(q.core().payload(offset));
}

const detail::DedupKey kAttempt = detail::dedup_key(false, {}, "attempt-1");

// A queue with messages in every state: ready, in flight, delayed, and a
// slot a sender holds; FIFO ones in two groups, received with an attempt id.
struct Loaded {
  explicit Loaded(bool fifo) : q(16, 4 << 20, fifo) {}
  test::CoreHarness q;
  std::set<std::string> sent;  // sends that succeeded
  std::vector<detail::Delivery> in_flight;

  std::string load() {
    const bool fifo = q.core().fifo();
    for (const char* body : {"m0", "m1", "m2", "m3"}) {
      const std::string group = fifo ? (body[1] < '2' ? "g0" : "g1") : "";
      if (q.send(body, 0, 1, group, fifo ? body : "")) return std::string("setup: send ") + body;
      sent.insert(body);
    }
    // In flight: the first of each FIFO group; the first two of a standard queue.
    in_flight = q.receive(2, 30, fifo ? &kAttempt : nullptr);
    if (in_flight.size() != 2) return "setup: receive";
    if (!fifo) {
      if (q.send("delayed", 60)) return "setup: delayed send";
      sent.insert("delayed");
    }
    q.reserve_only(100, 7);  // a sender that will be found dead
    return {};
  }

  // Every operation once, on a corrupted segment: none may crash or hang.
  void operate() {
    (void)q.send("after");
    (void)q.send(std::string(70000, 'x'));  // a larger block: other free lists
    (void)q.receive(10, 30, q.core().fifo() ? &kAttempt : nullptr);
    (void)q.core().change_visibility(in_flight[1].handle, 0, q.now());
    (void)q.core().remove(in_flight[0].handle);
    q.advance_ms(31'000);
    (void)q.core().expire_due(q.now());
    (void)q.core().reclaim_writing([](std::uint32_t pid) { return pid == 7; });
    (void)q.core().reaper_turn();
    detail::Delivery d{};
    (void)q.core().next_redrive(d);
    (void)q.core().return_redrives();
    (void)q.core().stats();
  }

  // Repaired or refused, as the header says.
  std::string verdict() {
    const std::error_code probe = q.send("probe");
    if (probe == Errc::segment_corrupt) {
      std::error_code ec;
      if (!q.receive(10, 30, nullptr, &ec).empty() || ec != Errc::segment_corrupt) {
        return "refused, but a receive did not answer segment_corrupt";
      }
      if (q.core().remove(in_flight[1].handle) != Errc::segment_corrupt) return "refused, but a delete worked";
      if (q.core().change_visibility(in_flight[1].handle, 5, q.now()) != Errc::segment_corrupt) {
        return "refused, but a visibility change worked";
      }
      if (q.send("again") != Errc::segment_corrupt) return "refused, but a later send worked";
      (void)q.core().purge();
      (void)q.core().expire_due(q.now());
      return {};
    }
    if (probe) return "the probe send failed: " + probe.message();
    // Repaired: everything sent and not deleted comes out (at least once).
    std::set<std::string> received;
    for (int round = 0, empty = 0; round < 40 && empty < 3; ++round) {
      const auto got = q.receive(10);
      empty = got.empty() ? empty + 1 : 0;
      for (const auto& d : got) {
        received.insert(q.body(d));
        (void)q.core().remove(d.handle);
      }
      q.advance_ms(61'000);
    }
    for (const std::string& body : sent) {
      if (body != "m0" && !received.count(body)) return "repaired, but message " + body + " was lost";
    }
    if (!received.count("probe")) return "repaired, but the probe message was lost";
    (void)q.core().purge();
    return {};
  }
};

struct Corruption {
  const char* name;
  bool fifo;
  void (*apply)(test::CoreHarness& q, Loaded& l);
};

// Descriptors: 0..3 the messages m0..m3; on a standard queue 4 the delayed
// one and 5 the held slot; m0 and m1 (standard) or m0 and m2 (FIFO) in flight.
const Corruption kCorruptions[] = {
    {"HeapSizeHuge", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.heap_size = 0xfffffff0u; }},
    {"HeapSizeInRangeButWrong", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.heap_size = 16; }},
    {"FreeHeadOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.free_head = 0x00fffff0u; }},
    {"FreeHeadOnALiveMessage", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.free_head = 2; }},
    {"UnusedFromOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.unused_from = 0xffffffffu; }},
    {"ReadyHeadOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.ready_head = 1000; }},
    {"ReadyNextOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.core().descriptor(2).next = 0xdeadbeefu; }},
    {"ReadyListCycle", false, [](test::CoreHarness& q, Loaded&) { q.core().descriptor(3).next = 2; }},
    {"RetentionHeadOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.header().roots.all_head = 0x7ffffff0u; }},
    {"RetentionListCycle", false, [](test::CoreHarness& q, Loaded&) { q.core().descriptor(1).all_next = 0; }},
    {"RedriveHeadOutOfRange", false,
     [](test::CoreHarness& q, Loaded&) { q.header().roots.redrive_head = 0x7ffffff0u; }},
    {"HeapSlotOutOfRange", false, [](test::CoreHarness& q, Loaded&) { heap_slots(q)[0] = 0x7ffffff0u; }},
    {"HeapPosOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.core().descriptor(1).heap_pos = 0x7ffffff0u; }},
    {"ArenaFreeHeadOutOfRange", false,
     [](test::CoreHarness& q, Loaded&) {
       for (auto& head : q.header().roots.arena_free_head) head = 1ull << 40;
     }},
    {"ArenaFreeHeadMisaligned", false,
     [](test::CoreHarness& q, Loaded&) {
       for (auto& head : q.header().roots.arena_free_head) head = (4ull << 20) - 64;  // a block running off the arena
     }},
    {"FreeBlockLinkOutOfRange", false,
     [](test::CoreHarness& q, Loaded&) {
       for (auto head : q.header().roots.arena_free_head) {
         if (head != detail::kNilOffset) free_block(q, head)->next = free_block(q, head)->prev = 1ull << 40;
       }
     }},
    {"FreeBlockLinkCycle", false,
     [](test::CoreHarness& q, Loaded&) {
       for (auto head : q.header().roots.arena_free_head) {
         if (head != detail::kNilOffset) free_block(q, head)->next = head;
       }
       q.header().roots.arena_small_freed = 1;  // so that the next allocation that finds nothing walks them
     }},
    {"BlockOffsetOutOfRange", false,
     [](test::CoreHarness& q, Loaded&) { q.core().descriptor(2).block_offset = 1ull << 40; }},
    {"BlockOrderOutOfRange", false, [](test::CoreHarness& q, Loaded&) { q.core().descriptor(2).block_order = 60; }},
    {"BodyBytesOutOfRange", false,
     [](test::CoreHarness& q, Loaded&) { q.core().descriptor(2).body_bytes = 0xffffff00u; }},
    {"MetadataFieldsOutOfRange", false,
     [](test::CoreHarness& q, Loaded&) {
       q.header().metadata_active = 7;
       q.header().metadata_bytes[0] = q.header().metadata_bytes[1] = 0xffffffffu;
     }},
    {"MutexKindChanged", false, [](test::CoreHarness& q, Loaded&) { q.header().mutex.__data.__kind |= 32; }},
    {"FifoGroupIndexOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) { q.core().descriptor(1).group = 0x00fffff0u; }},
    {"FifoGroupListHeadOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) { group_records(q)[0].head = 0x00fffff0u; }},
    {"FifoGroupNextOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) { q.core().descriptor(0).group_next = 0x00fffff0u; }},
    {"FifoGroupListCycle", true,
     [](test::CoreHarness& q, Loaded&) {
       q.core().descriptor(1).group_next = 0;  // g0: m0 -> m1 -> m0
       q.core().descriptor(0).group_prev = 1;
     }},
    {"FifoRingHeadOutOfRange", true, [](test::CoreHarness& q, Loaded&) { q.header().roots.ring_head = 0x00fffff0u; }},
    {"FifoRingCycle", true,
     [](test::CoreHarness& q, Loaded&) {
       // Both groups on the ring, each other's next, neither with ready messages.
       auto* g = group_records(q);
       q.header().roots.ring_head = 0;
       g[0].ring_next = 1;
       g[1].ring_next = 0;
       g[0].head = g[1].head = kNil;
       g[0].in_ring = g[1].in_ring = 0;
     }},
    {"FifoGroupBucketChainCycle", true,
     [](test::CoreHarness& q, Loaded&) {
       for (std::uint32_t b = 0; b < q.header().group_bucket_count; ++b) group_buckets(q)[b] = 1;
       group_records(q)[0].bucket_next = 1;  // record 0 links to itself
     }},
    {"FifoGroupBucketOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) {
       for (std::uint32_t b = 0; b < q.header().group_bucket_count; ++b) group_buckets(q)[b] = 0x7ffffff0u;
     }},
    {"FifoDedupChainOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) {
       for (std::uint32_t b = 0; b < q.header().dedup_bucket_count; ++b) dedup_buckets(q)[b] = 0x7ffffff0u;
     }},
    {"FifoDedupOldestOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) { q.header().roots.dedup_oldest = 0x7ffffff0u; }},
    {"FifoReceiveAttemptCountAboveTen", true,
     [](test::CoreHarness& q, Loaded&) { attempts(q)[kAttempt.key[0] % detail::kAttemptSlots].count = 11; }},
    {"FifoReceiveAttemptIndexOutOfRange", true,
     [](test::CoreHarness& q, Loaded&) {
       attempts(q)[kAttempt.key[0] % detail::kAttemptSlots].messages[0].index = 0x7ffffff0u;
     }},
};

class RuntimeCorruption : public ::testing::TestWithParam<Corruption> {};

TEST_P(RuntimeCorruption, NeitherCrashesNorHangsAndRepairsOrRefuses) {
  const Corruption& c = GetParam();
  const std::string failure = in_child([&]() -> std::string {
    Loaded l(c.fifo);
    if (std::string setup = l.load(); !setup.empty()) return setup;
    c.apply(l.q, l);
    l.operate();
    return l.verdict();
  });
  EXPECT_EQ(failure, "") << c.name;
}

INSTANTIATE_TEST_SUITE_P(EachField, RuntimeCorruption, ::testing::ValuesIn(kCorruptions),
                         [](const ::testing::TestParamInfo<Corruption>& p) { return p.param.name; });

}  // namespace
}  // namespace shmq
