// Default implementations of the Backend interface's optional parts.
#include "backend/backend.h"

#include <vector>

namespace mlxs {

void Backend::argmax_rows(const Tensor& x, Tensor& out) {
  std::vector<float> host(x.numel());
  download(x.data, x.nbytes(), host.data());
  std::vector<int32_t> ids(static_cast<size_t>(x.rows));
  for (int64_t r = 0; r < x.rows; ++r) {
    const float* row = host.data() + r * x.cols;
    int64_t best = 0;
    for (int64_t c = 1; c < x.cols; ++c) {
      if (row[c] > row[best]) best = c;
    }
    ids[size_t(r)] = int32_t(best);
  }
  upload(ids.data(), ids.size() * sizeof(int32_t), out.data);
}

}  // namespace mlxs
