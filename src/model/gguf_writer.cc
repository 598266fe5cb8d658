#include "model/gguf_writer.h"

#include <cstring>
#include <fstream>

namespace mlxs {
namespace {

constexpr size_t kAlignment = 32;

size_t padded(size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}
void put_f32(std::string& out, float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  put_u32(out, b);
}

}  // namespace

void GgufWriter::key(const std::string& k, GgufValueType t) {
  put_str(kv_, k);
  put_u32(kv_, uint32_t(t));
  ++num_keys_;
}

void GgufWriter::set_u32(const std::string& k, uint32_t v) {
  key(k, GgufValueType::kU32);
  put_u32(kv_, v);
}

void GgufWriter::set_i32(const std::string& k, int32_t v) {
  key(k, GgufValueType::kI32);
  put_u32(kv_, uint32_t(v));
}

void GgufWriter::set_f32(const std::string& k, float v) {
  key(k, GgufValueType::kF32);
  put_f32(kv_, v);
}

void GgufWriter::set_bool(const std::string& k, bool v) {
  key(k, GgufValueType::kBool);
  kv_.push_back(char(v ? 1 : 0));
}

void GgufWriter::set_string(const std::string& k, const std::string& v) {
  key(k, GgufValueType::kString);
  put_str(kv_, v);
}

void GgufWriter::set_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, GgufValueType::kArray);
  put_u32(kv_, uint32_t(GgufValueType::kString));
  put_u64(kv_, v.size());
  for (const auto& s : v) put_str(kv_, s);
}

void GgufWriter::set_f32s(const std::string& k, const std::vector<float>& v) {
  key(k, GgufValueType::kArray);
  put_u32(kv_, uint32_t(GgufValueType::kF32));
  put_u64(kv_, v.size());
  for (float f : v) put_f32(kv_, f);
}

void GgufWriter::set_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, GgufValueType::kArray);
  put_u32(kv_, uint32_t(GgufValueType::kI32));
  put_u64(kv_, v.size());
  for (int32_t x : v) put_u32(kv_, uint32_t(x));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& shape, std::vector<uint8_t> bytes) {
  tensors_.push_back({name, type, shape, std::move(bytes)});
}

std::string GgufWriter::header() const {
  std::string out;
  put_u32(out, 0x46554747u);  // "GGUF"
  put_u32(out, 3);
  put_u64(out, tensors_.size());
  put_u64(out, num_keys_);
  out += kv_;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.name);
    put_u32(out, uint32_t(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) put_u64(out, uint64_t(t.shape[d]));
    put_u32(out, uint32_t(t.type));
    put_u64(out, offset);
    offset += padded(t.bytes.size());
  }
  out.resize(padded(out.size()), '\0');
  return out;
}

std::string GgufWriter::serialize() const {
  std::string out = header();
  for (const auto& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    out.resize(padded(out.size()), '\0');
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return error(ErrorCode::kRuntimeError, path + ": cannot create file");
  const std::string h = header();
  out.write(h.data(), std::streamsize(h.size()));
  const std::string zeros(kAlignment, '\0');
  for (const auto& t : tensors_) {  // streamed: a large model is not copied a second time
    out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
    out.write(zeros.data(), std::streamsize(padded(t.bytes.size()) - t.bytes.size()));
  }
  out.close();
  if (!out) return error(ErrorCode::kRuntimeError, path + ": write failed (disk full?)");
  return {};
}

}  // namespace mlxs
