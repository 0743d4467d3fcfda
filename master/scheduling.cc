// JobManager: which agent works on which job, and which mini-batches it gets
// (PullTasks); mini-batches that cannot be delivered.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/tabular_descriptor.h"
#include "common/text.h"
#include "master/auth.h"
#include "master/job_manager.h"
#include "spdlog/spdlog.h"

namespace prs::master {
namespace {

// A lease that did not reach its agent this many times counts a try each time
// after that: something about the mini-batch keeps it from being delivered.
constexpr int kMaxUndelivered = 3;

// The first input of a mini-batch, for an error message.
std::string FirstInput(const StoredTask& task) {
  return Printable(task.items.empty() ? "" : DescribeItem(task.items[0]), 300);
}

}  // namespace

// The leases one PullTasks granted, as read from the store.
struct JobManager::PullRead {
  v1::PullTasksResponse response;
  std::vector<StoredTask> stored;                           // by reply position
  std::vector<std::pair<int64_t, std::string>> unreadable;  // task, why
  std::vector<int64_t> later;                               // over this reply's budget
  struct TooLarge {
    int64_t task_id;
    StoredTask task;
    std::string why;
  };
  std::vector<TooLarge> too_large;
};

Job* JobManager::AssignJobLocked(Agent& agent) {
  Job* job = agent.job_id.empty() ? nullptr : FindJobLocked(agent.job_id);
  if (job != nullptr && !job->active()) {
    ReleaseAgentLocked(agent);
    job = nullptr;
  }
  // An agent whose job has no queued work left and who holds none of it is
  // free to help the next job.
  if (job != nullptr && !job->leases.has_pending() && job->counts.listing_done() &&
      agent.leases == 0) {
    ReleaseAgentLocked(agent);
    job = nullptr;
  }
  if (job != nullptr) return job;
  for (Job* j : order_) {
    if (!j->active() || static_cast<int32_t>(j->agents.size()) >= j->spec.node_count()) continue;
    if (!j->leases.has_pending() && j->counts.listing_done()) continue;
    if (j->gave_up_nodes.count(agent.node_id) > 0) continue;
    agent.job_id = j->job_id;
    j->agents.insert(agent.agent_id);
    j->served_by.insert(agent.agent_id);
    j->logs_done.erase(agent.agent_id);  // assigned again: its logs grow again
    EventLocked(*j, "INFO",
                absl::StrCat("agent assigned: agent=", SessionLabel(agent.agent_id),
                             " node=", agent.node_id, " agents=", j->agents.size(), "/",
                             j->spec.node_count()));
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
  std::vector<LeaseTable::Granted> granted;
  Job* job;
  bool started = false;
  {
    absl::MutexLock lock(&mu_);
    auto found = agents_.Touch(request.agent_id(), clock_->Now());
    if (!found.ok()) return found.status();
    Agent& agent = **found;
    if (!request.job_id().empty()) {
      // The agent's workers run a job that ended: it stops them first.
      const Job* running = FindJobLocked(request.job_id());
      if (running == nullptr || !running->active()) {
        v1::PullTasksResponse stop;
        stop.add_stop_job_ids(request.job_id());
        return stop;
      }
    }
    job = AssignJobLocked(agent);
    if (job == nullptr) return v1::PullTasksResponse();
    granted = job->leases.Grant(agent.agent_id, std::max(1, request.max_tasks()), agent.last_seen,
                                job->run, RandomId);
    agent.leases += static_cast<int64_t>(granted.size());
    metrics_.mini_batches_dispatched.fetch_add(granted.size(), std::memory_order_relaxed);
    if (!granted.empty()) {
      // An agent that works on the job (again) is waited for at its end.
      job->logs_done.erase(agent.agent_id);
      if (job->state == v1::QUEUED) {
        job->state = v1::RUNNING;
        job->start_ms = NowMs();
        job->last_progress = clock_->Now();
        EventLocked(*job, "INFO", "FIRST_TASK_SCHEDULED: job is RUNNING");
        started = true;
      }
      ++job->version;
    }
  }
  if (started) PersistState(job);
  // Items are read outside the lock: they live in the store, not in memory.
  PullRead read = ReadGranted(job, granted);
  std::vector<Undeliverable> failed;
  {
    absl::MutexLock lock(&mu_);
    SettleGranted(job, granted, read, failed);
  }
  if (!failed.empty()) FailUndeliverable(std::move(failed));
  return std::move(read.response);
}

JobManager::PullRead JobManager::ReadGranted(Job* job,
                                             const std::vector<LeaseTable::Granted>& granted) {
  PullRead read;
  size_t reply_bytes = 0;
  for (const auto& g : granted) {
    auto task = store_->GetTask(job->seq, g.task_id);
    if (!task.ok()) {
      spdlog::error("reading mini-batch failed job={} task={} error={}", job->job_id, g.task_id,
                    std::string(task.status().message()));
      read.unreadable.emplace_back(
          g.task_id,
          absl::StrCat("mini-batch ", g.task_id,
                       " cannot be read from the state database: ", task.status().message()));
      continue;
    }
    size_t task_bytes = 64;
    for (const auto& item : task->items) task_bytes += item.size() + 8;
    if (task_bytes > options_.max_task_bytes) {
      std::string why = absl::StrCat("mini-batch ", g.task_id, " holds ", task_bytes, " bytes of ",
                                     task->items.size(), " inputs, more than one message carries (",
                                     options_.max_task_bytes, "); first input: ", FirstInput(*task),
                                     "; use a smaller mini_batch_size");
      read.too_large.push_back({g.task_id, *std::move(task), std::move(why)});
      continue;
    }
    if (read.response.tasks_size() > 0 &&
        reply_bytes + task_bytes > options_.max_pull_reply_bytes) {
      read.later.push_back(g.task_id);  // the next pull takes it
      continue;
    }
    reply_bytes += task_bytes;
    v1::Task* t = read.response.add_tasks();
    t->set_job_id(job->job_id);
    t->set_task_id(g.task_id);
    t->set_lease_id(g.lease.lease_id);
    t->set_attempt(g.lease.attempt);
    for (const auto& item : task->items) t->add_items(item);
    read.stored.push_back(*std::move(task));
  }
  return read;
}

void JobManager::SettleGranted(Job* job, const std::vector<LeaseTable::Granted>& granted,
                               PullRead& read, std::vector<Undeliverable>& failed) {
  for (int i = 0; i < read.response.tasks_size(); ++i) {
    const v1::Task& t = read.response.tasks(i);
    Lease* lease = job->leases.Find(t.task_id(), t.lease_id());
    if (lease == nullptr) continue;
    StoredTask& task = read.stored[i];
    lease->item_count = task.item_count;
    lease->kind = task.kind;
    if (task.kind == TaskKind::kPlan && !task.items.empty()) {
      lease->plan_descriptor = std::move(task.items[0]);
    }
  }
  // Takes back a lease that is not in the reply; nullopt when it is gone. The
  // lock was let go meanwhile, so a task may be another agent's lease by now
  // (its agent unregistered and it went to another), which is not ours to
  // take back: only the lease granted above is.
  absl::flat_hash_map<int64_t, std::string> granted_lease;
  for (const auto& g : granted) granted_lease[g.task_id] = g.lease.lease_id;
  const auto take_back = [&](int64_t task_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::optional<std::pair<Lease, std::string>> taken;
    std::optional<Lease> lease = job->leases.Take(task_id, granted_lease[task_id]);
    if (!lease) return taken;
    std::string node_id;
    if (Agent* agent = agents_.Find(lease->agent_id)) {
      --agent->leases;
      node_id = agent->node_id;
    }
    taken.emplace(*std::move(lease), node_id);
    return taken;
  };
  for (int64_t task_id : read.later) {
    if (auto lease = take_back(task_id))
      job->leases.EnqueueFront(task_id, lease->first.attempt - 1);
  }
  for (const auto& [task_id, why] : read.unreadable) {
    if (auto lease = take_back(task_id)) {
      lease->first.item_count = -1;  // unknown: fails as one item
      NoteUndeliveredLocked(*job, task_id, lease->first, lease->second, why);
    }
  }
  for (auto& t : read.too_large) {
    auto lease = take_back(t.task_id);
    if (!lease) continue;
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
  // NoteUndeliveredLocked gives up on some: commit those here too.
  for (auto& u : undeliverable_) failed.push_back(std::move(u));
  undeliverable_.clear();
}

bool JobManager::NoteUndeliveredLocked(Job& job, int64_t task_id, const Lease& lease,
                                       const std::string& node_id, const std::string& why) {
  const int times = job.leases.NoteUndelivered(task_id);
  if (times < kMaxUndelivered) {
    EventLocked(job, "WARNING", absl::StrCat(why, "; back to the queue"));
    job.leases.EnqueueFront(task_id, lease.attempt - 1);
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
      absl::StrAppend(&u.error, "; first input: ", FirstInput(*task));
    }
  }
  std::vector<JobOutcome> outcomes;
  {
    absl::MutexLock lock(&mu_);
    for (auto& u : tasks) {
      if (!u.job->active()) continue;
      v1::TaskResult r;
      r.set_status(v1::NOT_DELIVERED);
      r.set_error(SanitizeUtf8(u.error));
      EventLocked(*u.job, "ERROR", u.error);
      // The session may be gone by now.
      outcomes.push_back(MakeOutcomeLocked(*u.job, u.task_id, u.lease, u.lease.agent_id, u.node_id,
                                           std::move(r), u.final));
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
    auto found = agents_.Touch(request.agent_id(), clock_->Now());
    if (!found.ok()) return found.status();
    auto job_found = JobLocked(request.job_id());
    if (!job_found.ok()) return job_found.status();
    Job* job = *job_found;
    // A job's code goes only to the sessions it was given to.
    if (job->served_by.count(request.agent_id()) == 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("job '", request.job_id(), "' was never assigned to this agent session"));
    }
    seq = job->seq;
    *response.mutable_spec() = job->spec;
  }
  auto snapshot = store_->GetSnapshot(seq);
  if (!snapshot.ok()) return snapshot.status();
  *response.mutable_snapshot() = *std::move(snapshot);
  return response;
}

}  // namespace prs::master
