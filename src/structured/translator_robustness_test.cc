// The translators on malformed and mutated input (fixed seeds): every input ends in a grammar or
// in kInvalidParams, never a crash, and every grammar they emit compiles (a translation that
// compile_gbnf refuses is a translator bug, not the client's).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

void expect_compiles_or_refused(const Result<std::string>& gbnf, const std::string& input) {
  if (!gbnf.ok()) {
    EXPECT_EQ(gbnf.status().code(), ErrorCode::kInvalidParams) << input;
    return;
  }
  Result<GrammarPtr> g = compile_gbnf(*gbnf);
  EXPECT_TRUE(g.ok()) << "the translation of " << input
                      << " does not compile: " << g.status().message() << "\n"
                      << *gbnf;
}

std::string mutate(std::string s, std::mt19937& rng) {
  static const std::vector<std::string> snippets = {"{",
                                                    "}",
                                                    "[",
                                                    "]",
                                                    ",",
                                                    ":",
                                                    "\"",
                                                    "\\",
                                                    "null",
                                                    "true",
                                                    "0",
                                                    "-1",
                                                    "1e400",
                                                    "\"type\"",
                                                    "\"$ref\":\"#\"",
                                                    "\"$ref\":\"#/$defs/x\"",
                                                    "\"allOf\":[{}]",
                                                    "\"anyOf\":[]",
                                                    "\"items\":false",
                                                    "\"pattern\":\"(\"",
                                                    "\"minLength\":999999",
                                                    "\"maxItems\":-1",
                                                    "\"enum\":[]",
                                                    "\"required\":[1]",
                                                    "\"properties\":[]",
                                                    "\xff",
                                                    "\xc3",
                                                    "\"\\ud800\""};
  int edits = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    size_t at = rng() % s.size();
    switch (rng() % 4) {
      case 0:
        s.erase(at, 1 + rng() % 8);
        break;
      case 1:
        s.insert(at, snippets[rng() % snippets.size()]);
        break;
      case 2:
        s[at] = static_cast<char>(rng() % 128);
        break;
      default:
        s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 16));
    }
  }
  return s;
}

TEST(TranslatorRobustness, MutatedCorpusSchemasCompileOrAreRefused) {
  std::ifstream in(std::string(MLXS_SOURCE_DIR) + "/tests/fixtures/structured/schemas.jsonl");
  std::mt19937 rng(20261207);
  int n = 0;
  for (std::string line; std::getline(in, line) && n < 120; ++n) {
    std::string schema = nlohmann::ordered_json::parse(line)["schema"].dump();
    for (int i = 0; i < 10; ++i) {
      std::string m = mutate(schema, rng);
      expect_compiles_or_refused(json_schema_to_gbnf(m), m);
    }
    JsonSchemaOptions spaced;
    spaced.any_whitespace = true;
    expect_compiles_or_refused(json_schema_to_gbnf(schema, spaced), schema);
  }
  EXPECT_GE(n, 100);
}

TEST(TranslatorRobustness, RandomPatternsCompileOrAreRefused) {
  const std::string alphabet = "ab01.*+?|()[]{}^$\\-,:dDwWsSuxnbBk<>=!\xc3\xa9";
  std::mt19937 rng(7);
  int translated = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string p;
    int len = 1 + static_cast<int>(rng() % 14);
    for (int j = 0; j < len; ++j) p += alphabet[rng() % alphabet.size()];
    Result<std::string> gbnf = regex_to_gbnf(p);
    translated += gbnf.ok();
    expect_compiles_or_refused(gbnf, p);
    std::string schema = nlohmann::json{{"type", "string"}, {"pattern", p}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    expect_compiles_or_refused(json_schema_to_gbnf(schema), schema);
  }
  EXPECT_GT(translated, 300);  // the mix exercises both outcomes
}

}  // namespace
}  // namespace mlxs::structured
