#include "master/job_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/file_io.h"
#include "common/job_config.h"
#include "common/job_state.h"
#include "common/message_limits.h"
#include "common/snapshot.h"
#include "common/text.h"
#include "master/log_tree_writer.h"
#include "master/thresholds.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {
namespace fs = std::filesystem;

// Notes a job keeps for JobStatus; the rest are only in master_role.txt.
constexpr size_t kMaxNotes = 20;
constexpr absl::Duration kRateWindow = absl::Seconds(60);

// The spec is within bounds; the snapshot is well-formed, within the master's
// limits, and holds the entry script.
absl::Status CheckRequest(const v1::JobSpec& spec, const v1::SourceSnapshot& snapshot,
                          int64_t max_bytes) {
  if (static_cast<int64_t>(spec.ByteSizeLong()) > kMaxJobSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the job spec is ", spec.ByteSizeLong(), " bytes, over the limit of 1 MiB ",
                     "(docs/limits.md); pass data in inputs, not in arguments"));
  }
  if (auto s = CheckSnapshot(snapshot, max_bytes); !s.ok()) return s;
  for (const auto& f : snapshot.files()) {
    if (f.path() == spec.entry_script()) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "entry_script: '", spec.entry_script(), "' is not in the snapshot of source_directory ",
      spec.source_directory(), "; the path is relative to source_directory"));
}

// What the user should know about a spec that is accepted as it is.
std::vector<std::string> SpecWarnings(const v1::JobSpec& spec) {
  std::vector<std::string> warnings;
  for (const auto& arg : spec.arguments()) {
    if (absl::StartsWith(arg, "--task_overhead_timeout")) {
      warnings.push_back(
          "arguments: --task_overhead_timeout has no meaning in prs (a worker gets its next "
          "mini-batch from the agent's queue, with no storage round trip to time) and is "
          "ignored; the script still gets it");
      break;
    }
  }
  return warnings;
}

}  // namespace

std::string OutputFileOf(const v1::JobSpec& spec, const std::string& job_id) {
  const std::string name = absl::StrReplaceAll(spec.append_row_file_name(),
                                               {{"{name}", spec.name()}, {"{job_id}", job_id}});
  return (fs::path(spec.output()) / name).string();
}

std::string OutputKey(const std::string& output_file) {
  const fs::path path(output_file);
  struct stat st {};
  if (::stat(path.parent_path().c_str(), &st) != 0) return path.lexically_normal().string();
  return absl::StrCat(st.st_dev, ":", st.st_ino, "/", path.filename().string());
}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(const JobManagerOptions& given,
                                                               Clock* clock) {
  // Log folders are told to clients elsewhere: they must be absolute.
  JobManagerOptions options = given;
  std::error_code ec;
  options.state_dir = fs::absolute(options.state_dir, ec).lexically_normal().string();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--state-dir: ", ec.message()));
  if (auto s = MakeDirs(options.state_dir); !s.ok()) return s;
  auto store = Store::Open((fs::path(options.state_dir) / "state.db").string(), options.durability);
  if (!store.ok()) return store.status();
  std::unique_ptr<JobManager> m(new JobManager(options, clock, *std::move(store)));
  if (auto s = m->Recover(); !s.ok()) return s;
  return m;
}

JobManager::JobManager(const JobManagerOptions& options, Clock* clock, std::unique_ptr<Store> store)
    : options_(options),
      clock_(clock),
      store_(std::move(store)),
      committer_(store_.get(), clock, fs::weakly_canonical(options.state_dir).string(),
                 options.durability),
      agents_(options.agent_timeout) {}

void JobManager::Stop() {
  SetWorkListener(nullptr);
  SetEndListener(nullptr);
  std::vector<Job*> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, job] : jobs_) {
      job->stop_listing = true;
      jobs.push_back(job.get());
    }
  }
  for (Job* job : jobs) {
    if (job->lister.joinable()) job->lister.join();
  }
}

JobManager::~JobManager() {
  Stop();
  FlushFiles();
}

// --- Jobs -------------------------------------------------------------------

absl::StatusOr<std::string> JobManager::PrepareOutput(const v1::JobSpec& spec) {
  if (!spec.output().empty()) {
    // The master writes the output: never into its own state (the database,
    // other jobs' log trees), however the path is spelled.
    std::error_code out_ec, state_ec;
    const fs::path out = fs::weakly_canonical(spec.output(), out_ec);
    const fs::path state = fs::weakly_canonical(options_.state_dir, state_ec);
    const auto [end, _] = std::mismatch(state.begin(), state.end(), out.begin(), out.end());
    if (out_ec || state_ec || end == state.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("output: ", spec.output(), " is inside the master's state folder ",
                       options_.state_dir, "; write outputs to a folder of their own"));
    }
    // Nor into the system's folders, whatever rights the master has there.
    if (const std::string system = SystemFolderOf(out); !system.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("output: ", spec.output(),
                                                     " is in the system folder ", system,
                                                     "; write outputs to a folder of their own"));
    }
    // summary_only too: it is EntryScript().output_dir.
    if (auto s = MakeDirs(spec.output()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("output: ", s.message()));
    }
  }
  // A name with {job_id} is this job's alone: it is known once the job is.
  if (spec.output_action() != "append_row" ||
      absl::StrContains(spec.append_row_file_name(), "{job_id}")) {
    return std::string();
  }
  std::string path = OutputFileOf(spec, "");
  // Refused now rather than at the first rows: what is at the path is not
  // prs's to move aside (checked again when the file is made).
  if (auto s = OutputFile::CheckPath(path, committer_.KnownOutputs()); !s.ok()) return s;
  return path;
}

absl::StatusOr<std::unique_ptr<Job>> JobManager::MakeJob(const v1::SubmitJobRequest& request,
                                                         std::string output_file,
                                                         const std::string& owner) {
  const v1::JobSpec& spec = request.spec();
  auto stored = store_->CreateJob(spec, request.snapshot(), NowMs(), owner);
  if (!stored.ok()) return stored.status();
  auto job = std::make_unique<Job>();
  static_cast<JobRecord&>(*job) = *stored;
  job->log_dir = (fs::path(options_.state_dir) / "jobs" / job->job_id / "logs").string();
  if (spec.output_action() == "append_row" && output_file.empty()) {
    output_file = OutputFileOf(spec, job->job_id);
  }
  job->output_file = output_file;
  job->output_key = output_file.empty() ? "" : OutputKey(output_file);
  if (auto s = MakeDirs((fs::path(job->log_dir) / "sys").string()); !s.ok()) {
    JobStateRow row;
    row.state = v1::FAILED;
    row.reason = std::string(s.message());
    row.end_ms = NowMs();
    store_->UpdateJobState(job->seq, row).IgnoreError();
    return s;
  }
  WriteFileAtomic((fs::path(job->log_dir) / "readme.txt").string(), kLogTreeReadme).IgnoreError();
  // The file is made when the first rows come (OutputCommitter), so a job
  // that never starts leaves an earlier output where it is.
  if (!output_file.empty()) committer_.AddJob(job->seq, output_file);
  return job;
}

absl::StatusOr<v1::SubmitJobResponse> JobManager::Submit(const v1::SubmitJobRequest& request,
                                                         const std::function<bool()>& cancelled,
                                                         const std::string& owner) {
  const v1::JobSpec& spec = request.spec();
  if (auto s = ValidateJobSpec(spec, /*check_files=*/false); !s.ok()) return s;
  if (auto s = CheckRequest(spec, request.snapshot(), options_.max_snapshot_bytes); !s.ok()) {
    return s;
  }
  // Inputs that cannot be listed or hold no file are refused before anything
  // is queued, created or moved.
  if (auto s = CheckInputsAtSubmit(spec, cancelled); !s.ok()) return s;
  auto output_file = PrepareOutput(spec);
  if (!output_file.ok()) return output_file.status();
  // Two spellings of one file (a link, "out/.", a bind mount) are one output.
  const std::string output_key = output_file->empty() ? "" : OutputKey(*output_file);
  if (!output_key.empty()) {
    absl::MutexLock lock(&mu_);
    if (auto s = OutputInUseLocked(*output_file, output_key, nullptr); !s.ok()) return s;
    reserved_outputs_.insert(output_key);  // until the job is active, or the submit fails
  }
  absl::Cleanup unreserve = [this, &output_key] {
    if (output_key.empty()) return;
    absl::MutexLock lock(&mu_);
    reserved_outputs_.erase(output_key);
  };
  Job* reuse_candidate =
      spec.allow_reuse() ? FindReuseCandidate(spec, request.snapshot()) : nullptr;
  if (cancelled()) return absl::CancelledError("the client gave up before the job was made");
  auto job = MakeJob(request, *output_file, owner);
  if (!job.ok()) return job.status();
  (*job)->reuse_candidate = reuse_candidate;
  const std::vector<std::string> warnings = SpecWarnings(spec);
  v1::SubmitJobResponse response;
  response.set_job_id((*job)->job_id);
  response.set_log_dir((*job)->log_dir);
  for (const auto& w : warnings) response.add_warnings(w);
  {
    absl::MutexLock lock(&mu_);
    Job* raw = job->get();
    EventLocked(
        *raw, "INFO",
        absl::StrCat("job submitted: owner=", owner, " name=", spec.name(),
                     " entry_script=", spec.entry_script(),
                     " mini_batch_size=", spec.mini_batch_size(), " node_count=", spec.node_count(),
                     " process_count_per_node=", spec.process_count_per_node(),
                     " output=", raw->output_file.empty() ? "summary_only" : raw->output_file));
    for (const auto& w : warnings) NoteLocked(*raw, w);
    order_.push_back(raw);
    jobs_[raw->job_id] = *std::move(job);
    StartLister(raw);
  }
  spdlog::info("job submitted job={} name={} owner={}", response.job_id(), spec.name(), owner);
  return response;
}

absl::StatusOr<v1::JobStatus> JobManager::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto job = JobLocked(job_id);
  if (!job.ok()) return job.status();
  return StatusLocked(**job);
}

absl::StatusOr<std::string> JobManager::Owner(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto job = JobLocked(job_id);
  if (!job.ok()) return job.status();
  return (*job)->owner;
}

std::vector<v1::JobStatus> JobManager::ListJobs(
    int limit, const std::function<bool(const std::string& owner)>& visible) {
  if (limit <= 0) limit = 100;
  absl::MutexLock lock(&mu_);
  std::vector<v1::JobStatus> out;
  for (auto it = order_.rbegin(); it != order_.rend() && static_cast<int>(out.size()) < limit;
       ++it) {
    if (visible((*it)->owner)) out.push_back(StatusLocked(**it));
  }
  return out;
}

JobManager::JobsForMetrics JobManager::MetricsJobs(int ended) {
  absl::MutexLock lock(&mu_);
  JobsForMetrics out;
  std::vector<const Job*> done;
  for (const Job* job : order_) {
    ++out.by_state[job->state];
    if (job->active()) {
      out.shown.push_back(StatusLocked(*job));
    } else {
      done.push_back(job);
    }
  }
  const size_t n = std::min(done.size(), static_cast<size_t>(std::max(0, ended)));
  std::partial_sort(done.begin(), done.begin() + n, done.end(),
                    [](const Job* a, const Job* b) { return a->end_ms > b->end_ms; });
  for (size_t i = 0; i < n; ++i) out.shown.push_back(StatusLocked(*done[i]));
  return out;
}

std::map<std::string, JobManager::QueueSize> JobManager::Queues() {
  absl::MutexLock lock(&mu_);
  std::map<std::string, QueueSize> out;
  for (const Job* job : order_) {
    if (!job->active()) continue;
    out[job->job_id] = {static_cast<int64_t>(job->leases.pending()),
                        static_cast<int64_t>(job->leases.leased())};
  }
  return out;
}

absl::StatusOr<v1::JobStatus> JobManager::Cancel(const std::string& job_id) {
  Job* job;
  {
    absl::MutexLock lock(&mu_);
    auto found = JobLocked(job_id);
    if (!found.ok()) return found.status();
    job = *found;
    if (!job->active()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", job_id, " already ended as ", JobStateName(job->state), "; nothing to cancel"));
    }
    EndJobLocked(*job, v1::CANCELLED, "cancelled by user");
  }
  PersistState(job);  // also writes job_result.txt
  NotifyWork();
  spdlog::info("job cancelled job={}", job_id);
  return GetJob(job_id);
}

absl::StatusOr<std::string> JobManager::LogDir(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto job = JobLocked(job_id);
  if (!job.ok()) return job.status();
  return (*job)->log_dir;
}

absl::Status JobManager::OutputInUseLocked(const std::string& output_file, const std::string& key,
                                           const Job* self) {
  if (reserved_outputs_.count(key) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("output: ", output_file,
                     " is about to be written by another job being submitted or "
                     "resumed; choose another output or append_row_file_name"));
  }
  for (Job* other : order_) {
    if (other != self && (other->active() || other->resuming) && other->output_key == key) {
      return absl::FailedPreconditionError(absl::StrCat(
          "output: ", output_file, " is being written by job ", other->job_id,
          other->output_file == output_file ? "" : absl::StrCat(" (as ", other->output_file, ")"),
          "; choose another output or append_row_file_name, or wait for that job to end"));
    }
  }
  return absl::OkStatus();
}

Job* JobManager::FindJobLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

absl::StatusOr<Job*> JobManager::JobLocked(const std::string& job_id) {
  Job* job = FindJobLocked(job_id);
  if (job == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("job '", job_id, "' not found; `prs list` shows the jobs"));
  }
  return job;
}

// --- A job's state ----------------------------------------------------------

void JobManager::EndJobLocked(Job& job, v1::JobState state, const std::string& reason) {
  if (!job.active()) return;
  job.state = state;
  // A reason may quote a path that is not UTF-8 (a listing error).
  job.reason = SanitizeUtf8(reason);
  job.end_ms = NowMs();
  job.stop_listing = true;
  // The store keeps the queued mini-batches PENDING, for resume; late
  // reports of the leases dropped here are rejected.
  for (const auto& [task_id, lease] : job.leases.Clear()) {
    if (Agent* agent = agents_.Find(lease.agent_id)) --agent->leases;
  }
  for (const auto& agent_id : job.agents) {
    Agent* agent = agents_.Find(agent_id);
    if (agent != nullptr && agent->job_id == job.job_id) agent->job_id.clear();
  }
  job.agents.clear();
  // A cancel is the user's wish, not a failure.
  EventLocked(job, state == v1::FAILED ? "ERROR" : "INFO",
              absl::StrCat("job ", JobStateName(state), reason.empty() ? "" : ": ", reason));
  ++job.version;
}

void JobManager::CheckJobLocked(Job& job) {
  if (!job.active()) return;
  WorkState work;
  work.all_created = job.all_created();
  work.idle = job.leases.idle();
  work.first_error = job.first_error;
  if (auto verdict = JudgeCounts(job.spec, job.counts, work)) {
    EndJobLocked(job, verdict->state, verdict->reason);
  }
}

bool JobManager::CheckWatchdogsLocked(Job& job, absl::Time now) {
  // The progress clock runs only while agents work on the job: waiting for an
  // agent is not a hang of the job.
  if (job.state == v1::RUNNING && job.leases.leased() == 0 && job.agents.empty()) {
    job.last_progress = now;
  }
  WatchState watch;
  watch.now = now;
  watch.listing_started = job.listing_started;
  watch.last_progress = job.last_progress;
  watch.running = job.state == v1::RUNNING;
  watch.leased = static_cast<int64_t>(job.leases.leased());
  for (const std::string& agent_id : job.leases.holders()) {
    watch.lease_nodes.insert(agents_.NodeOf(agent_id));
  }
  auto why = JudgeWatchdogs(job.spec, job.counts, watch);
  if (!why) return false;
  EndJobLocked(job, v1::FAILED, *why);
  return true;
}

void JobManager::EventLocked(Job& job, const std::string& level, const std::string& message) {
  // The job's logging_level filters master_role.txt as it does the agents' logs.
  auto rank = [](const std::string& l) { return l == "DEBUG" ? 0 : l == "INFO" ? 1 : 2; };
  if (rank(level) < rank(job.spec.logging_level())) return;
  job.events.push_back(MasterRoleLine(clock_->Now(), level, message));
}

void JobManager::NoteLocked(Job& job, const std::string& note) {
  EventLocked(job, "WARNING", note);
  if (job.notes.size() < kMaxNotes) {
    job.notes.push_back(SanitizeUtf8(note));
  } else {
    ++job.notes_dropped;
  }
  ++job.version;
}

bool JobManager::EndPublishedLocked(const Job& job) const {
  // Past the grace the end is published whatever is missing (a log folder
  // that cannot be written, an agent that never answers): never hang.
  if (clock_->Now() - absl::FromUnixMillis(job.end_ms) >= options_.logs_grace) return true;
  if (!job.result_flushed) return false;
  for (const std::string& agent_id : job.served_by) {
    const Agent* agent = agents_.Find(agent_id);
    if (agent != nullptr && agent->ships_logs && job.logs_done.count(agent_id) == 0) return false;
  }
  return true;
}

v1::JobStatus JobManager::StatusLocked(const Job& job) const {
  v1::JobStatus s;
  s.set_job_id(job.job_id);
  s.set_name(job.spec.name());
  s.set_state(job.active() || EndPublishedLocked(job) ? job.state : v1::RUNNING);
  *s.mutable_counts() = job.counts;
  s.set_reason(job.reason);
  s.set_output_file(job.output_file);
  s.set_output_dir(job.spec.output());
  s.set_reused_from(job.reused_from);
  s.set_log_dir(job.log_dir);
  s.set_submit_time_ms(job.submit_ms);
  s.set_start_time_ms(job.start_ms);
  s.set_end_time_ms(job.end_ms);
  s.set_active_agents(static_cast<int32_t>(job.agents.size()));
  // To 0.1: a WatchJob stream is written only when the status changed.
  s.set_items_per_second(std::round(job.ItemsPerSecond(clock_->Now()) * 10) / 10);
  s.set_first_error(job.first_error);
  s.set_first_error_log(job.first_error_log);
  s.set_owner(job.owner);
  for (const auto& note : job.notes) s.add_notes(note);
  if (job.notes_dropped > 0) {
    s.add_notes(
        absl::StrCat("... and ", job.notes_dropped, " more notes in logs/sys/master_role.txt"));
  }
  return s;
}

void JobManager::PersistState(Job* job) {
  absl::MutexLock persist(&persist_mu_);
  JobStateRow row;
  int64_t run;
  {
    absl::MutexLock lock(&mu_);
    run = job->run;
    row.state = job->state;
    row.reason = job->reason;
    row.first_error = job->first_error;
    row.first_error_log = job->first_error_log;
    row.start_ms = job->start_ms;
    row.end_ms = job->end_ms;
  }
  if (auto s = store_->UpdateJobState(job->seq, row); !s.ok()) {
    spdlog::error("persisting job state failed job={} error={}", job->job_id,
                  std::string(s.message()));
  }
  if (Job::IsActive(row.state)) return;
  // Nothing more will be appended to a job that ended. Closed before the
  // result is flushed, because a flushed result lets the job be resumed.
  committer_.Close(job->seq, run);
  FlushFiles();
}

void JobManager::NotifyEnd(const std::string& job_id) {
  std::function<void(const std::string&)> listener;
  {
    absl::MutexLock lock(&listener_mu_);
    listener = end_listener_;
  }
  if (listener) listener(job_id);
}

void JobManager::NotifyWork() {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&listener_mu_);
    listener = work_listener_;
  }
  if (listener) listener();
}

// --- Ticker -----------------------------------------------------------------

void JobManager::UpdateRatesLocked(absl::Time now) {
  // Rates over the last minute.
  for (Job* job : order_) {
    if (!job->active()) continue;
    const int64_t done = job->counts.items_succeeded() + job->counts.items_failed();
    job->rate_samples.emplace_back(now, done);
    while (job->rate_samples.size() > 2 && now - job->rate_samples.front().first > kRateWindow) {
      job->rate_samples.pop_front();
    }
    const auto& first = job->rate_samples.front();
    const double dt = absl::ToDoubleSeconds(now - first.first);
    job->rate = dt > 0 ? static_cast<double>(done - first.second) / dt : 0;
  }
}

void JobManager::Tick() {
  std::vector<JobOutcome> lost;
  std::vector<Undeliverable> undeliverable;
  std::vector<Job*> watched;  // ended by a watchdog
  {
    absl::MutexLock lock(&mu_);
    undeliverable.swap(undeliverable_);
    const absl::Time now = clock_->Now();
    ReclaimLostAgentsLocked(now, lost);
    for (Job* job : order_) {
      if (job->active() && CheckWatchdogsLocked(*job, now)) watched.push_back(job);
    }
    UpdateRatesLocked(now);
  }
  for (Job* job : watched) PersistState(job);
  if (!watched.empty()) NotifyWork();
  if (!lost.empty()) CommitOutcomes(std::move(lost));
  if (!undeliverable.empty()) FailUndeliverable(std::move(undeliverable));
  FlushFiles();
}

void JobManager::FlushFiles() {
  absl::MutexLock files(&files_mu_);
  std::vector<LogTreeUpdate> updates;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    for (Job* job : order_) {
      if (NeedsFlush(*job)) updates.push_back(Collect(*job, now));
    }
  }
  for (auto& u : updates) Write(u);
  std::vector<std::string> ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto& u : updates) {
      Restore(u);
      if (u.finished && !u.result_failed) ended.push_back(u.job->job_id);
    }
  }
  for (const auto& job_id : ended) NotifyEnd(job_id);
}

}  // namespace prs::master
