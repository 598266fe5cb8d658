// The largest vocabulary a model folder may declare, shared by config.json (vocab_size) and
// tokenizer.json (token ids). Tables are sized by it: an added-token id of 2^31 - 1 used to ask
// for 64 GiB. Real vocabularies stay under 300,000 entries.
#pragma once

#include <cstdint>

namespace mlxs {

inline constexpr int64_t kMaxVocabSize = int64_t(1) << 22;  // 4,194,304
inline constexpr int64_t kMaxTokenId = kMaxVocabSize - 1;

}  // namespace mlxs
