// Test support for the engine tests: a generation drained to its end.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlxs/engine.h"

namespace mlxs::test_support {

struct Collected {
  std::vector<TokenChunk> tokens;
  std::vector<int32_t> ids;  // the tokens' ids
  std::string text;
  std::optional<MetadataChunk> meta;
  std::optional<ErrorChunk> error;
};

// Pulls every chunk of `g` until it is done.
inline Collected drain(Generator& g) {
  using namespace std::chrono_literals;
  Collected c;
  while (!g.done()) {
    auto chunk = g.next(5000ms);
    if (!chunk) continue;
    if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
      c.tokens.push_back(*t);
      c.ids.push_back(t->token_id);
      c.text += t->text;
    } else if (auto* m = std::get_if<MetadataChunk>(&*chunk)) {
      c.meta = *m;
    } else {
      c.error = std::get<ErrorChunk>(*chunk);
    }
  }
  return c;
}

}  // namespace mlxs::test_support
