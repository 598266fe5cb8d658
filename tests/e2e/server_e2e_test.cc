// End-to-end tests of `mlx-serving serve`: each test starts the real binary on a free port
// (--port 0; it prints `listening on HOST:PORT`), then speaks HTTP to it through
// tests/e2e/server_e2e.mjs (node 20, built-in fetch and raw sockets; the SDK section uses the
// official `openai` and `@anthropic-ai/sdk` npm packages that scripts/fetch-fixtures.sh pins
// into .fixtures/e2e/node_modules). The process's exit status is checked here.
#include <gtest/gtest.h>
#include <signal.h>
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
  explicit ServerProcess(std::vector<std::string> extra) {
    std::vector<std::string> args = {kBinary.string(), "serve",
                                     "--model",        (kSource / "models" / "default").string(),
                                     "--port",         "0"};
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

TEST_F(ServerE2E, SigtermWhenIdleExitsZero) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0);
  kill(server.pid(), SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0) << server.log();
}

}  // namespace
