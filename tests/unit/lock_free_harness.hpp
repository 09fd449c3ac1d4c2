// Sends without the mutex driven directly (QueueCore::send_lock_free), as
// Queue::send makes them, for the tests of that path and of its crash
// windows.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "message_id.hpp"
#include "queue_core.hpp"

namespace shmq::test {

using MessageId = std::array<std::uint8_t, 16>;

constexpr std::uint32_t kUid = 4242;  // the SenderId every send here claims
constexpr std::size_t kWhole = std::string_view::npos;

inline std::uint32_t this_pid() { return static_cast<std::uint32_t>(::getpid()); }

// What a send's Fill copies, and after how many bytes the sender dies
// (kWhole: it copies everything and lives).
struct Copy {
  std::string_view body;
  std::size_t die_after = kWhole;
};

inline void write_copy(void* context, std::size_t, std::uint8_t* payload) noexcept {
  const auto& copy = *static_cast<const Copy*>(context);
  std::memcpy(payload, copy.body.data(), std::min(copy.body.size(), copy.die_after));
  if (copy.die_after != kWhole) ::raise(SIGKILL);
}

// One message through QueueCore::send_lock_free, as Queue::send makes it
// (no attributes: the body is the whole payload). False if it did not go
// that way. Safe in a forked child (no GoogleTest assertion).
inline bool send_lock_free(detail::QueueCore& core, detail::Now now, std::string_view body, std::uint32_t pid,
                           const MessageId& id = detail::new_message_id(), std::size_t die_after = kWhole) {
  Copy copy{body, die_after};
  const detail::QueueCore::Fill fill{write_copy, &copy};
  detail::CommitRequest req;
  req.message_id = id;
  req.sender_uid = kUid;
  detail::CommitResult res;
  const auto size = static_cast<std::uint32_t>(body.size());
  return core.send_lock_free(detail::QueueCore::kAnyEpoch, size, pid, fill, size, req, res, now) &&
         res.message_id == id && !res.error;
}

}  // namespace shmq::test
