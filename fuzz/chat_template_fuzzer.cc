// Fuzzes chat templates (a model folder's Jinja) and what they render. Input: the template
// source, NUL, a JSON context {"messages": [...], "tools": [...], "documents": [...],
// "add_generation_prompt": bool, "bos_token": "...", "eos_token": "...", other keys as extra
// variables} (optional: a two-turn conversation without it). Compiling and rendering must end
// with a result or an error under the interpreter's limits, never a crash or unbounded memory.
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz/fuzz_util.h"
#include "tokenizer/chat_template.h"
#include "util/json_depth.h"

namespace {

using ojson = nlohmann::ordered_json;

constexpr int kMaxDepth = 64;  // server.max_json_depth's default

const char kDefaultContext[] =
    R"({"messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"},
                     {"role": "user", "content": [{"type": "text", "text": "2+2?"}]}],
        "add_generation_prompt": true})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [source, context_text] = mlxs::fuzz::split_at_nul(data, size, kDefaultContext);
  auto tmpl = mlxs::ChatTemplate::compile(std::string(source));
  if (!tmpl.ok()) return 0;
  if (mlxs::json_nesting_depth(context_text, kMaxDepth) > kMaxDepth) return 0;
  ojson context = ojson::parse(context_text, nullptr, false);
  if (context.is_discarded() || !context.is_object()) return 0;
  mlxs::ChatTemplateOptions options;
  std::tm now{};
  now.tm_year = 126;
  now.tm_mon = 11;
  now.tm_mday = 7;
  options.now = now;
  ojson messages = ojson::array();
  for (auto& [key, value] : context.items()) {
    if (key == "messages") {
      messages = value;
    } else if (key == "add_generation_prompt" && value.is_boolean()) {
      options.add_generation_prompt = value.get<bool>();
    } else if (key == "tools") {
      options.tools = value;
    } else if (key == "documents") {
      options.documents = value;
    } else if (key == "bos_token" && value.is_string()) {
      options.bos_token = value.get<std::string>();
    } else if (key == "eos_token" && value.is_string()) {
      options.eos_token = value.get<std::string>();
    } else {
      options.extra[key] = value;
    }
  }
  (void)tmpl->render(messages, options);
  return 0;
}
