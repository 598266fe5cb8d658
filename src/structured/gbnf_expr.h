// Building GBNF expression text: the small combinators the JSON Schema translator and the
// number grammars share. Every function returns one expression usable as a sequence item;
// "" (or the literal "\"\"") is the empty string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlxs::structured {

std::string join(const std::vector<std::string>& items, std::string_view sep);
// "(a | b)", or the one alternative.
std::string alternatives(const std::vector<std::string>& items);
// "(a b)" without the empty items, or the one item, or "\"\"" when none is left.
std::string sequence(const std::vector<std::string>& items);
// expr between min and max times (max empty: unbounded), as * + ? {m} {m,} {m,n}.
std::string repeat(const std::string& expr, int64_t min, std::optional<int64_t> max);
// A literal matching exactly `utf8` (which must be valid UTF-8: it comes from parsed JSON).
std::string literal(std::string_view utf8);

}  // namespace mlxs::structured
