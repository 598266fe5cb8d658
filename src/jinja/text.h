// UTF-8 text helpers with Python str semantics: Jinja templates index, slice, strip and case-map
// strings by code point, as Python does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mlxs::jinja::text {

// Code points of valid UTF-8 text (invalid bytes decode as U+FFFD).
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view cps);
void append_utf8(std::string& out, char32_t cp);
// Number of code points.
size_t length(std::string_view s);
bool is_ascii(std::string_view s);

// Python's str.isspace() for one code point.
bool is_space(char32_t cp);
// str.strip/lstrip/rstrip: `chars` empty means whitespace.
std::string strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
// Python str.title(): a cased letter after an uncased character is upper, other cased ones lower.
std::string py_title(std::string_view s);
// Jinja's `title` filter: capitalizes words split at runs of whitespace, '-', '(', '{', '[', '<'.
std::string jinja_title(std::string_view s);
// str.capitalize(): first character upper, the rest lower.
std::string capitalize(std::string_view s);

// str.split(sep, maxsplit): sep == nullptr splits on whitespace runs.
std::vector<std::string> split(std::string_view s, const std::string* sep, long maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, long maxsplit);
// str.replace(old, new, count); count < 0 means all.
std::string replace(std::string_view s, std::string_view from, std::string_view to, long count);
// Non-overlapping occurrences of a non-empty `needle` in `s`, left to right (Python's str.count).
size_t count(std::string_view s, std::string_view needle);

}  // namespace mlxs::jinja::text
