// mlxs::Tokenizer: a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) with the
// `tokenizers` library's encode/decode semantics: added tokens -> normalizer -> pre-tokenizer ->
// BPE model -> post-processor, and the decoder chain back.
//
// Invalid UTF-8 input: HF only ever sees Rust strings, so encode() first repairs its input the way
// Rust's String::from_utf8_lossy does (each maximal invalid subsequence becomes U+FFFD) and then
// encodes that text. A Tokenizer is immutable after load() (apart from an internal word cache) and
// every method is safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxs/status.h"
#include "util/model_files.h"

namespace mlxs {

namespace tok {
class AddedVocab;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;
}  // namespace tok

class Tokenizer {
 public:
  // Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json and
  // dir/generation_config.json (extra eos ids). Errors (TokenizerError / NotFound) name the file
  // and the component that is missing, malformed or unsupported.
  // Files are read under the folder's rules (util/model_files.h).
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& dir,
                                                 const ModelFileAccess& access = {});
  // The same from the files' contents; `config_json` may be empty.
  static Result<std::unique_ptr<Tokenizer>> from_json(std::string_view tokenizer_json,
                                                      std::string_view config_json = {},
                                                      std::string_view generation_json = {});
  ~Tokenizer();

  // Token ids of `text`; with add_special_tokens the post-processor adds its tokens (BOS...).
  // kTokenizerError when a pre-tokenizer regex fails on this text (PCRE2's match limit, which a
  // pattern with catastrophic backtracking reaches on hostile input): a request error, never an
  // abort.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens = true) const;
  // Text of `ids`; unknown ids are skipped (as HF does); special tokens are dropped when asked.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // -1 when `token` is neither an added token nor in the model vocab.
  int32_t token_to_id(std::string_view token) const;
  // The token string of `id`, or "" when the id is unknown.
  std::string id_to_token(int32_t id) const;
  // Largest id + 1 (the row count a model's embedding must have at least).
  size_t vocab_size() const { return id_to_token_.size(); }
  // The bytes token `id` adds in the middle of a text (byte-level BPE mapped back to bytes,
  // metaspace as a space, <0xHH> as the byte; a token may end inside a UTF-8 character). Added
  // tokens give their content. "" for an unknown id.
  std::string token_bytes(int32_t id) const;
  // True for added tokens marked special.
  bool is_special(int32_t id) const;

  // From tokenizer_config.json's bos_token, else the post-processor's first prefix token; -1 if
  // none.
  int32_t bos_id() const { return bos_id_; }
  // eos_token of tokenizer_config.json plus generation_config.json's eos_token_id(s), in order.
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  // tokenizer_config.json's add_bos_token, else whether the post-processor prepends bos_id().
  bool add_bos_token() const { return add_bos_token_; }
  // The default chat template ("" when none); named ones (a list in the config) by name.
  const std::string& chat_template() const { return chat_template_; }
  const std::map<std::string, std::string>& chat_templates() const { return chat_templates_; }

 private:
  Tokenizer();
  Status parse_config(std::string_view config_json, std::string_view generation_json);
  // The pieces of `text` after added tokens, normalizer and pre-tokenizer.
  Status encode_into(std::string_view text, std::vector<int32_t>& ids) const;

  std::unique_ptr<tok::Normalizer> normalizer_;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<tok::BpeModel> model_;
  std::unique_ptr<tok::PostProcessor> post_processor_;
  std::unique_ptr<tok::Decoder> decoder_;
  std::unique_ptr<tok::AddedVocab> added_;
  std::vector<std::string> id_to_token_;  // model tokens, overridden by added tokens
  std::vector<bool> special_;             // by id
  std::map<std::string, int32_t, std::less<>> added_ids_;
  int32_t bos_id_ = -1;
  std::vector<int32_t> eos_ids_;
  bool add_bos_token_ = false;
  std::string chat_template_;
  std::map<std::string, std::string> chat_templates_;
};

}  // namespace mlxs
