#include "runtime/step_output.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <variant>

#include "sched/scheduler_test_support.h"

namespace mlxs {
namespace {

using namespace std::chrono_literals;
using sched::SeqId;

class StepOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scheduler_.emplace(sched::test_support::make(sched::test_support::small_config()));
    StepOutput::Hooks hooks;
    hooks.events = [this](EventPayload e) {
      if (std::holds_alternative<GenerationTokenEvent>(e)) ++num_token_events_;
    };
    hooks.resume = [this](SeqId id) { resumed_.push_back(id); };
    hooks.ended = [this](const Request& r, bool finished) { ended_.push_back({r.id, finished}); };
    output_.emplace("m", nullptr, *scheduler_, std::move(hooks));
  }

  // A live request (token ids only: no tokenizer) whose stream holds `capacity` tokens.
  std::shared_ptr<Stream> add(SeqId id, size_t capacity = 16) {
    auto r = std::make_unique<Request>();
    r->id = id;
    r->prompt = {1, 2, 3};
    r->max_tokens = 8;
    r->stream = std::make_shared<Stream>("s" + std::to_string(id), capacity);
    EXPECT_TRUE(scheduler_->add(sched::Sequence(id, r->prompt, r->max_tokens)).ok());
    std::shared_ptr<Stream> stream = r->stream;
    output_->add(std::move(r));
    return stream;
  }

  static std::vector<Chunk> pop_all(Stream& s) {
    std::vector<Chunk> chunks;
    while (std::optional<Chunk> c = s.pop(0ms)) chunks.push_back(std::move(*c));
    return chunks;
  }

  static SampleResult token(int32_t t) {
    SampleResult s;
    s.token = t;
    return s;
  }

  std::optional<sched::Scheduler> scheduler_;
  std::optional<StepOutput> output_;
  int num_token_events_ = 0;
  std::vector<SeqId> resumed_;
  std::vector<std::pair<SeqId, bool>> ended_;
};

TEST_F(StepOutputTest, TokensAreAccountedAtOnceAndStreamedAtFlush) {
  std::shared_ptr<Stream> s = add(1);
  output_->add_token(1, token(7), std::nullopt);
  EXPECT_EQ(output_->find(1)->num_generated, 1);
  EXPECT_EQ(output_->find(1)->history.output_counts.at(7), 1);  // for the next step's sampling
  EXPECT_TRUE(pop_all(*s).empty());
  output_->flush(false);
  std::vector<Chunk> chunks = pop_all(*s);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(std::get<TokenChunk>(chunks[0]).token_id, 7);
  EXPECT_FALSE(std::get<TokenChunk>(chunks[0]).is_final);
  EXPECT_EQ(num_token_events_, 1);
}

// The scheduler's verdict comes with the token: it is the final chunk, then the metadata.
TEST_F(StepOutputTest, TheSchedulersVerdictEndsTheRequestAfterItsToken) {
  for (FinishReason reason : {FinishReason::kLength, FinishReason::kStop}) {
    std::shared_ptr<Stream> s = add(1);
    output_->add_token(1, token(7), std::nullopt);
    output_->add_token(1, token(9), reason);
    output_->flush(false);
    std::vector<Chunk> chunks = pop_all(*s);
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_TRUE(std::get<TokenChunk>(chunks[1]).is_final);
    const MetadataChunk& m = std::get<MetadataChunk>(chunks[2]);
    EXPECT_EQ(m.finish_reason, reason);
    EXPECT_EQ(m.tokens_generated, 2);
    EXPECT_EQ(output_->find(1), nullptr);
    EXPECT_EQ(ended_.back(), (std::pair<SeqId, bool>{1, true}));
    (void)scheduler_->abort(1);
  }
}

// Backpressure: a full stream pauses its request, after the step in flight's plan is applied
// when there is one.
TEST_F(StepOutputTest, AFullStreamPausesItsRequestOnceThePlanIsApplied) {
  std::shared_ptr<Stream> s = add(1, 2);
  output_->add_token(1, token(7), std::nullopt);
  output_->add_token(1, token(8), std::nullopt);
  output_->flush(true);
  EXPECT_TRUE(output_->find(1)->paused);
  EXPECT_TRUE(scheduler_->paused_ids().empty());  // deferred
  output_->apply_pauses();
  EXPECT_EQ(scheduler_->paused_ids(), std::vector<SeqId>{1});
  pop_all(*s);  // the consumer drains it: the runner is asked to resume
  EXPECT_EQ(resumed_, std::vector<SeqId>{1});
}

TEST_F(StepOutputTest, ExpiredFindsCancelledAndTimedOutRequests) {
  add(1);
  add(2);
  add(3);
  output_->find(1)->cancel.cancel();
  output_->find(2)->deadline = EngineClock::now() - 1s;
  auto expired = output_->expired(EngineClock::now());
  std::sort(expired.begin(), expired.end());
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(expired[0], (std::pair<SeqId, FinishReason>{1, FinishReason::kCancelled}));
  EXPECT_EQ(expired[1], (std::pair<SeqId, FinishReason>{2, FinishReason::kTimeout}));
}

TEST_F(StepOutputTest, AFailedRequestGetsAnErrorChunk) {
  std::shared_ptr<Stream> s = add(1);
  output_->fail(1, ErrorCode::kGenerationError, "boom");
  std::vector<Chunk> chunks = pop_all(*s);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(std::get<ErrorChunk>(chunks[0]).message, "boom");
  EXPECT_EQ(ended_.back(), (std::pair<SeqId, bool>{1, false}));
  EXPECT_TRUE(output_->empty());
}

}  // namespace
}  // namespace mlxs
