// Loading the configuration: YAML file -> JSON document (remembering each key's line), environment
// overrides merged in (remembering which variable set each key), then one validation by the
// Config schema, whose issues are prefixed by where the offending value came from.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "api/config.h"

extern char** environ;

namespace mlxs {
namespace {

using schema::Json;
using schema::Kind;
using schema::Node;

// Where each value of the merged document came from: path -> "file:line" or "environment ...".
using Origins = std::map<std::string, std::string>;

Json yaml_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  static const std::regex kInt("^[-+]?[0-9]+$");
  static const std::regex kFloat("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  static const std::regex kInf("^[-+]?\\.(inf|Inf|INF)$");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (std::regex_match(s, kInt)) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno != ERANGE) return v;
    return std::strtod(s.c_str(), nullptr);
  }
  if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
  if (std::regex_match(s, kInf)) return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::nan("");
  return s;
}

Json yaml_to_json(const YAML::Node& n, const std::string& path, const std::string& source,
                  Origins& origins) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : n) {
        std::string key = kv.first.Scalar();
        std::string child = schema::join_path(path, key);
        origins[child] = fmt::format("{}:{}", source, kv.first.Mark().line + 1);
        o[key] = yaml_to_json(kv.second, child, source, origins);
      }
      return o;
    }
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (size_t i = 0; i < n.size(); ++i) {
        std::string child = schema::item_path(path, i);
        origins[child] = fmt::format("{}:{}", source, n[i].Mark().line + 1);
        a.push_back(yaml_to_json(n[i], child, source, origins));
      }
      return a;
    }
    case YAML::NodeType::Scalar:
      return yaml_scalar(n);
    default:
      return nullptr;
  }
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The property of object `node` that `rest` (an upper-case tail like "LIMITS_MAX_PROMPT_CHARS")
// names, descending into nested objects. Returns the dotted path below `node`, or "".
std::string resolve_env_key(const Node& node, std::string_view rest, const Node** leaf) {
  for (const auto& p : node.properties) {
    std::string name = upper(p.name);
    if (rest == name) {
      *leaf = p.node.get();
      return p.name;
    }
    if (p.node->kind == Kind::kObject && rest.size() > name.size() + 1 &&
        rest.substr(0, name.size()) == name && rest[name.size()] == '_') {
      std::string below = resolve_env_key(*p.node, rest.substr(name.size() + 1), leaf);
      if (!below.empty()) return p.name + "." + below;
    }
  }
  return "";
}

Json env_scalar(const std::string& text, const Node& node) {
  if (node.kind == Kind::kString) return text;
  try {
    return yaml_scalar(YAML::Load(text));
  } catch (const YAML::Exception&) {
    return text;  // reported by validation as a type error, with the text
  }
}

Json env_value(const std::string& text, const Node& node) {
  if (node.kind != Kind::kArray) return env_scalar(text, node);
  Json a = Json::array();
  if (!text.empty() && text.front() == '[') {
    Origins ignored;
    try {
      return yaml_to_json(YAML::Load(text), "", "", ignored);
    } catch (const YAML::Exception&) {
      return text;
    }
  }
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) a.push_back(env_scalar(item, *node.items));
  }
  return a;
}

// Switches an earlier version read with getenv beside the config; each is now a key, set
// through its MLXS_<SECTION>_<KEY> variable. Setting an old name is refused, so a benchmark that
// still sets one fails loudly instead of silently running the default.
struct RetiredVariable {
  const char* name;
  const char* key;
  const char* instead;
};
constexpr RetiredVariable kRetiredVariables[] = {
    {"MLXS_CUDA_FAST", "backend.cuda.precision", "MLXS_BACKEND_CUDA_PRECISION=fast"},
    {"MLXS_CUDA_GRAPHS", "backend.cuda.graphs", "MLXS_BACKEND_CUDA_GRAPHS=false"},
    {"MLXS_CUDA_PDL", "backend.cuda.pdl", "MLXS_BACKEND_CUDA_PDL=false"},
    {"MLXS_CUDA_SWIGLU", "backend.cuda.swiglu_epilogue", "MLXS_BACKEND_CUDA_SWIGLU_EPILOGUE=false"},
    {"MLXS_ATTN_DECODE", "backend.cuda.attention_decode",
     "MLXS_BACKEND_CUDA_ATTENTION_DECODE=false"},
    {"MLXS_ATTN_TC", "backend.cuda.attention_tc", "MLXS_BACKEND_CUDA_ATTENTION_TC=false"},
};

const RetiredVariable* retired_variable(const std::string& name) {
  for (const auto& r : kRetiredVariables) {
    if (name == r.name) return &r;
  }
  return nullptr;
}

// The config section an MLXS_ variable's name starts with, or null.
const schema::Property* env_section(const std::string& name) {
  const std::string rest = name.substr(5);
  const schema::Property* section = nullptr;
  for (const auto& p : schema::schema_of<Config>().node().properties) {
    std::string prefix = upper(p.name) + "_";
    if (rest.rfind(prefix, 0) == 0) section = &p;
  }
  return section;
}

// The dotted key `name` (MLXS_<SECTION>_<KEY>) sets within `section`, or "".
std::string env_key(const std::string& name, const schema::Property& section, const Node** leaf) {
  std::string below =
      resolve_env_key(*section.node, name.substr(5 + section.name.size() + 1), leaf);
  return below.empty() ? "" : section.name + "." + below;
}

// Merges the MLXS_<SECTION>_<KEY> variables of `env` into `doc`.
void apply_env(const EnvMap& env, Json& doc, Origins& origins, schema::Issues& issues,
               std::vector<std::string>* warnings) {
  for (const auto& [name, text] : env) {
    if (name.rfind("MLXS_", 0) != 0 || name == "MLXS_CONFIG") continue;
    std::string origin = "environment variable " + name;
    if (const RetiredVariable* r = retired_variable(name)) {
      origins[r->key] = origin;
      issues.push_back(
          {r->key, fmt::format("{} is no longer read; set {} instead", name, r->instead)});
      continue;
    }
    const schema::Property* section = env_section(name);
    if (!section) {
      if (warnings)
        warnings->push_back(
            fmt::format("ignored environment variable {}: no config section", name));
      continue;
    }
    const Node* leaf = nullptr;
    const std::string path = env_key(name, *section, &leaf);
    if (path.empty()) {
      std::string guess = section->name + "." + name.substr(5 + section->name.size() + 1);
      for (char& c : guess) c = char(std::tolower(static_cast<unsigned char>(c)));
      origins[guess] = origin;
      issues.push_back({guess, "unknown field"});
      continue;
    }
    Json* target = &doc;
    std::stringstream parts(path);
    std::string part, parent;
    std::vector<std::string> names;
    while (std::getline(parts, part, '.')) names.push_back(part);
    for (size_t i = 0; i + 1 < names.size() && target; ++i) {
      if (!target->contains(names[i])) (*target)[names[i]] = Json::object();
      target = (*target)[names[i]].is_object() ? &(*target)[names[i]] : nullptr;
    }
    if (!target) continue;  // the file gave a non-object here; validation reports it
    (*target)[names.back()] = env_value(text, *leaf);
    origins[path] = origin;
  }
}

// The origin of the value at `path`, or of its nearest ancestor that has one.
std::string origin_of(const Origins& origins, std::string path, const std::string& fallback) {
  while (!path.empty()) {
    auto it = origins.find(path);
    if (it != origins.end()) return it->second;
    size_t cut = path.find_last_of(".[");
    if (cut == std::string::npos) break;
    path.resize(cut);
  }
  return fallback;
}

Status located_status(const schema::Issues& issues, const Origins& origins,
                      const std::string& source) {
  std::string message;
  for (const auto& issue : issues) {
    std::string where = origin_of(origins, issue.path, source);
    message +=
        (message.empty() ? "" : "; ") + (where.empty() ? "" : where + ": ") + issue.to_string();
  }
  return {ErrorCode::kValidationError, message};
}

}  // namespace

EnvMap process_environment() {
  EnvMap env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || entry.rfind("MLXS_", 0) != 0) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

Result<Config> load_config_text(std::string_view yaml, const std::string& source_name,
                                const EnvMap& env, std::vector<std::string>* warnings) {
  Origins origins;
  Json doc = Json::object();
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (root.IsDefined() && !root.IsNull()) doc = yaml_to_json(root, "", source_name, origins);
  } catch (const YAML::ParserException& e) {
    return Status(ErrorCode::kParseError, fmt::format("{}:{}:{}: YAML parse error: {}", source_name,
                                                      e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (doc.is_object()) {
    // An empty section ("server:" with every key commented out) means defaults.
    for (auto it = doc.begin(); it != doc.end();) it = it.value().is_null() ? doc.erase(it) : ++it;
  }
  schema::Issues issues;
  if (doc.is_object()) apply_env(env, doc, origins, issues, warnings);
  Config config;
  schema::Issues parse_issues = schema::schema_of<Config>().parse_into(doc, config);
  issues.insert(issues.end(), parse_issues.begin(), parse_issues.end());
  if (!issues.empty()) return located_status(issues, origins, source_name);
  return config;
}

Result<Config> load_config(const std::string& path, const EnvMap& env,
                           std::vector<std::string>* warnings) {
  std::string file = path;
  if (file.empty()) {
    auto it = env.find("MLXS_CONFIG");
    if (it != env.end()) file = it->second;
  }
  if (file.empty()) return load_config_text("", "", env, warnings);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status(ErrorCode::kNotFound,
                  fmt::format("cannot open config file '{}': {}", file, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return load_config_text(text.str(), file, env, warnings);
}

std::string config_key_for_env(const std::string& name) {
  if (name.rfind("MLXS_", 0) != 0) return "";
  const schema::Property* section = env_section(name);
  const Node* leaf = nullptr;
  return section ? env_key(name, *section, &leaf) : "";
}

std::string env_var_for(std::string_view path) {
  std::string name = "MLXS_" + upper(path);
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

}  // namespace mlxs
