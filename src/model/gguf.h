// GGUF files (llama.cpp's single-file model format, versions 2 and 3), memory-mapped and
// validated before anything is trusted.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key-value count; the
// key-value pairs (string key, u32 value type, value); the tensor infos (string name, u32 number
// of dimensions, u64 dims with the fastest-varying first, u32 ggml type, u64 offset); padding to
// the alignment (general.alignment, default 32); the data section. A string is a u64 length and
// that many bytes; an array is a u32 element type, a u64 count and the elements.
//
// Every check names the file and the key or tensor: magic, version, counts, string lengths,
// value and element types (nested arrays are refused, as llama.cpp does), array lengths,
// duplicate keys and names, dims (1 to 4, each at least 1, rows a whole number of blocks),
// types, offsets (aligned, inside the data section, not overlapping).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mlxs/status.h"
#include "util/model_files.h"

namespace mlxs {

// ggml tensor types (ggml.h's enum values, which are part of the file format).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
};

// Block geometry of a ggml type: `block_values` values take `block_bytes` bytes.
struct GgmlTypeInfo {
  const char* name;  // "Q4_K"
  int block_values;
  int block_bytes;
};
// Null for a type this reader does not know (an i-quant, a removed type, garbage).
const GgmlTypeInfo* ggml_type_info(uint32_t type);
// "Q4_K", or "type 23" for one ggml_type_info() does not know.
std::string ggml_type_name(uint32_t type);

enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// One metadata value. Scalars are widened (integers to int64 or uint64, floats to double);
// strings and array contents point into the mapping.
struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  int64_t i = 0;   // signed integers and bools
  uint64_t u = 0;  // unsigned integers
  double f = 0;    // floats
  std::string_view str;
  // Arrays: element type, count, raw little-endian elements (numeric) or the strings.
  GgufValueType elem = GgufValueType::kU8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strings;
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row length (fastest varying)
  uint32_t type = 0;          // GgmlType; always one ggml_type_info() knows
  uint64_t offset = 0;        // into the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t rows() const;  // product of dims[1..]
  int64_t cols() const { return dims[0]; }
};

// One mapped .gguf file. Not copyable; the mapping lives as long as the object.
class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path,
                                                const ModelFileAccess& access = {});
  // Parses bytes the caller keeps alive (tests, the fuzzer); `path` names them in errors.
  static Result<std::unique_ptr<GgufFile>> parse(const uint8_t* data, size_t size,
                                                 const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return kv_; }
  const std::map<std::string, GgufTensor>& tensors() const { return tensors_; }

  bool has(std::string_view key) const { return kv_.find(key) != kv_.end(); }
  // Typed reads; kModelLoadError naming the file and key when it is absent or of another kind.
  // get_uint accepts any integer type holding a value >= 0; get_float any number.
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<std::vector<std::string_view>> get_strings(std::string_view key) const;
  // Numeric arrays, converted element by element.
  Result<std::vector<double>> get_floats(std::string_view key) const;
  Result<std::vector<int64_t>> get_ints(std::string_view key) const;
  // An error naming this file and `key`.
  Status key_error(std::string_view key, const std::string& why) const;

 private:
  GgufFile() = default;
  Status parse_all();

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::map<std::string, GgufTensor> tensors_;
};

}  // namespace mlxs
