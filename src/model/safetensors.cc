#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/json_depth.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

Status load_error(const std::string& msg) {
  return error(ErrorCode::kModelLoadError, msg);
}

Result<TensorInfo> parse_entry(const std::string& file, const std::string& name, const json& e,
                               size_t data_size) {
  auto bad = [&](const std::string& why) {
    return load_error(file + ": tensor '" + name + "': " + why);
  };
  if (!e.is_object()) return bad("header entry is not an object");
  if (!e.contains("dtype") || !e["dtype"].is_string()) return bad("missing or non-string 'dtype'");
  TensorInfo t;
  t.name = name;
  t.file = file;
  std::string dt = e["dtype"];
  if (!parse_dtype(dt, &t.dtype)) {
    return bad("unsupported dtype '" + dt + "' (expected F32, F16, BF16, I32 or I64)");
  }
  if (!e.contains("shape") || !e["shape"].is_array()) return bad("missing or non-array 'shape'");
  uint64_t numel = 1;
  for (const auto& d : e["shape"]) {
    if (!d.is_number_unsigned()) return bad("shape has a non-integer or negative dimension");
    uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t(1) << 40) || (v && numel > (uint64_t(1) << 42) / v)) {
      return bad("shape is too large");
    }
    numel *= v;
    t.shape.push_back(int64_t(v));
  }
  const json& off = e.contains("data_offsets") ? e["data_offsets"] : json();
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    return bad("'data_offsets' must be two non-negative integers");
  }
  uint64_t begin = off[0], end = off[1];
  if (begin > end) return bad("data_offsets begin > end");
  if (end > data_size) {
    return bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               ") go past the end of the data section (" + std::to_string(data_size) +
               " bytes; is the file truncated?)");
  }
  uint64_t expect = numel * dtype_size(t.dtype);
  if (end - begin != expect) {
    return bad("byte size " + std::to_string(end - begin) + " does not match shape " +
               t.shape_string() + " x " + dt + " = " + std::to_string(expect) + " bytes");
  }
  t.nbytes = size_t(end - begin);
  t.data = reinterpret_cast<const void*>(begin);  // rebased by the caller
  return t;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  const fs::path p(path);
  ModelFileAccess direct;  // a path the caller names itself, not one a folder's index names
  direct.allow_outside = true;
  return open_in(p.parent_path().empty() ? "." : p.parent_path().string(), p.filename().string(),
                 direct);
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open_in(const std::string& dir,
                                                                  const std::string& name,
                                                                  const ModelFileAccess& access) {
  MLXS_ASSIGN_OR_RETURN(int fd, open_model_file(dir, name, access));
  return map_fd(fd, (fs::path(dir) / name).string());
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::map_fd(int fd, const std::string& path) {
  struct stat st {};
  fstat(fd, &st);
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    return load_error(path + ": file is " + std::to_string(size) +
                      " bytes, too short for a safetensors header (truncated?)");
  }
  f->map_ = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    return load_error(path + ": mmap failed: " + std::strerror(errno));
  }
  f->map_size_ = size;
  MLXS_RETURN_IF_ERROR(f->parse_header(size));
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, map_size_);
}

Status SafetensorsFile::parse_header(size_t file_size) {
  const auto* base = static_cast<const uint8_t*>(map_);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
  if (n > kMaxHeaderBytes) {
    return load_error(path_ + ": header length " + std::to_string(n) + " exceeds the 100 MB limit");
  }
  if (n > file_size - 8) {
    return load_error(path_ + ": header length " + std::to_string(n) + " exceeds the file size " +
                      std::to_string(file_size) + " (truncated?)");
  }
  const std::string_view header_text(reinterpret_cast<const char*>(base + 8), size_t(n));
  std::string why = "is not a JSON object";
  std::optional<json> parsed = parse_model_json(header_text, &why);
  if (!parsed || !parsed->is_object()) return load_error(path_ + ": header " + why);
  json header = std::move(*parsed);
  size_t data_size = file_size - 8 - size_t(n);
  const uint8_t* data = base + 8 + n;
  std::vector<std::pair<size_t, std::string>> spans;  // (begin, name), to find overlaps
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return load_error(path_ + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return load_error(path_ + ": __metadata__ values must be strings");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    MLXS_ASSIGN_OR_RETURN(TensorInfo t, parse_entry(path_, it.key(), *it, data_size));
    size_t begin = reinterpret_cast<size_t>(t.data);
    t.data = data + begin;
    spans.push_back({begin, t.name});
    tensors_[t.name] = std::move(t);
  }
  std::sort(spans.begin(), spans.end());
  size_t cursor = 0;
  for (const auto& [begin, name] : spans) {
    const TensorInfo& t = tensors_[name];
    if (begin < cursor) {
      return load_error(path_ + ": tensor '" + name + "' overlaps the tensor before it");
    }
    if (begin > cursor) {
      return load_error(path_ + ": tensor '" + name + "' leaves a hole of " +
                        std::to_string(begin - cursor) + " bytes in the data section");
    }
    cursor = begin + t.nbytes;
  }
  if (cursor != data_size) {
    return load_error(path_ + ": " + std::to_string(data_size - cursor) +
                      " bytes at the end of the data section belong to no tensor");
  }
  return {};
}

Result<WeightStore> WeightStore::open_dir(const std::string& dir, const ModelFileAccess& access) {
  WeightStore store;
  std::vector<std::string> names;  // relative to dir
  const char* kIndex = "model.safetensors.index.json";
  const std::string index = (fs::path(dir) / kIndex).string();
  std::error_code ec;
  if (model_file_exists(dir, kIndex)) {
    MLXS_ASSIGN_OR_RETURN(std::string text, read_model_file(dir, kIndex, access));
    std::string why;
    json j = parse_model_json(text, &why).value_or(json(json::value_t::discarded));
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
        !j["weight_map"].is_object()) {
      return load_error(index + ": not a JSON object with a 'weight_map' object");
    }
    for (const auto& v : j["weight_map"]) {
      if (!v.is_string()) return load_error(index + ": weight_map values must be strings");
      std::string name = v.get<std::string>();
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  } else if (model_file_exists(dir, "model.safetensors")) {
    names.push_back("model.safetensors");
  } else if (fs::is_directory(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".safetensors") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
  }
  if (names.empty()) return load_error(dir + ": no *.safetensors files found");
  for (const auto& name : names) {
    MLXS_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open_in(dir, name, access));
    store.files_.push_back(std::move(file));
  }
  for (const auto& f : store.files_) {
    for (const auto& [name, t] : f->tensors()) {
      if (store.index_.count(name)) {
        return load_error(f->path() + ": tensor '" + name + "' also appears in " +
                          store.index_[name]->file);
      }
      store.index_[name] = &t;
    }
  }
  return store;
}

Result<WeightStore> WeightStore::from_tensors(std::vector<TensorInfo> tensors,
                                              std::shared_ptr<const void> owner) {
  WeightStore store;
  store.owner_ = std::move(owner);
  for (auto& t : tensors) {
    if (store.provided_.count(t.name)) {
      return load_error(t.file + ": tensor '" + t.name + "' is given twice");
    }
    std::string name = t.name;
    store.provided_[name] = std::move(t);
  }
  for (const auto& [name, t] : store.provided_) store.index_[name] = &t;
  return store;
}

Result<TensorInfo> WeightStore::take(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = index_.find(name);
  if (it == index_.end()) return load_error("missing tensor '" + name + "'");
  const TensorInfo& t = *it->second;
  if (!shape.empty() && t.shape != shape) {
    TensorInfo want;
    want.shape = shape;
    return load_error(t.file + ": tensor '" + name + "' has shape " + t.shape_string() +
                      ", expected " + want.shape_string());
  }
  taken_[name] = true;
  return t;
}

std::vector<std::string> WeightStore::untaken() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : index_) {
    if (!taken_.count(name)) out.push_back(name);
  }
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  std::vector<size_t> sizes;
  for (const auto& t : tensors) {
    size_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= size_t(d);
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    sizes.push_back(n);
    offset += n;
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h.push_back(' ');  // align the data section to 8 bytes
  std::ofstream out(path, std::ios::binary);
  if (!out) return error(ErrorCode::kRuntimeError, path + ": cannot create file");
  uint64_t n = h.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(h.data(), std::streamsize(h.size()));
  std::vector<uint8_t> chunk;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.data) {
      out.write(static_cast<const char*>(t.data), std::streamsize(sizes[i]));
      continue;
    }
    constexpr size_t kChunk = 64u << 20;
    for (size_t done = 0; done < sizes[i]; done += kChunk) {
      size_t m = std::min(kChunk, sizes[i] - done);
      chunk.resize(m);
      t.fill(chunk.data(), done, m);
      out.write(reinterpret_cast<const char*>(chunk.data()), std::streamsize(m));
    }
  }
  out.close();
  if (!out) return error(ErrorCode::kRuntimeError, path + ": write failed (disk full?)");
  return {};
}

}  // namespace mlxs
