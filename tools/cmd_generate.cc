// `mlx-serving generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N]
// [--temperature T] [--seed S] [--print-ids]`: prints the continuation (greedy at T = 0).
#include <chrono>
#include <cstdio>
#include <numeric>

#include "cli.h"
#include "model/batch_util.h"
#include "model/decoder.h"
#include "sample/sampler.h"

namespace {

struct Args {
  std::string model, prompt, prompt_ids;
  int max_tokens = 32, threads = 0;
  float temperature = 0.f, top_p = 1.f;
  int top_k = 0;
  uint64_t seed = 0;
  bool print_ids = false;
};

int fail(const mlxs::Status& s) {
  std::fprintf(stderr, "%s\n", s.to_string().c_str());
  return 1;
}

int run(const Args& a) {
  using namespace mlxs;
  if (a.prompt_ids.empty()) {
    std::fprintf(stderr, "generate: --prompt-ids is required (text prompts need the tokenizer)\n");
    return 2;
  }
  std::vector<int32_t> prompt;
  for (int id : cli::parse_id_list("--prompt-ids", a.prompt_ids)) prompt.push_back(id);
  auto backend = make_cpu_backend(a.threads);
  auto model = Model::load(a.model, *backend);
  if (!model.ok()) return fail(model.status());
  const ModelArch& c = (*model)->config();
  const int block_size = 16;
  const int total = int(prompt.size()) + a.max_tokens;
  const int num_blocks = (total + block_size - 1) / block_size;
  auto cache = KvCache::create(*backend, c, num_blocks, block_size);
  if (!cache.ok()) return fail(cache.status());
  std::vector<int32_t> table(static_cast<size_t>(num_blocks));
  std::iota(table.begin(), table.end(), 0);

  SamplingParams sp;
  sp.temperature = a.temperature;
  sp.top_k = a.top_k;
  sp.top_p = a.top_p;
  sp.seed = a.seed;
  SamplingHistory history;
  history.add_prompt(prompt);
  std::vector<int32_t> out, feed = prompt;
  int cached = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.max_tokens; ++i) {
    SeqStep step{table, cached, feed};
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(std::span(&step, 1), block_size, c.sliding_window, &flat);
    std::vector<int32_t> rows = {int32_t(flat.size()) - 1};
    std::vector<float> logits;
    Status s = (*model)->forward(flat, b, rows, **cache, &logits);
    if (!s.ok()) return fail(s);
    cached += int(feed.size());
    int32_t tok = sample(logits, sp, history, uint64_t(i)).token;
    history.add_output(tok);
    out.push_back(tok);
    feed = {tok};
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), tok) != c.eos_token_ids.end()) break;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? "," : "", out[i]);
  std::printf("\n");
  std::fprintf(stderr, "[%zu tokens in %.2f s]\n", out.size(), secs);
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "generate", "Generate a continuation of a prompt with a local model", [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--model", a->model, "Model folder (Hugging Face layout)")->required();
      app.add_option("--prompt", a->prompt, "Prompt text");
      app.add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids");
      app.add_option("--max-tokens", a->max_tokens, "Tokens to generate")->check(CLI::Range(1, 1 << 20));
      app.add_option("--temperature", a->temperature, "0 = greedy")->check(CLI::Range(0.0, 2.0));
      app.add_option("--top-k", a->top_k, "Top-k (0 = off)")->check(CLI::Range(0, 1 << 20));
      app.add_option("--top-p", a->top_p, "Top-p (1 = off)")->check(CLI::Range(0.0, 1.0));
      app.add_option("--seed", a->seed, "Random seed");
      app.add_option("--threads", a->threads, "CPU threads (0 = all)");
      app.add_flag("--print-ids", a->print_ids, "Print token ids instead of text");
      return [a] { return run(*a); };
    });

}  // namespace
