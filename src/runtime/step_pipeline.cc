#include "runtime/step_pipeline.h"

#include <algorithm>

#include "runtime/step_batch.h"
#include "util/check.h"

namespace mlxs {
namespace {

// Greedy with nothing that needs the logits on the host or a draw of its own (no logprobs or
// penalties; a token mask is applied on the backend before the argmax).
bool is_plain_greedy(const Request& r) {
  const SamplingParams& p = r.sampling;
  return (p.temperature <= 0.0f || p.top_k == 1) && !r.logprobs && p.top_logprobs == 0 &&
         p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f;
}

// Penalties read the tokens generated so far, on the host.
bool needs_history(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

// Refuses inputs the model cannot run yet, naming them (see runtime/step_inputs.h).
Status check_runnable(const sched::ScheduledSeq& seq, const SeqStepInputs& in) {
  if (in.empty()) return {};
  const std::string what = "request " + std::to_string(seq.id) + ": ";
  if (!in.proposals.empty()) {
    return error(ErrorCode::kInvalidParams,
                 what + std::to_string(in.proposals.size()) +
                     " speculative proposals, but this engine verifies none yet");
  }
  return error(ErrorCode::kInvalidParams,
               what + std::to_string(in.embeddings.size()) +
                   " spliced embedding inputs, but this engine takes token ids only");
}

}  // namespace

StepPipeline::StepPipeline(Model& model, KvCache& cache, sched::Scheduler& scheduler,
                           bool overlap_steps, RequestLookup requests)
    : model_(model),
      cache_(cache),
      scheduler_(scheduler),
      overlap_steps_(overlap_steps),
      requests_(std::move(requests)) {}

StepPlan StepPipeline::plan(sched::SchedulerOutput out) const {
  StepPlan plan;
  plan.inputs.resize(out.seqs.size());
  bool all_greedy = true, any_on_host = false;
  for (int i = 0; i < int(out.seqs.size()); ++i) {
    const sched::ScheduledSeq& seq = out.seqs[size_t(i)];
    const Request* r = requests_(seq.id);
    MLXS_CHECK(r != nullptr);
    if (!r->embeddings.empty()) {
      plan.inputs[size_t(i)].embeddings =
          splices_in(r->embeddings, seq.start_pos, seq.context_len(), model_.config().hidden_size);
    }
    if (!seq.needs_logits) continue;
    // The index of the token this row draws: every output so far, placeholders included.
    plan.rows.push_back({i, uint64_t(scheduler_.find(seq.id)->num_output_tokens())});
    all_greedy = all_greedy && is_plain_greedy(*r);
    any_on_host = any_on_host || r->sampling.top_logprobs > 0;
    plan.constrained = plan.constrained || r->constraint != nullptr;
    plan.needs_history = plan.needs_history || needs_history(r->sampling);
  }
  // Plain greedy rows take their argmax on the backend, and other rows are sampled there, after
  // their token masks if any: only ids (and logprobs) cross to the host. Alternatives need the
  // logits (and masks are then applied on the host).
  plan.kind = all_greedy ? StepKind::kGreedy : any_on_host ? StepKind::kLogits : StepKind::kSampled;
  plan.out = std::move(out);
  return plan;
}

bool StepPipeline::overlaps(const StepPlan& plan) const {
  // A constrained row's mask needs the token the step in flight draws for it: such a step is
  // queued first too, but its draw waits for the mask, filled once that token is known.
  return overlap_steps_ && in_flight_ && in_flight_->kind != StepKind::kLogits &&
         !plan.needs_history;
}

std::vector<EndedStep> StepPipeline::advance(StepPlan plan) {
  std::vector<EndedStep> ended;
  const bool overlapped = overlaps(plan);
  Status s;
  if (!overlapped && in_flight_) {
    ended.push_back(*end());
    s = ended.back().status;
    if (s.ok()) resolve_on_host(plan.out.token_ids, ended.back().sampled);
  }
  SampleBatch sampling;
  if (s.ok()) s = begin(plan, &sampling);
  std::optional<EndedStep> prev;
  if (s.ok() && overlapped) prev = end();  // N's tokens, while N + 1 runs
  // N + 1's masks, on the host while the device computes its logits (N's tokens accepted).
  if (s.ok() && plan.constrained) s = draw_constrained(plan, sampling);
  if (!s.ok()) {
    // The plan never ran: a placeholder of its sequences cannot be resolved any more, so they
    // fail with the error, and so does the step in flight, if any.
    if (!prev) prev = end();
    if (prev) ended.push_back(std::move(*prev));
    EndedStep refused;
    refused.plan = std::move(plan);
    refused.status = s;
    ended.push_back(std::move(refused));
    return ended;
  }
  in_flight_ = std::move(plan);
  if (prev) ended.push_back(std::move(*prev));
  return ended;
}

Status StepPipeline::begin(StepPlan& plan, SampleBatch* sampling) {
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    MLXS_RETURN_IF_ERROR(check_runnable(plan.out.seqs[i], plan.inputs[i]));
  }
  StepBatch batch = make_step_batch(plan.out, model_.config().sliding_window);
  if (plan.kind == StepKind::kSampled) {
    for (const StepRow& row : plan.rows) {
      const Request& r = *requests_(plan.out.seqs[size_t(row.seq)].id);
      sampling->add_row(r.sampling, r.history, row.draw_index);
    }
  }
  const bool masked_draw = plan.constrained && plan.kind != StepKind::kLogits;
  return model_.begin_step(plan.kind, batch.token_ids, batch.attention, batch.sample_rows, cache_,
                           sampling, masked_draw);
}

Status StepPipeline::draw_constrained(StepPlan& plan, const SampleBatch& sampling) {
  fill_masks(plan);
  if (plan.kind == StepKind::kLogits) return {};  // applied on the host when the logits come
  return model_.draw_masked(plan.masks, &sampling);
}

// Row k's mask is masks[k * W, + W): its constraint's allowed tokens, or every token for an
// unconstrained row. A constraint that allows nothing fails its row (mask_failed): its mask is
// then opened so the draw has a token, which end() discards.
void StepPipeline::fill_masks(StepPlan& plan) const {
  const size_t W = bitmask_words(size_t(model_.config().vocab_size)), R = plan.rows.size();
  plan.masks.assign(R * W, ~0u);
  plan.mask_failed.assign(R, 0);
  std::vector<TokenConstraint*> constraints(R, nullptr);
  for (size_t k = 0; k < R; ++k) {
    const Request* r = requests_(plan.out.seqs[size_t(plan.rows[k].seq)].id);
    if (r != nullptr) constraints[k] = r->constraint.get();
  }
  // Each constraint is its own sequence's: rows are independent.
#pragma omp parallel for if (R > 1)
  for (size_t k = 0; k < R; ++k) {
    // A complete constraint ended its sequence in the step before this one (which this step
    // overlapped): its row is computed once more and dropped, so any token will do.
    if (!constraints[k] || constraints[k]->is_complete()) continue;
    std::span<uint32_t> words = std::span<uint32_t>(plan.masks).subspan(k * W, W);
    std::fill(words.begin(), words.end(), 0u);
    constraints[k]->fill_allowed(words);
    if (std::all_of(words.begin(), words.end(), [](uint32_t w) { return w == 0; })) {
      plan.mask_failed[k] = 1;
      std::fill(words.begin(), words.end(), ~0u);
    }
  }
}

std::optional<EndedStep> StepPipeline::end() {
  if (!in_flight_) return std::nullopt;
  EndedStep f;
  f.plan = std::move(*in_flight_);
  in_flight_.reset();
  std::vector<float> logits, logprobs;
  std::vector<int32_t> next;
  f.status = model_.end_step(&next, &logprobs, &logits);
  if (!f.status.ok()) return f;
  const size_t R = f.plan.rows.size();
  f.sampled.resize(R);
  if (f.plan.kind == StepKind::kLogits) {
    sample_on_host(f, logits);
  } else {
    for (size_t k = 0; k < R; ++k) {
      f.sampled[k].token = next[k];
      if (f.plan.kind == StepKind::kSampled) f.sampled[k].logprob = logprobs[k];
    }
  }
  if (f.plan.constrained) accept_constrained(f);
  resolve_in_scheduler(f);
  return f;
}

// Rows of requests that ended meanwhile (a stop string, a cancel) are skipped (token -1).
// Masks are applied first; then the rows are sampled in parallel (sample() is a pure function).
void StepPipeline::sample_on_host(EndedStep& f, std::span<float> logits) const {
  const size_t V = size_t(model_.config().vocab_size), R = f.plan.rows.size();
  const size_t W = bitmask_words(V);
  std::vector<const Request*> req(R);
  for (size_t k = 0; k < R; ++k) {
    req[k] = requests_(f.plan.out.seqs[size_t(f.plan.rows[k].seq)].id);
  }
#pragma omp parallel for if (R > 4)
  for (size_t k = 0; k < R; ++k) {
    if (!req[k]) continue;
    const Request& r = *req[k];
    std::span<float> row = logits.subspan(k * V, V);
    if (f.plan.constrained) {
      (void)apply_token_bitmask(std::span<const uint32_t>(f.plan.masks).subspan(k * W, W), row);
    }
    f.sampled[k] = sample(row, r.sampling, r.history, f.plan.rows[k].draw_index);
  }
}

// Each constraint takes its row's token; a row whose constraint allowed nothing or refuses the
// token gets an error of its own (and token 0: any valid id, as a plan made before this step
// ended may still compute the sequence once, dropped, reading it in place of its placeholder).
void StepPipeline::accept_constrained(EndedStep& f) const {
  const size_t R = f.plan.rows.size();
  std::vector<Status> errors(R);
  std::vector<TokenConstraint*> constraints(R, nullptr);
  for (size_t k = 0; k < R; ++k) {
    const Request* r = requests_(f.plan.out.seqs[size_t(f.plan.rows[k].seq)].id);
    if (r != nullptr) constraints[k] = r->constraint.get();
  }
#pragma omp parallel for if (R > 4)
  for (size_t k = 0; k < R; ++k) {
    if (!constraints[k] || constraints[k]->is_complete()) continue;  // ended: see fill_masks()
    const int32_t token = f.sampled[k].token;
    if (k < f.plan.mask_failed.size() && f.plan.mask_failed[k]) {
      errors[k] = error(ErrorCode::kInternalError, "the token mask allows none of the " +
                                                       std::to_string(model_.config().vocab_size) +
                                                       " tokens of the vocabulary");
    } else if (!constraints[k]->accept(token)) {
      errors[k] =
          error(ErrorCode::kInternalError, "the constraint refused token " + std::to_string(token) +
                                               ", which its mask allowed");
    }
  }
  for (size_t k = 0; k < R; ++k) {
    if (errors[k].ok()) continue;
    f.sampled[k].token = 0;
    f.row_errors.resize(R);
    f.row_errors[k] = std::move(errors[k]);
  }
}

void StepPipeline::resolve_in_scheduler(EndedStep& f) {
  std::vector<int32_t> verified;
  const std::vector<StepRow>& rows = f.plan.rows;
  for (size_t k = 0; k < rows.size();) {
    // The rows of one sequence: one on the plain path, k + 1 with k proposals.
    size_t n = 1;
    while (k + n < rows.size() && rows[k + n].seq == rows[k].seq) ++n;
    const sched::SeqId id = f.plan.out.seqs[size_t(rows[k].seq)].id;
    const Request* r = requests_(id);
    if (r != nullptr && !f.row_errors.empty() && !f.row_errors[k].ok()) {
      (void)scheduler_.abort(id);
      f.seqs.push_back({id, int(k), 0, std::nullopt, f.row_errors[k]});
    } else if (r != nullptr) {  // else ended meanwhile; the scheduler forgot it then
      verified.clear();
      for (size_t j = 0; j < n; ++j) verified.push_back(f.sampled[k + j].token);
      const int accepted = accept_proposals(f.plan.inputs[size_t(rows[k].seq)].proposals, verified);
      MLXS_CHECK(accepted == 0);  // begin() runs no proposals yet: one token per sequence
      EndedStep::Seq s{id, int(k), accepted + 1, std::nullopt, {}};
      auto finished = scheduler_.resolve_placeholder(id, verified[size_t(accepted)]);
      if (finished.ok() && finished->has_value()) s.finish = (*finished)->reason;
      if (!s.finish && r->constraint && r->constraint->is_complete()) {
        (void)scheduler_.abort(id, FinishReason::kStop);  // the grammar allows nothing more
        s.finish = FinishReason::kStop;
      }
      f.seqs.push_back(s);
    }
    k += n;
  }
}

std::vector<sched::FinishedSeq> StepPipeline::apply_in_flight() {
  MLXS_CHECK(in_flight_.has_value());
  return scheduler_.update(in_flight_->out, placeholders(*in_flight_));
}

std::vector<sched::SampledToken> StepPipeline::placeholders(const StepPlan& plan) {
  std::vector<sched::SampledToken> tokens(plan.out.seqs.size());
  for (size_t k = 0; k < plan.rows.size(); ++k) {
    tokens[size_t(plan.rows[k].seq)].token = Model::placeholder(k);
  }
  return tokens;
}

void StepPipeline::resolve_on_host(std::span<int32_t> tokens, std::span<const SampleResult> prev) {
  for (int32_t& t : tokens) {
    if (t < 0) {
      const size_t k = Model::placeholder_row(t);
      MLXS_CHECK(k < prev.size());
      t = prev[k].token;
    }
  }
}

}  // namespace mlxs
