// Malformed safetensors files: each case gives a ModelLoadError naming the file (and the tensor
// where there is one), never a crash.
#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace mlxs {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mlxs_st_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file with header `h` (dumped as is) followed by `data_bytes` bytes.
  std::string write_raw(const std::string& header, size_t data_bytes, uint64_t claimed = 0) {
    std::string path = (dir_ / "m.safetensors").string();
    std::ofstream out(path, std::ios::binary);
    uint64_t n = claimed ? claimed : header.size();
    for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
    out << header << std::string(data_bytes, '\x11');
    return path;
  }
  std::string write(const nlohmann::json& h, size_t data_bytes) {
    return write_raw(h.dump(), data_bytes);
  }

  // Opens `path` and expects a ModelLoadError whose message contains each of `needles`.
  void expect_error(const std::string& path, std::initializer_list<const char*> needles) {
    auto f = SafetensorsFile::open(path);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), ErrorCode::kModelLoadError);
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
    for (const char* n : needles) {
      EXPECT_NE(f.status().message().find(n), std::string::npos) << f.status().message();
    }
  }

  static nlohmann::json entry(const char* dtype, std::vector<int64_t> shape, size_t b, size_t e) {
    return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {b, e}}};
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, ReadsAValidFileAndItsMetadata) {
  nlohmann::json h = {{"__metadata__", {{"format", "pt"}}},
                      {"a", entry("F32", {2, 2}, 0, 16)},
                      {"b", entry("BF16", {3}, 16, 22)}};
  auto f = SafetensorsFile::open(write(h, 22));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->tensors().size(), 2u);
  EXPECT_EQ((*f)->tensors().at("b").dtype, DType::kBF16);
  EXPECT_EQ((*f)->tensors().at("b").nbytes, 6u);
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
}

TEST_F(SafetensorsTest, RoundTripsThroughTheWriter) {
  float a[3] = {1.5f, -2.f, 3.25f};
  std::string path = (dir_ / "w.safetensors").string();
  ASSERT_TRUE(write_safetensors(path, {{"x", DType::kF32, {3}, a, nullptr}}).ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(static_cast<const float*>((*f)->tensors().at("x").data)[2], 3.25f);
}

TEST_F(SafetensorsTest, FileShorterThanTheLengthPrefix) {
  std::string path = (dir_ / "short.safetensors").string();
  std::ofstream(path) << "abc";
  expect_error(path, {"too short"});
}

TEST_F(SafetensorsTest, HeaderLengthBeyondTheFile) {
  expect_error(write_raw("{}", 0, 1000), {"header length 1000", "truncated"});
}

TEST_F(SafetensorsTest, HeaderIsNotJson) {
  expect_error(write_raw("{not json", 0), {"header", "not valid JSON"});
  expect_error(write_raw("[1, 2]", 0), {"header", "not a JSON object"});
}

TEST_F(SafetensorsTest, TruncatedDataSection) {
  expect_error(write({{"w", entry("F32", {4}, 0, 16)}}, 10), {"'w'", "past the end", "truncated"});
}

TEST_F(SafetensorsTest, OffsetsOutsideTheFile) {
  expect_error(write({{"w", entry("F32", {1}, 100, 104)}}, 8), {"'w'", "past the end"});
}

TEST_F(SafetensorsTest, BeginAfterEnd) {
  expect_error(write({{"w", entry("F32", {0}, 8, 4)}}, 8), {"'w'", "begin > end"});
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  nlohmann::json h = {{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}};
  expect_error(write(h, 12), {"'b'", "overlaps"});
}

TEST_F(SafetensorsTest, HoleInTheDataSection) {
  expect_error(write({{"a", entry("F32", {1}, 4, 8)}}, 8), {"'a'", "hole"});
}

TEST_F(SafetensorsTest, TrailingBytesBelongToNoTensor) {
  expect_error(write({{"a", entry("F32", {1}, 0, 4)}}, 8), {"belong to no tensor"});
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expect_error(write({{"q", entry("F8_E5M2", {4}, 0, 4)}}, 4),
               {"'q'", "unsupported dtype 'F8_E5M2'"});
}

TEST_F(SafetensorsTest, ShapeDoesNotMatchByteSize) {
  expect_error(write({{"w", entry("BF16", {3, 3}, 0, 16)}}, 16),
               {"'w'", "byte size 16", "[3, 3]", "18 bytes"});
}

TEST_F(SafetensorsTest, NegativeDimension) {
  nlohmann::json h = {{"w", {{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 4}}}}};
  expect_error(write(h, 4), {"'w'", "negative"});
}

TEST_F(SafetensorsTest, MissingDataOffsets) {
  nlohmann::json h = {{"w", {{"dtype", "F32"}, {"shape", {1}}}}};
  expect_error(write(h, 4), {"'w'", "data_offsets"});
}

TEST_F(SafetensorsTest, MissingAndUnexpectedTensorsInAStore) {
  nlohmann::json h = {{"a", entry("F32", {1}, 0, 4)}, {"extra", entry("F32", {1}, 4, 8)}};
  fs::rename(write(h, 8), dir_ / "model.safetensors");
  auto store = WeightStore::open_dir(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto missing = store->take("b");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing tensor 'b'"), std::string::npos);
  auto wrong = store->take("a", {2});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("has shape [1], expected [2]"), std::string::npos);
  ASSERT_TRUE(store->take("a").ok());
  EXPECT_EQ(store->untaken(), std::vector<std::string>{"extra"});
}

TEST_F(SafetensorsTest, ShardedIndexWithDuplicateTensor) {
  nlohmann::json h = {{"a", entry("F32", {1}, 0, 4)}};
  fs::rename(write(h, 4), dir_ / "s1.safetensors");
  fs::copy_file(dir_ / "s1.safetensors", dir_ / "s2.safetensors");
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})";
  auto store = WeightStore::open_dir(dir_.string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("'a' also appears in"), std::string::npos);
}

// Regression (security audit): index entries and symlinks were opened outside the model folder,
// and a FIFO in place of a weights file hung the load forever.
TEST_F(SafetensorsTest, FilesOutsideTheFolderAreRefusedUnlessAllowed) {
  nlohmann::json h = {{"a", entry("F32", {1}, 0, 4)}};
  const fs::path outside = dir_ / "outside";
  const fs::path model = dir_ / "model";
  fs::create_directories(outside);
  fs::create_directories(model);
  fs::rename(write(h, 4), outside / "w.safetensors");
  std::ofstream(model / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "../outside/w.safetensors"}})";
  auto escaped = WeightStore::open_dir(model.string());
  ASSERT_FALSE(escaped.ok());
  EXPECT_NE(escaped.status().message().find("outside the model folder"), std::string::npos)
      << escaped.status().message();
  EXPECT_NE(escaped.status().message().find("model.allow_files_outside_model_dir"),
            std::string::npos);
  ModelFileAccess allow;
  allow.allow_outside = true;
  EXPECT_TRUE(WeightStore::open_dir(model.string(), allow).ok());

  fs::remove(model / "model.safetensors.index.json");
  fs::create_symlink(outside / "w.safetensors", model / "model.safetensors");
  auto linked = WeightStore::open_dir(model.string());
  ASSERT_FALSE(linked.ok());
  EXPECT_NE(linked.status().message().find("outside the model folder"), std::string::npos);
  EXPECT_TRUE(WeightStore::open_dir(model.string(), allow).ok());

  // A symlink that stays inside the folder is fine (shards linked to one blob, say).
  fs::remove(model / "model.safetensors");
  fs::copy_file(outside / "w.safetensors", model / "blob");
  fs::create_symlink("blob", model / "model.safetensors");
  EXPECT_TRUE(WeightStore::open_dir(model.string()).ok());
}

TEST_F(SafetensorsTest, AFifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((dir_ / "model.safetensors").c_str(), 0600), 0);
  auto store = WeightStore::open_dir(dir_.string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a regular file"), std::string::npos)
      << store.status().message();
}

TEST_F(SafetensorsTest, FolderWithoutWeights) {
  auto store = WeightStore::open_dir(dir_.string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("no *.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace mlxs
