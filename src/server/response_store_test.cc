#include "server/response_store.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

StoredResponse answer(const std::string& text) {
  return {"default", {{"user", "q"}, {"assistant", text}}, {{"id", text}}};
}

TEST(ResponseStoreTest, KeepsTheNewestUpToItsCapacity) {
  ResponseStore store(2);
  store.put("a", answer("1"));
  store.put("b", answer("2"));
  store.put("c", answer("3"));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_FALSE(store.get("a").has_value());
  ASSERT_TRUE(store.get("c").has_value());
  EXPECT_EQ(store.get("c")->conversation.back().content, "3");
  store.put("c", answer("4"));  // replaced, not counted twice
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.get("c")->response["id"], "4");
  EXPECT_TRUE(store.get("b").has_value());
}

TEST(ResponseStoreTest, ZeroCapacityKeepsNothing) {
  ResponseStore store(0);
  store.put("a", answer("1"));
  EXPECT_FALSE(store.get("a").has_value());
}

}  // namespace
}  // namespace mlxs::server
