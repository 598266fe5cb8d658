// Stop sequences matched on the decoded text, across token boundaries. Text that could still be
// the start of a stop sequence is held back, so a stop sequence is never emitted, even in part.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mlxs {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Appends `delta` (complete UTF-8 characters) and returns the text that is now safe to emit.
  // When a stop sequence completes, *stopped is set and the returned text ends right before
  // the earliest match; everything after it is dropped.
  std::string feed(std::string_view delta, bool* stopped);
  // The text still held back (end of stream without a match).
  std::string flush();
  // The stop sequence that matched (the earliest in the text), or "" before any match.
  const std::string& matched() const { return matched_; }

 private:
  size_t holdback() const;

  std::vector<std::string> stops_;
  std::string pending_;
  std::string matched_;
};

}  // namespace mlxs
