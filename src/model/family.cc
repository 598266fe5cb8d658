#include "model/family.h"

#include <algorithm>

namespace mlxs {
namespace {

const ModelFamily* const kFamilies[] = {&kLlamaFamily, &kMistralFamily, &kQwen2Family,
                                        &kQwen3Family};

bool has(const std::vector<std::string>& v, const std::string& s) {
  return !s.empty() && std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

const ModelFamily* find_family(const std::string& architecture, const std::string& model_type) {
  for (const ModelFamily* f : kFamilies) {
    if (has(f->architectures, architecture)) return f;
  }
  for (const ModelFamily* f : kFamilies) {
    if (architecture.empty() && has(f->model_types, model_type)) return f;
  }
  return nullptr;
}

std::string supported_families() {
  std::string s;
  for (const ModelFamily* f : kFamilies) {
    for (const auto& a : f->architectures) s += (s.empty() ? "" : ", ") + a;
  }
  return s;
}

}  // namespace mlxs
