// Aggregate decode throughput of the engine as concurrency rises: N streams at once, each
// generating a fixed number of tokens (temperature 0.8, distinct seeds and prompts, no stop
// ids), each stream read by its own thread, on the engine's default device (CUDA when a GPU is
// present). Usage: bench_engine [MODEL_DIR] [--tokens 64] [--streams 1,4,16,64] [--one-reader]
// [--prompt-tokens N] [--schema FILE]. --prompt-tokens gives each stream N token ids (below 256)
// instead of a text prompt, for models without a tokenizer (the Llama-3.1-8B-shaped one of
// run_bench.sh). --schema constrains every stream to the JSON Schema in FILE (structured
// output; the model needs a tokenizer), and then also counts the streams the grammar ended
// before --tokens.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mlxs/engine.h"

using namespace mlxs;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string dir = std::string(MLXS_SOURCE_DIR) + "/models/default";
  int tokens = 64;
  bool one_reader = false;
  int prompt_tokens = 0;  // > 0: token-id prompts of this length
  std::vector<int> streams = {1, 4, 16, 64};
  std::string schema;  // --schema: the JSON Schema text
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc)
      tokens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--one-reader"))
      one_reader = true;
    else if (!std::strcmp(argv[i], "--prompt-tokens") && i + 1 < argc)
      prompt_tokens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--schema") && i + 1 < argc) {
      std::ifstream in(argv[++i]);
      if (!in) return std::fprintf(stderr, "--schema: cannot read %s\n", argv[i]), 1;
      std::stringstream text;
      text << in.rdbuf();
      schema = text.str();
    } else if (!std::strcmp(argv[i], "--streams") && i + 1 < argc) {
      streams.clear();
      for (char* p = std::strtok(argv[++i], ","); p; p = std::strtok(nullptr, ","))
        streams.push_back(std::atoi(p));
    } else
      dir = argv[i];
  }
  EngineOptions eo;
  auto engine = create_engine(eo);
  if (!engine.ok()) return std::fprintf(stderr, "%s\n", engine.status().to_string().c_str()), 1;
  LoadModelOptions lo;
  lo.model = "m";
  lo.local_path = std::filesystem::absolute(dir).lexically_normal().string();
  auto h = (*engine)->load_model(lo);
  if (!h.ok()) return std::fprintf(stderr, "%s\n", h.status().to_string().c_str()), 1;
  std::printf("model %s (%s, %.1f M params, %s), %d tokens per stream\n", dir.c_str(),
              h->architecture.c_str(), h->num_parameters / 1e6, h->dtype.c_str(), tokens);
  std::printf(
      "%s| streams | total tokens | seconds | aggregate tokens/s | per-stream tokens/s "
      "| streams cut short |\n|---|---|---|---|---|---|\n",
      schema.empty() ? "" : "every stream under the JSON Schema of --schema\n");
  for (int n : streams) {
    std::vector<std::unique_ptr<Generator>> gens;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      GeneratorParams p;
      p.model = "m";
      if (prompt_tokens > 0) {
        PromptTokens t;
        for (int k = 0; k < prompt_tokens; ++k)
          t.tokens.push_back(int32_t((i * 7919 + k * 104729 + 13) % 256));
        p.prompt = std::move(t);
      } else {
        p.prompt = "Chapter " + std::to_string(i + 1) + ". It was a dark and stormy night, and";
      }
      p.max_tokens = tokens;
      p.temperature = 0.8;
      p.seed = uint32_t(i);
      p.stop_token_ids = {};
      if (!schema.empty()) {
        p.structured = StructuredOutput{};
        p.structured->schema.text = schema;
      }
      auto g = (*engine)->create_generator(p);
      if (!g.ok()) return std::fprintf(stderr, "%s\n", g.status().to_string().c_str()), 1;
      gens.push_back(std::move(*g));
    }
    // One consumer thread per stream, as N clients would read: a single reader draining the
    // streams one after another would leave the others paused by backpressure (a full stream
    // buffer pauses its sequence), measuring the reader instead of the engine.
    // --one-reader keeps that pattern, for comparison.
    std::vector<int64_t> counts(gens.size(), 0);
    auto drain = [&](size_t i) {
      while (!gens[i]->done()) {
        auto c = gens[i]->next(std::chrono::milliseconds(1000));
        if (c && std::holds_alternative<TokenChunk>(*c)) ++counts[i];
      }
    };
    std::vector<std::thread> readers;
    for (size_t i = 0; i < gens.size(); ++i) {
      if (one_reader)
        drain(i);
      else
        readers.emplace_back(drain, i);
    }
    for (auto& t : readers) t.join();
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    int cut_short = 0;  // by the grammar (or a stop id)
    for (int64_t c : counts) cut_short += c < tokens;
    std::printf("| %d | %lld | %.2f | %.0f | %.0f | %d |\n", n, (long long)total, secs,
                total / secs, total / secs / n, cut_short);
  }
  return 0;
}
