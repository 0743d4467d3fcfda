#ifndef PRS_MASTER_JOB_MANAGER_H_
#define PRS_MASTER_JOB_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "master/output_file.h"
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
  int64_t max_snapshot_bytes = 256 << 20;
  // The lister pauses while a job has more pending mini-batches than this,
  // bounding the master's memory whatever the input's size.
  int64_t max_pending_per_job = 100'000;
  // A PullTasks reply carries mini-batches up to this many bytes of items (at
  // least one); the rest wait for the next pull.
  size_t max_pull_reply_bytes = 64 << 20;
  // A mini-batch with more bytes of items cannot be sent (the channels carry
  // 512 MiB at most): it fails with NOT_DELIVERED, naming its first input.
  size_t max_task_bytes = 256 << 20;
};

// The master's business logic: jobs, the mini-batch queue, leases, agents,
// the output commit and the progress files. It never sees gRPC.
//
// Thread-safe. One mutex guards the in-memory state; disk work (SQLite, the
// output file, log files) happens outside it. Output commits are serialized
// by a second mutex, so rows and the mini-batch state reach disk in one order.
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
  // before the job was made.
  absl::StatusOr<v1::SubmitJobResponse> Submit(
      const v1::SubmitJobRequest& request,
      const std::function<bool()>& cancelled = [] { return false; });
  // NOT_FOUND for an unknown job.
  absl::StatusOr<v1::JobStatus> GetJob(const std::string& job_id);
  std::vector<v1::JobStatus> ListJobs(int limit);
  // FAILED_PRECONDITION when the job already ended.
  absl::StatusOr<v1::JobStatus> Cancel(const std::string& job_id);
  // Queues a FAILED or CANCELLED job again with its failed mini-batches reset;
  // FAILED_PRECONDITION for a job that is active or SUCCEEDED.
  absl::StatusOr<v1::JobStatus> Resume(const std::string& job_id);

  // Live agent sessions, by node id.
  v1::ListAgentsResponse ListAgents();

  // --- AgentService ------------------------------------------------------
  // ALREADY_EXISTS when another live agent (another pid or host) has the same
  // node id.
  absl::StatusOr<v1::RegisterAgentResponse> RegisterAgent(const v1::RegisterAgentRequest& request);
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

  // Liveness, progress files and master_role events. Called about once a
  // second by the server's ticker thread.
  void Tick();

  // Stops and joins the lister threads and drops the work listener. Called
  // by the server before it tears down what the listener uses.
  void Stop();

  absl::Duration heartbeat_interval() const { return options_.heartbeat_interval; }

 private:
  struct Lease {
    int64_t lease_id = 0;
    std::string agent_id;
    int32_t attempt = 0;
    int64_t item_count = 0;  // -1: not known yet (tabular)
    absl::Time granted;
    int64_t run = 0;  // the job's run (resumes) the lease belongs to
    TaskKind kind = TaskKind::kRun;
    std::string plan_descriptor;  // a plan task's item
  };
  struct Job {
    int64_t seq = 0;
    std::string job_id;
    v1::JobSpec spec;
    v1::JobState state = v1::QUEUED;
    std::string reason;
    std::string first_error;
    int64_t submit_ms = 0, start_ms = 0, end_ms = 0;
    v1::JobCounts counts;
    std::deque<std::pair<int64_t, int32_t>> pending;  // (task id, tries used)
    absl::flat_hash_map<int64_t, Lease> leased;
    std::set<std::string> agents;
    // Sessions that were ever assigned the job, and those that shipped the
    // last of their logs of it: the end is published when the live ones of
    // the first set are all in the second (or after logs_grace).
    std::set<std::string> served_by;
    std::set<std::string> logs_done;
    std::map<std::string, int> init_failures_by_node;
    std::set<std::string> gave_up_nodes;
    std::string log_dir;
    std::string output_file;               // empty for summary_only
    std::string output_key;                // OutputKey(output_file): one file, however spelled
    std::vector<std::string> events;       // master_role lines not yet written
    std::vector<std::string> report_rows;  // processed_mini-batches.csv rows not yet written
    struct ErrorSummary {
      int64_t count = 0;
      int64_t order = 0;  // 1 for the first distinct error seen
      std::string first;  // when, where, and the file with the traceback
    };
    std::map<std::string, ErrorSummary> errors;  // user/error.txt, by one-line error
    bool errors_changed = false;
    int64_t error_order = 0;
    std::deque<std::pair<absl::Time, int64_t>> rate_samples;
    double rate = 0;
    int64_t version = 0, written_version = -1;
    bool result_written = false;
    // Resume is reopening the job (its state stays terminal until it is done).
    bool resuming = false;
    // Bumped by each resume: results leased in an earlier run are dropped.
    int64_t run = 0;
    // job_result.txt is on disk; until then a terminal job is reported RUNNING,
    // so that a client that sees the end finds the files complete.
    bool result_flushed = false;
    std::atomic<bool> stop_listing{false};
    std::thread lister;
    // Task ids: the lister and the plans take the next one.
    int64_t next_task_id = 0;
    // Mini-batches the lister made; a restarted lister skips that many.
    int64_t listed = 0;
    // Plan tasks (tabular) created and not yet ended.
    int64_t plans_pending = 0;
    // partition_keys: the groups' mini-batches exist / are being made.
    bool groups_done = false;
    bool groups_building = false;
    // What the user should know that is neither an error nor progress: an
    // earlier output moved aside, inputs left out of the listing. The first
    // kMaxNotes are in JobStatus.notes; master_role.txt has them all.
    std::vector<std::string> notes;
    int64_t notes_dropped = 0;
    // allow_reuse: the fingerprint of the listed inputs (empty until listed),
    // the earlier job this one may take its result from, and the job that ran
    // whose result this one took.
    std::string input_fingerprint;
    Job* reuse_candidate = nullptr;
    std::string reused_from;
    // The job made its output file (mirrors Output::started, for reuse).
    bool output_started = false;
    // first_task_creation_timeout counts from here (the lister's start).
    absl::Time listing_started = absl::InfinitePast();
    // progress_update_timeout counts from here: the last commit or new
    // mini-batch, or the last time no agent worked on the job.
    absl::Time last_progress = absl::InfinitePast();
    // Mini-batches whose lease did not reach an agent (a reply lost on the
    // way, a store read that failed), by task id: how many times.
    absl::flat_hash_map<int64_t, int> undelivered;
  };
  struct Agent {
    std::string agent_id, node_id, hostname, ip;
    int64_t pid = 0;
    absl::Time last_seen;
    std::string job_id;  // assigned job, empty when free
    int64_t leases = 0;
    bool ships_logs = true;  // false: writes into the master's tree itself (prs run)
  };
  // An accepted result (or a lost lease) on its way to disk.
  struct Outcome {
    Job* job = nullptr;
    TaskCommit commit;
    int64_t item_count = 0;
    std::string rows;
    int64_t row_count = 0;
    bool counts_try = true;    // false: the mini-batch never ran (init failed, released)
    bool load_failed = false;  // the entry script cannot be loaded: fail the job
    bool init_failed = false;
    int64_t run = 0;
    bool plan_ended = false;         // a plan task ended (succeeded or failed)
    std::vector<NewTask> new_tasks;  // made by a plan
    int64_t items_total_delta = 0;   // items that became known
    std::string header;              // append_row_format.header line
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

  JobManager(const JobManagerOptions& options, Clock* clock, std::unique_ptr<Store> store);
  absl::Status Recover();
  void StartLister(Job* job);
  void ListerMain(Job* job);
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
  // partition_keys: once every plan ended, makes one mini-batch per distinct
  // key combination over all files.
  void MaybeMakeGroups(Job* job) ABSL_LOCKS_EXCLUDED(mu_);
  static bool KeysMode(const Job& job) { return !job.spec.partition_keys().empty(); }

  Job* FindJobLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FAILED_PRECONDITION when a job other than `self` writes or is about to
  // write the output file `output_file`, whose OutputKey is `key`.
  absl::Status OutputInUseLocked(const std::string& output_file, const std::string& key,
                                 const Job* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static bool IsActive(const Job& job) {
    return job.state == v1::QUEUED || job.state == v1::RUNNING;
  }
  // The agent's session with its last_seen refreshed, or NOT_FOUND.
  absl::StatusOr<Agent*> TouchAgentLocked(const std::string& agent_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Job* AssignJobLocked(Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::HeartbeatResponse> HeartbeatLocked(const v1::HeartbeatRequest& request,
                                                        bool& requeued) ABSL_LOCKS_EXCLUDED(mu_);
  // True when every live agent's node gave up starting workers for the job.
  bool EveryNodeGaveUpLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseAgentLocked(Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves a job to a terminal state: drops its queue and leases, frees agents.
  void EndJobLocked(Job& job, v1::JobState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckJobLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // first_task_creation_timeout and progress_update_timeout; true when the
  // job ended.
  bool CheckWatchdogsLocked(Job& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EventLocked(Job& job, const std::string& level, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A WARNING event that is also one of the job's notes.
  void NoteLocked(Job& job, const std::string& note) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::JobStatus StatusLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An ended job's log tree is complete: job_result.txt is written, and every
  // live agent that served it shipped its last logs (or logs_grace passed).
  bool EndPublishedLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the outcome of one accepted result (under mu_).
  // Counts a failed attempt's error for user/error.txt.
  void NoteErrorLocked(Job& job, const AttemptRecord& attempt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // With `last_try`, a failed attempt fails the mini-batch whatever
  // run_max_try says (retrying cannot help).
  Outcome MakeOutcomeLocked(Job& job, int64_t task_id, const Lease& lease, const Agent& agent,
                            v1::TaskResult result, bool last_try = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes outcomes to disk, then applies them in memory.
  void CommitOutcomes(std::vector<Outcome> outcomes) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts one failed delivery of a leased mini-batch; true when it failed
  // too often and goes to `undeliverable_` instead of back to the queue.
  bool NoteUndeliveredLocked(Job& job, int64_t task_id, const Lease& lease,
                             const std::string& node_id, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails mini-batches that cannot be delivered (NOT_DELIVERED), naming
  // their first input.
  void FailUndeliverable(std::vector<Undeliverable> tasks) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the job's state row as it is now in memory.
  void PersistState(Job* job) ABSL_LOCKS_EXCLUDED(mu_);
  void FlushFiles() ABSL_LOCKS_EXCLUDED(mu_);
  void NotifyWork();
  int64_t NowMs() const { return absl::ToUnixMillis(clock_->Now()); }

  const JobManagerOptions options_;
  Clock* const clock_;
  const std::unique_ptr<Store> store_;
  absl::Mutex listener_mu_;
  std::function<void()> work_listener_ ABSL_GUARDED_BY(listener_mu_);

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<Job*> order_ ABSL_GUARDED_BY(mu_);  // by seq: FIFO
  std::map<std::string, Agent> agents_ ABSL_GUARDED_BY(mu_);
  int64_t next_lease_ ABSL_GUARDED_BY(mu_) = 0;
  // OutputKeys of submits and resumes in progress (not yet active jobs).
  std::set<std::string> reserved_outputs_ ABSL_GUARDED_BY(mu_);
  int64_t next_agent_ ABSL_GUARDED_BY(mu_) = 0;
  // Failed for good by a heartbeat (which does no I/O); the ticker commits them.
  std::vector<Undeliverable> undeliverable_ ABSL_GUARDED_BY(mu_);

  // A job's output as the commits see it.
  struct Output {
    std::unique_ptr<OutputFile> file;  // null for summary_only
    int64_t length = 0;                // committed bytes
    int64_t run = 0;                   // Job::run: commits of an earlier run are dropped
    bool started = false;              // the job made its file
  };
  // Serializes output appends + their store commits; owns the output files.
  absl::Mutex commit_mu_;
  std::map<int64_t, Output> outputs_ ABSL_GUARDED_BY(commit_mu_);  // by job seq
  // Serializes state-row writes so the last write carries the newest state.
  absl::Mutex persist_mu_;
  absl::Mutex files_mu_;  // one FlushFiles at a time
};

}  // namespace prs::master

#endif  // PRS_MASTER_JOB_MANAGER_H_
