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

// Tool calling, from a chat template's source (a text search, not an evaluation):
//  - it renders tools when it names the `tools` variable (a word `tools` outside quotes is
//    enough: a template that never reads the variable cannot show the tools to the model);
//  - its format is the one whose markers it writes: "<tool_call>" -> kHermes, "[TOOL_CALLS]" ->
//    kMistral, "<|python_tag|>" or the Llama 3 header "<|start_header_id|>" together with
//    "parameters" -> kLlama3Json (checked in that order); none of them, or a template that does
//    not render tools -> kNone.
bool template_renders_tools(const std::string& source);
ToolCallFormat detect_tool_call_format(const std::string& source);

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
  bool renders_tools() const { return renders_tools_; }
  ToolCallFormat tool_call_format() const { return tool_call_format_; }
  // The prompt for `messages` (and `tools`, see Engine::apply_chat_template), ending with the
  // generation prompt. kInvalidRequest without a template, when the template raises, or when a
  // tool's parameters or a call's arguments are not a JSON object. Thread-safe.
  Result<std::string> render(const std::vector<ChatMessage>& messages,
                             const std::vector<ToolDefinition>& tools = {}) const;

 private:
  std::optional<ChatTemplate> chat_template_;
  std::string bos_token_, eos_token_;
  std::vector<int32_t> end_of_turn_ids_;
  bool renders_tools_ = false;
  ToolCallFormat tool_call_format_ = ToolCallFormat::kNone;
};

}  // namespace mlxs
