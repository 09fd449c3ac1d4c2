#include "queue_metadata.hpp"

#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

#include "shmq/error.hpp"

namespace shmq::daemon {

using nlohmann::json;

namespace {

char* copy_area(detail::SegmentHeader& header, std::uint32_t copy) {
  return reinterpret_cast<char*>(&header) + header.metadata_offset + copy * detail::kMetadataBytes;
}

std::string serialize(const QueueMetadata& metadata) {
  std::string text = json{{"attributes", metadata.attributes}, {"tags", metadata.tags}}.dump();
  if (text.size() > detail::kMetadataBytes) {
    // Tags alone can come close to it (50 tags of 384 four-byte characters).
    throw std::system_error(Errc::invalid_parameter_value, "the queue's tags and policies together exceed 64 KiB (" +
                                                               std::to_string(text.size()) + " bytes as JSON)");
  }
  return text;
}

}  // namespace

bool metadata_fits(const QueueMetadata& metadata) {
  return json{{"attributes", metadata.attributes}, {"tags", metadata.tags}}.dump().size() <= detail::kMetadataBytes;
}

bool load_metadata(const detail::SegmentHeader& header, QueueMetadata& out) {
  out = {};
  auto& h = const_cast<detail::SegmentHeader&>(header);
  // Acquire: pairs with the release in store_metadata, so the copy's bytes
  // and length are those written before the flip.
  const std::uint32_t active = detail::atom(h.metadata_active).load(std::memory_order_acquire) & 1u;
  // Relaxed: ordered by the acquire above.
  const std::uint32_t bytes = detail::atom(h.metadata_bytes[active]).load(std::memory_order_relaxed);
  if (bytes == 0) return true;
  if (bytes > detail::kMetadataBytes) return false;
  const char* text = copy_area(h, active);
  const json doc = json::parse(text, text + bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  try {
    out.attributes = doc.value("attributes", Attributes{});
    out.tags = doc.value("tags", Tags{});
  } catch (const json::exception&) {
    out = {};
    return false;
  }
  return true;
}

void store_metadata(detail::SegmentHeader& header, const detail::Backing& backing, const QueueMetadata& metadata) {
  const std::string text = serialize(metadata);
  // Relaxed: the daemon is the only writer, so it reads its own last store.
  const std::uint32_t inactive = (detail::atom(header.metadata_active).load(std::memory_order_relaxed) & 1u) ^ 1u;
  if (!backing.reserve(copy_area(header, inactive), text.size())) {
    throw std::system_error(Errc::over_limit, "/dev/shm has no room for the queue's tags and policies");
  }
  std::memcpy(copy_area(header, inactive), text.data(), text.size());
  // Relaxed: published by the release store of metadata_active below.
  detail::atom(header.metadata_bytes[inactive])
      .store(static_cast<std::uint32_t>(text.size()), std::memory_order_relaxed);
  // Release: whoever reads the new index (acquire) sees the copy complete.
  // A crash before this store leaves the old copy current and intact.
  detail::atom(header.metadata_active).store(inactive, std::memory_order_release);
}

}  // namespace shmq::daemon
