#include "runtime/stop_matcher.h"

#include <algorithm>

namespace mlxs {

std::string StopMatcher::feed(std::string_view delta, bool* stopped) {
  *stopped = false;
  pending_.append(delta);
  size_t first = std::string::npos;
  for (const auto& s : stops_) {
    size_t at = s.empty() ? std::string::npos : pending_.find(s);
    if (at < first) {
      first = at;
      matched_ = s;
    }
  }
  if (first != std::string::npos) {
    *stopped = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  size_t keep = holdback();
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

// Length of the longest suffix of pending_ that is a proper prefix of some stop sequence.
size_t StopMatcher::holdback() const {
  size_t best = 0;
  for (const auto& s : stops_) {
    size_t max_k = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size());
    for (size_t k = max_k; k > best; --k) {
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

}  // namespace mlxs
