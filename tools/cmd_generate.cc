// `mlx-serving generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N]
// [--temperature T] [--seed S] [--print-ids]`: streams the continuation through the engine
// (greedy at T = 0) and prints the request's statistics to stderr.
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "mlxs/engine.h"

namespace {

struct Args {
  std::string model, prompt, prompt_ids, config;
  std::vector<std::string> stop;
  int max_tokens = 64, threads = 0, top_k = 0;
  float temperature = 0.f, top_p = 1.f, min_p = 0.f;
  float presence = 0.f, frequency = 0.f, repetition = 1.f;
  int64_t seed = -1;
  bool print_ids = false;
  std::string device = "auto";
};

int fail(const mlxs::Status& s) {
  std::fprintf(stderr, "%s\n", s.to_string().c_str());
  return 1;
}

int run(const Args& a) {
  using namespace mlxs;
  if (a.prompt.empty() == a.prompt_ids.empty()) {
    std::fprintf(stderr, "generate: give exactly one of --prompt or --prompt-ids\n");
    return 2;
  }
  auto engine = create_engine(cli::engine_options(a.config, a.threads, a.device));
  if (!engine.ok()) return fail(engine.status());
  LoadModelOptions lo;
  lo.model = std::filesystem::path(a.model).filename().string();
  if (lo.model.empty()) lo.model = "model";
  lo.local_path = std::filesystem::absolute(a.model).lexically_normal().string();
  auto handle = (*engine)->load_model(lo);
  if (!handle.ok()) return fail(handle.status());

  GeneratorParams p;
  p.model = lo.model;
  if (!a.prompt_ids.empty()) {
    PromptTokens t;
    for (int id : cli::parse_id_list("--prompt-ids", a.prompt_ids)) t.tokens.push_back(id);
    p.prompt = t;
  } else {
    p.prompt = a.prompt;
  }
  p.max_tokens = a.max_tokens;
  p.temperature = a.temperature;
  p.top_k = a.top_k;
  p.top_p = a.top_p;
  p.min_p = a.min_p;
  p.presence_penalty = a.presence;
  p.frequency_penalty = a.frequency;
  p.repetition_penalty = a.repetition;
  p.stop_sequences = a.stop;
  if (a.seed >= 0) p.seed = uint32_t(a.seed);
  auto gen = (*engine)->create_generator(p);
  if (!gen.ok()) return fail(gen.status());
  bool first = true;
  while (!(*gen)->done()) {
    auto chunk = (*gen)->next(std::chrono::milliseconds(200));
    if (!chunk) continue;
    if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
      if (a.print_ids)
        std::printf("%s%d", first ? "" : ",", t->token_id);
      else
        std::fputs(t->text.c_str(), stdout);
      first = false;
      std::fflush(stdout);
    } else if (auto* m = std::get_if<MetadataChunk>(&*chunk)) {
      std::printf("\n");
      std::fprintf(stderr,
                   "[%d prompt + %d generated tokens, finish: %s, ttft %.1f ms, %.1f tokens/s]\n",
                   m->prompt_tokens, m->tokens_generated, finish_reason_name(m->finish_reason),
                   m->time_to_first_token_ms, m->tokens_per_second);
    } else if (auto* e = std::get_if<ErrorChunk>(&*chunk)) {
      std::printf("\n");
      return fail(Status(e->code, e->message));
    }
  }
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "generate", "Generate a continuation of a prompt with a local model", [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--model", a->model, "Model folder (Hugging Face layout) or .gguf file")
          ->required();
      app.add_option("--prompt", a->prompt, "Prompt text");
      app.add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids");
      app.add_option("--max-tokens", a->max_tokens, "Tokens to generate")
          ->check(CLI::Range(1, 100000));
      app.add_option("--temperature", a->temperature, "0 = greedy")->check(CLI::Range(0.0, 2.0));
      app.add_option("--top-k", a->top_k, "Top-k (0 = off)")->check(CLI::NonNegativeNumber);
      app.add_option("--top-p", a->top_p, "Top-p (1 = off)");
      app.add_option("--min-p", a->min_p, "Min-p (0 = off)");
      app.add_option("--presence-penalty", a->presence, "OpenAI presence penalty");
      app.add_option("--frequency-penalty", a->frequency, "OpenAI frequency penalty");
      app.add_option("--repetition-penalty", a->repetition, "HF repetition penalty (1 = off)");
      app.add_option("--stop", a->stop, "Stop sequence (repeatable)");
      app.add_option("--seed", a->seed, "Random seed (0..2^32-1)");
      app.add_option("--threads", a->threads,
                     "CPU compute threads of the model (0 = backend.cpu.threads, whose 0 = all)");
      app.add_option("--device", a->device, "auto, cpu or cuda")
          ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
      app.add_option("--config", a->config,
                     "YAML configuration file (its sampling section does not apply: every "
                     "sampling flag here has its own default, greedy at temperature 0)");
      app.add_flag("--print-ids", a->print_ids, "Print token ids instead of text");
      return [a] { return run(*a); };
    });

}  // namespace
