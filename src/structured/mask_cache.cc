#include "structured/mask_cache.h"

#include <cstring>

#include "structured/compiled_grammar.h"

namespace mlxs::structured {

std::string MaskCache::key(const std::vector<int32_t>& positions, bool cut) {
  std::string k(positions.size() * sizeof(int32_t) + 1, '\0');
  std::memcpy(k.data(), positions.data(), positions.size() * sizeof(int32_t));
  k.back() = cut ? 1 : 0;
  return k;
}

std::string MaskCache::state_key(int cut_depth,
                                 const std::vector<const std::string*>& sorted_keys) {
  std::string k(1, static_cast<char>(cut_depth));
  for (const std::string* key : sorted_keys) {
    uint32_t n = static_cast<uint32_t>(key->size());
    k.append(reinterpret_cast<const char*>(&n), sizeof(n));
    k += *key;
  }
  return k;
}

std::shared_ptr<const MaskEntry> MaskCache::find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second;
}

void MaskCache::insert(const std::string& key, std::shared_ptr<const MaskEntry> entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t bytes = entry->bytes() + key.size();
  if (bytes_ + bytes > kMaxBytes) return;
  if (entries_.emplace(key, std::move(entry)).second) bytes_ += bytes;
}

size_t MaskCache::num_entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

std::shared_ptr<MaskCache> Grammar::mask_cache(
    const std::shared_ptr<const TokenVocabulary>& vocab) const {
  std::lock_guard<std::mutex> lock(caches_mutex_);
  std::erase_if(caches_, [](const auto& c) { return c.first.expired(); });
  for (const auto& [v, cache] : caches_) {
    if (v.lock() == vocab) return cache;
  }
  caches_.emplace_back(vocab, std::make_shared<MaskCache>());
  return caches_.back().second;
}

}  // namespace mlxs::structured
