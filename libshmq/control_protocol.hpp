// The control channel between clients and shmqd: one Unix-domain
// SOCK_SEQPACKET socket per namespace in the abstract namespace (no file to
// go stale when the daemon is killed), one JSON object per packet.
//
//   request:  {"op": "<operation>", ...arguments}
//   reply:    {"ok": true, ...results}
//             {"ok": false, "error": "<errc_name>", "message": "<text>"}
//
// Operations: hello, create_queue, delete_queue, list_queues,
// get_queue_attributes, set_queue_attributes, purge_queue, open_queue, stats,
// tag_queue, untag_queue, list_queue_tags, add_permission, remove_permission,
// list_dead_letter_source_queues, start_message_move_task,
// cancel_message_move_task, list_message_move_tasks.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace shmq::detail {

inline constexpr std::size_t kMaxControlPacket = 1 << 20;

// 1 to 64 characters: letters, digits, '-' and '_'.
bool valid_namespace(std::string_view ns) noexcept;

// The abstract socket address of a namespace's daemon ("\0shmq.<ns>.ctl").
sockaddr_un control_address(std::string_view ns, socklen_t& length);

}  // namespace shmq::detail
