// A loaded model's chat format: how a conversation becomes its prompt. Read once at load from
// the model folder (tokenizer_config.json's chat template, BOS and EOS tokens) and from the
// vocabulary (the single-token end-of-turn markers it defines). The HTTP server asks the Engine
// for these; it never reads the model folder itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mlxs/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace mlxs {

class ChatFormat {
 public:
  // Reads DIR/tokenizer_config.json under `access`. A folder without it, or without a chat
  // template in it, gives a format with no template (completions only); a broken file or a
  // template that does not compile is kModelLoadError naming the file. `tokenizer` may be null
  // (no tokenizer.json: no end-of-turn ids).
  static Result<ChatFormat> load(const std::string& model_id, const std::string& dir,
                                 const Tokenizer* tokenizer, const ModelFileAccess& access);

  bool has_template() const { return chat_template_.has_value(); }
  // Ids that end an assistant turn (<|im_end|>, <|eot_id|>, ...) among those the vocabulary has
  // as one token.
  const std::vector<int32_t>& end_of_turn_ids() const { return end_of_turn_ids_; }
  // The prompt for `messages`, ending with the generation prompt. kInvalidRequest without a
  // template or when the template raises. Thread-safe.
  Result<std::string> render(const std::vector<ChatMessage>& messages) const;

 private:
  std::optional<ChatTemplate> chat_template_;
  std::string bos_token_, eos_token_;
  std::vector<int32_t> end_of_turn_ids_;
};

}  // namespace mlxs
