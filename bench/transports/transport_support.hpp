// Small pieces the transports share: polling with a time budget, and the
// table of channels a transport created (made in the parent before fork(),
// so every worker inherits it).
#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace shmq::bench {

// Calls try_once until it succeeds or `budget` has passed; true on success.
template <typename TryOnce>
bool poll_for(std::chrono::microseconds budget, TryOnce try_once) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  do {
    if (try_once()) return true;
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

// Channels by name, each with what its transport keeps for it.
template <class Channel>
class ChannelTable {
 public:
  explicit ChannelTable(std::string_view transport) : transport_(transport) {}

  void set(const std::string& name, Channel channel) { channels_[name] = std::move(channel); }
  // Throws std::runtime_error naming the transport if no such channel was created.
  const Channel& at(const std::string& name) const {
    const auto it = channels_.find(name);
    if (it == channels_.end()) throw std::runtime_error(transport_ + ": no channel " + name + " was created");
    return it->second;
  }
  const Channel* find(const std::string& name) const {
    const auto it = channels_.find(name);
    return it == channels_.end() ? nullptr : &it->second;
  }
  bool empty() const noexcept { return channels_.empty(); }
  void clear() noexcept { channels_.clear(); }
  auto begin() const noexcept { return channels_.begin(); }
  auto end() const noexcept { return channels_.end(); }

 private:
  std::string transport_;
  std::map<std::string, Channel> channels_;
};

}  // namespace shmq::bench
