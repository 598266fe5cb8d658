#include "engine/chat_format.h"

#include <regex>

#include "model/gguf_model.h"
#include "util/json_depth.h"

namespace mlxs {
namespace {

using ojson = nlohmann::ordered_json;

// The end-of-turn markers of the chat formats in use (ChatML, Llama 3, Phi, Gemma, ...).
const char* const kEndOfTurnMarkers[] = {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>",
                                         "<|end_of_turn|>"};

std::vector<int32_t> end_of_turn_ids_of(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  for (const char* marker : kEndOfTurnMarkers) {
    auto t = tokenizer.encode(marker, false);
    if (t.ok() && t->size() == 1) ids.push_back((*t)[0]);
  }
  return ids;
}

// `text` parsed as a JSON object, for the template (which reads arguments and schemas as
// mappings); `what` names it in the error.
Result<ojson> json_object_of(const JsonText& text, const std::string& what) {
  constexpr int kMaxDepth = 64;  // deeper would overflow the stack when rendered (json_depth.h)
  if (json_nesting_depth(text.text, kMaxDepth) > kMaxDepth) {
    return error(ErrorCode::kInvalidRequest,
                 what + " nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  ojson v = ojson::parse(text.text, nullptr, /*allow_exceptions=*/false);
  if (!v.is_object()) {
    return error(ErrorCode::kInvalidRequest, what + " must be a JSON object, got: " + text.text);
  }
  return v;
}

Result<ojson> message_json(const ChatMessage& m) {
  ojson out = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    ojson calls = ojson::array();
    for (const ToolCall& c : m.tool_calls) {
      MLXS_ASSIGN_OR_RETURN(
          ojson args, json_object_of(c.arguments, "the arguments of tool call '" + c.id + "'"));
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", std::move(args)}}}});
    }
    out["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty()) out["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) out["name"] = m.name;
  return out;
}

Result<ojson> tools_json(const std::vector<ToolDefinition>& tools) {
  if (tools.empty()) return ojson(nullptr);
  ojson out = ojson::array();
  for (const ToolDefinition& t : tools) {
    MLXS_ASSIGN_OR_RETURN(ojson params,
                          json_object_of(t.parameters, "the parameters of tool '" + t.name + "'"));
    out.push_back(
        {{"type", "function"},
         {"function", {{"name", t.name}, {"description", t.description}, {"parameters", params}}}});
  }
  return out;
}

}  // namespace

bool template_renders_tools(const std::string& source) {
  static const std::regex kToolsWord(R"(\btools\b)");
  // Words inside string literals do not count: drop them first.
  static const std::regex kStrings(R"('[^'\n]*'|"[^"\n]*")");
  return std::regex_search(std::regex_replace(source, kStrings, ""), kToolsWord);
}

ToolCallFormat detect_tool_call_format(const std::string& source) {
  if (!template_renders_tools(source)) return ToolCallFormat::kNone;
  auto has = [&](const char* marker) { return source.find(marker) != std::string::npos; };
  if (has("<tool_call>")) return ToolCallFormat::kHermes;
  if (has("[TOOL_CALLS]")) return ToolCallFormat::kMistral;
  if (has("<|python_tag|>") || (has("<|start_header_id|>") && has("parameters")))
    return ToolCallFormat::kLlama3Json;
  return ToolCallFormat::kNone;
}

Result<ChatFormat> ChatFormat::load(const std::string& model_id, const std::string& dir,
                                    const Tokenizer* tokenizer, const ModelFileAccess& access) {
  ChatFormat f;
  if (tokenizer) f.end_of_turn_ids_ = end_of_turn_ids_of(*tokenizer);
  Result<TokenizerChatConfig> cfg = error(ErrorCode::kNotFound, "no chat template");
  if (const std::string gguf = find_gguf_model(dir); !gguf.empty()) {
    // A GGUF file's template, bos and eos come with its tokenizer (model/gguf_tokenizer.h).
    if (!tokenizer || tokenizer->chat_template().empty()) return f;
    TokenizerChatConfig from_gguf;
    from_gguf.chat_template = tokenizer->chat_template();
    from_gguf.bos_token = tokenizer->id_to_token(tokenizer->bos_id());
    if (!tokenizer->eos_ids().empty()) {
      from_gguf.eos_token = tokenizer->id_to_token(tokenizer->eos_ids()[0]);
    }
    cfg = from_gguf;
  } else if (!model_file_exists(dir, "tokenizer_config.json")) {
    return f;
  } else {
    cfg = read_tokenizer_chat_config(dir, access);
  }
  if (!cfg.ok() && cfg.status().code() == ErrorCode::kNotFound) return f;  // no chat template
  if (!cfg.ok()) {
    return error(ErrorCode::kModelLoadError, "model '" + model_id + "': " + cfg.status().message());
  }
  auto t = ChatTemplate::compile(cfg->chat_template);
  if (!t.ok()) {
    return error(ErrorCode::kModelLoadError, "model '" + model_id + "': the chat template of " +
                                                 dir +
                                                 "/tokenizer_config.json: " + t.status().message());
  }
  f.chat_template_.emplace(std::move(*t));
  f.renders_tools_ = template_renders_tools(cfg->chat_template);
  f.tool_call_format_ = detect_tool_call_format(cfg->chat_template);
  f.bos_token_ = cfg->bos_token;
  f.eos_token_ = cfg->eos_token;
  return f;
}

Result<std::string> ChatFormat::render(const std::vector<ChatMessage>& messages,
                                       const std::vector<ToolDefinition>& tools) const {
  if (!chat_template_) return error(ErrorCode::kInvalidRequest, "the model has no chat template");
  ojson list = ojson::array();
  for (const ChatMessage& m : messages) {
    MLXS_ASSIGN_OR_RETURN(ojson message, message_json(m));
    list.push_back(std::move(message));
  }
  ChatTemplateOptions opts;
  MLXS_ASSIGN_OR_RETURN(opts.tools, tools_json(tools));
  opts.add_generation_prompt = true;
  opts.bos_token = bos_token_;
  opts.eos_token = eos_token_;
  return chat_template_->render(list, opts);
}

}  // namespace mlxs
