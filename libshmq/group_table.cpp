#include "group_table.hpp"

#include <cstring>

#include "descriptor_list.hpp"

namespace shmq::detail {

std::uint64_t group_hash(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: the same in every process
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint32_t GroupTable::find(std::string_view id) const noexcept {
  const std::uint64_t hash = group_hash(id);
  for (std::uint32_t i = bucket(hash); i != 0; i = g_[i - 1].bucket_next) {
    const GroupRecord& g = g_[i - 1];
    if (g.hash == hash && g.id_bytes == id.size() && std::memcmp(g.id, id.data(), id.size()) == 0) return i - 1;
  }
  return kNil;
}

std::uint32_t GroupTable::find_or_create(std::string_view id) noexcept {
  if (const std::uint32_t found = find(id); found != kNil) return found;
  IndexRoots& r = h_.roots;
  std::uint32_t index = r.group_free_head;
  if (index != kNil) {
    r.group_free_head = g_[index].free_next;
  } else if (r.group_unused_from < h_.capacity) {
    index = r.group_unused_from++;
  } else {
    return kNil;
  }
  GroupRecord& g = g_[index];
  const std::uint64_t hash = group_hash(id);
  g.hash = hash;
  g.id_bytes = static_cast<std::uint16_t>(id.size());
  std::memcpy(g.id, id.data(), id.size());
  g.ready_head = g.ready_tail = kNil;
  g.in_flight = 0;
  g.messages = 0;
  g.ring_next = g.ring_prev = kNil;
  g.in_ring = 0;
  g.bucket_next = bucket(hash);
  bucket(hash) = index + 1;
  atom(g.in_use).store(1, std::memory_order_relaxed);  // identity complete: written last
  ++h_.counts.groups;
  return index;
}

void GroupTable::free_record(std::uint32_t index) noexcept {
  GroupRecord& g = g_[index];
  std::uint32_t* link = &bucket(g.hash);
  while (*link != 0 && *link != index + 1) link = &g_[*link - 1].bucket_next;
  if (*link == index + 1) *link = g.bucket_next;
  atom(g.in_use).store(0, std::memory_order_relaxed);
  g.free_next = h_.roots.group_free_head;
  h_.roots.group_free_head = index;
  --h_.counts.groups;
}

void GroupTable::drop_message(std::uint32_t group) noexcept {
  GroupRecord& g = g_[group];
  if (--g.messages == 0) {
    if (g.in_ring) {
      g.ready_head = kNil;
      update_ring(group);
    }
    free_record(group);
  }
}

void GroupTable::ready_insert(std::uint32_t group, std::uint32_t index) noexcept {
  GroupRecord& g = g_[group];
  // Walk back from the tail: new sends append at once; returned messages are
  // older than all but a few in-flight ones.
  std::uint32_t after = g.ready_tail;
  while (after != kNil && d_[after].seq > d_[index].seq) after = d_[after].prev;
  ReadyList(d_, g.ready_head, g.ready_tail).insert_after(after, index);
}

void GroupTable::ready_unlink(std::uint32_t group, std::uint32_t index) noexcept {
  ReadyList(d_, g_[group].ready_head, g_[group].ready_tail).unlink(index);
}

int GroupTable::update_ring(std::uint32_t group) noexcept {
  GroupRecord& g = g_[group];
  IndexRoots& r = h_.roots;
  const bool should = g.ready_head != kNil && g.in_flight == 0;
  if (should && !g.in_ring) {
    g.ring_next = kNil;
    g.ring_prev = r.ring_tail;
    if (r.ring_tail != kNil) {
      g_[r.ring_tail].ring_next = group;
    } else {
      r.ring_head = group;
    }
    r.ring_tail = group;
    g.in_ring = 1;
    return +1;
  }
  if (!should && g.in_ring) {
    if (g.ring_prev != kNil) {
      g_[g.ring_prev].ring_next = g.ring_next;
    } else {
      r.ring_head = g.ring_next;
    }
    if (g.ring_next != kNil) {
      g_[g.ring_next].ring_prev = g.ring_prev;
    } else {
      r.ring_tail = g.ring_prev;
    }
    g.ring_next = g.ring_prev = kNil;
    g.in_ring = 0;
    return -1;
  }
  return 0;
}

void GroupTable::reset_for_rebuild() noexcept {
  // A standard queue never uses its group tables: their pages were never
  // reserved (see Segment::create), and touching them could fault.
  if (!h_.fifo) return;
  IndexRoots& r = h_.roots;
  std::memset(buckets_, 0, sizeof(std::uint32_t) * h_.group_bucket_count);
  r.ring_head = r.ring_tail = kNil;
  r.group_free_head = kNil;
  h_.counts.groups = 0;
  for (std::uint32_t i = r.group_unused_from; i-- > 0;) {
    GroupRecord& g = g_[i];
    g.ready_head = g.ready_tail = kNil;
    g.in_flight = g.messages = 0;
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

void GroupTable::finish_rebuild() noexcept {
  for (std::uint32_t i = 0; i < h_.roots.group_unused_from; ++i) {
    if (atom(g_[i].in_use).load(std::memory_order_relaxed) && g_[i].messages == 0) free_record(i);
  }
}

}  // namespace shmq::detail
