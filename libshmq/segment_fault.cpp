#include "segment_fault.hpp"

#include <iterator>

namespace shmq::detail {

namespace {
// Indexed by SegmentCheck.
constexpr const char* kCheckNames[] = {
    "a descriptor index out of range",
    "a descriptor on a list its state does not belong to",
    "a timer heap entry out of range",
    "a payload block outside the arena",
    "an arena free-list link out of range",
    "a message group index out of range",
    "a message group hash chain out of range",
    "a deduplication entry out of range",
    "a remembered receive attempt out of range",
    "a list with a cycle",
    "a watermark out of range",
    "its lock word is unusable",
    "its tables failed validation",
};
static_assert(std::size(kCheckNames) == static_cast<std::size_t>(SegmentCheck::kTables) + 1);
}  // namespace

const char* segment_check_name(SegmentCheck check) noexcept {
  const auto i = static_cast<std::size_t>(check);
  return i < std::size(kCheckNames) ? kCheckNames[i] : "an unknown check";
}

const char* segment_corrupt_reason(std::uint32_t corrupt) noexcept {
  return corrupt == 0 ? "" : segment_check_name(static_cast<SegmentCheck>(corrupt - 1));
}

void segment_fault(SegmentCheck check) { throw SegmentFault{check}; }

}  // namespace shmq::detail
