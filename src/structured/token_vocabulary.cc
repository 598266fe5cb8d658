#include "structured/token_vocabulary.h"

#include <algorithm>
#include <numeric>

#include "tokenizer/tokenizer.h"

namespace mlxs::structured {

VocabularyImpl::VocabularyImpl(std::vector<std::string> token_bytes, std::vector<bool> special,
                               std::vector<int32_t> eos_ids)
    : bytes_(std::move(token_bytes)) {
  special.resize(bytes_.size(), false);
  for (int32_t id : eos_ids) {
    if (id >= 0 && static_cast<size_t>(id) < bytes_.size()) eos_ids_.push_back(id);
  }
  special_ = special;
  for (int32_t id : eos_ids_) special_[id] = false;
  std::vector<int32_t> order;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    bool eos =
        std::find(eos_ids_.begin(), eos_ids_.end(), static_cast<int32_t>(id)) != eos_ids_.end();
    if (!special[id] && !eos && !bytes_[id].empty()) order.push_back(static_cast<int32_t>(id));
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return bytes_[a] < bytes_[b]; });
  // Sorted strings give the preorder: each one adds nodes for the bytes past its common prefix
  // with the previous one; a node's subtree closes when a shallower node opens.
  std::vector<uint32_t> open;  // the path of the last token, node ids by depth - 1
  const std::string* prev = nullptr;
  auto close_to = [&](size_t depth) {
    while (open.size() > depth) {
      trie_.subtree_end[open.back()] = static_cast<uint32_t>(trie_.byte.size());
      open.pop_back();
    }
  };
  for (int32_t id : order) {
    const std::string& s = bytes_[id];
    size_t common = 0;
    if (prev != nullptr) {
      size_t limit = std::min(prev->size(), s.size());
      while (common < limit && (*prev)[common] == s[common]) ++common;
    }
    close_to(common);
    for (size_t d = common; d < s.size(); ++d) {
      open.push_back(static_cast<uint32_t>(trie_.byte.size()));
      trie_.byte.push_back(static_cast<uint8_t>(s[d]));
      trie_.depth.push_back(static_cast<uint16_t>(std::min<size_t>(d + 1, 65535)));
      trie_.subtree_end.push_back(0);
      trie_.first_token.push_back(static_cast<uint32_t>(trie_.token_ids.size()));
    }
    trie_.token_ids.push_back(id);
    max_token_bytes_ = std::max(max_token_bytes_, static_cast<int>(s.size()));
    prev = &s;
  }
  close_to(0);
  trie_.first_token.push_back(static_cast<uint32_t>(trie_.token_ids.size()));
  // Children come after their parent: one backward pass settles every subtree.
  size_t n = trie_.num_nodes();
  std::vector<int> height(n, 0);  // -1: a byte below is not plain
  for (size_t i = n; i-- > 0;) {
    for (uint32_t c = static_cast<uint32_t>(i) + 1; c < trie_.subtree_end[i];
         c = trie_.subtree_end[c]) {
      if (height[c] < 0 || !is_plain_byte(trie_.byte[c])) {
        height[i] = -1;
        break;
      }
      height[i] = std::max(height[i], height[c] + 1);
    }
  }
  trie_.plain_height.resize(n);
  for (size_t i = 0; i < n; ++i)
    trie_.plain_height[i] = static_cast<uint8_t>(height[i] > 255 ? 0 : std::max(0, height[i]));
}

std::shared_ptr<const TokenVocabulary> TokenVocabulary::create(std::vector<std::string> token_bytes,
                                                               std::vector<bool> special,
                                                               std::vector<int32_t> eos_ids) {
  return std::make_shared<VocabularyImpl>(std::move(token_bytes), std::move(special),
                                          std::move(eos_ids));
}

std::shared_ptr<const TokenVocabulary> TokenVocabulary::from_tokenizer(const Tokenizer& tokenizer) {
  size_t n = tokenizer.vocab_size();
  std::vector<std::string> bytes(n);
  std::vector<bool> special(n);
  for (size_t id = 0; id < n; ++id) {
    bytes[id] = tokenizer.token_bytes(static_cast<int32_t>(id));
    special[id] = tokenizer.is_special(static_cast<int32_t>(id));
  }
  return create(std::move(bytes), std::move(special), tokenizer.eos_ids());
}

}  // namespace mlxs::structured
