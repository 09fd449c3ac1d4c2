// The layout of one queue's shared-memory segment (/shmq.<namespace>.<queue>).
// This is a file format: every process that maps the segment, at whatever
// address, reads it through these structs. Bump kLayoutMajor on any change
// that an older reader would misread.
//
//  offset 0
//  +--------------------------------------------------------------+
//  | SegmentHeader (4 KiB)                                        |
//  |   identity: magic, layout_version (release-stored last),     |
//  |             incarnation, sizes and table offsets, name       |
//  |   attributes: read lock-free on the data path                |
//  |   [cache line] robust process-shared mutex, hottest roots    |
//  |   [4 lines]    the other index roots, guarded by the mutex   |
//  |   [cache line] counts, readable without the mutex            |
//  |   [cache line] what receivers poll: ready_seq (their futex), |
//  |                waiters, available, next_deadline_ns          |
//  |   [cache line] submit_tail: the submit ring's producers      |
//  |   [cache line] reaper_seq: the daemon reaper's futex         |
//  |   [8 lines]    waiter_slots: sleeping receivers per process  |
//  |   [32 lines]   submit_cells: the submit ring, for sends      |
//  |                without the mutex (sequence | index)          |
//  +--------------------------------------------------------------+  descriptors_offset
//  | MessageDescriptor[capacity]   128 B each, addressed by index |
//  +--------------------------------------------------------------+  heap_offset
//  | uint32_t timer_heap[capacity] min-heap of descriptor indices |
//  |                               by deadline (delay/visibility) |
//  +--------------------------------------------------------------+  groups_offset
//  | GroupRecord[capacity]          message groups (FIFO, fair)   |
//  | uint32_t group_buckets[group_bucket_count]   hash index      |
//  +--------------------------------------------------------------+  dedup_offset
//  | DedupEntry[dedup_capacity]     FIFO 5-minute dedup window    |
//  | uint32_t dedup_buckets[dedup_bucket_count]   hash index      |
//  +--------------------------------------------------------------+  attempts_offset
//  | ReceiveAttempt[kAttemptSlots]  ReceiveRequestAttemptId cache |
//  +--------------------------------------------------------------+  metadata_offset
//  | char metadata[2][kMetadataBytes]  the daemon's JSON (tags,   |
//  |                               policy, redrive), two copies   |
//  +--------------------------------------------------------------+  order_map_offset
//  | uint8_t order_map[arena_bytes / 64]: order+1 at the head of  |
//  |                       each free arena block of 64 KiB or     |
//  |                       more, else 0                           |
//  +--------------------------------------------------------------+  arena_offset
//  | payload arena, arena_bytes: buddy blocks of 64 B .. 2 MiB;   |
//  | a block holds the body, then the message's attribute blob    |
//  +--------------------------------------------------------------+
//
// Everything is addressed by index or by offset from a base, never by
// pointer. Fields that several processes touch concurrently are plain
// integers accessed through std::atomic_ref (see `atom`), so the structs stay
// trivially copyable and standard-layout.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace shmq::detail {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::uint64_t kMagic = 0x3147455351'4d4853ull;  // "SHMQSEG1"
inline constexpr std::uint32_t kLayoutMajor = 6;
inline constexpr std::uint32_t kLayoutMinor = 1;  // 1: Totals (a segment of minor 0 reads zeros there)
inline constexpr std::uint32_t kLayoutVersion = (kLayoutMajor << 16) | kLayoutMinor;
inline constexpr std::uint32_t kNil = 0xffffffffu;
inline constexpr std::uint64_t kNilOffset = ~0ull;
inline constexpr std::size_t kMaxQueueName = 80;
inline constexpr std::size_t kMaxGroupId = 128;       // MessageGroupId, SQS's limit
inline constexpr std::uint32_t kAttemptSlots = 1024;  // receive attempts remembered
inline constexpr std::size_t kMetadataBytes = 64 * 1024;
inline constexpr std::uint32_t kWaiterSlots = 64;  // processes whose sleeping receivers are tracked
inline constexpr std::uint64_t kDedupWindowNs = 300ull * 1'000'000'000ull;  // 5 minutes
inline constexpr std::uint32_t kMaxCapacity = 1u << 24;      // descriptors a segment may have (address space)
inline constexpr std::uint32_t kDedupEntriesMax = 1u << 20;  // FIFO deduplication window entries at most
inline constexpr std::uint32_t kGroupBucketsMax = 1u << 20;  // FIFO group hash buckets at most
inline constexpr std::uint32_t kSubmitCells = 256;           // submit ring entries (sends without the mutex)

// Payload arena: buddy blocks from 2^kMinOrder to 2^kMaxOrder bytes; the
// arena is a whole number of maximal blocks.
inline constexpr unsigned kMinOrder = 6;   // 64 B
inline constexpr unsigned kMaxOrder = 21;  // 2 MiB: a 1 MiB message (SQS's largest) with its attribute blob
inline constexpr unsigned kOrderCount = kMaxOrder - kMinOrder + 1;
inline constexpr std::uint64_t kMaxBlock = 1ull << kMaxOrder;

template <class T>
inline std::atomic_ref<T> atom(T& field) noexcept {
  return std::atomic_ref<T>(field);
}

// Writes a field that is guarded by the mutex but also read without it, as
// a hint, by the prefetches before a critical section (free_head,
// unused_from, ready_head, descriptors' next, arena free-list heads). Under
// the mutex, plain reads stay correct; the store is atomic so that the
// lock-free reads are not data races. Relaxed: a hint orders nothing.
template <class T>
inline void store_hint(T& field, T value) noexcept {
  atom(field).store(value, std::memory_order_relaxed);
}

// MessageDescriptor::flags
inline constexpr std::uint8_t kHasSenderUid = 1;  // sender_uid is the SenderId
inline constexpr std::uint8_t kFromCache = 2;     // a slot cache's: counted in Counts::cached until committed

enum class MessageState : std::uint32_t {
  kFree = 0,      // on the free list
  kWriting = 1,   // reserved by a sender copying the payload outside the lock
  kReady = 2,     // on the ready list, visible to receivers
  kInFlight = 3,  // received; in the timer heap until its visibility timeout
  kDelayed = 4,   // sent with a delay; in the timer heap until it ends
  kRedrive = 5,   // received maxReceiveCount times: waits for the daemon to move it to the DLQ
  kCached = 6,    // held, with its block, in the slot cache of process owner_pid (sends without the mutex)
  kPending = 7,   // written by such a send: waits on the submit ring for a locker to commit it
};

// The state is the low byte of a descriptor's state word. A kCached slot's
// word also carries the low 24 bits of its generation above it, so that a
// send's claim (kCached -> kWriting) compares state and generation in one
// compare-and-swap: an entry of a cache filled before the slot was taken
// back and handed to another cache can never claim it (no ABA). Every other
// state's word is the state alone.
inline constexpr std::uint32_t kStateMask = 0xff;
constexpr std::uint32_t cached_word(std::uint32_t generation) noexcept {
  return static_cast<std::uint32_t>(MessageState::kCached) | (generation << 8);
}

// One message slot. The state word is the commit point of every transition:
// a transition writes all other fields first and the state last, so that the
// indexes can be rebuilt from the states alone after a crash.
struct MessageDescriptor {
  std::uint32_t state;             // MessageState; atomic_ref, written last
  std::uint32_t generation;        // bumped when the slot is freed; atomic_ref (copy validation)
  std::uint32_t receive_count;     // receives so far; part of the receipt handle
  std::uint32_t next;              // free-list or ready-list link, kNil at the end
  std::uint32_t prev;              // ready-list back link
  std::uint32_t heap_pos;          // index in timer_heap, kNil when not in it
  std::uint32_t owner_pid;         // sender's pid while kWriting (dead-client reclaim)
  std::uint32_t body_bytes;        // payload length
  std::uint32_t attr_bytes;        // message-attribute bytes after the body (reserved)
  std::uint8_t block_order;        // arena block size = 1 << block_order
  std::uint8_t flags;              // kHasSenderUid
  std::uint8_t reserved0[2];       // zero
  std::uint64_t block_offset;      // arena-relative offset of the payload block
  std::uint64_t seq;               // send order, assigned at commit
  std::uint64_t deadline_ns;       // CLOCK_MONOTONIC: delay end or visibility expiry
  std::uint64_t sent_ms;           // epoch ms at commit (SentTimestamp)
  std::uint64_t first_receive_ms;  // epoch ms of the first receive, 0 before it
  std::uint8_t message_id[16];     // UUID v4 bytes
  std::uint32_t group;             // GroupRecord index, kNil without a group
  std::uint32_t all_next;          // list of all live messages in send order (retention)
  std::uint32_t all_prev;
  std::uint32_t
      sender_uid;  // with kHasSenderUid: SenderId is this uid (not in the blob: a small body keeps a small block)
  std::uint64_t sent_ns;     // CLOCK_MONOTONIC at commit: retention deadline base
  std::uint32_t group_next;  // FIFO: its group's list of ready, in-flight and kRedrive messages, in send order
  std::uint32_t group_prev;  // (kRedrive messages are on the redrive list through next/prev as well)
};

// A message group. Its identity (in_use, hash, id) is written when it is
// created and is authoritative; its list, ring place and count are derived
// from the descriptors that name it and rebuilt after a crash.
//
// FIFO (see docs/fifo-groups.md): the list holds the group's ready,
// in-flight and kRedrive messages in send order. A message is delivered only
// from the run of ready messages at the list's head: everything after the
// group's first in-flight (or kRedrive) message waits behind it.
struct GroupRecord {
  std::uint32_t in_use;       // 1 while any message names this group; written last on create
  std::uint32_t bucket_next;  // hash chain, kNil at the end
  std::uint64_t hash;         // of the id bytes
  std::uint32_t head;         // the list (through group_next/prev): its oldest message
  std::uint32_t tail;         // ... and its newest
  std::uint32_t reserved0;    // zero
  std::uint32_t messages;     // messages of any state naming this group
  std::uint32_t ring_next;    // ring of groups a FIFO receive may take from: those whose head is ready
  std::uint32_t ring_prev;
  std::uint32_t in_ring;    // 1 while on the ring
  std::uint32_t free_next;  // free list of records
  std::uint16_t id_bytes;
  char id[kMaxGroupId];
  std::uint8_t reserved[14];  // zero
};

// One deduplication id seen in the last 5 minutes (FIFO queues). Entries
// are written once and expire in insertion order.
struct DedupEntry {
  std::uint32_t in_use;         // 1 while in the window; written last
  std::uint32_t bucket_next;    // hash chain
  std::uint64_t key[2];         // first 128 bits of SHA-256(scope, group, dedup id)
  std::uint64_t expires_ns;     // CLOCK_MONOTONIC
  std::uint64_t seq;            // the original message's sequence number
  std::uint8_t message_id[16];  // the original message's id
  std::uint32_t list_next;      // insertion order (= expiry order), or free list
  std::uint32_t reserved;       // zero
};

// What one ReceiveRequestAttemptId returned, for retries within 5 minutes.
struct ReceiveAttempt {
  std::uint64_t key[2];      // first 128 bits of SHA-256(attempt id); zero if unused
  std::uint64_t expires_ns;  // CLOCK_MONOTONIC
  std::uint32_t count;       // entries used
  std::uint32_t reserved;    // zero
  struct Entry {
    std::uint32_t index;
    std::uint32_t generation;
    std::uint32_t receive_count;
    std::uint32_t reserved;
  } messages[10];
};

// Index roots: guarded by the mutex, all derived from descriptor states and
// rebuilt after a locker died (see QueueCore::rebuild). Descriptors and arena
// blocks are handed out from a never-used tail before anything is recycled, so
// a fresh queue touches only the pages it uses.
//
// The roots start inside the mutex's cache line, and the ones every send,
// receive and delete writes come first: a process that takes the lock then
// finds them on the line it just took, instead of fetching more lines that
// the last locker, often on another core, left modified in its cache.
struct IndexRoots {
  // In the mutex's line:
  std::uint32_t free_head;   // free descriptor list
  std::uint32_t ready_head;  // oldest ready message
  std::uint32_t ready_tail;  // newest ready message
  std::uint32_t heap_size;   // entries in timer_heap
  std::uint32_t all_head;    // oldest live message (retention list)
  std::uint32_t all_tail;
  // The next line: sequence numbers and the arena's small blocks.
  std::uint32_t unused_from;                   // descriptors at and past this index were never used (all free)
  std::uint32_t redrive_head;                  // kRedrive messages, linked through next
  std::uint64_t next_seq;                      // next send sequence number
  std::uint64_t arena_free_bytes;              // free bytes, listed or untouched
  std::uint64_t arena_untouched;               // arena bytes at and past this offset were never handed out
  std::uint64_t arena_free_head[kOrderCount];  // arena-relative, kNilOffset if empty; smallest orders first
  std::uint32_t ring_head;                     // FIFO: groups whose oldest listed message is ready
  std::uint32_t ring_tail;
  std::uint32_t group_free_head;
  std::uint32_t group_unused_from;
  std::uint32_t dedup_free_head;
  std::uint32_t dedup_unused_from;
  std::uint32_t dedup_oldest;  // next to expire
  std::uint32_t dedup_newest;
  std::uint32_t attempt_cursor;     // next ReceiveAttempt slot to overwrite
  std::uint32_t arena_small_freed;  // 1 if a small block was freed since the last Arena::coalesce
  std::uint32_t max_generation;     // highest generation a freed descriptor got (see generation_base)
  std::uint32_t submit_head;        // the submit ring's consumer position (see SubmitRing)
};

// Giving memory back (QueueCore::trim): when a queue is empty, the daemon
// lowers the watermarks to zero and then punches out, a slice at a time and
// each under the mutex, whatever is still backed above them. Guarded by the
// mutex; not derived from the descriptors, so a rebuild keeps them.
struct TrimState {
  std::uint32_t generation_base;     // a descriptor taken from the untouched tail gets this generation: above
                                     // every generation a receipt handle issued before the last trim names
  std::uint32_t descriptors_backed;  // descriptors at and past unused_from may be backed below this index
  std::uint64_t arena_backed;        // arena bytes at and past arena_untouched may be backed below this offset
  std::uint64_t trims;               // times the queue gave its memory back
  std::uint64_t memory_in_use;       // bytes the watermarks cover (MemoryBudget); recomputed by a rebuild
};

// Processes' slot caches (QueueCore::refill_cache; docs/data-plane.md,
// "Sends without the mutex"). Guarded by the mutex; not derived from the
// descriptors, so a rebuild keeps them.
struct CacheState {
  std::uint32_t epoch;         // bumped by each take-back of the caches (full queue, purge, trim): a process
                               // whose cache was filled in an earlier epoch drops its entries (read lock-free)
  std::uint32_t reserved;      // zero
  std::uint64_t take_backs;    // take-backs of the caches so far (Stats)
  std::uint64_t refills;       // refills so far: a full queue takes the caches back only if one came since
  std::uint64_t refills_seen;  // refills as the last take-back found them
};

// Counts: written under the mutex, read lock-free (atomic_ref relaxed) by
// stats. One cache line.
struct Counts {
  std::uint32_t visible;
  std::uint32_t in_flight;
  std::uint32_t delayed;
  std::uint32_t writing;
  std::uint64_t sent_total;
  std::uint64_t received_total;
  std::uint64_t deleted_total;
  std::uint64_t recoveries;     // times a locker found the previous owner dead
  std::uint32_t redrive;        // messages waiting to move to the DLQ
  std::uint32_t groups;         // group records in use
  std::uint32_t dedup_entries;  // dedup ids in the window
  std::uint32_t cached;         // slots of processes' slot caches: kCached, or kWriting/kPending with kFromCache
};

// Totals of what left the queue other than by a delete: written under the
// mutex (add_total), read lock-free by stats. Rarely written, so on a line of
// their own past the hot fields. Added in layout minor 1; the header's tail
// was zeros before, so a segment of minor 0 counts from zero.
struct Totals {
  std::uint64_t expired_total;        // messages dropped at the end of the retention period
  std::uint64_t dead_lettered_total;  // messages moved to the dead-letter queue
  std::uint64_t reserved[6];          // zero
};

// Aligned to a page so that the descriptor table starts page-aligned.
struct alignas(4096) SegmentHeader {
  // Identity: written once at creation; layout_version last, with release.
  std::uint64_t magic;           // kMagic
  std::uint32_t layout_version;  // kLayoutVersion; 0 while the segment is being formatted
  std::uint32_t header_bytes;    // sizeof(SegmentHeader)
  std::uint64_t incarnation;     // random per creation; receipt handles carry it
  std::uint64_t segment_bytes;   // total mapped size
  std::uint32_t capacity;        // number of descriptors
  std::uint32_t corrupt;         // 0; 1 + SegmentCheck once a process found the segment corrupt while
                                 // attached (atomic_ref): every process then answers segment_corrupt
  std::uint64_t descriptors_offset;
  std::uint64_t heap_offset;
  std::uint64_t order_map_offset;
  std::uint64_t arena_offset;
  std::uint64_t arena_bytes;  // multiple of kMaxBlock
  char name[96];              // queue name, NUL-terminated
  std::uint64_t created_ms;   // epoch ms (CreatedTimestamp)

  // Attributes: written by the daemon (atomic_ref), read lock-free by clients.
  std::uint64_t last_modified_ms;      // LastModifiedTimestamp
  std::uint32_t visibility_timeout_s;  // VisibilityTimeout
  std::uint32_t maximum_message_size;  // MaximumMessageSize
  std::uint32_t receive_wait_s;        // ReceiveMessageWaitTimeSeconds
  std::uint32_t retention_s;           // MessageRetentionPeriod
  std::uint32_t delay_s;               // DelaySeconds
  std::uint32_t deleted;               // 1 once the queue is deleted: clients get queue_does_not_exist
  std::uint32_t daemon_epoch;          // bumped by each daemon that attaches, before it scans for dead senders
  std::uint32_t max_receive_count;     // RedrivePolicy maxReceiveCount; 0: no dead-letter queue
  std::uint32_t in_flight_limit;       // receives fail with too_many_in_flight past this
  std::uint32_t content_dedup;         // ContentBasedDeduplication
  std::uint32_t dedup_per_group;       // DeduplicationScope = messageGroup
  std::uint32_t throughput_per_group;  // FifoThroughputLimit = perMessageGroupId
  std::uint32_t metadata_active;       // which metadata copy is current
  std::uint32_t metadata_bytes[2];     // length of each copy's JSON
  std::uint64_t memory_limit;          // bytes of shared memory the queue may back (MemoryBudget); 0: no limit

  // Fixed at creation.
  std::uint32_t fifo;                // FifoQueue
  std::uint32_t group_bucket_count;  // power of two
  std::uint64_t groups_offset;
  std::uint64_t group_buckets_offset;
  std::uint64_t dedup_offset;
  std::uint64_t dedup_buckets_offset;
  std::uint32_t dedup_capacity;
  std::uint32_t dedup_bucket_count;  // power of two
  std::uint64_t attempts_offset;
  std::uint64_t metadata_offset;

  alignas(kCacheLine) pthread_mutex_t mutex;  // robust, process-shared
  IndexRoots roots;                           // guarded by mutex; starts in the mutex's line
  TrimState trim;                             // guarded by mutex
  CacheState caches;                          // guarded by mutex
  alignas(kCacheLine) Counts counts;          // written under mutex, read lock-free

  // What receivers poll, on one line that a send writes once: ready_seq
  // (they sleep on it; bumped whenever messages become visible), available
  // and next_deadline_ns (whether taking the lock could find anything).
  // Senders call futex_wake only while waiters is non-zero.
  alignas(kCacheLine) std::uint32_t ready_seq;
  std::uint32_t waiters;
  std::uint32_t available;         // messages a receive could take now: visible (standard) or groups
                                   // on the ring (FIFO); written under the mutex
  std::uint32_t reserved1;         // zero
  std::uint64_t next_deadline_ns;  // earliest timer or retention deadline, ~0 if none; written under the mutex

  // The daemon's reaper sleeps on reaper_seq until next_deadline_ns; a client
  // that sets an earlier deadline bumps it and wakes the reaper.
  // The submit ring's producer position: senders without the mutex
  // compare-and-swap it (see SubmitRing); its cells are a table of their own.
  alignas(kCacheLine) std::uint32_t submit_tail;

  alignas(kCacheLine) std::uint32_t reaper_seq;
  std::uint32_t reaper_waiting;      // 1 once a reaper serves the queue (it sleeps between turns)
  std::uint64_t reaper_deadline_ns;  // the deadline the reaper sleeps until

  // How many of `waiters` each process contributes, so that the daemon can
  // take back the count of a process killed while asleep (else every later
  // send would pay for a futex_wake). A receiver adds to waiters, then to its
  // slot; removes from its slot, then from waiters: a kill in between leaves
  // waiters too high (a spare wake-up), never too low (a lost one).
  struct WaiterSlot {
    std::uint32_t pid;    // 0: free; claimed with a compare-exchange
    std::uint32_t count;  // this process's receivers asleep now
  };
  alignas(kCacheLine) WaiterSlot waiter_slots[kWaiterSlots];

  // The submit ring's cells (SubmitRing): a descriptor index in the low
  // half, its sequence number in the high half, compare-and-swapped whole.
  alignas(kCacheLine) std::uint64_t submit_cells[kSubmitCells];

  alignas(kCacheLine) Totals totals;  // layout minor 1
};

// A free arena block stores its list links in its own first bytes.
struct FreeBlock {
  std::uint64_t next;  // arena-relative, kNilOffset at the end
  std::uint64_t prev;
};

// Shared memory must mean the same thing in every process: no vtables, no
// padding surprises, and atomics that never fall back to a lock (a lock would
// be private to one process).
static_assert(std::is_standard_layout_v<SegmentHeader> && std::is_trivially_copyable_v<SegmentHeader>);
static_assert(std::is_standard_layout_v<MessageDescriptor> && std::is_trivially_copyable_v<MessageDescriptor>);
static_assert(sizeof(MessageDescriptor) == 128, "two descriptors per 256 B; layout is part of the format");
static_assert(offsetof(MessageDescriptor, state) == 0, "state word first: the commit point of a transition");
static_assert(offsetof(MessageDescriptor, block_offset) % 8 == 0, "64-bit fields must not straddle: torn reads");
static_assert(sizeof(SegmentHeader) == 4096, "the header fills exactly one page");
static_assert(offsetof(SegmentHeader, mutex) % kCacheLine == 0);
static_assert(offsetof(SegmentHeader, ready_seq) % kCacheLine == 0, "futex word on its own line: senders write it");
static_assert(sizeof(pthread_mutex_t) != 40 ||  // x86-64 glibc; elsewhere they share less of it
                  offsetof(SegmentHeader, roots) + offsetof(IndexRoots, unused_from) ==
                      offsetof(SegmentHeader, mutex) + kCacheLine,
              "the hottest roots fill the rest of the mutex's line");
static_assert(sizeof(Counts) == kCacheLine, "counts on one line");
static_assert(sizeof(Totals) == kCacheLine, "totals on one line");
static_assert(offsetof(SegmentHeader, ready_seq) % 4 == 0, "futex words must be 4-byte aligned");
static_assert(offsetof(SegmentHeader, reaper_seq) % 4 == 0, "futex words must be 4-byte aligned");
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free, "a lock-based atomic is private to one process");
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free, "a lock-based atomic is private to one process");
static_assert(alignof(std::uint64_t) >= std::atomic_ref<std::uint64_t>::required_alignment);
static_assert(sizeof(FreeBlock) <= (1u << kMinOrder));
static_assert(std::is_standard_layout_v<GroupRecord> && std::is_trivially_copyable_v<GroupRecord>);
static_assert(sizeof(GroupRecord) == 192, "three cache lines; layout is part of the format");
static_assert(std::is_standard_layout_v<DedupEntry> && std::is_trivially_copyable_v<DedupEntry>);
static_assert(sizeof(DedupEntry) == 64, "one cache line; layout is part of the format");
static_assert(std::is_standard_layout_v<ReceiveAttempt> && std::is_trivially_copyable_v<ReceiveAttempt>);
static_assert(offsetof(MessageDescriptor, sent_ns) % 8 == 0, "64-bit fields must not straddle: torn reads");

}  // namespace shmq::detail
