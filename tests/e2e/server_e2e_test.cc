// End-to-end tests of `mlx-serving serve`: each test starts the real binary on a free port
// (--port 0; it prints `listening on HOST:PORT`), then speaks HTTP to it through
// tests/e2e/server_e2e.mjs (node 20, built-in fetch and raw sockets; the SDK section uses the
// official `openai`, `@anthropic-ai/sdk` and `ollama` npm packages that scripts/fetch-fixtures.sh
// pins into .fixtures/e2e/node_modules, openai and @anthropic-ai/sdk also at their current major
// as openai-current and anthropic-current). The process's exit status is checked here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "util/child_process.h"

namespace {

namespace fs = std::filesystem;

const fs::path kSource = MLXS_SOURCE_DIR;
const fs::path kBinary = fs::path(MLXS_BINARY_DIR) / "mlx-serving";

// A running `mlx-serving serve` child with its stdout on a pipe; killed if still alive at the end.
class ServerProcess {
 public:
  // `any_port`: --port 0 (a free port); false: the port comes from the config.
  explicit ServerProcess(std::vector<std::string> extra, bool any_port = true) {
    std::vector<std::string> args = {kBinary.string(), "serve", "--model",
                                     (kSource / "models" / "default").string()};
    if (any_port) args.insert(args.end(), {"--port", "0"});
    args.insert(args.end(), extra.begin(), extra.end());
    log_ = fs::temp_directory_path() /
           ("mlxs_e2e_" + std::to_string(getpid()) + "_" + std::to_string(++counter_) + ".log");
    mlxs::ChildProcess child = mlxs::spawn_child(args, log_.string());
    if (child.pid < 0) return;
    pid_ = child.pid;
    stdout_ = child.out;
    port_ = mlxs::read_listening_port(stdout_);
  }
  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_) std::fclose(stdout_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Waits up to 30 s for the process; its exit code, -1 when it died of a signal, or -2 when it
  // was still running (it is then killed, so a failed section never hangs the suite).
  int wait_exit() {
    int status = 0;
    for (int i = 0; i < 3000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      usleep(10000);
    }
    return -2;  // the destructor kills and reaps it
  }
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  int port_ = 0;
  bool reaped_ = false;
  FILE* stdout_ = nullptr;
  fs::path log_;
};

fs::path node_modules() {
  return kSource / ".fixtures" / "e2e" / "node_modules";
}

// Runs one section of server_e2e.mjs against `server`; its exit status (0 = every check passed).
int run_section(const std::string& section, const ServerProcess& server,
                const std::string& key = "") {
  std::string cmd = "MLXS_E2E_NODE_MODULES='" + node_modules().string() + "' node '" +
                    (kSource / "tests" / "e2e" / "server_e2e.mjs").string() + "' " + section + " " +
                    server.url() + " " + std::to_string(server.pid()) + " '" + key + "'";
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

fs::path write_config(const std::string& name, const std::string& yaml) {
  fs::path p =
      fs::temp_directory_path() / ("mlxs_e2e_" + std::to_string(getpid()) + "_" + name + ".yaml");
  std::ofstream(p) << yaml;
  return p;
}

class ServerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBinary)) << "build the mlx-serving target first";
    ASSERT_EQ(std::system("node --version > /dev/null 2>&1"), 0) << "node (20+) is required";
  }
};

TEST_F(ServerE2E, EveryRouteStreamingAndNot) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("routes", server), 0) << server.log();
  // The startup log names the KV pool's size.
  EXPECT_NE(server.log().find("model default: KV pool "), std::string::npos) << server.log();
}

TEST_F(ServerE2E, BadRequestsGetTheirErrorsAndHurtNoOne) {
  auto config = write_config("errors", "server:\n  max_body_bytes: 1048576\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("errors", server), 0) << server.log();
}

TEST_F(ServerE2E, ApiKeyIsRequiredWhenSet) {
  ServerProcess server({"--api-key", "sekret-123"});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("auth", server, "sekret-123"), 0) << server.log();
}

TEST_F(ServerE2E, OfficialOpenAIAndAnthropicClients) {
  ASSERT_TRUE(fs::exists(node_modules() / "openai"))
      << "run scripts/fetch-fixtures.sh (installs the pinned openai and @anthropic-ai/sdk "
         "packages)";
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("sdk", server), 0) << server.log();
}

// Issue 21 item 6: the current majors of openai and @anthropic-ai/sdk (fields, error codes,
// count_tokens, Anthropic's model list, 100 Continue).
TEST_F(ServerE2E, CurrentOfficialClientsTripOnNothing) {
  ASSERT_TRUE(fs::exists(node_modules() / "openai-current")) << "run scripts/fetch-fixtures.sh";
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("clients_current", server), 0) << server.log();
}

TEST_F(ServerE2E, OllamaApiWithTheOfficialClient) {
  ASSERT_TRUE(fs::exists(node_modules() / "ollama")) << "run scripts/fetch-fixtures.sh";
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("ollama", server), 0) << server.log();
}

TEST_F(ServerE2E, ResponsesApiWithTheOfficialClient) {
  ASSERT_TRUE(fs::exists(node_modules() / "openai-current")) << "run scripts/fetch-fixtures.sh";
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("responses", server), 0) << server.log();
}

// server.responses_store_size bounds the responses kept for previous_response_id.
TEST_F(ServerE2E, ResponsesStoreSizeFromTheConfig) {
  auto config = write_config("responses_store", "server:\n  responses_store_size: 1\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("responses_store", server), 0) << server.log();
}

// Needs the engine's constrained decoding: the forced calls go through a grammar.
TEST_F(ServerE2E, ToolRoundTripWithTheOfficialClients) {
  ASSERT_TRUE(fs::exists(node_modules() / "openai")) << "run scripts/fetch-fixtures.sh";
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("tools", server), 0) << server.log();
}

TEST_F(ServerE2E, ToolsOfferedWithAutoAndToolMessages) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("tools_auto", server), 0) << server.log();
}

TEST_F(ServerE2E, CapacityRefusalIs429WithRetryAfter) {
  auto config = write_config("capacity", "stream_registry:\n  max_active_streams: 1\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("capacity", server), 0) << server.log();
}

TEST_F(ServerE2E, DisconnectCancelsAndFreesKv) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("disconnect", server), 0) << server.log();
  EXPECT_NE(server.log().find("\"outcome\":\"client_disconnected\""), std::string::npos);
}

TEST_F(ServerE2E, SigtermDuringStreamingEndsTheStreamAndExitsZero) {
  auto config = write_config("sigterm", "server:\n  shutdown_deadline_ms: 500\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_section("sigterm", server), 0) << server.log();
  EXPECT_EQ(server.wait_exit(), 0) << server.log();
  EXPECT_NE(server.log().find("\"event\":\"shutdown\""), std::string::npos);
}

// Runs `script` (JavaScript, with `url` bound to the server's address) in node; its exit status.
int run_js(const ServerProcess& server, const std::string& script) {
  fs::path file = fs::temp_directory_path() / ("mlxs_e2e_" + std::to_string(getpid()) + "_" +
                                               std::to_string(server.port()) + ".mjs");
  std::ofstream(file) << "const url = '" << server.url() << "';\n" << script;
  int status = std::system(("node '" + file.string() + "'").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(ServerE2E, TelemetryMetricsFalseAnswers404) {
  auto config = write_config("no_metrics", "telemetry:\n  metrics: false\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_js(server, R"(
const r = await fetch(url + '/metrics');
const body = await r.text();
if (r.status !== 404 || !body.includes('telemetry.metrics')) {
  console.error(r.status, body); process.exit(1);
}
const h = await fetch(url + '/health');
process.exit(h.status === 200 ? 0 : 2);
)"),
            0)
      << server.log();
  ServerProcess with_metrics({});
  ASSERT_GT(with_metrics.port(), 0);
  EXPECT_EQ(
      run_js(with_metrics,
             "const r = await fetch(url + '/metrics'); process.exit(r.status === 200 ? 0 : 1);"),
      0);
}

// sampling.max_tokens is the default of a chat request that gives no max_tokens (it was a literal
// 512 on the HTTP path).
TEST_F(ServerE2E, UnsetMaxTokensIsTheConfiguredDefault) {
  auto config =
      write_config("default_max_tokens", "sampling:\n  max_tokens: 3\n  temperature: 0\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_js(server, R"(
const r = await fetch(url + '/v1/chat/completions', {method: 'POST',
  headers: {'content-type': 'application/json'},
  body: JSON.stringify({model: 'default', messages: [{role: 'user', content: 'Tell me a story'}]})});
const j = await r.json();
if (r.status !== 200 || j.usage.completion_tokens !== 3 || j.choices[0].finish_reason !== 'length') {
  console.error(r.status, JSON.stringify(j)); process.exit(1);
}
)"),
            0)
      << server.log();
}

TEST_F(ServerE2E, MaxGenerationTokensIsA400NamingTheField) {
  auto config = write_config(
      "max_gen", "model:\n  limits:\n    max_generation_tokens: 8\nsampling:\n  max_tokens: 8\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_js(server, R"(
const r = await fetch(url + '/v1/chat/completions', {method: 'POST',
  headers: {'content-type': 'application/json'},
  body: JSON.stringify({model: 'default', max_tokens: 9, messages: [{role: 'user', content: 'Hi'}]})});
const j = await r.json();
if (r.status !== 400 || !j.error.message.includes('model.limits.max_generation_tokens')) {
  console.error(r.status, JSON.stringify(j)); process.exit(1);
}
)"),
            0)
      << server.log();
}

// Checked before tokenizing, on every route that takes text (issue 22, finding 6).
TEST_F(ServerE2E, PromptOverMaxPromptCharsIsA400) {
  auto config = write_config("prompt_chars", "model:\n  limits:\n    max_prompt_chars: 200\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_js(server, R"(
const long = 'x'.repeat(201);
for (const [route, body] of [
    ['/v1/completions', {model: 'default', prompt: long, max_tokens: 2}],
    ['/v1/chat/completions', {model: 'default', max_tokens: 2, messages: [{role: 'user', content: long}]}],
    ['/tokenize', {model: 'default', prompt: long}]]) {
  const r = await fetch(url + route, {method: 'POST', headers: {'content-type': 'application/json'},
                                      body: JSON.stringify(body)});
  const j = await r.json();
  if (r.status !== 400 || !JSON.stringify(j).includes('model.limits.max_prompt_chars')) {
    console.error(route, r.status, JSON.stringify(j)); process.exit(1);
  }
}
const ok = await fetch(url + '/v1/completions', {method: 'POST', headers: {'content-type': 'application/json'},
  body: JSON.stringify({model: 'default', prompt: 'x'.repeat(150), max_tokens: 2})});
process.exit(ok.status === 200 ? 0 : 2);
)"),
            0)
      << server.log();
}

// server.max_streams_per_connection and server.write_timeout_ms from the config (issue 22,
// finding 5): a request for more streams than a connection may hold is a 400 naming the key; a
// client that stops reading is dropped once a write has waited write_timeout_ms.
// server.max_response_bytes (finding 7): a non-streamed response estimated above it is a 400
// naming the key. server.tokenizer_threads (finding 6): one tokenizer thread serves them all.
TEST_F(ServerE2E, ConnectionLimitsFromTheConfig) {
  auto config = write_config("connection_limits",
                             "server:\n  max_streams_per_connection: 1\n  write_timeout_ms: 200\n"
                             "  max_response_bytes: 65536\n  tokenizer_threads: 1\n");
  ServerProcess server({"--config", config.string()});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(run_js(server, R"(
import net from 'node:net';
const r = await fetch(url + '/v1/completions', {method: 'POST',
  headers: {'content-type': 'application/json'},
  body: JSON.stringify({model: 'default', prompt: 'Hi', max_tokens: 2, n: 2})});
const j = await r.json();
if (r.status !== 400 || !j.error.message.includes('server.max_streams_per_connection')) {
  console.error(r.status, JSON.stringify(j)); process.exit(1);
}
const big = await fetch(url + '/v1/completions', {method: 'POST',
  headers: {'content-type': 'application/json'},
  body: JSON.stringify({model: 'default', prompt: 'Hi', max_tokens: 1000, logprobs: 20})});
const bj = await big.json();
if (big.status !== 400 || !bj.error.message.includes('server.max_response_bytes (65536 bytes)')) {
  console.error(big.status, JSON.stringify(bj)); process.exit(3);
}
// A /tokenize answer of a few MB to a socket nobody reads.
const body = JSON.stringify({model: 'default', prompt: 'x '.repeat(500000)});
const u = new URL(url);
const sock = net.connect(Number(u.port), u.hostname, () => sock.write(
  `POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
sock.pause();
sock.on('error', () => {});
const inFlight = async () => Number((await (await fetch(url + '/metrics')).text())
  .match(/\nmlxs_http_requests_in_flight (\d+)/)[1]);
let seen = false;
for (let i = 0; i < 400; ++i) {
  const n = await inFlight();  // this /metrics request counts itself
  if (n >= 2) seen = true;
  if (seen && n === 1) { sock.destroy(); process.exit(0); }
  await new Promise((done) => setTimeout(done, 50));
}
console.error('the client that stopped reading was not dropped'); process.exit(2);
)"),
            0)
      << server.log();
}

// A port nobody listens on now (bound, then released).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// host, port and api_key from the config file's server section (no flags).
TEST_F(ServerE2E, ServerKeysFromTheConfig) {
  const int port = free_port();
  auto config =
      write_config("server_keys", "server:\n  host: 0.0.0.0\n  port: " + std::to_string(port) +
                                      "\n  api_key: cfg-key-9\n");
  ServerProcess server({"--config", config.string()}, /*any_port=*/false);
  ASSERT_EQ(server.port(), port) << server.log();
  EXPECT_EQ(run_section("auth", server, "cfg-key-9"), 0) << server.log();
}

int count_threads_named(pid_t pid, const std::string& name) {
  int n = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream in(task.path() / "comm");
    std::string comm;
    std::getline(in, comm);
    n += comm == name;
  }
  return n;
}

// Threads of `pid` named `name` (/proc/PID/task/*/comm), once there are `want` of them or 5 s
// have passed (the server prints its port before it starts the I/O threads).
int threads_named(pid_t pid, const std::string& name, int want) {
  int n = 0;
  for (int i = 0; i < 500 && (n = count_threads_named(pid, name)) != want; ++i) usleep(10000);
  return n;
}

// server.io_threads and server.log_requests from the config: the I/O threads besides the
// calling one are named mlxs-io, and no request line is logged.
TEST_F(ServerE2E, IoThreadsAndRequestLogFromTheConfig) {
  const std::string health =
      "const h = await fetch(url + '/v1/models'); process.exit(h.status === 200 ? 0 : 1);";
  auto config = write_config("io_quiet", "server:\n  io_threads: 4\n  log_requests: false\n");
  ServerProcess quiet({"--config", config.string()});
  ASSERT_GT(quiet.port(), 0) << quiet.log();
  EXPECT_EQ(threads_named(quiet.pid(), "mlxs-io", 3), 3);
  EXPECT_EQ(run_js(quiet, health), 0);
  EXPECT_EQ(quiet.log().find("\"event\":\"request\""), std::string::npos) << quiet.log();
  ServerProcess defaults({});  // 2 I/O threads, one line per request
  ASSERT_GT(defaults.port(), 0);
  EXPECT_EQ(threads_named(defaults.pid(), "mlxs-io", 1), 1);
  EXPECT_EQ(run_js(defaults, health), 0);
  kill(defaults.pid(), SIGTERM);
  EXPECT_EQ(defaults.wait_exit(), 0);
  EXPECT_NE(defaults.log().find("\"event\":\"request\""), std::string::npos) << defaults.log();
}

// A cluster that is asked for and not available never starts as a lone node.
TEST_F(ServerE2E, ClusterEnabledRefusesToStart) {
  auto config = write_config("cluster", "cluster:\n  enabled: true\n");
  ServerProcess server({"--config", config.string()});
  EXPECT_LE(server.port(), 0);
  EXPECT_EQ(server.wait_exit(), 1);
  EXPECT_NE(server.log().find("'cluster.enabled': not available in this build yet"),
            std::string::npos)
      << server.log();
}

TEST_F(ServerE2E, SigtermWhenIdleExitsZero) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  kill(server.pid(), SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0) << server.log();
}

}  // namespace
