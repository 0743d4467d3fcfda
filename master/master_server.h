#ifndef PRS_MASTER_MASTER_SERVER_H_
#define PRS_MASTER_MASTER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "master/job_manager.h"

namespace prs::master {

struct MasterOptions {
  // host:port to listen on; port 0 picks a free port (see port()).
  std::string listen = "0.0.0.0:7600";
  JobManagerOptions manager;
  // Threads that run the blocking part of RPCs.
  int executor_threads = 4;
};

// The prs-master composition root: owns the JobManager, the gRPC server with
// JobService and AgentService (callback API, health service, reflection), the
// long-poll waiters and the ticker thread. Thread-safe.
class MasterServer {
 public:
  // Starts serving. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MasterServer>> Create(const MasterOptions& options,
                                                              Clock* clock = RealClock::Get());
  ~MasterServer();  // Shuts down if still serving.

  int port() const;
  // Blocks until Shutdown() is called from another thread.
  void Wait();
  // Stops accepting calls, answers held long-polls, stops the ticker.
  void Shutdown();

  JobManager& manager();

 private:
  class Impl;
  explicit MasterServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace prs::master

#endif  // PRS_MASTER_MASTER_SERVER_H_
