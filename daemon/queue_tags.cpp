#include "queue_tags.hpp"

#include <algorithm>
#include <system_error>

#include "shmq/error.hpp"

namespace shmq::daemon {

namespace {

// SQS counts characters, not bytes: count UTF-8 lead bytes.
std::size_t characters(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

}  // namespace

void add_tags(Tags& tags, const Tags& added, const std::string& queue) {
  // Amazon SQS's own words for the two errors it names.
  if (added.empty()) throw std::system_error(Errc::missing_parameter, "The request must contain the parameter Tags.");
  Tags merged = tags;
  for (const auto& [key, value] : added) {
    const std::size_t key_length = characters(key);
    if (key_length < 1 || key_length > kMaxTagKey) {
      throw std::system_error(Errc::invalid_parameter_value, "tag key '" + key + "': 1 to 128 characters");
    }
    if (characters(value) > kMaxTagValue) {
      throw std::system_error(Errc::invalid_parameter_value, "tag '" + key + "': values have 0 to 256 characters");
    }
    merged[key] = value;
  }
  if (merged.size() > kMaxTags) {
    throw std::system_error(Errc::invalid_parameter_value, "Too many tags added for queue " + queue + ".");
  }
  tags = std::move(merged);
}

void remove_tags(Tags& tags, const std::vector<std::string>& keys) {
  if (keys.empty()) throw std::system_error(Errc::missing_parameter, "The request must contain the parameter TagKeys.");
  for (const std::string& key : keys) tags.erase(key);
}

}  // namespace shmq::daemon
