#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mlxs {
namespace {

namespace fs = std::filesystem;

// Bounds on what a header may declare before anything is allocated from it.
constexpr uint64_t kMaxTensors = uint64_t(1) << 20;
constexpr uint64_t kMaxKeys = uint64_t(1) << 20;
constexpr uint64_t kMaxKeyBytes = 65535;
constexpr size_t kMaxNameBytes = 64;  // GGML_MAX_NAME, what llama.cpp accepts
constexpr uint64_t kMaxDim = uint64_t(1) << 40;
constexpr uint64_t kMaxNumel = uint64_t(1) << 42;

Status load_error(const std::string& msg) {
  return error(ErrorCode::kModelLoadError, msg);
}

size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool valid_value_type(uint32_t t) {
  return t <= uint32_t(GgufValueType::kF64);
}

// Reads one little-endian scalar of type `t` at `p` into `v`.
void read_scalar(const uint8_t* p, GgufValueType t, GgufValue* v) {
  uint64_t bits = 0;
  const size_t n = scalar_size(t);
  for (size_t i = 0; i < n; ++i) bits |= uint64_t(p[i]) << (8 * i);
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kU16:
    case GgufValueType::kU32:
    case GgufValueType::kU64:
      v->u = bits;
      v->i = int64_t(bits);
      v->f = double(bits);
      break;
    case GgufValueType::kI8:
      v->i = int8_t(bits);
      break;
    case GgufValueType::kI16:
      v->i = int16_t(bits);
      break;
    case GgufValueType::kI32:
      v->i = int32_t(bits);
      break;
    case GgufValueType::kI64:
      v->i = int64_t(bits);
      break;
    case GgufValueType::kBool:
      v->i = bits != 0;
      break;
    case GgufValueType::kF32: {
      float f;
      uint32_t b32 = uint32_t(bits);
      std::memcpy(&f, &b32, 4);
      v->f = f;
      return;
    }
    case GgufValueType::kF64:
      std::memcpy(&v->f, &bits, 8);
      return;
    default:
      return;
  }
  if (t == GgufValueType::kI8 || t == GgufValueType::kI16 || t == GgufValueType::kI32 ||
      t == GgufValueType::kI64 || t == GgufValueType::kBool) {
    v->f = double(v->i);
    v->u = v->i >= 0 ? uint64_t(v->i) : 0;
  }
}

bool is_integer(GgufValueType t) {
  return t != GgufValueType::kF32 && t != GgufValueType::kF64 && t != GgufValueType::kBool &&
         t != GgufValueType::kString && t != GgufValueType::kArray;
}

const char* value_type_name(GgufValueType t) {
  static const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                 "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) <= 12 ? kNames[uint32_t(t)] : "?";
}

// A bounds-checked little-endian reader over the header; every failure says what it was reading.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }

  bool u32(uint32_t* out) { return fixed(out, 4); }
  bool u64(uint64_t* out) { return fixed(out, 8); }
  bool skip(uint64_t n) {
    if (n > left()) return false;
    pos_ += size_t(n);
    return true;
  }
  // A GGUF string of at most `max` bytes; *why says what went wrong.
  bool str(std::string_view* out, uint64_t max, std::string* why) {
    uint64_t n = 0;
    if (!u64(&n)) {
      *why = "truncated string length";
      return false;
    }
    if (n > left()) {
      *why = "string length " + std::to_string(n) + " runs past the end of the file (" +
             std::to_string(left()) + " bytes left)";
      return false;
    }
    if (n > max) {
      *why = "string length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max);
      return false;
    }
    *out = std::string_view(reinterpret_cast<const char*>(here()), size_t(n));
    pos_ += size_t(n);
    return true;
  }

 private:
  template <class T>
  bool fixed(T* out, size_t n) {
    if (left() < n) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(data_[pos_ + i]) << (8 * i);
    *out = T(v);
    pos_ += n;
    return true;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Reads the value of `key` (its type already read) into *v.
Status read_value(Cursor& c, GgufValueType type, const std::string& where, GgufValue* v) {
  v->type = type;
  std::string why;
  if (type == GgufValueType::kString) {
    if (!c.str(&v->str, c.left(), &why)) return load_error(where + ": " + why);
    return {};
  }
  if (type != GgufValueType::kArray) {
    const size_t n = scalar_size(type);
    if (c.left() < n) return load_error(where + ": truncated " + value_type_name(type) + " value");
    read_scalar(c.here(), type, v);
    c.skip(n);
    return {};
  }
  uint32_t elem = 0;
  uint64_t count = 0;
  if (!c.u32(&elem) || !c.u64(&count)) return load_error(where + ": truncated array header");
  if (!valid_value_type(elem)) {
    return load_error(where + ": array element type " + std::to_string(elem) +
                      " is not a GGUF value type (0 to 12)");
  }
  v->elem = GgufValueType(elem);
  v->count = count;
  if (v->elem == GgufValueType::kArray) {
    return load_error(where + ": nested arrays are not supported");
  }
  if (v->elem == GgufValueType::kString) {
    // Every string takes at least its 8-byte length.
    if (count > c.left() / 8) {
      return load_error(where + ": array of " + std::to_string(count) +
                        " strings runs past the end of the file");
    }
    v->strings.reserve(size_t(count));
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view s;
      if (!c.str(&s, c.left(), &why)) {
        return load_error(where + ": element " + std::to_string(i) + ": " + why);
      }
      v->strings.push_back(s);
    }
    return {};
  }
  const size_t n = scalar_size(v->elem);
  if (count > c.left() / n) {
    return load_error(where + ": array of " + std::to_string(count) + " " +
                      value_type_name(v->elem) + " runs past the end of the file (" +
                      std::to_string(c.left()) + " bytes left)");
  }
  v->raw = c.here();
  c.skip(count * n);
  return {};
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  static const GgmlTypeInfo kF32{"F32", 1, 4}, kF16{"F16", 1, 2}, kBF16{"BF16", 1, 2},
      kQ4_0{"Q4_0", 32, 18}, kQ4_1{"Q4_1", 32, 20}, kQ5_0{"Q5_0", 32, 22}, kQ5_1{"Q5_1", 32, 24},
      kQ8_0{"Q8_0", 32, 34}, kQ8_1{"Q8_1", 32, 36}, kQ2_K{"Q2_K", 256, 84}, kQ3_K{"Q3_K", 256, 110},
      kQ4_K{"Q4_K", 256, 144}, kQ5_K{"Q5_K", 256, 176}, kQ6_K{"Q6_K", 256, 210},
      kQ8_K{"Q8_K", 256, 292};
  switch (GgmlType(type)) {
    case GgmlType::kF32:
      return &kF32;
    case GgmlType::kF16:
      return &kF16;
    case GgmlType::kBF16:
      return &kBF16;
    case GgmlType::kQ4_0:
      return &kQ4_0;
    case GgmlType::kQ4_1:
      return &kQ4_1;
    case GgmlType::kQ5_0:
      return &kQ5_0;
    case GgmlType::kQ5_1:
      return &kQ5_1;
    case GgmlType::kQ8_0:
      return &kQ8_0;
    case GgmlType::kQ8_1:
      return &kQ8_1;
    case GgmlType::kQ2_K:
      return &kQ2_K;
    case GgmlType::kQ3_K:
      return &kQ3_K;
    case GgmlType::kQ4_K:
      return &kQ4_K;
    case GgmlType::kQ5_K:
      return &kQ5_K;
    case GgmlType::kQ6_K:
      return &kQ6_K;
    case GgmlType::kQ8_K:
      return &kQ8_K;
  }
  return nullptr;
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  return info ? info->name : "type " + std::to_string(type);
}

int64_t GgufTensor::rows() const {
  int64_t r = 1;
  for (size_t i = 1; i < dims.size(); ++i) r *= dims[i];
  return r;
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path,
                                                 const ModelFileAccess& access) {
  const fs::path p(path);
  MLXS_ASSIGN_OR_RETURN(
      int fd, open_model_file(p.parent_path().empty() ? std::string(".") : p.parent_path().string(),
                              p.filename().string(), access));
  struct stat st {};
  fstat(fd, &st);
  const size_t size = size_t(st.st_size);
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  if (size < 24) {
    ::close(fd);
    return load_error(path + ": file is " + std::to_string(size) +
                      " bytes, too short for a GGUF header (truncated?)");
  }
  f->map_ = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    return load_error(path + ": mmap failed: " + std::strerror(errno));
  }
  f->map_size_ = size;
  f->base_ = static_cast<const uint8_t*>(f->map_);
  f->size_ = size;
  MLXS_RETURN_IF_ERROR(f->parse_all());
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(const uint8_t* data, size_t size,
                                                  const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->base_ = data;
  f->size_ = size;
  MLXS_RETURN_IF_ERROR(f->parse_all());
  return f;
}

GgufFile::~GgufFile() {
  if (map_) munmap(map_, map_size_);
}

Status GgufFile::parse_all() {
  Cursor c(base_, size_);
  uint32_t magic = 0;
  if (!c.u32(&magic) || magic != 0x46554747u) {  // "GGUF"
    return load_error(path_ + ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  }
  uint64_t num_tensors = 0, num_keys = 0;
  if (!c.u32(&version_) || !c.u64(&num_tensors) || !c.u64(&num_keys)) {
    return load_error(path_ + ": truncated GGUF header");
  }
  if (version_ != 2 && version_ != 3) {
    return load_error(path_ + ": GGUF version " + std::to_string(version_) +
                      " is not supported (expected 2 or 3)");
  }
  if (num_tensors > kMaxTensors) {
    return load_error(path_ + ": tensor count " + std::to_string(num_tensors) +
                      " exceeds the limit of " + std::to_string(kMaxTensors));
  }
  if (num_keys > kMaxKeys) {
    return load_error(path_ + ": key-value count " + std::to_string(num_keys) +
                      " exceeds the limit of " + std::to_string(kMaxKeys));
  }
  std::string why;
  for (uint64_t k = 0; k < num_keys; ++k) {
    std::string_view key;
    if (!c.str(&key, kMaxKeyBytes, &why)) {
      return load_error(path_ + ": key " + std::to_string(k) + ": " + why);
    }
    const std::string where = path_ + ": GGUF key '" + std::string(key) + "'";
    if (key.empty()) return load_error(path_ + ": key " + std::to_string(k) + " is empty");
    if (kv_.count(key)) return load_error(where + " appears twice");
    uint32_t type = 0;
    if (!c.u32(&type)) return load_error(where + ": truncated value type");
    if (!valid_value_type(type)) {
      return load_error(where + ": value type " + std::to_string(type) +
                        " is not a GGUF value type (0 to 12)");
    }
    GgufValue v;
    MLXS_RETURN_IF_ERROR(read_value(c, GgufValueType(type), where, &v));
    kv_.emplace(std::string(key), std::move(v));
  }
  if (auto it = kv_.find("general.alignment"); it != kv_.end()) {
    const GgufValue& a = it->second;
    if (a.type != GgufValueType::kU32 || a.u == 0 || (a.u & (a.u - 1)) != 0) {
      return load_error(path_ + ": GGUF key 'general.alignment' must be a u32 power of two, got " +
                        (a.type == GgufValueType::kU32 ? std::to_string(a.u)
                                                       : std::string(value_type_name(a.type))));
    }
    alignment_ = size_t(a.u);
  }
  std::vector<GgufTensor> infos;
  for (uint64_t t = 0; t < num_tensors; ++t) {
    GgufTensor info;
    std::string_view name;
    if (!c.str(&name, kMaxNameBytes, &why)) {
      return load_error(path_ + ": tensor " + std::to_string(t) + " name: " + why);
    }
    info.name = std::string(name);
    const std::string where = path_ + ": tensor '" + info.name + "'";
    if (tensors_.count(info.name)) return load_error(where + " appears twice");
    uint32_t num_dims = 0;
    if (!c.u32(&num_dims)) return load_error(where + ": truncated dimension count");
    if (num_dims < 1 || num_dims > 4) {
      return load_error(where + ": " + std::to_string(num_dims) + " dimensions (expected 1 to 4)");
    }
    uint64_t numel = 1;
    for (uint32_t d = 0; d < num_dims; ++d) {
      uint64_t n = 0;
      if (!c.u64(&n)) return load_error(where + ": truncated dimensions");
      if (n < 1 || n > kMaxDim || numel > kMaxNumel / n) {
        return load_error(where + ": dimension " + std::to_string(d) + " is " + std::to_string(n) +
                          " (expected 1 to 2^40, at most 2^42 values)");
      }
      numel *= n;
      info.dims.push_back(int64_t(n));
    }
    if (!c.u32(&info.type) || !c.u64(&info.offset)) {
      return load_error(where + ": truncated type or offset");
    }
    const GgmlTypeInfo* ti = ggml_type_info(info.type);
    if (!ti) {
      return load_error(where + ": ggml type " + std::to_string(info.type) +
                        " is not one this reader knows");
    }
    if (info.dims[0] % ti->block_values != 0) {
      return load_error(where + ": row length " + std::to_string(info.dims[0]) +
                        " is not a multiple of the " + ti->name + " block (" +
                        std::to_string(ti->block_values) + " values)");
    }
    if (info.offset % alignment_ != 0) {
      return load_error(where + ": offset " + std::to_string(info.offset) +
                        " is not a multiple of the alignment " + std::to_string(alignment_));
    }
    info.nbytes = size_t(numel / uint64_t(ti->block_values) * uint64_t(ti->block_bytes));
    tensors_.emplace(info.name, info);
  }
  const size_t header_end = c.pos();
  const size_t data_start = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_start > size_) {
    return load_error(path_ + ": the data section would start at byte " +
                      std::to_string(data_start) + ", past the end of the file (" +
                      std::to_string(size_) + " bytes; truncated?)");
  }
  const size_t data_size = data_start <= size_ ? size_ - data_start : 0;
  std::vector<std::pair<uint64_t, std::string>> spans;
  for (auto& [name, t] : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return load_error(path_ + ": tensor '" + name + "': bytes [" + std::to_string(t.offset) +
                        ", " + std::to_string(t.offset + t.nbytes) +
                        ") go past the end of the data section (" + std::to_string(data_size) +
                        " bytes; is the file truncated?)");
    }
    t.data = base_ + data_start + t.offset;
    spans.push_back({t.offset, name});
  }
  std::sort(spans.begin(), spans.end());
  uint64_t cursor = 0;
  std::string previous;
  for (const auto& [offset, name] : spans) {
    if (offset < cursor) {
      return load_error(path_ + ": tensor '" + name + "' overlaps tensor '" + previous + "'");
    }
    cursor = offset + tensors_[name].nbytes;
    previous = name;
  }
  return {};
}

Status GgufFile::key_error(std::string_view key, const std::string& why) const {
  return load_error(path_ + ": GGUF key '" + std::string(key) + "': " + why);
}

namespace {

const GgufValue* find_value(const std::map<std::string, GgufValue, std::less<>>& kv,
                            std::string_view key) {
  auto it = kv.find(key);
  return it == kv.end() ? nullptr : &it->second;
}

}  // namespace

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (!is_integer(v->type)) {
    return key_error(key, std::string("expected an integer, got ") + value_type_name(v->type));
  }
  if (v->i < 0 && v->type != GgufValueType::kU64) {
    return key_error(key, "expected a non-negative integer, got " + std::to_string(v->i));
  }
  return v->u;
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (v->type == GgufValueType::kString || v->type == GgufValueType::kArray ||
      v->type == GgufValueType::kBool) {
    return key_error(key, std::string("expected a number, got ") + value_type_name(v->type));
  }
  return v->f;
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (v->type != GgufValueType::kBool) {
    return key_error(key, std::string("expected a bool, got ") + value_type_name(v->type));
  }
  return v->i != 0;
}

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (v->type != GgufValueType::kString) {
    return key_error(key, std::string("expected a string, got ") + value_type_name(v->type));
  }
  return v->str;
}

Result<std::vector<std::string_view>> GgufFile::get_strings(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (v->type != GgufValueType::kArray || v->elem != GgufValueType::kString) {
    return key_error(key, "expected an array of strings");
  }
  return v->strings;
}

Result<std::vector<double>> GgufFile::get_floats(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (v->type != GgufValueType::kArray || v->elem == GgufValueType::kString) {
    return key_error(key, "expected an array of numbers");
  }
  std::vector<double> out(size_t(v->count));
  const size_t n = scalar_size(v->elem);
  for (size_t i = 0; i < out.size(); ++i) {
    GgufValue e;
    read_scalar(v->raw + i * n, v->elem, &e);
    out[i] = e.f;
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_ints(std::string_view key) const {
  const GgufValue* v = find_value(kv_, key);
  if (!v) return key_error(key, "missing");
  if (v->type != GgufValueType::kArray || !is_integer(v->elem)) {
    return key_error(key, "expected an array of integers");
  }
  std::vector<int64_t> out(size_t(v->count));
  const size_t n = scalar_size(v->elem);
  for (size_t i = 0; i < out.size(); ++i) {
    GgufValue e;
    read_scalar(v->raw + i * n, v->elem, &e);
    out[i] = e.i;
  }
  return out;
}

}  // namespace mlxs
