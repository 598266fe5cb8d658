// The grammar engine's interface: a grammar (GBNF text, a regular expression or a JSON Schema,
// the last two translated to GBNF) compiles once into an immutable Grammar; a Matcher walks it
// byte by byte for one sequence and, against a TokenVocabulary (the tokenizer's tokens as bytes,
// in a trie), yields the bitmask of the tokens that may come next.
//
// Contracts shared by every part:
//  - Bytes, not characters: a grammar matches the UTF-8 bytes of the output. A token whose
//    bytes end inside a multi-byte character is allowed when the character can still be
//    completed the way the grammar wants.
//  - The end: the tokenizer's EOS ids are allowed exactly where the grammar can end
//    (can_end()); when nothing else can follow (is_complete()), only they are.
//  - Special tokens other than EOS are never allowed under a grammar.
//  - Errors are values: a grammar that does not parse or is not supported is kInvalidParams
//    with a message naming where (GBNF line:column, or the path inside the schema: "at
//    /properties/a/items: ...") and what was expected.
// Thread safety: Grammar and TokenVocabulary are immutable after construction and shared between
// threads; a Matcher belongs to one sequence and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxs/status.h"

namespace mlxs {
class Tokenizer;
}

namespace mlxs::structured {

class Grammar;
using GrammarPtr = std::shared_ptr<const Grammar>;

// GBNF, llama.cpp's notation (grammars/README.md of llama.cpp): `name ::= ...` rules, the start
// rule `root`, literals "..." with \n \t \" \\ \xHH \uHHHH \UHHHHHHHH escapes, character classes
// [a-z] [^...], grouping ( ), alternation |, repetition * + ? {m} {m,} {m,n}, `.` (any
// character), comments with #. kInvalidParams ("GBNF line L:C: expected ..., got ...") for a
// syntax error, an undefined rule, a missing root, left recursion (named) or a grammar past the
// limits of gbnf_parser.h / compiled_grammar.h; docs/structured-output.md has the dialect.
Result<GrammarPtr> compile_gbnf(std::string_view text);

// How a JSON Schema becomes a grammar (docs/structured-output.md states the policies).
struct JsonSchemaOptions {
  // false: compact JSON, no whitespace between tokens (the fastest and the default); true: any
  // JSON whitespace allowed between tokens, at most max_whitespace bytes per gap (so a model
  // cannot pad forever).
  bool any_whitespace = false;
  int max_whitespace = 16;
  // Properties are emitted in the schema's order ("properties" order, required ones included).
  // Name of the start rule of the produced GBNF and a prefix for every other rule, so the
  // output can be embedded in a larger grammar (tool calls wrap it in the model's markers).
  std::string root_rule = "root";
  std::string rule_prefix;
};

// JSON Schema (a serialized JSON object) -> GBNF text. Unsupported keywords are refused by name
// (never silently ignored); kInvalidParams with the path inside the schema.
Result<std::string> json_schema_to_gbnf(std::string_view schema_json,
                                        const JsonSchemaOptions& options = {});
// A regular expression (the ECMAScript subset JSON Schema's `pattern` uses: literals, escapes,
// classes, \d \w \s, . , groups, alternation, quantifiers * + ? {m,n}; anchors ^ $ only at the
// ends) -> GBNF text whose `root_rule` matches exactly the strings the whole pattern matches.
Result<std::string> regex_to_gbnf(std::string_view pattern, std::string_view root_rule = "root",
                                  std::string_view rule_prefix = {});

// Convenience: translate, then compile_gbnf().
Result<GrammarPtr> compile_json_schema(std::string_view schema_json,
                                       const JsonSchemaOptions& options = {});
Result<GrammarPtr> compile_regex(std::string_view pattern);

// The tokenizer's vocabulary as the bytes each token adds to the output, in a trie; built once
// per tokenizer and shared by every matcher of that model.
class TokenVocabulary {
 public:
  // token_bytes[id]: the bytes token `id` contributes when decoded in the middle of a text;
  // `special[id]`: never allowed under a grammar; `eos_ids`: allowed where the grammar can end.
  static std::shared_ptr<const TokenVocabulary> create(std::vector<std::string> token_bytes,
                                                       std::vector<bool> special,
                                                       std::vector<int32_t> eos_ids);
  // From a loaded tokenizer (its decoder decides the bytes: byte-level BPE, metaspace with byte
  // fallback).
  static std::shared_ptr<const TokenVocabulary> from_tokenizer(const Tokenizer& tokenizer);
  virtual ~TokenVocabulary() = default;

  virtual size_t size() const = 0;
  virtual const std::string& bytes_of(int32_t id) const = 0;
  virtual std::span<const int32_t> eos_ids() const = 0;
};

// One sequence's position in a grammar.
class Matcher {
 public:
  static std::unique_ptr<Matcher> create(GrammarPtr grammar,
                                         std::shared_ptr<const TokenVocabulary> vocab);
  virtual ~Matcher() = default;

  // Writes the allowed next tokens: bit (id % 32) of words[id / 32] is 1 when token `id` may be
  // drawn next. words.size() >= (vocab size + 31) / 32; ids at or beyond the vocabulary's size
  // (a model's embedding may have more rows than its tokenizer) are 0. Never all zero: when the
  // grammar is complete, the EOS ids are set.
  virtual void fill_next_token_bitmask(std::span<uint32_t> words) = 0;
  // Advances by a drawn token. false (and the state unchanged) when the grammar forbids it; an
  // EOS id is accepted where can_end() and then is_terminated().
  virtual bool accept_token(int32_t id) = 0;
  // Advances by raw bytes (a prefix forced by the caller, tests); false and unchanged if refused.
  virtual bool accept_bytes(std::string_view bytes) = 0;
  // Undoes the last `num_tokens` accepted tokens (speculative decoding); num_tokens <= the
  // number accepted since creation and at most max_rollback_tokens() (at least 16). Each
  // accept_bytes() call with bytes counts as one token here.
  virtual void rollback(int num_tokens) = 0;
  virtual int max_rollback_tokens() const = 0;

  virtual bool can_end() const = 0;                    // the output so far is a complete match
  virtual bool is_complete() const = 0;                // nothing but the end can follow
  virtual bool is_terminated() const = 0;              // an EOS was accepted
  virtual std::unique_ptr<Matcher> clone() const = 0;  // n > 1: one matcher per choice
};

}  // namespace mlxs::structured
