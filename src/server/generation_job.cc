#include "server/generation_job.h"

#include <chrono>
#include <random>

namespace mlxs::server {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string new_response_id(const Dialect& dialect) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = dialect.id_prefix();
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

GenerationJob::GenerationJob(GenerationRequest request, const Dialect& dialect, Engine& engine,
                             Metrics& metrics)
    : request_(std::move(request)), dialect_(dialect), engine_(engine), metrics_(metrics) {
  state_.request = &request_;
  state_.token_text = [this](int32_t id) {
    auto text = engine_.detokenize(model(), {id});
    return text.ok() ? *text : std::string();
  };
}

GenerationJob::~GenerationJob() {
  cancel();
}

std::optional<ApiError> GenerationJob::start(const std::string& request_id,
                                             std::function<void()> notify) {
  state_.id = new_response_id(dialect_);
  state_.created = unix_now();
  const size_t n = size_t(request_.n);
  state_.choices.resize(n);
  generators_.resize(n);
  last_token_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    GeneratorParams p = request_.params;
    if (p.seed) p.seed = uint32_t(*p.seed + uint32_t(i));
    GeneratorOptions o;
    o.stream_id = n == 1 ? request_id : request_id + "." + std::to_string(i);
    auto gen = engine_.create_generator(p, o);
    if (!gen.ok()) {
      cancel();
      return error_from_status(gen.status());
    }
    generators_[i] = std::move(*gen);
  }
  for (auto& g : generators_) g->set_listener(notify);
  return std::nullopt;
}

void GenerationJob::cancel() {
  for (auto& g : generators_) {
    if (g && !g->done()) g->cancel();
  }
}

bool GenerationJob::poll(std::string* out, size_t max_bytes) {
  bool all_ended = true;
  for (int i = 0; i < int(generators_.size()); ++i) {
    ChoiceState& c = state_.choices[size_t(i)];
    while (!c.ended() && out->size() < max_bytes) {
      auto chunk = generators_[size_t(i)]->next(std::chrono::milliseconds(0));
      if (!chunk) break;
      if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
        on_token(i, std::move(*t), out);
      } else if (auto* m = std::get_if<MetadataChunk>(&*chunk)) {
        c.meta = *m;
        on_end(i, out);
      } else {
        c.error = std::get<ErrorChunk>(*chunk);
        on_end(i, out);
      }
    }
    all_ended = all_ended && c.ended();
  }
  return all_ended;
}

void GenerationJob::on_token(int index, TokenChunk t, std::string* out) {
  ChoiceState& c = state_.choices[size_t(index)];
  auto& last = last_token_[size_t(index)];
  const auto now = Clock::now();
  if (last) metrics_.record_inter_token(std::chrono::duration<double>(now - *last).count());
  last = now;
  const size_t offset = c.text.size();
  c.text += t.text;
  if (request_.stream) *out += dialect_.stream_token(state_, index, t, offset);
  t.top_logprobs.shrink_to_fit();
  c.tokens.push_back(std::move(t));
}

void GenerationJob::on_end(int index, std::string* out) {
  const ChoiceState& c = state_.choices[size_t(index)];
  if (c.meta && c.meta->tokens_generated > 0)
    metrics_.record_ttft(c.meta->time_to_first_token_ms / 1e3);
  if (c.error) metrics_.record_error(error_code_name(c.error->code));
  if (request_.stream) *out += dialect_.stream_choice_end(state_, index);
}

std::pair<int, std::string> GenerationJob::response_body() const {
  if (auto e = state_.first_error()) return {e->http_status, dump_json(dialect_.error_json(*e))};
  return {200, dump_json(dialect_.response(state_))};
}

double GenerationJob::ttft_ms() const {
  double best = -1;
  for (const auto& c : state_.choices) {
    if (c.meta && c.meta->tokens_generated > 0 &&
        (best < 0 || c.meta->time_to_first_token_ms < best)) {
      best = c.meta->time_to_first_token_ms;
    }
  }
  return best;
}

std::string GenerationJob::outcome() const {
  for (const auto& c : state_.choices) {
    if (c.error) return std::string("error:") + error_code_name(c.error->code);
  }
  if (state_.choices.empty() || !state_.choices[0].meta) return "none";
  return finish_reason_name(state_.choices[0].meta->finish_reason);
}

}  // namespace mlxs::server
