#include "master/job_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/file_io.h"
#include "common/job_config.h"
#include "common/job_state.h"
#include "common/tabular_descriptor.h"
#include "common/text.h"
#include "google/protobuf/util/message_differencer.h"
#include "master/input_fingerprint.h"
#include "master/partitioner.h"
#include "master/tabular_plans.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kListerFlushTasks = 256;
// A lease that did not reach its agent this many times counts a try each time
// after that: something about the mini-batch keeps it from being delivered.
constexpr int kMaxUndelivered = 3;
// Notes a job keeps for JobStatus; the rest are only in master_role.txt.
constexpr size_t kMaxNotes = 20;

constexpr absl::Duration kListerFlushInterval = absl::Milliseconds(200);
constexpr absl::Duration kRateWindow = absl::Seconds(60);

// The append_row output file: append_row_file_name in the output folder,
// with {name} and {job_id} filled in.
std::string OutputFileOf(const v1::JobSpec& spec, const std::string& job_id) {
  const std::string name = absl::StrReplaceAll(spec.append_row_file_name(),
                                               {{"{name}", spec.name()}, {"{job_id}", job_id}});
  return (fs::path(spec.output()) / name).string();
}

// The identity of an output file: its folder's device and inode, and its
// name; the path itself when the folder does not exist.
std::string OutputKey(const std::string& output_file) {
  const fs::path path(output_file);
  struct stat st {};
  if (::stat(path.parent_path().c_str(), &st) != 0) return path.lexically_normal().string();
  return absl::StrCat(st.st_dev, ":", st.st_ino, "/", path.filename().string());
}

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S", t, absl::UTCTimeZone());
}

constexpr const char* kReadme = R"(This folder is the log tree of one prs job. Start here.

job_result.txt            The end: SUCCEEDED, FAILED or CANCELLED, the reason, and the first
                          error with its mini-batch, node, process and traceback file.
job_progress_overview.txt Progress while the job runs: mini-batches created / processed /
                          failed, items succeeded / failed, rate, ETA; the result at the end.
sys/master_role.txt       The master's view: task creation, agents joining and leaving,
                          retries, mini-batches that failed, the result.
sys/job_report/processed_mini-batches.csv
                          One row per attempt: mini-batch, try, node, process, start, items
                          total / succeeded / failed, seconds, status (RUN_DONE, RUN_EXCEPTION,
                          RUN_TIMEOUT, WORKER_DIED, AGENT_LOST, INIT_FAILED, LOAD_FAILED), error.
sys/node/<node>/agent.txt The agent's view: the job starting and stopping, workers started and
                          how each ended (exit code or signal).
sys/node/<node>/<process>.txt
                          Two lines per mini-batch the worker ran: "picked" when it started and
                          "completed" with ip, pid, items total / succeeded / failed, start,
                          duration, process CPU time, run() time. Process numbers count up on
                          each node for each job; a replaced worker gets the next number.
user/error.txt            Each distinct error of the entry script, with its count and first
                          occurrence.
user/error/<node>/<process>.txt
                          The full traceback of every failed init() and run(), with the
                          mini-batch, the try and its input files.
user/stdout/<node>/<process>.stdout.txt, user/stderr/<node>/<process>.stderr.txt
                          What the entry script printed.
user/entry_script_log/<node>/<process>.log.txt
                          What the entry script logged through EntryScript().logger.
perf/<node>/              Resource use sampled every resource_monitor_interval seconds:
                          node_resource_usage.csv, processes_resource_usage.csv,
                          node_disk_usage.csv, and os/<YYYYmmddHH>/processes_<MM> (a ps listing).

To find a failed input: user/error.txt names each error and where it first happened; open
user/error/<node>/<process>.txt for its traceback and the mini-batch's input files. <node> is
the agent's --node-id (its host name by default). Files under user/, sys/node/ and perf/ are
shipped by the agents as they grow; `prs logs JOB [PATH] [--follow]` reads them remotely.
)";

constexpr const char* kReportHeader =
    "Mini-batch Id,Try,Node,Agent,Process,Pid,Start Time,Items Total,Items Succeeded,"
    "Items Failed,Elapsed Seconds,Run Method Seconds,Process Seconds,Status,Error\n";

// One row of processed_mini-batches.csv.
std::string ReportRow(const AttemptRecord& a, int64_t item_count) {
  const auto& r = a.result;
  const int64_t ok = r.status() == v1::RUN_DONE ? r.items_succeeded() : 0;
  const std::string start =
      r.start_time_ms() > 0 ? FormatTimestamp(absl::FromUnixMillis(r.start_time_ms())) : "";
  return absl::StrFormat("%d,%d,%s,%s,%s,%d,%s,%d,%d,%d,%.3f,%.3f,%.3f,%s,%s\n", a.task_id,
                         a.attempt, CsvField(a.node_id), CsvField(a.agent_id),
                         CsvField(r.process_name()), r.pid(), start, item_count, ok,
                         item_count - ok, r.elapsed_seconds(), r.run_seconds(), r.cpu_seconds(),
                         v1::AttemptStatus_Name(r.status()), CsvField(r.error()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(const JobManagerOptions& given,
                                                               Clock* clock) {
  // Log folders are told to clients elsewhere: they must be absolute.
  JobManagerOptions options = given;
  std::error_code ec;
  options.state_dir = fs::absolute(options.state_dir, ec).lexically_normal().string();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--state-dir: ", ec.message()));
  if (auto s = MakeDirs(options.state_dir); !s.ok()) return s;
  auto store = Store::Open((fs::path(options.state_dir) / "state.db").string());
  if (!store.ok()) return store.status();
  std::unique_ptr<JobManager> m(new JobManager(options, clock, *std::move(store)));
  if (auto s = m->Recover(); !s.ok()) return s;
  return m;
}

JobManager::JobManager(const JobManagerOptions& options, Clock* clock, std::unique_ptr<Store> store)
    : options_(options), clock_(clock), store_(std::move(store)) {
  // Lease ids carry the store's epoch so that a lease from before a restart
  // can never match one granted after it.
  next_lease_ = store_->epoch() << 32;
}

void JobManager::Stop() {
  SetWorkListener(nullptr);
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
  absl::MutexLock lock(&commit_mu_);
  outputs_.clear();
}

absl::Status JobManager::Recover() {
  auto stored = store_->LoadJobs();
  if (!stored.ok()) return stored.status();
  std::vector<std::pair<Job*, std::string>> output_lost;
  for (auto& sj : *stored) {
    auto job = std::make_unique<Job>();
    job->seq = sj.seq;
    job->job_id = sj.job_id;
    job->spec = sj.spec;
    job->state = sj.state;
    job->reason = sj.reason;
    job->first_error = sj.first_error;
    job->submit_ms = sj.submit_ms;
    job->start_ms = sj.start_ms;
    job->end_ms = sj.end_ms;
    job->counts = sj.counts;
    job->next_task_id = sj.next_task_id;
    job->listed = sj.listed;
    job->plans_pending = sj.plans_pending;
    job->groups_done = sj.groups_done;
    job->last_progress = clock_->Now();  // a restart is no hang of the job
    job->input_fingerprint = sj.input_fingerprint;
    job->reused_from = sj.reused_from;
    job->output_started = sj.output_started;
    job->log_dir = (fs::path(options_.state_dir) / "jobs" / sj.job_id / "logs").string();
    if (sj.spec.output_action() == "append_row") {
      // A reused job's output is the file of the job it took its result from.
      job->output_file = OutputFileOf(sj.spec, sj.reused_from.empty() ? sj.job_id : sj.reused_from);
      job->output_key = OutputKey(job->output_file);
    }
    job->result_written = !IsActive(*job);
    job->result_flushed = job->result_written;
    Job* raw = job.get();
    if (IsActive(*raw)) {
      auto pending = store_->PendingTasks(sj.seq);
      if (!pending.ok()) return pending.status();
      raw->pending.assign(pending->begin(), pending->end());
      if (auto attempts = store_->ListAttempts(sj.seq); attempts.ok()) {
        absl::MutexLock lock(&mu_);
        for (const auto& a : *attempts) {
          if (!a.result.error().empty() && a.result.status() != v1::RELEASED) {
            NoteErrorLocked(*raw, a);
          }
        }
      }
      if (!raw->output_file.empty()) {
        absl::MutexLock lock(&commit_mu_);
        Output& out = outputs_[raw->seq];
        out.file = std::make_unique<OutputFile>(raw->output_file);
        out.length = sj.output_length;
        out.started = sj.output_started;
        // Drop rows whose commit did not happen before the master stopped. A
        // file that lost committed rows fails its job; it is never padded.
        if (out.started) {
          if (auto s = out.file->Reopen(sj.output_length, sj.output_id); !s.ok()) {
            if (absl::IsNotFound(s)) {
              out.started = false;  // nothing committed, no file: made at the first rows
            } else {
              output_lost.emplace_back(raw, std::string(s.message()));
            }
          }
        }
      }
      raw->events.push_back(absl::StrFormat(
          "%s|INFO|%d|master|master restarted: resuming job with %d pending mini-batches, output "
          "cut to %d committed bytes",
          FormatTimestamp(clock_->Now()), ::getpid(), raw->pending.size(), sj.output_length));
    }
    absl::MutexLock lock(&mu_);
    order_.push_back(raw);
    jobs_[sj.job_id] = std::move(job);
  }
  std::vector<Job*> ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [job, why] : output_lost) {
      EndJobLocked(*job, v1::FAILED, why);
      ended.push_back(job);
    }
    for (Job* job : order_) {
      if (!IsActive(*job)) continue;
      if (!job->counts.listing_done()) {
        StartLister(job);
      } else {
        // The last commit may have landed without the job's end being saved.
        CheckJobLocked(*job);
        if (!IsActive(*job)) ended.push_back(job);
      }
    }
  }
  for (Job* job : ended) PersistState(job);
  std::vector<Job*> all;
  {
    absl::MutexLock lock(&mu_);
    all = order_;
  }
  // The master may have stopped between the last plan and the groups.
  for (Job* job : all) MaybeMakeGroups(job);
  return absl::OkStatus();
}

// --- Jobs -------------------------------------------------------------------

absl::StatusOr<v1::SubmitJobResponse> JobManager::Submit(const v1::SubmitJobRequest& request,
                                                         const std::function<bool()>& cancelled) {
  const v1::JobSpec& spec = request.spec();
  if (auto s = ValidateJobSpec(spec, /*check_files=*/false); !s.ok()) return s;
  bool has_entry = false;
  int64_t snapshot_bytes = 0;
  for (const auto& f : request.snapshot().files()) {
    if (f.path() == spec.entry_script()) has_entry = true;
    snapshot_bytes += static_cast<int64_t>(f.content().size());
  }
  if (!has_entry) {
    return absl::InvalidArgumentError(absl::StrCat(
        "entry_script: '", spec.entry_script(), "' is not in the snapshot of source_directory ",
        spec.source_directory(), "; the path is relative to source_directory"));
  }
  if (snapshot_bytes > options_.max_snapshot_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "source_directory: the snapshot is ", snapshot_bytes, " bytes, over the master's limit of ",
        options_.max_snapshot_bytes, "; move data into inputs or side_inputs"));
  }
  // Inputs that cannot be listed or hold no file are refused before anything
  // is queued, created or moved.
  if (auto s = CheckInputsAtSubmit(spec, cancelled); !s.ok()) return s;
  std::string output_file;
  if (!spec.output().empty()) {
    // summary_only too: it is EntryScript().output_dir.
    if (auto s = MakeDirs(spec.output()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("output: ", s.message()));
    }
  }
  // A name with {job_id} is this job's alone: it is known once the job is.
  const bool per_job_output = absl::StrContains(spec.append_row_file_name(), "{job_id}");
  if (spec.output_action() == "append_row" && !per_job_output) {
    output_file = OutputFileOf(spec, "");
  }

  // Two spellings of one file (a link, "out/.", a bind mount) are one output.
  const std::string output_key = output_file.empty() ? "" : OutputKey(output_file);
  if (!output_file.empty()) {
    absl::MutexLock lock(&mu_);
    if (auto s = OutputInUseLocked(output_file, output_key, nullptr); !s.ok()) return s;
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
  auto stored = store_->CreateJob(spec, request.snapshot(), NowMs());
  if (!stored.ok()) return stored.status();
  auto job = std::make_unique<Job>();
  job->seq = stored->seq;
  job->job_id = stored->job_id;
  job->spec = spec;
  job->submit_ms = stored->submit_ms;
  job->log_dir = (fs::path(options_.state_dir) / "jobs" / job->job_id / "logs").string();
  if (spec.output_action() == "append_row" && per_job_output) {
    output_file = OutputFileOf(spec, job->job_id);
  }
  job->output_file = output_file;
  job->output_key = output_file.empty() ? "" : OutputKey(output_file);
  job->reuse_candidate = reuse_candidate;
  if (auto s = MakeDirs((fs::path(job->log_dir) / "sys").string()); !s.ok()) {
    store_->UpdateJobState(job->seq, v1::FAILED, std::string(s.message()), "", 0, NowMs())
        .IgnoreError();
    return s;
  }
  WriteFileAtomic((fs::path(job->log_dir) / "readme.txt").string(), kReadme).IgnoreError();
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
  if (!output_file.empty()) {
    // The file is made when the first rows come (CommitOutcomes), so a job
    // that never starts leaves an earlier output where it is.
    absl::MutexLock lock(&commit_mu_);
    outputs_[job->seq].file = std::make_unique<OutputFile>(output_file);
  }
  v1::SubmitJobResponse response;
  response.set_job_id(job->job_id);
  response.set_log_dir(job->log_dir);
  for (const auto& w : warnings) response.add_warnings(w);
  {
    absl::MutexLock lock(&mu_);
    Job* raw = job.get();
    EventLocked(
        *raw, "INFO",
        absl::StrCat("job submitted: name=", spec.name(), " entry_script=", spec.entry_script(),
                     " mini_batch_size=", spec.mini_batch_size(), " node_count=", spec.node_count(),
                     " process_count_per_node=", spec.process_count_per_node(),
                     " output=", output_file.empty() ? "summary_only" : output_file));
    for (const auto& w : warnings) NoteLocked(*raw, w);
    order_.push_back(raw);
    jobs_[raw->job_id] = std::move(job);
    StartLister(raw);
  }
  spdlog::info("job submitted job={} name={}", response.job_id(), spec.name());
  return response;
}

void JobManager::StartLister(Job* job) {
  job->listing_started = clock_->Now();
  job->lister = std::thread([this, job] { ListerMain(job); });
}

bool JobManager::CheckWatchdogsLocked(Job& job, absl::Time now) {
  const auto& spec = job.spec;
  if (spec.first_task_creation_timeout() > 0 && job.counts.mini_batches_created() == 0 &&
      !job.counts.listing_done() &&
      now - job.listing_started > absl::Seconds(spec.first_task_creation_timeout())) {
    EndJobLocked(job, v1::FAILED,
                 absl::StrCat("no mini-batch was made within ", spec.first_task_creation_timeout(),
                              " s (first_task_creation_timeout): listing the inputs is stuck or "
                              "too slow; check that the master can read them (a hung network "
                              "filesystem?)"));
    return true;
  }
  if (spec.progress_update_timeout() <= 0 || job.state != v1::RUNNING) return false;
  // The clock runs only while agents work on the job: waiting for an agent
  // is not a hang of the job.
  if (job.leased.empty() && job.agents.empty()) job.last_progress = now;
  if (now - job.last_progress <= absl::Seconds(spec.progress_update_timeout())) return false;
  std::set<std::string> nodes;
  for (const auto& [task_id, lease] : job.leased) {
    auto it = agents_.find(lease.agent_id);
    nodes.insert(it != agents_.end() ? it->second.node_id : lease.agent_id);
  }
  EndJobLocked(
      job, v1::FAILED,
      absl::StrCat("no progress for ", spec.progress_update_timeout(),
                   " s (progress_update_timeout): no mini-batch finished, failed or was made, "
                   "while ",
                   job.leased.size(), " were leased to ",
                   nodes.empty() ? std::string("no node") : absl::StrJoin(nodes, ", "),
                   "; see those nodes' sys/node/<node>/agent.txt and user/stderr files"));
  return true;
}

absl::Status JobManager::ListInputs(Job& job, const std::function<bool(NewTask)>& emit,
                                    const ListingHooks& hooks) {
  if (IsTabular(job.spec)) {
    return PartitionTabularInputs(job.spec, emit, job.stop_listing, hooks);
  }
  const std::vector<v1::Input> inputs(job.spec.inputs().begin(), job.spec.inputs().end());
  return PartitionFileInputs(inputs, job.spec.mini_batch_size(), emit, job.stop_listing, hooks);
}

JobManager::Job* JobManager::FindReuseCandidate(const v1::JobSpec& spec,
                                                const v1::SourceSnapshot& snapshot) {
  std::vector<Job*> candidates;  // newest first
  {
    absl::MutexLock lock(&mu_);
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      Job* j = *it;
      if (j->state == v1::SUCCEEDED && j->result_flushed && !j->input_fingerprint.empty() &&
          google::protobuf::util::MessageDifferencer::Equals(j->spec, spec)) {
        candidates.push_back(j);
      }
    }
  }
  // The same script snapshot: the same files with the same modes and bytes.
  const auto files = [](const v1::SourceSnapshot& snap) {
    std::map<std::string, std::pair<uint32_t, std::string>> out;
    for (const auto& f : snap.files()) out[f.path()] = {f.mode(), f.content()};
    return out;
  };
  const auto wanted = files(snapshot);
  for (Job* j : candidates) {
    auto stored = store_->GetSnapshot(j->seq);
    if (stored.ok() && files(*stored) == wanted) return j;
  }
  return nullptr;
}

bool JobManager::TryReuse(Job* job) {
  Job* const candidate = job->reuse_candidate;
  InputFingerprint fingerprint;
  const bool tabular = IsTabular(job->spec);
  ListingHooks hooks;  // no notes: the real listing, if any, makes them
  hooks.exclude_dir = job->spec.output();
  const absl::Status listed = ListInputs(
      *job,
      [&](NewTask task) {
        fingerprint.Add(task, tabular);
        return !job->stop_listing.load();
      },
      hooks);
  if (!listed.ok() || job->stop_listing) return false;
  const absl::Status dependencies = fingerprint.AddDependencies(job->spec);
  const std::string fp = fingerprint.Finish();
  std::string why_not;
  if (!dependencies.ok()) why_not = std::string(dependencies.message());
  std::string output_file, origin;
  {
    absl::MutexLock lock(&mu_);
    output_file = candidate->output_file;
    origin = candidate->reused_from.empty() ? candidate->job_id : candidate->reused_from;
    if (why_not.empty() && fp != candidate->input_fingerprint) {
      why_not =
          "the inputs differ (a file added, removed or changed, in the inputs or the "
          "side inputs)";
    }
    for (Job* other : order_) {
      if (why_not.empty() && other->seq > candidate->seq && other != job && !output_file.empty() &&
          other->output_key == candidate->output_key && other->output_started) {
        why_not = absl::StrCat("job ", other->job_id, " has written its output file since");
      }
    }
  }
  if (why_not.empty() && !output_file.empty()) {
    auto stored = store_->LoadJob(candidate->seq);
    struct stat st {};
    // The same file (when its identity is known) with the committed length.
    if (!stored.ok() || ::stat(output_file.c_str(), &st) != 0 ||
        st.st_size != stored->output_length ||
        (!stored->output_id.empty() &&
         stored->output_id != absl::StrCat(st.st_dev, ":", st.st_ino))) {
      why_not = absl::StrCat("its output ", output_file, " is gone or was changed");
    }
  }
  if (why_not.empty()) {
    absl::Status copied = store_->CopyResult(job->seq, candidate->seq, origin);
    absl::StatusOr<StoredJob> now = copied.ok() ? store_->LoadJob(job->seq) : copied;
    if (!now.ok()) why_not = std::string(now.status().message());
    if (now.ok()) {
      {
        absl::MutexLock lock(&mu_);
        job->counts = now->counts;
        job->output_file = output_file;
        job->output_key = candidate->output_key;
        job->reused_from = origin;
        job->input_fingerprint = fp;
        job->listed = now->listed;
        NoteLocked(
            *job, absl::StrCat(
                      "allow_reuse: the result of job ", candidate->job_id,
                      ", which ran the same script with the same settings on the same "
                      "inputs, is this job's; nothing ran",
                      output_file.empty() ? "" : absl::StrCat(" (the output is ", output_file, ")"),
                      ". Set allow_reuse: false to run it again"));
        EndJobLocked(*job, v1::SUCCEEDED, "");
      }
      PersistState(job);
      NotifyWork();
      spdlog::info("job reused job={} from={}", job->job_id, candidate->job_id);
      return true;
    }
  }
  absl::MutexLock lock(&mu_);
  EventLocked(*job, "INFO",
              absl::StrCat("allow_reuse: job ", candidate->job_id,
                           " had the same script and settings, but ", why_not, "; running"));
  return false;
}

void JobManager::ListerMain(Job* job) {
  // allow_reuse: an identical earlier job's result, if its inputs are the same.
  if (job->reuse_candidate != nullptr && job->listed == 0) {
    // The dry listing has first_task_creation_timeout to itself, as has the
    // real one after it.
    if (TryReuse(job)) return;
    absl::MutexLock lock(&mu_);
    job->listing_started = clock_->Now();
  }
  if (job->stop_listing) return;
  std::vector<NewTask> batch;
  int64_t already_listed;
  {
    absl::MutexLock lock(&mu_);
    already_listed = job->listed;
    EventLocked(*job, "INFO",
                absl::StrCat("task creation started",
                             already_listed > 0 ? absl::StrCat(" (resuming after ", already_listed,
                                                               " mini-batches)")
                                                : ""));
  }
  absl::Time last_flush = clock_->Now();
  bool first = already_listed == 0;
  absl::Status flush_status;

  auto flush = [&](bool done) -> bool {
    if (batch.empty() && !done) return true;
    int64_t items = 0, plans = 0;
    {
      // Back-pressure: wait while the job already has plenty of queued work.
      absl::MutexLock lock(&mu_);
      auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return job->stop_listing.load() ||
               static_cast<int64_t>(job->pending.size()) < options_.max_pending_per_job;
      };
      mu_.Await(absl::Condition(&room));
      if (job->stop_listing) return false;
      for (auto& t : batch) {
        t.task_id = job->next_task_id++;
        items += std::max<int64_t>(0, t.item_count);
        if (t.kind == TaskKind::kPlan) ++plans;
      }
      job->plans_pending += plans;
    }
    flush_status = store_->InsertTasks(job->seq, batch, TaskSource::kLister, done);
    if (!flush_status.ok()) return false;
    {
      absl::MutexLock lock(&mu_);
      if (IsActive(*job)) {
        for (const auto& t : batch) job->pending.emplace_back(t.task_id, 0);
      }
      const int64_t n = static_cast<int64_t>(batch.size());
      if (n > 0) job->last_progress = clock_->Now();
      job->listed += n;
      job->counts.set_mini_batches_created(job->counts.mini_batches_created() + n);
      job->counts.set_plans(job->counts.plans() + plans);
      job->counts.set_items_total(job->counts.items_total() + items);
      if (done) {
        job->counts.set_listing_done(true);
        EventLocked(*job, "INFO",
                    absl::StrCat("task creation done: ", job->listed, " mini-batches",
                                 job->plans_pending > 0 || KeysMode(*job)
                                     ? " (files to plan included; their mini-batches follow)"
                                     : "",
                                 ", ", job->counts.items_total(), " items"));
        CheckJobLocked(*job);
      } else if (first && !batch.empty()) {
        EventLocked(*job, "INFO",
                    absl::StrCat("FIRST_TASK_CREATED: folder 0, offset 0, task_id ",
                                 batch.front().task_id));
      }
      ++job->version;
    }
    first = false;
    batch.clear();
    last_flush = clock_->Now();
    NotifyWork();
    return true;
  };

  int64_t position = 0;
  const bool tabular = IsTabular(job->spec);
  InputFingerprint fingerprint;
  const auto emit = [&](NewTask task) {
    if (job->spec.allow_reuse()) fingerprint.Add(task, tabular);
    // Tasks made before a restart come again in the same order: skip them.
    if (position++ < already_listed) return !job->stop_listing.load();
    batch.push_back(std::move(task));
    if (first || static_cast<int64_t>(batch.size()) >= kListerFlushTasks ||
        clock_->Now() - last_flush >= kListerFlushInterval) {
      return flush(false);
    }
    return true;
  };
  // What the listing leaves out is said, not silently skipped; a listing
  // that skips thousands of files keeps master_role.txt readable.
  constexpr int64_t kMaxListingNotes = 1000;
  int64_t listing_notes = 0;
  ListingHooks hooks;
  hooks.exclude_dir = job->spec.output();
  hooks.note = [&](const std::string& note) {
    if (++listing_notes > kMaxListingNotes) return;
    absl::MutexLock lock(&mu_);
    NoteLocked(*job, note);
  };
  absl::Status status = ListInputs(*job, emit, hooks);
  if (listing_notes > kMaxListingNotes) {
    absl::MutexLock lock(&mu_);
    EventLocked(*job, "WARNING",
                absl::StrCat("... and ", listing_notes - kMaxListingNotes,
                             " more files or folders left out of the listing"));
  }
  if (job->stop_listing) return;
  if (status.ok() && flush_status.ok() && job->spec.allow_reuse() &&
      fingerprint.AddDependencies(job->spec).ok()) {
    // Before the listing is done (and the job may end): a job that succeeds
    // can be reused. Without readable side inputs it cannot be.
    std::string fp = fingerprint.Finish();
    if (store_->SetInputFingerprint(job->seq, fp).ok()) {
      absl::MutexLock lock(&mu_);
      job->input_fingerprint = std::move(fp);
    }
  }
  if (status.ok() && flush_status.ok()) {
    flush(true);
    if (flush_status.ok()) {
      PersistState(job);  // the last mini-batches may have ended the job already
      MaybeMakeGroups(job);
      return;
    }
  }
  if (status.ok()) status = flush_status;
  {
    absl::MutexLock lock(&mu_);
    if (IsActive(*job)) {
      EndJobLocked(*job, v1::FAILED, absl::StrCat("listing the inputs failed: ", status.message()));
    }
  }
  PersistState(job);
  NotifyWork();
}

void JobManager::MaybeMakeGroups(Job* job) {
  {
    absl::MutexLock lock(&mu_);
    if (!KeysMode(*job) || job->groups_done || job->groups_building || !IsActive(*job) ||
        !job->counts.listing_done() || job->plans_pending > 0) {
      return;
    }
    job->groups_building = true;
  }
  std::map<std::string, KeyGroup> groups;
  absl::Status status;
  auto plans = store_->KeyPlans(job->seq);
  if (plans.ok()) {
    for (const auto& p : *plans) {
      status = AddKeyPlan(p.descriptor, p.plan, groups);
      if (!status.ok()) break;
    }
  } else {
    status = plans.status();
  }
  std::vector<NewTask> tasks;
  int64_t items = 0;
  if (status.ok()) {
    int64_t first_id;
    {
      absl::MutexLock lock(&mu_);  // only to reserve the ids
      first_id = job->next_task_id;
      job->next_task_id += static_cast<int64_t>(groups.size());
    }
    tasks = GroupTasks(groups, first_id);
    for (const auto& t : tasks) items += t.item_count;
  }
  if (status.ok()) status = store_->InsertTasks(job->seq, tasks, TaskSource::kGroups, true);
  {
    absl::MutexLock lock(&mu_);
    job->groups_building = false;
    if (!status.ok()) {
      if (IsActive(*job)) {
        EndJobLocked(
            *job, v1::FAILED,
            absl::StrCat("making the partition_keys mini-batches failed: ", status.message()));
      }
    } else {
      job->groups_done = true;
      if (IsActive(*job)) {
        for (const auto& t : tasks) job->pending.emplace_back(t.task_id, 0);
      }
      job->counts.set_mini_batches_created(job->counts.mini_batches_created() +
                                           static_cast<int64_t>(tasks.size()));
      job->counts.set_items_total(job->counts.items_total() + items);
      EventLocked(
          *job, "INFO",
          absl::StrCat("partition_keys: ", tasks.size(),
                       " mini-batches, one per distinct key combination, ", items, " records"));
      CheckJobLocked(*job);
    }
    ++job->version;
  }
  PersistState(job);
  NotifyWork();
}

absl::StatusOr<v1::JobStatus> JobManager::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (job == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("job '", job_id, "' not found; `prs list` shows the jobs"));
  }
  return StatusLocked(*job);
}

std::vector<v1::JobStatus> JobManager::ListJobs(int limit) {
  if (limit <= 0) limit = 100;
  absl::MutexLock lock(&mu_);
  std::vector<v1::JobStatus> out;
  for (auto it = order_.rbegin(); it != order_.rend() && static_cast<int>(out.size()) < limit;
       ++it) {
    out.push_back(StatusLocked(**it));
  }
  return out;
}

absl::StatusOr<v1::JobStatus> JobManager::Cancel(const std::string& job_id) {
  Job* job;
  {
    absl::MutexLock lock(&mu_);
    job = FindJobLocked(job_id);
    if (job == nullptr) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
    if (!IsActive(*job)) {
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

absl::StatusOr<v1::JobStatus> JobManager::Resume(const std::string& job_id) {
  Job* job;
  {
    absl::MutexLock lock(&mu_);
    job = FindJobLocked(job_id);
    if (job == nullptr) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
    if (IsActive(*job)) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " is ", JobStateName(job->state),
                       "; only a FAILED or CANCELLED job can be resumed"));
    }
    if (!job->result_flushed) {
      return absl::UnavailableError(
          absl::StrCat("job ", job_id, " has ended and its job_result.txt is still being written (",
                       job->log_dir, "); try again in a moment"));
    }
    if (job->state == v1::SUCCEEDED) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " SUCCEEDED; there is nothing to resume"));
    }
    if (job->resuming) {
      return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " is being resumed"));
    }
    // partition_keys groups being inserted as the job ended: let that finish.
    auto groups_settled = [job]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !job->groups_building; };
    mu_.Await(absl::Condition(&groups_settled));
    if (!job->output_file.empty()) {
      if (auto s = OutputInUseLocked(job->output_file, job->output_key, job); !s.ok()) return s;
      // Resuming cuts the file to this job's committed length: never do that
      // to a file a later job has written since.
      for (Job* other : order_) {
        if (other->seq > job->seq && other->output_key == job->output_key &&
            (other->output_started || !other->reused_from.empty())) {
          return absl::FailedPreconditionError(
              absl::StrCat("output: ", job->output_file, " has been written by job ", other->job_id,
                           " since; this job's rows are in the file moved aside for it (",
                           job->output_file, ".*.before-", other->job_id,
                           "); resume would overwrite the "
                           "newer output, so submit the job again instead"));
        }
      }
    }
    // Claims the job; its state stays terminal (not active) until it is ready,
    // so nothing leases or requeues its mini-batches in between.
    job->resuming = true;
  }
  absl::Cleanup unclaim = [this, job] {
    absl::MutexLock lock(&mu_);
    job->resuming = false;
  };
  // The old lister was told to stop when the job ended.
  if (job->lister.joinable()) job->lister.join();
  int64_t run;
  {
    // A new run, before the store is read: a commit of the old run either
    // landed already (and is read below) or is dropped at commit time.
    absl::MutexLock lock(&commit_mu_);
    Output& out = outputs_[job->seq];
    run = ++out.run;
    if (out.file != nullptr) out.file->Close();
  }
  auto reset = store_->ResetFailedTasks(job->seq);
  absl::StatusOr<StoredJob> stored =
      reset.ok() ? store_->LoadJob(job->seq) : absl::StatusOr<StoredJob>(reset.status());
  absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> pending =
      stored.ok() ? store_->PendingTasks(job->seq) : stored.status();
  absl::Status status = pending.status();
  if (pending.ok() && !job->output_file.empty()) {
    // Continue the same output file from its committed length.
    absl::MutexLock lock(&commit_mu_);
    Output& out = outputs_[job->seq];
    if (out.file == nullptr) out.file = std::make_unique<OutputFile>(job->output_file);
    out.length = stored->output_length;
    out.started = stored->output_started;
    if (out.started) {
      status = out.file->Reopen(stored->output_length, stored->output_id);
      if (absl::IsNotFound(status)) {
        out.started = false;  // nothing committed, no file: made at the first rows
        status = absl::OkStatus();
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    job->run = run;
    if (!status.ok()) {
      job->state = v1::FAILED;
      job->reason = SanitizeUtf8(absl::StrCat("resume failed: ", status.message()));
    } else {
      job->state = v1::QUEUED;
      job->result_flushed = false;
      job->reason.clear();
      job->first_error.clear();
      job->end_ms = 0;
      job->counts = stored->counts;
      job->pending.assign(pending->begin(), pending->end());
      job->leased.clear();
      job->agents.clear();
      job->served_by.clear();
      job->logs_done.clear();
      job->init_failures_by_node.clear();
      job->gave_up_nodes.clear();
      job->rate_samples.clear();
      job->result_written = false;
      job->stop_listing = false;
      EventLocked(
          *job, "INFO",
          absl::StrCat("job resumed: ", *reset, " failed mini-batches reset, ", job->pending.size(),
                       " to run, output continues at byte ", stored->output_length));
      job->plans_pending = stored->plans_pending;
      job->groups_done = stored->groups_done;
      job->listed = stored->listed;
      job->next_task_id = stored->next_task_id;
      job->last_progress = clock_->Now();
      if (!job->counts.listing_done()) {
        StartLister(job);
      } else {
        CheckJobLocked(*job);
      }
      ++job->version;
    }
  }
  PersistState(job);
  NotifyWork();
  if (!status.ok()) return status;
  MaybeMakeGroups(job);
  spdlog::info("job resumed job={}", job_id);
  return GetJob(job_id);
}

absl::StatusOr<std::string> JobManager::LogDir(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (job == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("job '", job_id, "' not found; `prs list` shows the jobs"));
  }
  return job->log_dir;
}

void JobManager::LogsComplete(const std::string& agent_id, const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (job == nullptr) return;
  // An agent assigned the job again afterwards is waited for again
  // (AssignJobLocked erases its mark); a `complete` from its earlier stint
  // that arrives after that would wrongly count, a window of one RPC.
  job->logs_done.insert(agent_id);
  ++job->version;
}

absl::StatusOr<std::string> JobManager::LogDirForAgent(const std::string& agent_id,
                                                       const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  if (auto found = TouchAgentLocked(agent_id); !found.ok()) return found.status();
  Job* job = FindJobLocked(job_id);
  if (job == nullptr) {
    // Not NOT_FOUND: that code tells an agent its session is gone.
    return absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' is not known to this master"));
  }
  return job->log_dir;
}

void JobManager::NoteErrorLocked(Job& job, const AttemptRecord& a) {
  const auto& r = a.result;
  auto& e = job.errors[r.error()];
  if (e.count++ == 0) {
    // The time the error reached the master, the order job_result.txt uses.
    e.order = ++job.error_order;
    e.first = absl::StrCat(FormatTimestamp(clock_->Now()), " UTC, mini-batch ", a.task_id, " try ",
                           a.attempt, ", node ", a.node_id);
    if (!r.process_name().empty()) absl::StrAppend(&e.first, ", ", r.process_name());
    if (!r.error_detail().empty() && !r.process_name().empty()) {
      // A partial success has the mini-batch's inputs there, no traceback.
      absl::StrAppend(&e.first, r.status() == v1::RUN_DONE ? "; inputs in" : "; traceback in",
                      " user/error/", a.node_id, "/", r.process_name(), ".txt");
    }
  }
  job.errors_changed = true;
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
    if (other != self && (IsActive(*other) || other->resuming) && other->output_key == key) {
      return absl::FailedPreconditionError(absl::StrCat(
          "output: ", output_file, " is being written by job ", other->job_id,
          other->output_file == output_file ? "" : absl::StrCat(" (as ", other->output_file, ")"),
          "; choose another output or append_row_file_name, or wait for that job to end"));
    }
  }
  return absl::OkStatus();
}

JobManager::Job* JobManager::FindJobLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

void JobManager::EndJobLocked(Job& job, v1::JobState state, const std::string& reason) {
  if (!IsActive(job)) return;
  job.state = state;
  // A reason may quote a path that is not UTF-8 (a listing error).
  job.reason = SanitizeUtf8(reason);
  job.end_ms = NowMs();
  job.stop_listing = true;
  job.pending.clear();  // the store keeps them PENDING, for resume
  for (auto& [task_id, lease] : job.leased) {
    auto it = agents_.find(lease.agent_id);
    if (it != agents_.end()) --it->second.leases;
  }
  job.leased.clear();  // late reports are rejected
  for (const auto& agent_id : job.agents) {
    auto it = agents_.find(agent_id);
    if (it != agents_.end() && it->second.job_id == job.job_id) it->second.job_id.clear();
  }
  job.agents.clear();
  EventLocked(job, state == v1::SUCCEEDED ? "INFO" : "ERROR",
              absl::StrCat("job ", JobStateName(state), reason.empty() ? "" : ": ", reason));
  ++job.version;
}

void JobManager::CheckJobLocked(Job& job) {
  if (!IsActive(job)) return;
  const auto& spec = job.spec;
  const auto& c = job.counts;
  auto with_first = [&](std::string why) {
    if (!job.first_error.empty()) absl::StrAppend(&why, "; first error: ", job.first_error);
    return why;
  };
  if (spec.error_threshold() >= 0 && c.items_failed() > spec.error_threshold()) {
    EndJobLocked(
        job, v1::FAILED,
        with_first(absl::StrCat("error_threshold exceeded: ", c.items_failed(),
                                " failed items > error_threshold ", spec.error_threshold())));
    return;
  }
  if (spec.allowed_failed_count() >= 0 && c.mini_batches_failed() > spec.allowed_failed_count()) {
    EndJobLocked(job, v1::FAILED,
                 with_first(absl::StrCat("allowed_failed_count exceeded: ", c.mini_batches_failed(),
                                         " failed mini-batches > allowed_failed_count ",
                                         spec.allowed_failed_count())));
    return;
  }
  // Tabular plans make more mini-batches: the percentage waits for all of them.
  const bool all_created =
      c.listing_done() && job.plans_pending == 0 && (!KeysMode(job) || job.groups_done);
  if (all_created && spec.allowed_failed_percent() < 100 && c.mini_batches_created() > 0 &&
      c.mini_batches_failed() * 100 > spec.allowed_failed_percent() * c.mini_batches_created()) {
    EndJobLocked(
        job, v1::FAILED,
        with_first(absl::StrCat("allowed_failed_percent exceeded: ", c.mini_batches_failed(),
                                " of ", c.mini_batches_created(), " mini-batches failed > ",
                                spec.allowed_failed_percent(), "%")));
    return;
  }
  if (all_created && job.pending.empty() && job.leased.empty() &&
      c.mini_batches_processed() >= c.mini_batches_created()) {
    // As ParallelRunStep ("no succeeded mini batch item"): a job in which no
    // input succeeded did nothing, whatever the thresholds tolerate.
    if (c.items_succeeded() == 0 && c.items_failed() > 0) {
      EndJobLocked(job, v1::FAILED,
                   with_first(absl::StrCat("no input succeeded: all ", c.items_failed(),
                                           " items failed, in ", c.mini_batches_processed(),
                                           " mini-batches")));
      return;
    }
    EndJobLocked(job, v1::SUCCEEDED, "");
  }
}

void JobManager::EventLocked(Job& job, const std::string& level, const std::string& message) {
  // The job's logging_level filters master_role.txt as it does the agents' logs.
  auto rank = [](const std::string& l) { return l == "DEBUG" ? 0 : l == "INFO" ? 1 : 2; };
  if (rank(level) < rank(job.spec.logging_level())) return;
  job.events.push_back(absl::StrFormat("%s|%s|%d|master|%s", FormatTimestamp(clock_->Now()), level,
                                       ::getpid(), message));
}

bool JobManager::EndPublishedLocked(const Job& job) const {
  // Past the grace the end is published whatever is missing (a log folder
  // that cannot be written, an agent that never answers): never hang.
  if (clock_->Now() - absl::FromUnixMillis(job.end_ms) >= options_.logs_grace) return true;
  if (!job.result_flushed) return false;
  for (const std::string& agent_id : job.served_by) {
    auto it = agents_.find(agent_id);
    if (it != agents_.end() && it->second.ships_logs && job.logs_done.count(agent_id) == 0) {
      return false;
    }
  }
  return true;
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

v1::JobStatus JobManager::StatusLocked(const Job& job) const {
  v1::JobStatus s;
  s.set_job_id(job.job_id);
  s.set_name(job.spec.name());
  s.set_state(IsActive(job) || EndPublishedLocked(job) ? job.state : v1::RUNNING);
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
  s.set_items_per_second(job.rate);
  s.set_first_error(job.first_error);
  for (const auto& note : job.notes) s.add_notes(note);
  if (job.notes_dropped > 0) {
    s.add_notes(
        absl::StrCat("... and ", job.notes_dropped, " more notes in logs/sys/master_role.txt"));
  }
  return s;
}

void JobManager::PersistState(Job* job) {
  absl::MutexLock persist(&persist_mu_);
  v1::JobState state;
  std::string reason, first_error;
  int64_t start_ms, end_ms, run;
  {
    absl::MutexLock lock(&mu_);
    run = job->run;
    state = job->state;
    reason = job->reason;
    first_error = job->first_error;
    start_ms = job->start_ms;
    end_ms = job->end_ms;
  }
  if (auto s = store_->UpdateJobState(job->seq, state, reason, first_error, start_ms, end_ms);
      !s.ok()) {
    spdlog::error("persisting job state failed job={} error={}", job->job_id,
                  std::string(s.message()));
  }

  if (state != v1::QUEUED && state != v1::RUNNING) {
    // Nothing more will be appended to a job that ended. Closed before the
    // result is flushed, because a flushed result lets the job be resumed.
    {
      absl::MutexLock lock(&commit_mu_);
      auto it = outputs_.find(job->seq);
      // A resume since then owns the file now (it bumped the run).
      if (it != outputs_.end() && it->second.run == run && it->second.file != nullptr) {
        it->second.file->Close();
      }
    }
    FlushFiles();
  }
}

void JobManager::NotifyWork() {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&listener_mu_);
    listener = work_listener_;
  }
  if (listener) listener();
}

// --- Agents -----------------------------------------------------------------

absl::StatusOr<v1::RegisterAgentResponse> JobManager::RegisterAgent(
    const v1::RegisterAgentRequest& request) {
  if (request.node_id().empty()) {
    return absl::InvalidArgumentError("RegisterAgent: node_id is empty");
  }
  v1::RegisterAgentResponse response;
  {
    absl::MutexLock lock(&mu_);
    // Two live agents with one node id would write into the same log files.
    for (const auto& [id, other] : agents_) {
      if (other.node_id == request.node_id() &&
          (other.hostname != request.hostname() || other.pid != request.pid())) {
        return absl::AlreadyExistsError(absl::StrCat(
            "node id '", request.node_id(), "' is used by a live agent (pid ", other.pid, " on ",
            other.hostname, "); give each agent its own --node-id (or wait ",
            absl::FormatDuration(options_.agent_timeout), " for a dead one to be declared lost)"));
      }
    }
    Agent agent;
    agent.pid = request.pid();
    agent.agent_id = absl::StrCat(request.node_id(), "#", store_->epoch(), ".", ++next_agent_);
    agent.ships_logs = request.ships_logs();
    agent.node_id = request.node_id();
    agent.hostname = request.hostname();
    agent.ip = request.ip();
    agent.last_seen = clock_->Now();
    response.set_agent_id(agent.agent_id);
    agents_[agent.agent_id] = agent;
    for (Job* job : order_) {
      if (IsActive(*job)) {
        EventLocked(*job, "INFO",
                    absl::StrCat("agent joined: agent=", agent.agent_id, " node=", agent.node_id,
                                 " ip=", agent.ip, " pid=", request.pid()));
      }
    }
  }
  response.set_heartbeat_interval_ms(
      static_cast<int32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  spdlog::info("agent registered agent={} ip={}", response.agent_id(), request.ip());
  return response;
}

void JobManager::UnregisterAgent(const std::string& agent_id) {
  std::vector<Outcome> released;
  {
    absl::MutexLock lock(&mu_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end()) return;
    Agent& agent = it->second;
    for (Job* job : order_) {
      if (!IsActive(*job)) continue;
      int64_t n = 0;
      for (auto lit = job->leased.begin(); lit != job->leased.end();) {
        if (lit->second.agent_id != agent_id) {
          ++lit;
          continue;
        }
        v1::TaskResult r;
        r.set_status(v1::RELEASED);
        r.set_error(absl::StrCat("agent ", agent_id, " stopped before reporting it"));
        released.push_back(MakeOutcomeLocked(*job, lit->first, lit->second, agent, std::move(r)));
        job->leased.erase(lit++);
        ++n;
      }
      if (n > 0 || job->agents.count(agent_id) > 0) {
        EventLocked(*job, "INFO",
                    absl::StrCat("agent left: agent=", agent_id, " node=", agent.node_id,
                                 " stopped; ", n, " leased mini-batches go back to the queue"));
      }
    }
    ReleaseAgentLocked(agent);
    agents_.erase(it);
  }
  spdlog::info("agent left agent={}", agent_id);
  if (!released.empty()) CommitOutcomes(std::move(released));
  NotifyWork();
}

v1::ListAgentsResponse JobManager::ListAgents() {
  v1::ListAgentsResponse response;
  absl::MutexLock lock(&mu_);
  std::vector<const Agent*> agents;
  for (const auto& [id, agent] : agents_) agents.push_back(&agent);
  std::sort(agents.begin(), agents.end(),
            [](const Agent* a, const Agent* b) { return a->node_id < b->node_id; });
  const absl::Time now = clock_->Now();
  for (const Agent* a : agents) {
    auto* info = response.add_agents();
    info->set_agent_id(a->agent_id);
    info->set_node_id(a->node_id);
    info->set_hostname(a->hostname);
    info->set_ip(a->ip);
    info->set_pid(a->pid);
    info->set_last_seen_ms_ago(absl::ToInt64Milliseconds(now - a->last_seen));
    info->set_job_id(a->job_id);
    info->set_leases(a->leases);
  }
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> JobManager::Heartbeat(const v1::HeartbeatRequest& request) {
  bool requeued = false;
  auto response = HeartbeatLocked(request, requeued);
  if (requeued) NotifyWork();
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> JobManager::HeartbeatLocked(
    const v1::HeartbeatRequest& request, bool& requeued) {
  absl::MutexLock lock(&mu_);
  auto found = TouchAgentLocked(request.agent_id());
  if (!found.ok()) return found.status();
  Agent& agent = **found;
  v1::HeartbeatResponse response;
  // Leases granted long ago that the agent does not hold were lost on the
  // way (a PullTasks reply that never arrived): give them back.
  if (agent.leases > request.held_lease_ids_size()) {
    const std::set<int64_t> held(request.held_lease_ids().begin(), request.held_lease_ids().end());
    const absl::Time cutoff = agent.last_seen - options_.unheld_lease_grace;
    for (Job* job : order_) {
      if (!IsActive(*job)) continue;
      for (auto lit = job->leased.begin(); lit != job->leased.end();) {
        const Lease& l = lit->second;
        if (l.agent_id != agent.agent_id || held.count(l.lease_id) > 0 || l.granted > cutoff) {
          ++lit;
          continue;
        }
        const int64_t task_id = lit->first;
        const Lease lease = l;
        --agent.leases;
        job->leased.erase(lit++);
        ++job->version;
        if (!NoteUndeliveredLocked(*job, task_id, lease, agent.node_id,
                                   absl::StrCat("mini-batch ", task_id, " was leased to agent ",
                                                agent.agent_id, " and never reached it"))) {
          requeued = true;
        }
      }
    }
  }
  if (!request.job_id().empty()) {
    Job* job = FindJobLocked(request.job_id());
    // Only an ended job stops workers: an agent between assignments keeps its
    // workers (and their init() state) for when it is given work again.
    if (job == nullptr || !IsActive(*job)) {
      response.add_stop_job_ids(request.job_id());
    }
  }
  return response;
}

bool JobManager::EveryNodeGaveUpLocked(const Job& job) const {
  if (job.gave_up_nodes.empty()) return false;
  for (const auto& [id, agent] : agents_) {
    if (job.gave_up_nodes.count(agent.node_id) == 0) return false;
  }
  return true;
}

absl::StatusOr<JobManager::Agent*> JobManager::TouchAgentLocked(const std::string& agent_id) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("agent session ", agent_id,
                                            " is unknown or was declared lost; register again"));
  }
  it->second.last_seen = clock_->Now();
  return &it->second;
}

JobManager::Job* JobManager::AssignJobLocked(Agent& agent) {
  Job* job = agent.job_id.empty() ? nullptr : FindJobLocked(agent.job_id);
  if (job != nullptr && !IsActive(*job)) {
    ReleaseAgentLocked(agent);
    job = nullptr;
  }
  // An agent whose job has no queued work left and who holds none of it is
  // free to help the next job.
  if (job != nullptr && job->pending.empty() && job->counts.listing_done() && agent.leases == 0) {
    ReleaseAgentLocked(agent);
    job = nullptr;
  }
  if (job != nullptr) return job;
  for (Job* j : order_) {
    if (!IsActive(*j) || static_cast<int32_t>(j->agents.size()) >= j->spec.node_count()) continue;
    if (j->pending.empty() && j->counts.listing_done()) continue;
    if (j->gave_up_nodes.count(agent.node_id) > 0) continue;
    agent.job_id = j->job_id;
    j->agents.insert(agent.agent_id);
    j->served_by.insert(agent.agent_id);
    j->logs_done.erase(agent.agent_id);  // assigned again: its logs grow again
    EventLocked(*j, "INFO",
                absl::StrCat("agent assigned: agent=", agent.agent_id, " node=", agent.node_id,
                             " agents=", j->agents.size(), "/", j->spec.node_count()));
    ++j->version;
    return j;
  }
  return nullptr;
}

void JobManager::ReleaseAgentLocked(Agent& agent) {
  Job* job = agent.job_id.empty() ? nullptr : FindJobLocked(agent.job_id);
  if (job != nullptr) {
    job->agents.erase(agent.agent_id);
    ++job->version;
  }
  agent.job_id.clear();
}

absl::StatusOr<v1::PullTasksResponse> JobManager::TryPull(const v1::PullTasksRequest& request) {
  struct Granted {
    int64_t task_id, lease_id;
    int32_t attempt;
  };
  std::vector<Granted> granted;
  Job* job;
  bool started = false;
  {
    absl::MutexLock lock(&mu_);
    auto found = TouchAgentLocked(request.agent_id());
    if (!found.ok()) return found.status();
    Agent& agent = **found;
    job = AssignJobLocked(agent);
    if (job == nullptr) return v1::PullTasksResponse();
    const int max = std::max(1, request.max_tasks());
    while (static_cast<int>(granted.size()) < max && !job->pending.empty()) {
      auto [task_id, tries] = job->pending.front();
      job->pending.pop_front();
      Lease lease;
      lease.lease_id = ++next_lease_;
      lease.agent_id = agent.agent_id;
      lease.attempt = tries + 1;
      lease.granted = agent.last_seen;
      lease.run = job->run;
      job->leased[task_id] = lease;
      ++agent.leases;
      granted.push_back({task_id, lease.lease_id, lease.attempt});
    }
    // An agent that works on the job (again) is waited for at its end.
    if (!granted.empty()) job->logs_done.erase(agent.agent_id);
    if (!granted.empty() && job->state == v1::QUEUED) {
      job->state = v1::RUNNING;
      job->start_ms = NowMs();
      job->last_progress = clock_->Now();
      EventLocked(*job, "INFO", "FIRST_TASK_SCHEDULED: job is RUNNING");
      started = true;
    }
    if (!granted.empty()) ++job->version;
  }
  if (started) PersistState(job);
  // Items are read outside the lock: they live in the store, not in memory.
  v1::PullTasksResponse response;
  std::vector<std::pair<int64_t, std::string>> unreadable;  // task, why
  std::vector<int64_t> later;                               // over this reply's budget
  struct TooLarge {
    int64_t task_id;
    StoredTask task;
    std::string why;
  };
  std::vector<TooLarge> too_large;
  std::vector<StoredTask> stored;
  size_t reply_bytes = 0;
  for (const auto& g : granted) {
    auto task = store_->GetTask(job->seq, g.task_id);
    if (!task.ok()) {
      spdlog::error("reading mini-batch failed job={} task={} error={}", job->job_id, g.task_id,
                    std::string(task.status().message()));
      unreadable.emplace_back(g.task_id, absl::StrCat("mini-batch ", g.task_id,
                                                      " cannot be read from the state database: ",
                                                      task.status().message()));
      continue;
    }
    size_t task_bytes = 64;
    for (const auto& item : task->items) task_bytes += item.size() + 8;
    if (task_bytes > options_.max_task_bytes) {
      std::string why = absl::StrCat(
          "mini-batch ", g.task_id, " holds ", task_bytes, " bytes of ", task->items.size(),
          " inputs, more than one message carries (", options_.max_task_bytes, "); first input: ",
          Printable(task->items.empty() ? "" : DescribeItem(task->items[0]), 300),
          "; use a smaller mini_batch_size");
      too_large.push_back({g.task_id, *std::move(task), std::move(why)});
      continue;
    }
    if (response.tasks_size() > 0 && reply_bytes + task_bytes > options_.max_pull_reply_bytes) {
      later.push_back(g.task_id);  // the next pull takes it
      continue;
    }
    reply_bytes += task_bytes;
    v1::Task* t = response.add_tasks();
    t->set_job_id(job->job_id);
    t->set_task_id(g.task_id);
    t->set_lease_id(g.lease_id);
    t->set_attempt(g.attempt);
    for (const auto& item : task->items) t->add_items(item);
    stored.push_back(*std::move(task));
  }
  std::vector<Undeliverable> failed;
  {
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < response.tasks_size(); ++i) {
      auto it = job->leased.find(response.tasks(i).task_id());
      if (it == job->leased.end() || it->second.lease_id != response.tasks(i).lease_id()) continue;
      StoredTask& task = stored[i];
      it->second.item_count = task.item_count;
      it->second.kind = task.kind;
      if (task.kind == TaskKind::kPlan && !task.items.empty()) {
        it->second.plan_descriptor = std::move(task.items[0]);
      }
    }
    // Takes back a lease that is not in the reply; nullopt when it is gone.
    // The leases granted above, by task: the lock was let go meanwhile, so a
    // task may be another agent's lease by now (its agent unregistered and
    // it went to another), which is not ours to take back.
    absl::flat_hash_map<int64_t, int64_t> granted_lease;
    for (const auto& g : granted) granted_lease[g.task_id] = g.lease_id;
    const auto take_back = [&](int64_t task_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      std::optional<std::pair<Lease, std::string>> taken;
      auto it = job->leased.find(task_id);
      if (it == job->leased.end() || it->second.lease_id != granted_lease[task_id]) return taken;
      std::string node_id;
      auto agent = agents_.find(it->second.agent_id);
      if (agent != agents_.end()) {
        --agent->second.leases;
        node_id = agent->second.node_id;
      }
      taken.emplace(it->second, node_id);
      job->leased.erase(it);
      return taken;
    };
    for (int64_t task_id : later) {
      if (auto lease = take_back(task_id))
        job->pending.emplace_front(task_id, lease->first.attempt - 1);
    }
    for (const auto& [task_id, why] : unreadable) {
      if (auto lease = take_back(task_id)) {
        lease->first.item_count = -1;  // unknown: fails as one item
        NoteUndeliveredLocked(*job, task_id, lease->first, lease->second, why);
      }
    }
    for (auto& t : too_large) {
      if (auto lease = take_back(t.task_id)) {
        Undeliverable u;
        u.job = job;
        u.task_id = t.task_id;
        u.lease = lease->first;
        u.lease.item_count = t.task.item_count;
        u.lease.kind = t.task.kind;
        u.node_id = lease->second;
        u.error = std::move(t.why);
        u.final = true;
        failed.push_back(std::move(u));
      }
    }
    // NoteUndeliveredLocked gives up on some: commit those here too.
    if (!undeliverable_.empty()) {
      for (auto& u : undeliverable_) failed.push_back(std::move(u));
      undeliverable_.clear();
    }
  }
  if (!failed.empty()) FailUndeliverable(std::move(failed));
  return response;
}

bool JobManager::NoteUndeliveredLocked(Job& job, int64_t task_id, const Lease& lease,
                                       const std::string& node_id, const std::string& why) {
  const int times = ++job.undelivered[task_id];
  if (times < kMaxUndelivered) {
    EventLocked(job, "WARNING", absl::StrCat(why, "; back to the queue"));
    job.pending.emplace_front(task_id, lease.attempt - 1);
    return false;
  }
  Undeliverable u;
  u.job = &job;
  u.task_id = task_id;
  u.lease = lease;
  u.node_id = node_id;
  u.error = absl::StrCat(why, " (", times, " times)");
  u.name_input = true;
  undeliverable_.push_back(std::move(u));
  return true;
}

void JobManager::FailUndeliverable(std::vector<Undeliverable> tasks) {
  for (auto& u : tasks) {
    if (!u.name_input) continue;
    auto task = store_->GetTask(u.job->seq, u.task_id);
    if (task.ok() && !task->items.empty()) {
      absl::StrAppend(&u.error, "; first input: ", Printable(DescribeItem(task->items[0]), 300));
    }
  }
  std::vector<Outcome> outcomes;
  {
    absl::MutexLock lock(&mu_);
    for (auto& u : tasks) {
      if (!IsActive(*u.job)) continue;
      Agent agent;  // the session may be gone by now
      agent.agent_id = u.lease.agent_id;
      agent.node_id = u.node_id;
      v1::TaskResult r;
      r.set_status(v1::NOT_DELIVERED);
      r.set_error(SanitizeUtf8(u.error));
      EventLocked(*u.job, "ERROR", u.error);
      outcomes.push_back(
          MakeOutcomeLocked(*u.job, u.task_id, u.lease, agent, std::move(r), u.final));
    }
  }
  if (!outcomes.empty()) CommitOutcomes(std::move(outcomes));
}

absl::StatusOr<v1::GetJobBundleResponse> JobManager::GetBundle(
    const v1::GetJobBundleRequest& request) {
  int64_t seq;
  v1::GetJobBundleResponse response;
  {
    absl::MutexLock lock(&mu_);
    if (auto found = TouchAgentLocked(request.agent_id()); !found.ok()) return found.status();
    Job* job = FindJobLocked(request.job_id());
    if (job == nullptr)
      return absl::NotFoundError(absl::StrCat("job '", request.job_id(), "' not found"));
    seq = job->seq;
    *response.mutable_spec() = job->spec;
  }
  auto snapshot = store_->GetSnapshot(seq);
  if (!snapshot.ok()) return snapshot.status();
  *response.mutable_snapshot() = *std::move(snapshot);
  return response;
}

JobManager::Outcome JobManager::MakeOutcomeLocked(Job& job, int64_t task_id, const Lease& lease,
                                                  const Agent& agent, v1::TaskResult result,
                                                  bool last_try) {
  Outcome o;
  o.job = &job;
  o.run = lease.run;
  // The one-line error goes into summaries people read (user/error.txt, the
  // report CSV, master_role.txt, the reason): no control bytes from a
  // script's message (colours, bells) there. The traceback file keeps it all.
  result.set_error(Printable(result.error(), 4096));
  o.commit.attempt.task_id = task_id;
  o.commit.attempt.attempt = lease.attempt;
  o.commit.attempt.agent_id = agent.agent_id;
  o.commit.attempt.node_id = agent.node_id;
  const bool plan = lease.kind == TaskKind::kPlan;
  // Items: files, or records. A tabular mini-batch's records are known from
  // its plan, and exactly from the worker that parsed them (the plan counts a
  // line of blanks that the parser skips), whose count wins.
  int64_t count = lease.item_count;
  if (plan) {
    count = 0;
  } else if (IsTabular(job.spec) && result.items_total() >= 0 && result.items_total() != count &&
             (result.status() == v1::RUN_DONE || result.status() == v1::RUN_EXCEPTION)) {
    o.items_total_delta = result.items_total() - std::max<int64_t>(count, 0);
    count = result.items_total();
  }
  if (plan && result.status() == v1::RUN_DONE) {
    // The plan's answer makes mini-batches; it is never output.
    absl::Status made;
    if (KeysMode(job)) {
      o.commit.plan = result.rows();
      if (job.groups_done) {
        // Run again after the groups were made (resume): its own groups.
        std::map<std::string, KeyGroup> groups;
        made = AddKeyPlan(lease.plan_descriptor, o.commit.plan, groups);
        if (made.ok()) o.new_tasks = GroupTasks(groups, job.next_task_id);
      }
    } else {
      auto tasks = RangeTasks(lease.plan_descriptor, result.rows(), job.next_task_id);
      made = tasks.status();
      if (tasks.ok()) o.new_tasks = *std::move(tasks);
    }
    if (!made.ok()) {
      result.set_status(v1::RUN_EXCEPTION);
      result.set_error(std::string(made.message()));
      o.commit.plan.clear();
      o.new_tasks.clear();
    }
    for (const auto& t : o.new_tasks) o.items_total_delta += t.item_count;
    result.clear_rows();
    result.set_row_count(0);
  }
  result.set_items_total(count);
  const auto status = result.status();
  if (status == v1::RUN_DONE) {
    o.rows = std::move(*result.mutable_rows());
    o.row_count = result.row_count();
    o.header = std::move(*result.mutable_header());
    if (job.spec.output_action() != "append_row") {
      o.rows.clear();
      o.row_count = 0;
    }
    result.set_items_succeeded(std::clamp<int64_t>(result.items_succeeded(), 0, count));
    o.commit.new_state = TaskState::kSucceeded;
    o.commit.tries = lease.attempt;
  } else if (status == v1::INIT_FAILED || status == v1::LOAD_FAILED || status == v1::RELEASED) {
    o.counts_try = false;
    o.load_failed = status == v1::LOAD_FAILED;
    o.init_failed = status == v1::INIT_FAILED;
    o.commit.new_state = TaskState::kPending;
    o.commit.tries = lease.attempt - 1;
    result.set_items_succeeded(0);
  } else {
    result.set_items_succeeded(0);
    o.commit.tries = lease.attempt;
    o.commit.new_state = last_try || lease.attempt >= job.spec.run_max_try() ? TaskState::kFailed
                                                                             : TaskState::kPending;
  }
  // Stored: the records as known, -1 while unknown.
  o.commit.item_count = plan ? 0 : count;
  if (o.commit.new_state == TaskState::kFailed && (plan || count < 0)) {
    // A file that could not be planned or read: its records are unknown, so
    // it counts as one failed item (error_threshold 0 still fails the job);
    // the store keeps -1, which a resume takes back out of the counters.
    o.commit.item_count = -1;
    count = 1;
    o.items_total_delta += 1;
    result.set_items_total(count);
  }
  o.item_count = count;
  o.plan_ended = plan && o.commit.new_state != TaskState::kPending;
  result.clear_rows();
  result.clear_header();
  o.commit.attempt.result = std::move(result);
  return o;
}

absl::StatusOr<v1::ReportResultsResponse> JobManager::Report(
    const v1::ReportResultsRequest& request) {
  v1::ReportResultsResponse response;
  std::vector<Outcome> outcomes;
  {
    absl::MutexLock lock(&mu_);
    auto found = TouchAgentLocked(request.agent_id());
    if (!found.ok()) return found.status();
    Agent& agent = **found;
    for (const auto& r : request.results()) {
      Job* job = FindJobLocked(r.job_id());
      bool ok = false;
      if (job != nullptr) {
        auto lit = job->leased.find(r.task_id());
        // Fencing: only the holder of the current lease may report, once.
        if (lit != job->leased.end() && lit->second.lease_id == r.lease_id() &&
            lit->second.agent_id == agent.agent_id) {
          Lease lease = lit->second;
          job->leased.erase(lit);
          --agent.leases;
          outcomes.push_back(MakeOutcomeLocked(*job, r.task_id(), lease, agent, r));
          ok = true;
        }
      }
      response.add_accepted(ok);
    }
  }
  if (!outcomes.empty()) CommitOutcomes(std::move(outcomes));
  return response;
}

void JobManager::CommitOutcomes(std::vector<Outcome> outcomes) {
  // Group by job, keeping order.
  std::map<Job*, std::vector<Outcome*>> by_job;
  for (auto& o : outcomes) by_job[o.job].push_back(&o);

  std::vector<Job*> changed;
  for (auto& [job, list] : by_job) {
    CountDeltas d;
    std::string rows;
    std::vector<TaskCommit> commits;
    std::vector<NewTask> new_tasks;
    // Held from the run check to the commit, so a resume cannot slip between.
    absl::ReleasableMutexLock commit_lock(&commit_mu_);
    // A result leased before the job was resumed belongs to a run that is over:
    // its mini-batch was reloaded as pending and runs again, so it is dropped.
    Output& out = outputs_[job->seq];
    const int64_t current_run = out.run;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const Outcome* o) { return o->run != current_run; }),
               list.end());
    if (list.empty()) continue;
    for (Outcome* o : list) {
      const auto& r = o->commit.attempt.result;
      if (o->commit.new_state == TaskState::kSucceeded) {
        ++d.processed;
        d.items_succeeded += r.items_succeeded();
        d.items_failed += o->item_count - r.items_succeeded();
        d.rows_written += o->row_count;
        rows += o->rows;
      } else if (o->commit.new_state == TaskState::kFailed) {
        ++d.processed;
        ++d.failed;
        d.items_failed += o->item_count;
      } else if (o->counts_try) {
        ++d.retries;
      }
      d.items_total += o->items_total_delta;
      for (const auto& t : o->new_tasks) d.items_total -= t.item_count;  // counted on insert
      new_tasks.insert(new_tasks.end(), o->new_tasks.begin(), o->new_tasks.end());
      commits.push_back(o->commit);
    }
    // append_row_format.header: the column names start the output file.
    if (!rows.empty() && out.length == 0 && job->spec.append_row_format().header()) {
      for (const Outcome* o : list) {
        if (o->header.empty() || o->rows.empty()) continue;
        rows.insert(0, o->header);
        break;
      }
    }
    d.output_bytes = static_cast<int64_t>(rows.size());

    absl::Status status;
    std::string output_note;   // an earlier output moved aside
    std::string output_error;  // the output file was lost: the job fails
    const int64_t length = out.length;
    bool appended = false;
    if (!rows.empty()) {
      if (out.file == nullptr || (out.started && !out.file->is_open())) {
        status = absl::FailedPreconditionError("the job's output file is closed");
      } else if (!out.started) {
        // The earlier file is moved aside and an empty one made; then that is
        // recorded, before any row is written: after a restart, a file at the
        // path of a started job is this job's (cut back to its committed
        // length), and an earlier output is never cut.
        auto note = out.file->Start(job->job_id, clock_->Now());
        status = note.status();
        if (!note.ok()) {
          output_error = std::string(status.message());
        } else {
          output_note = *std::move(note);
          status = store_->SetOutputStarted(job->seq, out.file->id());
          if (status.ok()) {
            out.started = true;
          } else {
            out.file->Close();
          }
        }
      } else if (absl::Status same = out.file->CheckSame(length); !same.ok()) {
        status = same;
        output_error = std::string(same.message());
      }
      if (status.ok()) {
        status = out.file->Append(length, rows);
        appended = status.ok();
        if (!appended && !out.file->CheckSame(length).ok()) {
          // The rows could not be cut back: they are in the file, uncommitted.
          output_error = absl::StrCat(status.message(),
                                      "; the output file could not be cut back to its "
                                      "committed length, so the job stops");
        }
      }
    }
    if (status.ok()) status = store_->CommitAttempts(job->seq, commits, d, new_tasks);
    if (status.ok()) {
      out.length = length + d.output_bytes;
    } else if (appended) {
      if (auto s = out.file->Truncate(length); !s.ok()) {
        spdlog::critical("cannot roll back output file job={} error={}", job->job_id,
                         std::string(s.message()));
        output_error = absl::StrCat("the commit failed (", status.message(),
                                    ") and the output file could not be cut back to its "
                                    "committed length (",
                                    s.message(), "), so the job stops");
      }
    }
    commit_lock.Release();

    absl::MutexLock lock(&mu_);
    if (appended) job->output_started = true;
    if (!output_note.empty()) NoteLocked(*job, output_note);
    if (!output_error.empty()) {
      // Writing on would lose rows: the job ends, its mini-batches still
      // PENDING in the store.
      EndJobLocked(*job, v1::FAILED, output_error);
      changed.push_back(job);
      continue;
    }
    if (!status.ok()) {
      // Nothing reached disk: run these mini-batches again.
      spdlog::error("commit failed job={} error={}", job->job_id, std::string(status.message()));
      EventLocked(*job, "ERROR",
                  absl::StrCat("commit failed, mini-batches requeued: ", status.message()));
      if (IsActive(*job)) {
        for (Outcome* o : list) {
          job->pending.emplace_back(o->commit.attempt.task_id, o->commit.attempt.attempt - 1);
        }
      }
      changed.push_back(job);
      continue;
    }
    job->last_progress = clock_->Now();
    job->counts.set_mini_batches_processed(job->counts.mini_batches_processed() + d.processed);
    job->counts.set_mini_batches_failed(job->counts.mini_batches_failed() + d.failed);
    job->counts.set_items_succeeded(job->counts.items_succeeded() + d.items_succeeded);
    job->counts.set_items_failed(job->counts.items_failed() + d.items_failed);
    job->counts.set_rows_written(job->counts.rows_written() + d.rows_written);
    job->counts.set_retries(job->counts.retries() + d.retries);
    int64_t new_items = 0;
    for (const auto& t : new_tasks) new_items += t.item_count;
    job->counts.set_items_total(job->counts.items_total() + d.items_total + new_items);
    job->counts.set_mini_batches_created(job->counts.mini_batches_created() +
                                         static_cast<int64_t>(new_tasks.size()));
    for (const auto& t : new_tasks) {
      if (t.kind != TaskKind::kPlan) continue;
      // The rest of a file planned in chunks: first in line, so its ranges
      // keep coming while the first ones run.
      ++job->plans_pending;
      job->counts.set_plans(job->counts.plans() + 1);
      if (IsActive(*job)) job->pending.emplace_front(t.task_id, 0);
    }
    if (IsActive(*job)) {
      for (const auto& t : new_tasks) {
        if (t.kind == TaskKind::kRun) job->pending.emplace_back(t.task_id, 0);
      }
    }
    for (const Outcome* o : list) {
      if (o->plan_ended) --job->plans_pending;
    }
    if (!new_tasks.empty()) {
      EventLocked(
          *job, "DEBUG",
          absl::StrCat(new_tasks.size(), " mini-batches made from plans, ", new_items, " records"));
    }
    std::string load_error, init_error;
    for (Outcome* o : list) {
      const auto& a = o->commit.attempt;
      const auto& r = a.result;
      if (o->commit.new_state != TaskState::kPending) job->undelivered.erase(a.task_id);
      if (r.status() == v1::RELEASED) continue;  // never ran: nothing to report
      job->report_rows.push_back(ReportRow(a, o->item_count));
      if (!r.error().empty()) NoteErrorLocked(*job, a);
      if (!r.error().empty() && job->first_error.empty()) {
        job->first_error =
            absl::StrCat(r.error(), " (mini-batch ", a.task_id, ", node ", a.node_id,
                         r.process_name().empty() ? "" : ", ", r.process_name(), ")");
        if (!r.error_detail().empty() && !r.process_name().empty()) {
          absl::StrAppend(&job->first_error,
                          r.status() == v1::RUN_DONE ? "; inputs in" : "; traceback in",
                          " logs/user/error/", a.node_id, "/", r.process_name(), ".txt");
        }
      }
      if (o->commit.new_state == TaskState::kFailed) {
        EventLocked(*job, "WARNING",
                    absl::StrCat("mini-batch ", a.task_id, " failed after ", a.attempt,
                                 " tries: ", v1::AttemptStatus_Name(r.status()), " ", r.error()));
      } else if (o->commit.new_state == TaskState::kPending && IsActive(*job)) {
        job->pending.emplace_back(a.task_id, o->commit.tries);
        if (o->counts_try) {
          EventLocked(*job, "INFO",
                      absl::StrCat("mini-batch ", a.task_id, " try ", a.attempt, " failed (",
                                   v1::AttemptStatus_Name(r.status()), "): ", r.error(),
                                   "; it will be tried again"));
        }
      }
      if (o->load_failed && load_error.empty()) load_error = r.error();
      if (o->init_failed) {
        if (init_error.empty()) init_error = r.error();
        int& n = job->init_failures_by_node[a.node_id];
        if (++n >= 3 * job->spec.process_count_per_node() &&
            job->gave_up_nodes.insert(a.node_id).second) {
          EventLocked(*job, "ERROR",
                      absl::StrCat("node ", a.node_id, " gave up after ", n,
                                   " init() failures: ", r.error()));
          auto ag = agents_.find(a.agent_id);
          if (ag != agents_.end() && ag->second.job_id == job->job_id)
            ReleaseAgentLocked(ag->second);
        }
      }
    }
    if (!load_error.empty()) {
      EndJobLocked(*job, v1::FAILED, absl::StrCat("workers cannot start: ", load_error));
    } else if (!init_error.empty() && EveryNodeGaveUpLocked(*job)) {
      EndJobLocked(*job, v1::FAILED,
                   absl::StrCat("init() failed on every node: ", init_error,
                                "; see logs/user/stderr and logs/user/error"));
    }
    CheckJobLocked(*job);
    ++job->version;
    changed.push_back(job);
  }
  for (Job* job : changed) PersistState(job);
  for (Job* job : changed) MaybeMakeGroups(job);
  NotifyWork();
}

// --- Ticker -----------------------------------------------------------------

void JobManager::Tick() {
  std::vector<Outcome> lost;
  std::vector<Undeliverable> undeliverable;
  std::vector<Job*> watched;  // ended by a watchdog
  {
    absl::MutexLock lock(&mu_);
    undeliverable.swap(undeliverable_);
    const absl::Time now = clock_->Now();
    for (auto it = agents_.begin(); it != agents_.end();) {
      Agent& agent = it->second;
      if (now - agent.last_seen <= options_.agent_timeout) {
        ++it;
        continue;
      }
      spdlog::warn("agent lost agent={} silent_for={}", agent.agent_id,
                   absl::FormatDuration(now - agent.last_seen));
      for (Job* job : order_) {
        if (!IsActive(*job)) continue;
        int64_t n = 0;
        for (auto lit = job->leased.begin(); lit != job->leased.end();) {
          if (lit->second.agent_id != agent.agent_id) {
            ++lit;
            continue;
          }
          v1::TaskResult r;
          r.set_status(v1::AGENT_LOST);
          r.set_error(absl::StrCat("agent ", agent.agent_id, " on node ", agent.node_id,
                                   " stopped heartbeating"));
          lost.push_back(MakeOutcomeLocked(*job, lit->first, lit->second, agent, std::move(r)));
          job->leased.erase(lit++);
          ++n;
        }
        if (n > 0 || job->agents.count(agent.agent_id) > 0) {
          EventLocked(*job, "WARNING",
                      absl::StrCat("agent lost: agent=", agent.agent_id, " node=", agent.node_id,
                                   " silent for ", absl::FormatDuration(now - agent.last_seen),
                                   "; ", n, " leased mini-batches go back to the queue"));
        }
      }
      ReleaseAgentLocked(agent);
      it = agents_.erase(it);
    }
    for (Job* job : order_) {
      if (IsActive(*job) && CheckWatchdogsLocked(*job, now)) watched.push_back(job);
    }
    // Rates over the last minute.
    for (Job* job : order_) {
      if (!IsActive(*job)) continue;
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
  for (Job* job : watched) PersistState(job);
  if (!watched.empty()) NotifyWork();
  if (!lost.empty()) CommitOutcomes(std::move(lost));
  if (!undeliverable.empty()) FailUndeliverable(std::move(undeliverable));
  FlushFiles();
}

void JobManager::FlushFiles() {
  absl::MutexLock files(&files_mu_);
  struct Pending {
    std::string log_dir;
    std::vector<std::string> events;
    std::vector<std::string> report_rows;
    std::string error_summary;  // user/error.txt, when it changed
    std::string overview;
    std::string result;
    Job* job = nullptr;
    Job* finished = nullptr;  // set when `result` is the job's final result
    // What could not be written, kept to be written again at the next flush.
    bool events_failed = false, rows_failed = false, errors_failed = false, result_failed = false;
  };
  std::vector<Pending> work;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    for (Job* job : order_) {
      const bool active = IsActive(*job);
      if (job->events.empty() && job->report_rows.empty() && !job->errors_changed &&
          job->written_version == job->version && !active) {
        continue;
      }
      Pending p;
      p.job = job;
      p.log_dir = job->log_dir;
      p.events.swap(job->events);
      p.report_rows.swap(job->report_rows);
      if (job->errors_changed) {
        std::vector<std::pair<std::string, const Job::ErrorSummary*>> sorted;
        for (const auto& [error, summary] : job->errors) sorted.emplace_back(error, &summary);
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto& a, const auto& b) { return a.second->count > b.second->count; });
        p.error_summary =
            absl::StrCat("Distinct errors of job ", job->job_id, ", most frequent first.\n\n");
        for (const auto& [error, summary] : sorted) {
          absl::StrAppend(&p.error_summary, summary->count, " x ", error,
                          "\n    first: ", summary->first, "\n");
        }
        job->errors_changed = false;
      }
      const auto& c = job->counts;
      const int64_t done = c.items_succeeded() + c.items_failed();
      const int64_t remaining = c.items_total() - done;
      std::string eta = "unknown";
      double rate = job->rate;
      if (!active) {
        eta = "-";
        // At the end: the average over the run, not the last minute's.
        const double secs = (job->end_ms - job->start_ms) / 1000.0;
        rate = job->start_ms > 0 && secs > 0 ? static_cast<double>(done) / secs : 0;
      } else if (!c.listing_done()) {
        eta = "unknown (inputs still being listed)";
      } else if (job->rate > 0) {
        eta = FormatDuration(static_cast<double>(remaining) / job->rate);
      }
      const bool planned = job->plans_pending == 0 && (!KeysMode(*job) || job->groups_done);
      std::string created_note = !c.listing_done() && !active ? " (listing stopped)"
                                 : !c.listing_done()          ? " (listing inputs...)"
                                 : planned                    ? " (all)"
                                 : !active                    ? ""
                                 : job->plans_pending > 0
                                     ? " (files being planned...)"
                                     : " (making the partition_keys mini-batches...)";
      if (c.plans() > 0) {
        absl::StrAppend(&created_note, ", ", c.plans(), " of them plans of tabular files");
      }
      p.overview = absl::StrFormat(
          "Job: %s (%s)\nState: %s\nUpdated: %s UTC\n\n"
          "Mini-batches created: %d%s\nMini-batches processed: %d\nMini-batches failed: %d\n"
          "Mini-batches in progress: %d\nMini-batches retried: %d\n\n"
          "Items total: %d\nItems succeeded: %d\nItems failed: %d\nRows written: %d\n\n"
          "Agents: %d\nRate: %.1f items/s\nETA: %s\n",
          job->job_id, job->spec.name(), JobStateName(job->state), FormatTimestamp(now),
          c.mini_batches_created(), created_note, c.mini_batches_processed(),
          c.mini_batches_failed(), job->leased.size(), c.retries(), c.items_total(),
          c.items_succeeded(), c.items_failed(), c.rows_written(), job->agents.size(), rate, eta);
      if (!active) {
        absl::StrAppend(&p.overview, "\nResult: ", JobStateName(job->state),
                        job->reason.empty() ? "" : ": ", job->reason, "\n");
        if (!job->result_written) {
          p.result = absl::StrCat(JobStateName(job->state), "\n");
          if (!job->reason.empty()) absl::StrAppend(&p.result, "Reason: ", job->reason, "\n");
          if (!job->first_error.empty()) {
            absl::StrAppend(&p.result, "First error: ", job->first_error, "\n");
          }
          absl::StrAppend(&p.result, "Mini-batches: ", c.mini_batches_processed(), " processed, ",
                          c.mini_batches_failed(), " failed of ", c.mini_batches_created(),
                          "\nItems: ", c.items_succeeded(), " succeeded, ", c.items_failed(),
                          " failed of ", c.items_total(), "\n");
          if (!job->output_file.empty()) {
            absl::StrAppend(&p.result, "Output: ", job->output_file, " (", c.rows_written(),
                            " rows)\n");
          }
          for (const auto& note : job->notes) absl::StrAppend(&p.result, "Note: ", note, "\n");
          job->result_written = true;
          p.finished = job;
        }
      }
      job->written_version = job->version;
      work.push_back(std::move(p));
    }
  }
  for (auto& p : work) {
    const fs::path dir(p.log_dir);
    MakeDirs((dir / "sys").string()).IgnoreError();
    if (!p.events.empty()) {
      std::string text;
      for (const auto& e : p.events) absl::StrAppend(&text, e, "\n");
      if (auto s = AppendToFile((dir / "sys" / "master_role.txt").string(), text); !s.ok()) {
        spdlog::error("writing master_role.txt failed, will retry: {}", std::string(s.message()));
        p.events_failed = true;
      }
    }
    if (!p.report_rows.empty()) {
      const fs::path csv = dir / "sys" / "job_report" / "processed_mini-batches.csv";
      std::string text;
      std::error_code ec;
      if (!fs::exists(csv, ec)) text = kReportHeader;
      for (const auto& row : p.report_rows) text += row;
      if (auto s = AppendToFile(csv.string(), text); !s.ok()) {
        spdlog::error("writing processed_mini-batches.csv failed, will retry: {}",
                      std::string(s.message()));
        p.rows_failed = true;
      }
    }
    if (!p.error_summary.empty()) {
      MakeDirs((dir / "user").string()).IgnoreError();
      p.errors_failed =
          !WriteFileAtomic((dir / "user" / "error.txt").string(), p.error_summary).ok();
    }
    // Rewritten whole at every flush: a failure heals at the next.
    WriteFileAtomic((dir / "job_progress_overview.txt").string(), p.overview).IgnoreError();
    if (!p.result.empty()) {
      if (auto s = WriteFileAtomic((dir / "job_result.txt").string(), p.result); !s.ok()) {
        spdlog::error("writing job_result.txt failed, will retry: {}", std::string(s.message()));
        p.result_failed = true;
      }
    }
  }
  absl::MutexLock lock(&mu_);
  for (auto& p : work) {
    // Records that could not be written go back in front of newer ones; a
    // disk that is full or a process out of file descriptors delays the log
    // tree, it does not cut holes in it.
    Job& job = *p.job;
    if (p.events_failed) {
      job.events.insert(job.events.begin(), std::make_move_iterator(p.events.begin()),
                        std::make_move_iterator(p.events.end()));
    }
    if (p.rows_failed) {
      job.report_rows.insert(job.report_rows.begin(),
                             std::make_move_iterator(p.report_rows.begin()),
                             std::make_move_iterator(p.report_rows.end()));
    }
    if (p.errors_failed) job.errors_changed = true;
    if (p.result_failed) {
      job.result_written = false;
      job.written_version = -1;
    } else if (p.finished != nullptr) {
      p.finished->result_flushed = true;
    }
  }
}

}  // namespace prs::master
