// A segment in /dev/shm is a file another process may have written, before
// the daemon attaches and at any moment while it is attached: a fuzzed
// header and tables must be refused by validation, or attached (the checks
// and rebuild the daemon runs) and then operated on without a crash or a
// hang, with more patches landing between the operations. Once an operation
// found the segment corrupt and refused it, every later one must answer
// segment_corrupt.
//
// Input: a FIFO flag byte, then records. A record whose first byte is even is
// a patch: 2 bytes of offset into the header and tables, 1 length byte, that
// many bytes. An odd first byte is an operation (the byte selects which); the
// first one validates and attaches the patched segment. The queue is a
// freshly formatted small one holding a few messages, in a private mapping.
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dedup_table.hpp"
#include "queue_core.hpp"
#include "segment_check.hpp"
#include "shmq/error.hpp"

namespace {

using namespace shmq::detail;

constexpr std::uint32_t kCapacity = 16;
constexpr std::uint64_t kArena = kMaxBlock;

// Sends sizes.size() messages, the last delayed on a standard queue.
void send(QueueCore& core, std::span<const std::uint32_t> sizes, Now now, std::error_code* first_error = nullptr) {
  std::array<Reservation, 3> slots{};
  std::array<std::error_code, 3> errors{};
  const std::size_t n = std::min(sizes.size(), slots.size());
  (void)core.reserve(sizes.first(n), 1, std::span(slots).first(n), std::span(errors).first(n));
  std::array<CommitRequest, 3> requests{};
  std::array<CommitResult, 3> results{};
  requests[n - 1].delay_s = core.fifo() ? 0 : 60;
  for (std::size_t i = 0; i < n; ++i) {
    requests[i].group_id = i % 2 ? "g" : "h";
    requests[i].message_id[0] = static_cast<std::uint8_t>(i + 1);
    if (core.fifo()) {
      requests[i].dedup = true;
      requests[i].dedup_key = DedupKey{{now.mono_ns + i, i}};
    }
    if (slots[i].payload) std::memset(slots[i].payload, 'x', sizes[i]);
  }
  (void)core.commit(std::span(slots).first(n), sizes.first(n), std::span(requests).first(n),
                    std::span(results).first(n), now);
  if (first_error) *first_error = errors[0] ? errors[0] : results[0].error;
}

// A queue with a ready, an in-flight and a delayed message.
void populate(QueueCore& core, Now now) {
  const std::array<std::uint32_t, 3> sizes{100, 3000, 70000};
  send(core, sizes, now);
  std::array<Delivery, 1> taken{};
  std::error_code error;
  (void)core.receive(taken, 30, now, nullptr, error);
}

// What the daemon and clients do to an attached queue; `held` keeps the
// deliveries for later deletes and visibility changes.
void operate(QueueCore& core, std::uint8_t op, Now& now, std::vector<Delivery>& held) {
  const DedupKey attempt{{42, 7}};
  switch (op % 12) {
    case 0: {
      const std::array<std::uint32_t, 2> sizes{50, 5000};
      send(core, sizes, now);
      break;
    }
    case 1:
    case 2: {
      std::array<Delivery, 10> out{};
      std::error_code error;
      const std::uint32_t n =
          core.receive(out, op % 2 ? 30 : 0, now, core.fifo() && op % 4 ? &attempt : nullptr, error);
      for (std::uint32_t i = 0; i < n; ++i) {
        // A delivery is copied outside the lock: it must lie in the arena.
        if (out[i].block_offset + out[i].body_bytes + out[i].attr_bytes > kArena) std::abort();
        if (!core.still_valid(out[i])) continue;
        held.push_back(out[i]);
      }
      break;
    }
    case 3:
      if (!held.empty()) {
        (void)core.remove(held.back().handle);
        held.pop_back();
      }
      break;
    case 4:
      if (!held.empty()) (void)core.change_visibility(held.front().handle, op % 3, now);
      break;
    case 5:
      now.mono_ns += 31ull * 1'000'000'000ull;
      (void)core.expire_due(now);
      break;
    case 6:
      (void)core.reaper_turn();
      break;
    case 7:
      (void)core.reclaim_writing([](std::uint32_t) { return true; });
      break;
    case 8: {
      Delivery d{};
      if (core.next_redrive(d)) core.finish_redrive(d);
      (void)core.return_redrives();
      break;
    }
    case 9:
      (void)core.purge();
      break;
    case 10:
      (void)core.stats();
      (void)core.trim_step();  // with whatever the patches left in the trim state
      break;
    default: {
      std::vector<std::error_code> errors(held.size());
      std::vector<ReceiptHandle> handles;
      for (const Delivery& d : held) handles.push_back(d.handle);
      core.remove(handles, errors);
      held.clear();
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool fifo = (data[0] & 1) != 0;
  const SegmentGeometry g =
      SegmentGeometry::compute(kCapacity, kArena, SegmentGeometry::default_dedup_capacity(kCapacity, fifo), fifo);
  void* base = ::mmap(nullptr, g.total_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) std::abort();
  FormatParams params;
  params.name = "q";
  params.capacity = kCapacity;
  params.arena_bytes = kArena;
  params.fifo = fifo;
  params.content_dedup = fifo;
  params.max_receive_count = fifo ? 0 : 2;  // messages reach the redrive list too
  QueueCore::format(base, params);
  Now now{1'000'000'000'000ull, 1'700'000'000'000ull};
  {
    QueueCore core(base);
    populate(core, now);
  }
  auto* bytes = static_cast<std::uint8_t*>(base);
  const auto& h = *static_cast<const SegmentHeader*>(base);
  // Patches land in the header and tables (the payload arena is only bytes).
  // While attached, not on the lock word: one naming a live thread cannot be
  // told from a holder, and is waited for (see lock_robust).
  const std::size_t patchable = g.arena_offset;
  const std::size_t lock_from = offsetof(SegmentHeader, mutex);
  const std::size_t lock_to = lock_from + sizeof(pthread_mutex_t);
  std::optional<QueueCore> core;
  bool refused = false;  // validation or attach refused it: nothing more to do
  std::vector<Delivery> held;
  for (std::size_t at = 1; at < size && !refused;) {
    if (data[at] % 2 == 0) {
      if (at + 4 > size) break;
      std::size_t offset = (std::size_t{data[at + 1]} | std::size_t{data[at + 2]} << 8) * 8 % patchable;
      std::size_t length = std::min<std::size_t>({std::size_t{data[at + 3]}, size - at - 4, patchable - offset});
      const std::uint8_t* patch = data + at + 4;
      at += 4 + length;
      if (core && offset < lock_to && offset + length > lock_from) {
        // Cut the lock word out: keep what lies before or after it.
        if (offset < lock_from) {
          length = lock_from - offset;
        } else {
          const std::size_t skip = lock_to - offset;
          if (skip >= length) continue;
          patch += skip;
          offset = lock_to;
          length -= skip;
        }
      }
      std::memcpy(bytes + offset, patch, length);
      continue;
    }
    const std::uint8_t op = data[at++] >> 1;
    if (!core) {
      std::string why;
      if (validate_segment(h, g.total_bytes, &why)) {
        refused = true;
        break;
      }
      core.emplace(base);
      if (core->attach_check(0, &why)) {
        refused = true;
        break;
      }
    }
    const bool was_refused = core->refused();
    operate(*core, op, now, held);
    if (was_refused) {
      // Refused before: answers segment_corrupt without touching the tables.
      std::error_code ec;
      const std::array<std::uint32_t, 1> one{10};
      send(*core, one, now, &ec);
      if (ec != shmq::Errc::segment_corrupt) std::abort();
    }
  }
  if (core && !refused) {
    // The end of a run: everything once more, on whatever is left.
    for (std::uint8_t op = 0; op < 12; ++op) operate(*core, op, now, held);
  }
  core.reset();
  ::munmap(base, g.total_bytes);
  return 0;
}
