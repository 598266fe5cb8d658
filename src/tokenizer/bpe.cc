#include "tokenizer/bpe.h"

#include <fmt/format.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>

#include "tokenizer/unicode.h"
#include "util/json_int.h"
#include "util/vocab_limits.h"

namespace mlxs::tok {

namespace {

using json = nlohmann::json;

Status model_error(const std::string& msg) {
  return error(ErrorCode::kTokenizerError, "tokenizer.json model (BPE): " + msg);
}

inline uint64_t merge_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

inline size_t merge_slot(uint64_t key, int shift) {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
}

bool non_empty_string(const json& j, const char* field) {
  return j.contains(field) && j[field].is_string() && !j[field].get<std::string>().empty();
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::from_json(const json& j) {
  if (!j.is_object() || j.value("type", std::string("BPE")) != "BPE") {
    return error(ErrorCode::kTokenizerError,
                 "tokenizer.json model type '" +
                     (j.is_object() ? j.value("type", std::string("?")) : std::string("?")) +
                     "' is not supported (only BPE)");
  }
  if (j.contains("dropout") && j["dropout"].is_number() && j["dropout"].get<double>() > 0) {
    return model_error(fmt::format("dropout {} is not supported (encoding would be random)",
                                   j["dropout"].get<double>()));
  }
  if (non_empty_string(j, "continuing_subword_prefix") ||
      non_empty_string(j, "end_of_word_suffix")) {
    return model_error("continuing_subword_prefix / end_of_word_suffix are not supported");
  }
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  BpeModel& m = *model;
  if (!j.contains("vocab") || !j["vocab"].is_object())
    return model_error("vocab must be an object");
  const json& vocab = j["vocab"];
  m.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    auto checked = json_int_in(it.value(), 0, kMaxTokenId);
    if (!checked) {
      return model_error("vocab id of '" + it.key() + "' must be an integer in [0, " +
                         std::to_string(kMaxTokenId) + "], got " + it.value().dump());
    }
    auto id = int32_t(*checked);
    m.vocab_.emplace(it.key(), id);
    if (static_cast<size_t>(id) >= m.id_to_token_.size()) m.id_to_token_.resize(id + 1);
    m.id_to_token_[id] = it.key();
  }
  m.fuse_unk_ = j.value("fuse_unk", false);
  m.byte_fallback_ = j.value("byte_fallback", false);
  m.ignore_merges_ = j.value("ignore_merges", false);
  if (j.contains("unk_token") && j["unk_token"].is_string()) {
    m.unk_id_ = m.token_to_id(j["unk_token"].get<std::string>());
    if (m.unk_id_ < 0)
      return model_error("unk_token '" + j["unk_token"].get<std::string>() +
                         "' is not in the vocab");
  }
  m.bmp_ids_.assign(0x10000, -1);
  for (const auto& [token, id] : m.vocab_) {
    int len;
    if (!token.empty() && token.size() <= 3) {
      uint32_t cp = decode_utf8(token, 0, &len);
      if (static_cast<size_t>(len) == token.size()) m.bmp_ids_[cp] = id;
    }
  }
  m.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) m.byte_ids_[b] = m.token_to_id(fmt::format("<0x{:02X}>", b));

  const json& merges = j.value("merges", json::array());
  if (!merges.is_array()) return model_error("merges must be an array");
  size_t capacity = 1;
  while (capacity < merges.size() * 2 + 2) capacity <<= 1;
  m.merges_.assign(capacity, MergeEntry{kEmpty, 0, 0});
  m.merge_shift_ = 64 - __builtin_ctzll(capacity);
  int32_t rank = 0;
  for (const auto& merge : merges) {
    if (merge.is_string()) {
      const std::string& s = merge.get_ref<const std::string&>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return model_error(
            fmt::format("merge {} '{}' is not two tokens separated by one space", rank, s));
      }
      MLXS_RETURN_IF_ERROR(m.add_merge(s.substr(0, space), s.substr(space + 1), rank));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      MLXS_RETURN_IF_ERROR(m.add_merge(merge[0], merge[1], rank));
    } else {
      return model_error(
          fmt::format("merge {} must be \"a b\" or [\"a\", \"b\"], got {}", rank, merge.dump()));
    }
    ++rank;
  }
  return model;
}

Status BpeModel::add_merge(const std::string& left, const std::string& right, int32_t rank) {
  int32_t a = token_to_id(left), b = token_to_id(right), c = token_to_id(left + right);
  if (a < 0 || b < 0 || c < 0) {
    return model_error(
        fmt::format("merge {} '{} {}' uses a token that is not in the vocab", rank, left, right));
  }
  uint64_t key = merge_key(a, b);
  size_t mask = merges_.size() - 1;
  for (size_t slot = merge_slot(key, merge_shift_);; slot = (slot + 1) & mask) {
    if (merges_[slot].key == key) return {};  // a duplicate merge keeps its first (lowest) rank
    if (merges_[slot].key == kEmpty) {
      merges_[slot] = MergeEntry{key, rank, c};
      return {};
    }
  }
}

const BpeModel::MergeEntry* BpeModel::find_merge(int32_t left, int32_t right) const {
  uint64_t key = merge_key(left, right);
  size_t mask = merges_.size() - 1;
  for (size_t slot = merge_slot(key, merge_shift_);; slot = (slot + 1) & mask) {
    const MergeEntry& e = merges_[slot];
    if (e.key == key) return &e;
    if (e.key == kEmpty) return nullptr;
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return nullptr;
  const std::string& s = id_to_token_[id];
  if (s.empty() && token_to_id(s) != id) return nullptr;  // a hole in the id range
  return &s;
}

int32_t BpeModel::char_id(uint32_t cp, std::string_view utf8) const {
  if (cp < 0x10000) return bmp_ids_[cp];
  return token_to_id(utf8);
}

// One symbol per character; unknown characters become their "<0xXX>" bytes (byte_fallback) or
// the unk token (consecutive ones fused when fuse_unk), or vanish when there is no unk token.
void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
  bool last_unk = false;
  for (size_t i = 0; i < word.size();) {
    int len;
    uint32_t cp = decode_utf8(word, i, &len);
    int32_t id = char_id(cp, word.substr(i, len));
    if (id >= 0) {
      ids.push_back(id);
      last_unk = false;
    } else {
      bool bytes_ok = byte_fallback_;
      for (int k = 0; bytes_ok && k < len; ++k)
        bytes_ok = byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (bytes_ok) {
        for (int k = 0; k < len; ++k) ids.push_back(byte_ids_[static_cast<uint8_t>(word[i + k])]);
        last_unk = false;
      } else if (unk_id_ >= 0) {
        if (!(fuse_unk_ && last_unk)) ids.push_back(unk_id_);
        last_unk = true;
      }
    }
    i += len;
  }
}

// Applies merges, lowest rank first and leftmost on ties, over a linked list of symbols.
void BpeModel::merge_symbols(std::vector<int32_t>& ids) const {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& o) const {  // "less" = lower priority (max-heap)
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<int32_t> next(n), prev(n);
  for (int i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  std::vector<Candidate> storage;
  storage.reserve(n);
  std::priority_queue<Candidate> heap(std::less<Candidate>(), std::move(storage));
  for (int i = 0; i + 1 < n; ++i) {
    if (const MergeEntry* m = find_merge(ids[i], ids[i + 1])) heap.push({m->rank, i, m->new_id});
  }
  constexpr int32_t kRemoved = -1;
  while (!heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    int pos = top.pos;
    if (ids[pos] == kRemoved || next[pos] < 0) continue;
    int right = next[pos];
    const MergeEntry* m = find_merge(ids[pos], ids[right]);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
    ids[pos] = top.new_id;
    ids[right] = kRemoved;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) {
      if (const MergeEntry* l = find_merge(ids[prev[pos]], ids[pos]))
        heap.push({l->rank, prev[pos], l->new_id});
    }
    if (next[pos] >= 0) {
      if (const MergeEntry* r = find_merge(ids[pos], ids[next[pos]]))
        heap.push({r->rank, pos, r->new_id});
    }
  }
  size_t out = 0;
  for (int i = 0; i < n; ++i) {
    if (ids[i] != kRemoved) ids[out++] = ids[i];
  }
  ids.resize(out);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  // The cache (small, hot) is asked before the vocab (ignore_merges); it holds either result.
  bool cacheable = word.size() < kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  int32_t whole = ignore_merges_ ? token_to_id(word) : -1;
  if (whole >= 0) {
    ids.push_back(whole);
  } else {
    ids.reserve(word.size());
    initial_symbols(word, ids);
    merge_symbols(ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::unique_lock lock(cache_mutex_, std::try_to_lock);
    if (lock.owns_lock() && cache_.size() < kCacheCapacity) cache_.emplace(word, std::move(ids));
  }
}

}  // namespace mlxs::tok
