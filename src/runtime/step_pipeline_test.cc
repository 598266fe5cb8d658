// The pipelining protocol on a tiny random model on the CPU backend, driven as the model runner
// drives it (schedule -> plan -> advance -> apply_in_flight), without the output side.
#include "runtime/step_pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "model/test_model.h"
#include "sched/scheduler_test_support.h"

namespace mlxs {
namespace {

using sched::SeqId;

struct Generated {
  std::map<SeqId, std::vector<int32_t>> tokens;
  std::map<SeqId, FinishReason> finish;
  std::vector<StepKind> kinds;
  std::map<SeqId, std::string> errors;
};

// A constraint for the tests: allows `allowed` tokens; complete after `length` tokens; refuses
// the token `refuse` although its mask allows it (a buggy constraint).
class ListConstraint : public TokenConstraint {
 public:
  ListConstraint(std::vector<int32_t> allowed, int length, int32_t refuse = -1,
                 int* num_accepted = nullptr)
      : allowed_(std::move(allowed)), length_(length), refuse_(refuse), out_(num_accepted) {}
  void fill_allowed(std::span<uint32_t> words) override {
    for (int32_t t : allowed_) words[size_t(t) / 32] |= 1u << (t % 32);
  }
  bool accept(int32_t token) override {
    if (token == refuse_) return false;
    if (std::find(allowed_.begin(), allowed_.end(), token) == allowed_.end()) return false;
    ++accepted;
    if (out_) *out_ = accepted;
    return true;
  }
  bool is_complete() const override { return accepted >= length_; }
  int accepted = 0;

 private:
  std::vector<int32_t> allowed_;
  int length_;
  int32_t refuse_;
  int* out_;  // outlives the request: the test reads it after the request ended
};

class StepPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test_support::write_test_model("tiny-llama", DType::kF32, "step_pipeline_test", 11);
  }

  // Also called again by a test for a fresh model, cache, scheduler and requests.
  void SetUp() override {
    requests_.clear();
    model_.cache.reset();  // before the backend they live on
    model_.model.reset();
    model_ = test_support::load_test_model(make_cpu_backend(1), dir_, 64, 4, DType::kF32);
    ASSERT_TRUE(model_.model && model_.cache);
    sched::SchedulerConfig c = sched::test_support::small_config();
    c.num_blocks = 64;
    c.max_model_len = 128;
    scheduler_.emplace(sched::test_support::make(c));
  }

  StepPipeline pipeline(bool overlap) {
    return StepPipeline(*model_.model, *model_.cache, *scheduler_, overlap,
                        [this](SeqId id) -> const Request* {
                          auto it = requests_.find(id);
                          return it == requests_.end() ? nullptr : it->second.get();
                        });
  }

  // A greedy request of `max_tokens` for a prompt of `len` tokens, in the scheduler.
  Request& add(SeqId id, int len, int max_tokens, std::vector<int32_t> stop_ids = {}) {
    auto r = std::make_unique<Request>();
    r->id = id;
    r->prompt = test_support::test_prompt(len, int(id), model_.model->config().vocab_size);
    r->max_tokens = max_tokens;
    r->sampling.temperature = 0.0f;
    r->stop_token_ids = stop_ids;
    sched::Sequence seq(id, r->prompt, max_tokens);
    seq.stop_token_ids = std::move(stop_ids);
    EXPECT_TRUE(scheduler_->add(std::move(seq)).ok());
    return *(requests_[id] = std::move(r));
  }

  // What the runner does with an ended step: accounts its tokens, ends requests on the
  // scheduler's verdict.
  void take(const EndedStep& e, Generated& g) {
    ASSERT_TRUE(e.status.ok()) << e.status.to_string();
    for (const EndedStep::Seq& s : e.seqs) {
      if (!s.error.ok()) {
        g.errors[s.id] = s.error.message();
        requests_.erase(s.id);
        continue;
      }
      ASSERT_EQ(s.num_tokens, 1);
      const int32_t token = e.sampled[size_t(s.first_row)].token;
      g.tokens[s.id].push_back(token);
      requests_.at(s.id)->history.add_output(token);
      if (s.finish) {
        g.finish[s.id] = *s.finish;
        requests_.erase(s.id);
      }
    }
  }

  // Runs every request to its end, as the model runner's step() does.
  Generated run(StepPipeline& p) {
    Generated g;
    for (int i = 0; i < 500; ++i) {
      sched::SchedulerOutput out = scheduler_->schedule();
      if (out.empty()) {
        if (std::optional<EndedStep> e = p.end()) take(*e, g);
        if (scheduler_->num_live() == 0) break;
        continue;
      }
      StepPlan plan = p.plan(std::move(out));
      g.kinds.push_back(plan.kind);
      for (const EndedStep& e : p.advance(std::move(plan))) take(e, g);
      EXPECT_NE(p.in_flight(), nullptr);
      EXPECT_TRUE(p.apply_in_flight().empty());  // lengths on placeholders come with end()
    }
    EXPECT_EQ(p.in_flight(), nullptr);
    return g;
  }

  static std::string dir_;
  test_support::LoadedModel model_;
  std::optional<sched::Scheduler> scheduler_;
  std::map<SeqId, std::unique_ptr<Request>> requests_;
};

std::string StepPipelineTest::dir_;

TEST_F(StepPipelineTest, OverlappedStepsGiveTheTokensOfStepsRunOneAtATime) {
  std::optional<Generated> results[2];
  for (bool overlap : {false, true}) {
    SetUp();
    add(1, 5, 7);
    add(2, 9, 4);
    StepPipeline p = pipeline(overlap);
    results[overlap] = run(p);
  }
  const Generated& a = *results[0];
  const Generated& b = *results[1];
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(b.tokens.at(1).size(), 7u);
  ASSERT_EQ(b.tokens.at(2).size(), 4u);
  EXPECT_EQ(b.finish.at(1), FinishReason::kLength);
  EXPECT_EQ(b.finish.at(2), FinishReason::kLength);
  for (StepKind k : b.kinds) EXPECT_EQ(k, StepKind::kGreedy);
}

// The scheduler decides the end: a stop id ends the sequence at that token, even when the
// token was a placeholder while the next step was planned.
TEST_F(StepPipelineTest, AStopTokenEndsTheSequenceWithTheSchedulersVerdict) {
  add(1, 5, 8);
  StepPipeline free_run = pipeline(true);
  const std::vector<int32_t> all = run(free_run).tokens.at(1);
  ASSERT_EQ(all.size(), 8u);
  SetUp();
  const int32_t stop = all[3];
  add(1, 5, 8, {stop});
  StepPipeline p = pipeline(true);
  Generated g = run(p);
  const auto first = std::find(all.begin(), all.end(), stop);
  EXPECT_EQ(g.tokens.at(1), std::vector<int32_t>(all.begin(), first + 1));
  EXPECT_EQ(g.finish.at(1), FinishReason::kStop);
  EXPECT_EQ(scheduler_->block_pool().num_used(), 0);
}

// Masks are applied on the backend before its draw (sampled and greedy rows), or on the host
// when the step brings its logits there (top_logprobs); each way, every token drawn is allowed
// and told to the constraint, and the unconstrained request beside it is unaffected.
TEST_F(StepPipelineTest, AConstrainedRowIsDrawnWithinItsMaskOnTheBackendOrTheHost) {
  for (int top_logprobs : {0, 2}) {
    for (float temperature : {1.0f, 0.0f}) {
      SetUp();
      Request& r = add(1, 5, 5);
      r.sampling.temperature = temperature;
      r.sampling.seed = 3;
      r.sampling.top_logprobs = top_logprobs;
      int num_accepted = 0;
      r.constraint =
          std::make_unique<ListConstraint>(std::vector<int32_t>{17, 40}, 100, -1, &num_accepted);
      add(2, 6, 5);  // unconstrained, greedy, in the same steps
      StepPipeline p = pipeline(true);
      Generated g = run(p);
      ASSERT_EQ(g.tokens.at(1).size(), 5u);
      for (int32_t t : g.tokens.at(1)) EXPECT_TRUE(t == 17 || t == 40) << t;
      EXPECT_EQ(num_accepted, 5);  // told every token drawn
      EXPECT_EQ(g.tokens.at(2).size(), 5u);
      const StepKind want = top_logprobs > 0  ? StepKind::kLogits
                            : temperature > 0 ? StepKind::kSampled
                                              : StepKind::kGreedy;
      for (StepKind k : g.kinds) EXPECT_EQ(k, want);
    }
  }
}

// A constrained step overlaps the one before it as any other: its forward pass is queued with
// placeholders for the tokens still in flight, its masks filled once they are accepted; the
// tokens are those of steps run one at a time.
TEST_F(StepPipelineTest, ConstrainedStepsOverlapAndGiveTheTokensOfStepsRunOneAtATime) {
  std::optional<Generated> results[2];
  for (bool overlap : {false, true}) {
    SetUp();
    for (SeqId id : {1, 2}) {
      Request& r = add(id, 4 + int(id), 6);
      r.constraint = std::make_unique<ListConstraint>(std::vector<int32_t>{3, 17, 40, 41, 90}, 100);
    }
    StepPipeline p = pipeline(overlap);
    bool saw_placeholder = false;
    Generated g;
    for (int i = 0; i < 50 && scheduler_->num_live() > 0; ++i) {
      sched::SchedulerOutput out = scheduler_->schedule();
      if (out.empty()) {
        if (std::optional<EndedStep> e = p.end()) take(*e, g);
        continue;
      }
      for (const EndedStep& e : p.advance(p.plan(std::move(out)))) take(e, g);
      ASSERT_NE(p.in_flight(), nullptr);
      for (int32_t t : p.in_flight()->out.token_ids) saw_placeholder = saw_placeholder || t < 0;
      EXPECT_TRUE(p.apply_in_flight().empty());
    }
    if (std::optional<EndedStep> e = p.end()) take(*e, g);
    EXPECT_EQ(saw_placeholder, overlap);  // begun before the step in flight ended
    results[overlap] = g;
  }
  EXPECT_EQ(results[0]->tokens, results[1]->tokens);
  for (SeqId id : {1, 2}) {
    ASSERT_EQ(results[1]->tokens.at(id).size(), 6u);
    for (int32_t t : results[1]->tokens.at(id)) {
      EXPECT_TRUE(t == 3 || t == 17 || t == 40 || t == 41 || t == 90) << t;
    }
  }
}

// The unconstrained request's tokens are those of its run alone: the masks touch only their rows.
TEST_F(StepPipelineTest, MasksLeaveTheOtherRowsAlone) {
  add(2, 6, 6);
  StepPipeline alone = pipeline(true);
  const std::vector<int32_t> want = run(alone).tokens.at(2);
  SetUp();
  Request& r = add(1, 5, 6);
  r.constraint = std::make_unique<ListConstraint>(std::vector<int32_t>{9}, 100);
  add(2, 6, 6);
  StepPipeline p = pipeline(true);
  Generated g = run(p);
  EXPECT_EQ(g.tokens.at(2), want);
  EXPECT_EQ(g.tokens.at(1), std::vector<int32_t>(6, 9));
}

TEST_F(StepPipelineTest, ACompleteConstraintEndsItsSequenceWithReasonStop) {
  Request& r = add(1, 5, 10);
  r.constraint = std::make_unique<ListConstraint>(std::vector<int32_t>{9}, 3);
  StepPipeline p = pipeline(true);
  Generated g = run(p);
  EXPECT_EQ(g.tokens.at(1), std::vector<int32_t>(3, 9));
  EXPECT_EQ(g.finish.at(1), FinishReason::kStop);
  EXPECT_EQ(scheduler_->block_pool().num_used(), 0);
}

// A constraint that fails its row fails its own request; the batch goes on.
TEST_F(StepPipelineTest, AFailingConstraintFailsOnlyItsRequest) {
  Request& bad = add(1, 5, 10);
  bad.constraint = std::make_unique<ListConstraint>(std::vector<int32_t>{9}, 100, 9);
  Request& empty = add(2, 5, 10);
  empty.constraint = std::make_unique<ListConstraint>(std::vector<int32_t>{}, 100);
  add(3, 6, 4);
  StepPipeline p = pipeline(true);
  Generated g = run(p);
  EXPECT_NE(g.errors.at(1).find("refused token 9"), std::string::npos) << g.errors.at(1);
  EXPECT_NE(g.errors.at(2).find("allows none"), std::string::npos) << g.errors.at(2);
  EXPECT_EQ(g.tokens.count(1), 0u);
  EXPECT_EQ(g.tokens.at(3).size(), 4u);
  EXPECT_EQ(g.finish.at(3), FinishReason::kLength);
  EXPECT_EQ(scheduler_->block_pool().num_used(), 0);
}

TEST_F(StepPipelineTest, ProposalsAndEmbeddingsAreRefusedNamingThem) {
  add(1, 5, 5);
  StepPipeline p = pipeline(true);
  StepPlan plan = p.plan(scheduler_->schedule());
  EXPECT_TRUE(plan.inputs.at(0).empty());  // the plain path
  plan.inputs[0].proposals = {4, 5};
  std::vector<EndedStep> ended = p.advance(std::move(plan));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].status.code(), ErrorCode::kInvalidParams);
  EXPECT_NE(ended[0].status.message().find("2 speculative proposals"), std::string::npos)
      << ended[0].status.message();
  EXPECT_EQ(p.in_flight(), nullptr);

  SetUp();
  const int D = model_.model->config().hidden_size;
  Request& r = add(2, 6, 5);
  r.embeddings.push_back({1, 3, std::vector<float>(size_t(3 * D), 0.5f)});
  StepPipeline q = pipeline(true);
  plan = q.plan(scheduler_->schedule());
  ASSERT_EQ(plan.inputs.at(0).embeddings.size(), 1u);
  EXPECT_EQ(plan.inputs[0].embeddings[0].position, 1);
  ended = q.advance(std::move(plan));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_NE(ended[0].status.message().find("embedding"), std::string::npos)
      << ended[0].status.message();
}

TEST(StepPipeline, PlaceholdersNameTheRowsOfTheStepInFlight) {
  StepPlan plan;
  plan.out.seqs.resize(3);
  plan.rows = {{0, 0}, {2, 0}};  // sequence 1 is a prefill chunk without logits
  const std::vector<sched::SampledToken> t = StepPipeline::placeholders(plan);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].token, -1);
  EXPECT_EQ(t[2].token, -2);
  std::vector<int32_t> next = {-2, 8, -1};
  std::vector<SampleResult> prev(2);
  prev[0].token = 40;
  prev[1].token = 41;
  StepPipeline::resolve_on_host(next, prev);
  EXPECT_EQ(next, (std::vector<int32_t>{41, 8, 40}));
}

}  // namespace
}  // namespace mlxs
