// Shared helpers of the libFuzzer harnesses (fuzz/*_fuzzer.cc): a private scratch folder for
// targets whose code under test reads files, and splitting one input into parts.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

namespace mlxs::fuzz {

// A folder made once per process under $TMPDIR (or /tmp), e.g. /tmp/mlxs-fuzz-config-AbC123.
inline const std::string& scratch_dir(const char* name) {
  static const std::string dir = [name] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/mlxs-fuzz-" + name + "-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    return tmpl;
  }();
  return dir;
}

inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) std::abort();
}

// Splits the input at its first NUL byte: (before, after). Without one, `after` is `fallback`.
inline std::pair<std::string_view, std::string_view> split_at_nul(const uint8_t* data, size_t size,
                                                                  std::string_view fallback) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t nul = all.find('\0');
  if (nul == std::string_view::npos) return {all, fallback};
  return {all.substr(0, nul), all.substr(nul + 1)};
}

}  // namespace mlxs::fuzz
