// A segment in /dev/shm is a file another process may have written: a fuzzed
// header and tables must be refused by validation, or attached (the checks
// and rebuild the daemon runs) and then operated on without a crash.
//
// Input: a FIFO flag byte, then patches of (2-byte offset into the header
// and tables, 1 length byte, that many bytes), applied to a freshly
// formatted small queue holding a few messages, in a private mapping.
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "queue_core.hpp"
#include "segment_check.hpp"

namespace {

using namespace shmq::detail;

constexpr std::uint32_t kCapacity = 16;
constexpr std::uint64_t kArena = kMaxBlock;

// A queue with a ready, an in-flight and a delayed message.
void populate(QueueCore& core, Now now) {
  const std::array<std::uint32_t, 3> sizes{100, 3000, 70000};
  std::array<Reservation, 3> slots{};
  std::array<std::error_code, 3> errors{};
  (void)core.reserve(sizes, 1, slots, errors);
  std::array<CommitRequest, 3> requests{};
  std::array<CommitResult, 3> results{};
  requests[2].delay_s = core.fifo() ? 0 : 60;
  for (auto& r : requests) r.group_id = "g";
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].payload) std::memset(slots[i].payload, 'x', sizes[i]);
  }
  (void)core.commit(slots, sizes, requests, results, now);
  std::array<Delivery, 1> taken{};
  std::error_code error;
  (void)core.receive(taken, 30, now, nullptr, error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool fifo = (data[0] & 1) != 0;
  const SegmentGeometry g =
      SegmentGeometry::compute(kCapacity, kArena, SegmentGeometry::default_dedup_capacity(kCapacity, fifo));
  void* base = ::mmap(nullptr, g.total_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) std::abort();
  FormatParams params;
  params.name = "q";
  params.capacity = kCapacity;
  params.arena_bytes = kArena;
  params.fifo = fifo;
  params.content_dedup = fifo;
  QueueCore::format(base, params);
  const Now now{1'000'000'000'000ull, 1'700'000'000'000ull};
  {
    QueueCore core(base);
    populate(core, now);
  }
  // Patches land in the header and tables (the payload arena is only bytes).
  auto* bytes = static_cast<std::uint8_t*>(base);
  const std::size_t patchable = g.arena_offset;
  for (std::size_t at = 1; at + 3 <= size;) {
    const std::size_t offset = (std::size_t{data[at]} | std::size_t{data[at + 1]} << 8) * 8 % patchable;
    const std::size_t length = std::min<std::size_t>({std::size_t{data[at + 2]}, size - at - 3, patchable - offset});
    std::memcpy(bytes + offset, data + at + 3, length);
    at += 3 + length;
  }
  const auto& h = *static_cast<const SegmentHeader*>(base);
  std::string why;
  if (!validate_segment(h, g.total_bytes, &why)) {
    QueueCore core(base);
    if (!core.attach_check(0, &why)) {
      // Attached: what the daemon and clients then do to it.
      (void)core.reclaim_writing([](std::uint32_t) { return true; });
      std::array<Delivery, 10> out{};
      std::error_code error;
      const std::uint32_t n = core.receive(out, 0, now, nullptr, error);
      for (std::uint32_t i = 0; i < n; ++i) {
        if (out[i].block_offset + out[i].body_bytes > kArena) std::abort();  // a delivery outside the arena
        (void)core.remove(out[i].handle);
      }
      (void)core.expire_due(Now{now.mono_ns + 3600ull * 1'000'000'000ull, now.wall_ms});
      populate(core, now);
      (void)core.purge();
    }
  }
  ::munmap(base, g.total_bytes);
  return 0;
}
