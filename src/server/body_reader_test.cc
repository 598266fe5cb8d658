#include "server/body_reader.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

using json = nlohmann::json;

TEST(BodyReader, NullIsAbsentAndTypesAreChecked) {
  json body = {{"temperature", nullptr}, {"n", 2}, {"stream", true}, {"user", "u"}};
  BodyReader r(body);
  EXPECT_FALSE(r.number("temperature").has_value());
  EXPECT_EQ(r.integer("n"), 2);
  EXPECT_EQ(r.boolean("stream"), true);
  r.accept("user");
  EXPECT_FALSE(r.finish().has_value());
}

TEST(BodyReader, WrongTypeNamesTheField) {
  json body = {{"temperature", "hot"}};
  BodyReader r(body);
  r.number("temperature");
  auto e = r.finish();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->http_status, 400);
  EXPECT_EQ(e->param, "temperature");
  EXPECT_EQ(e->message, "Validation error on field 'temperature': expected number, got string");
}

TEST(BodyReader, UnknownFieldIsRefused) {
  json body = {{"model", "m"}, {"frobnicate", 1}};
  BodyReader r(body);
  r.string("model");
  auto e = r.finish();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "frobnicate");
  EXPECT_NE(e->message.find("unknown field"), std::string::npos);
}

TEST(BodyReader, RefusedFieldPassesWhenEmptyOrAllowed) {
  json body = {{"tools", json::array()}, {"tool_choice", "none"}, {"logit_bias", {{"5", 1}}}};
  BodyReader r(body);
  r.refuse("tools", "tools");
  r.refuse("tool_choice", "tool_choice", "none");
  EXPECT_FALSE(r.failed());
  r.refuse("logit_bias", "logit_bias");
  auto e = r.finish();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "logit_bias");
  EXPECT_NE(e->message.find("not supported"), std::string::npos);
}

TEST(BodyReader, IntegersAcceptWholeFloatsOnly) {
  json body = {{"a", 3.0}, {"b", 3.5}};
  BodyReader r(body);
  EXPECT_EQ(r.integer("a"), 3);
  EXPECT_FALSE(r.integer("b").has_value());
  EXPECT_EQ(r.finish()->param, "b");
}

TEST(BodyReader, NonObjectBody) {
  json body = json::array({1});
  BodyReader r(body);
  auto e = r.finish();
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->message.find("expected object, got array"), std::string::npos);
}

}  // namespace
}  // namespace mlxs::server
