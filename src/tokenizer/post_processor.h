// Post-processors of tokenizer.json ("post_processor" field): TemplateProcessing (single
// sequences), BertProcessing, RobertaProcessing, ByteLevel (ids unchanged), Sequence. They run only
// when encode() is asked to add special tokens. Immutable after load; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens around the ids of one sequence.
  virtual void process(std::vector<int32_t>& ids) const = 0;
  // The ids this processor puts before the sequence (for bos_id()).
  virtual std::vector<int32_t> prefix_ids() const = 0;
};

// Builds the post-processor described by `j`; null JSON gives nullptr. Unknown types are a
// TokenizerError naming the type.
Result<std::unique_ptr<PostProcessor>> make_post_processor(const nlohmann::json& j);

}  // namespace mlxs::tok
