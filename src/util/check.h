// MLXS_CHECK: invariants whose failure means a bug in this program (never bad input).
#pragma once

#include <cstdio>
#include <cstdlib>

#define MLXS_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
