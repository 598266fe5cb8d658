// Load benchmark of `mlx-serving serve`: N concurrent streaming clients on loopback (async, one
// io_context, one thread), each sending POST /v1/completions with stream=true and
// stream_options.include_usage over its own keep-alive connection, until the request count or
// the time bound is reached. Prints requests/s, output tokens/s, TTFT and inter-token latency
// p50/p99 (client clock), errors, lost tokens (token events received vs usage.completion_tokens)
// and the server's RSS before/after. Not a test: it prints a table for bench/RESULTS.md.
//
// Usage: bench_load [--server BIN --model DIR --config FILE | --port P --pid PID]
//                   [--clients 1000] [--requests N] [--seconds 300] [--max-tokens 16]
//                   [--prompt TEXT]

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_http.h"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string server, model = "models/default", config, prompt = "Call me Ishmael. Some years ago";
  int port = 0, pid = 0, clients = 1000, requests = 0, max_tokens = 16;
  double seconds = 300;
};

struct Totals {
  int64_t requests_ok = 0, errors = 0, tokens = 0, usage_tokens = 0, lost_tokens = 0;
  std::vector<double> ttft_ms, itl_ms;
  int64_t started = 0;
  std::vector<std::string> error_samples;
};

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(net::io_context& ioc, tcp::endpoint ep, const Options& o, Totals& t, int64_t* budget,
         Clock::time_point deadline)
      : socket_(ioc), ep_(ep), o_(o), t_(t), budget_(budget), deadline_(deadline) {}
  void start(const std::string& request) {
    request_ = request;
    socket_.async_connect(ep_, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail("connect: " + ec.message(), false);
      self->next();
    });
  }

 private:
  void next() {
    if (*budget_ <= 0 || Clock::now() >= deadline_) return close();
    --*budget_;
    ++t_.started;
    reader_ = bench::ResponseReader();
    tokens_ = 0;
    usage_ = -1;
    sent_ = Clock::now();
    last_ = {};
    net::async_write(socket_, net::buffer(request_),
                     [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec) return self->fail("write: " + ec.message(), true);
                       self->read();
                     });
  }
  void read() {
    socket_.async_read_some(
        net::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          if (ec) return self->fail("read: " + ec.message(), true);
          bool ok = self->reader_.feed(self->buf_.data(), n,
                                       [&](const std::string& d) { self->on_event(d); });
          if (!ok) return self->fail("bad response", true);
          if (!self->reader_.done()) return self->read();
          self->finish();
        });
  }
  void on_event(const std::string& data) {
    if (data == "[DONE]") return;
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded()) return;
    if (j.contains("usage") && j["usage"].is_object())
      usage_ = j["usage"]["completion_tokens"].get<int>();
    if (!j.contains("choices") || j["choices"].empty()) return;
    const auto& c = j["choices"][0];
    if (!c["finish_reason"].is_null()) return;
    const auto now = Clock::now();
    if (tokens_ == 0)
      t_.ttft_ms.push_back(ms(now - sent_));
    else
      t_.itl_ms.push_back(ms(now - last_));
    last_ = now;
    ++tokens_;
  }
  void finish() {
    if (reader_.status() != 200 || usage_ < 0) {
      return fail(std::to_string(reader_.status()) + " " + reader_.body().substr(0, 200), false);
    }
    ++t_.requests_ok;
    t_.tokens += tokens_;
    t_.usage_tokens += usage_;
    t_.lost_tokens += std::abs(usage_ - tokens_);
    next();
  }
  void fail(const std::string& why, bool counted_started) {
    ++t_.errors;
    if (t_.error_samples.size() < 5) t_.error_samples.push_back(why);
    close();
  }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  tcp::endpoint ep_;
  const Options& o_;
  Totals& t_;
  int64_t* budget_;
  Clock::time_point deadline_;
  std::string request_;
  std::array<char, 16384> buf_{};
  bench::ResponseReader reader_;
  int tokens_ = 0, usage_ = -1;
  Clock::time_point sent_, last_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app(
      "bench_load: concurrent streams against mlx-serving serve (see the top of the file)");
  app.add_option("--server", o.server, "mlx-serving binary to start");
  app.add_option("--model", o.model, "model folder for --server");
  app.add_option("--config", o.config, "config file for --server");
  app.add_option("--port", o.port, "port of a running server (instead of --server)");
  app.add_option("--pid", o.pid, "pid of that server (for its RSS)");
  app.add_option("--clients", o.clients)->check(CLI::PositiveNumber);
  app.add_option("--requests", o.requests, "default: --clients");
  app.add_option("--seconds", o.seconds);
  app.add_option("--max-tokens", o.max_tokens)->check(CLI::PositiveNumber);
  app.add_option("--prompt", o.prompt);
  CLI11_PARSE(app, argc, argv);
  if (o.requests <= 0) o.requests = o.clients;
  bench::raise_fd_limit();
  bool spawned = false;
  if (!o.server.empty()) {
    auto [pid, port] = bench::spawn_server(o.server, o.model, o.config);
    if (port == 0) {
      std::fprintf(stderr, "bench_load: the server did not start\n");
      return 1;
    }
    o.pid = pid, o.port = port, spawned = true;
  }
  if (o.port == 0) {
    std::fprintf(stderr, "give --server BIN (spawn) or --port P [--pid PID]\n");
    return 2;
  }
  const long rss_before = o.pid ? bench::rss_kb(o.pid) : -1;
  nlohmann::json body = {
      {"model", "default"}, {"prompt", o.prompt}, {"max_tokens", o.max_tokens},
      {"temperature", 0.8}, {"stream", true},     {"stream_options", {{"include_usage", true}}}};
  const std::string text = body.dump();
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(text.size()) + "\r\n\r\n" + text;
  net::io_context ioc;
  Totals t;
  int64_t budget = o.requests;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(int64_t(o.seconds * 1e3));
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), uint16_t(o.port));
  long rss_peak = 0;
  net::steady_timer sampler(ioc);
  std::function<void()> sample = [&] {
    if (o.pid) rss_peak = std::max(rss_peak, bench::rss_kb(o.pid));
    sampler.expires_after(std::chrono::milliseconds(200));
    sampler.async_wait([&](boost::system::error_code ec) {
      if (!ec) sample();
    });
  };
  sample();
  for (int i = 0; i < o.clients; ++i) {
    std::make_shared<Client>(ioc, ep, o, t, &budget, deadline)->start(request);
  }
  std::thread stopper([&] {
    // the sampler keeps the context alive; stop it once every request has ended
    while (t.requests_ok + t.errors < t.started ||
           t.started < std::min<int64_t>(o.requests, o.clients)) {
      if (Clock::now() > deadline + std::chrono::seconds(30)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (budget <= 0 && t.requests_ok + t.errors >= o.requests) break;
    }
    net::post(ioc, [&] { sampler.cancel(); });
  });
  ioc.run();
  stopper.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long rss_after = o.pid ? bench::rss_kb(o.pid) : -1;
  std::printf(
      "| clients | requests ok | errors | lost tokens | seconds | req/s | out tok/s | TTFT p50 ms "
      "| TTFT p99 ms | ITL p50 ms | ITL p99 ms | server RSS before / peak / after MB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf(
      "| %d | %ld | %ld | %ld | %.1f | %.1f | %.0f | %.0f | %.0f | %.1f | %.1f | %.0f / %.0f / "
      "%.0f |\n",
      o.clients, long(t.requests_ok), long(t.errors), long(t.lost_tokens), secs,
      double(t.requests_ok) / secs, double(t.tokens) / secs, bench::percentile(t.ttft_ms, 0.5),
      bench::percentile(t.ttft_ms, 0.99), bench::percentile(t.itl_ms, 0.5),
      bench::percentile(t.itl_ms, 0.99), rss_before / 1024.0, rss_peak / 1024.0,
      rss_after / 1024.0);
  std::printf("tokens streamed %ld, usage.completion_tokens %ld\n", long(t.tokens),
              long(t.usage_tokens));
  for (const auto& e : t.error_samples) std::printf("error: %s\n", e.c_str());
  if (spawned) std::printf("server exit status %d\n", bench::stop_server(o.pid));
  return t.errors == 0 && t.lost_tokens == 0 ? 0 : 1;
}
