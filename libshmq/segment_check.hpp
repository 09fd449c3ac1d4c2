// Validation of a segment read from shared memory: everything in it is
// untrusted input (another process may have died mid-write, or the file may
// be corrupt or planted). A segment that fails is refused, never operated on.
// The rules are written down in docs/segment-validation.md.
#pragma once

#include <cstddef>
#include <string>
#include <system_error>

#include "segment_layout.hpp"

namespace shmq::detail {

// The header of a mapping of `file_bytes`: identity, layout version,
// geometry (every table inside the file) and every index root in range.
// Reads only the header. Returns segment_corrupt or incompatible_layout,
// with a sentence in `why`, or nothing if it passes.
std::error_code validate_segment(const SegmentHeader& h, std::size_t file_bytes, std::string* why = nullptr) noexcept;

// The authoritative contents of a segment whose header passed
// validate_segment, from which QueueCore::rebuild derives everything else
// (lists, timer heap, hash buckets, arena free lists): every descriptor below
// the watermark (a state this version writes; a live message's payload block
// inside the used arena, holding its bytes, overlapping no other; its group a
// record in use), the group records, the remembered receive attempts. The
// caller holds the queue mutex (or is alone). Returns segment_corrupt with a
// sentence in `why`, or nothing.
std::error_code check_tables(const SegmentHeader& h, std::string* why = nullptr) noexcept;

// The same, with the sizes this process took at attach (they bound every
// table and watermark it reads, whatever the header says now) and every root
// it needs read once: safe while other processes write the segment. Also
// checks the watermarks (unused_from, arena_untouched, group_unused_from,
// dedup_unused_from) against them.
struct SegmentBounds;
std::error_code check_tables(const SegmentHeader& h, const SegmentBounds& bounds, std::string* why = nullptr) noexcept;

}  // namespace shmq::detail
