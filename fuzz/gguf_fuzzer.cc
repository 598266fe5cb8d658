// Fuzzes a GGUF file as a model path is read: GgufFile::parse validates the header; every
// tensor it accepts must lie inside the input (the harness reads its first and last byte); an
// accepted file then goes through what loading does with it: the metadata to a ModelArch, the
// tensors to the store (repacking quantized blocks) and the tokenizer from the metadata. Each
// may refuse the file, none may crash.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "model/gguf.h"
#include "model/gguf_model.h"
#include "model/gguf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so a read past the end is caught by AddressSanitizer.
  std::vector<uint8_t> bytes(data, data + size);
  auto parsed = mlxs::GgufFile::parse(bytes.data(), bytes.size(), "fuzz.gguf");
  if (!parsed.ok()) return 0;
  std::shared_ptr<const mlxs::GgufFile> file = std::move(*parsed);
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : file->tensors()) {
    if (t.nbytes == 0 || t.rows() < 1) std::abort();
    sink = sink + t.data[0] + t.data[t.nbytes - 1];
  }
  if (auto arch = mlxs::gguf_model_arch(*file); arch.ok()) {
    (void)mlxs::gguf_weight_store(file, *arch);
  }
  if (auto tok = mlxs::gguf_tokenizer(*file); tok.ok()) {
    (void)(*tok)->encode("ab a\nb <s>");
  }
  return 0;
}
