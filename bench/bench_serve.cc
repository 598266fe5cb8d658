// Serving benchmark, measured the way users measure servers (like vLLM's `bench serve`):
// requests arrive over time (Poisson at each given rate, or all at once for "inf"), each on its
// own connection, streaming POST /v1/completions with token-id prompts; prompt and output lengths
// come from a ShareGPT-like distribution or a fixed shape. Reports, per rate, request throughput,
// output and total tok/s, TTFT / TPOT / ITL / end-to-end latency (mean, p50, p90, p99), and
// writes a JSON result and an SVG chart (output tok/s and p99 TTFT against the rate). It speaks
// the OpenAI completions dialect, so it also drives llama.cpp's server for a side-by-side figure.
// Not a test: it prints tables for bench/RESULTS.md.
//
// The ShareGPT-like distribution (docs/benchmarks.md): prompt and output lengths are independent
// log-normals (sigma 1.0), rejected outside [4, 1024] tokens (vLLM's ShareGPT filter keeps
// prompts of 4..1024 tokens and prompt + output <= 2048), with the location chosen so that the
// truncated means are 231 prompt and 195 output tokens: the totals of 1,000 ShareGPT_V3 prompts
// under the Llama 3 tokenizer in a published vLLM run (230,969 input and 194,523 output tokens).
// The shape (log-normal, sigma 1) is our assumption; the means are the cited figures.
//
// Usage: bench_serve [--server BIN --model DIR [--config FILE] | --port P [--host 127.0.0.1]]
//                    [--dataset sharegpt | --shape 512x128] [--num-prompts 1000]
//                    [--rates 1,4,16,inf] [--max-concurrency 0] [--seed 0] [--vocab 1000]
//                    [--model-name NAME (default: the --model folder's name when spawning, else
//                    "default")] [--ignore-eos 1] [--temperature 0]
//                    [--label mlx-serving] [--json FILE] [--svg FILE] [--compare FILE.json]...
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_http.h"
#include "svg_chart.h"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  std::string server, model = "models/default", config, host = "127.0.0.1";
  std::string dataset = "sharegpt", model_name, label = "mlx-serving";
  std::string json_path, svg_path;
  std::vector<std::string> compare;
  std::vector<double> rates = {std::numeric_limits<double>::infinity()};
  int port = 0, num_prompts = 1000, max_concurrency = 0, vocab = 1000;
  int input_len = 0, output_len = 0;  // --shape
  uint64_t seed = 0;
  bool ignore_eos = true;
  double temperature = 0;
};

// --- workload ------------------------------------------------------------------------------

struct RequestSpec {
  int prompt_len = 0, output_len = 0;
  double arrival_s = 0;  // after the start of the run
  std::vector<int> prompt;
};

// Uniform doubles in [0, 1) from mt19937_64's 53 high bits: the same sequence on every platform
// (std::*_distribution are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  double uniform() { return double(g_() >> 11) * 0x1.0p-53; }
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double exponential(double rate) { return -std::log(1.0 - uniform()) / rate; }
  int below(int n) { return int(uniform() * n); }

 private:
  std::mt19937_64 g_;
};

double normal_cdf(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}

// Mean of a log-normal(mu, sigma) truncated to [lo, hi].
double truncated_lognormal_mean(double mu, double sigma, double lo, double hi) {
  const double a = (std::log(lo) - mu) / sigma, b = (std::log(hi) - mu) / sigma;
  const double mass = normal_cdf(b) - normal_cdf(a);
  return std::exp(mu + sigma * sigma / 2) * (normal_cdf(b - sigma) - normal_cdf(a - sigma)) / mass;
}

// The mu whose truncated mean is `target` (bisection; the mean grows with mu).
double lognormal_mu_for_mean(double target, double sigma, double lo, double hi) {
  double a = std::log(lo) - 10, b = std::log(hi) + 10;
  for (int i = 0; i < 200; ++i) {
    const double m = (a + b) / 2;
    (truncated_lognormal_mean(m, sigma, lo, hi) < target ? a : b) = m;
  }
  return (a + b) / 2;
}

struct ShareGptShape {
  static constexpr double kSigma = 1.0, kMin = 4, kMax = 1024;
  static constexpr double kPromptMean = 230969.0 / 1000, kOutputMean = 194523.0 / 1000;
};

int draw_length(Rng& rng, double mu) {
  for (;;) {
    const double x = std::exp(mu + ShareGptShape::kSigma * rng.normal());
    if (x >= ShareGptShape::kMin && x <= ShareGptShape::kMax) return int(std::lround(x));
  }
}

std::vector<RequestSpec> make_workload(const Options& o, double rate) {
  Rng rng(o.seed);
  const double mu_in = lognormal_mu_for_mean(ShareGptShape::kPromptMean, ShareGptShape::kSigma,
                                             ShareGptShape::kMin, ShareGptShape::kMax);
  const double mu_out = lognormal_mu_for_mean(ShareGptShape::kOutputMean, ShareGptShape::kSigma,
                                              ShareGptShape::kMin, ShareGptShape::kMax);
  std::vector<RequestSpec> w(size_t(o.num_prompts));
  Rng arrivals(o.seed + 1);  // its own stream: every rate sends the same requests
  double t = 0;
  for (auto& r : w) {
    if (o.dataset == "sharegpt") {
      r.prompt_len = draw_length(rng, mu_in);
      r.output_len = draw_length(rng, mu_out);
    } else {
      r.prompt_len = o.input_len;
      r.output_len = o.output_len;
    }
    r.prompt.resize(size_t(r.prompt_len));
    for (int& id : r.prompt) id = rng.below(o.vocab);
    if (std::isfinite(rate)) t += arrivals.exponential(rate);
    r.arrival_s = t;
  }
  return w;
}

// --- one request ---------------------------------------------------------------------------

struct Outcome {
  bool ok = false;
  std::string error;
  double ttft_ms = -1, e2e_ms = 0;
  std::vector<double> itl_ms;  // gaps between content chunks after the first
  int output_tokens = 0;       // usage.completion_tokens, else the content chunks
};

class Run;

class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(net::io_context& ioc, Run& run, size_t index) : socket_(ioc), run_(run), index_(index) {}
  void start(const tcp::endpoint& ep, std::string request);

 private:
  void read();
  void on_event(const std::string& data);
  void end(std::string error);

  tcp::socket socket_;
  Run& run_;
  size_t index_;
  std::string request_;
  std::array<char, 16384> buf_{};
  bench::ResponseReader reader_;
  Clock::time_point sent_, last_;
  int chunks_ = 0, usage_tokens_ = -1;
  Outcome out_;
  bool ended_ = false;
};

// One rate: launches each request at its arrival time (held back while max_concurrency calls are
// open) and collects the outcomes.
class Run {
 public:
  Run(net::io_context& ioc, const Options& o, std::vector<RequestSpec> w, tcp::endpoint ep)
      : ioc_(ioc), o_(o), w_(std::move(w)), ep_(ep), timer_(ioc), outcomes_(w_.size()) {}
  void start() {
    start_ = Clock::now();
    schedule();
  }
  void done(size_t i, Outcome out) {
    outcomes_[i] = std::move(out);
    --open_;
    ++finished_;
    end_ = Clock::now();
    schedule();
  }
  const std::vector<Outcome>& outcomes() const { return outcomes_; }
  const std::vector<RequestSpec>& workload() const { return w_; }
  double seconds() const { return std::chrono::duration<double>(end_ - start_).count(); }

 private:
  void schedule() {
    while (next_ < w_.size()) {
      if (o_.max_concurrency > 0 && open_ >= o_.max_concurrency) return;
      const auto due = start_ + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(w_[next_].arrival_s));
      if (due > Clock::now()) {
        if (!waiting_) {
          waiting_ = true;
          timer_.expires_at(due);
          timer_.async_wait([this](boost::system::error_code ec) {
            waiting_ = false;
            if (!ec) schedule();
          });
        }
        return;
      }
      launch(next_++);
    }
  }
  void launch(size_t i) {
    ++open_;
    const RequestSpec& r = w_[i];
    json body = {{"model", o_.model_name},
                 {"prompt", r.prompt},
                 {"max_tokens", r.output_len},
                 {"temperature", o_.temperature},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    if (o_.ignore_eos) body["ignore_eos"] = true;
    const std::string text = body.dump();
    std::make_shared<Call>(ioc_, *this, i)
        ->start(ep_, "POST /v1/completions HTTP/1.1\r\nHost: " + o_.host +
                         "\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         "Content-Length: " +
                         std::to_string(text.size()) + "\r\n\r\n" + text);
  }

  net::io_context& ioc_;
  const Options& o_;
  std::vector<RequestSpec> w_;
  tcp::endpoint ep_;
  net::steady_timer timer_;
  std::vector<Outcome> outcomes_;
  size_t next_ = 0, finished_ = 0;
  int open_ = 0;
  bool waiting_ = false;
  Clock::time_point start_, end_;
};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void Call::start(const tcp::endpoint& ep, std::string request) {
  request_ = std::move(request);
  sent_ = Clock::now();
  socket_.async_connect(ep, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return self->end("connect: " + ec.message());
    net::async_write(self->socket_, net::buffer(self->request_),
                     [self](boost::system::error_code ec, size_t) {
                       if (ec) return self->end("write: " + ec.message());
                       self->read();
                     });
  });
}

void Call::read() {
  socket_.async_read_some(
      net::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
        if (ec) return self->end("read: " + ec.message());
        if (!self->reader_.feed(self->buf_.data(), n,
                                [&](const std::string& d) { self->on_event(d); })) {
          return self->end("malformed response");
        }
        if (!self->reader_.done()) return self->read();
        if (self->reader_.status() != 200) {
          return self->end("HTTP " + std::to_string(self->reader_.status()) + ": " +
                           self->reader_.body().substr(0, 200));
        }
        self->end("");
      });
}

void Call::on_event(const std::string& data) {
  if (data == "[DONE]") return;
  json j = json::parse(data, nullptr, false);
  if (j.is_discarded()) return;
  if (j.contains("usage") && j["usage"].is_object() &&
      j["usage"].value("completion_tokens", -1) >= 0) {
    usage_tokens_ = j["usage"]["completion_tokens"].get<int>();
  }
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
  const json& c = j["choices"][0];
  // A token event: a choice that does not end the stream (its text may be empty: a model
  // without a tokenizer, or bytes of an incomplete UTF-8 character).
  if (!c.contains("finish_reason") || !c["finish_reason"].is_null()) return;
  const auto now = Clock::now();
  if (chunks_ == 0)
    out_.ttft_ms = std::chrono::duration<double, std::milli>(now - sent_).count();
  else
    out_.itl_ms.push_back(std::chrono::duration<double, std::milli>(now - last_).count());
  last_ = now;
  ++chunks_;
}

void Call::end(std::string error) {
  if (ended_) return;
  ended_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  out_.e2e_ms = ms_since(sent_);
  out_.output_tokens = usage_tokens_ >= 0 ? usage_tokens_ : chunks_;
  out_.ok = error.empty() && chunks_ > 0;
  out_.error = error.empty() && chunks_ == 0 ? "no tokens streamed" : error;
  run_.done(index_, std::move(out_));
}

// --- report --------------------------------------------------------------------------------

std::string rate_label(double r) {
  if (!std::isfinite(r)) return "inf";
  std::ostringstream s;
  s << r;
  return s.str();
}

json stats_of(const std::vector<double>& v) {
  return {{"mean", bench::mean(v)},
          {"p50", bench::percentile(v, 0.5)},
          {"p90", bench::percentile(v, 0.9)},
          {"p99", bench::percentile(v, 0.99)}};
}

json summarize(const Run& run, double rate, bool ignore_eos) {
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t ok = 0, failed = 0, in_tokens = 0, out_tokens = 0, short_outputs = 0;
  std::vector<std::string> errors;
  for (size_t i = 0; i < run.outcomes().size(); ++i) {
    const Outcome& o = run.outcomes()[i];
    const RequestSpec& r = run.workload()[i];
    if (!o.ok) {
      ++failed;
      if (errors.size() < 5) errors.push_back(o.error);
      continue;
    }
    ++ok;
    in_tokens += r.prompt_len;
    out_tokens += o.output_tokens;
    if (o.output_tokens < r.output_len) ++short_outputs;
    ttft.push_back(o.ttft_ms);
    e2e.push_back(o.e2e_ms);
    itl.insert(itl.end(), o.itl_ms.begin(), o.itl_ms.end());
    if (o.output_tokens > 1) tpot.push_back((o.e2e_ms - o.ttft_ms) / (o.output_tokens - 1));
  }
  const double secs = run.seconds();
  json j = {{"rate", rate_label(rate)},
            {"completed", ok},
            {"failed", failed},
            {"seconds", secs},
            {"input_tokens", in_tokens},
            {"output_tokens", out_tokens},
            {"request_throughput", double(ok) / secs},
            {"output_tok_s", double(out_tokens) / secs},
            {"total_tok_s", double(in_tokens + out_tokens) / secs},
            {"ttft_ms", stats_of(ttft)},
            {"tpot_ms", stats_of(tpot)},
            {"itl_ms", stats_of(itl)},
            {"e2e_ms", stats_of(e2e)},
            {"errors", errors}};
  if (ignore_eos) j["short_outputs"] = short_outputs;  // must be 0 when EOS is ignored
  return j;
}

void print_table(const std::string& label, const json& runs) {
  std::printf(
      "| %s rate (req/s) | ok | failed | s | req/s | out tok/s | total tok/s | TTFT p50 / p90 / "
      "p99 "
      "ms | TPOT mean / p99 ms | ITL p50 / p90 / p99 ms |\n",
      label.c_str());
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const json& r : runs) {
    std::printf(
        "| %s | %ld | %ld | %.1f | %.2f | %.0f | %.0f | %.0f / %.0f / %.0f | %.1f / %.1f | %.1f / "
        "%.1f / %.1f |\n",
        r["rate"].get<std::string>().c_str(), r["completed"].get<long>(), r["failed"].get<long>(),
        r["seconds"].get<double>(), r["request_throughput"].get<double>(),
        r["output_tok_s"].get<double>(), r["total_tok_s"].get<double>(),
        r["ttft_ms"]["p50"].get<double>(), r["ttft_ms"]["p90"].get<double>(),
        r["ttft_ms"]["p99"].get<double>(), r["tpot_ms"]["mean"].get<double>(),
        r["tpot_ms"]["p99"].get<double>(), r["itl_ms"]["p50"].get<double>(),
        r["itl_ms"]["p90"].get<double>(), r["itl_ms"]["p99"].get<double>());
  }
}

// Output tok/s and p99 TTFT against the rate, one series per result (this run and --compare).
std::string chart(const std::vector<json>& results) {
  bench::ChartPanel tput{"Output throughput", "request rate (req/s)", "output tok/s", {}, {}};
  bench::ChartPanel ttft{"Time to first token, p99", "request rate (req/s)", "ms", {}, {}};
  for (const json& r : results.front()["runs"]) tput.x_labels.push_back(r["rate"]);
  ttft.x_labels = tput.x_labels;
  for (const json& res : results) {
    bench::ChartSeries a{res["label"], {}}, b{res["label"], {}};
    for (const std::string& x : tput.x_labels) {
      double t = NAN, f = NAN;
      for (const json& r : res["runs"]) {
        if (r["rate"] == x) t = r["output_tok_s"], f = r["ttft_ms"]["p99"];
      }
      a.y.push_back(t);
      b.y.push_back(f);
    }
    tput.series.push_back(a);
    ttft.series.push_back(b);
  }
  const json& w = results.front()["workload"];
  return bench::line_chart_svg({tput, ttft},
                               "bench_serve, " + w["dataset"].get<std::string>() + ", " +
                                   std::to_string(w["num_prompts"].get<int>()) + " prompts, " +
                                   results.front()["date"].get<std::string>());
}

// "1,4,16,inf" as rates; empty when an item is not a number > 0 or "inf".
std::vector<double> parse_rates(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "inf") {
      out.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    char* end = nullptr;
    const double r = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(r > 0)) return {};
    out.push_back(r);
  }
  return out;
}

std::string today() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

// Reads the flags into `o` (usage at the top of the file); returns CLI11's exit code, or -1 to
// go on.
int parse_options(int argc, char** argv, Options& o) {
  CLI::App app("bench_serve: a serving benchmark (see the top of bench/bench_serve.cc)");
  std::string shape, rates;
  app.add_option("--server", o.server, "mlx-serving binary to start");
  app.add_option("--model", o.model, "model folder for --server");
  app.add_option("--config", o.config, "config file for --server");
  app.add_option("--host", o.host);
  app.add_option("--port", o.port, "port of a running server (instead of --server)");
  app.add_option("--dataset", o.dataset)->check(CLI::IsMember({"sharegpt", "fixed"}));
  app.add_option("--shape", shape, "INxOUT tokens, e.g. 512x128 (sets --dataset fixed)")
      ->check([](const std::string& v) {
        int a = 0, b = 0;
        return std::sscanf(v.c_str(), "%dx%d", &a, &b) == 2 && a > 0 && b > 0
                   ? std::string()
                   : "expected INxOUT with positive numbers, e.g. 512x128";
      });
  app.add_option("--num-prompts", o.num_prompts)->check(CLI::PositiveNumber);
  app.add_option("--rates", rates, "requests/s, comma-separated; inf = all at once")
      ->check([](const std::string& v) {
        return parse_rates(v).empty() ? "expected numbers > 0 or inf, comma-separated"
                                      : std::string();
      });
  app.add_option("--max-concurrency", o.max_concurrency);
  app.add_option("--seed", o.seed);
  app.add_option("--vocab", o.vocab)->check(CLI::PositiveNumber);
  app.add_option("--model-name", o.model_name);
  app.add_option("--ignore-eos", o.ignore_eos);
  app.add_option("--temperature", o.temperature);
  app.add_option("--label", o.label);
  app.add_option("--json", o.json_path);
  app.add_option("--svg", o.svg_path);
  app.add_option("--compare", o.compare, "an earlier --json result to draw beside (repeatable)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!shape.empty()) {
    o.dataset = "fixed";
    std::sscanf(shape.c_str(), "%dx%d", &o.input_len, &o.output_len);
  }
  if (!rates.empty()) o.rates = parse_rates(rates);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = parse_options(argc, argv, o); rc >= 0) return rc;
  bench::raise_fd_limit();
  int pid = 0;
  if (!o.server.empty()) {
    auto [p, port] = bench::spawn_server(o.server, o.model, o.config);
    if (port == 0) {
      std::fprintf(stderr, "bench_serve: the server did not start\n");
      return 1;
    }
    pid = p, o.port = port;
    if (o.model_name.empty()) {
      auto path = std::filesystem::absolute(o.model).lexically_normal();
      if (path.filename().empty()) path = path.parent_path();
      o.model_name = path.filename().string();
    }
  }
  if (o.model_name.empty()) o.model_name = "default";
  if (o.port == 0) {
    std::fprintf(stderr, "bench_serve: give --server BIN (spawn) or --port P\n");
    return 2;
  }
  const tcp::endpoint ep(net::ip::make_address(o.host), uint16_t(o.port));
  json result = {{"label", o.label},
                 {"date", today()},
                 {"workload",
                  {{"dataset", o.dataset == "fixed" ? std::to_string(o.input_len) + "x" +
                                                          std::to_string(o.output_len)
                                                    : o.dataset},
                   {"num_prompts", o.num_prompts},
                   {"seed", o.seed},
                   {"vocab", o.vocab},
                   {"ignore_eos", o.ignore_eos},
                   {"max_concurrency", o.max_concurrency}}},
                 {"runs", json::array()}};
  int failures = 0;
  for (double rate : o.rates) {
    net::io_context ioc;
    Run run(ioc, o, make_workload(o, rate), ep);
    run.start();
    ioc.run();
    json s = summarize(run, rate, o.ignore_eos);
    failures += s["failed"].get<int>() + s.value("short_outputs", 0);
    result["runs"].push_back(s);
    for (const auto& e : s["errors"])
      std::fprintf(stderr, "error: %s\n", e.get<std::string>().c_str());
  }
  print_table(o.label, result["runs"]);
  if (!o.json_path.empty()) std::ofstream(o.json_path) << result.dump(2) << "\n";
  if (!o.svg_path.empty()) {
    std::vector<json> all = {result};
    for (const auto& path : o.compare) {
      std::ifstream in(path);
      json other = json::parse(in, nullptr, false);
      if (!other.is_discarded()) all.push_back(other);
    }
    std::ofstream(o.svg_path) << chart(all);
  }
  if (pid) std::printf("server exit status %d\n", bench::stop_server(pid));
  return failures == 0 ? 0 : 1;
}
