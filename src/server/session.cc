#include "server/session.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "server/basic_routes.h"
#include "server/connection_state.h"
#include "server/dialect.h"
#include "server/generation_job.h"
#include "server/ollama_routes.h"
#include "server/response_writer.h"
#include "server/route_table.h"
#include "util/constant_time.h"
#include "util/json_depth.h"

namespace mlxs::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using State = ConnectionState;

constexpr size_t kHighWater = 64 * 1024;        // bytes queued before we stop pulling tokens
constexpr size_t kMaxPipelinedBytes = 1 << 20;  // read ahead while a generation runs
constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr uint32_t kMaxHeaderBytes = 8192;  // request line and headers
constexpr const char* kJson = "application/json";

// Malformed HTTP (bad request line, header, Content-Length, chunk, ...), as opposed to a client
// that left before its request was complete.
bool is_framing_error(beast::error_code ec) {
  static const auto& http_errors = make_error_code(http::error::bad_target).category();
  return ec.category() == http_errors && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::short_read;
}

// The body as JSON, or a 400 (nested deeper than `max_depth`, or not JSON).
std::variant<json, ApiError> parse_json_body(const std::string& text, int max_depth) {
  if (json_nesting_depth(text, max_depth) > max_depth) {
    return make_error(400, ErrorCode::kParseError,
                      fmt::format("request body nests arrays/objects deeper than "
                                  "server.max_json_depth ({})",
                                  max_depth));
  }
  try {
    return json::parse(text);
  } catch (const json::exception& ex) {
    return make_error(400, ErrorCode::kParseError,
                      std::string("request body is not valid JSON: ") + ex.what());
  }
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The request/response pair in progress, for the metrics and the request log.
struct Exchange {
  Clock::time_point started = Clock::now();
  std::string request_id, method, route, model, error_message;
};

class Session final : public Connection, public std::enable_shared_from_this<Session> {
 public:
  using Request = http::request<http::string_body>;
  using Handler = void (Session::*)(const Request&, const std::string& param);

  Session(tcp::socket socket, std::shared_ptr<ServerContext> server, uint64_t id)
      : stream_(std::move(socket)), server_(std::move(server)), id_(id) {
    server_->metrics.add_connection(1);
  }
  ~Session() override {
    if (exchange_) finish_exchange(499, "closed");
    server_->metrics.add_connection(-1);
    server_->session_closed(id_);
  }

  void start() override {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }
  void on_shutdown() override {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->writer_.close_after();
      // Idle (a request being parsed off the I/O threads is answered: with 503 if it generates).
      if ((self->state_.is(State::kReading) && !self->exchange_) ||
          self->state_.is(State::kLingering)) {
        self->close();
      }
    });
  }
  void on_deadline() override {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->job_) self->job_->cancel();
    });
  }

 private:
  static const RouteTable<Handler>& routes();

  // --- reading requests -----------------------------------------------------------------
  void read_request() {
    if (state_.closed()) return;
    if (server_->draining) return close();
    parser_.emplace();
    parser_->body_limit(uint64_t(server_->options.max_body_bytes));
    parser_->header_limit(kMaxHeaderBytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // The head is read: a client that sent `Expect: 100-continue` waits for `100 Continue`
  // before its body (curl waits 1 s for bodies over 1 MiB); a body over the limit was refused
  // by the parser already (413, no 100).
  void on_header(beast::error_code ec) {
    if (ec || state_.closed() || parser_->is_done()) return on_read(ec);
    const auto expect = parser_->get()[http::field::expect];
    if (!beast::iequals(expect, "100-continue") || parser_->get().version() < 11) {
      return read_body();
    }
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec || self->state_.closed()) return self->close();
                       self->read_body();
                     });
  }

  void read_body() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (state_.closed()) return;
    if (ec == http::error::body_limit) {
      return refuse_request(413,
                            fmt::format("request body exceeds server.max_body_bytes ({} bytes)",
                                        server_->options.max_body_bytes));
    }
    if (ec == http::error::header_limit) {
      return refuse_request(
          431, fmt::format("request line and headers exceed {} bytes", kMaxHeaderBytes));
    }
    if (is_framing_error(ec)) return refuse_request(400, "malformed HTTP request: " + ec.message());
    if (ec) return close();  // the client left or went idle: nobody to answer
    stream_.expires_never();
    handle(parser_->release());
  }

  // A request the parser refused. The client may still be sending (a body over the limit):
  // answer, then linger so it reads the answer rather than a reset.
  void refuse_request(int status, std::string message) {
    const auto& head = parser_->get();
    begin_exchange(std::string(head.method_string()), routes().match("", head.target()).name,
                   nullptr);
    writer_.begin(/*keep_alive=*/false, /*chunked=*/true);
    after_ = AfterResponse::kLinger;
    send_error(make_error(status, ErrorCode::kInvalidRequest, std::move(message)));
  }

  void begin_exchange(std::string method, std::string route, const Dialect* dialect) {
    exchange_.emplace();
    exchange_->request_id = fmt::format("req-{}", server_->next_request.fetch_add(1));
    exchange_->method = std::move(method);
    exchange_->route = std::move(route);
    dialect_ = dialect;
    after_ = AfterResponse::kNextRequest;
    server_->metrics.add_active_request(1);
  }

  // Routes the request; a handler that throws (a bug) becomes a 500, never reaches the loop.
  void handle(const Request& req) {
    const auto match = routes().match(req.method_string(), req.target());
    begin_exchange(std::string(req.method_string()), match.name, match.dialect);
    writer_.begin(req.keep_alive() && !server_->draining, req.version() >= 11);
    guarded([&] { dispatch(req, match); });
  }

  // Runs `f`; an exception (a bug) becomes a 500.
  template <class F>
  void guarded(F f) {
    try {
      f();
    } catch (const std::exception& ex) {
      send_error(
          make_error(500, ErrorCode::kInternalError, std::string("internal error: ") + ex.what()));
    } catch (...) {
      send_error(make_error(500, ErrorCode::kInternalError, "internal error"));
    }
  }

  // Runs `work` (parsing a body, rendering a chat template, tokenizing: seconds for a prompt of
  // megabytes) on the server's tokenizer pool, never on an I/O thread, then `then(*this,
  // result)` on this connection's strand (issue 22, finding 6). The connection stays alive
  // until then; one closed meanwhile (shutdown, a bug) drops the result. `work` must not touch
  // the session: it runs on another thread. An exception in either (a bug) becomes a 500.
  template <class Work, class Then>
  void off_io_thread(Work work, Then then) {
    using Result = std::invoke_result_t<Work&>;
    auto strand = stream_.get_executor();
    net::post(server_->tokenizer_pool, [self = shared_from_this(), strand, work = std::move(work),
                                        then = std::move(then)]() mutable {
      std::optional<Result> result;
      std::string failure = "unknown exception";
      try {
        result.emplace(work());
      } catch (const std::exception& ex) {
        failure = ex.what();
      } catch (...) {
      }
      // `self` moves into the continuation: this task never holds the last reference.
      net::post(strand, [self = std::move(self), result = std::move(result),
                         failure = std::move(failure), then = std::move(then)]() mutable {
        if (self->state_.closed()) return;
        self->guarded([&] {
          if (!result) throw std::runtime_error(failure);
          then(*self, std::move(*result));
        });
      });
    });
  }

  void dispatch(const Request& req, const RouteTable<Handler>::Match& match) {
    // Anthropic's clients get Anthropic's error shape on every route (an unknown
    // /v1/messages/... path included); an unknown /api/... path gets Ollama's.
    if (!dialect_ && (is_anthropic_client(req) || req.target().starts_with("/v1/messages")))
      dialect_ = &anthropic_messages_dialect();
    if (!dialect_ && req.target().starts_with("/api/")) dialect_ = &ollama_chat_dialect();
    if (match.status == 404) {
      return send_error(
          make_error(404, ErrorCode::kNotFound,
                     "no route for " + exchange_->method + " " + std::string(req.target())));
    }
    if (match.status == 405) {
      return send_error(
          make_error(405, ErrorCode::kInvalidRequest,
                     "method " + exchange_->method + " is not allowed on " + match.name));
    }
    if (match.route->needs_api_key && !authorized(req)) {
      return send_error(
          make_error(401, ErrorCode::kInvalidRequest,
                     "invalid or missing API key (Authorization: Bearer KEY or x-api-key)",
                     "invalid_api_key"));
    }
    (this->*match.route->handler)(req, match.param);
  }

  // Anthropic's SDKs send anthropic-version on every request.
  static bool is_anthropic_client(const Request& req) {
    return req.find("anthropic-version") != req.end();
  }

  bool authorized(const Request& req) const {
    const std::string& key = server_->options.api_key;
    if (key.empty()) return true;
    auto auth = req[http::field::authorization];
    // Compared in constant time: response times must not reveal how much of a guess was right.
    if (auth.starts_with("Bearer ") && constant_time_equal(auth.substr(7), key)) return true;
    return constant_time_equal(req["x-api-key"], key);
  }

  // --- the routes -----------------------------------------------------------------------------
  void on_health(const Request&, const std::string&) { send_reply(health_reply(*server_)); }
  void on_metrics(const Request&, const std::string&) { send_reply(metrics_reply(*server_)); }
  void on_models(const Request& req, const std::string&) {
    send_reply(models_reply(*server_, is_anthropic_client(req)));
  }
  void on_model(const Request& req, const std::string& id) {
    send_reply(model_reply(*server_, id, is_anthropic_client(req)));
  }
  void on_ollama_tags(const Request&, const std::string&) {
    send_reply(ollama_tags_reply(*server_));
  }
  void on_ollama_ps(const Request&, const std::string&) { send_reply(ollama_ps_reply(*server_)); }
  void on_ollama_version(const Request&, const std::string&) { send_reply(ollama_version_reply()); }
  void on_ollama_show(const Request& req, const std::string&) {
    off_io_thread(
        [server = server_.get(), body = req.body()]() -> RouteResult {
          auto parsed = parse_json_body(body, server->options.max_json_depth);
          if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
          return ollama_show_reply(*server, std::get<json>(parsed));
        },
        [](Session& self, RouteResult result) { self.send_reply(std::move(result)); });
  }
  void on_count_tokens(const Request& req, const std::string&) {
    off_io_thread(
        [server = server_.get(), body = req.body()]() -> RouteResult {
          auto parsed = parse_json_body(body, server->options.max_json_depth);
          if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
          return count_tokens_reply(*server, std::get<json>(parsed));
        },
        [](Session& self, RouteResult result) { self.send_reply(std::move(result)); });
  }
  // The routes that parse a body run their parsing (and tokenizing) off the I/O threads.
  void on_tokenize(const Request& req, const std::string&) {
    off_io_thread(
        [server = server_.get(), body = req.body()]() -> RouteResult {
          auto parsed = parse_json_body(body, server->options.max_json_depth);
          if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
          return tokenize_reply(*server, std::get<json>(parsed));
        },
        [](Session& self, RouteResult result) { self.send_reply(std::move(result)); });
  }
  void on_detokenize(const Request& req, const std::string&) {
    off_io_thread(
        [server = server_.get(), body = req.body()]() -> RouteResult {
          auto parsed = parse_json_body(body, server->options.max_json_depth);
          if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
          return detokenize_reply(*server, std::get<json>(parsed));
        },
        [](Session& self, RouteResult result) { self.send_reply(std::move(result)); });
  }
  void on_responses(const Request& req, const std::string& param) {
    dialect_ = &server_->responses;
    on_generate(req, param);
  }
  void on_get_response(const Request&, const std::string& id) {
    auto stored = server_->responses.stored(id);
    if (!stored) {
      return send_error(make_error(404, ErrorCode::kNotFound,
                                   "Response with id '" + id + "' not found.", "not_found"));
    }
    send_reply(Reply{200, kJson, dump_json(*stored), (*stored)["model"].get<std::string>()});
  }
  void on_generate(const Request& req, const std::string&) {
    using Parsed = std::variant<GenerationRequest, ApiError>;
    off_io_thread(
        [server = server_.get(), dialect = dialect_, body = req.body()]() -> Parsed {
          auto parsed = parse_json_body(body, server->options.max_json_depth);
          if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
          return dialect->parse(
              std::get<json>(parsed),
              [server](const std::string& id) { return server->find_model(id); }, server->engine);
        },
        [](Session& self, Parsed parsed) { self.start_generation(std::move(parsed)); });
  }

  void send_reply(RouteResult result) {
    if (auto* e = std::get_if<ApiError>(&result)) return send_error(*e);
    Reply& r = std::get<Reply>(result);
    exchange_->model = std::move(r.model);
    send(r.status, r.content_type, r.body);
  }

  // --- generations --------------------------------------------------------------------------
  void start_generation(std::variant<GenerationRequest, ApiError> parsed) {
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(*e);
    auto& request = std::get<GenerationRequest>(parsed);
    exchange_->model = request.params.model;
    const int most = server_->options.max_streams_per_connection;
    if (request.n > most) {
      return send_error(
          bad_field("n", fmt::format("must be <= {} (server.max_streams_per_connection), got {}",
                                     most, request.n)));
    }
    const ServedModel* model = server_->find_model(request.params.model);
    if (auto e = refuse_oversized_response(request, model ? model->context_length : 0,
                                           server_->options.max_response_bytes)) {
      return send_error(*e);
    }
    if (server_->draining) {
      return send_error(make_error(503, ErrorCode::kServerError, "server is shutting down"));
    }
    job_ = std::make_unique<GenerationJob>(std::move(request), *dialect_, server_->engine,
                                           server_->metrics, server_->options.max_response_bytes);
    std::weak_ptr<Session> weak = weak_from_this();
    auto refused = job_->start(exchange_->request_id, [weak] {
      if (auto self = weak.lock()) self->notify();
    });
    if (refused) {
      job_.reset();
      return send_error(*refused);
    }
    if (!enter(State::kGenerating)) return;
    // Held until the job is done: with no read or write pending (the read-ahead is full), the
    // engine's weak listener would be all that is left of this connection.
    self_while_generating_ = shared_from_this();
    if (job_->streaming()) {
      writer_.begin_stream(dialect_->stream_content_type());
      writer_.stream(job_->stream_prologue());
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

  // Pulls the job's chunks; an exception (a bug) closes the connection. Never lets it reach the
  // I/O loop.
  void pump() {
    try {
      pump_once();
    } catch (const std::exception& ex) {
      log_bug(std::string("pump: ") + ex.what());
      close();
    }
  }

  void pump_once() {
    if (!job_ || !state_.is(State::kGenerating)) return;
    if (write_in_flight() && writer_.pending_bytes() >= kHighWater) return;  // on_write resumes
    std::string events;
    const bool done = job_->poll(&events, kHighWater);
    if (job_->streaming()) {
      if (done) events += job_->stream_epilogue();
      writer_.stream(events);
      if (done) writer_.end_stream();
    }
    if (done) {
      if (!job_->streaming()) {
        auto [status, body] = job_->response_body();
        if (status != 200) server_->metrics.record_error(job_->outcome());
        writer_.respond(status, kJson, body);
      }
      self_while_generating_.reset();  // the pending write holds the connection from here
      if (!enter(State::kResponding)) return;
    }
    flush();
  }

  // A read kept pending while a generation runs: EOF or an error means the client left.
  // Pipelined bytes are kept for the next request.
  void start_side_read() {
    if (side_read_pending_ || state_.closed()) return;
    side_read_pending_ = true;
    stream_.socket().async_read_some(
        net::buffer(side_buf_),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_side_read(ec, n); });
  }

  void on_side_read(beast::error_code ec, size_t n) {
    side_read_pending_ = false;
    if (state_.closed()) return;
    if (n > 0) {
      auto dst = buffer_.prepare(n);
      net::buffer_copy(dst, net::buffer(side_buf_.data(), n));
      buffer_.commit(n);
    }
    if (ec == net::error::eof && (!writer_.keep_alive() || state_.is(State::kResponding))) {
      // A half-close: the client sends nothing more, after a request that said it was its last
      // (or once our answer is complete). Answer, then close. On a persistent connection the
      // end of input during a generation means the client left (it cannot be told apart from a
      // half-close without writing).
      writer_.close_after();
      return;
    }
    if (ec && ec != net::error::operation_aborted) return client_gone();
    if (state_.is(State::kReading)) return read_request();  // cancelled by after_response
    if (state_.is(State::kGenerating) && !ec && buffer_.size() < kMaxPipelinedBytes) {
      start_side_read();
    }
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
    writer_.respond(status, content_type, body, extra_headers);
    if (!enter(State::kResponding)) return;
    flush();
  }

  // The error in the route's dialect (OpenAI's shape when it has none).
  void send_error(const ApiError& e) {
    server_->metrics.record_error(error_code_name(e.engine_code));
    std::string extra =
        e.retry_after_s > 0 ? fmt::format("Retry-After: {}\r\n", e.retry_after_s) : "";
    if (exchange_) exchange_->error_message = e.message;
    send(e.http_status, kJson, dump_json(dialect_ ? dialect_->error_json(e) : e.openai_json()),
         extra);
  }

  bool write_in_flight() const { return !writing_.empty(); }

  void flush() {
    if (write_in_flight() || writer_.pending_bytes() == 0 || state_.closed()) return;
    writing_ = writer_.take();
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    net::async_write(
        stream_, net::buffer(writing_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  // A write that times out (server.write_timeout_ms: the client stopped reading) ends with an
  // error like any other: the client is gone and what it held is freed.
  void on_write(beast::error_code ec) {
    writing_.clear();
    if (state_.closed()) return;
    if (ec) return client_gone();
    stream_.expires_never();
    if (state_.is(State::kGenerating)) return pump();
    if (writer_.pending_bytes() > 0) return flush();
    if (state_.is(State::kResponding)) after_response();
  }

  // The response is written: read the next request, linger, or close.
  void after_response() {
    const int status = writer_.status();
    finish_exchange(status, job_ ? job_->outcome() : (status < 400 ? "ok" : "error"));
    AfterResponse next = after_;
    if (next == AfterResponse::kNextRequest && (!writer_.keep_alive() || server_->draining)) {
      next = AfterResponse::kClose;  // the exchange said close, or the server is draining
    }
    if (next == AfterResponse::kLinger) return linger_close();
    if (next == AfterResponse::kClose) return close();
    job_.reset();
    if (!enter(State::kReading)) return;
    if (side_read_pending_) {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);  // on_side_read continues with the next request
      return;
    }
    read_request();
  }

  void finish_exchange(int status, const std::string& outcome) {
    if (!exchange_) return;
    const Exchange& x = *exchange_;
    const double total = ms_since(x.started);
    server_->metrics.record_http(x.route, status);
    server_->metrics.add_active_request(-1);
    json line = {{"level", "info"},
                 {"event", "request"},
                 {"id", x.request_id},
                 {"method", x.method},
                 {"route", x.route},
                 {"status", status},
                 {"total_ms", std::round(total * 100) / 100},
                 {"outcome", outcome}};
    if (!x.model.empty()) line["model"] = x.model;
    if (job_) {
      server_->metrics.record_e2e(total / 1e3);
      line["prompt_tokens"] = job_->prompt_tokens();
      line["completion_tokens"] = job_->completion_tokens();
      if (job_->ttft_ms() >= 0) line["ttft_ms"] = std::round(job_->ttft_ms() * 100) / 100;
      line["stream"] = job_->streaming();
    }
    if (status >= 400 && !x.error_message.empty()) line["error"] = x.error_message;
    exchange_.reset();
    server_->log_line(dump_json(line));
  }

  // Half-closes, then discards what the client still sends (up to kLingerTime), so that a
  // client that is still writing a refused body reads our answer instead of a reset.
  void linger_close() {
    if (!enter(State::kLingering)) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
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
    if (state_.closed()) return;
    state_.advance(State::kClosed);
    if (exchange_) finish_exchange(writer_.status() ? writer_.status() : 499, "closed");
    if (job_) job_->cancel();
    self_while_generating_.reset();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  // Moves the state machine; a move the diagram does not allow is a bug: logged, and the
  // connection closes rather than guess.
  bool enter(State next) {
    if (state_.advance(next)) return true;
    log_bug(fmt::format("connection state {} -> {}", connection_state_name(state_.state()),
                        connection_state_name(next)));
    close();
    return false;
  }

  void log_bug(const std::string& detail) {
    server_->log_line(dump_json({{"level", "error"},
                                 {"event", "bug"},
                                 {"id", exchange_ ? exchange_->request_id : ""},
                                 {"detail", detail}}));
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerContext> server_;
  const uint64_t id_;
  beast::flat_buffer buffer_;  // bytes read and not parsed yet (pipelined requests included)
  std::optional<http::request_parser<http::string_body>> parser_;
  std::array<char, 4096> side_buf_{};

  ConnectionStateMachine state_;
  AfterResponse after_ = AfterResponse::kNextRequest;  // kLinger once a request is refused
  std::optional<Exchange> exchange_;    // open from routing until the response is written
  const Dialect* dialect_ = nullptr;    // the route's: shapes errors (null: OpenAI's shape)
  ResponseWriter writer_;               // the response being built
  std::string writing_;                 // the bytes of the write in flight (empty: none)
  std::unique_ptr<GenerationJob> job_;  // the generation of this exchange, if any
  std::shared_ptr<Session> self_while_generating_;
  bool side_read_pending_ = false;           // an async_read_some of start_side_read is outstanding
  std::atomic<bool> notify_pending_{false};  // set by the engine's listener thread
};

const RouteTable<Session::Handler>& Session::routes() {
  static const RouteTable<Handler> table = [] {
    RouteTable<Handler> t;
    t.add({"GET", "/health", &Session::on_health, nullptr, /*needs_api_key=*/false});
    t.add({"GET", "/metrics", &Session::on_metrics, nullptr, /*needs_api_key=*/false});
    t.add({"GET", "/v1/models", &Session::on_models});
    t.add({"GET", "/v1/models/{id}", &Session::on_model});
    t.add({"POST", "/tokenize", &Session::on_tokenize});
    t.add({"POST", "/detokenize", &Session::on_detokenize});
    t.add({"POST", "/v1/chat/completions", &Session::on_generate, &openai_chat_dialect()});
    t.add({"POST", "/v1/completions", &Session::on_generate, &openai_completions_dialect()});
    t.add({"POST", "/v1/messages", &Session::on_generate, &anthropic_messages_dialect()});
    t.add({"POST", "/v1/messages/count_tokens", &Session::on_count_tokens,
           &anthropic_messages_dialect()});
    t.add({"POST", "/v1/responses", &Session::on_responses});
    t.add({"GET", "/v1/responses/{id}", &Session::on_get_response});
    const Dialect* ollama = &ollama_chat_dialect();  // Ollama's {"error": ...} on its routes
    t.add({"POST", "/api/chat", &Session::on_generate, ollama});
    t.add({"POST", "/api/generate", &Session::on_generate, &ollama_generate_dialect()});
    t.add({"GET", "/api/tags", &Session::on_ollama_tags, ollama});
    t.add({"POST", "/api/show", &Session::on_ollama_show, ollama});
    t.add({"GET", "/api/ps", &Session::on_ollama_ps, ollama});
    t.add({"GET", "/api/version", &Session::on_ollama_version, ollama});
    return t;
  }();
  return table;
}

}  // namespace

std::shared_ptr<Connection> make_session(tcp::socket socket, std::shared_ptr<ServerContext> server,
                                         uint64_t id) {
  return std::make_shared<Session>(std::move(socket), std::move(server), id);
}

}  // namespace mlxs::server
