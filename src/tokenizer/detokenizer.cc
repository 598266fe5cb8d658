#include "tokenizer/detokenizer.h"

#include <algorithm>
#include <span>

#include "tokenizer/unicode.h"

namespace mlxs {

std::string Detokenizer::decode_range(size_t begin, size_t end) const {
  return tokenizer_.decode(std::span<const int32_t>(ids_).subspan(begin, end - begin),
                           skip_special_);
}

size_t Detokenizer::resume_point(const std::string& all) const {
  if (all.size() >= emitted_.size() && all.compare(0, emitted_.size(), emitted_) == 0) {
    return emitted_.size();
  }
  // The text already sent cannot be taken back: continue after as many bytes of the new text,
  // moved forward to a character boundary.
  size_t at = std::min(emitted_.size(), all.size());
  while (at < all.size() && (static_cast<unsigned char>(all[at]) & 0xC0) == 0x80) ++at;
  return at;
}

std::string Detokenizer::add(int32_t id) {
  ids_.push_back(id);
  std::string prefix = decode_range(prefix_offset_, read_offset_);
  std::string full = decode_range(prefix_offset_, ids_.size());
  if (full.size() <= prefix.size() || tok::ends_with_replacement_char(full)) return "";
  std::string delta;
  if (full.compare(0, prefix.size(), prefix) == 0) {
    delta = full.substr(prefix.size());
    emitted_ += delta;
  } else {
    // The window's context changed the text before the new tokens (rare): fall back to the
    // whole decode, which is right by definition.
    std::string all = decode_range(0, ids_.size());
    const size_t from = resume_point(all);
    if (all.size() <= from) return "";
    delta = all.substr(from);
    emitted_ = std::move(all);
  }
  // The next window starts at the new tokens only when their own text is non-empty, so that the
  // first-token rules of the decoder (Strip, Metaspace) hit the same token in the window as in
  // the full text.
  if (!decode_range(read_offset_, ids_.size()).empty()) prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return delta;
}

std::string Detokenizer::finish() {
  std::string all = decode_range(0, ids_.size());
  const size_t from = resume_point(all);
  std::string rest = from < all.size() ? all.substr(from) : "";
  emitted_ = std::move(all);
  read_offset_ = ids_.size();
  return rest;
}

}  // namespace mlxs
