// The tokenizer of a GGUF file, from its tokenizer.* metadata, built as the same internal
// Tokenizer a Hugging Face folder gives: the metadata is turned into the tokenizer.json and
// tokenizer_config.json that describe the same tokenizer, then read by Tokenizer::from_json.
//
// tokenizer.ggml.model:
//   "gpt2"  byte-level BPE: tokens, merges, token_type; the pre-tokenizer from
//           tokenizer.ggml.pre: "llama-bpe" (Llama 3: digits in runs of 1-3, merges ignored for
//           whole-vocabulary words), "qwen2" (single digits, NFC), "default"/"gpt-2" (GPT-2).
//           Any other pre-tokenizer is refused: a wrong split gives wrong ids in silence.
//   "llama" SentencePiece BPE: tokens, scores, token_type, byte fallback (<0xHH> tokens), a
//           "▁" prefix unless tokenizer.ggml.add_space_prefix is false. The merges are derived
//           from the scores as transformers' converter derives them from the .model file: every
//           split of a token into two tokens, ordered by the merged token's score (highest
//           first), then by the two parts' ids.
// Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
// Control and unknown tokens become special added tokens, user-defined ones plain added tokens.
// bos/eos/unk/pad ids, add_bos_token and the chat template (tokenizer.chat_template) are read
// too; eot and eom ids become extra end-of-sequence ids.
#pragma once

#include <memory>
#include <string>

#include "mlxs/status.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace mlxs {

struct GgufTokenizerFiles {
  std::string tokenizer_json, config_json, generation_json;
};

// The three files' contents; kTokenizerError naming the file and key on bad metadata.
Result<GgufTokenizerFiles> gguf_tokenizer_files(const GgufFile& file);
Result<std::unique_ptr<Tokenizer>> gguf_tokenizer(const GgufFile& file);

// The pre-tokenizer regex of a tokenizer.ggml.pre name, "" when it is not one of ours.
std::string gguf_pre_tokenizer_regex(const std::string& pre);

}  // namespace mlxs
