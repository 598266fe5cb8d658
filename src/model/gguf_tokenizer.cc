#include "model/gguf_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace mlxs {
namespace {

using nlohmann::json;

enum TokenType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

Status tok_error(const GgufFile& f, const std::string& key, const std::string& why) {
  return error(ErrorCode::kTokenizerError, f.path() + ": GGUF key '" + key + "': " + why);
}

// A Status from GgufFile's getters, re-coded as a tokenizer error.
Status as_tok_error(const Status& s) {
  return error(ErrorCode::kTokenizerError, s.message());
}

json byte_level() {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", false},
          {"use_regex", false}};
}

// SentencePiece BPE merges from scores (see the header).
json merges_from_scores(const std::vector<std::string_view>& tokens,
                        const std::vector<double>& scores, const std::vector<int64_t>& types) {
  std::unordered_map<std::string_view, int64_t> id;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] == kNormal) id.emplace(tokens[i], int64_t(i));
  }
  struct Merge {
    double score;
    int64_t left, right;
    size_t merged;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != kNormal) continue;
    const std::string_view t = tokens[i];
    for (size_t cut = 1; cut < t.size(); ++cut) {
      auto l = id.find(t.substr(0, cut)), r = id.find(t.substr(cut));
      if (l != id.end() && r != id.end()) merges.push_back({scores[i], l->second, r->second, i});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.merged != b.merged) return a.merged < b.merged;
    return std::make_pair(a.left, a.right) < std::make_pair(b.left, b.right);
  });
  json out = json::array();
  for (const Merge& m : merges) {
    out.push_back(
        json::array({std::string(tokens[size_t(m.left)]), std::string(tokens[size_t(m.right)])}));
  }
  return out;
}

}  // namespace

std::string gguf_pre_tokenizer_regex(const std::string& pre) {
  if (pre == "llama-bpe" || pre == "llama3") {
    return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  if (pre == "qwen2") {
    return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  if (pre == "default" || pre == "gpt-2") {
    return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  }
  return "";
}

Result<GgufTokenizerFiles> gguf_tokenizer_files(const GgufFile& f) {
  auto model_r = f.get_string("tokenizer.ggml.model");
  if (!model_r.ok()) return as_tok_error(model_r.status());
  const std::string model(*model_r);
  auto tokens_r = f.get_strings("tokenizer.ggml.tokens");
  if (!tokens_r.ok()) return as_tok_error(tokens_r.status());
  const std::vector<std::string_view>& tokens = *tokens_r;
  if (tokens.empty()) return tok_error(f, "tokenizer.ggml.tokens", "is empty");
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    auto t = f.get_ints("tokenizer.ggml.token_type");
    if (!t.ok()) return as_tok_error(t.status());
    if (t->size() != tokens.size()) {
      return tok_error(
          f, "tokenizer.ggml.token_type",
          std::to_string(t->size()) + " entries for " + std::to_string(tokens.size()) + " tokens");
    }
    types = *t;
  }
  auto id_of = [&](const char* key, int64_t* out) -> Status {
    if (!f.has(key)) return {};
    auto v = f.get_uint(key);
    if (!v.ok()) return as_tok_error(v.status());
    if (*v >= tokens.size()) {
      return tok_error(f, key,
                       "id " + std::to_string(*v) + " is outside the " +
                           std::to_string(tokens.size()) + " tokens");
    }
    *out = int64_t(*v);
    return {};
  };
  int64_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  MLXS_RETURN_IF_ERROR(id_of("tokenizer.ggml.bos_token_id", &bos));
  MLXS_RETURN_IF_ERROR(id_of("tokenizer.ggml.eos_token_id", &eos));
  MLXS_RETURN_IF_ERROR(id_of("tokenizer.ggml.unknown_token_id", &unk));
  MLXS_RETURN_IF_ERROR(id_of("tokenizer.ggml.padding_token_id", &pad));
  MLXS_RETURN_IF_ERROR(id_of("tokenizer.ggml.eot_token_id", &eot));
  MLXS_RETURN_IF_ERROR(id_of("tokenizer.ggml.eom_token_id", &eom));
  auto flag = [&](const char* key, bool fallback) -> Result<bool> {
    if (!f.has(key)) return fallback;
    auto v = f.get_bool(key);
    if (!v.ok()) return as_tok_error(v.status());
    return *v;
  };

  json tj;
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string s(tokens[i]);
    const int64_t type = types[i];
    if (type < kNormal || type > kByte) {
      return tok_error(f, "tokenizer.ggml.token_type",
                       "token " + std::to_string(i) + " has type " + std::to_string(type) +
                           " (expected 1 to 6)");
    }
    if (!vocab.contains(s)) vocab[s] = i;
    if (type == kControl || type == kUnknown || type == kUserDefined) {
      added.push_back({{"id", i},
                       {"content", s},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", type == kUserDefined},
                       {"special", type != kUserDefined}});
    }
  }
  MLXS_ASSIGN_OR_RETURN(const bool add_bos, flag("tokenizer.ggml.add_bos_token", model == "llama"));
  if (model == "gpt2") {
    auto merges = f.get_strings("tokenizer.ggml.merges");
    if (!merges.ok()) return as_tok_error(merges.status());
    std::string pre = "default";
    if (f.has("tokenizer.ggml.pre")) {
      auto p = f.get_string("tokenizer.ggml.pre");
      if (!p.ok()) return as_tok_error(p.status());
      pre = std::string(*p);
    }
    const std::string regex = gguf_pre_tokenizer_regex(pre);
    if (regex.empty()) {
      return tok_error(f, "tokenizer.ggml.pre",
                       "pre-tokenizer '" + pre +
                           "' is not supported (expected llama-bpe, qwen2, default or gpt-2)");
    }
    json merge_list = json::array();
    for (std::string_view m : *merges) merge_list.push_back(std::string(m));
    tj["model"] = {{"type", "BPE"},
                   {"vocab", std::move(vocab)},
                   {"merges", std::move(merge_list)},
                   {"byte_fallback", false},
                   {"ignore_merges", pre == "llama-bpe" || pre == "llama3"}};
    tj["normalizer"] = pre == "qwen2" ? json{{"type", "NFC"}} : json();
    tj["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            {{{"type", "Split"},
                              {"pattern", {{"Regex", regex}}},
                              {"behavior", "Isolated"},
                              {"invert", false}},
                             byte_level()}}};
    tj["decoder"] = byte_level();
  } else if (model == "llama") {
    std::vector<double> scores(tokens.size(), 0.0);
    if (f.has("tokenizer.ggml.scores")) {
      auto s = f.get_floats("tokenizer.ggml.scores");
      if (!s.ok()) return as_tok_error(s.status());
      if (s->size() != tokens.size()) {
        return tok_error(f, "tokenizer.ggml.scores",
                         std::to_string(s->size()) + " entries for " +
                             std::to_string(tokens.size()) + " tokens");
      }
      scores = *s;
    }
    MLXS_ASSIGN_OR_RETURN(const bool prefix, flag("tokenizer.ggml.add_space_prefix", true));
    json model_json = {{"type", "BPE"},
                       {"vocab", std::move(vocab)},
                       {"merges", merges_from_scores(tokens, scores, types)},
                       {"byte_fallback", true},
                       {"fuse_unk", true}};
    if (unk >= 0) model_json["unk_token"] = std::string(tokens[size_t(unk)]);
    tj["model"] = std::move(model_json);
    json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
    tj["normalizer"] =
        prefix ? json{{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}, replace}}}
               : replace;
    tj["pre_tokenizer"] = json();
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (prefix) {
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    }
    tj["decoder"] = {{"type", "Sequence"}, {"decoders", std::move(decoders)}};
  } else {
    return tok_error(f, "tokenizer.ggml.model",
                     "'" + model + "' is not supported (expected gpt2 or llama)");
  }
  tj["added_tokens"] = std::move(added);
  if (add_bos && bos >= 0) {
    const std::string b(tokens[size_t(bos)]);
    tj["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", b}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{b, {{"id", b}, {"ids", {bos}}, {"tokens", {b}}}}}}};
  } else {
    tj["post_processor"] = model == "gpt2" ? byte_level() : json();
  }

  json config = json::object();
  config["add_bos_token"] = add_bos;
  if (bos >= 0) config["bos_token"] = std::string(tokens[size_t(bos)]);
  if (eos >= 0) config["eos_token"] = std::string(tokens[size_t(eos)]);
  if (unk >= 0) config["unk_token"] = std::string(tokens[size_t(unk)]);
  if (pad >= 0) config["pad_token"] = std::string(tokens[size_t(pad)]);
  if (f.has("tokenizer.chat_template")) {
    auto t = f.get_string("tokenizer.chat_template");
    if (!t.ok()) return as_tok_error(t.status());
    config["chat_template"] = std::string(*t);
  }
  json eos_ids = json::array();
  for (int64_t id : {eos, eot, eom}) {
    if (id >= 0 && std::find(eos_ids.begin(), eos_ids.end(), json(id)) == eos_ids.end()) {
      eos_ids.push_back(id);
    }
  }
  GgufTokenizerFiles files;
  files.tokenizer_json = tj.dump(-1, ' ', false, json::error_handler_t::replace);
  files.config_json = config.dump(-1, ' ', false, json::error_handler_t::replace);
  if (!eos_ids.empty()) files.generation_json = json{{"eos_token_id", eos_ids}}.dump();
  return files;
}

Result<std::unique_ptr<Tokenizer>> gguf_tokenizer(const GgufFile& f) {
  MLXS_ASSIGN_OR_RETURN(GgufTokenizerFiles files, gguf_tokenizer_files(f));
  auto t = Tokenizer::from_json(files.tokenizer_json, files.config_json, files.generation_json);
  if (!t.ok()) {
    return error(ErrorCode::kTokenizerError,
                 f.path() + ": the tokenizer from its metadata: " + t.status().message());
  }
  return t;
}

}  // namespace mlxs
