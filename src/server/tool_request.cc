#include "server/tool_request.h"

#include <cctype>
#include <regex>
#include <set>

#include "server/request_fields.h"
#include "server/tool_calls.h"
#include "structured/grammar.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// OpenAI's and Anthropic's rule for a function name.
bool valid_tool_name(const std::string& name) {
  static const std::regex kName("^[a-zA-Z0-9_-]{1,64}$");
  return std::regex_match(name, kName);
}

// Fails on the first member of `object` not in `allowed`, naming it under `at`.
bool only_known_keys(const json& object, std::initializer_list<const char*> allowed,
                     const std::string& at, BodyReader& r) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known && !value.is_null()) {
      r.fail_field(at + "." + key, "unknown field");
      return false;
    }
  }
  return true;
}

// A tool's name (at `field`), checked and unique within the request.
std::optional<std::string> tool_name(const json& object, const std::string& field,
                                     const std::vector<ToolDefinition>& seen, BodyReader& r) {
  auto it = object.find("name");
  if (it == object.end() || !it->is_string()) {
    r.fail_field(field, "is required (a string)");
    return std::nullopt;
  }
  const std::string name = it->get<std::string>();
  if (!valid_tool_name(name)) {
    r.fail_field(field, "must match ^[a-zA-Z0-9_-]{1,64}$, got '" + name + "'");
    return std::nullopt;
  }
  for (const ToolDefinition& t : seen) {
    if (t.name == name) {
      r.fail_field(field, "duplicate tool name '" + name + "'");
      return std::nullopt;
    }
  }
  return name;
}

// A parameters / input_schema member: a JSON Schema object; absent = no parameters.
std::optional<JsonText> tool_schema(const json& object, const char* key, const std::string& field,
                                    BodyReader& r) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return JsonText{R"({"type":"object","properties":{}})"};
  if (!it->is_object()) {
    r.fail_field(field, "expected a JSON Schema object, got " + json_type_name(*it));
    return std::nullopt;
  }
  return JsonText{it->dump()};
}

std::optional<std::string> optional_string(const json& object, const char* key,
                                           const std::string& field, BodyReader& r) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    r.fail_field(field, "expected string, got " + json_type_name(*it));
    return std::nullopt;
  }
  return it->get<std::string>();
}

// tools[i] of an OpenAI request: {type: function, function: {name, description, parameters,
// strict}}.
void read_openai_tool(const json& tool, size_t i, ToolsRequest& t, BodyReader& r) {
  const std::string at = "tools[" + std::to_string(i) + "]";
  if (!tool.is_object()) return r.fail_field(at, "expected a tool object");
  if (!only_known_keys(tool, {"type", "function"}, at, r)) return;
  if (tool.value("type", json()) != "function")
    return r.fail_field(at + ".type", "only \"function\" tools are supported");
  auto f = tool.find("function");
  if (f == tool.end() || !f->is_object()) return r.fail_field(at + ".function", "is required");
  const std::string fat = at + ".function";
  if (!only_known_keys(*f, {"name", "description", "parameters", "strict"}, fat, r)) return;
  if (f->contains("strict") && !(*f)["strict"].is_boolean() && !(*f)["strict"].is_null())
    return r.fail_field(fat + ".strict", "expected boolean");
  auto name = tool_name(*f, fat + ".name", t.tools, r);
  auto description =
      name ? optional_string(*f, "description", fat + ".description", r) : std::nullopt;
  auto schema = description ? tool_schema(*f, "parameters", fat + ".parameters", r) : std::nullopt;
  if (!schema) return;
  t.tools.push_back({*name, *description, *schema});
  t.schema_fields.push_back(fat + ".parameters");
}

// tools[i] of an Anthropic request: {name, description, input_schema} (a custom tool).
void read_anthropic_tool(const json& tool, size_t i, ToolsRequest& t, BodyReader& r) {
  const std::string at = "tools[" + std::to_string(i) + "]";
  if (!tool.is_object()) return r.fail_field(at, "expected a tool object");
  if (!only_known_keys(tool, {"name", "description", "input_schema", "type", "cache_control"}, at,
                       r))
    return;
  if (tool.contains("type") && !tool["type"].is_null() && tool["type"] != "custom") {
    return r.fail_field(at + ".type",
                        "only custom tools (name, description, input_schema) are supported, got " +
                            tool["type"].dump());
  }
  if (!tool.contains("input_schema")) return r.fail_field(at + ".input_schema", "is required");
  auto name = tool_name(tool, at + ".name", t.tools, r);
  auto description =
      name ? optional_string(tool, "description", at + ".description", r) : std::nullopt;
  auto schema =
      description ? tool_schema(tool, "input_schema", at + ".input_schema", r) : std::nullopt;
  if (!schema) return;
  t.tools.push_back({*name, *description, *schema});
  t.schema_fields.push_back(at + ".input_schema");
}

// tool_choice (named: in `t.tools`) after the tools were read.
// `field`: tool_choice; `name_field`: where its tool's name is.
void check_named_choice(ToolsRequest& t, const std::string& field, const std::string& name_field,
                        BodyReader& r) {
  if (t.choice.kind == ToolChoice::Kind::kNone) return;
  if (t.tools.empty()) {
    if (t.choice.kind != ToolChoice::Kind::kAuto)
      r.fail_field(field, "needs tools: no tools were given");
    return;
  }
  if (t.choice.kind != ToolChoice::Kind::kNamed) return;
  for (const ToolDefinition& tool : t.tools) {
    if (tool.name == t.choice.name) return;
  }
  r.fail_field(name_field, "names '" + t.choice.name + "', which is not one of the tools");
}

std::string tools_system_text(const std::vector<ToolDefinition>& tools) {
  std::string text =
      "# Tools\n\nYou can call functions to help answer. These are the functions, each with its "
      "parameters as a JSON Schema:\n<tools>\n";
  for (const ToolDefinition& t : tools) {
    using ojson = nlohmann::ordered_json;  // name first, as the model reads it
    ojson params = ojson::parse(t.parameters.text, nullptr, false);
    ojson def = {
        {"type", "function"},
        {"function", {{"name", t.name}, {"description", t.description}, {"parameters", params}}}};
    text += def.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  }
  text +=
      "</tools>\n\nTo call a function, answer with one block per call and nothing else:\n"
      "<tool_call>\n{\"name\": <the function's name>, \"arguments\": <its arguments as a JSON "
      "object>}\n</tool_call>";
  return text;
}

std::string hermes_block(const ToolCall& c) {
  return "<tool_call>\n{\"name\": " + json(c.name).dump() + ", \"arguments\": " + c.arguments.text +
         "}\n</tool_call>";
}

// `p` + decimal `i`: the rule names of tool i's arguments ("p0-...").
std::string schema_prefix(size_t i) {
  return "p" + std::to_string(i) + "-";
}

// Mistral's templates require call ids of exactly 9 letters and digits; clients send their own
// ("call_..." from OpenAI's shape, "toolu_..."). Each id becomes its last 9 letters and digits
// (left-padded with 0), the same for a call and the result that answers it.
std::string mistral_call_id(const std::string& id) {
  std::string alnum;
  for (char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c))) alnum += c;
  }
  if (alnum.size() >= 9) return alnum.substr(alnum.size() - 9);
  return std::string(9 - alnum.size(), '0') + alnum;
}

void use_mistral_call_ids(std::vector<ChatMessage>& messages) {
  for (ChatMessage& m : messages) {
    for (ToolCall& c : m.tool_calls) c.id = mistral_call_id(c.id);
    if (!m.tool_call_id.empty()) m.tool_call_id = mistral_call_id(m.tool_call_id);
  }
}

}  // namespace

ToolsRequest read_openai_tools(BodyReader& r) {
  ToolsRequest t;
  if (const json* tools = r.get("tools")) {
    if (!tools->is_array()) {
      r.fail_field("tools", "expected an array of tools, got " + json_type_name(*tools));
      return t;
    }
    for (size_t i = 0; i < tools->size() && !r.failed(); ++i)
      read_openai_tool((*tools)[i], i, t, r);
  }
  if (const json* c = r.get("tool_choice")) {
    if (c->is_string()) {
      const std::string s = c->get<std::string>();
      if (s == "none")
        t.choice.kind = ToolChoice::Kind::kNone;
      else if (s == "auto")
        t.choice.kind = ToolChoice::Kind::kAuto;
      else if (s == "required")
        t.choice.kind = ToolChoice::Kind::kRequired;
      else
        r.fail_field("tool_choice", "expected none, auto, required or a function, got '" + s + "'");
    } else if (c->is_object() && c->value("type", json()) == "function" &&
               c->contains("function") && (*c)["function"].is_object() &&
               (*c)["function"].contains("name") && (*c)["function"]["name"].is_string()) {
      t.choice = {ToolChoice::Kind::kNamed, (*c)["function"]["name"].get<std::string>()};
    } else {
      r.fail_field("tool_choice",
                   "expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                   "\"function\": {\"name\": ...}}");
    }
  }
  if (auto parallel = r.boolean("parallel_tool_calls")) t.parallel = *parallel;
  if (!r.failed()) check_named_choice(t, "tool_choice", "tool_choice.function.name", r);
  return t;
}

ToolsRequest read_anthropic_tools(BodyReader& r) {
  ToolsRequest t;
  if (const json* tools = r.get("tools")) {
    if (!tools->is_array()) {
      r.fail_field("tools", "expected an array of tools, got " + json_type_name(*tools));
      return t;
    }
    for (size_t i = 0; i < tools->size() && !r.failed(); ++i)
      read_anthropic_tool((*tools)[i], i, t, r);
  }
  if (const json* c = r.get("tool_choice")) {
    const std::string type = c->is_object() ? c->value("type", "") : "";
    if (type == "auto")
      t.choice.kind = ToolChoice::Kind::kAuto;
    else if (type == "any")
      t.choice.kind = ToolChoice::Kind::kRequired;
    else if (type == "none")
      t.choice.kind = ToolChoice::Kind::kNone;
    else if (type == "tool" && c->contains("name") && (*c)["name"].is_string())
      t.choice = {ToolChoice::Kind::kNamed, (*c)["name"].get<std::string>()};
    else
      r.fail_field("tool_choice",
                   "expected {\"type\": \"auto\" | \"any\" | \"none\"} or {\"type\": \"tool\", "
                   "\"name\": ...}");
    if (!r.failed() && c->contains("disable_parallel_tool_use")) {
      const json& d = (*c)["disable_parallel_tool_use"];
      if (!d.is_boolean())
        r.fail_field("tool_choice.disable_parallel_tool_use", "expected boolean");
      else
        t.parallel = !d.get<bool>();
    }
  }
  if (!r.failed()) check_named_choice(t, "tool_choice", "tool_choice.name", r);
  return t;
}

std::variant<ToolCallFormat, ApiError> tool_call_format_for(const ServedModel& m) {
  if (!m.chat_template_renders_tools) return ToolCallFormat::kHermes;  // the fallback
  if (m.tool_call_format != ToolCallFormat::kNone) return m.tool_call_format;
  ApiError e = bad_field("tools", "model '" + m.id +
                                      "' has a chat template that renders tools in a tool-call "
                                      "format this server does not parse (it parses llama3_json, "
                                      "hermes and mistral); send the request without tools");
  return e;
}

std::vector<ChatMessage> fallback_tool_messages(std::vector<ChatMessage> messages,
                                                const std::vector<ToolDefinition>& tools) {
  std::vector<ChatMessage> out;
  if (!tools.empty()) {
    const std::string text = tools_system_text(tools);
    if (!messages.empty() && messages[0].role == "system") {
      messages[0].content += "\n\n" + text;
    } else {
      out.push_back({"system", text});
    }
  }
  bool after_result = false;  // consecutive tool results share one user turn
  for (ChatMessage& m : messages) {
    if (m.role == "tool") {
      const std::string block = "<tool_response>\n" + m.content + "\n</tool_response>";
      if (after_result) {
        out.back().content += "\n" + block;
      } else {
        out.push_back({"user", block});
      }
      after_result = true;
      continue;
    }
    after_result = false;
    for (const ToolCall& c : m.tool_calls) {
      if (!m.content.empty()) m.content += "\n";
      m.content += hermes_block(c);
    }
    m.tool_calls.clear();
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::string> forced_tool_call_grammar(ToolCallFormat format, const ToolsRequest& request) {
  std::string rules, alternatives;
  const char* args_key = format == ToolCallFormat::kLlama3Json ? "parameters" : "arguments";
  for (size_t i = 0; i < request.tools.size(); ++i) {
    const ToolDefinition& t = request.tools[i];
    if (request.choice.kind == ToolChoice::Kind::kNamed && t.name != request.choice.name) continue;
    structured::JsonSchemaOptions o;
    o.rule_prefix = schema_prefix(i);
    o.root_rule = o.rule_prefix + "root";
    auto gbnf = structured::json_schema_to_gbnf(t.parameters.text, o);
    if (!gbnf.ok()) {
      const std::string field =
          i < request.schema_fields.size() ? request.schema_fields[i] : "tools";
      return error(ErrorCode::kInvalidParams,
                   "Validation error on field '" + field +
                       "': cannot be enforced: " + gbnf.status().message());
    }
    rules += *gbnf + "\n";
    // {"name": "NAME", "<args_key>": ARGS}; names are [a-zA-Z0-9_-], nothing to escape.
    rules += "fn" + std::to_string(i) + " ::= \"{\\\"name\\\": \\\"" + t.name + "\\\", \\\"" +
             args_key + "\\\": \" " + o.root_rule + " \"}\"\n";
    alternatives += (alternatives.empty() ? "" : " | ") + ("fn" + std::to_string(i));
  }
  rules += "fn ::= " + alternatives + "\n";
  switch (format) {
    case ToolCallFormat::kHermes:
      rules += "call ::= \"<tool_call>\\n\" fn \"\\n</tool_call>\"\n";
      rules += request.parallel ? "root ::= call (\"\\n\" call)*\n" : "root ::= call\n";
      break;
    case ToolCallFormat::kMistral:
      rules +=
          request.parallel ? "root ::= \"[\" fn (\", \" fn)* \"]\"\n" : "root ::= \"[\" fn \"]\"\n";
      break;
    case ToolCallFormat::kLlama3Json:  // one call per turn in this format
      rules += "root ::= fn\n";
      break;
    case ToolCallFormat::kNone:
      return error(ErrorCode::kInvalidParams, "no tool-call format to force");
  }
  return rules;
}

std::optional<std::vector<int32_t>> tool_chat_prompt(const Engine& engine, const ServedModel& m,
                                                     std::vector<ChatMessage> messages,
                                                     const ToolsRequest& tools,
                                                     GenerationRequest& g, BodyReader& r) {
  std::vector<ToolDefinition> offered;
  if (tools.has_tools()) {
    auto format = tool_call_format_for(m);
    if (auto* e = std::get_if<ApiError>(&format)) {
      r.fail(*e);
      return std::nullopt;
    }
    g.tool_call_format = std::get<ToolCallFormat>(format);
    g.parallel_tool_calls = tools.parallel;
    offered = tools.tools;  // a named choice still shows every tool, as OpenAI does
    if (tools.forced()) {
      if (g.params.structured) {
        r.fail_field("response_format",
                     "cannot be combined with a tool_choice that forces a tool call (the call's "
                     "grammar already constrains the output)");
        return std::nullopt;
      }
      auto grammar = forced_tool_call_grammar(g.tool_call_format, tools);
      if (!grammar.ok()) {
        r.fail(error_from_status(grammar.status()));
        return std::nullopt;
      }
      StructuredOutput s;
      s.grammar = std::move(*grammar);
      g.params.structured = std::move(s);
    }
  }
  bool tool_messages = false;
  for (const ChatMessage& msg : messages)
    tool_messages = tool_messages || msg.role == "tool" || !msg.tool_calls.empty();
  if (!m.chat_template_renders_tools && (tool_messages || !offered.empty())) {
    messages = fallback_tool_messages(std::move(messages), offered);
    offered.clear();
  }
  if (m.chat_template_renders_tools && m.tool_call_format == ToolCallFormat::kMistral)
    use_mistral_call_ids(messages);
  return chat_prompt(engine, m, std::move(messages), offered, r);
}

}  // namespace mlxs::server
