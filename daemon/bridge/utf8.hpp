// UTF-8 as the bridge meets it: request bytes are arbitrary, but JSON and
// XML answers must be well-formed whatever a client sent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace shmq::bridge {

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF).
bool valid_utf8(std::string_view text) noexcept;

// Calls `emit(code_point)` for each character of `text`, and with U+FFFD for
// each byte that does not begin a well-formed sequence.
template <typename Emit>
void for_each_code_point(std::string_view text, Emit&& emit);

// Appends `code_point` to `out` as UTF-8.
void append_utf8(std::string& out, char32_t code_point);

// `text` for quoting in an error message: ill-formed bytes become U+FFFD and
// anything past `max_bytes` becomes "...", so that an answer never echoes
// megabytes of a request.
std::string quoted_input(std::string_view text, std::size_t max_bytes = 256);

// --- implementation ---------------------------------------------------------

namespace detail {
// The length of the well-formed sequence at text[i] and its code point; 0 if
// the bytes there are not one.
std::size_t decode_utf8(std::string_view text, std::size_t i, char32_t& code_point) noexcept;
}  // namespace detail

template <typename Emit>
void for_each_code_point(std::string_view text, Emit&& emit) {
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const std::size_t n = detail::decode_utf8(text, i, cp);
    if (n == 0) {
      emit(char32_t{0xFFFD});
      ++i;
    } else {
      emit(cp);
      i += n;
    }
  }
}

}  // namespace shmq::bridge
