#include "util/child_process.h"

#include <unistd.h>

#include <string>

namespace mlxs {

ChildProcess spawn_child(std::vector<std::string> args, const std::string& stderr_path) {
  int fds[2];
  if (args.empty() || pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return {};
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    if (!stderr_path.empty()) {
      if (FILE* err = std::fopen(stderr_path.c_str(), "w")) dup2(fileno(err), 2);
    }
    close(fds[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

int read_listening_port(FILE* out) {
  char line[512];
  while (out && std::fgets(line, sizeof(line), out)) {
    const std::string s(line);
    if (s.find("listening on ") != std::string::npos) return std::stoi(s.substr(s.rfind(':') + 1));
  }
  return 0;
}

}  // namespace mlxs
