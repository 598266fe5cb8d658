#include "runtime/step_output.h"

#include <algorithm>

#include "sched/scheduler_output.h"

namespace mlxs {
namespace {

double ms_between(EngineClock::time_point a, EngineClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

StepOutput::StepOutput(std::string model_id, const Tokenizer* tokenizer,
                       sched::Scheduler& scheduler, Hooks hooks)
    : model_id_(std::move(model_id)),
      tokenizer_(tokenizer),
      scheduler_(scheduler),
      hooks_(std::move(hooks)) {}

void StepOutput::add(std::unique_ptr<Request> r) {
  hooks_.events(GenerationStartedEvent{r->stream_id, model_id_, int32_t(r->prompt.size())});
  const sched::SeqId id = r->id;
  live_[id] = std::move(r);
}

Request* StepOutput::find(sched::SeqId id) const {
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : it->second.get();
}

std::vector<std::pair<sched::SeqId, FinishReason>> StepOutput::expired(
    EngineClock::time_point now) const {
  std::vector<std::pair<sched::SeqId, FinishReason>> ended;
  for (const auto& [id, r] : live_) {
    if (r->cancel.cancelled() || r->stream->abandoned()) {
      ended.push_back({id, FinishReason::kCancelled});
    } else if (now >= r->deadline) {
      ended.push_back({id, FinishReason::kTimeout});
    }
  }
  return ended;
}

void StepOutput::mark_scheduled(const sched::SchedulerOutput& out) {
  for (const sched::ScheduledSeq& seq : out.seqs) {
    Request& r = *live_.at(seq.id);
    if (!r.scheduled) r.num_cached_prompt_tokens = seq.start_pos;  // after prefix-cache hits
    r.scheduled = true;
  }
}

void StepOutput::add_token(sched::SeqId id, const SampleResult& sample,
                           std::optional<FinishReason> finish) {
  Request* r = find(id);
  if (r == nullptr) return;
  if (r->num_generated == 0) r->first_token = EngineClock::now();
  ++r->num_generated;
  r->history.add_output(sample.token);
  pending_tokens_.push_back({id, sample, finish});
}

void StepOutput::add_speculation(sched::SeqId id, int num_proposals, int num_accepted) {
  Request* r = find(id);
  if (r == nullptr) return;
  r->num_proposed += num_proposals;
  r->num_accepted += num_accepted;
  const bool first = r->num_verify_steps++ == 0;
  const double w = first ? 1.0 : 0.3;
  r->recent_acceptance =
      (1 - w) * r->recent_acceptance + w * double(num_accepted) / double(num_proposals);
  r->recent_accepted = (1 - w) * r->recent_accepted + w * double(num_accepted);
}

void StepOutput::add_finish(sched::SeqId id, FinishReason reason) {
  pending_finishes_.push_back({id, reason});
}

void StepOutput::flush(bool defer_pauses) {
  std::vector<PendingToken> tokens;
  tokens.swap(pending_tokens_);
  for (PendingToken& p : tokens) {
    Request* r = find(p.id);
    if (r == nullptr) continue;  // cancelled or failed since
    if (emit_token(*r, p)) {
      // A stop string: the sequence ends one step late (the step in flight computes one more
      // token for it, dropped), and so do the tokens after it that one verification step gave.
      r->num_generated -= int(std::count_if(&p + 1, tokens.data() + tokens.size(),
                                            [&](const PendingToken& q) { return q.id == p.id; }));
      (void)scheduler_.abort(p.id, FinishReason::kStop);
      finish(*r, FinishReason::kStop);
    } else if (p.finish) {
      finish(*r, *p.finish);
    } else {
      apply_backpressure(*r, defer_pauses);
    }
  }
  std::vector<std::pair<sched::SeqId, FinishReason>> finishes;
  finishes.swap(pending_finishes_);
  for (auto [id, reason] : finishes) {
    if (Request* r = find(id)) finish(*r, reason);
  }
}

void StepOutput::apply_pauses() {
  for (sched::SeqId id : pending_pauses_) (void)scheduler_.pause(id);
  pending_pauses_.clear();
}

bool StepOutput::emit_token(Request& r, const PendingToken& p) {
  const int32_t token = p.sample.token;
  // A stop id is not part of the text; a sequence that ends with reason stop on another token
  // (its grammar allows nothing more) keeps that token.
  const bool stop_token =
      p.finish == FinishReason::kStop &&
      std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) != r.stop_token_ids.end();
  bool stop_text = false;
  std::string text;
  if (!stop_token && r.detokenizer) text = r.stop->feed(r.detokenizer->add(token), &stop_text);
  if (stop_text) r.matched_stop = r.stop->matched();
  const bool final = p.finish.has_value() || stop_text;
  if (final && !stop_text && r.detokenizer) {
    bool ignored = false;
    text += r.stop->feed(r.detokenizer->finish(), &ignored);
    if (!ignored) text += r.stop->flush();
  }
  TokenChunk chunk;
  chunk.text = std::move(text);
  chunk.token_id = token;
  chunk.is_final = final;
  if (r.logprobs) chunk.logprob = p.sample.logprob;
  for (const auto& t : p.sample.top) {
    std::string piece = tokenizer_ ? tokenizer_->decode(std::span(&t.token, 1)) : "";
    chunk.top_logprobs.push_back({t.token, std::move(piece), t.logprob});
  }
  hooks_.events(GenerationTokenEvent{r.stream_id, token, chunk.text, chunk.logprob});
  r.stream->push(std::move(chunk), false);
  return stop_text;
}

void StepOutput::apply_backpressure(Request& r, bool defer) {
  if (r.paused) return;
  const sched::SeqId id = r.id;
  const bool paused = r.stream->pause_if_full([resume = hooks_.resume, id] { resume(id); });
  if (!paused) return;
  r.paused = true;
  if (defer) {
    pending_pauses_.push_back(id);  // paused once the plan of the step in flight is applied
  } else {
    (void)scheduler_.pause(id);
  }
}

void StepOutput::finish(sched::SeqId id, FinishReason reason) {
  if (Request* r = find(id)) finish(*r, reason);
}

void StepOutput::finish(Request& r, FinishReason reason) {
  const auto now = EngineClock::now();
  MetadataChunk m;
  m.tokens_generated = r.num_generated;
  m.draft_tokens_accepted = r.num_accepted;
  m.draft_tokens_proposed = r.num_proposed;
  m.speculative_steps = r.num_verify_steps;
  m.prompt_tokens = int32_t(r.prompt.size());
  m.cached_prompt_tokens = r.num_cached_prompt_tokens;
  m.total_time_ms = ms_between(r.submitted, now);
  m.time_to_first_token_ms = r.num_generated ? ms_between(r.submitted, r.first_token) : 0.0;
  const double decode_ms = m.total_time_ms - m.time_to_first_token_ms;
  m.tokens_per_second =
      r.num_generated > 1 && decode_ms > 0 ? (r.num_generated - 1) * 1e3 / decode_ms : 0.0;
  m.finish_reason = reason;
  m.model_id = model_id_;
  m.stop_sequence = r.matched_stop;
  hooks_.ended(r, true);
  hooks_.events(GenerationCompletedEvent{r.stream_id, m});
  r.stream->push(std::move(m), true);
  const sched::SeqId id = r.id;  // erasing destroys r
  live_.erase(id);
}

void StepOutput::fail(Request& r, ErrorCode code, const std::string& message) {
  // The completed event (finish_reason error) also releases the engine's active-stream slot,
  // which is counted down on generation:completed only.
  MetadataChunk m;
  m.tokens_generated = r.num_generated;
  m.prompt_tokens = int32_t(r.prompt.size());
  m.finish_reason = FinishReason::kError;
  m.model_id = model_id_;
  hooks_.ended(r, false);
  hooks_.events(GenerationCompletedEvent{r.stream_id, m});
  r.stream->push(ErrorChunk{code, message, ""}, true);
  const sched::SeqId id = r.id;  // erasing destroys r if it was live
  live_.erase(id);
}

void StepOutput::fail(sched::SeqId id, ErrorCode code, const std::string& message) {
  if (Request* r = find(id)) fail(*r, code, message);
}

void StepOutput::fail_all(ErrorCode code, const std::string& message) {
  while (!live_.empty()) fail(*live_.begin()->second, code, message);
}

}  // namespace mlxs
