// compile_json_schema() against a real JSON Schema validator (valijson, draft 7): for each
// construct, documents accepted or rejected by the Matcher as valijson says (or, where the
// grammar is deliberately stricter than the schema, rejected while valijson accepts: key order,
// compact whitespace, closed objects, formats valijson does not check); and random generation
// (walks through the mask with fixed seeds) whose every output parses and validates.
// The corpus test does the same for every schema of tests/fixtures/structured/schemas.jsonl.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "structured/byte_walk_test_util.h"
#include "structured/grammar.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_test_util.h"

namespace mlxs::structured {
namespace {

using Json = nlohmann::json;
using testing::matches;
using testing::random_walk;

// valijson reads draft 7: 2020-12's prefixItems becomes the items array (and items becomes
// additionalItems); OpenAPI's nullable adds "null" to the type; see also `format` below.
Json to_draft7(const Json& s) {
  if (s.is_array()) {
    Json out = Json::array();
    for (const Json& x : s) out.push_back(to_draft7(x));
    return out;
  }
  if (!s.is_object()) return s;
  Json out = Json::object();
  for (const auto& [k, v] : s.items()) out[k] = to_draft7(v);
  if (out.contains("prefixItems")) {
    Json rest = out.contains("items") ? out["items"] : Json(true);
    out["items"] = out["prefixItems"];
    out["additionalItems"] = rest;
    out.erase("prefixItems");
  }
  if (out.value("nullable", false) && out.contains("type")) {
    Json t = out["type"].is_array() ? out["type"] : Json::array({out["type"]});
    t.push_back("null");
    out["type"] = t;
  }
  out.erase("nullable");
  // valijson 1.0 checks `format` on values that are not strings (null fails "date"); the spec
  // applies it to strings only: split such a type list into a string branch and the rest.
  if (out.contains("format") && out.contains("type") && out["type"].is_array() &&
      out["type"].size() > 1) {
    Json string_part = out, rest = out;
    string_part["type"] = "string";
    rest.erase("format");
    Json others = Json::array();
    for (const Json& t : out["type"]) {
      if (t != "string") others.push_back(t);
    }
    rest["type"] = others;
    return Json{{"anyOf", Json::array({string_part, rest})}};
  }
  return out;
}

class Validator {
 public:
  explicit Validator(const std::string& schema_text) {
    doc_ = to_draft7(Json::parse(schema_text));
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(doc_);
    parser.populateSchema(adapter, schema_);
  }
  bool valid(const Json& value) const {
    valijson::Validator validator;
    valijson::adapters::NlohmannJsonAdapter adapter(value);
    return validator.validate(schema_, adapter, nullptr);
  }

 private:
  Json doc_;
  valijson::Schema schema_;
};

std::optional<Json> parse(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

enum class Expect {
  kAccept,    // valijson: valid; grammar: accepts
  kReject,    // valijson: invalid (or not JSON); grammar: rejects
  kStricter,  // valijson: valid; grammar: rejects by policy (order, whitespace, closed objects,
              // formats valijson does not check, bounds rounded inward)
};

struct Case {
  std::string schema;
  std::vector<std::pair<std::string, Expect>> docs;
};

constexpr Expect A = Expect::kAccept, R = Expect::kReject, S = Expect::kStricter;

const std::vector<Case>& cases() {
  static const std::vector<Case> kCases = {
      // Types.
      {R"({"type":"string"})",
       {{R"("hi")", A},
        {R"("a\"b\\c\n\t\/\u00e9\u20ac")", A},
        {"\"\xc3\xa9\xf0\x9f\x98\x80\"", A},
        {"\"a\x01\"", R},
        {R"("\ud800")", R},
        {R"("\ud83d\ude00")", S},  // a pair of \u escapes: write the character itself
        {"1", R},
        {"\"\xff\"", R}}},
      {R"({"type":"integer"})", {{"0", A}, {"-12", A}, {"1.5", R}, {"01", R}, {"-", R}}},
      {R"({"type":"number"})",
       {{"1.5e-3", A}, {"-0.0", A}, {"12E+2", A}, {".5", R}, {"1.", R}, {"\"1\"", R}}},
      {R"({"type":"boolean"})", {{"true", A}, {"false", A}, {"1", R}, {"tru", R}}},
      {R"({"type":"null"})", {{"null", A}, {"0", R}}},
      {R"({"type":["string","null"]})", {{"null", A}, {R"("x")", A}, {"1", R}}},
      {R"({"type":"integer","nullable":true})", {{"null", A}, {"3", A}, {R"("3")", R}}},
      {R"({})", {{R"({"x":[1,{"y":null}],"z":"s"})", A}, {"-1.5e3", A}, {"[", R}}},
      // Objects: schema order, optional members, closed unless additionalProperties says.
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},
          "required":["a"]})",
       {{R"({"a":1})", A},
        {R"({"a":1,"b":"x"})", A},
        {R"({"b":"x","a":1})", S},
        {R"({"b":"x"})", R},
        {R"({})", R},
        {R"({"a":1,"c":2})", S},
        {R"({"a":"1"})", R},
        {R"({"a": 1})", S}}},
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},
          "c":{"type":"integer"}}})",
       {{R"({})", A},
        {R"({"b":2})", A},
        {R"({"a":1,"c":3})", A},
        {R"({"a":1,"b":2,"c":3})", A},
        {R"({,"b":2})", R},
        {R"({"a":1,})", R}}},
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false})",
       {{R"({})", A}, {R"({"a":1,"c":1})", R}}},
      {R"({"type":"object","properties":{"a":{"type":"integer"}},
          "additionalProperties":{"type":"boolean"}})",
       {{R"({"a":1,"x":true})", A},
        {R"({"x":true,"y":false})", A},
        {R"({"ab":true})", A},
        {R"({"a":1,"x":1})", R},
        {R"({"a":1,"a":true})", R},
        {R"({"\u0061":true})", R}}},
      {R"({"type":"object"})", {{R"({"x":[1,{"y":null}]})", A}, {"[]", R}}},
      {R"({"type":"object","properties":{},"additionalProperties":true,"required":["z"]})",
       {{R"({"z":1})", A}, {R"({"z":1,"y":[]})", A}, {R"({})", R}}},
      {R"({"type":"object","properties":{"we\"ird/key":{"const":1},"é":{"const":2}},
          "required":["we\"ird/key","é"]})",
       {{"{\"we\\\"ird/key\":1,\"\xc3\xa9\":2}", A}, {R"({"we\"ird/key":1})", R}}},
      // Arrays.
      {R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})",
       {{"[1]", A}, {"[1,2,3]", A}, {"[]", R}, {"[1,2,3,4]", R}, {R"(["a"])", R}}},
      {R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],
          "items":{"type":"boolean"}})",
       {{R"(["a",1,true,false])", A}, {R"(["a"])", A}, {"[]", A}, {"[1]", R}, {R"(["a",1,2])", R}}},
      {R"({"type":"array","prefixItems":[{"type":"string"}]})",
       {{R"(["a"])", A}, {R"(["a",1])", S}}},
      {R"({"type":"array","prefixItems":[{"const":1}],"items":false})", {{"[1]", A}, {"[1,2]", R}}},
      {R"({"type":"array","items":[{"const":1},{"const":2}],"additionalItems":{"type":"null"},
          "minItems":2})",
       {{"[1,2]", A}, {"[1,2,null,null]", A}, {"[1]", R}, {"[1,2,3]", R}}},
      {R"({"type":"array"})", {{R"([1,"a",{"b":[]}])", A}, {"{}", R}}},
      // enum and const.
      {R"({"enum":["red","green",1,null,{"a":[1]}]})",
       {{R"("red")", A}, {"null", A}, {R"({"a":[1]})", A}, {R"("blue")", R}, {"2", R}}},
      {R"({"const":"x\"y"})", {{R"("x\"y")", A}, {R"("xy")", R}}},
      {R"({"type":["string","null"],"enum":["a",null,3]})", {{R"("a")", A}, {"null", A}, {"3", R}}},
      // Unions and allOf.
      {R"({"anyOf":[{"type":"string","maxLength":2},{"type":"integer","minimum":10}]})",
       {{R"("ab")", A}, {R"("abc")", R}, {"10", A}, {"9", R}}},
      {R"({"oneOf":[
          {"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},
           "required":["kind","x"],"additionalProperties":false},
          {"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},
           "required":["kind","y"],"additionalProperties":false}]})",
       {{R"({"kind":"a","x":1})", A},
        {R"({"kind":"b","y":"s"})", A},
        {R"({"kind":"a","y":"s"})", R}}},
      {R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],
          "anyOf":[{"properties":{"name":{"type":"string"}},"required":["name"]},
                   {"properties":{"email":{"type":"string","format":"email"}},"required":["email"]}]})",
       {{R"({"id":1,"name":"x"})", A}, {R"({"id":1,"email":"a@b.co"})", A}, {R"({"id":1})", R}}},
      {R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
          {"properties":{"b":{"type":"string"}},"required":["b"]}]})",
       {{R"({"a":1,"b":"x"})", A}, {R"({"a":1})", R}}},
      {R"({"allOf":[{"type":"integer","minimum":0},{"maximum":5}]})",
       {{"5", A}, {"0", A}, {"6", R}, {"-1", R}}},
      {R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},
          "additionalProperties":false},{"properties":{"a":{"minimum":3},"b":{}}}]})",
       {{R"({"a":3})", A}, {R"({"a":2})", R}, {R"({"a":3,"b":1})", R}}},
      // $ref, recursion.
      {R"({"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},
          "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["value"]}},
          "$ref":"#/$defs/node"})",
       {{R"({"value":1,"children":[{"value":2},{"value":3,"children":[]}]})", A},
        {R"({"value":1,"children":[{"children":[]}]})", R}}},
      {R"({"definitions":{"s":{"type":"string"}},"type":"object",
          "properties":{"s":{"$ref":"#/definitions/s"},"self":{"$ref":"#"}}})",
       {{R"({"s":"x","self":{"s":"y"}})", A}, {R"({"self":{"s":1}})", R}}},
      // Strings: lengths, patterns, formats.
      {R"({"type":"string","minLength":2,"maxLength":3})",
       {{R"("ab")", A},
        {"\"\xc3\xa9\xc3\xa9\"", A},
        {R"("a\n")", A},
        {R"("a")", R},
        {R"("abcd")", R}}},
      {R"({"type":"string","pattern":"^[A-Z]{2}-\\d+$"})",
       {{R"("AB-12")", A}, {R"("AB-")", R}, {R"("xAB-1")", R}}},
      {R"({"type":"string","pattern":"ab"})",
       {{R"("xxabyy")", A}, {R"("ab")", A}, {R"("a\nab")", A}, {R"("a b")", R}}},
      {R"({"type":"string","pattern":"^a\"b\\\\c$"})", {{R"("a\"b\\c")", A}, {R"("ab\\c")", R}}},
      {R"({"type":"string","pattern":"^[a-z]{2,4}$","minLength":2,"maxLength":4})",
       {{R"("abc")", A}, {R"("a")", R}}},
      {R"({"type":"string","pattern":"^[a-z0-9_]+$","minLength":3,"maxLength":5})",
       {{R"("abc")", A}, {R"("ab_de")", A}, {R"("ab")", R}, {R"("abcdef")", R}, {R"("ab-c")", R}}},
      {R"({"type":"string","pattern":"^#[0-9a-f]+$","maxLength":4})",
       {{R"("#abc")", A}, {R"("#a")", A}, {R"("#abcd")", R}}},
      {R"({"type":"string","pattern":"^(ab|cde|[xy]+)$","maxLength":2})",
       {{R"("ab")", A}, {R"("xy")", A}, {R"("cde")", R}, {R"("xyx")", R}}},
      {R"({"type":"string","format":"date","minLength":10,"maxLength":30})",
       {{R"("2024-01-31")", A}}},
      {R"({"type":"string","format":"date"})",
       {{R"("2024-02-28")", A},
        {R"("2024-13-01")", R},
        {R"("2024-02-30")", R},
        {R"("2024-2-3")", R}}},
      {R"({"type":"string","format":"date-time"})",
       {{R"("2024-05-01T12:30:00Z")", A},
        {R"("2024-05-01T12:30:00.123+02:00")", A},
        {R"("2024-05-01 12:30:00Z")", R},
        {R"("2024-05-01T25:30:00Z")", R}}},
      {R"({"type":"string","format":"time"})", {{R"("23:59:59Z")", A}, {R"("24:00:00Z")", R}}},
      {R"({"type":"string","format":"uuid"})",
       {{R"("123e4567-e89b-12d3-a456-426614174000")", A}, {R"("123e4567")", S}}},
      {R"({"type":"string","format":"email"})",
       {{R"("a.b+c@ex-ample.co.uk")", A}, {R"("a@b")", S}}},
      {R"({"type":"string","format":"uri"})",
       {{R"("https://example.com/a?b=c#d")", A}, {R"("example.com")", S}}},
      // Numbers.
      {R"({"type":"integer","minimum":-20,"maximum":300})",
       {{"-20", A},
        {"300", A},
        {"0", A},
        {"99", A},
        {"100", A},
        {"299", A},
        {"301", R},
        {"-21", R},
        {"1000", R}}},
      {R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10})",
       {{"0", R}, {"1", A}, {"9", A}, {"10", R}}},
      {R"({"type":"integer","minimum":5})", {{"5", A}, {"123456", A}, {"4", R}, {"-5", R}}},
      {R"({"type":"number","minimum":0,"maximum":1})",
       {{"0", A}, {"1", A}, {"0.5", A}, {"1.0", A}, {"1.01", R}, {"-0.1", R}, {"1e-3", S}}},
      {R"({"type":"number","exclusiveMinimum":0})",
       {{"0", R}, {"0.0", R}, {"0.001", A}, {"5", A}, {"-1", R}}},
      {R"({"type":"number","minimum":-1.5,"maximum":2.5})",
       {{"-1.5", A},
        {"-1.51", R},
        {"-1", A},
        {"-0.5", A},
        {"2.5", A},
        {"2.50", A},
        {"2.501", R},
        {"2", A},
        {"1.75", A},
        {"3", R}}},
      {R"({"type":"number","exclusiveMinimum":0.1,"exclusiveMaximum":0.3})",
       {{"0.1", R},
        {"0.10", R},
        {"0.1000001", A},
        {"0.2", A},
        {"0.3", R},
        {"0.29999", A},
        {"0.30000", R},
        {"0", R}}},
      {R"({"type":"number","minimum":-0.5,"maximum":-0.25})",
       {{"-0.5", A}, {"-0.25", A}, {"-0.3", A}, {"-0.2", R}, {"-0.51", R}, {"0", R}}},
      {R"({"type":"number","minimum":0.25,"maximum":0.75})",
       {{"0.25", A}, {"0.7", A}, {"0.75", A}, {"0.751", R}, {"0.2", R}, {"1", R}}},
      // A bound with more than 9 fraction digits is rounded inward to an integer.
      {R"({"type":"number","minimum":1e-10})", {{"0.5", S}, {"1", A}, {"0", R}}},
      // Just above a large exclusive bound, a long fraction would parse back to the bound.
      {R"({"type":"number","exclusiveMinimum":1000000000000})",
       {{"1000000000000.5", A},
        {"1000000000000.01", A},
        {"1000000000000.00000001", R},
        {"1000000000000", R},
        {"1000000000001", A}}},
      {R"({"type":"number","maximum":-2})", {{"-2", A}, {"-2.5", A}, {"-1.5", R}, {"0", R}}},
  };
  return kCases;
}

TEST(JsonSchemaBehaviour, DocumentsAreAcceptedAndRejectedAsTheValidatorSays) {
  for (const Case& c : cases()) {
    SCOPED_TRACE("schema " + c.schema);
    Result<GrammarPtr> g = compile_json_schema(c.schema);
    ASSERT_TRUE(g.ok()) << g.status().to_string() << "\n" << json_schema_to_gbnf(c.schema).value();
    Validator validator(c.schema);
    for (const auto& [doc, expect] : c.docs) {
      std::optional<Json> parsed = parse(doc);
      bool valid = parsed && validator.valid(*parsed);
      // The table's claims about the schema hold.
      EXPECT_EQ(valid, expect != Expect::kReject) << "valijson disagrees with the table: " << doc;
      EXPECT_EQ(matches(*g, doc), expect == Expect::kAccept) << doc;
    }
  }
}

// Walks that finish are parsed and validated; some must finish (a walk that draws bytes at
// random rarely ends a string whose pattern must occur somewhere, so not all do).
void expect_generated_valid(const std::string& schema, int walks, uint32_t seed,
                            const JsonSchemaOptions& options = {}) {
  SCOPED_TRACE("schema " + schema);
  Result<GrammarPtr> g = compile_json_schema(schema, options);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  Validator validator(schema);
  int finished = 0;
  for (int i = 0; i < walks; ++i) {
    testing::Walk w = random_walk(*g, seed * 1000 + i);
    if (!w.finished) continue;
    ++finished;
    std::optional<Json> parsed = parse(w.text);
    ASSERT_TRUE(parsed.has_value()) << "not JSON: " << w.text;
    EXPECT_TRUE(validator.valid(*parsed)) << "invalid: " << w.text;
  }
  EXPECT_GE(finished, std::max(1, walks / 8)) << "too few walks ended";
}

TEST(JsonSchemaBehaviour, RandomGenerationIsAlwaysValid) {
  uint32_t seed = 1;
  for (const Case& c : cases()) expect_generated_valid(c.schema, 20, seed++);
}

TEST(JsonSchemaBehaviour, AnyWhitespaceIsBoundedAndStillValid) {
  const std::string schema =
      R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}},
          "required":["a"]})";
  JsonSchemaOptions options;
  options.any_whitespace = true;
  options.max_whitespace = 3;
  Result<GrammarPtr> g = compile_json_schema(schema, options);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_TRUE(matches(*g, R"({"a":[1,2]})"));
  EXPECT_TRUE(matches(*g, "{ \"a\" :\n[ 1 ,\t2 ] }"));
  EXPECT_TRUE(matches(*g, "{   \"a\":[]}"));
  EXPECT_FALSE(matches(*g, "{    \"a\":[]}"));  // 4 > max_whitespace
  EXPECT_FALSE(matches(*g, " {\"a\":[]}"));     // only between tokens
  expect_generated_valid(schema, 20, 7, options);
}

std::vector<std::string> corpus() {
  std::ifstream in(std::string(MLXS_SOURCE_DIR) + "/tests/fixtures/structured/schemas.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

TEST(JsonSchemaCorpus, EverySchemaCompilesAndGeneratesValidDocuments) {
  std::vector<std::string> schemas = corpus();
  ASSERT_GE(schemas.size(), 200u);
  uint32_t seed = 100;
  for (const std::string& line : schemas) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::parse(line);  // keeps key order
    expect_generated_valid(entry["schema"].dump(), 4, seed++);
  }
}

// Walks over a real tokenizer's vocabulary: tokens span grammar boundaries (`":"`, `"},{"`) and
// end inside multi-byte characters. Past a soft length the walk prefers EOS and then short
// tokens, so that it ends.
std::string token_walk(const GrammarPtr& g, const std::shared_ptr<const TokenVocabulary>& vocab,
                       std::mt19937& rng, bool* finished) {
  auto m = Matcher::create(g, vocab);
  std::vector<uint32_t> words((vocab->size() + 31) / 32);
  std::string text;
  *finished = false;
  for (int step = 0; step < 600; ++step) {
    m->fill_next_token_bitmask(words);
    std::vector<int32_t> allowed;
    for (size_t id = 0; id < vocab->size(); ++id) {
      if ((words[id / 32] >> (id % 32)) & 1) allowed.push_back(static_cast<int32_t>(id));
    }
    EXPECT_FALSE(allowed.empty()) << text;
    if (allowed.empty()) return text;
    const auto eos = vocab->eos_ids();
    auto is_eos = [&](int32_t id) { return std::find(eos.begin(), eos.end(), id) != eos.end(); };
    int32_t pick = allowed[rng() % allowed.size()];
    if (text.size() > 64) {
      size_t best = SIZE_MAX;
      for (int32_t id : allowed) {
        size_t len = is_eos(id) ? 0 : vocab->bytes_of(id).size();
        if (len < best || (len == best && rng() % 2)) best = len, pick = id;
      }
    } else if (is_eos(pick) && allowed.size() > 1 && rng() % 2) {
      pick = allowed[rng() % allowed.size()];
    }
    EXPECT_TRUE(m->accept_token(pick)) << text;
    if (is_eos(pick)) {
      *finished = true;
      return text;
    }
    text += vocab->bytes_of(pick);
  }
  return text;
}

TEST(JsonSchemaCorpus, TokenWalksOverRealVocabulariesAreValid) {
  std::vector<std::string> schemas = corpus();
  ASSERT_GE(schemas.size(), 200u);
  for (const char* name : {"llama3", "qwen3"}) {
    const Tokenizer* t = mlxs::testing::fixture_tokenizer(name);
    if (t == nullptr) GTEST_SKIP() << name << " fixture missing: run scripts/fetch-fixtures.sh";
    auto vocab = TokenVocabulary::from_tokenizer(*t);
    std::mt19937 rng(42);
    int finished_walks = 0;
    for (size_t i = 0; i < schemas.size(); i += 46) {  // 5 schemas, hand-written and generated
      std::string schema = nlohmann::ordered_json::parse(schemas[i])["schema"].dump();
      SCOPED_TRACE(std::string(name) + " schema " + schema);
      Result<GrammarPtr> g = compile_json_schema(schema);
      ASSERT_TRUE(g.ok()) << g.status().to_string();
      Validator validator(schema);
      for (int w = 0; w < 2; ++w) {
        bool finished = false;
        std::string text = token_walk(*g, vocab, rng, &finished);
        if (!finished) continue;
        ++finished_walks;
        std::optional<Json> parsed = parse(text);
        ASSERT_TRUE(parsed.has_value()) << "not JSON: " << text;
        EXPECT_TRUE(validator.valid(*parsed)) << "invalid: " << text;
      }
    }
    EXPECT_GE(finished_walks, 5) << name;
  }
}

}  // namespace
}  // namespace mlxs::structured
