// A model folder's generation_config.json: the sampling defaults its authors chose.
//
// Precedence of a request's sampling fields (GeneratorParams):
//   1. the request's own value;
//   2. generation_config.json of the model folder;
//   3. the configured `sampling` section.
// The file comes before the config because it was written for this model (e.g. Qwen ships
// temperature 0.7, top_p 0.8, top_k 20, repetition_penalty 1.05), while the config holds one
// operator-wide default for every model the server loads; the caller still has the last word.
// The file's eos_token_id ids always stop generation, beside config.json's and the tokenizer's.
//
// Read keys: temperature, top_p, top_k, repetition_penalty, do_sample, eos_token_id. do_sample
// false, when the file says so, means greedy (temperature 0), as in transformers; a file without
// do_sample sets no temperature through it. Other keys (max_length, pad_token_id, ...) are not
// read: context and lengths come from config.json and the request.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mlxs/options.h"
#include "mlxs/status.h"

namespace mlxs {

struct GenerationDefaults {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int32_t> top_k;
  std::optional<double> repetition_penalty;
  std::vector<int32_t> eos_token_ids;
};

// <dir>/generation_config.json; no file: empty defaults. A value of the wrong type or outside
// the range GeneratorParams allows is kModelLoadError naming the file and key.
Result<GenerationDefaults> read_generation_defaults(const std::string& dir);

// `params` with each sampling field it leaves unset taken from `defaults`.
GeneratorParams apply_generation_defaults(GeneratorParams params,
                                          const GenerationDefaults& defaults);

}  // namespace mlxs
