#ifndef PRS_MASTER_MASTER_SERVER_H_
#define PRS_MASTER_MASTER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/credentials.h"
#include "master/job_manager.h"

namespace prs::master {

struct MasterOptions {
  // host:port to listen on; port 0 picks a free port (see port()). Loopback
  // by default: any other address needs TLS and tokens, or `insecure`.
  std::string listen = "127.0.0.1:7600";
  // The server's certificate and key; with a CA, clients must present a
  // certificate it signed (mutual TLS).
  TlsFiles tls;
  // The principals' hashed tokens (master/auth.h). Empty: every caller is
  // "local" with every role, which only a loopback master allows.
  std::string tokens_file;
  // Listen on another address without TLS or tokens (said loudly at start).
  bool insecure = false;
  // Without a tokens file: take only this token, as the principal "local"
  // (prs run's embedded master). Empty: every caller is "local".
  std::string local_token;
  JobManagerOptions manager;
  // Threads that run the blocking part of RPCs.
  int executor_threads = 4;
  // host:port of the HTTP window (/metrics, the dashboard: master/web.h);
  // empty: none. As `listen`, another address than loopback needs TLS (the
  // same certificate: HTTPS) and tokens, or `insecure`.
  std::string http_listen;
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
  // The HTTP window's port (--http-listen), 0 without one.
  int http_port() const;
  // Blocks until Shutdown() is called from another thread.
  void Wait();
  // Stops accepting calls, answers held long-polls, stops the ticker.
  void Shutdown();

  JobManager& manager();
  // Reads the tokens file again (SIGHUP); the old table stays when the new
  // file is invalid. FAILED_PRECONDITION when the master runs without one.
  absl::Status ReloadTokens();

 private:
  class Impl;
  explicit MasterServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace prs::master

#endif  // PRS_MASTER_MASTER_SERVER_H_
