#include "engine/chat_format.h"

namespace mlxs {
namespace {

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

}  // namespace

Result<ChatFormat> ChatFormat::load(const std::string& model_id, const std::string& dir,
                                    const Tokenizer* tokenizer, const ModelFileAccess& access) {
  ChatFormat f;
  if (tokenizer) f.end_of_turn_ids_ = end_of_turn_ids_of(*tokenizer);
  if (!model_file_exists(dir, "tokenizer_config.json")) return f;
  auto cfg = read_tokenizer_chat_config(dir, access);
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
  f.bos_token_ = cfg->bos_token;
  f.eos_token_ = cfg->eos_token;
  return f;
}

Result<std::string> ChatFormat::render(const std::vector<ChatMessage>& messages) const {
  if (!chat_template_) return error(ErrorCode::kInvalidRequest, "the model has no chat template");
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  ChatTemplateOptions opts;
  opts.add_generation_prompt = true;
  opts.bos_token = bos_token_;
  opts.eos_token = eos_token_;
  return chat_template_->render(list, opts);
}

}  // namespace mlxs
