// A GGUF model through the engine: the default model converted to a bf16 GGUF file loads by
// its file path (tokenizer, chat template and weights from the one file) and gives the same
// tokens, prompt and greedy text as the safetensors folder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "mlxs/engine.h"
#include "model/gguf_convert.h"

namespace mlxs {
namespace {

const std::string kModelDir = std::string(MLXS_SOURCE_DIR) + "/models/default";

TEST(GgufEngine, TheDefaultModelAsGgufMatchesItsFolder) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mlxs_gguf_engine_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string gguf = (dir / "default.bf16.gguf").string();
  ASSERT_TRUE(convert_to_gguf(kModelDir, gguf, "bf16").ok());
  EngineOptions o;
  o.env_overrides = false;
  o.device = Device::kCpu;
  auto e = create_engine(o);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  Engine& engine = **e;
  LoadModelOptions folder, file;
  folder.model = "folder";
  folder.local_path = kModelDir;
  file.model = "file";
  file.local_path = gguf;
  ASSERT_TRUE(engine.load_model(folder).ok());
  auto h = engine.load_model(file);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_TRUE(h->has_chat_template);

  const std::string text = "The quick brown fox, 12345 times: caf\xc3\xa9!";
  EXPECT_EQ(engine.tokenize("file", text)->tokens, engine.tokenize("folder", text)->tokens);
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "Hello there"}};
  auto want_prompt = engine.apply_chat_template("folder", chat);
  ASSERT_TRUE(want_prompt.ok());
  EXPECT_EQ(*engine.apply_chat_template("file", chat), *want_prompt);

  GeneratorParams p;
  p.prompt = *want_prompt;
  p.max_tokens = 24;
  p.temperature = 0;
  p.model = "folder";
  auto want = engine.generate(p);
  p.model = "file";
  auto got = engine.generate(p);
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_EQ(got->token_ids, want->token_ids);
  EXPECT_EQ(got->text, want->text);
  std::filesystem::remove_all(dir);
}

// A .gguf file is found by its name under model.search_directories, as a folder is.
TEST(GgufEngine, AFileUnderASearchDirectoryLoadsByName) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mlxs_gguf_search_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(convert_to_gguf(kModelDir, (dir / "small.gguf").string(), "bf16").ok());
  const std::string config = (dir / "config.yaml").string();
  std::ofstream(config) << "model:\n  search_directories: [\"" << dir.string() << "\"]\n";
  EngineOptions o;
  o.config_path = config;
  o.env_overrides = false;
  o.device = Device::kCpu;
  auto e = create_engine(o);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  LoadModelOptions lo;
  lo.model = "small.gguf";
  auto h = (*e)->load_model(lo);
  EXPECT_TRUE(h.ok()) << h.status().to_string();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mlxs
