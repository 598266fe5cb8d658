// Jinja's builtin filters, tests, globals and the methods of Python's str, dict and list that
// templates call (`content.split(...)`, `message.get(...)`, `tool.items()`), with Python 3
// semantics. Throws JinjaError on misuse, with Python's wording where templates rely on it.
#pragma once

#include <string>

#include "jinja/interpreter.h"
#include "jinja/value.h"

namespace mlxs::jinja {

// obj.name: dict methods first, then the key; string/list methods; namespace attributes.
// Missing attributes are undefined; any attribute of undefined is an error.
Value get_attr(Interpreter& in, const Value& obj, const std::string& name);
// obj[key]: dict keys, list/string indices (negative from the end); missing is undefined.
Value get_item(Interpreter& in, const Value& obj, const Value& key);

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(Interpreter& in, const std::string& name, const Value& v, const CallArgs& args);
bool apply_test(Interpreter& in, const std::string& name, const Value& v, const CallArgs& args);

// Adds range, namespace, dict, cycler and joiner to `globals`.
void install_builtin_globals(Frame& globals);

}  // namespace mlxs::jinja
