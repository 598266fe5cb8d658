// Jinja lexer: template source -> tokens, with Jinja 3.1's whitespace rules as Hugging Face
// configures them (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` after it;
//   - lstrip_blocks: spaces/tabs between a line start and `{%` or `{#` are removed (not before
//     `{{`, not with `{%+`);
//   - trim_blocks: the first newline after `%}` or `#}` is removed (not with `+%}`);
//   - line breaks are \n, \r\n or \r and become \n; one trailing newline of the source is dropped.
// `{% raw %}...{% endraw %}` becomes one text token.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jinja/error.h"

namespace mlxs::jinja {

enum class TokenType {
  kText,        // template data outside tags
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier (keywords too)
  kString,      // string literal, escapes already decoded
  kInteger,
  kFloat,
  kOperator,  // + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } . , : | ;
  kEof,
};

struct Token {
  TokenType type;
  std::string value;
  SourcePos pos;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws JinjaError (with line and column) on malformed input: unclosed tag, comment or string,
// unbalanced brackets, an unexpected character.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options = {});

}  // namespace mlxs::jinja
