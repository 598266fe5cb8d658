#include "runtime/step_inputs.h"

#include <algorithm>
#include <limits>

namespace mlxs {

Status apply_token_bitmask(std::span<const uint32_t> words, std::span<float> logits) {
  size_t num_allowed = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const bool allowed = i / 32 < words.size() && (words[i / 32] >> (i % 32) & 1u);
    if (allowed) {
      ++num_allowed;
    } else {
      logits[i] = -std::numeric_limits<float>::infinity();
    }
  }
  if (num_allowed == 0) {
    return error(ErrorCode::kInvalidParams, "the token mask allows none of the " +
                                                std::to_string(logits.size()) +
                                                " tokens of the vocabulary");
  }
  return {};
}

std::vector<EmbeddingSplice> splices_in(std::span<const EmbeddingSplice> splices, int begin,
                                        int end, int hidden_size) {
  std::vector<EmbeddingSplice> out;
  for (const EmbeddingSplice& s : splices) {
    const int from = std::max(begin, s.position);
    const int to = std::min(end, s.position + s.num_rows);
    if (from >= to) continue;
    const auto first = s.data.begin() + ptrdiff_t(from - s.position) * hidden_size;
    out.push_back({from - begin, to - from,
                   std::vector<float>(first, first + ptrdiff_t(to - from) * hidden_size)});
  }
  return out;
}

int accept_proposals(std::span<const int32_t> proposals, std::span<const int32_t> verified) {
  int n = 0;
  while (size_t(n) < proposals.size() && size_t(n) < verified.size() &&
         proposals[size_t(n)] == verified[size_t(n)]) {
    ++n;
  }
  return n;
}

}  // namespace mlxs
