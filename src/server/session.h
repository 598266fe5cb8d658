// One HTTP/1.1 connection (a "session"): reads requests, routes them through the route table,
// runs generations and writes every response through one ResponseWriter, moving through the
// states of server/connection_state.h. Requests on a connection are answered in order
// (keep-alive and pipelining safe).
//
// Threads: everything runs on the connection's strand; the engine's listener only schedules a
// poll there. The server keeps weak references and calls the two hooks below.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server/server_context.h"

namespace mlxs::server {

class Connection {
 public:
  virtual ~Connection() = default;
  // Starts reading requests (on the connection's strand).
  virtual void start() = 0;
  // Shutdown began: finish the exchange in progress, then close (an idle connection closes now).
  virtual void on_shutdown() = 0;
  // The shutdown deadline passed: cancel the generation in progress (its stream ends cleanly).
  virtual void on_deadline() = 0;
};

// A connection for `socket` (whose executor must be a strand); start() it. Once started it keeps
// itself alive while it has I/O pending or a generation running.
std::shared_ptr<Connection> make_session(boost::asio::ip::tcp::socket socket,
                                         std::shared_ptr<ServerContext> server, uint64_t id);

}  // namespace mlxs::server
