// Test support, included by tests only: a random model written to a temporary folder, and a
// model loaded with its KV cache on a given backend. Failures are reported as gtest failures.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/decoder.h"
#include "model/random_model.h"
#include "runtime/step_batch.h"

namespace mlxs::test_support {

// A model and its cache on `backend` (null model or cache when loading failed).
struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
};

// Writes random weights of `shape` (see random_model_config) in `dt` with `seed` into
// <temp>/<name> and returns the folder.
inline std::string write_test_model(const std::string& shape, DType dt, const std::string& name,
                                    uint64_t seed) {
  // Per process: ctest runs test cases as parallel processes that would share one folder.
  const auto dir =
      std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  auto config = random_model_config(shape);
  EXPECT_TRUE(config.ok());
  if (config.ok()) {
    EXPECT_TRUE(write_random_model(*config, dt, dir, seed).ok());
  }
  return dir.string();
}

// Loads the model in `dir` on `backend` with a KV cache of num_blocks x block_size tokens in
// `kv`.
inline LoadedModel load_test_model(std::unique_ptr<Backend> backend, const std::string& dir,
                                   int num_blocks, int block_size, DType kv) {
  LoadedModel l;
  l.backend = std::move(backend);
  auto m = Model::load(dir, *l.backend);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return l;
  l.model = std::move(*m);
  auto c = KvCache::create(*l.backend, l.model->config(), num_blocks, block_size, kv);
  EXPECT_TRUE(c.ok());
  if (c.ok()) l.cache = std::move(*c);
  return l;
}

// A deterministic test prompt of `len` token ids below `vocab`; `salt` tells prompts apart.
inline std::vector<int32_t> test_prompt(int len, int salt, int vocab) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (int i = 0; i < len; ++i) p[size_t(i)] = (i * 37 + salt * 101 + 3) % vocab;
  return p;
}

// Greedy generation in blocks of kBlockSize tokens (sequence s owns a contiguous run of blocks).
constexpr int kBlockSize = 4;

// Block tables for `prompts` that each generate num_new tokens: sequence s owns the contiguous
// blocks [s * per_seq, (s + 1) * per_seq). *longest is the longest prompt.
inline std::vector<std::vector<int32_t>> block_tables(
    const std::vector<std::vector<int32_t>>& prompts, int num_new, int* longest, int* per_seq) {
  *longest = 0;
  for (auto& p : prompts) *longest = std::max(*longest, int(p.size()));
  *per_seq = (*longest + num_new + kBlockSize - 1) / kBlockSize;
  std::vector<std::vector<int32_t>> tables(prompts.size());
  for (size_t s = 0; s < tables.size(); ++s) {
    tables[s].resize(size_t(*per_seq));
    std::iota(tables[s].begin(), tables[s].end(), int32_t(s) * *per_seq);
  }
  return tables;
}

struct GenRun {
  std::vector<std::vector<int32_t>> generated;  // per sequence
  std::vector<float> first_logits;              // logits of the first step's rows
};

// Feeds every prompt in chunks (sequence s takes chunk + s tokens a step), batching all
// sequences in every step; a sequence whose prompt is done decodes greedily in the same steps
// until it has `num_new` tokens. With device_greedy the argmax runs on the backend.
inline GenRun generate(Model& m, KvCache& cache, const std::vector<std::vector<int32_t>>& prompts,
                       int chunk, int num_new, bool device_greedy) {
  const int S = int(prompts.size());
  int longest = 0, per_seq = 0;
  const auto tables = block_tables(prompts, num_new, &longest, &per_seq);
  std::vector<int> cached(static_cast<size_t>(S), 0);
  GenRun run;
  run.generated.resize(size_t(S));
  std::vector<std::vector<int32_t>> feeds(static_cast<size_t>(S));
  for (int step = 0;; ++step) {
    std::vector<SeqStep> steps;
    std::vector<int> seq_of_step;
    for (int s = 0; s < S; ++s) {
      const auto& p = prompts[size_t(s)];
      auto& g = run.generated[size_t(s)];
      if (int(g.size()) >= num_new) continue;
      auto& feed = feeds[size_t(s)];
      if (cached[size_t(s)] < int(p.size())) {
        const int n = std::min(chunk + s, int(p.size()) - cached[size_t(s)]);
        feed.assign(p.begin() + cached[size_t(s)], p.begin() + cached[size_t(s)] + n);
      } else {
        feed = {g.back()};
      }
      steps.push_back({tables[size_t(s)], cached[size_t(s)], feed});
      seq_of_step.push_back(s);
    }
    if (steps.empty()) break;
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(steps, kBlockSize, m.config().sliding_window, &flat);
    std::vector<int32_t> rows;
    for (size_t i = 0; i < steps.size(); ++i) rows.push_back(b.query_start[i + 1] - 1);
    std::vector<int32_t> next;
    if (device_greedy) {
      EXPECT_TRUE(m.forward_greedy(flat, b, rows, cache, &next).ok());
    } else {
      std::vector<float> logits;
      EXPECT_TRUE(m.forward(flat, b, rows, cache, &logits).ok());
      const int V = m.config().vocab_size;
      for (size_t i = 0; i < rows.size(); ++i) {
        auto row = logits.begin() + ptrdiff_t(i) * V;
        next.push_back(int32_t(std::max_element(row, row + V) - row));
      }
      if (step == 0) run.first_logits = logits;
    }
    if (next.size() != rows.size()) return run;
    for (size_t i = 0; i < steps.size(); ++i) {
      const int s = seq_of_step[i];
      cached[size_t(s)] += int(steps[i].new_tokens.size());
      if (cached[size_t(s)] >= int(prompts[size_t(s)].size())) {
        run.generated[size_t(s)].push_back(next[i]);
      }
    }
  }
  return run;
}

// As generate() with each prompt prefilled in one step, then decode steps pipelined as the
// engine runs them: step N + 1 is begun before step N ends, its tokens given as placeholders
// for step N's greedy tokens (Model::begin_step). Equal to generate(m, cache, prompts,
// longest prompt, num_new, true) token for token: the same steps compute the same values.
inline GenRun generate_pipelined(Model& m, KvCache& cache,
                                 const std::vector<std::vector<int32_t>>& prompts, int num_new) {
  const int S = int(prompts.size());
  int longest = 0, per_seq = 0;
  const auto tables = block_tables(prompts, num_new, &longest, &per_seq);
  if (m.decode_padding()) {  // placeholders need step buffers that never grow (warm_up)
    int num_graphs = 0;
    EXPECT_TRUE(m.warm_up(cache, S, per_seq, int64_t(longest) * S, &num_graphs).ok());
  }
  GenRun run;
  run.generated.resize(size_t(S));
  std::vector<int> cached(static_cast<size_t>(S), 0);
  std::vector<int32_t> rows, next;
  for (int step = 0; step < num_new; ++step) {
    // Sequence s's token this step: its prompt, then Model::placeholder(s) for row s of the
    // step in flight.
    std::vector<std::vector<int32_t>> feeds(static_cast<size_t>(S));
    std::vector<SeqStep> steps;
    for (int s = 0; s < S; ++s) {
      feeds[size_t(s)] =
          step == 0 ? prompts[size_t(s)] : std::vector<int32_t>{Model::placeholder(size_t(s))};
      steps.push_back({tables[size_t(s)], cached[size_t(s)], feeds[size_t(s)]});
    }
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(steps, kBlockSize, m.config().sliding_window, &flat);
    rows.clear();
    for (int s = 0; s < S; ++s) rows.push_back(b.query_start[size_t(s) + 1] - 1);
    Status st = m.begin_step(Model::StepKind::kGreedy, flat, b, rows, cache, nullptr);
    EXPECT_TRUE(st.ok()) << st.to_string();
    if (!st.ok()) return run;
    for (int s = 0; s < S; ++s) cached[size_t(s)] += int(feeds[size_t(s)].size());
    if (step > 0) {  // step - 1 ends while this one is queued behind it
      EXPECT_TRUE(m.end_step(&next, nullptr, nullptr).ok());
      for (int s = 0; s < S && size_t(s) < next.size(); ++s)
        run.generated[size_t(s)].push_back(next[size_t(s)]);
    }
  }
  EXPECT_TRUE(m.end_step(&next, nullptr, nullptr).ok());
  for (int s = 0; s < S && size_t(s) < next.size(); ++s)
    run.generated[size_t(s)].push_back(next[size_t(s)]);
  return run;
}

}  // namespace mlxs::test_support
