#ifndef PRS_AGENT_AGENT_H_
#define PRS_AGENT_AGENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/tls_files.h"

namespace prs::agent {

struct AgentOptions {
  // host:port of prs-master.
  std::string master_address;
  // Folder for job snapshots, worker logs and scratch space.
  std::string work_dir;
  // Name of this node in logs; defaults to the host name.
  std::string node_id;
  // Worker interpreter when the job names none; defaults to DefaultWorkerPython().
  std::string python;
  // Mini-batches held per worker beyond the one it runs, so that no worker
  // waits on the network.
  int prefetch_per_worker = 1;
  // How long a PullTasks long-poll may be held by the master.
  absl::Duration pull_wait = absl::Seconds(5);
  // The GPUs this node's workers may use, as CUDA_VISIBLE_DEVICES names
  // them; each worker gets gpus_per_process of them (WorkerIdentities).
  // Unset: the agent's own CUDA_VISIBLE_DEVICES when it has one (a Slurm
  // allocation), else every GPU `nvidia-smi -L` lists.
  std::optional<std::vector<std::string>> gpus;
  // Give every worker a CUDA_VISIBLE_DEVICES (empty: no GPU), so that none
  // inherits the agent's own. Create() sets it when gpus was given, the agent
  // has a CUDA_VISIBLE_DEVICES, or GPUs were found.
  bool set_visible_devices = false;
  // TLS to the master (tls.ca turns it on) and the agent's bearer token
  // (role agent; docs/security.md). Both empty for a loopback master
  // without tokens.
  TlsFiles tls;
  std::string token;
  // Ship the job's log files to the master. Off only when the agent's work
  // dir is the master's state dir (`prs run`), where the trees are one.
  bool ship_logs = true;
  // Time for the job logs' stamps, attempt durations, worker timeouts and
  // resource samples; must outlive the agent. gRPC deadlines stay on the
  // system clock.
  Clock* clock = RealClock::Get();
};

// The devices of a CUDA_VISIBLE_DEVICES-style list ("0,2", "GPU-5e3c..."),
// empty items left out. INVALID_ARGUMENT for a character no device name has.
absl::StatusOr<std::vector<std::string>> ParseGpuList(absl::string_view list);
// prs-agent --gpus: a count ("4": devices 0 to 3; "0": none) or a list of
// devices ("0,2"; one device by number as "2,").
absl::StatusOr<std::vector<std::string>> ParseGpusOption(absl::string_view text);

// Lock order. Each part of the agent has one mutex for its own state:
//   MasterClient::session_mu_   held while registering (RPC and backoff sleeps)
//     -> MasterClient::mu_      the session id, the heartbeat interval, stopping
//     -> the gRPC transport's   the PullTasks in flight (a leaf)
//   Agent::Impl::mu_            results to report, the reporter's state
//   WorkerPool::mu_             the queue, the job, its slots, workers and GPUs
//   LogShipper::mu_             the jobs to ship
//   ResourceMonitor::mu_, LogAppender::mu_, FakeClock's: leaves
// The arrows are the only nestings, and one more: the client's
// on_session_lost runs under MasterClient::session_mu_ and takes
// WorkerPool::mu_ (so the pool never calls the client under its lock).
// Everything else is called with no lock held: the pool's
// on_results (Agent::Impl::mu_), the shipper's current_job (WorkerPool::mu_),
// and the resource monitor's `workers` (WorkerPool::mu_). A job's `abort` flag
// is set under WorkerPool::mu_ so that the slots' waits see it.

// prs-agent: registers with the master, heartbeats, pulls mini-batches, runs
// process_count_per_node workers for the job it is given, and reports each
// attempt. Survives master restarts (retry with backoff and jitter) without
// losing its workers. Thread-safe.
class Agent {
 public:
  // FAILED_PRECONDITION when the work dir or the Python runtime is missing.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentOptions& options);
  ~Agent();

  // Runs until Stop(); returns when every thread and worker has ended.
  void Run();
  // Stops pulling, ends the workers (shutdown() for idle ones), returns at once.
  void Stop();

 private:
  class Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace prs::agent

#endif  // PRS_AGENT_AGENT_H_
