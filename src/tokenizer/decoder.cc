#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace mlxs::tok {

namespace {

using json = nlohmann::json;

const char* const kReplacementChar = "\xEF\xBF\xBD";

// GPT-2 characters back to bytes (a token with a foreign character keeps its UTF-8 bytes), then
// one lossy UTF-8 decode of everything.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    raw_chain(tokens);
    tokens[0] = utf8_lossy(tokens[0]);
  }
  void raw_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      size_t mark = bytes.size();
      bool ok = true;
      for (size_t i = 0; i < t.size();) {
        int len;
        int b = char_to_byte(decode_utf8(t, i, &len));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes += static_cast<char>(b);
        i += len;
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, std::move(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::string out;
      size_t last = 0;
      (void)pattern_->find_all(t, [&](size_t s, size_t e) {
        out.append(t, last, s - last);
        out += content_;
        last = e;
      });
      if (last == 0 && out.empty()) continue;
      out.append(t, last, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

// "<0xXX>" tokens become bytes; a run of them that is not valid UTF-8 becomes one U+FFFD per byte.
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override { chain(tokens, false); }
  void raw_chain(std::vector<std::string>& tokens) const override { chain(tokens, true); }

 private:
  static void chain(std::vector<std::string>& tokens, bool raw) {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (raw || valid_utf8_prefix(bytes) == bytes.size()) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < bytes.size(); ++i) out.push_back(kReplacementChar);
      }
      bytes.clear();
    };
    for (auto& t : tokens) {
      int byte = parse_byte(t);
      if (byte >= 0) {
        bytes += static_cast<char>(byte);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_byte(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, int start, int stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void raw_chain(std::vector<std::string>&) const override {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (content_.empty()) return;
    for (auto& t : tokens) {
      size_t begin = 0, end = t.size();
      for (int i = 0; i < start_ && t.compare(begin, content_.size(), content_) == 0; ++i) {
        begin += content_.size();
      }
      for (int i = 0; i < stop_ && end >= begin + content_.size() &&
                      t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  int start_, stop_;
};

// The replacement character becomes a space, except in the first token where it is dropped
// (unless prepend_scheme is "never").
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_first)
      : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override { chain(tokens, drop_first_); }
  void raw_chain(std::vector<std::string>& tokens) const override { chain(tokens, false); }

 private:
  void chain(std::vector<std::string>& tokens, bool drop_first) const {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string out;
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && drop_first)) out += ' ';
          pos += replacement_.size();
        } else {
          out += t[pos++];
        }
      }
      t = std::move(out);
    }
  }

  std::string replacement_;
  bool drop_first_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }
  void raw_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->raw_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

Result<std::unique_ptr<Decoder>> make_decoder(const json& j) {
  if (j.is_null()) return std::unique_ptr<Decoder>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(ErrorCode::kTokenizerError,
                 "decoder must be an object with a type, got " + j.dump().substr(0, 200));
  }
  std::string type = j["type"];
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Replace") {
    MLXS_ASSIGN_OR_RETURN(auto pattern,
                          Pattern::from_json(j.value("pattern", json()), "decoder Replace"));
    return std::unique_ptr<Decoder>(
        new ReplaceDecoder(std::move(pattern), j.value("content", std::string())));
  }
  if (type == "Strip") {
    return std::unique_ptr<Decoder>(new StripDecoder(j.value("content", std::string(" ")),
                                                     j.value("start", 0), j.value("stop", 0)));
  }
  if (type == "Metaspace") {
    std::string scheme = j.value("prepend_scheme", std::string("always"));
    bool never = scheme == "never" ||
                 (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() &&
                  !j["add_prefix_space"].get<bool>());
    return std::unique_ptr<Decoder>(
        new MetaspaceDecoder(j.value("replacement", std::string("\xE2\x96\x81")), !never));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& sub : j.value("decoders", json::array())) {
      MLXS_ASSIGN_OR_RETURN(auto part, make_decoder(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(parts)));
  }
  return error(ErrorCode::kTokenizerError,
               "decoder type '" + type + "' is not supported by this tokenizer");
}

}  // namespace mlxs::tok
