// The files of a model folder. A model folder may come from anyone (a download, a shared disk),
// so a file in it is read only if
//   1. its real path (symlinks resolved) lies inside the folder's real path: an index entry
//      "../../etc/x" or a symlink to a file elsewhere does not escape the folder, unless the
//      operator allows it (ModelFileAccess::allow_outside, config key
//      model.allow_files_outside_model_dir: Hugging Face cache snapshots link into ../../blobs);
//   2. it is a regular file: a FIFO would hang the load forever, a device would never end;
//   3. it is no larger than the reader's limit (a JSON file is read whole).
// Errors are kModelLoadError naming the file and the rule; an absent file is kNotFound.
#pragma once

#include <cstdint>
#include <string>

#include "mlxs/status.h"

namespace mlxs {

struct ModelFileAccess {
  bool allow_outside = false;  // model.allow_files_outside_model_dir
};

// The checked real path of `name` (a path relative to `dir`).
Result<std::string> model_file_path(const std::string& dir, const std::string& name,
                                    const ModelFileAccess& access = {});

// True if `name` exists in `dir` (as any kind of file: the checks come when it is read).
bool model_file_exists(const std::string& dir, const std::string& name);

// The whole content of `name`, at most `max_bytes` (kModelLoadError beyond).
Result<std::string> read_model_file(const std::string& dir, const std::string& name,
                                    const ModelFileAccess& access = {},
                                    int64_t max_bytes = int64_t(256) << 20);

// Opens the checked file read-only for mmap or reading; the caller owns the descriptor. Never
// blocks on a FIFO (opened non-blocking, then refused as not a regular file).
Result<int> open_model_file(const std::string& dir, const std::string& name,
                            const ModelFileAccess& access = {});

}  // namespace mlxs
