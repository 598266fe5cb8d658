#include "sched/circuit_breaker.h"

#include <gtest/gtest.h>

namespace mlxs::sched {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const BreakerTime t0{};  // tests count time from here

void fail_n(CircuitBreaker& cb, int n, BreakerTime at) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(cb.allow(at));
    cb.record_failure(at);
  }
}

// Drives a default breaker to open at t0 + 1 s.
CircuitBreaker opened_breaker() {
  CircuitBreaker cb;
  fail_n(cb, 5, t0 + seconds(1));
  return cb;
}

TEST(CircuitBreaker, DefaultsAreTheOriginals) {
  const CircuitBreakerConfig c;
  EXPECT_EQ(c.failure_threshold, 5);
  EXPECT_EQ(c.failure_window_ms, 60000);
  EXPECT_EQ(c.recovery_timeout_ms, 10000);
  EXPECT_EQ(c.half_open_max_calls, 1);
  EXPECT_EQ(c.success_threshold, 2);
}

TEST(CircuitBreaker, ClosedStaysClosedBelowThreshold) {
  CircuitBreaker cb;
  fail_n(cb, 4, t0);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_EQ(cb.num_recent_failures(), 4);
  EXPECT_TRUE(cb.allow(t0));
}

TEST(CircuitBreaker, ClosedOpensOnFifthFailureWithinWindow) {
  CircuitBreaker cb;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(cb.allow(t0 + seconds(10 * i)));
    cb.record_failure(t0 + seconds(10 * i));  // at 0, 10, 20, 30, 40 s
  }
  EXPECT_EQ(cb.state(), BreakerState::kOpen);
  EXPECT_FALSE(cb.allow(t0 + seconds(41)));
}

TEST(CircuitBreaker, FailuresOlderThanWindowDoNotCount) {
  CircuitBreaker cb;
  for (int i = 0; i < 5; ++i) {
    cb.record_failure(t0 + seconds(20 * i));  // 0, 20, 40, 60, 80: at most 3 within 60 s
  }
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_EQ(cb.num_recent_failures(), 3);
}

TEST(CircuitBreaker, SuccessWhileClosedChangesNothing) {
  CircuitBreaker cb;
  fail_n(cb, 4, t0);
  cb.record_success(t0);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_EQ(cb.num_recent_failures(), 4);
}

TEST(CircuitBreaker, OpenRefusesUntilRecoveryTimeout) {
  CircuitBreaker cb = opened_breaker();
  EXPECT_FALSE(cb.allow(t0 + seconds(1)));
  EXPECT_FALSE(cb.allow(t0 + milliseconds(10999)));
  EXPECT_EQ(cb.retry_after(t0 + seconds(6)), seconds(5));
  const Status s = cb.acquire(t0 + seconds(6));
  EXPECT_EQ(s.code(), ErrorCode::kServerError);
  EXPECT_NE(s.message().find("retry in 5000 ms"), std::string::npos) << s.message();
  EXPECT_EQ(cb.state(), BreakerState::kOpen);
}

TEST(CircuitBreaker, OpenTurnsHalfOpenAfterTimeoutAndAllowsOneProbe) {
  CircuitBreaker cb = opened_breaker();
  EXPECT_TRUE(cb.allow(t0 + seconds(11)));
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(cb.allow(t0 + seconds(11)));  // one probe at a time
  EXPECT_EQ(cb.retry_after(t0 + seconds(11)), milliseconds(0));
}

TEST(CircuitBreaker, HalfOpenClosesAfterTwoSuccesses) {
  CircuitBreaker cb = opened_breaker();
  ASSERT_TRUE(cb.allow(t0 + seconds(11)));
  cb.record_success(t0 + seconds(12));
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
  ASSERT_TRUE(cb.allow(t0 + seconds(12)));  // the slot is free again
  cb.record_success(t0 + seconds(13));
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_EQ(cb.num_recent_failures(), 0);
  // A fresh window: four failures do not reopen it.
  fail_n(cb, 4, t0 + seconds(14));
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, HalfOpenFailureReopensAndRestartsTimer) {
  CircuitBreaker cb = opened_breaker();
  ASSERT_TRUE(cb.allow(t0 + seconds(11)));
  cb.record_success(t0 + seconds(11));
  ASSERT_TRUE(cb.allow(t0 + seconds(12)));
  cb.record_failure(t0 + seconds(12));
  EXPECT_EQ(cb.state(), BreakerState::kOpen);
  EXPECT_FALSE(cb.allow(t0 + seconds(21)));
  EXPECT_TRUE(cb.allow(t0 + seconds(22)));
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
  // The earlier success does not carry over: two new ones are needed.
  cb.record_success(t0 + seconds(22));
  EXPECT_EQ(cb.state(), BreakerState::kHalfOpen);
}

TEST(CircuitBreaker, LateOutcomesWhileOpenAreIgnored) {
  CircuitBreaker cb = opened_breaker();
  cb.record_success(t0 + seconds(2));
  cb.record_failure(t0 + seconds(9));  // must not push the timer back
  EXPECT_EQ(cb.state(), BreakerState::kOpen);
  EXPECT_TRUE(cb.allow(t0 + seconds(11)));
}

TEST(CircuitBreaker, ConfigValidationNamesTheField) {
  CircuitBreakerConfig c;
  c.success_threshold = 0;
  const Status s = validate(c);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(s.message(), "circuit_breaker.success_threshold must be >= 1, got 0");
}

}  // namespace
}  // namespace mlxs::sched
