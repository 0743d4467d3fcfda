#ifndef PRS_AGENT_WORKER_PROCESS_H_
#define PRS_AGENT_WORKER_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/frame.h"

namespace prs::agent {

// How to start one worker.
struct WorkerSpawnOptions {
  std::string python;                      // interpreter
  std::vector<std::string> arguments;      // the job's arguments
  std::map<std::string, std::string> env;  // added to the agent's environment
  std::string cwd;
  std::string stdout_path;
  std::string stderr_path;
  // Measures the waits' timeouts; must outlive the worker.
  Clock* clock = RealClock::Get();
};

// What a worker said when it started.
struct WorkerStart {
  bool ready = false;
  bool load_failed = false;  // the script cannot be imported or has no run()
  std::string error;         // one line
  std::string detail;        // traceback, or the exit description
};

// The answer to one RUN.
struct WorkerResult {
  bool ok = false;  // run() returned (else it raised)
  int64_t items_succeeded = 0;
  int64_t row_count = 0;
  std::string rows;
  std::string error;
  std::string detail;
  double run_seconds = 0;
  double cpu_seconds = 0;
  // Items the worker counted (files, or records); -1 when it could not read
  // them; unset from a worker that does not send the field.
  std::optional<int64_t> items;
  std::string header;  // append_row_format.header line
};

// One worker process and its end of the socketpair (docs/worker-protocol.md).
// Not thread-safe: owned by one worker slot thread. The destructor kills the
// process group if it is still running.
class WorkerProcess {
 public:
  // Forks and execs `python -m prs._worker ARG...` in its own process group.
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Spawn(const WorkerSpawnOptions& options);
  ~WorkerProcess();

  pid_t pid() const { return pid_; }

  // Waits for READY or INIT_FAILED. DEADLINE_EXCEEDED after `timeout`;
  // UNAVAILABLE when the process died first (see exit_description()).
  // `abort` is polled about every 100 ms; when it returns true the wait
  // ends with CANCELLED.
  absl::StatusOr<WorkerStart> WaitReady(absl::Duration timeout, const std::function<bool()>& abort);
  absl::Status SendRun(int64_t task_id, const std::vector<std::string>& items);
  // Waits for the RESULT of the last RUN; same error codes as WaitReady.
  absl::StatusOr<WorkerResult> WaitResult(absl::Duration timeout,
                                          const std::function<bool()>& abort);
  // Asks for shutdown() and an orderly exit; kills after `grace`.
  void Shutdown(absl::Duration grace);
  // SIGTERM to the process group, SIGKILL after `grace`; reaps the process.
  void Kill(absl::Duration grace);
  // Asks the worker to write every thread's Python stack to its stderr
  // (SIGUSR1), and gives it `wait` to do so: called before a timeout kill, so
  // the user's log shows where run() was stuck.
  void DumpStacks(absl::Duration wait);
  // "exit code 3", "killed by signal 9 (Killed)", or "running".
  std::string exit_description() const;

 private:
  WorkerProcess(pid_t pid, int fd, Clock* clock) : pid_(pid), fd_(fd), clock_(clock) {}
  absl::StatusOr<Frame> ReadFrame(absl::Duration timeout, const std::function<bool()>& abort);
  bool Reap(bool block);
  // True once the leader exited; does not reap it.
  bool HasExited();
  // Waits up to `wait` for the leader to exit; true if it did.
  bool WaitExit(absl::Duration wait);
  // SIGKILLs what is left of the process group, then reaps the leader.
  void ReapGroup();

  pid_t pid_;
  int fd_;
  Clock* const clock_;
  bool exited_ = false;
  int wait_status_ = 0;
  FrameDecoder decoder_;
};

}  // namespace prs::agent

#endif  // PRS_AGENT_WORKER_PROCESS_H_
