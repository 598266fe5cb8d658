// Fuzzes model.safetensors.index.json as WeightStore::open_dir reads it: a folder holding two
// small valid shards (a.safetensors, b.safetensors) and the fuzzed index. Entries that escape
// the folder ("../x", absolute paths), name missing files or repeat tensors must fail cleanly.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

namespace {

const std::string& folder() {
  static const std::string dir = [] {
    const std::string& d = mlxs::fuzz::scratch_dir("index");
    const float a[4] = {1, 2, 3, 4};
    const uint16_t b[6] = {1, 2, 3, 4, 5, 6};
    if (!mlxs::write_safetensors(d + "/a.safetensors",
                                 {{"model.embed_tokens.weight", mlxs::DType::kF32, {2, 2}, a, {}},
                                  {"model.norm.weight", mlxs::DType::kF32, {4}, a, {}}})
             .ok() ||
        !mlxs::write_safetensors(d + "/b.safetensors",
                                 {{"lm_head.weight", mlxs::DType::kBF16, {2, 3}, b, {}}},
                                 {{"format", "pt"}})
             .ok()) {
      std::abort();
    }
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = folder();
  mlxs::fuzz::write_file(dir + "/model.safetensors.index.json",
                         std::string_view(reinterpret_cast<const char*>(data), size));
  auto store = mlxs::WeightStore::open_dir(dir, {});
  if (!store.ok()) return 0;
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight", "missing"}) {
    auto t = store->take(name, {});
    if (t.ok() && t->nbytes == 0) std::abort();
  }
  (void)store->untaken();
  return 0;
}
