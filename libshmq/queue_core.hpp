// The state machine of one queue, operating on a mapped segment. Every
// method that changes state takes the segment's robust mutex for a short
// critical section; payload copies happen outside it.
//
// Crash safety (see DESIGN.md, "Concurrency and crash safety"): the
// descriptor state word is the commit point of every transition, written last.
// All other structures (free list, ready list, timer heap, arena free lists,
// counts) are derived from the states. A locker that gets EOWNERDEAD, because
// the previous owner died inside a critical section, rebuilds them from the
// descriptors before pthread_mutex_consistent. So a kill at any instruction
// leaves either the old or the new state of each message, never a torn one:
//   - a sender killed before commit leaves a kWriting slot, returned to the
//     free list by the daemon when the sender's control connection closes
//     (the send was never reported as done, so nothing is lost);
//   - a receiver killed after taking messages leaves them kInFlight, and
//     they become visible again when their visibility timeout expires.
//
// Where each concern lives:
//   - transitions.cpp: every edge of the state machine (send, receive,
//     delete, change visibility, expiry, delay end, redrive, retention,
//     purge), in the order of the diagram in docs/data-plane.md, with the
//     lists, counts and prefetches they share;
//   - recovery.cpp: attach_check, rebuild, reclaim_writing, reserve_in_use
//     and the trim (trim_step), which gives memory back;
//   - reaper.cpp: the reaper's turn and wake-up, and the sleeping receivers;
//   - queue_core.cpp: the geometry, format and construction, refusing a
//     corrupt segment (repair, refuse, fault, refusal), the memory the
//     watermarks cover, stats and the lock-free reads;
//   - queue_lock.hpp: the robust mutex and Lock; queue_core_internal.hpp:
//     the helpers these files share, guarded(), and the few small members
//     the hot path calls across concerns, inline.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "arena.hpp"
#include "backing.hpp"
#include "clock.hpp"
#include "dedup_table.hpp"
#include "group_table.hpp"
#include "receipt_handle.hpp"
#include "segment_fault.hpp"
#include "segment_layout.hpp"
#include "submit_ring.hpp"
#include "timer_heap.hpp"

namespace shmq::detail {

// What the creator writes into a fresh segment.
struct FormatParams {
  const char* name = "";
  std::uint32_t capacity = 0;
  std::uint64_t arena_bytes = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t created_ms = 0;
  std::uint32_t visibility_timeout_s = 30;
  std::uint32_t maximum_message_size = 1u << 20;
  std::uint32_t receive_wait_s = 0;
  std::uint32_t retention_s = 345600;
  std::uint32_t delay_s = 0;
  bool fifo = false;
  bool content_dedup = false;
  bool dedup_per_group = false;
  bool throughput_per_group = false;
  std::uint32_t max_receive_count = 0;     // 0: no dead-letter queue
  std::uint32_t in_flight_limit = 120000;  // SQS's limit
  std::uint64_t memory_limit = 0;          // bytes of shared memory it may back; 0: no limit
};

// Offsets of the tables for a given capacity and arena size.
struct SegmentGeometry {
  std::uint64_t descriptors_offset;
  std::uint64_t heap_offset;
  std::uint64_t groups_offset;
  std::uint64_t group_buckets_offset;
  std::uint32_t group_bucket_count;
  std::uint32_t dedup_capacity;  // FIFO queues only; 0 otherwise
  std::uint64_t dedup_offset;
  std::uint64_t dedup_buckets_offset;
  std::uint32_t dedup_bucket_count;
  std::uint64_t attempts_offset;
  std::uint64_t metadata_offset;
  std::uint64_t order_map_offset;
  std::uint64_t arena_offset;
  std::uint64_t total_bytes;

  // The FIFO deduplication window a new queue of `capacity` slots gets.
  static std::uint32_t default_dedup_capacity(std::uint32_t capacity, bool fifo) noexcept;
  static SegmentGeometry compute(std::uint32_t capacity, std::uint64_t arena_bytes, std::uint32_t dedup_capacity,
                                 bool fifo) noexcept;
};

// What a process keeps of a header that passed validation: the sizes that
// bound every index and offset, read once. Every check made at each use
// compares against these, which no other process can change.
struct SegmentBounds {
  std::uint32_t capacity = 0;
  std::uint64_t arena_bytes = 0;
  std::uint32_t dedup_capacity = 0;
  bool fifo = false;
  SegmentGeometry geometry{};  // the tables' offsets and the total size

  static SegmentBounds of(const SegmentHeader& h) noexcept;
};

// What a commit needs beyond the filled reservation.
struct CommitRequest {
  std::uint32_t delay_s = 0;
  std::array<std::uint8_t, 16> message_id{};
  std::string_view group_id;  // FIFO: the message's group (required)
  bool dedup = false;         // FIFO: check and record dedup_key
  DedupKey dedup_key{};
  std::uint64_t sent_ms = 0;                // SentTimestamp to keep (a moved message); 0: now
  std::uint32_t receive_count = 0;          // receives so far to keep (a message moved to a dead-letter queue)
  std::optional<std::uint32_t> sender_uid;  // SenderId, when it is the sender's uid and not in the blob
};

struct CommitResult {
  std::error_code error;                      // queue_full: the dedup window is full
  bool duplicate = false;                     // not enqueued: the id was seen in the window
  std::array<std::uint8_t, 16> message_id{};  // the original's, when duplicate
  std::uint64_t seq = 0;                      // sequence number (the original's, when duplicate)
};

// A slot a sender reserved and now fills outside the lock. Index,
// generation and owner identify it: a commit checks that the slot still
// holds this reservation (the daemon may have reclaimed it meanwhile).
struct Reservation {
  std::uint32_t index = kNil;
  std::uint32_t generation = 0;
  std::uint32_t owner_pid = 0;
  std::uint8_t* payload = nullptr;  // body_bytes writable bytes
};

// A message taken by a receive, to be copied out and validated.
struct Delivery {
  std::uint32_t index;
  ReceiptHandle handle;
  std::uint32_t body_bytes;
  std::uint32_t attr_bytes;
  std::uint64_t block_offset;
  std::uint64_t sent_ms;
  std::uint64_t first_receive_ms;
  std::uint64_t seq;
  std::uint8_t message_id[16];
  std::optional<std::uint32_t> sender_uid;  // see CommitRequest
};

class QueueCore {
 public:
  // `backing` reserves the pages of a region before its first use (see
  // backing.hpp); by default, none is reserved.
  explicit QueueCore(void* base, Backing backing = {}) noexcept;

  // Writes a complete empty queue into `base` (geometry.total_bytes, zeroed);
  // the layout version is stored last, with release.
  static void format(void* base, const FormatParams& params);

  SegmentHeader& header() const noexcept { return *h_; }

  // How long an operation that can give up cleanly (reserve,
  // send_in_one_lock, receive, remove, change_visibility, purge, stats,
  // reclaim_writing, the redrive steps) waits for the queue's lock before it answers
  // queue_busy: a holder that was stopped or descheduled must not hold up a
  // process that serves many queues from few threads (the daemon). Commits
  // and unreserves always wait: they finish what a reservation started.
  // Applies to this process's QueueCore only.
  static constexpr std::uint64_t kWaitForever = ~0ull;
  static constexpr std::uint64_t kDefaultWait = ~0ull - 1;  // receive(): lock_wait()
  void set_lock_wait(std::uint64_t wait_ns) noexcept { lock_wait_ns_.store(wait_ns, std::memory_order_relaxed); }
  // Relaxed: a setting, ordering nothing.
  std::uint64_t lock_wait() const noexcept { return lock_wait_ns_.load(std::memory_order_relaxed); }
  const SegmentBounds& bounds() const noexcept { return bounds_; }
  MessageDescriptor& descriptor(std::uint32_t index) const noexcept { return d_[index]; }
  std::uint8_t* payload(std::uint64_t block_offset) const noexcept { return arena_base_ + block_offset; }
  // A FIFO send, once its deduplication key is known: the key's hash bucket
  // starts on its way to this core (see DedupTable::prefetch_bucket).
  void prefetch_dedup(const DedupKey& key) const noexcept { dedup_.prefetch_bucket(key); }

  // Reserves one slot per entry of `sizes` (body and blob bytes) in one
  // critical section. Entries that find no room get queue_full in `errors`;
  // the others get a slot.
  // Returns the daemon epoch read under the lock (see Queue's send path).
  // Every entry gets queue_busy if the lock stays held past lock_wait().
  std::uint32_t reserve(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                        std::span<std::error_code> errors) noexcept;

  // Writes entry i's body and blob into its reserved payload.
  struct Fill {
    void (*write)(void* context, std::size_t i, std::uint8_t* payload) noexcept;
    void* context;
  };

  // An epoch for send_in_one_lock that matches every daemon (a process
  // without a control connection: the daemon itself).
  static constexpr std::uint32_t kAnyEpoch = kNil;

  // reserve(), fill, and commit() in one critical section: for small
  // payloads, copying under the lock costs less than a second lock round
  // trip. Unless `epoch` is kAnyEpoch, sets seen_epoch to the daemon epoch
  // read under the lock and does nothing if it is not `epoch` (the caller
  // reconnects first; see Queue's send path). Returns what commit() returns;
  // slots and errors as reserve() fills them.
  std::uint32_t send_in_one_lock(std::uint32_t epoch, std::span<const std::uint32_t> sizes, std::uint32_t pid,
                                 std::span<Reservation> slots, std::span<std::error_code> errors, const Fill& fill,
                                 std::span<const std::uint32_t> bodies, std::span<const CommitRequest> requests,
                                 std::span<CommitResult> results, Now now, std::uint32_t& seen_epoch) noexcept;

  // Frees reservations that will not be committed (those still held).
  void unreserve(std::span<Reservation> slots) noexcept;

  // A send without the mutex (see docs/data-plane.md, "Sends without the
  // mutex"): one message of `size` bytes (body and blob; `body` of them the
  // body), written by fill(0) into a slot from this process's cache, marked
  // kPending and put on the submit ring; any later locker commits it. Only
  // for a standard queue, with no delay and a block of at most
  // 2^(kMinOrder + kCacheOrders - 1) bytes, and a queue of at least
  // kCacheMinSlots slots (in a smaller one, caches would hold much of what
  // the queue may hold). The cache is refilled under the mutex kCacheRefill
  // slots at a time; unless `epoch` is kAnyEpoch, a
  // daemon epoch other than `epoch` sends nothing. False if the message was
  // not sent this way (nothing was done: the caller sends it with the
  // mutex, which also answers why). True: sent, `res` filled, a sleeping
  // receiver woken.
  static constexpr unsigned kCacheOrders = 5;  // blocks of 64 B to 1 KiB
  static constexpr std::uint32_t kCacheRefill = 16;
  static constexpr std::uint32_t kCacheMinSlots = 64 * kCacheRefill;
  bool send_lock_free(std::uint32_t epoch, std::uint32_t size, std::uint32_t pid, const Fill& fill, std::uint32_t body,
                      const CommitRequest& req, CommitResult& res, Now now) noexcept;

  // Commits what the submit ring holds, if anything, so that the counts
  // include it (within lock_wait(); nothing if the lock stays held).
  void commit_submitted() noexcept;

  // Gives the slots in this process's cache back to the queue (closing it).
  // Slots a process never gives back are freed by the daemon once the
  // process is gone, or taken back by a trim.
  void release_cache(std::uint32_t pid) noexcept;

  // Publishes filled reservations (skipping those with index kNil). `bodies`
  // gives each one's body length (the rest of its bytes are the blob). A
  // FIFO duplicate is freed instead. Returns how many receives it made
  // possible (to wake receivers). A reservation the slot no longer holds
  // (reclaimed since, so not this sender's any more) is left alone and its
  // entry gets Errc::internal: the message was not sent.
  std::uint32_t commit(std::span<Reservation> slots, std::span<const std::uint32_t> bodies,
                       std::span<const CommitRequest> requests, std::span<CommitResult> results, Now now) noexcept;

  // Takes up to out.size() messages a receive may have, making them in
  // flight for visibility_s: in send order (standard), or from the groups at
  // the head of the ring, each group's ready messages ahead of its first one
  // in flight, in order (FIFO; see docs/fifo-groups.md). Expires due timers
  // and retention first. With `attempt` (FIFO), a retry within 5 minutes
  // gets the same messages again while they are still in flight. Returns
  // the number taken; `error` is too_many_in_flight when the limit stops it,
  // queue_busy when the lock stays held past `lock_wait_ns` (kDefaultWait:
  // lock_wait()).
  std::uint32_t receive(std::span<Delivery> out, std::uint32_t visibility_s, Now now, const DedupKey* attempt,
                        std::error_code& error, std::uint64_t lock_wait_ns = kDefaultWait) noexcept;

  // A message as peek() finds it: its delivery (the receive count as it is;
  // the handle is for still_valid only) and where it is.
  struct Peeked {
    Delivery delivery;
    MessageState state;    // kReady, kInFlight, kDelayed or kRedrive
    std::uint64_t due_ns;  // kInFlight, kDelayed: when it becomes visible (monotonic)
  };
  // The first out.size() messages of the queue in send order, whatever their
  // state, changing none: no receive is counted, no timer moves. Returns the
  // number found; `error` as for receive().
  std::uint32_t peek(std::span<Peeked> out, std::error_code& error) noexcept;

  // True if the message a delivery names still holds the same payload, i.e.
  // a copy taken since receive() is intact.
  bool still_valid(const Delivery& delivery) const noexcept;

  std::error_code remove(const ReceiptHandle& handle) noexcept;
  // Deletes several in one critical section; errors[i] as remove() returns for handles[i].
  void remove(std::span<const ReceiptHandle> handles, std::span<std::error_code> errors) noexcept;
  std::error_code change_visibility(const ReceiptHandle& handle, std::uint32_t visibility_s, Now now) noexcept;

  // Moves due in-flight and delayed messages to the ready list and removes
  // messages past the retention period; returns the number made visible.
  std::uint32_t expire_due(Now now) noexcept;

  // Dead-letter moves (the daemon): the oldest message waiting to move, if
  // any, and, once it is safely in the dead-letter queue, its removal here.
  bool next_redrive(Delivery& out) noexcept;
  void finish_redrive(const Delivery& moved) noexcept;
  // The queue has no dead-letter queue any more: messages waiting to move
  // become visible again. Returns how many.
  std::uint32_t return_redrives() noexcept;

  // Deletes every message that is not being written; returns the number,
  // or nothing if the lock stays held past lock_wait().
  std::optional<std::uint32_t> purge() noexcept;

  // Frees slots left in kWriting by `pid` (kNil: by any pid for which
  // `is_dead(pid)` is true). Returns the number freed, or nothing if the
  // lock stays held past lock_wait() (try again later).
  template <class IsDead>
  std::optional<std::uint32_t> reclaim_writing(IsDead is_dead, std::uint64_t lock_wait_ns = kDefaultWait) noexcept;

  // Recomputes every derived structure from the descriptor states (under the
  // mutex). If a value it needs is out of range, refuses the segment instead.
  void rebuild() noexcept;

  // Corruption found while attached (see docs/segment-validation.md). Every
  // operation checks what it reads from the segment; one that finds a value
  // out of range abandons its critical section. If the authoritative tables
  // still pass check_tables, the derived structures are rebuilt and the
  // operation runs once more; else the segment is refused: marked corrupt in
  // its header (SegmentHeader::corrupt, which every process reads) and here,
  // and every later operation answers segment_corrupt without touching it.
  // Refused: by this process or by another (lock-free).
  bool refused() const noexcept {
    return poisoned_.load(std::memory_order_relaxed) != 0 || atom(h_->corrupt).load(std::memory_order_relaxed) != 0;
  }
  // segment_corrupt if refused(), else nothing.
  std::error_code fault() const noexcept;
  // What failed, as a sentence fragment ("a descriptor index out of range");
  // empty if not refused.
  std::string refusal() const;

  // For a process attaching to a segment it did not create (the daemon at
  // start): takes the mutex within `max_wait_ns`, checks the tables
  // (check_tables) and rebuilds every derived structure from them. Returns
  // segment_corrupt, with a sentence in `why`, if the mutex is unusable, is
  // held past the wait, or a table fails; never blocks longer.
  std::error_code attach_check(std::uint64_t max_wait_ns, std::string* why) noexcept;

  // The memory a queue's watermarks cover: its header, the FIFO tables
  // reserved at creation, the slots, dedup entries and arena blocks handed
  // out since creation or the last trim (see Backing::grow).
  static std::uint64_t memory_by_watermarks(const SegmentBounds& b, const IndexRoots& r) noexcept;
  // What a queue made with `p` needs to take its first message: its empty
  // tables, a chunk of slots and one 2 MiB arena block. A memory limit below
  // it could never be used.
  static std::uint64_t first_message_memory(const FormatParams& p) noexcept;

  // Giving memory back, a step per call (the daemon's reaper): when the
  // queue holds no message and its watermarks cover more than
  // kTrimAboveBytes beyond an empty queue, lowers them to zero; then punches
  // out at most kTrimSliceBytes of what is still backed above them, under
  // the lock so that no sender can be writing there. kMore while more is
  // left to give back (call again soon); kDone when nothing is, or the
  // queue is not worth trimming; kBusy if the lock was held (try again).
  static constexpr std::uint64_t kTrimAboveBytes = 8ull << 20;
  static constexpr std::uint64_t kTrimSliceBytes = 64ull << 20;
  // Past this, a trim starts the generations over under a new incarnation.
  static constexpr std::uint32_t kGenerationRotateAt = 0xffff0000u;
  enum class TrimProgress { kDone, kMore, kBusy };
  TrimProgress trim_step() noexcept;

  // Reserves backing store for every region in use below the watermarks
  // (a segment written before reservations, or one whose reserving process
  // died midway). False if /dev/shm has no room for them.
  bool reserve_in_use() noexcept;

  // A receiver of process `pid` goes to sleep on ready_seq / has woken
  // (lock-free; see SegmentHeader::waiter_slots).
  void add_waiter(std::uint32_t pid) noexcept;
  void remove_waiter(std::uint32_t pid) noexcept;
  // The daemon: process `pid` died; its sleeping receivers no longer count.
  void forget_waiters(std::uint32_t pid) noexcept;
  // Processes that have receivers asleep now, or had (their slot stays claimed).
  std::vector<std::uint32_t> waiter_pids() const;
  std::uint32_t sleeping_receivers() const noexcept;

  // Wakes receivers sleeping on ready_seq, if any (outside the lock).
  void wake_receivers(std::uint32_t count) noexcept;

  // One turn of the daemon's reaper, which serves many queues from one
  // thread: expires due timers and retention, then arms the wake-up. Until
  // header().reaper_seq differs from `seq`, nothing needs the reaper before
  // `deadline_ns` (CLOCK_MONOTONIC) except messages waiting to move to the
  // dead-letter queue (redrive_pending()).
  struct ReaperTurn {
    std::uint32_t moved;        // messages it made visible
    std::uint32_t seq;          // the reaper word's value when armed
    std::uint64_t deadline_ns;  // the next turn, at the latest
    bool redrive;               // messages wait to move to the dead-letter queue
    bool busy;                  // the lock stayed held: nothing done, try again at deadline_ns
    bool corrupt;               // the segment is refused (see refused()): nothing done, no more turns
    bool trim;                  // memory can be given back (trim_step)
  };
  static constexpr std::uint64_t kBusyRetryNs = 1'000'000;  // 1 ms
  ReaperTurn reaper_turn() noexcept;
  std::uint32_t* reaper_word() const noexcept { return &h_->reaper_seq; }

  bool redrive_pending() const noexcept { return atom(h_->counts.redrive).load(std::memory_order_relaxed) > 0; }
  void reaper_wake() noexcept;

  // The counts and the tables' use, copied under the mutex (for stats: a
  // plain copy without it would race with their writers).
  // If the lock stays held past lock_wait(), the counts as read without it
  // (each exact, together perhaps not) and `locked` false.
  struct Stats {
    Counts counts;
    Totals totals;
    std::uint32_t slots_ever_used;  // since creation or the last trim
    std::uint64_t arena_free_bytes;
    std::uint64_t memory_in_use;     // see memory_by_watermarks
    std::uint64_t memory_limit;      // 0: none
    std::uint64_t trims;             // TrimState::trims
    std::uint64_t cache_take_backs;  // CacheState::take_backs
    bool locked;
  };
  Stats stats() noexcept;

  // Lock-free reads.
  std::uint32_t available_count() const noexcept;
  std::uint64_t next_deadline_ns() const noexcept;
  bool fifo() const noexcept { return bounds_.fifo; }

 private:
  class Lock;
  friend class Lock;

  // Sends without the mutex: the slot cache and the submit ring.
  struct CacheEntry {
    std::uint32_t index;
    std::uint32_t generation;
    std::uint64_t block_offset;  // as the refill allocated it (the descriptor's is checked against it)
    bool put_back = false;       // listed again by commit_pending_locked, perhaps while a take-back scanned
  };
  bool claim_cached(unsigned k, std::uint32_t epoch, std::uint32_t pid, CacheEntry& out) noexcept;
  bool commit_pending_locked(const CacheEntry& e, unsigned k) noexcept;
  bool refill_cache(unsigned k, std::uint32_t epoch, std::uint32_t pid) noexcept;
  bool commit_pending(std::uint32_t index);
  std::uint32_t drain_submitted();
  bool take_back_cached(std::uint32_t index, const std::uint32_t* generation);
  void drop_cache(std::uint32_t epoch) noexcept;
  // Under the mutex, before a trim: takes back every cached slot and frees
  // or commits what dead processes left half-sent. False if a send without
  // the mutex is under way (the queue is not empty).
  bool take_back_caches();
  bool reclaim_dead_sender(std::uint32_t index, MessageState s, std::uint32_t& committed);
  void add_cached(int delta) noexcept;

  void prefetch_for_send(std::span<const std::uint32_t> sizes) const noexcept;
  void prefetch_for_receive(std::size_t n) const noexcept;
  void prefetch_for_remove(std::span<const ReceiptHandle> handles) const noexcept;

  // Runs `body`, the work of a critical section, while `lock` is held; see
  // refused(). True if it completed. `body` may run twice: it keeps its
  // progress in variables of the caller, so that the second run resumes.
  template <class Body>
  bool guarded(const Lock& lock, Body&& body) noexcept;
  // Under the mutex, after a failed check: rebuilds if the tables are sound;
  // else (or if the rebuild fails a check) refuses. True if rebuilt.
  bool repair() noexcept;
  // Under the mutex: the header's identity unchanged and check_tables passes.
  bool tables_sound(std::string* why) const noexcept;
  // False (refusing the segment, if not yet) if the mutex kind word is not
  // the one seen at attach, or the segment is refused: then no lock call.
  bool sound_lock() noexcept {
    if (refused()) [[unlikely]] {
      return false;
    }
    // Relaxed: compared with what this process saw at attach; nobody but a
    // corrupting process changes it.
    if (atom(h_->mutex.__data.__kind).load(std::memory_order_relaxed) == mutex_kind_) [[likely]] {
      return true;
    }
    refuse_lock();
    return false;
  }
  [[gnu::cold]] void refuse_lock() noexcept;
  void refuse(SegmentCheck check, const std::string& why = {}) noexcept;
  void rebuild_locked();  // throws SegmentFault

  // Checked accessors: an index or a list read from the segment, before use.
  MessageDescriptor& desc(std::uint32_t index) const {
    return d_[checked_index(index, bounds_.capacity, SegmentCheck::kDescriptorIndex)];
  }
  // desc(index), which must be in state `s` (it was found on s's list).
  MessageDescriptor& desc_in(std::uint32_t index, MessageState s) const;
  std::uint32_t unused_from() const;  // roots.unused_from, checked

  void reserve_locked(std::span<const std::uint32_t> sizes, std::uint32_t pid, std::span<Reservation> out,
                      std::span<std::error_code> errors, std::size_t& next, bool take_back);
  bool take_slot(unsigned order, std::uint32_t& index, std::uint64_t& offset);
  bool holds(const Reservation& slot) const;
  std::uint32_t commit_locked(std::span<Reservation> slots, std::span<const std::uint32_t> bodies,
                              std::span<const CommitRequest> requests, std::span<CommitResult> results, Now now,
                              bool& wake_reaper, std::size_t& next);
  std::uint32_t expire_locked(Now now, bool& redrive);
  void make_ready(std::uint32_t index, bool returned, std::uint32_t& last_returned);
  void take(std::uint32_t index, std::uint64_t deadline, Now now, Delivery& out);
  void describe(std::uint32_t index, Delivery& out) const;
  std::uint32_t receive_again(const ReceiveAttempt& attempt, std::span<Delivery> out, std::uint64_t deadline);
  void remember_attempt(const DedupKey& key, std::span<const Delivery> taken, Now now) noexcept;
  void detach(std::uint32_t index, MessageState state);
  std::error_code locate(const ReceiptHandle& handle, MessageState& state) const noexcept;
  bool expired(const ReceiptHandle& handle, const std::error_code& located, MessageState state) const;
  void free_slot(std::uint32_t index);
  void bump_generation(MessageDescriptor& m) noexcept;
  void release_slot(std::uint32_t index, std::uint64_t offset, unsigned order);
  void all_push_back(std::uint32_t index);
  void all_unlink(std::uint32_t index);
  void redrive_push(std::uint32_t index);
  void redrive_instead(std::uint32_t index);  // READY -> REDRIVE, at a receive
  void redrive_unlink(std::uint32_t index);
  void set_available(int delta) noexcept;
  std::uint64_t retention_deadline() const;
  void ready_push_back(std::uint32_t index);
  void ready_push_front(std::uint32_t index);
  void ready_insert_after(std::uint32_t after, std::uint32_t index);
  void ready_unlink(std::uint32_t index);
  void set_state(std::uint32_t index, MessageState s) noexcept;
  void count(MessageState s, int delta) noexcept;
  void publish_deadline();
  bool reaper_needs_wake(std::uint64_t deadline_ns) const noexcept;
  std::optional<std::uint32_t> free_writing_matching(bool (*match)(std::uint32_t pid, void* ctx), void* ctx,
                                                     std::uint64_t lock_wait_ns) noexcept;
  // A reserve that did not get the lock: nothing held, queue_busy.
  static void busy(std::span<Reservation> out, std::span<std::error_code> errors) noexcept;
  bool reserve_descriptors(std::uint32_t first, std::uint32_t count) noexcept;
  // The descriptors, timer-heap entries and group records of slots
  // [first, first + count), clamped to the capacity.
  std::array<Backing::Region, 3> slot_regions(std::uint32_t first, std::uint32_t count) const noexcept;
  // Messages of any state: none means the queue may give its memory back.
  std::uint32_t messages_held() const noexcept;
  // Under the mutex: the queue is empty and holds more memory than an empty
  // queue needs (kTrimAboveBytes past its fixed part).
  bool worth_trimming() const noexcept;
  // Under the mutex: memory above the watermarks is still to be punched out.
  bool trim_pending() const noexcept;
  // A FIFO queue's tables reached by hash (group and dedup buckets, receive
  // attempts); true for a standard queue.
  bool reserve_fifo_tables() noexcept;

  SegmentBounds bounds_;  // first: the tables below are made with it
  SegmentHeader* h_;
  Backing backing_;
  MessageDescriptor* d_;
  std::uint32_t* heap_slots_;
  std::uint8_t* order_map_;
  std::uint8_t* arena_base_;
  ReceiveAttempt* attempts_;
  Arena arena_;
  TimerHeap timers_;
  GroupTable groups_;
  DedupTable dedup_;
  SubmitRing ring_;
  // This process's cached slots, a stack per block order. Filled for `pid`
  // (a forked child starts over) in cache epoch `epoch` (CacheState: a
  // take-back of the caches starts the next).
  struct SlotCache {
    std::uint32_t pid = 0;
    std::uint32_t epoch = 0;
    std::uint32_t count[kCacheOrders] = {};
    CacheEntry entries[kCacheOrders][kCacheRefill];
  };
  std::mutex cache_mutex_;  // this process's threads share the cache
  SlotCache cache_;
  std::atomic<std::uint64_t> lock_wait_ns_{kWaitForever};
  int mutex_kind_;  // the mutex's kind word at attach: a lock call trusts it
  // 1 + SegmentCheck once this process refused the segment, else 0. Set
  // once, by the refuse() that claimed refusing_, after why_ (release).
  std::atomic<std::uint32_t> poisoned_{0};
  std::atomic<bool> refusing_{false};  // claimed by the one refuse() that writes why_
  char why_[200] = {};                 // what check_tables said, when that refused it
};

template <class IsDead>
std::optional<std::uint32_t> QueueCore::reclaim_writing(IsDead is_dead, std::uint64_t lock_wait_ns) noexcept {
  return free_writing_matching([](std::uint32_t pid, void* ctx) { return (*static_cast<IsDead*>(ctx))(pid); }, &is_dead,
                               lock_wait_ns);
}

}  // namespace shmq::detail
