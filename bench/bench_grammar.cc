// The grammar engine's cost per token: compile time of a few GBNF grammars and the time of
// Matcher::fill_next_token_bitmask along random walks (each step draws an allowed token: half the
// draws among tokens of at most 2 bytes so that walks reach the grammar's structure), single
// thread, over one tokenizer's vocabulary (Llama 3's 128k by default).
//
// Two passes over the same walks: "cold" starts with an empty mask cache (its first visit of each
// stack top walks the whole token trie), "warm" repeats the walks on the filled cache (what a
// server sees once a grammar has been used). A walk that completes restarts, so every grammar
// gets --tokens masks per walk.
//
// Corpus mode (--corpus FILE.jsonl, one {"name", "schema"} per line): every schema is translated
// (json_schema_to_gbnf) and compiled (compile_gbnf), timed; then --walks walks of --tokens masks
// each (seeds --seed, --seed + 1, ...) on a fresh grammar (cold: the first walk meets every state
// for the first time) and the same walks again (warm). The mask times of all schemas are pooled
// into one cold and one warm row.
// Usage: bench_grammar [TOKENIZER_DIR] [--walks 5] [--tokens 200] [--seed 1] [--only NAME_PART]
//                      [--corpus FILE.jsonl] [--cpu-clock]
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "structured/compiled_grammar.h"
#include "structured/example_grammars.h"
#include "structured/grammar.h"
#include "structured/mask_cache.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
using mlxs::structured::GrammarPtr;
using mlxs::structured::Matcher;
using mlxs::structured::TokenVocabulary;

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// --cpu-clock: mask times by this thread's CPU clock, which a loaded machine's preemption does
// not inflate (a system call per reading, about 0.5 us more per mask).
bool g_cpu_clock = false;
double now_us() {
  if (!g_cpu_clock) {
    return std::chrono::duration<double, std::micro>(Clock::now().time_since_epoch()).count();
  }
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

struct Stats {
  double p50 = 0, p99 = 0, avg = 0, max = 0;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  for (double x : v) s.avg += x;
  s.avg /= v.size();
  s.max = v.back();
  return s;
}

// Mask times (µs) of `walks` random walks of `tokens` steps each.
std::vector<double> run_walks(const GrammarPtr& grammar,
                              const std::shared_ptr<const TokenVocabulary>& vocab, int walks,
                              int tokens, uint32_t seed) {
  std::vector<double> times;
  std::vector<uint32_t> mask((vocab->size() + 31) / 32);
  std::mt19937 rng(seed);
  std::vector<int32_t> allowed, short_ones;
  for (int w = 0; w < walks; ++w) {
    auto matcher = Matcher::create(grammar, vocab);
    for (int step = 0; step < tokens; ++step) {
      double start = now_us();
      matcher->fill_next_token_bitmask(mask);
      times.push_back(now_us() - start);
      allowed.clear();
      short_ones.clear();
      auto eos = vocab->eos_ids();
      for (size_t w = 0; w < mask.size(); ++w) {  // the set bits, word by word
        for (uint32_t bits = mask[w]; bits != 0; bits &= bits - 1) {
          auto id = static_cast<int32_t>(w * 32 + std::countr_zero(bits));
          if (std::find(eos.begin(), eos.end(), id) != eos.end()) continue;
          allowed.push_back(id);
          if (vocab->bytes_of(id).size() <= 2) short_ones.push_back(id);
        }
      }
      if (allowed.empty()) {  // complete: start again
        matcher = Matcher::create(grammar, vocab);
        continue;
      }
      const auto& pool = (rng() % 2 == 0 && !short_ones.empty()) ? short_ones : allowed;
      if (!matcher->accept_token(pool[rng() % pool.size()])) {
        std::fprintf(stderr, "a token of the mask was refused: engine bug\n");
        std::exit(1);
      }
    }
  }
  return times;
}

std::vector<double> pooled_walks(const GrammarPtr& grammar,
                                 const std::shared_ptr<const TokenVocabulary>& vocab, int walks,
                                 int tokens, uint32_t seed) {
  std::vector<double> times;
  for (int w = 0; w < walks; ++w) {
    std::vector<double> t = run_walks(grammar, vocab, 1, tokens, seed + w);
    times.insert(times.end(), t.begin(), t.end());
  }
  return times;
}

// The corpus mode of the header.
int run_corpus(const std::string& path, const std::shared_ptr<const TokenVocabulary>& vocab,
               int walks, int tokens, uint32_t seed) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "--corpus: cannot read %s\n", path.c_str());
    return 1;
  }
  std::vector<double> compile_times, cold, warm;
  size_t num_schemas = 0, entries = 0;
  double cold_total = 0, warm_total = 0;
  auto start = Clock::now();
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto entry = nlohmann::ordered_json::parse(line);  // keeps the properties' order
    std::string schema = entry["schema"].dump();
    double t0 = now_us();
    auto gbnf = mlxs::structured::json_schema_to_gbnf(schema);
    if (!gbnf.ok()) {
      std::fprintf(stderr, "%s: %s\n", entry["name"].dump().c_str(),
                   gbnf.status().to_string().c_str());
      return 1;
    }
    auto grammar = mlxs::structured::compile_gbnf(*gbnf);
    compile_times.push_back(now_us() - t0);
    if (!grammar.ok()) {
      std::fprintf(stderr, "%s: %s\n", entry["name"].dump().c_str(),
                   grammar.status().to_string().c_str());
      return 1;
    }
    ++num_schemas;
    for (double t : pooled_walks(*grammar, vocab, walks, tokens, seed)) {
      cold.push_back(t);
      cold_total += t;
    }
    for (double t : pooled_walks(*grammar, vocab, walks, tokens, seed)) {
      warm.push_back(t);
      warm_total += t;
    }
    entries += (*grammar)->mask_cache(vocab)->num_entries();
  }
  std::sort(compile_times.begin(), compile_times.end());
  auto at = [&](double q) {
    return compile_times.empty()
               ? 0.0
               : compile_times[std::min(compile_times.size() - 1,
                                        static_cast<size_t>(compile_times.size() * q))];
  };
  std::printf("corpus %s: %zu schemas, %d walks x %d tokens each, %.1f s\n", path.c_str(),
              num_schemas, walks, tokens, micros_since(start) / 1e6);
  std::printf(
      "compile (json_schema_to_gbnf + compile_gbnf): p50 %.1f us, p90 %.1f us, max %.1f us\n",
      at(0.5), at(0.9), compile_times.empty() ? 0.0 : compile_times.back());
  std::printf("| %-5s | %7s | %9s | %9s | %9s | %9s | %7s | %8s |\n", "pass", "masks", "p50 us",
              "p99 us", "avg us", "max us", "entries", "ms/miss");
  std::printf(
      "|-------|---------|-----------|-----------|-----------|-----------|---------|----------|\n");
  double per_miss = (cold_total - warm_total) / 1000 / std::max<size_t>(1, entries);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double>& v = pass == 0 ? cold : warm;
    size_t n = v.size();
    Stats s = stats_of(std::move(v));
    std::printf("| %-5s | %7zu | %9.1f | %9.1f | %9.1f | %9.1f | %7zu | %8.2f |\n",
                pass == 0 ? "cold" : "warm", n, s.p50, s.p99, s.avg, s.max, entries,
                pass == 0 ? 0.0 : per_miss);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(MLXS_SOURCE_DIR) + "/.fixtures/tokenizers/llama3";
  int walks = 5, tokens = 200;
  uint32_t seed = 1;
  std::string only, corpus;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--walks") == 0 && i + 1 < argc) {
      walks = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) {
      tokens = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = static_cast<uint32_t>(std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (std::strcmp(argv[i], "--cpu-clock") == 0) {
      g_cpu_clock = true;
    } else if (std::strcmp(argv[i], "--corpus") == 0 && i + 1 < argc) {
      corpus = argv[++i];
    } else {
      dir = argv[i];
    }
  }
  auto tok = mlxs::Tokenizer::load(dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  auto start = Clock::now();
  auto vocab = TokenVocabulary::from_tokenizer(**tok);
  std::printf("vocabulary %s: %zu tokens, built in %.1f ms; %d walks x %d tokens per grammar\n",
              dir.c_str(), vocab->size(), micros_since(start) / 1000, walks, tokens);
  if (!corpus.empty()) return run_corpus(corpus, vocab, walks, tokens, seed);

  struct Named {
    const char* name;
    const char* gbnf;
  };
  const Named grammars[] = {{"json (generic)", mlxs::structured::examples::kJson},
                            {"json object, fixed keys", mlxs::structured::examples::kJsonPerson},
                            {"arithmetic", mlxs::structured::examples::kArithmetic},
                            {"long string (2000)", mlxs::structured::examples::kLongString}};
  std::printf("| %-24s | %10s | %-5s | %9s | %9s | %9s | %9s | %7s | %8s |\n", "grammar",
              "compile us", "pass", "p50 us", "p99 us", "avg us", "max us", "entries", "ms/miss");
  std::printf(
      "|--------------------------|------------|-------|-----------|-----------|-----------|"
      "-----------|---------|----------|\n");
  for (const auto& g : grammars) {
    if (std::string(g.name).find(only) == std::string::npos) continue;
    std::vector<double> compile_times;
    GrammarPtr grammar;
    for (int i = 0; i < 20; ++i) {
      auto t0 = Clock::now();
      auto compiled = mlxs::structured::compile_gbnf(g.gbnf);
      compile_times.push_back(micros_since(t0));
      if (!compiled.ok()) {
        std::fprintf(stderr, "%s: %s\n", g.name, compiled.status().to_string().c_str());
        return 1;
      }
      grammar = *compiled;
    }
    double compile_us = stats_of(compile_times).p50;
    // entries: the mask cache's size after the pass; ms/miss: (cold total - warm total) / entries,
    // the average cost of a state met for the first time.
    double cold_total = 0;
    for (const char* pass : {"cold", "warm"}) {
      std::vector<double> times = run_walks(grammar, vocab, walks, tokens, seed);
      double total = 0;
      for (double t : times) total += t;
      size_t entries = grammar->mask_cache(vocab)->num_entries();
      Stats s = stats_of(std::move(times));
      bool cold = std::strcmp(pass, "cold") == 0;
      if (cold) cold_total = total;
      double per_miss = cold ? 0 : (cold_total - total) / 1000 / std::max<size_t>(1, entries);
      std::printf("| %-24s | %10.1f | %-5s | %9.1f | %9.1f | %9.1f | %9.1f | %7zu | %8.2f |\n",
                  g.name, compile_us, pass, s.p50, s.p99, s.avg, s.max, entries, per_miss);
    }
  }
  return 0;
}
