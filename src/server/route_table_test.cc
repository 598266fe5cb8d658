#include "server/route_table.h"

#include <gtest/gtest.h>

#include "server/dialect.h"

namespace mlxs::server {
namespace {

RouteTable<int> table() {
  RouteTable<int> t;
  t.add({"GET", "/health", 1, nullptr, /*needs_api_key=*/false});
  t.add({"GET", "/v1/models", 2});
  t.add({"GET", "/v1/models/{id}", 3});
  t.add({"POST", "/v1/messages", 4, &anthropic_messages_dialect()});
  t.add({"POST", "/things", 5});
  t.add({"GET", "/things", 6});
  return t;
}

TEST(RouteTable, AnExactPathAndMethodNameTheRoute) {
  auto t = table();
  auto m = t.match("GET", "/health");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.route->handler, 1);
  EXPECT_EQ(m.name, "/health");
  EXPECT_FALSE(m.route->needs_api_key);
  EXPECT_TRUE(t.match("GET", "/v1/models").route->needs_api_key);
}

TEST(RouteTable, TheQueryStringIsNotPartOfThePath) {
  auto t = table();
  auto m = t.match("GET", "/health?verbose=1");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->handler, 1);
}

TEST(RouteTable, AnIdPatternMatchesEverythingUnderItsPrefix) {
  auto t = table();
  auto m = t.match("GET", "/v1/models/qwen/7b?x");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->handler, 3);
  EXPECT_EQ(m.name, "/v1/models/{id}");
  EXPECT_EQ(m.param, "qwen/7b");
  EXPECT_EQ(t.match("GET", "/v1/models/").param, "");
  EXPECT_EQ(t.match("GET", "/v1/models").route->handler, 2);  // the exact route wins
}

TEST(RouteTable, AnUnknownPathIs404Unmatched) {
  auto t = table();
  auto m = t.match("GET", "/nope");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.status, 404);
  EXPECT_EQ(m.name, "unmatched");
  EXPECT_EQ(t.match("GET", "/healthz").status, 404);
}

TEST(RouteTable, AKnownPathWithAnotherMethodIs405WithThePathsDialect) {
  auto t = table();
  auto m = t.match("GET", "/v1/messages");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.name, "/v1/messages");
  EXPECT_EQ(m.dialect, &anthropic_messages_dialect());
  EXPECT_EQ(t.match("DELETE", "/health").status, 405);
}

TEST(RouteTable, OnePathMayHaveARoutePerMethod) {
  auto t = table();
  EXPECT_EQ(t.match("POST", "/things").route->handler, 5);
  EXPECT_EQ(t.match("GET", "/things").route->handler, 6);
  EXPECT_EQ(t.match("PUT", "/things").status, 405);
}

}  // namespace
}  // namespace mlxs::server
