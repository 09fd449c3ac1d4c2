// Receipt handles come from any client (library, shmqctl, HTTP): parse must
// accept exactly what to_string() writes, and nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "receipt_handle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto handle = shmq::detail::ReceiptHandle::parse(text);
  if (handle && handle->to_string() != text) std::abort();  // accepted something it would never write
  return 0;
}
