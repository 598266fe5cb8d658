// The JSON Schema translator alone: refusals name the keyword and the path inside the schema;
// options shape the output. Behaviour (documents accepted and rejected, generation validated by a
// real validator) is in structured_behaviour_test.cc.
#include "structured/json_schema.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

std::string refusal(std::string_view schema, const JsonSchemaOptions& options = {}) {
  Result<std::string> r = json_schema_to_gbnf(schema, options);
  if (r.ok()) return "accepted:\n" + *r;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidParams);
  return r.status().message();
}

TEST(JsonSchemaToGbnf, RefusesUnsupportedKeywordsByNameWithThePath) {
  EXPECT_EQ(refusal(R"({"type":"object","properties":{"a":{"type":"object",
                       "patternProperties":{"^x":{}}}}})"),
            "at /properties/a: 'patternProperties' is not supported");
  EXPECT_EQ(refusal(R"({"type":"array","items":{"not":{"type":"string"}}})"),
            "at /items: 'not' is not supported");
  EXPECT_EQ(refusal(R"({"if":{"type":"string"},"then":{}})"), "at /: 'if' is not supported");
  EXPECT_EQ(refusal(R"({"type":"array","uniqueItems":true})"),
            "at /: 'uniqueItems': true is not supported");
  EXPECT_EQ(refusal(R"({"type":"object","properties":{"a/b":{"type":"integer","multipleOf":2}}})"),
            "at /properties/a~1b: 'multipleOf' is not supported");
  EXPECT_EQ(refusal(R"({"anyOf":[{"type":"string"},{"type":"object","minProperties":1}]})"),
            "at /anyOf/1: 'minProperties' is not supported");
  EXPECT_EQ(refusal(R"({"$defs":{"x":{"type":"string","format":"binary"}},"$ref":"#/$defs/x"})"),
            "at /$defs/x: format 'binary' is not supported (supported: date-time, date, time, "
            "uuid, email, uri, ipv4, hostname)");
  EXPECT_EQ(refusal(R"js({"type":"string","pattern":"(?=a)"})js"),
            "at /: 'pattern': regular expression at position 0: lookahead is not supported");
}

TEST(JsonSchemaToGbnf, RefusesMalformedAndUnsatisfiableSchemas) {
  EXPECT_EQ(refusal("{"), "JSON Schema is not valid JSON");
  EXPECT_EQ(refusal("[1]"), "at /: a schema must be an object or a boolean");
  EXPECT_EQ(refusal("false"), "at /: the schema false matches nothing");
  EXPECT_EQ(refusal(R"({"type":"strin"})"),
            "at /: 'type' must be one of null, boolean, object, array, integer, number, string "
            "(or an array of them), got \"strin\"");
  EXPECT_EQ(refusal(R"({"$ref":"https://example.com/s.json"})"),
            "at /: $ref 'https://example.com/s.json': only references inside the schema ('#...') "
            "are supported");
  EXPECT_EQ(refusal(R"({"$ref":"#/$defs/missing"})"),
            "at /: $ref '#/$defs/missing' points nowhere");
  EXPECT_EQ(refusal(R"({"type":"string","minLength":5,"maxLength":2})"),
            "at /: 'minLength' 5 is greater than 'maxLength' 2");
  EXPECT_EQ(refusal(R"({"type":"integer","minimum":3,"maximum":2})"),
            "at /: no integer satisfies the bounds");
  EXPECT_EQ(refusal(R"({"type":"object","properties":{},"required":["a"]})"),
            "at /: required property 'a' is not in 'properties' and additionalProperties is false");
  EXPECT_EQ(refusal(R"({"allOf":[{"type":"string"},{"type":"integer"}]})"),
            "at /allOf/1: allOf: the branches' types do not intersect");
  EXPECT_EQ(refusal(R"({"type":"array","prefixItems":[{}],"minItems":2})"),
            "at /: 'minItems' 2 needs more items than the 1 allowed");
  EXPECT_EQ(refusal(R"({"type":"string","pattern":"^a+","maxLength":4})"),
            "at /: 'pattern': length bounds together with this pattern are not supported "
            "(supported: anchored patterns whose only variable part is one repeated character "
            "class or an alternation of such, like ^[a-z]+$ or ^#([0-9a-f]{3}|x+)$)");
  EXPECT_EQ(refusal(R"({"type":"string","format":"date","maxLength":5})"),
            "at /: 'format': no match of the pattern has a length within the bounds");
  EXPECT_EQ(refusal(R"({"type":"string","minLength":5000})"),
            "at /: 'minLength' 5000 is over the supported limit of 1000");
  EXPECT_EQ(refusal(R"({"enum":[1,2],"type":"string"})"),
            "at /: no value of 'enum'/'const' has the schema's type");
}

TEST(JsonSchemaToGbnf, LimitsHostileInput) {
  std::string deep;
  for (int i = 0; i < 70; ++i) deep += R"({"type":"array","items":)";
  deep += "{}" + std::string(70, '}');
  EXPECT_EQ(refusal(deep).substr(0, 6), "at /it");
  std::string deeper = std::string(200, '[') + std::string(200, ']');
  EXPECT_EQ(refusal(deeper), "JSON Schema nests deeper than 128 levels");
  // Extra property names exclude the listed ones with one rule per character of them: bounded.
  std::string many = R"({"type":"object","additionalProperties":true,"properties":{)";
  for (int i = 0; i < 400; ++i) many += (i ? "," : "") + fmt::format(R"("{:040}":{{}})", i);
  EXPECT_EQ(refusal(many + "}}"),
            "at /: more than 5000 bytes of property names together with additionalProperties are "
            "not supported");
  // A $ref cycle through allOf only (no structure in between) is refused, not followed forever.
  EXPECT_EQ(refusal(R"({"$defs":{"a":{"allOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"})")
                .substr(0, 22),
            "at /$defs/a: $ref/allO");
}

TEST(JsonSchemaToGbnf, MetadataIsIgnored) {
  Result<std::string> plain = json_schema_to_gbnf(R"({"type":"integer"})");
  Result<std::string> annotated = json_schema_to_gbnf(
      R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","title":"t",
          "description":"d","examples":[1],"default":1,"$comment":"c","deprecated":false,
          "x-vendor":{"a":1},"type":"integer"})");
  ASSERT_TRUE(plain.ok() && annotated.ok()) << annotated.status().message();
  EXPECT_EQ(*plain, *annotated);
}

TEST(JsonSchemaToGbnf, RootRuleAndPrefixNameEveryRule) {
  JsonSchemaOptions options;
  options.root_rule = "args";
  options.rule_prefix = "tool1-";
  Result<std::string> g = json_schema_to_gbnf(
      R"({"type":"object","properties":{"n":{"$ref":"#/$defs/node"}},"required":["n"],
          "$defs":{"node":{"type":"object","properties":{"kids":{"type":"array",
          "items":{"$ref":"#/$defs/node"}}}}}})",
      options);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->rfind("args ::= ", 0), 0u) << *g;
  size_t pos = 0;
  while ((pos = g->find('\n', pos)) != std::string::npos && pos + 1 < g->size()) {
    ++pos;
    EXPECT_EQ(g->substr(pos, 6), "tool1-") << *g;
  }
  options.rule_prefix = "bad_prefix";
  EXPECT_EQ(refusal("{}", options), "rule name 'bad_prefix' may hold only letters, digits and '-'");
}

TEST(JsonSchemaToGbnf, CompactByDefaultAndBoundedWhitespaceOnRequest) {
  Result<std::string> compact = json_schema_to_gbnf(R"({"type":"array","items":{"type":"null"}})");
  ASSERT_TRUE(compact.ok());
  EXPECT_EQ(compact->find("ws"), std::string::npos) << *compact;
  JsonSchemaOptions options;
  options.any_whitespace = true;
  options.max_whitespace = 4;
  Result<std::string> spaced =
      json_schema_to_gbnf(R"({"type":"array","items":{"type":"null"}})", options);
  ASSERT_TRUE(spaced.ok());
  EXPECT_NE(spaced->find("ws ::= [ \\t\\n\\r]{0,4}"), std::string::npos) << *spaced;
}

TEST(JsonSchemaToGbnf, IntegerBoundsBecomeDigitRanges) {
  Result<std::string> g = json_schema_to_gbnf(R"({"type":"integer","minimum":-5,"maximum":120})");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g,
            "root ::= (([0-9] | ([1-9] [0-9]) | (\"1\" ((\"0\" [0-9]) | (\"1\" [0-9]) | (\"2\" "
            "\"0\")))) | (\"-\" [1-5]))\n");
}

}  // namespace
}  // namespace mlxs::structured
