// Speculative decoding (prompt lookup), the same workloads with and without it in one run: two
// engines on the same model, one with speculative.enabled. Workloads: "editing" (the prompt
// holds a text and asks for it again: input-grounded, what prompt lookup is for), "story" (free
// continuation: little to look up) and, with --force-rejection, the editing workload with every
// proposal made wrong (speculative.force_rejection: the cost of verification at zero
// acceptance). Greedy streams (the ones that speculate); each batch size is N streams at once.
// Usage: bench_speculative [MODEL_DIR] [--tokens 128] [--streams 1,8,32] [--k 4]
//   [--force-rejection]
// Prints a markdown table: decode tokens/s without and with speculation, the speed-up, and
// the share of output tokens that were accepted proposals.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mlxs/engine.h"

using namespace mlxs;
using Clock = std::chrono::steady_clock;

namespace {

// Public-domain text (Austen, Pride and Prejudice, chapter 1) for the editing workload.
const char* kText[] = {
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife. However little known the feelings or views of such a man may be "
    "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
    "surrounding families, that he is considered the rightful property of some one or other of "
    "their daughters.",
    "My dear Mr. Bennet, said his lady to him one day, have you heard that Netherfield Park is "
    "let at last? Mr. Bennet replied that he had not. But it is, returned she; for Mrs. Long has "
    "just been here, and she told me all about it. Mr. Bennet made no answer.",
    "Do you not want to know who has taken it? cried his wife impatiently. You want to tell me, "
    "and I have no objection to hearing it. This was invitation enough. Why, my dear, you must "
    "know, Mrs. Long says that Netherfield is taken by a young man of large fortune from the "
    "north of England.",
};

std::string prompt_of(const std::string& workload, int i) {
  const std::string text = kText[i % 3];
  if (workload == "story") {
    return "Chapter " + std::to_string(i + 1) + ". It was a dark and stormy night, and";
  }
  // Editing: the text, then the start of it again.
  return text + "\n\nThe same passage, copied out fair:\n\n" + text.substr(0, 40);
}

std::unique_ptr<Engine> engine_for(const std::string& dir, const std::string& yaml,
                                   const std::string& name) {
  const std::string cfg =
      (std::filesystem::temp_directory_path() / ("bench_speculative_" + name + ".yaml")).string();
  std::ofstream(cfg) << yaml;
  EngineOptions eo;
  eo.config_path = cfg;
  auto engine = create_engine(eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return nullptr;
  }
  LoadModelOptions lo;
  lo.model = "m";
  lo.local_path = std::filesystem::absolute(dir).lexically_normal().string();
  auto h = (*engine)->load_model(lo);
  if (!h.ok()) {
    std::fprintf(stderr, "%s\n", h.status().to_string().c_str());
    return nullptr;
  }
  return std::move(*engine);
}

struct Run {
  double seconds = 0;
  int64_t tokens = 0, accepted = 0;
};

Run run(Engine& e, const std::string& workload, int n, int tokens) {
  std::vector<std::unique_ptr<Generator>> gens;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    GeneratorParams p;
    p.model = "m";
    p.prompt = prompt_of(workload, i);
    p.max_tokens = tokens;
    p.temperature = 0.0;
    p.ignore_eos = true;
    auto g = e.create_generator(p);
    if (!g.ok()) {
      std::fprintf(stderr, "%s\n", g.status().to_string().c_str());
      continue;
    }
    gens.push_back(std::move(*g));
  }
  Run r;
  for (auto& g : gens) {
    while (!g->done()) {
      auto c = g->next(std::chrono::milliseconds(1000));
      if (!c) continue;
      if (auto* m = std::get_if<MetadataChunk>(&*c)) {
        r.tokens += m->tokens_generated;
        r.accepted += m->draft_tokens_accepted;
      }
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(MLXS_SOURCE_DIR) + "/models/default";
  int tokens = 128, k = 4;
  bool force_rejection = false;
  std::vector<int> streams = {1, 8, 32};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc)
      tokens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--k") && i + 1 < argc)
      k = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--force-rejection"))
      force_rejection = true;
    else if (!std::strcmp(argv[i], "--streams") && i + 1 < argc) {
      streams.clear();
      for (char* p = std::strtok(argv[++i], ","); p; p = std::strtok(nullptr, ","))
        streams.push_back(std::atoi(p));
    } else
      dir = argv[i];
  }
  const std::string spec_yaml =
      "speculative:\n  enabled: true\n  num_tokens: " + std::to_string(k) + "\n";
  auto plain = engine_for(dir, "", "plain");
  auto spec = engine_for(dir, spec_yaml, "spec");
  auto rejecting =
      force_rejection
          ? engine_for(dir, spec_yaml + "  force_rejection: true\n  min_acceptance_rate: 0\n",
                       "rejecting")
          : nullptr;
  if (!plain || !spec || (force_rejection && !rejecting)) return 1;
  std::printf("model %s, %d greedy tokens per stream, k = %d (prompt lookup)\n\n", dir.c_str(),
              tokens, k);
  std::printf(
      "| workload | streams | plain tok/s | speculative tok/s | speed-up | accepted share |\n"
      "|---|---|---|---|---|---|\n");
  std::vector<std::pair<std::string, Engine*>> rows = {{"editing", spec.get()},
                                                       {"story", spec.get()}};
  if (rejecting) rows.push_back({"editing, forced rejection", rejecting.get()});
  for (const auto& [name, engine] : rows) {
    const std::string workload = name.substr(0, name.find(','));
    for (int n : streams) {
      (void)run(*plain, workload, n, 8);  // warm both up at this batch size
      (void)run(*engine, workload, n, 8);
      const Run a = run(*plain, workload, n, tokens);
      const Run b = run(*engine, workload, n, tokens);
      const double ta = a.tokens / a.seconds, tb = b.tokens / b.seconds;
      std::printf("| %s | %d | %.1f | %.1f | %.2fx | %.0f %% |\n", name.c_str(), n, ta, tb, tb / ta,
                  b.tokens ? 100.0 * double(b.accepted) / double(b.tokens) : 0.0);
      std::fflush(stdout);
    }
  }
  return 0;
}
