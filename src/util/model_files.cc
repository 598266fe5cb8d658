#include "util/model_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mlxs {
namespace {

namespace fs = std::filesystem;

Status load_error(const std::string& msg) {
  return error(ErrorCode::kModelLoadError, msg);
}

bool inside(const fs::path& path, const fs::path& root) {
  auto [r, p] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return r == root.end();
}

}  // namespace

Result<std::string> model_file_path(const std::string& dir, const std::string& name,
                                    const ModelFileAccess& access) {
  const fs::path given = fs::path(dir) / name;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(given, ec)) && !fs::exists(given, ec)) {
    return error(ErrorCode::kNotFound, given.string() + ": no such file");
  }
  const fs::path real = fs::canonical(given, ec);
  if (ec) return load_error(given.string() + ": cannot resolve: " + ec.message());
  const fs::path root = fs::canonical(dir, ec);
  if (ec) return load_error(dir + ": cannot resolve the model folder: " + ec.message());
  if (!access.allow_outside && !inside(real, root)) {
    return load_error(given.string() + " resolves to " + real.string() +
                      ", outside the model folder " + root.string() +
                      " (set model.allow_files_outside_model_dir to allow it)");
  }
  return real.string();
}

bool model_file_exists(const std::string& dir, const std::string& name) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(fs::path(dir) / name, ec));
}

Result<int> open_model_file(const std::string& dir, const std::string& name,
                            const ModelFileAccess& access) {
  MLXS_ASSIGN_OR_RETURN(std::string path, model_file_path(dir, name, access));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return load_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return load_error(path + ": not a regular file");
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

Result<std::string> read_model_file(const std::string& dir, const std::string& name,
                                    const ModelFileAccess& access, int64_t max_bytes) {
  MLXS_ASSIGN_OR_RETURN(int fd, open_model_file(dir, name, access));
  struct stat st {};
  fstat(fd, &st);
  if (st.st_size > max_bytes) {
    ::close(fd);
    return load_error((fs::path(dir) / name).string() + " is " + std::to_string(st.st_size) +
                      " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::string out(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

}  // namespace mlxs
