// `mlx-serving tokenize` and `mlx-serving detokenize`: a model folder's tokenizer from the command
// line (the folder may hold only tokenizer.json and tokenizer_config.json).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "tokenizer/tokenizer.h"

namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool no_special = false;
};

struct DetokenizeArgs {
  std::string model, ids;
  bool skip_special = false;
};

std::unique_ptr<mlxs::Tokenizer> load_or_report(const std::string& dir) {
  auto tok = mlxs::Tokenizer::load(dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "mlx-serving: %s\n", tok.status().to_string().c_str());
    return nullptr;
  }
  return std::move(tok).value();
}

int run_tokenize(const TokenizeArgs& args) {
  std::string text = args.text;
  if (!args.file.empty()) {
    std::ifstream in(args.file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "mlx-serving: NotFound: cannot open --file %s\n", args.file.c_str());
      return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto tok = load_or_report(args.model);
  if (!tok) return 1;
  auto encoded = tok->encode(text, !args.no_special);
  if (!encoded.ok()) {
    std::fprintf(stderr, "%s\n", encoded.status().to_string().c_str());
    return 1;
  }
  const std::vector<int32_t>& ids = *encoded;
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

int run_detokenize(const DetokenizeArgs& args) {
  auto ids_int = mlxs::cli::parse_id_list("--ids", args.ids);
  auto tok = load_or_report(args.model);
  if (!tok) return 1;
  std::vector<int32_t> ids(ids_int.begin(), ids_int.end());
  std::string text = tok->decode(ids, args.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

mlxs::cli::CommandRegistrar tokenize_cmd(
    "tokenize", "Print the token ids of a text as a JSON array", [](CLI::App& app) {
      auto args = std::make_shared<TokenizeArgs>();
      app.add_option("--model", args->model, "Model folder with tokenizer.json")->required();
      auto* text = app.add_option("--text", args->text, "Text to tokenize");
      auto* file = app.add_option("--file", args->file, "File whose bytes to tokenize");
      text->excludes(file);
      app.add_flag("--no-special", args->no_special, "Do not add special tokens (BOS...)");
      return [args, text, file] {
        if (text->count() + file->count() != 1) {
          std::fputs("mlx-serving tokenize: exactly one of --text or --file is required\n", stderr);
          return 2;
        }
        return run_tokenize(*args);
      };
    });

mlxs::cli::CommandRegistrar detokenize_cmd(
    "detokenize", "Print the text of comma-separated token ids", [](CLI::App& app) {
      auto args = std::make_shared<DetokenizeArgs>();
      app.add_option("--model", args->model, "Model folder with tokenizer.json")->required();
      app.add_option("--ids", args->ids, "Token ids, e.g. 1,2,3")->required();
      app.add_flag("--skip-special", args->skip_special, "Drop special tokens from the text");
      return [args] { return run_detokenize(*args); };
    });

}  // namespace
