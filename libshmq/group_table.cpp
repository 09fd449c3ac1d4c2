#include "group_table.hpp"

#include <cstring>

#include "descriptor_list.hpp"

namespace shmq::detail {

namespace {
using GroupList = DescriptorList<&MessageDescriptor::group_next, &MessageDescriptor::group_prev>;
}  // namespace

std::uint64_t group_hash(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: the same in every process
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint32_t GroupTable::unused_from() const {
  const std::uint32_t n = h_.roots.group_unused_from;
  if (n > capacity_) [[unlikely]] {
    segment_fault(SegmentCheck::kWatermark);
  }
  return n;
}

std::uint32_t GroupTable::find(std::string_view id) const {
  const std::uint64_t hash = group_hash(id);
  // A chain holds each record at most once: a longer one is a cycle.
  std::uint32_t steps = 0;
  for (std::uint32_t i = bucket(hash); i != 0;) {
    const GroupRecord& g = linked(i);
    if (g.hash == hash && g.id_bytes == id.size() && std::memcmp(g.id, id.data(), id.size()) == 0) return i - 1;
    if (++steps > capacity_) [[unlikely]] {
      segment_fault(SegmentCheck::kListCycle);
    }
    i = g.bucket_next;
  }
  return kNil;
}

std::uint32_t GroupTable::find_or_create(std::string_view id) {
  if (id.size() > kMaxGroupId) return kNil;  // the record has no room for it (a caller checks ids first)
  if (const std::uint32_t found = find(id); found != kNil) return found;
  IndexRoots& r = h_.roots;
  std::uint32_t index = r.group_free_head;
  if (index != kNil) {
    r.group_free_head = (*this)[index].free_next;
  } else if (const std::uint32_t from = unused_from(); from < capacity_) {
    index = from;
    r.group_unused_from = from + 1;
  } else {
    return kNil;
  }
  GroupRecord& g = (*this)[index];
  const std::uint64_t hash = group_hash(id);
  g.hash = hash;
  g.id_bytes = static_cast<std::uint16_t>(id.size());
  std::memcpy(g.id, id.data(), id.size());
  g.head = g.tail = kNil;
  g.reserved0 = 0;
  g.messages = 0;
  g.ring_next = g.ring_prev = kNil;
  g.in_ring = 0;
  g.bucket_next = bucket(hash);
  bucket(hash) = index + 1;
  atom(g.in_use).store(1, std::memory_order_relaxed);  // identity complete: written last
  ++h_.counts.groups;
  return index;
}

void GroupTable::free_record(std::uint32_t index) {
  GroupRecord& g = (*this)[index];
  std::uint32_t* link = &bucket(g.hash);
  for (std::uint32_t steps = 0; *link != 0 && *link != index + 1; link = &linked(*link).bucket_next) {
    if (++steps > capacity_) [[unlikely]] {
      segment_fault(SegmentCheck::kListCycle);
    }
  }
  if (*link == index + 1) *link = g.bucket_next;
  atom(g.in_use).store(0, std::memory_order_relaxed);
  g.free_next = h_.roots.group_free_head;
  h_.roots.group_free_head = index;
  --h_.counts.groups;
}

void GroupTable::drop_message(std::uint32_t group) {
  GroupRecord& g = (*this)[group];
  if (--g.messages == 0) {
    if (g.in_ring) {
      g.head = kNil;  // no message names it: nothing is listed
      update_ring(group);
    }
    free_record(group);
  }
}

void GroupTable::list_insert(std::uint32_t group, std::uint32_t index) {
  GroupRecord& g = (*this)[group];
  const std::uint64_t seq = desc(index).seq;
  // Walk back from the tail: a send appends at once; only a message whose
  // delay ended passes the later messages that were sent without one. At
  // most capacity_ steps: more is a cycle.
  std::uint32_t after = g.tail;
  for (std::uint32_t steps = 0; after != kNil; ++steps) {
    const MessageDescriptor& m = desc(after);
    if (m.seq <= seq) break;
    if (steps >= capacity_) [[unlikely]] {
      segment_fault(SegmentCheck::kListCycle);
    }
    after = m.group_prev;
  }
  GroupList(d_, capacity_, g.head, g.tail).insert_after(after, index);
}

void GroupTable::list_unlink(std::uint32_t group, std::uint32_t index) {
  GroupRecord& g = (*this)[group];
  // The neighbours must point back at it, and the ends at the record: else
  // the unlink would leave the group's head or tail on a freed message, and
  // the group's later messages unreachable.
  const MessageDescriptor& m = desc(index);
  const bool prev_ok =
      (m.group_prev == kNil) == (g.head == index) && (m.group_prev == kNil || desc(m.group_prev).group_next == index);
  const bool next_ok =
      (m.group_next == kNil) == (g.tail == index) && (m.group_next == kNil || desc(m.group_next).group_prev == index);
  if (!prev_ok || !next_ok) [[unlikely]] {
    segment_fault(SegmentCheck::kListCycle);
  }
  GroupList(d_, capacity_, g.head, g.tail).unlink(index);
}

int GroupTable::update_ring(std::uint32_t group) {
  GroupRecord& g = (*this)[group];
  IndexRoots& r = h_.roots;
  bool should = false;
  if (g.head != kNil) {
    // Relaxed: under the mutex, which orders every state write.
    const auto state = static_cast<MessageState>(atom(desc(g.head).state).load(std::memory_order_relaxed));
    // Only ready, in-flight and kRedrive messages are listed: a head in
    // another state was freed or never listed (a link another process broke).
    if (state != MessageState::kReady && state != MessageState::kInFlight && state != MessageState::kRedrive)
        [[unlikely]] {
      segment_fault(SegmentCheck::kDescriptorState);
    }
    should = state == MessageState::kReady;
  }
  if (should && !g.in_ring) {
    g.ring_next = kNil;
    g.ring_prev = r.ring_tail;
    if (r.ring_tail != kNil) {
      (*this)[r.ring_tail].ring_next = group;
    } else {
      r.ring_head = group;
    }
    r.ring_tail = group;
    g.in_ring = 1;
    return +1;
  }
  if (!should && g.in_ring) {
    if (g.ring_prev != kNil) {
      (*this)[g.ring_prev].ring_next = g.ring_next;
    } else {
      r.ring_head = g.ring_next;
    }
    if (g.ring_next != kNil) {
      (*this)[g.ring_next].ring_prev = g.ring_prev;
    } else {
      r.ring_tail = g.ring_prev;
    }
    g.ring_next = g.ring_prev = kNil;
    g.in_ring = 0;
    return -1;
  }
  return 0;
}

void GroupTable::reset_for_rebuild() {
  // A standard queue never uses its group tables: their pages were never
  // reserved (see Segment::create), and touching them could fault.
  if (!fifo_) return;
  IndexRoots& r = h_.roots;
  std::memset(buckets_, 0, sizeof(std::uint32_t) * (bucket_mask_ + 1));
  r.ring_head = r.ring_tail = kNil;
  r.group_free_head = kNil;
  h_.counts.groups = 0;
  for (std::uint32_t i = unused_from(); i-- > 0;) {
    GroupRecord& g = g_[i];
    g.head = g.tail = kNil;
    g.reserved0 = g.messages = 0;
    g.ring_next = g.ring_prev = kNil;
    g.in_ring = 0;
    if (atom(g.in_use).load(std::memory_order_relaxed)) {
      g.bucket_next = bucket(g.hash);
      bucket(g.hash) = i + 1;
      ++h_.counts.groups;
    } else {
      g.free_next = r.group_free_head;
      r.group_free_head = i;
    }
  }
}

void GroupTable::finish_rebuild() {
  if (!fifo_) return;
  const std::uint32_t n = unused_from();
  for (std::uint32_t i = 0; i < n; ++i) {
    if (atom(g_[i].in_use).load(std::memory_order_relaxed) && g_[i].messages == 0) free_record(i);
  }
}

}  // namespace shmq::detail
