// Test support, included by tests only: a random model written to a temporary folder, and a
// model loaded with its KV cache on a given backend. Failures are reported as gtest failures.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/decoder.h"
#include "model/random_model.h"

namespace mlxs::test_support {

// A model and its cache on `backend` (null model or cache when loading failed).
struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
};

// Writes random weights of `shape` (see random_model_config) in `dt` with `seed` into
// <temp>/<name> and returns the folder.
inline std::string write_test_model(const std::string& shape, DType dt, const std::string& name,
                                    uint64_t seed) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  auto config = random_model_config(shape);
  EXPECT_TRUE(config.ok());
  if (config.ok()) {
    EXPECT_TRUE(write_random_model(*config, dt, dir, seed).ok());
  }
  return dir.string();
}

// Loads the model in `dir` on `backend` with a KV cache of num_blocks x block_size tokens in
// `kv`.
inline LoadedModel load_test_model(std::unique_ptr<Backend> backend, const std::string& dir,
                                   int num_blocks, int block_size, DType kv) {
  LoadedModel l;
  l.backend = std::move(backend);
  auto m = Model::load(dir, *l.backend);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return l;
  l.model = std::move(*m);
  auto c = KvCache::create(*l.backend, l.model->config(), num_blocks, block_size, kv);
  EXPECT_TRUE(c.ok());
  if (c.ok()) l.cache = std::move(*c);
  return l;
}

}  // namespace mlxs::test_support
