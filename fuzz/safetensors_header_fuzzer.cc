// Fuzzes a .safetensors file (its u64 header length, JSON header and data section) as a model
// folder's weights are opened: SafetensorsFile::open_in validates the header; every tensor it
// accepts must lie inside the mapping, which the harness checks by reading its first and last
// byte (a tensor outside the file would fault or be caught by AddressSanitizer).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = mlxs::fuzz::scratch_dir("safetensors");
  mlxs::fuzz::write_file(dir + "/model.safetensors",
                         std::string_view(reinterpret_cast<const char*>(data), size));
  auto file = mlxs::SafetensorsFile::open_in(dir, "model.safetensors", {});
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : (*file)->tensors()) {
    if (t.nbytes == 0) continue;
    if (t.numel() < 0 || t.shape_string().empty()) std::abort();
    const auto* p = static_cast<const uint8_t*>(t.data);
    sink = sink + p[0] + p[t.nbytes - 1];
  }
  return 0;
}
