// Encoding throughput of mlxs::Tokenizer, single thread: the prose file repeated to N MB, one
// paragraph (text between blank lines) per encode() call, with each tokenizer folder given.
// reference/tokenizer_bench.py measures HF `tokenizers` on the same input, for the comparison.
// Usage: bench_tokenizer PROSE.txt DIR [DIR...] [--mb 10]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

// Paragraphs of `text` (each with its "\n\n"), repeated until they total at least `mb` MB.
std::vector<std::string> paragraphs(const std::string& text, double mb, size_t* total) {
  std::vector<std::string> parts;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find("\n\n", start);
    if (end == std::string::npos) end = text.size();
    parts.push_back(text.substr(start, end - start) + "\n\n");
    start = end + 2;
  }
  std::vector<std::string> out;
  *total = 0;
  while (*total < mb * 1e6 && !parts.empty()) {
    for (const auto& p : parts) {
      out.push_back(p);
      *total += p.size();
      if (*total >= mb * 1e6) break;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 10;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
      mb = std::atof(argv[++i]);
    } else {
      args.push_back(argv[i]);
    }
  }
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: bench_tokenizer PROSE.txt DIR [DIR...] [--mb 10]\n");
    return 2;
  }
  std::ifstream in(args[0], std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  size_t total = 0;
  auto paras = paragraphs(ss.str(), mb, &total);
  std::printf("mlxs::Tokenizer, %.1f MB in %zu encode calls\n", total / 1e6, paras.size());
  std::printf("| %-12s | %10s | %8s | %12s | %7s |\n", "tokenizer", "tokens", "seconds", "tokens/s",
              "MB/s");
  std::printf("|--------------|------------|----------|--------------|---------|\n");
  for (size_t d = 1; d < args.size(); ++d) {
    auto tok = mlxs::Tokenizer::load(args[d]);
    if (!tok.ok()) {
      std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
      return 1;
    }
    for (size_t i = 0; i < paras.size() && i < 50; ++i)
      (void)(*tok)->encode(paras[i], false);  // warm up
    auto start = std::chrono::steady_clock::now();
    size_t num_tokens = 0;
    for (const auto& p : paras) num_tokens += (*tok)->encode(p, false)->size();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string name = args[d];
    while (!name.empty() && name.back() == '/') name.pop_back();
    name = name.substr(name.find_last_of('/') + 1);
    std::printf("| %-12s | %10zu | %8.2f | %12.0f | %7.2f |\n", name.c_str(), num_tokens, secs,
                num_tokens / secs, total / 1e6 / secs);
  }
  return 0;
}
