// Creating, mapping and validating a queue's shared-memory object.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "fault_guard.hpp"
#include "queue_core.hpp"
#include "segment_check.hpp"

namespace shmq::detail {

// Who a segment must belong to for the daemon to attach it: a file another
// user could write (or made, or a link to elsewhere) is not one it created.
struct SegmentOwner {
  uid_t uid;    // the owner
  mode_t mode;  // permission bits the file may have at most
};

class Segment {
 public:
  Segment() = default;
  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // "/shmq.<namespace>.<queue>": the POSIX shm name of a queue.
  static std::string shm_name(std::string_view ns, std::string_view queue);
  // Where that name lives: "/dev/shm/shmq.<namespace>.<queue>".
  static std::string path(std::string_view shm_name);

  // Creates, sizes and formats a new segment with `mode` permissions, given
  // to `group` if set, with backing store reserved for the pages every queue
  // operation may touch. Throws std::system_error: queue_name_exists if it
  // exists already, over_limit if /dev/shm has no room, or the errno of the
  // failing call.
  static Segment create(const std::string& name, const FormatParams& params, mode_t mode,
                        std::optional<gid_t> group = std::nullopt);

  // Maps an existing segment (never through a symbolic link) after checking
  // it is a complete queue of this layout major version whose index roots
  // are all in range: queue_does_not_exist, permission_denied,
  // incompatible_layout or segment_corrupt otherwise. With `owner`, also
  // permission_denied unless the file belongs to owner->uid with no
  // permission beyond owner->mode. `why`, if given, gets a sentence saying
  // what failed.
  static std::error_code open(const std::string& name, Segment& out, const SegmentOwner* owner = nullptr,
                              std::string* why = nullptr) noexcept;

  // "/dev/shm/shmq.ns.q (owner uid 0, group 0, mode 0600)", or why it cannot
  // be examined: what a refused open names.
  static std::string describe_file(const std::string& name);

  // Removes the name; processes that mapped it keep their mapping.
  static void unlink(const std::string& name) noexcept;

  bool mapped() const noexcept { return base_ != nullptr; }
  void* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  int fd() const noexcept { return fd_; }
  SegmentHeader& header() const noexcept { return *static_cast<SegmentHeader*>(base_); }

  // False if the file is now shorter than the mapping (someone truncated
  // it): touching the missing pages would raise SIGBUS. An fstat.
  bool intact() const noexcept;
  // True once a touch of a page the file no longer has was absorbed by the
  // FaultGuard (installed by shmqd): the mapping's tail is zero pages now,
  // no longer the file. A load, for the data path.
  bool faulted() const noexcept { return FaultGuard::faulted(guard_); }
  // Gives a truncated file its size back, so that no process that maps it
  // faults on the missing pages (they read as zeros). False if it cannot.
  bool restore_size() const noexcept;

 private:
  Segment(void* base, std::size_t size, int fd) noexcept
      : base_(base), size_(size), fd_(fd), guard_(FaultGuard::add(base, size)) {}
  void release() noexcept;
  void* base_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;                           // kept for reservations (fallocate) and size checks
  FaultGuard::Mapping* guard_ = nullptr;  // removed before the range is unmapped
};

}  // namespace shmq::detail
