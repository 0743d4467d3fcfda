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

// One agent's session. A session id ("node#epoch.n") is never reused, so a
// lost agent that comes back gets a new one and its old leases stay fenced.
struct Agent {
  std::string agent_id, node_id, hostname, ip;
  int64_t pid = 0;
  absl::Time last_seen;
  std::string job_id;  // assigned job, empty when free
  int64_t leases = 0;
  bool ships_logs = true;  // false: writes into the master's tree itself (prs run)
};

class AgentRegistry {
 public:
  // `epoch` (the store's) makes session ids unique across master restarts;
  // `agent_timeout` is named in the message that refuses a duplicate node id.
  AgentRegistry(int64_t epoch, absl::Duration agent_timeout)
      : epoch_(epoch), agent_timeout_(agent_timeout) {}

  // A new session. INVALID_ARGUMENT without a node id; ALREADY_EXISTS when
  // another live agent (another pid or host) has the same node id: two agents
  // with one node id would write into the same log files.
  absl::StatusOr<Agent*> Register(const v1::RegisterAgentRequest& request, absl::Time now);
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
  const int64_t epoch_;
  const absl::Duration agent_timeout_;
  int64_t next_ = 0;
  std::map<std::string, Agent> agents_;  // by session id
};

}  // namespace prs::master

#endif  // PRS_MASTER_AGENT_REGISTRY_H_
