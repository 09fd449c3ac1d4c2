// The submit ring alone, over a plain buffer: what the consumer sees of the
// producers' entries, in order, once each, with producers and consumers
// killed at any instruction.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "submit_ring.hpp"

namespace shmq {
namespace {

using detail::kSubmitCells;
using detail::SubmitRing;

// The ring's words as a segment lays them out: each on its own cache line.
struct RingWords {
  alignas(64) std::uint32_t tail = 0;
  alignas(64) std::uint32_t head = 0;
  alignas(64) std::uint64_t cells[kSubmitCells];
};

// A cell's word as the ring writes it (segment_layout.hpp): the sequence
// number in the high half, the index in the low half. Tests that simulate a
// process killed between two of the ring's stores write cells with it.
std::uint64_t cell_word(std::uint32_t seq, std::uint32_t index) { return (std::uint64_t{seq} << 32) | index; }

class Ring {
 public:
  explicit Ring(RingWords& w) : w_(w), ring_(w.cells, w.tail, w.head) { SubmitRing::format(w.cells); }

  // A ring whose producers and consumer are at `position`, as after
  // `position` entries went through it (positions wrap at 2^32).
  void start_at(std::uint32_t position) {
    for (std::uint32_t i = 0; i < kSubmitCells; ++i) {
      const std::uint32_t p = position + i;
      w_.cells[p % kSubmitCells] = cell_word(p, 0);
    }
    w_.tail = w_.head = position;
  }

  SubmitRing* operator->() { return &ring_; }

  // Pops what waits, in order (no more than the ring holds, and one more:
  // a broken ring must fail the test, not hang it).
  std::vector<std::uint32_t> drain() {
    std::vector<std::uint32_t> out;
    std::uint32_t index = 0;
    while (out.size() <= kSubmitCells && ring_.peek(index)) {
      out.push_back(index);
      ring_.pop();
    }
    return out;
  }

 private:
  RingWords& w_;
  SubmitRing ring_;
};

std::vector<std::uint32_t> iota(std::uint32_t from, std::uint32_t n) {
  std::vector<std::uint32_t> v(n);
  for (std::uint32_t i = 0; i < n; ++i) v[i] = from + i;
  return v;
}

TEST(SubmitRing, DeliversEntriesInTheOrderTheyWerePushed) {
  RingWords w;
  Ring r(w);
  std::uint32_t index = 0;
  EXPECT_FALSE(r->peek(index)) << "a new ring is empty";
  EXPECT_FALSE(r->nonempty());
  EXPECT_EQ(r->waiting(), 0u);
  for (std::uint32_t i : {7u, 3u, 0u, 0xfffffffeu, 42u}) ASSERT_TRUE(r->push(i));
  EXPECT_TRUE(r->nonempty());
  EXPECT_EQ(r->waiting(), 5u);
  ASSERT_TRUE(r->peek(index));
  EXPECT_EQ(index, 7u);
  ASSERT_TRUE(r->peek(index)) << "peek does not consume";
  EXPECT_EQ(index, 7u);
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{7, 3, 0, 0xfffffffeu, 42}));
  EXPECT_FALSE(r->nonempty());
  EXPECT_EQ(r->waiting(), 0u);
}

TEST(SubmitRing, IsFullAtKSubmitCellsAndTakesOneMoreForEachPopped) {
  RingWords w;
  Ring r(w);
  for (std::uint32_t i = 0; i < kSubmitCells; ++i) ASSERT_TRUE(r->push(i)) << i;
  EXPECT_FALSE(r->push(999)) << "a full ring took an entry";
  EXPECT_EQ(r->waiting(), kSubmitCells);
  std::uint32_t index = 0;
  ASSERT_TRUE(r->peek(index));
  EXPECT_EQ(index, 0u);
  r->pop();
  EXPECT_TRUE(r->push(1000));
  EXPECT_FALSE(r->push(1001));
  std::vector<std::uint32_t> expected = iota(1, kSubmitCells - 1);
  expected.push_back(1000);
  EXPECT_EQ(r.drain(), expected) << "the entry refused when full was not dropped silently into the ring";
}

// Many laps, in batches that do not divide the ring, and positions that
// pass 2^32 (compared by signed difference).
TEST(SubmitRing, WrapsAroundOverManyLapsAndPastTwoToThe32) {
  for (const std::uint32_t start : {0u, 0xffffff00u}) {
    RingWords w;
    Ring r(w);
    r.start_at(start);
    std::uint32_t next = 0;
    std::uint32_t expected = 0;
    for (int lap = 0; lap < 200; ++lap) {
      const std::uint32_t batch = 1 + (lap * 37) % kSubmitCells;
      for (std::uint32_t i = 0; i < batch; ++i) ASSERT_TRUE(r->push(next++)) << "lap " << lap;
      EXPECT_EQ(r->waiting(), batch);
      for (std::uint32_t got : r.drain()) ASSERT_EQ(got, expected++) << "lap " << lap << ", start " << start;
    }
    EXPECT_EQ(expected, next);
    EXPECT_NE(w.tail, start) << "the test did not move the ring";
  }
  // Full, with the positions of its entries on both sides of 2^32.
  RingWords w;
  Ring r(w);
  r.start_at(0xffffff80u);
  for (std::uint32_t i = 0; i < kSubmitCells; ++i) ASSERT_TRUE(r->push(i)) << i;
  EXPECT_FALSE(r->push(999)) << "a full ring took an entry";
  EXPECT_EQ(r->waiting(), kSubmitCells);
  std::uint32_t index = 0;
  ASSERT_TRUE(r->peek(index));
  r->pop();
  EXPECT_TRUE(r->push(1000));
  EXPECT_FALSE(r->push(1001));
  std::vector<std::uint32_t> expected = iota(1, kSubmitCells - 1);
  expected.push_back(1000);
  EXPECT_EQ(r.drain(), expected);
}

// A consumer killed inside pop(), after it released the head's cell for
// the next lap and before it moved the head: the next consumer (a rebuild
// after EOWNERDEAD) steps over it.
TEST(SubmitRing, RepairStepsOverACellAKilledConsumerReleased) {
  RingWords w;
  Ring r(w);
  for (std::uint32_t i : {10u, 11u, 12u}) ASSERT_TRUE(r->push(i));
  std::uint32_t index = 0;
  ASSERT_TRUE(r->peek(index));
  ASSERT_EQ(index, 10u);
  w.cells[w.head % kSubmitCells] = cell_word(w.head + kSubmitCells, 0);  // pop's first store only
  EXPECT_FALSE(r->peek(index)) << "the test did not leave the released cell at the head";
  EXPECT_EQ(r->repair(), 1u);
  EXPECT_EQ(r->repair(), 0u) << "a second repair must find nothing to do";
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{11, 12})) << "the entries after it were lost";
  ASSERT_TRUE(r->push(13));
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{13}));
  EXPECT_EQ(r->repair(), 0u) << "a sound ring needs no repair";
}

// The same, but senders without the mutex go on pushing before anyone takes
// the mutex again: they fill the ring, and the released cell at the head is
// reused for the next lap's entry. The repair must still step over it, and
// every entry must come out, in order.
TEST(SubmitRing, RepairStepsOverAReleasedCellThatProducersReusedMeanwhile) {
  RingWords w;
  Ring r(w);
  for (std::uint32_t i : {10u, 11u, 12u}) ASSERT_TRUE(r->push(i));
  w.cells[w.head % kSubmitCells] = cell_word(w.head + kSubmitCells, 0);  // entry 10 consumed, head not moved
  std::uint32_t pushed = 0;
  while (r->push(100 + pushed)) ++pushed;
  EXPECT_EQ(pushed, kSubmitCells - 2) << "two cells hold 11 and 12; the released one takes an entry";
  EXPECT_EQ(r->repair(), 1u);
  std::vector<std::uint32_t> expected{11, 12};
  for (std::uint32_t i = 0; i < pushed; ++i) expected.push_back(100 + i);
  EXPECT_EQ(r.drain(), expected) << "entries pushed after the consumer died are stuck behind the head";
  ASSERT_TRUE(r->push(7));
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{7}));
}

// A producer killed after its compare-and-swap published its entry and
// before it moved the tail: another producer moves the tail for it.
TEST(SubmitRing, AProducerKilledBeforeMovingTheTailDoesNotBlockTheNext) {
  RingWords w;
  Ring r(w);
  ASSERT_TRUE(r->push(1));
  w.cells[w.tail % kSubmitCells] = cell_word(w.tail + 1, 2);  // published; tail not moved
  ASSERT_TRUE(r->push(3));
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{1, 2, 3}));
}

// The same, but the consumer takes the dead producer's entry before any
// producer comes along: the tail still names a position that was used and
// consumed since. Producers must not take the ring for full forever.
TEST(SubmitRing, AProducerKilledBeforeMovingTheTailDoesNotWedgeTheRingOnceItsEntryIsConsumed) {
  RingWords w;
  Ring r(w);
  ASSERT_TRUE(r->push(1));
  w.cells[w.tail % kSubmitCells] = cell_word(w.tail + 1, 2);  // published; tail not moved
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{1, 2}));
  ASSERT_TRUE(r->push(3)) << "the ring refuses entries though it is empty";
  EXPECT_EQ(r.drain(), (std::vector<std::uint32_t>{3}));
  for (std::uint32_t i = 0; i < kSubmitCells; ++i) ASSERT_TRUE(r->push(i)) << "the ring holds fewer than its cells";
  EXPECT_EQ(r.drain(), iota(0, kSubmitCells));
}

// Producer threads against consumers that take turns under a mutex, as
// lockers of a queue do: every entry once, each producer's in its order.
TEST(SubmitRing, ManyProducersAndConsumersUnderAMutexDeliverEveryEntryOnceInEachProducersOrder) {
  constexpr std::uint32_t kProducers = 4;
  constexpr std::uint32_t kEach = 20000;
  RingWords w;
  Ring r(w);
  std::vector<std::atomic<std::uint32_t>> seen(kProducers * kEach);
  std::mutex consumer_mutex;
  std::atomic<std::uint32_t> consumed{0};
  std::atomic<bool> out_of_order{false};
  std::vector<std::uint32_t> last(kProducers, 0);  // guarded by consumer_mutex: 1 + each producer's last entry
  std::atomic<std::uint32_t> producing{kProducers};
  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kEach; ++i) {
        while (!r->push(p * kEach + i)) std::this_thread::yield();
      }
      producing.fetch_sub(1);
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      // Until every producer is done and the ring is empty: a lost entry
      // shows below, not as a hang.
      while (consumed.load() < kProducers * kEach && (producing.load() > 0 || r->nonempty())) {
        std::lock_guard lock(consumer_mutex);
        std::uint32_t index = 0;
        for (int n = 0; n < 64 && r->peek(index); ++n) {
          r->pop();
          if (index >= kProducers * kEach) {
            out_of_order = true;
            continue;
          }
          seen[index].fetch_add(1);
          const std::uint32_t p = index / kEach;
          if (index % kEach + 1 <= last[p]) out_of_order = true;
          last[p] = index % kEach + 1;
          consumed.fetch_add(1);
        }
        if (!r->nonempty()) std::this_thread::yield();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(out_of_order) << "an entry out of range or out of its producer's order";
  std::uint32_t twice = 0, never = 0;
  for (auto& s : seen) {
    twice += s.load() > 1;
    never += s.load() == 0;
  }
  EXPECT_EQ(twice, 0u);
  EXPECT_EQ(never, 0u);
  EXPECT_FALSE(r->nonempty());
}

// Forked producers killed with SIGKILL at random moments, while this
// process consumes: the consumer never stalls behind a dead producer's
// half-push, and every entry is either absent or whole (an index some
// producer pushed, never a torn word), none twice, each producer's in order
// and all it knew pushed. Then the ring still takes entries.
TEST(SubmitRing, ProducersKilledAtRandomMomentsLeaveEntriesWholeOrAbsent) {
  constexpr std::uint32_t kRounds = 150;
  constexpr std::uint32_t kChildren = 2;
  constexpr std::uint32_t kEach = 1u << 20;  // more than a child pushes before it is killed
  constexpr std::uint32_t kProducerIds = kRounds * kChildren;
  struct Shared {
    RingWords ring;
    std::uint32_t done[kProducerIds];  // entries the producer's push() returned true for
  };
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared{};
  Ring r(shared->ring);

  std::vector<std::uint32_t> got(kProducerIds, 0);  // entries consumed from each producer
  bool bad = false;
  std::string why;
  const auto consume = [&] {
    std::uint32_t index = 0;
    std::uint32_t n = 0;
    for (; r->peek(index); ++n) {
      r->pop();
      const std::uint32_t p = index / kEach;
      if (p >= kProducerIds || index % kEach != got[p]) {
        if (!bad) why = "entry " + std::to_string(index) + " after " + std::to_string(got[p < kProducerIds ? p : 0]);
        bad = true;
        continue;
      }
      ++got[p];
    }
    return n;
  };

  std::mt19937 random(12345);
  std::uint32_t killed_mid_push = 0;  // children killed before they had pushed everything
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    pid_t children[kChildren];
    for (std::uint32_t c = 0; c < kChildren; ++c) {
      const std::uint32_t id = round * kChildren + c;
      children[c] = ::fork();
      ASSERT_GE(children[c], 0);
      if (children[c] == 0) {
        SubmitRing ring(shared->ring.cells, shared->ring.tail, shared->ring.head);
        for (std::uint32_t i = 0; i < kEach; ++i) {
          while (!ring.push(id * kEach + i)) sched_yield();
          detail::atom(shared->done[id]).store(i + 1, std::memory_order_release);
        }
        // All pushed before the kill (the other child may have been slow to
        // start): wait for it, so that no child outlives a failed test.
        for (;;) ::pause();
      }
    }
    // Until each child is pushing (a kill before would prove nothing), then
    // for a random while, killing the children one by one at random
    // moments; then take what they left.
    for (std::uint32_t c = 0; c < kChildren; ++c) {
      while (detail::atom(shared->done[round * kChildren + c]).load(std::memory_order_acquire) == 0) consume();
    }
    for (std::uint32_t c = 0; c < kChildren; ++c) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(random() % 300);
      while (std::chrono::steady_clock::now() < until) consume();
      ::kill(children[c], SIGKILL);
      int status = 0;
      ASSERT_EQ(::waitpid(children[c], &status, 0), children[c]);
      ASSERT_TRUE(WIFSIGNALED(status)) << "a child failed";
      if (detail::atom(shared->done[round * kChildren + c]).load(std::memory_order_acquire) < kEach) {
        ++killed_mid_push;
      }
    }
    while (consume() > 0) {
    }
    ASSERT_FALSE(bad) << why;
    for (std::uint32_t c = 0; c < kChildren; ++c) {
      const std::uint32_t id = round * kChildren + c;
      const std::uint32_t done = detail::atom(shared->done[id]).load(std::memory_order_acquire);
      // A push the child was killed in may have published its entry or not.
      EXPECT_TRUE(got[id] == done || got[id] == done + 1)
          << "producer " << id << " pushed " << done << ", consumer got " << got[id];
    }
    // What the dead left never blocks a live producer.
    for (std::uint32_t i = 0; i < kSubmitCells; ++i) {
      ASSERT_TRUE(r->push(kProducerIds * kEach + i)) << "round " << round << ": the ring refuses entry " << i;
    }
    std::uint32_t index = 0;
    for (std::uint32_t i = 0; i < kSubmitCells; ++i) {
      ASSERT_TRUE(r->peek(index)) << "round " << round;
      EXPECT_EQ(index, kProducerIds * kEach + i);
      r->pop();
    }
    EXPECT_FALSE(r->peek(index));
  }
  EXPECT_GT(killed_mid_push, kRounds) << "too few children were killed while pushing: the test proved little";
  ::munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace shmq
