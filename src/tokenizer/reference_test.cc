// Conformance against the Hugging Face `tokenizers` reference: for every fixture tokenizer, the
// ids of every corpus unit (with and without special tokens) and a decode sample must be
// identical, 100 %. The reference files come from reference/tokenizer_reference.py (run where
// python has `tokenizers`); until they are committed the test skips and says so.
#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_test_util.h"

namespace mlxs {
namespace {

using testing::corpus_dir;
using testing::corpus_units;
using testing::read_all;

std::string reference_path(const std::string& name) {
  return std::string(MLXS_SOURCE_DIR) + "/tests/fixtures/tokenizer/reference/" + name + ".json.gz";
}

// The decompressed bytes of a gzip file, or "" when it cannot be read.
std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, n);
  gzclose(f);
  return out;
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, IdsAndDecodeMatchHuggingFace) {
  const std::string name = GetParam();
  const std::string path = reference_path(name);
  if (!std::ifstream(path).good()) {
    GTEST_SKIP() << path
                 << " is not there yet: run reference/tokenizer_reference.py where python has "
                 << "the `tokenizers` package, and commit its output";
  }
  const Tokenizer* t = testing::fixture_tokenizer(name);
  ASSERT_NE(t, nullptr) << "fixture tokenizer " << name
                        << " missing: run scripts/fetch-fixtures.sh";
  auto doc = nlohmann::json::parse(read_gzip(path), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << path << " is not gzip'd JSON";
  size_t num_units = 0, num_mismatch = 0;
  for (const auto& [file, ref] : doc["files"].items()) {
    auto units = corpus_units(read_all(corpus_dir() + "/" + file));
    ASSERT_EQ(units.size(), ref["num_units"].get<size_t>())
        << file << ": the corpus changed since the reference was made; regenerate it";
    for (size_t i = 0; i < units.size(); ++i, ++num_units) {
      auto ids = testing::encode_ok(*t, units[i], false);
      auto ids_special = testing::encode_ok(*t, units[i], true);
      bool same = ids == ref["ids"][i].get<std::vector<int32_t>>() &&
                  ids_special == ref["ids_special"][i].get<std::vector<int32_t>>();
      if (!same && ++num_mismatch <= 10) {
        ADD_FAILURE() << name << " " << file << " unit " << i
                      << " ids differ; text: " << units[i].substr(0, 200) << "\n expected "
                      << ref["ids"][i].dump().substr(0, 400);
      }
    }
    for (const auto& d : ref["decoded"]) {
      size_t unit = d[0];
      bool skip = d[1];
      auto ids = ref["ids_special"][unit].get<std::vector<int32_t>>();
      EXPECT_EQ(t->decode(ids, skip), d[2].get<std::string>())
          << name << " " << file << " unit " << unit << " skip_special " << skip;
    }
  }
  EXPECT_EQ(num_mismatch, 0u) << name << ": " << num_mismatch << " of " << num_units
                              << " units differ from Hugging Face";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceTest, ::testing::ValuesIn(testing::fixture_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mlxs
