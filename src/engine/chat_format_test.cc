// The chat format through the Engine: the template, the end-of-turn ids and the handle's flag
// come from the model folder at load; the server never reads the folder itself.
#include "engine/chat_format.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace mlxs {
namespace {

const std::string kDefaultModel =
    (std::filesystem::path(MLXS_SOURCE_DIR) / "models" / "default").string();

TEST(ChatFormat, TheEngineRendersTheModelsTemplateAndNamesItsEndOfTurn) {
  auto engine = create_engine({});
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  LoadModelOptions lo;
  lo.model = "default";
  lo.local_path = kDefaultModel;
  auto h = (*engine)->load_model(lo);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_TRUE(h->has_chat_template);
  auto im_end = (*engine)->tokenize("default", "<|im_end|>", false);
  ASSERT_TRUE(im_end.ok());
  EXPECT_EQ(h->end_of_turn_ids, im_end->tokens);  // the only marker this vocabulary has
  EXPECT_EQ((*engine)->get_model_info("default")->end_of_turn_ids, im_end->tokens);
  auto text = (*engine)->apply_chat_template("default", {{"system", "Be brief."}, {"user", "Hi"}});
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_EQ(*text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ((*engine)->apply_chat_template("other", {}).status().code(),
            ErrorCode::kModelNotLoaded);
}

TEST(ChatFormat, AFolderWithoutTokenizerConfigHasNoTemplate) {
  auto f = ChatFormat::load("m", "/nonexistent-folder", nullptr, {});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_FALSE(f->has_template());
  EXPECT_TRUE(f->end_of_turn_ids().empty());
  EXPECT_EQ(f->render({{"user", "Hi"}}).status().code(), ErrorCode::kInvalidRequest);
}

}  // namespace
}  // namespace mlxs
