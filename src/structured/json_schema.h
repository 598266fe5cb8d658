// JSON Schema to GBNF: json_schema_to_gbnf() of grammar.h. docs/structured-output.md has the
// keyword table; the policies, in order of how often they matter:
//  1. The grammar produces a subset of the schema's valid documents, never a superset: where a
//     keyword cannot be expressed exactly, a tighter grammar is used (and documented) or the
//     schema is refused by name with its path ("at /properties/a: 'patternProperties' is not
//     supported"). Metadata (title, description, $schema, $id, examples, default, $comment,
//     deprecated, readOnly, writeOnly, x-*) is ignored.
//  2. Objects: properties in the schema's order, the optional ones may be left out. An absent
//     additionalProperties is false when the schema lists `properties` (OpenAI's strict mode),
//     true otherwise ({"type": "object"} is any object). Extra properties come after the listed
//     ones, with names that differ from theirs.
//  3. Whitespace: none between tokens (compact), or any JSON whitespace up to max_whitespace
//     bytes per gap (JsonSchemaOptions::any_whitespace).
//  4. Strings: any UTF-8 with JSON's escapes (\uXXXX outside the surrogates), no raw control
//     characters. minLength/maxLength count characters (code points).
//  5. Numbers: every output parses as an int64 or a finite double: at most 18 digits for an
//     integer; for a number 16 integer digits, 16 fraction digits and a 2-digit exponent.
//     minimum/maximum (exclusive or not) are exact: digit ranges for the integer part, the
//     fraction compared digit by digit with the bound's decimal spelling (no exponent then), the
//     deciding digits within 15 significant ones; a bound with more than 9 fraction digits is
//     rounded inward to an integer (a narrower range: still valid, rule 1). number_grammar.h.
//  6. oneOf is anyOf (the branches are not checked for overlap); allOf merges its branches into
//     one schema where they combine (types intersect, properties merge, bounds tighten), else
//     it is refused; $ref is a JSON pointer inside the document ("#", "#/$defs/x",
//     "#/definitions/x", any "#/..." path), recursion included.
//  7. Hostile input: nesting, the number of rules and repetition bounds are limited; a maxLength
//     or maxItems above kMaxSchemaRepeat is lowered to it (a tighter grammar, rule 1), a
//     minLength or minItems above it is refused.
#pragma once

#include <cstddef>

namespace mlxs::structured {

constexpr int kMaxSchemaRepeat = 1000;
constexpr int kMaxSchemaDepth = 64;
constexpr size_t kMaxSchemaRules = 10'000;  // the GBNF parser's limit
constexpr size_t kMaxSchemaBytes = 1 << 20;

}  // namespace mlxs::structured
