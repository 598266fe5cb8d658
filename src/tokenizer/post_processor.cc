#include "tokenizer/post_processor.h"

#include <nlohmann/json.hpp>

#include "util/json_int.h"
#include "util/vocab_limits.h"

namespace mlxs::tok {

namespace {

using json = nlohmann::json;

Status pp_error(const std::string& msg) {
  return error(ErrorCode::kTokenizerError, "post_processor " + msg);
}

// Fixed ids before and after the sequence.
class Wrap : public PostProcessor {
 public:
  Wrap(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }
  std::vector<int32_t> prefix_ids() const override { return before_; }

 private:
  std::vector<int32_t> before_, after_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }
  std::vector<int32_t> prefix_ids() const override {
    std::vector<int32_t> out;
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) {
      auto ids = (*it)->prefix_ids();
      out.insert(out.begin(), ids.begin(), ids.end());
    }
    return out;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

Result<std::unique_ptr<PostProcessor>> make_template(const json& j) {
  const json& single = j.value("single", json::array());
  const json& specials = j.value("special_tokens", json::object());
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (const auto& item : single) {
    if (item.contains("Sequence")) {
      std::string which = item["Sequence"].value("id", std::string("A"));
      if (which != "A" || seen_sequence) {
        return pp_error("TemplateProcessing: single template must hold sequence A once, got " +
                        single.dump());
      }
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      std::string name = item["SpecialToken"].value("id", std::string());
      if (!specials.contains(name) || !specials[name].contains("ids")) {
        return pp_error("TemplateProcessing: special token '" + name +
                        "' is not in special_tokens");
      }
      auto& dest = seen_sequence ? after : before;
      for (const auto& id : specials[name]["ids"]) {
        auto checked = json_int_in(id, 0, kMaxTokenId);
        if (!checked)
          return pp_error("TemplateProcessing: special token '" + name +
                          "' has an id out of range");
        dest.push_back(int32_t(*checked));
      }
    } else {
      return pp_error("TemplateProcessing: unknown template piece " + item.dump());
    }
  }
  if (!seen_sequence) return pp_error("TemplateProcessing: single template lacks sequence A");
  return std::unique_ptr<PostProcessor>(new Wrap(std::move(before), std::move(after)));
}

// "cls": ["<s>", 0], "sep": ["</s>", 2].
Result<int32_t> pair_id(const json& j, const char* field, const std::string& type) {
  if (!j.contains(field) || !j[field].is_array() || j[field].size() != 2 ||
      !json_int_in(j[field][1], 0, kMaxTokenId)) {
    return pp_error(type + ": field '" + field + "' must be [token, id] with an id in [0, " +
                    std::to_string(kMaxTokenId) + "]");
  }
  return int32_t(*json_int_in(j[field][1], 0, kMaxTokenId));
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> make_post_processor(const json& j) {
  if (j.is_null()) return std::unique_ptr<PostProcessor>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return pp_error("must be an object with a type, got " + j.dump().substr(0, 200));
  }
  std::string type = j["type"];
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new Wrap({}, {}));
  if (type == "TemplateProcessing") return make_template(j);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    MLXS_ASSIGN_OR_RETURN(int32_t cls, pair_id(j, "cls", type));
    MLXS_ASSIGN_OR_RETURN(int32_t sep, pair_id(j, "sep", type));
    return std::unique_ptr<PostProcessor>(new Wrap({cls}, {sep}));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& sub : j.value("processors", json::array())) {
      MLXS_ASSIGN_OR_RETURN(auto part, make_post_processor(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessor(std::move(parts)));
  }
  return pp_error("type '" + type + "' is not supported by this tokenizer");
}

}  // namespace mlxs::tok
