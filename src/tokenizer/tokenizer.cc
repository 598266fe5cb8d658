#include "tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/check.h"
#include "util/json_depth.h"
#include "util/json_int.h"
#include "util/model_files.h"
#include "util/vocab_limits.h"

namespace mlxs {

namespace {

using json = nlohmann::json;

// Optional files (tokenizer_config.json, generation_config.json) are "" when absent.
Result<std::string> read_optional(const std::string& dir, const char* name,
                                  const ModelFileAccess& access) {
  if (!model_file_exists(dir, name)) return std::string();
  return read_model_file(dir, name, access);
}

Result<json> parse_json(std::string_view text, const char* what) {
  std::string why;
  std::optional<json> j = parse_model_json(text, &why);
  if (!j) return error(ErrorCode::kTokenizerError, std::string(what) + " " + why);
  return std::move(*j);
}

// bos_token / eos_token: a string, an AddedToken object {"content": ...}, or null.
std::string token_field(const json& config, const char* field) {
  if (!config.contains(field)) return "";
  const json& v = config[field];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"];
  return "";
}

Result<tok::AddedToken> parse_added_token(const json& j) {
  tok::AddedToken t;
  if (!j.is_object() || !j.contains("content") || !j["content"].is_string() || !j.contains("id") ||
      !json_int_in(j["id"], 0, kMaxTokenId)) {
    return error(ErrorCode::kTokenizerError,
                 "tokenizer.json added_tokens: each entry needs content and an id in [0, " +
                     std::to_string(kMaxTokenId) + "], got " + j.dump().substr(0, 200));
  }
  t.content = j["content"];
  t.id = int32_t(*json_int_in(j["id"], 0, kMaxTokenId));
  t.special = j.value("special", false);
  t.single_word = j.value("single_word", false);
  t.lstrip = j.value("lstrip", false);
  t.rstrip = j.value("rstrip", false);
  t.normalized = j.value("normalized", !t.special);
  return t;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& dir,
                                                   const ModelFileAccess& access) {
  auto text = read_model_file(dir, "tokenizer.json", access);
  if (!text.ok()) {
    return error(text.status().code(), text.status().code() == ErrorCode::kNotFound
                                           ? "cannot open " + dir + "/tokenizer.json"
                                           : text.status().message());
  }
  MLXS_ASSIGN_OR_RETURN(std::string config, read_optional(dir, "tokenizer_config.json", access));
  MLXS_ASSIGN_OR_RETURN(std::string generation,
                        read_optional(dir, "generation_config.json", access));
  auto result = from_json(*text, config, generation);
  if (!result.ok()) {
    return error(result.status().code(), dir + ": " + result.status().message());
  }
  return result;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json,
                                                        std::string_view config_json,
                                                        std::string_view generation_json) {
  MLXS_ASSIGN_OR_RETURN(json j, parse_json(tokenizer_json, "tokenizer.json"));
  if (!j.is_object()) return error(ErrorCode::kTokenizerError, "tokenizer.json must be an object");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  MLXS_ASSIGN_OR_RETURN(t->normalizer_, tok::make_normalizer(j.value("normalizer", json())));
  MLXS_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                        tok::make_pre_tokenizer(j.value("pre_tokenizer", json())));
  MLXS_ASSIGN_OR_RETURN(t->model_, tok::BpeModel::from_json(j.value("model", json())));
  MLXS_ASSIGN_OR_RETURN(t->decoder_, tok::make_decoder(j.value("decoder", json())));
  MLXS_ASSIGN_OR_RETURN(t->post_processor_,
                        tok::make_post_processor(j.value("post_processor", json())));

  std::vector<tok::AddedToken> added;
  std::vector<std::string> normalized_contents;
  for (const auto& entry : j.value("added_tokens", json::array())) {
    MLXS_ASSIGN_OR_RETURN(auto token, parse_added_token(entry));
    if (token.content.empty()) continue;
    normalized_contents.push_back(t->normalizer_ && token.normalized
                                      ? t->normalizer_->normalize(token.content)
                                      : token.content);
    added.push_back(std::move(token));
  }
  size_t size = t->model_->vocab_size();
  for (const auto& a : added) size = std::max(size, static_cast<size_t>(a.id) + 1);
  t->id_to_token_.resize(size);
  t->special_.assign(size, false);
  for (size_t id = 0; id < t->model_->vocab_size(); ++id) {
    if (const std::string* s = t->model_->id_to_token(static_cast<int32_t>(id)))
      t->id_to_token_[id] = *s;
  }
  for (const auto& a : added) {
    t->id_to_token_[a.id] = a.content;
    t->special_[a.id] = a.special;
    t->added_ids_.emplace(a.content, a.id);
  }
  t->added_ = std::make_unique<tok::AddedVocab>(std::move(added), normalized_contents);
  MLXS_RETURN_IF_ERROR(t->parse_config(config_json, generation_json));
  return t;
}

Status Tokenizer::parse_config(std::string_view config_json, std::string_view generation_json) {
  std::vector<int32_t> prefix =
      post_processor_ ? post_processor_->prefix_ids() : std::vector<int32_t>{};
  json config = json::object();
  if (!config_json.empty()) {
    MLXS_ASSIGN_OR_RETURN(config, parse_json(config_json, "tokenizer_config.json"));
  }
  std::string bos = token_field(config, "bos_token");
  bos_id_ = bos.empty() ? (prefix.empty() ? -1 : prefix[0]) : token_to_id(bos);
  std::string eos = token_field(config, "eos_token");
  if (!eos.empty() && token_to_id(eos) >= 0) eos_ids_.push_back(token_to_id(eos));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    add_bos_token_ = config["add_bos_token"];
  } else {
    add_bos_token_ = !prefix.empty() && prefix[0] == bos_id_;
  }
  const json& tmpl = config.value("chat_template", json());
  if (tmpl.is_string()) {
    chat_template_ = tmpl;
    chat_templates_["default"] = chat_template_;
  } else if (tmpl.is_array()) {
    for (const auto& entry : tmpl) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
          !entry["name"].is_string() || !entry["template"].is_string()) {
        return error(ErrorCode::kTokenizerError,
                     "tokenizer_config.json chat_template list entries need name and template");
      }
      chat_templates_[entry["name"]] = entry["template"];
    }
    auto it = chat_templates_.find("default");
    if (it != chat_templates_.end()) {
      chat_template_ = it->second;
    } else if (!tmpl.empty()) {
      chat_template_ = tmpl[0]["template"];
    }
  }
  if (!generation_json.empty()) {
    MLXS_ASSIGN_OR_RETURN(json gen, parse_json(generation_json, "generation_config.json"));
    json ids = gen.value("eos_token_id", json());
    if (ids.is_number_integer()) ids = json::array({ids});
    if (ids.is_array()) {
      for (const auto& id : ids) {
        auto checked = json_int_in(id, 0, kMaxTokenId);
        if (!checked) continue;
        auto v = int32_t(*checked);
        if (std::find(eos_ids_.begin(), eos_ids_.end(), v) == eos_ids_.end()) eos_ids_.push_back(v);
      }
    }
  }
  return {};
}

Status Tokenizer::encode_into(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<tok::Piece> pieces;
  if (tok::valid_utf8_prefix(text) == text.size()) {
    pieces.push_back({std::string(text), -1, true});
  } else {
    pieces.push_back({tok::utf8_lossy(text), -1, true});
  }
  added_->split(pieces, /*normalized=*/false);
  if (normalizer_) {
    for (auto& p : pieces) {
      if (p.added_id < 0) p.text = normalizer_->normalize(std::move(p.text));
    }
  }
  added_->split(pieces, /*normalized=*/true);
  if (pre_tokenizer_) MLXS_RETURN_IF_ERROR(pre_tokenizer_->pre_tokenize(pieces));
  for (const auto& p : pieces) {
    if (p.added_id >= 0) {
      ids.push_back(p.added_id);
    } else {
      model_->encode_word(p.text, ids);
    }
  }
  return {};
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text,
                                               bool add_special_tokens) const {
  std::vector<int32_t> ids;
  MLXS_RETURN_IF_ERROR(encode_into(text, ids));
  if (add_special_tokens && post_processor_) post_processor_->process(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) continue;
    if (skip_special_tokens && special_[id]) continue;
    const std::string& s = id_to_token_[id];
    if (s.empty()) continue;
    tokens.push_back(s);
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  decoder_->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  auto it = added_ids_.find(token);
  if (it != added_ids_.end()) return it->second;
  return model_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return "";
  return id_to_token_[id];
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return "";
  const std::string& s = id_to_token_[id];
  auto added = added_ids_.find(s);
  if (!decoder_ || (added != added_ids_.end() && added->second == id)) return s;
  std::vector<std::string> tokens{s};
  decoder_->raw_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id];
}

}  // namespace mlxs
