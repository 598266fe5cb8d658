#include "engine/generation_defaults.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "api/option_schemas.h"

namespace mlxs {
namespace {

using json = nlohmann::json;

Status bad_key(const std::string& file, const char* key, const std::string& expected,
               const json& got) {
  return error(ErrorCode::kModelLoadError,
               file + ": " + key + " must be " + expected + ", got " + got.dump());
}

// The number at `key` when present and not null; it must lie in [lo, hi] (lo excluded when
// lo_open).
Status read_number(const json& j, const std::string& file, const char* key, double lo, bool lo_open,
                   double hi, std::optional<double>* out) {
  if (!j.contains(key) || j[key].is_null()) return {};
  const json& v = j[key];
  const std::string range = fmt::format("{} {} and <= {}", lo_open ? ">" : ">=", lo, hi);
  if (!v.is_number()) return bad_key(file, key, "a number " + range, v);
  const double x = v.get<double>();
  if (x < lo || (lo_open && x == lo) || x > hi) return bad_key(file, key, "a number " + range, v);
  *out = x;
  return {};
}

Status read_eos(const json& j, const std::string& file, std::vector<int32_t>* out) {
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return {};
  const json& e = j["eos_token_id"];
  const json list = e.is_array() ? e : json::array({e});
  for (const json& id : list) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return bad_key(file, "eos_token_id", "a token id >= 0 or a list of them", e);
    }
    out->push_back(int32_t(id.get<int64_t>()));
  }
  return {};
}

}  // namespace

Result<GenerationDefaults> read_generation_defaults(const std::string& dir) {
  const std::string file = dir + "/generation_config.json";
  std::ifstream in(file);
  GenerationDefaults d;
  if (!in) return d;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return error(ErrorCode::kModelLoadError, file + ": not a JSON object");
  }
  MLXS_RETURN_IF_ERROR(
      read_number(j, file, "temperature", 0, false, limits::kMaxTemperature, &d.temperature));
  MLXS_RETURN_IF_ERROR(read_number(j, file, "top_p", 0, true, 1, &d.top_p));
  std::optional<double> top_k;
  MLXS_RETURN_IF_ERROR(read_number(j, file, "top_k", 0, false, INT32_MAX, &top_k));
  if (top_k) {
    if (*top_k != double(int64_t(*top_k))) {
      return bad_key(file, "top_k", "an integer >= 0", j["top_k"]);
    }
    d.top_k = int32_t(*top_k);
  }
  MLXS_RETURN_IF_ERROR(read_number(j, file, "repetition_penalty", 0, true,
                                   limits::kMaxRepetitionPenalty, &d.repetition_penalty));
  if (j.contains("do_sample") && !j["do_sample"].is_null()) {
    if (!j["do_sample"].is_boolean())
      return bad_key(file, "do_sample", "a boolean", j["do_sample"]);
    if (!j["do_sample"].get<bool>()) d.temperature = 0.0;
  }
  MLXS_RETURN_IF_ERROR(read_eos(j, file, &d.eos_token_ids));
  return d;
}

GeneratorParams apply_generation_defaults(GeneratorParams p, const GenerationDefaults& d) {
  if (!p.temperature) p.temperature = d.temperature;
  if (!p.top_p) p.top_p = d.top_p;
  if (!p.top_k) p.top_k = d.top_k;
  if (!p.repetition_penalty) p.repetition_penalty = d.repetition_penalty;
  return p;
}

}  // namespace mlxs
