// GGUF reader: a valid file reads back; each malformed header (built byte by byte) gives a
// ModelLoadError naming the file and the key or tensor, never a crash.
#include "model/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "model/gguf_writer.h"

namespace mlxs {
namespace {

// Hand-built GGUF bytes.
struct Bytes {
  std::string b;
  Bytes& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Bytes& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  Bytes& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  Bytes& header(uint64_t tensors, uint64_t keys, uint32_t version = 3) {
    return u32(0x46554747u).u32(version).u64(tensors).u64(keys);
  }
  // A u32 key-value pair.
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  // A tensor info.
  Bytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
                uint64_t offset) {
    str(name).u32(uint32_t(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(size_t alignment = 32) {
    b.resize((b.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  Bytes& data(size_t n) {
    b.append(n, '\x11');
    return *this;
  }
};

const char* kPath = "/models/x.gguf";

Result<std::unique_ptr<GgufFile>> parse(const std::string& bytes) {
  return GgufFile::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), kPath);
}

void expect_error(const std::string& bytes, std::initializer_list<const char*> needles) {
  auto f = parse(bytes);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kModelLoadError);
  EXPECT_NE(f.status().message().find(kPath), std::string::npos) << f.status().message();
  for (const char* n : needles) {
    EXPECT_NE(f.status().message().find(n), std::string::npos) << f.status().message();
  }
}

TEST(Gguf, ReadsWhatTheWriterWrote) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_i32("neg", -3);
  w.set_f32("llama.rope.freq_base", 500000.f);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_strings("tokenizer.ggml.tokens", {"a", "", "c"});
  w.set_f32s("tokenizer.ggml.scores", {0.5f, -1.f});
  w.set_i32s("tokenizer.ggml.token_type", {1, 3});
  std::vector<uint8_t> f32(2 * 3 * 4);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = uint8_t(i);
  w.add_tensor("a.weight", GgmlType::kF32, {2, 3}, f32);
  w.add_tensor("b.weight", GgmlType::kQ8_0, {1, 64}, std::vector<uint8_t>(68, 7));
  const std::string bytes = w.serialize();
  auto f = parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.get_string("general.architecture"), "llama");
  EXPECT_EQ(*g.get_uint("llama.block_count"), 2u);
  EXPECT_EQ(*g.get_float("llama.rope.freq_base"), 500000.0);
  EXPECT_TRUE(*g.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(g.get_strings("tokenizer.ggml.tokens")->size(), 3u);
  EXPECT_EQ((*g.get_strings("tokenizer.ggml.tokens"))[2], "c");
  EXPECT_EQ(*g.get_floats("tokenizer.ggml.scores"), (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(*g.get_ints("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, 3}));
  ASSERT_EQ(g.tensors().size(), 2u);
  const GgufTensor& a = g.tensors().at("a.weight");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a.rows(), 2);
  EXPECT_EQ(a.nbytes, 24u);
  EXPECT_EQ(a.data[5], 5);
  const GgufTensor& b = g.tensors().at("b.weight");
  EXPECT_EQ(b.nbytes, 68u);
  EXPECT_EQ(b.data[67], 7);
  EXPECT_EQ((b.data - reinterpret_cast<const uint8_t*>(bytes.data())) % 32, 0);
}

TEST(Gguf, TypedGettersNameTheKey) {
  GgufWriter w;
  w.set_string("s", "x");
  w.set_i32("neg", -1);
  const std::string bytes = w.serialize();
  auto f = parse(bytes);
  ASSERT_TRUE(f.ok());
  auto u = (*f)->get_uint("s");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("'s': expected an integer, got string"), std::string::npos)
      << u.status().message();
  EXPECT_FALSE((*f)->get_uint("neg").ok());
  EXPECT_NE((*f)->get_string("gone").status().message().find("'gone': missing"), std::string::npos);
  EXPECT_FALSE((*f)->get_strings("s").ok());
  EXPECT_FALSE((*f)->get_bool("s").ok());
}

TEST(Gguf, RefusesABadMagicOrVersionOrTruncatedHeader) {
  expect_error("GGUX" + Bytes().u32(3).u64(0).u64(0).b, {"not a GGUF file"});
  expect_error(Bytes().header(0, 0, 1).b, {"version 1 is not supported"});
  expect_error(Bytes().header(0, 0, 4).b, {"version 4"});
  expect_error(Bytes().u32(0x46554747u).u32(3).u64(0).b, {"truncated GGUF header"});
  expect_error("", {"not a GGUF file"});
}

TEST(Gguf, RefusesHugeCounts) {
  expect_error(Bytes().header(uint64_t(1) << 40, 0).b, {"tensor count"});
  expect_error(Bytes().header(0, uint64_t(1) << 40).b, {"key-value count"});
  // A plausible count whose entries are not there.
  expect_error(Bytes().header(0, 3).kv_u32("a", 1).b, {"key 1", "truncated string length"});
}

TEST(Gguf, RefusesBadKeys) {
  expect_error(Bytes().header(0, 1).u64(1000).b, {"key 0", "runs past the end"});
  expect_error(Bytes().header(0, 1).str(std::string(70000, 'k')).b, {"key 0", "exceeds the limit"});
  expect_error(Bytes().header(0, 1).str("").u32(4).u32(1).b, {"key 0 is empty"});
  expect_error(Bytes().header(0, 2).kv_u32("a", 1).kv_u32("a", 2).b, {"'a' appears twice"});
}

TEST(Gguf, RefusesBadValues) {
  expect_error(Bytes().header(0, 1).str("k").u32(13).b, {"'k'", "value type 13"});
  expect_error(Bytes().header(0, 1).str("k").u32(4).b, {"'k'", "truncated u32"});
  expect_error(Bytes().header(0, 1).str("k").u32(8).u64(99).str("").b, {"'k'", "runs past"});
  expect_error(Bytes().header(0, 1).str("k").u32(9).u32(77).u64(1).b,
               {"'k'", "array element type 77"});
  expect_error(Bytes().header(0, 1).str("k").u32(9).u32(9).u64(1).b, {"'k'", "nested arrays"});
  expect_error(Bytes().header(0, 1).str("k").u32(9).u32(4).u64(uint64_t(1) << 61).b,
               {"'k'", "array of 2305843009213693952 u32 runs past the end"});
  expect_error(Bytes().header(0, 1).str("k").u32(9).u32(8).u64(uint64_t(1) << 40).b,
               {"'k'", "strings runs past the end"});
  expect_error(Bytes().header(0, 1).str("k").u32(9).u32(8).u64(2).str("a").u64(50).b,
               {"'k'", "element 1", "runs past the end"});
}

TEST(Gguf, RefusesABadAlignment) {
  expect_error(Bytes().header(0, 1).kv_u32("general.alignment", 24).b,
               {"'general.alignment' must be a u32 power of two, got 24"});
  expect_error(Bytes().header(0, 1).kv_u32("general.alignment", 0).b, {"general.alignment"});
  expect_error(Bytes().header(0, 1).str("general.alignment").u32(8).str("32").b,
               {"general.alignment", "got string"});
}

TEST(Gguf, RefusesBadTensorInfos) {
  auto one = [](const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset,
                size_t data) {
    return Bytes().header(1, 0).tensor(name, dims, type, offset).pad().data(data).b;
  };
  expect_error(one(std::string(65, 'n'), {4}, 0, 0, 16), {"tensor 0 name", "exceeds the limit"});
  expect_error(one("t", {}, 0, 0, 0), {"tensor 't'", "0 dimensions"});
  expect_error(one("t", {1, 1, 1, 1, 1}, 0, 0, 4), {"tensor 't'", "5 dimensions"});
  expect_error(one("t", {4, 0}, 0, 0, 16), {"tensor 't'", "dimension 1 is 0"});
  expect_error(one("t", {uint64_t(1) << 30, uint64_t(1) << 30}, 0, 0, 16),
               {"tensor 't'", "dimension 1"});
  expect_error(one("t", {4}, 23, 0, 16), {"tensor 't'", "ggml type 23"});
  expect_error(one("t", {48}, 8, 0, 64), {"tensor 't'", "not a multiple of the Q8_0 block"});
  expect_error(one("t", {4}, 0, 8, 64), {"tensor 't'", "offset 8 is not a multiple"});
  expect_error(one("t", {4}, 0, 0, 15), {"tensor 't'", "go past the end of the data section"});
  expect_error(one("t", {4}, 0, uint64_t(1) << 62, 16), {"tensor 't'", "go past the end"});
  expect_error(Bytes().header(1, 0).tensor("t", {4}, 0, 0).b, {"data section would start"});
  expect_error(
      Bytes().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad().data(64).b,
      {"tensor 'b' overlaps tensor 'a'"});
  expect_error(Bytes().header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad().data(64).b,
               {"tensor 'a' appears twice"});
  expect_error(Bytes().header(1, 0).str("t").u32(1).u64(4).b, {"tensor 't'", "truncated type"});
}

TEST(Gguf, HonoursTheAlignmentKey) {
  Bytes b;
  b.header(1, 1).kv_u32("general.alignment", 64).tensor("t", {4}, 0, 64).pad(64).data(128);
  auto f = parse(b.b);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->alignment(), 64u);
  // 32-aligned but not 64-aligned.
  Bytes c;
  c.header(1, 1).kv_u32("general.alignment", 64).tensor("t", {4}, 0, 32).pad(64).data(128);
  expect_error(c.b, {"offset 32 is not a multiple of the alignment 64"});
}

TEST(Gguf, OpensAFileAndRefusesATruncatedOne) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mlxs_gguf_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  GgufWriter w;
  w.set_string("general.architecture", "qwen2");
  w.add_tensor("t", GgmlType::kF16, {4, 8}, std::vector<uint8_t>(64, 1));
  const std::string path = (dir / "m.gguf").string();
  ASSERT_TRUE(w.write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->tensors().at("t").data[63], 1);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 1);
  auto g = GgufFile::open(path);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("tensor 't'"), std::string::npos);
  std::filesystem::resize_file(path, 10);
  EXPECT_NE(GgufFile::open(path).status().message().find("too short"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mlxs
