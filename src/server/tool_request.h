// The request side of tool calling, shared by the OpenAI and Anthropic dialects: the tools and
// the tool choice of a request, how the conversation reaches the model's chat template, and the
// grammar that forces a call.
//
// Policy (docs/structured-output.md, "Tool calling"):
//  1. A model whose chat template renders `tools` in a format this server parses (the engine's
//     ToolCallFormat) gets the tools, the assistant tool calls and the tool results through its
//     own template, as transformers passes them.
//  2. A template that does not render tools (the default model's ChatML) gets the fallback: a
//     system message listing the tools and asking for Hermes blocks
//     (<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>), assistant calls written as
//     such blocks, tool results as a user message of <tool_response> blocks; the output is
//     parsed as Hermes.
//  3. A template that renders tools in a format the server does not know is refused (400 naming
//     the model): its calls could not be parsed.
//  4. tool_choice none: the tools are left out of the prompt and the output is plain text.
//     auto: the output is parsed for calls. required / a named tool: a GBNF grammar forces one
//     call (or several, with parallel_tool_calls) in the model's format, each call's arguments
//     following its tool's parameters schema (json_schema_to_gbnf, one rule prefix per tool).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mlxs/engine.h"
#include "server/body_reader.h"
#include "server/generation_request.h"

namespace mlxs::server {

struct ToolChoice {
  enum class Kind { kAuto, kNone, kRequired, kNamed };
  Kind kind = Kind::kAuto;
  std::string name;  // kNamed
};

struct ToolsRequest {
  std::vector<ToolDefinition> tools;
  std::vector<std::string> schema_fields;  // per tool, its schema's field ("tools[0].input_schema")
  ToolChoice choice;
  bool parallel = true;  // parallel_tool_calls
  bool has_tools() const { return !tools.empty() && choice.kind != ToolChoice::Kind::kNone; }
  bool forced() const {
    return has_tools() &&
           (choice.kind == ToolChoice::Kind::kRequired || choice.kind == ToolChoice::Kind::kNamed);
  }
};

// OpenAI: tools, tool_choice, parallel_tool_calls (functions / function_call stay refused).
ToolsRequest read_openai_tools(BodyReader& r);
// Anthropic: tools [{name, description, input_schema}], tool_choice {type: auto | any | tool |
// none, name, disable_parallel_tool_use}.
ToolsRequest read_anthropic_tools(BodyReader& r);

// The format a model's output is parsed in when it is offered tools (policy 1-3): kNone when
// the model cannot take tools (the ApiError says why).
std::variant<ToolCallFormat, ApiError> tool_call_format_for(const ServedModel& m);

// Policy 2: `messages` rewritten for a template without tools (tool calls as Hermes blocks,
// tool results as user messages), the tools (if any) in a system message.
std::vector<ChatMessage> fallback_tool_messages(std::vector<ChatMessage> messages,
                                                const std::vector<ToolDefinition>& tools);

// Policy 4: the GBNF grammar that forces a call of `tools` (all of them, or only the named one)
// in `format`. kInvalidParams when a parameters schema cannot be translated.
Result<std::string> forced_tool_call_grammar(ToolCallFormat format, const ToolsRequest& request);

// The prompt ids for `messages` with `tools` (policies 1-4), and the request's tool fields:
// g.tool_call_format and, when forced, g.params.structured.
std::optional<std::vector<int32_t>> tool_chat_prompt(const Engine& engine, const ServedModel& m,
                                                     std::vector<ChatMessage> messages,
                                                     const ToolsRequest& tools,
                                                     GenerationRequest& g, BodyReader& r);

}  // namespace mlxs::server
