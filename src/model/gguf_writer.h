// Writes GGUF v3 files (model/gguf.h describes the layout): metadata in the order it is set,
// then tensor infos and the data section, every tensor at a multiple of the alignment (32).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlxs/status.h"
#include "model/gguf.h"

namespace mlxs {

class GgufWriter {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_strings(const std::string& key, const std::vector<std::string>& v);
  void set_f32s(const std::string& key, const std::vector<float>& v);
  void set_i32s(const std::string& key, const std::vector<int32_t>& v);
  // A tensor of `type` whose logical shape is `shape` in row-major order (rows first, as in
  // safetensors; written to the file fastest-first); `bytes` hold its rows in ggml's layout.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                  std::vector<uint8_t> bytes);

  // The whole file.
  std::string serialize() const;
  Status write(const std::string& path) const;

 private:
  void key(const std::string& k, GgufValueType t);
  std::string header() const;  // up to the data section, padded
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::string kv_;  // serialized key-value pairs
  uint64_t num_keys_ = 0;
  std::vector<PendingTensor> tensors_;
};

}  // namespace mlxs
