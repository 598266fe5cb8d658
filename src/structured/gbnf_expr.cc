#include "structured/gbnf_expr.h"

#include <fmt/format.h>

#include "structured/regex_to_gbnf.h"

namespace mlxs::structured {

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string alternatives(const std::vector<std::string>& items) {
  if (items.size() == 1) return items[0];
  return "(" + join(items, " | ") + ")";
}

std::string sequence(const std::vector<std::string>& items) {
  std::vector<std::string> kept;
  for (const std::string& s : items) {
    if (!s.empty() && s != "\"\"") kept.push_back(s);
  }
  if (kept.empty()) return "\"\"";
  if (kept.size() == 1) return kept[0];
  return "(" + join(kept, " ") + ")";
}

std::string repeat(const std::string& expr, int64_t min, std::optional<int64_t> max) {
  if (max && *max == 0) return "\"\"";
  std::string q;
  if (!max) {
    q = min == 0 ? "*" : min == 1 ? "+" : fmt::format("{{{},}}", min);
  } else if (min == 0 && *max == 1) {
    q = "?";
  } else if (min == *max) {
    if (min == 1) return expr;
    q = fmt::format("{{{}}}", min);
  } else {
    q = fmt::format("{{{},{}}}", min, *max);
  }
  return "(" + expr + ")" + q;
}

std::string literal(std::string_view utf8) {
  Result<std::string> lit = gbnf_literal(utf8);
  return lit.ok() ? *lit : "\"\"";  // the text comes from a parsed JSON value: valid UTF-8
}

}  // namespace mlxs::structured
