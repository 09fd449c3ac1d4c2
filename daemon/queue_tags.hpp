// Queue tags as SQS limits them: at most 50 per queue, keys of 1 to 128
// characters, values of 0 to 256, case-sensitive; a tag given again
// replaces the old value.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "queue_metadata.hpp"

namespace shmq::daemon {

inline constexpr std::size_t kMaxTags = 50;
inline constexpr std::size_t kMaxTagKey = 128;
inline constexpr std::size_t kMaxTagValue = 256;

// Adds or replaces `added` in `tags`. Throws std::system_error:
// missing_parameter if `added` is empty, invalid_parameter_value for a key
// or value out of bounds or more than 50 tags in all; `tags` is then
// unchanged. `queue` is named in the error for too many.
void add_tags(Tags& tags, const Tags& added, const std::string& queue);

// Removes `keys` from `tags`; keys that are not there are ignored. Throws
// missing_parameter if `keys` is empty.
void remove_tags(Tags& tags, const std::vector<std::string>& keys);

}  // namespace shmq::daemon
