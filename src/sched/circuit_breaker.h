// A circuit breaker: stops calling a failing dependency (the model runner, a worker process)
// and probes it again after a pause.
//
//   closed    --failure_threshold failures within failure_window-->  open
//   open      --recovery_timeout elapsed, at the next allow()------>  half-open (that call is the
//   probe) half-open --success; success_threshold successes in a row----->  closed half-open --any
//   failure--------------------------------------->  open (timer restarts)
//
// In half-open at most half_open_max_calls calls are in flight at once; a probe's outcome
// frees its slot. Outcomes reported while open (calls that began before it opened) are ignored.
// Time is an argument, never read from a clock, so tests are deterministic. Not thread-safe:
// the owner serialises calls (the engine loop, or the supervisor under its lock).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

#include "mlxs/status.h"

namespace mlxs::sched {

using BreakerClock = std::chrono::steady_clock;
using BreakerTime = BreakerClock::time_point;

// The `circuit_breaker:` section of the configuration (src/api/config.cc binds these fields);
// the original mlx-serving's defaults.
struct CircuitBreakerConfig {
  int32_t failure_threshold = 5;  // failures within failure_window_ms that open it
  int64_t failure_window_ms = 60'000;
  int64_t recovery_timeout_ms = 10'000;  // open -> half-open
  int32_t half_open_max_calls = 1;       // probes in flight at once
  int32_t success_threshold = 2;         // half-open -> closed
};

// InvalidParams naming the first field out of range, or ok.
Status validate(const CircuitBreakerConfig& config);

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* breaker_state_name(BreakerState state);

class CircuitBreaker {
 public:
  // Starts closed. `config` must pass validate() (MLXS_CHECK).
  explicit CircuitBreaker(const CircuitBreakerConfig& config = {});

  // May a call start at `now`? Closed: yes. Open: no, until recovery_timeout has passed, when
  // the breaker turns half-open and this call becomes a probe. Half-open: yes while fewer than
  // half_open_max_calls probes are in flight. Every true must be followed by exactly one
  // record_success() or record_failure().
  bool allow(BreakerTime now);
  // allow() as a Status: ok, or ServerError "circuit breaker open, retry in N ms".
  Status acquire(BreakerTime now);
  // Reports the outcome of an allowed call.
  void record_success(BreakerTime now);
  void record_failure(BreakerTime now);

  // The state as of the last call (open stays open until an allow() at or after the timeout).
  BreakerState state() const { return state_; }
  // Failures counted in the current window (closed state).
  int num_recent_failures() const { return int(failures_.size()); }
  // Time until an allow() may probe again; zero unless open.
  std::chrono::milliseconds retry_after(BreakerTime now) const;

 private:
  void open(BreakerTime now);
  void close();

  CircuitBreakerConfig config_;
  BreakerState state_ = BreakerState::kClosed;
  std::deque<BreakerTime> failures_;  // closed: failure times within the window, oldest first
  BreakerTime opened_at_{};
  int num_probes_in_flight_ = 0;
  int num_successes_ = 0;  // half-open: consecutive successes
};

}  // namespace mlxs::sched
