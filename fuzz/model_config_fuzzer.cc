// Fuzzes a model folder's config.json: ModelArch::load range-checks every size before anything
// is allocated from it; what it accepts must give sane derived values (parameter count, rotary
// parameters) and a family lookup.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "model/config.h"
#include "model/family.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = mlxs::fuzz::scratch_dir("config");
  mlxs::fuzz::write_file(dir + "/config.json",
                         std::string_view(reinterpret_cast<const char*>(data), size));
  auto arch = mlxs::ModelArch::load(dir, {});
  if (!arch.ok()) return 0;
  if (arch->num_parameters() < 0) std::abort();
  (void)arch->rope_params();
  (void)mlxs::find_family(arch->architecture, arch->model_type);
  return 0;
}
