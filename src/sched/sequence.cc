#include "sched/sequence.h"

namespace mlxs::sched {

const char* seq_status_name(SeqStatus status) {
  switch (status) {
    case SeqStatus::kWaiting:
      return "waiting";
    case SeqStatus::kPreempted:
      return "preempted";
    case SeqStatus::kRunning:
      return "running";
    case SeqStatus::kPaused:
      return "paused";
    case SeqStatus::kFinished:
      return "finished";
  }
  return "unknown";
}

// The OpenAI-style finish_reason strings.
const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kTimeout:
      return "timeout";
  }
  return "unknown";
}

}  // namespace mlxs::sched
