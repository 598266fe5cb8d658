// The schema layer itself, on a small struct declared here: a new struct needs only its
// declaration to get validation, JSON parsing and JSON Schema export.
#include "api/schema.h"

#include <gtest/gtest.h>

#include "api/schema_binding.h"

namespace mlxs {
namespace test_schema {

enum class Color { kRed, kGreen };

struct Inner {
  int32_t level = 1;
  std::vector<double> weights;
};

struct Outer {
  std::string name;
  Color color = Color::kRed;
  uint8_t small = 0;
  std::optional<Inner> inner;
  std::vector<Inner> list;
  std::map<std::string, int32_t> counts;
};

}  // namespace test_schema

namespace schema {
using test_schema::Color;
using test_schema::Inner;
using test_schema::Outer;

template <>
struct EnumTable<Color> {
  static constexpr std::array<std::pair<Color, const char*>, 2> kEntries{
      {{Color::kRed, "red"}, {Color::kGreen, "green"}}};
};

template <>
const Schema<Inner>& schema_of<Inner>() {
  static const Schema<Inner> s = [] {
    Schema<Inner> s("Inner", "nested");
    s.field("level", &Inner::level, "a level").range(1, 3);
    s.field("weights", &Inner::weights, "weights")
        .max_items(2)
        .items()
        .greater_than(0)
        .less_than(1);
    s.refine("weights", [](const Inner& i) -> std::optional<std::string> {
      if (i.level == 3 && i.weights.empty()) return "must not be empty at level 3";
      return std::nullopt;
    });
    return s;
  }();
  return s;
}

template <>
const Schema<Outer>& schema_of<Outer>() {
  static const Schema<Outer> s = [] {
    Schema<Outer> s("Outer", "outer");
    s.field("name", &Outer::name, "a name").required().min_length(2).max_length(4);
    s.field("color", &Outer::color, "a color");
    s.field("small", &Outer::small, "a byte");
    s.field("inner", &Outer::inner, "optional nested");
    s.field("list", &Outer::list, "nested list");
    s.field("counts", &Outer::counts, "a map").items().min(0);
    return s;
  }();
  return s;
}

namespace {

std::string error_of(const Json& j) {
  auto r = schema_of<Outer>().parse(j);
  return r.ok() ? "" : r.status().message();
}

TEST(Schema, ParsesNestedValues) {
  auto r = schema_of<Outer>().parse(Json{{"name", "abc"},
                                         {"color", "green"},
                                         {"small", 255},
                                         {"inner", {{"level", 2}, {"weights", {0.5}}}},
                                         {"list", {{{"level", 3}, {"weights", {0.1, 0.2}}}}},
                                         {"counts", {{"a", 1}}}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->color, test_schema::Color::kGreen);
  EXPECT_EQ(r->small, 255);
  EXPECT_EQ(r->inner->level, 2);
  EXPECT_EQ(r->list.at(0).weights.at(1), 0.2);
  EXPECT_EQ(r->counts.at("a"), 1);
}

TEST(Schema, MessagesForEveryRuleKind) {
  EXPECT_EQ(error_of({{"name", "a"}}),
            "Validation error on field 'name': must have at least 2 characters, got \"a\"");
  EXPECT_EQ(error_of({{"name", "abcde"}}),
            "Validation error on field 'name': must have at most 4 characters, got 5");
  // Lengths count code points, not bytes: four 3-byte characters fit in max_length 4.
  EXPECT_EQ(error_of({{"name", "\u00e9\u4e2d\u6587\u5b57"}}), "");
  EXPECT_EQ(error_of({{"name", "ab"}, {"small", 256}}),
            "Validation error on field 'small': must be >= 0 and <= 255, got 256");
  EXPECT_EQ(error_of({{"name", "ab"}, {"color", "blue"}}),
            "Validation error on field 'color': must be one of \"red\", \"green\", got \"blue\"");
  EXPECT_EQ(error_of({{"name", "ab"}, {"inner", {{"level", 4}}}}),
            "Validation error on field 'inner.level': must be >= 1 and <= 3, got 4");
  EXPECT_EQ(error_of({{"name", "ab"}, {"inner", {{"weights", {0.5, 1}}}}}),
            "Validation error on field 'inner.weights[1]': must be > 0 and < 1, got 1");
  EXPECT_EQ(error_of({{"name", "ab"}, {"inner", {{"weights", {0.5, 0.5, 0.5}}}}}),
            "Validation error on field 'inner.weights': must have at most 2 items, got 3");
  EXPECT_EQ(error_of({{"name", "ab"}, {"list", {Json::object(), {{"lvl", 1}}}}}),
            "Validation error on field 'list[1].lvl': unknown field (did you mean 'level'?)");
  EXPECT_EQ(error_of({{"name", "ab"}, {"counts", {{"x", -1}}}}),
            "Validation error on field 'counts.x': must be >= 0, got -1");
  EXPECT_EQ(error_of({{"name", "ab"}, {"inner", 5}}),
            "Validation error on field 'inner': expected object, got integer 5");
  EXPECT_EQ(error_of({{"name", "ab"}, {"list", {{{"level", 1.5}}}}}),
            "Validation error on field 'list[0].level': must be an integer, got 1.5");
  EXPECT_EQ(error_of({{"name", "ab"}, {"list", {{{"level", 2.0}}}}}),
            "");  // a whole float is an integer
  EXPECT_EQ(error_of({{"name", std::string(100, 'x')}}),
            "Validation error on field 'name': must have at most 4 characters, got 100");
  EXPECT_EQ(error_of("text"), "Validation error: expected object, got string \"text\"");
}

TEST(Schema, NestedRefinementsRunWithTheirPath) {
  EXPECT_EQ(error_of({{"name", "ab"}, {"inner", {{"level", 3}}}}),
            "Validation error on field 'inner.weights': must not be empty at level 3");
  test_schema::Outer o;
  o.name = "ab";
  o.inner = test_schema::Inner{3, {}};
  EXPECT_EQ(schema_of<Outer>().validate_value(o).message(),
            "Validation error on field 'inner.weights': must not be empty at level 3");
  o.inner->weights = {0.5};
  EXPECT_TRUE(schema_of<Outer>().validate_value(o).ok());
}

TEST(Schema, LongStringsAreCutInMessages) {
  std::string rendered = render_value(Json(std::string(100, 'y')));
  EXPECT_EQ(rendered, "\"" + std::string(64, 'y') + "\"...");
  // Never in the middle of a UTF-8 sequence.
  std::string accented;
  for (int i = 0; i < 40; ++i) accented += "\u00e9";
  std::string cut = render_value(Json(accented));
  EXPECT_EQ(cut, "\"" + accented.substr(0, 64) + "\"...");
}

TEST(Schema, DefaultsComeFromTheStruct) {
  const Node& n = schema_of<Outer>().node();
  EXPECT_EQ(n.find_property("color")->default_value, "red");
  EXPECT_EQ(n.find_property("small")->default_value, 0);
  EXPECT_TRUE(n.find_property("name")->default_value.is_null());  // required: no default
  EXPECT_TRUE(n.find_property("inner")->default_value.is_null());
}

TEST(Schema, JsonSchemaOfNestedAndMapFields) {
  Json s = schema_of<Outer>().json_schema();
  EXPECT_EQ(s["properties"]["inner"]["properties"]["weights"]["items"]["exclusiveMaximum"], 1);
  EXPECT_EQ(s["properties"]["list"]["items"]["title"], "Inner");
  EXPECT_EQ(s["properties"]["counts"]["additionalProperties"]["minimum"], 0);
  EXPECT_EQ(s["properties"]["small"]["type"], "integer");
  EXPECT_FALSE(s["properties"]["small"].contains("maximum"));  // the C++ range is not exported
  EXPECT_EQ(describe_constraints(*schema_of<Inner>().node().find_property("weights")->node),
            "at most 2 items; each > 0 and < 1");
}

TEST(Schema, ToStatusJoinsIssues) {
  EXPECT_TRUE(to_status({}, ErrorCode::kInvalidParams).ok());
  Status s = to_status({{"a", "x"}, {"", "y"}}, ErrorCode::kValidationError);
  EXPECT_EQ(s.code(), ErrorCode::kValidationError);
  EXPECT_EQ(s.message(), "Validation error on field 'a': x; Validation error: y");
}

}  // namespace
}  // namespace schema
}  // namespace mlxs
