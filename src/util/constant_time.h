// Comparing secrets (API keys) in time that depends only on their lengths, not on where they
// first differ: an == that returns at the first mismatching byte lets a client guess a key byte
// by byte from response times.
#pragma once

#include <cstddef>
#include <string_view>

namespace mlxs {

inline bool constant_time_equal(std::string_view given, std::string_view secret) {
  // Every byte of `given` is compared (against the secret, cycled) so the time does not depend on
  // where a mismatch is; a length difference makes the result false without an early exit.
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    const char s = secret.empty() ? '\0' : secret[i % secret.size()];
    diff |= static_cast<unsigned char>(given[i] ^ s);
  }
  return diff == 0;
}

}  // namespace mlxs
