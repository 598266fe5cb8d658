// The one exception type of the Jinja interpreter. It never leaves the jinja module: Template
// (template.h) turns it into a Status whose message names the line and column.
#pragma once

#include <stdexcept>
#include <string>

namespace mlxs::jinja {

// Where a node or token starts in the template source; 1-based, 0 when unknown.
struct SourcePos {
  int line = 0;
  int column = 0;
};

class JinjaError : public std::runtime_error {
 public:
  explicit JinjaError(const std::string& message, SourcePos pos = {})
      : std::runtime_error(message), pos_(pos) {}
  const SourcePos& pos() const { return pos_; }
  // Attaches a position if the error has none yet (the innermost node that knows wins).
  void set_pos_if_unknown(SourcePos pos) {
    if (pos_.line == 0) pos_ = pos;
  }

 private:
  SourcePos pos_;
};

}  // namespace mlxs::jinja
