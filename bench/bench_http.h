// What the HTTP load programs (bench_load, bench_serve) share: an incremental reader of one
// HTTP/1.1 response whose body is either plain (an error) or chunked server-sent events,
// percentiles, the server's RSS, and starting `mlx-serving serve` as a child process.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "util/child_process.h"

namespace bench {

// Incremental decoder of one HTTP/1.1 response: chunked (SSE `data:` events) or with a
// Content-Length (a JSON body, e.g. an error).
class ResponseReader {
 public:
  // Feeds bytes; calls on_event(data) for each SSE event's `data:` payload. Returns false on a
  // protocol error. done() once the whole response arrived.
  template <class F>
  bool feed(const char* p, size_t n, F on_event) {
    raw_.append(p, n);
    if (!headers_done_ && !read_headers()) return true;
    if (!chunked_) {
      if (raw_.size() >= content_length_) {
        body_ = raw_.substr(0, content_length_);
        done_ = true;
      }
      return true;
    }
    for (;;) {
      if (chunk_left_ == 0) {
        size_t eol = raw_.find("\r\n");
        if (eol == std::string::npos) return true;
        char* end = nullptr;
        size_t size = std::strtoul(raw_.c_str(), &end, 16);
        if (end == raw_.c_str()) return false;
        if (size == 0) {
          if (raw_.size() < eol + 4) return true;
          raw_.erase(0, eol + 4);
          done_ = true;
          return true;
        }
        raw_.erase(0, eol + 2);
        chunk_left_ = size + 2;  // data + CRLF
      }
      size_t take = std::min(chunk_left_, raw_.size());
      if (take == 0) return true;
      body_.append(raw_, 0, take);
      raw_.erase(0, take);
      chunk_left_ -= take;
      if (chunk_left_ == 0) body_.resize(body_.size() - 2);
      size_t sep;
      while ((sep = body_.find("\n\n")) != std::string::npos) {
        std::string event = body_.substr(0, sep);
        body_.erase(0, sep + 2);
        // OpenAI events are one `data:` line; Anthropic's name themselves first (`event: x`).
        size_t data = event.rfind("data: ", 0) == 0 ? 0 : event.find("\ndata: ");
        if (data != std::string::npos) on_event(event.substr(data + (data ? 7 : 6)));
      }
    }
  }
  bool done() const { return done_; }
  int status() const { return status_; }
  const std::string& body() const { return body_; }

 private:
  // Parses the status line and headers once they are complete; false while they are not.
  bool read_headers() {
    size_t end = raw_.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = raw_.substr(0, end);
    raw_.erase(0, end + 4);
    headers_done_ = true;
    status_ = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    chunked_ = lower.find("transfer-encoding: chunked") != std::string::npos;
    size_t cl = lower.find("content-length:");
    content_length_ =
        cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 15, nullptr, 10);
    return true;
  }

  std::string raw_, body_;
  bool headers_done_ = false, chunked_ = false, done_ = false;
  size_t chunk_left_ = 0, content_length_ = 0;
  int status_ = 0;
};

// The p-quantile (0..1) of v by the nearest-rank method; 0 for an empty v.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

inline double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// A line of /proc/PID/status in kB (VmRSS by default); -1 when it cannot be read.
inline long rss_kb(int pid, const char* key = "VmRSS:") {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

// Starts `server serve --model model --port 0 --quiet [--config config]`; returns its pid and
// port (port 0 when it did not start). The child's stdout pipe stays open: the server may write
// to it later.
inline std::pair<int, int> spawn_server(const std::string& server, const std::string& model,
                                        const std::string& config) {
  std::vector<std::string> args = {server, "serve", "--model", model, "--port", "0", "--quiet"};
  if (!config.empty()) args.insert(args.end(), {"--config", config});
  mlxs::ChildProcess child = mlxs::spawn_child(args);
  if (child.pid < 0) return {0, 0};
  return {child.pid, mlxs::read_listening_port(child.out)};
}

// SIGTERM to pid and waits; its exit status (-1 when it did not exit normally).
inline int stop_server(int pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Raises the soft limit of open files to the hard limit (thousands of client sockets).
inline void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace bench
