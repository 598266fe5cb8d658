// `mlx-serving chat-template --model DIR --messages FILE.json [--add-generation-prompt]
// [--tools FILE.json]`: renders a conversation with the model's chat template, as transformers'
// apply_chat_template(tokenize=False) does, and prints the prompt. Reads DIR/tokenizer_config.json
// only (no tokenizer needed).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "tokenizer/chat_template.h"

namespace {

struct ChatTemplateArgs {
  std::string model_dir;
  std::string messages_path;
  std::string tools_path;
  std::string template_path;
  std::vector<std::string> vars;
  bool add_generation_prompt = false;
};

mlxs::Result<nlohmann::ordered_json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return mlxs::error(mlxs::ErrorCode::kNotFound, "cannot open " + path);
  auto j = nlohmann::ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return mlxs::error(mlxs::ErrorCode::kParseError, path + " is not valid JSON");
  return j;
}

int fail(const mlxs::Status& s) {
  std::fprintf(stderr, "chat-template: %s\n", s.to_string().c_str());
  return 1;
}

int run(const ChatTemplateArgs& a) {
  auto config = mlxs::read_tokenizer_chat_config(a.model_dir);
  if (!config.ok()) return fail(config.status());
  std::string source = config->chat_template;
  if (!a.template_path.empty()) {
    std::ifstream in(a.template_path);
    if (!in) return fail(mlxs::error(mlxs::ErrorCode::kNotFound, "cannot open " + a.template_path));
    std::stringstream ss;
    ss << in.rdbuf();
    source = ss.str();
  }
  auto tmpl = mlxs::ChatTemplate::compile(source);
  if (!tmpl.ok()) return fail(tmpl.status());
  auto messages = read_json(a.messages_path);
  if (!messages.ok()) return fail(messages.status());
  mlxs::ChatTemplateOptions options;
  options.add_generation_prompt = a.add_generation_prompt;
  options.bos_token = config->bos_token;
  options.eos_token = config->eos_token;
  options.extra = config->special_tokens;
  if (!a.tools_path.empty()) {
    auto tools = read_json(a.tools_path);
    if (!tools.ok()) return fail(tools.status());
    options.tools = *tools;
  }
  for (const std::string& kv : a.vars) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos)
      return fail(
          mlxs::error(mlxs::ErrorCode::kInvalidParams, "--var must be NAME=JSON, got " + kv));
    auto v = nlohmann::ordered_json::parse(kv.substr(eq + 1), nullptr, false);
    if (v.is_discarded())
      return fail(mlxs::error(mlxs::ErrorCode::kInvalidParams, "--var value is not JSON: " + kv));
    options.extra[kv.substr(0, eq)] = v;
  }
  auto prompt = tmpl->render(*messages, options);
  if (!prompt.ok()) return fail(prompt.status());
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "chat-template", "Render a conversation with the model's chat template", [](CLI::App& app) {
      auto a = std::make_shared<ChatTemplateArgs>();
      app.add_option("--model", a->model_dir, "Model folder holding tokenizer_config.json")
          ->required();
      app.add_option("--messages", a->messages_path, "JSON file: array of {role, content, ...}")
          ->required();
      app.add_flag("--add-generation-prompt", a->add_generation_prompt,
                   "End with the assistant turn header");
      app.add_option("--tools", a->tools_path, "JSON file: array of tool definitions");
      app.add_option("--template", a->template_path,
                     "Use this Jinja file instead of the config's template");
      app.add_option("--var", a->vars,
                     "Extra template variable NAME=JSON (e.g. enable_thinking=false)");
      return [a] { return run(*a); };
    });

}  // namespace
