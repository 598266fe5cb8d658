// A child process started with fork + execv whose stdout the parent reads through a pipe: how
// the end-to-end tests and bench_load drive a real `mlx-serving serve`.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <string>
#include <vector>

namespace mlxs {

struct ChildProcess {
  pid_t pid = -1;       // -1 when the fork or the pipe failed
  FILE* out = nullptr;  // the child's stdout; the caller closes it
};

// Starts args[0] with `args` as its argv. The child's stdout goes to the returned pipe, its
// stderr to `stderr_path` when that is not empty (else it is inherited). An execv failure makes
// the child exit with status 127.
ChildProcess spawn_child(std::vector<std::string> args, const std::string& stderr_path = "");

// Reads lines of `out` until one contains "listening on HOST:PORT" (what `mlx-serving serve`
// prints once it accepts connections) and returns PORT; 0 when `out` ends first.
int read_listening_port(FILE* out);

}  // namespace mlxs
