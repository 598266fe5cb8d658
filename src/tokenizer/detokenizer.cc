#include "tokenizer/detokenizer.h"

#include <span>

#include "tokenizer/unicode.h"

namespace mlxs {

std::string Detokenizer::decode_range(size_t begin, size_t end) const {
  return tokenizer_.decode(std::span<const int32_t>(ids_).subspan(begin, end - begin),
                           skip_special_);
}

std::string Detokenizer::add(int32_t id) {
  ids_.push_back(id);
  std::string prefix = decode_range(prefix_offset_, read_offset_);
  std::string full = decode_range(prefix_offset_, ids_.size());
  if (full.size() <= prefix.size() || tok::ends_with_replacement_char(full)) return "";
  std::string delta;
  if (full.compare(0, prefix.size(), prefix) == 0) {
    delta = full.substr(prefix.size());
  } else {
    // The window's context changed the text before the new tokens (rare): fall back to the
    // whole decode, which is right by definition.
    std::string all = decode_range(0, ids_.size());
    if (all.size() <= emitted_.size() || all.compare(0, emitted_.size(), emitted_) != 0) return "";
    delta = all.substr(emitted_.size());
  }
  // The next window starts at the new tokens only when their own text is non-empty, so that the
  // first-token rules of the decoder (Strip, Metaspace) hit the same token in the window as in
  // the full text.
  if (!decode_range(read_offset_, ids_.size()).empty()) prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  emitted_ += delta;
  return delta;
}

std::string Detokenizer::finish() {
  std::string all = decode_range(0, ids_.size());
  if (all.size() < emitted_.size() || all.compare(0, emitted_.size(), emitted_) != 0) return "";
  std::string rest = all.substr(emitted_.size());
  emitted_ = std::move(all);
  read_offset_ = ids_.size();
  return rest;
}

}  // namespace mlxs
