#ifndef PRS_MASTER_RPC_ACCESS_H_
#define PRS_MASTER_RPC_ACCESS_H_

// Who may call each RPC of the master, and how large its request may be: the
// one table, checked in one place (MasterServer's Authorize). Whose job it is
// is checked after it (CheckJob, CheckSession). docs/security.md, docs/limits.md.

#include <cstdint>
#include <initializer_list>

#include "common/message_limits.h"
#include "master/auth.h"

namespace prs::master {

constexpr uint32_t Roles(std::initializer_list<Role> roles) {
  uint32_t mask = 0;
  for (Role r : roles) mask |= static_cast<uint32_t>(r);
  return mask;
}

// An RPC's callers and its request's bound (common/message_limits.h).
struct Access {
  const char* rpc;
  uint32_t roles;             // any of these
  const char* needs;          // the same, for a person
  int64_t max_request_bytes;  // the request's bound
};
constexpr uint32_t kClients = Roles({Role::kSubmit, Role::kRead, Role::kAdmin});
constexpr uint32_t kManagers = Roles({Role::kSubmit, Role::kAdmin});
constexpr uint32_t kAgents = Roles({Role::kAgent});
constexpr int64_t kControl = kMaxControlRequestBytes;
constexpr Access kSubmitJob{"SubmitJob", kManagers, "submit or admin", kMaxSubmitRequestBytes};
constexpr Access kGetJob{"GetJob", kClients, "submit, read or admin", kControl};
constexpr Access kListJobs{"ListJobs", kClients, "submit, read or admin", kControl};
constexpr Access kWatchJob{"WatchJob", kClients, "submit, read or admin", kControl};
constexpr Access kListLogs{"ListLogs", kClients, "submit, read or admin", kControl};
constexpr Access kReadLog{"ReadLog", kClients, "submit, read or admin", kControl};
constexpr Access kCancelJob{"CancelJob", kManagers, "submit or admin", kControl};
constexpr Access kResumeJob{"ResumeJob", kManagers, "submit or admin", kControl};
constexpr Access kListAgents{"ListAgents", Roles({Role::kRead, Role::kAdmin}), "read or admin",
                             kControl};
constexpr Access kRegisterAgent{"RegisterAgent", kAgents, "agent", kControl};
constexpr Access kUnregisterAgent{"UnregisterAgent", kAgents, "agent", kControl};
constexpr Access kHeartbeat{"Heartbeat", kAgents, "agent", kMaxHeartbeatRequestBytes};
constexpr Access kPullTasks{"PullTasks", kAgents, "agent", kControl};
constexpr Access kReportResults{"ReportResults", kAgents, "agent", kMaxReportRequestBytes};
constexpr Access kShipLogs{"ShipLogs", kAgents, "agent", kMaxShipLogsRequestBytes};
constexpr Access kGetJobBundle{"GetJobBundle", kAgents, "agent", kControl};

}  // namespace prs::master

#endif  // PRS_MASTER_RPC_ACCESS_H_
