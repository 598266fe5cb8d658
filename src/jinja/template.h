// A compiled Jinja template: the boundary of the jinja module. Parsing and rendering errors come
// back as Status values whose message names the line and column ("line 3, column 7: ...").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "jinja/ast.h"
#include "jinja/interpreter.h"
#include "mlxs/status.h"

namespace mlxs::jinja {

// Largest template source parse() accepts; real chat templates are under 64 KiB. Together with
// the parser's nesting limit it bounds the time and memory of a compile.
inline constexpr size_t kMaxTemplateBytes = 1u << 20;

class Template {
 public:
  // Parses `source` and checks that every filter and test it names exists (as Jinja does at
  // compile time). Fails with kParseError naming the line and column of the first problem, or
  // the limit exceeded (kMaxTemplateBytes, the parser's nesting limit).
  static Result<Template> parse(std::string_view source);

  // Renders with `globals` (name -> value) as the outermost scope; the builtin globals (range,
  // namespace, dict, joiner) sit behind them. Thread-safe: a Template is immutable, each render
  // has its own state. Fails with kInvalidRequest on a render error (undefined attribute, type
  // error, raise_exception, exceeded limits).
  Result<std::string> render(const std::unordered_map<std::string, Value>& globals,
                             const RenderLimits& limits = {}) const;

 private:
  explicit Template(std::shared_ptr<const Body> body) : body_(std::move(body)) {}
  std::shared_ptr<const Body> body_;
};

// "line L, column C: message" (or just the message when the position is unknown).
std::string format_error(const JinjaError& e);

}  // namespace mlxs::jinja
