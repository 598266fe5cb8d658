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

}  // namespace mlxs::sched
