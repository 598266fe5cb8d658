// Integers read from JSON that came from outside (a request body, a model folder's files), with
// their range checked before the value is used. nlohmann's get<int32_t>() truncates: 4294967361
// becomes 65, and a vocab_size of 2^32 + 8192 loads as 8192. Read through this instead.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

namespace mlxs {

// The value of `v` if it is a JSON integer in [lo, hi]; nullopt for any other value (a float, a
// string, an unsigned integer above INT64_MAX, or an integer out of the range).
inline std::optional<int64_t> json_int_in(const nlohmann::json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(INT64_MAX) || int64_t(u) < lo || int64_t(u) > hi) return std::nullopt;
    return int64_t(u);
  }
  if (!v.is_number_integer()) return std::nullopt;
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) return std::nullopt;
  return i;
}

}  // namespace mlxs
