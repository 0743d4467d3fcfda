#ifndef PRS_MASTER_AGENT_REGISTRY_H_
#define PRS_MASTER_AGENT_REGISTRY_H_

// The live agent sessions: register, liveness, loss. Not thread-safe: the job
// manager guards it with its state lock (master/lock_order.h). No I/O.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prs/v1/agent_service.pb.h"
#include "prs/v1/job_service.pb.h"

namespace prs::master {

// One agent's session. A session id ("node#" and 128 random bits) is never
// reused and cannot be guessed, so a lost agent that comes back gets a new
// one, its old leases stay fenced, and no other process can act in its name.
struct Agent {
  std::string agent_id, node_id, hostname, ip;
  std::string principal;  // the identity that registered it (docs/security.md)
  int64_t pid = 0;
  absl::Time last_seen;
  std::string job_id;  // assigned job, empty when free
  int64_t leases = 0;
  bool ships_logs = true;                // false: writes into the master's tree itself (prs run)
  std::vector<std::string> gpus;         // as CUDA_VISIBLE_DEVICES names them
  int32_t busy_workers = 0;              // as its last heartbeat said
  std::vector<v1::RunningTask> running;  // the same
};

// A session id without its secret, for logs and reports: "node#tag".
std::string SessionLabel(const std::string& agent_id);

class AgentRegistry {
 public:
  // `agent_timeout` is named in the message that refuses a duplicate node id.
  explicit AgentRegistry(absl::Duration agent_timeout) : agent_timeout_(agent_timeout) {}

  // A new session of `principal`. INVALID_ARGUMENT without a node id;
  // ALREADY_EXISTS when another live agent (another pid or host) has the same
  // node id: two agents with one node id would write into the same log files;
  // PERMISSION_DENIED when the node id is a live session of another principal.
  absl::StatusOr<Agent*> Register(const v1::RegisterAgentRequest& request,
                                  const std::string& principal, absl::Time now);
  // The session with its last_seen refreshed; NOT_FOUND (register again) for
  // an unknown or lost one.
  absl::StatusOr<Agent*> Touch(const std::string& agent_id, absl::Time now);
  Agent* Find(const std::string& agent_id);
  const Agent* Find(const std::string& agent_id) const;
  // Ends a session.
  void Remove(const std::string& agent_id) { agents_.erase(agent_id); }
  // Ends and returns the sessions silent for longer than the timeout.
  std::vector<Agent> TakeLost(absl::Time now);

  // True when every live agent's node is in `nodes` (and there is one).
  bool AllNodesIn(const std::set<std::string>& nodes) const;
  // The node of a session, or the session id when it is gone.
  std::string NodeOf(const std::string& agent_id) const;
  v1::ListAgentsResponse List(absl::Time now) const;

 private:
  const absl::Duration agent_timeout_;
  std::map<std::string, Agent> agents_;  // by session id
};

}  // namespace prs::master

#endif  // PRS_MASTER_AGENT_REGISTRY_H_
