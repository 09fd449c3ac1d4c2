#include "message_id.hpp"

#include <pthread.h>

#include <cstring>
#include <random>

#include "hex.hpp"

namespace shmq::detail {

namespace {

// xoshiro256++ (Blackman and Vigna): 128 random bits in a few instructions,
// where mt19937_64 spends about a hundred. Message ids need uniqueness, not
// secrecy, as SQS's own are not secrets.
struct Xoshiro256 {
  std::uint64_t s[4];

  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s[0] + s[3], 23) + s[0];
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

// Per thread, trivially initialized (no guard on each use): all zeros, the
// one state xoshiro must not have, until seeded.
thread_local Xoshiro256 rng{};

// Seeded from the kernel's entropy on first use, and again in a child after
// fork(): a child that inherited the state would issue its parent's next ids.
[[gnu::cold]] void seed() noexcept {
  static const int reseed_after_fork = ::pthread_atfork(nullptr, nullptr, [] { rng = Xoshiro256{}; });
  (void)reseed_after_fork;
  std::random_device device;
  for (auto& word : rng.s) word = std::uint64_t{device()} << 32 | device();
}

}  // namespace

std::array<std::uint8_t, 16> new_message_id() noexcept {
  if ((rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]) == 0) [[unlikely]]
    seed();
  std::array<std::uint8_t, 16> id;
  const std::uint64_t hi = rng.next();
  const std::uint64_t lo = rng.next();
  std::memcpy(id.data(), &hi, 8);
  std::memcpy(id.data() + 8, &lo, 8);
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

std::string format_message_id(const std::uint8_t (&bytes)[16]) {
  std::string text;
  format_message_id(bytes, text);
  return text;
}

void format_message_id(const std::uint8_t (&bytes)[16], std::string& out) {
  out.resize(kMessageIdLength);  // within the string's capacity once it held an id
  format_message_id(bytes, out.data());
}

char* format_message_id(const std::uint8_t (&bytes)[16], char* out) noexcept {
  // The 32 digits eight at a time, then the groups 8-4-4-4-12 apart.
  char digits[32];
  put_hex_bytes(digits, bytes, 16);
  std::memcpy(out, digits, 8);
  out[8] = '-';
  std::memcpy(out + 9, digits + 8, 4);
  out[13] = '-';
  std::memcpy(out + 14, digits + 12, 4);
  out[18] = '-';
  std::memcpy(out + 19, digits + 16, 4);
  out[23] = '-';
  std::memcpy(out + 24, digits + 20, 12);
  return out + kMessageIdLength;
}

}  // namespace shmq::detail
