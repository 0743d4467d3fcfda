// JobManager: the jobs of the store after a master restart, and resume.
#include <unistd.h>

#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/job_state.h"
#include "common/text.h"
#include "master/job_manager.h"
#include "master/log_tree_writer.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace fs = std::filesystem;

std::unique_ptr<Job> JobManager::RestoreJob(const StoredJob& sj) {
  auto job = std::make_unique<Job>();
  static_cast<JobRecord&>(*job) = sj;
  job->last_progress = clock_->Now();  // a restart is no hang of the job
  job->log_dir = (fs::path(options_.state_dir) / "jobs" / sj.job_id / "logs").string();
  if (sj.spec.output_action() == "append_row") {
    // A reused job's output is the file of the job it took its result from.
    job->output_file = OutputFileOf(sj.spec, sj.reused_from.empty() ? sj.job_id : sj.reused_from);
    job->output_key = OutputKey(job->output_file);
  }
  job->result_written = !job->active();
  job->result_flushed = job->result_written;
  return job;
}

absl::Status JobManager::Recover() {
  auto stored = store_->LoadJobs();
  if (!stored.ok()) return stored.status();
  std::vector<std::pair<Job*, std::string>> output_lost;
  for (auto& sj : *stored) {
    std::unique_ptr<Job> job = RestoreJob(sj);
    Job* raw = job.get();
    if (raw->active()) {
      auto pending = store_->PendingTasks(sj.seq);
      if (!pending.ok()) return pending.status();
      auto attempts = store_->ListAttempts(sj.seq);
      // Drop rows whose commit did not happen before the master stopped. A
      // file that lost committed rows fails its job; it is never padded.
      if (!raw->output_file.empty()) {
        if (auto s = committer_.Reopen(raw->seq, raw->output_file, sj); !s.ok()) {
          output_lost.emplace_back(raw, std::string(s.message()));
        }
      }
      absl::MutexLock lock(&mu_);
      raw->leases.Reset(*pending);
      if (attempts.ok()) {
        for (const auto& a : *attempts) {
          if (!a.result.error().empty() && a.result.status() != v1::RELEASED) {
            NoteError(*raw, a, clock_->Now());
          }
        }
      }
      raw->events.push_back(MasterRoleLine(
          clock_->Now(), "INFO",
          absl::StrFormat("master restarted: resuming job with %d pending mini-batches, output "
                          "cut to %d committed bytes",
                          raw->leases.pending(), sj.output_length)));
    }
    absl::MutexLock lock(&mu_);
    order_.push_back(raw);
    jobs_[sj.job_id] = std::move(job);
  }
  ContinueRecoveredJobs(output_lost);
  return absl::OkStatus();
}

void JobManager::ContinueRecoveredJobs(
    const std::vector<std::pair<Job*, std::string>>& output_lost) {
  std::vector<Job*> ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [job, why] : output_lost) {
      EndJobLocked(*job, v1::FAILED, why);
      ended.push_back(job);
    }
    for (Job* job : order_) {
      if (!job->active()) continue;
      if (!job->counts.listing_done()) {
        StartLister(job);
      } else {
        // The last commit may have landed without the job's end being saved.
        CheckJobLocked(*job);
        if (!job->active()) ended.push_back(job);
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
}

absl::Status JobManager::ClaimForResumeLocked(Job& job) {
  const std::string& id = job.job_id;
  if (job.active()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is ", JobStateName(job.state),
                     "; only a FAILED or CANCELLED job can be resumed"));
  }
  if (!job.result_flushed) {
    return absl::UnavailableError(
        absl::StrCat("job ", id, " has ended and its job_result.txt is still being written (",
                     job.log_dir, "); try again in a moment"));
  }
  if (job.state == v1::SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " SUCCEEDED; there is nothing to resume"));
  }
  // Its agents are still stopping its workers and shipping their last logs
  // (the end is not published yet: status still says RUNNING).
  if (!EndPublishedLocked(job)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id,
                     " is still stopping (its agents are shipping their last logs); "
                     "resume it once `prs status ",
                     id, "` shows ", JobStateName(job.state)));
  }
  if (job.resuming) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id, " is being resumed"));
  }
  // partition_keys groups being inserted as the job ended: let that finish.
  auto groups_settled = [&job]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !job.groups_building; };
  mu_.Await(absl::Condition(&groups_settled));
  if (!job.output_file.empty()) {
    if (auto s = OutputInUseLocked(job.output_file, job.output_key, &job); !s.ok()) return s;
    // Resuming cuts the file to this job's committed length: never do that
    // to a file a later job has written since.
    for (Job* other : order_) {
      if (other->seq > job.seq && other->output_key == job.output_key &&
          (other->output_started || !other->reused_from.empty())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "output: ", job.output_file, " has been written by job ", other->job_id,
            " since; this job's rows are in the file moved aside for it (", job.output_file,
            ".*.before-", other->job_id,
            "); resume would overwrite the newer output, so submit the job again instead"));
      }
    }
  }
  // Claims the job; its state stays terminal (not active) until it is ready,
  // so nothing leases or requeues its mini-batches in between.
  job.resuming = true;
  return absl::OkStatus();
}

absl::Status JobManager::Reopen(Job* job) {
  // A new run, before the store is read: a commit of the old run either
  // landed already (and is read below) or is dropped at commit time.
  const int64_t run = committer_.NewRun(job->seq);
  auto reset = store_->ResetFailedTasks(job->seq);
  absl::StatusOr<StoredJob> stored =
      reset.ok() ? store_->LoadJob(job->seq) : absl::StatusOr<StoredJob>(reset.status());
  absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> pending =
      stored.ok() ? store_->PendingTasks(job->seq) : stored.status();
  absl::Status status = pending.status();
  // Continue the same output file from its committed length.
  if (pending.ok() && !job->output_file.empty()) {
    status = committer_.Reopen(job->seq, job->output_file, *stored);
  }
  absl::MutexLock lock(&mu_);
  job->run = run;
  if (!status.ok()) {
    job->state = v1::FAILED;
    job->reason = SanitizeUtf8(absl::StrCat("resume failed: ", status.message()));
    return status;
  }
  job->state = v1::QUEUED;
  job->result_flushed = false;
  job->reason.clear();
  job->first_error.clear();
  job->first_error_log.clear();
  job->end_ms = 0;
  job->counts = stored->counts;
  job->leases.Reset(*pending);
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
      absl::StrCat("job resumed: ", *reset, " failed mini-batches reset, ", job->leases.pending(),
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
  return absl::OkStatus();
}

absl::StatusOr<v1::JobStatus> JobManager::Resume(const std::string& job_id) {
  Job* job;
  {
    absl::MutexLock lock(&mu_);
    auto found = JobLocked(job_id);
    if (!found.ok()) return found.status();
    job = *found;
    if (auto s = ClaimForResumeLocked(*job); !s.ok()) return s;
  }
  absl::Cleanup unclaim = [this, job] {
    absl::MutexLock lock(&mu_);
    job->resuming = false;
  };
  // The old lister was told to stop when the job ended.
  if (job->lister.joinable()) job->lister.join();
  const absl::Status status = Reopen(job);
  PersistState(job);
  NotifyWork();
  if (!status.ok()) return status;
  MaybeMakeGroups(job);
  spdlog::info("job resumed job={}", job_id);
  return GetJob(job_id);
}

}  // namespace prs::master
