#include "server/connection_state.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

using S = ConnectionState;

TEST(ConnectionState, AGenerationOnAKeptAliveConnection) {
  ConnectionStateMachine c;
  EXPECT_TRUE(c.is(S::kReading));
  EXPECT_TRUE(c.advance(S::kGenerating));
  EXPECT_TRUE(c.advance(S::kResponding));
  EXPECT_TRUE(c.advance(S::kReading));
  EXPECT_TRUE(c.advance(S::kResponding));  // a simple route answers at once
  EXPECT_TRUE(c.advance(S::kReading));
}

TEST(ConnectionState, ARefusedBodyLingersThenCloses) {
  ConnectionStateMachine c;
  EXPECT_TRUE(c.advance(S::kResponding));
  EXPECT_TRUE(c.advance(S::kLingering));
  EXPECT_TRUE(c.advance(S::kClosed));
  EXPECT_TRUE(c.closed());
}

TEST(ConnectionState, EveryStateButClosedMayClose) {
  for (S s : {S::kReading, S::kGenerating, S::kResponding, S::kLingering}) {
    EXPECT_TRUE(ConnectionStateMachine::allowed(s, S::kClosed)) << connection_state_name(s);
  }
  for (S s : {S::kReading, S::kGenerating, S::kResponding, S::kLingering, S::kClosed}) {
    EXPECT_FALSE(ConnectionStateMachine::allowed(S::kClosed, s)) << connection_state_name(s);
  }
}

TEST(ConnectionState, ShortcutsAreRefusedAndDoNotMove) {
  EXPECT_FALSE(ConnectionStateMachine::allowed(S::kReading, S::kLingering));
  EXPECT_FALSE(ConnectionStateMachine::allowed(S::kGenerating, S::kReading));
  EXPECT_FALSE(ConnectionStateMachine::allowed(S::kGenerating, S::kGenerating));
  EXPECT_FALSE(ConnectionStateMachine::allowed(S::kResponding, S::kGenerating));
  EXPECT_FALSE(ConnectionStateMachine::allowed(S::kResponding, S::kResponding));
  EXPECT_FALSE(ConnectionStateMachine::allowed(S::kLingering, S::kReading));
  ConnectionStateMachine c;
  EXPECT_FALSE(c.advance(S::kLingering));
  EXPECT_TRUE(c.is(S::kReading));
  EXPECT_TRUE(c.advance(S::kClosed));
  EXPECT_FALSE(c.advance(S::kReading));
  EXPECT_TRUE(c.closed());
}

}  // namespace
}  // namespace mlxs::server
