#include "server/tool_calls.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <utility>

#include "util/json_depth.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kLlamaMarker = "<|python_tag|>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool all_space(std::string_view s) {
  return trim(s).empty();
}

// The length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_marker_at_end(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

// {"name": string, <args_key>: object (or a string holding one)} -> a call. "arguments" and
// "parameters" are both accepted; a call without either has no arguments ({}).
std::optional<ParsedToolCall> call_of(const json& v) {
  if (!v.is_object() || !v.contains("name") || !v["name"].is_string()) return std::nullopt;
  json args = json::object();
  for (const char* key : {"arguments", "parameters"}) {
    if (!v.contains(key)) continue;
    args = v[key];
    if (args.is_string()) {
      const std::string inner = args.get<std::string>();
      if (json_nesting_depth(inner, kMaxToolCallJsonDepth) > kMaxToolCallJsonDepth)
        return std::nullopt;
      args = json::parse(inner, nullptr, false);
    }
    break;
  }
  if (!args.is_object()) return std::nullopt;
  return ParsedToolCall{v["name"].get<std::string>(),
                        args.dump(-1, ' ', false, json::error_handler_t::replace)};
}

// One call, or an array of calls (all of them must parse).
std::optional<std::vector<ParsedToolCall>> calls_of(std::string_view text) {
  if (json_nesting_depth(text, kMaxToolCallJsonDepth) > kMaxToolCallJsonDepth) return std::nullopt;
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<ParsedToolCall> calls;
  if (v.is_array() && !v.empty()) {
    for (const json& e : v) {
      auto c = call_of(e);
      if (!c) return std::nullopt;
      calls.push_back(std::move(*c));
    }
    return calls;
  }
  auto c = call_of(v);
  if (!c) return std::nullopt;
  calls.push_back(std::move(*c));
  return calls;
}

void append(ToolCallOutput& out, ToolCallOutput more) {
  out.text += more.text;
  for (auto& c : more.calls) out.calls.push_back(std::move(c));
}

}  // namespace

ToolCallOutput ToolCallParser::feed(std::string_view text) {
  pending_ += text;
  switch (format_) {
    case ToolCallFormat::kNone:
      return ToolCallOutput{std::exchange(pending_, {}), {}};
    case ToolCallFormat::kHermes:
      return feed_hermes();
    case ToolCallFormat::kLlama3Json:
      return feed_whole_output('{');
    case ToolCallFormat::kMistral:
      return feed_whole_output('[');
  }
  return {};
}

// Text up to <tool_call> is released, except trailing whitespace and a partial marker (the
// whitespace around calls is not content, unless the call turns out malformed); each
// <tool_call> ... </tool_call> is a call.
ToolCallOutput ToolCallParser::feed_hermes() {
  ToolCallOutput out;
  while (true) {
    if (in_call_) {
      const size_t close = pending_.find(kHermesClose);
      if (close == std::string::npos) break;
      const std::string body = pending_.substr(0, close);
      pending_.erase(0, close + kHermesClose.size());
      in_call_ = false;
      auto calls = calls_of(trim(body));
      if (calls && calls->size() == 1) {
        out.calls.push_back(std::move((*calls)[0]));
        ++num_calls_;
      } else {
        out.text +=
            space_before_call_ + std::string(kHermesOpen) + body + std::string(kHermesClose);
      }
      space_before_call_.clear();
      continue;
    }
    const size_t open = pending_.find(kHermesOpen);
    if (open != std::string::npos) {
      std::string_view before = std::string_view(pending_).substr(0, open);
      size_t text_end = before.size();
      while (text_end > 0 && is_space(before[text_end - 1])) --text_end;
      out.text += before.substr(0, text_end);
      space_before_call_ = std::string(before.substr(text_end));
      pending_.erase(0, open + kHermesOpen.size());
      in_call_ = true;
      continue;
    }
    size_t keep = partial_marker_at_end(pending_, kHermesOpen);
    while (keep < pending_.size() && is_space(pending_[pending_.size() - keep - 1])) ++keep;
    out.text += pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    break;
  }
  return out;
}

// Llama 3 and Mistral: a call is the whole output. An output that opens with `opener` or the
// marker is held to the end; any other is text from its first byte on.
ToolCallOutput ToolCallParser::feed_whole_output(char opener) {
  const std::string_view marker =
      format_ == ToolCallFormat::kLlama3Json ? kLlamaMarker : kMistralMarker;
  if (mode_ == Mode::kUndecided) {
    const std::string_view head = trim(pending_);
    if (head.empty()) return {};
    if (head.front() == opener || head.starts_with(marker)) {
      mode_ = Mode::kHeld;
    } else if (marker.starts_with(head)) {
      return {};  // maybe the marker, still coming
    } else {
      mode_ = Mode::kText;
    }
  }
  if (mode_ == Mode::kHeld) return {};
  return ToolCallOutput{std::exchange(pending_, {}), {}};
}

ToolCallOutput ToolCallParser::finish() {
  ToolCallOutput out;
  if (format_ == ToolCallFormat::kHermes) {
    if (in_call_) {  // the output ended inside a call: a call if what came parses
      auto calls = calls_of(trim(pending_));
      in_call_ = false;
      if (calls && calls->size() == 1) {
        out.calls.push_back(std::move((*calls)[0]));
        ++num_calls_;
        pending_.clear();
        space_before_call_.clear();
        return out;
      }
      out.text = std::exchange(space_before_call_, {}) + std::string(kHermesOpen) +
                 std::exchange(pending_, {});
      return out;
    }
    if (num_calls_ > 0 && all_space(pending_)) pending_.clear();
    out.text = std::exchange(pending_, {});
    return out;
  }
  if (mode_ == Mode::kHeld) {
    std::string_view body = trim(pending_);
    const std::string_view marker =
        format_ == ToolCallFormat::kLlama3Json ? kLlamaMarker : kMistralMarker;
    if (body.starts_with(marker)) body = trim(body.substr(marker.size()));
    if (auto calls = calls_of(body)) {
      out.calls = std::move(*calls);
      pending_.clear();
      return out;
    }
  }
  out.text = std::exchange(pending_, {});
  return out;
}

ToolCallOutput parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallParser parser(format);
  ToolCallOutput out = parser.feed(text);
  append(out, parser.finish());
  return out;
}

std::string new_tool_call_id(const char* prefix) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kLlama3Json:
      return "llama3_json";
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kNone:
      break;
  }
  return "none";
}

}  // namespace mlxs::server
