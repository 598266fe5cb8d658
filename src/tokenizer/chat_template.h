// Chat templates: a model's Jinja `chat_template` rendered as Hugging Face transformers'
// apply_chat_template renders it (jinja2 sandbox, trim_blocks, lstrip_blocks, loop controls,
// `raise_exception`, `strftime_now`, and a `tojson` that is json.dumps with ensure_ascii=False).
#pragma once

#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "jinja/template.h"
#include "mlxs/status.h"
#include "util/model_files.h"

namespace mlxs {

struct ChatTemplateOptions {
  bool add_generation_prompt = false;
  nlohmann::ordered_json tools = nullptr;      // array of tool definitions, or null
  nlohmann::ordered_json documents = nullptr;  // array of documents (RAG templates), or null
  std::string bos_token;
  std::string eos_token;
  // Further template variables (e.g. {"enable_thinking": false}); they override the above.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  // The clock of strftime_now(); unset means the current local time.
  std::optional<std::tm> now;
};

class ChatTemplate {
 public:
  // Parses the template; fails with kParseError naming the line and column of an unsupported or
  // malformed construct.
  static Result<ChatTemplate> compile(std::string source);

  // Renders a conversation. `messages` is an array of message objects ({role, content, ...}
  // in the OpenAI/HF shape); key order is kept, which `tojson` output depends on. Fails with
  // kInvalidRequest when the template raises (raise_exception) or fails to render.
  // Thread-safe.
  Result<std::string> render(const nlohmann::ordered_json& messages,
                             const ChatTemplateOptions& options) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate(std::string source, jinja::Template t)
      : source_(std::move(source)), template_(std::move(t)) {}
  std::string source_;
  jinja::Template template_;
};

// What a model folder's tokenizer_config.json says about chat formatting.
struct TokenizerChatConfig {
  std::string chat_template;  // the "default" template, or the only/first one
  std::string bos_token;      // "" when absent or null
  std::string eos_token;
  // Other special tokens (unk_token, pad_token, ...) that transformers passes to templates.
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
};

// Reads `config` (a parsed tokenizer_config.json). `chat_template` may be a string or a list of
// {name, template}; token fields may be strings or {"content": ...} objects. Fails with
// kNotFound when there is no chat template (a model for completions only), kModelLoadError when
// it is malformed.
Result<TokenizerChatConfig> parse_tokenizer_chat_config(const nlohmann::ordered_json& config);
// Reads and parses DIR/tokenizer_config.json.
Result<TokenizerChatConfig> read_tokenizer_chat_config(const std::string& model_dir,
                                                       const ModelFileAccess& access = {});

}  // namespace mlxs
