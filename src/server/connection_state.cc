#include "server/connection_state.h"

namespace mlxs::server {

const char* connection_state_name(ConnectionState s) {
  switch (s) {
    case ConnectionState::kReading:
      return "reading";
    case ConnectionState::kGenerating:
      return "generating";
    case ConnectionState::kResponding:
      return "responding";
    case ConnectionState::kLingering:
      return "lingering";
    case ConnectionState::kClosed:
      return "closed";
  }
  return "unknown";
}

bool ConnectionStateMachine::allowed(ConnectionState from, ConnectionState to) {
  using S = ConnectionState;
  if (to == S::kClosed) return from != S::kClosed;
  switch (from) {
    case S::kReading:
      return to == S::kGenerating || to == S::kResponding;
    case S::kGenerating:
      return to == S::kResponding;
    case S::kResponding:
      return to == S::kReading || to == S::kLingering;
    default:
      return false;
  }
}

bool ConnectionStateMachine::advance(ConnectionState to) {
  if (!allowed(state_, to)) return false;
  state_ = to;
  return true;
}

}  // namespace mlxs::server
