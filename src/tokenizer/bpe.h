// The BPE model of tokenizer.json ("model": {"type": "BPE"}): vocab, merges (both "a b" strings and
// ["a", "b"] pairs), byte_fallback, unk_token with fuse_unk, ignore_merges. Encodes one
// pre-tokenized word at a time with Hugging Face's merge order (lowest rank first, leftmost on
// ties), through a bounded word cache. Immutable after load except the cache; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Parses the "model" object; errors name the field (unknown merge token, dropout, ...).
  static Result<std::unique_ptr<BpeModel>> from_json(const nlohmann::json& model);

  // Appends the ids of one word (a pre-tokenizer piece, valid UTF-8) to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // -1 when `token` is not in the vocab.
  int32_t token_to_id(std::string_view token) const;
  // nullptr when `id` is not in the vocab.
  const std::string* id_to_token(int32_t id) const;
  // Largest id + 1.
  size_t vocab_size() const { return id_to_token_.size(); }

 private:
  struct MergeEntry {
    uint64_t key;  // left id << 32 | right id; kEmpty marks a free slot
    int32_t rank;
    int32_t new_id;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  Status add_merge(const std::string& left, const std::string& right, int32_t rank);
  const MergeEntry* find_merge(int32_t left, int32_t right) const;
  int32_t char_id(uint32_t cp, std::string_view utf8) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_symbols(std::vector<int32_t>& ids) const;

  VocabMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<int32_t> bmp_ids_;    // code point < 0x10000 -> id of that one-char token, or -1
  std::vector<int32_t> byte_ids_;   // byte -> id of "<0xXX>" (byte_fallback), or -1
  std::vector<MergeEntry> merges_;  // open addressing, size a power of two
  int merge_shift_ = 64;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;

  static constexpr size_t kCacheCapacity = 1 << 17;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace mlxs::tok
