// The in-process tier: the master serves on 127.0.0.1:0 inside the test
// binary and is driven over real gRPC, by a scripted agent (the wire
// protocol itself) or by a real agent with real Python workers. Faster to run
// and to debug than tests/integration, which spawn the built binaries.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/agent.h"
#include "common/grpc_defaults.h"
#include "master/master_server.h"
#include "prs/v1/agent_service.grpc.pb.h"
#include "prs/v1/job_service.grpc.pb.h"
#include "tests/unit/job_request.h"
#include "tests/unit/test_util.h"

namespace prs {
namespace {

using prs::testing::TempDir;

struct Master {
  TempDir dir;
  std::unique_ptr<master::MasterServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::JobService::Stub> jobs;
  std::unique_ptr<v1::AgentService::Stub> agents;

  Master() {
    master::MasterOptions options;
    options.listen = "127.0.0.1:0";
    options.manager.state_dir = dir.Sub("state");
    options.manager.heartbeat_interval = absl::Milliseconds(200);
    options.executor_threads = 2;
    auto created = master::MasterServer::Create(options);
    REQUIRE(created.ok());
    server = *std::move(created);
    channel =
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server->port()),
                                  grpc::InsecureChannelCredentials(), DefaultChannelArguments());
    jobs = v1::JobService::NewStub(channel);
    agents = v1::AgentService::NewStub(channel);
  }
  ~Master() { server->Shutdown(); }

  // A job over `files` files, `batch` to a mini-batch, on one node with two
  // workers, whose rows are the files' names.
  v1::SubmitJobRequest Request(int files, int batch) const {
    v1::SubmitJobRequest req = testing::MakeRequest(dir, files, batch);
    req.mutable_spec()->set_name("inproc");
    req.mutable_spec()->set_node_count(1);
    req.mutable_spec()->set_process_count_per_node(2);
    req.mutable_spec()->set_run_max_try(3);
    req.mutable_snapshot()->mutable_files(0)->set_content(
        "import os\n"
        "def init():\n    pass\n"
        "def run(mini_batch):\n    return [os.path.basename(p) for p in mini_batch]\n");
    return req;
  }

  v1::JobStatus WaitForEnd(const std::string& job_id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    v1::JobStatus status;
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      v1::GetJobRequest req;
      req.set_job_id(job_id);
      REQUIRE(jobs->GetJob(&ctx, req, &status).ok());
      if (status.state() != v1::QUEUED && status.state() != v1::RUNNING) return status;
      absl::SleepFor(absl::Milliseconds(20));  // polling with a deadline, not waiting blind
    }
    FAIL("job " << job_id << " did not end within 60 s");
    return status;
  }
};

std::map<std::string, int> Lines(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, int> count;
  for (std::string line; std::getline(in, line);) ++count[line];
  return count;
}

TEST_CASE("over gRPC: a scripted agent pulls, a stale report is refused, each row lands once") {
  Master m;
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext ctx;
    REQUIRE(m.jobs->SubmitJob(&ctx, m.Request(10, 3), &submitted).ok());
  }
  v1::RegisterAgentResponse session;
  {
    grpc::ClientContext ctx;
    v1::RegisterAgentRequest req;
    req.set_node_id("scripted");
    req.set_hostname("here");
    req.set_pid(1);
    REQUIRE(m.agents->RegisterAgent(&ctx, req, &session).ok());
  }
  int reported = 0;
  bool sent_stale = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (reported < 4 && absl::Now() < deadline) {
    v1::PullTasksResponse pulled;
    grpc::ClientContext ctx;
    v1::PullTasksRequest pull;
    pull.set_agent_id(session.agent_id());
    pull.set_max_tasks(2);
    pull.set_wait_ms(500);
    REQUIRE(m.agents->PullTasks(&ctx, pull, &pulled).ok());
    for (const v1::Task& t : pulled.tasks()) {
      v1::ReportResultsRequest report;
      report.set_agent_id(session.agent_id());
      v1::TaskResult* r = report.add_results();
      r->set_job_id(t.job_id());
      r->set_task_id(t.task_id());
      r->set_lease_id(t.lease_id());
      r->set_status(v1::RUN_DONE);
      r->set_items_total(t.items_size());
      r->set_items_succeeded(t.items_size());
      r->set_row_count(t.items_size());
      for (const auto& item : t.items()) absl::StrAppend(r->mutable_rows(), item, "\n");
      if (!sent_stale) {
        // A report with another lease id is fenced out and writes nothing.
        v1::ReportResultsRequest stale = report;
        stale.mutable_results(0)->set_lease_id(t.lease_id() + "0");
        v1::ReportResultsResponse refused;
        grpc::ClientContext sctx;
        REQUIRE(m.agents->ReportResults(&sctx, stale, &refused).ok());
        REQUIRE(refused.accepted_size() == 1);
        CHECK_FALSE(refused.accepted(0));
        sent_stale = true;
      }
      v1::ReportResultsResponse accepted;
      grpc::ClientContext rctx;
      REQUIRE(m.agents->ReportResults(&rctx, report, &accepted).ok());
      CHECK(accepted.accepted(0));
      // The same report again is refused: a result is committed once.
      v1::ReportResultsResponse twice;
      grpc::ClientContext tctx;
      REQUIRE(m.agents->ReportResults(&tctx, report, &twice).ok());
      CHECK_FALSE(twice.accepted(0));
      ++reported;
    }
  }
  const v1::JobStatus status = m.WaitForEnd(submitted.job_id());
  CHECK(status.state() == v1::SUCCEEDED);
  CHECK(status.counts().mini_batches_processed() == 4);
  CHECK(status.counts().items_succeeded() == 10);
  const auto rows = Lines(status.output_file());
  REQUIRE(rows.size() == 10);
  for (const auto& [row, n] : rows) CHECK(n == 1);
}

TEST_CASE("in process: a real agent with Python workers runs a job to SUCCEEDED, rows once") {
  Master m;
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext ctx;
    REQUIRE(m.jobs->SubmitJob(&ctx, m.Request(25, 4), &submitted).ok());
  }
  agent::AgentOptions options;
  options.master_address = absl::StrCat("127.0.0.1:", m.server->port());
  options.work_dir = m.dir.Sub("agent");
  options.node_id = "inproc-node";
  options.pull_wait = absl::Seconds(1);
  options.gpus = std::vector<std::string>{};
  auto agent = agent::Agent::Create(options);
  REQUIRE(agent.ok());
  std::thread runner([&] { (*agent)->Run(); });
  const v1::JobStatus status = m.WaitForEnd(submitted.job_id());
  (*agent)->Stop();
  runner.join();
  CHECK(status.state() == v1::SUCCEEDED);
  CHECK(status.counts().items_succeeded() == 25);
  const auto rows = Lines(status.output_file());
  REQUIRE(rows.size() == 25);
  for (const auto& [row, n] : rows) CHECK(n == 1);
  CHECK(rows.count("f0000.txt") == 1);
}

}  // namespace
}  // namespace prs
