#include "master/agent_registry.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "master/auth.h"

namespace prs::master {

absl::StatusOr<Agent*> AgentRegistry::Register(const v1::RegisterAgentRequest& request,
                                               const std::string& principal, absl::Time now) {
  if (request.node_id().empty()) {
    return absl::InvalidArgumentError("RegisterAgent: node_id is empty");
  }
  // A node id names folders of every job's log tree and goes into its
  // records: host-name characters only, one path part.
  const std::string& node = request.node_id();
  const bool plain = std::all_of(node.begin(), node.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (node.size() > 128 || node == "." || node == ".." || !plain) {
    return absl::InvalidArgumentError(
        absl::StrCat("RegisterAgent: node_id '", Printable(node, 128),
                     "' must be at most 128 letters, digits, '.', '_' or '-' (not . or ..), "
                     "e.g. node-a"));
  }
  for (const std::string* text : {&request.hostname(), &request.ip()}) {
    if (text->size() > 256 || Printable(*text, 256) != *text) {
      return absl::InvalidArgumentError("RegisterAgent: hostname and ip must be printable text");
    }
  }
  if (request.gpus_size() > 1024) {
    return absl::InvalidArgumentError("RegisterAgent: at most 1024 gpus");
  }
  for (const std::string& gpu : request.gpus()) {
    const bool device =
        !gpu.empty() && gpu.size() <= 128 && std::all_of(gpu.begin(), gpu.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':' ||
                 c == '/' || c == '.';
        });
    if (!device) {
      return absl::InvalidArgumentError(
          absl::StrCat("RegisterAgent: gpu '", Printable(gpu, 128),
                       "' is not a device name (a number or a UUID, as nvidia-smi -L shows)"));
    }
  }
  for (const auto& [id, other] : agents_) {
    if (other.node_id == request.node_id() && other.principal != principal) {
      return absl::PermissionDeniedError(
          absl::StrCat("node id '", request.node_id(), "' is a live agent of another identity"));
    }
    if (other.node_id == request.node_id() &&
        (other.hostname != request.hostname() || other.pid != request.pid())) {
      return absl::AlreadyExistsError(absl::StrCat(
          "node id '", request.node_id(), "' is used by a live agent (pid ", other.pid, " on ",
          other.hostname, "); give each agent its own --node-id (or wait ",
          absl::FormatDuration(agent_timeout_), " for a dead one to be declared lost)"));
    }
  }
  Agent agent;
  agent.pid = request.pid();
  // "node#tag.secret": the label ("node#tag", 32 random bits) names the
  // session in logs; the secret (128 random bits) is what makes it the agent's.
  agent.agent_id = absl::StrCat(request.node_id(), "#", RandomId().substr(0, 8), ".", RandomId());
  agent.principal = principal;
  agent.ships_logs = request.ships_logs();
  agent.gpus.assign(request.gpus().begin(), request.gpus().end());
  agent.node_id = request.node_id();
  agent.hostname = request.hostname();
  agent.ip = request.ip();
  agent.last_seen = now;
  Agent& stored = agents_[agent.agent_id];
  stored = std::move(agent);
  return &stored;
}

std::string SessionLabel(const std::string& agent_id) {
  const size_t dot = agent_id.rfind('.');
  return dot == std::string::npos ? agent_id : agent_id.substr(0, dot);
}

absl::StatusOr<Agent*> AgentRegistry::Touch(const std::string& agent_id, absl::Time now) {
  Agent* agent = Find(agent_id);
  if (agent == nullptr) {
    return absl::NotFoundError(absl::StrCat("agent session ", SessionLabel(agent_id),
                                            " is unknown or was declared lost; register again"));
  }
  agent->last_seen = now;
  return agent;
}

Agent* AgentRegistry::Find(const std::string& agent_id) {
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? nullptr : &it->second;
}

const Agent* AgentRegistry::Find(const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? nullptr : &it->second;
}

std::vector<Agent> AgentRegistry::TakeLost(absl::Time now) {
  std::vector<Agent> lost;
  for (auto it = agents_.begin(); it != agents_.end();) {
    if (now - it->second.last_seen <= agent_timeout_) {
      ++it;
      continue;
    }
    lost.push_back(std::move(it->second));
    it = agents_.erase(it);
  }
  return lost;
}

bool AgentRegistry::AllNodesIn(const std::set<std::string>& nodes) const {
  if (nodes.empty()) return false;
  for (const auto& [id, agent] : agents_) {
    if (nodes.count(agent.node_id) == 0) return false;
  }
  return true;
}

std::string AgentRegistry::NodeOf(const std::string& agent_id) const {
  const Agent* agent = Find(agent_id);
  return agent != nullptr ? agent->node_id : agent_id;
}

v1::ListAgentsResponse AgentRegistry::List(absl::Time now) const {
  std::vector<const Agent*> sorted;
  for (const auto& [id, agent] : agents_) sorted.push_back(&agent);
  std::sort(sorted.begin(), sorted.end(),
            [](const Agent* a, const Agent* b) { return a->node_id < b->node_id; });
  v1::ListAgentsResponse response;
  for (const Agent* a : sorted) {
    auto* info = response.add_agents();
    info->set_node_id(a->node_id);
    info->set_hostname(a->hostname);
    info->set_ip(a->ip);
    info->set_pid(a->pid);
    info->set_last_seen_ms_ago(absl::ToInt64Milliseconds(now - a->last_seen));
    info->set_job_id(a->job_id);
    info->set_leases(a->leases);
    for (const std::string& gpu : a->gpus) info->add_gpus(gpu);
    info->set_busy_workers(a->busy_workers);
    for (const auto& r : a->running) *info->add_running() = r;
  }
  return response;
}

}  // namespace prs::master
