// The state of one HTTP connection, as one explicit state machine:
//
//   kReading ──request──> kGenerating ──job done──> kResponding ──written──> kReading (keep-alive)
//      │  └──────────── simple route, error ───────────^   │                 kLingering ──> kClosed
//      └────────────────────────────────────────────────────┴── client gone, error ──> kClosed
//
// 1. kReading: waiting for a request (its head and body); no exchange is open.
// 2. kGenerating: a generation runs; its events (or, at the end, its body) are queued as they
//    come; a read stays pending on the socket to notice a client that leaves.
// 3. kResponding: the whole response is queued; the connection waits until it is written.
// 4. kLingering: the response is written and the send side shut; what the client still sends
//    (a refused body) is read and dropped for a moment, so it reads our answer, not a reset.
// 5. kClosed: the socket is closed; every late callback returns at once.
//
// After a response the connection reads the next request, lingers, or closes, as the exchange
// decided (AfterResponse). Not thread-safe: the connection's strand owns it.
#pragma once

namespace mlxs::server {

enum class ConnectionState { kReading, kGenerating, kResponding, kLingering, kClosed };

enum class AfterResponse { kNextRequest, kClose, kLinger };

const char* connection_state_name(ConnectionState s);

class ConnectionStateMachine {
 public:
  ConnectionState state() const { return state_; }
  bool is(ConnectionState s) const { return state_ == s; }
  bool closed() const { return state_ == ConnectionState::kClosed; }

  // Whether the diagram above has an arrow from `from` to `to`.
  static bool allowed(ConnectionState from, ConnectionState to);
  // Moves to `to` when allowed; false (and no move) otherwise.
  bool advance(ConnectionState to);

 private:
  ConnectionState state_ = ConnectionState::kReading;
};

}  // namespace mlxs::server
