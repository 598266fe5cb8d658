// The tool-call parsers: whole outputs, the same outputs streamed in pieces of every size,
// several calls, and malformed calls that stay text.
#include "server/tool_calls.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

// `text` fed in pieces of `piece` bytes, then finished: what the parser released, joined.
ToolCallOutput streamed(ToolCallFormat format, const std::string& text, size_t piece) {
  ToolCallParser parser(format);
  ToolCallOutput all;
  auto take = [&](ToolCallOutput out) {
    all.text += out.text;
    for (auto& c : out.calls) all.calls.push_back(std::move(c));
  };
  for (size_t at = 0; at < text.size(); at += piece) take(parser.feed(text.substr(at, piece)));
  take(parser.finish());
  return all;
}

// Whole and streamed in pieces of 1..text size bytes: the same result, which is returned.
ToolCallOutput parse_every_way(ToolCallFormat format, const std::string& text) {
  ToolCallOutput whole = parse_tool_calls(format, text);
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    ToolCallOutput s = streamed(format, text, piece);
    EXPECT_EQ(s.text, whole.text) << "piece " << piece;
    EXPECT_EQ(s.calls.size(), whole.calls.size()) << "piece " << piece;
    for (size_t i = 0; i < std::min(s.calls.size(), whole.calls.size()); ++i) {
      EXPECT_EQ(s.calls[i].name, whole.calls[i].name);
      EXPECT_EQ(s.calls[i].arguments, whole.calls[i].arguments);
    }
  }
  return whole;
}

TEST(ToolCallParser, HermesBlocksAreCallsAndTheTextAroundThemIsContent) {
  auto out = parse_every_way(ToolCallFormat::kHermes,
                             "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", "
                             "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n"
                             "{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n");
  EXPECT_EQ(out.text, "Let me check.");
  ASSERT_EQ(out.calls.size(), 2u);
  EXPECT_EQ(out.calls[0].name, "get_weather");
  EXPECT_EQ(out.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(out.calls[1].name, "get_time");
  EXPECT_EQ(out.calls[1].arguments, "{}");
}

TEST(ToolCallParser, HermesArgumentsGivenAsAStringAreParsed) {
  auto out = parse_every_way(ToolCallFormat::kHermes,
                             "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}"
                             "</tool_call>");
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_EQ(out.calls[0].arguments, R"({"a":1})");
}

TEST(ToolCallParser, HermesMalformedCallsStayText) {
  const std::string bad = "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>";
  auto out = parse_every_way(ToolCallFormat::kHermes, "A " + bad + " B");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "A " + bad + " B");
  out = parse_every_way(ToolCallFormat::kHermes, "<tool_call>{not json}</tool_call>");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "<tool_call>{not json}</tool_call>");
  // An unclosed block is a call only if what came parses.
  out = parse_every_way(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"f\"");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "<tool_call>{\"name\": \"f\"");
  out = parse_every_way(ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"f\"}\n");
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_EQ(out.calls[0].arguments, "{}");
}

TEST(ToolCallParser, HermesTextThatOnlyLooksLikeAMarkerIsReleased) {
  auto out = parse_every_way(ToolCallFormat::kHermes, "a <tool b <tool_cal");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "a <tool b <tool_cal");
  // Streaming releases what cannot start a call at once, and holds what can.
  ToolCallParser p(ToolCallFormat::kHermes);
  EXPECT_EQ(p.feed("Hello <to").text, "Hello");
  EXPECT_EQ(p.feed("day").text, " <today");
  EXPECT_EQ(p.finish().text, "");
}

TEST(ToolCallParser, Llama3JsonIsOneCallWithOrWithoutThePythonTag) {
  for (const std::string prefix : {"", "<|python_tag|>", "  \n"}) {
    auto out = parse_every_way(
        ToolCallFormat::kLlama3Json,
        prefix + R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 2}})");
    EXPECT_EQ(out.text, "");
    ASSERT_EQ(out.calls.size(), 1u) << prefix;
    EXPECT_EQ(out.calls[0].name, "get_weather");
    EXPECT_EQ(out.calls[0].arguments, R"({"city":"Paris","days":2})");
  }
}

TEST(ToolCallParser, Llama3PlainAnswersAndMalformedCallsAreText) {
  auto out = parse_every_way(ToolCallFormat::kLlama3Json, "The weather is {sunny}.");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "The weather is {sunny}.");
  out = parse_every_way(ToolCallFormat::kLlama3Json, R"({"answer": 42})");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, R"({"answer": 42})");
  out = parse_every_way(ToolCallFormat::kLlama3Json, R"({"name": "f", "parameters": {} trailing)");
  EXPECT_TRUE(out.calls.empty());
  // A plain answer streams from its first byte.
  ToolCallParser p(ToolCallFormat::kLlama3Json);
  EXPECT_EQ(p.feed(" Hi").text, " Hi");
}

TEST(ToolCallParser, MistralArraysAreCalls) {
  for (const std::string prefix : {"", "[TOOL_CALLS]", "[TOOL_CALLS] "}) {
    auto out = parse_every_way(ToolCallFormat::kMistral,
                               prefix + R"([{"name": "a", "arguments": {"x": 1}}, )" +
                                   R"({"name": "b", "arguments": {}}])");
    EXPECT_EQ(out.text, "");
    ASSERT_EQ(out.calls.size(), 2u) << prefix;
    EXPECT_EQ(out.calls[0].name, "a");
    EXPECT_EQ(out.calls[0].arguments, R"({"x":1})");
    EXPECT_EQ(out.calls[1].name, "b");
  }
  auto out = parse_every_way(ToolCallFormat::kMistral, R"([{"name": "a"}, {"arguments": {}}])");
  EXPECT_TRUE(out.calls.empty());  // one bad element: all of it is text
  EXPECT_EQ(out.text, R"([{"name": "a"}, {"arguments": {}}])");
  out = parse_every_way(ToolCallFormat::kMistral, "[1] is a footnote");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "[1] is a footnote");
}

TEST(ToolCallParser, WithoutAFormatEverythingIsText) {
  auto out = parse_every_way(ToolCallFormat::kNone, "<tool_call>{\"name\": \"f\"}</tool_call>");
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, "<tool_call>{\"name\": \"f\"}</tool_call>");
}

TEST(ToolCallParser, CallIdsAreFreshAndPrefixed) {
  const std::string a = new_tool_call_id("call_"), b = new_tool_call_id("call_");
  EXPECT_EQ(a.size(), 5u + 24u);
  EXPECT_EQ(a.rfind("call_", 0), 0u);
  EXPECT_NE(a, b);
}

// Regression: arguments nested 100,000 deep were parsed and serialized recursively (a stack
// overflow); deeper than kMaxToolCallJsonDepth is a malformed call, left as text.
TEST(ToolCallParser, DeeplyNestedArgumentsAreMalformed) {
  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += "{\"a\":";
  nested += "1";
  for (int i = 0; i < 100000; ++i) nested += "}";
  const std::string text =
      "<tool_call>{\"name\": \"f\", \"arguments\": " + nested + "}</tool_call>";
  ToolCallOutput out = parse_tool_calls(ToolCallFormat::kHermes, text);
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.text, text);
  std::string shallow = "1";
  for (int i = 0; i < kMaxToolCallJsonDepth - 2; ++i) shallow = "{\"a\":" + shallow + "}";
  out = parse_tool_calls(ToolCallFormat::kLlama3Json,
                         "{\"name\": \"f\", \"parameters\": " + shallow + "}");
  EXPECT_EQ(out.calls.size(), 1u);
}

}  // namespace
}  // namespace mlxs::server
