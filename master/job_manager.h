#ifndef PRS_MASTER_JOB_MANAGER_H_
#define PRS_MASTER_JOB_MANAGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/message_limits.h"
#include "master/agent_registry.h"
#include "master/attempt_outcome.h"
#include "master/input_fingerprint.h"
#include "master/job.h"
#include "master/lease_table.h"
#include "master/metrics.h"
#include "master/output_committer.h"
#include "master/partitioner.h"
#include "master/store.h"
#include "prs/v1/agent_service.pb.h"
#include "prs/v1/job_service.pb.h"

namespace prs::master {

struct JobManagerOptions {
  // Folder for the database and the jobs' log trees.
  std::string state_dir;
  // Interval agents are told to heartbeat at.
  absl::Duration heartbeat_interval = absl::Seconds(2);
  // An agent silent for this long is lost; its leases go back to the queue.
  absl::Duration agent_timeout = absl::Seconds(10);
  // A lease an agent's heartbeat does not list is given back once it is this
  // old (older than any PullTasks reply can still be in flight).
  absl::Duration unheld_lease_grace = absl::Seconds(30);
  // A job's end is published once every live agent that served it shipped
  // the last of its logs, or this long after the end, whichever is first.
  absl::Duration logs_grace = absl::Seconds(30);
  // Largest source snapshot accepted at submit.
  int64_t max_snapshot_bytes = kMaxSnapshotBytes;
  // The lister pauses while a job has more pending mini-batches than this,
  // bounding the master's memory whatever the input's size.
  int64_t max_pending_per_job = 100'000;
  // A PullTasks reply carries mini-batches up to this many bytes of items (at
  // least one); the rest wait for the next pull.
  size_t max_pull_reply_bytes = 64 << 20;
  // What a commit survives: any crash of the master process (process), or of
  // the machine too (machine: fdatasync and synchronous=FULL).
  Durability durability = Durability::kProcess;
  // A mini-batch with more bytes of items cannot be sent (the channels carry
  // 512 MiB at most): it fails with NOT_DELIVERED, naming its first input.
  size_t max_task_bytes = 256 << 20;
};

// The master's business logic: jobs, the mini-batch queue, leases, agents,
// the output commit and the progress files. It never sees gRPC.
//
// It composes the parts that own each concept (docs/architecture.md, "Where
// each concept lives"): LeaseTable (a job's queue and leases), AgentRegistry
// (the sessions), attempt_outcome (what a result means, run_max_try),
// thresholds (when a job ends), OutputCommitter (rows and attempts committed
// together), log_tree_writer (the job's files), tabular_plans. Its own methods
// are spread over files by concept: job_manager.cc (jobs and their state),
// agent_sessions.cc, scheduling.cc, results.cc, lister.cc, recovery.cc.
//
// Thread-safe. One mutex guards the in-memory state; disk work (SQLite, the
// output file, log files) happens outside it. Output commits are serialized
// by the committer's mutex, so rows and the mini-batch state reach disk in one
// order. The lock order is in master/lock_order.h.
//
// Exactly-once output: a result is accepted only for the current lease of its
// mini-batch; its rows are appended to the output file and then the attempt,
// the mini-batch's new state and the output file's committed length are
// written in one SQLite transaction. At start-up the output file is cut back
// to the committed length, dropping rows whose commit did not happen.
class JobManager {
 public:
  // Opens the store under options.state_dir and resumes the jobs it holds.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(const JobManagerOptions& options,
                                                            Clock* clock);
  ~JobManager();
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // --- JobService --------------------------------------------------------
  // INVALID_ARGUMENT for a bad spec (nothing is queued). `cancelled` says
  // whether the client gave up; CANCELLED, and nothing queued, when it did
  // before the job was made. The job belongs to `owner`. Who may call what is
  // the server's to check (master_server.cc, Authorize), not the manager's.
  absl::StatusOr<v1::SubmitJobResponse> Submit(
      const v1::SubmitJobRequest& request,
      const std::function<bool()>& cancelled = [] { return false; },
      const std::string& owner = "local");
  // NOT_FOUND for an unknown job.
  absl::StatusOr<v1::JobStatus> GetJob(const std::string& job_id);
  // Who submitted the job (without building its status); NOT_FOUND as GetJob.
  absl::StatusOr<std::string> Owner(const std::string& job_id);
  // The newest `limit` jobs whose owner `visible` accepts.
  std::vector<v1::JobStatus> ListJobs(
      int limit, const std::function<bool(const std::string& owner)>& visible =
                     [](const std::string&) { return true; });
  // FAILED_PRECONDITION when the job already ended.
  absl::StatusOr<v1::JobStatus> Cancel(const std::string& job_id);
  // Queues a FAILED or CANCELLED job again with its failed mini-batches reset;
  // FAILED_PRECONDITION for a job that is active or SUCCEEDED.
  absl::StatusOr<v1::JobStatus> Resume(const std::string& job_id);

  // Live agent sessions, by node id.
  v1::ListAgentsResponse ListAgents();

  // The mini-batches of each active job queued and leased now (/metrics and
  // the dashboard), by job id.
  struct QueueSize {
    int64_t pending = 0;
    int64_t leased = 0;
  };
  std::map<std::string, QueueSize> Queues();
  // For /metrics, in one pass under the lock: the number of jobs in each
  // state, and the status of every active job and of the `ended` ones that
  // ended last (not every job ever held).
  struct JobsForMetrics {
    std::map<v1::JobState, int64_t> by_state;
    std::vector<v1::JobStatus> shown;
  };
  JobsForMetrics MetricsJobs(int ended);
  // The counters of master/metrics.h.
  MasterMetrics& metrics() { return metrics_; }

  // --- AgentService ------------------------------------------------------
  // ALREADY_EXISTS when another live agent (another pid or host) has the same
  // node id.
  // The session belongs to `principal`: only it may use the session.
  absl::StatusOr<v1::RegisterAgentResponse> RegisterAgent(const v1::RegisterAgentRequest& request,
                                                          const std::string& principal = "local");
  // Whose a session is and which node it serves; NOT_FOUND for an unknown or
  // lost one.
  struct SessionInfo {
    std::string principal;
    std::string node_id;
  };
  absl::StatusOr<SessionInfo> Session(const std::string& agent_id);
  // The agent is stopping: its session ends now, its leases go back to the
  // queue without counting a try. Nothing for an unknown session.
  void UnregisterAgent(const std::string& agent_id);
  // NOT_FOUND for an unknown or lost agent: it must register again.
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // Leases up to max_tasks mini-batches now; an empty response when there is
  // no work for the agent. Never waits: the server holds long-polls.
  absl::StatusOr<v1::PullTasksResponse> TryPull(const v1::PullTasksRequest& request);
  absl::StatusOr<v1::ReportResultsResponse> Report(const v1::ReportResultsRequest& request);
  absl::StatusOr<v1::GetJobBundleResponse> GetBundle(const v1::GetJobBundleRequest& request);

  // The job's log folder on the master; NOT_FOUND for an unknown job.
  absl::StatusOr<std::string> LogDir(const std::string& job_id);
  // The same for an agent shipping logs: NOT_FOUND also for an unknown session.
  absl::StatusOr<std::string> LogDirForAgent(const std::string& agent_id,
                                             const std::string& job_id);
  // The agent shipped the last of its logs of the job (ShipLogs.complete),
  // after writing them.
  void LogsComplete(const std::string& agent_id, const std::string& job_id);

  // Called (outside any lock) whenever work may have become available or a job
  // changed state, so that held long-polls can be retried. Set before serving.
  void SetWorkListener(std::function<void()> listener) {
    absl::MutexLock lock(&listener_mu_);
    work_listener_ = std::move(listener);
  }

  // Called with a job's id when its end may have become visible (its result
  // file written, an agent's last logs in): WatchJob streams answer then
  // instead of at their next poll. Called under files_mu_ (and persist_mu_):
  // it must only hand the id on, taking no lock but a leaf. Set before
  // serving.
  void SetEndListener(std::function<void(const std::string& job_id)> listener) {
    absl::MutexLock lock(&listener_mu_);
    end_listener_ = std::move(listener);
  }

  // Liveness, progress files and master_role events. Called about once a
  // second by the server's ticker thread.
  void Tick();

  // Stops and joins the lister threads and drops the work listener. Called
  // by the server before it tears down what the listener uses.
  void Stop();

  absl::Duration heartbeat_interval() const { return options_.heartbeat_interval; }

 private:
  // An outcome with the job it belongs to.
  struct JobOutcome {
    Job* job = nullptr;
    Outcome outcome;
  };
  // A leased mini-batch that cannot be delivered: it fails with `error`.
  struct Undeliverable {
    Job* job = nullptr;
    int64_t task_id = 0;
    Lease lease;
    std::string node_id;
    std::string error;
    bool final = false;       // retrying cannot help: fail it now, whatever run_max_try says
    bool name_input = false;  // read its first input from the store for the error
  };
  // The leases one PullTasks granted, as read from the store (scheduling.cc).
  struct PullRead;

  JobManager(const JobManagerOptions& options, Clock* clock, std::unique_ptr<Store> store);

  // --- recovery.cc: the jobs of the store after a restart; resume ----------
  absl::Status Recover();
  // Ends the recovered jobs that lost their output or whose end was not
  // saved, and restarts the listers of the others.
  void ContinueRecoveredJobs(const std::vector<std::pair<Job*, std::string>>& output_lost)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The in-memory job of a stored one.
  std::unique_ptr<Job> RestoreJob(const StoredJob& stored);
  // Claims an ended job for Resume, or says why it cannot be resumed.
  absl::Status ClaimForResumeLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a claimed job again from what the store holds.
  absl::Status Reopen(Job* job) ABSL_LOCKS_EXCLUDED(mu_);

  // --- lister.cc: listing the inputs, partition_keys groups, allow_reuse ---
  void StartLister(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ListerMain(Job* job) ABSL_LOCKS_EXCLUDED(mu_);
  // Stores and queues a batch of listed mini-batches (waiting while the job
  // has plenty queued); false when the job stopped or the store failed.
  bool FlushListed(Job* job, std::vector<NewTask>& batch, bool done, bool first,
                   absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // The listing is over: done, failed or stopped.
  void EndListing(Job* job, absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // ListInputs with the notes of what the listing leaves out in the job's
  // notes and master_role.txt (up to a thousand).
  absl::Status ListWithNotes(Job* job, const std::function<bool(NewTask)>& emit)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Runs the partitioner over the job's inputs.
  absl::Status ListInputs(Job& job, const std::function<bool(NewTask)>& emit,
                          const ListingHooks& hooks);
  // allow_reuse: the newest SUCCEEDED job with the same spec and snapshot and
  // a fingerprint, or null.
  Job* FindReuseCandidate(const v1::JobSpec& spec, const v1::SourceSnapshot& snapshot)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Lists the inputs without making mini-batches; when they are the
  // candidate's and its output is intact, the job ends SUCCEEDED with the
  // candidate's result. True when it did.
  bool TryReuse(Job* job) ABSL_LOCKS_EXCLUDED(mu_);
  // Why the candidate's result cannot be this job's, or "".
  std::string WhyNotReuse(Job* job, const std::string& fingerprint) ABSL_LOCKS_EXCLUDED(mu_);
  // partition_keys: once every plan ended, makes one mini-batch per distinct
  // key combination over all files.
  void MaybeMakeGroups(Job* job) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes and stores the groups' mini-batches from the stored key plans.
  absl::Status MakeGroupTasks(Job* job, std::vector<NewTask>& tasks) ABSL_LOCKS_EXCLUDED(mu_);
  // allow_reuse: stores the listed inputs' fingerprint with the job.
  void SaveFingerprint(Job* job, InputFingerprint& fingerprint) ABSL_LOCKS_EXCLUDED(mu_);

  // --- agent_sessions.cc: register, heartbeat, loss -------------------------
  absl::StatusOr<v1::HeartbeatResponse> HeartbeatLocked(const v1::HeartbeatRequest& request,
                                                        bool& requeued) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes back every lease of `agent` with a result of `status` and `error`.
  void ReclaimLeasesLocked(const Agent& agent, v1::AttemptStatus status, const std::string& error,
                           const std::string& why, std::vector<JobOutcome>& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the sessions of agents silent for longer than agent_timeout.
  void ReclaimLostAgentsLocked(absl::Time now, std::vector<JobOutcome>& lost)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- scheduling.cc: which agent gets which job and mini-batch -------------
  Job* AssignJobLocked(Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseAgentLocked(Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the granted mini-batches from the store into a reply.
  PullRead ReadGranted(Job* job, const std::vector<LeaseTable::Granted>& granted)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records what the reply carries; takes back what it does not.
  void SettleGranted(Job* job, const std::vector<LeaseTable::Granted>& granted, PullRead& read,
                     std::vector<Undeliverable>& failed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts one failed delivery of a leased mini-batch; true when it failed
  // too often and goes to `undeliverable_` instead of back to the queue.
  bool NoteUndeliveredLocked(Job& job, int64_t task_id, const Lease& lease,
                             const std::string& node_id, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails mini-batches that cannot be delivered (NOT_DELIVERED), naming
  // their first input.
  void FailUndeliverable(std::vector<Undeliverable> tasks) ABSL_LOCKS_EXCLUDED(mu_);

  // --- results.cc: accepted results reach disk and the job's state ---------
  // With `last_try`, a failed attempt fails the mini-batch whatever
  // run_max_try says (retrying cannot help).
  JobOutcome MakeOutcomeLocked(Job& job, int64_t task_id, const Lease& lease,
                               const std::string& agent_id, const std::string& node_id,
                               v1::TaskResult result, bool last_try = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes outcomes to disk, then applies them in memory.
  void CommitOutcomes(std::vector<JobOutcome> outcomes) ABSL_LOCKS_EXCLUDED(mu_);
  // A commit that reached disk: the counters, the queue, the plans.
  void ApplyCountsLocked(Job& job, const OutputCommitter::Result& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Each committed attempt: the report row, the errors, retries, init and
  // load failures.
  void ApplyAttemptsLocked(Job& job, const OutputCommitter::Result& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A commit that did not: the job fails (its output is lost) or its
  // mini-batches run again.
  void ApplyFailedCommitLocked(Job& job, const OutputCommitter::Result& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- job_manager.cc: the job's state --------------------------------------
  Job* FindJobLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job, or NOT_FOUND naming it (the one wording every RPC answers with).
  absl::StatusOr<Job*> JobLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job's output file for a submit ("" for summary_only, or while its name
  // holds {job_id}); the folder is made.
  absl::StatusOr<std::string> PrepareOutput(const v1::JobSpec& spec);
  // Makes the job in the store and its log folder.
  absl::StatusOr<std::unique_ptr<Job>> MakeJob(const v1::SubmitJobRequest& request,
                                               std::string output_file, const std::string& owner);
  // FAILED_PRECONDITION when a job other than `self` writes or is about to
  // write the output file `output_file`, whose OutputKey is `key`.
  absl::Status OutputInUseLocked(const std::string& output_file, const std::string& key,
                                 const Job* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves a job to a terminal state: drops its queue and leases, frees agents.
  void EndJobLocked(Job& job, v1::JobState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the job when its thresholds or its end say so (master/thresholds.h).
  void CheckJobLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // first_task_creation_timeout and progress_update_timeout; true when the
  // job ended.
  bool CheckWatchdogsLocked(Job& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateRatesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EventLocked(Job& job, const std::string& level, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A WARNING event that is also one of the job's notes.
  void NoteLocked(Job& job, const std::string& note) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::JobStatus StatusLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An ended job's log tree is complete: job_result.txt is written, and every
  // live agent that served it shipped its last logs (or logs_grace passed).
  bool EndPublishedLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the job's state row as it is now in memory.
  void PersistState(Job* job) ABSL_LOCKS_EXCLUDED(mu_);
  void FlushFiles() ABSL_LOCKS_EXCLUDED(mu_);
  void NotifyWork();
  void NotifyEnd(const std::string& job_id);
  int64_t NowMs() const { return absl::ToUnixMillis(clock_->Now()); }

  const JobManagerOptions options_;
  Clock* const clock_;
  MasterMetrics metrics_;
  const std::unique_ptr<Store> store_;
  OutputCommitter committer_;
  // The order the mutexes are taken in: master/lock_order.h.
  absl::Mutex listener_mu_;
  std::function<void()> work_listener_ ABSL_GUARDED_BY(listener_mu_);
  std::function<void(const std::string&)> end_listener_ ABSL_GUARDED_BY(listener_mu_);

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<Job*> order_ ABSL_GUARDED_BY(mu_);  // by seq: FIFO
  AgentRegistry agents_ ABSL_GUARDED_BY(mu_);
  // OutputKeys of submits and resumes in progress (not yet active jobs).
  std::set<std::string> reserved_outputs_ ABSL_GUARDED_BY(mu_);
  // Failed for good by a heartbeat (which does no I/O); the ticker commits them.
  std::vector<Undeliverable> undeliverable_ ABSL_GUARDED_BY(mu_);

  // Serializes state-row writes so the last write carries the newest state.
  absl::Mutex persist_mu_;
  absl::Mutex files_mu_;  // one FlushFiles at a time
};

}  // namespace prs::master

#endif  // PRS_MASTER_JOB_MANAGER_H_
