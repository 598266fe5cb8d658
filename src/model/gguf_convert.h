// A Hugging Face model folder (config.json, safetensors, tokenizer.json) written as a GGUF v3
// file the way llama.cpp's converter and quantizer lay it out (`mlx-serving convert`), so
// tests and benchmarks make GGUF models without downloads.
//
// Metadata: general.architecture (llama for Llama and Mistral, qwen2, qwen3) and the shape keys
// model/gguf_model.h reads; rope scaling "linear" as keys, "llama3" as a rope_freqs tensor; the
// tokenizer as model/gguf_tokenizer.h reads it (gpt2 with the pre-tokenizer named by matching
// its regex, or llama for a byte-fallback BPE, whose scores are minus the rank of the first
// merge that makes each token); the chat template.
//
// Types (--type): f32, f16, bf16: every matrix in that type. q8_0, q4_0: every matrix.
// q4_k_m, llama.cpp's mix: Q4_K, with Q6_K for lm_head and for attn_v and ffn_down in the first
// and last eighth of the layers and every third layer between. A row too short for its block
// falls back as llama.cpp does (Q4_K -> Q5_0, Q6_K -> Q8_0; F16 below 32). Vectors (norms,
// biases) stay F32. The Q and K projections of llama models are permuted into llama.cpp's
// row order.
#pragma once

#include <string>
#include <vector>

#include "mlxs/status.h"
#include "util/model_files.h"

namespace mlxs {

// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m".
const std::vector<std::string>& gguf_convert_types();

class GgufWriter;
// The tokenizer.* keys for SRC/tokenizer.json (and tokenizer_config.json), as convert writes them.
Status write_gguf_tokenizer(const std::string& src_dir, const ModelFileAccess& access,
                            GgufWriter& w);

Status convert_to_gguf(const std::string& src_dir, const std::string& out_path,
                       const std::string& type, const ModelFileAccess& access = {});

}  // namespace mlxs
