#ifndef PRS_AGENT_MASTER_CLIENT_H_
#define PRS_AGENT_MASTER_CLIENT_H_

// The agent's side of the AgentService: the channel and stub (behind
// MasterTransport), the session with the master (agent id, registering again
// when the master forgets it), retry backoff, and the one conversion of every
// RPC's grpc::Status into absl::Status. Nothing else in the agent sees gRPC.

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tls_files.h"
#include "prs/v1/agent_service.pb.h"

namespace prs::agent {

// Exponential backoff with full jitter: the n-th delay is uniform in
// [cap/2, cap] with cap = min(5 s, 100 ms * 2^n), n counting from 0 and
// capped at 6. Not thread-safe: one per retry loop. Seeded at the first
// delay, from the seed given or std::random_device: a loop made per call
// (one per report) costs nothing while no call fails.
class Backoff {
 public:
  Backoff() = default;
  explicit Backoff(uint32_t seed) : seed_(seed) {}
  absl::Duration Next();
  void Reset() { attempt_ = 0; }

 private:
  int attempt_ = 0;
  std::optional<uint32_t> seed_;
  std::optional<std::mt19937> rng_;
};

// The AgentService calls, with their status already an absl::Status. The
// gRPC implementation (MakeGrpcTransport) is the only place that converts
// (prs::FromGrpcStatus); tests give MasterClient a fake. Thread-safe.
class MasterTransport {
 public:
  virtual ~MasterTransport() = default;
  virtual absl::StatusOr<v1::RegisterAgentResponse> RegisterAgent(
      const v1::RegisterAgentRequest& request, absl::Duration timeout) = 0;
  virtual absl::Status UnregisterAgent(const v1::UnregisterAgentRequest& request,
                                       absl::Duration timeout) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request,
                                                          absl::Duration timeout) = 0;
  // CANCELLED, without calling the master, once CancelPulls() was called; a
  // call in flight then ends at once with CANCELLED.
  virtual absl::StatusOr<v1::PullTasksResponse> PullTasks(const v1::PullTasksRequest& request,
                                                          absl::Duration timeout) = 0;
  virtual void CancelPulls() = 0;
  virtual absl::StatusOr<v1::ReportResultsResponse> ReportResults(
      const v1::ReportResultsRequest& request, absl::Duration timeout) = 0;
  virtual absl::StatusOr<v1::GetJobBundleResponse> GetJobBundle(
      const v1::GetJobBundleRequest& request, absl::Duration timeout) = 0;
  virtual absl::StatusOr<v1::ShipLogsResponse> ShipLogs(const v1::ShipLogsRequest& request,
                                                        absl::Duration timeout) = 0;
};

// A transport over one gRPC channel to `address` (TLS when `tls.ca` is set),
// sending `token` with every call, which reconnects quickly after a master
// restart. INVALID_ARGUMENT naming a TLS file that cannot be read.
absl::StatusOr<std::unique_ptr<MasterTransport>> MakeGrpcTransport(const std::string& address,
                                                                   const TlsFiles& tls,
                                                                   const std::string& token);

struct MasterClientOptions {
  std::string master_address;  // for logs
  std::string node_id;
  bool ships_logs = true;
  // Called when the master no longer knows the session `agent_id` (it
  // restarted, or declared this agent lost): the session's leases are void.
  // Called with session_mu_ held, so that no new session registers before it
  // returns; it must not call the client. May be null.
  std::function<void(const std::string& agent_id)> on_session_lost;
  // The GPUs this node's workers may use, for `prs nodes`.
  std::vector<std::string> gpus;
};

// The agent's session with the master, and the calls made in it. The calls
// that carry a session (Heartbeat, PullTasks, ReportResults, ShipLogs) drop it
// when the master answers NOT_FOUND, so that the next EnsureSession()
// registers again; callers branch on the returned absl::StatusCode only.
// Thread-safe.
class MasterClient {
 public:
  MasterClient(MasterClientOptions options, std::unique_ptr<MasterTransport> transport);

  // The current session id, registering (retrying with backoff) when there is
  // none. Empty only once Stop() was called.
  std::string EnsureSession();
  // The current session id; empty when there is none. Never calls the master.
  std::string CurrentSession() const;
  // Ends `agent_id` if it is the current session, and tells on_session_lost.
  void DropSession(const std::string& agent_id);
  // Tells the master this session ends, so that it does not wait for
  // agent_timeout to hand the node's work to others. Best effort.
  void Unregister();
  // The interval the master asked for at registration (2 s before).
  absl::Duration heartbeat_interval() const;

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request,
                                                  absl::Duration timeout);
  // Held by the master up to request.wait_ms(). CANCELLED once stopping.
  absl::StatusOr<v1::PullTasksResponse> PullTasks(const v1::PullTasksRequest& request);
  absl::StatusOr<v1::ReportResultsResponse> ReportResults(const v1::ReportResultsRequest& request);
  // Does not drop the session on NOT_FOUND: the job may be what is unknown.
  absl::StatusOr<v1::GetJobBundleResponse> GetJobBundle(const v1::GetJobBundleRequest& request);
  absl::StatusOr<v1::ShipLogsResponse> ShipLogs(const v1::ShipLogsRequest& request);

  // Ends EnsureSession's retries and a PullTasks in flight, and wakes
  // SleepUnlessStopping(). Other calls still go out (the last reports).
  void Stop();
  bool stopping() const;
  // Sleeps `d`, waking early when Stop() is called.
  void SleepUnlessStopping(absl::Duration d);

 private:
  // Drops the session `agent_id` when `status` is NOT_FOUND; returns status.
  absl::Status CheckSession(const std::string& agent_id, absl::Status status);
  absl::StatusOr<std::string> Register();

  const MasterClientOptions options_;
  const std::unique_ptr<MasterTransport> transport_;
  // Held while registering, so that one thread registers and the others wait
  // for its session. Taken before mu_.
  absl::Mutex session_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string agent_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
};

}  // namespace prs::agent

#endif  // PRS_AGENT_MASTER_CLIENT_H_
