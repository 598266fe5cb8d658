#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace mlxs::tok {

namespace {

using json = nlohmann::json;

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  std::string normalize(std::string text) const override { return normalize_unicode(text, form_); }

 private:
  NormalForm form_;
};

class Lowercase : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return lowercase(text); }
};

// Prepends `prefix` to non-empty text.
class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prefix_ + text;
  }

 private:
  std::string prefix_;
};

class Replace : public Normalizer {
 public:
  Replace(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string text) const override {
    std::string out;
    size_t last = 0;
    (void)pattern_->find_all(text, [&](size_t start, size_t end) {
      out.append(text, last, start - last);
      out += content_;
      last = end;
    });
    if (last == 0) return text;
    out.append(text, last, std::string::npos);
    return out;
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

// Strips Unicode whitespace on the left and/or right.
class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        int len;
        if (!is_whitespace(decode_utf8(text, begin, &len))) break;
        begin += len;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t k = end - 1;
        while (k > begin && (static_cast<uint8_t>(text[k]) & 0xC0) == 0x80) --k;
        int len;
        if (!is_whitespace(decode_utf8(text, k, &len))) break;
        end = k;
      }
    }
    return text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

// Removes non-spacing marks (category Mn), as HF StripAccents does (use after NFD).
class StripAccents : public Normalizer {
 public:
  std::string normalize(std::string text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      int len;
      uint32_t cp = decode_utf8(text, i, &len);
      if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) != UTF8PROC_CATEGORY_MN) {
        out.append(text, i, len);
      }
      i += len;
    }
    return out;
  }
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto& p : parts_) text = p->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

Status unsupported(const std::string& type) {
  return error(ErrorCode::kTokenizerError,
               "normalizer type '" + type + "' is not supported by this tokenizer");
}

}  // namespace

Result<std::unique_ptr<Normalizer>> make_normalizer(const json& j) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(ErrorCode::kTokenizerError,
                 "normalizer must be an object with a type, got " + j.dump().substr(0, 200));
  }
  std::string type = j["type"];
  if (type == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(NormalForm::kNFC));
  if (type == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(NormalForm::kNFD));
  if (type == "NFKC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(NormalForm::kNFKC));
  if (type == "NFKD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(NormalForm::kNFKD));
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new Lowercase());
  if (type == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccents());
  if (type == "Prepend") {
    return std::unique_ptr<Normalizer>(new Prepend(j.value("prepend", std::string())));
  }
  if (type == "Strip") {
    return std::unique_ptr<Normalizer>(
        new Strip(j.value("strip_left", true), j.value("strip_right", true)));
  }
  if (type == "Replace") {
    MLXS_ASSIGN_OR_RETURN(auto pattern,
                          Pattern::from_json(j.value("pattern", json()), "normalizer Replace"));
    return std::unique_ptr<Normalizer>(
        new Replace(std::move(pattern), j.value("content", std::string())));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& sub : j.value("normalizers", json::array())) {
      MLXS_ASSIGN_OR_RETURN(auto part, make_normalizer(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return unsupported(type);
}

}  // namespace mlxs::tok
