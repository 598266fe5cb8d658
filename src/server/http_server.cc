#include "server/http_server.h"

#include <fmt/format.h>
#include <pthread.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "server/dialect.h"
#include "server/server_context.h"
#include "server/session.h"

namespace mlxs::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

}  // namespace

// The listening side: accepts connections, tracks them (weakly) for shutdown, and runs the
// graceful shutdown: stop accepting, let exchanges finish until the deadline, cancel the rest.
struct HttpServer::Impl : ServerContext, std::enable_shared_from_this<HttpServer::Impl> {
  Impl(Engine& e, std::vector<ServedModel> m, ServerOptions o)
      : ServerContext(e, std::move(m), std::move(o)), acceptor(ioc), signals(ioc), deadline(ioc) {}

  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer deadline;

  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> sessions;  // guarded by sessions_mu
  uint64_t next_session = 1;                                         // guarded by sessions_mu

  void accept();
  void begin_shutdown();
  void on_deadline();
  void session_closed(uint64_t id) override;
  template <class F>
  void for_each_session(F f);
};

template <class F>
void HttpServer::Impl::for_each_session(F f) {
  std::vector<std::shared_ptr<Connection>> live;
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
                          std::shared_ptr<Connection> session;
                          {
                            std::lock_guard<std::mutex> lock(self->sessions_mu);
                            const uint64_t id = self->next_session++;
                            session = make_session(std::move(socket), self, id);
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
  for_each_session([](Connection& s) { s.on_shutdown(); });
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
  for_each_session([](Connection& s) { s.on_deadline(); });
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
    threads.emplace_back([impl] {
      pthread_setname_np(pthread_self(), "mlxs-io");  // the caller is the first I/O thread
      impl->ioc.run();
    });
  }
  impl->ioc.run();
  for (auto& t : threads) t.join();
}

void HttpServer::shutdown() {
  net::post(impl_->ioc, [impl = impl_] { impl->begin_shutdown(); });
}

}  // namespace mlxs::server
