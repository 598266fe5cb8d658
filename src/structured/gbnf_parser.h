// GBNF text -> an expression tree over code points (the IR that compiled_grammar.h lowers to
// bytes). The dialect is llama.cpp's (grammars/README.md there):
//   name ::= alternatives           rules; names are [A-Za-z0-9_-]+; the start rule is `root`
//   "lit"                           literal; escapes \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH
//   [a-z0-9_] [^"\\]                character classes of code points (ranges, negation)
//   .                               any character (one UTF-8 code point)
//   ( ... )   a | b                 grouping and alternation
//   x*  x+  x?  x{m}  x{m,}  x{m,n} repetition
//   # ...                           comment to the end of the line
// A rule ends at the end of its line unless a parenthesis is open or the next line starts with
// `|` (an extension: llama.cpp wants the whole top-level alternation on one line).
//
// A grammar comes from a client, so the parser bounds what it builds (kLimits below); every
// error is kInvalidParams "GBNF line L:C: expected ..., got ...".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::structured {

struct GbnfLimits {
  int max_nesting = 64;             // parentheses inside parentheses
  int max_rules = 10'000;           // named rules
  int max_repetition = 10'000;      // m and n of {m,n}
  size_t max_text_bytes = 1 << 20;  // the grammar text itself
};

// One node of a rule's body.
struct GbnfExpr {
  enum class Kind {
    kChars,        // one code point from `ranges` (or, negated, from outside them)
    kRule,         // a reference to rules[rule]
    kSequence,     // children in order (empty: the empty string)
    kAlternation,  // one of children
    kRepeat,       // children[0] between min_count and max_count times (max -1: unbounded)
  };
  Kind kind = Kind::kSequence;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // kChars: inclusive code point ranges
  bool negated = false;                               // kChars
  int rule = -1;                                      // kRule
  int min_count = 0, max_count = 0;                   // kRepeat
  std::vector<GbnfExpr> children;
};

struct GbnfRule {
  std::string name;
  GbnfExpr body;  // kAlternation
  int line = 0, column = 0;
};

struct GbnfGrammar {
  std::vector<GbnfRule> rules;  // every referenced name is defined
  int root = -1;                // index of `root`
};

Result<GbnfGrammar> parse_gbnf(std::string_view text, const GbnfLimits& limits = {});

}  // namespace mlxs::structured
