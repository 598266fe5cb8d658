// The Detokenizer's contract (tokenizer/detokenizer.h) as the tokenizer fuzzers check it: every
// delta is valid UTF-8; the deltas plus finish() equal decode() when the text has no U+FFFD (no
// invalid byte group that could change text already sent); otherwise the text after decode()'s
// last U+FFFD still ends the stream (nothing after the change is lost).
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "tokenizer/detokenizer.h"
#include "tokenizer/unicode.h"

namespace mlxs::fuzz {

inline void check_detokenizer(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  Detokenizer d(t, skip);
  std::string streamed;
  for (int32_t id : ids) {
    std::string delta = d.add(id);
    if (tok::valid_utf8_prefix(delta) != delta.size()) std::abort();
    streamed += delta;
  }
  streamed += d.finish();
  const std::string decoded = t.decode(ids, skip);
  const size_t last_replacement = decoded.rfind("\xEF\xBF\xBD");
  if (last_replacement == std::string::npos) {
    if (streamed != decoded) std::abort();
  } else if (!streamed.ends_with(decoded.substr(last_replacement + 3))) {
    std::abort();
  }
}

}  // namespace mlxs::fuzz
