#ifndef PRS_AGENT_JOB_WORKSPACE_H_
#define PRS_AGENT_JOB_WORKSPACE_H_

// A job on this node: its bundle fetched from the master and unpacked, its
// folders under <work dir>/jobs/<job>/ (code, logs, work, output), and the
// environment and paths its workers are started with.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/worker_process.h"
#include "prs/v1/agent_service.pb.h"

namespace prs::agent {

class MasterClient;

struct WorkspaceOptions {
  std::string work_dir;    // the agent's, absolute
  std::string node_id;     // names this node's log folders
  std::string python;      // interpreter when the job names none; empty: DefaultWorkerPython()
  std::string python_dir;  // the prs runtime, put first on the workers' PYTHONPATH
};

// What a job's workers need on this node. Immutable once made; copyable.
class JobWorkspace {
 public:
  // Unpacks the bundle's snapshot into code/, makes the log and output
  // folders, and works out the workers' interpreter and environment.
  // FAILED_PRECONDITION when the output folder cannot be made; the error of
  // the snapshot or of a folder otherwise.
  static absl::StatusOr<JobWorkspace> Create(const WorkspaceOptions& options,
                                             const std::string& job_id,
                                             const v1::GetJobBundleResponse& bundle);
  // Fetches the job's bundle in session `agent_id`, then Create().
  static absl::StatusOr<JobWorkspace> Fetch(MasterClient& client, const WorkspaceOptions& options,
                                            const std::string& agent_id, const std::string& job_id);
  // <work dir>/jobs/<job>/logs, also for a job whose workspace could not be made.
  static std::string LogDir(const std::string& work_dir, const std::string& job_id);

  const std::string& job_id() const { return job_id_; }
  const v1::JobSpec& spec() const { return spec_; }
  const std::string& node_id() const { return node_id_; }
  const std::string& code_dir() const { return code_dir_; }
  const std::string& log_dir() const { return log_dir_; }
  const std::string& python() const { return python_; }
  // What every worker of the job gets in its environment.
  const std::map<std::string, std::string>& env() const { return env_; }

  std::string StdoutPath(const std::string& process) const;
  std::string StderrPath(const std::string& process) const;
  std::string EntryScriptLogPath(const std::string& process) const;

  // How to start worker `process` (process000, ...); makes its working
  // folder. On a node with GPUs (`gpus_on_node`) the worker sees `gpus` in
  // CUDA_VISIBLE_DEVICES ("0,2"; empty: none), unless the job sets
  // CUDA_VISIBLE_DEVICES itself in environment.variables, and
  // CUDA_DEVICE_ORDER=PCI_BUS_ID (nvidia-smi's numbering) unless it sets that.
  absl::StatusOr<WorkerSpawnOptions> WorkerOptions(const std::string& process,
                                                   const std::vector<std::string>& gpus,
                                                   bool gpus_on_node) const;

 private:
  JobWorkspace() = default;
  absl::Status MakeFolders(const WorkspaceOptions& options, const v1::SourceSnapshot& snapshot);
  void SetEnvironment(const WorkspaceOptions& options);

  std::string job_id_;
  v1::JobSpec spec_;
  std::string node_id_;
  std::string code_dir_;
  std::string log_dir_;
  std::string work_dir_;
  std::string output_dir_;
  std::string python_;
  std::vector<std::string> arguments_;
  std::map<std::string, std::string> env_;
};

}  // namespace prs::agent

#endif  // PRS_AGENT_JOB_WORKSPACE_H_
