// Incremental detokenizer for streaming: feed token ids one at a time, get text deltas.
//
// Contract: every delta is valid UTF-8 (never half a character); a trailing incomplete byte
// sequence is held back until a later token completes it or finish() is called; and
// concat(all deltas of add()) + finish() == tokenizer.decode(all ids, skip_special_tokens)
// whenever later ids never change the text of earlier ones. They can only through invalid UTF-8:
// byte-fallback tokens whose bytes turn out invalid decode as one U+FFFD per byte, so a "~"
// already sent may become a U+FFFD. Text already sent cannot be taken back; the stream then
// continues after as many bytes of the new text, and nothing after the change is lost (it used
// to stop the stream: every later delta and finish() were empty).
// The SentencePiece leading-space rule (Strip / Metaspace decoders act on the first token only)
// holds because every window is decoded together with the token that precedes the new ones.
// Not thread-safe (one per stream); the Tokenizer must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace mlxs {

class Detokenizer {
 public:
  explicit Detokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

  // Appends `id` and returns the text it completes (possibly "").
  std::string add(int32_t id);
  // Returns whatever is still held back (incomplete UTF-8 becomes U+FFFD, as decode() does).
  std::string finish();
  // All ids fed so far.
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  std::string decode_range(size_t begin, size_t end) const;
  // Where in `all` (the decode of every id) the next delta starts: after emitted_, or, when
  // `all` no longer starts with it, after as many bytes, at a character boundary.
  size_t resume_point(const std::string& all) const;

  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // window start: the tokens already emitted that give context
  size_t read_offset_ = 0;    // first token whose text has not been emitted
  std::string emitted_;       // everything returned so far (for the rare fallback path)
};

}  // namespace mlxs
