// Test support for the server tests: a fixture whose suite shares one engine with the default
// model loaded (loading it per test would dominate the suite's time).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>

#include "mlxs/engine.h"
#include "server/generation_request.h"

namespace mlxs::server::test_support {

class DefaultModelSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = create_engine({});
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e).release();
    LoadModelOptions lo;
    lo.model = "default";
    lo.local_path = (std::filesystem::path(MLXS_SOURCE_DIR) / "models" / "default").string();
    auto h = engine_->load_model(lo);
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    model_ = new ServedModel(served_model_of(*h));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete engine_;
    model_ = nullptr;
    engine_ = nullptr;
  }

  static inline Engine* engine_ = nullptr;
  static inline ServedModel* model_ = nullptr;
};

}  // namespace mlxs::server::test_support
