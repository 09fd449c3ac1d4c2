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

// The largest packet either side reads. A SOCK_SEQPACKET packet must also
// fit its sender's socket buffer, which an unprivileged process can raise
// only to twice net.core.wmem_max (416 KiB by default).
inline constexpr std::size_t kMaxControlPacket = 1 << 20;

// The largest request a client sends: far above what any operation needs
// (SQS's largest, a Policy or a set of tags, is tens of KiB) and within the
// buffer any system gives. Larger requests are refused by the client with
// invalid_parameter_value, on a connection that stays open.
inline constexpr std::size_t kMaxControlRequest = 256 << 10;

// 1 to 64 characters: letters, digits, '-' and '_'.
bool valid_namespace(std::string_view ns) noexcept;

// The abstract socket address of a namespace's daemon ("\0shmq.<ns>.ctl").
sockaddr_un control_address(std::string_view ns, socklen_t& length);

}  // namespace shmq::detail
