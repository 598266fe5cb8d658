// Structured output in the engine: a request's StructuredOutput (a JSON Schema, a regex or a
// GBNF grammar) becomes a TokenConstraint for the step pipeline.
//
// Policy:
//  1. Compiling happens on the thread that submits the request, never on the engine thread;
//     compiled grammars are kept in an LRU cache keyed by what the request gave (kind and text;
//     the JSON whitespace policy is the engine's, fixed by config), so a schema sent again costs
//     a lookup.
//  2. A grammar that cannot be compiled is the request's error: InvalidParams naming
//     `structured.<schema|regex|grammar>` and the compiler's reason (with the GBNF line:column or
//     the path inside the schema).
//  3. format yaml is refused by name (not available in this build).
//  4. The constraint is complete when the grammar allows nothing more or an EOS was accepted:
//     the pipeline ends the sequence there (reason stop), so a structured output ends at its
//     match even with ignore_eos.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/config.h"
#include "mlxs/options.h"
#include "mlxs/status.h"
#include "runtime/step_inputs.h"
#include "structured/grammar.h"

namespace mlxs {

// How the engine translates JSON Schemas, from the `structured` config section.
structured::JsonSchemaOptions json_schema_options(const StructuredConfig& config);

class GrammarCache {
 public:
  // capacity 0: nothing is kept. Thread-safe.
  GrammarCache(size_t capacity, structured::JsonSchemaOptions json_options);

  // The compiled grammar of `s` (policy 1 and 2).
  Result<structured::GrammarPtr> get(const StructuredOutput& s);

  struct Stats {
    int64_t hits = 0, misses = 0;
  };
  Stats stats() const;

 private:
  using Lru = std::list<std::pair<std::string, structured::GrammarPtr>>;
  Result<structured::GrammarPtr> compile(const StructuredOutput& s) const;

  const size_t capacity_;
  const structured::JsonSchemaOptions json_options_;
  mutable std::mutex mu_;
  Lru lru_;                                                // most recent first; guarded by mu_
  std::unordered_map<std::string, Lru::iterator> by_key_;  // guarded by mu_
  Stats stats_;                                            // guarded by mu_
};

// A grammar position for one sequence, as the pipeline sees it (policy 4).
std::unique_ptr<TokenConstraint> make_grammar_constraint(
    structured::GrammarPtr grammar, std::shared_ptr<const structured::TokenVocabulary> vocab);

}  // namespace mlxs
