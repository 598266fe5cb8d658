// Matcher::create (grammar.h) with a chosen cut depth for the mask cache (mask_cache.h): the
// number of top nodes of each stack that key a cached mask. Matcher::create uses
// MaskCache::kDepth; tests pass 1 or 2 so that shallow grammars exercise the context-node path.
#pragma once

#include <memory>

#include "structured/grammar.h"

namespace mlxs::structured {

std::unique_ptr<Matcher> create_matcher(GrammarPtr grammar,
                                        std::shared_ptr<const TokenVocabulary> vocab,
                                        int cut_depth);

}  // namespace mlxs::structured
