#include "engine/kv_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

#include "util/check.h"

namespace mlxs {
namespace {

// The budget of rule 2 or 3 and the sentence that explains it.
std::pair<int64_t, std::string> budget_of(const KvPoolInputs& in) {
  if (in.device) {
    return {int64_t(in.memory_fraction * double(in.device->free_bytes)),
            fmt::format("kv_cache.memory_fraction {} of {} free on the device after the weights "
                        "and the largest step ({} total)",
                        in.memory_fraction, format_bytes(in.device->free_bytes),
                        format_bytes(in.device->total_bytes))};
  }
  if (in.cpu_memory_bytes > 0) return {in.cpu_memory_bytes, "kv_cache.cpu_memory_bytes"};
  return {std::min(in.host.total_bytes / 4, in.host.free_bytes / 2),
          fmt::format("kv_cache.cpu_memory_bytes 0: a quarter of {} of RAM, at most half of the "
                      "{} available after the weights",
                      format_bytes(in.host.total_bytes), format_bytes(in.host.free_bytes))};
}

}  // namespace

Result<KvPoolSize> size_kv_pool(const KvPoolInputs& in) {
  MLXS_CHECK(in.bytes_per_block > 0 && in.block_size > 0 && in.max_model_len > 0 &&
             in.max_num_seqs > 0);
  KvPoolSize out;
  std::tie(out.budget_bytes, out.basis) = budget_of(in);
  const int64_t blocks_per_seq = (int64_t(in.max_model_len) + in.block_size - 1) / in.block_size;
  const int64_t fit = std::max<int64_t>(0, out.budget_bytes) / in.bytes_per_block;
  if (fit < blocks_per_seq) {
    const char* key = in.device ? "kv_cache.memory_fraction" : "kv_cache.cpu_memory_bytes";
    return error(ErrorCode::kModelLoadError,
                 fmt::format("the KV pool cannot hold one sequence of the context length: {} "
                             "({}) gives {} tokens of KV, the context is {} tokens; raise {} or "
                             "kv_cache.num_blocks (at least {}), or load the model with a "
                             "shorter context_length",
                             out.basis, format_bytes(out.budget_bytes), fit * in.block_size,
                             in.max_model_len, key, blocks_per_seq));
  }
  const int64_t needed = blocks_per_seq * in.max_num_seqs;
  out.num_blocks = int(std::min({fit, needed, int64_t(INT_MAX / 2)}));
  return out;
}

MemoryInfo host_memory() {
  MemoryInfo m;
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string key;
    int64_t kib = 0;
    s >> key >> kib;
    if (key == "MemTotal:") m.total_bytes = kib * 1024;
    if (key == "MemAvailable:") m.free_bytes = kib * 1024;
  }
  // A container's memory limit (cgroup v2; "max" when there is none) bounds both.
  std::ifstream max_file("/sys/fs/cgroup/memory.max"),
      current_file("/sys/fs/cgroup/memory.current");
  int64_t limit = 0, current = 0;
  if (max_file >> limit && limit > 0) {
    current_file >> current;
    m.total_bytes = std::min(m.total_bytes, limit);
    m.free_bytes = std::min(m.free_bytes, std::max<int64_t>(0, limit - current));
  }
  return m;
}

std::string format_bytes(int64_t bytes) {
  const double b = double(bytes);
  if (b >= double(int64_t(1) << 30)) return fmt::format("{:.1f} GiB", b / double(int64_t(1) << 30));
  if (b >= double(1 << 20)) return fmt::format("{:.1f} MiB", b / double(1 << 20));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

}  // namespace mlxs
