// Shared helpers for the tokenizer tests: the npm fixture tokenizers (loaded once per process)
// and the corpus units (the same split as reference/tokenizer_reference.py).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace mlxs::testing {

inline const std::vector<std::string>& fixture_names() {
  static const std::vector<std::string> names = {"llama3", "llama3_1", "qwen3", "gemma3", "llama2"};
  return names;
}

inline std::string fixture_dir(const std::string& name) {
  return std::string(MLXS_SOURCE_DIR) + "/.fixtures/tokenizers/" + name;
}

// The fixture tokenizer `name`, or nullptr when scripts/fetch-fixtures.sh has not been run.
inline const Tokenizer* fixture_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  if (!std::ifstream(fixture_dir(name) + "/tokenizer.json").good()) return nullptr;
  auto tok = Tokenizer::load(fixture_dir(name));
  if (!tok.ok()) return nullptr;
  return (cache[name] = std::move(tok).value()).get();
}

// The ids of `text`; a failed encode fails the calling test (and returns no ids).
inline std::vector<int32_t> encode_ok(const Tokenizer& t, std::string_view text,
                                      bool add_special_tokens = true) {
  auto ids = t.encode(text, add_special_tokens);
  EXPECT_TRUE(ids.ok()) << ids.status().to_string();
  return ids.ok() ? std::move(ids).value() : std::vector<int32_t>{};
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string corpus_dir() {
  return std::string(MLXS_SOURCE_DIR) + "/tests/fixtures/tokenizer/corpus";
}

inline const std::vector<std::string>& corpus_files() {
  static const std::vector<std::string> files = {
      "code.txt", "combining.txt", "digits.txt",   "emoji.txt",   "long_words.txt", "prose.txt",
      "rtl.txt",  "scripts.txt",   "specials.txt", "unusual.txt", "whitespace.txt"};
  return files;
}

// The units of a corpus file: the whole text when it is at most 100,000 bytes, then every line
// (text.split('\n') in Python: the '\n' removed, empty lines kept).
inline std::vector<std::string> corpus_units(const std::string& text) {
  std::vector<std::string> units;
  if (text.size() <= 100000) units.push_back(text);
  size_t start = 0;
  while (true) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      units.push_back(text.substr(start));
      break;
    }
    units.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return units;
}

}  // namespace mlxs::testing
