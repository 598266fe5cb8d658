#include "sched/circuit_breaker.h"

#include <string>

#include "util/check.h"

namespace mlxs::sched {
namespace {

Status invalid(const char* field, const char* rule, long long got) {
  return error(ErrorCode::kInvalidParams, std::string("circuit_breaker.") + field + " must be " +
                                              rule + ", got " + std::to_string(got));
}

}  // namespace

Status validate(const CircuitBreakerConfig& c) {
  if (c.failure_threshold < 1) return invalid("failure_threshold", ">= 1", c.failure_threshold);
  if (c.failure_window_ms < 1) {
    return invalid("failure_window_ms", ">= 1", c.failure_window_ms);
  }
  if (c.recovery_timeout_ms < 0) {
    return invalid("recovery_timeout_ms", ">= 0", c.recovery_timeout_ms);
  }
  if (c.half_open_max_calls < 1) {
    return invalid("half_open_max_calls", ">= 1", c.half_open_max_calls);
  }
  if (c.success_threshold < 1) return invalid("success_threshold", ">= 1", c.success_threshold);
  return {};
}

const char* breaker_state_name(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(const CircuitBreakerConfig& config) : config_(config) {
  MLXS_CHECK(validate(config).ok());
}

bool CircuitBreaker::allow(BreakerTime now) {
  if (state_ == BreakerState::kOpen) {
    if (now - opened_at_ < std::chrono::milliseconds(config_.recovery_timeout_ms)) return false;
    state_ = BreakerState::kHalfOpen;
    num_probes_in_flight_ = 0;
    num_successes_ = 0;
  }
  if (state_ == BreakerState::kHalfOpen) {
    if (num_probes_in_flight_ >= config_.half_open_max_calls) return false;
    ++num_probes_in_flight_;
  }
  return true;
}

Status CircuitBreaker::acquire(BreakerTime now) {
  if (allow(now)) return {};
  if (state_ == BreakerState::kHalfOpen) {
    return error(ErrorCode::kServerError, "circuit breaker half-open, a probe is in flight");
  }
  return error(ErrorCode::kServerError, "circuit breaker open, retry in " +
                                            std::to_string(retry_after(now).count()) + " ms");
}

void CircuitBreaker::record_success(BreakerTime now) {
  if (state_ != BreakerState::kHalfOpen) return;
  if (num_probes_in_flight_ > 0) --num_probes_in_flight_;
  if (++num_successes_ >= config_.success_threshold) close();
}

void CircuitBreaker::record_failure(BreakerTime now) {
  if (state_ == BreakerState::kOpen) return;
  if (state_ == BreakerState::kHalfOpen) {
    open(now);
    return;
  }
  failures_.push_back(now);
  while (!failures_.empty() &&
         now - failures_.front() >= std::chrono::milliseconds(config_.failure_window_ms)) {
    failures_.pop_front();
  }
  if (int(failures_.size()) >= config_.failure_threshold) open(now);
}

std::chrono::milliseconds CircuitBreaker::retry_after(BreakerTime now) const {
  if (state_ != BreakerState::kOpen) return std::chrono::milliseconds(0);
  const auto left = opened_at_ + std::chrono::milliseconds(config_.recovery_timeout_ms) - now;
  if (left.count() <= 0) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(left);
}

void CircuitBreaker::open(BreakerTime now) {
  state_ = BreakerState::kOpen;
  opened_at_ = now;
  failures_.clear();
  num_probes_in_flight_ = 0;
  num_successes_ = 0;
}

void CircuitBreaker::close() {
  state_ = BreakerState::kClosed;
  failures_.clear();
  num_probes_in_flight_ = 0;
  num_successes_ = 0;
}

}  // namespace mlxs::sched
