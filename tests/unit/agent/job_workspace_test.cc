#include "agent/job_workspace.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "tests/unit/test_util.h"

namespace prs::agent {
namespace {

namespace fs = std::filesystem;
using prs::testing::TempDir;

v1::GetJobBundleResponse Bundle(const std::string& output) {
  v1::GetJobBundleResponse bundle;
  v1::JobSpec& spec = *bundle.mutable_spec();
  spec.set_entry_script("score.py");
  spec.add_arguments("--model");
  spec.add_arguments("m.pkl");
  spec.set_output(output);
  spec.set_output_action("append_row");
  spec.set_logging_level("DEBUG");
  spec.mutable_environment()->set_python("/opt/py/bin/python3");
  (*spec.mutable_environment()->mutable_variables())["MY_VAR"] = "1";
  v1::SnapshotFile* file = bundle.mutable_snapshot()->add_files();
  file->set_path("score.py");
  file->set_mode(0644);
  file->set_content("def run(batch):\n    return batch\n");
  return bundle;
}

WorkspaceOptions Options(const TempDir& dir) {
  WorkspaceOptions o;
  o.work_dir = dir.Sub("agent");
  o.node_id = "node-a";
  o.python = "/usr/bin/python3";
  o.python_dir = "/opt/prs/python";
  return o;
}

TEST_CASE("JobWorkspace unpacks the code and makes the job's folders", "[job_workspace]") {
  TempDir dir;
  auto ws = JobWorkspace::Create(Options(dir), "j1", Bundle(dir.Sub("out")));
  REQUIRE(ws.ok());
  const fs::path root = dir.path() / "agent/jobs/j1";
  CHECK(ws->code_dir() == (root / "code").string());
  CHECK(ws->log_dir() == JobWorkspace::LogDir(dir.Sub("agent"), "j1"));
  CHECK(fs::exists(root / "code/score.py"));
  for (const char* sub : {"user/stdout", "user/stderr", "user/entry_script_log"}) {
    CHECK(fs::is_directory(root / "logs" / sub / "node-a"));
  }
  CHECK(fs::is_directory(dir.path() / "out"));
  CHECK(ws->python() == "/opt/py/bin/python3");  // the job's, before the agent's
}

TEST_CASE("JobWorkspace gives workers the job's environment", "[job_workspace]") {
  TempDir dir;
  auto ws = JobWorkspace::Create(Options(dir), "j1", Bundle(dir.Sub("out")));
  REQUIRE(ws.ok());
  const auto& env = ws->env();
  CHECK(env.at("MY_VAR") == "1");
  CHECK(env.at("PYTHONPATH").rfind("/opt/prs/python", 0) == 0);
  CHECK(env.at("PYTHONUNBUFFERED") == "1");
  CHECK(env.at("PRS_ENTRY_SCRIPT") == ws->code_dir() + "/score.py");
  CHECK(env.at("PRS_SOURCE_DIR") == ws->code_dir());
  CHECK(env.at("PRS_NODE_ID") == "node-a");
  CHECK(env.at("PRS_LOG_DIR") == ws->log_dir());
  CHECK(env.at("PRS_OUTPUT_DIR") == dir.Sub("out"));
  CHECK(env.at("PRS_LOGGING_LEVEL") == "DEBUG");
  CHECK(env.at("PRS_OUTPUT_ACTION") == "append_row");
  CHECK(env.at("PRS_INPUT_TYPE") == "file");
  CHECK(env.at("PRS_JOB_ID") == "j1");
  CHECK(env.count("PRS_APPEND_ROW_DELIMITER") == 0);
}

TEST_CASE("A summary_only job without an output folder gets one of the node's", "[job_workspace]") {
  TempDir dir;
  auto ws = JobWorkspace::Create(Options(dir), "j2", Bundle(""));
  REQUIRE(ws.ok());
  const fs::path output = dir.path() / "agent/jobs/j2/output";
  CHECK(ws->env().at("PRS_OUTPUT_DIR") == output.string());
  CHECK(fs::is_directory(output));
}

TEST_CASE("An output folder that cannot be made fails the job with the reason", "[job_workspace]") {
  TempDir dir;
  dir.Write("a-file", "x");
  auto ws = JobWorkspace::Create(Options(dir), "j3", Bundle(dir.Sub("a-file/out")));
  REQUIRE(absl::IsFailedPrecondition(ws.status()));
  CHECK(ws.status().message().find("cannot be made on node node-a") != std::string::npos);
}

TEST_CASE("WorkerOptions names the worker's files and GPUs", "[job_workspace]") {
  TempDir dir;
  auto ws = JobWorkspace::Create(Options(dir), "j1", Bundle(dir.Sub("out")));
  REQUIRE(ws.ok());
  const fs::path logs = ws->log_dir();

  auto o = ws->WorkerOptions("process001", {"1", "3"}, /*gpus_on_node=*/true);
  REQUIRE(o.ok());
  CHECK(o->python == "/opt/py/bin/python3");
  CHECK(o->arguments == std::vector<std::string>{"--model", "m.pkl"});
  CHECK(o->cwd == ws->code_dir());
  CHECK(o->env.at("PRS_PROCESS_NAME") == "process001");
  CHECK(o->env.at("CUDA_VISIBLE_DEVICES") == "1,3");
  CHECK(o->env.at("CUDA_DEVICE_ORDER") == "PCI_BUS_ID");  // numbered as nvidia-smi numbers them
  CHECK(o->stdout_path == (logs / "user/stdout/node-a/process001.stdout.txt").string());
  CHECK(o->stderr_path == (logs / "user/stderr/node-a/process001.stderr.txt").string());
  CHECK(o->env.at("PRS_ENTRY_SCRIPT_LOG") ==
        (logs / "user/entry_script_log/node-a/process001.log.txt").string());
  CHECK(fs::is_directory(o->env.at("PRS_WORKING_DIR")));

  // gpus_per_process: 0 hides the node's GPUs; a node without GPUs sets nothing.
  auto hidden = ws->WorkerOptions("process002", {}, /*gpus_on_node=*/true);
  REQUIRE(hidden.ok());
  CHECK(hidden->env.at("CUDA_VISIBLE_DEVICES").empty());
  auto cpu_only = ws->WorkerOptions("process003", {}, /*gpus_on_node=*/false);
  REQUIRE(cpu_only.ok());
  CHECK(cpu_only->env.count("CUDA_VISIBLE_DEVICES") == 0);
}

TEST_CASE("A job's own CUDA_VISIBLE_DEVICES is what its workers see", "[job_workspace]") {
  TempDir dir;
  v1::GetJobBundleResponse bundle = Bundle(dir.Sub("out"));
  (*bundle.mutable_spec()->mutable_environment()->mutable_variables())["CUDA_VISIBLE_DEVICES"] =
      "GPU-5e3c";
  auto ws = JobWorkspace::Create(Options(dir), "j1", bundle);
  REQUIRE(ws.ok());
  auto o = ws->WorkerOptions("process000", {"0"}, /*gpus_on_node=*/true);
  REQUIRE(o.ok());
  CHECK(o->env.at("CUDA_VISIBLE_DEVICES") == "GPU-5e3c");
}

}  // namespace
}  // namespace prs::agent
