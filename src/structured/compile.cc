// The convenience compilers of grammar.h: translate to GBNF, then compile_gbnf(). Kept apart
// from the translators so that a program using only the translators does not link the engine.
#include "structured/grammar.h"

namespace mlxs::structured {

Result<GrammarPtr> compile_json_schema(std::string_view schema_json,
                                       const JsonSchemaOptions& options) {
  Result<std::string> gbnf = json_schema_to_gbnf(schema_json, options);
  if (!gbnf.ok()) return gbnf.status();
  return compile_gbnf(*gbnf);
}

Result<GrammarPtr> compile_regex(std::string_view pattern) {
  Result<std::string> gbnf = regex_to_gbnf(pattern);
  if (!gbnf.ok()) return gbnf.status();
  return compile_gbnf(*gbnf);
}

}  // namespace mlxs::structured
