// JobManager: results reach disk and the job's state. A report is accepted
// only from the current lease (fencing); its outcome (master/attempt_outcome.h)
// is committed with its rows (master/output_committer.h), then applied in
// memory.
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "master/job_manager.h"
#include "master/log_tree_writer.h"
#include "spdlog/spdlog.h"

namespace prs::master {

absl::StatusOr<v1::ReportResultsResponse> JobManager::Report(
    const v1::ReportResultsRequest& request) {
  v1::ReportResultsResponse response;
  std::vector<JobOutcome> outcomes;
  {
    absl::MutexLock lock(&mu_);
    auto found = agents_.Touch(request.agent_id(), clock_->Now());
    if (!found.ok()) return found.status();
    Agent& agent = **found;
    for (const auto& r : request.results()) {
      Job* job = FindJobLocked(r.job_id());
      // Fencing: only the holder of the current lease may report, once.
      std::optional<Lease> lease;
      if (job != nullptr) lease = job->leases.Take(r.task_id(), r.lease_id(), &agent.agent_id);
      if (lease) {
        --agent.leases;
        metrics_.results_accepted.fetch_add(1, std::memory_order_relaxed);
        metrics_.pull_to_report_seconds.Observe(
            absl::ToDoubleSeconds(agent.last_seen - lease->granted));
        outcomes.push_back(
            MakeOutcomeLocked(*job, r.task_id(), *lease, agent.agent_id, agent.node_id, r));
      } else {
        metrics_.results_rejected.fetch_add(1, std::memory_order_relaxed);
      }
      response.add_accepted(lease.has_value());
    }
  }
  if (!outcomes.empty()) CommitOutcomes(std::move(outcomes));
  return response;
}

JobManager::JobOutcome JobManager::MakeOutcomeLocked(Job& job, int64_t task_id, const Lease& lease,
                                                     const std::string& agent_id,
                                                     const std::string& node_id,
                                                     v1::TaskResult result, bool last_try) {
  OutcomeContext context;
  context.spec = &job.spec;
  context.groups_done = job.groups_done;
  context.next_task_id = &job.next_task_id;
  return JobOutcome{
      &job, DecideOutcome(context, task_id, lease, agent_id, node_id, std::move(result), last_try)};
}

void JobManager::CommitOutcomes(std::vector<JobOutcome> outcomes) {
  // Group by job, keeping order.
  std::map<Job*, std::vector<const Outcome*>> by_job;
  for (auto& o : outcomes) by_job[o.job].push_back(&o.outcome);
  std::vector<Job*> changed;
  for (auto& [job, list] : by_job) {
    const size_t count = list.size();
    const absl::Time start = absl::Now();
    const OutputCommitter::Result result = committer_.Commit(
        job->seq, job->job_id, job->spec.append_row_format().header(), std::move(list));
    metrics_.commit_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - start));
    if (result.stale) continue;
    if (result.error.empty() && result.status.ok()) {
      metrics_.mini_batches_committed.fetch_add(count, std::memory_order_relaxed);
    }
    absl::MutexLock lock(&mu_);
    changed.push_back(job);
    if (result.appended) job->output_started = true;
    if (!result.note.empty()) NoteLocked(*job, result.note);
    if (!result.error.empty() || !result.status.ok()) {
      ApplyFailedCommitLocked(*job, result);
      continue;
    }
    ApplyCountsLocked(*job, result);
    ApplyAttemptsLocked(*job, result);
    CheckJobLocked(*job);
    ++job->version;
  }
  for (Job* job : changed) PersistState(job);
  for (Job* job : changed) MaybeMakeGroups(job);
  NotifyWork();
}

void JobManager::ApplyFailedCommitLocked(Job& job, const OutputCommitter::Result& result) {
  if (!result.error.empty()) {
    // Writing on would lose rows: the job ends, its mini-batches still
    // PENDING in the store.
    EndJobLocked(job, v1::FAILED, result.error);
    return;
  }
  // Nothing reached disk: run these mini-batches again.
  spdlog::error("commit failed job={} error={}", job.job_id, std::string(result.status.message()));
  EventLocked(job, "ERROR",
              absl::StrCat("commit failed, mini-batches requeued: ", result.status.message()));
  if (!job.active()) return;
  for (const Outcome* o : result.committed) {
    job.leases.Enqueue(o->commit.attempt.task_id, o->commit.attempt.attempt - 1);
  }
}

void JobManager::ApplyCountsLocked(Job& job, const OutputCommitter::Result& result) {
  const CountDeltas& d = result.batch.deltas;
  const std::vector<NewTask>& new_tasks = result.batch.new_tasks;
  auto& c = job.counts;
  job.last_progress = clock_->Now();
  c.set_mini_batches_processed(c.mini_batches_processed() + d.processed);
  c.set_mini_batches_failed(c.mini_batches_failed() + d.failed);
  c.set_items_succeeded(c.items_succeeded() + d.items_succeeded);
  c.set_items_failed(c.items_failed() + d.items_failed);
  c.set_rows_written(c.rows_written() + d.rows_written);
  c.set_retries(c.retries() + d.retries);
  int64_t new_items = 0;
  for (const auto& t : new_tasks) new_items += t.item_count;
  c.set_items_total(c.items_total() + d.items_total + new_items);
  c.set_mini_batches_created(c.mini_batches_created() + static_cast<int64_t>(new_tasks.size()));
  for (const auto& t : new_tasks) {
    if (t.kind != TaskKind::kPlan) continue;
    // The rest of a file planned in chunks: first in line, so its ranges
    // keep coming while the first ones run.
    ++job.plans_pending;
    c.set_plans(c.plans() + 1);
    if (job.active()) job.leases.EnqueueFront(t.task_id, 0);
  }
  if (job.active()) {
    for (const auto& t : new_tasks) {
      if (t.kind == TaskKind::kRun) job.leases.Enqueue(t.task_id, 0);
    }
  }
  for (const Outcome* o : result.committed) {
    if (o->plan_ended) --job.plans_pending;
  }
  if (!new_tasks.empty()) {
    EventLocked(
        job, "DEBUG",
        absl::StrCat(new_tasks.size(), " mini-batches made from plans, ", new_items, " records"));
  }
}

void JobManager::ApplyAttemptsLocked(Job& job, const OutputCommitter::Result& result) {
  std::string load_error, init_error;
  for (const Outcome* o : result.committed) {
    const auto& a = o->commit.attempt;
    const auto& r = a.result;
    if (o->commit.new_state != TaskState::kPending) job.leases.ForgetUndelivered(a.task_id);
    // A resume or restart since this lease was granted reloaded the queue:
    // the mini-batch is in it already.
    const bool current_run = o->run == job.run;
    if (r.status() == v1::RELEASED) {
      // Given back unrun (an agent stopping, or switching jobs with more
      // than the new job's queue takes): leased again first, nothing to report.
      if (job.active() && current_run) job.leases.EnqueueFront(a.task_id, o->commit.tries);
      continue;
    }
    job.report_rows.push_back(ReportRow(a, o->item_count));
    if (!r.error().empty()) NoteError(job, a, clock_->Now());
    if (!r.error().empty() && job.first_error.empty()) {
      job.first_error = absl::StrCat(r.error(), " (mini-batch ", a.task_id, ", node ", a.node_id,
                                     r.process_name().empty() ? "" : ", ", r.process_name(), ")");
      if (!r.error_detail().empty() && !r.process_name().empty()) {
        job.first_error_log = absl::StrCat("user/error/", a.node_id, "/", r.process_name(), ".txt");
        absl::StrAppend(&job.first_error,
                        r.status() == v1::RUN_DONE ? "; inputs in" : "; traceback in", " logs/",
                        job.first_error_log);
      }
    }
    if (o->commit.new_state == TaskState::kFailed) {
      EventLocked(job, "WARNING",
                  absl::StrCat("mini-batch ", a.task_id, " failed after ", a.attempt,
                               " tries: ", v1::AttemptStatus_Name(r.status()), " ", r.error()));
    } else if (o->commit.new_state == TaskState::kPending && job.active() && current_run) {
      job.leases.Enqueue(a.task_id, o->commit.tries);
      if (o->counts_try) {
        EventLocked(job, "INFO",
                    absl::StrCat("mini-batch ", a.task_id, " try ", a.attempt, " failed (",
                                 v1::AttemptStatus_Name(r.status()), "): ", r.error(),
                                 "; it will be tried again"));
      }
    }
    if (o->load_failed && load_error.empty()) load_error = r.error();
    if (o->init_failed) {
      if (init_error.empty()) init_error = r.error();
      int& n = job.init_failures_by_node[a.node_id];
      if (++n >= 3 * job.spec.process_count_per_node() &&
          job.gave_up_nodes.insert(a.node_id).second) {
        EventLocked(job, "ERROR",
                    absl::StrCat("node ", a.node_id, " gave up after ", n,
                                 " init() failures: ", r.error()));
        Agent* agent = agents_.Find(a.agent_id);
        if (agent != nullptr && agent->job_id == job.job_id) ReleaseAgentLocked(*agent);
      }
    }
  }
  if (!load_error.empty()) {
    EndJobLocked(job, v1::FAILED, absl::StrCat("workers cannot start: ", load_error));
  } else if (!init_error.empty() && agents_.AllNodesIn(job.gave_up_nodes)) {
    EndJobLocked(job, v1::FAILED,
                 absl::StrCat("init() failed on every node: ", init_error,
                              "; see logs/user/stderr and logs/user/error"));
  }
}

}  // namespace prs::master
