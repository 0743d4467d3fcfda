#include "agent/job_workspace.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/master_client.h"
#include "common/file_io.h"
#include "common/job_config.h"
#include "common/paths.h"
#include "common/snapshot.h"

namespace prs::agent {

namespace fs = std::filesystem;

std::string JobWorkspace::LogDir(const std::string& work_dir, const std::string& job_id) {
  return (fs::path(work_dir) / "jobs" / job_id / "logs").string();
}

absl::StatusOr<JobWorkspace> JobWorkspace::Fetch(MasterClient& client,
                                                 const WorkspaceOptions& options,
                                                 const std::string& agent_id,
                                                 const std::string& job_id) {
  v1::GetJobBundleRequest req;
  req.set_agent_id(agent_id);
  req.set_job_id(job_id);
  absl::StatusOr<v1::GetJobBundleResponse> bundle = client.GetJobBundle(req);
  if (!bundle.ok()) return bundle.status();
  return Create(options, job_id, *bundle);
}

absl::StatusOr<JobWorkspace> JobWorkspace::Create(const WorkspaceOptions& options,
                                                  const std::string& job_id,
                                                  const v1::GetJobBundleResponse& bundle) {
  JobWorkspace ws;
  ws.job_id_ = job_id;
  ws.spec_ = bundle.spec();
  ws.node_id_ = options.node_id;
  const fs::path root = fs::path(options.work_dir) / "jobs" / job_id;
  ws.code_dir_ = (root / "code").string();
  ws.log_dir_ = LogDir(options.work_dir, job_id);
  ws.work_dir_ = (root / "work").string();
  // EntryScript().output_dir exists before any worker starts: the job's
  // output folder (the master made it; on a node that does not share it, it
  // is made here), or a folder of this node's for a summary_only job that
  // names none.
  ws.output_dir_ = !ws.spec_.output().empty() ? ws.spec_.output() : (root / "output").string();
  if (absl::Status s = ws.MakeFolders(options, bundle.snapshot()); !s.ok()) return s;
  ws.SetEnvironment(options);
  return ws;
}

absl::Status JobWorkspace::MakeFolders(const WorkspaceOptions& options,
                                       const v1::SourceSnapshot& snapshot) {
  if (auto st = UnpackSnapshot(snapshot, code_dir_); !st.ok()) return st;
  for (const char* sub : {"user/stdout", "user/stderr", "user/entry_script_log"}) {
    if (auto st = MakeDirs((fs::path(log_dir_) / sub / options.node_id).string()); !st.ok()) {
      return st;
    }
  }
  if (auto st = MakeDirs(output_dir_); !st.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the output folder ", output_dir_, " cannot be made on node ", options.node_id,
                     ": ", st.message(), "; give an output folder every node can write"));
  }
  return absl::OkStatus();
}

void JobWorkspace::SetEnvironment(const WorkspaceOptions& options) {
  const auto& env = spec_.environment();
  python_ = !env.python().empty()     ? env.python()
            : !options.python.empty() ? options.python
                                      : DefaultWorkerPython();
  arguments_.assign(spec_.arguments().begin(), spec_.arguments().end());
  for (const auto& [k, v] : env.variables()) env_[k] = v;
  const char* old_path = std::getenv("PYTHONPATH");
  env_["PYTHONPATH"] =
      old_path && *old_path ? absl::StrCat(options.python_dir, ":", old_path) : options.python_dir;
  env_["PYTHONUNBUFFERED"] = "1";
  env_["PRS_ENTRY_SCRIPT"] = (fs::path(code_dir_) / spec_.entry_script()).string();
  env_["PRS_SOURCE_DIR"] = code_dir_;
  env_["PRS_NODE_ID"] = options.node_id;
  env_["PRS_LOG_DIR"] = log_dir_;
  env_["PRS_OUTPUT_DIR"] = output_dir_;
  env_["PRS_LOGGING_LEVEL"] = spec_.logging_level();
  env_["PRS_OUTPUT_ACTION"] = spec_.output_action();
  env_["PRS_INPUT_TYPE"] = IsTabular(spec_) ? "tabular" : "file";
  if (spec_.has_append_row_format()) {
    // Empty: ParallelRunStep's space-joined rows.
    env_["PRS_APPEND_ROW_DELIMITER"] = spec_.append_row_format().delimiter();
    env_["PRS_APPEND_ROW_HEADER"] = spec_.append_row_format().header() ? "1" : "0";
  }
  env_["PRS_JOB_ID"] = job_id_;
}

std::string JobWorkspace::StdoutPath(const std::string& process) const {
  return (fs::path(log_dir_) / "user/stdout" / node_id_ / (process + ".stdout.txt")).string();
}

std::string JobWorkspace::StderrPath(const std::string& process) const {
  return (fs::path(log_dir_) / "user/stderr" / node_id_ / (process + ".stderr.txt")).string();
}

std::string JobWorkspace::EntryScriptLogPath(const std::string& process) const {
  return (fs::path(log_dir_) / "user/entry_script_log" / node_id_ / (process + ".log.txt"))
      .string();
}

absl::StatusOr<WorkerSpawnOptions> JobWorkspace::WorkerOptions(const std::string& process,
                                                               const std::vector<std::string>& gpus,
                                                               bool gpus_on_node) const {
  WorkerSpawnOptions o;
  o.python = python_;
  o.arguments = arguments_;
  o.env = env_;
  o.env["PRS_PROCESS_NAME"] = process;
  // The job's own CUDA_VISIBLE_DEVICES (environment.variables) wins; else
  // the worker sees its GPUs, or none (gpus_per_process: 0). Numbered as
  // nvidia-smi numbers them (CUDA's own order is fastest first).
  if (gpus_on_node) {
    if (o.env.count("CUDA_VISIBLE_DEVICES") == 0) {
      o.env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(gpus, ",");
    }
    if (o.env.count("CUDA_DEVICE_ORDER") == 0) o.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  }
  o.env["PRS_ENTRY_SCRIPT_LOG"] = EntryScriptLogPath(process);
  const std::string work = (fs::path(work_dir_) / process).string();
  if (auto s = MakeDirs(work); !s.ok()) return s;
  o.env["PRS_WORKING_DIR"] = work;
  o.cwd = code_dir_;
  o.stdout_path = StdoutPath(process);
  o.stderr_path = StderrPath(process);
  return o;
}

}  // namespace prs::agent
