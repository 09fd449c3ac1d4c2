// The pause a busy-wait loop makes between polls: it spares the other
// hyperthread and avoids a memory-order flush when the polled line changes.
#pragma once

namespace shmq::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace shmq::detail
