#include "runtime/prompt_lookup.h"

#include <algorithm>

namespace mlxs {

std::vector<int32_t> prompt_lookup(std::span<const int32_t> tokens, int max_tokens, int min_ngram,
                                   int max_ngram) {
  const int len = int(tokens.size());
  if (max_tokens <= 0) return {};
  for (int n = std::min(max_ngram, len - 1); n >= std::max(min_ngram, 1); --n) {
    const std::span<const int32_t> suffix = tokens.last(size_t(n));
    // Latest start first; the occurrence must end before the suffix starts its last token.
    for (int start = len - n - 1; start >= 0; --start) {
      if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + start)) continue;
      const int from = start + n;
      const int to = std::min(len, from + max_tokens);
      return std::vector<int32_t>(tokens.begin() + from, tokens.begin() + to);
    }
  }
  return {};
}

}  // namespace mlxs
