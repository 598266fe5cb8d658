#include "server/http_server.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "server/body_reader.h"
#include "server/generation_job.h"
#include "server/metrics.h"
#include "util/constant_time.h"
#include "util/json_depth.h"
#include "util/json_int.h"

namespace mlxs::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kHighWater = 64 * 1024;        // bytes queued before we stop pulling tokens
constexpr size_t kMaxPipelinedBytes = 1 << 20;  // read ahead while a generation runs
constexpr auto kIdleTimeout = std::chrono::seconds(120);

const char* const kRoutes[] = {
    "/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/models", "/tokenize",
    "/detokenize",          "/health",         "/metrics"};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string json_response_type() {
  return "application/json";
}

}  // namespace

class Session;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(Engine& e, std::vector<ServedModel> m, ServerOptions o)
      : engine(e),
        models(std::move(m)),
        options(std::move(o)),
        acceptor(ioc),
        signals(ioc),
        deadline(ioc) {}

  Engine& engine;
  std::vector<ServedModel> models;
  ServerOptions options;
  Metrics metrics;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer deadline;
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> next_request{1};
  Clock::time_point started = Clock::now();
  std::mutex log_mu;

  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;  // guarded by sessions_mu
  uint64_t next_session = 1;                                      // guarded by sessions_mu

  const ServedModel* find_model(const std::string& id) const {
    for (const auto& m : models) {
      if (m.id == id) return &m;
    }
    return nullptr;
  }
  void accept();
  void begin_shutdown();
  void on_deadline();
  void session_closed(uint64_t id);
  void log_line(const std::string& line) {
    if (!options.log_requests) return;
    std::lock_guard<std::mutex> lock(log_mu);
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  template <class F>
  void for_each_session(F f);
};

// One connection. Every member is touched only on the connection's strand, except
// notify_pending_ (atomic) which the engine's listener sets.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server, uint64_t id)
      : stream_(std::move(socket)), server_(std::move(server)), id_(id) {
    server_->metrics.add_connection(1);
  }
  ~Session() {
    server_->metrics.add_connection(-1);
    server_->session_closed(id_);
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }
  void on_shutdown() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->keep_alive_ = false;
      if (!self->in_exchange_) self->close();
    });
  }
  void on_deadline() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->job_) self->job_->cancel();
    });
  }

 private:
  // --- reading requests -----------------------------------------------------------------
  void read_request() {
    if (closed_) return;
    if (server_->draining) return close();
    in_exchange_ = false;
    parser_.emplace();
    parser_->body_limit(uint64_t(server_->options.max_body_bytes));
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::body_limit) {
      begin_exchange(std::string(parser_->get().method_string()),
                     route_of(parser_->get().target()));
      keep_alive_ = false;
      linger_ = true;  // the client is still sending the body: read it away after answering
      ApiError e = make_error(413, ErrorCode::kInvalidRequest,
                              fmt::format("request body exceeds server.max_body_bytes ({} bytes)",
                                          server_->options.max_body_bytes));
      return send_error(e, false);
    }
    if (ec) return close();
    stream_.expires_never();
    handle(parser_->release());
  }

  void begin_exchange(const std::string& method, const std::string& route) {
    in_exchange_ = true;
    started_ = Clock::now();
    request_id_ = fmt::format("req-{}", server_->next_request.fetch_add(1));
    route_ = route;
    method_ = method;
    model_.clear();
    exchange_complete_ = false;
    server_->metrics.add_active_request(1);
  }

  static std::string route_of(std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    for (const char* r : kRoutes) {
      if (path == r) return r;
    }
    if (path.starts_with("/v1/models/")) return "/v1/models/{id}";
    return "unmatched";
  }

  void handle(http::request<http::string_body> req) {
    const std::string target(req.target());
    begin_exchange(std::string(req.method_string()), route_of(target));
    keep_alive_ = req.keep_alive() && !server_->draining;
    chunked_ = req.version() >= 11;  // HTTP/1.0 streams are delimited by closing instead
    anthropic_ = route_ == "/v1/messages";
    try {
      dispatch(req, target);
    } catch (const std::exception& ex) {
      send_error(
          make_error(500, ErrorCode::kInternalError, std::string("internal error: ") + ex.what()),
          anthropic_);
    } catch (...) {
      send_error(make_error(500, ErrorCode::kInternalError, "internal error"), anthropic_);
    }
  }

  bool authorized(const http::request<http::string_body>& req) const {
    const std::string& key = server_->options.api_key;
    if (key.empty()) return true;
    auto auth = req[http::field::authorization];
    // Compared in constant time: response times must not reveal how much of a guess was right.
    if (auth.starts_with("Bearer ") && constant_time_equal(auth.substr(7), key)) return true;
    return constant_time_equal(req["x-api-key"], key);
  }

  void dispatch(const http::request<http::string_body>& req, const std::string& target) {
    const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
    const std::string& r = route_;
    if (r == "unmatched") {
      return send_error(
          make_error(404, ErrorCode::kNotFound, "no route for " + method_ + " " + target), false);
    }
    const bool is_get_route = r == "/health" || r == "/metrics" || r.starts_with("/v1/models");
    if ((is_get_route && !get) || (!is_get_route && !post)) {
      return send_error(make_error(405, ErrorCode::kInvalidRequest,
                                   "method " + method_ + " is not allowed on " + r),
                        anthropic_);
    }
    if (r == "/health") return send_health();
    if (r == "/metrics" && !server_->options.metrics) {
      return send_error(make_error(404, ErrorCode::kNotFound,
                                   "no route for GET /metrics (telemetry.metrics is false)"),
                        false);
    }
    if (r == "/metrics") {
      return send(
          200, "text/plain; version=0.0.4; charset=utf-8",
          server_->metrics.render(server_->engine.runtime_info(), server_->engine.health_check()));
    }
    if (!authorized(req)) {
      return send_error(
          make_error(401, ErrorCode::kInvalidRequest,
                     "invalid or missing API key (Authorization: Bearer KEY or x-api-key)",
                     "invalid_api_key"),
          anthropic_);
    }
    if (r == "/v1/models") return send(200, json_response_type(), dump_json(models_json()));
    if (r == "/v1/models/{id}") return send_model(target.substr(std::string("/v1/models/").size()));
    json body;
    if (!parse_body(req.body(), &body)) return;
    if (r == "/tokenize") return send_tokenize(body);
    if (r == "/detokenize") return send_detokenize(body);
    const ApiKind kind = r == "/v1/chat/completions" ? ApiKind::kChat
                         : r == "/v1/completions"    ? ApiKind::kCompletion
                                                     : ApiKind::kMessages;
    start_generation(kind, body);
  }

  bool parse_body(const std::string& text, json* out) {
    const int max_depth = server_->options.max_json_depth;
    if (json_nesting_depth(text, max_depth) > max_depth) {
      send_error(make_error(400, ErrorCode::kParseError,
                            fmt::format("request body nests arrays/objects deeper than "
                                        "server.max_json_depth ({})",
                                        max_depth)),
                 anthropic_);
      return false;
    }
    try {
      *out = json::parse(text);
      return true;
    } catch (const json::exception& ex) {
      send_error(make_error(400, ErrorCode::kParseError,
                            std::string("request body is not valid JSON: ") + ex.what()),
                 anthropic_);
      return false;
    }
  }

  // --- simple routes ----------------------------------------------------------------------
  json model_json(const ServedModel& m) const {
    return {{"id", m.id},
            {"object", "model"},
            {"created", m.created},
            {"owned_by", "mlx-serving"},
            {"max_model_len", m.context_length}};
  }
  json models_json() const {
    json data = json::array();
    for (const auto& m : server_->models) data.push_back(model_json(m));
    return {{"object", "list"}, {"data", data}};
  }
  void send_model(const std::string& id) {
    const ServedModel* m = server_->find_model(id);
    if (!m) {
      return send_error(make_error(404, ErrorCode::kModelNotLoaded,
                                   "The model '" + id + "' does not exist", "model_not_found"),
                        false);
    }
    send(200, json_response_type(), dump_json(model_json(*m)));
  }

  void send_health() {
    HealthStatus h = server_->engine.health_check();
    const char* names[] = {"healthy", "degraded", "unhealthy"};
    std::string status = server_->draining ? "draining" : names[int(h.status)];
    json body = {{"status", status},
                 {"uptime_s", h.uptime_s},
                 {"active_streams", h.active_streams},
                 {"loaded_models", h.loaded_models}};
    if (!h.detail.empty()) body["detail"] = h.detail;
    // Per model: the KV pool's size and use (tokens = blocks x block_size).
    json pools = json::array();
    for (const ModelStats& m : server_->engine.runtime_info().models) {
      pools.push_back({{"model", m.model_id},
                       {"block_size", m.kv_block_size},
                       {"blocks_total", m.kv_blocks_total},
                       {"blocks_used", m.kv_blocks_used},
                       {"blocks_free", m.kv_blocks_total - m.kv_blocks_used},
                       {"tokens_capacity", int64_t(m.kv_blocks_total) * m.kv_block_size},
                       {"bytes", m.kv_cache_bytes}});
    }
    body["kv_cache"] = std::move(pools);
    const bool ok = !server_->draining && h.status != HealthState::kUnhealthy;
    send(ok ? 200 : 503, json_response_type(), dump_json(body));
  }

  const ServedModel* tokenizer_model(BodyReader& r) {
    auto id = r.string("model");
    if (!id && !server_->models.empty()) return &server_->models[0];
    const ServedModel* m = id ? server_->find_model(*id) : nullptr;
    if (!m && !r.failed()) {
      r.fail(make_error(404, ErrorCode::kModelNotLoaded,
                        "The model '" + id.value_or("") + "' does not exist", "model_not_found"));
    }
    return m;
  }

  void send_tokenize(const json& body) {
    BodyReader r(body);
    const ServedModel* m = tokenizer_model(r);
    auto prompt = r.string("prompt");
    auto text = r.string("text");
    bool add_special = r.boolean("add_special_tokens").value_or(true);
    if (!r.failed() && !prompt && !text) r.fail_field("prompt", "is required");
    if (auto e = r.finish()) return send_error(*e, false);
    auto t = server_->engine.tokenize(m->id, prompt ? *prompt : *text, add_special);
    if (!t.ok()) return send_error(error_from_status(t.status()), false);
    model_ = m->id;
    json out = {{"tokens", t->tokens},
                {"count", t->tokens.size()},
                {"max_model_len", m->context_length},
                {"token_strings", t->token_strings}};
    send(200, json_response_type(), dump_json(out));
  }

  void send_detokenize(const json& body) {
    BodyReader r(body);
    const ServedModel* m = tokenizer_model(r);
    std::vector<int32_t> ids;
    const json* tokens = r.get("tokens");
    if (!r.failed() && !tokens) r.fail_field("tokens", "is required");
    if (tokens) {
      if (!tokens->is_array())
        r.fail_field("tokens", "expected array of integers, got " + json_type_name(*tokens));
      else {
        for (const auto& v : *tokens) {
          auto checked = json_int_in(v, 0, INT32_MAX);
          if (!checked) {
            r.fail_field("tokens",
                         "expected array of integers >= 0 and <= 2147483647, got " + v.dump());
            break;
          }
          ids.push_back(int32_t(*checked));
        }
      }
    }
    if (auto e = r.finish()) return send_error(*e, false);
    auto text = server_->engine.detokenize(m->id, ids);
    if (!text.ok()) return send_error(error_from_status(text.status()), false);
    model_ = m->id;
    send(200, json_response_type(), dump_json(json{{"prompt", *text}}));
  }

  // --- generations --------------------------------------------------------------------------
  void start_generation(ApiKind kind, const json& body) {
    auto parsed = parse_generation_request(
        kind, body, [this](const std::string& id) { return server_->find_model(id); },
        server_->engine);
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(*e, anthropic_);
    auto& request = std::get<GenerationRequest>(parsed);
    model_ = request.params.model;
    if (server_->draining) {
      return send_error(make_error(503, ErrorCode::kServerError, "server is shutting down"),
                        anthropic_);
    }
    if (kind == ApiKind::kMessages && request.n != 1) request.n = 1;
    job_ = std::make_unique<GenerationJob>(std::move(request), server_->engine, server_->metrics);
    std::weak_ptr<Session> weak = weak_from_this();
    auto refused = job_->start(request_id_, [weak] {
      if (auto self = weak.lock()) self->notify();
    });
    if (refused) {
      job_.reset();
      return send_error(*refused, anthropic_);
    }
    job_done_ = false;
    if (job_->streaming()) {
      status_ = 200;
      if (!chunked_) keep_alive_ = false;
      pending_ +=
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
      if (chunked_) pending_ += "Transfer-Encoding: chunked\r\n";
      pending_ += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
      append_chunk(job_->stream_prologue());
    }
    start_side_read();
    pump();
  }

  void notify() {
    if (notify_pending_.exchange(true)) return;
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->notify_pending_ = false;
      self->pump();
    });
  }

  // Pulls the job's chunks; an exception (a bug) ends the exchange with a 500 when nothing was
  // sent yet, else closes the connection. Never lets it reach the I/O loop.
  void pump() {
    try {
      pump_once();
    } catch (const std::exception& ex) {
      server_->log_line(dump_json({{"level", "error"},
                                   {"event", "bug"},
                                   {"id", request_id_},
                                   {"detail", std::string("pump: ") + ex.what()}}));
      if (job_) job_->cancel();
      job_done_ = true;
      close();
    }
  }

  void pump_once() {
    if (!job_ || job_done_ || closed_) return;
    if (write_in_flight_ && pending_.size() >= kHighWater) return;  // resumed by on_write
    std::string events;
    const bool done = job_->poll(&events, kHighWater);
    if (job_->streaming()) {
      if (done) events += job_->stream_epilogue();
      append_chunk(events);
      if (done && chunked_) pending_ += "0\r\n\r\n";
    }
    if (done) {
      job_done_ = true;
      if (!job_->streaming()) {
        auto [status, body] = job_->response_body();
        if (status != 200) server_->metrics.record_error(job_->outcome());
        append_response(status, json_response_type(), body, "");
      }
      exchange_complete_ = true;
    }
    flush();
  }

  void append_chunk(const std::string& data) {
    if (data.empty()) return;
    if (!chunked_) {
      pending_ += data;
      return;
    }
    pending_ += fmt::format("{:x}\r\n", data.size());
    pending_ += data;
    pending_ += "\r\n";
  }

  // A read kept pending while a generation runs: EOF or an error means the client left.
  // Pipelined bytes are kept for the next request.
  void start_side_read() {
    if (side_read_active_ || closed_) return;
    side_read_active_ = true;
    stream_.socket().async_read_some(
        net::buffer(side_buf_),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_side_read(ec, n); });
  }

  void on_side_read(beast::error_code ec, size_t n) {
    side_read_active_ = false;
    if (closed_) return;
    if (n > 0) {
      auto dst = buffer_.prepare(n);
      net::buffer_copy(dst, net::buffer(side_buf_.data(), n));
      buffer_.commit(n);
    }
    if (ec && ec != net::error::operation_aborted) return client_gone();
    if (!exchange_complete_ && !ec) {
      if (buffer_.size() < kMaxPipelinedBytes) start_side_read();
      return;
    }
    if (exchange_complete_ && !write_in_flight_ && pending_.empty()) next_request();
  }

  void client_gone() {
    if (job_) {
      job_->cancel();
      finish_exchange(499, "client_disconnected");
    }
    close();
  }

  // --- writing ----------------------------------------------------------------------------------
  void send(int status, const std::string& content_type, const std::string& body,
            const std::string& extra_headers = "") {
    append_response(status, content_type, body, extra_headers);
    exchange_complete_ = true;
    flush();
  }

  void send_error(const ApiError& e, bool anthropic) {
    server_->metrics.record_error(error_code_name(e.engine_code));
    std::string extra =
        e.retry_after_s > 0 ? fmt::format("Retry-After: {}\r\n", e.retry_after_s) : "";
    error_message_ = e.message;
    send(e.http_status, json_response_type(),
         dump_json(anthropic ? e.anthropic_json() : e.openai_json()), extra);
  }

  void append_response(int status, const std::string& content_type, const std::string& body,
                       const std::string& extra_headers) {
    status_ = status;
    auto reason = http::obsolete_reason(http::status(unsigned(status)));
    pending_ += fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: {}\r\n\r\n",
        status, std::string(reason), content_type, body.size(), extra_headers,
        keep_alive_ ? "keep-alive" : "close");
    pending_ += body;
  }

  void flush() {
    if (write_in_flight_ || pending_.empty() || closed_) return;
    writing_.swap(pending_);
    pending_.clear();
    write_in_flight_ = true;
    net::async_write(
        stream_, net::buffer(writing_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    write_in_flight_ = false;
    writing_.clear();
    if (closed_) return;
    if (ec) return client_gone();
    if (job_ && !job_done_) return pump();
    if (!pending_.empty()) return flush();
    if (exchange_complete_) after_response();
  }

  void after_response() {
    finish_exchange(status_, job_ ? job_->outcome() : (status_ < 400 ? "ok" : "error"));
    if (linger_) return linger_close();
    if (!keep_alive_ || server_->draining) return close();
    if (side_read_active_) {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);  // on_side_read continues with the next request
      return;
    }
    next_request();
  }

  void next_request() {
    job_.reset();
    read_request();
  }

  void finish_exchange(int status, const std::string& outcome) {
    if (!in_exchange_) return;
    in_exchange_ = false;
    const double total = ms_since(started_);
    server_->metrics.record_http(route_, status);
    server_->metrics.add_active_request(-1);
    json line = {{"level", "info"},
                 {"event", "request"},
                 {"id", request_id_},
                 {"method", method_},
                 {"route", route_},
                 {"status", status},
                 {"total_ms", std::round(total * 100) / 100},
                 {"outcome", outcome}};
    if (!model_.empty()) line["model"] = model_;
    if (job_) {
      server_->metrics.record_e2e(total / 1e3);
      line["prompt_tokens"] = job_->prompt_tokens();
      line["completion_tokens"] = job_->completion_tokens();
      if (job_->ttft_ms() >= 0) line["ttft_ms"] = std::round(job_->ttft_ms() * 100) / 100;
      line["stream"] = job_->streaming();
    }
    if (status >= 400 && !error_message_.empty()) line["error"] = error_message_;
    error_message_.clear();
    server_->log_line(dump_json(line));
  }

  // Half-closes, then discards what the client still sends (up to 2 s), so that a client that
  // is still writing a refused body reads our answer instead of a reset.
  void linger_close() {
    linger_ = false;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    discard();
  }
  void discard() {
    stream_.async_read_some(net::buffer(side_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->close();
                              self->discard();
                            });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (in_exchange_) finish_exchange(status_ ? status_ : 499, "closed");
    if (job_) job_->cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  const uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::array<char, 4096> side_buf_{};

  // the exchange in progress
  bool in_exchange_ = false, exchange_complete_ = false, keep_alive_ = true, anthropic_ = false;
  bool linger_ = false, chunked_ = true;
  Clock::time_point started_;
  std::string request_id_, route_, method_, model_, error_message_;
  int status_ = 0;
  std::unique_ptr<GenerationJob> job_;
  bool job_done_ = false;

  std::string pending_, writing_;
  bool write_in_flight_ = false, side_read_active_ = false, closed_ = false;
  std::atomic<bool> notify_pending_{false};
};

template <class F>
void HttpServer::Impl::for_each_session(F f) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    for (auto& [id, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) f(*s);
}

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                          if (ec) {
                            if (!self->draining && ec != net::error::operation_aborted)
                              self->accept();
                            return;
                          }
                          if (self->draining) return;
                          std::shared_ptr<Session> session;
                          {
                            std::lock_guard<std::mutex> lock(self->sessions_mu);
                            const uint64_t id = self->next_session++;
                            session = std::make_shared<Session>(std::move(socket), self, id);
                            self->sessions[id] = session;
                          }
                          session->start();
                          self->accept();
                        });
}

void HttpServer::Impl::session_closed(uint64_t id) {
  bool last = false;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.erase(id);
    last = sessions.empty();
  }
  if (last && draining) ioc.stop();
}

void HttpServer::Impl::begin_shutdown() {
  if (draining.exchange(true)) return;
  log_line(dump_json(
      {{"level", "info"}, {"event", "shutdown"}, {"deadline_ms", options.shutdown_deadline_ms}}));
  beast::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  for_each_session([](Session& s) { s.on_shutdown(); });
  bool none;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    none = sessions.empty();
  }
  if (none) return ioc.stop();
  deadline.expires_after(std::chrono::milliseconds(options.shutdown_deadline_ms));
  deadline.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->on_deadline();
  });
}

void HttpServer::Impl::on_deadline() {
  log_line(dump_json({{"level", "warn"},
                      {"event", "shutdown_deadline"},
                      {"detail", "cancelling the generations still running"}}));
  for_each_session([](Session& s) { s.on_deadline(); });
  // Cancelled streams end within an engine step; give them a moment, then stop regardless.
  deadline.expires_after(std::chrono::seconds(2));
  deadline.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->ioc.stop();
  });
}

HttpServer::HttpServer(Engine& engine, std::vector<ServedModel> models, ServerOptions options)
    : impl_(std::make_shared<Impl>(engine, std::move(models), std::move(options))) {}

HttpServer::~HttpServer() {
  impl_->ioc.stop();
}

Result<int> HttpServer::listen() {
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec)
    return error(ErrorCode::kInvalidParams,
                 "server.host '" + impl_->options.host + "': " + ec.message());
  tcp::endpoint endpoint(address, uint16_t(impl_->options.port));
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return error(ErrorCode::kServerError,
                 fmt::format("cannot listen on {}:{}: {}", impl_->options.host, impl_->options.port,
                             ec.message()));
  }
  // Signals are caught from here on (before the caller announces the port), and queued until
  // run() starts the I/O threads.
  if (impl_->options.handle_signals) {
    auto impl = impl_;
    impl->signals.add(SIGINT);
    impl->signals.add(SIGTERM);
    impl->signals.async_wait([impl](beast::error_code ec, int) {
      if (!ec) impl->begin_shutdown();
    });
  }
  return int(a.local_endpoint().port());
}

void HttpServer::run() {
  auto impl = impl_;
  impl->accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, impl->options.io_threads); ++i) {
    threads.emplace_back([impl] { impl->ioc.run(); });
  }
  impl->ioc.run();
  for (auto& t : threads) t.join();
}

void HttpServer::shutdown() {
  net::post(impl_->ioc, [impl = impl_] { impl->begin_shutdown(); });
}

Result<ServedModel> make_served_model(const Engine& engine, const ModelHandle& handle,
                                      const ModelFileAccess& access) {
  ServedModel m;
  m.id = handle.id;
  m.context_length = handle.context_length;
  m.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  const std::string config_path = handle.local_path + "/tokenizer_config.json";
  if (model_file_exists(handle.local_path, "tokenizer_config.json")) {
    auto cfg = read_tokenizer_chat_config(handle.local_path, access);
    const bool no_template = !cfg.ok() && cfg.status().code() == ErrorCode::kNotFound;
    if (!cfg.ok() && !no_template) {
      return error(ErrorCode::kModelLoadError,
                   "model '" + handle.id + "': " + cfg.status().message());
    }
    if (cfg.ok()) {
      m.chat_config = *cfg;
      auto t = ChatTemplate::compile(cfg->chat_template);
      if (!t.ok()) {
        return error(ErrorCode::kModelLoadError, "model '" + handle.id +
                                                     "': the chat template of " + config_path +
                                                     ": " + t.status().message());
      }
      m.chat_template.emplace(std::move(*t));
    }
  }
  for (const char* marker :
       {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>"}) {
    auto t = engine.tokenize(handle.id, marker, false);
    if (t.ok() && t->tokens.size() == 1) m.end_of_turn_ids.push_back(t->tokens[0]);
  }
  return m;
}

}  // namespace mlxs::server
