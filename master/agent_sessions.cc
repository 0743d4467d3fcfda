// JobManager: agents' sessions. Register, heartbeat, leave, and loss: the
// leases of an agent that stopped or went silent go back to the queue.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "master/job_manager.h"
#include "spdlog/spdlog.h"

namespace prs::master {

absl::StatusOr<v1::RegisterAgentResponse> JobManager::RegisterAgent(
    const v1::RegisterAgentRequest& request, const std::string& principal) {
  v1::RegisterAgentResponse response;
  {
    absl::MutexLock lock(&mu_);
    auto agent = agents_.Register(request, principal, clock_->Now());
    if (!agent.ok()) return agent.status();
    const Agent& a = **agent;
    response.set_agent_id(a.agent_id);
    for (Job* job : order_) {
      if (job->active()) {
        EventLocked(*job, "INFO",
                    absl::StrCat("agent joined: agent=", SessionLabel(a.agent_id),
                                 " node=", a.node_id, " ip=", a.ip, " pid=", request.pid()));
      }
    }
  }
  response.set_heartbeat_interval_ms(
      static_cast<int32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  metrics_.agents_registered.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("agent registered node={} ip={} identity={}", request.node_id(), request.ip(),
               principal);
  return response;
}

void JobManager::ReclaimLeasesLocked(const Agent& agent, v1::AttemptStatus status,
                                     const std::string& error, const std::string& why,
                                     std::vector<JobOutcome>& outcomes) {
  for (Job* job : order_) {
    if (!job->active()) continue;
    const auto taken = job->leases.TakeAllOf(agent.agent_id);
    for (const auto& [task_id, lease] : taken) {
      v1::TaskResult r;
      r.set_status(status);
      r.set_error(error);
      outcomes.push_back(
          MakeOutcomeLocked(*job, task_id, lease, agent.agent_id, agent.node_id, std::move(r)));
    }
    if (!taken.empty() || job->agents.count(agent.agent_id) > 0) {
      EventLocked(
          *job, status == v1::RELEASED ? "INFO" : "WARNING",
          absl::StrCat(why, "; ", taken.size(), " leased mini-batches go back to the queue"));
    }
  }
}

void JobManager::UnregisterAgent(const std::string& agent_id) {
  std::vector<JobOutcome> released;
  {
    absl::MutexLock lock(&mu_);
    Agent* agent = agents_.Find(agent_id);
    if (agent == nullptr) return;
    ReclaimLeasesLocked(
        *agent, v1::RELEASED,
        absl::StrCat("agent ", SessionLabel(agent_id), " stopped before reporting it"),
        absl::StrCat("agent left: agent=", SessionLabel(agent_id), " node=", agent->node_id,
                     " stopped"),
        released);
    ReleaseAgentLocked(*agent);
    agents_.Remove(agent_id);
  }
  spdlog::info("agent left agent={}", SessionLabel(agent_id));
  if (!released.empty()) CommitOutcomes(std::move(released));
  NotifyWork();
}

void JobManager::ReclaimLostAgentsLocked(absl::Time now, std::vector<JobOutcome>& lost) {
  for (Agent& agent : agents_.TakeLost(now)) {
    const std::string silent = absl::FormatDuration(now - agent.last_seen);
    const std::string label = SessionLabel(agent.agent_id);
    spdlog::warn("agent lost agent={} silent_for={}", label, silent);
    metrics_.agents_lost.fetch_add(1, std::memory_order_relaxed);
    ReclaimLeasesLocked(
        agent, v1::AGENT_LOST,
        absl::StrCat("agent ", label, " on node ", agent.node_id, " stopped heartbeating"),
        absl::StrCat("agent lost: agent=", label, " node=", agent.node_id, " silent for ", silent),
        lost);
    ReleaseAgentLocked(agent);
  }
}

v1::ListAgentsResponse JobManager::ListAgents() {
  absl::MutexLock lock(&mu_);
  return agents_.List(clock_->Now());
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
  auto found = agents_.Touch(request.agent_id(), clock_->Now());
  if (!found.ok()) return found.status();
  Agent& agent = **found;
  agent.busy_workers = std::clamp(request.busy_workers(), 0, 1 << 20);
  agent.running.assign(request.running().begin(),
                       request.running().begin() + std::min(request.running_size(), 1024));
  v1::HeartbeatResponse response;
  // Leases granted long ago that the agent does not hold were lost on the
  // way (a PullTasks reply that never arrived): give them back.
  if (agent.leases > request.held_lease_ids_size()) {
    const std::set<std::string> held(request.held_lease_ids().begin(),
                                     request.held_lease_ids().end());
    const absl::Time cutoff = agent.last_seen - options_.unheld_lease_grace;
    for (Job* job : order_) {
      if (!job->active()) continue;
      for (const auto& [task_id, lease] : job->leases.TakeUnheld(agent.agent_id, held, cutoff)) {
        --agent.leases;
        ++job->version;
        if (!NoteUndeliveredLocked(
                *job, task_id, lease, agent.node_id,
                absl::StrCat("mini-batch ", task_id, " was leased to agent ",
                             SessionLabel(agent.agent_id), " and never reached it"))) {
          requeued = true;
        }
      }
    }
  }
  if (!request.job_id().empty()) {
    Job* job = FindJobLocked(request.job_id());
    // Only an ended job stops workers: an agent between assignments keeps its
    // workers (and their init() state) for when it is given work again.
    if (job == nullptr || !job->active()) response.add_stop_job_ids(request.job_id());
  }
  return response;
}

absl::StatusOr<std::string> JobManager::LogDirForAgent(const std::string& agent_id,
                                                       const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  if (auto found = agents_.Touch(agent_id, clock_->Now()); !found.ok()) return found.status();
  Job* job = FindJobLocked(job_id);
  // Not NOT_FOUND: that code tells an agent its session is gone.
  if (job == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' is not known to this master"));
  }
  if (job->served_by.count(agent_id) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("job '", job_id, "' was never assigned to this agent session"));
  }
  return job->log_dir;
}

absl::StatusOr<JobManager::SessionInfo> JobManager::Session(const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  const Agent* agent = agents_.Find(agent_id);
  if (agent == nullptr) {
    return absl::NotFoundError(absl::StrCat("agent session ", SessionLabel(agent_id),
                                            " is unknown or was declared lost; register again"));
  }
  return SessionInfo{agent->principal, agent->node_id};
}

void JobManager::LogsComplete(const std::string& agent_id, const std::string& job_id) {
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (job == nullptr) return;
    // An agent assigned the job again afterwards is waited for again
    // (AssignJobLocked erases its mark); a `complete` from its earlier stint
    // that arrives after that would wrongly count, a window of one RPC.
    job->logs_done.insert(agent_id);
    ++job->version;
  }
  NotifyEnd(job_id);
}

}  // namespace prs::master
