#ifndef PRS_AGENT_WORKER_POOL_H_
#define PRS_AGENT_WORKER_POOL_H_

// The node's workers for the job it runs: the queue of leased mini-batches,
// one slot thread per worker process (process_count_per_node of them), the
// start and replacement of workers, the run of one mini-batch on a worker
// (RunTask), the hand-out of process names and GPUs, and the job's resource
// monitor.

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/job_workspace.h"
#include "agent/log_appender.h"
#include "common/clock.h"
#include "prs/v1/agent_service.pb.h"

namespace prs::agent {

// Process names (process000, process001, ... for each job, as in
// ParallelRunStep) and the GPUs of a job's workers. Each worker takes
// `per_process` of the node's GPUs, the least used first (ties: the lowest
// index): distinct GPUs while there are enough, shared round-robin when
// process_count_per_node x per_process exceeds them, so no worker is left
// without one. A replacement worker takes what its predecessor gave back.
// Not thread-safe.
class WorkerIdentities {
 public:
  // `gpus`: the devices this node may use, as CUDA_VISIBLE_DEVICES names
  // them (indices, or UUIDs).
  explicit WorkerIdentities(std::vector<std::string> gpus);

  struct Identity {
    std::string name;
    std::vector<std::string> gpus;  // empty: none (or none on the node)
  };
  // The next process name and `per_process` GPUs (all of them when it asks
  // for more than the node has; none for 0).
  Identity Take(int per_process);
  // Gives a worker's GPUs back.
  void GiveBack(const std::vector<std::string>& gpus);
  // A new job: names start at process000 again.
  void NewJob() { next_process_ = 0; }
  const std::vector<std::string>& gpus() const { return gpus_; }

 private:
  const std::vector<std::string> gpus_;
  std::vector<int> users_;  // workers holding each of gpus_, by position
  int next_process_ = 0;
};

// "0,2" for CUDA_VISIBLE_DEVICES.
std::string DeviceList(const std::vector<std::string>& gpus);

// The last lines a worker wrote to its stderr, for the reason of its end.
struct StderrTail {
  std::string lines;      // up to the last 20 lines
  std::string last_line;  // the last line that is not blank, printable, on one line
};
// Reads the end (8 KiB at most) of `path`; empty when it cannot be read.
StderrTail ReadStderrTail(const std::string& path);

// A finished attempt's result, or a leased mini-batch given back unrun.
v1::TaskResult ReleasedResult(const v1::Task& task);

struct WorkerPoolOptions {
  std::string node_id;
  std::string ip;                    // this node's, in the per-mini-batch log lines
  std::vector<std::string> gpus;     // the GPUs this node's workers may use
  bool set_visible_devices = false;  // AgentOptions::set_visible_devices
  Clock* clock = RealClock::Get();
  LogAppender* log_appender = nullptr;  // not owned; required
  // Receives the results of attempts and the mini-batches given back unrun.
  // Called from the pool's threads and from StopJob's caller, with no lock of
  // the pool held; required.
  std::function<void(std::vector<v1::TaskResult>)> on_results;
};

// Runs one job at a time. Thread-safe; StartJob and StopJob are called by the
// agent's pull and heartbeat threads, the slots run on threads of their own.
class WorkerPool {
 public:
  explicit WorkerPool(WorkerPoolOptions options);
  // Stops the job that runs, letting running attempts finish.
  ~WorkerPool();

  // Starts the job's worker slots; the workers start with their first
  // mini-batch. Call StopJob() first: one job runs at a time.
  // RESOURCE_EXHAUSTED when not one slot thread can start.
  absl::Status StartJob(JobWorkspace workspace);
  // Stops the job (only if it is `job_id`, when given): reports its queued
  // mini-batches released, ends its workers (killing running attempts when
  // `kill_running`) and joins its slots. A second caller waits for the first.
  // True when a job was stopped here.
  bool StopJob(bool kill_running, const std::string& job_id = "");
  // Whether `job_id` runs here and is not being stopped.
  bool IsRunning(const std::string& job_id) const;
  // The running job's id; empty when none.
  std::string CurrentJob() const;

  // Waits until the queue has room for more mini-batches: every worker busy
  // and at least `prefetch_per_worker` more each. Returns how many to ask
  // for; 0 once Stop() was called. When the running job's mini-batches are
  // short the queue is deeper (about kPrefetchWorkSeconds of work per
  // worker, at most kMaxPrefetchPerWorker each) and it waits until half of
  // the prefetch can be asked for at once: one pull per mini-batch would cap
  // the rate at one round trip to the master per mini-batch. Without a
  // running job (a pull for the next job) the queue is shallow.
  int WaitForRoom(int prefetch_per_worker);
  // The room now, without waiting; for the tasks of a job just started,
  // which were pulled for the one before.
  int RoomNow(int prefetch_per_worker) const;
  // How many mini-batches each worker has queued beyond the one it runs.
  int PrefetchPerWorker(int prefetch_per_worker) const;
  // Queues the tasks of `job_id` while it runs; returns the others, which the
  // caller gives back.
  std::vector<v1::Task> Enqueue(const std::string& job_id, std::vector<v1::Task> tasks);
  // Forgets the queued mini-batches: their leases are void (session lost).
  void DropQueued();

  // What the pool holds, for a heartbeat.
  struct Running {
    int64_t task_id = 0;
    std::string process_name;  // empty while the worker starts
    absl::Time since;
  };
  struct Held {
    std::string job_id;
    int busy_workers = 0;
    std::vector<std::string> lease_ids;  // queued and running
    std::vector<Running> running;        // what the busy workers run
  };
  Held held() const;

  // Wakes WaitForRoom(), and idle slots. The agent then stops the job.
  void Stop();

 private:
  struct Job;
  struct SlotWorker;

  void StartMonitor(Job& job);
  std::vector<std::thread> StartSlots(const std::shared_ptr<Job>& job, std::string* error);
  // The next task of `job` for the slot whose worker is `process_name`.
  std::optional<v1::Task> PopTask(const std::shared_ptr<Job>& job, const std::string& process_name);
  void SlotLoop(std::shared_ptr<Job> job);
  v1::TaskResult RunTask(Job& job, const v1::Task& task, SlotWorker& w);
  // Starts the slot's worker; the attempt's result when that failed.
  std::optional<v1::TaskResult> StartSlotWorker(Job& job, SlotWorker& w, v1::TaskResult& r,
                                                absl::Time start);
  // Runs the mini-batch on the slot's ready worker.
  v1::TaskResult RunOnWorker(Job& job, const v1::Task& task, SlotWorker& w, v1::TaskResult& r,
                             absl::Time start);
  v1::TaskResult RunFailed(Job& job, SlotWorker& w, v1::TaskResult& r, absl::Time start,
                           const absl::Status& status);
  v1::TaskResult RunReturned(Job& job, v1::TaskResult& r, absl::Time start, WorkerResult& result);
  absl::StatusOr<WorkerStart> StartWorker(Job& job, SlotWorker& w);
  absl::StatusOr<WorkerStart> InitFailed(Job& job, SlotWorker& w, const absl::Status& status);
  void RetireWorker(Job& job, SlotWorker& w, bool kill);
  // Sets the attempt's end, and logs it in the worker's node log.
  v1::TaskResult Finish(Job& job, v1::TaskResult& r, absl::Time start, v1::AttemptStatus status,
                        std::string error, std::string detail = "");
  void Report(std::vector<v1::TaskResult> results);
  int PrefetchLocked(int prefetch_per_worker) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int RoomLocked(int prefetch_per_worker, int* least) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const WorkerPoolOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  WorkerIdentities identities_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Job> job_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Job> closing_ ABSL_GUARDED_BY(mu_);  // being stopped
  std::vector<std::thread> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Task> queue_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  // A mini-batch's time on a started worker, averaged (EWMA) over the
  // current job; unset until the first one.
  std::optional<double> task_seconds_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);  // leases being run
};

}  // namespace prs::agent

#endif  // PRS_AGENT_WORKER_POOL_H_
