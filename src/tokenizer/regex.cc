#include "tokenizer/regex.h"

#include <fmt/format.h>
#include <pcre2.h>

#include <nlohmann/json.hpp>

namespace mlxs::tok {

namespace {

// Bounds on one match attempt, for the JIT and the interpreter alike: a pattern that backtracks
// catastrophically on some input ((a+)+$ on "aaa...a!") stops with PCRE2_ERROR_MATCHLIMIT after
// about this many steps (tens of milliseconds) and becomes the request's error. Real
// pre-tokenizer patterns take a few steps per character, so 10 million leaves megabyte words room.
constexpr uint32_t kMatchLimit = 10'000'000;
constexpr uint32_t kHeapLimitKiB = 64 * 1024;  // the interpreter's backtracking memory

// Per-thread PCRE2 state: one match data (group 0 only) and a JIT stack up to 8 MiB, so that long
// runs of one class (a 1 MB word) never overflow the default 32 KiB stack.
struct ThreadState {
  pcre2_match_data* match_data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadState() {
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_set_heap_limit(context, kHeapLimitKiB);
  }
  ~ThreadState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(match_data);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

}  // namespace

Result<std::unique_ptr<Regex>> Regex::compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &err_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return error(ErrorCode::kTokenizerError,
                 fmt::format("regex '{}' does not compile at offset {}: {}", pattern, err_offset,
                             reinterpret_cast<char*>(msg)));
  }
  std::unique_ptr<Regex> re(new Regex());
  re->pattern_ = pattern;
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Status Regex::find_all(std::string_view text,
                       const std::function<void(size_t, size_t)>& on_match) const {
  auto* code = static_cast<pcre2_code*>(code_);
  ThreadState& ts = thread_state();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, 0, ts.match_data, ts.context)
                  : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, ts.match_data,
                                ts.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // retry this position with the interpreter (heap)
      rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, ts.match_data,
                       ts.context);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      return error(ErrorCode::kTokenizerError,
                   fmt::format("regex '{}' failed on a {}-byte text: {}", pattern_, text.size(),
                               reinterpret_cast<char*>(msg)));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.match_data);
    size_t start = ov[0], end = ov[1];
    on_match(start, end);
    if (end > start) {
      pos = end;
    } else {  // empty match: step over one whole character
      if (end >= text.size()) break;
      pos = end + 1;
      while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
  return {};
}

Result<std::unique_ptr<Pattern>> Pattern::from_json(const nlohmann::json& j,
                                                    const std::string& where) {
  auto p = std::make_unique<Pattern>();
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    p->literal_ = j["String"].get<std::string>();
    if (p->literal_.empty()) {
      return error(ErrorCode::kTokenizerError, where + ": pattern String must not be empty");
    }
    return p;
  }
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    MLXS_ASSIGN_OR_RETURN(p->regex_, Regex::compile(j["Regex"].get<std::string>()));
    return p;
  }
  return error(ErrorCode::kTokenizerError,
               where + ": pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + j.dump());
}

Status Pattern::find_all(std::string_view text,
                         const std::function<void(size_t, size_t)>& on_match) const {
  if (regex_) return regex_->find_all(text, on_match);
  size_t pos = 0;
  while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
    on_match(pos, pos + literal_.size());
    pos += literal_.size();
  }
  return {};
}

}  // namespace mlxs::tok
