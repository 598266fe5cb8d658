// Jinja parser: tokens -> syntax tree, following Jinja 3.1's grammar and operator precedence.
// Supported statements: if/elif/else, for (with `if` filter and else), set (incl. tuple unpack,
// namespace attributes and block set), macro, call, filter, break/continue (HF enables the
// loopcontrols extension), raw, and transformers' generation block. Anything else (include,
// import, extends, block, recursive loops, `do`...) fails with its line and column.
#pragma once

#include <string_view>

#include "jinja/ast.h"
#include "jinja/lexer.h"

namespace mlxs::jinja {

// Parses a whole template; throws JinjaError with the position of the offending token.
Body parse_template(std::string_view source);

}  // namespace mlxs::jinja
