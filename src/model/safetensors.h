// Safetensors files, memory-mapped and validated before anything is trusted.
//
// Format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// data section; offsets are relative to its start. Every check names the file and tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mlxs/status.h"
#include "util/dtype.h"
#include "util/model_files.h"

namespace mlxs {

struct TensorInfo {
  std::string name;
  std::string file;  // the path it lives in, for error messages
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the mapping; valid while the file is open
  size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_string() const;  // "[2048, 512]"
};

// One mapped .safetensors file. Not copyable; the mapping lives as long as the object.
class SafetensorsFile {
 public:
  // Maps `path` read-only and validates the header: size, JSON, dtypes, shapes, offsets inside
  // the data section, byte sizes equal to shape x dtype, no overlaps and no holes.
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  // The same for file `name` of model folder `dir`, opened under the folder's rules
  // (util/model_files.h: inside the folder, a regular file).
  static Result<std::unique_ptr<SafetensorsFile>> open_in(const std::string& dir,
                                                          const std::string& name,
                                                          const ModelFileAccess& access);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  static Result<std::unique_ptr<SafetensorsFile>> map_fd(int fd, const std::string& path);
  Status parse_header(size_t file_size);

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All weights of a model folder: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json`, or every `*.safetensors` in the folder. Tracks which tensors
// were taken so the loader can report unexpected ones.
class WeightStore {
 public:
  // Every file is opened under the folder's rules (util/model_files.h), index entries included.
  static Result<WeightStore> open_dir(const std::string& dir, const ModelFileAccess& access = {});
  // A store over tensors another source provides (a GGUF file, model/gguf_model.h); `owner`
  // keeps their bytes alive as long as the store. A name given twice is an error.
  static Result<WeightStore> from_tensors(std::vector<TensorInfo> tensors,
                                          std::shared_ptr<const void> owner);

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // The tensor `name`, checked against `shape` (empty = any); marks it used.
  Result<TensorInfo> take(const std::string& name, const std::vector<int64_t>& shape = {});
  // Names present in the files that were never taken (sorted).
  std::vector<std::string> untaken() const;
  size_t num_tensors() const { return index_.size(); }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::shared_ptr<const void> owner_;           // from_tensors(): what keeps their bytes
  std::map<std::string, TensorInfo> provided_;  // from_tensors(): the tensors themselves
  std::map<std::string, const TensorInfo*> index_;
  std::map<std::string, bool> taken_;
};

// Writes tensors to a .safetensors file (used by make-random-model and tests).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes; may be null if `fill` is set
  // Optional producer: writes `nbytes` bytes of the tensor in chunks (for huge random tensors).
  std::function<void(uint8_t* dst, size_t offset, size_t nbytes)> fill;
};
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace mlxs
