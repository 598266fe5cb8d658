// Soak test of `mlx-serving serve` (issue 22, deliverable 4): for a given time, N client threads
// send mixed traffic, each request on its own connection: streamed and non-streamed generations
// on the OpenAI (chat, completions) and Anthropic (messages) routes, cancels (the client closes
// the connection after the first event), bad requests (malformed JSON, wrong types, out-of-range
// fields: 4xx expected), structured output (response_format json_schema: the answer must
// match), and hostile bodies (JSON nested 100,000 deep, a body over server.max_body_bytes, a body
// cut short).
//
// Every request has a deadline; one that has not ended by then is "hung". It prints requests by
// kind, statuses, failures, and the server's RSS (/proc/PID/status), open fds (/proc/PID/fd) and
// /metrics gauges at start, after warm-up and at the end (traffic stopped, gauges given time to
// settle). Exit status 1 when a request failed or hung, the server died, its gauges did not return
// to idle, RSS at the end exceeds RSS after warm-up by more than --rss-tolerance-mb, or open fds at
// the end exceed those at start by more than --fd-tolerance. Not a test: it prints a table for
// bench/RESULTS.md.
//
// Usage: soak [--server BIN --model DIR --config FILE | --port P --pid PID] [--seconds 3600]
//             [--clients 8] [--warmup S] [--deadline 120] [--max-tokens 16]
//             [--rss-tolerance-mb 64] [--fd-tolerance 4] [--seed 1]

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_http.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string server, model = "models/default", config;
  int port = 0, pid = 0, clients = 8, max_tokens = 16, seed = 1, fd_tolerance = 4;
  double seconds = 3600, warmup = -1, deadline = 120, rss_tolerance_mb = 64;
};

// What a kind of request expects back.
enum class Expect {
  kOk,             // 200 and a complete JSON body
  kOkJsonContent,  // kOk, and a message that ends with reason stop holds a JSON object
  kOkStream,       // 200 and a complete event stream ending with [DONE] or message_stop
  kCancel,         // 200; the client closes after the first event
  kClientErr,      // a 4xx
  kNoAnswer,       // the client closes before its body is complete: nothing to check but the server
};

struct Kind {
  const char* name;
  int weight;
  Expect expect;
  std::string request;  // the whole HTTP request
};

std::string http_post(const std::string& path, const std::string& body,
                      const std::string& content_length = "") {
  return "POST " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
         "Content-Type: application/json\r\nanthropic-version: 2023-06-01\r\nContent-Length: " +
         (content_length.empty() ? std::to_string(body.size()) : content_length) + "\r\n\r\n" +
         body;
}

std::vector<Kind> make_kinds(const Options& o) {
  const json chat = {{"model", "default"},
                     {"messages", {{{"role", "user"}, {"content", "Tell me about the sea."}}}},
                     {"max_tokens", o.max_tokens}};
  const json completion = {{"model", "default"},
                           {"prompt", "Call me Ishmael. Some years ago"},
                           {"max_tokens", o.max_tokens}};
  auto with = [](json j, const json& extra) {
    j.update(extra);
    return j.dump();
  };
  const json stream = {{"stream", true}};
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string deep_body =
      R"({"model":"default","messages":[{"role":"user","content":)" + deep + "}]}";
  std::string huge_body = with(completion, {{"prompt", std::string(9 << 20, 'a')}});
  const std::string chat_path = "/v1/chat/completions", comp_path = "/v1/completions",
                    msg_path = "/v1/messages";
  return {
      {"openai_chat", 10, Expect::kOk, http_post(chat_path, chat.dump())},
      {"openai_chat_stream", 10, Expect::kOkStream, http_post(chat_path, with(chat, stream))},
      {"openai_completion", 6, Expect::kOk, http_post(comp_path, completion.dump())},
      {"openai_completion_stream", 6, Expect::kOkStream,
       http_post(comp_path, with(completion, {{"stream", true},
                                              {"stream_options", {{"include_usage", true}}},
                                              {"n", 2},
                                              {"logprobs", 2}}))},
      {"anthropic", 6, Expect::kOk, http_post(msg_path, chat.dump())},
      {"anthropic_stream", 6, Expect::kOkStream, http_post(msg_path, with(chat, stream))},
      {"response_format_text", 3, Expect::kOk,
       http_post(chat_path, with(chat, {{"response_format", {{"type", "text"}}}}))},
      {"cancel_openai_stream", 5, Expect::kCancel,
       http_post(chat_path, with(chat, {{"stream", true}, {"max_tokens", 200}}))},
      {"cancel_anthropic_stream", 3, Expect::kCancel,
       http_post(msg_path, with(chat, {{"stream", true}, {"max_tokens", 200}}))},
      {"bad_json", 3, Expect::kClientErr,
       http_post(chat_path, R"({"model":"default","messages":[)")},
      {"bad_type", 3, Expect::kClientErr,
       http_post(chat_path, with(chat, {{"max_tokens", "many"}}))},
      {"bad_range", 3, Expect::kClientErr,
       http_post(comp_path, with(completion, {{"n", 100000}, {"temperature", -3}}))},
      {"bad_over_limit", 2, Expect::kClientErr,
       http_post(comp_path, with(completion, {{"max_tokens", 1 << 30}}))},
      // Structured output: the answer is JSON of the schema whenever the grammar ended it.
      {"structured_json_schema", 3, Expect::kOkJsonContent,
       http_post(chat_path, with(chat, {{"response_format",
                                         {{"type", "json_schema"},
                                          {"json_schema",
                                           {{"name", "x"},
                                            {"schema",
                                             {{"type", "object"},
                                              {"properties", {{"a", {{"type", "integer"}}}}},
                                              {"required", {"a"}}}}}}}}}))},
      {"hostile_deep_nesting", 1, Expect::kClientErr, http_post(chat_path, deep_body)},
      {"hostile_huge_body", 1, Expect::kClientErr, http_post(comp_path, huge_body)},
      {"hostile_cut_body", 2, Expect::kNoAnswer,
       http_post(chat_path, chat.dump().substr(0, 20), "500")},
  };
}

struct Outcome {
  int status = 0;       // HTTP status, 0 when none came
  bool hung = false;    // the deadline passed
  std::string failure;  // empty when the request did what its kind expects
  size_t received = 0;  // response bytes that came (tells a hung request's stage)
};

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits until fd is ready for `events` or the deadline; false on the deadline.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, int(std::min<int64_t>(left.count(), 1000)));
    if (r > 0) return true;
  }
}

Outcome run_one(const Kind& k, int port, double deadline_s) {
  Outcome out;
  const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(deadline_s * 1e3));
  int fd = connect_to(port);
  if (fd < 0) {
    out.failure = "connect failed";
    return out;
  }
  size_t sent = 0;
  bool write_failed = false;
  while (sent < k.request.size()) {
    if (!wait_for(fd, POLLOUT, deadline)) {
      out.hung = true;
      break;
    }
    ssize_t n =
        send(fd, k.request.data() + sent, k.request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      write_failed = true;  // the server may have answered early (e.g. 413) and closed
      break;
    }
    sent += size_t(n);
  }
  if (k.expect == Expect::kNoAnswer || out.hung) {
    close(fd);
    return out;
  }
  bench::ResponseReader reader;
  bool events = false, done_event = false;
  char buf[65536];
  for (;;) {
    if (!wait_for(fd, POLLIN, deadline)) {
      out.hung = true;
      break;
    }
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;  // closed (or reset)
    out.received += size_t(n);
    bool ok = reader.feed(buf, size_t(n), [&](const std::string& d) {
      events = true;
      if (d == "[DONE]" || d.find(R"("type":"message_stop")") != std::string::npos)
        done_event = true;
    });
    if (!ok) {
      out.failure = "malformed HTTP response";
      break;
    }
    if (k.expect == Expect::kCancel && reader.status() == 200 && events) {
      break;
    }
    if (reader.done()) break;
  }
  close(fd);
  out.status = reader.status();
  if (out.hung || !out.failure.empty()) return out;
  const bool openai = k.request.find("/v1/messages") == std::string::npos;
  switch (k.expect) {
    case Expect::kOk:
      if (out.status != 200 || !reader.done())
        out.failure = "expected 200, got " + std::to_string(out.status);
      else if (json::parse(reader.body(), nullptr, false).is_discarded())
        out.failure = "200 body is not JSON";
      break;
    case Expect::kOkJsonContent: {
      const json body = json::parse(reader.body(), nullptr, false);
      if (out.status != 200 || !reader.done() || body.is_discarded()) {
        out.failure = "expected 200 with a JSON body, got " + std::to_string(out.status);
        break;
      }
      // Copies, not references: value() returns a temporary.
      const json choices = body.value("choices", json::array());
      const json choice = choices.is_array() && !choices.empty() ? choices[0] : json::object();
      const json message = choice.value("message", json::object());
      const json text = message.is_object() ? message.value("content", json()) : json();
      if (!choice.is_object() || !text.is_string()) {
        out.failure = "200 body without choices[0].message.content: " + reader.body();
        break;
      }
      if (choice.value("finish_reason", "") != "stop") break;  // cut by max_tokens
      const json content = json::parse(text.get<std::string>(), nullptr, false);
      if (!content.is_object() || !content.contains("a") || !content["a"].is_number_integer())
        out.failure = "structured answer does not match its schema: " + text.get<std::string>();
      break;
    }
    case Expect::kOkStream:
      if (out.status != 200 || !reader.done())
        out.failure = "expected a complete 200 stream, got " + std::to_string(out.status);
      else if (!done_event)
        out.failure = openai ? "stream without [DONE]" : "stream without message_stop";
      break;
    case Expect::kCancel:
      if (out.status != 200) out.failure = "expected 200, got " + std::to_string(out.status);
      break;
    case Expect::kClientErr:
      if (out.status < 400 || out.status > 499) {
        out.failure = "expected 4xx, got " + std::to_string(out.status) +
                      (write_failed ? " (send failed: the server closed first)" : "");
      }
      break;
    case Expect::kNoAnswer:
      break;
  }
  if (!out.failure.empty()) out.failure += ": " + reader.body().substr(0, 160);
  return out;
}

// GET path on its own connection; the body, empty on failure.
std::string http_get(int port, const std::string& path) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  bench::ResponseReader reader;
  char buf[65536];
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!reader.done() && wait_for(fd, POLLIN, deadline)) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || !reader.feed(buf, size_t(n), [](const std::string&) {})) break;
  }
  close(fd);
  return reader.done() && reader.status() == 200 ? reader.body() : "";
}

// The sum over labels of each series named in `names` (-1 when absent).
std::map<std::string, double> gauges(int port) {
  static const char* kNames[] = {"mlxs_http_requests_in_flight", "mlxs_http_connections",
                                 "mlxs_active_streams",          "mlxs_num_requests_running",
                                 "mlxs_num_requests_waiting",    "mlxs_num_requests_paused",
                                 "mlxs_kv_blocks_used"};
  std::map<std::string, double> g;
  for (const char* n : kNames) g[n] = -1;
  const std::string text = http_get(port, "/metrics");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    auto it = g.find(name);
    if (it == g.end()) continue;
    const double v = std::atof(line.c_str() + line.rfind(' ') + 1);
    it->second = (it->second < 0 ? 0 : it->second) + v;
  }
  return g;
}

int open_fds(int pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

struct Snapshot {
  long rss_kb = -1;
  int fds = -1;
  std::map<std::string, double> gauges;
};

Snapshot snapshot(const Options& o) {
  Snapshot s;
  if (o.pid) s.rss_kb = bench::rss_kb(o.pid), s.fds = open_fds(o.pid);
  s.gauges = gauges(o.port);
  return s;
}

// The gauges of an idle server: only the /metrics request itself in flight, nothing scheduled.
bool idle(const Snapshot& s) {
  for (const auto& [name, v] : s.gauges) {
    if (v < 0) return false;
    if (name == "mlxs_http_requests_in_flight" || name == "mlxs_http_connections") {
      if (v > 1) return false;
    } else if (v != 0) {
      return false;
    }
  }
  return true;
}

struct Stats {
  std::mutex mu;
  std::map<std::string, int64_t> sent, failed, hung;
  std::map<std::string, std::vector<double>> seconds;
  std::map<int, int64_t> statuses;
  std::vector<std::string> samples;
  std::vector<std::string> hung_samples;  // when each hung request began, and how far it got
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("soak: mixed HTTP traffic against mlx-serving serve (see the top of bench/soak.cc)");
  app.add_option("--server", o.server, "mlx-serving binary to start");
  app.add_option("--model", o.model, "model folder for --server");
  app.add_option("--config", o.config, "config file for --server");
  app.add_option("--port", o.port, "port of a running server (instead of --server)");
  app.add_option("--pid", o.pid, "pid of that server (for RSS and fds)");
  app.add_option("--clients", o.clients)->check(CLI::PositiveNumber);
  app.add_option("--seconds", o.seconds)->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "seconds (default: min(60, seconds / 10))");
  app.add_option("--deadline", o.deadline, "seconds after which a request is hung")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-tokens", o.max_tokens)->check(CLI::PositiveNumber);
  app.add_option("--rss-tolerance-mb", o.rss_tolerance_mb);
  app.add_option("--fd-tolerance", o.fd_tolerance);
  app.add_option("--seed", o.seed);
  CLI11_PARSE(app, argc, argv);
  if (o.warmup < 0) o.warmup = std::min(60.0, o.seconds / 10);
  bench::raise_fd_limit();
  bool spawned = false;
  if (!o.server.empty()) {
    auto [pid, port] = bench::spawn_server(o.server, o.model, o.config);
    if (port == 0) {
      std::fprintf(stderr, "soak: the server did not start\n");
      return 1;
    }
    o.pid = pid, o.port = port, spawned = true;
  }
  if (o.port == 0) {
    std::fprintf(stderr, "soak: give --server BIN (spawn) or --port P [--pid PID]\n");
    return 2;
  }
  const std::vector<Kind> kinds = make_kinds(o);
  int total_weight = 0;
  for (const auto& k : kinds) total_weight += k.weight;

  const Snapshot start = snapshot(o);
  const auto t0 = Clock::now();
  const auto stop_at = t0 + std::chrono::milliseconds(int64_t(o.seconds * 1e3));
  Stats stats;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(uint32_t(o.seed * 7919 + c));
      while (!stop && Clock::now() < stop_at) {
        int pick = int(rng() % uint32_t(total_weight));
        size_t i = 0;
        while (pick >= kinds[i].weight) pick -= kinds[i++].weight;
        const Kind& k = kinds[i];
        const auto began = Clock::now();
        Outcome r = run_one(k, o.port, o.deadline);
        const double took = std::chrono::duration<double>(Clock::now() - began).count();
        std::lock_guard<std::mutex> lock(stats.mu);
        stats.seconds[k.name].push_back(took);
        ++stats.sent[k.name];
        ++stats.statuses[r.status];
        if (r.hung) {
          ++stats.hung[k.name];
          char line[160];
          std::snprintf(line, sizeof line, "%s began at %.0f s: status %d, %zu bytes received",
                        k.name, std::chrono::duration<double>(began - t0).count(), r.status,
                        r.received);
          if (stats.hung_samples.size() < 20) stats.hung_samples.push_back(line);
        }
        if (!r.failure.empty()) {
          ++stats.failed[k.name];
          if (stats.samples.size() < 10)
            stats.samples.push_back(std::string(k.name) + ": " + r.failure);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(o.warmup * 1e3)));
  const Snapshot warm = snapshot(o);
  for (auto& t : clients) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  // Cancelled streams end in the engine a step later: give the gauges time to settle.
  Snapshot end = snapshot(o);
  for (int i = 0; i < 100 && !idle(end); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    end = snapshot(o);
  }
  const bool alive = !http_get(o.port, "/health").empty();

  int64_t sent = 0, failed = 0, hung = 0;
  std::printf("| kind | requests | failed | hung | p50 s | max s |\n|---|---|---|---|---|---|\n");
  for (const auto& k : kinds) {
    const auto& t = stats.seconds[k.name];
    std::printf("| %s | %ld | %ld | %ld | %.2f | %.2f |\n", k.name, long(stats.sent[k.name]),
                long(stats.failed[k.name]), long(stats.hung[k.name]), bench::percentile(t, 0.5),
                t.empty() ? 0.0 : *std::max_element(t.begin(), t.end()));
    sent += stats.sent[k.name], failed += stats.failed[k.name], hung += stats.hung[k.name];
  }
  std::printf("| **all** | %ld | %ld | %ld | | |\n\n", long(sent), long(failed), long(hung));
  std::printf("statuses:");
  for (const auto& [s, n] : stats.statuses)
    std::printf(" %s=%ld", s ? std::to_string(s).c_str() : "none", long(n));
  std::printf("\n\n| | start | after warm-up (%.0f s) | end |\n|---|---|---|---|\n", o.warmup);
  std::printf("| RSS MB | %.1f | %.1f | %.1f |\n", start.rss_kb / 1024.0, warm.rss_kb / 1024.0,
              end.rss_kb / 1024.0);
  std::printf("| open fds | %d | %d | %d |\n", start.fds, warm.fds, end.fds);
  for (const auto& [name, v] : start.gauges) {
    std::printf("| %s | %g | %g | %g |\n", name.c_str(), v, warm.gauges.at(name),
                end.gauges.at(name));
  }
  std::printf("\n%.0f s, %d clients, %.1f requests/s\n", secs, o.clients, double(sent) / secs);
  for (const auto& s : stats.samples) std::printf("failure: %s\n", s.c_str());
  for (const auto& s : stats.hung_samples) std::printf("hung: %s\n", s.c_str());

  std::vector<std::string> verdict;
  if (failed) verdict.push_back(std::to_string(failed) + " requests failed");
  if (hung) verdict.push_back(std::to_string(hung) + " requests hung");
  if (!alive) verdict.push_back("the server does not answer /health");
  if (!idle(end)) verdict.push_back("gauges not back at idle");
  if (o.pid && end.rss_kb - warm.rss_kb > long(o.rss_tolerance_mb * 1024))
    verdict.push_back("RSS grew by more than " + std::to_string(int(o.rss_tolerance_mb)) +
                      " MB after warm-up");
  if (o.pid && end.fds - start.fds > o.fd_tolerance)
    verdict.push_back("open fds grew by more than " + std::to_string(o.fd_tolerance));
  if (spawned) {
    const int status = bench::stop_server(o.pid);
    std::printf("server exit status %d\n", status);
    if (status != 0) verdict.push_back("server exit status " + std::to_string(status));
  }
  std::printf("verdict: %s\n", verdict.empty() ? "PASS" : "FAIL");
  for (const auto& v : verdict) std::printf("  %s\n", v.c_str());
  return verdict.empty() ? 0 : 1;
}
