// Surviving a segment file that shrinks under its mapping. A page of a
// MAP_SHARED mapping past the end of its file raises SIGBUS when touched; any
// process that may open a queue's file can truncate it. A process that opts in
// (shmqd does; libshmq never installs it behind a program's back) gets a
// SIGBUS handler that, for an address inside a registered segment mapping,
// maps zero pages over the rest of that mapping, marks the mapping faulted
// and returns: the touch is retried and reads zeros. The owner of the mapping
// then sees faulted() and stops using it. A SIGBUS anywhere else goes to the
// handler installed before (or the default action: a core dump), as without
// the guard. See docs/segment-validation.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace shmq::detail {

class FaultGuard {
 public:
  // One registered mapping. Lives in a table that is never freed, so that the
  // handler may read it while another thread registers or removes one.
  class Mapping;

  // Installs the SIGBUS handler for the whole process, once (later calls do
  // nothing). Returns false if it cannot work in this process (a sanitizer
  // that keeps SIGBUS to itself; see why_inactive), and installs nothing then.
  static bool install() noexcept;
  // Whether install() succeeded.
  static bool installed() noexcept;
  // Why install() returned false ("" if it did not).
  static const char* why_inactive() noexcept;

  // Registers [base, base + bytes) as a segment mapping; nullptr only if out
  // of memory (the mapping is then unguarded). Whether or not the handler is
  // installed: registering is a few atomic stores. Must be removed before
  // the range is unmapped.
  static Mapping* add(void* base, std::size_t bytes) noexcept;
  static void remove(Mapping* mapping) noexcept;

  // True once the handler replaced part of the mapping by zero pages: the
  // process's view no longer is the file.
  static bool faulted(const Mapping* mapping) noexcept;

  // How many faults the handler has absorbed in this process, in any
  // mapping: a change tells an owner of another mapping of the same file to
  // check the file's size.
  static std::uint64_t faults() noexcept;
};

}  // namespace shmq::detail
