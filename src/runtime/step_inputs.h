// What a step can carry beyond text tokens, per sequence and per row. Three extensions have
// their interface here, with the plain path as their first user:
//  - speculative decoding: a sequence may carry k proposed tokens, verified in one forward; the
//    longest agreeing prefix is kept (accept_proposals());
//  - constrained decoding: a request may carry a TokenConstraint, whose bitmask of allowed
//    tokens is applied to its row's logits before sampling (a masked row is sampled on the host);
//  - non-text inputs: a prompt may carry embeddings (an image's) spliced over placeholder
//    positions; each step gets the part that falls in its new tokens (splices_in()).
// On the plain path proposals and splices are empty and no constraint is set. The model runs
// neither proposals nor splices yet: StepPipeline refuses a step that carries them, naming what it
// got.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mlxs/status.h"

namespace mlxs {

// Constrained decoding: a sequence's position in its constraint (a grammar: the engine adapts
// structured::Matcher). The pipeline asks for the allowed next tokens while the device computes
// the row's logits, and reports each drawn token. Used by the engine thread only.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets bit (id % 32) of words[id / 32] for each token `id` that may be drawn next; `words`
  // holds (V + 31) / 32 zeros on entry (V = the model's vocabulary rows).
  virtual void fill_allowed(std::span<uint32_t> words) = 0;
  // The token drawn under the last fill_allowed(); false when the constraint refuses it (a bug
  // of the constraint: its request fails).
  virtual bool accept(int32_t token) = 0;
  // Nothing may follow what was accepted: the sequence ends with its last token (reason stop).
  virtual bool is_complete() const = 0;
};

// Words of a bitmask over `num_tokens` tokens.
inline size_t bitmask_words(size_t num_tokens) {
  return (num_tokens + 31) / 32;
}

// Sets the logits of the tokens `words` forbids to -infinity, so sample() never draws them and
// logprobs are renormalised over the allowed ones. InvalidParams when it allows no token.
Status apply_token_bitmask(std::span<const uint32_t> words, std::span<float> logits);

// A non-text input (an image's embeddings) spliced into a prompt: the rows at positions
// [position, position + num_rows) take these embeddings instead of their tokens' (the prompt
// holds placeholder token ids there). data is [num_rows, hidden_size] f32. Open for when the
// model runs them: the prefix cache hashes token ids only, so two prompts with different
// images behind the same placeholder ids must not share cached blocks.
struct EmbeddingSplice {
  int position = 0;
  int num_rows = 0;
  std::vector<float> data;
};

// The part of `splices` (a prompt's, by increasing position) that falls in positions
// [begin, end): clipped, with positions relative to `begin` (chunked prefill may cut one
// across steps). hidden_size is the width of a row of data.
std::vector<EmbeddingSplice> splices_in(std::span<const EmbeddingSplice> splices, int begin,
                                        int end, int hidden_size);

// Speculative decoding: the number of proposals accepted, given the tokens sampled after the
// last known token and after each proposal (verified.size() == proposals.size() + 1): the
// longest prefix with proposals[i] == verified[i]. The sequence's new tokens are then
// verified[0 .. accepted], the accepted proposals followed by one token of the model's own.
// With no proposals that is verified[0]: the plain step.
int accept_proposals(std::span<const int32_t> proposals, std::span<const int32_t> verified);

// What one scheduled sequence brings to a step beyond its tokens; empty on the plain path.
struct SeqStepInputs {
  std::vector<int32_t> proposals;           // k proposed next tokens (speculative decoding)
  std::vector<EmbeddingSplice> embeddings;  // splices_in() of its prompt for this step's tokens
  bool empty() const { return proposals.empty() && embeddings.empty(); }
};

}  // namespace mlxs
