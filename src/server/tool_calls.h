// Tool calls in generated text: one small parser per format a model family writes
// (ToolCallFormat, detected from the chat template by the engine), fed the text as it streams.
//
// Policy:
//  1. Text that is surely not part of a call is released at once; text that may be the start of
//     a call is held back until it is known (a suffix that is a prefix of "<tool_call>", or an
//     output that opens with `{` (Llama 3) or `[` (Mistral), which is held to the end).
//  2. A call is released when complete: its name and its arguments as compact JSON object text.
//  3. A malformed call (not JSON, no name, arguments not an object) is never dropped: its raw
//     text comes back as text, markers included.
//  4. Special tokens are not in the text the engine streams (it skips them), so the Llama 3
//     `<|python_tag|>` and the Mistral `[TOOL_CALLS]` markers are optional: a Llama 3 output that
//     is one JSON object {"name", "parameters"} and a Mistral output that is a JSON array of
//     {"name", "arguments"} are calls with or without them.
// Thread safety: a parser belongs to one choice; not shared.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mlxs/engine.h"

namespace mlxs::server {

// The deepest nesting of a call's JSON (model output, or arguments a client sends back) that is
// parsed; deeper is malformed (a value nested 100,000 deep would overflow the stack when it is
// serialized: util/json_depth.h).
inline constexpr int kMaxToolCallJsonDepth = 64;

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // a JSON object, serialized compactly
};

// What the parser releases: text first, then the calls completed.
struct ToolCallOutput {
  std::string text;
  std::vector<ParsedToolCall> calls;
};

class ToolCallParser {
 public:
  // `format` kNone: everything is text.
  explicit ToolCallParser(ToolCallFormat format) : format_(format) {}

  // The next piece of generated text.
  ToolCallOutput feed(std::string_view text);
  // The end of the output: what was held back, as calls where it parses, else as text.
  ToolCallOutput finish();

 private:
  ToolCallOutput feed_hermes();
  ToolCallOutput feed_whole_output(char opener);

  ToolCallFormat format_;
  std::string pending_;            // text received and not released yet
  bool in_call_ = false;           // Hermes: inside <tool_call> ... </tool_call>
  int num_calls_ = 0;              // Hermes: calls released so far
  std::string space_before_call_;  // Hermes: whitespace before the open call (text if malformed)
  enum class Mode { kUndecided, kText, kHeld } mode_ = Mode::kUndecided;  // Llama 3, Mistral
};

// One streamed choice's tool calls: its parser and what was sent of them.
struct ToolCallStream {
  explicit ToolCallStream(ToolCallFormat format) : parser(format) {}
  ToolCallParser parser;
  int num_calls = 0;       // calls sent
  int num_blocks = 0;      // Anthropic: content blocks opened
  bool text_open = false;  // Anthropic: the last block opened is a text block, still open
};

// Parses a whole output at once (a non-streamed response).
ToolCallOutput parse_tool_calls(ToolCallFormat format, std::string_view text);

// A new call id: `prefix` ("call_", "toolu_") and 24 random letters and digits.
std::string new_tool_call_id(const char* prefix);

// "llama3_json", "hermes", "mistral", "none": how docs and errors name a format.
const char* tool_call_format_name(ToolCallFormat format);

}  // namespace mlxs::server
