#include "tokenizer/chat_template.h"

#include <fstream>
#include <sstream>

#include "util/json_depth.h"

namespace mlxs {
namespace {

using jinja::CallArgs;
using jinja::Interpreter;
using jinja::JinjaError;
using jinja::Value;

Value raise_exception_fn() {
  return Value::callable("raise_exception", [](Interpreter&, const CallArgs& a) -> Value {
    const Value* msg = a.get(0, "message");
    throw JinjaError("raise_exception: " + (msg ? jinja::python_str(*msg) : std::string()));
  });
}

Value strftime_now_fn(std::optional<std::tm> fixed) {
  return Value::callable("strftime_now", [fixed](Interpreter&, const CallArgs& a) {
    const Value* fmt = a.get(0, "format");
    if (!fmt || !fmt->is_string()) throw JinjaError("strftime_now() needs a format string");
    std::tm tm{};
    if (fixed) {
      tm = *fixed;
    } else {
      std::time_t t = std::time(nullptr);
      localtime_r(&t, &tm);
    }
    char buf[512];
    size_t n = std::strftime(buf, sizeof(buf), fmt->as_string().c_str(), &tm);
    if (n == 0 && !fmt->as_string().empty())
      throw JinjaError("strftime_now(): result too long or empty");
    return Value::string(std::string(buf, n));
  });
}

std::string token_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

Result<ChatTemplate> ChatTemplate::compile(std::string source) {
  MLXS_ASSIGN_OR_RETURN(jinja::Template t, jinja::Template::parse(source));
  return ChatTemplate(std::move(source), std::move(t));
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages,
                                         const ChatTemplateOptions& options) const {
  if (!messages.is_array()) {
    return error(ErrorCode::kInvalidRequest,
                 std::string("messages must be an array, got ") + messages.type_name());
  }
  if (!options.tools.is_null() && !options.tools.is_array()) {
    return error(ErrorCode::kInvalidRequest,
                 std::string("tools must be an array or null, got ") + options.tools.type_name());
  }
  if (!options.extra.is_object()) {
    return error(ErrorCode::kInvalidRequest, "extra template variables must be an object");
  }
  std::unordered_map<std::string, Value> globals;
  try {
    globals["messages"] = Value::from_json(messages);
    globals["tools"] = Value::from_json(options.tools);
    globals["documents"] = Value::from_json(options.documents);
    globals["add_generation_prompt"] = Value::boolean(options.add_generation_prompt);
    globals["bos_token"] = Value::string(options.bos_token);
    globals["eos_token"] = Value::string(options.eos_token);
    for (const auto& [k, v] : options.extra.items()) globals[k] = Value::from_json(v);
  } catch (const JinjaError& e) {
    return error(ErrorCode::kInvalidRequest, e.what());
  }
  globals["raise_exception"] = raise_exception_fn();
  globals["strftime_now"] = strftime_now_fn(options.now);
  return template_.render(globals);
}

Result<TokenizerChatConfig> parse_tokenizer_chat_config(const nlohmann::ordered_json& config) {
  if (!config.is_object())
    return error(ErrorCode::kModelLoadError, "tokenizer_config.json is not a JSON object");
  TokenizerChatConfig out;
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    return error(ErrorCode::kNotFound, "tokenizer_config.json has no chat_template");
  }
  if (it->is_string()) {
    out.chat_template = it->get<std::string>();
  } else if (it->is_array() && !it->empty()) {
    const nlohmann::ordered_json* pick = nullptr;
    for (const auto& e : *it) {
      if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) {
        return error(ErrorCode::kModelLoadError,
                     "chat_template list entries must be {name, template} objects");
      }
      if (!pick || (e.contains("name") && e["name"] == "default")) pick = &e;
      if (e.contains("name") && e["name"] == "default") break;
    }
    out.chat_template = (*pick)["template"].get<std::string>();
  } else {
    return error(ErrorCode::kModelLoadError,
                 std::string("chat_template must be a string or a list of {name, template}, got ") +
                     it->type_name());
  }
  for (const auto& [k, v] : config.items()) {
    bool token_field = k.size() > 6 && k.compare(k.size() - 6, 6, "_token") == 0;
    if (!token_field || !(v.is_string() || v.is_object())) continue;
    std::string text = token_text(v);
    if (k == "bos_token")
      out.bos_token = text;
    else if (k == "eos_token")
      out.eos_token = text;
    else
      out.special_tokens[k] = text;
  }
  return out;
}

Result<TokenizerChatConfig> read_tokenizer_chat_config(const std::string& model_dir,
                                                       const ModelFileAccess& access) {
  std::string path = model_dir + "/tokenizer_config.json";
  auto text = read_model_file(model_dir, "tokenizer_config.json", access);
  if (!text.ok()) {
    return error(text.status().code(), text.status().code() == ErrorCode::kNotFound
                                           ? "cannot open " + path
                                           : text.status().message());
  }
  std::string why;
  auto config = parse_model_json<nlohmann::ordered_json>(*text, &why);
  if (!config) return error(ErrorCode::kModelLoadError, path + " " + why);
  auto r = parse_tokenizer_chat_config(*config);
  if (!r.ok()) return error(r.status().code(), path + ": " + r.status().message());
  return r;
}

}  // namespace mlxs
