// Memory the parent maps before fork() and every forked worker shares: an
// anonymous MAP_SHARED mapping, so workers hand results and start signals
// to the parent without a file, a socket or a transport under test.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>

namespace shmq::bench {

namespace detail {
// Maps `bytes` of zero-filled, pre-faulted shared anonymous memory. Throws
// std::system_error if mmap fails.
void* map_shared(std::size_t bytes);
void unmap_shared(void* base, std::size_t bytes) noexcept;
}  // namespace detail

// `size` default-constructed elements in shared anonymous memory. Elements
// must not own memory of this process (no std::string): a child sees only
// what lies in the mapping.
template <class T>
class SharedArray {
  static_assert(std::is_trivially_destructible_v<T>, "destructors do not run across processes");

 public:
  // Maps and constructs the elements. Throws std::system_error if mmap fails.
  explicit SharedArray(std::size_t size) : size_(size), data_(static_cast<T*>(detail::map_shared(bytes()))) {
    for (std::size_t i = 0; i < size_; ++i) new (data_ + i) T();
  }
  ~SharedArray() { detail::unmap_shared(data_, bytes()); }
  SharedArray(const SharedArray&) = delete;
  SharedArray& operator=(const SharedArray&) = delete;

  // Element i, the same memory in the parent and every child forked after
  // construction. No bounds check.
  T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }  // elements, not bytes

 private:
  std::size_t bytes() const noexcept { return size_ == 0 ? sizeof(T) : size_ * sizeof(T); }

  std::size_t size_;
  T* data_;
};

}  // namespace shmq::bench
