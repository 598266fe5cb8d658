// Test support for the engine tests: a generation drained to its end; an engine with the default
// model and a config of the test's own.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
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

// The default model's folder.
inline std::string default_model_dir() {
  return std::string(MLXS_SOURCE_DIR) + "/models/default";
}

// An engine configured by `yaml` (written to <temp>/<name>.yaml; no environment) with the
// default model loaded as "default", or null after a test failure.
inline std::unique_ptr<Engine> engine_with_config(const std::string& name,
                                                  const std::string& yaml) {
  const std::string cfg = ::testing::TempDir() + "/" + name + ".yaml";
  std::ofstream(cfg) << yaml;
  EngineOptions o;
  o.env_overrides = false;
  o.config_path = cfg;
  auto e = create_engine(o);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  if (!e.ok()) return nullptr;
  LoadModelOptions lo;
  lo.model = "default";
  lo.local_path = default_model_dir();
  auto h = (*e)->load_model(lo);
  EXPECT_TRUE(h.ok()) << h.status().to_string();
  return h.ok() ? std::move(*e) : nullptr;
}

}  // namespace mlxs::test_support
