#include "fault_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <new>
#include <utility>

namespace shmq::detail {

// A slot of the registry. The handler reads it lock-free as a seqlock reader;
// add and remove write it under g_mutex.
class FaultGuard::Mapping {
 public:
  // Odd while begin and end change. The handler passes such a slot by: a
  // mapping being registered is not touched yet, one being removed no longer.
  std::atomic<std::uint32_t> seq{0};
  std::atomic<std::uintptr_t> begin{0};  // 0: the slot is free
  std::atomic<std::uintptr_t> end{0};    // page-aligned
  std::atomic<bool> faulted{false};
  Mapping* next_free = nullptr;  // guarded by g_mutex
};

namespace {

constexpr std::size_t kChunkSlots = 64;

// Slots come in chunks that are never freed: the handler may be walking one
// on another thread at any time.
struct Chunk {
  FaultGuard::Mapping slots[kChunkSlots];
  std::atomic<Chunk*> next{nullptr};
};

std::atomic<Chunk*> g_chunks{nullptr};
std::mutex g_mutex;                     // guards g_free, Mapping::next_free and the writing of slots and of g_chunks
FaultGuard::Mapping* g_free = nullptr;  // slots not in use: add and remove are O(1)
std::atomic<std::uint64_t> g_faults{0};
std::atomic<bool> g_installed{false};
std::mutex g_install_mutex;
// Written before the handler is installed, read-only afterwards.
struct sigaction g_previous {};
std::uintptr_t g_page_size = 4096;
const char* g_why = "";

static_assert(std::atomic<std::uintptr_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the handler may only use lock-free atomics (async-signal-safe)");

void write_slot(FaultGuard::Mapping& m, std::uintptr_t begin, std::uintptr_t end) noexcept {
  const std::uint32_t s = m.seq.load(std::memory_order_relaxed);
  m.seq.store(s + 1, std::memory_order_relaxed);
  // Release fence: a reader that sees the new begin or end sees the odd seq.
  std::atomic_thread_fence(std::memory_order_release);
  m.begin.store(begin, std::memory_order_relaxed);
  m.end.store(end, std::memory_order_relaxed);
  m.seq.store(s + 2, std::memory_order_release);  // publishes the pair
}

// The registered mapping that holds `address`, or nullptr. Async-signal-safe:
// loads only.
FaultGuard::Mapping* find_mapping(std::uintptr_t address) noexcept {
  // Acquire: a chunk's slots are initialized before it is published.
  for (Chunk* c = g_chunks.load(std::memory_order_acquire); c != nullptr; c = c->next.load(std::memory_order_acquire)) {
    for (FaultGuard::Mapping& m : c->slots) {
      const std::uint32_t s = m.seq.load(std::memory_order_acquire);  // pairs with write_slot's last store
      if (s & 1) continue;
      const std::uintptr_t begin = m.begin.load(std::memory_order_relaxed);
      const std::uintptr_t end = m.end.load(std::memory_order_relaxed);
      // Acquire fence: the second seq load comes after the pair's loads.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (m.seq.load(std::memory_order_relaxed) != s) continue;  // changed meanwhile: being added or removed
      if (begin != 0 && address >= begin && address < end) return &m;
    }
  }
  return nullptr;
}

// What would have happened without the guard: the handler installed before,
// or the default action (a core dump naming the faulting address).
void pass_on(int sig, siginfo_t* info, void* context) noexcept {
  const struct sigaction& p = g_previous;
  if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
    if (p.sa_flags & SA_SIGINFO) {
      p.sa_sigaction(sig, info, context);
    } else {
      p.sa_handler(sig);
    }
    return;
  }
  // A fault cannot be ignored: SIG_IGN gets the default action too, as the
  // kernel gives it. Once the handler returns, a fault of this thread's own
  // access is raised again by the retried access; a signal sent by a process
  // is raised again here (pending until the handler returns).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  if (info == nullptr || info->si_code <= 0) ::raise(sig);
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  // si_code > 0: the kernel's, for an access of this thread; not kill or sigqueue.
  if (info != nullptr && info->si_code > 0) {
    const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    if (FaultGuard::Mapping* m = find_mapping(address)) {
      const std::uintptr_t from = address & ~(g_page_size - 1);
      const std::uintptr_t to = m->end.load(std::memory_order_relaxed);
      // Zero pages from the fault to the mapping's end, where the file has
      // (or may soon have) no pages. mmap is a bare system call: async-signal-
      // safe; called through syscall() so that no sanitizer interceptor runs
      // (each argument a long: syscall() hands them on as longs).
      const long mapped =
          ::syscall(SYS_mmap, static_cast<long>(from), static_cast<long>(to - from), long{PROT_READ | PROT_WRITE},
                    long{MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS}, -1L, 0L);
      if (mapped != -1) {
        m->faulted.store(true, std::memory_order_release);  // pairs with faulted()'s acquire
        g_faults.fetch_add(1, std::memory_order_release);
        errno = saved_errno;
        return;  // the access is retried and reads zeros
      }
    }
  }
  errno = saved_errno;
  pass_on(sig, info, context);
}

}  // namespace

bool FaultGuard::install() noexcept {
  std::lock_guard lock(g_install_mutex);
  if (g_installed.load()) return true;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) g_page_size = static_cast<std::uintptr_t>(page);
  struct sigaction act {};
  act.sa_sigaction = on_sigbus;
  // SA_NODEFER is not set: a second SIGBUS inside the handler (a bug) takes
  // the default action.
  act.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (::sigaction(SIGBUS, nullptr, &g_previous) != 0) {
    g_why = "sigaction(SIGBUS) failed";
    return false;
  }
  if (::sigaction(SIGBUS, &act, nullptr) != 0) {
    g_why = "sigaction(SIGBUS) failed";
    return false;
  }
  // AddressSanitizer with handle_sigbus=2 keeps SIGBUS to itself and drops
  // the call above without a word: read back what is installed.
  struct sigaction now {};
  if (::sigaction(SIGBUS, nullptr, &now) != 0 || !(now.sa_flags & SA_SIGINFO) || now.sa_sigaction != on_sigbus) {
    g_why = "another SIGBUS handler keeps the signal to itself, as AddressSanitizer does with handle_sigbus=2";
    return false;
  }
  g_why = "";
  g_installed.store(true);
  return true;
}

bool FaultGuard::installed() noexcept { return g_installed.load(); }

const char* FaultGuard::why_inactive() noexcept { return g_why; }

FaultGuard::Mapping* FaultGuard::add(void* base, std::size_t bytes) noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(base);
  const auto page = static_cast<std::uintptr_t>(::getpagesize());
  const std::uintptr_t end = (begin + bytes + page - 1) & ~(page - 1);  // the kernel maps whole pages
  std::lock_guard lock(g_mutex);
  if (g_free == nullptr) {
    auto* chunk = new (std::nothrow) Chunk;
    if (chunk == nullptr) return nullptr;
    for (Mapping& m : chunk->slots) {
      m.next_free = g_free;
      g_free = &m;
    }
    chunk->next.store(g_chunks.load(std::memory_order_relaxed), std::memory_order_relaxed);
    g_chunks.store(chunk, std::memory_order_release);  // see find_mapping
  }
  Mapping* slot = std::exchange(g_free, g_free->next_free);
  slot->faulted.store(false, std::memory_order_relaxed);  // published by write_slot's release
  write_slot(*slot, begin, end);
  return slot;
}

void FaultGuard::remove(Mapping* mapping) noexcept {
  if (mapping == nullptr) return;
  std::lock_guard lock(g_mutex);
  write_slot(*mapping, 0, 0);
  mapping->next_free = std::exchange(g_free, mapping);
}

bool FaultGuard::faulted(const Mapping* mapping) noexcept {
  return mapping != nullptr && mapping->faulted.load(std::memory_order_acquire);
}

std::uint64_t FaultGuard::faults() noexcept {
  // Acquire: pairs with the handler's increment, after its faulted store.
  return g_faults.load(std::memory_order_acquire);
}

}  // namespace shmq::detail
