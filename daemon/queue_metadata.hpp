// What the daemon keeps about a queue beyond the header's attributes: tags
// and the SQS attributes only the daemon acts on (Policy, RedrivePolicy,
// RedriveAllowPolicy, the encryption settings). It lives in the segment's
// metadata area as one JSON document, so a restarted daemon finds it there:
//
//   {"attributes": {"RedrivePolicy": "...", ...}, "tags": {"team": "a", ...}}
//
// Only the daemon reads or writes it; clients never look at it.
#pragma once

#include <map>
#include <string>

#include "backing.hpp"
#include "segment_layout.hpp"
#include "shmq/types.hpp"

namespace shmq::daemon {

using Tags = std::map<std::string, std::string>;

struct QueueMetadata {
  Attributes attributes;  // daemon-held SQS attributes, by SQS name, as GetQueueAttributes returns them
  Tags tags;

  bool operator==(const QueueMetadata&) const = default;
};

// Reads the current copy. An empty area (a new queue) gives an empty
// document; so does a copy that does not parse, and then it returns false.
bool load_metadata(const detail::SegmentHeader& header, QueueMetadata& out);

// Whether `metadata` fits in one copy of the metadata area (kMetadataBytes,
// 64 KiB, as JSON).
bool metadata_fits(const QueueMetadata& metadata);

// Writes `metadata` so that a crash at any instruction leaves either the old
// or the new document: the inactive copy is written, then made current.
// Throws std::system_error: invalid_parameter_value if the document exceeds
// kMetadataBytes (64 KiB), over_limit if /dev/shm has no room for its pages
// (`backing` reserves them first); the old document then stays. One writer
// at a time.
void store_metadata(detail::SegmentHeader& header, const detail::Backing& backing, const QueueMetadata& metadata);

}  // namespace shmq::daemon
