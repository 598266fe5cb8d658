// GBNF grammars shared by the grammar engine's tests and bench/bench_grammar.cc.
#pragma once

namespace mlxs::structured::examples {

// Any JSON value (RFC 8259), as strict as nlohmann::json: control characters are escaped, and a
// \u escape of a high surrogate must be followed by one of a low surrogate.
inline constexpr const char* kJson = R"gbnf(root ::= ws value ws
value ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( member ( ws "," ws member )* ws )? "}"
member ::= string ws ":" ws value
array ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" unicode )
unicode ::= [0-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex
  | [dD] [89abAB] hex hex "\\u" [dD] [c-fC-F] hex hex
hex ::= [0-9a-fA-F]
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws ::= [ \t\n\r]*
)gbnf";

// A JSON object with fixed keys in a fixed order, compact.
inline constexpr const char* kJsonPerson =
    R"gbnf(root ::= "{\"name\":" str ",\"age\":" int ",\"email\":" str ",\"tags\":[" ( str ( "," str )* )? "],\"active\":" ( "true" | "false" ) "}"
str ::= "\"" ( [^"\\\x00-\x1f] | "\\" ["\\/bfnrt] ){0,64} "\""
int ::= "0" | [1-9] [0-9]{0,8}
)gbnf";

// Arithmetic over integers with precedence and parentheses.
inline constexpr const char* kArithmetic = R"gbnf(root ::= expr
expr ::= term ( ws [-+] ws term )*
term ::= factor ( ws [*/] ws factor )*
factor ::= [0-9]+ | "(" ws expr ws ")" | "-" factor
ws ::= " "?
)gbnf";

// One long string: up to 2000 characters of any kind but a quote, then a quote.
inline constexpr const char* kLongString = R"gbnf(root ::= "\"" [^"]{0,2000} "\""
)gbnf";

}  // namespace mlxs::structured::examples
