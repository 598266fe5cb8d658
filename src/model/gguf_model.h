// A GGUF model file read as if it were a Hugging Face model folder: its metadata becomes a
// ModelArch and its tensors a WeightStore under the Hugging Face names, so the one weight
// loader (model/decoder.cc) serves safetensors folders and GGUF files alike.
//
// What loads (general.architecture): llama (Llama 2/3/3.x, and Mistral, which llama.cpp files
// as llama), qwen2 (Qwen2/2.5), qwen3. Tensor names map as
//   token_embd -> model.embed_tokens, output_norm -> model.norm, output -> lm_head (absent:
//   tied embeddings), blk.N.attn_norm / ffn_norm -> model.layers.N.input_layernorm /
//   post_attention_layernorm, blk.N.attn_q / attn_k / attn_v / attn_output ->
//   self_attn.q_proj / k_proj / v_proj / o_proj (weights and biases), blk.N.attn_q_norm /
//   attn_k_norm -> self_attn.q_norm / k_norm, blk.N.ffn_gate / ffn_up / ffn_down ->
//   mlp.gate_proj / up_proj / down_proj; rope_freqs (Llama 3.1 scaling) becomes
//   ModelArch::rope_freq_factors. A name outside this list keeps its GGUF name, so the loader
//   reports it as unexpected.
//
// Tensor types: F32, F16 and BF16 are served from the mapping as they are; the block types of
// model/gguf_quants.h are repacked into the affine layout and presented as MLX-quantized
// tensors are (`<base>.weight` U32 [N, K * bits / 32], `<base>.scales` and `<base>.biases`
// [N, K / group]); any other type is refused naming the tensor and its type.
//
// llama.cpp's converter permutes the rows of the Q and K projections of llama-architecture
// models (its rope pairs adjacent elements; transformers pairs i with i + Dh/2). The rows are
// put back in Hugging Face order here: a row permutation, exact on packed rows too.
#pragma once

#include <memory>
#include <string>

#include "mlxs/status.h"
#include "model/config.h"
#include "model/gguf.h"
#include "model/safetensors.h"

namespace mlxs {

// The GGUF file of a model path: `path` itself when it is a regular file named *.gguf, or the
// one *.gguf in folder `path` when the folder has exactly one and no config.json; "" otherwise.
std::string find_gguf_model(const std::string& path);

// The model shape from the file's metadata; errors name the file and the key.
Result<ModelArch> gguf_model_arch(const GgufFile& file);

// The file's tensors under Hugging Face names (see above); the store keeps `file` and the
// repacked buffers alive.
Result<WeightStore> gguf_weight_store(std::shared_ptr<const GgufFile> file, const ModelArch& arch);

// The GGUF tensor name of Hugging Face tensor `hf_name` ("" when it has none): the inverse of
// the mapping above, for the writer.
std::string gguf_tensor_name(const std::string& hf_name);

// Rows of a llama Q or K projection: llama.cpp's order from transformers' (to_gguf) or back.
// `rows` is n_head * head_dim; returns, for each destination row, its source row.
std::vector<int64_t> rope_row_order(int64_t rows, int n_head, bool to_gguf);

}  // namespace mlxs
